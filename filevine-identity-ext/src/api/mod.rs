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

use std::sync::{Arc, OnceLock};

use reqwest::{Response, StatusCode};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

mod auth;
mod error;
mod orgs;

pub use auth::{BearerAuth, FilevineUser, ORG_ID_HEADER, USER_ID_HEADER};
pub use error::ApiError;
pub use orgs::{GatewayUser, Org, UserId, UserOrgs};
pub use reqwest_middleware;

use filevine_identity::SecretString;

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
/// let me = as_me.http()?.get(as_me.url("/fv-app/v2/Users/Me")).send().await?;
/// # drop(me);
/// # Ok(()) }
/// ```
///
/// Building one sends nothing and builds no HTTP client (whose TLS roots cost
/// milliseconds): [`FilevineApi::new`]'s client is built by the first
/// request, and shared by every clone and [`with_user`](Self::with_user).
#[derive(Debug, Clone)]
pub struct FilevineApi {
    auth: BearerAuth,
    gateway: String,
    transport: Transport,
    /// The middleware stack over the transport, made on first use.
    http: Arc<OnceLock<ClientWithMiddleware>>,
}

/// The reqwest client under the middleware: the caller's, or the SDK's
/// API settings, built on the first request.
#[derive(Debug, Clone)]
enum Transport {
    Ready(reqwest::Client),
    Deferred(Arc<OnceLock<reqwest::Client>>),
}

impl Transport {
    fn get(&self) -> Result<&reqwest::Client, ConfigError> {
        match self {
            Self::Ready(client) => Ok(client),
            Self::Deferred(cell) => {
                if let Some(built) = cell.get() {
                    return Ok(built);
                }
                // The identity calls' connect timeout, the API's own
                // request timeout; a client of your own through
                // `with_gateway` for other settings.
                crate::crypto::install_default_provider();
                tracing::debug!("building the API's HTTP client (TLS roots)");
                let built = reqwest::Client::builder()
                    .connect_timeout(crate::http::DEFAULT_CONNECT_TIMEOUT)
                    .timeout(API_TIMEOUT)
                    .user_agent(crate::http::USER_AGENT)
                    .build()
                    .map_err(|e| ConfigError::HttpClient(crate::error::TransportError::new(e)))?;
                Ok(cell.get_or_init(|| built))
            }
        }
    }
}

impl FilevineApi {
    /// A client for the gateway of the provider's region. Builds no HTTP
    /// client: the first request does.
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
        Ok(Self::with_transport(provider, &gateway, Transport::Deferred(Arc::default())))
    }

    /// A client for an explicit gateway URL, sending with `client` (its
    /// timeouts, proxy and TLS settings). The bearer token goes to this
    /// gateway's origin only.
    pub fn with_gateway(provider: TokenProvider, gateway: &str, client: reqwest::Client) -> Self {
        Self::with_transport(provider, gateway, Transport::Ready(client))
    }

    fn with_transport(provider: TokenProvider, gateway: &str, transport: Transport) -> Self {
        Self {
            auth: BearerAuth::for_gateway(provider, gateway),
            gateway: gateway.trim_end_matches('/').to_owned(),
            transport,
            http: Arc::default(),
        }
    }

    /// The same client, sending `x-fv-orgid` / `x-fv-userid` for `user`.
    #[must_use]
    pub fn with_user(&self, user: FilevineUser) -> Self {
        Self {
            auth: self.auth.clone().with_user(user),
            gateway: self.gateway.clone(),
            transport: self.transport.clone(),
            http: Arc::default(),
        }
    }

    /// The authenticated client, built on the first call. The bearer token
    /// goes only to the gateway's origin; requests elsewhere are sent
    /// without it.
    ///
    /// # Errors
    /// [`ApiError::Config`] when the HTTP client cannot be built (no TLS
    /// backend); tried again on the next call.
    pub fn http(&self) -> Result<&ClientWithMiddleware, ApiError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let client = self.transport.get()?.clone();
        Ok(self.http.get_or_init(|| ClientBuilder::new(client).with(self.auth.clone()).build()))
    }

    /// The HTTP client calls to the gateway are sent with (its timeouts
    /// and TLS settings; built on first use), for a generated client of
    /// the gateway that sends with it too.
    ///
    /// # Errors
    /// The client could not be built.
    pub fn reqwest_client(&self) -> Result<reqwest::Client, ConfigError> {
        Ok(self.transport.get()?.clone())
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
        let response = self.http()?.post(self.url("/fv-app/v2/utils/GetUserOrgsWithToken")).send().await?;
        decode(response).await
    }

    /// `POST {gateway}/identity/user` (Create User Invite, in the Identity
    /// API's spec): creates a user in Filevine Identity and invites them,
    /// acting as the user of [`with_user`](Self::with_user) (its org and
    /// user ids go in `x-fv-orgid` / `x-fv-userid`). Sent through the
    /// generated client, with the provider's token (and DPoP proof), the
    /// identity calls' body bound, and one retry with a fresh token after a
    /// 401.
    ///
    /// ```no_run
    /// use filevine_identity_ext::{FilevineApi, TokenProvider};
    /// use filevine_identity_ext::api::identity::{CreateUserRequest, FilevineProductType};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let api = FilevineApi::new(TokenProvider::from_env()?)?;
    /// let orgs = api.get_user_orgs_with_token().await?;
    /// let as_me = api.with_user(orgs.as_user_in(orgs.orgs[0].org_id));
    /// let invite = CreateUserRequest {
    ///     tenant_id: "6f9619ff-8b86-d011-b42d-00c04fc964ff".parse()?,
    ///     email: Some("ada@example.com".to_owned()),
    ///     first_name: Some("Ada".to_owned()),
    ///     last_name: "Lovelace".to_owned(),
    ///     products: vec![FilevineProductType::Filevine],
    ///     reference_object: None,
    /// };
    /// let created = as_me.create_user_invite(&invite).await?;
    /// println!("invited {:?}", created.user_id);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ApiError::UserRequired`] without a user (nothing is sent);
    /// [`ApiError::Status`] for a 400 (validation) or 403, and the other
    /// [`ApiError`]s of any call.
    pub async fn create_user_invite(
        &self,
        invite: &identity::CreateUserRequest,
    ) -> Result<identity::CreateUserResponse, ApiError> {
        const CALL: &str = "create_user_invite";
        let user = self.auth.user().ok_or(ApiError::UserRequired { call: CALL })?;
        let http = self.transport.get()?.clone();
        let gateway = url::Url::parse(&format!("{}/", self.gateway)).map_err(|_| ApiError::Decode {
            reason: "the gateway URL does not parse".into(),
            excerpt: String::new(),
        })?;
        let provider = self.auth.provider();
        let mut refreshed = false;
        loop {
            let token = provider.token().await?;
            let options = filevine_identity::ClientOptions::new().gateway(gateway.clone());
            let options = match token.dpop_key() {
                None => options.bearer(SecretString::from(token.expose_secret())),
                Some(key) => options
                    .dpop_token(SecretString::from(token.expose_secret()))
                    .dpop(std::sync::Arc::new(crate::jose::Prover { key: key.clone(), clock: token.clock().clone() })),
            };
            let client =
                filevine_identity::Client::new_with_client(provider.region().identity_url(), http.clone(), options);
            match client.create_user_invite(user.org_id, user.user_id, invite).await {
                Ok(created) => return Ok(created.into_inner()),
                Err(filevine_identity::Error::ErrorResponse(response))
                    if response.status() == StatusCode::UNAUTHORIZED =>
                {
                    if refreshed {
                        return Err(ApiError::Unauthorized);
                    }
                    // Only the first 401 for this token refreshes it.
                    provider.invalidate_token(&token);
                    refreshed = true;
                }
                Err(error) => return Err(generated_error(error)),
            }
        }
    }
}

/// The types of the Identity API's gateway calls, as generated from the
/// spec (`filevine_identity::types`).
pub mod identity {
    pub use filevine_identity::types::{CreateUserRequest, CreateUserResponse, FilevineProductType};
}

/// An error of a generated client's call as an [`ApiError`].
fn generated_error<E>(error: filevine_identity::Error<E>) -> ApiError {
    use filevine_identity::Error as E2;
    match error {
        E2::ErrorResponse(response) => ApiError::Status { status: response.status().as_u16(), body: String::new() },
        E2::UnexpectedResponse(response) => {
            ApiError::Status { status: response.status().as_u16(), body: String::new() }
        }
        E2::CommunicationError(error) | E2::ResponseBodyError(error) => ApiError::from(error),
        E2::InvalidResponsePayload(body, error) => {
            ApiError::Decode { reason: crate::redact::redact(&error.to_string(), 200), excerpt: body_excerpt(&body) }
        }
        E2::InvalidRequest(message) | E2::Custom(message) => {
            ApiError::Network { message: crate::redact::redact(&message, 300), source: None }
        }
        E2::InvalidUpgrade(error) => ApiError::from(error),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::region::Region, grant::Credentials, grant::PersonalAccessToken};

    fn api() -> FilevineApi {
        let provider = TokenProvider::builder()
            .env(|_| None)
            .region(Region::Us)
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_unit").unwrap()))
            .build()
            .unwrap();
        FilevineApi::new(provider).unwrap()
    }

    fn is_built(api: &FilevineApi) -> bool {
        match &api.transport {
            Transport::Deferred(cell) => cell.get().is_some(),
            Transport::Ready(_) => true,
        }
    }

    #[test]
    fn building_builds_no_http_client_and_the_first_use_builds_one_for_all() {
        let api = api();
        let as_user = api.with_user(FilevineUser { org_id: 1, user_id: 2 });
        let copy = api.clone();
        assert!(!is_built(&api) && !is_built(&as_user) && !is_built(&copy));
        api.http().unwrap();
        assert!(is_built(&api) && is_built(&as_user) && is_built(&copy), "one transport, shared");
        // The same stack on a second call, a stack of its own for another user.
        assert!(std::ptr::eq(api.http().unwrap(), copy.http().unwrap()));
        assert!(!std::ptr::eq(api.http().unwrap(), as_user.http().unwrap()));
    }
}
