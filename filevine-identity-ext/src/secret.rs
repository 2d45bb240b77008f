//! Every secret newtype of the crate, written once by [`secret_type!`].
//!
//! Each type wraps a [`SecretString`] (constant-time equality, zeroed on
//! drop) and gets the same guarantees from the one macro: `Debug` prints
//! `Name([REDACTED])`, `Display` prints `[REDACTED]`, and the value is
//! reachable only through `expose_secret()`. What differs between them, how
//! a value is validated or generated, is written beside the type.

use filevine_identity::SecretString;

use crate::error::ConfigError;

/// Declares a secret newtype over [`SecretString`] with redacting `Debug`
/// and `Display`, `expose_secret()`, and crate-internal conversions.
macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` and `Display` never show the value; read it with
        /// `expose_secret`. Equality is constant-time.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(SecretString);

        impl $name {
            /// The secret value. Each call site is where it leaves its
            /// redacting wrapper: keep them few.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            #[allow(dead_code)]
            pub(crate) fn secret(&self) -> &SecretString {
                &self.0
            }

            #[allow(dead_code)]
            pub(crate) fn from_secret(secret: SecretString) -> Self {
                Self(secret)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[REDACTED]")
            }
        }
    };
}

/// Serializes a secret type as its plain value and deserializes it through
/// `$check`, so a value read back from a session store is validated again.
#[cfg(feature = "oidc")]
macro_rules! secret_serde {
    ($name:ident, $check:expr) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                let check: fn(String) -> Result<$name, ConfigError> = $check;
                check(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

secret_type!(
    /// An OAuth client secret.
    ClientSecret
);
secret_type!(
    /// A Filevine personal access token (PAT), issued from the Filevine UI.
    PersonalAccessToken
);
secret_type!(
    /// A refresh token. The provider rotates it on every refresh.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token (a signed JWT, compact form).
    IdToken
);
secret_type!(
    /// The key token sets are encrypted with in a
    /// [`TokenStore`](crate::store::TokenStore) (AES-256-GCM): 32 bytes,
    /// written as standard base64 (`FILEVINE_STORE_KEY`). Every process
    /// sharing a store needs the same key.
    ///
    /// ```
    /// use filevine_identity_ext::store::StoreEncryptionKey;
    ///
    /// let key = StoreEncryptionKey::generate().unwrap();
    /// let again = StoreEncryptionKey::new(key.expose_secret()).unwrap();
    /// assert_eq!(key, again);
    /// assert!(StoreEncryptionKey::new("c2hvcnQ=").is_err()); // 5 bytes
    /// ```
    StoreEncryptionKey
);

impl StoreEncryptionKey {
    /// Reads a key from standard base64 (44 characters, 32 bytes).
    ///
    /// # Errors
    /// [`ConfigError::InvalidStoreKey`] when it is not base64 or not 32
    /// bytes long (the error never repeats the value).
    pub fn new(base64: impl Into<String>) -> Result<Self, ConfigError> {
        let secret = SecretString::new(base64.into().trim());
        Self::decode(secret.expose_secret())?;
        Ok(Self(secret))
    }

    /// A fresh random key from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`](crate::error::RandomnessUnavailable) if the
    /// OS random number generator fails.
    pub fn generate() -> Result<Self, crate::error::RandomnessUnavailable> {
        use base64::Engine as _;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        crate::crypto::fill_random(&mut *bytes)?;
        Ok(Self(SecretString::new(base64::engine::general_purpose::STANDARD.encode(*bytes))))
    }

    /// The 32 key bytes.
    pub(crate) fn bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        Self::decode(self.0.expose_secret()).unwrap_or_else(|_| unreachable!("validated in new()"))
    }

    fn decode(text: &str) -> Result<zeroize::Zeroizing<[u8; 32]>, ConfigError> {
        use base64::Engine as _;
        let decoded = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| ConfigError::InvalidStoreKey { reason: "it is not standard base64" })?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| ConfigError::InvalidStoreKey { reason: "it must decode to exactly 32 bytes" })?;
        Ok(zeroize::Zeroizing::new(bytes))
    }
}

/// Credentials a user types or configures: refused when empty or blank.
macro_rules! non_empty_constructor {
    ($name:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("Wraps a ", $what, ".")]
            ///
            /// # Errors
            /// [`ConfigError::EmptySecret`] when it is empty or only whitespace.
            pub fn new(secret: impl Into<String>) -> Result<Self, ConfigError> {
                let secret = SecretString::new(secret);
                if secret.expose_secret().trim().is_empty() {
                    return Err(ConfigError::EmptySecret { what: $what });
                }
                Ok(Self(secret))
            }
        }
    };
}

non_empty_constructor!(ClientSecret, "client secret");
non_empty_constructor!(PersonalAccessToken, "personal access token");
non_empty_constructor!(RefreshToken, "refresh token");

impl IdToken {
    /// Wraps an ID token (the compact JWT). It is validated by
    /// [`OidcClient::verify_id_token`](crate::oidc::OidcClient::verify_id_token),
    /// not here.
    pub fn new(jwt: impl Into<String>) -> Self {
        Self(SecretString::new(jwt))
    }
}

#[cfg(feature = "oidc")]
pub use sign_in::{CsrfToken, DeviceCode, Nonce, PkceCodeVerifier};

/// The secrets of one sign-in (feature `oidc`).
#[cfg(feature = "oidc")]
mod sign_in {
    use super::*;

    secret_type!(
        /// A PKCE code verifier (RFC 7636): 43–128 characters from
        /// `A-Z a-z 0-9 - . _ ~`.
        ///
        /// Generated fresh for every sign-in ([`PkceCodeVerifier::generate`]: 32
        /// random bytes, 43 characters), kept server-side in the
        /// [`PendingSignIn`](crate::oidc::PendingSignIn), and sent only with the
        /// code exchange.
        ///
        /// ```
        /// use filevine_identity_ext::oidc::PkceCodeVerifier;
        ///
        /// let verifier = PkceCodeVerifier::generate().unwrap();
        /// assert_eq!(verifier.expose_secret().len(), 43);
        /// assert_eq!(format!("{verifier:?}"), "PkceCodeVerifier([REDACTED])");
        ///
        /// // RFC 7636 appendix B.
        /// let rfc = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        /// assert_eq!(rfc.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        ///
        /// assert!(PkceCodeVerifier::new("too-short").is_err());
        /// ```
        PkceCodeVerifier
    );
    secret_type!(
        /// The `state` of one sign-in: binds the callback to the browser session
        /// that started it (CSRF protection).
        CsrfToken
    );
    secret_type!(
        /// The `nonce` of one sign-in: binds the ID token to it (replay
        /// protection).
        Nonce
    );
    secret_type!(
        /// The device code of a device sign-in (RFC 8628): whoever holds it
        /// while the user approves gets the user's tokens, so it stays in
        /// the [`DeviceAuthorization`](crate::oidc::DeviceAuthorization)
        /// and goes only to the token endpoint.
        DeviceCode
    );

    /// Per-sign-in random values: generated from the OS CSPRNG, compared in
    /// constant time, serialized as their plain value for a session store.
    macro_rules! per_sign_in_value {
        ($name:ident) => {
            impl $name {
                /// 32 fresh bytes from the OS CSPRNG, base64url.
                ///
                /// # Errors
                /// [`RandomnessUnavailable`](crate::error::RandomnessUnavailable)
                /// if the OS random number generator fails.
                pub fn generate() -> Result<Self, crate::error::RandomnessUnavailable> {
                    crate::crypto::random_token(32).map(|v| Self(SecretString::new(v)))
                }

                /// Compares with a value from the provider in constant time.
                pub fn matches(&self, received: &str) -> bool {
                    self.0 == SecretString::new(received)
                }
            }

            secret_serde!($name, |value| Ok($name(SecretString::new(value))));
        };
    }

    per_sign_in_value!(CsrfToken);
    per_sign_in_value!(Nonce);
    secret_serde!(PkceCodeVerifier, PkceCodeVerifier::new);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_type_redacts_debug_and_display() {
        let sentinel = "SENTINEL-secret-42";
        let shown = [
            format!("{:?} {}", ClientSecret::new(sentinel).unwrap(), ClientSecret::new(sentinel).unwrap()),
            format!(
                "{:?} {}",
                PersonalAccessToken::new(sentinel).unwrap(),
                PersonalAccessToken::new(sentinel).unwrap()
            ),
            format!("{:?} {}", RefreshToken::new(sentinel).unwrap(), RefreshToken::new(sentinel).unwrap()),
            format!("{:?} {}", IdToken::new(sentinel), IdToken::new(sentinel)),
            #[cfg(feature = "oidc")]
            format!("{:?}", CsrfToken::from_secret(SecretString::from(sentinel))),
            #[cfg(feature = "oidc")]
            format!("{:?}", Nonce::from_secret(SecretString::from(sentinel))),
            #[cfg(feature = "oidc")]
            format!("{:#?}", PkceCodeVerifier::from_secret(SecretString::from(sentinel))),
            #[cfg(feature = "oidc")]
            format!(
                "{:?} {}",
                DeviceCode::from_secret(SecretString::from(sentinel)),
                DeviceCode::from_secret(SecretString::from(sentinel))
            ),
            format!(
                "{:?} {}",
                StoreEncryptionKey::from_secret(SecretString::from(sentinel)),
                StoreEncryptionKey::from_secret(SecretString::from(sentinel))
            ),
        ];
        for text in shown {
            assert!(!text.contains(sentinel), "{text}");
            assert!(text.contains("[REDACTED]"), "{text}");
        }
        assert_eq!(format!("{:?}", RefreshToken::new("x").unwrap()), "RefreshToken([REDACTED])");
    }

    #[test]
    fn empty_credentials_are_refused_by_name() {
        assert_eq!(
            PersonalAccessToken::new("").unwrap_err(),
            ConfigError::EmptySecret { what: "personal access token" }
        );
        assert_eq!(ClientSecret::new(" \t").unwrap_err().to_string(), "the client secret is empty");
    }

    #[cfg(feature = "oidc")]
    #[test]
    fn per_sign_in_values_compare_and_round_trip() {
        let state = CsrfToken::generate().unwrap();
        assert!(state.matches(state.expose_secret()));
        assert!(!state.matches("other"));
        assert_ne!(Nonce::generate().unwrap(), Nonce::generate().unwrap());
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<CsrfToken>(&json).unwrap(), state);
    }
}
