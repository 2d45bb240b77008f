//! [`TokenProvider`]: a valid access token on every call, one request per
//! refresh however many callers ask at once.
//!
//! # How a call is served
//!
//! - **Hot path** (`cache`). Each thread remembers the last token it was
//!   handed, tagged with the provider's generation counter. A call reads that
//!   counter (one atomic load of a read-mostly cache line), finds its
//!   thread's entry, reads the coarse clocks ([`crate::time`]) and checks
//!   that the token is at least a second before its refresh time, then
//!   clones one `Arc`. No lock, no allocation, no timer needed to be right.
//! - **Checked path.** Otherwise it reads the current token (a read lock
//!   held for an `Arc` clone; see `cache::Current` for why not a lock-free
//!   swap) and reads the precise clocks: before its
//!   refresh time it is remembered and
//!   returned; inside the soft window it is returned and a refresh starts in
//!   the background; past the hard margin it is never returned.
//! - **Slow path** (`flight`). With no usable token, the caller takes the
//!   flight lock (a short `std` mutex, never held across `.await`),
//!   re-checks, and joins the refresh in flight or starts one. The caller
//!   that starts it runs it in place (`drive`); once another joins, or when
//!   it gives up (a dropped future, a timeout), a task of its own runs it,
//!   so no caller cancels a request whose answer may carry a rotated
//!   refresh token. Everyone waiting gets the outcome from the flight's
//!   outcome slot (`outcome`), after the token was stored.
//! - **Background refresh** (`background`, opt-in): a timer starts the
//!   refresh at the soft deadline, so callers never wait on the network.
//!   The timer only makes refreshes earlier; correctness never depends on it.
//!
//! # When a token is refreshed
//!
//! With lifetime `L` (from `expires_in`, see [`ExpiryPolicy`]):
//!
//! - hard margin `M = min(hard_margin, L/2)` (default 60 s, as Filevine's
//!   samples use): a token with less than `M` left is never handed out;
//! - soft window `W = min(soft_window, (L−M)/2)` (default 5 min): the refresh
//!   starts at a random point between `W` and `W/2` before `L−M`;
//! - if a refresh fails, callers keep getting the cached token until its
//!   hard margin, then the error. Failures back off (full jitter, capped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use crate::config::region::Region;
use crate::error::Error;
use crate::grant::{AccessToken, Credentials, ExpiryPolicy, IdToken, RefreshToken};
use crate::time::Clock;

mod background;
mod builder;
mod cache;
mod derived_key;
mod drive;
mod flight;
mod id_check;
mod jitter;
mod link;
mod outcome;
mod registry;
mod retry;
mod store;
mod wire;
#[cfg(feature = "oidc")]
pub(crate) use id_check::{CheckIdToken, Received, Verdict};
#[cfg(feature = "oidc")]
pub(crate) use wire::{Resolve, Resolved};

pub use crate::http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
pub use builder::{DEFAULT_HARD_MARGIN, DEFAULT_SOFT_WINDOW, DEFAULT_STORE_IDLE_TIMEOUT, TokenProviderBuilder};
pub use registry::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PROVIDERS, TokenProviders, TokenProvidersBuilder};
pub use retry::RetryPolicy;

pub(crate) use link::StoreLink;

use cache::{CachedToken, Current, Timing};
use flight::Flight;
use jitter::Jitter;

/// Hands out valid access tokens, refreshing them ahead of expiry.
///
/// `Clone + Send + Sync`; clones share one cache, so clone it into every
/// task that needs tokens. Needs a Tokio runtime.
///
/// ```
/// use filevine_identity_ext::{Credentials, PersonalAccessToken, Region, TokenProvider};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = TokenProvider::builder()
///     .region(Region::Us)
///     .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_…")?))
///     .build()?;
/// let token = provider.token().await?;
/// let header = token.authorization_header(); // `Bearer …`, marked sensitive
/// # drop(header);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("authority", &self.inner.region.identity_url())
            .field("grant_type", &self.inner.credentials.grant_type())
            .field("cached", &self.inner.current.get().map(|c| c.token.clone()))
            .finish_non_exhaustive()
    }
}

/// The state all clones of a provider share.
struct Inner {
    /// Unique per provider (never reused), keys the thread-local entries.
    id: u64,
    /// The generated client, made on the first request.
    wire: wire::Wire,
    region: Region,
    /// The caller's non-secret label (a firm's id) on spans and metrics.
    tenant: Option<Arc<str>>,
    /// The keys of this provider's metrics (authority, grant, tenant).
    metrics: crate::metrics::ProviderMetrics,
    credentials: Credentials,
    /// Asked for the credentials on each refresh (`Grant::Sourced`).
    source: Option<Arc<dyn crate::grant::CredentialSource>>,
    /// With a source and a store: how each request keys the entry by the
    /// identity the source gives.
    sourced_key: Option<derived_key::SourcedKey>,
    /// The `scope` form value, built once.
    scope: Option<String>,
    /// The latest refresh token (rotated by every refresh response).
    refresh_token: Mutex<Option<RefreshToken>>,
    /// The latest ID token from a refresh response.
    id_token: Mutex<Option<IdToken>>,
    /// Ask for DPoP-bound tokens.
    dpop: bool,
    /// The identity provider refused a request without a DPoP proof: every
    /// later request of this provider carries one.
    dpop_demanded: AtomicBool,
    /// The key the current tokens are bound to (with `dpop`: the one the
    /// next token request signs with). Moves with the refresh token.
    dpop_key: Mutex<Option<crate::jose::DpopKey>>,
    timing: Timing,
    expiry: ExpiryPolicy,
    retry: RetryPolicy,
    /// The per-attempt timeout the HTTP client enforces, when the SDK built
    /// the client (a user's client has timeouts the SDK does not know).
    enforced_attempt_timeout: Option<std::time::Duration>,
    request_timeout: std::time::Duration,
    clock: Clock,
    jitter: Jitter,
    /// Refresh ahead of time without waiting for a call.
    background: bool,
    /// The current token and its deadlines.
    current: Current,
    /// Bumped after every change of `current`; thread-local entries tagged
    /// with an older generation are not used.
    generation: AtomicU64,
    /// Set while a refresh runs; lets the checked path skip the flight lock.
    refreshing: AtomicBool,
    flight: Mutex<Flight>,
    /// The background refresh timer of the current token.
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The runtime the provider was built in, for refreshes started by calls
    /// made outside any runtime.
    runtime: Option<tokio::runtime::Handle>,
    /// Where token sets are shared with other processes, if anywhere.
    store: Option<StoreLink>,
    /// Bumped (under the flight lock) by every `forget`, so a refresh that
    /// started before it never installs what it received.
    epoch: AtomicU64,
    /// Set by `forget` and by a discarded refresh: the refresh token the
    /// provider was built with is dead, never to be sent again; only a
    /// newer set read from the store (a new sign-in) revives the provider.
    signed_out: AtomicBool,
    /// Revokes tokens this provider discards (a refresh that raced a
    /// sign-out): set when an [`OidcClient`](crate::oidc::OidcClient), which knows
    /// the revocation endpoint, built the provider.
    revoke: Option<Revoke>,
    /// Checks the ID token of every refresh response (OpenID Connect Core
    /// §12.2): set when an [`OidcClient`](crate::oidc::OidcClient) built the
    /// provider.
    check_id_token: Option<id_check::CheckIdToken>,
}

/// Revokes what a provider discarded; errors are the callee's to log.
pub(crate) type Revoke =
    Arc<dyn Fn(Forgotten) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.timer).take() {
            task.abort();
        }
    }
}

/// Locks a std mutex, recovering from poisoning: every critical section
/// here leaves the data consistent, so a panic elsewhere must not wedge
/// token refresh forever.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Drops the refresh and ID tokens this provider holds and the current
    /// token (a sign-out happened while a refresh ran). Returns them with
    /// `received` (the access token the refresh got), to be revoked.
    fn discard(&self, received: Option<AccessToken>) -> Forgotten {
        self.signed_out.store(true, Ordering::Release);
        let forgotten = Forgotten { access_token: received, refresh_token: lock(&self.refresh_token).take() };
        lock(&self.dpop_key).take();
        lock(&self.id_token).take();
        drop(self.current.replace(None));
        self.generation.fetch_add(1, Ordering::AcqRel);
        forgotten
    }

    /// Revokes what [`discard`](Self::discard) dropped, when the provider
    /// knows how (it came from an [`OidcClient`](crate::oidc::OidcClient)).
    /// Awaited before the refresh's outcome is published, so that a caller
    /// told [`Error::SignedOut`] knows the tokens are revoked.
    async fn revoke_discarded(&self, forgotten: Forgotten) {
        if forgotten.access_token.is_none() && forgotten.refresh_token.is_none() {
            return;
        }
        match &self.revoke {
            Some(revoke) => {
                tracing::debug!("revoking the tokens a refresh received after a sign-out");
                revoke(forgotten).await;
            }
            None => tracing::debug!(
                "discarded the tokens a refresh received after a sign-out (no revocation endpoint known)"
            ),
        }
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

    /// A valid access token: the cached one if it is before its hard margin,
    /// otherwise a fresh one (one request however many callers wait for it).
    ///
    /// # Errors
    /// The refresh's [`Error`], when there is no token before its hard
    /// margin to fall back on.
    pub fn token(&self) -> TokenFuture<'_> {
        TokenFuture { provider: self, slow: None }
    }

    /// The region (authority and gateway) this provider talks to.
    pub fn region(&self) -> &Region {
        &self.inner.region
    }

    /// The most recent ID token: the sign-in's, or the last one a refresh
    /// brought. A provider an [`OidcClient`](crate::oidc::OidcClient) built
    /// checked each against the sign-in's before keeping it (OpenID Connect
    /// Core §12.2); others keep them as they come.
    pub fn latest_id_token(&self) -> Option<IdToken> {
        lock(&self.inner.id_token).clone()
    }

    /// The current refresh token, if the provider has one: for applications
    /// that keep it in their own storage, or revoke it.
    pub fn refresh_token(&self) -> Option<RefreshToken> {
        lock(&self.inner.refresh_token).clone()
    }

    /// The key this provider's token set is stored under, if it has a
    /// [store](crate::store). For credentials from a
    /// [`CredentialSource`](crate::grant::CredentialSource), the key names
    /// the identity the source gave at the last request (a digest of the
    /// credential and client id), and before the first request the
    /// source's name.
    pub fn store_key(&self) -> Option<crate::store::StoreKey> {
        self.inner.store.as_ref().map(StoreLink::key)
    }

    /// Signs this provider out locally: deletes its entry from the store (if
    /// it has one) and forgets every token it holds. Returns what it held,
    /// the stored entry's included, so the caller can revoke it
    /// ([`OidcClient::sign_out`](crate::oidc::OidcClient::sign_out) does).
    ///
    /// # Errors
    /// [`Error::Store`] when the store cannot be read or the entry not
    /// deleted; the tokens in memory are forgotten anyway.
    pub async fn forget(&self) -> Result<Forgotten, Error> {
        let inner = &self.inner;
        let mut forgotten = {
            // Under the flight lock: a refresh in flight sees the new epoch
            // when it finishes and discards its answer instead of
            // installing it (see `finish_flight`).
            let _flight = lock(&inner.flight);
            inner.epoch.fetch_add(1, Ordering::AcqRel);
            inner.signed_out.store(true, Ordering::Release);
            lock(&inner.id_token).take();
            let forgotten = Forgotten {
                access_token: inner.current.get().map(|c| c.token.clone()),
                refresh_token: lock(&inner.refresh_token).take(),
            };
            inner.set_current(None);
            forgotten
        };
        if let Some(link) = &inner.store {
            // The entry of the identity the source gives now.
            if let Some(rule) = &inner.sourced_key {
                inner.key_by_source(link, rule).await?;
            }
            // A set still waiting to be saved must not land after the delete.
            link.drop_unsaved();
            if let Some(tokens) = link.delete().await? {
                forgotten.refresh_token = tokens.refresh_token.or(forgotten.refresh_token);
                forgotten.access_token = tokens.access_token.or(forgotten.access_token);
            }
            tracing::debug!(store = link.store.kind(), key = %link.key(), "deleted the stored token set");
        }
        Ok(forgotten)
    }

    /// Forgets the cached token, so the next [`TokenProvider::token`] fetches
    /// a new one. Call it when the API answered 401 to the current token.
    pub fn invalidate(&self) {
        self.inner.set_current(None);
    }

    /// Forgets `token` if it is still the cached one. When many requests
    /// fail with 401 for the same token, only the first invalidation
    /// counts, so they share one refresh.
    pub fn invalidate_token(&self, token: &AccessToken) {
        if self.inner.current.clear_if(|c| c.token.same_token(token)) {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Forgets the cached token if it is the one `sent` carried (the value
    /// of an `Authorization` header that got a 401).
    #[cfg(feature = "api")]
    pub(crate) fn invalidate_header(&self, sent: &reqwest::header::HeaderValue) {
        let current = self.inner.current.get();
        if let Some(cached) = current.filter(|c| c.token.authorization_header() == sent) {
            self.invalidate_token(&cached.token);
        }
    }

    /// Waits until no refresh is in flight (one started in the background
    /// by a call in the soft window, or by the background timer), so a test
    /// can assert on its outcome without sleeping.
    #[cfg(feature = "test-util")]
    pub async fn settled(&self) {
        let receiver = lock(&self.inner.flight).in_flight.as_ref().map(|f| f.outcome.clone());
        if let Some(receiver) = receiver {
            receiver.wait().await;
        }
    }

    /// The hot path: this thread's remembered token, if it is of the
    /// current generation and before its refresh time.
    #[inline]
    fn remembered(&self) -> Result<AccessToken, u64> {
        let generation = self.inner.generation.load(Ordering::Acquire);
        cache::remembered(self.inner.id, generation, || self.inner.clock.coarse()).ok_or(generation)
    }

    /// The checked path: the current token if it is usable, remembered for
    /// this thread while it is fresh. Starts a soft refresh when one is due.
    fn checked(&self, generation: u64) -> Option<AccessToken> {
        // Generation first, then the token: an entry is never tagged with a
        // generation newer than the token it holds.
        let cached = self.inner.current.get()?;
        let now = self.inner.clock.now();
        if now.before(cached.refresh_at) {
            let token = cached.token.clone();
            cache::remember(self.inner.id, generation, cached);
            return Some(token);
        }
        if now.before(cached.usable_until) {
            if !self.inner.refreshing.load(Ordering::Relaxed) {
                Inner::start_soft_refresh(&self.inner);
            }
            // Due for a refresh, still before its deadline: served while
            // the refresh runs (or after it failed).
            self.inner.metrics.served_stale();
            return Some(cached.token.clone());
        }
        None
    }
}

/// What [`TokenProvider::forget`] removed: the tokens to revoke.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Forgotten {
    /// The latest access token, if one was held or stored.
    pub access_token: Option<AccessToken>,
    /// The latest refresh token, if one was held or stored.
    pub refresh_token: Option<RefreshToken>,
}

/// The future [`TokenProvider::token`] returns.
///
/// Small on purpose: the first poll serves a cached token without touching
/// the slow path's state, which lives in a box only when it is needed.
#[must_use = "futures do nothing unless polled"]
pub struct TokenFuture<'a> {
    provider: &'a TokenProvider,
    slow: Option<SlowFuture<'a>>,
}

type SlowFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<AccessToken, Error>> + Send + 'a>>;

impl std::fmt::Debug for TokenFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFuture").field("waiting", &self.slow.is_some()).finish_non_exhaustive()
    }
}

impl std::future::Future for TokenFuture<'_> {
    type Output = Result<AccessToken, Error>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.slow.is_none() {
            let generation = match this.provider.remembered() {
                Ok(token) => return Poll::Ready(Ok(token)),
                Err(generation) => generation,
            };
            if let Some(token) = this.provider.checked(generation) {
                return Poll::Ready(Ok(token));
            }
            this.slow = Some(Box::pin(this.provider.inner.token_slow()));
        }
        match this.slow.as_mut() {
            Some(slow) => slow.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl Inner {
    /// Where refresh and timer tasks run: the caller's runtime, else the one
    /// the provider was built in.
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        tokio::runtime::Handle::try_current().ok().or_else(|| self.runtime.clone())
    }

    /// Replaces the current token, bumps the generation, and (refreshing in
    /// the background) arms the timer for the new token's refresh time.
    fn set_current(self: &Arc<Self>, cached: Option<Arc<CachedToken>>) {
        let replaced = self.current.replace(cached.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(replaced);
        if self.background
            && let Some(cached) = cached
        {
            background::arm(self, &cached);
        }
    }
}

/// Hands out unique provider ids.
fn next_provider_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Building loads no TLS roots: the HTTP client comes with the first
    /// request (here one to a closed port), and is then kept.
    #[tokio::test]
    async fn the_http_client_is_built_by_the_first_request() {
        use crate::grant::PersonalAccessToken;
        let provider = TokenProvider::builder()
            .region(Region::custom("http://127.0.0.1:9").unwrap())
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new("pat").unwrap()))
            .max_attempts(1)
            .env(|_| None)
            .build()
            .unwrap();
        assert!(!provider.inner.wire.is_built());
        assert!(provider.token().await.is_err());
        assert!(provider.inner.wire.is_built());
    }

    /// A stored session with nothing stored has nothing to send: no
    /// discovery, no HTTP client.
    #[cfg(feature = "oidc")]
    #[tokio::test]
    async fn a_stored_session_builds_nothing_before_it_sends() {
        let oidc = crate::oidc::OidcClient::builder()
            .region(Region::custom("http://127.0.0.1:9").unwrap())
            .client_id(crate::grant::ClientId::new("cli").unwrap())
            .redirect_uri(crate::oidc::RedirectUrl::new("http://127.0.0.1/callback").unwrap())
            .env(|_| None)
            .build()
            .unwrap();
        let provider = oidc
            .stored_session(crate::store::StoreKey::session("nobody"))
            .store(crate::store::MemoryStore::new())
            .env(|_| None)
            .build()
            .unwrap();
        assert!(matches!(provider.token().await, Err(Error::NotStored { .. })));
        assert!(!provider.inner.wire.is_built());
    }

    /// Holds every lock the provider has while another thread asks for a
    /// fresh token twice (the checked path, then the hot path): both calls
    /// complete, so neither path takes a lock. A path that did would block
    /// on the held mutex and the answer would never come.
    #[test]
    fn serving_a_fresh_token_takes_no_lock() {
        use crate::grant::PersonalAccessToken;
        use std::time::Duration;

        let provider = TokenProvider::builder()
            .region(Region::custom("http://127.0.0.1:9").unwrap())
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new("pat").unwrap()))
            .env(|_| None)
            .build()
            .unwrap();
        let hour = Duration::from_secs(3600);
        let token = AccessToken::new(
            "fresh".to_owned().into(),
            "Bearer".to_owned(),
            None,
            &crate::time::Clock::System,
            crate::time::Clock::System.now(),
            hour,
            None,
        )
        .unwrap();
        let now = provider.inner.clock.now();
        provider.inner.set_current(Some(Arc::new(CachedToken::new(token, now.plus(hour), now.plus(hour / 2)))));

        let inner = &provider.inner;
        let held = (lock(&inner.flight), lock(&inner.refresh_token), lock(&inner.id_token), lock(&inner.timer));
        let (sender, receiver) = std::sync::mpsc::channel();
        let caller = provider.clone();
        std::thread::spawn(move || {
            let mut context = Context::from_waker(std::task::Waker::noop());
            for _ in 0..2 {
                let mut call = std::pin::pin!(caller.token());
                let served = matches!(call.as_mut().poll(&mut context), Poll::Ready(Ok(_)));
                sender.send(served).unwrap();
            }
        });
        for path in ["checked", "hot"] {
            let served = receiver.recv_timeout(Duration::from_secs(30));
            assert_eq!(served, Ok(true), "the {path} path blocked on a lock or did not serve the token");
        }
        drop(held);
    }

    #[test]
    fn provider_is_send_sync_clone() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<TokenProvider>();
        assert_traits::<AccessToken>();
    }
}
