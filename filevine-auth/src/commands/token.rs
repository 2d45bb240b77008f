//! `token`: an access token for scripts, from the cache while it has at
//! least `--min-valid` left.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Settings;
use crate::error::CliError;
use crate::session::{Profile, provider};

pub async fn token(settings: &Settings, header: bool, json: bool, min_valid: Duration) -> Result<(), CliError> {
    let profile = Profile::open(settings)?;
    let provider = provider(settings, &profile).await?;
    let mut token = provider.token().await?;
    if token.expires_in() < min_valid {
        // Once: a token issued for less than --min-valid is served as it is.
        provider.invalidate_token(&token);
        token = provider.token().await?;
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
