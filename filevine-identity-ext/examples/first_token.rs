use std::process::ExitCode;

use filevine_identity_ext::{FilevineApi, TokenProvider};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The message and its causes, not the Debug form.
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // FILEVINE_PAT, and where to send it: FILEVINE_REGION (us, ca), or
    // FILEVINE_AUTHORITY with FILEVINE_GATEWAY (the test server prints both).
    let provider = TokenProvider::from_env()?;
    // Cached, refreshed ahead of expiry, one request for all callers.
    let token = provider.token().await?;
    println!("got an access token for {} s", token.expires_in().as_secs());

    // The region's API gateway, with the token (refreshed on a 401).
    let api = FilevineApi::new(provider)?;
    let orgs = api.get_user_orgs_with_token().await?;
    println!("user {} in {} org(s)", orgs.user.user_id.native, orgs.orgs.len());
    Ok(())
}
