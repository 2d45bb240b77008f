//! The provider's side of a [`TokenStore`]: read it on a miss, refresh
//! under its lease, save before anyone uses the answer.
//!
//! A refresh with a store (in the flight's own task, so no caller can
//! cancel it):
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
//! Deletion wins. [`TokenProvider::forget`](crate::TokenProvider::forget)
//! replaces the entry with a deletion mark by compare-and-swap (its version
//! keeps growing), so a refresh that raced it — in this process or another
//! — fails its compare-and-swap, sees the mark, and discards what it
//! received: nothing is written back, the tokens are revoked (when the
//! provider came from an [`OidcClient`](crate::OidcClient)) and the callers
//! get [`Error::SignedOut`]. A provider that later reads a mark newer than
//! its own token set is signed out the same way. A failed compare-and-swap
//! never overwrites: a newer token set another process saved (a lease that
//! expired under a slow refresh) is adopted instead.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

use super::flight::Fetched;
use super::{Inner, lock};
use crate::error::{Error, Report};
use crate::store::record::{self, StoredTokens, Unreadable};
use crate::store::{StoreEncryptionKeys, StoreError, StoreKey, TokenStore};

/// First pause while another process holds the lease.
const POLL_START: Duration = Duration::from_millis(10);
/// Longest pause between two reads of the store while waiting.
const POLL_MAX: Duration = Duration::from_millis(250);
/// Attempts to save a token set before its saving moves to a task of its
/// own (which keeps the lease and retries until it succeeds).
const SAVE_ATTEMPTS: u32 = 3;
/// Longest pause between two attempts of the task that saves an unsaved
/// token set: it renews the lease on each, and should notice a returning
/// store quickly.
const UNSAVED_RETRY_MAX: Duration = Duration::from_secs(1);
/// Compare-and-swap attempts of a write or a deletion before it gives up
/// (a write) or writes its mark unconditionally (a deletion).
const CAS_ATTEMPTS: u32 = 5;

/// The entry under a provider's key, as read.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// Its version (0: absent).
    pub(crate) version: u64,
    /// Its token set, when it holds a readable one.
    pub(crate) tokens: Option<StoredTokens>,
    /// Whether it is the mark of a deleted (signed-out) token set.
    pub(crate) deleted: bool,
}

/// What became of a write.
#[derive(Debug)]
pub(crate) enum Written {
    /// Saved as the newest token set.
    Saved,
    /// Another process saved a newer token set first (this one is not
    /// written); it is what the provider should continue from.
    Superseded(Read),
    /// The entry was deleted (signed out) meanwhile: nothing was written.
    Deleted,
}

/// A token set this provider holds but could not save yet.
#[derive(Default)]
pub(crate) struct Unsaved {
    /// The newest such set (`None`: everything is saved).
    tokens: Option<StoredTokens>,
    /// Bumped with every new unsaved set, so the saving task knows whether
    /// what it saved is still the newest.
    generation: u64,
    /// Whether the saving task runs.
    saving: bool,
}

/// A provider's store, its key and what it last read or wrote there.
pub(crate) struct StoreLink {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) key: StoreKey,
    pub(crate) seal: Option<StoreEncryptionKeys>,
    /// How long a token set with a refresh token, or a deletion mark,
    /// stays in the store after its last write.
    pub(crate) idle: Duration,
    /// This provider's lease owner id (random), made when the first lease
    /// is taken: the OS random number generator's first use costs
    /// milliseconds (aws-lc seeds it), which a warm `token()` never pays.
    pub(crate) owner: std::sync::OnceLock<String>,
    /// How long a lease holds before others may take over.
    pub(crate) lease: Duration,
    /// The version of the entry the current token came from or was saved
    /// as; 0 before the first read.
    pub(crate) version: AtomicU64,
    /// The version of the entry as last read (what a save replaces).
    pub(crate) seen: AtomicU64,
    /// One more than the version of the last unreadable entry warned
    /// about (0: none), so that the read and the re-read under the lease
    /// make one warning, not two.
    pub(crate) warned_unreadable: AtomicU64,
    /// A refresh token must not be refreshed outside the store.
    pub(crate) strict: bool,
    /// A token set not saved yet; while there is one, this provider keeps
    /// the lease.
    pub(crate) unsaved: std::sync::Mutex<Unsaved>,
    /// One write of this provider at a time (a refresh and the saving
    /// task), so an older set never overwrites a newer one.
    pub(crate) writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for StoreLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLink")
            .field("store", &self.store)
            .field("key", &self.key)
            .field("encrypted", &self.seal.is_some())
            .field("lease", &self.lease)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl StoreLink {
    /// The lease owner id, made on first use.
    fn owner(&self) -> &str {
        self.owner.get_or_init(owner_id)
    }

    /// Warns once per process when a persistent store would hold token
    /// sets unencrypted.
    pub(crate) fn warn_if_unencrypted(&self) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if self.seal.is_none() && self.store.is_persistent() && !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                store = self.store.kind(),
                "token sets are stored unencrypted; set FILEVINE_STORE_KEY (32 bytes, base64) to encrypt them"
            );
        }
    }

    /// The entry's version and token set; an unreadable entry is logged and
    /// counts as absent (its version is kept, so it can be replaced).
    pub(crate) async fn read(&self) -> Result<Read, StoreError> {
        let read = self.read_entry().await?;
        self.seen.store(read.version, Ordering::Release);
        Ok(read)
    }

    /// [`read`](Self::read) without recording the version as `seen` (a
    /// deletion must not move the version a refresh in flight expects).
    async fn read_entry(&self) -> Result<Read, StoreError> {
        let span = tracing::debug_span!("store_load", store = self.store.kind(), key = %self.key);
        let Some(entry) = self.store.load(self.key.as_str()).instrument(span).await? else {
            return Ok(Read::default());
        };
        let version = entry.version;
        match record::decode(&entry.value, &self.key, self.seal.as_ref()) {
            Ok(tokens) => Ok(Read { version, tokens: Some(tokens), deleted: false }),
            Err(Unreadable::Deleted) => Ok(Read { version, tokens: None, deleted: true }),
            Err(cause) => {
                let marker = version.saturating_add(1);
                if self.warned_unreadable.swap(marker, Ordering::Relaxed) != marker {
                    tracing::warn!(
                        store = self.store.kind(),
                        key = %self.key,
                        version,
                        %cause,
                        "ignoring an unreadable stored token set"
                    );
                }
                Ok(Read { version, tokens: None, deleted: false })
            }
        }
    }

    /// How long `tokens` stay in the store: a refresh token for the idle
    /// timeout, an access token alone for the rest of its life.
    fn ttl(&self, tokens: &StoredTokens) -> Duration {
        match (&tokens.refresh_token, &tokens.access_token) {
            (None, Some(access)) => access.expires_in().max(Duration::from_secs(1)),
            _ => self.idle,
        }
    }

    /// Saves `tokens` over the version last read or written (`seen`). When
    /// the entry moved on meanwhile it is read again: deleted (a sign-out)
    /// wins and nothing is written; a newer token set another process saved
    /// (a lease that expired under a slow refresh) is kept, not overwritten.
    pub(crate) async fn write(&self, tokens: &StoredTokens) -> Result<Written, StoreError> {
        let value = record::encode(tokens, &self.key, self.seal.as_ref())?;
        let ttl = self.ttl(tokens);
        for _ in 0..CAS_ATTEMPTS {
            let expected = self.seen.load(Ordering::Acquire);
            let span = tracing::debug_span!("store_save", store = self.store.kind(), key = %self.key, expected);
            if self.store.compare_and_swap(self.key.as_str(), expected, &value, ttl).instrument(span).await? {
                self.saved(expected + 1);
                return Ok(Written::Saved);
            }
            let read = self.read().await?;
            if read.deleted || (read.version == 0 && expected > 0) {
                tracing::info!(store = self.store.kind(), key = %self.key, "the token set was deleted (signed out) during a refresh; discarding the refresh's answer");
                self.version.store(read.version, Ordering::Release);
                return Ok(Written::Deleted);
            }
            if read.tokens.is_some() {
                tracing::warn!(
                    store = self.store.kind(),
                    key = %self.key,
                    version = read.version,
                    "another process saved a newer token set during this refresh (a lease expired?); keeping it"
                );
                return Ok(Written::Superseded(read));
            }
            // Absent or unreadable at a new version: try again over it.
        }
        Err(StoreError::backend(
            self.store.kind(),
            "save",
            std::io::Error::other("the entry kept changing under compare-and-swap"),
        ))
    }

    /// Saves `tokens` whatever is stored (a new sign-in's token set).
    pub(crate) async fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        let value = record::encode(tokens, &self.key, self.seal.as_ref())?;
        let span = tracing::debug_span!("store_save", store = self.store.kind(), key = %self.key);
        self.saved(self.store.save(self.key.as_str(), &value, self.ttl(tokens)).instrument(span).await?);
        Ok(())
    }

    /// Replaces the entry with a deletion mark, by compare-and-swap over
    /// what was read, so that the token set it replaces is the one
    /// returned (to be revoked) and a refresh racing it cannot write after
    /// it. Returns the token set it replaced, if readable.
    pub(crate) async fn delete(&self) -> Result<Option<StoredTokens>, StoreError> {
        // `seen` is left alone: a refresh in flight must fail its
        // compare-and-swap against the mark, not take the mark's version.
        let mut last = None;
        for _ in 0..CAS_ATTEMPTS {
            let read = self.read_entry().await?;
            last = read.tokens;
            if self.store.compare_and_swap(self.key.as_str(), read.version, record::TOMBSTONE, self.idle).await? {
                self.version.store(read.version + 1, Ordering::Release);
                return Ok(last);
            }
        }
        // The entry keeps changing: the mark goes over whatever is there.
        let version = self.store.save(self.key.as_str(), record::TOMBSTONE, self.idle).await?;
        self.version.store(version, Ordering::Release);
        Ok(last)
    }

    /// Whether this provider holds a token set it has not saved yet (and so
    /// holds the lease).
    pub(crate) fn has_unsaved(&self) -> bool {
        lock(&self.unsaved).tokens.is_some()
    }

    /// Takes the lease for this provider, or renews it if it holds it.
    pub(crate) async fn take_lease(&self) -> Result<bool, StoreError> {
        self.store.try_lease(self.key.as_str(), self.owner(), self.lease).await
    }

    /// Gives the lease back; a failure is logged (the lease expires on its
    /// own).
    pub(crate) async fn release_lease(&self) {
        if let Err(error) = self.store.release_lease(self.key.as_str(), self.owner()).await {
            tracing::warn!(store = self.store.kind(), key = %self.key, error = %Report(&error), "could not release the token store lease");
        }
    }

    /// Drops an unsaved token set: it was saved by a later write, or the
    /// tokens were forgotten (signing out must not be undone by a save that
    /// lands later). The saving task then releases the lease and ends.
    pub(crate) fn drop_unsaved(&self) {
        let mut unsaved = lock(&self.unsaved);
        unsaved.tokens = None;
        unsaved.generation += 1;
    }

    /// Records that this provider's token set is now `version`.
    fn saved(&self, version: u64) {
        self.version.store(version, Ordering::Release);
        self.seen.store(version, Ordering::Release);
        tracing::debug!(store = self.store.kind(), key = %self.key, version, "saved the token set");
    }
}

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
                    key = %link.key,
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
        let tokens = self.token_set(&fetched);
        let _writing = link.writing.lock().await;
        match link.write(&tokens).await {
            Ok(written) => {
                link.drop_unsaved();
                self.settle(link, written, &fetched).await?;
            }
            Err(error) => {
                tracing::warn!(store = link.store.kind(), key = %link.key, error = %Report(&error), "could not save the token set; still holding the lease");
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
            tracing::debug!(store = link.store.kind(), key = %link.key, attempt, error = %Report(&error), "the token store failed; trying again");
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
        let lease_span = tracing::debug_span!("store_lease", store = link.store.kind(), key = %link.key, waits = 0_u32);
        let mut waits = 0_u32;
        let try_lease = || async { Ok(link.take_lease().instrument(lease_span.clone()).await?) };
        while !self.with_store_retries(link, started, try_lease).await? {
            waits += 1;
            lease_span.record("waits", waits);
            crate::metrics::lease_wait(self.region.identity_url(), link.store.kind());
            if started.elapsed() >= patience {
                return Err(StoreError::LeaseWait { key: link.key.clone(), waited: started.elapsed() }.into());
            }
            // Jittered, so waiters do not read the store in lockstep.
            tokio::time::sleep(pause.mul_f64(0.5 + 0.5 * self.jitter.unit())).await;
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
                let before = link.version.load(Ordering::Acquire);
                if let Some(adopted) = self.read_and_adopt(link).await? {
                    return Ok(adopted);
                }
                if link.version.load(Ordering::Acquire) == before {
                    return Err(error);
                }
                self.exchange_with_retries(Some(link)).await?
            }
            other => other?,
        };
        if !from_provider {
            return Ok(fetched);
        }
        let tokens = self.token_set(&fetched);
        if let Some(written) = self.save_with_retries(link, tokens).await {
            self.settle(link, written, &fetched).await?;
        }
        Ok(fetched)
    }

    /// What a refresh gives to the store: the new access token with the
    /// latest refresh and ID tokens.
    fn token_set(&self, fetched: &Fetched) -> StoredTokens {
        StoredTokens {
            access_token: Some(fetched.token.clone()),
            refresh_token: lock(&self.refresh_token).clone(),
            id_token: lock(&self.id_token).clone(),
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
                    key = %link.key,
                    error = %Report(&error),
                    "could not save the new token set; keeping the lease and retrying until it is saved (other processes wait meanwhile)"
                );
                crate::metrics::unsaved(self.region.identity_url(), link.store.kind());
                self.keep_unsaved(link, tokens);
                return None;
            }
            tracing::warn!(store = link.store.kind(), key = %link.key, attempt, error = %Report(&error), "could not save the token set");
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
            tracing::error!(store = link.store.kind(), key = %link.key, "no runtime to save the token set on; it is kept in this process only");
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
                    tracing::warn!(store = link.store.kind(), key = %link.key, "another process took the lease while the token set was unsaved; saving it now")
                }
                Err(error) => {
                    tracing::debug!(store = link.store.kind(), key = %link.key, attempt, error = %Report(&error), "the token store is still failing");
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
                    tracing::warn!(store = link.store.kind(), key = %link.key, version = read.version, "a newer token set was saved while this one waited; dropping this one");
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
                    tracing::info!(store = link.store.kind(), key = %link.key, attempts = attempt, "saved the token set that could not be saved before");
                    link.release_lease().await;
                    break;
                }
                Err(error) => {
                    tracing::debug!(store = link.store.kind(), key = %link.key, attempt, error = %Report(&error), "could not save the token set yet");
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
            tracing::info!(store = link.store.kind(), key = %link.key, "the stored token set was deleted (signed out elsewhere)");
            let discarded = self.discard(None);
            self.revoke_discarded(discarded).await;
            return Err(Error::SignedOut);
        }
        Ok(self.adopt(link, read.version, read.tokens))
    }

    fn adopt(&self, link: &StoreLink, version: u64, tokens: Option<StoredTokens>) -> Option<Fetched> {
        let tokens = tokens?;
        // Only a newer entry: the same version holds the token this
        // provider already had (and may have been told is revoked).
        if version <= link.version.load(Ordering::Acquire) {
            return None;
        }
        link.version.store(version, Ordering::Release);
        if let Some(refresh_token) = tokens.refresh_token {
            *lock(&self.refresh_token) = Some(refresh_token);
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
        tracing::debug!(store = link.store.kind(), key = %link.key, version, "using the token set another process saved");
        Some(Fetched { token, at: now, life })
    }
}

/// A lease owner id: random, so two providers (in one process or two)
/// never share one.
fn owner_id() -> String {
    crate::crypto::random_token(16).unwrap_or_else(|_| {
        // Without randomness: still unique per provider in this process,
        // and the process id separates processes.
        format!("{}-{}", std::process::id(), super::next_provider_id())
    })
}
