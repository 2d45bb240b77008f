//! [`ClientKey`]: the private key a confidential client authenticates with
//! instead of a client secret (`private_key_jwt`, RFC 7523).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::der;
use super::error::KeyError;
use super::jws::{Algorithm, SigningKey};

/// Most bytes read from a key file: a 4096-bit RSA key in PEM is about
/// 3.3 KiB.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// A client's private key: RSA (RS256, or PS256 where the provider asks
/// for it) or EC P-256 (ES256), from PEM (PKCS#8, PKCS#1, SEC1) or a JWK.
///
/// A secret like the others: `Debug` shows the key id and algorithm, never
/// the key; no error names key material. Cheap to clone (one `Arc`).
///
/// ```
/// use filevine_identity_ext::jose::{Algorithm, ClientKey};
///
/// let jwk = r#"{"kty":"EC","crv":"P-256","kid":"k1",
///   "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///   "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
///   "d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#;
/// let key = ClientKey::from_jwk(jwk)?;
/// assert_eq!((key.key_id(), key.algorithm()), (Some("k1"), Algorithm::Es256));
/// assert!(!format!("{key:?}").contains("870MB"));
/// assert!(ClientKey::from_jwk(jwk)?.with_key_id("k2").is_err(), "the JWK says k1");
/// # Ok::<(), filevine_identity_ext::jose::KeyError>(())
/// ```
#[derive(Clone)]
pub struct ClientKey(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    key: Arc<SigningKey>,
    kid: Option<String>,
    /// The JWK's own `kid`, checked against a configured one.
    jwk_kid: Option<String>,
    alg: Algorithm,
    path: Option<PathBuf>,
}

impl ClientKey {
    /// A key from PEM text: `PRIVATE KEY` (PKCS#8, RSA or P-256),
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1, P-256).
    ///
    /// # Errors
    /// [`KeyError::Malformed`] for broken PEM or DER, [`KeyError::Unsupported`]
    /// for an encrypted key, a public key or another curve.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::parse_pem(pem, None)
    }

    /// A key from a private JWK (RFC 7517): `kty` `EC` with `crv` `P-256`,
    /// or `RSA` with all eight of its numbers. Its `kid` becomes the key id.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem); a public JWK (no `d`) is
    /// [`KeyError::Unsupported`].
    pub fn from_jwk(json: &str) -> Result<Self, KeyError> {
        Self::parse_jwk(json, None)
    }

    /// A key from a file holding PEM or a JWK (the form is recognised by
    /// its first character), read at most [`MAX_KEY_FILE_BYTES`].
    ///
    /// # Errors
    /// [`KeyError::Unreadable`] when the file cannot be read; the others as
    /// [`from_pem`](Self::from_pem), naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        use std::io::Read as _;
        let path = path.as_ref();
        let unreadable = |source| KeyError::Unreadable { path: path.to_owned(), source: Arc::new(source) };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_KEY_FILE_BYTES + 1).read_to_string(&mut text).map_err(unreadable)?;
        if text.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyError::Malformed {
                path: Some(path.to_owned()),
                reason: format!("the file is longer than {MAX_KEY_FILE_BYTES} bytes"),
            });
        }
        let path = Some(path.to_owned());
        if text.trim_start().starts_with('{') { Self::parse_jwk(&text, path) } else { Self::parse_pem(&text, path) }
    }

    /// Names the key (`kid` in each assertion's header), as registered
    /// with the provider.
    ///
    /// # Errors
    /// [`KeyError::KidMismatch`] when the key is a JWK with another `kid`.
    pub fn with_key_id(self, kid: impl Into<String>) -> Result<Self, KeyError> {
        let kid = kid.into();
        if let Some(own) = &self.0.jwk_kid
            && *own != kid
        {
            return Err(KeyError::KidMismatch { path: self.0.path.clone(), configured: kid, in_key: own.clone() });
        }
        let mut inner = (*self.0).clone();
        inner.kid = Some(kid);
        Ok(Self(Arc::new(inner)))
    }

    /// Uses `alg` (RS256 or PS256 for an RSA key).
    ///
    /// # Errors
    /// [`KeyError::Unsupported`] when the key cannot sign with it.
    pub fn with_algorithm(self, alg: Algorithm) -> Result<Self, KeyError> {
        if !self.0.key.can_sign(alg) {
            return Err(KeyError::Unsupported {
                path: self.0.path.clone(),
                what: format!("this key cannot sign {}", alg.as_str()),
            });
        }
        let mut inner = (*self.0).clone();
        inner.alg = alg;
        Ok(Self(Arc::new(inner)))
    }

    /// The key id, when set.
    pub fn key_id(&self) -> Option<&str> {
        self.0.kid.as_deref()
    }

    /// The algorithm assertions are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0.key
    }

    fn parse_pem(text: &str, path: Option<PathBuf>) -> Result<Self, KeyError> {
        let malformed = |reason: String| KeyError::Malformed { path: path.clone(), reason };
        let unsupported = |what: &str| KeyError::Unsupported { path: path.clone(), what: what.to_owned() };
        let block = der::pem(text).map_err(|reason| {
            if reason.contains("encrypted") {
                unsupported("an encrypted PEM key; decrypt it first")
            } else {
                malformed(reason)
            }
        })?;
        let (key, alg) = match block.label.as_str() {
            "PRIVATE KEY" => match SigningKey::ec_from_pkcs8(&block.der) {
                Ok(key) => (key, Algorithm::Es256),
                Err(_) => match SigningKey::rsa_from_der(&block.der, true) {
                    Ok(key) => (key, Algorithm::Rs256),
                    Err(_) => {
                        return Err(unsupported(
                            "a PKCS#8 key that is neither RSA (2048 bits or more) nor EC P-256 (Ed25519, P-384 and \
                             others are not supported)",
                        ));
                    }
                },
            },
            "RSA PRIVATE KEY" => (SigningKey::rsa_from_der(&block.der, false).map_err(malformed)?, Algorithm::Rs256),
            "EC PRIVATE KEY" => (
                SigningKey::ec_from_pkcs8(&der::sec1_to_pkcs8(&block.der))
                    .map_err(|_| unsupported("an EC key not on P-256 (only P-256 signs ES256)"))?,
                Algorithm::Es256,
            ),
            "ENCRYPTED PRIVATE KEY" => return Err(unsupported("an encrypted PKCS#8 key; decrypt it first")),
            "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
                return Err(unsupported("a public key or certificate; the client key is the private key"));
            }
            other => return Err(unsupported(&format!("a PEM block labelled {other:?}"))),
        };
        Ok(Self(Arc::new(Inner { key: Arc::new(key), kid: None, jwk_kid: None, alg, path })))
    }

    fn parse_jwk(json: &str, path: Option<PathBuf>) -> Result<Self, KeyError> {
        #[derive(serde::Deserialize)]
        struct Jwk {
            kty: String,
            crv: Option<String>,
            kid: Option<String>,
            alg: Option<String>,
            d: Option<filevine_identity::SecretString>,
            x: Option<String>,
            y: Option<String>,
            n: Option<String>,
            e: Option<String>,
            p: Option<filevine_identity::SecretString>,
            q: Option<filevine_identity::SecretString>,
            dp: Option<filevine_identity::SecretString>,
            dq: Option<filevine_identity::SecretString>,
            qi: Option<filevine_identity::SecretString>,
        }
        let malformed = |reason: String| KeyError::Malformed { path: path.clone(), reason };
        let unsupported = |what: String| KeyError::Unsupported { path: path.clone(), what };
        // serde_json's message names a position, never the text.
        let jwk: Jwk = serde_json::from_str(json).map_err(|e| {
            malformed(format!("not a JWK ({:?} error at line {}, column {})", e.classify(), e.line(), e.column()))
        })?;
        let bytes = |name: &str, value: Option<&str>| -> Result<Zeroizing<Vec<u8>>, KeyError> {
            let value = value.ok_or_else(|| malformed(format!("the JWK has no `{name}`")))?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map(Zeroizing::new)
                .map_err(|_| malformed(format!("the JWK's `{name}` is not base64url")))
        };
        if jwk.d.is_none() {
            return Err(unsupported("a public JWK (no `d`); the client key is the private key".into()));
        }
        let (key, alg) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let mut point = Zeroizing::new(vec![0x04]);
                point.extend_from_slice(&bytes("x", jwk.x.as_deref())?);
                point.extend_from_slice(&bytes("y", jwk.y.as_deref())?);
                let d = bytes("d", jwk.d.as_ref().map(filevine_identity::SecretString::expose_secret))?;
                (SigningKey::ec_from_parts(&d, &point).map_err(malformed)?, Algorithm::Es256)
            }
            ("EC", crv) => return Err(unsupported(format!("an EC JWK on curve {crv:?} (only P-256 signs ES256)"))),
            ("RSA", _) => {
                let field = |name: &str, value: &Option<filevine_identity::SecretString>| {
                    bytes(name, value.as_ref().map(filevine_identity::SecretString::expose_secret))
                };
                let parts = [
                    bytes("n", jwk.n.as_deref())?,
                    bytes("e", jwk.e.as_deref())?,
                    field("d", &jwk.d)?,
                    field("p", &jwk.p)?,
                    field("q", &jwk.q)?,
                    field("dp", &jwk.dp)?,
                    field("dq", &jwk.dq)?,
                    field("qi", &jwk.qi)?,
                ];
                let integers: [&[u8]; 8] = std::array::from_fn(|i| parts[i].as_slice());
                let der = der::rsa_private_key(&integers);
                let alg = if jwk.alg.as_deref() == Some("PS256") { Algorithm::Ps256 } else { Algorithm::Rs256 };
                (SigningKey::rsa_from_der(&der, false).map_err(malformed)?, alg)
            }
            (kty, _) => return Err(unsupported(format!("a JWK of kty {kty:?} (RSA and EC P-256 are)"))),
        };
        Ok(Self(Arc::new(Inner { key: Arc::new(key), kid: jwk.kid.clone(), jwk_kid: jwk.kid, alg, path })))
    }
}

impl ClientKey {
    /// A digest of the public key: names the key without showing it.
    pub(crate) fn fingerprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(crate::crypto::sha256(self.0.key.public_bytes()))
    }
}

/// The same key pair (by its public key), whatever its id or algorithm.
impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key.public_bytes() == other.0.key.public_bytes()
    }
}

impl Eq for ClientKey {}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.0.kid)
            .field("alg", &self.0.alg.as_str())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

#[cfg(all(test, feature = "oidc"))]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::crypto::backend::signature::{self, UnparsedPublicKey};

    /// The crate's RSA test key (PKCS#1) as PEM.
    fn rsa_pem() -> String {
        let der = base64::engine::general_purpose::STANDARD.encode(crate::jose::test_key::pkcs1_der());
        format!("-----BEGIN RSA PRIVATE KEY-----\n{der}\n-----END RSA PRIVATE KEY-----\n")
    }

    fn verifies(key: &ClientKey, alg: Algorithm, verification: &'static dyn signature::VerificationAlgorithm) -> bool {
        let jws = key
            .signing_key()
            .sign(alg, &serde_json::json!({"alg": alg.as_str()}), &serde_json::json!({"a": 1}))
            .unwrap();
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        UnparsedPublicKey::new(verification, key.signing_key().public_bytes()).verify(input.as_bytes(), &sig).is_ok()
    }

    #[test]
    fn an_rsa_key_signs_rs256_and_ps256_that_the_backend_verifies() {
        let key = ClientKey::from_pem(&rsa_pem()).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Rs256);
        assert!(verifies(&key, Algorithm::Rs256, &signature::RSA_PKCS1_2048_8192_SHA256));
        let pss = key.clone().with_algorithm(Algorithm::Ps256).unwrap();
        assert!(verifies(&pss, Algorithm::Ps256, &signature::RSA_PSS_2048_8192_SHA256));
        assert!(!verifies(&key, Algorithm::Rs256, &signature::RSA_PSS_2048_8192_SHA256), "a check that can fail");
        assert!(key.with_algorithm(Algorithm::Es256).is_err());
    }

    #[test]
    fn sec1_and_pkcs8_ec_keys_load_and_sign_es256() {
        // A generated key's PKCS#8, and its SEC1 body re-wrapped by hand.
        let (_, pkcs8) = SigningKey::generate_ec().unwrap();
        let pem = |label: &str, der: &[u8]| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
        };
        let key = ClientKey::from_pem(&pem("PRIVATE KEY", &pkcs8)).unwrap();
        assert!(verifies(&key, Algorithm::Es256, &signature::ECDSA_P256_SHA256_FIXED));
        // PKCS#8 for P-256 ends with the SEC1 ECPrivateKey in an OCTET STRING.
        let sec1_start = pkcs8.iter().position(|b| *b == 0x04).map(|i| i + 2).unwrap();
        let sec1 = &pkcs8[sec1_start..];
        let from_sec1 = ClientKey::from_pem(&pem("EC PRIVATE KEY", sec1)).unwrap();
        assert_eq!(from_sec1, key, "the same key pair");
    }
}
