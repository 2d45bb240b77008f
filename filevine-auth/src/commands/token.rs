//! `token`: an access token for scripts, from the cache while it has at
//! least `--min-valid` left (bounded by half the token's lifetime, so a
//! short-lived token does not make every call refresh).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Settings;
use crate::error::CliError;
use crate::session::{Profile, provider};

pub async fn token(settings: &Settings, header: bool, json: bool, min_valid: Duration) -> Result<(), CliError> {
    let profile = Profile::open(settings).await?;
    let provider = provider(settings, &profile).await?;
    let mut token = provider.token().await?;
    if token.expires_in() < effective_min_valid(min_valid, token.lifetime()) {
        // Once: the new token is served as it is.
        provider.invalidate_token(&token);
        token = provider.token().await?;
    }
    if token.dpop_key().is_some() {
        // Printed as asked, but a copy of it is refused without a proof.
        eprintln!(
            "note: this token is DPoP-bound (RFC 9449): a request with it also needs a DPoP proof signed by the key kept in the token cache"
        );
    }
    if json {
        let expires_in = token.expires_in().as_secs();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let scopes: Vec<String> = token.scopes().iter().map(|s| s.as_str().to_owned()).collect();
        let value = serde_json::json!({
            "access_token": token.expose_secret(),
            "token_type": token.token_type(),
            "expires_in": expires_in,
            "expires_at": now + expires_in,
            "scopes": scopes,
        });
        println!("{value}");
    } else if header {
        // The header value is `Bearer <token>` (marked sensitive, so it is
        // read as bytes, not through Debug).
        let value = token.authorization_header();
        println!("Authorization: {}", String::from_utf8_lossy(value.as_bytes()));
    } else {
        println!("{}", token.expose_secret());
    }
    Ok(())
}

/// `--min-valid`, but at most half the token's lifetime: with tokens that
/// live less than twice `--min-valid` (8 s on a test server, against the
/// default 5 min) every call would refresh, and a token fresh from the
/// provider (which hands out tokens with at least half their life or a
/// minute left) never needs a second refresh.
fn effective_min_valid(min_valid: Duration, lifetime: Duration) -> Duration {
    min_valid.min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn min_valid_is_bounded_by_half_the_lifetime() {
        let (five_minutes, secs) = (Duration::from_secs(300), Duration::from_secs);
        assert_eq!(super::effective_min_valid(five_minutes, secs(8)), secs(4));
        assert_eq!(super::effective_min_valid(five_minutes, secs(3600)), five_minutes);
        assert_eq!(super::effective_min_valid(Duration::ZERO, secs(3600)), Duration::ZERO);
    }
}
