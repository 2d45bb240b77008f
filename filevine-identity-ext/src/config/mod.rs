//! Configuration: the environment variables the SDK reads, regions
//! (authority and API gateway), and scopes.
//!
//! Every builder takes explicit settings first, then the environment
//! ([`env`](mod@env)), then defaults; a set but malformed variable is an error that
//! names it, never a silent fallback.

pub mod env;
pub(crate) mod error;
pub mod region;
pub(crate) mod region_error;
pub mod scope;
pub(crate) mod settings;
