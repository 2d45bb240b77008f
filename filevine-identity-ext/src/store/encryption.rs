//! [`StoreEncryptionKeys`]: the keys that seal and open stored values, so
//! `FILEVINE_STORE_KEY` can be rotated without signing anyone out.

use std::fmt;

use crate::error::ConfigError;
use crate::secret::StoreEncryptionKey;

/// Domain separation for key ids: a key id is never another digest of the
/// key.
const KEY_ID_DOMAIN: &[u8] = b"filevine-identity/store-key-id/v1";
/// Domain separation for the key of [`StoreEncryptionKeys::keyed_name`]:
/// the sealing key itself is never used as an HMAC key.
const NAME_KEY_DOMAIN: &[u8] = b"filevine-identity/keyed-name/v1";
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

    /// A name for `id` that only holders of the sealing key can compute:
    /// HMAC-SHA256 (64 hex digits) under a key derived from it. For records
    /// named by a bearer secret, such as an application's session records
    /// keyed by the session cookie: a dump, a backup or a replica of the
    /// database shows names that cannot be turned back into cookies, nor
    /// computed for a chosen cookie without the key.
    ///
    /// ```
    /// use filevine_identity_ext::store::{StoreEncryptionKey, StoreEncryptionKeys};
    ///
    /// let keys = StoreEncryptionKeys::new(StoreEncryptionKey::generate().unwrap());
    /// let name = keys.keyed_name("session-id-from-the-cookie");
    /// assert_eq!(name.len(), 64);
    /// assert!(!name.contains("session"));
    /// assert_eq!(name, keys.keyed_name("session-id-from-the-cookie"));
    /// ```
    pub fn keyed_name(&self, id: &str) -> String {
        keyed_name(self.current(), id)
    }

    /// [`keyed_name`](Self::keyed_name) under every key, the sealing key's
    /// first: to find a record named before a key rotation.
    pub fn keyed_names(&self, id: &str) -> Vec<String> {
        self.keys.iter().map(|key| keyed_name(key, id)).collect()
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

fn keyed_name(key: &StoreEncryptionKey, id: &str) -> String {
    use crate::crypto::backend::hmac;
    let mut hasher = crate::crypto::Sha256::new();
    hasher.update(NAME_KEY_DOMAIN);
    hasher.update(&*key.bytes());
    let name_key = zeroize::Zeroizing::new(hasher.finish());
    hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &*name_key), id.as_bytes()).as_ref())
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
    fn keyed_names_depend_on_the_key_and_the_id() {
        let (a, b) = (StoreEncryptionKey::generate().unwrap(), StoreEncryptionKey::generate().unwrap());
        let keys = StoreEncryptionKeys::new(a.clone()).with_previous(b.clone());
        let name = keys.keyed_name("id");
        assert_eq!(name.len(), 64);
        assert_ne!(name, keys.keyed_name("id2"));
        assert_eq!(keys.keyed_names("id"), [name.clone(), StoreEncryptionKeys::new(b).keyed_name("id")]);
        // Not a plain digest of the id.
        assert_ne!(name, hex(&crate::crypto::sha256(b"id")));
        // RFC 4231 test case 2, through the backend's HMAC (the derived key
        // aside): HMAC-SHA256("Jefe", "what do ya want for nothing?").
        use crate::crypto::backend::hmac;
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"Jefe"), b"what do ya want for nothing?");
        assert_eq!(hex(tag.as_ref()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
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
