//! [`OidcClientBuilder`]: every setting of an [`OidcClient`], each from code,
//! else the environment, else a default; validated in `build()`, which sends
//! nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::client::{Inner, OidcClient};
use super::client_auth::ClientAuthMethod;
use super::discovery::DiscoveryCache;
use super::id_token::DEFAULT_LEEWAY;
use super::jwks::JwksCache;
use super::signin::RedirectUrl;
use crate::config::env::{CLIENT_ID, CLIENT_SECRET, Lookup, POST_LOGOUT_REDIRECT_URI, REDIRECT_URI};
use crate::config::scope::{Scope, Scopes};
use crate::config::settings::{Settings, settings_setters};
use crate::error::ConfigError;
use crate::grant::{ClientId, ClientKeyRef, ClientSecret};
use crate::jose::ClientKey;

/// How long discovery documents and signing keys are cached by default.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(3600);
/// How long past its TTL a cached discovery document or key set is still
/// served when the provider cannot be reached, by default: a day, so an
/// identity outage does not stop sign-ins that need nothing new from it.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// How long a sign-in may take, from the authorization request to the
/// callback, by default.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest clock skew allowed on ID token times.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Least time between two JWKS fetches caused by unknown key ids.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Configures an [`OidcClient`]. Validated in [`OidcClientBuilder::build`],
/// which sends nothing.
///
/// Each setting falls back to the environment, then to a default: region
/// (`FILEVINE_AUTHORITY` / `FILEVINE_REGION`, else US), client id
/// (`FILEVINE_CLIENT_ID`, required), client secret
/// (`FILEVINE_CLIENT_SECRET`, optional: without one, or a client key, the
/// client is public), client key (`FILEVINE_CLIENT_KEY`, a PEM or JWK file,
/// and `FILEVINE_CLIENT_KEY_ID`), DPoP (`FILEVINE_DPOP`),
/// redirect URI (`FILEVINE_REDIRECT_URI`, required), post-logout redirect
/// URI (`FILEVINE_POST_LOGOUT_REDIRECT_URI`, optional), scopes
/// (`FILEVINE_SCOPES`, else [`Scopes::partner_app`]; `openid` is always
/// added).
#[must_use]
pub struct OidcClientBuilder {
    settings: Settings,
    client_id: Option<ClientId>,
    client_secret: Option<ClientSecret>,
    client_key: Option<ClientKey>,
    pushed_requests: bool,
    redirect_uri: Option<RedirectUrl>,
    post_logout_redirect_uri: Option<RedirectUrl>,
    auth_method: Option<ClientAuthMethod>,
    leeway: Duration,
    sign_in_timeout: Duration,
    metadata_ttl: Duration,
    max_stale: Duration,
    endpoint_origins: Vec<String>,
}

impl fmt::Debug for OidcClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClientBuilder")
            .field("region", &self.settings.region)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_key", &self.client_key)
            .field("dpop", &self.settings.dpop)
            .field("pushed_requests", &self.pushed_requests)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.settings.scopes)
            .finish_non_exhaustive()
    }
}

/// Where a client's configuration starts (beside its builder, which the
/// client's own file does not import).
impl OidcClient {
    /// A builder; see [`OidcClientBuilder`]. Like
    /// [`TokenProvider::builder`](crate::provider::TokenProvider::builder), it installs the `ring` crypto provider
    /// when that is the backend.
    pub fn builder() -> OidcClientBuilder {
        crate::crypto::install_default_provider();
        OidcClientBuilder::default()
    }

    /// Everything from the environment: `FILEVINE_AUTHORITY` or
    /// `FILEVINE_REGION`, `FILEVINE_CLIENT_ID`, `FILEVINE_CLIENT_SECRET`,
    /// `FILEVINE_CLIENT_KEY`, `FILEVINE_CLIENT_KEY_ID`, `FILEVINE_DPOP`,
    /// `FILEVINE_REDIRECT_URI`, `FILEVINE_POST_LOGOUT_REDIRECT_URI`,
    /// `FILEVINE_SCOPES`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing or malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().build()
    }
}

impl Default for OidcClientBuilder {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            client_id: None,
            client_secret: None,
            client_key: None,
            pushed_requests: true,
            redirect_uri: None,
            post_logout_redirect_uri: None,
            auth_method: None,
            leeway: DEFAULT_LEEWAY,
            sign_in_timeout: DEFAULT_SIGN_IN_TIMEOUT,
            metadata_ttl: DEFAULT_METADATA_TTL,
            max_stale: DEFAULT_MAX_STALE,
            endpoint_origins: Vec::new(),
        }
    }
}

impl OidcClientBuilder {
    settings_setters!();

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

    /// Authenticates the client with a private key instead of a secret
    /// (`private_key_jwt`, RFC 7523): every token, revocation and
    /// introspection request carries a fresh assertion signed with it, for
    /// the issuer as audience, with an algorithm the provider lists.
    /// Default: `FILEVINE_CLIENT_KEY` (a PEM or JWK file, read on the first
    /// request that needs it) with `FILEVINE_CLIENT_KEY_ID`.
    ///
    /// ```
    /// use filevine_identity_ext::jose::ClientKey;
    /// use filevine_identity_ext::oidc::{OidcClient, RedirectUrl};
    /// use filevine_identity_ext::ClientId;
    ///
    /// # fn run(pem: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let client = OidcClient::builder()
    ///     .client_id(ClientId::new("partner-app")?)
    ///     .client_key(ClientKey::from_pem(pem)?.with_key_id("partner-app-2026")?)
    ///     .dpop(true)
    ///     .redirect_uri(RedirectUrl::new("https://localhost:7059/signin-oidc")?)
    ///     .build()?;
    /// # drop(client); Ok(()) }
    /// ```
    pub fn client_key(mut self, key: ClientKey) -> Self {
        self.client_key = Some(key);
        self
    }

    /// Pushes each sign-in's parameters to the provider (RFC 9126) when its
    /// discovery document offers a `pushed_authorization_request_endpoint`:
    /// the browser then carries only the client id and a one-time
    /// reference, so nothing of the request can be read or changed on its
    /// way. The push authenticates the client as the token endpoint does
    /// (secret, `private_key_jwt`) and, with DPoP, binds the code to the
    /// sign-in's key. Default: on. Off, a provider that requires pushed
    /// requests (`require_pushed_authorization_requests`) refuses to start
    /// a sign-in ([`SignInError::PushRequired`](crate::oidc::SignInError::PushRequired)).
    pub fn pushed_authorization_requests(mut self, enabled: bool) -> Self {
        self.pushed_requests = enabled;
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

    /// How long past its TTL a cached discovery document or key set is
    /// still served while the provider cannot be reached (default
    /// [`DEFAULT_MAX_STALE`], a day). During an outage one request per 30 s
    /// tries to refresh it; everyone else gets the cached copy at once.
    /// `Duration::ZERO` serves nothing stale.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Accepts discovered token, userinfo, revocation and introspection
    /// endpoints on `origin` (e.g. `https://tokens.example.com`) besides
    /// the issuer's own. By default an endpoint that receives the client
    /// secret, a code or a token must be on the issuer's origin, so a
    /// tampered discovery document cannot send them elsewhere. Checked in
    /// [`build`](Self::build): an `https://` origin (or `http://` on
    /// loopback) without a path.
    ///
    /// ```
    /// use filevine_identity_ext::oidc::{OidcClient, RedirectUrl};
    /// use filevine_identity_ext::ClientId;
    ///
    /// let client = OidcClient::builder()
    ///     .client_id(ClientId::new("partner-app").unwrap())
    ///     .redirect_uri(RedirectUrl::new("https://app.example/cb").unwrap())
    ///     .allow_endpoint_origin("https://tokens.example.com")
    ///     .build();
    /// assert!(client.is_ok());
    /// let err = OidcClient::builder()
    ///     .client_id(ClientId::new("partner-app").unwrap())
    ///     .redirect_uri(RedirectUrl::new("https://app.example/cb").unwrap())
    ///     .allow_endpoint_origin("http://tokens.example.com")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("https://"));
    /// ```
    pub fn allow_endpoint_origin(mut self, origin: impl Into<String>) -> Self {
        self.endpoint_origins.push(origin.into());
        self
    }

    /// Validates the configuration and builds the client. Sends nothing.
    ///
    /// # Errors
    /// A [`ConfigError`] naming what is missing or malformed.
    pub fn build(self) -> Result<OidcClient, ConfigError> {
        let lookup: Lookup<'_> = self.settings.lookup();
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let malformed =
            |name: &'static str| move |e: ConfigError| ConfigError::MalformedVar { name, reason: e.to_string() };

        let region = self.settings.region()?;
        let client_id = match self.client_id {
            Some(id) => id,
            None => ClientId::new(var(CLIENT_ID).ok_or(ConfigError::MissingVar { name: CLIENT_ID, hint: "" })?)
                .map_err(malformed(CLIENT_ID))?,
        };
        let client_secret = match self.client_secret {
            Some(secret) => Some(secret),
            // The secret's value never goes into the error.
            None => var(CLIENT_SECRET).map(ClientSecret::new).transpose().map_err(malformed(CLIENT_SECRET))?,
        };
        let client_key = match self.client_key {
            Some(key) => Some(ClientKeyRef::Loaded(key)),
            None => ClientKeyRef::from_env(lookup),
        };
        if client_key.is_some() && client_secret.is_some() {
            return Err(ConfigError::ClientAuth {
                reason: "a client secret and a client key are both set; a client authenticates with one",
            });
        }
        let dpop = self.settings.dpop()?;
        let redirect_uri = match self.redirect_uri {
            Some(uri) => uri,
            None => {
                RedirectUrl::new(var(REDIRECT_URI).ok_or(ConfigError::MissingVar { name: REDIRECT_URI, hint: "" })?)
                    .map_err(malformed(REDIRECT_URI))?
            }
        };
        let post_logout_redirect_uri = match self.post_logout_redirect_uri {
            Some(uri) => Some(uri),
            None => var(POST_LOGOUT_REDIRECT_URI)
                .map(RedirectUrl::new)
                .transpose()
                .map_err(malformed(POST_LOGOUT_REDIRECT_URI))?,
        };
        let mut scopes = self.settings.scopes()?.unwrap_or_else(Scopes::partner_app);
        scopes.insert(Scope::openid());
        if let Some(method @ (ClientAuthMethod::ClientSecretPost | ClientAuthMethod::ClientSecretBasic)) =
            self.auth_method
            && client_secret.is_none()
        {
            return Err(ConfigError::SecretRequired { method: method.as_str() });
        }
        if self.auth_method == Some(ClientAuthMethod::PrivateKeyJwt) && client_key.is_none() {
            return Err(ConfigError::ClientAuth { reason: "private_key_jwt needs a client key" });
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge { given: self.leeway, max: MAX_LEEWAY });
        }
        if self.sign_in_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { setting: "sign_in_timeout" });
        }

        let allowed = self.endpoint_origins.iter().map(|o| endpoint_origin(o)).collect::<Result<Vec<_>, _>>()?;

        // Built on the first request: building a client sends and loads nothing.
        let http = crate::http::LazyClient::new(self.settings.connect_timeout, self.settings.request_timeout)?;
        Ok(OidcClient {
            inner: Arc::new(Inner {
                discovery: DiscoveryCache::new(
                    region.identity_url().to_owned(),
                    region.issuer().to_owned(),
                    allowed,
                    self.metadata_ttl,
                    self.max_stale,
                    self.settings.clock.clone(),
                ),
                jwks: JwksCache::new(
                    self.metadata_ttl,
                    self.max_stale,
                    JWKS_REFETCH_INTERVAL,
                    self.settings.request_timeout,
                    self.settings.clock.clone(),
                ),
                clock: self.settings.clock,
                region,
                client_id,
                client_secret,
                client_key,
                loaded_key: std::sync::Mutex::new(None),
                dpop,
                dpop_demanded: std::sync::atomic::AtomicBool::new(false),
                pushed_requests: self.pushed_requests,
                redirect_uri,
                post_logout_redirect_uri,
                scopes,
                auth_method: self.auth_method,
                leeway: self.leeway,
                sign_in_timeout: self.sign_in_timeout,
                request_timeout: self.settings.request_timeout,
                http,
            }),
        })
    }
}

/// An origin given to [`OidcClientBuilder::allow_endpoint_origin`].
fn endpoint_origin(given: &str) -> Result<url::Origin, ConfigError> {
    let invalid = |given: &str, reason| ConfigError::InvalidEndpointOrigin { given: given.to_owned(), reason };
    let mut url = url::Url::parse(given).map_err(|_| invalid(&crate::redact::redact(given, 200), "not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Not repeated with its credentials.
        let _ = (url.set_username(""), url.set_password(None));
        return Err(invalid(url.as_str(), "an origin cannot carry credentials"));
    }
    if !crate::config::region::is_secure(&url) {
        return Err(invalid(given, "it must be https:// (http:// only on loopback)"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(given, "an origin is a scheme, host and port, without a path or query"));
    }
    Ok(url.origin())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::fake;
    use crate::config::region::Region;

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
        assert!(client.inner.client_secret.is_some());
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
        let err = builder().sign_in_timeout(Duration::ZERO).build().unwrap_err();
        assert_eq!(err, ConfigError::ZeroDuration { setting: "sign_in_timeout" });
        let err = builder().request_timeout(Duration::ZERO).build().unwrap_err();
        assert_eq!(err.to_string(), "request_timeout must be longer than zero");
    }

    #[test]
    fn endpoint_origins_are_checked() {
        assert!(endpoint_origin("https://tokens.example").is_ok());
        assert!(endpoint_origin("http://127.0.0.1:9000").is_ok());
        for (given, reason) in [
            ("tokens.example", "not a URL"),
            ("http://tokens.example", "https://"),
            ("https://tokens.example/connect", "without a path"),
        ] {
            let err = endpoint_origin(given).unwrap_err();
            assert!(err.to_string().contains(reason) && err.to_string().contains(given), "{given}: {err}");
        }
        let err = endpoint_origin("https://user:hunter2@tokens.example").unwrap_err();
        assert!(err.to_string().contains("credentials") && !err.to_string().contains("hunter2"), "{err}");
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
}
