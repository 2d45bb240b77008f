//! Compact JWS signing (RFC 7515) with the crate's crypto backend: ES256
//! (ECDSA P-256, fixed-width signature) and RS256/PS256 (RSA). The keys a
//! client assertion or a DPoP proof is signed with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::KeyError;
use crate::crypto::backend::rand::SystemRandom;
use crate::crypto::backend::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};

/// A JWS algorithm the SDK signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
}

impl Algorithm {
    /// The `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }
}

/// A private key the backend signs with.
pub(crate) enum SigningKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

const ES256: &signature::EcdsaSigningAlgorithm = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;

impl SigningKey {
    /// A P-256 key from PKCS#8.
    pub(crate) fn ec_from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        #[cfg(feature = "aws-lc")]
        let pair = EcdsaKeyPair::from_pkcs8(ES256, pkcs8);
        #[cfg(not(feature = "aws-lc"))]
        let pair = EcdsaKeyPair::from_pkcs8(ES256, pkcs8, &SystemRandom::new());
        pair.map(Self::Ec).map_err(|e| format!("not a P-256 key ({e})"))
    }

    /// A P-256 key from its private scalar and uncompressed public point
    /// (the backend checks that they are one pair).
    pub(crate) fn ec_from_parts(private: &[u8], public: &[u8]) -> Result<Self, String> {
        let pkcs8 = super::der::sec1_to_pkcs8(&super::der::sec1(private, public));
        Self::ec_from_pkcs8(&pkcs8).map_err(|_| "d, x and y are not one P-256 key pair".to_owned())
    }

    /// A new P-256 key and its PKCS#8 form.
    pub(crate) fn generate_ec() -> Result<(Self, zeroize::Zeroizing<Vec<u8>>), KeyError> {
        let document = EcdsaKeyPair::generate_pkcs8(ES256, &SystemRandom::new())
            .map_err(|_| KeyError::Signing("the random number generator failed"))?;
        let pkcs8 = zeroize::Zeroizing::new(document.as_ref().to_vec());
        let key = Self::ec_from_pkcs8(&pkcs8).map_err(|_| KeyError::Signing("a generated key did not load"))?;
        Ok((key, pkcs8))
    }

    /// An RSA key from PKCS#8 or PKCS#1 DER.
    pub(crate) fn rsa_from_der(der: &[u8], pkcs8: bool) -> Result<Self, String> {
        let pair = if pkcs8 { RsaKeyPair::from_pkcs8(der) } else { RsaKeyPair::from_der(der) };
        pair.map(Self::Rsa).map_err(|e| format!("not a usable RSA key ({e})"))
    }

    /// The uncompressed public point of an EC key (`04 || x || y`).
    pub(crate) fn ec_public_point(&self) -> Option<&[u8]> {
        match self {
            Self::Ec(pair) => Some(pair.public_key().as_ref()),
            Self::Rsa(_) => None,
        }
    }

    /// The public key's bytes (the uncompressed point, or RSA's DER).
    pub(crate) fn public_bytes(&self) -> &[u8] {
        match self {
            Self::Ec(pair) => pair.public_key().as_ref(),
            Self::Rsa(pair) => pair.public_key().as_ref(),
        }
    }

    /// Whether `alg` is one this key signs with.
    pub(crate) fn can_sign(&self, alg: Algorithm) -> bool {
        matches!((self, alg), (Self::Ec(_), Algorithm::Es256) | (Self::Rsa(_), Algorithm::Rs256 | Algorithm::Ps256))
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub(crate) fn sign(
        &self,
        alg: Algorithm,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, KeyError> {
        let mut jws = String::with_capacity(512);
        URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jws);
        let rng = SystemRandom::new();
        let signature = match (self, alg) {
            (Self::Ec(pair), Algorithm::Es256) => pair
                .sign(&rng, jws.as_bytes())
                .map_err(|_| KeyError::Signing("ECDSA signing failed"))?
                .as_ref()
                .to_vec(),
            (Self::Rsa(pair), Algorithm::Rs256 | Algorithm::Ps256) => {
                let padding: &dyn signature::RsaEncoding =
                    if alg == Algorithm::Ps256 { &signature::RSA_PSS_SHA256 } else { &signature::RSA_PKCS1_SHA256 };
                let mut out = vec![0; rsa_len(pair)];
                pair.sign(padding, &rng, jws.as_bytes(), &mut out)
                    .map_err(|_| KeyError::Signing("RSA signing failed"))?;
                out
            }
            _ => return Err(KeyError::Signing("the key does not sign with this algorithm")),
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

#[cfg(feature = "aws-lc")]
fn rsa_len(pair: &RsaKeyPair) -> usize {
    pair.public_modulus_len()
}

#[cfg(not(feature = "aws-lc"))]
fn rsa_len(pair: &RsaKeyPair) -> usize {
    pair.public().modulus_len()
}
