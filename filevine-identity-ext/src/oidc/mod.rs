//! Partner sign-in with Filevine: OpenID Connect with the authorization
//! code flow, PKCE and the client secret, the way Filevine's partner guide
//! and sample apps do it.
//!
//! - [`OidcClient`] (configured with [`OidcClientBuilder`]) starts a sign-in
//!   ([`OidcClient::authorization_request`]), completes it from the callback
//!   ([`OidcClient::complete_sign_in`]), and hands the tokens to a
//!   [`TokenProvider`] that keeps them fresh.
//! - [`discovery`]: the provider's metadata, checked and cached.
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

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use filevine_identity::types::{
    AuthorizationCodeRequest, AuthorizationCodeRequestGrantType, IntrospectionRequest, RevocationRequest,
};
use filevine_identity::{ClientOptions, SecretString, operations};
use url::Url;

mod builder;
mod cache;
mod claims;
mod client_auth;
pub(crate) mod device;
pub mod discovery;
mod error;
pub(crate) mod id_token;
mod introspection;
pub(crate) mod jwks;
pub(crate) mod pkce;
mod signin;
#[cfg(any(test, fuzzing, feature = "test-util"))]
pub(crate) mod test_key;

pub use crate::secret::DeviceCode;
pub use builder::{DEFAULT_MAX_STALE, DEFAULT_METADATA_TTL, DEFAULT_SIGN_IN_TIMEOUT, OidcClientBuilder};
pub use claims::{IdTokenClaims, ProfileClaims, UserInfo};
pub use client_auth::ClientAuthMethod;
pub use device::{DEFAULT_DEVICE_INTERVAL, DeviceAuthorization, SLOW_DOWN_STEP};
pub use discovery::{DiscoveryError, ProviderMetadata};
pub use error::SignInError;
pub use id_token::{DEFAULT_LEEWAY, IdTokenError};
pub use introspection::TokenIntrospection;
pub use pkce::{PkceCodeChallenge, PkceCodeVerifier, RandomnessUnavailable};
pub use signin::{
    AuthorizationOptions, AuthorizationRequest, AuthorizationResponse, CsrfToken, Nonce, PendingSignIn, RedirectUrl,
    SignedIn,
};

use crate::config::region::Region;
use crate::config::scope::Scopes;
use crate::error::{ConfigError, Error};
use crate::grant::{AccessToken, ClientId, ClientSecret, ExpiryPolicy, IdToken, RefreshToken, TokenSet};
use crate::http::LazyClient;
use crate::provider::{TokenProvider, TokenProviderBuilder};
use crate::redact::{endpoint_only, redact};
use crate::store::StoreKey;
use discovery::DiscoveryCache;
use id_token::{Expectations, unix_now};
use jwks::JwksCache;

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
            .field("endpoint", &endpoint_only(&self.url))
            .field("state", &self.state)
            .finish()
    }
}

/// What an ID token is checked against beyond the provider and the client:
/// what the sign-in it answers asked for and received.
#[derive(Default)]
struct Checks<'a> {
    nonce: Option<&'a Nonce>,
    /// The access token issued with it (`at_hash`).
    access_token: Option<&'a str>,
    /// The `max_age` the sign-in requested (`auth_time`).
    max_age: Option<u64>,
}

/// A partner app's OpenID Connect client for Filevine: sends users to sign
/// in, completes the callback, validates ID tokens, and hands the tokens to
/// a [`TokenProvider`] that keeps them fresh.
///
/// Cheap to clone; discovery and signing keys are fetched on first use and
/// cached (1 hour by default).
///
/// ```no_run
/// use filevine_identity_ext::oidc::{AuthorizationOptions, RedirectUrl};
/// use filevine_identity_ext::{ClientId, ClientSecret, OidcClient, Region};
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
/// let provider = client.token_provider(signed_in.token_set).build()?;
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
    http: LazyClient,
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
    /// A builder; see [`OidcClientBuilder`]. Like
    /// [`TokenProvider::builder`], it installs the `ring` crypto provider
    /// when that is the backend.
    pub fn builder() -> OidcClientBuilder {
        crate::crypto::install_default_provider();
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

    /// The redirect URI sign-ins come back to. An application served over
    /// `https://` (this URI's scheme) marks its cookies `Secure`.
    pub fn redirect_uri(&self) -> &RedirectUrl {
        &self.inner.redirect_uri
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
            max_age: options.max_age,
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
            if let Some(max_age) = options.max_age {
                query.append_pair("max_age", &max_age.to_string());
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
        use tracing::Instrument as _;
        let span =
            tracing::info_span!("sign_in", client_id = self.inner.client_id.as_str(), outcome = tracing::field::Empty,);
        let result = self.complete_sign_in_inner(callback, pending).instrument(span.clone()).await;
        span.record("outcome", if result.is_ok() { "ok" } else { "refused" });
        result
    }

    async fn complete_sign_in_inner(&self, callback: &str, pending: PendingSignIn) -> Result<SignedIn, SignInError> {
        let response = AuthorizationResponse::parse(callback)?;
        // The state first: nothing in a callback that is not this browser's
        // is worth acting on, not even its error.
        match &response.state {
            Some(state) if pending.state.matches(state) => {}
            _ => return Err(SignInError::StateMismatch),
        }
        let metadata = self.metadata().await?;
        self.check_pending(&pending, &metadata)?;
        match &response.iss {
            Some(iss) if iss != metadata.issuer() => {
                return Err(SignInError::IssuerMismatch {
                    expected: metadata.issuer().to_owned(),
                    found: redact(iss, 200),
                });
            }
            // RFC 9207 §2.4: a provider that says it sends `iss` always
            // does; a callback without it did not come from it.
            None if metadata.requires_iss_parameter() => return Err(SignInError::MissingIssuer),
            _ => {}
        }
        if let Some(error) = &response.error {
            return Err(SignInError::Provider {
                error: redact(error, 100),
                description: response.error_description.as_deref().map(|d| redact(d, 300)),
            });
        }
        let code = response.code.filter(|c| !c.is_empty()).ok_or(SignInError::MissingCode)?;
        let token_set = self.exchange_code(&metadata, code, &pending).await?;
        let id_token = token_set.id_token.as_ref().ok_or(SignInError::MissingIdToken)?;
        let checks = Checks {
            nonce: Some(&pending.nonce),
            access_token: Some(token_set.access_token.expose_secret()),
            max_age: pending.max_age,
        };
        let claims = self.verify_with(&metadata, id_token, checks).await?;
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
        self.verify_with(&metadata, id_token, Checks { nonce, ..Checks::default() }).await
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
    /// Sends nothing: the token endpoint and client authentication are
    /// discovered on the provider's first refresh (a discovery failure is
    /// that refresh's error).
    pub fn token_provider(&self, token_set: TokenSet) -> TokenProviderBuilder {
        self.refreshing_builder().token_set(token_set, self.inner.client_id.clone(), None)
    }

    /// A [`TokenProviderBuilder`] for a user's token set that lives in a
    /// [store](crate::store) under `key` (the user's session): after a
    /// restart or on another replica, the provider reads the refresh token
    /// from the store and refreshes at the discovered token endpoint with
    /// this client's credentials. Add `.store(…)` and `build()`; a call to
    /// `token()` with nothing stored is [`Error::NotStored`].
    ///
    /// ```no_run
    /// use filevine_identity_ext::store::{self, StoreKey};
    /// use filevine_identity_ext::OidcClient;
    ///
    /// # async fn run(oidc: OidcClient, session_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let store = store::open("redis://127.0.0.1:6379")?;
    /// let provider = oidc.stored_session(StoreKey::session(session_id)).store(store).build()?;
    /// let token = provider.token().await?;
    /// # drop(token);
    /// # Ok(()) }
    /// ```
    ///
    /// Sends nothing, as [`OidcClient::token_provider`]: a process that
    /// finds a valid token in the store never discovers, never builds a
    /// TLS client.
    pub fn stored_session(&self, key: StoreKey) -> TokenProviderBuilder {
        self.refreshing_builder().stored_session(self.inner.client_id.clone(), None).store_key(key)
    }

    /// Signs the provider's user out: forgets and deletes the stored token
    /// set ([`TokenProvider::forget`]), then revokes the refresh token and
    /// the access token it held (RFC 7009), so neither works anywhere any
    /// more. Follow with [`OidcClient::end_session_url`] to end the
    /// session at Filevine too.
    ///
    /// # Errors
    /// [`SignInError::Token`] when the store fails, or the first revocation
    /// that failed (the rest is still attempted).
    pub async fn sign_out(&self, provider: &TokenProvider) -> Result<(), SignInError> {
        let forgotten = provider.forget().await?;
        self.revoke_forgotten(&forgotten).await
    }

    /// Revokes the refresh token, and the access token unless it expired.
    async fn revoke_forgotten(&self, forgotten: &crate::provider::Forgotten) -> Result<(), SignInError> {
        let refresh = match &forgotten.refresh_token {
            Some(token) => self.revoke_refresh_token(token).await,
            None => Ok(()),
        };
        let access = match &forgotten.access_token {
            Some(token) if !token.is_expired() => self.revoke_access_token(token).await,
            _ => Ok(()),
        };
        refresh.and(access)
    }

    /// A provider builder for this client's refresh grant: the HTTP client,
    /// and the discovered token endpoint and client authentication, found
    /// on the provider's first request (so a process whose store holds a
    /// valid token sends nothing, not even discovery).
    fn refreshing_builder(&self) -> TokenProviderBuilder {
        let oidc = self.clone();
        let resolve: crate::provider::Resolve = Arc::new(move || {
            let oidc = oidc.clone();
            Box::pin(async move {
                let metadata = oidc.metadata().await.map_err(discovery_failure)?;
                let method = oidc.auth_method(&metadata).map_err(resolve_failure)?;
                let auth = oidc.client_auth(method).map_err(resolve_failure)?;
                Ok(crate::provider::Resolved {
                    options: auth.endpoint(&operations::GET_ACCESS_TOKEN, metadata.token_endpoint().clone()),
                    form_secret: oidc.form_secret(method).cloned(),
                })
            })
        });
        let builder = TokenProvider::builder()
            .region(self.inner.region.clone())
            .shared_http(self.inner.http.clone())
            .resolve_with(resolve);
        // What a refresh receives after a sign-out is revoked, not dropped
        // alive.
        let oidc = self.clone();
        builder.revoke_discarded(Arc::new(move |forgotten| {
            let oidc = oidc.clone();
            Box::pin(async move {
                if let Err(error) = oidc.revoke_forgotten(&forgotten).await {
                    tracing::warn!(error = %crate::error::Report(&error), "could not revoke the tokens a refresh received after a sign-out");
                }
            })
        }))
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
        let options = ClientOptions::new()
            .endpoint(&operations::GET_USERINFO, endpoint)
            .bearer(SecretString::from(access_token.expose_secret()));
        let client = self.wire(&metadata, options)?;
        let timeout = self.inner.request_timeout;
        let info = match client.get_userinfo().await {
            Ok(response) => UserInfo::from(response.into_inner()),
            Err(e) => {
                return Err(crate::http::map_status_error(e, timeout)
                    .await
                    .scrub(&[access_token.expose_secret()])
                    .into());
            }
        };
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

    /// Asks the provider whether `token` (an access or refresh token this
    /// application received) is active, and for whom and with which scopes
    /// it was issued (RFC 7662), authenticating as this client. For a
    /// resource server that checks the bearer tokens it receives.
    ///
    /// The token goes to the discovered introspection endpoint only; it
    /// never appears in an error.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] without an introspection endpoint,
    /// [`SignInError::Token`] when the provider refuses the client (401
    /// `invalid_client`) or the request fails.
    pub async fn introspect(&self, token: &str) -> Result<TokenIntrospection, SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.introspection_endpoint().ok_or(DiscoveryError::MissingEndpoint("introspection_endpoint"))?.clone();
        let method = self.auth_method(&metadata)?;
        let request = IntrospectionRequest {
            token: SecretString::from(token),
            token_type_hint: None,
            client_id: self.form_client_id(method),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
        };
        let client =
            self.wire(&metadata, self.client_auth(method)?.endpoint(&operations::INTROSPECT_TOKEN, endpoint))?;
        match client.introspect_token(&request).await {
            Ok(answer) => Ok(answer.into_inner().into()),
            Err(e) => Err(self.token_call_error(e, token).await),
        }
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
        let client = self.wire(metadata, self.client_auth(method)?)?;
        // Not retried: a code is good for one exchange, and a retry after a
        // lost response would only earn `invalid_grant`.
        let result = crate::grant::exchange::exchange(
            &client,
            &request.into(),
            false,
            &ExpiryPolicy::default(),
            inner.request_timeout,
        )
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
        checks: Checks<'_>,
    ) -> Result<IdTokenClaims, SignInError> {
        let parsed = id_token::parse(id_token.expose_secret())?;
        parsed.check_header(metadata.id_token_algorithms())?;
        let key = self.inner.jwks.key(&self.inner.http, metadata.jwks_uri(), parsed.kid(), parsed.alg()).await?;
        let expect = Expectations {
            issuer: metadata.issuer(),
            client_id: self.inner.client_id.as_str(),
            algorithms: metadata.id_token_algorithms(),
            leeway: self.inner.leeway,
            nonce: checks.nonce,
            access_token: checks.access_token,
            max_age: checks.max_age,
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
            return Err(ConfigError::SecretRequired { method: method.as_str() }.into());
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

    async fn revoke(&self, token: &str, hint: &str) -> Result<(), SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.revocation_endpoint().ok_or(DiscoveryError::MissingEndpoint("revocation_endpoint"))?.clone();
        let method = self.auth_method(&metadata)?;
        let request = RevocationRequest {
            token: SecretString::from(token),
            token_type_hint: Some(hint.to_owned()),
            client_id: self.form_client_id(method),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
        };
        let client = self.wire(&metadata, self.client_auth(method)?.endpoint(&operations::REVOKE_TOKEN, endpoint))?;
        if let Err(e) = client.revoke_token(&request).await {
            return Err(self.token_call_error(e, token).await);
        }
        tracing::debug!(token_type = hint, "revoked a token");
        Ok(())
    }

    /// The typed error of a revocation or introspection call, with the
    /// token it carried and the client secret scrubbed from its text.
    async fn token_call_error(
        &self,
        error: filevine_identity::Error<filevine_identity::types::TokenError>,
        token: &str,
    ) -> SignInError {
        let secret = self.inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret);
        let error = crate::http::map_error(error, false, self.inner.request_timeout).await;
        error.scrub(&[token, secret]).into()
    }

    /// The generated client for this provider: `options` plus the
    /// discovered token endpoint, on the SDK's HTTP client.
    fn wire(&self, metadata: &ProviderMetadata, options: ClientOptions) -> Result<filevine_identity::Client, Error> {
        let options = options.endpoint(&operations::GET_ACCESS_TOKEN, metadata.token_endpoint().clone());
        let http = self.inner.http.get()?.clone();
        Ok(filevine_identity::Client::new_with_client(metadata.token_base(), http, options))
    }

    /// The header half of the client authentication `method`: Basic
    /// credentials for `client_secret_basic`, nothing otherwise (the form
    /// carries them, or a public client has none).
    fn client_auth(&self, method: ClientAuthMethod) -> Result<ClientOptions, SignInError> {
        let inner = &self.inner;
        match method {
            ClientAuthMethod::ClientSecretBasic => {
                let secret = inner
                    .client_secret
                    .as_ref()
                    .ok_or(ConfigError::SecretRequired { method: "client_secret_basic" })?;
                Ok(ClientOptions::new().basic(inner.client_id.as_str(), secret.secret()))
            }
            ClientAuthMethod::ClientSecretPost | ClientAuthMethod::None => Ok(ClientOptions::new()),
        }
    }

    /// The `client_id` form field: with Basic the header names the client.
    fn form_client_id(&self, method: ClientAuthMethod) -> Option<String> {
        (method != ClientAuthMethod::ClientSecretBasic).then(|| self.inner.client_id.as_str().to_owned())
    }
}

/// A discovery failure met by a provider's first refresh, as the provider's
/// error: the network or server error that stopped the fetch, or the
/// document's fault, named.
fn discovery_failure(error: DiscoveryError) -> Error {
    match error {
        DiscoveryError::Fetch { source, .. } => source,
        other => Error::MalformedResponse {
            status: None,
            reason: format!("the discovery document cannot be used: {other}"),
            excerpt: String::new(),
            source: None,
        },
    }
}

/// The client-authentication choice of a provider's first refresh, as the
/// provider's error.
fn resolve_failure(error: SignInError) -> Error {
    match error {
        SignInError::Config(config) => Error::Config(config),
        SignInError::Token(error) => error,
        SignInError::Discovery(error) => discovery_failure(error),
        other => {
            Error::MalformedResponse { status: None, reason: other.to_string(), excerpt: String::new(), source: None }
        }
    }
}
