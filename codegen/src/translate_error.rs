//! The error of the 3.1 → 3.0 translation: a JSON pointer and a reason. A
//! leaf, so that the translation and the document walk both name it.

/// A construct that cannot be brought to OpenAPI 3.0 faithfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pointer}: {reason}")]
pub struct TranslateError {
    /// JSON pointer (RFC 6901) of the offending node, e.g.
    /// `/components/schemas/Pet/properties/tag`.
    pub pointer: String,
    /// What is wrong and, where there is one, what to write instead.
    pub reason: String,
}

impl TranslateError {
    pub(crate) fn new(pointer: &str, reason: impl Into<String>) -> Self {
        Self { pointer: if pointer.is_empty() { "/".to_owned() } else { pointer.to_owned() }, reason: reason.into() }
    }
}
