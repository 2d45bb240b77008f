//! The crate's error types: [`Error`] for everything that can go wrong
//! getting or using a token, [`ConfigError`] for configuration mistakes
//! (nothing was sent), and [`ErrorDetails`], what the provider said.
//!
//! Causes are kept: a network failure carries the `reqwest::Error` (without
//! its URL) as its [`source`](std::error::Error::source), a body that does
//! not decode carries a [`DecodeError`]. Messages follow the Rust API
//! guidelines: a variant's `Display` does not repeat its source, so print
//! the whole chain (`{:#}` with anyhow, or [`Report`]) to see the cause.
//! Nothing displayed anywhere in a chain shows a secret.

use std::fmt;
use std::time::Duration;

pub use crate::config::error::ConfigError;
pub use crate::crypto::RandomnessUnavailable;
use crate::redact::{redact, scrub};
pub use crate::transport_error::TransportError;

/// Everything that can go wrong getting a token.
///
/// Match on the variant to decide what to do; `Display` says it in words.
/// No variant ever shows a secret: bodies are cut short and anything that
/// looks like a token is replaced by `[REDACTED]`.
///
/// ```
/// use filevine_identity_ext::Error;
/// use filevine_identity_ext::error::ErrorDetails;
///
/// let err = Error::SignInRequired { status: 400, details: ErrorDetails::oauth("invalid_grant", None) };
/// assert!(err.to_string().contains("sign in again"));
/// assert_eq!(err.status(), Some(400));
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The identity provider rejected the credentials or the grant (400 or
    /// 401: `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `invalid_scope`, `invalid_request`, or Filevine's error envelope).
    #[error(
        "the identity provider rejected the credentials (HTTP {status}{details}); check {}", details.what_to_check()
    )]
    InvalidCredentials {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// A refresh token was rejected (`invalid_grant` on a refresh): it expired
    /// or was revoked. The user has to sign in again.
    #[error("the refresh token was rejected (HTTP {status}{details}); the user must sign in again")]
    SignInRequired {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// 403: the credentials are valid but not allowed to do this.
    #[error(
        "the identity provider refused access (HTTP {status}{details}); the credentials are not allowed this, ask your Filevine administrator"
    )]
    Forbidden {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// 429: too many requests.
    #[error("the identity provider is rate limiting (HTTP {status}); retry after {}", retry_after.map_or_else(|| "a while".to_owned(), |d| format!("{} s", d.as_secs_f64().ceil())))]
    RateLimited {
        /// HTTP status.
        status: u16,
        /// How long the provider asked to wait (`Retry-After`), capped.
        retry_after: Option<Duration>,
    },
    /// 5xx: the identity provider (or a proxy before it) failed.
    #[error("the identity provider failed (HTTP {status}); this is usually temporary, retry later (body: {body:?})")]
    Server {
        /// HTTP status.
        status: u16,
        /// The first bytes of the body, redacted.
        body: String,
    },
    /// The provider could not be reached, or the connection broke. The
    /// transport's error is the [`source`](std::error::Error::source).
    #[error("could not reach the identity provider ({message}); check the network and the region or authority URL")]
    Network {
        /// What failed, in a few words (never a secret).
        message: String,
        /// The transport's error (refused, reset, DNS, TLS…), without its URL.
        #[source]
        source: Option<TransportError>,
    },
    /// No answer in time.
    #[error("the identity provider did not answer within {} s; retry later or raise the timeout", after.as_secs_f64())]
    Timeout {
        /// The limit that was hit.
        after: Duration,
    },
    /// An answer that is not what the spec describes.
    #[error("unexpected response from the identity provider{}: {reason} (body starts: {excerpt:?})", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    MalformedResponse {
        /// HTTP status, when known.
        status: Option<u16>,
        /// What was wrong with it.
        reason: String,
        /// The first bytes of the body, redacted.
        excerpt: String,
        /// Where decoding failed, when it did.
        #[source]
        source: Option<DecodeError>,
    },
    /// [`TokenProvider::token`](crate::provider::TokenProvider::token) was polled
    /// outside a Tokio runtime, and the provider was not built inside one
    /// either, so there is nowhere to run the refresh.
    #[error(
        "no Tokio runtime to run the token refresh on: call token() inside a runtime, or build the provider inside one"
    )]
    NoRuntime,
    /// A blocking call (`blocking::TokenProvider`, feature `blocking`) was
    /// made on a thread that runs an async runtime, where blocking would
    /// stall it: use the async provider there.
    #[error("blocking::TokenProvider::token() was called inside an async runtime; use the async TokenProvider there")]
    BlockingInsideRuntime,
    /// The SDK is configured wrongly; nothing was sent.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The token store failed. For a refresh token this is an error rather
    /// than a silent fallback: refreshing without the store could race
    /// another replica and lose the rotated token.
    #[error("token store: {0}")]
    Store(#[from] crate::store::contract::StoreError),
    /// The store has no token set under this key (the user never signed in
    /// here, signed out, or the entry was unreadable). Sign in again.
    #[error("no token set is stored under {key}; the user must sign in")]
    NotStored {
        /// The key's fingerprint.
        key: crate::store::key::StoreKey,
    },
    /// The tokens were forgotten (signed out) while a refresh ran, in this
    /// process or another sharing the store. What the refresh received was
    /// discarded, never stored (and revoked when the provider came from an
    /// [`OidcClient`](crate::oidc::OidcClient)). Sign in again.
    #[error("the session was signed out while its tokens were being refreshed; the user must sign in")]
    SignedOut,
    /// Every token the last refreshes brought expired before it could be
    /// handed out (the process was stopped, or the token store or the
    /// identity provider held each refresh longer than the token lives):
    /// none is returned past its deadline. Try again.
    #[error(
        "the tokens of {flights} refreshes in a row expired before they could be handed out (the process was paused, or the token store or identity provider was too slow); try again"
    )]
    ExpiredInFlight {
        /// How many refreshes.
        flights: u32,
    },
    /// The credential source gave another identity (a rewritten secret)
    /// between the moment the provider chose the store entry and its
    /// request, again and again: nothing was sent for it. Try again.
    #[error(
        "the credential source kept changing during the refresh (another identity each time it was read); try again"
    )]
    SourceChanged,
    /// A refresh brought an ID token that fails the checks OpenID Connect
    /// Core §12.2 asks of it (another user, another issuer or audience, a
    /// bad signature, expired, …). Its access token was never handed out;
    /// the session was ended everywhere (the stored set replaced by a
    /// deletion mark) and what the refresh brought was revoked. The user
    /// must sign in again. Only providers built by an
    /// [`OidcClient`](crate::oidc::OidcClient) check refreshed ID tokens.
    #[error(
        "a refresh brought an ID token that was refused: {reason}; the session was ended and the tokens it brought revoked, the user must sign in again"
    )]
    RefreshedIdTokenRefused {
        /// Which check it failed.
        reason: RefusedIdToken,
    },
}

/// Why an ID token a refresh brought was refused (see
/// [`Error::RefreshedIdTokenRefused`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedIdToken {
    /// It is about another user than the one who signed in.
    #[error("it is for subject {found:?}, not the signed-in {expected:?}")]
    OtherSubject {
        /// The signed-in user's `sub`.
        expected: String,
        /// The refreshed token's `sub`.
        found: String,
    },
    /// It was issued by another issuer than the sign-in's ID token (or the
    /// provider's).
    #[error("it was issued by {found:?}, not {expected:?}")]
    OtherIssuer {
        /// The issuer of the sign-in.
        expected: String,
        /// The refreshed token's `iss`.
        found: String,
    },
    /// It is not meant for this client (`aud`, or `azp` with several
    /// audiences).
    #[error("it is meant for {found:?}, not for client {expected:?}")]
    OtherAudience {
        /// This client's id.
        expected: String,
        /// The refreshed token's `aud` (and `azp`).
        found: Vec<String>,
    },
    /// Any other check (signature, algorithm, expiry, `at_hash`, a `nonce`
    /// or `auth_time` unlike the sign-in's, a malformed token).
    #[error("{reason}")]
    Invalid {
        /// The check that failed, in words.
        reason: String,
    },
}

/// Where a JSON body stopped matching what was expected: the category and
/// position from `serde_json`, never its message (which can quote a value
/// from the body, such as a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{category} error at line {line} column {column}")]
pub struct DecodeError {
    /// `syntax`, `data` (wrong shape), `eof` or `io`.
    pub category: &'static str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl From<&serde_json::Error> for DecodeError {
    fn from(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let category = match error.classify() {
            Category::Io => "io",
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
        };
        Self { category, line: error.line(), column: error.column() }
    }
}

/// Displays an error with every cause in its chain, `: `-separated, as
/// `anyhow`'s `{:#}` does. For `tracing` fields and one-line reports.
///
/// ```
/// use filevine_identity_ext::error::Report;
///
/// let err = std::io::Error::other("disk full");
/// assert_eq!(Report(&err).to_string(), "disk full");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// `text` from a server or a user (a display name, an issuer, a message)
/// made safe to print to a terminal or a log viewer: without control
/// characters (escape sequences, bells; a line break or tab becomes a
/// space) and without characters that show as nothing or turn the text
/// around them (bidirectional controls, zero-width characters). The SDK's
/// own errors already quote server text this way.
///
/// ```
/// use filevine_identity_ext::error::printable;
///
/// assert_eq!(printable("Ada \u{1b}[2JLovelace"), "Ada [2JLovelace");
/// assert_eq!(printable("plain"), "plain");
/// ```
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    crate::redact::printable(text)
}

impl Error {
    /// The HTTP status, where there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::InvalidCredentials { status, .. }
            | Self::SignInRequired { status, .. }
            | Self::Forbidden { status, .. }
            | Self::RateLimited { status, .. }
            | Self::Server { status, .. } => Some(*status),
            Self::MalformedResponse { status, .. } => *status,
            Self::Network { .. }
            | Self::Timeout { .. }
            | Self::NoRuntime
            | Self::BlockingInsideRuntime
            | Self::Config(_)
            | Self::Store(_)
            | Self::NotStored { .. }
            | Self::SignedOut
            | Self::ExpiredInFlight { .. }
            | Self::SourceChanged
            | Self::RefreshedIdTokenRefused { .. } => None,
        }
    }

    /// A 200 response whose content is unusable (the token type, the
    /// lifetime, the token itself).
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::MalformedResponse { status: Some(200), reason: reason.into(), excerpt: String::new(), source: None }
    }

    /// Whether trying again later can succeed without changing anything:
    /// network errors, timeouts, 5xx, 429. Never for rejected credentials.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Network { .. }
                | Self::Timeout { .. }
                | Self::Server { .. }
                | Self::RateLimited { .. }
                | Self::ExpiredInFlight { .. }
        )
    }

    /// Whether the identity provider refused a token request because it
    /// carried no DPoP proof (RFC 9449): `invalid_dpop_proof`, or an
    /// OAuth error whose description names DPoP (oidc-provider answers a
    /// DPoP-bound client's unproven request with `invalid_grant`, "DPoP proof
    /// JWT not provided"). Asked only of a request sent without a proof, so
    /// the worst a wrong guess costs is one request signed with a proof.
    pub(crate) fn demands_dpop(&self) -> bool {
        let details = match self {
            Self::InvalidCredentials { details, .. }
            | Self::SignInRequired { details, .. }
            | Self::Forbidden { details, .. } => details,
            _ => return false,
        };
        match details.code.as_deref() {
            Some("invalid_dpop_proof") => true,
            Some("invalid_request" | "invalid_grant" | "invalid_client" | "unauthorized_client") => {
                details.description.as_deref().is_some_and(|d| d.to_ascii_lowercase().contains("dpop"))
            }
            _ => false,
        }
    }

    /// Whether the user has to sign in again: the refresh token was
    /// rejected, there is no stored token set, or it was signed out.
    pub fn needs_sign_in(&self) -> bool {
        matches!(
            self,
            Self::SignInRequired { .. }
                | Self::NotStored { .. }
                | Self::SignedOut
                | Self::RefreshedIdTokenRefused { .. }
        )
    }
}

impl Error {
    /// Replaces every occurrence of the given secrets (the ones a request
    /// carried) in the error's text. Pattern redaction catches what looks
    /// like a token; this catches a server echoing exactly what it was sent.
    pub(crate) fn scrub(self, secrets: &[&str]) -> Self {
        let clean = |text: String| scrub(text, secrets);
        let clean_details = |details: ErrorDetails| ErrorDetails {
            code: details.code.map(clean),
            description: details.description.map(clean),
            messages: details.messages.into_iter().map(clean).collect(),
        };
        match self {
            Self::InvalidCredentials { status, details } => {
                Self::InvalidCredentials { status, details: clean_details(details) }
            }
            Self::SignInRequired { status, details } => {
                Self::SignInRequired { status, details: clean_details(details) }
            }
            Self::Forbidden { status, details } => Self::Forbidden { status, details: clean_details(details) },
            Self::Server { status, body } => Self::Server { status, body: clean(body) },
            // The transport's error carries no response content.
            Self::Network { message, source } => Self::Network { message: clean(message), source },
            Self::MalformedResponse { status, reason, excerpt, source } => {
                Self::MalformedResponse { status, reason: clean(reason), excerpt: clean(excerpt), source }
            }
            other @ (Self::RateLimited { .. }
            | Self::Timeout { .. }
            | Self::NoRuntime
            | Self::BlockingInsideRuntime
            | Self::Config(_)
            | Self::Store(_)
            | Self::NotStored { .. }
            | Self::SignedOut
            | Self::ExpiredInFlight { .. }
            | Self::SourceChanged
            | Self::RefreshedIdTokenRefused { .. }) => other,
        }
    }
}

/// What the provider said about an error: RFC 6749 §5.2 fields, or the
/// messages of Filevine's error envelope. Redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    /// RFC 6749 error code, e.g. `invalid_grant`.
    pub code: Option<String>,
    /// RFC 6749 `error_description`.
    pub description: Option<String>,
    /// The `message`s of Filevine's `errors` list.
    pub messages: Vec<String>,
}

impl ErrorDetails {
    /// What a person should check after a rejection, from what the
    /// provider said: a partner app that signs users in has no personal
    /// access token to check, a PAT exchange has one.
    pub fn what_to_check(&self) -> &'static str {
        match self.code.as_deref() {
            Some("invalid_client" | "unauthorized_client") => "the client id and its secret or key",
            Some("invalid_scope") => "the requested scopes",
            Some("invalid_token") => "the access token: it expired or was revoked",
            Some("invalid_grant") => "the personal access token, code or refresh token that was sent",
            _ => "the personal access token, client id and secret, and the requested scopes",
        }
    }

    /// Details with an RFC 6749 code and description.
    pub fn oauth(code: &str, description: Option<&str>) -> Self {
        Self { code: Some(code.to_owned()), description: description.map(str::to_owned), messages: Vec::new() }
    }

    pub(crate) fn from_body(body: &filevine_identity::types::TokenError) -> Self {
        Self {
            code: body.error.as_deref().map(|s| redact(s, 100)),
            description: body.error_description.as_deref().map(|s| redact(s, 300)),
            messages: body.errors.iter().filter_map(|e| e.message.as_deref()).map(|s| redact(s, 300)).take(5).collect(),
        }
    }
}

impl fmt::Display for ErrorDetails {
    /// `: invalid_grant: The refresh token expired` or `: Invalid PAT`; empty
    /// when the provider said nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        for message in &self.messages {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorDetails};

    #[test]
    fn a_demand_for_dpop_is_recognised_and_nothing_else_is() {
        let refused = |code: &str, description: Option<&str>| Error::InvalidCredentials {
            status: 400,
            details: ErrorDetails::oauth(code, description),
        };
        assert!(refused("invalid_dpop_proof", None).demands_dpop());
        assert!(refused("invalid_grant", Some("DPoP proof JWT not provided")).demands_dpop());
        assert!(
            Error::SignInRequired {
                status: 400,
                details: ErrorDetails::oauth("invalid_grant", Some("DPoP proof JWT not provided"))
            }
            .demands_dpop()
        );
        assert!(!refused("invalid_grant", Some("refresh token is expired")).demands_dpop());
        assert!(!refused("invalid_grant", None).demands_dpop());
        assert!(!refused("server_error", Some("dpop")).demands_dpop());
        assert!(!Error::Server { status: 500, body: "invalid_dpop_proof".into() }.demands_dpop());
    }
}
