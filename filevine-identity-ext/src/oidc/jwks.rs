//! The provider's signing keys (JWKS), fetched from the discovered
//! `jwks_uri`, cached, and fetched again once when a token names a key the
//! cache does not have (the provider rotated its keys).

use std::time::Duration;

use filevine_identity::types::JsonWebKeySet;
use filevine_identity::{ClientOptions, operations};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use url::Url;

use crate::error::Error;
use crate::http::LazyClient;
use crate::oidc::cache::{Cached, RETRY_INTERVAL};
use crate::oidc::id_token::IdTokenError;
use crate::time::{Clock, Stamp};

/// The RSA signing keys of one JWKS document. Keys of other types, keys for
/// encryption and keys the JOSE crate cannot read are skipped, so one odd
/// key does not make the provider unusable.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    /// A key set from the bytes of a JWKS document (the fuzz target's
    /// entry; the SDK itself receives [`JsonWebKeySet`] from the generated
    /// client).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let document: JsonWebKeySet =
            serde_json::from_slice(body).map_err(|e| format!("not a JWKS document ({:?} error)", e.classify()))?;
        Ok(Self::from_document(document))
    }

    /// The RSA signing keys of a key set; keys of other types, for other
    /// uses, or that do not parse are left out.
    pub(crate) fn from_document(document: JsonWebKeySet) -> Self {
        let keys = document
            .keys
            .into_iter()
            .filter_map(|key| serde_json::to_value(key).ok())
            .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
            .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
            .filter(|jwk| matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature)))
            .collect();
        Self { keys }
    }

    /// The key for a token: by `kid` when the token names one, else the
    /// only RSA signing key there is. A key that declares an algorithm must
    /// declare the token's.
    pub(crate) fn find(&self, kid: Option<&str>, alg: &str) -> Option<&Jwk> {
        let fits = |jwk: &&Jwk| match &jwk.common.key_algorithm {
            None => true,
            Some(declared) => key_algorithm_name(declared) == Some(alg),
        };
        match kid {
            Some(kid) => self.keys.iter().filter(fits).find(|jwk| jwk.common.key_id.as_deref() == Some(kid)),
            None => {
                let mut candidates = self.keys.iter().filter(fits);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

fn key_algorithm_name(alg: &KeyAlgorithm) -> Option<&'static str> {
    match alg {
        KeyAlgorithm::RS256 => Some("RS256"),
        KeyAlgorithm::RS384 => Some("RS384"),
        KeyAlgorithm::RS512 => Some("RS512"),
        _ => None,
    }
}

/// The key set of one provider, cached for `ttl` (see [`Cached`] for
/// concurrent callers and outages). An unknown `kid` causes at most one
/// refetch per `refetch_interval`, so a flood of tokens with made-up key ids
/// cannot turn into a flood of requests to the provider.
#[derive(Debug)]
pub(crate) struct JwksCache {
    refetch_interval: Duration,
    /// The HTTP client's per-request timeout, for error messages.
    request_timeout: Duration,
    clock: Clock,
    cached: Cached<KeySet, IdTokenError>,
    /// When the next fetch prompted by an unknown key may run.
    next_refetch: std::sync::Mutex<Option<Stamp>>,
}

impl JwksCache {
    pub(crate) fn new(
        ttl: Duration,
        max_stale: Duration,
        refetch_interval: Duration,
        request_timeout: Duration,
        clock: Clock,
    ) -> Self {
        Self {
            refetch_interval,
            request_timeout,
            cached: Cached::new(ttl, max_stale, RETRY_INTERVAL, clock.clone()),
            clock,
            next_refetch: std::sync::Mutex::new(None),
        }
    }

    /// The decoding key for a token signed with `alg` by key `kid`.
    pub(crate) async fn key(
        &self,
        http: &LazyClient,
        jwks_uri: &Url,
        kid: Option<&str>,
        alg: &str,
    ) -> Result<DecodingKey, IdTokenError> {
        let before = self.cached.fetches();
        let keys = self.cached.get(|| self.fetch(http, jwks_uri)).await?;
        let seen = self.cached.fetches();
        let jwk = match keys.find(kid, alg) {
            Some(jwk) => jwk.clone(),
            // Unknown key: the provider may have rotated. Fetch once, unless
            // the keys were just fetched or a refetch ran recently.
            None if seen == before && self.may_refetch() => {
                tracing::debug!(kid, "the ID token names a key not in the cached JWKS; fetching it again");
                let keys = self.cached.refetch(seen, || self.fetch(http, jwks_uri)).await?;
                keys.find(kid, alg)
                    .cloned()
                    .ok_or_else(|| IdTokenError::UnknownKey { kid: kid.map(|kid| crate::redact::shown(kid, 100)) })?
            }
            None => return Err(IdTokenError::UnknownKey { kid: kid.map(|kid| crate::redact::shown(kid, 100)) }),
        };
        crate::crypto::install_default_provider();
        DecodingKey::from_jwk(&jwk).map_err(|e| IdTokenError::UnusableKey { reason: e.to_string() })
    }

    /// Whether a refetch for an unknown key may run now; if so, the next
    /// one may not run before `refetch_interval` from now.
    fn may_refetch(&self) -> bool {
        let now = self.clock.now();
        let mut next = self.next_refetch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if next.is_some_and(|at| now.before(at)) {
            return false;
        }
        *next = Some(now.plus(self.refetch_interval));
        true
    }

    async fn fetch(&self, http: &LazyClient, jwks_uri: &Url) -> Result<KeySet, IdTokenError> {
        let http = http.get().map_err(|source| IdTokenError::Keys { url: jwks_uri.to_string(), source })?;
        let span = tracing::info_span!("jwks_fetch", url = %jwks_uri);
        let keys = tracing::Instrument::instrument(fetch(http, jwks_uri, self.request_timeout), span)
            .await
            .map_err(|source| IdTokenError::Keys { url: jwks_uri.to_string(), source })?;
        tracing::debug!(keys = keys.len(), "fetched the provider's signing keys");
        Ok(keys)
    }
}

async fn fetch(http: &reqwest::Client, jwks_uri: &Url, timeout: Duration) -> Result<KeySet, Error> {
    let options = ClientOptions::new().endpoint(&operations::GET_JWKS, jwks_uri.clone());
    let client = filevine_identity::Client::new_with_client(jwks_uri.as_str(), http.clone(), options);
    match client.get_jwks().await {
        Ok(response) => Ok(KeySet::from_document(response.into_inner())),
        Err(error) => Err(crate::http::map_untyped_error(error, timeout).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn keeps_rsa_signing_keys_only() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "use": "sig", "alg": "RS512", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "mystery"},
        ]});
        let set = KeySet::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.find(Some("a"), "RS512").is_some());
        assert!(set.find(Some("a"), "RS256").is_none(), "the key declares RS512");
        assert!(set.find(Some("enc"), "RS512").is_none());
        assert!(set.find(Some("h"), "RS512").is_none());
        assert!(set.find(None, "RS512").is_some(), "no kid and one key: that key");
    }

    #[test]
    fn no_kid_with_several_keys_finds_nothing() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "n": N, "e": "AQAB"},
        ]});
        let set = KeySet::parse(body.to_string().as_bytes()).unwrap();
        assert!(set.find(None, "RS256").is_none());
        assert!(set.find(Some("b"), "RS256").is_some());
    }

    #[test]
    fn malformed_documents_are_errors() {
        for body in [&b"[]"[..], b"{}", b"not json", b"{\"keys\": 3}"] {
            assert!(KeySet::parse(body).unwrap_err().contains("not a JWKS document"));
        }
    }
}
