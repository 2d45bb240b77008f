//! Hand-written layer over the generated [`filevine_identity`] client.
//!
//! Token caching, one API over every grant, regions and OpenID Connect
//! arrive here; for now the crate re-exports the generated client.

pub use filevine_identity;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
