//! The environment variables the SDK reads, and how it reads them.
//!
//! Every `from_env` function has a twin that takes a lookup function
//! (`env(...)` on the builders), so tests and applications with their own
//! configuration source can supply variables without touching the process
//! environment (which is shared between threads and `unsafe` to write).

use crate::config::scope::Scopes;
use crate::error::ConfigError;

/// A personal access token.
pub const PAT: &str = "FILEVINE_PAT";
/// The OAuth client id.
pub const CLIENT_ID: &str = "FILEVINE_CLIENT_ID";
/// The OAuth client secret.
pub const CLIENT_SECRET: &str = "FILEVINE_CLIENT_SECRET";
/// A file holding the personal access token, re-read when it changes
/// ([`FileCredentials`](crate::grant::FileCredentials)).
pub const PAT_FILE: &str = "FILEVINE_PAT_FILE";
/// A file holding the OAuth client secret (or two lines during a
/// changeover, newer first), re-read when it changes.
pub const CLIENT_SECRET_FILE: &str = "FILEVINE_CLIENT_SECRET_FILE";
/// A file with the client's private key (PEM or JWK), for `private_key_jwt`
/// instead of `FILEVINE_CLIENT_SECRET`.
pub const CLIENT_KEY: &str = "FILEVINE_CLIENT_KEY";
/// The key id (`kid`) the client key is registered under.
pub const CLIENT_KEY_ID: &str = "FILEVINE_CLIENT_KEY_ID";
/// `true`: ask for DPoP-bound tokens (RFC 9449).
pub const DPOP: &str = "FILEVINE_DPOP";
/// Space-separated scopes.
pub const SCOPES: &str = "FILEVINE_SCOPES";
/// A region (`us`, `ca`, `canada`) or an authority URL.
pub const REGION: &str = "FILEVINE_REGION";
/// A custom authority URL; wins over [`REGION`].
pub const AUTHORITY: &str = "FILEVINE_AUTHORITY";
/// The API gateway of a custom [`AUTHORITY`] (the US and Canada regions
/// know theirs).
pub const GATEWAY: &str = "FILEVINE_GATEWAY";
/// The partner app's redirect URI.
pub const REDIRECT_URI: &str = "FILEVINE_REDIRECT_URI";
/// The partner app's post-logout redirect URI.
pub const POST_LOGOUT_REDIRECT_URI: &str = "FILEVINE_POST_LOGOUT_REDIRECT_URI";
/// The environment variable naming the store: `memory`, `file:<dir>`, a
/// Redis URL (`redis://`, `redis+sentinel://`, `redis+cluster://`, and
/// their `rediss` forms) or a PostgreSQL URL (`postgres://`,
/// `postgresql://`).
pub const TOKEN_STORE: &str = "FILEVINE_TOKEN_STORE";
/// The environment variable holding the [`StoreEncryptionKeys`](crate::store::StoreEncryptionKeys): one
/// base64 key, or several separated by commas, the sealing key first.
pub const STORE_KEY: &str = "FILEVINE_STORE_KEY";

/// Looks up one variable by name.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A builder's source of configuration: the process environment or a
/// function the application gave it.
pub(crate) type EnvSource = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment. A variable that is not valid Unicode reads as
/// its lossy conversion, so the error that follows names it instead of
/// treating it as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// The scopes [`SCOPES`] names, if it is set and not blank.
/// A `true`/`false` variable (also `1`/`0`, `yes`/`no`, any case); unset
/// or empty is `false`.
pub(crate) fn flag(lookup: Lookup<'_>, name: &'static str) -> Result<bool, ConfigError> {
    let Some(value) = lookup(name).filter(|v| !v.trim().is_empty()) else { return Ok(false) };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::MalformedVar { name, reason: format!("{value:?} is neither true nor false") }),
    }
}

pub(crate) fn scopes(lookup: Lookup<'_>) -> Result<Option<Scopes>, ConfigError> {
    match lookup(SCOPES).filter(|v| !v.trim().is_empty()) {
        Some(list) => list
            .parse::<Scopes>()
            .map(Some)
            .map_err(|e| ConfigError::MalformedVar { name: SCOPES, reason: e.to_string() }),
        None => Ok(None),
    }
}

/// A fake environment of `(name, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn fake<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
}
