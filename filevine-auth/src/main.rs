//! `filevine-auth`: Filevine access tokens, sign-in and "who am I" for
//! scripts and terminals, on the SDK's file token store.
//!
//! ```sh
//! FILEVINE_PAT=… filevine-auth token --header     # Authorization: Bearer …
//! filevine-auth login                              # sign in with the browser
//! filevine-auth whoami
//! ```
//!
//! Everything the tool does is the library's: the token provider with the
//! file store (one exchange for parallel invocations), `OidcClient` for
//! `login`, `FilevineApi` for `whoami`. This crate holds the command line,
//! the profiles and the loopback redirect.

use std::process::ExitCode;

use clap::Parser as _;

mod browser;
mod cli;
mod commands;
mod config;
mod error;
mod keys;
mod output;
mod session;

use cli::{Cli, Command};
use error::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return cli::usage_error(&error),
    };
    // Warnings (an unreadable cache entry, a store fallback) always, one
    // line each; everything with --verbose. The SDK logs no secret.
    let level = if cli.global.verbose { tracing::Level::DEBUG } else { tracing::Level::WARN };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        // Plain text: the fmt layer's colours need a feature this build
        // leaves out (it would print a notice on every run, or panic in a
        // debug build); errors get their colour from `output`.
        .with_ansi(false)
        .with_target(cli.global.verbose)
        .without_time()
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&CliError::io("starting the async runtime")(error)),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &CliError) -> ExitCode {
    output::print_error(&error.to_string(), error.hint());
    ExitCode::from(error.exit_code())
}

async fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Completions { shell } = cli.command {
        commands::completions(shell);
        return Ok(());
    }
    let settings = config::Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Token { header, json, min_valid } => commands::token(&settings, header, json, min_valid).await,
        Command::Login { with_pat: true, .. } => commands::login_with_pat(&settings).await,
        Command::Login { device: true, .. } => commands::login_with_device(&settings).await,
        Command::Login { no_browser, port, timeout, .. } => {
            commands::login(&settings, !no_browser, port, timeout).await
        }
        Command::Whoami { json } => commands::whoami(&settings, json).await,
        Command::Status => commands::status(&settings).await,
        Command::Doctor => commands::doctor(&settings).await,
        Command::Logout => commands::logout(&settings).await,
        Command::Completions { .. } => Ok(()),
    }
}
