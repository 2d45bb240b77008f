//! `status`: who is signed in, where, until when. Never a secret.

use crate::config::Settings;
use crate::error::CliError;
use crate::output::clean;
use crate::session::{Method, Profile, provider};

pub async fn status(settings: &Settings) -> Result<(), CliError> {
    let profile = Profile::open(settings).await?;
    println!("profile:   {}", settings.profile);
    println!("config:    {}", settings.dir.display());
    println!("store key: {}", profile.key_source);
    let state = profile.state().await?;
    let signed_in = state.is_some();
    match state {
        Some(state) => {
            let method = match state.method {
                Method::Login => "login (authorization code)",
                Method::Pat => "personal access token",
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            println!("signed in: {method}, {} ago", age(now.saturating_sub(state.since)));
            // Read back from the sign-in record: what the provider gave.
            println!("authority: {}", clean(&state.authority));
            if let Some(gateway) = &state.gateway {
                println!("gateway:   {}", clean(gateway));
            }
            if let Some(client) = &state.client_id {
                println!("client:    {}", clean(client));
            }
            if state.method == Method::Login {
                // No token response field or endpoint of Filevine's tells a
                // refresh token's lifetime; the cache's own limit is known.
                let idle = filevine_identity_ext::provider::DEFAULT_STORE_IDLE_TIMEOUT.as_secs() / 86_400;
                println!(
                    "refresh:   the provider does not say how long the refresh token lasts; the cache drops it after {idle} days unused"
                );
            }
            let who = [state.name.as_deref(), state.email.as_deref(), state.subject.as_deref()];
            let who: Vec<&str> = who.into_iter().flatten().collect();
            if !who.is_empty() {
                println!("user:      {}", clean(who.join(", ")));
            }
        }
        None => {
            println!("signed in: not with `login`; the environment's credentials are used if set");
            println!("authority: {}", settings.region.identity_url());
        }
    }
    // A token with at least a minute left, from the cache or a refresh.
    let provider = match provider(settings, &profile).await {
        // Nothing stored and nothing in the environment: that is the
        // answer, not a failure (after `logout`, say).
        Err(CliError::SignInRequired(_)) if !signed_in => {
            println!("token:     none: not signed in (run `filevine-auth login`, or set FILEVINE_PAT)");
            return Ok(());
        }
        other => other?,
    };
    let token = provider.token().await?;
    println!("token:     valid for {} s more", token.expires_in().as_secs());
    Ok(())
}

/// `42 s`, `5 min`, `3 h`, `2 days`.
fn age(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        7200..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_well() {
        assert_eq!(super::age(42), "42 s");
        assert_eq!(super::age(300), "5 min");
        assert_eq!(super::age(3 * 3600), "3 h");
        assert_eq!(super::age(5 * 86_400), "5 days");
    }
}
