//! How the client authenticates at the token, revocation and
//! introspection endpoints: the method, chosen from the discovery document
//! or set explicitly, and for `private_key_jwt` the algorithm.

use crate::jose::{Algorithm, ClientKey};
use crate::oidc::discovery::DiscoveryError;

/// How the client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_id` and `client_secret` in the form body (what Filevine's
    /// documentation shows).
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A signed JWT instead of a secret (`private_key_jwt`, RFC 7523 §2.2):
    /// each request carries a fresh assertion signed with the client's
    /// [`ClientKey`](crate::jose::ClientKey).
    PrivateKeyJwt,
    /// A public client: `client_id` in the form, no secret (PKCE only).
    None,
}

impl ClientAuthMethod {
    /// The name in discovery documents (`client_secret_post`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// The method for a client with a private key: `private_key_jwt`,
    /// when the provider offers it or does not say.
    ///
    /// ```
    /// use filevine_identity_ext::oidc::ClientAuthMethod;
    ///
    /// let offered = ["client_secret_post".to_owned(), "private_key_jwt".to_owned()];
    /// assert_eq!(ClientAuthMethod::choose_with_key(&offered).unwrap(), ClientAuthMethod::PrivateKeyJwt);
    /// assert!(ClientAuthMethod::choose_with_key(&["client_secret_post".to_owned()]).is_err());
    /// ```
    ///
    /// # Errors
    /// [`DiscoveryError::Unsupported`] when the provider lists methods and
    /// `private_key_jwt` is not one of them.
    pub fn choose_with_key(offered: &[String]) -> Result<Self, DiscoveryError> {
        if offered.is_empty() || offered.iter().any(|m| m == "private_key_jwt") {
            Ok(Self::PrivateKeyJwt)
        } else {
            Err(DiscoveryError::Unsupported {
                what: "private_key_jwt client authentication",
                offered: offered.to_vec(),
            })
        }
    }

    /// The method for a client with or without a secret, from the
    /// provider's `token_endpoint_auth_methods_supported`: `client_secret_post`
    /// when offered, else `client_secret_basic` (also when the provider does
    /// not say: it is the OAuth 2.0 default).
    ///
    /// ```
    /// use filevine_identity_ext::oidc::ClientAuthMethod;
    ///
    /// let offered = ["client_secret_basic".to_owned(), "client_secret_post".to_owned()];
    /// assert_eq!(ClientAuthMethod::choose(&offered, true).unwrap(), ClientAuthMethod::ClientSecretPost);
    /// assert_eq!(ClientAuthMethod::choose(&[], true).unwrap(), ClientAuthMethod::ClientSecretBasic);
    /// assert_eq!(ClientAuthMethod::choose(&offered, false).unwrap(), ClientAuthMethod::None);
    /// assert!(ClientAuthMethod::choose(&["private_key_jwt".to_owned()], true).is_err());
    /// ```
    ///
    /// # Errors
    /// [`DiscoveryError::Unsupported`] when the provider offers neither.
    pub fn choose(offered: &[String], has_secret: bool) -> Result<Self, DiscoveryError> {
        let offers = |name: &str| offered.iter().any(|m| m == name);
        if !has_secret {
            Ok(Self::None)
        } else if offered.is_empty() {
            Ok(Self::ClientSecretBasic)
        } else if offers("client_secret_post") {
            Ok(Self::ClientSecretPost)
        } else if offers("client_secret_basic") {
            Ok(Self::ClientSecretBasic)
        } else {
            Err(DiscoveryError::Unsupported {
                what: "client_secret_post or client_secret_basic client authentication",
                offered: offered.to_vec(),
            })
        }
    }
}

/// The algorithm `key` signs client assertions with at a provider that
/// lists `offered` (`token_endpoint_auth_signing_alg_values_supported`): the
/// key's own when offered (or when the provider does not say), else another
/// the key can sign, PS256 first (an RSA key the provider accepts only
/// with PS256, as FAPI 2.0 asks).
pub(super) fn assertion_key(key: ClientKey, offered: &[String]) -> Result<ClientKey, DiscoveryError> {
    let offers = |alg: Algorithm| offered.iter().any(|o| o == alg.as_str());
    if offered.is_empty() || offers(key.algorithm()) {
        return Ok(key);
    }
    [Algorithm::Ps256, Algorithm::Es256, Algorithm::Rs256]
        .into_iter()
        .filter(|alg| offers(*alg))
        .find_map(|alg| key.clone().with_algorithm(alg).ok())
        .ok_or_else(|| DiscoveryError::Unsupported {
            what: "a client assertion algorithm the client key can sign (ES256 for an EC key, RS256 or PS256 for RSA)",
            offered: offered.to_vec(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_KEY: &str = r#"{"kty":"EC","crv":"P-256",
      "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
      "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
      "d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#;

    fn offered(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_assertion_algorithm_is_one_the_provider_lists() {
        let key = ClientKey::from_jwk(EC_KEY).unwrap();
        assert_eq!(assertion_key(key.clone(), &[]).unwrap().algorithm(), Algorithm::Es256);
        assert_eq!(assertion_key(key.clone(), &offered(&["PS256", "ES256"])).unwrap().algorithm(), Algorithm::Es256);
        let err = assertion_key(key, &offered(&["PS256", "RS256"])).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("client assertion algorithm") && shown.contains("PS256"), "{shown}");
        assert!(!shown.contains("870MB6gfuTJ4"), "{shown}");
    }

    #[test]
    fn private_key_jwt_is_chosen_for_a_key_only_where_offered() {
        assert_eq!(ClientAuthMethod::choose_with_key(&[]).unwrap(), ClientAuthMethod::PrivateKeyJwt);
        let err = ClientAuthMethod::choose_with_key(&offered(&["client_secret_basic"])).unwrap_err();
        assert!(err.to_string().contains("private_key_jwt"), "{err}");
        assert_eq!(ClientAuthMethod::PrivateKeyJwt.as_str(), "private_key_jwt");
    }
}
