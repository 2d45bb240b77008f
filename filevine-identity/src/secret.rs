//! [`SecretString`]: what every secret-bearing field of the spec becomes.
//!
//! The spec marks PATs, client secrets, authorization codes, PKCE verifiers
//! and tokens with `format: password`; code generation maps that format to
//! this type. It lives here, hand-written, beside the generated file.

use std::fmt;

use zeroize::Zeroize;

/// A string that must not be shown: a PAT, client secret, authorization
/// code, PKCE verifier, access, refresh or ID token.
///
/// - `Debug` prints `SecretString([REDACTED])` and `Display` prints
///   `[REDACTED]`, so logging a request or response never leaks it.
/// - Serialization sends the real value (it has to reach the wire), and
///   deserialization reads it.
/// - Reading it is explicit: [`SecretString::expose_secret`].
/// - Equality is constant-time, and the memory is zeroed on drop.
///
/// ```
/// use filevine_identity::SecretString;
///
/// let pat = SecretString::from("fvpat_example");
/// assert_eq!(format!("{pat}"), "[REDACTED]");
/// assert_eq!(format!("{pat:?}"), "SecretString([REDACTED])");
/// assert_eq!(pat.expose_secret(), "fvpat_example");
/// assert_eq!(serde_json::to_string(&pat).unwrap(), "\"fvpat_example\"");
/// ```
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret value. Every call site is a place where the secret leaves
    /// its redacting wrapper: keep them few and obvious.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for SecretString {
    /// Compares in time that depends only on the lengths, not on where the
    /// first difference is (`subtle`, whose comparison the optimiser cannot
    /// turn back into an early exit).
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(secret: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let secret = SecretString::from("sentinel-7f3a");
        for shown in
            [format!("{secret}"), format!("{secret:?}"), format!("{secret:#?}"), format!("{:?}", Some(&secret))]
        {
            assert!(!shown.contains("sentinel"), "{shown}");
        }
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(SecretString::from("abc"), SecretString::from("abc"));
        assert_ne!(SecretString::from("abc"), SecretString::from("abd"));
        assert_ne!(SecretString::from("abc"), SecretString::from("ab"));
        assert!(SecretString::default().is_empty());
    }

    #[test]
    fn serde_round_trips_the_value() {
        let secret: SecretString = serde_json::from_str("\"s3cr3t\"").unwrap();
        assert_eq!(secret.expose_secret(), "s3cr3t");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"s3cr3t\"");
        let parsed: SecretString = "x".parse().unwrap();
        assert_eq!(parsed.expose_secret(), "x");
    }
}
