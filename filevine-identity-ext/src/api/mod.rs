//! Calling the Filevine API with the provider's tokens.
//!
//! - [`BearerAuth`] is a [`reqwest_middleware::Middleware`] that puts
//!   `Authorization: Bearer <token>` on every request and, when the API
//!   answers 401, invalidates that token and retries once with a fresh one.
//!   Many requests failing with 401 for the same token share one refresh.
//!   A request whose body cannot be cloned (a stream) is not retried: its
//!   401 response is returned as it is.
//! - [`FilevineUser`] adds the `x-fv-orgid` and `x-fv-userid` headers that
//!   user-scoped calls need, for a whole client or for one request.
//! - [`FilevineApi`] bundles an authenticated client with the region's
//!   gateway URL and has typed helpers, starting with
//!   [`FilevineApi::get_user_orgs_with_token`].
//!
//! For a progenitor-generated client of another Filevine API, use
//! [`BearerAuth`] as its inner type and call [`BearerAuth::authorize`] in its
//! `pre` hook and [`BearerAuth::execute`] in its `exec` hook (see the
//! `progenitor_client` test).

use reqwest::{Response, StatusCode};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

mod auth;
mod error;
mod orgs;

pub use auth::{BearerAuth, FilevineUser, ORG_ID_HEADER, USER_ID_HEADER};
pub use error::ApiError;
pub use orgs::{GatewayUser, Org, UserId, UserOrgs};
pub use reqwest_middleware;

use crate::error::{ConfigError, DecodeError};
use crate::provider::TokenProvider;
use crate::redact::body_excerpt;

/// An authenticated client for the Filevine API gateway of a region.
///
/// ```no_run
/// use filevine_identity_ext::{FilevineApi, TokenProvider};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let api = FilevineApi::new(TokenProvider::from_env()?)?;
/// let orgs = api.get_user_orgs_with_token().await?;
/// let as_me = api.with_user(orgs.as_user_in(orgs.orgs[0].org_id));
/// let me = as_me.http().get(as_me.url("/fv-app/v2/Users/Me")).send().await?;
/// # drop(me);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FilevineApi {
    http: ClientWithMiddleware,
    auth: BearerAuth,
    gateway: String,
    reqwest: reqwest::Client,
}

impl FilevineApi {
    /// A client for the gateway of the provider's region.
    ///
    /// # Errors
    /// [`ConfigError::NoGateway`] when the region has no gateway URL (a
    /// custom authority without one): use [`FilevineApi::with_gateway`].
    pub fn new(provider: TokenProvider) -> Result<Self, ConfigError> {
        let gateway = provider
            .region()
            .gateway_url()
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::NoGateway { region: provider.region().to_string() })?;
        // The identity calls' timeouts; a client of your own through
        // `with_gateway` for other settings.
        crate::crypto::install_default_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(crate::http::DEFAULT_CONNECT_TIMEOUT)
            .timeout(API_TIMEOUT)
            .user_agent(crate::http::USER_AGENT)
            .build()
            .map_err(|e| ConfigError::HttpClient(crate::error::TransportError::new(e)))?;
        Ok(Self::with_gateway(provider, &gateway, client))
    }

    /// A client for an explicit gateway URL, sending with `client` (its
    /// timeouts, proxy and TLS settings). The bearer token goes to this
    /// gateway's origin only.
    pub fn with_gateway(provider: TokenProvider, gateway: &str, client: reqwest::Client) -> Self {
        let auth = BearerAuth::for_gateway(provider, gateway);
        Self {
            http: ClientBuilder::new(client.clone()).with(auth.clone()).build(),
            auth,
            gateway: gateway.trim_end_matches('/').to_owned(),
            reqwest: client,
        }
    }

    /// The same client, sending `x-fv-orgid` / `x-fv-userid` for `user`.
    #[must_use]
    pub fn with_user(&self, user: FilevineUser) -> Self {
        let auth = self.auth.clone().with_user(user);
        Self {
            http: ClientBuilder::new(self.reqwest.clone()).with(auth.clone()).build(),
            auth,
            gateway: self.gateway.clone(),
            reqwest: self.reqwest.clone(),
        }
    }

    /// The authenticated client. The bearer token goes only to the
    /// gateway's origin; requests elsewhere are sent without it.
    pub fn http(&self) -> &ClientWithMiddleware {
        &self.http
    }

    /// The middleware, for building your own client stack.
    pub fn auth(&self) -> &BearerAuth {
        &self.auth
    }

    /// The gateway base URL.
    pub fn gateway_url(&self) -> &str {
        &self.gateway
    }

    /// `path` under the gateway (`/fv-app/v2/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.gateway, path.trim_start_matches('/'))
    }

    /// `POST {gateway}/fv-app/v2/utils/GetUserOrgsWithToken`: the user and
    /// the orgs the token can reach. Every integration starts with it.
    ///
    /// # Errors
    /// An [`ApiError`] for a token failure, a second 401, another status,
    /// the network, or an unexpected body.
    pub async fn get_user_orgs_with_token(&self) -> Result<UserOrgs, ApiError> {
        let response = self.http.post(self.url("/fv-app/v2/utils/GetUserOrgsWithToken")).send().await?;
        decode(response).await
    }
}

/// Timeout of one API request made by [`FilevineApi::new`]'s client.
pub const API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Largest API response body the typed calls read.
pub const MAX_API_BODY: usize = 4 * 1024 * 1024;

/// A success body parsed as `T`, or the matching [`ApiError`].
async fn decode<T: serde::de::DeserializeOwned>(mut response: Response) -> Result<T, ApiError> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_API_BODY {
            return Err(ApiError::Decode {
                reason: format!("the response is larger than {MAX_API_BODY} bytes"),
                excerpt: body_excerpt(&body),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(ApiError::Unauthorized);
    }
    if !status.is_success() {
        return Err(ApiError::Status { status: status.as_u16(), body: body_excerpt(&body) });
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::Decode { reason: DecodeError::from(&e).to_string(), excerpt: body_excerpt(&body) })
}
