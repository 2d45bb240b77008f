//! The command line, as clap sees it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// What the exit codes mean; shown under `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error (the message on stderr says what to do)
  2  usage error
  4  sign-in required: run `filevine-auth login`, or set FILEVINE_PAT

Environment: FILEVINE_PAT, FILEVINE_CLIENT_ID, FILEVINE_CLIENT_SECRET, FILEVINE_SCOPES,
FILEVINE_CLIENT_KEY (a PEM or JWK file: private_key_jwt instead of a client secret) with
FILEVINE_CLIENT_KEY_ID, FILEVINE_DPOP=true (DPoP-bound tokens, the key kept with them),
FILEVINE_REGION, FILEVINE_AUTHORITY, FILEVINE_GATEWAY, FILEVINE_STORE_KEY (encrypts the
cached tokens; else a key kept in the OS keyring, or in store.key without one),
FILEVINE_KEYRING=off (keep the key in store.key), FILEVINE_CONFIG_DIR (default: the
platform's config directory + filevine), NO_COLOR.";

/// Filevine access tokens, sign-in and "who am I", for scripts and terminals.
///
/// Tokens are cached in the configuration directory (a 0700 directory of
/// 0600 files) and refreshed when needed; parallel invocations share one
/// exchange.
#[derive(Debug, Parser)]
#[command(name = "filevine-auth", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The region: `us`, `ca` or `canada` (default: FILEVINE_AUTHORITY or FILEVINE_REGION, else the profile's, else us).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// A custom identity authority URL instead of a region.
    #[arg(long, global = true, value_name = "URL")]
    pub authority: Option<String>,
    /// The API gateway (for `whoami`): wins over FILEVINE_GATEWAY, the profile's and the region's.
    #[arg(long, global = true, value_name = "URL")]
    pub gateway: Option<String>,
    /// A named configuration from `config.json` in the configuration directory.
    #[arg(long, global = true, value_name = "NAME", default_value = "default", env = "FILEVINE_PROFILE")]
    pub profile: String,
    /// Log what the SDK does on stderr (never a secret).
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an access token, from the cache while it has at least --min-valid left.
    ///
    /// Uses, in order: the profile's sign-in (`login`), the PAT stored by
    /// `login --with-pat`, FILEVINE_PAT (with FILEVINE_CLIENT_ID and
    /// FILEVINE_CLIENT_SECRET if set), or client credentials
    /// (FILEVINE_CLIENT_ID and FILEVINE_CLIENT_SECRET).
    Token {
        /// Print `Authorization: Bearer <token>`.
        #[arg(long, conflicts_with = "json")]
        header: bool,
        /// Print the token, its expiry and scopes as JSON.
        #[arg(long)]
        json: bool,
        /// Refresh unless the cached token has at least this long left (e.g. 90s, 5m, 1h).
        ///
        /// Bounded by half the token's lifetime: with 8-second tokens, `5m`
        /// means 4 s. At most one refresh per call.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        min_valid: Duration,
    },
    /// Sign in: with your Filevine account in a browser, from another device (--device), or with a personal access token (--with-pat).
    ///
    /// With a browser or --device, FILEVINE_CLIENT_ID (or the profile's
    /// client_id) names a native client registered with the redirect URI
    /// http://127.0.0.1/callback (or allowed the device code grant); the
    /// URL is always printed on stderr. --with-pat needs no client: the
    /// PAT is read from standard input (a prompt without echo on a
    /// terminal), checked with one exchange, and stored.
    Login {
        /// Sign in from another device: print a URL and a code to enter there (RFC 8628 device code).
        #[arg(long, conflicts_with_all = ["no_browser", "port", "with_pat"])]
        device: bool,
        /// Do not open a browser; open the printed URL yourself.
        #[arg(long)]
        no_browser: bool,
        /// The loopback port of the redirect URI (default: any free port).
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// Read a personal access token from standard input (typed at a prompt, not echoed, on a terminal), check it, and store it.
        #[arg(long, conflicts_with_all = ["no_browser", "port"])]
        with_pat: bool,
        /// How long to wait for the browser to come back.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Show the signed-in user and their organizations (GetUserOrgsWithToken).
    Whoami {
        /// Print the gateway's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show who is signed in, where, and until when; never a secret.
    Status,
    /// Check the configuration, the token cache, discovery, the token
    /// endpoint, the credentials and the clock: one line each, exit 1 if any
    /// fails. Makes one fresh token request; prints no secret.
    Doctor,
    /// Revoke what can be revoked and delete the profile's cached tokens.
    Logout,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Prints a command line error and returns its exit code (0 for `--help`
/// and `--version`, 2 otherwise). An argument clap does not know, or a
/// subcommand it cannot find, is not printed back: it is as likely a secret
/// pasted in the wrong place (`filevine-auth login fvpat_…`) as a typo, and
/// the terminal's scrollback keeps what is printed.
pub fn usage_error(error: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            let code = if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { 2 } else { 0 };
            std::process::ExitCode::from(code)
        }
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => {
            eprintln!(
                "error: an unexpected argument was given (not shown: it may be a secret). A personal access token is \
                 read from standard input by `filevine-auth login --with-pat`, or from FILEVINE_PAT; see \
                 `filevine-auth --help`"
            );
            std::process::ExitCode::from(2)
        }
        _ => {
            let _ = error.print();
            std::process::ExitCode::from(2)
        }
    }
}

/// `90`, `90s`, `5m`, `1h`: a duration for --min-valid and --timeout.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 90s, 5m or 1h"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 minutes").unwrap_err().contains("unit"));
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-5m").unwrap_err().contains("not a duration"));
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
