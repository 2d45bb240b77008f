//! Filevine Identity for applications: credentials in, valid bearer tokens
//! out.
//!
//! This crate sits on the generated [`filevine_identity`] client (the wire)
//! and adds what every integration otherwise writes by hand. The names at
//! the root are the ones most programs need; the rest lives in modules by
//! concern:
//!
//! | you want to… | start with |
//! |---|---|
//! | get access tokens for a PAT, client credentials or a refresh token | [`TokenProvider`], [`Credentials`] |
//! | choose US, Canada or a custom authority | [`Region`] ([`config::region`]) |
//! | sign partner-app users in with Filevine (OpenID Connect) | [`OidcClient`] ([`oidc`], feature `oidc`) |
//! | call the Filevine API with those tokens | [`FilevineApi`] ([`api`], feature `api`) |
//! | handle failures | [`Error`], [`ConfigError`], [`SignInError`] ([`error`]) |
//! | tune refresh, retries, timeouts | [`provider::TokenProviderBuilder`] |
//! | configure from the environment | [`config::env`] (variable names) |
//! | test against a real server on 127.0.0.1 | `test_util` (feature `test-util`) |
//!
//! # A token from a personal access token
//!
//! ```no_run
//! use filevine_identity_ext::{ClientId, ClientSecret, Credentials, PersonalAccessToken, Region, TokenProvider};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = TokenProvider::builder()
//!     .region(Region::Us)
//!     .credentials(
//!         Credentials::personal_access_token(PersonalAccessToken::new(std::env::var("FILEVINE_PAT")?)?)
//!             .with_client(ClientId::new("my-integration")?, ClientSecret::new(std::env::var("FILEVINE_CLIENT_SECRET")?)?),
//!     )
//!     .build()?;
//!
//! // Share `provider` (it is `Clone + Send + Sync`); every call returns a valid token.
//! let token = provider.token().await?;
//! let response = reqwest::Client::new()
//!     .post("https://api.filevine.io/fv-app/v2/utils/GetUserOrgsWithToken")
//!     .header(reqwest::header::AUTHORIZATION, token.authorization_header())
//!     .send()
//!     .await?;
//! # drop(response);
//! # Ok(()) }
//! ```
//!
//! Or configure everything from the environment (`FILEVINE_PAT`,
//! `FILEVINE_CLIENT_ID`, `FILEVINE_CLIENT_SECRET`, `FILEVINE_SCOPES`,
//! `FILEVINE_REGION`, `FILEVINE_AUTHORITY`): [`TokenProvider::from_env`].
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `aws-lc` | yes | TLS, ID token signatures, digests and the store seal through aws-lc-rs |
//! | `ring` | | the same through ring: no C build of aws-lc-sys (turn `aws-lc` off) |
//! | `oidc` | yes | partner sign-in: discovery, authorization code + PKCE, ID tokens, userinfo, revocation, introspection |
//! | `api` | yes | [`FilevineApi`] and the bearer-token middleware for the API gateway |
//! | `redis` | | `store::RedisStore`, a token store for replicas |
//! | `postgres` | | `store::PostgresStore`, a token store in PostgreSQL (sqlx, rustls) |
//! | `metrics` | | counters and latency through the `metrics` facade |
//! | `blocking` | | `blocking::TokenProvider`, for programs without an async runtime |
//! | `test-util` | | a loopback Filevine Identity server, a manual clock (for your tests) |
//!
//! A program that only needs tokens (a PAT, client credentials, a refresh
//! token) builds fastest with
//! `default-features = false, features = ["ring"]` (or `["aws-lc"]`).
//!
//! # Guarantees
//!
//! - [`TokenProvider::token`] never returns a token past its hard margin
//!   (60 s before expiry by default), whatever the runtime, its timers or
//!   the machine (a suspended laptop) did: every call checks the clock
//!   ([`time`]).
//! - However many tasks ask at once, one refresh request is made; it runs to
//!   the end even when every caller gives up (in a task of its own then), so
//!   a caller that gives up never loses a rotated refresh token.
//! - Secrets (PATs, client secrets, refresh, access and ID tokens, PKCE
//!   verifiers) live in redacting types: `Debug` and `Display` print
//!   `[REDACTED]`, and reading the value is an explicit `expose_secret()`.
//!   Error messages cut response bodies short and replace anything that
//!   looks like a token. `tracing` events name grant types, lifetimes and
//!   scopes, never values.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "aws-lc", feature = "ring")))]
compile_error!("filevine-identity-ext needs a crypto backend: enable its `aws-lc` feature (the default) or `ring`");

#[cfg(feature = "api")]
#[cfg_attr(docsrs, doc(cfg(feature = "api")))]
pub mod api;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod config;
pub mod crypto;
pub mod error;
pub mod grant;
pub mod jose;
pub mod metrics;
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub mod oidc;
pub mod provider;
pub mod store;
pub mod time;

mod http;
mod redact;
mod secret;
mod transport_error;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "api")]
pub use api::FilevineApi;
pub use config::region::Region;
pub use config::scope::Scopes;
pub use error::{ConfigError, Error};
pub use filevine_identity;
pub use grant::{AccessToken, ClientId, ClientSecret, Credentials, PersonalAccessToken, RefreshToken, TokenSet};
#[cfg(feature = "oidc")]
pub use oidc::{OidcClient, SignInError};
pub use provider::TokenProvider;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
