//! Token stores: token sets that outlive the process, shared by restarts,
//! replicas and fleets.
//!
//! Without a store, a [`TokenProvider`](crate::TokenProvider) keeps its
//! token in memory: every process makes its own exchange, and a partner
//! app's rotating refresh tokens die with the process. With a store:
//!
//! - a provider reads the store when it has no usable token (on a miss or
//!   a refresh, never on the hot path), so a restarted process, a second
//!   replica or the next run of a script picks up the token another one
//!   saved;
//! - a refresh takes the store's **lease** for its key first and reads the
//!   store again under it: of all the processes sharing a key, one asks the
//!   identity provider and the others wait for its answer (polling the
//!   store with backoff, not spinning). A rotated refresh token is saved
//!   (compare-and-swap on the entry's version) before anyone uses it;
//! - a lease holder that dies delays the others by at most the lease time.
//!
//! Three stores come with the SDK, all behind one [`TokenStore`] trait:
//! [`MemoryStore`] (one process; share one between providers),
//! [`FileStore`] (one machine: a directory of 0600 files, an OS file lock
//! as the lease) and, with the `redis` feature, `RedisStore` (replicas and
//! fleets). [`open`] picks one from `FILEVINE_TOKEN_STORE`.
//!
//! Stores hold bytes; the SDK encodes token sets and, given a
//! [`StoreEncryptionKey`] (`FILEVINE_STORE_KEY`), seals them with
//! AES-256-GCM bound to their key, so a store holds no token in the clear.
//! Keys are [`StoreKey`]s: digests, never a credential or a session id.
//!
//! ```
//! use filevine_identity_ext::store::{self, StoreKey};
//! use filevine_identity_ext::{Credentials, PersonalAccessToken, Region, TokenProvider};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join("filevine-doc-store");
//! let provider = TokenProvider::builder()
//!     .region(Region::Us)
//!     .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_…")?))
//!     .store(store::open(&format!("file:{}", dir.display()))?)
//!     .build()?;
//! # drop(provider);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod encryption;
mod file;
mod key;
mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub(crate) mod record;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod sweep;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
pub use crate::secret::StoreEncryptionKey;
pub use encryption::StoreEncryptionKeys;
pub use file::FileStore;
pub use key::StoreKey;
pub use memory::MemoryStore;

use crate::error::ConfigError;

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
    Randomness(#[from] crate::error::RandomnessUnavailable),
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

/// Encodes a long-lived credential (a PAT a command line tool keeps for its
/// next exchange) for a store the way token sets are: the same versioned
/// record, sealed with AES-256-GCM and bound to `key` when `seal` is given.
///
/// ```
/// use filevine_identity_ext::store::{self, StoreEncryptionKey, StoreKey};
/// use filevine_identity_ext::PersonalAccessToken;
///
/// let key = StoreKey::session("cli/default/pat");
/// let seal = StoreEncryptionKey::generate().unwrap().into();
/// let pat = PersonalAccessToken::new("fvpat_example").unwrap();
/// let value = store::encode_credential(&pat, &key, Some(&seal)).unwrap();
/// assert!(!value.windows(5).any(|w| w == b"fvpat"));
/// let back = store::decode_credential(&value, &key, Some(&seal)).unwrap();
/// assert_eq!(back.expose_secret(), "fvpat_example");
/// assert!(store::decode_credential(&value, &StoreKey::session("elsewhere"), Some(&seal)).is_none());
/// ```
///
/// # Errors
/// Only when sealing and the OS random number generator fails.
pub fn encode_credential(
    pat: &crate::PersonalAccessToken,
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
) -> Result<Vec<u8>, StoreError> {
    let refresh = crate::RefreshToken::from_secret(pat.secret().clone());
    let tokens = record::StoredTokens { refresh_token: Some(refresh), ..Default::default() };
    Ok(record::encode(&tokens, key, seal)?)
}

/// Decodes what [`encode_credential`] wrote; `None` when it is not such a
/// value, does not open with `seal`, or was stored under another key.
pub fn decode_credential(
    value: &[u8],
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
) -> Option<crate::PersonalAccessToken> {
    let tokens = record::decode(value, key, seal).ok()?;
    if tokens.access_token.is_some() || tokens.id_token.is_some() {
        return None;
    }
    crate::PersonalAccessToken::new(tokens.refresh_token?.expose_secret()).ok()
}

/// Seals an application's own record (any bytes, say a JSON document) for
/// a store the way token sets are sealed: AES-256-GCM with the first of
/// `keys`, bound to `key`, so a copy under another key or an edited value
/// does not open. For records that decide where secrets go (the command
/// line tool's sign-in record names the authority its tokens are sent to).
///
/// ```
/// use filevine_identity_ext::store::{self, StoreEncryptionKey, StoreEncryptionKeys, StoreKey};
///
/// let keys = StoreEncryptionKeys::new(StoreEncryptionKey::generate().unwrap());
/// let key = StoreKey::session("cli/default/state");
/// let value = store::seal_record(br#"{"authority":"https://identity.example"}"#, &key, &keys).unwrap();
/// assert!(!value.windows(9).any(|w| w == b"authority"));
/// let opened = store::open_record(&value, &key, &keys).unwrap();
/// assert_eq!(&opened[..], br#"{"authority":"https://identity.example"}"#);
/// // An unsealed (or foreign, or edited) value does not open.
/// assert!(store::open_record(br#"{"authority":"https://elsewhere"}"#, &key, &keys).is_none());
/// ```
///
/// # Errors
/// Only when the OS random number generator fails.
pub fn seal_record(plain: &[u8], key: &StoreKey, keys: &StoreEncryptionKeys) -> Result<Vec<u8>, StoreError> {
    Ok(record::seal_bytes(plain, key, keys)?)
}

/// Opens what [`seal_record`] sealed; `None` when it is not such a value,
/// was changed, was stored under another key or sealed with a key not in
/// `keys`.
pub fn open_record(value: &[u8], key: &StoreKey, keys: &StoreEncryptionKeys) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    record::open_bytes(value, key, keys).ok()
}

/// The environment variable naming the store: `memory`, `file:<dir>`, a
/// Redis URL (`redis://`, `redis+sentinel://`, `redis+cluster://`, and
/// their `rediss` forms) or a PostgreSQL URL (`postgres://`,
/// `postgresql://`).
pub const TOKEN_STORE: &str = "FILEVINE_TOKEN_STORE";
/// The environment variable holding the [`StoreEncryptionKeys`]: one
/// base64 key, or several separated by commas, the sealing key first.
pub const STORE_KEY: &str = "FILEVINE_STORE_KEY";

/// Opens the store `spec` names: `memory`, `file:<dir>`, or (feature
/// `redis`) a Redis URL of one of three forms, so an application moves
/// between them by configuration alone:
///
/// | form | URL |
/// |---|---|
/// | one node | `redis://[user:password@]host[:port][/db]` |
/// | primary and replicas behind Sentinels | `redis+sentinel://[user:password@]host1[:26379][,host2…]/<master name>[/<db>]` |
/// | Redis Cluster | `redis+cluster://[user:password@]host1[:6379][,host2…]` |
/// | PostgreSQL (feature `postgres`) | `postgres://[user:password@]host[:port]/db[?sslmode=…]` |
///
/// `rediss` instead of `redis` uses TLS; `?replicas=N` sets how many
/// replicas must take a saved token set (see [`RedisStore`]). Connects
/// lazily: opening sends nothing.
///
/// # Errors
/// [`ConfigError::TokenStore`] naming what is wrong with `spec` (a Redis
/// URL's password is never repeated).
pub fn open(spec: &str) -> Result<Arc<dyn TokenStore>, ConfigError> {
    let spec = spec.trim();
    let invalid = |reason: String| ConfigError::TokenStore { reason };
    if spec == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(dir) = spec.strip_prefix("file:") {
        if dir.is_empty() {
            return Err(invalid("`file:` needs a directory, e.g. `file:/var/lib/app/tokens`".into()));
        }
        return Ok(Arc::new(FileStore::new(dir)));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return PostgresStore::open(spec).map(|store| Arc::new(store) as Arc<dyn TokenStore>);
        #[cfg(not(feature = "postgres"))]
        return Err(invalid("a PostgreSQL store needs the `postgres` feature of filevine-identity-ext".into()));
    }
    if ["redis://", "rediss://", "redis+", "rediss+"].iter().any(|scheme| spec.starts_with(scheme)) {
        #[cfg(feature = "redis")]
        return RedisStore::open(spec).map(|store| Arc::new(store) as Arc<dyn TokenStore>);
        #[cfg(not(feature = "redis"))]
        return Err(invalid("a Redis store needs the `redis` feature of filevine-identity-ext".into()));
    }
    Err(invalid(
        "expected `memory`, `file:<directory>`, a Redis URL (`redis://`, `redis+sentinel://`, `redis+cluster://`) or a PostgreSQL URL (`postgres://`)"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_names_what_is_wrong() {
        assert_eq!(open("memory").unwrap().kind(), "memory");
        assert_eq!(open(" file:/tmp/x ").unwrap().kind(), "file");
        for (spec, expected) in
            [("file:", "needs a directory"), ("mysql://db", "expected `memory`"), ("", "expected `memory`")]
        {
            let err = open(spec).unwrap_err();
            assert!(err.to_string().contains(expected), "{spec}: {err}");
        }
    }

    #[test]
    fn entries_do_not_show_their_value() {
        let entry = Entry { version: 3, value: b"SENTINEL".to_vec() };
        assert_eq!(format!("{entry:?}"), "Entry { version: 3, bytes: 8 }");
    }
}
