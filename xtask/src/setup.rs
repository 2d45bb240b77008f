//! `cargo xtask setup`: the programs the test suite runs, installed with
//! apt-get when missing (as root, or through `sudo -n`), else one line that
//! names the command to run. `cargo xtask test` and `.ci/run` call it; the
//! list lives here alone.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

/// Something the tests run, how to tell it is there, and its packages.
struct Need {
    /// What it is for, for the messages.
    what: &'static str,
    /// Every one of these must be found (on PATH, or at an absolute path).
    programs: &'static [Program],
    /// The Debian packages that bring them.
    packages: &'static [&'static str],
}

/// A program found on PATH by `name`, or at one of `paths`.
struct Program {
    name: &'static str,
    paths: &'static [&'static str],
}

const fn on_path(name: &'static str) -> Program {
    Program { name, paths: &[] }
}

/// What the test suite needs, with the packages `.ci/run` installed.
const NEEDS: &[Need] = &[
    Need {
        what: "Node.js 20+ and npm (the sign-in tests run a real OpenID provider from the npm registry)",
        programs: &[on_path("node"), on_path("npm")],
        packages: &["nodejs", "npm"],
    },
    Need {
        what: "redis-server and redis-cli (the store tests run a real Redis: one node, Sentinels, a cluster)",
        programs: &[on_path("redis-server"), on_path("redis-cli")],
        packages: &["redis-server", "redis-tools"],
    },
    Need {
        what: "a Secret Service and D-Bus (filevine-auth keeps its store key in the OS keyring)",
        programs: &[
            on_path("gnome-keyring-daemon"),
            on_path("dbus-run-session"),
            on_path("secret-tool"),
            on_path("gdbus"),
        ],
        packages: &["gnome-keyring", "dbus-daemon", "libsecret-tools", "libglib2.0-bin"],
    },
    Need {
        what: "PostgreSQL (the store tests start a throwaway cluster with initdb and pg_ctl)",
        programs: &[Program { name: "initdb", paths: &["/usr/lib/postgresql/*/bin/initdb"] }],
        packages: &["postgresql"],
    },
    Need {
        what: "PgBouncer (the PostgreSQL store through a pooler in transaction mode)",
        programs: &[Program { name: "pgbouncer", paths: &["/usr/sbin/pgbouncer"] }],
        packages: &["pgbouncer"],
    },
];

/// Whether `program` is on PATH or at one of its paths (a `*` matches one
/// directory name).
fn found(program: &Program) -> bool {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program.name).is_file()));
    on_path || program.paths.iter().any(|pattern| matches_path(pattern))
}

fn matches_path(pattern: &str) -> bool {
    match pattern.split_once("/*/") {
        None => Path::new(pattern).is_file(),
        Some((parent, rest)) => std::fs::read_dir(parent)
            .map(|dirs| dirs.flatten().any(|dir| dir.path().join(rest).is_file()))
            .unwrap_or(false),
    }
}

/// The packages of every need not met.
fn missing() -> Vec<&'static str> {
    NEEDS
        .iter()
        .filter(|need| !need.programs.iter().all(found))
        .inspect(|need| println!("missing: {}", need.what))
        .flat_map(|need| need.packages.iter().copied())
        .collect()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn can_sudo() -> bool {
    Command::new("sudo")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `apt-get update`, then `apt-get install` of `packages`, as root or
/// through `sudo -n`.
fn apt_install(packages: &[&str], sudo: bool) -> bool {
    let run = |args: &[&str]| {
        let mut command = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
        if sudo {
            command.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        } else {
            command.env("DEBIAN_FRONTEND", "noninteractive");
        }
        command.args(args).status().is_ok_and(|s| s.success())
    };
    run(&["update", "-qq"]) && run(&[&["install", "-y", "-qq"], packages].concat())
}

/// Node.js's major version, if it runs.
fn node_major() -> Option<u32> {
    let out = Command::new("node").arg("--version").output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

/// Installs what is missing; `Err` with what to do when it cannot.
pub(crate) fn ensure() -> Result<(), String> {
    let packages = missing();
    if !packages.is_empty() {
        let line = format!("apt-get install -y {}", packages.join(" "));
        let (root, sudo) = (is_root(), !is_root() && can_sudo());
        if !root && !sudo {
            return Err(format!("the tests need programs this machine lacks; run: sudo {line}"));
        }
        println!("==> {}{line}", if sudo { "sudo " } else { "" });
        if !apt_install(&packages, sudo) || !missing().is_empty() {
            return Err(format!("`{line}` did not install what the tests need (see above)"));
        }
    }
    match node_major() {
        Some(major) if major >= 20 => {}
        Some(major) => return Err(format!("Node.js {major} is too old: the test OpenID provider needs 20 or newer")),
        None => return Err("node does not run: install Node.js 20 or newer".to_owned()),
    }
    // initdb and pg_ctl refuse to run as root: the tests use the
    // package's `postgres` user then.
    if is_root() && !Command::new("id").arg("postgres").stdout(Stdio::null()).status().is_ok_and(|s| s.success()) {
        return Err("running as root without a `postgres` user: install the postgresql package".to_owned());
    }
    Ok(())
}

/// `cargo xtask setup`.
pub(crate) fn run() -> ExitCode {
    match ensure() {
        Ok(()) => {
            println!("everything the tests run is installed");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_one_directory_level() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("15/bin")).unwrap();
        std::fs::write(dir.path().join("15/bin/initdb"), "").unwrap();
        let root = dir.path().display();
        assert!(matches_path(&format!("{root}/*/bin/initdb")));
        assert!(!matches_path(&format!("{root}/*/bin/pg_ctl")));
        assert!(matches_path(&format!("{root}/15/bin/initdb")));
        assert!(!matches_path(&format!("{root}/nowhere/*/bin/initdb")));
    }

    #[test]
    fn every_need_names_its_packages() {
        for need in NEEDS {
            assert!(!need.packages.is_empty() && !need.programs.is_empty(), "{}", need.what);
        }
    }
}
