//! [`TransportError`]: what `reqwest` said when a request could not be
//! sent, without the URL. A leaf: the errors of `error.rs` and
//! `config/error.rs` both carry it.

use std::fmt;
use std::sync::Arc;

/// A transport failure from `reqwest`, kept as the source of
/// [`Error::Network`](crate::error::Error::Network). Its URL is removed (it names the endpoint, which the
/// message already does, and a user-supplied URL could carry a secret).
#[derive(Debug, Clone)]
pub struct TransportError(Arc<reqwest::Error>);

impl TransportError {
    pub(crate) fn new(error: reqwest::Error) -> Self {
        Self(Arc::new(error.without_url()))
    }

    /// The `reqwest` error.
    pub fn reqwest(&self) -> &reqwest::Error {
        &self.0
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for TransportError {
    /// Two transport errors are equal only if they are the same error.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TransportError {}
