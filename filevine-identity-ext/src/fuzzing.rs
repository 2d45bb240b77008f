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

/// An ID token: parsed, header-checked, and verified against a fixed
/// RSA key (so the claim checks run on whatever the JOSE crate lets
/// through). Must never panic.
pub fn id_token(text: &str) {
    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
    let Ok(parsed) = crate::oidc::id_token::parse(text) else { return };
    let algorithms = ["RS256".to_owned(), "RS384".to_owned(), "RS512".to_owned()];
    if parsed.check_header(&algorithms).is_err() {
        return;
    }
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_components(N, "AQAB") else { return };
    let nonce = crate::oidc::Nonce::generate().ok();
    let expect = crate::oidc::id_token::Expectations {
        issuer: "https://identity.filevine.io",
        client_id: "partner-app",
        algorithms: &algorithms,
        leeway: std::time::Duration::from_secs(5),
        nonce: nonce.as_ref(),
    };
    if let Err(error) = parsed.verify(&key, &expect, crate::oidc::id_token::unix_now()) {
        drop(error.to_string());
    }
}

/// User input: a region and a scope list.
pub fn user_input(text: &str) {
    let _ = text.parse::<crate::Region>().map(|r| r.to_string());
    if let Ok(scopes) = text.parse::<crate::Scopes>() {
        let wire = scopes.to_string();
        assert_eq!(wire.parse::<crate::Scopes>().ok(), Some(scopes), "scopes round-trip");
    }
}
