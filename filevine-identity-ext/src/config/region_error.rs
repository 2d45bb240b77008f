//! [`RegionError`], at the bottom of the crate: the error types import it,
//! and it imports nothing of the crate.

pub(crate) const ACCEPTED: &str =
    "`us`, `ca`, `canada`, or an https:// authority URL (http:// only for loopback hosts)";

/// A region that could not be parsed or validated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {given:?}: {reason}; accepted: {ACCEPTED}")]
pub struct RegionError {
    /// What was being parsed, e.g. `region`, `FILEVINE_AUTHORITY`.
    pub what: String,
    /// The value as given.
    pub given: String,
    /// Why it was refused.
    pub reason: String,
}
