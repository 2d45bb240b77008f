//! The crypto backend, chosen by feature: `aws-lc` (aws-lc-rs, the
//! default) or `ring`. Everything the crate hashes, seals, verifies or
//! draws at random goes through it, so a build has one crypto library.
//!
//! The one thing for applications here is [`install_default_provider`]:
//! with `ring`, reqwest (built with `rustls-no-provider`) needs a process
//! default rustls provider before any `reqwest::Client` is built, and the
//! SDK's builders install it — call it yourself if your program builds a
//! client of its own first.
//!
//! For the rest of the crate: digests (store keys, PKCE, `at_hash`), the
//! OS random number generator (no `sha2` or `getrandom` crate of its own:
//! the backend is built anyway, for TLS), and under `ring` a ring-based
//! jsonwebtoken provider (`RING_JWT`); with both features on,
//! jsonwebtoken's aws-lc provider (it cannot choose by itself).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

// aws-lc-rs keeps ring's API: the same code runs on either backend.
#[cfg(feature = "aws-lc")]
pub(crate) use aws_lc_rs as backend;
#[cfg(all(feature = "ring", not(feature = "aws-lc")))]
pub(crate) use ring as backend;

use backend::rand::SecureRandom as _;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), RandomnessUnavailable> {
    backend::rand::SystemRandom::new().fill(buf).map_err(RandomnessUnavailable)
}

/// `n` bytes from the operating system's CSPRNG, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> Result<String, RandomnessUnavailable> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; bytes]);
    fill_random(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(&*buf))
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(data);
    hasher.finish()
}

/// An incremental SHA-256 (the store key hashes its parts one by one).
pub(crate) struct Sha256(backend::digest::Context);

impl Sha256 {
    pub(crate) fn new() -> Self {
        Self(backend::digest::Context::new(&backend::digest::SHA256))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// Makes the crate's backend the process default where a library needs
/// one: with `ring` (and not `aws-lc`), rustls's ring provider, so that any
/// `reqwest::Client` can be built; with `oidc`, jsonwebtoken's provider for
/// ID token signatures. With `aws-lc`, reqwest chooses aws-lc-rs itself
/// and there is nothing to install for TLS.
///
/// The SDK calls this from [`TokenProvider::builder`](crate::provider::TokenProvider::builder)
/// and every other place it builds a client or checks a signature. Call it
/// first if your program builds a `reqwest::Client` before it touches the
/// SDK (under `ring` reqwest panics otherwise). Cheap after the first call;
/// never replaces a provider the application installed itself.
///
/// ```
/// filevine_identity_ext::crypto::install_default_provider();
/// let client = reqwest::Client::builder().build()?; // works under `ring` too
/// # drop(client);
/// # Ok::<(), reqwest::Error>(())
/// ```
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
        {
            // Err: the application installed one already; it stays.
            let _ = rustls::crypto::ring::default_provider().install_default();
            #[cfg(feature = "oidc")]
            let _ = RING_JWT.install_default();
        }
        #[cfg(all(feature = "ring", feature = "aws-lc", feature = "oidc"))]
        {
            let _ =
                jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
        }
    });
}

/// jsonwebtoken's crypto through ring, for the RSA algorithms ID tokens
/// use (RS256, RS384, RS512) and HMAC (which the SDK refuses for ID tokens,
/// but jsonwebtoken's own API offers) — instead of its RustCrypto backend,
/// which would build RSA, elliptic curves and Ed25519 a second time.
#[cfg(all(feature = "ring", not(feature = "aws-lc"), feature = "oidc"))]
pub(crate) static RING_JWT: jsonwebtoken::crypto::CryptoProvider = jsonwebtoken::crypto::CryptoProvider {
    signer_factory: ring_jwt::signer,
    verifier_factory: ring_jwt::verifier,
    key_utils: jsonwebtoken::crypto::KeyUtils::new_unimplemented(),
};

#[cfg(all(feature = "ring", not(feature = "aws-lc"), feature = "oidc"))]
mod ring_jwt {
    use jsonwebtoken::crypto::{JwtSigner, JwtVerifier};
    use jsonwebtoken::errors::{Error, ErrorKind};
    use jsonwebtoken::signature;
    use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
    use ring::signature as ring_sig;

    fn unsupported() -> Error {
        ErrorKind::InvalidAlgorithm.into()
    }

    struct Verifier {
        alg: Algorithm,
        params: &'static ring_sig::RsaParameters,
        n: Vec<u8>,
        e: Vec<u8>,
    }

    impl signature::Verifier<Vec<u8>> for Verifier {
        fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
            ring_sig::RsaPublicKeyComponents { n: &self.n, e: &self.e }
                .verify(self.params, message, sig)
                .map_err(|_| signature::Error::new())
        }
    }

    impl JwtVerifier for Verifier {
        fn algorithm(&self) -> Algorithm {
            self.alg
        }
    }

    struct Hmac {
        alg: Algorithm,
        key: ring::hmac::Key,
    }

    impl signature::Signer<Vec<u8>> for Hmac {
        fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
            Ok(ring::hmac::sign(&self.key, message).as_ref().to_vec())
        }
    }

    impl signature::Verifier<Vec<u8>> for Hmac {
        fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
            ring::hmac::verify(&self.key, message, sig).map_err(|_| signature::Error::new())
        }
    }

    impl JwtSigner for Hmac {
        fn algorithm(&self) -> Algorithm {
            self.alg
        }
    }

    impl JwtVerifier for Hmac {
        fn algorithm(&self) -> Algorithm {
            self.alg
        }
    }

    fn hmac(alg: &Algorithm, secret: &[u8]) -> Option<Hmac> {
        let algorithm = match alg {
            Algorithm::HS256 => ring::hmac::HMAC_SHA256,
            Algorithm::HS384 => ring::hmac::HMAC_SHA384,
            Algorithm::HS512 => ring::hmac::HMAC_SHA512,
            _ => return None,
        };
        Some(Hmac { alg: *alg, key: ring::hmac::Key::new(algorithm, secret) })
    }

    pub(super) fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
        if let DecodingKeyKind::SecretOrDer(secret) = key.kind()
            && let Some(hmac) = hmac(alg, secret)
        {
            return Ok(Box::new(hmac));
        }
        let params: &'static ring_sig::RsaParameters = match alg {
            Algorithm::RS256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
            _ => return Err(unsupported()),
        };
        let DecodingKeyKind::RsaModulusExponent { n, e } = key.kind() else {
            return Err(ErrorKind::InvalidKeyFormat.into());
        };
        Ok(Box::new(Verifier { alg: *alg, params, n: n.clone(), e: e.clone() }))
    }

    struct Signer {
        alg: Algorithm,
        encoding: &'static dyn ring_sig::RsaEncoding,
        key: ring_sig::RsaKeyPair,
    }

    impl signature::Signer<Vec<u8>> for Signer {
        fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
            let mut out = vec![0; self.key.public().modulus_len()];
            self.key
                .sign(self.encoding, &ring::rand::SystemRandom::new(), message, &mut out)
                .map_err(|_| signature::Error::new())?;
            Ok(out)
        }
    }

    impl JwtSigner for Signer {
        fn algorithm(&self) -> Algorithm {
            self.alg
        }
    }

    /// Signing is for the test server and the tests (PKCS#1 DER keys).
    pub(super) fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
        if let Some(hmac) = hmac(alg, key.as_bytes()) {
            return Ok(Box::new(hmac));
        }
        let encoding: &'static dyn ring_sig::RsaEncoding = match alg {
            Algorithm::RS256 => &ring_sig::RSA_PKCS1_SHA256,
            Algorithm::RS384 => &ring_sig::RSA_PKCS1_SHA384,
            Algorithm::RS512 => &ring_sig::RSA_PKCS1_SHA512,
            _ => return Err(unsupported()),
        };
        let key =
            ring_sig::RsaKeyPair::from_der(key.as_bytes()).map_err(|_| Error::from(ErrorKind::InvalidKeyFormat))?;
        Ok(Box::new(Signer { alg: *alg, encoding, key }))
    }
}

/// The operating system's random number generator failed: no `state`,
/// `nonce`, PKCE verifier, store nonce or key can be made (better none than
/// a guessable one). Seen in sandboxes that block `getrandom(2)`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessUnavailable(#[source] pub(crate) backend::error::Unspecified);

/// The backend's error carries no detail: one failure equals another.
impl PartialEq for RandomnessUnavailable {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RandomnessUnavailable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_published_test_vectors() {
        // FIPS 180-2 appendix B.1 ("abc").
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&sha256(b"abc")), abc);
        let mut incremental = Sha256::new();
        incremental.update(b"a");
        incremental.update(b"bc");
        assert_eq!(hex(&incremental.finish()), abc);
    }

    #[test]
    fn random_tokens_have_the_asked_length_and_differ() {
        let (a, b) = (random_token(32).unwrap(), random_token(32).unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
