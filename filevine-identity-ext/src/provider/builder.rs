//! [`TokenProviderBuilder`]: every setting of a provider, validated once in
//! `build()`, which sends nothing.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::{Current, Timing};
use super::derived_key::SourcedKey;
use super::engine::Inner;
use super::handle::TokenProvider;
use super::jitter::Jitter;
use super::link::StoreLink;
use super::retry::RetryPolicy;
use super::sync::next_provider_id;
use super::wire::{Resolve, Wire};
use crate::config::env::{self, EnvSource, Lookup};
use crate::config::env::{STORE_KEY, TOKEN_STORE};
use crate::config::region::Region;
use crate::config::scope::Scopes;
use crate::error::ConfigError;
use crate::error::Error;
use crate::grant::CredentialSource;
use crate::grant::{ClientAuth, ClientId, ClientSecret, Credentials, ExpiryPolicy, Grant, TokenSet};
use crate::http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, LazyClient};
use crate::store::record::StoredTokens;
use crate::store::{StoreEncryptionKey, StoreEncryptionKeys, StoreKey, TokenStore};
use crate::time::{Clock, TimeSource};

/// Default hard margin: Filevine's samples refresh a minute before expiry.
pub const DEFAULT_HARD_MARGIN: Duration = Duration::from_secs(60);
/// How long a stored session stays after its last refresh unless
/// [`store_idle_timeout`](TokenProviderBuilder::store_idle_timeout) says
/// otherwise: 30 days. The SDK's choice, not a Filevine figure (Filevine
/// does not publish its refresh tokens' lifetime); set your own.
pub const DEFAULT_STORE_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default soft window before the hard margin.
pub const DEFAULT_SOFT_WINDOW: Duration = Duration::from_secs(300);

/// Configures a [`TokenProvider`]. Validated in [`TokenProviderBuilder::build`].
///
/// Precedence for the region, credentials and scopes: what is set here,
/// then the environment, then the default (US; gateway scopes).
#[must_use]
pub struct TokenProviderBuilder {
    region: Option<Region>,
    credentials: Option<Credentials>,
    token_set: Option<(TokenSet, ClientAuth)>,
    scopes: Option<Scopes>,
    hard_margin: Duration,
    soft_window: Duration,
    expiry: ExpiryPolicy,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    background_refresh: bool,
    http_client: Option<LazyClient>,
    /// Set by `OidcClient`: finds the token endpoint and client
    /// authentication by discovery on the first request.
    resolve: Option<Resolve>,
    env: EnvSource,
    clock: Clock,
    jitter: Jitter,
    store: Option<Arc<dyn TokenStore>>,
    store_key: Option<StoreKey>,
    store_encryption_keys: Option<StoreEncryptionKeys>,
    store_idle_timeout: Duration,
    revoke: Option<super::hooks::Revoke>,
    check_id_token: Option<super::hooks::CheckIdToken>,
    lease_time: Option<Duration>,
    stored_session: Option<ClientAuth>,
    /// Set by `build_saved`, which saves the starting token set itself.
    allow_unsaved: bool,
    source: Option<Arc<dyn CredentialSource>>,
    tenant: Option<Arc<str>>,
    dpop: Option<bool>,
}

impl std::fmt::Debug for TokenProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProviderBuilder")
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("token_set", &self.token_set.as_ref().map(|(set, _)| set))
            .field("scopes", &self.scopes)
            .field("hard_margin", &self.hard_margin)
            .field("soft_window", &self.soft_window)
            .field("background_refresh", &self.background_refresh)
            .field("store", &self.store)
            .field("store_key", &self.store_key)
            .finish_non_exhaustive()
    }
}

impl Default for TokenProviderBuilder {
    fn default() -> Self {
        Self {
            region: None,
            credentials: None,
            token_set: None,
            scopes: None,
            hard_margin: DEFAULT_HARD_MARGIN,
            soft_window: DEFAULT_SOFT_WINDOW,
            expiry: ExpiryPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
            background_refresh: false,
            http_client: None,
            resolve: None,
            env: Box::new(env::process_env),
            clock: Clock::System,
            jitter: Jitter::Random,
            store: None,
            store_key: None,
            store_encryption_keys: None,
            store_idle_timeout: DEFAULT_STORE_IDLE_TIMEOUT,
            revoke: None,
            check_id_token: None,
            lease_time: None,
            stored_session: None,
            allow_unsaved: false,
            source: None,
            tenant: None,
            dpop: None,
        }
    }
}

impl TokenProviderBuilder {
    /// The region or custom authority. Default: `FILEVINE_AUTHORITY` /
    /// `FILEVINE_REGION`, else US.
    pub fn region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// The credentials to exchange. Default: from the environment
    /// ([`Credentials::from_env`]).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Starts from a token set (e.g. from the authorization code flow) and
    /// keeps it fresh with its refresh token, authenticating as `client_id`
    /// (with `client_secret` for a confidential client). The token set must
    /// carry a refresh token.
    pub fn token_set(mut self, token_set: TokenSet, client_id: ClientId, client_secret: Option<ClientSecret>) -> Self {
        self.token_set = Some((token_set, ClientAuth::with_secret(client_id, client_secret)));
        self
    }

    /// The scopes to request. Default: `FILEVINE_SCOPES`, else
    /// [`Scopes::gateway`] for PAT and client credentials (a refresh asks
    /// for the original scopes by sending none).
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Never hand out a token with less than this left (default 60 s; for
    /// tokens living less than twice this, half their lifetime).
    pub fn hard_margin(mut self, margin: Duration) -> Self {
        self.hard_margin = margin;
        self
    }

    /// How long before the hard margin a background refresh may start
    /// (default 5 min, at most half the usable lifetime; jittered).
    pub fn soft_window(mut self, window: Duration) -> Self {
        self.soft_window = window;
        self
    }

    /// How `expires_in` is interpreted (missing and absurd values).
    pub fn expiry_policy(mut self, policy: ExpiryPolicy) -> Self {
        self.expiry = policy;
        self
    }

    /// Connect timeout (default 3 s). Ignored with [`Self::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout of one request attempt (default 10 s). Ignored with
    /// [`Self::http_client`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Attempts per token request, the first included (default 3). Only
    /// network errors, timeouts, 5xx and 429 are retried.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts;
        self
    }

    /// Bound on one whole token request, retries and waits included
    /// (default 30 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.retry.total_timeout = timeout;
        self
    }

    /// The full retry policy (attempts, backoff, total bound).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Refresh in a background task ahead of expiry, so `token()` never
    /// waits on the network after the first token (default off). The task
    /// ends when the last clone of the provider is dropped.
    pub fn background_refresh(mut self, enabled: bool) -> Self {
        self.background_refresh = enabled;
        self
    }

    /// Use this `reqwest::Client` (its timeouts, proxy, TLS settings).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(LazyClient::ready(client));
        self
    }

    /// An `OidcClient`'s HTTP client, built lazily and shared with it.
    #[cfg(feature = "oidc")]
    pub(crate) fn shared_http(mut self, client: LazyClient) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Finds the token endpoint and client authentication on the first
    /// request (an `OidcClient`'s discovery) instead of at build.
    #[cfg(feature = "oidc")]
    pub(crate) fn resolve_with(mut self, resolve: Resolve) -> Self {
        self.resolve = Some(resolve);
        self
    }

    /// Read configuration from this function instead of the process
    /// environment (tests, or an application's own configuration source).
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Box::new(lookup);
        self
    }

    /// The clock token deadlines are checked against (default: the system's;
    /// see [`crate::time`]). Tests pass a
    /// [`ManualTimeSource`](crate::time::ManualTimeSource) to move time
    /// without sleeping.
    pub fn time_source(mut self, source: impl TimeSource + 'static) -> Self {
        self.clock = Clock::Source(Arc::new(source));
        self
    }

    /// Always use this fraction of the soft window and of backoff ceilings
    /// instead of a random one, so tests can compute deadlines exactly.
    #[cfg(feature = "test-util")]
    pub fn fixed_jitter(mut self, fraction: f64) -> Self {
        self.jitter = Jitter::Fixed(fraction);
        self
    }

    /// Shares token sets through `store` (see [`crate::store`]): other
    /// processes, restarts and replicas use what this provider saves.
    /// Default: [`TOKEN_STORE`](crate::store::TOKEN_STORE)
    /// (`FILEVINE_TOKEN_STORE`), else none (memory of this provider only).
    pub fn store(mut self, store: impl TokenStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The key the token set is stored under. Required for a user's token
    /// set (name the session: [`StoreKey::session`]); for a PAT or client
    /// credentials the default is derived from the authority, grant,
    /// client id, scopes and a hash of the credential. The provider binds
    /// the key to its authority and client id
    /// ([`TokenProvider::store_key`](crate::provider::TokenProvider::store_key) shows
    /// the bound key): two applications sharing a store never read each
    /// other's token sets.
    pub fn store_key(mut self, key: StoreKey) -> Self {
        self.store_key = Some(key);
        self
    }

    /// Encrypts stored token sets with this key (AES-256-GCM). Default:
    /// [`STORE_KEY`](crate::store::STORE_KEY) (`FILEVINE_STORE_KEY`), else
    /// unencrypted (with a warning for a store outside this process).
    pub fn store_encryption_key(mut self, key: StoreEncryptionKey) -> Self {
        self.store_encryption_keys = Some(key.into());
        self
    }

    /// Encrypts stored token sets with the first of `keys` and opens them
    /// with any (rotating the key without signing anyone out). Default:
    /// [`STORE_KEY`](crate::store::STORE_KEY) (`FILEVINE_STORE_KEY`, keys
    /// separated by commas, the sealing key first).
    pub fn store_encryption_keys(mut self, keys: StoreEncryptionKeys) -> Self {
        self.store_encryption_keys = Some(keys);
        self
    }

    /// How long a token set with a refresh token (a user's session), or the
    /// mark a sign-out leaves, stays in the store after its last write
    /// (default [`DEFAULT_STORE_IDLE_TIMEOUT`]): each refresh writes it
    /// again, so a session in use stays and an abandoned one is removed by
    /// the store. Set it to the application's session idle timeout. A token
    /// set without a refresh token stays as long as its access token lives.
    pub fn store_idle_timeout(mut self, idle: Duration) -> Self {
        self.store_idle_timeout = idle;
        self
    }

    /// Revokes what the provider discards (a refresh answer that arrives
    /// after a sign-out).
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) fn revoke_discarded(mut self, revoke: super::hooks::Revoke) -> Self {
        self.revoke = Some(revoke);
        self
    }

    /// Checks the ID token of every refresh response before anything of it
    /// is used (see `id_check`).
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) fn check_id_tokens(mut self, check: super::hooks::CheckIdToken) -> Self {
        self.check_id_token = Some(check);
        self
    }

    /// How long a refresh may hold the store's lease before another process
    /// takes over (default: the total timeout plus 5 s). At least the total
    /// timeout, so a slow but live refresh is not raced.
    pub fn lease_time(mut self, lease: Duration) -> Self {
        self.lease_time = Some(lease);
        self
    }

    /// A user's token set that lives in the store under
    /// [`store_key`](Self::store_key): after a restart, or on another
    /// replica, the provider reads the refresh token from the store and
    /// keeps it rotating there. Authenticates as `client_id` (with
    /// `client_secret` for a confidential client).
    /// [`OidcClient::stored_session`](crate::oidc::OidcClient::stored_session)
    /// fills these in from the sign-in configuration.
    pub fn stored_session(mut self, client_id: ClientId, client_secret: Option<ClientSecret>) -> Self {
        self.stored_session = Some(ClientAuth::with_secret(client_id, client_secret));
        self
    }

    /// Builds the provider and saves its starting [token set](Self::token_set)
    /// to the store, so that a restart or another replica can continue
    /// from it. Without a store it is [`build`](Self::build).
    ///
    /// # Errors
    /// A [`ConfigError`] as from `build`, or [`Error::Store`] when the
    /// store cannot save.
    pub async fn build_saved(mut self) -> Result<TokenProvider, Error> {
        let initial = self.token_set.as_ref().map(|(set, _)| StoredTokens::from(set.clone()));
        self.allow_unsaved = true;
        let provider = self.build()?;
        if let (Some(link), Some(tokens)) = (&provider.inner.store, initial) {
            link.save(&tokens).await?;
        }
        Ok(provider)
    }

    /// Uses `http` (shared with other providers) unless a client was set.
    pub(super) fn share_http_client(&mut self, http: LazyClient) {
        self.http_client.get_or_insert(http);
    }

    /// Whether a credential source is set (a registry template must not
    /// set one: it would stand in for every tenant's credentials).
    pub(super) fn has_credential_source(&self) -> bool {
        self.source.is_some()
    }

    /// The region this builder would build with.
    pub(super) fn resolved_region(&self) -> Result<Region, ConfigError> {
        Ok(Region::resolve_with(self.region.clone(), &*self.env)?)
    }

    /// A deferred HTTP client with this builder's timeouts, for providers to
    /// share; `None` when the builder has a client of its own.
    pub(super) fn shareable_http_client(&self) -> Result<Option<LazyClient>, ConfigError> {
        match self.http_client {
            Some(_) => Ok(None),
            None => LazyClient::new(self.connect_timeout, self.request_timeout).map(Some),
        }
    }

    /// Credentials asked of `source` on each refresh instead of fixed ones
    /// (a rotated PAT or client secret is picked up without a restart): see
    /// [`CredentialSource`]. Without `credentials` or a source,
    /// `FILEVINE_PAT_FILE` / `FILEVINE_CLIENT_SECRET_FILE` make a
    /// [`FileCredentials`](crate::grant::FileCredentials).
    ///
    /// ```
    /// use filevine_identity_ext::TokenProvider;
    /// use filevine_identity_ext::grant::FileCredentials;
    ///
    /// let provider = TokenProvider::builder()
    ///     .credential_source(FileCredentials::personal_access_token("/run/secrets/filevine-pat"))
    ///     .build()?; // reads nothing yet
    /// # Ok::<(), filevine_identity_ext::ConfigError>(())
    /// ```
    pub fn credential_source(mut self, source: impl CredentialSource + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// A non-secret label for the caller this provider acts for (a firm's
    /// id): a `tenant` field on its `token_refresh` span and a `tenant`
    /// label on its metrics. [`TokenProviders`](crate::provider::TokenProviders)
    /// sets it to the label each provider is asked for with. Never put a
    /// secret here; keep the number of values bounded, as with any metric
    /// label.
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Asks for DPoP-bound tokens (RFC 9449): a key pair is made on the
    /// first request and kept with the token set (in the store, sealed), a
    /// proof goes with each token request, and the tokens answered as
    /// `DPoP` go out only with a proof ([`AccessToken::dpop_proof`](crate::grant::AccessToken::dpop_proof);
    /// [`BearerAuth`](crate::api::BearerAuth) adds it). Default: the
    /// `FILEVINE_DPOP` environment variable (`true`/`false`), else off; off,
    /// a server's `invalid_dpop_proof` still turns it on.
    ///
    /// ```
    /// # use filevine_identity_ext::{TokenProvider, Credentials, PersonalAccessToken};
    /// let provider = TokenProvider::builder()
    ///     .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_…")?))
    ///     .dpop(true)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dpop(mut self, enabled: bool) -> Self {
        self.dpop = Some(enabled);
        self
    }

    /// Validates the configuration and builds the provider. Sends nothing.
    ///
    /// # Errors
    /// A [`ConfigError`] naming what is missing or wrong.
    pub fn build(mut self) -> Result<TokenProvider, ConfigError> {
        let lookup: Lookup<'_> = &*self.env;
        let region = Region::resolve_with(self.region, lookup)?;
        let scopes = match self.scopes {
            Some(scopes) => Some(scopes),
            None => env::scopes(lookup)?,
        };
        if self.source.is_some() {
            let other = if self.credentials.is_some() {
                Some("fixed credentials")
            } else if self.token_set.is_some() {
                Some("a token set")
            } else if self.stored_session.is_some() {
                Some("a stored session")
            } else {
                None
            };
            if let Some(other) = other {
                return Err(ConfigError::SourceWithCredentials { other });
            }
        }
        let (credentials, initial, refresh_token, id_token) = match (self.token_set, self.stored_session) {
            (_, Some(client)) => {
                (Credentials { grant: Grant::StoredRefreshToken, client: Some(client) }, None, None, None)
            }
            (Some((set, client)), None) => {
                let refresh = set.refresh_token.clone().ok_or(ConfigError::NoRefreshToken)?;
                let credentials = Credentials { grant: Grant::RefreshToken(refresh.clone()), client: Some(client) };
                (credentials, Some(set.access_token), Some(refresh), set.id_token)
            }
            (None, None) => {
                let credentials = match (self.credentials, &self.source) {
                    (Some(credentials), _) => credentials,
                    (None, Some(source)) => Credentials { grant: Grant::Sourced(source.grant_type()), client: None },
                    (None, None) => match crate::grant::source::from_lookup(lookup)? {
                        Some(source) => {
                            let credentials = Credentials { grant: Grant::Sourced(source.grant_type()), client: None };
                            self.source = Some(Arc::new(source));
                            credentials
                        }
                        None => Credentials::from_lookup(lookup)?,
                    },
                };
                let refresh = match &credentials.grant {
                    Grant::RefreshToken(token) => Some(token.clone()),
                    _ => None,
                };
                (credentials, None, refresh, None)
            }
        };
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        if self.retry.total_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { setting: "total_timeout" });
        }
        // Nothing is built or opened here: the HTTP client (and its TLS
        // roots) comes with the first request that needs it.
        let http = match self.http_client {
            Some(client) => client,
            None => LazyClient::new(self.connect_timeout, self.request_timeout)?,
        };
        let enforced_attempt_timeout = http.sdk_timeout();
        if self.background_refresh && tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime { feature: "background refresh" });
        }
        let scope = scopes.as_ref().map(Scopes::to_string).or_else(|| match credentials.grant {
            // PAT and client credentials ask for the gateway scopes by default.
            Grant::PersonalAccessToken(_) | Grant::ClientCredentials | Grant::Sourced(_) => {
                Some(Scopes::gateway().to_string())
            }
            Grant::RefreshToken(_) | Grant::StoredRefreshToken => None,
        });
        let store = match self.store {
            Some(store) => Some(store),
            None => lookup(TOKEN_STORE)
                .filter(|v| !v.trim().is_empty())
                .map(|spec| crate::store::open(&spec))
                .transpose()?,
        };
        let mut sourced_key = None;
        let store = match store {
            Some(store) => {
                let seal = match self.store_encryption_keys {
                    Some(keys) => Some(keys),
                    None => lookup(STORE_KEY)
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| StoreEncryptionKeys::parse(&v))
                        .transpose()?,
                };
                if self.store_idle_timeout.is_zero() {
                    return Err(ConfigError::ZeroDuration { setting: "store_idle_timeout" });
                }
                if seal.is_none() && store.requires_encryption() {
                    return Err(ConfigError::StoreNeedsEncryption { store: store.kind() });
                }
                // Bound to this authority and client: another app on the
                // same store never shares a token set by session name.
                let named = self
                    .store_key
                    .map(|key| key.bound(region.identity_url(), credentials.client_id().map_or("", ClientId::as_str)));
                if matches!(credentials.grant, Grant::Sourced(_)) {
                    sourced_key = Some(match &named {
                        Some(named) => SourcedKey::Named(named.clone()),
                        None => SourcedKey::Derived,
                    });
                }
                let key = match named {
                    Some(key) => key,
                    None => {
                        super::derived_key::derived_key(&region, &credentials, self.source.as_deref(), scope.as_deref())
                            .ok_or(ConfigError::StoreKeyRequired)?
                    }
                };
                let lease = self.lease_time.unwrap_or(self.retry.total_timeout.saturating_add(Duration::from_secs(5)));
                if lease < self.retry.total_timeout {
                    return Err(ConfigError::LeaseTooShort { lease, total_timeout: self.retry.total_timeout });
                }
                if initial.is_some() && !self.allow_unsaved {
                    return Err(ConfigError::UnsavedTokenSet);
                }
                let strict = credentials.is_refresh();
                Some(StoreLink::new((store, key), seal, (self.store_idle_timeout, lease), strict, self.clock.clone()))
            }
            None if matches!(credentials.grant, Grant::StoredRefreshToken) => return Err(ConfigError::NoStore),
            None => None,
        };
        let dpop = match self.dpop {
            Some(enabled) => enabled,
            None => env::flag(lookup, env::DPOP)?,
        };
        let dpop_key = initial.as_ref().and_then(|token| token.dpop_key().cloned());
        let mut wire = Wire::new(http, region.identity_url(), self.resolve, self.clock.clone());
        if let Some(ClientAuth { id, key: Some(key), .. }) = &credentials.client {
            wire = wire.with_client_key(key.clone(), id.as_str());
        }
        let metrics = crate::metrics::ProviderMetrics::new(
            region.identity_url(),
            credentials.grant_type(),
            self.tenant.as_deref(),
        );
        let inner = Arc::new(Inner {
            id: next_provider_id(),
            metrics,
            wire,
            dpop,
            dpop_demanded: AtomicBool::new(false),
            dpop_key: Mutex::new(dpop_key),
            region,
            scope,
            credentials,
            source: self.source,
            sourced_key,
            tenant: self.tenant,
            refresh_token: Mutex::new(refresh_token),
            id_token: Mutex::new(id_token),
            timing: Timing { hard_margin: self.hard_margin, soft_window: self.soft_window },
            expiry: self.expiry,
            retry: self.retry,
            enforced_attempt_timeout,
            request_timeout: self.request_timeout,
            clock: self.clock,
            jitter: self.jitter,
            background: self.background_refresh,
            current: Current::default(),
            generation: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            flight: Mutex::default(),
            timer: Mutex::new(None),
            runtime: tokio::runtime::Handle::try_current().ok(),
            store,
            epoch: AtomicU64::new(0),
            signed_out: AtomicBool::new(false),
            revoke: self.revoke,
            check_id_token: self.check_id_token,
        });
        match initial {
            Some(token) => {
                let cached = inner.timing.deadlines(token.clone(), inner.clock.now(), token.expires_in(), inner.jitter);
                inner.set_current(Some(Arc::new(cached)));
            }
            // Refreshing in the background starts with the first token.
            None if self.background_refresh => Inner::start_soft_refresh(&inner),
            None => {}
        }
        Ok(TokenProvider { inner })
    }
}

impl TokenProvider {
    /// Starts configuring a provider. Everything not set explicitly comes
    /// from the environment, then from defaults.
    ///
    /// With the `ring` feature (and not `aws-lc`), this also makes ring
    /// rustls's process-wide crypto provider if none is installed, so a
    /// `reqwest::Client` built afterwards, e.g. for
    /// [`http_client`](TokenProviderBuilder::http_client), finds one.
    pub fn builder() -> TokenProviderBuilder {
        crate::crypto::install_default_provider();
        TokenProviderBuilder::default()
    }

    /// A provider configured entirely from the environment:
    /// `FILEVINE_PAT` / `FILEVINE_CLIENT_ID` / `FILEVINE_CLIENT_SECRET`,
    /// `FILEVINE_SCOPES`, `FILEVINE_REGION` / `FILEVINE_AUTHORITY`.
    ///
    /// # Errors
    /// A [`ConfigError`](crate::error::ConfigError) naming the missing or malformed variable.
    pub fn from_env() -> Result<Self, crate::error::ConfigError> {
        Self::builder().build()
    }
}
