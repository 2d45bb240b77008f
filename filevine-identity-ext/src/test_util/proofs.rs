//! What the test server checks of `private_key_jwt` client assertions (RFC
//! 7523 §3: signature with the registered key, `iss`/`sub`, `aud`, `exp`,
//! single use of `jti`) and of DPoP proofs (RFC 9449 §4.3: `typ`, `alg`,
//! the `jwk`'s signature, `htm`, `htu`, `iat` window, `jti` replay, `ath`,
//! nonce), and which tokens are bound to which key.

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::response::oauth_error;
use crate::crypto::backend::signature::{self, UnparsedPublicKey};

/// How far a proof's `iat` may be from the server's clock.
const IAT_WINDOW_S: u64 = 60;

/// The longest an assertion may be valid for.
const MAX_ASSERTION_LIFE_S: u64 = 300;

/// The proof and assertion state of a test server.
#[derive(Default)]
pub(super) struct ProofState {
    /// Registered public keys (`private_key_jwt`) by client id.
    pub(super) client_keys: HashMap<String, (bool, Vec<u8>)>,
    pub(super) assertion_jtis: HashSet<String>,
    pub(super) proof_jtis: HashSet<String>,
    /// The nonce the token endpoint requires, and the gateway's.
    pub(super) token_nonce: Option<String>,
    pub(super) gateway_nonce: Option<String>,
    /// Token requests without a proof are refused.
    pub(super) required: bool,
    /// Access and refresh tokens bound to a key, by its thumbprint.
    pub(super) bound: HashMap<String, String>,
    /// Why proofs and assertions were refused, in order.
    pub(super) rejections: Vec<String>,
}

/// A compact JWS, decoded.
struct Jws {
    header: serde_json::Value,
    claims: serde_json::Value,
    input: String,
    signature: Vec<u8>,
}

fn parse(jws: &str) -> Option<Jws> {
    let mut parts = jws.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok();
    Some(Jws {
        header: json(header)?,
        claims: json(claims)?,
        input: format!("{header}.{claims}"),
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

fn verify(is_ec: bool, alg: &str, public: &[u8], jws: &Jws) -> bool {
    let algorithm: &dyn signature::VerificationAlgorithm = match (is_ec, alg) {
        (true, "ES256") => &signature::ECDSA_P256_SHA256_FIXED,
        (false, "RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        (false, "PS256") => &signature::RSA_PSS_2048_8192_SHA256,
        _ => return false,
    };
    UnparsedPublicKey::new(algorithm, public).verify(jws.input.as_bytes(), &jws.signature).is_ok()
}

fn now() -> u64 {
    crate::time::Clock::System.unix_seconds()
}

impl ProofState {
    fn refuse(&mut self, why: &str) -> String {
        self.rejections.push(why.to_owned());
        why.to_owned()
    }

    /// The client a `private_key_jwt` assertion authenticates, or why not.
    /// `None` when the form carries no assertion.
    pub(super) fn client_assertion(
        &mut self,
        field: &dyn Fn(&str) -> Option<String>,
        issuer: &str,
    ) -> Option<Result<String, String>> {
        let kind = field("client_assertion_type")?;
        Some(self.check_assertion(&kind, field("client_assertion"), field("client_id"), issuer))
    }

    fn check_assertion(
        &mut self,
        kind: &str,
        assertion: Option<String>,
        client_id: Option<String>,
        issuer: &str,
    ) -> Result<String, String> {
        if kind != filevine_identity::CLIENT_ASSERTION_TYPE {
            return Err(self.refuse("client_assertion_type is not jwt-bearer"));
        }
        let Some(jws) = assertion.as_deref().and_then(parse) else {
            return Err(self.refuse("client_assertion is not a JWS"));
        };
        let claim = |name: &str| jws.claims.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
        let Some(iss) = claim("iss") else { return Err(self.refuse("assertion: no iss")) };
        if claim("sub").as_deref() != Some(iss.as_str()) || client_id.as_ref().is_some_and(|id| *id != iss) {
            return Err(self.refuse("assertion: iss, sub and client_id differ"));
        }
        let Some((is_ec, public)) = self.client_keys.get(&iss).cloned() else {
            return Err(self.refuse("assertion: no key registered for the client"));
        };
        let alg = jws.header.get("alg").and_then(serde_json::Value::as_str).unwrap_or_default();
        if !verify(is_ec, alg, &public, &jws) {
            return Err(self.refuse("assertion: bad signature"));
        }
        let token_endpoint = format!("{issuer}/connect/token");
        if claim("aud").is_none_or(|aud| aud != issuer && aud != token_endpoint) {
            return Err(self.refuse("assertion: aud is not the issuer"));
        }
        let exp = jws.claims.get("exp").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if exp <= now() || exp > now() + MAX_ASSERTION_LIFE_S {
            return Err(self.refuse("assertion: expired or too long-lived"));
        }
        let Some(jti) = claim("jti") else { return Err(self.refuse("assertion: no jti")) };
        if !self.assertion_jtis.insert(jti) {
            return Err(self.refuse("assertion: jti replayed"));
        }
        Ok(iss)
    }

    /// Checks a token request's proof. `Ok(Some(jkt))`: bind what is
    /// issued to that key; `Ok(None)`: no proof (a bearer token).
    #[allow(clippy::result_large_err)]
    pub(super) fn token_proof(&mut self, headers: &HeaderMap, url: &str) -> Result<Option<String>, Response> {
        let Some(proof) = headers.get("dpop").and_then(|v| v.to_str().ok()) else {
            if self.required {
                let why = self.refuse("token request without a DPoP proof");
                return Err(oauth_error(400, "invalid_dpop_proof", &why));
            }
            return Ok(None);
        };
        let nonce = self.token_nonce.clone();
        match self.check_proof(proof, "POST", url, None, nonce.as_deref()) {
            Ok(jkt) => Ok(Some(jkt)),
            Err(Refused::Nonce(nonce)) => {
                let mut response = oauth_error(400, "use_dpop_nonce", "a DPoP nonce is required");
                insert_nonce(&mut response, &nonce);
                Err(response)
            }
            Err(Refused::Invalid(why)) => Err(oauth_error(400, "invalid_dpop_proof", &why)),
        }
    }

    /// Checks a resource request with `Authorization: DPoP <token>` or
    /// `Bearer <token>`: a bound token only with a valid proof from its key.
    #[allow(clippy::result_large_err)]
    pub(super) fn resource(&mut self, headers: &HeaderMap, method: &str, url: &str) -> Result<(), Response> {
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let challenge = |error: &str| {
            let value = format!("DPoP error=\"{error}\", algs=\"ES256\"");
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, value)]).into_response()
        };
        if let Some(token) = authorization.strip_prefix("Bearer ") {
            if self.bound.contains_key(token) {
                self.refuse("a DPoP-bound token sent as Bearer");
                return Err(challenge("invalid_token"));
            }
            return Ok(());
        }
        let Some(token) = authorization.strip_prefix("DPoP ") else { return Ok(()) };
        let Some(bound) = self.bound.get(token).cloned() else {
            self.refuse("a DPoP token the server did not bind");
            return Err(challenge("invalid_token"));
        };
        let Some(proof) = headers.get("dpop").and_then(|v| v.to_str().ok()) else {
            self.refuse("a DPoP token without a proof");
            return Err(challenge("invalid_dpop_proof"));
        };
        let nonce = self.gateway_nonce.clone();
        match self.check_proof(proof, method, url, Some(token), nonce.as_deref()) {
            Ok(jkt) if jkt == bound => Ok(()),
            Ok(_) => {
                self.refuse("the proof is from another key than the token's");
                Err(challenge("invalid_dpop_proof"))
            }
            Err(Refused::Nonce(nonce)) => {
                let mut response = challenge("use_dpop_nonce");
                insert_nonce(&mut response, &nonce);
                Err(response)
            }
            Err(Refused::Invalid(_)) => Err(challenge("invalid_dpop_proof")),
        }
    }

    /// The proof's key thumbprint, or why it is refused.
    fn check_proof(
        &mut self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, Refused> {
        let invalid = |state: &mut Self, why: &str| Refused::Invalid(state.refuse(why));
        let Some(jws) = parse(proof) else { return Err(invalid(self, "the proof is not a JWS")) };
        let text = |value: &serde_json::Value, name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if text(&jws.header, "typ").as_deref() != Some("dpop+jwt") {
            return Err(invalid(self, "proof: typ is not dpop+jwt"));
        }
        let jwk = jws.header.get("jwk").cloned().unwrap_or_default();
        let (Some(x), Some(y)) = (text(&jwk, "x"), text(&jwk, "y")) else {
            return Err(invalid(self, "proof: no EC jwk"));
        };
        if jwk.get("d").is_some() || text(&jwk, "crv").as_deref() != Some("P-256") {
            return Err(invalid(self, "proof: the jwk is private or not P-256"));
        }
        let mut point = vec![0x04];
        point.extend(URL_SAFE_NO_PAD.decode(&x).unwrap_or_default());
        point.extend(URL_SAFE_NO_PAD.decode(&y).unwrap_or_default());
        let alg = text(&jws.header, "alg").unwrap_or_default();
        if !verify(true, &alg, &point, &jws) {
            return Err(invalid(self, "proof: bad signature"));
        }
        if text(&jws.claims, "htm").as_deref() != Some(method) {
            return Err(invalid(self, "proof: htm is not the request's method"));
        }
        if text(&jws.claims, "htu").as_deref() != Some(url) {
            return Err(invalid(self, "proof: htu is not the request's URL"));
        }
        let iat = jws.claims.get("iat").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if iat.abs_diff(now()) > IAT_WINDOW_S {
            return Err(invalid(self, "proof: iat outside the window"));
        }
        if let Some(token) = access_token {
            let ath = URL_SAFE_NO_PAD.encode(crate::crypto::sha256(token.as_bytes()));
            if text(&jws.claims, "ath").as_deref() != Some(ath.as_str()) {
                return Err(invalid(self, "proof: ath is not the token's hash"));
            }
        }
        if let Some(nonce) = nonce
            && text(&jws.claims, "nonce").as_deref() != Some(nonce)
        {
            self.refuse("proof: nonce missing or stale");
            return Err(Refused::Nonce(nonce.to_owned()));
        }
        let Some(jti) = text(&jws.claims, "jti") else { return Err(invalid(self, "proof: no jti")) };
        if !self.proof_jtis.insert(jti) {
            return Err(invalid(self, "proof: jti replayed"));
        }
        Ok(crate::jose::thumbprint(&x, &y))
    }
}

enum Refused {
    Nonce(String),
    Invalid(String),
}

fn insert_nonce(response: &mut Response, nonce: &str) {
    if let Ok(value) = HeaderValue::from_str(nonce) {
        response.headers_mut().insert("dpop-nonce", value);
    }
}
