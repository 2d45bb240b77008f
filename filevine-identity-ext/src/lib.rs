//! Filevine Identity for applications: credentials in, valid bearer tokens
//! out.
//!
//! This crate sits on the generated [`filevine_identity`] client (the wire)
//! and adds what every integration otherwise writes by hand:
//!
//! - **[`TokenProvider`]** — a cache that hands out valid access tokens,
//!   refreshes them ahead of expiry (a hard margin and a jittered soft
//!   window), makes exactly one request however many tasks ask at once, and
//!   never takes a lock on the hot path.
//! - **[`Credentials`]** — one API over every grant: personal access token
//!   (optionally with the integration's client id and secret), client
//!   credentials, refresh token, and a [`TokenSet`] from the authorization
//!   code flow.
//! - **[`OidcClient`]** — partner sign-in with Filevine: OpenID Connect
//!   discovery, the authorization code flow with PKCE and the client secret,
//!   ID token validation (RS512, JWKS with key rotation), userinfo,
//!   revocation and sign-out; the tokens then feed a [`TokenProvider`].
//! - **[`Region`]** — US, Canada or a custom authority, with the API gateway
//!   that goes with it; from code or from `FILEVINE_REGION` /
//!   `FILEVINE_AUTHORITY`.
//! - **[`FilevineApi`]** and **[`BearerAuth`]** — an authenticated
//!   `reqwest-middleware` client for the API gateway: bearer tokens on every
//!   request, 401 → refresh once and retry, `x-fv-orgid` / `x-fv-userid`,
//!   and a typed `GetUserOrgsWithToken`.
//! - **[`Error`]** — one error type to match on, whose messages say what to
//!   do and never show a secret.
//! - **`test_server`** (feature `test-server`) — a real Filevine Identity
//!   server on 127.0.0.1 for your tests.
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
//! # Secrets
//!
//! PATs, client secrets, refresh, access and ID tokens live in redacting
//! types: `Debug` and `Display` print `[REDACTED]`, and reading the value is
//! an explicit `expose_secret()`. Error messages cut response bodies short
//! and replace anything that looks like a token. `tracing` events name grant
//! types, lifetimes and scopes, never values.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod api;
mod credentials;
mod discovery;
mod env;
mod error;
mod exchange;
mod id_token;
mod jitter;
mod jwks;
mod oidc;
mod pkce;
mod provider;
mod region;
mod retry;
mod scope;
mod signin;
mod token;

#[cfg(feature = "test-server")]
pub mod test_server;

pub use api::{
    ApiError, BearerAuth, FilevineApi, FilevineUser, GatewayUser, ORG_ID_HEADER, Org, USER_ID_HEADER, UserId, UserOrgs,
};
pub use credentials::{
    CLIENT_ID_VAR, CLIENT_SECRET_VAR, ClientId, ClientSecret, Credentials, PAT_VAR, PersonalAccessToken, RefreshToken,
    SCOPES_VAR,
};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use error::{ConfigError, Error, ErrorDetails};
pub use filevine_identity;
pub use filevine_identity::SecretString;
pub use id_token::{DEFAULT_LEEWAY, IdTokenClaims, IdTokenError};
pub use oidc::{
    ClientAuthMethod, DEFAULT_METADATA_TTL, DEFAULT_SIGN_IN_TIMEOUT, EndSessionRequest, OidcClient, OidcClientBuilder,
    POST_LOGOUT_REDIRECT_URI_VAR, REDIRECT_URI_VAR, UserInfo,
};
pub use pkce::{PkceCodeChallenge, PkceCodeVerifier};
pub use provider::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HARD_MARGIN, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SOFT_WINDOW, TokenFuture,
    TokenProvider, TokenProviderBuilder,
};
pub use region::{AUTHORITY_VAR, CANADA_GATEWAY, CustomRegion, REGION_VAR, Region, RegionError, US_GATEWAY};
pub use reqwest_middleware;
pub use retry::RetryPolicy;
pub use scope::{GATEWAY_SCOPES, PARTNER_APP_SCOPES, Scope, ScopeError, Scopes, ScopesError};
pub use signin::{
    AuthorizationOptions, AuthorizationRequest, AuthorizationResponse, CsrfToken, Nonce, PendingSignIn, RedirectUrl,
    SignInError, SignedIn,
};
pub use token::{AccessToken, ExpiryPolicy, IdToken, TokenSet};

/// Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing`).
/// Not part of the public API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use std::time::Instant;

    /// A token endpoint body: parsed as the spec's response, then turned into
    /// a token set. Must never panic; returns whether it was accepted.
    pub fn token_response(body: &[u8]) -> bool {
        let Ok(response) = serde_json::from_slice::<filevine_identity::types::TokenResponse>(body) else {
            return false;
        };
        match crate::TokenSet::from_response(response, Instant::now()) {
            Ok(set) => {
                let _ = set.access_token.scopes().len();
                let _ = format!("{set:?}");
                true
            }
            Err(error) => {
                let _ = error.to_string();
                false
            }
        }
    }

    /// An error body: parsed as the spec's error schema, mapped to details,
    /// and redacted as an excerpt. The excerpt is bounded.
    pub fn error_body(body: &[u8]) {
        if let Ok(parsed) = serde_json::from_slice::<filevine_identity::types::TokenError>(body) {
            let details = crate::error::ErrorDetails::from_body(&parsed);
            let _ = crate::Error::InvalidCredentials { status: 400, details }.to_string();
        }
        let excerpt = crate::error::body_excerpt(body);
        assert!(excerpt.chars().count() <= 201, "excerpt too long");
        let text = String::from_utf8_lossy(body);
        let _ = crate::error::redact(&text, 300);
    }

    /// A discovery document: parsed, its issuer as an authority, and the
    /// metadata checks; and the same bytes as a JWKS document.
    pub fn discovery(body: &[u8]) {
        if let Ok(config) = serde_json::from_slice::<filevine_identity::types::OpenIdConfiguration>(body) {
            let _ = crate::Region::custom(&config.issuer).map(|r| r.identity_url().len());
            let issuer = config.issuer.clone();
            match crate::ProviderMetadata::from_document(config, &issuer) {
                Ok(metadata) => assert!(!metadata.id_token_algorithms().is_empty(), "no algorithm accepted"),
                Err(error) => drop(error.to_string()),
            }
        }
        if let Ok(keys) = crate::jwks::KeySet::parse(body) {
            let _ = keys.find(Some("k"), "RS512");
            let _ = keys.find(None, "RS256");
        }
    }

    /// A sign-in callback (URL or query). A parsed `code` never shows in
    /// `Debug`.
    pub fn callback(text: &str) {
        match crate::AuthorizationResponse::parse(text) {
            Ok(response) => {
                let shown = format!("{response:?}");
                if let Some(code) = response.code.as_ref().filter(|c| c.expose_secret().len() >= 8) {
                    // The same text may also be in a field that is shown
                    // (`iss=…code…`); only the code field itself must hide it.
                    let shown_fields = [&response.iss, &response.error, &response.error_description];
                    let elsewhere =
                        shown_fields.iter().filter_map(|f| f.as_deref()).any(|f| f.contains(code.expose_secret()));
                    assert!(elsewhere || !shown.contains(code.expose_secret()), "the code leaked into Debug");
                }
            }
            Err(error) => drop(error.to_string()),
        }
    }

    /// An ID token: parsed, header-checked, and verified against a fixed
    /// RSA key (so the claim checks run on whatever the JOSE crate lets
    /// through). Must never panic.
    pub fn id_token(text: &str) {
        const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let Ok(parsed) = crate::id_token::parse(text) else { return };
        let algorithms = ["RS256".to_owned(), "RS384".to_owned(), "RS512".to_owned()];
        if parsed.check_header(&algorithms).is_err() {
            return;
        }
        let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_components(N, "AQAB") else { return };
        let nonce = crate::Nonce::generate().ok();
        let expect = crate::id_token::Expectations {
            issuer: "https://identity.filevine.io",
            client_id: "partner-app",
            algorithms: &algorithms,
            leeway: std::time::Duration::from_secs(5),
            nonce: nonce.as_ref(),
        };
        if let Err(error) = parsed.verify(&key, &expect, crate::id_token::unix_now()) {
            drop(error.to_string());
        }
    }

    /// User input: a region and a scope list.
    pub fn user_input(text: &str) {
        let _ = text.parse::<crate::Region>().map(|r| r.to_string());
        if let Ok(scopes) = text.parse::<crate::Scopes>() {
            let wire = scopes.to_string();
            assert_eq!(wire.parse::<crate::Scopes>().ok(), Some(scopes), "scopes round-trip");
        }
    }
}

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
