//! The store contract: [`TokenStore`], what it stores ([`Entry`]) and how
//! it fails ([`StoreError`]). Every store and the provider build on this
//! file; it imports nothing above it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::key::StoreKey;

/// A stored value with its version. Versions start at 1 and grow by one
/// with every write; 0 means "absent" in [`TokenStore::compare_and_swap`].
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version of this value.
    pub version: u64,
    /// The encoded (possibly encrypted) token set.
    pub value: Vec<u8>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be a plain token set.
        f.debug_struct("Entry").field("version", &self.version).field("bytes", &self.value.len()).finish()
    }
}

/// Where token sets are kept between processes.
///
/// Object-safe (`Arc<dyn TokenStore>`), `Send + Sync`. Keys are the 64-hex
/// names of [`StoreKey`]s. Implement it for another database; the SDK
/// brings the encoding, encryption, lease protocol and retries.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The entry under `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Writes `value` whatever is there; returns its new version. The entry
    /// expires `ttl` after this write (see [`compare_and_swap`](Self::compare_and_swap)).
    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError>;

    /// Writes `value` as version `expected + 1` only if the entry is at
    /// version `expected` (0: absent). Returns whether it was written.
    ///
    /// The entry expires `ttl` after this write: from then on it is absent
    /// (versions start again at 1), and the store removes it when it can
    /// (Redis at once, the others on a later write). The SDK picks `ttl`:
    /// what is left of a token set's use (its access token's life, or the
    /// provider's idle timeout for a refresh token), so no store grows with
    /// every sign-in ever made.
    async fn compare_and_swap(&self, key: &str, expected: u64, value: &[u8], ttl: Duration)
    -> Result<bool, StoreError>;

    /// Removes the entry (and nothing else). Absent is fine.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Takes the lease on `key` for `owner` until `ttl` has passed, unless
    /// another owner holds it; an owner that holds it already renews it
    /// for `ttl` from now (a holder that cannot save yet keeps its lease
    /// this way). Returns whether `owner` holds it now.
    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives the lease back if `owner` still holds it (a lease that expired
    /// and was taken by another owner is left alone).
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError>;

    /// A short name for logs and errors (`memory`, `file`, `redis`).
    fn kind(&self) -> &'static str;

    /// Whether entries outlive this process (a warning is logged once when
    /// such a store holds unencrypted token sets).
    fn is_persistent(&self) -> bool {
        true
    }

    /// Whether this store refuses token sets that are not encrypted (a
    /// PostgreSQL server off this machine, whose logs and activity views
    /// show what is written). A provider on such a store without
    /// `FILEVINE_STORE_KEY` is refused at build.
    fn requires_encryption(&self) -> bool {
        false
    }
}

#[async_trait::async_trait]
impl<S: TokenStore + ?Sized> TokenStore for Arc<S> {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        (**self).load(key).await
    }
    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        (**self).save(key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        (**self).compare_and_swap(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        (**self).try_lease(key, owner, ttl).await
    }
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        (**self).release_lease(key, owner).await
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn is_persistent(&self) -> bool {
        (**self).is_persistent()
    }
    fn requires_encryption(&self) -> bool {
        (**self).requires_encryption()
    }
}

/// A store operation that failed. Never carries a stored value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or refused the operation. The
    /// store's own error is the [`source`](std::error::Error::source)
    /// ([`Report`](crate::error::Report) prints the chain).
    #[error("the {store} token store failed to {operation}")]
    Backend {
        /// The store's [`kind`](TokenStore::kind).
        store: &'static str,
        /// What was being done (`load`, `save`, `take the lease`…).
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// Another process held the lease longer than the lease time allows,
    /// and did not finish.
    #[error("waited {} s for another process to refresh the token set {key}; it did not finish", waited.as_secs())]
    LeaseWait {
        /// The entry's key fingerprint.
        key: StoreKey,
        /// How long this process waited.
        waited: Duration,
    },
    /// The OS random number generator failed (encrypting an entry).
    #[error("cannot encrypt the token set: {0}")]
    Randomness(#[from] crate::crypto::RandomnessUnavailable),
}

impl StoreError {
    /// A backend failure with its source.
    pub fn backend(
        store: &'static str,
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend { store, operation, source: Arc::new(source) }
    }
}
