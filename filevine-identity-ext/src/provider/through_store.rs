//! The provider's side of a [`TokenStore`]: read it on a miss, refresh
//! under its lease, save before anyone uses the answer.
//!
//! A refresh with a store (the flight's refresh, which no caller can
//! cancel):
//!
//! 1. read the store: a fresh token another process saved is adopted, no
//!    request;
//! 2. take the lease for the key, waiting (polling the store with backoff)
//!    while another process holds it; its saved answer is adopted;
//! 3. read again under the lease, then ask the identity provider. Between
//!    retries of a refresh-token grant the store is read again, and an
//!    `invalid_grant` is answered only after one more read: a replica may
//!    have rotated the token a moment ago;
//! 4. save with compare-and-swap on the version read, then release the
//!    lease.
//!
//! When the store fails, PAT and client-credentials providers refresh
//! without it (a warning); a refresh token never does: refreshing outside
//! the lease could race a replica and lose the rotation. Instead its reads
//! and lease requests are retried with backoff until the refresh's total
//! timeout (a failover takes seconds), and only then fail (`Error::Store`).
//!
//! Deletion wins. [`TokenProvider::forget`](crate::provider::TokenProvider::forget)
//! replaces the entry with a deletion mark by compare-and-swap (its version
//! keeps growing), so a refresh that raced it — in this process or another
//! — fails its compare-and-swap, sees the mark, and discards what it
//! received: nothing is written back, the tokens are revoked (when the
//! provider came from an [`OidcClient`](crate::oidc::OidcClient)) and the callers
//! get [`Error::SignedOut`]. A provider that later reads a mark newer than
//! its own token set is signed out the same way. A failed compare-and-swap
//! never overwrites: a newer token set another process saved (a lease that
//! expired under a slow refresh) is adopted instead.
//!
//! A store that lost a write (a Redis failover that promoted a replica
//! the write had not reached) is back at an older version. The process
//! that made the write still holds the newer refresh token: it does not
//! adopt the older entry, refreshes with its own token and saves over it,
//! at the version number of the lost write. Another process that had read
//! the lost write adopts an entry at the version it knows when its refresh
//! token is not its own: two sets share a version only after a lost write
//! (or an entry that expired and was made again), and the stored one is
//! the newer. A refresh whose compare-and-swap fails on such an older entry
//! saves its answer over it (`StoreLink::write`).
//!
//! A save whose outcome this provider never saw (a compare-and-swap that
//! timed out and that the store applied later) is known for its own: every
//! set carries its writer and its number in the writer's sequence, and the
//! provider remembers the refresh tokens it spent. It saves its newer set
//! over its own late one, or over any set holding a token it spent, and
//! never adopts either (`StoreLink::write`, `StoreLink::is_behind`).
//!
//! A token set that cannot be saved (the store went away between the
//! exchange and the save) is never dropped and its lease is never given
//! up: the refresh hands it to a task that keeps renewing the lease and
//! retrying the save with backoff until it succeeds or the process ends.
//! Meanwhile this provider serves it (and refreshes with its refresh token
//! while still holding the lease); other processes wait for the lease,
//! serving their cached tokens, instead of replaying the refresh token the
//! store still holds.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::Instrument as _;

use super::engine::Inner;
use super::flight::Fetched;
use super::sync::lock;
use crate::error::{Error, Report};
use crate::store::StoreError;
use crate::store::record::StoredTokens;

use super::link::{POLL_MAX, POLL_START, SAVE_ATTEMPTS, UNSAVED_RETRY_MAX};
use super::link::{StoreLink, Written};

impl Inner {
    /// A refresh through the store; see the module documentation.
    pub(super) async fn fetch_through_store(self: &Arc<Self>, link: &StoreLink) -> Result<Fetched, Error> {
        if link.has_unsaved() {
            return self.refresh_holding_lease(link).await;
        }
        match self.refresh_with_lease(link).await {
            Err(Error::Store(error)) if !link.strict => {
                tracing::warn!(
                    store = link.store.kind(),
                    key = %link.key(),
                    error = %Report(&error),
                    "the token store failed; refreshing without it"
                );
                self.exchange_with_retries(None).await.map(|(fetched, _)| fetched)
            }
            other => other,
        }
    }

    /// A refresh while this provider still holds an unsaved token set (and
    /// the lease): the store has only the older set, so it is not read; the
    /// answer becomes the unsaved set, and the saving task writes it.
    async fn refresh_holding_lease(self: &Arc<Self>, link: &StoreLink) -> Result<Fetched, Error> {
        let (fetched, _) = self.exchange_with_retries(None).await?;
        let tokens = self.token_set(link, &fetched);
        let _writing = link.writing.lock().await;
        match link.write(&tokens).await {
            Ok(written) => {
                link.drop_unsaved();
                self.settle(link, written, &fetched).await?;
            }
            Err(error) => {
                tracing::warn!(store = link.store.kind(), key = %link.key(), error = %Report(&error), "could not save the token set; still holding the lease");
                self.keep_unsaved(link, tokens);
            }
        }
        Ok(fetched)
    }

    /// What a write means for the refresh that made it: a newer set that
    /// another process saved is continued from (its refresh token), a
    /// deleted entry discards the refresh's answer.
    async fn settle(&self, link: &StoreLink, written: Written, fetched: &Fetched) -> Result<(), Error> {
        match written {
            Written::Saved => Ok(()),
            Written::Superseded(read) => {
                let version = read.version;
                if let Some(tokens) = read.tokens {
                    link.version.store(version, Ordering::Release);
                    if let Some(refresh_token) = tokens.refresh_token {
                        *lock(&self.refresh_token) = Some(refresh_token);
                        *lock(&self.dpop_key) = tokens.dpop_key;
                    }
                    if let Some(id_token) = tokens.id_token {
                        *lock(&self.id_token) = Some(id_token);
                    }
                }
                Ok(())
            }
            Written::Deleted => {
                let discarded = self.discard(Some(fetched.token.clone()));
                self.revoke_discarded(discarded).await;
                Err(Error::SignedOut)
            }
        }
    }

    /// Runs a store operation of a refresh; for a refresh token (which must
    /// not refresh outside the store) a failure is retried with backoff
    /// until the refresh's total timeout, counted from `started`.
    async fn with_store_retries<T, F, Fut>(
        &self,
        link: &StoreLink,
        started: tokio::time::Instant,
        mut op: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0_u32;
        loop {
            attempt += 1;
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(Error::Store(error @ StoreError::Backend { .. })) if link.strict => error,
                Err(error) => return Err(error),
            };
            let pause = self.retry.backoff(attempt, self.jitter);
            if started.elapsed().saturating_add(pause) >= self.retry.total_timeout {
                return Err(error.into());
            }
            tracing::debug!(store = link.store.kind(), key = %link.key(), attempt, error = %Report(&error), "the token store failed; trying again");
            tokio::time::sleep(pause).await;
        }
    }

    async fn refresh_with_lease(self: &Arc<Self>, link: &StoreLink) -> Result<Fetched, Error> {
        let started = tokio::time::Instant::now();
        if let Some(adopted) = self.with_store_retries(link, started, || self.read_and_adopt(link)).await? {
            return Ok(adopted);
        }
        let patience = link.lease.saturating_add(self.retry.total_timeout);
        let mut pause = POLL_START;
        let lease_span =
            tracing::debug_span!("store_lease", store = link.store.kind(), key = %link.key(), waits = 0_u32);
        let mut waits = 0_u32;
        let try_lease = || async { Ok(link.take_lease().instrument(lease_span.clone()).await?) };
        while !self.with_store_retries(link, started, try_lease).await? {
            waits += 1;
            lease_span.record("waits", waits);
            crate::metrics::lease_wait(self.region.identity_url(), link.store.kind(), self.tenant.as_deref());
            if started.elapsed() >= patience {
                return Err(StoreError::LeaseWait { key: link.key(), waited: started.elapsed() }.into());
            }
            // Jittered, so waiters do not read the store in lockstep.
            tokio::time::sleep(self.jitter.upper_half(pause)).await;
            pause = (pause * 2).min(POLL_MAX);
            if let Some(adopted) = self.with_store_retries(link, started, || self.read_and_adopt(link)).await? {
                return Ok(adopted);
            }
        }
        let outcome = self.refresh_under_lease(link, started).await;
        if link.has_unsaved() {
            // The saving task holds the lease until the set is saved.
            return outcome;
        }
        link.release_lease().await;
        outcome
    }

    async fn refresh_under_lease(
        self: &Arc<Self>,
        link: &StoreLink,
        started: tokio::time::Instant,
    ) -> Result<Fetched, Error> {
        // The holder before us may have saved a moment ago.
        if let Some(adopted) = self.with_store_retries(link, started, || self.read_and_adopt(link)).await? {
            return Ok(adopted);
        }
        let (fetched, from_provider) = match self.exchange_with_retries(Some(link)).await {
            Err(error @ Error::SignInRequired { .. }) => {
                // A replica may have rotated the token just now: one more
                // read, and one more try with what it saved.
                let version = link.version.load(Ordering::Acquire);
                let spent = lock(&self.refresh_token).clone();
                if let Some(adopted) = self.read_and_adopt(link).await? {
                    return Ok(adopted);
                }
                // Tried again only with what the read brought: a newer
                // entry, or another refresh token at the same version
                // after a lost write (see `adopt`).
                if link.version.load(Ordering::Acquire) == version && *lock(&self.refresh_token) == spent {
                    return Err(error);
                }
                self.exchange_with_retries(Some(link)).await?
            }
            other => other?,
        };
        if !from_provider {
            return Ok(fetched);
        }
        let tokens = self.token_set(link, &fetched);
        if let Some(written) = self.save_with_retries(link, tokens).await {
            self.settle(link, written, &fetched).await?;
        }
        Ok(fetched)
    }

    /// What a refresh gives to the store: the new access token with the
    /// latest refresh and ID tokens.
    /// Stamped with this provider's next [`Origin`](crate::store::record::Origin),
    /// so a save of it that lands late is known for this provider's own.
    fn token_set(&self, link: &StoreLink, fetched: &Fetched) -> StoredTokens {
        StoredTokens {
            // A held token is not for anyone (its ID token was not checked).
            access_token: fetched.held.is_none().then(|| fetched.token.clone()),
            refresh_token: lock(&self.refresh_token).clone(),
            id_token: lock(&self.id_token).clone(),
            dpop_key: lock(&self.dpop_key).clone(),
            origin: Some(link.stamp()),
        }
    }

    /// Saves a fresh answer, trying a few times. Never an error: the new
    /// token is served either way. When no attempt succeeded, the set is
    /// handed to the saving task, which keeps the lease until it is saved
    /// (and `None` is returned).
    async fn save_with_retries(self: &Arc<Self>, link: &StoreLink, tokens: StoredTokens) -> Option<Written> {
        let _writing = link.writing.lock().await;
        for attempt in 1..=SAVE_ATTEMPTS {
            let error = match link.write(&tokens).await {
                Ok(written) => return Some(written),
                Err(error) => error,
            };
            if attempt == SAVE_ATTEMPTS {
                tracing::error!(
                    store = link.store.kind(),
                    key = %link.key(),
                    error = %Report(&error),
                    "could not save the new token set; keeping the lease and retrying until it is saved (other processes wait meanwhile)"
                );
                crate::metrics::unsaved(self.region.identity_url(), link.store.kind(), self.tenant.as_deref());
                self.keep_unsaved(link, tokens);
                return None;
            }
            tracing::warn!(store = link.store.kind(), key = %link.key(), attempt, error = %Report(&error), "could not save the token set");
            tokio::time::sleep(self.retry.backoff(attempt, self.jitter)).await;
        }
        None
    }

    /// Makes `tokens` the newest unsaved set and starts the saving task if
    /// it does not run.
    fn keep_unsaved(self: &Arc<Self>, link: &StoreLink, tokens: StoredTokens) {
        let mut unsaved = lock(&link.unsaved);
        unsaved.tokens = Some(tokens);
        unsaved.generation += 1;
        if unsaved.saving {
            return;
        }
        let Some(runtime) = self.runtime() else {
            tracing::error!(store = link.store.kind(), key = %link.key(), "no runtime to save the token set on; it is kept in this process only");
            return;
        };
        unsaved.saving = true;
        let inner = Arc::clone(self);
        runtime.spawn(async move { inner.save_until_saved().await });
    }

    /// The saving task: renews the lease and retries the save of the newest
    /// unsaved set until one succeeds with nothing newer behind it, then
    /// releases the lease. Ends early only if the set is dropped (forget).
    async fn save_until_saved(self: Arc<Self>) {
        let Some(link) = &self.store else { return };
        let mut attempt = 0_u32;
        loop {
            attempt = attempt.saturating_add(1);
            let pause = self.retry.backoff(attempt, self.jitter).min(UNSAVED_RETRY_MAX).min(link.lease / 4);
            tokio::time::sleep(pause).await;
            let snapshot = {
                let mut unsaved = lock(&link.unsaved);
                let snapshot = unsaved.tokens.clone().map(|tokens| (tokens, unsaved.generation));
                if snapshot.is_none() {
                    unsaved.saving = false;
                }
                snapshot
            };
            let Some((tokens, generation)) = snapshot else {
                // Saved by a later refresh, or forgotten (signed out):
                // nothing left to save, and the lease is of no use now.
                link.release_lease().await;
                break;
            };
            // Keep the lease: others must wait, not replay the stored token.
            match link.take_lease().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(store = link.store.kind(), key = %link.key(), "another process took the lease while the token set was unsaved; saving it now")
                }
                Err(error) => {
                    tracing::debug!(store = link.store.kind(), key = %link.key(), attempt, error = %Report(&error), "the token store is still failing");
                    continue;
                }
            }
            let written = {
                let _writing = link.writing.lock().await;
                if lock(&link.unsaved).generation != generation {
                    continue;
                }
                link.write(&tokens).await
            };
            match written {
                Ok(Written::Deleted) => {
                    // Signed out meanwhile: the set must not land, and what
                    // it holds is revoked.
                    link.drop_unsaved();
                    lock(&link.unsaved).saving = false;
                    let discarded = self.discard(tokens.access_token);
                    self.revoke_discarded(discarded).await;
                    link.release_lease().await;
                    break;
                }
                Ok(Written::Superseded(read)) => {
                    tracing::warn!(store = link.store.kind(), key = %link.key(), version = read.version, "a newer token set was saved while this one waited; dropping this one");
                    link.drop_unsaved();
                    lock(&link.unsaved).saving = false;
                    link.release_lease().await;
                    break;
                }
                Ok(Written::Saved) => {
                    let done = {
                        let mut unsaved = lock(&link.unsaved);
                        let newest = unsaved.generation == generation;
                        if newest {
                            unsaved.tokens = None;
                            unsaved.saving = false;
                        }
                        newest
                    };
                    if !done {
                        continue;
                    }
                    tracing::info!(store = link.store.kind(), key = %link.key(), attempts = attempt, "saved the token set that could not be saved before");
                    link.release_lease().await;
                    break;
                }
                Err(error) => {
                    tracing::debug!(store = link.store.kind(), key = %link.key(), attempt, error = %Report(&error), "could not save the token set yet");
                }
            }
        }
    }

    /// Reads the store and adopts what another process saved, if it is
    /// newer than what this provider has. Returns a token to serve when the
    /// stored one is fresh (before its refresh time). A deletion mark newer
    /// than this provider's set signs a refresh-token provider out
    /// ([`Error::SignedOut`]); for a PAT or client credentials it is only an
    /// absent entry.
    pub(super) async fn read_and_adopt(&self, link: &StoreLink) -> Result<Option<Fetched>, Error> {
        let read = link.read().await?;
        if read.deleted && link.strict && read.version > link.version.load(Ordering::Acquire) {
            link.version.store(read.version, Ordering::Release);
            tracing::info!(store = link.store.kind(), key = %link.key(), "the stored token set was deleted (signed out elsewhere)");
            let discarded = self.discard(None);
            self.revoke_discarded(discarded).await;
            return Err(Error::SignedOut);
        }
        Ok(self.adopt(link, read.version, read.tokens))
    }

    fn adopt(&self, link: &StoreLink, version: u64, tokens: Option<StoredTokens>) -> Option<Fetched> {
        let tokens = tokens?;
        // Never a set older than this provider's, whatever its version: one
        // holding a refresh token this provider spent (its own save that
        // landed after it refreshed again, or a set another process made
        // from such a save), or an earlier set of its own. The next save
        // goes over it (the version read is what it replaces).
        if link.is_behind(&tokens) {
            tracing::debug!(store = link.store.kind(), key = %link.key(), version, "the stored token set is older than this provider's (a spent refresh token); not using it");
            return None;
        }
        // Only a newer entry: the same version holds the token this
        // provider already had (and may have been told is revoked).
        // Except a lost write: a failover can take the store back to a
        // version it had, and the process holding the newer refresh token
        // then saves its next set at a version number others already saw
        // with the token it replaced. A different refresh token at the same
        // version is that newer set, and the one this provider holds is
        // spent.
        let known = link.version.load(Ordering::Acquire);
        if version < known || (version == known && !self.is_another_refresh_token(tokens.refresh_token.as_ref())) {
            return None;
        }
        link.version.store(version, Ordering::Release);
        if let Some(refresh_token) = tokens.refresh_token {
            *lock(&self.refresh_token) = Some(refresh_token);
            // The stored refresh token is bound to the stored key.
            *lock(&self.dpop_key) = tokens.dpop_key.clone();
        } else if let Some(key) = &tokens.dpop_key {
            *lock(&self.dpop_key) = Some(key.clone());
        }
        if let Some(id_token) = tokens.id_token {
            *lock(&self.id_token) = Some(id_token);
        }
        let token = tokens.access_token?;
        let now = self.clock.now();
        let life = token.expires_in();
        let cached = self.timing.deadlines(token.clone(), now, life, self.jitter);
        if !now.before(cached.refresh_at) {
            return None;
        }
        tracing::debug!(store = link.store.kind(), key = %link.key(), version, "using the token set another process saved");
        Some(Fetched { token, at: now, life, held: None })
    }

    /// Whether `stored` is a refresh token, and not the one this provider
    /// holds.
    fn is_another_refresh_token(&self, stored: Option<&crate::grant::RefreshToken>) -> bool {
        stored.is_some_and(|stored| lock(&self.refresh_token).as_ref() != Some(stored))
    }
}
