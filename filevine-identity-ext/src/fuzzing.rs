//! Entry points for the fuzz targets in `fuzz/` (built with `--cfg
//! fuzzing`). Not part of the public API: each function runs one parser of
//! network or user input the way the SDK does, and asserts what must hold.

use std::time::Instant;

/// A token endpoint body: parsed as the spec's response, then turned into
/// a token set. Must never panic; returns whether it was accepted.
pub fn token_response(body: &[u8]) -> bool {
    let Ok(response) = serde_json::from_slice::<filevine_identity::types::TokenResponse>(body) else {
        return false;
    };
    match crate::grant::TokenSet::from_response(response, Instant::now()) {
        Ok(set) => {
            let _ = set.access_token.scopes().len();
            let _ = format!("{set:?}");
            true
        }
        Err(error) => {
            let _ = error.to_string();
            false
        }
    }
}

/// An error body: parsed as the spec's error schema, mapped to details,
/// and redacted as an excerpt. The excerpt is bounded.
pub fn error_body(body: &[u8]) {
    if let Ok(parsed) = serde_json::from_slice::<filevine_identity::types::TokenError>(body) {
        let details = crate::error::ErrorDetails::from_body(&parsed);
        let _ = crate::error::Error::InvalidCredentials { status: 400, details }.to_string();
    }
    let excerpt = crate::redact::body_excerpt(body);
    assert!(excerpt.chars().count() <= 201, "excerpt too long");
    let text = String::from_utf8_lossy(body);
    let _ = crate::redact::redact(&text, 300);
}

/// A discovery document: parsed, its issuer as an authority, and the
/// metadata checks; and the same bytes as a JWKS document, a userinfo and
/// an introspection answer. What passes
/// the checks keeps the endpoints that receive secrets on the issuer's
/// origin, and uses `http://` only under a loopback `http://` issuer.
pub fn discovery(body: &[u8]) {
    if let Ok(config) = serde_json::from_slice::<filevine_identity::types::OpenIdConfiguration>(body) {
        let _ = crate::config::region::Region::custom(&config.issuer).map(|r| r.identity_url().len());
        let issuer = config.issuer.clone();
        match crate::oidc::ProviderMetadata::from_document(config, &issuer) {
            Ok(metadata) => {
                assert!(!metadata.id_token_algorithms().is_empty(), "no algorithm accepted");
                assert_eq!(metadata.issuer(), issuer, "another issuer accepted");
                let Ok(issuer_url) = url::Url::parse(&issuer) else { panic!("an issuer that is not a URL accepted") };
                let secret_endpoints = [
                    Some(metadata.token_endpoint()),
                    metadata.userinfo_endpoint(),
                    metadata.revocation_endpoint(),
                    metadata.introspection_endpoint(),
                    metadata.device_authorization_endpoint(),
                ];
                for endpoint in secret_endpoints.into_iter().flatten() {
                    assert_eq!(endpoint.origin(), issuer_url.origin(), "a secret endpoint off the issuer's origin");
                }
                let all = [Some(metadata.authorization_endpoint()), Some(metadata.jwks_uri())]
                    .into_iter()
                    .chain(secret_endpoints)
                    .chain([metadata.end_session_endpoint()]);
                for endpoint in all.flatten() {
                    let http_ok = issuer_url.scheme() == "http" && crate::config::region::is_loopback(&issuer_url);
                    assert!(endpoint.scheme() == "https" || http_ok, "an http:// endpoint under an https issuer");
                }
            }
            Err(error) => drop(error.to_string()),
        }
    }
    if let Ok(keys) = crate::oidc::jwks::KeySet::parse(body) {
        let _ = keys.find(Some("k"), "RS512");
        let _ = keys.find(None, "RS256");
    }
    sign_in_answers(body);
}

/// The same bytes as a userinfo, an introspection and a device
/// authorization answer, as the generated client parses them and the SDK
/// converts them. An inactive token's answer carries nothing else; an
/// accepted device authorization has bounded times, an https:// (or
/// loopback http://) verification URI, and never shows its device code.
fn sign_in_answers(body: &[u8]) {
    if let Ok(answer) = serde_json::from_slice::<filevine_identity::types::DeviceAuthorizationResponse>(body) {
        let device_code = answer.device_code.expose_secret().to_owned();
        if let Ok(device) = crate::oidc::device::check_for_fuzzing(answer) {
            assert!(device.expires_in > std::time::Duration::ZERO && device.expires_in.as_secs() <= 30 * 60);
            assert!(device.interval.as_secs() <= 60);
            let uri = &device.verification_uri;
            let loopback = uri.scheme() == "http" && crate::config::region::is_loopback(uri);
            assert!(uri.scheme() == "https" || loopback, "an http:// verification URI off loopback");
            assert!(!device.user_code.is_empty() && !device.user_code.chars().any(char::is_control));
            let shown = format!("{device:?}");
            if device_code.len() >= 8
                && !device.user_code.contains(&device_code)
                && !uri.as_str().contains(&device_code)
            {
                assert!(!shown.contains(&device_code), "the device code in Debug");
            }
        }
    }
    if let Ok(info) = serde_json::from_slice::<filevine_identity::types::UserInfo>(body) {
        let sub = info.sub.clone();
        assert_eq!(crate::oidc::UserInfo::from(info).sub, sub);
    }
    if let Ok(answer) = serde_json::from_slice::<filevine_identity::types::IntrospectionResponse>(body) {
        let active = answer.active;
        let converted = crate::oidc::TokenIntrospection::from(answer);
        if !active {
            assert_eq!(converted, crate::oidc::TokenIntrospection::inactive(), "an inactive answer with content");
        }
        let _ = converted.is_active_at(std::time::SystemTime::now());
    }
}

/// A sign-in callback (URL or query). `Debug` of a parsed callback does
/// not depend on the `code` or the `state`: the same response with other
/// values shows exactly the same text. (Searching the text for the code
/// would flag a code such as `or_descr`, which is part of the field name
/// `error_description`.)
pub fn callback(text: &str) {
    match crate::oidc::AuthorizationResponse::parse(text) {
        Ok(response) => {
            let other = crate::oidc::AuthorizationResponse {
                code: response.code.as_ref().map(|_| "another code".to_owned().into()),
                state: response.state.as_ref().map(|_| "another state".to_owned()),
                iss: response.iss.clone(),
                error: response.error.clone(),
                error_description: response.error_description.clone(),
            };
            assert_eq!(format!("{response:?}"), format!("{other:?}"), "the code or state shows in Debug");
        }
        Err(error) => drop(error.to_string()),
    }
}

/// An ID token. Two ways in, so that every check is reachable:
///
/// - input that is a JSON object is taken as the *claims*, signed RS256
///   with a key this harness holds, and verified against that key: the
///   signature passes, so the iss/aud/exp/nbf/iat/azp/nonce checks run on
///   whatever the fuzzer wrote;
/// - anything else is taken as a compact JWT: parsed, header-checked, and
///   verified (the signature check stops forged tokens).
///
/// Must never panic; a token with a wrong nonce, audience, issuer,
/// `at_hash` (for the access token `fuzz-access-token`) or an
/// authentication older than `max_age` (1 hour) must never verify.
pub fn id_token(text: &str) {
    let algorithms = ["RS256".to_owned(), "RS384".to_owned(), "RS512".to_owned()];
    let Some((encoding, decoding)) = crate::jose::test_key::signing_keys() else { return };
    let nonce = crate::oidc::Nonce::from_secret(filevine_identity::SecretString::from("fuzz-nonce"));
    let expect = crate::oidc::id_token::Expectations {
        issuer: "https://identity.filevine.io",
        client_id: "partner-app",
        algorithms: &algorithms,
        leeway: std::time::Duration::from_secs(5),
        nonce: Some(&nonce),
        access_token: Some(FUZZ_ACCESS_TOKEN),
        max_age: Some(FUZZ_MAX_AGE),
    };
    let signed;
    let jwt = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(claims @ serde_json::Value::Object(_)) => {
            let Ok(token) =
                jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, encoding)
            else {
                return;
            };
            signed = token;
            signed.as_str()
        }
        _ => text,
    };
    let Ok(parsed) = crate::oidc::id_token::parse(jwt) else { return };
    if parsed.check_header(&algorithms).is_err() {
        return;
    }
    let now = crate::oidc::id_token::unix_now();
    match parsed.verify(decoding, &expect, now) {
        Ok(claims) => {
            // What verified must be what was expected.
            assert_eq!(claims.iss, "https://identity.filevine.io", "wrong issuer accepted");
            assert!(claims.audiences.iter().any(|a| a == "partner-app"), "wrong audience accepted");
            assert!(
                claims.auth_time.is_some_and(|t| now <= t.saturating_add(FUZZ_MAX_AGE + 5)),
                "an authentication older than max_age (or without auth_time) accepted"
            );
            if let Some(at_hash) = claims.additional.get("at_hash") {
                let expected = crate::oidc::id_token::at_hash(jsonwebtoken::Algorithm::RS256, FUZZ_ACCESS_TOKEN);
                assert_eq!(at_hash.as_str(), Some(expected.as_str()), "wrong at_hash accepted");
            }
        }
        Err(error) => drop(error.to_string()),
    }
}

/// A back-channel logout token, the two ways in of [`id_token`]: JSON
/// claims signed with the harness's key (so every claim check runs), or a
/// compact JWT. Must never panic; what passes is for this issuer and
/// client, carries the logout event and a `sub` or `sid`, no `nonce`, and
/// was issued within the age allowed (5 minutes).
pub fn logout_token(text: &str) {
    let algorithms = ["RS256".to_owned(), "RS384".to_owned(), "RS512".to_owned()];
    let Some((encoding, decoding)) = crate::jose::test_key::signing_keys() else { return };
    let expect = crate::oidc::id_token::Expectations {
        issuer: "https://identity.filevine.io",
        client_id: "partner-app",
        algorithms: &algorithms,
        leeway: std::time::Duration::from_secs(5),
        nonce: None,
        access_token: None,
        max_age: None,
    };
    let signed;
    let jwt = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(claims @ serde_json::Value::Object(_)) => {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            header.typ = Some("logout+jwt".to_owned());
            let Ok(token) = jsonwebtoken::encode(&header, &claims, encoding) else { return };
            signed = token;
            signed.as_str()
        }
        _ => text,
    };
    let Ok(parsed) = crate::oidc::id_token::parse(jwt) else { return };
    if crate::oidc::logout::check_header(&parsed, &algorithms).is_err() {
        return;
    }
    let rules = crate::oidc::logout::Rules { max_age: std::time::Duration::from_secs(300), session_required: false };
    let now = crate::oidc::id_token::unix_now();
    match crate::oidc::logout::check(&parsed, decoding, &expect, &rules, now) {
        Ok(checked) => {
            assert_eq!(checked.notice.issuer, "https://identity.filevine.io", "wrong issuer accepted");
            assert!(checked.notice.subject.is_some() || checked.notice.session_id.is_some(), "neither sub nor sid");
            assert!(parsed.claim("nonce").is_none(), "a nonce accepted");
            let event =
                parsed.claim("events").and_then(|e| e.get("http://schemas.openid.net/event/backchannel-logout"));
            assert!(event.is_some_and(serde_json::Value::is_object), "no logout event accepted");
            let iat = parsed.claim("iat").and_then(serde_json::Value::as_u64).unwrap_or_default();
            assert!(iat <= now + 5 && now <= iat + 305, "an iat out of bounds accepted");
            assert!(!checked.remember.is_zero() && checked.remember.as_secs() <= 305);
        }
        Err(error) => drop(error.to_string()),
    }
}

/// The access token the fuzzed ID tokens came with.
const FUZZ_ACCESS_TOKEN: &str = "fuzz-access-token";
/// The `max_age` the fuzzed sign-in asked for.
const FUZZ_MAX_AGE: u64 = 3600;

/// User input: a region, a scope list, a token store setting and a
/// credentials file's content.
pub fn user_input(text: &str) {
    // A credentials file: at most two secrets, each trimmed and non-empty.
    if let Ok(secrets) = crate::grant::source::parse_secrets(text) {
        assert!(matches!(secrets.len(), 1 | 2), "{} secrets", secrets.len());
        assert!(secrets.iter().all(|s| !s.expose_secret().is_empty() && s.expose_secret().trim() == s.expose_secret()));
    }
    if let Ok(pat) = crate::grant::source::parse_pat(text) {
        assert_eq!(pat.expose_secret(), text.trim());
    }
    let _ = text.parse::<crate::config::region::Region>().map(|r| r.to_string());
    if let Ok(scopes) = text.parse::<crate::config::scope::Scopes>() {
        let wire = scopes.to_string();
        assert_eq!(wire.parse::<crate::config::scope::Scopes>().ok(), Some(scopes), "scopes round-trip");
    }
    store_setting(text);
    client_key(text);
    // A pending sign-in, as an application's session store gives it back
    // (with a pushed request's DPoP key): never a panic, and a key that
    // loads shows only its thumbprint.
    if let Ok(pending) = serde_json::from_str::<crate::oidc::PendingSignIn>(text) {
        let _ = format!("{pending:?}");
    }
}

/// Key material planted in fuzzed client keys.
const FUZZ_KEY: &str = "fuzz-key-5b2e";

/// A client key file (`FILEVINE_CLIENT_KEY`), as PEM and as a JWK, and the
/// same text wrapped in PEM armour: never a panic. No error shows key
/// material: the input is planted behind a marker as a JWK's `d` and as a
/// PEM body, and the marker must not come back. (The input itself may
/// well appear in an error by chance: "the client" is part of every
/// message.)
fn client_key(text: &str) {
    use base64::Engine as _;
    let armour = |body: &str| format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
    let _ = crate::jose::ClientKey::from_pem(text);
    let _ = crate::jose::ClientKey::from_jwk(text);
    let _ = crate::jose::ClientKey::from_pem(&armour(&base64::engine::general_purpose::STANDARD.encode(text)));
    let planted = format!("{FUZZ_KEY}{text}");
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": planted}).to_string();
    for result in [
        crate::jose::ClientKey::from_jwk(&jwk),
        crate::jose::ClientKey::from_pem(&armour(&planted)),
        crate::jose::ClientKey::from_pem(&planted),
    ] {
        if let Err(error) = result {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(FUZZ_KEY), "the error shows key material: {shown}");
        }
    }
}

/// The password planted in fuzzed Redis URLs.
const FUZZ_PASSWORD: &str = "fuzz-pw-9f3c";

/// `FILEVINE_TOKEN_STORE` as given, and as the hosts and path of each Redis
/// and PostgreSQL URL form with a password planted in front: parsing never panics, and
/// the password is in neither the error nor the store's `Debug`.
fn store_setting(text: &str) {
    let _ = crate::store::open(text).map(|store| format!("{store:?}"));
    // The URL parser drops ASCII tabs and newlines (WHATWG): an input that
    // spells the password with them in it would put it in the path itself.
    let parsed_as: String = text.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    if parsed_as.contains(FUZZ_PASSWORD) {
        return;
    }
    for scheme in [
        "redis",
        "rediss",
        "redis+sentinel",
        "rediss+sentinel",
        "redis+cluster",
        "rediss+cluster",
        "postgres",
        "postgresql",
    ] {
        let url = format!("{scheme}://user:{FUZZ_PASSWORD}@{text}");
        let shown = match crate::store::open(&url) {
            Ok(store) => format!("{store:?}"),
            Err(error) => format!("{error} {error:?}"),
        };
        assert!(!shown.contains(FUZZ_PASSWORD), "{url}: {shown}");
    }
}

/// A value read from a token store: decoded with no key and with two keys
/// (the current one and a previous one, so key ids that match, match the
/// second or match none are all reached), also as an application's sealed
/// record ([`crate::store::open_record`]) and as a deletion mark. The
/// fuzzer's bytes are also sealed under the key first, so the JSON parser
/// behind the decryption is reached too. Never panics; a decoded set
/// re-encodes and decodes to the same tokens.
pub fn stored_record(value: &[u8]) {
    use crate::store::record::{decode, encode, seal_bytes};
    use crate::store::{StoreEncryptionKey, StoreEncryptionKeys, StoreKey};
    use std::sync::OnceLock;

    static KEYS: OnceLock<StoreEncryptionKeys> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        StoreEncryptionKeys::new(StoreEncryptionKey::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap())
            .with_previous(StoreEncryptionKey::new("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=").unwrap())
    });
    let key = StoreKey::session("fuzz");
    for seal in [None, Some(keys)] {
        if let Ok(tokens) = decode(value, &key, seal) {
            let again = decode(&encode(&tokens, &key, seal).unwrap(), &key, seal).expect("a re-encoded set decodes");
            assert_eq!(
                tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
                again.refresh_token.as_ref().map(|t| t.expose_secret().to_owned())
            );
            // The writer and its sequence number survive a round trip.
            assert_eq!(tokens.origin, again.origin);
            let _ = format!("{tokens:?}");
        }
    }
    if let Some(plain) = crate::store::open_record(value, &key, keys) {
        // Only what was sealed under this key opens; it seals again.
        let again = crate::store::open_record(&seal_bytes(&plain, &key, keys).unwrap(), &key, keys);
        assert_eq!(again.as_ref().map(|v| &v[..]), Some(&plain[..]));
    }
    // The bytes as the JSON inside a plain and a sealed value.
    let mut plain = b"FVTS\x02\x00".to_vec();
    plain.extend_from_slice(value);
    let _ = decode(&plain, &key, None);
    let sealed = crate::store::record::seal_as_token_set(value, &key, keys).unwrap();
    let _ = decode(&sealed, &key, Some(keys));
}
