//! [`StoreEncryptionKeys`]: the keys that seal and open stored values, so
//! `FILEVINE_STORE_KEY` can be rotated without signing anyone out.

use std::fmt;

use crate::error::ConfigError;
use crate::secret::StoreEncryptionKey;

/// Domain separation for key ids: a key id is never another digest of the
/// key.
const KEY_ID_DOMAIN: &[u8] = b"filevine-identity/store-key-id/v1";
/// Bytes of a key id in a sealed record.
pub(crate) const KEY_ID_LEN: usize = 8;

/// The keys token sets are sealed and opened with: the first seals, every
/// one opens. Each sealed value names the key that sealed it by a key id (a
/// digest of the key, which reveals nothing of it), so opening tries one
/// key, not all of them.
///
/// To rotate `FILEVINE_STORE_KEY`: put the new key first and keep the old
/// one after it (`FILEVINE_STORE_KEY=<new>,<old>`). Values are read with
/// either and written with the new one; once every value was rewritten (a
/// refresh rewrites it, within the access token's lifetime for an active
/// session), drop the old key.
///
/// ```
/// use filevine_identity_ext::store::{StoreEncryptionKey, StoreEncryptionKeys};
///
/// let old = StoreEncryptionKey::generate().unwrap();
/// let new = StoreEncryptionKey::generate().unwrap();
/// let keys = StoreEncryptionKeys::new(new.clone()).with_previous(old.clone());
/// assert_eq!(keys.current(), &new);
/// assert_eq!(keys.len(), 2);
///
/// // The environment form: comma-separated, newest first.
/// let text = format!("{},{}", new.expose_secret(), old.expose_secret());
/// assert_eq!(StoreEncryptionKeys::parse(&text).unwrap(), keys);
/// // Secrets never show.
/// assert!(!format!("{keys:?}").contains(new.expose_secret()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoreEncryptionKeys {
    /// Never empty; the first seals.
    keys: Vec<StoreEncryptionKey>,
}

impl StoreEncryptionKeys {
    /// One key, sealing and opening.
    pub fn new(current: StoreEncryptionKey) -> Self {
        Self { keys: vec![current] }
    }

    /// Also opens values sealed with `previous` (a key being rotated out).
    #[must_use]
    pub fn with_previous(mut self, previous: StoreEncryptionKey) -> Self {
        if !self.keys.contains(&previous) {
            self.keys.push(previous);
        }
        self
    }

    /// Reads the `FILEVINE_STORE_KEY` form: one or more base64 keys,
    /// separated by commas (or whitespace), the sealing key first.
    ///
    /// # Errors
    /// [`ConfigError::InvalidStoreKey`] naming what is wrong, with the
    /// position of the key in the list and never its value.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut parts = text.split(|c: char| c == ',' || c.is_whitespace()).filter(|part| !part.is_empty());
        let Some(first) = parts.next() else {
            return Err(ConfigError::InvalidStoreKey { reason: "no key is given" });
        };
        let mut keys = Self::new(StoreEncryptionKey::new(first)?);
        for part in parts {
            keys = keys.with_previous(StoreEncryptionKey::new(part).map_err(|error| match error {
                ConfigError::InvalidStoreKey { reason } => ConfigError::InvalidPreviousStoreKey { reason },
                other => other,
            })?);
        }
        Ok(keys)
    }

    /// The key that seals.
    pub fn current(&self) -> &StoreEncryptionKey {
        &self.keys[0]
    }

    /// How many keys open values.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: there is always a sealing key.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The key whose id is `id`, if it is one of these.
    pub(crate) fn by_id(&self, id: &[u8]) -> Option<&StoreEncryptionKey> {
        self.keys.iter().find(|key| key_id(key) == id)
    }

    /// Every key, the sealing key first (for values that name no key).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &StoreEncryptionKey> {
        self.keys.iter()
    }
}

impl From<StoreEncryptionKey> for StoreEncryptionKeys {
    fn from(key: StoreEncryptionKey) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for StoreEncryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|key| hex(&key_id(key))).collect();
        f.debug_struct("StoreEncryptionKeys").field("key_ids", &ids).finish()
    }
}

/// A key's id: the first bytes of a domain-separated SHA-256 of the key. A
/// 256-bit random key cannot be recovered from it.
pub(crate) fn key_id(key: &StoreEncryptionKey) -> [u8; KEY_ID_LEN] {
    let mut hasher = crate::crypto::Sha256::new();
    hasher.update(KEY_ID_DOMAIN);
    hasher.update(&*key.bytes());
    let digest = hasher.finish();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_bad_key_by_position_never_by_value() {
        let good = StoreEncryptionKey::generate().unwrap();
        assert_eq!(
            StoreEncryptionKeys::parse(" , ").unwrap_err(),
            ConfigError::InvalidStoreKey { reason: "no key is given" }
        );
        let err = StoreEncryptionKeys::parse("not-base64-SECRET").unwrap_err();
        assert!(matches!(err, ConfigError::InvalidStoreKey { .. }), "{err:?}");
        let err = StoreEncryptionKeys::parse(&format!("{}, c2hvcnQ=", good.expose_secret())).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidPreviousStoreKey { .. }), "{err:?}");
        assert!(!err.to_string().contains("c2hvcnQ="));
        // Duplicates collapse; whitespace separates too.
        let keys = StoreEncryptionKeys::parse(&format!("{0}\n{0}", good.expose_secret())).unwrap();
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn key_ids_differ_per_key_and_find_their_key() {
        let (a, b) = (StoreEncryptionKey::generate().unwrap(), StoreEncryptionKey::generate().unwrap());
        assert_ne!(key_id(&a), key_id(&b));
        let keys = StoreEncryptionKeys::new(a.clone()).with_previous(b.clone());
        assert_eq!(keys.by_id(&key_id(&b)), Some(&b));
        assert_eq!(keys.by_id(&[0; KEY_ID_LEN]), None);
        let shown = format!("{keys:?}");
        assert!(shown.contains(&hex(&key_id(&a))), "{shown}");
        assert!(!shown.contains(a.expose_secret()));
    }
}
