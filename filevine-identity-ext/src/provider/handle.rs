//! [`TokenProvider`]: the public face of the refresh engine. Its
//! [`token`](TokenProvider::token) future serves the hot and checked paths
//! itself (see `engine.rs`) and enters the engine's flight only when no
//! cached token may be handed out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::cache;
use super::engine::Inner;
use super::hooks::Forgotten;
use super::link::StoreLink;
use super::sync::lock;
use crate::config::region::Region;
use crate::error::Error;
use crate::grant::{AccessToken, IdToken, RefreshToken};

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
    pub(super) inner: Arc<Inner>,
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

impl TokenProvider {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Credentials;
    use crate::provider::cache::CachedToken;

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
