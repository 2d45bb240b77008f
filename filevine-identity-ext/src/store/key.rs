//! [`StoreKey`]: the name a token set is stored under.
//!
//! A store never sees what the key was made from. The SDK derives keys from
//! the authority, grant, client id, scopes and a hash of the credential; an
//! application names a user's session with its own id. Either way the store
//! gets a SHA-256 digest: a session id (a bearer secret of the application)
//! or a hash of a PAT never appears as a Redis key or a file name.

use std::fmt;

/// Domain separation: a digest made for another purpose never collides
/// with a store key.
const DOMAIN: &[u8] = b"filevine-identity/store-key/v1";

/// The name of one stored token set.
///
/// `Debug` and `Display` show a short fingerprint, never what the key was
/// made from.
///
/// ```
/// use filevine_identity_ext::store::StoreKey;
///
/// let key = StoreKey::session("3f0c…the session id");
/// assert_eq!(key.as_str().len(), 64);
/// assert!(!format!("{key:?}").contains("session id"));
/// assert_eq!(key, StoreKey::session("3f0c…the session id"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey {
    /// 64 lowercase hex digits.
    name: String,
}

impl StoreKey {
    /// The key of a user's session (or any name the application chooses:
    /// a user id, a tenant). Hashed before a store sees it.
    pub fn session(id: &str) -> Self {
        Self::from_parts(&[b"session", id.as_bytes()])
    }

    /// The key the SDK derives for a provider's credentials.
    pub(crate) fn derived(authority: &str, grant_type: &str, client_id: &str, scope: &str, secret: &str) -> Self {
        let secret_hash = crate::crypto::sha256(secret.as_bytes());
        Self::from_parts(&[
            b"derived",
            authority.as_bytes(),
            grant_type.as_bytes(),
            client_id.as_bytes(),
            scope.as_bytes(),
            &secret_hash,
        ])
    }

    /// This key as used by one application: bound to the authority and the
    /// client id, so two applications (or two identity providers) sharing a
    /// store and a prefix never read, overwrite or delete each other's
    /// token sets under the same session name. The SDK binds every key an
    /// application names.
    pub(crate) fn bound(&self, authority: &str, client_id: &str) -> Self {
        Self::from_parts(&[b"bound", self.name.as_bytes(), authority.as_bytes(), client_id.as_bytes()])
    }

    /// This key for one identity among several that share it (an
    /// application's key for credentials from a source).
    pub(crate) fn joined(&self, identity: &StoreKey) -> Self {
        Self::from_parts(&[b"joined", self.name.as_bytes(), identity.name.as_bytes()])
    }

    /// A key the SDK keeps for its own bookkeeping beside the token sets
    /// (a logout token seen, the sessions of a user): `purpose` and the
    /// parts, hashed like every key, so none can collide with a token
    /// set's.
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) fn internal(purpose: &str, parts: &[&str]) -> Self {
        let mut all: Vec<&[u8]> = vec![b"internal", purpose.as_bytes()];
        all.extend(parts.iter().map(|part| part.as_bytes()));
        Self::from_parts(&all)
    }

    /// A key from its name as [`as_str`](Self::as_str) gave it: 64
    /// lowercase hex digits, else `None`.
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        let valid = name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self { name: name.to_owned() })
    }

    fn from_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = crate::crypto::Sha256::new();
        hasher.update(DOMAIN.as_ref());
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let digest = hasher.finish();
        let mut name = String::with_capacity(64);
        for byte in digest {
            name.push_str(&format!("{byte:02x}"));
        }
        Self { name }
    }

    /// The name stores use: 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The first 12 digits, for logs and errors.
    pub fn fingerprint(&self) -> &str {
        &self.name[..12]
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({}…)", self.fingerprint())
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_digests_of_their_parts() {
        let a = StoreKey::derived(
            "https://identity.filevine.com",
            "personal_access_token",
            "",
            "fv.api.gateway.access",
            "pat-1",
        );
        let b = StoreKey::derived(
            "https://identity.filevine.com",
            "personal_access_token",
            "",
            "fv.api.gateway.access",
            "pat-2",
        );
        let c = StoreKey::derived(
            "https://identity.filevine.ca",
            "personal_access_token",
            "",
            "fv.api.gateway.access",
            "pat-1",
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(!a.as_str().contains("pat-1"));
        // Length prefixes: moving a boundary changes the key.
        assert_ne!(StoreKey::from_parts(&[b"ab", b"c"]), StoreKey::from_parts(&[b"a", b"bc"]));
        // A session id and a derived key never collide.
        assert_ne!(StoreKey::session("x"), StoreKey::from_parts(&[b"derived", b"x"]));
        // One session name, two applications: two keys.
        let session = StoreKey::session("s");
        let app = session.bound("https://identity.filevine.com", "app-1");
        assert_ne!(app, session.bound("https://identity.filevine.com", "app-2"));
        assert_ne!(app, session.bound("https://identity.filevine.ca", "app-1"));
        assert_eq!(app, StoreKey::session("s").bound("https://identity.filevine.com", "app-1"));
    }

    #[test]
    fn formatting_shows_a_fingerprint_only() {
        let key = StoreKey::session("secret-session-id");
        assert_eq!(format!("{key}"), format!("{}…", &key.as_str()[..12]));
        assert!(!format!("{key:?}").contains("secret"));
    }
}
