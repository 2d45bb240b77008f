//! Token stores: token sets that outlive the process, shared by restarts,
//! replicas and fleets.
//!
//! Without a store, a [`TokenProvider`](crate::provider::TokenProvider) keeps its
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

use std::sync::Arc;

pub(crate) mod contract;
mod encryption;
mod file;
pub(crate) mod key;
mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub(crate) mod record;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod sweep;
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) mod warn_once;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
pub use crate::secret::StoreEncryptionKey;
pub use contract::{Entry, StoreError, TokenStore};
pub use encryption::StoreEncryptionKeys;
pub use file::FileStore;
pub use key::StoreKey;
pub use memory::MemoryStore;

use crate::error::ConfigError;

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
    pat: &crate::grant::PersonalAccessToken,
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
) -> Result<Vec<u8>, StoreError> {
    let refresh = crate::grant::RefreshToken::from_secret(pat.secret().clone());
    let tokens = record::StoredTokens { refresh_token: Some(refresh), ..Default::default() };
    Ok(record::encode(&tokens, key, seal)?)
}

/// Decodes what [`encode_credential`] wrote; `None` when it is not such a
/// value, does not open with `seal`, or was stored under another key.
pub fn decode_credential(
    value: &[u8],
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
) -> Option<crate::grant::PersonalAccessToken> {
    let tokens = record::decode(value, key, seal).ok()?;
    if tokens.access_token.is_some() || tokens.id_token.is_some() {
        return None;
    }
    crate::grant::PersonalAccessToken::new(tokens.refresh_token?.expose_secret()).ok()
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

/// The environment variables of the store, defined with every other
/// variable in [`crate::config::env`].
pub use crate::config::env::{STORE_KEY, TOKEN_STORE};

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
