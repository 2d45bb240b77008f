//! Partner sign-in with Filevine: OpenID Connect with the authorization
//! code flow, PKCE and the client secret, the way Filevine's partner guide
//! and sample apps do it.
//!
//! - [`OidcClient`] (configured with [`OidcClientBuilder`]) starts a sign-in
//!   ([`OidcClient::authorization_request`]), completes it from the callback
//!   ([`OidcClient::complete_sign_in`]), and hands the tokens to a
//!   [`TokenProvider`](crate::provider::TokenProvider) that keeps them fresh
//!   ([`OidcClient::token_provider`], [`OidcClient::stored_session`]).
//! - [`OidcClient::device_authorization`]: device sign-in (RFC 8628) for a
//!   terminal without a browser.
//! - [`discovery`]: the provider's metadata, checked and cached.
//!
//! One file per part: `client.rs` (the type and what every call shares),
//! `flow.rs` (the authorization code flow), `device.rs`, `session.rs` (the
//! provider after a sign-in, sign-out), `endpoints.rs` (userinfo,
//! revocation, introspection, end session).
//! - [`IdTokenClaims`], [`UserInfo`]: who signed in.
//! - [`SignInError`]: one variant per way a sign-in fails.
//!
//! ```text
//! authorization_request ──► browser ──► Filevine ──► callback
//!        │ PendingSignIn (server-side session)            │
//!        └──────────────────────► complete_sign_in ◄──────┘
//!                                   state, iss, code exchange (PKCE),
//!                                   ID token (JWKS, iss, aud, nonce, exp)
//! ```

mod builder;
mod cache;
mod claims;
mod client;
mod client_auth;
pub(crate) mod device;
pub mod discovery;
mod endpoints;
mod error;
mod flow;
pub(crate) mod id_token;
mod introspection;
pub(crate) mod jwks;
pub(crate) mod logout;
mod par;
pub(crate) mod pkce;
mod probe;
mod refreshed;
mod session;
mod signin;

pub use crate::secret::DeviceCode;
pub use builder::{DEFAULT_MAX_STALE, DEFAULT_METADATA_TTL, DEFAULT_SIGN_IN_TIMEOUT, OidcClientBuilder};
pub use claims::{IdTokenClaims, ProfileClaims, UserInfo};
pub use client_auth::ClientAuthMethod;
pub use device::{DEFAULT_DEVICE_INTERVAL, DeviceAuthorization, SLOW_DOWN_STEP};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use error::SignInError;
pub use id_token::{DEFAULT_LEEWAY, IdTokenError};
pub use introspection::TokenIntrospection;
pub use logout::{BackChannelLogout, DEFAULT_MAX_LOGOUT_TOKEN_AGE, LoggedOut, LogoutError, LogoutNotice};
pub use pkce::{PkceCodeChallenge, PkceCodeVerifier, RandomnessUnavailable};
pub use probe::{Probe, probe};
pub use signin::{
    AuthorizationOptions, AuthorizationRequest, AuthorizationResponse, CsrfToken, Nonce, PendingSignIn, RedirectUrl,
    SignedIn,
};

pub use client::OidcClient;
pub use endpoints::EndSessionRequest;
