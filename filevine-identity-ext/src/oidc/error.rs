//! [`SignInError`]: everything that can go wrong signing a user in, one
//! variant per cause.

use std::time::Duration;

use crate::error::RandomnessUnavailable;
use crate::error::{ConfigError, Error, ErrorDetails};
use crate::oidc::discovery::DiscoveryError;
use crate::oidc::id_token::IdTokenError;

/// Everything that can go wrong signing a user in, one variant per cause.
/// Messages never contain a code, token, verifier, state or nonce.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The callback's `state` is missing or is not this sign-in's: the
    /// request did not come from the browser that started the sign-in
    /// (CSRF), or the session was lost. Start a new sign-in.
    #[error("the callback's state does not match the sign-in in progress; start a new sign-in")]
    StateMismatch,
    /// The provider redirected back with an error (`access_denied` when the
    /// user declined, `login_required`, …).
    #[error("the identity provider refused the sign-in: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider {
        /// The error code.
        error: String,
        /// The provider's description, cut short.
        description: Option<String>,
    },
    /// The callback names another issuer (RFC 9207): a mix-up attack or a
    /// misconfigured authority.
    #[error("the callback came from issuer {found:?}, but the sign-in was started with {expected:?}")]
    IssuerMismatch {
        /// The issuer the sign-in started with.
        expected: String,
        /// The callback's `iss`.
        found: String,
    },
    /// The provider promises `iss` in every authorization response
    /// (RFC 9207, `authorization_response_iss_parameter_supported`), and
    /// this callback has none: it did not come from this provider (a
    /// mix-up attack).
    #[error("the callback carries no iss, which this identity provider always sends; start a new sign-in")]
    MissingIssuer,
    /// The provider takes only pushed authorization requests
    /// (`require_pushed_authorization_requests`, RFC 9126 §5), and this
    /// client cannot push one: the provider names no
    /// `pushed_authorization_request_endpoint`, or pushing is turned off
    /// ([`OidcClientBuilder::pushed_authorization_requests`](crate::oidc::OidcClientBuilder::pushed_authorization_requests)).
    /// Nothing was sent.
    #[error("the identity provider requires pushed authorization requests (RFC 9126), and {reason}")]
    PushRequired {
        /// Why this client cannot push.
        reason: &'static str,
    },
    /// The callback has neither a code nor an error.
    #[error("the callback carries no authorization code")]
    MissingCode,
    /// The callback could not be parsed.
    #[error("the callback is malformed: {reason}")]
    MalformedCallback {
        /// What is wrong.
        reason: String,
    },
    /// The pending sign-in belongs to another client or provider than this
    /// one.
    #[error("the pending sign-in was started for {what} {found:?}, not {expected:?}")]
    PendingMismatch {
        /// `client` or `issuer`.
        what: &'static str,
        /// This client's value.
        expected: String,
        /// The pending sign-in's.
        found: String,
    },
    /// The sign-in took longer than allowed.
    #[error("the sign-in started {} s ago, longer than the {} s allowed; start a new sign-in", age.as_secs(), limit.as_secs())]
    Expired {
        /// How long ago it started.
        age: Duration,
        /// The limit.
        limit: Duration,
    },
    /// The provider refused the code (`invalid_grant`): it was used before,
    /// expired, or the PKCE verifier or redirect URI do not match.
    #[error("the identity provider refused the authorization code (HTTP {status}{details}); start a new sign-in")]
    CodeRejected {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// The token response has no ID token although `openid` was requested.
    #[error("the token response carries no ID token")]
    MissingIdToken,
    /// The ID token failed validation.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The provider's metadata could not be used.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// A token, userinfo or revocation request failed. (A configuration
    /// problem is always [`SignInError::Config`], never a `Token(Error::Config)`.)
    #[error(transparent)]
    Token(Error),
    /// The userinfo response is for another user than the ID token.
    #[error("the userinfo response is for subject {found:?}, not the signed-in {expected:?}")]
    SubjectMismatch {
        /// The ID token's `sub`.
        expected: String,
        /// The userinfo `sub`.
        found: String,
    },
    /// No `state`, `nonce` or PKCE verifier could be generated.
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
    /// The client is configured wrongly; nothing was sent.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
}

impl From<Error> for SignInError {
    /// One path per failure: a configuration error stays a configuration
    /// error, whichever layer found it.
    fn from(error: Error) -> Self {
        match error {
            Error::Config(config) => Self::Config(config),
            other => Self::Token(other),
        }
    }
}
