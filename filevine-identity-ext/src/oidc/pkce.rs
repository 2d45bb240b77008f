//! PKCE (RFC 7636): the code verifier a sign-in keeps secret and the S256
//! challenge it sends instead, plus the random values every sign-in needs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filevine_identity::SecretString;

use crate::error::ConfigError;
pub use crate::secret::PkceCodeVerifier;

use crate::crypto::random_token;
pub use crate::error::RandomnessUnavailable;

impl PkceCodeVerifier {
    /// A new verifier from 32 bytes of the OS CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] if the OS random number generator fails.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        random_token(32).map(|v| Self::from_secret(SecretString::new(v)))
    }

    /// Validates a verifier (RFC 7636 §4.1: 43–128 unreserved characters).
    ///
    /// # Errors
    /// [`ConfigError::InvalidPkceVerifier`] naming the length or the character class
    /// that is wrong (never the value).
    pub fn new(verifier: impl Into<String>) -> Result<Self, ConfigError> {
        let verifier = SecretString::new(verifier);
        let text = verifier.expose_secret();
        if !(43..=128).contains(&text.len()) {
            return Err(ConfigError::InvalidPkceVerifier {
                reason: format!("it must be 43 to 128 characters long, this one has {}", text.len()),
            });
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            return Err(ConfigError::InvalidPkceVerifier {
                reason: "it may only contain A-Z, a-z, 0-9, '-', '.', '_' and '~'".into(),
            });
        }
        Ok(Self::from_secret(verifier))
    }

    /// The S256 challenge: `BASE64URL(SHA256(verifier))`.
    pub fn challenge(&self) -> PkceCodeChallenge {
        PkceCodeChallenge(URL_SAFE_NO_PAD.encode(crate::crypto::sha256(self.expose_secret().as_bytes())))
    }
}

/// The S256 code challenge sent in the authorization URL. Not a secret: it
/// is a hash, and it travels through the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkceCodeChallenge(String);

impl PkceCodeChallenge {
    /// The challenge, base64url without padding.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method: always `S256` (the SDK never sends `plain`).
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_verifiers_are_valid_distinct_and_43_chars() {
        let a = PkceCodeVerifier::generate().unwrap();
        let b = PkceCodeVerifier::generate().unwrap();
        assert_ne!(a, b);
        for v in [&a, &b] {
            assert_eq!(v.expose_secret().len(), 43);
            assert!(PkceCodeVerifier::new(v.expose_secret()).is_ok());
        }
    }

    #[test]
    fn rfc7636_appendix_b() {
        let v = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(v.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(v.challenge().method(), "S256");
    }

    #[test]
    fn bad_verifiers_name_the_problem_not_the_value() {
        let err = PkceCodeVerifier::new("SENTINEL-short").unwrap_err().to_string();
        assert!(err.contains("43 to 128") && err.contains("has 14"), "{err}");
        assert!(!err.contains("SENTINEL"), "{err}");
        let err = PkceCodeVerifier::new("a".repeat(129)).unwrap_err().to_string();
        assert!(err.contains("has 129"), "{err}");
        let err = PkceCodeVerifier::new(format!("{}+/", "a".repeat(50))).unwrap_err().to_string();
        assert!(err.contains("may only contain"), "{err}");
        assert!(PkceCodeVerifier::new("a".repeat(128)).is_ok());
        assert!(PkceCodeVerifier::new("a~b.c_d-".repeat(6)).is_ok());
    }

    #[test]
    fn serde_round_trip_keeps_the_value() {
        let v = PkceCodeVerifier::generate().unwrap();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<PkceCodeVerifier>(&json).unwrap(), v);
        let err = serde_json::from_str::<PkceCodeVerifier>("\"SENTINEL\"").unwrap_err().to_string();
        assert!(err.contains("43 to 128") && !err.contains("SENTINEL"), "{err}");
    }
}
