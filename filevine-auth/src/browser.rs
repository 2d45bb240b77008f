//! Opening the sign-in URL in the user's browser, without this process's
//! secrets.
//!
//! The browser (and whatever launcher starts it: `xdg-open`, `gio`, `open`)
//! would otherwise inherit the whole environment, `FILEVINE_CLIENT_SECRET`,
//! `FILEVINE_PAT` and `FILEVINE_STORE_KEY` included, where any extension,
//! crash reporter or child process can read them. It gets none of the
//! `FILEVINE_*` variables.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// Whether a variable stays out of the browser's environment: every
/// `FILEVINE_*` variable (the tool's settings and secrets).
fn withheld(name: &OsStr) -> bool {
    name.to_str().is_none_or(|name| name.to_ascii_uppercase().starts_with("FILEVINE_"))
}

/// Starts the first launcher the platform has for `url`, detached, with
/// the environment stripped.
pub fn open(url: &str) -> std::io::Result<()> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no program to open a browser with");
    for command in open::commands(url) {
        match spawn(command) {
            Ok(()) => return Ok(()),
            Err(error) => last = error,
        }
    }
    Err(last)
}

fn spawn(mut command: Command) -> std::io::Result<()> {
    for (name, _) in std::env::vars_os() {
        if withheld(&name) {
            command.env_remove(&name);
        }
    }
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command.spawn()?;
    // Reaped in the background: the launcher may outlive the sign-in.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Whether a browser can plausibly open here: on Linux and the BSDs a
/// graphical session (`DISPLAY` or `WAYLAND_DISPLAY`) and not an SSH
/// session without one (`gh` and `az` use the same signals); elsewhere
/// (macOS, Windows) the system opener always has one.
pub fn usable() -> bool {
    if cfg!(any(target_os = "macos", windows)) {
        return true;
    }
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    set("DISPLAY") || set("WAYLAND_DISPLAY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filevine_variable_is_withheld() {
        for name in ["FILEVINE_CLIENT_SECRET", "FILEVINE_PAT", "FILEVINE_STORE_KEY", "filevine_pat"] {
            assert!(withheld(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "DISPLAY", "HOME", "BROWSER", "WAYLAND_DISPLAY"] {
            assert!(!withheld(OsStr::new(name)), "{name}");
        }
    }
}
