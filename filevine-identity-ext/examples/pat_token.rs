//! Prints one line, `Authorization: Bearer <token>`, for scripts:
//!
//! ```sh
//! export FILEVINE_PAT=… FILEVINE_CLIENT_ID=… FILEVINE_CLIENT_SECRET=…   # FILEVINE_SCOPES, FILEVINE_REGION optional
//! curl -H "$(cargo run -q -p filevine-identity-ext --example pat_token)" https://api.filevine.io/…
//! ```
//!
//! Reads `FILEVINE_PAT`, `FILEVINE_CLIENT_ID`, `FILEVINE_CLIENT_SECRET`,
//! `FILEVINE_SCOPES`, `FILEVINE_REGION` and `FILEVINE_AUTHORITY`. On any
//! error it prints a message on stderr and exits with status 1.

use std::process::ExitCode;

use filevine_identity_ext::TokenProvider;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let provider = match TokenProvider::from_env() {
        Ok(provider) => provider,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match provider.token().await {
        Ok(token) => {
            // The one place this SDK prints a token: it is what was asked for.
            println!("Authorization: Bearer {}", token.expose_secret());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
