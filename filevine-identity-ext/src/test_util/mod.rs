//! A Filevine Identity server on 127.0.0.1, for tests — yours and ours.
//!
//! Enabled by the `test-util` feature (`test-server` is an alias). It serves the token endpoint for
//! every grant exactly as the spec describes (form body in, JSON out,
//! Filevine's envelope or RFC 6749 errors, Basic or form client
//! authentication), the discovery document, the whole OpenID Connect
//! sign-in (an authorization endpoint that signs a configured [`TestUser`]
//! in without a page, ID tokens signed RS512 or RS256 with `nonce`, `aud`,
//! `azp`, `iss` and `at_hash`, the JWKS, userinfo, revocation,
//! introspection and end session: everything its discovery document
//! advertises; see [`TestServer::add_sign_in_client`]), and a
//! tiny API gateway stub that accepts only tokens this server issued. It
//! counts requests per grant, issues tokens with short lifetimes on demand,
//! and injects failures: any status, the Filevine envelope, RFC 6749 errors,
//! delays, dropped connections and garbage bodies.
//!
//! ```
//! use filevine_identity_ext::test_util::{Failure, TestServer};
//! use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start().await?;
//! server.add_personal_access_token("fvpat_test");
//!
//! let provider = TokenProvider::builder()
//!     .region(server.region())
//!     .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_test")?))
//!     .build()?;
//! let token = provider.token().await?;
//! assert!(server.is_valid_access_token(token.expose_secret()));
//! assert_eq!(server.grant_requests("personal_access_token"), 1);
//!
//! // The next token request fails with Filevine's 403 envelope.
//! server.fail_next(Failure::filevine_envelope(403, "Forbidden"));
//! # Ok(()) }
//! ```

//!
//! The folder, floor by floor: `model.rs` (the data), `failure.rs`,
//! `response.rs`, `proofs.rs`; `state.rs`; the endpoints (`clients.rs`,
//! `server.rs`, `signin.rs`, `device.rs`, `par.rs`, `gateway.rs`);
//! `test_server.rs` on top. This file only names them.

mod clients;
mod device;
mod failure;
mod gateway;
mod model;
mod par;
mod proofs;
mod response;
mod server;
mod signin;
mod state;
mod test_server;

pub use failure::{ExpiresIn, Failure};
pub use model::{
    GatewayRequest, IdTokenAlgorithm, PushedRequests, RecordedRequest, RefreshedIdToken, SIGNING_KEY_ID, TestUser,
};
pub use test_server::{HeldResponses, TestServer};
