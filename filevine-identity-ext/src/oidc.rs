//! [`OidcClient`]: partner sign-in with Filevine (OpenID Connect
//! authorization code flow with PKCE and a client secret), userinfo,
//! revocation and sign-out.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use filevine_identity::types::{AuthorizationCodeRequest, AuthorizationCodeRequestGrantType};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::credentials::{CLIENT_ID_VAR, CLIENT_SECRET_VAR, ClientId, ClientSecret, RefreshToken};
use crate::discovery::{DiscoveryCache, DiscoveryError, ProviderMetadata};
use crate::env::{EnvSource, Lookup};
use crate::error::{ConfigError, Error};
use crate::id_token::{DEFAULT_LEEWAY, Expectations, IdTokenClaims, unix_now};
use crate::jwks::JwksCache;
use crate::pkce::PkceCodeVerifier;
use crate::provider::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, TokenProvider, TokenProviderBuilder};
use crate::region::Region;
use crate::scope::{Scope, Scopes};
use crate::signin::{
    AuthorizationOptions, AuthorizationRequest, AuthorizationResponse, CsrfToken, Nonce, PendingSignIn, RedirectUrl,
    SignInError, SignedIn,
};
use crate::token::{AccessToken, ExpiryPolicy, IdToken, TokenSet};

/// Environment variable holding the redirect URI.
pub const REDIRECT_URI_VAR: &str = "FILEVINE_REDIRECT_URI";
/// Environment variable holding the post-logout redirect URI.
pub const POST_LOGOUT_REDIRECT_URI_VAR: &str = "FILEVINE_POST_LOGOUT_REDIRECT_URI";

/// How long discovery documents and signing keys are cached by default.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(3600);
/// How long a sign-in may take, from the authorization request to the
/// callback, by default.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest clock skew allowed on ID token times.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Least time between two JWKS fetches caused by unknown key ids.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Largest userinfo or revocation response read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How the client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_id` and `client_secret` in the form body (what Filevine's
    /// documentation shows).
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A public client: `client_id` in the form, no secret (PKCE only).
    None,
}

impl ClientAuthMethod {
    /// The name in discovery documents (`client_secret_post`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::None => "none",
        }
    }

    /// The method for a client with or without a secret, from the
    /// provider's `token_endpoint_auth_methods_supported`: `client_secret_post`
    /// when offered, else `client_secret_basic` (also when the provider does
    /// not say: it is the OAuth 2.0 default).
    ///
    /// ```
    /// use filevine_identity_ext::ClientAuthMethod;
    ///
    /// let offered = ["client_secret_basic".to_owned(), "client_secret_post".to_owned()];
    /// assert_eq!(ClientAuthMethod::choose(&offered, true).unwrap(), ClientAuthMethod::ClientSecretPost);
    /// assert_eq!(ClientAuthMethod::choose(&[], true).unwrap(), ClientAuthMethod::ClientSecretBasic);
    /// assert_eq!(ClientAuthMethod::choose(&offered, false).unwrap(), ClientAuthMethod::None);
    /// assert!(ClientAuthMethod::choose(&["private_key_jwt".to_owned()], true).is_err());
    /// ```
    ///
    /// # Errors
    /// [`DiscoveryError::Unsupported`] when the provider offers neither.
    pub fn choose(offered: &[String], has_secret: bool) -> Result<Self, DiscoveryError> {
        let offers = |name: &str| offered.iter().any(|m| m == name);
        if !has_secret {
            Ok(Self::None)
        } else if offered.is_empty() {
            Ok(Self::ClientSecretBasic)
        } else if offers("client_secret_post") {
            Ok(Self::ClientSecretPost)
        } else if offers("client_secret_basic") {
            Ok(Self::ClientSecretBasic)
        } else {
            Err(DiscoveryError::Unsupported {
                what: "client_secret_post or client_secret_basic client authentication",
                offered: offered.to_vec(),
            })
        }
    }
}

/// The claims the userinfo endpoint returned: the standard ones typed, the
/// rest (`tenant`, …) in [`UserInfo::additional`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Subject; checked against the ID token's.
    pub sub: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail address is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Preferred user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub additional: serde_json::Map<String, serde_json::Value>,
}

/// Where to send the user to sign out of Filevine, and the `state` to
/// expect back at the post-logout redirect URI.
pub struct EndSessionRequest {
    /// Redirect the user's browser here. It carries the ID token as
    /// `id_token_hint`, so it is not printed by `Debug`.
    pub url: Url,
    /// Compare with the `state` the post-logout redirect brings back.
    pub state: CsrfToken,
}

impl fmt::Debug for EndSessionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndSessionRequest")
            .field("endpoint", &crate::signin::endpoint_only(&self.url))
            .field("state", &self.state)
            .finish()
    }
}

/// A partner app's OpenID Connect client for Filevine: sends users to sign
/// in, completes the callback, validates ID tokens, and hands the tokens to
/// a [`TokenProvider`] that keeps them fresh.
///
/// Cheap to clone; discovery and signing keys are fetched on first use and
/// cached (1 hour by default).
///
/// ```no_run
/// use filevine_identity_ext::{AuthorizationOptions, ClientId, ClientSecret, OidcClient, RedirectUrl, Region};
///
/// # async fn run(callback_url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let client = OidcClient::builder()
///     .region(Region::Us)
///     .client_id(ClientId::new("partner-app")?)
///     .client_secret(ClientSecret::new(std::env::var("FILEVINE_CLIENT_SECRET")?)?)
///     .redirect_uri(RedirectUrl::new("https://localhost:7059/signin-oidc")?)
///     .build()?;
///
/// // /login: send the user to Filevine, keep `pending` in the server-side session.
/// let request = client.authorization_request(AuthorizationOptions::default()).await?;
/// let (redirect_to, pending) = (request.url, request.pending);
/// # drop(redirect_to);
///
/// // /signin-oidc: check the callback, exchange the code, validate the ID token.
/// let signed_in = client.complete_sign_in(callback_url, pending).await?;
/// println!("hello {}", signed_in.claims.sub);
///
/// // Access tokens from now on, refreshed (and the refresh token rotated) as needed.
/// let provider = client.token_provider(signed_in.token_set).await?.build()?;
/// let token = provider.token().await?;
/// # drop(token);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<Inner>,
}

struct Inner {
    region: Region,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    redirect_uri: RedirectUrl,
    post_logout_redirect_uri: Option<RedirectUrl>,
    scopes: Scopes,
    auth_method: Option<ClientAuthMethod>,
    leeway: Duration,
    sign_in_timeout: Duration,
    request_timeout: Duration,
    http: reqwest::Client,
    /// The same settings plus `Authorization: Basic …`, for
    /// `client_secret_basic` (the generated client cannot add a header).
    basic_http: Option<reqwest::Client>,
    discovery: DiscoveryCache,
    jwks: JwksCache,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("OidcClient")
            .field("region", &inner.region)
            .field("client_id", &inner.client_id)
            .field("client_secret", &inner.client_secret)
            .field("redirect_uri", &inner.redirect_uri.as_str())
            .field("scopes", &inner.scopes.to_string())
            .field("auth_method", &inner.auth_method)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// A builder; see [`OidcClientBuilder`].
    pub fn builder() -> OidcClientBuilder {
        OidcClientBuilder::default()
    }

    /// Everything from the environment: `FILEVINE_AUTHORITY` or
    /// `FILEVINE_REGION`, `FILEVINE_CLIENT_ID`, `FILEVINE_CLIENT_SECRET`,
    /// `FILEVINE_REDIRECT_URI`, `FILEVINE_POST_LOGOUT_REDIRECT_URI`,
    /// `FILEVINE_SCOPES`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing or malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().build()
    }

    /// The region (identity authority) this client signs in with.
    pub fn region(&self) -> &Region {
        &self.inner.region
    }

    /// The provider's checked metadata, from the cache or a fresh fetch.
    ///
    /// # Errors
    /// [`DiscoveryError`] when it cannot be fetched or fails a check.
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, DiscoveryError> {
        self.inner.discovery.get(&self.inner.http, self.inner.request_timeout).await
    }

    /// Starts a sign-in: the URL to redirect the user to and the
    /// [`PendingSignIn`] to keep server-side until the callback. Fresh
    /// `state`, `nonce` and PKCE verifier (S256) every time. When the scopes
    /// include `offline_access` and `options` sets no prompt, it sends
    /// `prompt=consent`, as OpenID Connect Core §11 requires for a refresh
    /// token.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] when the provider's metadata is unusable.
    pub async fn authorization_request(
        &self,
        options: AuthorizationOptions,
    ) -> Result<AuthorizationRequest, SignInError> {
        let metadata = self.metadata().await?;
        let inner = &self.inner;
        let pending = PendingSignIn {
            state: CsrfToken::generate()?,
            nonce: Nonce::generate()?,
            pkce_verifier: PkceCodeVerifier::generate()?,
            redirect_uri: inner.redirect_uri.clone(),
            scopes: inner.scopes.to_string(),
            issuer: metadata.issuer().to_owned(),
            client_id: inner.client_id.as_str().to_owned(),
            created_at: unix_now(),
        };
        let challenge = pending.pkce_verifier.challenge();
        let mut url = metadata.authorization_endpoint().clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", inner.client_id.as_str())
                .append_pair("redirect_uri", inner.redirect_uri.as_str())
                .append_pair("scope", &pending.scopes)
                .append_pair("state", pending.state.expose_secret())
                .append_pair("nonce", pending.nonce.expose_secret())
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", challenge.method());
            // OpenID Connect Core §11: a request for offline_access (a
            // refresh token) must carry prompt=consent unless the caller
            // chose another prompt.
            let offline = inner.scopes.contains("offline_access");
            match (&options.prompt, offline) {
                (Some(prompt), _) => {
                    query.append_pair("prompt", prompt);
                }
                (None, true) => {
                    query.append_pair("prompt", "consent");
                }
                (None, false) => {}
            }
            if let Some(hint) = &options.login_hint {
                query.append_pair("login_hint", hint);
            }
        }
        tracing::debug!(scopes = %pending.scopes, "starting a sign-in");
        Ok(AuthorizationRequest { url, pending })
    }

    /// Completes a sign-in from the callback (the URL the provider
    /// redirected to, or its query) and the saved [`PendingSignIn`]:
    /// checks `state` (constant time) and `iss`, turns a provider `error`
    /// into [`SignInError::Provider`], exchanges the code with the PKCE
    /// verifier and the client's credentials, and validates the ID token
    /// (signature, issuer, audience, expiry, nonce).
    ///
    /// # Errors
    /// One [`SignInError`] variant per cause; see its documentation.
    pub async fn complete_sign_in(&self, callback: &str, pending: PendingSignIn) -> Result<SignedIn, SignInError> {
        let response = AuthorizationResponse::parse(callback)?;
        // The state first: nothing in a callback that is not this browser's
        // is worth acting on, not even its error.
        match &response.state {
            Some(state) if pending.state.matches(state) => {}
            _ => return Err(SignInError::StateMismatch),
        }
        let metadata = self.metadata().await?;
        self.check_pending(&pending, &metadata)?;
        if let Some(iss) = &response.iss
            && iss != metadata.issuer()
        {
            return Err(SignInError::IssuerMismatch {
                expected: metadata.issuer().to_owned(),
                found: crate::error::redact(iss, 200),
            });
        }
        if let Some(error) = &response.error {
            return Err(SignInError::Provider {
                error: crate::error::redact(error, 100),
                description: response.error_description.as_deref().map(|d| crate::error::redact(d, 300)),
            });
        }
        let code = response.code.filter(|c| !c.is_empty()).ok_or(SignInError::MissingCode)?;
        let token_set = self.exchange_code(&metadata, code, &pending).await?;
        let id_token = token_set.id_token.as_ref().ok_or(SignInError::MissingIdToken)?;
        let claims = self.verify_with(&metadata, id_token, Some(&pending.nonce)).await?;
        tracing::info!(sub = %claims.sub, "signed in");
        Ok(SignedIn { token_set, claims })
    }

    /// Validates an ID token (e.g. one from a refresh) against the
    /// provider's keys and this client: signature, `iss`, `aud`/`azp`,
    /// `exp`/`iat`/`nbf` with the leeway, and the `nonce` when given.
    ///
    /// # Errors
    /// [`SignInError::IdToken`] naming the failed check, or
    /// [`SignInError::Discovery`].
    pub async fn verify_id_token(
        &self,
        id_token: &IdToken,
        nonce: Option<&Nonce>,
    ) -> Result<IdTokenClaims, SignInError> {
        let metadata = self.metadata().await?;
        self.verify_with(&metadata, id_token, nonce).await
    }

    /// A [`TokenProviderBuilder`] that starts from a sign-in's token set and
    /// refreshes at the discovered token endpoint with this client's
    /// credentials, storing each rotated refresh token. Add options
    /// (e.g. `background_refresh`) and `build()`.
    ///
    /// ID tokens that refreshes bring are kept as they come
    /// ([`TokenProvider::latest_id_token`]); validate one with
    /// [`OidcClient::verify_id_token`] before trusting its claims.
    ///
    /// # Errors
    /// [`SignInError::Discovery`], or [`SignInError::Config`] when the
    /// token endpoint is not a usable authority.
    pub async fn token_provider(&self, token_set: TokenSet) -> Result<TokenProviderBuilder, SignInError> {
        let metadata = self.metadata().await?;
        let method = self.auth_method(&metadata)?;
        let inner = &self.inner;
        let base = metadata.token_base();
        let region = if base == inner.region.identity_url() {
            inner.region.clone()
        } else {
            match inner.region.gateway_url() {
                Some(gateway) => Region::custom_with_gateway(base, gateway),
                None => Region::custom(base),
            }
            .map_err(ConfigError::from)?
        };
        Ok(TokenProvider::builder()
            .region(region)
            .token_set(token_set, inner.client_id.clone(), self.form_secret(method).cloned())
            .http_client(self.http_for(method)?.clone()))
    }

    /// The user's claims from the userinfo endpoint, checked to be about
    /// `subject` (the ID token's `sub`).
    ///
    /// # Errors
    /// [`SignInError::Discovery`] without a userinfo endpoint,
    /// [`SignInError::Token`] when the request fails (401 for an expired
    /// token), [`SignInError::SubjectMismatch`] for another user's claims.
    pub async fn userinfo(&self, access_token: &AccessToken, subject: &str) -> Result<UserInfo, SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.userinfo_endpoint().ok_or(DiscoveryError::MissingEndpoint("userinfo_endpoint"))?.clone();
        let request = self
            .inner
            .http
            .get(endpoint)
            .header(AUTHORIZATION, access_token.authorization_header())
            .header(reqwest::header::ACCEPT, "application/json");
        let body = self.send(request, &[access_token.expose_secret()]).await?;
        let info: UserInfo = serde_json::from_slice(&body).map_err(|e| {
            Error::MalformedResponse {
                status: Some(200),
                reason: format!("the userinfo response is not a JSON object with a sub ({:?} error)", e.classify()),
                excerpt: crate::error::body_excerpt(&body),
            }
            .scrub(&[access_token.expose_secret()])
        })?;
        if info.sub != subject {
            return Err(SignInError::SubjectMismatch { expected: subject.to_owned(), found: info.sub });
        }
        Ok(info)
    }

    /// Revokes a refresh token (RFC 7009), e.g. at sign-out.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] without a revocation endpoint,
    /// [`SignInError::Token`] when the provider refuses.
    pub async fn revoke_refresh_token(&self, token: &RefreshToken) -> Result<(), SignInError> {
        self.revoke(token.expose_secret(), "refresh_token").await
    }

    /// Revokes an access token (RFC 7009).
    ///
    /// # Errors
    /// As [`OidcClient::revoke_refresh_token`].
    pub async fn revoke_access_token(&self, token: &AccessToken) -> Result<(), SignInError> {
        self.revoke(token.expose_secret(), "access_token").await
    }

    /// The URL that signs the user out at Filevine (RP-initiated logout)
    /// and comes back to the post-logout redirect URI, if one is
    /// configured, with the returned `state`.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] when the provider has no end-session
    /// endpoint.
    pub async fn end_session_url(&self, id_token_hint: Option<&IdToken>) -> Result<EndSessionRequest, SignInError> {
        let metadata = self.metadata().await?;
        let mut url =
            metadata.end_session_endpoint().ok_or(DiscoveryError::MissingEndpoint("end_session_endpoint"))?.clone();
        let state = CsrfToken::generate()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", self.inner.client_id.as_str());
            if let Some(hint) = id_token_hint {
                query.append_pair("id_token_hint", hint.expose_secret());
            }
            if let Some(uri) = &self.inner.post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri.as_str());
            }
            query.append_pair("state", state.expose_secret());
        }
        Ok(EndSessionRequest { url, state })
    }

    fn check_pending(&self, pending: &PendingSignIn, metadata: &ProviderMetadata) -> Result<(), SignInError> {
        if pending.client_id != self.inner.client_id.as_str() {
            return Err(SignInError::PendingMismatch {
                what: "client",
                expected: self.inner.client_id.to_string(),
                found: pending.client_id.clone(),
            });
        }
        if pending.issuer != metadata.issuer() {
            return Err(SignInError::PendingMismatch {
                what: "issuer",
                expected: metadata.issuer().to_owned(),
                found: pending.issuer.clone(),
            });
        }
        let age = Duration::from_secs(unix_now().saturating_sub(pending.created_at));
        if age > self.inner.sign_in_timeout {
            return Err(SignInError::Expired { age, limit: self.inner.sign_in_timeout });
        }
        Ok(())
    }

    async fn exchange_code(
        &self,
        metadata: &ProviderMetadata,
        code: filevine_identity::SecretString,
        pending: &PendingSignIn,
    ) -> Result<TokenSet, SignInError> {
        let inner = &self.inner;
        let method = self.auth_method(metadata)?;
        let request = AuthorizationCodeRequest {
            grant_type: AuthorizationCodeRequestGrantType::AuthorizationCode,
            code: code.clone(),
            redirect_uri: pending.redirect_uri.as_str().to_owned(),
            client_id: inner.client_id.as_str().to_owned(),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
            code_verifier: Some(pending.pkce_verifier.secret().clone()),
        };
        let client = filevine_identity::Client::new_with_client(metadata.token_base(), self.http_for(method)?.clone());
        // Not retried: a code is good for one exchange, and a retry after a
        // lost response would only earn `invalid_grant`.
        let result =
            crate::exchange::exchange(&client, &request.into(), false, &ExpiryPolicy::default(), inner.request_timeout)
                .await;
        let secrets = [
            code.expose_secret(),
            pending.pkce_verifier.expose_secret(),
            inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret),
        ];
        match result.map_err(|e| e.scrub(&secrets)) {
            Ok(set) => Ok(set),
            Err(Error::InvalidCredentials { status, details }) if details.code.as_deref() == Some("invalid_grant") => {
                Err(SignInError::CodeRejected { status, details })
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn verify_with(
        &self,
        metadata: &ProviderMetadata,
        id_token: &IdToken,
        nonce: Option<&Nonce>,
    ) -> Result<IdTokenClaims, SignInError> {
        let parsed = crate::id_token::parse(id_token.expose_secret())?;
        parsed.check_header(metadata.id_token_algorithms())?;
        let key = self.inner.jwks.key(&self.inner.http, metadata.jwks_uri(), parsed.kid(), parsed.alg()).await?;
        let expect = Expectations {
            issuer: metadata.issuer(),
            client_id: self.inner.client_id.as_str(),
            algorithms: metadata.id_token_algorithms(),
            leeway: self.inner.leeway,
            nonce,
        };
        Ok(parsed.verify(&key, &expect, unix_now())?)
    }

    fn auth_method(&self, metadata: &ProviderMetadata) -> Result<ClientAuthMethod, SignInError> {
        let inner = &self.inner;
        let method = match inner.auth_method {
            Some(method) => method,
            None => ClientAuthMethod::choose(
                &metadata.document().token_endpoint_auth_methods_supported,
                inner.client_secret.is_some(),
            )?,
        };
        if method != ClientAuthMethod::None && inner.client_secret.is_none() {
            return Err(ConfigError::Invalid(format!("{} needs a client secret", method.as_str())).into());
        }
        Ok(method)
    }

    /// The client secret to put in a form body: only for
    /// `client_secret_post` (Basic sends it in the header, public clients
    /// have none).
    fn form_secret(&self, method: ClientAuthMethod) -> Option<&ClientSecret> {
        match method {
            ClientAuthMethod::ClientSecretPost => self.inner.client_secret.as_ref(),
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::None => None,
        }
    }

    fn http_for(&self, method: ClientAuthMethod) -> Result<&reqwest::Client, SignInError> {
        match method {
            ClientAuthMethod::ClientSecretBasic => self
                .inner
                .basic_http
                .as_ref()
                .ok_or_else(|| ConfigError::Invalid("client_secret_basic needs a client secret".into()).into()),
            ClientAuthMethod::ClientSecretPost | ClientAuthMethod::None => Ok(&self.inner.http),
        }
    }

    async fn revoke(&self, token: &str, hint: &str) -> Result<(), SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.revocation_endpoint().ok_or(DiscoveryError::MissingEndpoint("revocation_endpoint"))?.clone();
        let method = self.auth_method(&metadata)?;
        let inner = &self.inner;
        let mut form = vec![("token", token), ("token_type_hint", hint)];
        // With Basic, the client is named in the header.
        if method != ClientAuthMethod::ClientSecretBasic {
            form.push(("client_id", inner.client_id.as_str()));
        }
        if let Some(secret) = self.form_secret(method) {
            form.push(("client_secret", secret.expose_secret()));
        }
        let request = self.http_for(method)?.post(endpoint).form(&form);
        let secret = inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret);
        self.send(request, &[token, secret]).await?;
        tracing::debug!(token_type = hint, "revoked a token");
        Ok(())
    }

    /// Sends a hand-written request (userinfo, revocation: not in the
    /// spec) and returns the body of a 2xx, or a typed, scrubbed error.
    async fn send(&self, request: reqwest::RequestBuilder, secrets: &[&str]) -> Result<Vec<u8>, Error> {
        crate::exchange::send_bounded(request, MAX_RESPONSE_BYTES, self.inner.request_timeout)
            .await
            .map_err(|e| e.scrub(secrets))
    }
}

/// Configures an [`OidcClient`]. Validated in [`OidcClientBuilder::build`],
/// which sends nothing.
///
/// Each setting falls back to the environment, then to a default: region
/// (`FILEVINE_AUTHORITY` / `FILEVINE_REGION`, else US), client id
/// (`FILEVINE_CLIENT_ID`, required), client secret
/// (`FILEVINE_CLIENT_SECRET`, optional: without one the client is public),
/// redirect URI (`FILEVINE_REDIRECT_URI`, required), post-logout redirect
/// URI (`FILEVINE_POST_LOGOUT_REDIRECT_URI`, optional), scopes
/// (`FILEVINE_SCOPES`, else [`Scopes::partner_app`]; `openid` is always
/// added).
#[must_use]
pub struct OidcClientBuilder {
    region: Option<Region>,
    client_id: Option<ClientId>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<RedirectUrl>,
    post_logout_redirect_uri: Option<RedirectUrl>,
    scopes: Option<Scopes>,
    auth_method: Option<ClientAuthMethod>,
    leeway: Duration,
    sign_in_timeout: Duration,
    metadata_ttl: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    env: EnvSource,
}

impl fmt::Debug for OidcClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClientBuilder")
            .field("region", &self.region)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Default for OidcClientBuilder {
    fn default() -> Self {
        Self {
            region: None,
            client_id: None,
            client_secret: None,
            redirect_uri: None,
            post_logout_redirect_uri: None,
            scopes: None,
            auth_method: None,
            leeway: DEFAULT_LEEWAY,
            sign_in_timeout: DEFAULT_SIGN_IN_TIMEOUT,
            metadata_ttl: DEFAULT_METADATA_TTL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            env: Box::new(crate::env::process_env),
        }
    }
}

impl OidcClientBuilder {
    /// The region or custom authority (the issuer).
    pub fn region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// The client id Filevine issued.
    pub fn client_id(mut self, id: ClientId) -> Self {
        self.client_id = Some(id);
        self
    }

    /// The client secret Filevine issued (confidential client).
    pub fn client_secret(mut self, secret: ClientSecret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// The registered redirect URI (e.g. `https://localhost:7059/signin-oidc`).
    pub fn redirect_uri(mut self, uri: RedirectUrl) -> Self {
        self.redirect_uri = Some(uri);
        self
    }

    /// The registered post-logout redirect URI.
    pub fn post_logout_redirect_uri(mut self, uri: RedirectUrl) -> Self {
        self.post_logout_redirect_uri = Some(uri);
        self
    }

    /// The scopes to request (`openid` is added if missing).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Client authentication at the token endpoint, instead of choosing from
    /// the discovery document ([`ClientAuthMethod::choose`]).
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = Some(method);
        self
    }

    /// Clock skew allowed on ID token times (default 5 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long a sign-in may take (default 15 min).
    pub fn sign_in_timeout(mut self, timeout: Duration) -> Self {
        self.sign_in_timeout = timeout;
        self
    }

    /// How long discovery and signing keys are cached (default 1 hour).
    pub fn metadata_ttl(mut self, ttl: Duration) -> Self {
        self.metadata_ttl = ttl;
        self
    }

    /// Connect timeout (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout of one request (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Read configuration from this function instead of the process
    /// environment.
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Box::new(lookup);
        self
    }

    /// Validates the configuration and builds the client. Sends nothing.
    ///
    /// # Errors
    /// A [`ConfigError`] naming what is missing or malformed.
    pub fn build(self) -> Result<OidcClient, ConfigError> {
        let lookup: Lookup<'_> = &*self.env;
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let malformed =
            |name: &'static str| move |e: ConfigError| ConfigError::MalformedVar { name, reason: e.to_string() };

        let region = Region::resolve_with(self.region, lookup)?;
        let client_id = match self.client_id {
            Some(id) => id,
            None => ClientId::new(var(CLIENT_ID_VAR).ok_or(ConfigError::MissingVar { name: CLIENT_ID_VAR, hint: "" })?)
                .map_err(malformed(CLIENT_ID_VAR))?,
        };
        let client_secret = match self.client_secret {
            Some(secret) => Some(secret),
            // The secret's value never goes into the error.
            None => var(CLIENT_SECRET_VAR).map(ClientSecret::new).transpose().map_err(malformed(CLIENT_SECRET_VAR))?,
        };
        let redirect_uri = match self.redirect_uri {
            Some(uri) => uri,
            None => RedirectUrl::new(
                var(REDIRECT_URI_VAR).ok_or(ConfigError::MissingVar { name: REDIRECT_URI_VAR, hint: "" })?,
            )
            .map_err(malformed(REDIRECT_URI_VAR))?,
        };
        let post_logout_redirect_uri = match self.post_logout_redirect_uri {
            Some(uri) => Some(uri),
            None => var(POST_LOGOUT_REDIRECT_URI_VAR)
                .map(RedirectUrl::new)
                .transpose()
                .map_err(malformed(POST_LOGOUT_REDIRECT_URI_VAR))?,
        };
        let mut scopes = match self.scopes {
            Some(scopes) => scopes,
            None => crate::credentials::scopes_from_lookup(lookup)?.unwrap_or_else(Scopes::partner_app),
        };
        scopes.insert(Scope::new("openid").map_err(|e| ConfigError::Invalid(e.to_string()))?);
        if matches!(self.auth_method, Some(ClientAuthMethod::ClientSecretPost | ClientAuthMethod::ClientSecretBasic))
            && client_secret.is_none()
        {
            return Err(ConfigError::Invalid(format!(
                "client authentication {} needs a client secret (set {CLIENT_SECRET_VAR})",
                self.auth_method.map_or("", ClientAuthMethod::as_str)
            )));
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(ConfigError::Invalid("timeouts must be longer than zero".into()));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::Invalid(format!(
                "an ID token leeway of {} s is more than the {} s allowed; fix the clock instead",
                self.leeway.as_secs(),
                MAX_LEEWAY.as_secs()
            )));
        }

        let http_builder = || {
            reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .timeout(self.request_timeout)
                .user_agent(concat!("filevine-identity-rs/", env!("CARGO_PKG_VERSION")))
        };
        let build_error = |e: reqwest::Error| ConfigError::Invalid(format!("cannot build the HTTP client: {e}"));
        let http = http_builder().build().map_err(build_error)?;
        let basic_http = match &client_secret {
            Some(secret) => {
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(AUTHORIZATION, basic_auth(&client_id, secret)?);
                Some(http_builder().default_headers(headers).build().map_err(build_error)?)
            }
            None => None,
        };
        Ok(OidcClient {
            inner: Arc::new(Inner {
                discovery: DiscoveryCache::new(region.identity_url().to_owned(), self.metadata_ttl),
                jwks: JwksCache::new(self.metadata_ttl, JWKS_REFETCH_INTERVAL, self.request_timeout),
                region,
                client_id,
                client_secret,
                redirect_uri,
                post_logout_redirect_uri,
                scopes,
                auth_method: self.auth_method,
                leeway: self.leeway,
                sign_in_timeout: self.sign_in_timeout,
                request_timeout: self.request_timeout,
                http,
                basic_http,
            }),
        })
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1),
/// marked sensitive.
fn basic_auth(id: &ClientId, secret: &ClientSecret) -> Result<HeaderValue, ConfigError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(id.as_str()), encode(secret.expose_secret()));
    let mut value =
        HeaderValue::try_from(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials)))
            .map_err(|_| ConfigError::Invalid("the client credentials cannot be sent in a header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::fake;

    fn from(pairs: &'static [(&'static str, &'static str)]) -> Result<OidcClient, ConfigError> {
        OidcClient::builder().env(fake(pairs)).build()
    }

    #[test]
    fn from_the_environment() {
        let client = from(&[
            ("FILEVINE_REGION", "ca"),
            ("FILEVINE_CLIENT_ID", "partner-app"),
            ("FILEVINE_CLIENT_SECRET", "s3cret"),
            ("FILEVINE_REDIRECT_URI", "https://localhost:7059/signin-oidc"),
            ("FILEVINE_SCOPES", "email fv.api.gateway.access"),
        ])
        .unwrap();
        assert_eq!(client.region(), &Region::Canada);
        assert_eq!(client.inner.scopes.to_string(), "email fv.api.gateway.access openid");
        assert!(client.inner.basic_http.is_some());
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let err = from(&[("FILEVINE_REDIRECT_URI", "https://a.example/cb")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable FILEVINE_CLIENT_ID is not set");
        let err = from(&[("FILEVINE_CLIENT_ID", "a")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable FILEVINE_REDIRECT_URI is not set");
        let err = from(&[("FILEVINE_CLIENT_ID", "a"), ("FILEVINE_REDIRECT_URI", "http://a.example/cb")]).unwrap_err();
        assert!(err.to_string().contains("FILEVINE_REDIRECT_URI is malformed") && err.to_string().contains("https://"));
        let err = from(&[
            ("FILEVINE_CLIENT_ID", "a"),
            ("FILEVINE_REDIRECT_URI", "https://a.example/cb"),
            ("FILEVINE_POST_LOGOUT_REDIRECT_URI", "nope"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("FILEVINE_POST_LOGOUT_REDIRECT_URI is malformed"), "{err}");
        let err = from(&[
            ("FILEVINE_CLIENT_ID", "a"),
            ("FILEVINE_REDIRECT_URI", "https://a.example/cb"),
            ("FILEVINE_REGION", "mars"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("FILEVINE_REGION"), "{err}");
    }

    #[test]
    fn leeway_is_bounded() {
        let builder = || {
            OidcClient::builder()
                .env(fake(&[("FILEVINE_CLIENT_ID", "a"), ("FILEVINE_REDIRECT_URI", "https://a.example/cb")]))
        };
        let err = builder().leeway(Duration::MAX).build().unwrap_err();
        assert!(err.to_string().contains("leeway") && err.to_string().contains("300 s allowed"), "{err}");
        builder().leeway(Duration::from_secs(300)).build().unwrap();
    }

    #[test]
    fn secret_auth_methods_need_a_secret() {
        let err = OidcClient::builder()
            .env(fake(&[("FILEVINE_CLIENT_ID", "a"), ("FILEVINE_REDIRECT_URI", "https://a.example/cb")]))
            .auth_method(ClientAuthMethod::ClientSecretBasic)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("client_secret_basic needs a client secret"), "{err}");
    }

    #[test]
    fn basic_auth_encodes_per_rfc6749() {
        let value = basic_auth(&ClientId::new("a b").unwrap(), &ClientSecret::new("p:w/+").unwrap()).unwrap();
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a+b:p%3Aw%2F%2B");
        assert!(value.is_sensitive());
    }
}
