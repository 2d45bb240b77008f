//! OpenID Connect discovery: the provider's metadata, fetched through the
//! generated client from `<authority>/.well-known/openid-configuration`,
//! checked, and cached.

use std::sync::Arc;
use std::time::Duration;

use filevine_identity::types::OpenIdConfiguration;
use url::Url;

use crate::error::Error;
use crate::time::{Clock, Stamp};

/// The path of the token endpoint in the spec. The SDK sends every token
/// request through the generated client, which appends this path to its
/// base URL, so a discovered token endpoint must end with it.
const TOKEN_PATH: &str = "/connect/token";

/// ID token signature algorithms the SDK verifies. Filevine signs RS512.
pub(crate) const SUPPORTED_ID_TOKEN_ALGS: &[&str] = &["RS256", "RS384", "RS512"];

/// Why the provider's metadata could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The discovery document could not be fetched or parsed.
    #[error("could not read the discovery document at {url}: {source}")]
    Fetch {
        /// The discovery URL.
        url: String,
        /// What went wrong (status, network, timeout, malformed body).
        #[source]
        source: Error,
    },
    /// The document's `issuer` is not the authority it was fetched from.
    /// OpenID Connect Discovery §4.3 requires them to be identical; a
    /// mismatch means a misconfigured authority or an impersonating server.
    #[error(
        "the discovery document's issuer {found:?} is not the authority {expected:?}; check the region or FILEVINE_AUTHORITY"
    )]
    IssuerMismatch {
        /// The authority the SDK was configured with.
        expected: String,
        /// The issuer the document named.
        found: String,
    },
    /// An endpoint in the document is unusable.
    #[error("the discovery document's {field} {value:?} is unusable: {reason}")]
    InvalidEndpoint {
        /// The metadata field, e.g. `token_endpoint`.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The provider does not offer something the SDK needs.
    #[error("the identity provider does not support {what} (it offers {offered:?})")]
    Unsupported {
        /// What is missing, e.g. `the S256 PKCE method`.
        what: &'static str,
        /// What the document lists instead.
        offered: Vec<String>,
    },
    /// An optional endpoint the call needs is not in the document.
    #[error("the identity provider's discovery document has no {0}, so this call is not available")]
    MissingEndpoint(&'static str),
}

/// The provider metadata the SDK uses, checked: the issuer equals the
/// authority, every endpoint is an `https://` URL (or `http://` on
/// loopback), and the provider can do PKCE S256 and an RSA ID token
/// signature.
///
/// Get it from [`OidcClient::metadata`](crate::OidcClient::metadata); it is
/// cached there.
#[derive(Debug, Clone)]
pub struct ProviderMetadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    token_base: String,
    jwks_uri: Url,
    userinfo_endpoint: Option<Url>,
    end_session_endpoint: Option<Url>,
    revocation_endpoint: Option<Url>,
    id_token_algs: Vec<String>,
    document: OpenIdConfiguration,
}

impl ProviderMetadata {
    /// Checks a discovery document fetched from `authority`.
    ///
    /// # Errors
    /// A [`DiscoveryError`] naming the field that is wrong.
    pub fn from_document(document: OpenIdConfiguration, authority: &str) -> Result<Self, DiscoveryError> {
        if document.issuer.trim_end_matches('/') != authority.trim_end_matches('/') {
            return Err(DiscoveryError::IssuerMismatch { expected: authority.to_owned(), found: document.issuer });
        }
        let token_endpoint = endpoint("token_endpoint", &document.token_endpoint)?;
        let token_base = token_endpoint
            .as_str()
            .strip_suffix(TOKEN_PATH)
            .filter(|_| token_endpoint.query().is_none())
            .ok_or_else(|| DiscoveryError::InvalidEndpoint {
                field: "token_endpoint",
                value: document.token_endpoint.clone(),
                reason: format!("the SDK sends token requests to the spec's path {TOKEN_PATH}"),
            })?
            .to_owned();
        // An empty list means the provider did not say; the authorization
        // request will tell.
        let methods = &document.code_challenge_methods_supported;
        if !methods.is_empty() && !methods.iter().any(|m| m == "S256") {
            return Err(DiscoveryError::Unsupported { what: "the S256 PKCE method", offered: methods.clone() });
        }
        // Discovery requires the list; a provider that omits it gets the
        // algorithms the SDK verifies, and the signature check decides.
        let offered = &document.id_token_signing_alg_values_supported;
        let id_token_algs: Vec<String> = if offered.is_empty() {
            SUPPORTED_ID_TOKEN_ALGS.iter().map(|a| (*a).to_owned()).collect()
        } else {
            offered.iter().filter(|a| SUPPORTED_ID_TOKEN_ALGS.contains(&a.as_str())).cloned().collect()
        };
        if id_token_algs.is_empty() {
            return Err(DiscoveryError::Unsupported {
                what: "an RSA ID token signature (RS256, RS384 or RS512)",
                offered: offered.clone(),
            });
        }
        let optional = |field, value: &Option<String>| value.as_deref().map(|v| endpoint(field, v)).transpose();
        Ok(Self {
            authorization_endpoint: endpoint("authorization_endpoint", &document.authorization_endpoint)?,
            jwks_uri: endpoint("jwks_uri", &document.jwks_uri)?,
            userinfo_endpoint: optional("userinfo_endpoint", &document.userinfo_endpoint)?,
            end_session_endpoint: optional("end_session_endpoint", &document.end_session_endpoint)?,
            revocation_endpoint: optional("revocation_endpoint", &document.revocation_endpoint)?,
            issuer: document.issuer.clone(),
            token_endpoint,
            token_base,
            id_token_algs,
            document,
        })
    }

    /// The issuer (equal to the authority).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where the user is sent to sign in.
    pub fn authorization_endpoint(&self) -> &Url {
        &self.authorization_endpoint
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// The provider's signing keys (JWKS).
    pub fn jwks_uri(&self) -> &Url {
        &self.jwks_uri
    }

    /// The userinfo endpoint, if the provider has one.
    pub fn userinfo_endpoint(&self) -> Option<&Url> {
        self.userinfo_endpoint.as_ref()
    }

    /// The end-session (RP-initiated logout) endpoint, if any.
    pub fn end_session_endpoint(&self) -> Option<&Url> {
        self.end_session_endpoint.as_ref()
    }

    /// The token revocation endpoint (RFC 7009), if any.
    pub fn revocation_endpoint(&self) -> Option<&Url> {
        self.revocation_endpoint.as_ref()
    }

    /// The ID token algorithms the SDK will accept from this provider: the
    /// ones it advertises that the SDK verifies (RS256, RS384, RS512).
    pub fn id_token_algorithms(&self) -> &[String] {
        &self.id_token_algs
    }

    /// The whole document as the generated client parsed it.
    pub fn document(&self) -> &OpenIdConfiguration {
        &self.document
    }

    /// The base URL for the generated client: the token endpoint without
    /// the spec's `/connect/token`.
    pub(crate) fn token_base(&self) -> &str {
        &self.token_base
    }
}

/// An endpoint URL: absolute, `https://` (or `http://` on loopback), no
/// fragment, no credentials.
fn endpoint(field: &'static str, value: &str) -> Result<Url, DiscoveryError> {
    let error =
        |reason: &str| DiscoveryError::InvalidEndpoint { field, value: value.to_owned(), reason: reason.into() };
    let url = Url::parse(value).map_err(|e| error(&format!("not a URL ({e})")))?;
    if !crate::config::region::is_secure(&url) {
        return Err(error("it must be https:// (http:// only on loopback)"));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(error("it must not have a fragment or credentials"));
    }
    Ok(url)
}

/// The metadata of one authority, fetched when first needed and again
/// after `ttl`. Concurrent callers wait for one fetch.
#[derive(Debug)]
pub(crate) struct DiscoveryCache {
    authority: String,
    ttl: Duration,
    clock: Clock,
    /// The metadata and when it goes stale.
    cached: tokio::sync::Mutex<Option<(Arc<ProviderMetadata>, Stamp)>>,
}

impl DiscoveryCache {
    pub(crate) fn new(authority: String, ttl: Duration, clock: Clock) -> Self {
        Self { authority, ttl, clock, cached: tokio::sync::Mutex::new(None) }
    }

    /// The cached metadata, or a fresh fetch when there is none or it is
    /// older than the TTL. A failed fetch is not cached.
    pub(crate) async fn get(
        &self,
        http: &reqwest::Client,
        attempt_timeout: Duration,
    ) -> Result<Arc<ProviderMetadata>, DiscoveryError> {
        let mut cached = self.cached.lock().await;
        if let Some((metadata, stale_at)) = cached.as_ref()
            && self.clock.now().before(*stale_at)
        {
            return Ok(metadata.clone());
        }
        let metadata = Arc::new(self.fetch(http, attempt_timeout).await?);
        tracing::debug!(issuer = %metadata.issuer, "fetched the OpenID Connect discovery document");
        *cached = Some((metadata.clone(), self.clock.now().plus(self.ttl)));
        Ok(metadata)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        attempt_timeout: Duration,
    ) -> Result<ProviderMetadata, DiscoveryError> {
        let client = filevine_identity::Client::new_with_client(&self.authority, http.clone());
        let document = match client.get_openid_configuration().await {
            Ok(response) => response.into_inner(),
            Err(error) => {
                return Err(DiscoveryError::Fetch {
                    url: format!("{}/.well-known/openid-configuration", self.authority),
                    source: crate::http::map_untyped_error(error, attempt_timeout).await,
                });
            }
        };
        ProviderMetadata::from_document(document, &self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(issuer: &str) -> OpenIdConfiguration {
        serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/connect/authorize"),
            "token_endpoint": format!("{issuer}/connect/token"),
            "jwks_uri": format!("{issuer}/.well-known/openid-configuration/jwks"),
            "userinfo_endpoint": format!("{issuer}/connect/userinfo"),
            "code_challenge_methods_supported": ["plain", "S256"],
            "id_token_signing_alg_values_supported": ["RS512", "ES256"],
        }))
        .unwrap()
    }

    #[test]
    fn a_good_document() {
        let m =
            ProviderMetadata::from_document(document("https://identity.filevine.io"), "https://identity.filevine.io")
                .unwrap();
        assert_eq!(m.token_base(), "https://identity.filevine.io");
        assert_eq!(m.id_token_algorithms(), ["RS512"]);
        assert_eq!(m.userinfo_endpoint().unwrap().path(), "/connect/userinfo");
        assert!(m.revocation_endpoint().is_none());
    }

    #[test]
    fn issuer_must_be_the_authority() {
        let err = ProviderMetadata::from_document(document("https://evil.example"), "https://identity.filevine.io")
            .unwrap_err();
        assert!(matches!(err, DiscoveryError::IssuerMismatch { .. }), "{err}");
        assert!(err.to_string().contains("\"https://evil.example\""), "{err}");
        // One trailing slash on either side is the same issuer.
        ProviderMetadata::from_document(document("https://a.example/"), "https://a.example").unwrap();
    }

    #[test]
    fn endpoints_are_checked() {
        let mut doc = document("https://a.example");
        doc.token_endpoint = "https://a.example/oauth2/token".into();
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(err.to_string().contains("token_endpoint") && err.to_string().contains("/connect/token"), "{err}");

        let mut doc = document("https://a.example");
        doc.jwks_uri = "http://a.example/jwks".into();
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(err.to_string().contains("jwks_uri") && err.to_string().contains("https://"), "{err}");

        let mut doc = document("https://a.example");
        doc.userinfo_endpoint = Some("not a url".into());
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(err.to_string().contains("userinfo_endpoint") && err.to_string().contains("not a URL"), "{err}");

        let mut doc = document("http://127.0.0.1:8080");
        doc.end_session_endpoint = Some("http://127.0.0.1:8080/end#frag".into());
        let err = ProviderMetadata::from_document(doc, "http://127.0.0.1:8080").unwrap_err();
        assert!(err.to_string().contains("fragment"), "{err}");
    }

    #[test]
    fn pkce_and_algorithms_must_be_supported() {
        let mut doc = document("https://a.example");
        doc.code_challenge_methods_supported = vec!["plain".into()];
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(err.to_string().contains("S256") && err.to_string().contains("plain"), "{err}");

        let mut doc = document("https://a.example");
        doc.id_token_signing_alg_values_supported = vec!["HS256".into(), "none".into()];
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(matches!(err, DiscoveryError::Unsupported { .. }) && err.to_string().contains("RS512"), "{err}");

        let mut doc = document("https://a.example");
        doc.id_token_signing_alg_values_supported.clear();
        let m = ProviderMetadata::from_document(doc, "https://a.example").unwrap();
        assert_eq!(m.id_token_algorithms(), SUPPORTED_ID_TOKEN_ALGS);
    }
}
