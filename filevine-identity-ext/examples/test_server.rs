//! The crate's loopback test server as a process: an identity provider and
//! an API gateway stub on 127.0.0.1, to try the SDK and `filevine-auth`
//! without a Filevine account.
//!
//! ```sh
//! cargo run -p filevine-identity-ext --example test_server -- --foreground fvpat_try_me
//! # {"authority":"http://127.0.0.1:PORT","gateway":"http://127.0.0.1:PORT/gateway"}
//! ```
//!
//! Accepts the PATs given as arguments and prints one JSON line with its
//! authority and gateway once it listens. With `--foreground` it serves
//! until Ctrl-C (or SIGTERM); without it, until its standard input closes
//! (so a script that dies leaves nothing running).

use filevine_identity_ext::test_util::TestServer;

const USAGE: &str = "\
Usage: test_server [--foreground] [PAT ...]

A Filevine identity provider and API gateway stub on 127.0.0.1, for trying
the SDK and filevine-auth without a Filevine account. It accepts the
personal access tokens given as arguments, prints one JSON line with its
authority and gateway URLs once it listens, and then:

  --foreground   serves until Ctrl-C (or SIGTERM)
  (default)      serves until its standard input closes (for scripts)

  -h, --help     this text

Then, in another terminal (the URLs are in the JSON line):
  FILEVINE_AUTHORITY=<authority> FILEVINE_GATEWAY=<gateway> FILEVINE_PAT=<a PAT above> \\
    cargo run -p filevine-identity-ext --example quickstart";

/// How long the server runs.
enum Until {
    StdinCloses,
    Interrupted,
}

fn parse(args: impl Iterator<Item = String>) -> Result<(Until, Vec<String>), String> {
    let mut until = Until::StdinCloses;
    let mut pats = Vec::new();
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--foreground" => until = Until::Interrupted,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag:?}")),
            _ => pats.push(arg),
        }
    }
    Ok((until, pats))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let (until, pats) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve(until, &pats).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(until: Until, pats: &[String]) -> std::io::Result<()> {
    let server = TestServer::start().await?;
    for pat in pats {
        server.add_personal_access_token(pat);
    }
    println!(r#"{{"authority":"{}","gateway":"{}/gateway"}}"#, server.url(), server.url());
    match until {
        // Read on a thread of its own: the runtime keeps serving meanwhile.
        Until::StdinCloses => {
            tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await??;
        }
        Until::Interrupted => {
            eprintln!("serving until Ctrl-C (accepted PATs: {})", pats.len());
            #[cfg(unix)]
            {
                let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    interrupted = tokio::signal::ctrl_c() => interrupted?,
                    _ = terminate.recv() => {}
                }
            }
            #[cfg(not(unix))]
            tokio::signal::ctrl_c().await?;
        }
    }
    Ok(())
}
