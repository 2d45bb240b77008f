//! [`BearerAuth`]: the middleware that puts the provider's bearer token on
//! requests, and [`FilevineUser`], the org and user a call acts as.

use std::fmt;

use filevine_identity::signing;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::error::Error;
use crate::grant::AccessToken;
use crate::provider::TokenProvider;

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
/// use filevine_identity_ext::api::FilevineUser;
/// let me = api
///     .http()?
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

/// Attaches the provider's bearer token to requests for the provider's API
/// gateway; on a 401 from it, refreshes once and retries.
///
/// Only a request whose scheme, host and port are the gateway's
/// ([`Region::gateway_url`](crate::config::region::Region::gateway_url)) gets the token: an
/// absolute URL from a response (a paging link, a document link) to any
/// other origin is sent without it, and its 401 refreshes nothing.
#[derive(Clone)]
pub struct BearerAuth {
    provider: TokenProvider,
    user: Option<FilevineUser>,
    /// The origin the token may go to (`None`: the region has no gateway,
    /// so the token goes nowhere).
    gateway: Option<url::Origin>,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth").field("provider", &self.provider).field("user", &self.user).finish()
    }
}

impl BearerAuth {
    /// Tokens from `provider`.
    pub fn new(provider: TokenProvider) -> Self {
        let gateway = provider.region().gateway_url().and_then(origin);
        Self { provider, user: None, gateway }
    }

    /// Tokens from `provider`, for an explicit gateway URL (the only origin
    /// they are attached to).
    pub fn for_gateway(provider: TokenProvider, gateway: &str) -> Self {
        Self { provider, user: None, gateway: origin(gateway) }
    }

    /// Whether `url` is on the gateway's origin (scheme, host and port).
    pub fn is_gateway(&self, url: &url::Url) -> bool {
        self.gateway.as_ref().is_some_and(|gateway| *gateway == url.origin())
    }

    /// Sends `x-fv-orgid` / `x-fv-userid` with every request (a request's
    /// own [`FilevineUser`] extension or explicit headers win).
    #[must_use]
    pub fn with_user(mut self, user: FilevineUser) -> Self {
        self.user = Some(user);
        self
    }

    /// The user whose `x-fv-orgid` / `x-fv-userid` it sends, if any.
    pub fn user(&self) -> Option<FilevineUser> {
        self.user
    }

    /// The provider the tokens come from.
    pub fn provider(&self) -> &TokenProvider {
        &self.provider
    }

    /// Sets `Authorization` (and the user headers, unless the request has
    /// its own) on `request`; returns the token it used.
    ///
    /// # Errors
    /// [`ConfigError::NotGateway`](crate::error::ConfigError::NotGateway) when the
    /// request is not for the gateway (nothing is attached), or when no
    /// token can be had.
    pub async fn authorize(&self, request: &mut Request) -> Result<AccessToken, Error> {
        if !self.is_gateway(request.url()) {
            return Err(crate::error::ConfigError::NotGateway {
                origin: request.url().origin().ascii_serialization(),
                gateway: self.provider.region().gateway_url().unwrap_or("none configured").to_owned(),
            }
            .into());
        }
        self.authorize_as(request, self.user).await
    }

    /// Attaches the token and user headers; the caller checked the origin.
    async fn authorize_as(&self, request: &mut Request, user: Option<FilevineUser>) -> Result<AccessToken, Error> {
        let token = self.provider.token().await?;
        let proof = token.dpop_proof(request.method(), request.url())?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, token.authorization_header());
        // A DPoP-bound token never goes without its proof (RFC 9449 §7.1).
        match proof {
            Some(proof) => headers.insert(signing::DPOP_HEADER, proof),
            None => headers.remove(signing::DPOP_HEADER),
        };
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

    /// [`execute`](Self::execute) for a generated gateway client's `exec`
    /// hook: the body is cut off with an error past
    /// [`MAX_API_BODY`](crate::api::MAX_API_BODY), and, for an operation
    /// that answers 204 or 207 (`no_content_as_null`), a 204 is read as a
    /// 207 whose body is `null`, so both are one result type (`None` for
    /// the 204).
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    pub async fn execute_for_generated(
        &self,
        client: &reqwest::Client,
        request: Request,
        no_content_as_null: bool,
    ) -> reqwest::Result<Response> {
        let response = self.execute(client, request).await?;
        let response = filevine_identity::bounded(response, crate::api::MAX_API_BODY);
        if !(no_content_as_null && response.status() == StatusCode::NO_CONTENT) {
            return Ok(response);
        }
        let mut null = http::Response::new("null");
        *null.status_mut() = StatusCode::MULTI_STATUS;
        *null.headers_mut() = response.headers().clone();
        null.headers_mut().insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        null.headers_mut().remove(reqwest::header::CONTENT_LENGTH);
        Ok(Response::from(null))
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
        // A nonce challenge (RFC 9449 §9) is answered with the same token
        // and a new proof carrying the nonce; the token is fine.
        let nonce = nonce_challenge(response);
        // Only the first 401 for a token invalidates it; the others find a
        // new token (or the refresh in flight) and share it.
        if let Some(sent) = sent
            && nonce.is_none()
        {
            self.provider.invalidate_header(sent);
        }
        let token = match self.provider.token().await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(%error, "the API answered 401 and no fresh token could be had");
                return None;
            }
        };
        match (&nonce, token.dpop_key()) {
            (Some(nonce), Some(key)) => {
                key.remember_nonce(retry.url(), nonce);
                tracing::debug!("the API asked for a DPoP nonce; retrying once with a new proof");
            }
            _ if sent.is_some_and(|sent| *sent == token.authorization_header()) => return None,
            _ => tracing::debug!("the API answered 401; retrying once with a fresh token"),
        }
        let proof = match token.dpop_proof(retry.method(), retry.url()) {
            Ok(proof) => proof,
            Err(error) => {
                tracing::warn!(%error, "no DPoP proof could be signed for the retry");
                return None;
            }
        };
        retry.headers_mut().insert(AUTHORIZATION, token.authorization_header());
        match proof {
            Some(proof) => retry.headers_mut().insert(signing::DPOP_HEADER, proof),
            None => retry.headers_mut().remove(signing::DPOP_HEADER),
        };
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
        if !self.is_gateway(request.url()) {
            // Another origin: sent as it is, without the token.
            tracing::debug!(origin = %request.url().origin().ascii_serialization(), "not the API gateway; sending without the bearer token");
            return next.run(request, extensions).await;
        }
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

/// The nonce of a resource server's `use_dpop_nonce` challenge.
fn nonce_challenge(response: &Response) -> Option<String> {
    if !signing::is_resource_nonce_challenge(response) {
        return None;
    }
    signing::dpop_nonce(response.headers())
}

/// The origin of a gateway URL, if it parses.
fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|url| url.origin())
}
