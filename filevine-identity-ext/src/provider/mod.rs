//! [`TokenProvider`]: a valid access token on every call, one request per
//! refresh however many callers ask at once.
//!
//! The folder, floor by floor: `sync.rs`, `jitter.rs`, `retry.rs`,
//! `outcome.rs`, `cache.rs`, `drive.rs`, `hooks.rs`, `wire.rs`,
//! `derived_key.rs` and `link.rs` at the bottom; `engine.rs` (the state a
//! provider's clones share); the steps of a refresh on it (`flight.rs`,
//! `through_store.rs`, `id_check.rs`, `background.rs`); `handle.rs` (the
//! public [`TokenProvider`]); `builder.rs`; `registry.rs`. This file only
//! names them. How a call is served and when a token is refreshed:
//! `engine.rs`.

mod assemble;
mod background;
mod builder;
mod cache;
mod derived_key;
mod drive;
mod engine;
mod flight;
mod handle;
mod hooks;
mod id_check;
mod jitter;
mod link;
mod outcome;
mod registry;
mod request;
mod retry;
mod sync;
mod through_store;
mod wire;

pub use crate::http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
pub use builder::{DEFAULT_HARD_MARGIN, DEFAULT_SOFT_WINDOW, DEFAULT_STORE_IDLE_TIMEOUT, TokenProviderBuilder};
pub use handle::{TokenFuture, TokenProvider};
pub use hooks::Forgotten;
#[cfg(feature = "oidc")]
pub(crate) use hooks::{CheckIdToken, Received, Verdict};
pub use registry::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PROVIDERS, TokenProviders, TokenProvidersBuilder};
pub use retry::RetryPolicy;
#[cfg(feature = "oidc")]
pub(crate) use wire::{Resolve, Resolved};
