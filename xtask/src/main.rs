//! `cargo xtask` — the one entry point for maintenance tasks (the
//! rust-analyzer convention; `.cargo/config.toml` defines the alias).
//!
//! ```text
//! cargo xtask codegen            regenerate filevine-identity/src/generated.rs from the spec
//! cargo xtask codegen --check    write nothing; exit 1 with a diff if the committed file is stale,
//!                                or if the spec has a warning it does not accept
//! cargo xtask codegen --accept   regenerate, refresh the snapshots, list the ones to read
//! cargo xtask setup              install (apt-get, as root or with sudo) the servers the tests run, when missing
//! cargo xtask test [ARGS]        setup, install the test OpenID provider (npm ci), then cargo test --workspace [ARGS]
//! cargo xtask cycles             exit 1 when the files of a library or tool import each other in a circle
//! ```
//!
//! One module per task; this file only parses arguments (clap) and
//! dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod architecture;
mod codegen;
mod compile_check;
mod cycles;
mod readme;
mod setup;
mod test;
mod workspace;

/// Maintenance tasks for the Filevine Identity SDK workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Regenerate the client from the spec.
    Codegen(codegen::Codegen),
    /// Installs what the tests run when it is missing (Node.js, Redis,
    /// PostgreSQL, PgBouncer, a Secret Service and D-Bus) with apt-get, as
    /// root or through `sudo -n`; otherwise names the command to run.
    Setup,
    /// The whole test suite: `setup`, then the OpenID provider the sign-in
    /// tests run against (npm ci in filevine-identity-ext/tests/oidc-provider,
    /// from its committed lock file), then cargo test --workspace.
    Test {
        /// Arguments passed on to `cargo test --workspace`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Fails when the files of a crate import each other in a circle (the
    /// floors of ARCHITECTURE.md).
    Cycles,
    /// Fails when a README program that stands for a file of the
    /// repository is not that file.
    Readme,
    /// Fails when ARCHITECTURE.md names a file, folder or Rust item that
    /// does not exist.
    Architecture,
}

fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Codegen(codegen) => codegen.run(),
        Task::Setup => setup::run(),
        Task::Test { cargo_args } => test::run(&cargo_args),
        Task::Cycles => cycles::run(&workspace::root()),
        Task::Readme => readme::run(&workspace::root()),
        Task::Architecture => architecture::run(&workspace::root()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filevine_identity_codegen::SPEC_PATH;
    use std::path::PathBuf;

    fn parse(list: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(list.iter().copied()))
    }

    #[test]
    fn parses_codegen_and_flags() {
        let Task::Codegen(c) = parse(&["codegen"]).unwrap().task else { panic!("codegen") };
        assert!(!c.check);
        assert_eq!(c.spec, PathBuf::from(SPEC_PATH));
        let Task::Codegen(c) = parse(&["codegen", "--check", "--spec", "a.yaml", "--out", "b.rs"]).unwrap().task else {
            panic!("codegen")
        };
        assert!(c.check);
        assert_eq!((c.spec, c.out), (PathBuf::from("a.yaml"), PathBuf::from("b.rs")));
        let Task::Codegen(c) = parse(&["codegen", "--accept"]).unwrap().task else { panic!("codegen") };
        assert!(c.accept && !c.check);
        assert!(parse(&["codegen", "--accept", "--check"]).is_err(), "one or the other");
        let Task::Test { cargo_args } = parse(&["test", "-p", "x", "--", "--test-threads=8"]).unwrap().task else {
            panic!("test")
        };
        assert_eq!(cargo_args, ["-p", "x", "--", "--test-threads=8"]);
    }

    #[test]
    fn rejects_unknown_tasks_and_arguments() {
        assert!(parse(&["build"]).unwrap_err().to_string().contains("'build'"));
        assert!(parse(&["codegen", "--chek"]).unwrap_err().to_string().contains("--chek"));
        assert!(parse(&["codegen", "--spec"]).is_err());
        assert!(parse(&[]).is_err());
    }
}
