//! Getting, caching and refreshing a token, narrated.
//!
//! ```sh
//! cargo run -p filevine-identity-ext --example quickstart
//! ```
//!
//! With no environment set it starts the loopback test server in-process and
//! runs against it. With `FILEVINE_PAT` set (and optionally
//! `FILEVINE_CLIENT_ID`, `FILEVINE_CLIENT_SECRET`, `FILEVINE_SCOPES`,
//! `FILEVINE_REGION`, `FILEVINE_AUTHORITY`) it runs against the real service
//! for the region. It never prints a token.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{AccessToken, Credentials, PersonalAccessToken, TokenProvider};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Keeps the test server alive for the whole run when there is one.
    let (provider, server) = if std::env::var_os("FILEVINE_PAT").is_some() {
        let provider = TokenProvider::from_env()?;
        println!("FILEVINE_PAT is set: using the real service at {}", provider.region().identity_url());
        (provider, None)
    } else {
        let server = TestServer::start().await?;
        server.add_personal_access_token("fvpat_quickstart");
        // Short-lived tokens, so refreshing can be watched in seconds.
        server.set_token_lifetime(Duration::from_secs(4));
        println!("FILEVINE_PAT is not set: started the test server at {}", server.url());
        let provider = TokenProvider::builder()
            .env(|_| None)
            .region(server.region())
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_quickstart")?))
            .hard_margin(Duration::from_secs(1))
            .soft_window(Duration::from_secs(2))
            .build()?;
        (provider, Some(server))
    };
    let requests = || server.as_ref().map_or_else(|| "n/a".to_owned(), |s| s.token_requests().to_string());

    let started = Instant::now();
    let first = provider.token().await?;
    println!("1. token():   {}  [{:?}, token requests: {}]", describe(&first), started.elapsed(), requests());

    let started = Instant::now();
    let again = provider.token().await?;
    println!(
        "2. token():   {} token from the cache  [{:?}, token requests: {}]",
        if again.same_token(&first) { "the same" } else { "a different" },
        started.elapsed(),
        requests()
    );

    if server.is_some() {
        println!("   waiting 2.4 s: the token is now inside its soft refresh window…");
        tokio::time::sleep(Duration::from_millis(2400)).await;
        let during = provider.token().await?;
        println!(
            "3. token():   {} token, served at once while a refresh runs in the background",
            if during.same_token(&first) { "still the current" } else { "a new" }
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = provider.token().await?;
        println!(
            "4. token():   {}  [{} token, token requests: {}]",
            describe(&after),
            if after.same_token(&first) { "the old" } else { "the refreshed" },
            requests()
        );
    }

    provider.invalidate();
    let started = Instant::now();
    let fresh = provider.token().await?;
    println!("5. after invalidate(): {}  [{:?}, token requests: {}]", describe(&fresh), started.elapsed(), requests());
    println!("done: no token value was printed; `{:?}` is how a token debugs", fresh);
    Ok(())
}

fn describe(token: &AccessToken) -> String {
    format!(
        "{} token, scopes `{}`, expires in {:.1} s",
        token.token_type(),
        token.scopes(),
        token.expires_in().as_secs_f64()
    )
}
