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
//! without it (a warning); a refresh token never does (`Error::Store`):
//! refreshing outside the lease could race a replica and lose the rotation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

use super::flight::Fetched;
use super::{Inner, lock};
use crate::error::{Error, Report};
use crate::store::record::{self, StoredTokens};
use crate::store::{StoreEncryptionKey, StoreError, StoreKey, TokenStore};

/// First pause while another process holds the lease.
const POLL_START: Duration = Duration::from_millis(10);
/// Longest pause between two reads of the store while waiting.
const POLL_MAX: Duration = Duration::from_millis(250);
/// Attempts to save a token set before giving up (it stays in memory).
const SAVE_ATTEMPTS: u32 = 3;

/// A provider's store, its key and what it last read or wrote there.
pub(crate) struct StoreLink {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) key: StoreKey,
    pub(crate) seal: Option<StoreEncryptionKey>,
    /// This provider's lease owner id (random).
    pub(crate) owner: String,
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
}

impl std::fmt::Debug for StoreLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLink")
            .field("store", &self.store)
            .field("key", &self.key)
            .field("encrypted", &self.seal.is_some())
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl StoreLink {
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
    pub(crate) async fn read(&self) -> Result<(u64, Option<StoredTokens>), StoreError> {
        let span = tracing::debug_span!("store_load", store = self.store.kind(), key = %self.key);
        let Some(entry) = self.store.load(self.key.as_str()).instrument(span).await? else {
            self.seen.store(0, Ordering::Release);
            return Ok((0, None));
        };
        self.seen.store(entry.version, Ordering::Release);
        match record::decode(&entry.value, &self.key, self.seal.as_ref()) {
            Ok(tokens) => Ok((entry.version, Some(tokens))),
            Err(cause) => {
                let marker = entry.version.saturating_add(1);
                if self.warned_unreadable.swap(marker, Ordering::Relaxed) == marker {
                    return Ok((entry.version, None));
                }
                tracing::warn!(
                    store = self.store.kind(),
                    key = %self.key,
                    version = entry.version,
                    %cause,
                    "ignoring an unreadable stored token set"
                );
                Ok((entry.version, None))
            }
        }
    }

    /// Saves `tokens` over version `expected`. If the entry moved on (a
    /// lease that expired under a slow refresh), this answer is still the
    /// newest the provider gave: it is written anyway.
    pub(crate) async fn write(&self, expected: u64, tokens: &StoredTokens) -> Result<(), StoreError> {
        let value = record::encode(tokens, &self.key, self.seal.as_ref())?;
        let span = tracing::debug_span!("store_save", store = self.store.kind(), key = %self.key, expected);
        if self.store.compare_and_swap(self.key.as_str(), expected, &value).instrument(span).await? {
            self.saved(expected + 1);
            return Ok(());
        }
        tracing::warn!(
            store = self.store.kind(),
            key = %self.key,
            "the stored token set changed during a refresh (a lease expired?); saving the newer answer over it"
        );
        self.saved(self.store.save(self.key.as_str(), &value).await?);
        Ok(())
    }

    /// Saves `tokens` whatever is stored (a new sign-in's token set).
    pub(crate) async fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        let value = record::encode(tokens, &self.key, self.seal.as_ref())?;
        let span = tracing::debug_span!("store_save", store = self.store.kind(), key = %self.key);
        self.saved(self.store.save(self.key.as_str(), &value).instrument(span).await?);
        Ok(())
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

    async fn refresh_with_lease(self: &Arc<Self>, link: &StoreLink) -> Result<Fetched, Error> {
        if let Some(adopted) = self.read_and_adopt(link).await? {
            return Ok(adopted);
        }
        let started = tokio::time::Instant::now();
        let patience = link.lease.saturating_add(self.retry.total_timeout);
        let mut pause = POLL_START;
        let lease_span = tracing::debug_span!("store_lease", store = link.store.kind(), key = %link.key, waits = 0_u32);
        let mut waits = 0_u32;
        while !link.store.try_lease(link.key.as_str(), &link.owner, link.lease).instrument(lease_span.clone()).await? {
            waits += 1;
            lease_span.record("waits", waits);
            crate::metrics::lease_wait(self.region.identity_url(), link.store.kind());
            if started.elapsed() >= patience {
                return Err(StoreError::LeaseWait { key: link.key.clone(), waited: started.elapsed() }.into());
            }
            // Jittered, so waiters do not read the store in lockstep.
            tokio::time::sleep(pause.mul_f64(0.5 + 0.5 * self.jitter.unit())).await;
            pause = (pause * 2).min(POLL_MAX);
            if let Some(adopted) = self.read_and_adopt(link).await? {
                return Ok(adopted);
            }
        }
        let outcome = self.refresh_under_lease(link).await;
        if let Err(error) = link.store.release_lease(link.key.as_str(), &link.owner).await {
            // It expires on its own.
            tracing::warn!(store = link.store.kind(), key = %link.key, error = %Report(&error), "could not release the token store lease");
        }
        outcome
    }

    async fn refresh_under_lease(self: &Arc<Self>, link: &StoreLink) -> Result<Fetched, Error> {
        // The holder before us may have saved a moment ago.
        if let Some(adopted) = self.read_and_adopt(link).await? {
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
        let tokens = StoredTokens {
            access_token: Some(fetched.token.clone()),
            refresh_token: lock(&self.refresh_token).clone(),
            id_token: lock(&self.id_token).clone(),
        };
        let expected = link.seen.load(Ordering::Acquire);
        self.save_with_retries(link, expected, &tokens).await;
        Ok(fetched)
    }

    /// Saves a fresh answer, trying a few times. Never an error: the new
    /// token is served either way, and kept in memory when no save
    /// succeeded (logged), so this process's next refresh still has it.
    async fn save_with_retries(&self, link: &StoreLink, expected: u64, tokens: &StoredTokens) {
        for attempt in 1..=SAVE_ATTEMPTS {
            let error = match link.write(expected, tokens).await {
                Ok(()) => return,
                Err(error) => error,
            };
            if attempt == SAVE_ATTEMPTS {
                tracing::error!(
                    store = link.store.kind(),
                    key = %link.key,
                    error = %Report(&error),
                    "the new token set is kept in this process only; other processes cannot see it until a save succeeds"
                );
                return;
            }
            tracing::warn!(store = link.store.kind(), key = %link.key, attempt, error = %Report(&error), "could not save the token set");
            tokio::time::sleep(self.retry.backoff(attempt, self.jitter)).await;
        }
    }

    /// Reads the store and adopts what another process saved, if it is
    /// newer than what this provider has. Returns a token to serve when the
    /// stored one is fresh (before its refresh time).
    pub(super) async fn read_and_adopt(&self, link: &StoreLink) -> Result<Option<Fetched>, StoreError> {
        let (version, tokens) = link.read().await?;
        Ok(self.adopt(link, version, tokens))
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
