//! `cargo xtask test`: what the tests run installed (`setup`), `npm ci`
//! for the test OpenID provider, then the workspace's tests.

use std::process::ExitCode;

use crate::workspace::root as workspace_root;

/// Where the test OpenID provider's package.json and lock file live.
const OIDC_PROVIDER_DIR: &str = "filevine-identity-ext/tests/oidc-provider";

/// `cargo xtask test`: `npm ci` for the test OpenID provider, then the
/// workspace's tests. Both steps stream their output; the first failure
/// ends the task with its exit code.
pub(crate) fn run(cargo_args: &[String]) -> ExitCode {
    let root = workspace_root();
    println!("==> cargo xtask setup");
    if let Err(message) = crate::setup::ensure() {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    println!("==> npm ci --prefix {OIDC_PROVIDER_DIR}");
    let npm = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix", OIDC_PROVIDER_DIR])
        .current_dir(&root)
        .status();
    match npm {
        Ok(status) if status.success() => {}
        Ok(status) => {
            eprintln!("error: npm ci failed ({status}); the sign-in tests need Node.js 20+ and npm");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("error: cannot run npm ({error}); the sign-in tests need Node.js 20+ and npm");
            return ExitCode::FAILURE;
        }
    }
    println!("==> cargo test --workspace {}", cargo_args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    match std::process::Command::new(cargo).arg("test").arg("--workspace").args(cargo_args).current_dir(&root).status()
    {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}
