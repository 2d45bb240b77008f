//! [`DpopKey`]: the key pair DPoP-bound tokens are bound to (RFC 9449), and
//! the proofs it signs.
//!
//! A key is made (ES256) when a provider first asks for DPoP-bound tokens,
//! and lives as long as the tokens bound to it: it is stored with the token
//! set (sealed like the tokens), so a restarted process or another replica
//! signs with the same key the refresh token is bound to.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filevine_identity::SecretString;
use zeroize::Zeroizing;

use super::error::KeyError;
use super::jws::{Algorithm, SigningKey};
use crate::time::Clock;

/// Most origins whose nonce a key remembers (an identity provider and a
/// gateway or two in practice); past it the oldest is forgotten and costs
/// one `use_dpop_nonce` round trip.
const MAX_NONCES: usize = 16;
/// The longest nonce kept: each is copied into every proof for its origin,
/// and real ones are tens of bytes.
pub(crate) const MAX_NONCE_LEN: usize = 1024;

/// A DPoP key pair (ES256). `Debug` shows its thumbprint, never the key.
///
/// ```
/// use filevine_identity_ext::jose::DpopKey;
///
/// let key = DpopKey::generate()?;
/// assert_eq!(key.thumbprint().len(), 43, "base64url SHA-256");
/// assert!(format!("{key:?}").contains(key.thumbprint()));
/// # Ok::<(), filevine_identity_ext::jose::KeyError>(())
/// ```
#[derive(Clone)]
pub struct DpopKey(Arc<Inner>);

struct Inner {
    key: SigningKey,
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public key as a JWK, for each proof's header.
    jwk: serde_json::Value,
    /// RFC 7638 thumbprint of `jwk` (`jkt`, `cnf.jkt`).
    thumbprint: String,
    /// The last `DPoP-Nonce` each origin sent.
    nonces: Mutex<HashMap<String, String>>,
}

impl DpopKey {
    /// A new ES256 key pair from the operating system's random numbers.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when no random numbers can be had.
    pub fn generate() -> Result<Self, KeyError> {
        let (key, pkcs8) = SigningKey::generate_ec()?;
        Self::from_parts(key, pkcs8)
    }

    /// The key a store holds (PKCS#8).
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Option<Self> {
        let key = SigningKey::ec_from_pkcs8(pkcs8).ok()?;
        Self::from_parts(key, Zeroizing::new(pkcs8.to_vec())).ok()
    }

    fn from_parts(key: SigningKey, pkcs8: Zeroizing<Vec<u8>>) -> Result<Self, KeyError> {
        let point = key.ec_public_point().filter(|p| p.len() == 65).ok_or(KeyError::Signing("not a P-256 key"))?;
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..]));
        let thumbprint = thumbprint(&x, &y);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        Ok(Self(Arc::new(Inner { key, pkcs8, jwk, thumbprint, nonces: Mutex::new(HashMap::new()) })))
    }

    /// The PKCS#8 form, for the store (sealed with the tokens).
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.0.pkcs8
    }

    /// The JWK thumbprint (RFC 7638) a bound token's `cnf.jkt` names.
    pub fn thumbprint(&self) -> &str {
        &self.0.thumbprint
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.0.jwk
    }

    /// A proof for one request (RFC 9449 §4.2): `htm`, `htu` (the URL
    /// without query and fragment), `iat` from `clock`, a fresh `jti`, the
    /// origin's last nonce, and `ath` for `access_token`.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &url::Url,
        access_token: Option<&str>,
        clock: &Clock,
    ) -> Result<SecretString, KeyError> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let jti = crate::crypto::random_token(18).map_err(|_| KeyError::Signing("no randomness for a jti"))?;
        let mut claims = serde_json::json!({
            "jti": jti,
            "htm": method,
            "htu": htu.as_str(),
            "iat": clock.unix_seconds(),
        });
        if let Some(nonce) = self.nonce_for(url) {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD.encode(crate::crypto::sha256(token.as_bytes())).into();
        }
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.0.jwk});
        self.0.key.sign(Algorithm::Es256, &header, &claims).map(SecretString::from)
    }

    /// A `DPoP` header value for one request of your own (`access_token`:
    /// the token the request carries, for `ath`), with `iat` from the
    /// system clock. [`AccessToken::dpop_proof`](crate::grant::AccessToken::dpop_proof)
    /// does this for a token's own key.
    ///
    /// ```
    /// use filevine_identity_ext::jose::DpopKey;
    ///
    /// let key = DpopKey::generate()?;
    /// let url = "https://api.example/v2/me?x=1".parse().unwrap();
    /// let proof = key.proof_header("GET", &url, Some("an-access-token"))?;
    /// assert_eq!(proof.to_str().unwrap().split('.').count(), 3);
    /// assert!(proof.is_sensitive());
    /// # Ok::<(), filevine_identity_ext::jose::KeyError>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyError::Signing`] when no random numbers can be had.
    pub fn proof_header(
        &self,
        method: &str,
        url: &url::Url,
        access_token: Option<&str>,
    ) -> Result<reqwest::header::HeaderValue, KeyError> {
        let proof = self.proof(method, url, access_token, &Clock::System)?;
        let mut value = reqwest::header::HeaderValue::try_from(proof.expose_secret())
            .map_err(|_| KeyError::Signing("the proof is not a header value"))?;
        value.set_sensitive(true);
        Ok(value)
    }

    fn nonce_for(&self, url: &url::Url) -> Option<String> {
        let nonces = self.0.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        nonces.get(&url.origin().ascii_serialization()).cloned()
    }

    /// Remembers the `DPoP-Nonce` a server at `url`'s origin sent (RFC 9449
    /// §8, §9): later proofs for that origin carry it. The SDK's own requests
    /// do this themselves; this is for a request made by hand with
    /// [`proof_header`](Self::proof_header).
    ///
    /// A nonce that is not RFC 9449's syntax (visible ASCII but `"` and
    /// `\`, at least one) or longer than 1 KiB is not kept (a
    /// warning says so): it would be copied into every later proof.
    ///
    /// ```
    /// use filevine_identity_ext::jose::DpopKey;
    ///
    /// let key = DpopKey::generate()?;
    /// let url = url::Url::parse("https://api.example/users/me").unwrap();
    /// key.remember_nonce(&url, "eyJ7S_zG.eyJH0-Z.HX4w-7v");
    /// let proof = key.proof_header("GET", &url, None)?;
    /// # drop(proof);
    /// # Ok::<(), filevine_identity_ext::jose::KeyError>(())
    /// ```
    pub fn remember_nonce(&self, url: &url::Url, nonce: &str) {
        let valid = !nonce.is_empty()
            && nonce.len() <= MAX_NONCE_LEN
            && nonce.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            tracing::warn!(
                origin = %url.origin().ascii_serialization(),
                length = nonce.len(),
                "ignoring a DPoP-Nonce that is empty, longer than 1 KiB or not visible ASCII"
            );
            return;
        }
        let mut nonces = self.0.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let origin = url.origin().ascii_serialization();
        if nonces.len() >= MAX_NONCES && !nonces.contains_key(&origin) {
            nonces.clear();
        }
        nonces.insert(origin, nonce.to_owned());
    }
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey").field("thumbprint", &self.0.thumbprint).field("key", &"[REDACTED]").finish()
    }
}

/// The RFC 7638 thumbprint of a P-256 public key given as a JWK's `x` and
/// `y`: SHA-256 over the required members, sorted, no whitespace (§3.2).
pub(crate) fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(crate::crypto::sha256(canonical.as_bytes()))
}

/// A [`DpopKey`] with the clock its proofs' `iat` is read from, as the
/// generated client's hooks take it.
pub(crate) struct Prover {
    pub(crate) key: DpopKey,
    pub(crate) clock: Clock,
}

impl filevine_identity::DpopProver for Prover {
    fn proof(&self, method: &str, url: &url::Url, access_token: Option<&SecretString>) -> Result<SecretString, String> {
        self.key
            .proof(method, url, access_token.map(SecretString::expose_secret), &self.clock)
            .map_err(|e| e.to_string())
    }

    fn nonce(&self, url: &url::Url, nonce: &str) {
        self.key.remember_nonce(url, nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nonce is kept only when it is RFC 9449's syntax and at most 1 KiB:
    /// it goes into every later proof for its origin.
    #[test]
    fn only_bounded_well_formed_nonces_are_kept() {
        let key = DpopKey::generate().unwrap();
        let url = url::Url::parse("https://api.example/users/me").unwrap();
        key.remember_nonce(&url, "first");
        for bad in ["", "has space", "quo\"te", "back\\slash", "caf\u{e9}", &"n".repeat(MAX_NONCE_LEN + 1)] {
            key.remember_nonce(&url, bad);
            assert_eq!(key.nonce_for(&url).as_deref(), Some("first"), "{bad:?} was kept");
        }
        let longest = "n".repeat(MAX_NONCE_LEN);
        key.remember_nonce(&url, &longest);
        assert_eq!(key.nonce_for(&url), Some(longest));
    }
}
