//! [`KeyError`]: why a client key could not be used. A leaf: it names the
//! file and the check, never key material.

use std::path::PathBuf;

/// A client key (`FILEVINE_CLIENT_KEY`, [`ClientKey`](super::ClientKey))
/// that cannot be used, or a signature that could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read the client key file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// The key is in a form or of a type the SDK does not sign with.
    #[error("the client key{} is not supported: {what}", from(.path))]
    Unsupported {
        /// The file, when the key came from one.
        path: Option<PathBuf>,
        /// What was found, and what would work.
        what: String,
    },
    /// The key is not what its form says (broken PEM, DER, JWK).
    #[error("the client key{} is malformed: {reason}", from(.path))]
    Malformed {
        /// The file, when the key came from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
    /// The key's own `kid` and the one configured differ.
    #[error("the client key{} has kid {in_key:?}, but the configured key id is {configured:?}", from(.path))]
    KidMismatch {
        /// The file, when the key came from one.
        path: Option<PathBuf>,
        /// `FILEVINE_CLIENT_KEY_ID` or the builder's key id.
        configured: String,
        /// The JWK's `kid`.
        in_key: String,
    },
    /// Signing failed (the operating system's random number generator, for
    /// a `jti` or an ECDSA nonce).
    #[error("cannot sign: {0}")]
    Signing(&'static str),
}

fn from(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
}

/// Equal when they say the same (an I/O error has no equality of its own),
/// so that [`ConfigError`](crate::error::ConfigError) keeps its `PartialEq`.
impl PartialEq for KeyError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for KeyError {}
