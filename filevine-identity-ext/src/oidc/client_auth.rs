//! How the client authenticates at the token and revocation endpoints:
//! the method, chosen from the discovery document or set explicitly, and
//! the HTTP Basic header it may need.

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
    /// A public client: `client_id` in the form, no secret (PKCE only).
    None,
}

impl ClientAuthMethod {
    /// The name in discovery documents (`client_secret_post`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::None => "none",
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
