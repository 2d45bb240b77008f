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

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error, body_excerpt};
use crate::provider::TokenProvider;
use crate::token::AccessToken;

/// Header naming the Filevine org of a user-scoped call.
pub const ORG_ID_HEADER: HeaderName = HeaderName::from_static("x-fv-orgid");
/// Header naming the Filevine user (native id) of a user-scoped call.
pub const USER_ID_HEADER: HeaderName = HeaderName::from_static("x-fv-userid");

/// The org and user a call acts as (`x-fv-orgid`, `x-fv-userid`).
///
/// Set it for a whole client with [`BearerAuth::with_user`], or for one
/// request as an extension:
///
/// ```no_run
/// # async fn run(api: filevine_identity_ext::FilevineApi) -> Result<(), Box<dyn std::error::Error>> {
/// use filevine_identity_ext::FilevineUser;
/// let me = api
///     .http()
///     .get(api.url("/fv-app/v2/Users/Me"))
///     .with_extension(FilevineUser { org_id: 42, user_id: 1001 })
///     .send()
///     .await?;
/// # drop(me);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FilevineUser {
    /// The org id (`orgs[].orgId` from `GetUserOrgsWithToken`).
    pub org_id: i64,
    /// The user's native id (`user.userId.native`).
    pub user_id: i64,
}

/// Attaches the provider's bearer token to requests; on a 401, refreshes
/// once and retries.
#[derive(Clone)]
pub struct BearerAuth {
    provider: TokenProvider,
    user: Option<FilevineUser>,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth").field("provider", &self.provider).field("user", &self.user).finish()
    }
}

impl BearerAuth {
    /// Tokens from `provider`.
    pub fn new(provider: TokenProvider) -> Self {
        Self { provider, user: None }
    }

    /// Sends `x-fv-orgid` / `x-fv-userid` with every request (a request's
    /// own [`FilevineUser`] extension or explicit headers win).
    #[must_use]
    pub fn with_user(mut self, user: FilevineUser) -> Self {
        self.user = Some(user);
        self
    }

    /// The provider the tokens come from.
    pub fn provider(&self) -> &TokenProvider {
        &self.provider
    }

    /// Sets `Authorization` (and the user headers, unless the request has
    /// its own) on `request`; returns the token it used.
    ///
    /// # Errors
    /// When no token can be had.
    pub async fn authorize(&self, request: &mut Request) -> Result<AccessToken, Error> {
        self.authorize_as(request, self.user).await
    }

    async fn authorize_as(&self, request: &mut Request, user: Option<FilevineUser>) -> Result<AccessToken, Error> {
        let token = self.provider.token().await?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, token.authorization_header());
        if let Some(user) = user {
            if !headers.contains_key(ORG_ID_HEADER) {
                headers.insert(ORG_ID_HEADER, HeaderValue::from(user.org_id));
            }
            if !headers.contains_key(USER_ID_HEADER) {
                headers.insert(USER_ID_HEADER, HeaderValue::from(user.user_id));
            }
        }
        Ok(token)
    }

    /// Sends an already authorized request with `client`; on a 401,
    /// invalidates the token it carried, authorizes a copy with a fresh one
    /// and sends that once. For a progenitor client's `exec` hook.
    ///
    /// # Errors
    /// The transport's error. A 401 that a fresh token cannot fix is
    /// returned as the response.
    pub async fn execute(&self, client: &reqwest::Client, request: Request) -> reqwest::Result<Response> {
        let sent = request.headers().get(AUTHORIZATION).cloned();
        let retry = request.try_clone();
        let response = client.execute(request).await?;
        match self.retry_after_401(&response, sent.as_ref(), retry).await {
            Some(retry) => client.execute(retry).await,
            None => Ok(response),
        }
    }

    /// The request to send again after a 401, authorized with a fresh
    /// token; `None` when there is nothing to retry.
    async fn retry_after_401(
        &self,
        response: &Response,
        sent: Option<&HeaderValue>,
        retry: Option<Request>,
    ) -> Option<Request> {
        if response.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        let Some(mut retry) = retry else {
            tracing::debug!("401 for a request whose body cannot be cloned; not retrying");
            return None;
        };
        // Only the first 401 for a token invalidates it; the others find a
        // new token (or the refresh in flight) and share it.
        if let Some(sent) = sent {
            self.provider.invalidate_header(sent);
        }
        let token = match self.provider.token().await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(%error, "the API answered 401 and no fresh token could be had");
                return None;
            }
        };
        if sent.is_some_and(|sent| *sent == token.authorization_header()) {
            return None;
        }
        tracing::debug!("the API answered 401; retrying once with a fresh token");
        retry.headers_mut().insert(AUTHORIZATION, token.authorization_header());
        Some(retry)
    }
}

#[async_trait::async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let user = extensions.get::<FilevineUser>().copied().or(self.user);
        self.authorize_as(&mut request, user).await.map_err(reqwest_middleware::Error::middleware)?;
        let sent = request.headers().get(AUTHORIZATION).cloned();
        let retry = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        match self.retry_after_401(&response, sent.as_ref(), retry).await {
            Some(retry) => next.run(retry, extensions).await,
            None => Ok(response),
        }
    }
}

/// An error calling the Filevine API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No access token could be had.
    #[error("could not get an access token: {0}")]
    Token(#[from] Error),
    /// 401 even with a fresh token.
    #[error(
        "the Filevine API rejected the access token (HTTP 401) even after a refresh; check the scopes (`fv.api.gateway.access`) and the region"
    )]
    Unauthorized,
    /// Another non-success status.
    #[error("the Filevine API answered HTTP {status} (body: {body:?})")]
    Status {
        /// HTTP status.
        status: u16,
        /// The first bytes of the body, redacted.
        body: String,
    },
    /// The API could not be reached.
    #[error("could not reach the Filevine API: {message}")]
    Network {
        /// What failed.
        message: String,
    },
    /// A body that is not what the call expects.
    #[error("unexpected response from the Filevine API: {reason} (body starts: {excerpt:?})")]
    Decode {
        /// What was wrong.
        reason: String,
        /// The first bytes of the body, redacted.
        excerpt: String,
    },
}

impl From<reqwest_middleware::Error> for ApiError {
    fn from(error: reqwest_middleware::Error) -> Self {
        match error {
            reqwest_middleware::Error::Middleware(inner) => match inner.downcast::<Error>() {
                Ok(token_error) => Self::Token(token_error),
                Err(other) => Self::Network { message: crate::error::redact(&other.to_string(), 300) },
            },
            reqwest_middleware::Error::Reqwest(error) => {
                match crate::exchange::network_error(&error, std::time::Duration::ZERO) {
                    Error::Timeout { .. } => Self::Network { message: "the request timed out".into() },
                    other => Self::Network { message: other.to_string() },
                }
            }
        }
    }
}

/// What `GetUserOrgsWithToken` returns: the user and the orgs the token can
/// reach. Fields not named here are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserOrgs {
    /// The user.
    pub user: GatewayUser,
    /// The orgs.
    #[serde(default)]
    pub orgs: Vec<Org>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The user of a `GetUserOrgsWithToken` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayUser {
    /// The user's ids.
    pub user_id: UserId,
    /// Everything else (username, email, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A user's ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserId {
    /// The native user id, for `x-fv-userid`.
    pub native: i64,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An org the token can reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    /// The org id, for `x-fv-orgid`.
    pub org_id: i64,
    /// Everything else (name, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl UserOrgs {
    /// The [`FilevineUser`] for calls in `org_id` as this user.
    pub fn as_user_in(&self, org_id: i64) -> FilevineUser {
        FilevineUser { org_id, user_id: self.user.user_id.native }
    }
}

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
    /// [`ConfigError::Invalid`] when the region has no gateway URL (a
    /// custom authority without one): use [`FilevineApi::with_gateway`].
    pub fn new(provider: TokenProvider) -> Result<Self, ConfigError> {
        let gateway = provider.region().gateway_url().map(str::to_owned).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "the region {} has no API gateway URL; use Region::custom_with_gateway or FilevineApi::with_gateway",
                provider.region()
            ))
        })?;
        Ok(Self::with_gateway(provider, &gateway, reqwest::Client::new()))
    }

    /// A client for an explicit gateway URL, sending with `client`.
    pub fn with_gateway(provider: TokenProvider, gateway: &str, client: reqwest::Client) -> Self {
        let auth = BearerAuth::new(provider);
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

    /// The authenticated client, for any call.
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

/// A success body parsed as `T`, or the matching [`ApiError`].
async fn decode<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let status = response.status();
    let body = response.bytes().await.map_err(|e| ApiError::Network { message: e.to_string() })?;
    if status == StatusCode::UNAUTHORIZED {
        return Err(ApiError::Unauthorized);
    }
    if !status.is_success() {
        return Err(ApiError::Status { status: status.as_u16(), body: body_excerpt(&body) });
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
        reason: format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()),
        excerpt: body_excerpt(&body),
    })
}
