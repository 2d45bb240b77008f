//! [`ConfigError`]: a configuration mistake, found before anything is
//! sent. One variant per mistake, each naming the setting.

use std::time::Duration;

use crate::config::region_error::RegionError;
use crate::config::scope::ScopesError;
use crate::transport_error::TransportError;

/// The SDK was configured wrongly: a missing or malformed setting. Nothing
/// was sent. Each variant names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("environment variable {name} is not set{hint}")]
    MissingVar {
        /// The variable.
        name: &'static str,
        /// What else would do, e.g. ` (or set FILEVINE_CLIENT_ID and FILEVINE_CLIENT_SECRET)`.
        hint: &'static str,
    },
    /// An environment variable is set but unusable.
    #[error("environment variable {name} is malformed: {reason}")]
    MalformedVar {
        /// The variable.
        name: &'static str,
        /// Why (never the value if the variable is a secret).
        reason: String,
    },
    /// An invalid region or authority.
    #[error(transparent)]
    Region(#[from] RegionError),
    /// An invalid scope list.
    #[error(transparent)]
    Scopes(#[from] ScopesError),
    /// A client key (`FILEVINE_CLIENT_KEY`) or DPoP key that cannot be
    /// used; names the file and the check, never key material.
    #[error(transparent)]
    ClientKey(#[from] crate::jose::KeyError),
    /// A client authenticated with both a secret and a key, or a key
    /// without a client id.
    #[error("client authentication: {reason}")]
    ClientAuth {
        /// What is wrong.
        reason: &'static str,
    },
    /// A secret (PAT, client secret, refresh token) is empty or blank.
    #[error("the {what} is empty")]
    EmptySecret {
        /// Which secret.
        what: &'static str,
    },
    /// A client id that cannot be right.
    #[error("the client id {given:?} {reason}")]
    InvalidClientId {
        /// The id as given (not a secret).
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A redirect URI that cannot be registered with Filevine.
    #[error("invalid redirect URI {given:?}: {reason}")]
    InvalidRedirectUri {
        /// The URI as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PKCE code verifier that breaks RFC 7636 §4.1 (the value is never shown).
    #[error("invalid PKCE code verifier: {reason}")]
    InvalidPkceVerifier {
        /// Its length or character class, never its value.
        reason: String,
    },
    /// A token set handed to a provider without a refresh token: nothing
    /// could keep it fresh.
    #[error("the token set has no refresh token, so it cannot be kept fresh (request the `offline_access` scope)")]
    NoRefreshToken,
    /// A timeout or time limit of zero.
    #[error("{setting} must be longer than zero")]
    ZeroDuration {
        /// The setting, e.g. `request_timeout`.
        setting: &'static str,
    },
    /// `max_attempts(0)`: a request must be tried at least once.
    #[error("max_attempts must be at least 1")]
    ZeroAttempts,
    /// An ID token leeway over the limit.
    #[error("an ID token leeway of {} s is more than the {} s allowed; fix the clock instead", given.as_secs(), max.as_secs())]
    LeewayTooLarge {
        /// The leeway asked for.
        given: Duration,
        /// The largest allowed.
        max: Duration,
    },
    /// A client authentication method that sends a secret, without one.
    #[error("client authentication {method} needs a client secret (set FILEVINE_CLIENT_SECRET)")]
    SecretRequired {
        /// `client_secret_post` or `client_secret_basic`.
        method: &'static str,
    },
    /// [`FilevineApi::new`](crate::api::FilevineApi::new) for a region without a
    /// known API gateway.
    #[error(
        "the region {region} has no API gateway URL: set FILEVINE_GATEWAY (with FILEVINE_AUTHORITY), or use Region::custom_with_gateway or FilevineApi::with_gateway"
    )]
    NoGateway {
        /// The region.
        region: String,
    },
    /// Background refresh asked for outside a Tokio runtime.
    #[error("{feature} needs a Tokio runtime: build it inside one")]
    NoRuntime {
        /// What needs it.
        feature: &'static str,
    },
    /// The HTTP client could not be built (the TLS backend failed to
    /// initialise).
    #[error("the HTTP client could not be built")]
    HttpClient(#[source] TransportError),
    /// `FILEVINE_STORE_KEY` (or a key given in code) is not a 32-byte key.
    #[error("the token store encryption key is invalid: {reason}; generate one with `openssl rand -base64 32`")]
    InvalidStoreKey {
        /// What is wrong with it (never the value).
        reason: &'static str,
    },
    /// A previous key in `FILEVINE_STORE_KEY` (after the first comma) is
    /// not a 32-byte key.
    #[error("a previous token store encryption key (after the first in the list) is invalid: {reason}")]
    InvalidPreviousStoreKey {
        /// What is wrong with it (never the value).
        reason: &'static str,
    },
    /// The token store setting (`FILEVINE_TOKEN_STORE`) is not usable.
    #[error("the token store setting is invalid: {reason}")]
    TokenStore {
        /// What is wrong with it (never a password).
        reason: String,
    },
    /// The token store refuses unencrypted token sets (a PostgreSQL server
    /// off this machine, whose logs show what is written) and no store
    /// encryption key is set.
    #[error(
        "the {store} token store is not on this machine and needs encrypted token sets: set FILEVINE_STORE_KEY (32 bytes, base64) or store_encryption_key(…), or allow it on the store (PostgresStore::allow_unencrypted)"
    )]
    StoreNeedsEncryption {
        /// The store's kind.
        store: &'static str,
    },
    /// A refresh-token provider with a store needs the application to name
    /// the key (the user's session), because the refresh token it would be
    /// derived from changes with every refresh.
    #[error("a store for a refresh token needs a key: call store_key(StoreKey::session(…)) with the user's session id")]
    StoreKeyRequired,
    /// A registry of providers was asked for a refresh token's provider: it
    /// changes with every refresh, so it cannot key one.
    #[error(
        "a provider registry takes a personal access token or client credentials with a secret; for a signed-in user use TokenProviders::session"
    )]
    RegistryCredentials,
    /// A credentials file could not be used. Names the file, never its
    /// content.
    #[error("credentials file {}: {reason}", path.display())]
    CredentialsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A credential source gave no credentials.
    #[error("the credential source gave no credentials")]
    NoSourceCredentials,
    /// A provider was given a credential source and other credentials (fixed
    /// ones, a token set or a stored session): the source would be asked
    /// for what the others name.
    #[error("a credential source cannot be combined with {other}: set credential_source or the credentials, not both")]
    SourceWithCredentials {
        /// What else was set.
        other: &'static str,
    },
    /// A provider registry bounded to zero providers.
    #[error("max_providers must be at least 1")]
    ZeroProviders,
    /// The store lease is shorter than the total timeout of a refresh: a
    /// slow but live refresh would be raced by another process.
    #[error("the store lease time ({} s) must be at least the total timeout ({} s)", lease.as_secs_f64(), total_timeout.as_secs_f64())]
    LeaseTooShort {
        /// The lease time configured.
        lease: Duration,
        /// The total timeout of a refresh.
        total_timeout: Duration,
    },
    /// A request for another origin than the API gateway was to carry the
    /// bearer token; it was not attached.
    #[error("refusing to send the bearer token to {origin}: it goes only to the API gateway ({gateway})")]
    NotGateway {
        /// The request's origin.
        origin: String,
        /// The configured gateway.
        gateway: String,
    },
    /// A provider reading its token set from a store was built without one.
    #[error("stored_session() reads the token set from a store: configure one with store()")]
    NoStore,
    /// A token set handed to a builder with a store must be saved before
    /// the provider is used; `build()` cannot wait for that.
    #[error("a token set with a store is saved when the provider is built: use build_saved().await instead of build()")]
    UnsavedTokenSet,
    /// An origin allowed for discovered endpoints is not a usable origin.
    #[error("invalid endpoint origin {given:?}: {reason}")]
    InvalidEndpointOrigin {
        /// The value as given.
        given: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The runtime of a blocking provider (feature `blocking`) could not be
    /// started.
    #[error("cannot start the blocking provider's runtime: {reason}")]
    Runtime {
        /// The operating system's reason.
        reason: String,
    },
}
