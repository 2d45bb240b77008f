//! ID token validation: the signature against the provider's JWKS (with
//! the `jsonwebtoken` crate; no cryptography here), then the OpenID Connect
//! Core §3.1.3.7 checks on the claims.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::Error;
use crate::oidc::claims::IdTokenClaims;
use crate::redact::{redact, shown};
use crate::secret::Nonce;

/// Clock skew allowed on `exp`, `nbf` and `iat` by default: 5 s, as in
/// Filevine's sample apps.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// Longest ID token accepted (a Filevine ID token is about 1 KiB).
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// Why an ID token was rejected. Each check has its own variant; none of
/// them shows the token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a compact JWS with a JSON header and payload.
    #[error("the ID token is malformed: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// `alg: none`: the token is not signed at all.
    #[error("the ID token is unsigned (alg \"none\"); only RS256, RS384 and RS512 signatures are accepted")]
    Unsigned,
    /// A signature algorithm the SDK does not accept for this provider
    /// (HMAC algorithms always: a client must never verify with a shared
    /// secret or, worse, with the provider's public key as one).
    #[error("the ID token is signed with {alg:?}, which is not accepted (accepted: {accepted})")]
    AlgorithmNotAllowed {
        /// The header's `alg`.
        alg: String,
        /// What would have been accepted.
        accepted: String,
    },
    /// The header's `typ` says this is not an ID token (an access token
    /// `at+jwt`, a logout token, …): only an absent `typ` or `JWT` is
    /// accepted, so a token of another kind cannot pass for one.
    #[error("the token's typ is {typ:?}, not an ID token's (absent or \"JWT\")")]
    WrongType {
        /// The header's `typ`.
        typ: String,
    },
    /// `at_hash` does not match the access token issued with the ID token
    /// (OpenID Connect Core §3.1.3.8): the two were not issued together.
    #[error("the ID token's at_hash does not match the access token it came with")]
    AccessTokenHashMismatch,
    /// The user signed in longer ago than the `max_age` the sign-in asked
    /// for (Core §3.1.2.1): the provider did not make them authenticate
    /// again.
    #[error("the user authenticated at {auth_time}, more than the requested max_age of {max_age} s before now ({now})")]
    AuthenticationTooOld {
        /// The token's `auth_time`.
        auth_time: u64,
        /// The `max_age` requested, in seconds.
        max_age: u64,
        /// Now.
        now: u64,
    },
    /// The header has a `crit` extension the SDK does not understand
    /// (RFC 7515 §4.1.11 requires rejecting it).
    #[error("the ID token requires header extensions the SDK does not understand ({0:?})")]
    UnsupportedCriticalHeader(Vec<String>),
    /// No key in the provider's JWKS matches the token's `kid`, even after
    /// fetching the JWKS again.
    #[error("the ID token was signed with a key the provider does not publish (kid {kid:?})")]
    UnknownKey {
        /// The `kid` the token named.
        kid: Option<String>,
    },
    /// The JWKS key could not be used for verification.
    #[error("the provider's signing key is unusable: {reason}")]
    UnusableKey {
        /// Why.
        reason: String,
    },
    /// The provider's JWKS could not be fetched.
    #[error("could not read the provider's signing keys at {url}: {source}")]
    Keys {
        /// The `jwks_uri`.
        url: String,
        /// What went wrong.
        #[source]
        source: Error,
    },
    /// The signature does not verify: the token was altered or not signed
    /// by the provider.
    #[error("the ID token's signature is invalid")]
    BadSignature,
    /// `iss` is not the provider's issuer.
    #[error("the ID token was issued by {found:?}, expected {expected:?}")]
    WrongIssuer {
        /// The provider's issuer.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// The client id is not among the token's audiences.
    #[error("the ID token is meant for {found:?}, not for client {expected:?}")]
    WrongAudience {
        /// This client's id.
        expected: String,
        /// The token's `aud`.
        found: Vec<String>,
    },
    /// With several audiences, `azp` must be present and be this client.
    #[error("the ID token's authorized party {found:?} is not client {expected:?}")]
    WrongAuthorizedParty {
        /// This client's id.
        expected: String,
        /// The token's `azp`.
        found: Option<String>,
    },
    /// `exp` is in the past, beyond the leeway.
    #[error("the ID token expired (exp {exp}, now {now}, leeway {leeway_secs} s)")]
    Expired {
        /// The token's `exp` (seconds since the epoch).
        exp: u64,
        /// Now.
        now: u64,
        /// The leeway allowed.
        leeway_secs: u64,
    },
    /// `nbf` is in the future, beyond the leeway.
    #[error("the ID token is not valid yet (nbf {nbf}, now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
        /// Now.
        now: u64,
    },
    /// `iat` is in the future, beyond the leeway (a clock far off, or a
    /// forged token).
    #[error("the ID token claims to be issued in the future (iat {iat}, now {now}); check the system clock")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// Now.
        now: u64,
    },
    /// A claim OpenID Connect requires is missing or has the wrong type.
    #[error("the ID token's {0} claim is missing or not of the right type")]
    MissingClaim(&'static str),
    /// The `nonce` is not the one this sign-in sent: the token belongs to
    /// another sign-in (a replay).
    #[error("the ID token's nonce does not match this sign-in's; the token belongs to another sign-in")]
    NonceMismatch,
}

/// The JOSE header fields the checks need.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Vec<String>>,
    #[serde(default)]
    typ: Option<String>,
}

/// What an ID token must be for, set up from the provider's metadata and the
/// client's configuration. Used by
/// [`OidcClient::verify_id_token`](crate::oidc::OidcClient::verify_id_token) and
/// the sign-in callback.
#[derive(Debug, Clone)]
pub(crate) struct Expectations<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) algorithms: &'a [String],
    pub(crate) leeway: Duration,
    pub(crate) nonce: Option<&'a Nonce>,
    /// The access token issued with the ID token, to check `at_hash`.
    pub(crate) access_token: Option<&'a str>,
    /// The `max_age` the sign-in requested, in seconds.
    pub(crate) max_age: Option<u64>,
}

/// The header and unverified payload of a compact JWS: enough to choose the
/// key and report what a rejected token claimed. Nothing here is trusted.
pub(crate) struct Parsed<'a> {
    jwt: &'a str,
    header: JoseHeader,
    unverified: serde_json::Value,
}

/// Splits and decodes a compact JWS without verifying it.
pub(crate) fn parse(jwt: &str) -> Result<Parsed<'_>, IdTokenError> {
    let malformed = |reason: &str| IdTokenError::Malformed { reason: reason.into() };
    if jwt.len() > MAX_ID_TOKEN_BYTES {
        return Err(malformed("longer than 16 KiB"));
    }
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts (a JWE or not a JWT at all)"));
    };
    let decode = |part: &str, what: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed(&format!("the {what} is not base64url")))?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|_| malformed(&format!("the {what} is not a JSON object")))
    };
    let header_json = decode(header, "header")?;
    let unverified = decode(payload, "payload")?;
    if !unverified.is_object() {
        return Err(malformed("the payload is not a JSON object"));
    }
    let header: JoseHeader = serde_json::from_value(header_json).map_err(|_| malformed("the header has no alg"))?;
    Ok(Parsed { jwt, header, unverified })
}

impl Parsed<'_> {
    pub(crate) fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    pub(crate) fn alg(&self) -> &str {
        &self.header.alg
    }

    /// A claim of the payload, unverified.
    pub(crate) fn claim(&self, name: &str) -> Option<&serde_json::Value> {
        self.unverified.get(name)
    }

    /// Refuses what must never be verified: unsigned tokens, HMAC and any
    /// algorithm the provider and the SDK do not both accept, unknown
    /// critical header extensions, and a `typ` of another kind of token.
    /// Runs before any key is looked up.
    pub(crate) fn check_header(&self, accepted: &[String]) -> Result<(), IdTokenError> {
        self.check_header_typed(accepted, &[])
    }

    /// [`check_header`](Self::check_header) for a token that may also be
    /// explicitly typed as one of `types` (a logout token's
    /// `logout+jwt`), besides an absent `typ` or `JWT`.
    pub(crate) fn check_header_typed(&self, accepted: &[String], types: &[&str]) -> Result<(), IdTokenError> {
        let alg = self.header.alg.as_str();
        if alg.eq_ignore_ascii_case("none") {
            return Err(IdTokenError::Unsigned);
        }
        if !accepted.iter().any(|a| a == alg) {
            return Err(IdTokenError::AlgorithmNotAllowed { alg: alg.to_owned(), accepted: accepted.join(", ") });
        }
        if let Some(crit) = &self.header.crit {
            return Err(IdTokenError::UnsupportedCriticalHeader(crit.clone()));
        }
        match &self.header.typ {
            None => {}
            Some(typ) if typ.eq_ignore_ascii_case("JWT") => {}
            Some(typ) if types.iter().any(|t| typ.eq_ignore_ascii_case(t)) => {}
            Some(typ) => return Err(IdTokenError::WrongType { typ: redact(typ, 100) }),
        }
        Ok(())
    }

    /// Verifies the signature with `key`, the issuer and that the client
    /// is among the audiences, requires `required` (of `exp`, `iss`, `aud`,
    /// `sub`), and decodes the claims. Times are left to the caller, on its
    /// clock.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &jsonwebtoken::DecodingKey,
        expect: &Expectations<'_>,
        required: &[&str],
        now: u64,
    ) -> Result<T, IdTokenError> {
        let alg = self.algorithm(expect)?;
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.leeway = expect.leeway.as_secs();
        validation.set_issuer(&[expect.issuer]);
        validation.set_audience(&[expect.client_id]);
        validation.set_required_spec_claims(required);
        // `exp` and `nbf` are compared with `now` by the caller, not by the
        // JOSE crate (which reads the system clock): one clock for every
        // check, the one a test can move.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        crate::crypto::install_default_provider();
        jsonwebtoken::decode::<T>(self.jwt, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| self.classify(error, expect, now))
    }

    fn algorithm(&self, expect: &Expectations<'_>) -> Result<jsonwebtoken::Algorithm, IdTokenError> {
        self.header.alg.parse().map_err(|_| IdTokenError::AlgorithmNotAllowed {
            alg: self.header.alg.clone(),
            accepted: expect.algorithms.join(", "),
        })
    }

    /// Verifies the signature with `key` and checks every claim.
    pub(crate) fn verify(
        &self,
        key: &jsonwebtoken::DecodingKey,
        expect: &Expectations<'_>,
        now: u64,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let alg = self.algorithm(expect)?;
        let WireClaims { claims, nonce } = self.decode(key, expect, &["exp", "iss", "aud", "sub"], now)?;
        let leeway = expect.leeway.as_secs();
        if now > claims.exp.saturating_add(leeway) {
            return Err(IdTokenError::Expired { exp: claims.exp, now, leeway_secs: leeway });
        }
        if let Some(nbf) = claims.nbf
            && nbf > now.saturating_add(leeway)
        {
            return Err(IdTokenError::NotYetValid { nbf, now });
        }

        if claims.iat > now.saturating_add(expect.leeway.as_secs()) {
            return Err(IdTokenError::IssuedInFuture { iat: claims.iat, now });
        }
        if claims.audiences.len() > 1 || claims.azp.is_some() {
            // Core §3.1.3.7 (4, 5): several audiences need an azp, and an
            // azp must be this client.
            if claims.azp.as_deref() != Some(expect.client_id) {
                return Err(IdTokenError::WrongAuthorizedParty {
                    expected: expect.client_id.to_owned(),
                    found: claims.azp,
                });
            }
        }
        if let Some(expected) = expect.nonce {
            match nonce {
                Some(nonce) if expected.matches(&nonce) => {}
                _ => return Err(IdTokenError::NonceMismatch),
            }
        }
        if let (Some(access_token), Some(at_hash)) = (expect.access_token, claims.additional.get("at_hash")) {
            let at_hash = at_hash.as_str().ok_or(IdTokenError::MissingClaim("at_hash"))?;
            if !token_hash_matches(alg, access_token, at_hash) {
                return Err(IdTokenError::AccessTokenHashMismatch);
            }
        }
        if let Some(max_age) = expect.max_age {
            let auth_time = claims.auth_time.ok_or(IdTokenError::MissingClaim("auth_time"))?;
            if now > auth_time.saturating_add(max_age).saturating_add(expect.leeway.as_secs()) {
                return Err(IdTokenError::AuthenticationTooOld { auth_time, max_age, now });
            }
        }
        Ok(claims)
    }

    /// Turns the JOSE crate's error into this crate's, naming what the
    /// token claimed where that helps.
    fn classify(&self, error: jsonwebtoken::errors::Error, expect: &Expectations<'_>, now: u64) -> IdTokenError {
        use jsonwebtoken::errors::ErrorKind as K;
        let claim = |name: &str| self.unverified.get(name);
        let number = |name: &str| claim(name).and_then(serde_json::Value::as_f64).unwrap_or_default() as u64;
        match error.kind() {
            K::InvalidSignature => IdTokenError::BadSignature,
            K::ExpiredSignature => {
                IdTokenError::Expired { exp: number("exp"), now, leeway_secs: expect.leeway.as_secs() }
            }
            K::ImmatureSignature => IdTokenError::NotYetValid { nbf: number("nbf"), now },
            K::InvalidIssuer => IdTokenError::WrongIssuer {
                expected: expect.issuer.to_owned(),
                found: shown(&claim("iss").map(value_text).unwrap_or_default(), 200),
            },
            K::InvalidAudience => IdTokenError::WrongAudience {
                expected: expect.client_id.to_owned(),
                found: match claim("aud") {
                    Some(serde_json::Value::Array(list)) => list.iter().map(value_text).collect(),
                    Some(one) => vec![value_text(one)],
                    None => Vec::new(),
                }
                .into_iter()
                .map(|a| shown(&a, 200))
                .collect(),
            },
            K::MissingRequiredClaim(name) => {
                IdTokenError::MissingClaim(["exp", "iss", "aud"].into_iter().find(|c| c == name).unwrap_or("sub"))
            }
            K::InvalidAlgorithm | K::MissingAlgorithm => IdTokenError::AlgorithmNotAllowed {
                alg: self.header.alg.clone(),
                accepted: expect.algorithms.join(", "),
            },
            K::InvalidRsaKey(reason) => IdTokenError::UnusableKey { reason: reason.clone() },
            K::InvalidClaimFormat(name) => IdTokenError::Malformed { reason: format!("the {name} claim is malformed") },
            // The claims are deserialized before they are validated, so a
            // missing required claim surfaces here.
            K::Json(_) => match ["iss", "sub", "aud", "exp", "iat"].into_iter().find(|c| claim(c).is_none()) {
                Some(missing) => IdTokenError::MissingClaim(missing),
                None => IdTokenError::Malformed {
                    reason: "a claim has the wrong type (iss, sub, aud, exp and iat are required)".into(),
                },
            },
            _ => IdTokenError::Malformed { reason: "the JOSE library rejected it".into() },
        }
    }
}

/// Core §3.1.3.8: `at_hash` is the base64url of the left half of the hash
/// of the access token, with the hash of the signature algorithm.
fn token_hash_matches(alg: jsonwebtoken::Algorithm, token: &str, expected: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(at_hash(alg, token).as_bytes(), expected.as_bytes()).into()
}

/// The `at_hash` of `token` for a signature with `alg`.
pub(crate) fn at_hash(alg: jsonwebtoken::Algorithm, token: &str) -> String {
    use crate::crypto::backend::digest::{SHA256, SHA384, SHA512, digest};
    use jsonwebtoken::Algorithm as A;
    let algorithm = match alg {
        A::RS384 | A::PS384 | A::ES384 | A::HS384 => &SHA384,
        A::RS512 | A::PS512 | A::HS512 => &SHA512,
        _ => &SHA256,
    };
    let digest = digest(algorithm, token.as_bytes());
    let digest = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

fn value_text(value: &serde_json::Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// The claims as they arrive: the nonce is checked, then dropped.
#[derive(Deserialize)]
struct WireClaims {
    #[serde(flatten)]
    claims: IdTokenClaims,
    #[serde(default)]
    nonce: Option<String>,
}

/// Seconds since the epoch.
#[cfg(any(test, fuzzing))]
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &serde_json::Value, payload: &serde_json::Value) -> String {
        format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core's example (§A.3): RS256, this access token.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert!(token_hash_matches(jsonwebtoken::Algorithm::RS256, token, "77QmUPtjPfzWtF2AnpK9RQ"));
        assert!(!token_hash_matches(jsonwebtoken::Algorithm::RS256, token, "77QmUPtjPfzWtF2AnpK9RR"));
        assert!(!token_hash_matches(jsonwebtoken::Algorithm::RS512, token, "77QmUPtjPfzWtF2AnpK9RQ"));
        // RS384 and RS512: the left half of SHA-384 and SHA-512 (computed
        // with Python's hashlib, not with the code under test).
        assert!(token_hash_matches(jsonwebtoken::Algorithm::RS384, token, "jtAeDp945y1dDqU3nkIVGNZP1HjH_MFs"));
        assert!(token_hash_matches(
            jsonwebtoken::Algorithm::RS512,
            token,
            "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM"
        ));
    }

    const ISSUER: &str = "https://identity.filevine.io";

    /// A token signed RS512 with the test key: standard claims, `edit`ed.
    fn signed(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
        let now = unix_now();
        let mut claims = serde_json::json!({
            "iss": ISSUER, "sub": "alice", "aud": "partner-app", "exp": now + 300, "iat": now,
        });
        edit(claims.as_object_mut().unwrap());
        let (encoding, _) = crate::jose::test_key::signing_keys().unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS512), &claims, encoding).unwrap()
    }

    fn verify(token: &str, access_token: Option<&str>, max_age: Option<u64>) -> Result<IdTokenClaims, IdTokenError> {
        let (_, decoding) = crate::jose::test_key::signing_keys().unwrap();
        let algorithms = accepted();
        let expect = Expectations {
            issuer: ISSUER,
            client_id: "partner-app",
            algorithms: &algorithms,
            leeway: DEFAULT_LEEWAY,
            nonce: None,
            access_token,
            max_age,
        };
        let parsed = parse(token)?;
        parsed.check_header(&algorithms)?;
        parsed.verify(decoding, &expect, unix_now())
    }

    #[test]
    fn at_hash_is_checked_when_present() {
        let good = at_hash(jsonwebtoken::Algorithm::RS512, "the-access-token");
        let token = signed(|c| drop(c.insert("at_hash".into(), good.clone().into())));
        verify(&token, Some("the-access-token"), None).unwrap();
        let err = verify(&token, Some("another-access-token"), None).unwrap_err();
        assert!(matches!(err, IdTokenError::AccessTokenHashMismatch), "{err}");
        // The SHA-256 hash where the token is RS512: refused.
        let sha256 = at_hash(jsonwebtoken::Algorithm::RS256, "the-access-token");
        let token = signed(|c| drop(c.insert("at_hash".into(), sha256.into())));
        assert!(matches!(verify(&token, Some("the-access-token"), None), Err(IdTokenError::AccessTokenHashMismatch)));
        // Not a string: refused by name.
        let token = signed(|c| drop(c.insert("at_hash".into(), 7.into())));
        let err = verify(&token, Some("the-access-token"), None).unwrap_err();
        assert!(matches!(err, IdTokenError::MissingClaim("at_hash")), "{err}");
        // Absent: nothing to check (Core §3.1.3.8 makes it optional in the code flow).
        verify(&signed(|_| {}), Some("the-access-token"), None).unwrap();
    }

    #[test]
    fn max_age_needs_a_recent_enough_auth_time() {
        let now = unix_now();
        let at = |auth_time: u64| signed(move |c| drop(c.insert("auth_time".into(), auth_time.into())));
        verify(&at(now - 100), None, Some(300)).unwrap();
        // The leeway applies: 300 + 5 s.
        verify(&at(now - 304), None, Some(300)).unwrap();
        let err = verify(&at(now - 400), None, Some(300)).unwrap_err();
        assert!(
            matches!(err, IdTokenError::AuthenticationTooOld { max_age: 300, auth_time, .. } if auth_time == now - 400),
            "{err}"
        );
        assert!(err.to_string().contains("max_age of 300 s"), "{err}");
        let err = verify(&signed(|_| {}), None, Some(300)).unwrap_err();
        assert!(matches!(err, IdTokenError::MissingClaim("auth_time")), "{err}");
        // Without max_age, an old or absent auth_time is fine.
        verify(&at(now - 100_000), None, None).unwrap();
        verify(&signed(|_| {}), None, None).unwrap();
    }

    fn accepted() -> Vec<String> {
        vec!["RS512".into()]
    }

    #[test]
    fn malformed_tokens_name_the_problem() {
        for (token, reason) in [
            ("abc", "three dot-separated parts"),
            ("a.b.c.d.e", "three dot-separated parts"),
            ("!!.e30.x", "header is not base64url"),
            ("e30.!!.x", "payload is not base64url"),
            ("bm90IGpzb24.e30.x", "header is not a JSON object"),
            ("e30.e30.x", "header has no alg"),
        ] {
            let err = parse(token).err().unwrap();
            assert!(matches!(err, IdTokenError::Malformed { .. }), "{token}");
            assert!(err.to_string().contains(reason), "{token}: {err}");
        }
        let long = "a".repeat(MAX_ID_TOKEN_BYTES + 1);
        assert!(parse(&long).err().unwrap().to_string().contains("16 KiB"));
    }

    #[test]
    fn header_checks_refuse_none_hmac_and_crit() {
        let payload = serde_json::json!({"sub": "x"});
        let none = jwt(&serde_json::json!({"alg": "none"}), &payload);
        assert!(matches!(parse(&none).unwrap().check_header(&accepted()), Err(IdTokenError::Unsigned)));
        let none_upper = jwt(&serde_json::json!({"alg": "NONE"}), &payload);
        assert!(matches!(parse(&none_upper).unwrap().check_header(&accepted()), Err(IdTokenError::Unsigned)));
        let hs = jwt(&serde_json::json!({"alg": "HS256"}), &payload);
        let err = parse(&hs).unwrap().check_header(&accepted()).unwrap_err();
        assert!(matches!(err, IdTokenError::AlgorithmNotAllowed { ref alg, .. } if alg == "HS256"), "{err}");
        assert!(err.to_string().contains("accepted: RS512"), "{err}");
        let rs256 = jwt(&serde_json::json!({"alg": "RS256"}), &payload);
        assert!(parse(&rs256).unwrap().check_header(&accepted()).is_err(), "the provider only offers RS512");
        for typ in ["at+jwt", "logout+jwt", "JOSE"] {
            let typed = jwt(&serde_json::json!({"alg": "RS512", "typ": typ}), &payload);
            let err = parse(&typed).unwrap().check_header(&accepted()).unwrap_err();
            assert!(matches!(err, IdTokenError::WrongType { typ: ref t } if t == typ), "{typ}: {err}");
        }
        for typ in ["JWT", "jwt"] {
            parse(&jwt(&serde_json::json!({"alg": "RS512", "typ": typ}), &payload))
                .unwrap()
                .check_header(&accepted())
                .unwrap();
        }
        let crit = jwt(&serde_json::json!({"alg": "RS512", "crit": ["exp"]}), &payload);
        assert!(matches!(
            parse(&crit).unwrap().check_header(&accepted()),
            Err(IdTokenError::UnsupportedCriticalHeader(_))
        ));
        let fine = jwt(&serde_json::json!({"alg": "RS512", "kid": "k"}), &payload);
        let parsed = parse(&fine).unwrap();
        parsed.check_header(&accepted()).unwrap();
        assert_eq!(parsed.kid(), Some("k"));
    }
}
