//! The crypto backend the features chose, made the process default where
//! its libraries need one: under `ring` alone, rustls's ring provider for
//! TLS and [`RING_JWT`] for ID token signatures; with both features on,
//! jsonwebtoken's aws-lc provider (it cannot choose by itself).

/// Called before the SDK builds an HTTP client or checks a signature.
/// Cheap after the first call; never replaces a provider the application
/// installed itself.
pub(crate) fn ensure_providers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
        {
            // Err: the application installed one already; it stays.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let _ = RING_JWT.install_default();
        }
        #[cfg(all(feature = "ring", feature = "aws-lc"))]
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
#[cfg(all(feature = "ring", not(feature = "aws-lc")))]
pub(crate) static RING_JWT: jsonwebtoken::crypto::CryptoProvider = jsonwebtoken::crypto::CryptoProvider {
    signer_factory: ring_jwt::signer,
    verifier_factory: ring_jwt::verifier,
    key_utils: jsonwebtoken::crypto::KeyUtils::new_unimplemented(),
};

#[cfg(all(feature = "ring", not(feature = "aws-lc")))]
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
