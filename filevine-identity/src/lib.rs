//! The Filevine Identity API client, generated from
//! `spec/filevine-identity.yaml` by progenitor.
//!
//! This crate is the wire: one method per operation, one type per schema.
//! Most applications want [`filevine-identity-ext`](../filevine_identity_ext/index.html)
//! instead, which adds token caching, regions, every grant behind one API and
//! typed errors on top of it.
//!
//! - [`Client::get_access_token`] — `POST /connect/token`, form-urlencoded,
//!   for the `personal_access_token`, `client_credentials`,
//!   `authorization_code` and `refresh_token` grants ([`types::TokenRequest`]).
//! - [`Client::get_openid_configuration`] — `GET /.well-known/openid-configuration`.
//! - [`Client::get_jwks`] — `GET /.well-known/openid-configuration/jwks`, the signing keys.
//! - [`Client::get_userinfo`] — `GET /connect/userinfo`, with a bearer token.
//! - [`Client::revoke_token`] — `POST /connect/revocation` (RFC 7009).
//! - [`Client::introspect_token`] — `POST /connect/introspect` (RFC 7662).
//! - [`operations`] — every operation with its method, path and security.
//! - [`servers`] — the identity servers the spec lists (US, Canada).
//!
//! Every [`Client`] carries [`ClientOptions`]: the credentials the spec's
//! security schemes ask for (a bearer token for userinfo, Basic client
//! credentials where accepted), sent only to the operations that name them,
//! and endpoint URLs from a discovery document whose paths differ from the
//! spec's.
//!
//! # Exchanging a personal access token
//!
//! ```no_run
//! use filevine_identity::{Client, ClientOptions, SecretString, servers, types};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(servers::US, ClientOptions::new());
//! let request = types::PersonalAccessTokenRequest {
//!     grant_type: types::PersonalAccessTokenRequestGrantType::PersonalAccessToken,
//!     token: SecretString::from(std::env::var("FILEVINE_PAT")?),
//!     scope: "fv.api.gateway.access filevine.v2.api.*".to_owned(),
//!     client_id: std::env::var("FILEVINE_CLIENT_ID").ok(),
//!     client_secret: std::env::var("FILEVINE_CLIENT_SECRET").ok().map(SecretString::from),
//! };
//! let token = client.get_access_token(&request.into()).await?.into_inner();
//! // `token.access_token` is a `SecretString`: printing it shows `[REDACTED]`.
//! println!("{} token, expires in {:?} s", token.token_type, token.expires_in);
//! let header = format!("Bearer {}", token.access_token.expose_secret());
//! # drop(header);
//! # Ok(())
//! # }
//! ```
//!
//! # Secrets
//!
//! Every field the spec marks as secret (`format: password`: the PAT, client
//! secrets, codes, PKCE verifiers, tokens) is a [`SecretString`], whose
//! `Debug` and `Display` print `[REDACTED]`.
//!
//! **progenitor-client's [`Error`] is not redacted.** Its `Display` and
//! `Debug` print raw response bodies (`InvalidResponsePayload`) and the whole
//! `reqwest::Response` with its headers (`UnexpectedResponse`). A malformed
//! token response can therefore put an access token into a log line. Do not
//! log these errors as they are: `filevine-identity-ext` wraps them in its own
//! error type, which never shows a body's secrets.
//!
//! # The signed-in user's claims
//!
//! ```no_run
//! use filevine_identity::{Client, ClientOptions, SecretString, servers};
//!
//! # async fn run(access_token: SecretString) -> Result<(), Box<dyn std::error::Error>> {
//! // The bearer token goes to userinfo only: the options are applied per
//! // operation, as the spec's `security` says.
//! let client = Client::new(servers::US, ClientOptions::new().bearer(access_token));
//! let me = client.get_userinfo().await?.into_inner();
//! println!("signed in as {} ({:?})", me.sub, me.email);
//! # Ok(())
//! # }
//! ```
//!
//! # Headers
//!
//! progenitor adds an `api-version` header to every request; the identity
//! endpoints are standard OAuth 2.0 endpoints that do not ask for it, so
//! code generation leaves it out (no request builds it).
//!
//! # Timeouts
//!
//! [`Client::new`] uses progenitor's defaults (15 s connect and total) and
//! panics if the TLS backend cannot be initialised; use
//! [`Client::new_with_client`] to bring a configured `reqwest::Client`.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![warn(missing_docs)]

mod hooks;
mod operation;
mod options;
mod secret;
pub mod signing;

// The generated module is never edited by hand; `cargo xtask codegen`
// rewrites it from the spec. Lints that the generator's style trips are
// allowed here rather than patched there.
#[allow(missing_debug_implementations, missing_docs, clippy::all, clippy::unwrap_used, rustdoc::all)]
#[rustfmt::skip]
mod generated;

pub use generated::*;
pub use hooks::{MAX_RESPONSE_BYTES, ResponseTooLarge, bounded};
pub use operation::{Host, Operation, Scheme};
pub use options::ClientOptions;
pub use secret::SecretString;
pub use signing::{CLIENT_ASSERTION_TYPE, ClientAssertion, DpopProver};
