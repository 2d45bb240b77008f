//! The crate's loopback test server as a process, for trying the SDK and
//! `filevine-auth` by hand and for `scripts/cli-startup.sh`:
//!
//! ```sh
//! cargo run -p filevine-identity-ext --example test_server -- fvpat_try_me
//! # {"authority":"http://127.0.0.1:PORT","gateway":"http://127.0.0.1:PORT/gateway"}
//! FILEVINE_AUTHORITY=http://127.0.0.1:PORT FILEVINE_PAT=fvpat_try_me filevine-auth token
//! ```
//!
//! Accepts the PATs given as arguments, prints one JSON line with its
//! authority and gateway once it listens, and serves until its standard
//! input closes (so a script that dies leaves nothing running).

use filevine_identity_ext::test_util::TestServer;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let server = TestServer::start().await?;
    for pat in std::env::args().skip(1) {
        server.add_personal_access_token(&pat);
    }
    println!(r#"{{"authority":"{}","gateway":"{}/gateway"}}"#, server.url(), server.url());
    // Serve until stdin closes (read on a thread of its own: the runtime
    // keeps serving meanwhile).
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await??;
    Ok(())
}
