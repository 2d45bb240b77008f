//! The values one partner sign-in carries from the authorization request to
//! the callback, and the parsing of that callback.

use std::fmt;

use filevine_identity::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::ConfigError;
use crate::grant::TokenSet;
use crate::oidc::claims::IdTokenClaims;
use crate::oidc::error::SignInError;
use crate::redact::endpoint_only;
use crate::secret::PkceCodeVerifier;
pub use crate::secret::{CsrfToken, Nonce};

/// Longest callback URL or query accepted.
const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// A redirect URI registered with Filevine: absolute, `https://` (or
/// `http://` on loopback, for development), without a fragment.
///
/// ```
/// use filevine_identity_ext::oidc::RedirectUrl;
///
/// let url = RedirectUrl::new("https://localhost:7059/signin-oidc").unwrap();
/// assert_eq!(url.as_str(), "https://localhost:7059/signin-oidc");
/// let err = RedirectUrl::new("http://app.example.com/cb").unwrap_err();
/// assert!(err.to_string().contains("https://"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUrl(String);

impl RedirectUrl {
    /// Validates a redirect URI.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRedirectUri`] naming the URL and what is wrong with it.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        let given = url.into();
        let invalid = |reason: &str| ConfigError::InvalidRedirectUri { given: given.clone(), reason: reason.into() };
        let parsed = Url::parse(&given).map_err(|e| invalid(&format!("not an absolute URL ({e})")))?;
        if !crate::config::region::is_secure(&parsed) {
            return Err(invalid("it must be https:// (http:// only on loopback hosts)"));
        }
        if parsed.fragment().is_some() {
            return Err(invalid("a redirect URI cannot have a fragment"));
        }
        // Sent exactly as given: the provider compares it with the
        // registered one character by character.
        Ok(Self(given))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path of the URI: the route an app serves the callback on.
    pub fn path(&self) -> String {
        Url::parse(&self.0).map(|u| u.path().to_owned()).unwrap_or_default()
    }
}

impl TryFrom<String> for RedirectUrl {
    type Error = ConfigError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<RedirectUrl> for String {
    fn from(value: RedirectUrl) -> Self {
        value.0
    }
}

impl fmt::Display for RedirectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Options of one authorization request.
///
/// ```
/// use filevine_identity_ext::oidc::AuthorizationOptions;
///
/// use std::time::Duration;
///
/// let options = AuthorizationOptions::default()
///     .prompt("login")
///     .login_hint("alice@example.com")
///     .max_age(Duration::from_secs(300));
/// # drop(options);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct AuthorizationOptions {
    pub(crate) prompt: Option<String>,
    pub(crate) login_hint: Option<String>,
    pub(crate) max_age: Option<u64>,
}

impl AuthorizationOptions {
    /// `prompt`: `login` (sign in again), `consent`, `select_account` or
    /// `none`, space-separated.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// `max_age`: the user must have authenticated at most this long ago
    /// (whole seconds); the provider asks them to sign in again otherwise.
    /// The ID token must then carry `auth_time`, and the callback refuses
    /// one older than this plus the leeway
    /// ([`IdTokenError::AuthenticationTooOld`](crate::oidc::IdTokenError::AuthenticationTooOld)).
    pub fn max_age(mut self, max_age: std::time::Duration) -> Self {
        self.max_age = Some(max_age.as_secs());
        self
    }

    /// `login_hint`: the user's e-mail or login name, pre-filled.
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }
}

/// What an application keeps between sending the user to Filevine and the
/// callback: the `state`, `nonce`, PKCE verifier, redirect URI and scopes
/// of one sign-in.
///
/// Keep it server-side (a session store keyed by a cookie), not in the
/// browser: it holds the PKCE verifier. It is serializable for that
/// purpose; serialized, its values are in the clear. `Debug` redacts them.
/// It is used once: [`OidcClient::complete_sign_in`](crate::oidc::OidcClient::complete_sign_in)
/// takes it by value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub(crate) state: CsrfToken,
    pub(crate) nonce: Nonce,
    pub(crate) pkce_verifier: PkceCodeVerifier,
    pub(crate) redirect_uri: RedirectUrl,
    pub(crate) scopes: String,
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    /// Seconds since the epoch.
    pub(crate) created_at: u64,
    /// The `max_age` requested, in seconds (absent in sign-ins saved by
    /// an older version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_age: Option<u64>,
    /// The DPoP key a pushed request bound the code to (RFC 9449 §10.1):
    /// the code exchange must prove the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_key: Option<SignInKey>,
    /// The request was pushed (RFC 9126).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) pushed: bool,
}

/// The DPoP key of a pushed sign-in, kept with the pending sign-in until
/// the code exchange: serialized as its PKCS#8 document in base64url (in
/// the clear, as the PKCE verifier is: the pending sign-in is kept
/// server-side). Compared by thumbprint; `Debug` shows the thumbprint only.
#[derive(Clone, Debug)]
pub(crate) struct SignInKey(pub(crate) crate::jose::DpopKey);

impl PartialEq for SignInKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.thumbprint() == other.0.thumbprint()
    }
}

impl Eq for SignInKey {}

impl Serialize for SignInKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        serializer.serialize_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0.pkcs8()))
    }
}

impl<'de> Deserialize<'de> for SignInKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = String::deserialize(deserializer)?;
        let pkcs8 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("the sign-in's DPoP key is not base64url"))?;
        crate::jose::DpopKey::from_pkcs8(&pkcs8)
            .map(SignInKey)
            .ok_or_else(|| serde::de::Error::custom("the sign-in's DPoP key is not a P-256 PKCS#8 key"))
    }
}

impl PendingSignIn {
    /// The CSRF `state`, also the key an app can file this under.
    pub fn state(&self) -> &CsrfToken {
        &self.state
    }

    /// The scopes requested.
    pub fn scopes(&self) -> &str {
        &self.scopes
    }

    /// When the sign-in started, in seconds since the epoch.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("pkce_verifier", &self.pkce_verifier)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .field("created_at", &self.created_at)
            .field("max_age", &self.max_age)
            .field("dpop_key", &self.dpop_key.as_ref().map(|key| key.0.thumbprint()))
            .field("pushed", &self.pushed)
            .finish()
    }
}

/// The URL to send the user to, and the [`PendingSignIn`] to keep.
pub struct AuthorizationRequest {
    /// Redirect the user's browser here.
    pub url: Url,
    /// Keep this server-side until the callback.
    pub pending: PendingSignIn,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL carries state and nonce; show where it goes, not them.
        f.debug_struct("AuthorizationRequest")
            .field("endpoint", &endpoint_only(&self.url))
            .field("pending", &self.pending)
            .finish()
    }
}

/// The parameters of the redirect back to the app (RFC 6749 §4.1.2 and
/// §4.1.2.1, RFC 9207 `iss`).
///
/// ```
/// use filevine_identity_ext::oidc::AuthorizationResponse;
///
/// let response = AuthorizationResponse::parse("https://localhost:7059/signin-oidc?code=abc&state=xyz").unwrap();
/// assert_eq!(response.state.as_deref(), Some("xyz"));
/// assert!(response.code.is_some());
///
/// // A query string works too, and duplicates are refused.
/// let err = AuthorizationResponse::parse("code=a&code=b&state=x").unwrap_err();
/// assert!(err.to_string().contains("more than once"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationResponse {
    /// The authorization code (a secret until it is exchanged).
    pub code: Option<SecretString>,
    /// The `state` echoed back.
    pub state: Option<String>,
    /// The issuer that answered (RFC 9207), when the provider sends it.
    pub iss: Option<String>,
    /// The error code, when the provider refused.
    pub error: Option<String>,
    /// The provider's description of the error.
    pub error_description: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("code", &self.code.as_ref().map(|_| "[REDACTED]"))
            .field("state", &self.state.as_ref().map(|_| "[REDACTED]"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl AuthorizationResponse {
    /// Parses the callback: a whole URL (`https://app/signin-oidc?code=…`),
    /// a query with or without its `?`, or a request target
    /// (`/signin-oidc?code=…`). Unknown parameters are ignored.
    ///
    /// # Errors
    /// [`SignInError::MalformedCallback`] for input longer than 16 KiB, a
    /// URL that does not parse, or a parameter given more than once (RFC
    /// 6749 §3.1).
    pub fn parse(callback: &str) -> Result<Self, SignInError> {
        let malformed = |reason: String| SignInError::MalformedCallback { reason };
        if callback.len() > MAX_CALLBACK_BYTES {
            return Err(malformed(format!("it is longer than {MAX_CALLBACK_BYTES} bytes")));
        }
        let callback = callback.trim();
        // A URL starts with its scheme; a bare query can contain `://` in a
        // value (the `iss` parameter).
        let scheme = callback.split_once("://").map(|(scheme, _)| scheme);
        let is_url = scheme.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+'));
        let query = if is_url {
            let url = Url::parse(callback).map_err(|e| malformed(format!("not a URL ({e})")))?;
            url.query().unwrap_or_default().to_owned()
        } else {
            let query = callback.split_once('?').map_or(callback, |(_, q)| q);
            query.split('#').next().unwrap_or_default().to_owned()
        };
        let mut response = Self { code: None, state: None, iss: None, error: None, error_description: None };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "state" => &mut response.state,
                "iss" => &mut response.iss,
                "error" => &mut response.error,
                "error_description" => &mut response.error_description,
                "code" => {
                    if response.code.replace(SecretString::new(value.into_owned())).is_some() {
                        return Err(malformed("the parameter \"code\" appears more than once".into()));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(malformed(format!("the parameter {name:?} appears more than once")));
            }
        }
        Ok(response)
    }
}

/// The result of a sign-in: the tokens and the validated ID token's claims.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Access, refresh and ID token. Hand it to
    /// [`OidcClient::token_provider`](crate::oidc::OidcClient::token_provider) to
    /// keep the access token fresh.
    pub token_set: TokenSet,
    /// Who signed in.
    pub claims: IdTokenClaims,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_queries_and_targets() {
        for input in [
            "https://localhost:7059/signin-oidc?code=c1&state=s1&iss=https%3A%2F%2Fidentity.filevine.io",
            "?code=c1&state=s1&iss=https%3A%2F%2Fidentity.filevine.io",
            "code=c1&state=s1&iss=https://identity.filevine.io",
            "/signin-oidc?code=c1&state=s1&iss=https%3A%2F%2Fidentity.filevine.io#frag",
        ] {
            let r = AuthorizationResponse::parse(input).unwrap();
            assert_eq!(r.code.as_ref().map(SecretString::expose_secret), Some("c1"), "{input}");
            assert_eq!(r.state.as_deref(), Some("s1"), "{input}");
            assert_eq!(r.iss.as_deref(), Some("https://identity.filevine.io"), "{input}");
        }
        let r = AuthorizationResponse::parse("error=access_denied&error_description=User+said+no&state=s").unwrap();
        assert_eq!(r.error.as_deref(), Some("access_denied"));
        assert_eq!(r.error_description.as_deref(), Some("User said no"));
        assert!(r.code.is_none());
    }

    #[test]
    fn bad_callbacks_are_typed_errors() {
        for (input, reason) in [
            ("state=a&state=b", "\"state\" appears more than once"),
            ("code=SENTINEL&code=SENTINEL2", "\"code\" appears more than once"),
            ("https://[::1/cb?code=x", "not a URL"),
        ] {
            let err = AuthorizationResponse::parse(input).unwrap_err();
            assert!(matches!(err, SignInError::MalformedCallback { .. }), "{input}");
            assert!(err.to_string().contains(reason), "{input}: {err}");
            assert!(!err.to_string().contains("SENTINEL"), "{err}");
        }
        let long = format!("code={}", "a".repeat(MAX_CALLBACK_BYTES));
        assert!(AuthorizationResponse::parse(&long).unwrap_err().to_string().contains("longer than"));
    }

    #[test]
    fn debug_hides_code_and_state() {
        let r = AuthorizationResponse::parse("code=SENTINEL-code&state=SENTINEL-state").unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("SENTINEL"), "{shown}");
    }

    #[test]
    fn redirect_urls() {
        assert!(RedirectUrl::new("http://127.0.0.1:7059/signin-oidc").is_ok());
        assert!(RedirectUrl::new("http://localhost:7059/signin-oidc").is_ok());
        for (bad, reason) in [
            ("/signin-oidc", "not an absolute URL"),
            ("ftp://x.example/cb", "https://"),
            ("https://x.example/cb#f", "fragment"),
        ] {
            let err = RedirectUrl::new(bad).unwrap_err().to_string();
            assert!(err.contains(reason) && err.contains(bad), "{bad}: {err}");
        }
        assert_eq!(RedirectUrl::new("https://a.example/signin-oidc?x=1").unwrap().path(), "/signin-oidc");
        let err = serde_json::from_str::<RedirectUrl>("\"ftp://x\"").unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
    }
}
