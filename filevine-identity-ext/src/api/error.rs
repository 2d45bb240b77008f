//! [`ApiError`]: what can go wrong calling the Filevine API.

use crate::error::{Error, TransportError};

/// An error calling the Filevine API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No access token could be had.
    #[error("could not get an access token: {0}")]
    Token(#[from] Error),
    /// 401 even with a fresh token.
    #[error(
        "the Filevine API rejected the access token (HTTP 401) even after a refresh; check the scopes (`fv.api.gateway.access`) and the region"
    )]
    Unauthorized,
    /// Another non-success status.
    #[error("the Filevine API answered HTTP {status} (body: {body:?})")]
    Status {
        /// HTTP status.
        status: u16,
        /// The first bytes of the body, redacted.
        body: String,
    },
    /// The API could not be reached, or the connection broke.
    #[error("could not reach the Filevine API ({message})")]
    Network {
        /// What failed, in a few words.
        message: String,
        /// The transport's error, without its URL.
        #[source]
        source: Option<TransportError>,
    },
    /// The HTTP client could not be built (on the first request: building
    /// a [`FilevineApi`](crate::api::FilevineApi) builds nothing).
    #[error("{0}")]
    Config(#[from] crate::error::ConfigError),
    /// A user-scoped call made without the requesting user (its
    /// `x-fv-orgid` / `x-fv-userid`): nothing was sent.
    #[error(
        "{call} acts as a user: call FilevineApi::with_user first (the org and user ids, e.g. from GetUserOrgsWithToken)"
    )]
    UserRequired {
        /// The call.
        call: &'static str,
    },
    /// A body that is not what the call expects.
    #[error("unexpected response from the Filevine API: {reason} (body starts: {excerpt:?})")]
    Decode {
        /// What was wrong.
        reason: String,
        /// The first bytes of the body, redacted.
        excerpt: String,
    },
}

impl From<reqwest_middleware::Error> for ApiError {
    fn from(error: reqwest_middleware::Error) -> Self {
        match error {
            reqwest_middleware::Error::Middleware(inner) => match inner.downcast::<Error>() {
                Ok(token_error) => Self::Token(token_error),
                Err(other) => Self::Network { message: crate::redact::redact(&other.to_string(), 300), source: None },
            },
            reqwest_middleware::Error::Reqwest(error) => Self::from(error),
        }
    }
}

impl From<reqwest::Error> for ApiError {
    fn from(error: reqwest::Error) -> Self {
        let message = if error.is_timeout() { "the request timed out" } else { "the request failed" };
        Self::Network { message: message.into(), source: Some(TransportError::new(error)) }
    }
}
