//! OpenID Connect discovery: the provider's metadata, fetched through the
//! generated client from `<authority>/.well-known/openid-configuration`,
//! checked, and cached.

use std::sync::Arc;
use std::time::Duration;

use filevine_identity::types::OpenIdConfiguration;
use url::{Origin, Url};

use crate::error::Error;
use crate::http::LazyClient;
use crate::oidc::cache::{Cached, RETRY_INTERVAL};
use crate::time::Clock;

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
    /// OpenID Connect Discovery §4.3 requires them to be identical, character
    /// for character (a trailing slash counts); a mismatch means a
    /// misconfigured authority or an impersonating server.
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
/// authority exactly, every endpoint is an `https://` URL (`http://` only
/// when the authority itself is a loopback `http://` URL), the endpoints
/// that receive credentials or tokens (token, userinfo, revocation,
/// introspection) are on the issuer's origin unless the application allowed
/// another ([`OidcClientBuilder::allow_endpoint_origin`](crate::oidc::OidcClientBuilder::allow_endpoint_origin)),
/// and the provider can do PKCE S256 and an RSA ID token signature.
///
/// Get it from [`OidcClient::metadata`](crate::oidc::OidcClient::metadata); it is
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
    device_authorization_endpoint: Option<Url>,
    introspection_endpoint: Option<Url>,
    pushed_authorization_request_endpoint: Option<Url>,
    iss_parameter_required: bool,
    id_token_algs: Vec<String>,
    document: OpenIdConfiguration,
}

impl ProviderMetadata {
    /// Checks a discovery document fetched for `issuer`, with no endpoint
    /// origin allowed beyond the issuer's.
    ///
    /// ```
    /// use filevine_identity_ext::oidc::ProviderMetadata;
    ///
    /// let document = serde_json::from_value(serde_json::json!({
    ///     "issuer": "https://id.example",
    ///     "authorization_endpoint": "https://id.example/connect/authorize",
    ///     "token_endpoint": "https://elsewhere.example/connect/token",
    ///     "jwks_uri": "https://id.example/jwks",
    /// })).unwrap();
    /// let err = ProviderMetadata::from_document(document, "https://id.example").unwrap_err();
    /// assert!(err.to_string().contains("not on the issuer's origin"));
    /// ```
    ///
    /// # Errors
    /// A [`DiscoveryError`] naming the field that is wrong.
    pub fn from_document(document: OpenIdConfiguration, issuer: &str) -> Result<Self, DiscoveryError> {
        Self::check(document, issuer, &[])
    }

    /// [`ProviderMetadata::from_document`], with `allowed` origins accepted
    /// for the endpoints that receive secrets, besides the issuer's.
    pub(crate) fn check(
        document: OpenIdConfiguration,
        issuer: &str,
        allowed: &[Origin],
    ) -> Result<Self, DiscoveryError> {
        if document.issuer != issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: crate::redact::shown(&document.issuer, 300),
            });
        }
        let policy = EndpointPolicy::new(issuer, allowed)?;
        let token_endpoint = policy.secret_endpoint("token_endpoint", &document.token_endpoint)?;
        // The generated client is pointed at the discovered URL itself
        // (`ClientOptions::endpoint`); its base URL only matters for the
        // region a refreshing provider reports. Filevine's is the token
        // endpoint without the spec's path; elsewhere, the issuer.
        let token_base = token_endpoint
            .as_str()
            .strip_suffix(TOKEN_PATH)
            .filter(|_| token_endpoint.query().is_none())
            .unwrap_or(issuer.trim_end_matches('/'))
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
        let secret =
            |field, value: &Option<String>| value.as_deref().map(|v| policy.secret_endpoint(field, v)).transpose();
        Ok(Self {
            authorization_endpoint: policy.endpoint("authorization_endpoint", &document.authorization_endpoint)?,
            jwks_uri: policy.endpoint("jwks_uri", &document.jwks_uri)?,
            userinfo_endpoint: secret("userinfo_endpoint", &document.userinfo_endpoint)?,
            end_session_endpoint: document
                .end_session_endpoint
                .as_deref()
                .map(|v| policy.endpoint("end_session_endpoint", v))
                .transpose()?,
            revocation_endpoint: secret("revocation_endpoint", &document.revocation_endpoint)?,
            introspection_endpoint: secret("introspection_endpoint", &document.introspection_endpoint)?,
            device_authorization_endpoint: secret(
                "device_authorization_endpoint",
                &document.device_authorization_endpoint,
            )?,
            pushed_authorization_request_endpoint: secret(
                "pushed_authorization_request_endpoint",
                &document.pushed_authorization_request_endpoint,
            )?,
            iss_parameter_required: document.authorization_response_iss_parameter_supported == Some(true),
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

    /// The device authorization endpoint (RFC 8628), if the provider
    /// offers device sign-in.
    pub fn device_authorization_endpoint(&self) -> Option<&Url> {
        self.device_authorization_endpoint.as_ref()
    }

    /// The token revocation endpoint (RFC 7009), if any.
    pub fn revocation_endpoint(&self) -> Option<&Url> {
        self.revocation_endpoint.as_ref()
    }

    /// The token introspection endpoint (RFC 7662), if any.
    pub fn introspection_endpoint(&self) -> Option<&Url> {
        self.introspection_endpoint.as_ref()
    }

    /// Where authorization requests are pushed (RFC 9126), if the provider
    /// takes them.
    pub fn pushed_authorization_request_endpoint(&self) -> Option<&Url> {
        self.pushed_authorization_request_endpoint.as_ref()
    }

    /// Whether the provider takes authorization requests only when pushed
    /// (`require_pushed_authorization_requests`).
    pub fn requires_pushed_authorization_requests(&self) -> bool {
        self.document.require_pushed_authorization_requests == Some(true)
    }

    /// Whether the provider posts logout tokens when a session ends
    /// (OpenID Connect Back-Channel Logout 1.0).
    pub fn supports_backchannel_logout(&self) -> bool {
        self.document.backchannel_logout_supported == Some(true)
    }

    /// Whether its logout tokens carry the session's `sid`.
    pub fn supports_backchannel_logout_session(&self) -> bool {
        self.document.backchannel_logout_session_supported == Some(true)
    }

    /// Whether the provider puts `iss` in every authorization response
    /// (RFC 9207 `authorization_response_iss_parameter_supported`): then a
    /// callback without it is refused.
    pub fn requires_iss_parameter(&self) -> bool {
        self.iss_parameter_required
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
    /// the spec's `/connect/token`, or the issuer when the provider's token
    /// endpoint has another path (each operation is sent to its discovered
    /// URL anyway).
    pub(crate) fn token_base(&self) -> &str {
        &self.token_base
    }
}

/// Where discovered endpoints may be: the scheme the issuer's, the
/// endpoints that receive secrets on the issuer's origin or an allowed one.
struct EndpointPolicy<'a> {
    /// `http://` endpoints are accepted only when the issuer itself is a
    /// loopback `http://` URL (a test or development server).
    http_allowed: bool,
    issuer_origin: Origin,
    allowed: &'a [Origin],
}

impl<'a> EndpointPolicy<'a> {
    fn new(issuer: &str, allowed: &'a [Origin]) -> Result<Self, DiscoveryError> {
        let url = Url::parse(issuer).map_err(|e| DiscoveryError::InvalidEndpoint {
            field: "issuer",
            value: issuer.to_owned(),
            reason: format!("not a URL ({e})"),
        })?;
        let http_allowed = url.scheme() == "http" && crate::config::region::is_loopback(&url);
        Ok(Self { http_allowed, issuer_origin: url.origin(), allowed })
    }

    /// An endpoint URL: absolute, `https://` (`http://` only with a loopback
    /// `http://` issuer, and then only to loopback), no fragment, no
    /// credentials.
    fn endpoint(&self, field: &'static str, value: &str) -> Result<Url, DiscoveryError> {
        let error =
            |reason: &str| DiscoveryError::InvalidEndpoint { field, value: value.to_owned(), reason: reason.into() };
        let url = Url::parse(value).map_err(|e| error(&format!("not a URL ({e})")))?;
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => self.http_allowed && crate::config::region::is_loopback(&url),
            _ => false,
        };
        if !scheme_ok {
            return Err(error(if self.http_allowed {
                "it must be https:// or http:// to a loopback host"
            } else {
                "it must be https:// (http:// only when the authority itself is a loopback http:// URL)"
            }));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(error("it must not have a fragment or credentials"));
        }
        Ok(url)
    }

    /// An endpoint the SDK sends credentials or tokens to: as
    /// [`EndpointPolicy::endpoint`], and on the issuer's origin or an
    /// allowed one, so a tampered or misconfigured document cannot direct
    /// the client secret or a refresh token to another host.
    fn secret_endpoint(&self, field: &'static str, value: &str) -> Result<Url, DiscoveryError> {
        let url = self.endpoint(field, value)?;
        let origin = url.origin();
        if origin != self.issuer_origin && !self.allowed.contains(&origin) {
            return Err(DiscoveryError::InvalidEndpoint {
                field,
                value: value.to_owned(),
                reason: format!(
                    "it is not on the issuer's origin {}; allow its origin with OidcClientBuilder::allow_endpoint_origin if it is the provider's",
                    self.issuer_origin.ascii_serialization()
                ),
            });
        }
        Ok(url)
    }
}

/// The metadata of one authority, fetched when first needed and again
/// after `ttl`; see [`Cached`] for how concurrent callers and outages are
/// handled.
#[derive(Debug)]
pub(crate) struct DiscoveryCache {
    /// The URL the discovery path is appended to (no trailing slash).
    base: String,
    /// The issuer the document must name, exactly.
    issuer: String,
    /// Origins besides the issuer's allowed for secret-receiving endpoints.
    allowed: Vec<Origin>,
    cached: Cached<ProviderMetadata, DiscoveryError>,
}

impl DiscoveryCache {
    pub(crate) fn new(
        base: String,
        issuer: String,
        allowed: Vec<Origin>,
        ttl: Duration,
        max_stale: Duration,
        clock: Clock,
    ) -> Self {
        Self { base, issuer, allowed, cached: Cached::new(ttl, max_stale, RETRY_INTERVAL, clock) }
    }

    /// The cached metadata, or a fresh fetch when there is none or it is
    /// older than the TTL (a stale copy through an outage).
    pub(crate) async fn get(
        &self,
        http: &LazyClient,
        attempt_timeout: Duration,
    ) -> Result<Arc<ProviderMetadata>, DiscoveryError> {
        self.cached
            .get(|| {
                let span = tracing::info_span!("discovery_fetch", issuer = %self.issuer);
                tracing::Instrument::instrument(self.fetch(http, attempt_timeout), span)
            })
            .await
    }

    async fn fetch(&self, http: &LazyClient, attempt_timeout: Duration) -> Result<ProviderMetadata, DiscoveryError> {
        let url = || format!("{}/.well-known/openid-configuration", self.base);
        let http = http.get().map_err(|source| DiscoveryError::Fetch { url: url(), source })?;
        let client = filevine_identity::Client::new_with_client(
            &self.base,
            http.clone(),
            filevine_identity::ClientOptions::new(),
        );
        let document = match client.get_openid_configuration().await {
            Ok(response) => response.into_inner(),
            Err(error) => {
                return Err(DiscoveryError::Fetch {
                    url: url(),
                    source: crate::http::map_untyped_error(error, attempt_timeout).await,
                });
            }
        };
        let metadata = ProviderMetadata::check(document, &self.issuer, &self.allowed)?;
        tracing::debug!(issuer = %metadata.issuer, "fetched the OpenID Connect discovery document");
        Ok(metadata)
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
        // Discovery §4.3: identical, so a trailing slash is another issuer.
        for (found, expected) in
            [("https://a.example/", "https://a.example"), ("https://a.example", "https://a.example/")]
        {
            let err = ProviderMetadata::from_document(document(found), expected).unwrap_err();
            assert!(matches!(err, DiscoveryError::IssuerMismatch { .. }), "{found} vs {expected}: {err}");
        }
        ProviderMetadata::from_document(document("https://a.example/"), "https://a.example/").unwrap();
        // Case differences in the host are differences too.
        assert!(ProviderMetadata::from_document(document("https://A.example"), "https://a.example").is_err());
    }

    #[test]
    fn http_endpoints_only_with_a_loopback_http_issuer() {
        // An https issuer may not send the client to http://, not even on loopback.
        let mut doc = document("https://a.example");
        doc.token_endpoint = "http://127.0.0.1:9/connect/token".into();
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(err.to_string().contains("token_endpoint") && err.to_string().contains("loopback http://"), "{err}");
        let mut doc = document("https://a.example");
        doc.authorization_endpoint = "http://localhost/authorize".into();
        assert!(ProviderMetadata::from_document(doc, "https://a.example").is_err());
        // A loopback http issuer may, to loopback only.
        ProviderMetadata::from_document(document("http://127.0.0.1:8080"), "http://127.0.0.1:8080").unwrap();
        let mut doc = document("http://127.0.0.1:8080");
        doc.authorization_endpoint = "http://login.example/authorize".into();
        let err = ProviderMetadata::from_document(doc, "http://127.0.0.1:8080").unwrap_err();
        assert!(err.to_string().contains("authorization_endpoint"), "{err}");
    }

    #[test]
    fn secret_endpoints_stay_on_the_issuer_origin_unless_allowed() {
        let elsewhere = Url::parse("https://tokens.example").unwrap().origin();
        let fields = [
            "token_endpoint",
            "userinfo_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "device_authorization_endpoint",
        ];
        for field in fields {
            let mut doc = document("https://a.example");
            let value = "https://tokens.example/connect/token".to_owned();
            match field {
                "token_endpoint" => doc.token_endpoint = value,
                "userinfo_endpoint" => doc.userinfo_endpoint = Some(value),
                "revocation_endpoint" => doc.revocation_endpoint = Some(value),
                "device_authorization_endpoint" => doc.device_authorization_endpoint = Some(value),
                _ => doc.introspection_endpoint = Some(value),
            }
            let err = ProviderMetadata::from_document(doc.clone(), "https://a.example").unwrap_err();
            assert!(matches!(err, DiscoveryError::InvalidEndpoint { field: f, .. } if f == field), "{field}: {err}");
            assert!(err.to_string().contains("https://a.example") && err.to_string().contains("allow_endpoint_origin"));
            ProviderMetadata::check(doc, "https://a.example", std::slice::from_ref(&elsewhere)).unwrap();
        }
        // Another port is another origin.
        let mut doc = document("https://a.example");
        doc.token_endpoint = "https://a.example:8443/connect/token".into();
        assert!(ProviderMetadata::from_document(doc, "https://a.example").is_err());
        // The authorization, JWKS and end-session endpoints may be elsewhere.
        let mut doc = document("https://a.example");
        doc.authorization_endpoint = "https://login.example/authorize".into();
        doc.jwks_uri = "https://keys.example/jwks".into();
        doc.end_session_endpoint = Some("https://login.example/logout".into());
        ProviderMetadata::from_document(doc, "https://a.example").unwrap();
    }

    #[test]
    fn iss_parameter_requirement_is_read() {
        let mut doc = document("https://a.example");
        assert!(!ProviderMetadata::from_document(doc.clone(), "https://a.example").unwrap().requires_iss_parameter());
        doc.authorization_response_iss_parameter_supported = Some(true);
        assert!(ProviderMetadata::from_document(doc, "https://a.example").unwrap().requires_iss_parameter());
    }

    #[test]
    fn endpoints_are_checked() {
        let mut doc = document("https://a.example");
        // A token endpoint with another path than the spec's is used as
        // discovered; the generated client's base is then the issuer.
        doc.token_endpoint = "https://a.example/oauth2/token".into();
        let metadata = ProviderMetadata::from_document(doc, "https://a.example").unwrap();
        assert_eq!(metadata.token_endpoint().as_str(), "https://a.example/oauth2/token");
        assert_eq!(metadata.token_base(), "https://a.example");

        let mut doc = document("https://a.example");
        doc.jwks_uri = "http://a.example/jwks".into();
        let err = ProviderMetadata::from_document(doc, "https://a.example").unwrap_err();
        assert!(err.to_string().contains("jwks_uri") && err.to_string().contains("https://"), "{err}");

        let mut doc = document("https://a.example");
        doc.jwks_uri = "ftp://a.example/jwks".into();
        assert!(ProviderMetadata::from_document(doc, "https://a.example").is_err());

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
