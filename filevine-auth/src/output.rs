//! Writing to the terminal: colour only on a terminal and without
//! NO_COLOR, and the spinner of a wait.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

/// Whether stderr gets colour.
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` that came from a server or a file (a name, an issuer, an error
/// description) without what a terminal would act on: escape sequences,
/// other control characters, bidirectional and zero-width characters.
pub fn clean(text: impl std::fmt::Display) -> String {
    filevine_identity_ext::error::printable(&text.to_string()).into_owned()
}

/// `error: <message>` (in red on a terminal), and the hint on its own line.
pub fn print_error(message: &str, hint: Option<&str>) {
    let (red, reset) = if colour() { ("\x1b[31m", "\x1b[0m") } else { ("", "") };
    // One line: a multi-line source message is joined; what a server put
    // in it cannot drive the terminal.
    let message = message.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let message = clean(message);
    let hint = hint.map(clean);
    let hint = hint.as_deref();
    match hint {
        Some(hint) => eprintln!("{red}error:{reset} {message}; {hint}"),
        None => eprintln!("{red}error:{reset} {message}"),
    }
}

/// A spinner on stderr while `waiting` runs, when stderr is a terminal.
pub async fn with_spinner<F: std::future::Future>(label: &str, waiting: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return waiting.await;
    }
    let spin = async {
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        for frame in ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"].iter().cycle() {
            ticker.tick().await;
            eprint!("\r{frame} {label}");
            let _ = std::io::stderr().flush();
        }
    };
    let output = tokio::select! {
        output = waiting => output,
        () = spin => unreachable!("the spinner never ends"),
    };
    eprint!("\r\x1b[2K");
    output
}

/// Reads one line typed at the terminal on standard input without showing
/// it: `prompt` on stderr, echo off while the line is typed, then back on
/// (also when reading fails). `None` when standard input is not a terminal
/// (a pipe or a file: the caller reads it as it is).
#[cfg(unix)]
pub fn read_secret_line(prompt: &str, limit: usize) -> Option<std::io::Result<zeroize::Zeroizing<String>>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    let saved = match tcgetattr(&stdin) {
        Ok(saved) => saved,
        Err(error) => return Some(Err(error.into())),
    };
    let mut silent = saved.clone();
    silent.local_modes.remove(LocalModes::ECHO);
    // Line editing stays (ICANON): backspace works, Enter ends the line.
    silent.local_modes.insert(LocalModes::ECHONL);
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    if let Err(error) = tcsetattr(&stdin, OptionalActions::Flush, &silent) {
        return Some(Err(error.into()));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = {
        use std::io::{BufRead as _, Read as _};
        stdin.lock().take(limit as u64).read_line(&mut line)
    };
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    Some(read.and(restored.map_err(Into::into)).map(|_| line))
}

/// Elsewhere standard input is read as it is.
#[cfg(not(unix))]
pub fn read_secret_line(_prompt: &str, _limit: usize) -> Option<std::io::Result<zeroize::Zeroizing<String>>> {
    None
}
