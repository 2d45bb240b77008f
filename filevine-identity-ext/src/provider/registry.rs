//! Many providers, one per credential and scope set: a bounded registry for
//! a service that acts for many firms.
//!
//! Why the SDK holds this map and not the application: the subtle parts are
//! easy to get wrong by hand. Two providers for one credential make two
//! exchanges and two caches; a map without a bound grows with every firm
//! ever seen; a map keyed by the credential alone hands a token granted for
//! one scope set to a caller who asked for another.
//!
//! The rules:
//! - the key is a SHA-256 digest of the authority, the grant, the client id,
//!   the scopes and the credential (never the secret itself), so equal
//!   requests share one provider (one cache, one single flight) and
//!   different scopes never share a token;
//! - at most [`TokenProvidersBuilder::max_providers`] providers are held; a
//!   new one evicts the least recently used, and one unused for
//!   [`TokenProvidersBuilder::idle_timeout`] is dropped when next seen;
//! - evicting drops the registry's handle only: a refresh in flight outlives
//!   every handle (in a task of its own once no caller waits) and still
//!   finishes (and is saved, with a store), and a caller holding the
//!   provider keeps a working provider;
//! - every provider is made from one template, so a fleet of registries
//!   shares tokens through a Redis or PostgreSQL store as providers do, and
//!   all of them share one HTTP client (one connection pool, one TLS setup);
//! - metrics and spans carry the caller's label (a firm's id, say) as
//!   `tenant`, never the credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument as _;

use super::builder::TokenProviderBuilder;
use super::handle::TokenProvider;
use super::sync::lock;
use crate::config::region::Region;
use crate::config::scope::Scopes;
use crate::error::{ConfigError, Error};
use crate::grant::{AccessToken, ClientId, ClientSecret, Credentials, Grant};
use crate::http::LazyClient;
use crate::store::StoreKey;
use crate::time::{Clock, Stamp, TimeSource};

/// Default bound on the providers held.
pub const DEFAULT_MAX_PROVIDERS: usize = 1_000;
/// Default time after which an unused provider is dropped.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3_600);

/// The providers of many credentials, made on first use and shared after.
/// `Clone` shares the registry.
///
/// - Keyed by a SHA-256 digest of the authority, grant, client id, scopes
///   and credential (never the secret itself): equal requests share one
///   provider and one single flight; different scopes never share a token.
/// - At most [`TokenProvidersBuilder::max_providers`] held (the least
///   recently used is evicted); one unused for
///   [`TokenProvidersBuilder::idle_timeout`] is dropped. Evicting never
///   cancels a refresh in flight.
/// - Every provider comes from one template (so a fleet shares tokens
///   through a Redis or PostgreSQL store) and one HTTP client.
/// - Spans and metrics carry the caller's label (a firm's id) as `tenant`,
///   never the credential.
///
/// ```
/// use filevine_identity_ext::provider::{TokenProvider, TokenProviders};
/// use filevine_identity_ext::{Credentials, PersonalAccessToken, Region, Scopes};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let providers = TokenProviders::builder()
///     .template(|| TokenProvider::builder().region(Region::Us))
///     .max_providers(500)
///     .build()?;
/// let firm_pat = Credentials::personal_access_token(PersonalAccessToken::new("fvpat_…")?);
/// // Built on first use (no I/O), the same provider on every later call.
/// let provider = providers.provider(&firm_pat, &Scopes::gateway(), "firm-42")?;
/// # drop(provider);
/// // Or straight to a token: `providers.token(&firm_pat, &Scopes::gateway(), "firm-42").await?`
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenProviders {
    inner: Arc<Inner>,
}

type Template = Box<dyn Fn() -> TokenProviderBuilder + Send + Sync>;

/// A registry key: SHA-256 over the length-prefixed parts, the credential
/// among them. Only the digest is kept.
type Key = [u8; 32];

fn key(parts: &[&[u8]]) -> Key {
    let mut hasher = crate::crypto::Sha256::new();
    hasher.update(b"filevine-identity registry v1");
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finish()
}

struct Inner {
    template: Template,
    region: Region,
    http: Option<LazyClient>,
    max: usize,
    idle: Duration,
    clock: Clock,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    /// Bumped on every use: the least recently used entry has the lowest.
    tick: u64,
}

struct Entry {
    provider: TokenProvider,
    label: Arc<str>,
    used_at: Stamp,
    tick: u64,
}

impl std::fmt::Debug for TokenProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProviders")
            .field("region", &self.inner.region)
            .field("providers", &self.len())
            .field("max_providers", &self.inner.max)
            .field("idle_timeout", &self.inner.idle)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenProviders`] registry. Sends nothing and opens nothing.
#[must_use]
pub struct TokenProvidersBuilder {
    template: Option<Template>,
    max: usize,
    idle: Duration,
    clock: Clock,
}

impl std::fmt::Debug for TokenProvidersBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvidersBuilder")
            .field("max_providers", &self.max)
            .field("idle_timeout", &self.idle)
            .finish_non_exhaustive()
    }
}

impl TokenProviders {
    /// A registry builder: default template `TokenProvider::builder()` (the
    /// region, store and timeouts from the environment), at most
    /// [`DEFAULT_MAX_PROVIDERS`], idle for [`DEFAULT_IDLE_TIMEOUT`].
    pub fn builder() -> TokenProvidersBuilder {
        TokenProvidersBuilder {
            template: None,
            max: DEFAULT_MAX_PROVIDERS,
            idle: DEFAULT_IDLE_TIMEOUT,
            clock: Clock::System,
        }
    }

    /// The provider for a PAT or client credentials asking for `scopes`:
    /// the one already held for the same credential, authority, client and
    /// scopes, or a new one (built now, no I/O). `label` names the caller in
    /// logs, spans and metrics (a firm's id; never a secret).
    ///
    /// # Errors
    /// [`ConfigError::RegistryCredentials`] for a refresh token (it changes
    /// with every refresh: use [`TokenProviders::session`]); any error of
    /// building the provider from the template.
    pub fn provider(
        &self,
        credentials: &Credentials,
        scopes: &Scopes,
        label: &str,
    ) -> Result<TokenProvider, ConfigError> {
        let scope = scopes.to_string();
        let secret = match &credentials.grant {
            Grant::PersonalAccessToken(pat) => pat.expose_secret(),
            Grant::ClientCredentials => credentials
                .client
                .as_ref()
                .and_then(|client| client.secret.as_ref())
                .map(ClientSecret::expose_secret)
                .ok_or(ConfigError::RegistryCredentials)?,
            Grant::RefreshToken(_) | Grant::StoredRefreshToken | Grant::Sourced(_) => {
                return Err(ConfigError::RegistryCredentials);
            }
        };
        let client_id = credentials.client_id().map_or("", ClientId::as_str);
        let key = key(&[
            self.inner.region.identity_url().as_bytes(),
            credentials.grant_type().as_bytes(),
            client_id.as_bytes(),
            scope.as_bytes(),
            secret.as_bytes(),
        ]);
        self.get_or_build(key, label, || {
            self.template().credentials(credentials.clone()).scopes(scopes.clone()).tenant(label).build()
        })
    }

    /// The provider of a signed-in user's session saved in the template's
    /// token store under `session` (see
    /// [`TokenProviderBuilder::stored_session`]), asking for `scopes`.
    ///
    /// # Errors
    /// Any error of building the provider (no token store configured:
    /// [`ConfigError::NoStore`]).
    pub fn session(
        &self,
        session: &StoreKey,
        client_id: &ClientId,
        client_secret: Option<&ClientSecret>,
        scopes: &Scopes,
        label: &str,
    ) -> Result<TokenProvider, ConfigError> {
        let scope = scopes.to_string();
        let key = key(&[
            self.inner.region.identity_url().as_bytes(),
            b"stored_session",
            client_id.as_str().as_bytes(),
            scope.as_bytes(),
            session.as_str().as_bytes(),
            client_secret.map_or(&b""[..], |secret| secret.expose_secret().as_bytes()),
        ]);
        self.get_or_build(key, label, || {
            self.template()
                .stored_session(client_id.clone(), client_secret.cloned())
                .store_key(session.clone())
                .scopes(scopes.clone())
                .tenant(label)
                .build()
        })
    }

    /// A token for `credentials` and `scopes`, through the registry's
    /// provider for them; the refresh's spans sit under a `tenant_token`
    /// span carrying `label`.
    ///
    /// # Errors
    /// As [`TokenProviders::provider`] (as [`Error::Config`]) and
    /// [`TokenProvider::token`].
    pub async fn token(&self, credentials: &Credentials, scopes: &Scopes, label: &str) -> Result<AccessToken, Error> {
        let span = tracing::info_span!("tenant_token", tenant = label);
        async {
            let provider = self.provider(credentials, scopes, label)?;
            provider.token().await
        }
        .instrument(span)
        .await
    }

    /// How many providers are held now.
    pub fn len(&self) -> usize {
        lock(&self.inner.entries).map.len()
    }

    /// Whether no provider is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every provider unused for the idle timeout now (it happens
    /// anyway whenever a provider is added). Returns how many were dropped.
    pub fn evict_idle(&self) -> usize {
        let now = self.inner.clock.now();
        let mut entries = lock(&self.inner.entries);
        self.evict_idle_locked(&mut entries, now)
    }

    fn template(&self) -> TokenProviderBuilder {
        let mut builder = (self.inner.template)().region(self.inner.region.clone());
        if let Some(http) = &self.inner.http {
            builder.share_http_client(http.clone());
        }
        builder
    }

    fn get_or_build(
        &self,
        key: Key,
        label: &str,
        build: impl FnOnce() -> Result<TokenProvider, ConfigError>,
    ) -> Result<TokenProvider, ConfigError> {
        let now = self.inner.clock.now();
        let mut entries = lock(&self.inner.entries);
        entries.tick += 1;
        let tick = entries.tick;
        if let Some(entry) = entries.map.get_mut(&key) {
            if now.before(entry.used_at.plus(self.inner.idle)) {
                entry.used_at = now;
                entry.tick = tick;
                return Ok(entry.provider.clone());
            }
            let idle = entries.map.remove(&key).map(|entry| entry.label);
            evicted(idle.as_deref(), "idle");
        }
        // Built under the lock (no I/O, microseconds): two first callers for
        // one credential get one provider.
        let provider = build()?;
        self.evict_idle_locked(&mut entries, now);
        while entries.map.len() >= self.inner.max {
            let Some(oldest) = entries.map.iter().min_by_key(|(_, entry)| entry.tick).map(|(key, _)| *key) else {
                break;
            };
            let label = entries.map.remove(&oldest).map(|entry| entry.label);
            evicted(label.as_deref(), "capacity");
        }
        tracing::debug!(label, providers = entries.map.len() + 1, "added a provider to the registry");
        entries.map.insert(key, Entry { provider: provider.clone(), label: label.into(), used_at: now, tick });
        crate::metrics::registry_size(entries.map.len());
        Ok(provider)
    }

    fn evict_idle_locked(&self, entries: &mut Entries, now: Stamp) -> usize {
        let idle = self.inner.idle;
        let before = entries.map.len();
        entries.map.retain(|_, entry| {
            let keep = now.before(entry.used_at.plus(idle));
            if !keep {
                evicted(Some(&entry.label), "idle");
            }
            keep
        });
        crate::metrics::registry_size(entries.map.len());
        before - entries.map.len()
    }
}

/// Logs and counts an eviction.
fn evicted(label: Option<&str>, reason: &'static str) {
    tracing::debug!(label, reason, "dropped a provider from the registry");
    crate::metrics::registry_eviction(reason);
}

impl TokenProvidersBuilder {
    /// How each provider starts: a closure returning a
    /// [`TokenProviderBuilder`] with the settings every provider shares
    /// (region, store, timeouts, retry policy). The registry sets the
    /// credentials, scopes and `tenant` label, and one HTTP client for all
    /// (unless the template sets its own). It runs under the registry's
    /// lock, so it must not call the registry. A provider keeps the label
    /// it was first made with, should another caller name the same
    /// credential and scopes with another label.
    pub fn template(mut self, template: impl Fn() -> TokenProviderBuilder + Send + Sync + 'static) -> Self {
        self.template = Some(Box::new(template));
        self
    }

    /// The most providers held at once (default [`DEFAULT_MAX_PROVIDERS`]);
    /// adding one more evicts the least recently used.
    pub fn max_providers(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// How long an unused provider is kept (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// The clock idle times are read on (default: the system's).
    pub fn time_source(mut self, source: impl TimeSource + 'static) -> Self {
        self.clock = Clock::Source(Arc::new(source));
        self
    }

    /// Builds the registry. Sends nothing, builds no provider yet.
    ///
    /// # Errors
    /// [`ConfigError::ZeroProviders`] for `max_providers(0)`,
    /// [`ConfigError::ZeroDuration`] for a zero idle timeout, a region the
    /// template's environment names wrongly, or timeouts the HTTP client
    /// refuses.
    pub fn build(self) -> Result<TokenProviders, ConfigError> {
        if self.max == 0 {
            return Err(ConfigError::ZeroProviders);
        }
        if self.idle.is_zero() {
            return Err(ConfigError::ZeroDuration { setting: "idle_timeout" });
        }
        let template = self.template.unwrap_or_else(|| Box::new(TokenProvider::builder));
        let probe = template();
        if probe.has_credential_source() {
            return Err(ConfigError::SourceWithCredentials { other: "a registry's per-tenant credentials" });
        }
        let region = probe.resolved_region()?;
        let http = probe.shareable_http_client()?;
        Ok(TokenProviders {
            inner: Arc::new(Inner {
                template,
                region,
                http,
                max: self.max,
                idle: self.idle,
                clock: self.clock,
                entries: Mutex::default(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::PersonalAccessToken;

    /// Every provider of a registry uses one HTTP client: the first request
    /// of one builds it for all (one pool, one TLS setup).
    #[tokio::test]
    async fn providers_share_one_http_client() {
        let providers = TokenProviders::builder()
            .template(|| {
                TokenProvider::builder()
                    .env(|_| None)
                    .region(Region::custom("http://127.0.0.1:9").unwrap())
                    .max_attempts(1)
            })
            .build()
            .unwrap();
        let pat = |n: &str| Credentials::personal_access_token(PersonalAccessToken::new(n).unwrap());
        let a = providers.provider(&pat("a"), &Scopes::gateway(), "a").unwrap();
        let b = providers.provider(&pat("b"), &Scopes::gateway(), "b").unwrap();
        assert!(!a.inner.wire.is_built() && !b.inner.wire.is_built());
        assert!(a.token().await.is_err(), "port 9 is closed");
        assert!(b.inner.wire.is_built(), "b's client was built by a's request");
        // Held: the same provider comes back.
        let again = providers.provider(&pat("a"), &Scopes::gateway(), "a").unwrap();
        assert!(Arc::ptr_eq(&again.inner, &a.inner));
    }
}
