//! [`TokenProviderBuilder`]: every setting of a provider, validated once in
//! `build()`, which sends nothing.

use std::sync::Arc;
use std::time::Duration;

use super::handle::TokenProvider;
use super::jitter::Jitter;
use super::retry::RetryPolicy;
use super::wire::Resolve;
use crate::config::region::Region;
use crate::config::settings::{Settings, settings_setters};
use crate::error::ConfigError;
use crate::error::Error;
use crate::grant::CredentialSource;
use crate::grant::{ClientAuth, ClientId, ClientSecret, Credentials, ExpiryPolicy, TokenSet};
use crate::http::LazyClient;
use crate::store::record::StoredTokens;
use crate::store::{StoreEncryptionKey, StoreEncryptionKeys, StoreKey, TokenStore};

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
    pub(super) settings: Settings,
    pub(super) credentials: Option<Credentials>,
    pub(super) token_set: Option<(TokenSet, ClientAuth)>,
    pub(super) hard_margin: Duration,
    pub(super) soft_window: Duration,
    pub(super) expiry: ExpiryPolicy,
    pub(super) retry: RetryPolicy,
    pub(super) background_refresh: bool,
    pub(super) http_client: Option<LazyClient>,
    /// Set by `OidcClient`: finds the token endpoint and client
    /// authentication by discovery on the first request.
    pub(super) resolve: Option<Resolve>,
    pub(super) jitter: Jitter,
    pub(super) store: Option<Arc<dyn TokenStore>>,
    pub(super) store_key: Option<StoreKey>,
    pub(super) store_encryption_keys: Option<StoreEncryptionKeys>,
    pub(super) store_idle_timeout: Duration,
    pub(super) revoke: Option<super::hooks::Revoke>,
    pub(super) check_id_token: Option<super::hooks::CheckIdToken>,
    pub(super) lease_time: Option<Duration>,
    pub(super) stored_session: Option<ClientAuth>,
    /// Set by `build_saved`, which saves the starting token set itself.
    pub(super) allow_unsaved: bool,
    pub(super) source: Option<Arc<dyn CredentialSource>>,
    pub(super) tenant: Option<Arc<str>>,
}

impl std::fmt::Debug for TokenProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProviderBuilder")
            .field("region", &self.settings.region)
            .field("credentials", &self.credentials)
            .field("token_set", &self.token_set.as_ref().map(|(set, _)| set))
            .field("scopes", &self.settings.scopes)
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
            settings: Settings::default(),
            credentials: None,
            token_set: None,
            hard_margin: DEFAULT_HARD_MARGIN,
            soft_window: DEFAULT_SOFT_WINDOW,
            expiry: ExpiryPolicy::default(),
            retry: RetryPolicy::default(),
            background_refresh: false,
            http_client: None,
            resolve: None,
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
        }
    }
}

impl TokenProviderBuilder {
    settings_setters!();

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
        self.settings.region()
    }

    /// A deferred HTTP client with this builder's timeouts, for providers to
    /// share; `None` when the builder has a client of its own.
    pub(super) fn shareable_http_client(&self) -> Result<Option<LazyClient>, ConfigError> {
        match self.http_client {
            Some(_) => Ok(None),
            None => LazyClient::new(self.settings.connect_timeout, self.settings.request_timeout).map(Some),
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
