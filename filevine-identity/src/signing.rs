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

/// The request header a DPoP proof goes in (RFC 9449 §4.1).
pub const DPOP_HEADER: &str = "dpop";

/// The longest `DPoP-Nonce` taken: a nonce is copied into every later
/// proof for its origin, and real ones are tens of bytes.
pub const MAX_DPOP_NONCE_LEN: usize = 1024;

/// The nonce a server sends in `DPoP-Nonce` (RFC 9449 §8.1), when it is a
/// valid one (NQCHAR: printable ASCII without `"` and `\`) of at most
/// [`MAX_DPOP_NONCE_LEN`] bytes.
///
/// ```
/// let mut headers = reqwest::header::HeaderMap::new();
/// headers.insert("dpop-nonce", "eyJ7S_zG.eyJH0-Z.HX4w-7v".parse().unwrap());
/// assert_eq!(filevine_identity::signing::dpop_nonce(&headers).as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
/// headers.insert("dpop-nonce", "has \"quotes\"".parse().unwrap());
/// assert_eq!(filevine_identity::signing::dpop_nonce(&headers), None);
/// headers.insert("dpop-nonce", "n".repeat(1025).parse().unwrap());
/// assert_eq!(filevine_identity::signing::dpop_nonce(&headers), None);
/// ```
pub fn dpop_nonce(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let value = headers.get("dpop-nonce")?.to_str().ok()?;
    let valid = !value.is_empty()
        && value.len() <= MAX_DPOP_NONCE_LEN
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    valid.then(|| value.to_owned())
}

/// Whether a resource server's answer is a `use_dpop_nonce` challenge
/// (RFC 9449 §9): a 401 whose `WWW-Authenticate` says so.
pub fn is_resource_nonce_challenge(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("use_dpop_nonce")))
}

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
