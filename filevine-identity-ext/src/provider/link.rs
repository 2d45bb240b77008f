//! [`StoreLink`]: a provider's store, its key and what it last read or
//! wrote there; the store-side steps a refresh is made of (read, lease,
//! compare-and-swap write, deletion mark). How a refresh strings them
//! together is `store.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tracing::Instrument as _;

use super::sync::lock;
use crate::error::Report;
use crate::grant::RefreshToken;
use crate::store::record::{self, Origin, StoredTokens, Unreadable};
use crate::store::{StoreEncryptionKeys, StoreError, StoreKey, TokenStore};
use crate::time::Clock;

/// First pause while another process holds the lease.
pub(super) const POLL_START: Duration = Duration::from_millis(10);
/// Longest pause between two reads of the store while waiting.
pub(super) const POLL_MAX: Duration = Duration::from_millis(250);
/// Attempts to save a token set before its saving moves to a task of its
/// own (which keeps the lease and retries until it succeeds).
pub(super) const SAVE_ATTEMPTS: u32 = 3;
/// Longest pause between two attempts of the task that saves an unsaved
/// token set: it renews the lease on each, and should notice a returning
/// store quickly.
pub(super) const UNSAVED_RETRY_MAX: Duration = Duration::from_secs(1);
/// Compare-and-swap attempts of a write or a deletion before it gives up
/// (a write) or writes its mark unconditionally (a deletion).
pub(super) const CAS_ATTEMPTS: u32 = 5;
/// How many refresh tokens a provider remembers having spent: far more
/// rotations than it makes while one write's outcome is unknown.
const SPENT_KEPT: usize = 32;

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

/// What a stored token set is to a provider whose write did not go
/// through: the answer to "whose set is this, and is it newer than mine?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// The very set being written: a write whose outcome was unknown (a
    /// timeout) was applied after all.
    Ours,
    /// Older than the set being written: an earlier set of this provider
    /// that landed late, a set holding a refresh token this provider has
    /// spent, or an entry a failover took back. Written over.
    Older,
    /// Another process's newer set, or a later one of this provider's own:
    /// continued from.
    Newer,
    /// No readable token set: written over.
    Nothing,
}

/// Digests (SHA-256) of the refresh tokens a provider has spent: sent in
/// a refresh that rotated them. A stored set holding one of them is older
/// than what the provider holds, whatever its version says; adopting it
/// would send a spent token (and a provider with reuse detection revokes
/// the whole grant on a replay).
#[derive(Default)]
pub(crate) struct Spent(std::collections::VecDeque<[u8; 32]>);

impl Spent {
    fn insert(&mut self, token: &RefreshToken) {
        let digest = crate::crypto::sha256(token.expose_secret().as_bytes());
        if self.0.contains(&digest) {
            return;
        }
        if self.0.len() == SPENT_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(digest);
    }

    fn contains(&self, token: &RefreshToken) -> bool {
        self.0.contains(&crate::crypto::sha256(token.expose_secret().as_bytes()))
    }
}

/// A token set this provider holds but could not save yet.
#[derive(Default)]
pub(crate) struct Unsaved {
    /// The newest such set (`None`: everything is saved).
    pub(super) tokens: Option<StoredTokens>,
    /// Bumped with every new unsaved set, so the saving task knows whether
    /// what it saved is still the newest.
    pub(super) generation: u64,
    /// Whether the saving task runs.
    pub(super) saving: bool,
}

/// A provider's store, its key and what it last read or wrote there.
pub(crate) struct StoreLink {
    pub(crate) store: Arc<dyn TokenStore>,
    /// The entry's key: fixed, or for credentials from a source the
    /// identity the source gave last ([`rekey`](Self::rekey)).
    key: std::sync::RwLock<StoreKey>,
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
    /// The provider's clock, which restored tokens' expiry is read on.
    pub(crate) clock: Clock,
    /// A token set not saved yet; while there is one, this provider keeps
    /// the lease.
    pub(crate) unsaved: std::sync::Mutex<Unsaved>,
    /// One write of this provider at a time (a refresh and the saving
    /// task), so an older set never overwrites a newer one.
    pub(crate) writing: tokio::sync::Mutex<()>,
    /// The number of the last token set this provider stamped ([`Origin`]).
    pub(crate) sequence: AtomicU64,
    /// The refresh tokens this provider has spent.
    pub(crate) spent: std::sync::Mutex<Spent>,
}

impl std::fmt::Debug for StoreLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLink")
            .field("store", &self.store)
            .field("key", &self.key())
            .field("encrypted", &self.seal.is_some())
            .field("lease", &self.lease)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl StoreLink {
    /// A provider's link to `store` under `key`, nothing read yet; warns
    /// when a persistent store would hold token sets unencrypted.
    /// `strict`: the provider refreshes a user's token set, which is never
    /// refreshed outside the store.
    pub(super) fn new(
        (store, key): (Arc<dyn TokenStore>, StoreKey),
        seal: Option<StoreEncryptionKeys>,
        (idle, lease): (Duration, Duration),
        strict: bool,
        clock: Clock,
    ) -> Self {
        let link = Self {
            store,
            key: std::sync::RwLock::new(key),
            seal,
            idle,
            owner: std::sync::OnceLock::new(),
            lease,
            version: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            warned_unreadable: AtomicU64::new(0),
            strict,
            clock,
            unsaved: std::sync::Mutex::default(),
            writing: tokio::sync::Mutex::const_new(()),
            sequence: AtomicU64::new(0),
            spent: std::sync::Mutex::default(),
        };
        link.warn_if_unencrypted();
        link
    }

    /// The entry's key now.
    pub(crate) fn key(&self) -> StoreKey {
        self.key.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Moves the link to `key` (the identity a credential source gives
    /// now): what was read or kept unsaved under the old key is another
    /// identity's and is dropped. Returns whether the key changed.
    pub(crate) fn rekey(&self, key: StoreKey) -> bool {
        let mut current = self.key.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current == key {
            return false;
        }
        tracing::debug!(store = self.store.kind(), from = %*current, to = %key, "the credential source names another identity; using its entry");
        *current = key;
        drop(current);
        self.version.store(0, Ordering::Release);
        self.seen.store(0, Ordering::Release);
        self.warned_unreadable.store(0, Ordering::Release);
        self.drop_unsaved();
        true
    }

    /// The lease owner id, made on first use.
    pub(super) fn owner(&self) -> &str {
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
    pub(super) async fn read_entry(&self) -> Result<Read, StoreError> {
        let span = tracing::debug_span!("store_load", store = self.store.kind(), key = %self.key());
        let Some(entry) = self.store.load(self.key().as_str()).instrument(span).await? else {
            return Ok(Read::default());
        };
        let version = entry.version;
        match record::decode_at(&entry.value, &self.key(), self.seal.as_ref(), &self.clock) {
            Ok(tokens) => Ok(Read { version, tokens: Some(tokens), deleted: false }),
            Err(Unreadable::Deleted) => Ok(Read { version, tokens: None, deleted: true }),
            Err(cause) => {
                let marker = version.saturating_add(1);
                if self.warned_unreadable.swap(marker, Ordering::Relaxed) != marker {
                    tracing::warn!(
                        store = self.store.kind(),
                        key = %self.key(),
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
    pub(super) fn ttl(&self, tokens: &StoredTokens) -> Duration {
        match (&tokens.refresh_token, &tokens.access_token) {
            (None, Some(access)) => access.expires_in().max(Duration::from_secs(1)),
            _ => self.idle,
        }
    }

    /// Saves `tokens` over the version last read or written (`seen`). When
    /// the entry moved on meanwhile it is read again: for a user's session,
    /// deleted (a sign-out) wins and nothing is written; a newer token set
    /// another process saved (a lease that expired under a slow refresh) is
    /// kept, not overwritten; an older one is written over: this
    /// provider's own earlier set that landed late, a set holding a
    /// refresh token this provider spent, an entry a failover took back,
    /// and an absent entry of a PAT or client credentials.
    ///
    /// A compare-and-swap that fails without an answer (a timeout, a
    /// dropped connection) may have been applied, or may still be: the
    /// entry is read, and it is this write only if it carries this set's
    /// [`Origin`]. Otherwise the error stands and a later write settles it
    /// the same way.
    pub(crate) async fn write(&self, tokens: &StoredTokens) -> Result<Written, StoreError> {
        let stamped;
        let (tokens, origin) = match &tokens.origin {
            Some(origin) => (tokens, origin.clone()),
            None => {
                let origin = self.stamp();
                stamped = StoredTokens { origin: Some(origin.clone()), ..tokens.clone() };
                (&stamped, origin)
            }
        };
        let value = record::encode(tokens, &self.key(), self.seal.as_ref())?;
        let ttl = self.ttl(tokens);
        for _ in 0..CAS_ATTEMPTS {
            let expected = self.seen.load(Ordering::Acquire);
            let span = tracing::debug_span!("store_save", store = self.store.kind(), key = %self.key(), expected);
            let swapped =
                match self.store.compare_and_swap(self.key().as_str(), expected, &value, ttl).instrument(span).await {
                    Ok(swapped) => swapped,
                    Err(error) => return self.settle_unknown(error, &origin).await,
                };
            if swapped {
                self.saved(expected + 1);
                return Ok(Written::Saved);
            }
            let read = self.read().await?;
            // Gone: a deletion mark, or no entry where there was one. For a
            // user's session that is a sign-out, which wins. A PAT or client
            // credentials has no session to sign out of: its entry lives as
            // long as the token it holds, so a refresh slower than that (an
            // outage, a paused process) finds it expired, and writes over it.
            if self.strict && (read.deleted || (read.version == 0 && expected > 0)) {
                tracing::info!(store = self.store.kind(), key = %self.key(), "the token set was deleted (signed out) during a refresh; discarding the refresh's answer");
                self.version.store(read.version, Ordering::Release);
                return Ok(Written::Deleted);
            }
            match self.judge(&read, &origin, expected) {
                Stored::Ours => {
                    tracing::info!(store = self.store.kind(), key = %self.key(), version = read.version, "a save whose outcome was unknown was applied");
                    self.saved(read.version);
                    return Ok(Written::Saved);
                }
                Stored::Older => {
                    tracing::warn!(
                        store = self.store.kind(),
                        key = %self.key(),
                        version = read.version,
                        expected,
                        "the store holds an older token set (an earlier save of this process that landed late, a refresh token this process spent, or a write lost in a failover); saving the new one over it"
                    );
                }
                Stored::Newer => {
                    tracing::warn!(
                        store = self.store.kind(),
                        key = %self.key(),
                        version = read.version,
                        "another process saved a newer token set during this refresh (a lease expired?); keeping it"
                    );
                    return Ok(Written::Superseded(read));
                }
                // Absent, deleted (not a session) or unreadable at a new
                // version: try again over it.
                Stored::Nothing => {}
            }
        }
        Err(StoreError::backend(
            self.store.kind(),
            "save",
            std::io::Error::other("the entry kept changing under compare-and-swap"),
        ))
    }

    /// A compare-and-swap that failed without saying whether it was
    /// applied: read the entry. Saved if it carries `origin`; otherwise
    /// `error` (the write may still land: the next write reads it, and
    /// [`judge`](Self::judge) knows it for this provider's own).
    async fn settle_unknown(&self, error: StoreError, origin: &Origin) -> Result<Written, StoreError> {
        match self.read().await {
            Ok(read) if read.tokens.as_ref().and_then(|tokens| tokens.origin.as_ref()) == Some(origin) => {
                tracing::info!(store = self.store.kind(), key = %self.key(), version = read.version, "a save that failed without an answer was applied");
                self.saved(read.version);
                Ok(Written::Saved)
            }
            _ => Err(error),
        }
    }

    /// Whose the stored set is, and whether it is newer than the set with
    /// `origin` this provider is writing over `expected`.
    fn judge(&self, read: &Read, origin: &Origin, expected: u64) -> Stored {
        let Some(stored) = &read.tokens else { return Stored::Nothing };
        if let Some(theirs) = &stored.origin
            && theirs.writer == origin.writer
        {
            return match theirs.seq.cmp(&origin.seq) {
                std::cmp::Ordering::Equal => Stored::Ours,
                std::cmp::Ordering::Less => Stored::Older,
                std::cmp::Ordering::Greater => Stored::Newer,
            };
        }
        // Back at a version older than this process saw (a write a
        // failover lost), or holding a refresh token this process has
        // already spent: the answer in hand is newer.
        if read.version < expected || self.is_spent(stored.refresh_token.as_ref()) {
            return Stored::Older;
        }
        Stored::Newer
    }

    /// Whether a stored set is older than what this provider holds,
    /// whatever its version: it holds a refresh token this provider spent,
    /// or it is an earlier set of this provider's own (a save that landed
    /// after a newer set was made).
    pub(crate) fn is_behind(&self, stored: &StoredTokens) -> bool {
        if self.is_spent(stored.refresh_token.as_ref()) {
            return true;
        }
        stored.origin.as_ref().is_some_and(|origin| {
            self.owner.get().is_some_and(|me| *me == origin.writer)
                && origin.seq < self.sequence.load(Ordering::Acquire)
        })
    }

    /// A new [`Origin`] for a token set this provider is about to save.
    pub(crate) fn stamp(&self) -> Origin {
        Origin { writer: self.owner().to_owned(), seq: self.sequence.fetch_add(1, Ordering::AcqRel) + 1 }
    }

    /// Remembers that `token` was spent (sent in a refresh that rotated it).
    pub(crate) fn spend(&self, token: &RefreshToken) {
        lock(&self.spent).insert(token);
    }

    /// Whether `token` is one this provider has spent.
    pub(crate) fn is_spent(&self, token: Option<&RefreshToken>) -> bool {
        token.is_some_and(|token| lock(&self.spent).contains(token))
    }

    /// Saves `tokens` whatever is stored (a new sign-in's token set).
    pub(crate) async fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        let tokens = StoredTokens { origin: Some(self.stamp()), ..tokens.clone() };
        let value = record::encode(&tokens, &self.key(), self.seal.as_ref())?;
        let span = tracing::debug_span!("store_save", store = self.store.kind(), key = %self.key());
        self.saved(self.store.save(self.key().as_str(), &value, self.ttl(&tokens)).instrument(span).await?);
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
            if self.store.compare_and_swap(self.key().as_str(), read.version, record::TOMBSTONE, self.idle).await? {
                self.version.store(read.version + 1, Ordering::Release);
                return Ok(last);
            }
        }
        // The entry keeps changing: the mark goes over whatever is there.
        let version = self.store.save(self.key().as_str(), record::TOMBSTONE, self.idle).await?;
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
        self.store.try_lease(self.key().as_str(), self.owner(), self.lease).await
    }

    /// Gives the lease back; a failure is logged (the lease expires on its
    /// own).
    pub(crate) async fn release_lease(&self) {
        if let Err(error) = self.store.release_lease(self.key().as_str(), self.owner()).await {
            tracing::warn!(store = self.store.kind(), key = %self.key(), error = %Report(&error), "could not release the token store lease");
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
    pub(super) fn saved(&self, version: u64) {
        self.version.store(version, Ordering::Release);
        self.seen.store(version, Ordering::Release);
        tracing::debug!(store = self.store.kind(), key = %self.key(), version, "saved the token set");
    }
}

/// A lease owner id: random, so two providers (in one process or two)
/// never share one.
fn owner_id() -> String {
    crate::crypto::random_token(16).unwrap_or_else(|_| {
        // Without randomness: still unique per provider in this process,
        // and the process id separates processes.
        format!("{}-{}", std::process::id(), super::sync::next_provider_id())
    })
}
