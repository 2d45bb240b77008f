//! Credentials signed per request, which the hooks ask for while they build
//! each request: a client assertion (`private_key_jwt`, RFC 7523 §2.2) in
//! place of a client secret, and a DPoP proof (RFC 9449 §4) on token
//! requests and on requests that carry a DPoP-bound access token.
//!
//! The traits keep the generated crate free of any crypto: the
//! implementations (keys, signatures, nonces) live in
//! `filevine-identity-ext`. A signature is made for each attempt, so a
//! retried request never repeats a `jti`.

use crate::SecretString;

/// `client_assertion_type` for a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signs a fresh client assertion for each request that authenticates the
/// client (token, revocation, introspection, device authorization).
///
/// ```
/// use filevine_identity::{ClientAssertion, ClientOptions, SecretString};
/// use std::sync::Arc;
///
/// struct Fixed;
/// impl ClientAssertion for Fixed {
///     fn assertion(&self) -> Result<SecretString, String> {
///         Ok(SecretString::from("header.claims.signature"))
///     }
/// }
/// let options = ClientOptions::new().client_assertion(Arc::new(Fixed));
/// assert!(format!("{options:?}").contains("client_assertion: true"));
/// ```
pub trait ClientAssertion: Send + Sync + 'static {
    /// A JWT signed now, with a `jti` never used before. The error names
    /// what failed, never key material.
    ///
    /// # Errors
    /// When the assertion cannot be signed (no randomness, a broken key).
    fn assertion(&self) -> Result<SecretString, String>;
}

/// Makes DPoP proofs (RFC 9449 §4) and remembers the nonces servers hand out
/// (§8, §9).
///
/// ```
/// use filevine_identity::{ClientOptions, DpopProver, SecretString};
/// use std::sync::Arc;
///
/// struct Fixed;
/// impl DpopProver for Fixed {
///     fn proof(&self, method: &str, url: &url::Url, _: Option<&SecretString>) -> Result<SecretString, String> {
///         Ok(SecretString::from(format!("proof-for-{method}-{url}")))
///     }
///     fn nonce(&self, _url: &url::Url, _nonce: &str) {}
/// }
/// let options = ClientOptions::new().dpop(Arc::new(Fixed));
/// assert!(format!("{options:?}").contains("dpop: true"));
/// ```
pub trait DpopProver: Send + Sync + 'static {
    /// A proof for one request: `htm` = `method`, `htu` = `url` without its
    /// query and fragment, `ath` = the hash of `access_token` when the
    /// request carries one, and the last nonce `url`'s origin sent.
    ///
    /// # Errors
    /// When the proof cannot be signed; the message names the cause, never
    /// key material.
    fn proof(&self, method: &str, url: &url::Url, access_token: Option<&SecretString>) -> Result<SecretString, String>;

    /// A server at `url`'s origin sent `nonce` (`DPoP-Nonce`); later proofs
    /// for that origin carry it.
    fn nonce(&self, url: &url::Url, nonce: &str);
}
