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
        let _ = crate::Error::InvalidCredentials { status: 400, details }.to_string();
    }
    let excerpt = crate::redact::body_excerpt(body);
    assert!(excerpt.chars().count() <= 201, "excerpt too long");
    let text = String::from_utf8_lossy(body);
    let _ = crate::redact::redact(&text, 300);
}

/// A discovery document: parsed, its issuer as an authority, and the
/// metadata checks; and the same bytes as a JWKS document.
pub fn discovery(body: &[u8]) {
    if let Ok(config) = serde_json::from_slice::<filevine_identity::types::OpenIdConfiguration>(body) {
        let _ = crate::Region::custom(&config.issuer).map(|r| r.identity_url().len());
        let issuer = config.issuer.clone();
        match crate::oidc::ProviderMetadata::from_document(config, &issuer) {
            Ok(metadata) => assert!(!metadata.id_token_algorithms().is_empty(), "no algorithm accepted"),
            Err(error) => drop(error.to_string()),
        }
    }
    if let Ok(keys) = crate::oidc::jwks::KeySet::parse(body) {
        let _ = keys.find(Some("k"), "RS512");
        let _ = keys.find(None, "RS256");
    }
}

/// A sign-in callback (URL or query). A parsed `code` never shows in
/// `Debug`.
pub fn callback(text: &str) {
    match crate::oidc::AuthorizationResponse::parse(text) {
        Ok(response) => {
            let shown = format!("{response:?}");
            if let Some(code) = response.code.as_ref().filter(|c| c.expose_secret().len() >= 8) {
                // The same text may also be in a field that is shown
                // (`iss=…code…`); only the code field itself must hide it.
                let shown_fields = [&response.iss, &response.error, &response.error_description];
                let elsewhere =
                    shown_fields.iter().filter_map(|f| f.as_deref()).any(|f| f.contains(code.expose_secret()));
                assert!(elsewhere || !shown.contains(code.expose_secret()), "the code leaked into Debug");
            }
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
/// Must never panic; a token with a wrong nonce, audience or issuer must
/// never verify.
pub fn id_token(text: &str) {
    let algorithms = ["RS256".to_owned(), "RS384".to_owned(), "RS512".to_owned()];
    let Some((encoding, decoding)) = fuzz_keys() else { return };
    let nonce = crate::oidc::Nonce::from_secret(filevine_identity::SecretString::from("fuzz-nonce"));
    let expect = crate::oidc::id_token::Expectations {
        issuer: "https://identity.filevine.io",
        client_id: "partner-app",
        algorithms: &algorithms,
        leeway: std::time::Duration::from_secs(5),
        nonce: Some(&nonce),
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
    match parsed.verify(decoding, &expect, crate::oidc::id_token::unix_now()) {
        Ok(claims) => {
            // What verified must be what was expected.
            assert_eq!(claims.iss, "https://identity.filevine.io", "wrong issuer accepted");
            assert!(claims.audiences.iter().any(|a| a == "partner-app"), "wrong audience accepted");
        }
        Err(error) => drop(error.to_string()),
    }
}

/// The harness's signing and verification keys, decoded once.
fn fuzz_keys() -> Option<&'static (jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey)> {
    use base64::Engine as _;
    static KEYS: std::sync::OnceLock<Option<(jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey)>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let der = base64::engine::general_purpose::STANDARD.decode(FUZZ_KEY_PKCS1_DER.concat()).ok()?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(FUZZ_KEY_N, "AQAB").ok()?;
        Some((jsonwebtoken::EncodingKey::from_rsa_der(&der), decoding))
    })
    .as_ref()
}

/// The modulus of the harness's RSA key (base64url), for verification.
const FUZZ_KEY_N: &str = "pGnL7OF5hO-UuGFJCWQLDgVP6p6YDOHtN3aYXyYO5eejJGAN6l56wa5D_XU7H_7_zIFTeT1qa8TaK8YEgksJu91jTpzIyrIX8bwvATEFRKcXeQvwYZIpCLPbPKOIjwTFYnoQ-cIvia8l2IKQQEt_KcHVYqwMbb2tst3FCeYfwXFMH6zc8RiZoKj-L_st5xtTk3bUuBkbhi_7Mow0MUnKb7XmanWiuKiK7EkFLDujctkgeN0QKTpiCHjriO0N7P_KRw2bXTJFIjzR9TQX34uDw1KDS_RuIxcMqDFvGqHfpZZC7SkmYcFRIPnwpBx4lrubMe0u5fScQHXVcwB8lhlJNQ";

/// The harness's RSA private key (PKCS#1 DER, base64), generated for the
/// fuzzer alone: it signs nothing outside `fuzz/`.
const FUZZ_KEY_PKCS1_DER: &[&str] = &[
    "MIIEowIBAAKCAQEApGnL7OF5hO+UuGFJCWQLDgVP6p6YDOHtN3aYXyYO5eejJGAN6l56wa5D/XU7H/7/zIFTeT1qa8TaK8YEgksJ",
    "u91jTpzIyrIX8bwvATEFRKcXeQvwYZIpCLPbPKOIjwTFYnoQ+cIvia8l2IKQQEt/KcHVYqwMbb2tst3FCeYfwXFMH6zc8RiZoKj+",
    "L/st5xtTk3bUuBkbhi/7Mow0MUnKb7XmanWiuKiK7EkFLDujctkgeN0QKTpiCHjriO0N7P/KRw2bXTJFIjzR9TQX34uDw1KDS/Ru",
    "IxcMqDFvGqHfpZZC7SkmYcFRIPnwpBx4lrubMe0u5fScQHXVcwB8lhlJNQIDAQABAoIBAAod5cnKXgXgutAAUdQyxGi1Hvka5Smg",
    "b/kCYoHdqlEEnd9LzHoSx470wC5FG8GY7qM7hKgTMAyNl7crKh/c/4OrLcR/6phpDlwg7kDZLq/OGv2nJGrR6ZXQK2S3KLH+4yka",
    "Gxf4lkrsl3GT0c3YV2zPBpMEbzIELT9dB2uCg4sNlRMDPuExr4K8m5/3eExPwFH+YdAJ7KPu/dGJcE+vWFaKQDNe74A5nMBkS5YY",
    "5YM9ZchA6vQu5zCKE6itu2O7xB4cVhyp+FC4c3OXleC+zMz5jXV8O/YJOOAGGrJIP4VkImXa5r7E3idTtiM4OraYlj9uT64elP2I",
    "AkOohhiiogECgYEA1WTSghv+mDfN4eBd5+tepETPnV4/gnlqqnFTr1oklO25BJW+ZmrXZnz7aUzh8WKxRNQZjnRxZWEukGO9ydhC",
    "MBzm2ZXZI7nCkVQkIkznk1SXsXH4Kojm6o2LqslQ7tSidcETBYtRCewN/k7fcuc1he0UYPlj2PJ++/Mg+IrkO8ECgYEAxT1vdWyo",
    "4QHWxVjbAMKO5UhjLR/4s/mfaVohrNjcKVOb4KuB8LrD6yG/MzAGpOSB2i88bQakoXHX3XI0jT7nVxf3gzT/La4BNA6bpwEDUTwt",
    "DxvbPxlfTkAfxmi+kI8JvLXCS2QnbWkHBhSBlijcPMuwRmJ/YhX+pk/qaGtQenUCgYB0dCohUQ+2mDWl/+CfcSZb9SVsFwQHuyUH",
    "0QK/Xi06jST8KJAYqlPUnX5Cb++Z4KcnDazIvikoD0nvCE+JeJheU1d0BL/ULErPLqDtixSRpYeHEdBBviZueEJxOJ4PSEFEi9JK",
    "o0XdaVIVp4tv1Fe0N7Z4WYEw4t2Dt6IVoQ5+wQKBgQCuvwpTv4wzpVxxhZKqLrVJQAPWA+BlG4B3Z0o0iAEugAu3VlwOOnm/hSuP",
    "nzoTtvuwoW7orR0IiAMXB8q1ZQiy6eH5FegKwYIBa/vNTyFwRF8rZqOtWL5OZpOARmanToLy9RmJj9c6oPV/FoXk0pilKFUpVrTC",
    "4ve0w1LLZmBrzQKBgDJdImV4ro0jLc3NpiX8CbuYylwprUFEVFbl96pxmmPrzLgV+N6dPwDhSQRXOSTy/OANI88o2EAqO3gINoqm",
    "r5edS47buAUT+cUoGnlgeIsoINSx1d74vPF2SWTn+2wXRuJ2ozjL8XGLaiCrUQKA3rcWv7g0FmW7Hdy5G8/lHavN",
];

/// User input: a region and a scope list.
pub fn user_input(text: &str) {
    let _ = text.parse::<crate::Region>().map(|r| r.to_string());
    if let Ok(scopes) = text.parse::<crate::Scopes>() {
        let wire = scopes.to_string();
        assert_eq!(wire.parse::<crate::Scopes>().ok(), Some(scopes), "scopes round-trip");
    }
}

/// A value read from a token store: decoded with no key and with a key (the
/// fuzzer's bytes are also sealed under that key first, so the JSON parser
/// behind the decryption is reached too). Never panics; a decoded set
/// re-encodes and decodes to the same tokens.
pub fn stored_record(value: &[u8]) {
    use crate::store::record::{decode, encode};
    use crate::store::{StoreEncryptionKey, StoreKey};
    use std::sync::OnceLock;

    static SEAL: OnceLock<StoreEncryptionKey> = OnceLock::new();
    let seal = SEAL.get_or_init(|| StoreEncryptionKey::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap());
    let key = StoreKey::session("fuzz");
    for seal in [None, Some(seal)] {
        if let Ok(tokens) = decode(value, &key, seal) {
            let again = decode(&encode(&tokens, &key, seal).unwrap(), &key, seal).expect("a re-encoded set decodes");
            assert_eq!(
                tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
                again.refresh_token.as_ref().map(|t| t.expose_secret().to_owned())
            );
            let _ = format!("{tokens:?}");
        }
    }
    // The bytes as the JSON inside a sealed value.
    let mut sealed = b"FVTS\x01\x00".to_vec();
    sealed.extend_from_slice(value);
    let _ = decode(&sealed, &key, None);
}
