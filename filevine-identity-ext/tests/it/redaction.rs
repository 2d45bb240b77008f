//! The redaction audit: every public type that can hold a secret and every
//! error variant, built with sentinel secrets, formatted with `Debug` and
//! `Display`; and everything `tracing` records at TRACE during a token
//! exchange, a refresh and failures. No sentinel may appear anywhere.

use std::time::{Duration, Instant};

use filevine_identity::SecretString;
use filevine_identity::types::{self, TokenResponse};
use filevine_identity_ext::grant::IdToken;
use filevine_identity_ext::test_util::{Failure, TestServer};
use filevine_identity_ext::{
    ClientId, ClientSecret, Credentials, Error, PersonalAccessToken, RefreshToken, TokenProvider, TokenSet,
};

use crate::support::Captured;

// Realistic secrets: long and random-looking, like the real ones.
const PAT: &str = "SENTINELpat9f2c7a1e5b3d8046";
const CLIENT_SECRET: &str = "SENTINELsecret4b7e1a9c3f0d62";
const REFRESH: &str = "SENTINELrefresh8d3a6f1c9e2b57";
const ID_TOKEN: &str = "SENTINELidtoken.eyJzdWIiOiIxIn0.c2ln";
const CODE_VERIFIER: &str = "SENTINELverifier0123456789abcdefghijklmnopqrstuv";
const SENTINELS: &[&str] = &[PAT, CLIENT_SECRET, REFRESH, ID_TOKEN, CODE_VERIFIER, "SENTINEL"];

fn assert_clean(what: &str, text: &str, extra: &[&str]) {
    for sentinel in SENTINELS.iter().chain(extra) {
        assert!(!text.contains(sentinel), "{what} leaked {sentinel}:\n{text}");
    }
}

fn shown<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}\n{value:#?}")
}

fn shown_all<T: std::fmt::Debug + std::fmt::Display>(value: &T) -> String {
    format!("{value}\n{value:#}\n{value:?}\n{value:#?}")
}

#[test]
fn every_secret_bearing_type_is_redacted() {
    let token_response: TokenResponse = serde_json::from_value(serde_json::json!({
        "access_token": "SENTINELaccess1a2b3c4d5e6f7a8b", "token_type": "Bearer", "expires_in": 60,
        "scope": "openid", "refresh_token": REFRESH, "id_token": ID_TOKEN,
    }))
    .unwrap();
    let set = TokenSet::from_response(token_response.clone(), Instant::now()).unwrap();
    let pat = Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap())
        .with_client(ClientId::new("client").unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap());
    let refresh = Credentials::refresh_token(RefreshToken::new(REFRESH).unwrap())
        .with_client(ClientId::new("client").unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap());
    let generated_requests: Vec<types::TokenRequest> = vec![
        types::PersonalAccessTokenRequest {
            grant_type: types::PersonalAccessTokenRequestGrantType::PersonalAccessToken,
            token: PAT.into(),
            scope: "s".into(),
            client_id: None,
            client_secret: Some(CLIENT_SECRET.into()),
        }
        .into(),
        types::ClientCredentialsRequest {
            grant_type: types::ClientCredentialsRequestGrantType::ClientCredentials,
            client_id: "c".into(),
            client_secret: Some(CLIENT_SECRET.into()),
            scope: None,
        }
        .into(),
        types::AuthorizationCodeRequest {
            grant_type: types::AuthorizationCodeRequestGrantType::AuthorizationCode,
            code: "SENTINELcode".into(),
            redirect_uri: "https://localhost:7059/signin-oidc".into(),
            client_id: "c".into(),
            client_secret: Some(CLIENT_SECRET.into()),
            code_verifier: Some(CODE_VERIFIER.into()),
        }
        .into(),
        types::RefreshTokenRequest {
            grant_type: types::RefreshTokenRequestGrantType::RefreshToken,
            refresh_token: REFRESH.into(),
            scope: None,
            client_id: None,
            client_secret: None,
        }
        .into(),
    ];
    let builder = TokenProvider::builder().env(|_| None).credentials(pat.clone());
    let with_set = TokenProvider::builder().env(|_| None).token_set(
        set.clone(),
        ClientId::new("client").unwrap(),
        Some(ClientSecret::new(CLIENT_SECRET).unwrap()),
    );

    let mut text = String::new();
    text += &shown_all(&SecretString::from(PAT));
    text += &shown_all(&PersonalAccessToken::new(PAT).unwrap());
    text += &shown_all(&ClientSecret::new(CLIENT_SECRET).unwrap());
    text += &shown_all(&RefreshToken::new(REFRESH).unwrap());
    text += &shown_all(&IdToken::new(ID_TOKEN));
    text += &shown(&set);
    text += &shown(&set.access_token);
    text += &shown(&set.access_token.authorization_header());
    text += &shown(&pat);
    text += &shown(&refresh);
    text += &shown(&builder);
    text += &shown(&with_set);
    text += &shown(&token_response);
    text += &shown(&generated_requests);
    assert_clean("types", &text, &["SENTINELaccess", "SENTINELcode"]);
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_and_errors_stay_clean_through_exchange_refresh_and_failures() {
    let captured = Captured::global();
    let since = captured.mark();

    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server.add_client("client", CLIENT_SECRET);
    server.add_refresh_token(REFRESH);
    let mut texts = Vec::new();

    // 1. A full PAT exchange, with the client secret.
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(
            Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap())
                .with_client(ClientId::new("client").unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
        )
        .max_attempts(1)
        .build()
        .unwrap();
    let access = provider.token().await.unwrap();
    let access_value = access.expose_secret().to_owned();
    texts.push(shown(&provider));

    // 2. A refresh with rotation.
    let refresher = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(
            Credentials::refresh_token(RefreshToken::new(REFRESH).unwrap())
                .with_client(ClientId::new("client").unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
        )
        .build()
        .unwrap();
    let refreshed = refresher.token().await.unwrap();
    let refreshed_value = refreshed.expose_secret().to_owned();
    let rotated = server.requests().last().map(|r| r.field("refresh_token").unwrap().to_owned()).unwrap();
    assert_eq!(rotated, REFRESH);

    // 3. Failures whose bodies echo the secrets, one per error variant that
    // carries server text.
    let echo = format!(
        "{{\"access_token\":\"{access_value}\",\"note\":\"{PAT} {CLIENT_SECRET}\",\"refresh_token\":\"{REFRESH}\"}}"
    );
    let failures = vec![
        Failure::oauth_error(400, "invalid_request", Some(&format!("bad token {PAT} for secret {CLIENT_SECRET}"))),
        Failure::filevine_envelope(403, &format!("PAT {PAT} is not allowed")),
        Failure::garbage(502, &format!("<html>upstream said {echo}</html>")),
        Failure::json(200, &echo.replace("\"access_token\"", "\"token_type\":7,\"access_token\"")),
        Failure::json(418, &echo),
        Failure::garbage(401, &echo),
    ];
    for failure in failures {
        server.fail_next(failure);
        provider.invalidate();
        let error = provider.token().await.unwrap_err();
        texts.push(shown_all(&error));
    }
    // 429 with a body echoing secrets, a timeout, an unreachable server,
    // and a configuration error: the remaining variants.
    server.fail_next(Failure::RateLimited { retry_after_secs: 120 });
    provider.invalidate();
    texts.push(shown_all(&provider.token().await.unwrap_err()));
    let slow = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .request_timeout(Duration::from_millis(50))
        .max_attempts(1)
        .build()
        .unwrap();
    server.fail_next(Failure::Delay(Duration::from_millis(500)));
    let error = slow.token().await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    texts.push(shown_all(&error));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let offline = TokenProvider::builder()
        .env(move |name| (name == "FILEVINE_AUTHORITY").then(|| unreachable.clone()))
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .max_attempts(1)
        .build()
        .unwrap();
    texts.push(shown_all(&offline.token().await.unwrap_err()));
    let config = TokenProvider::builder()
        .env(|name| {
            (name == "FILEVINE_PAT")
                .then(|| PAT.to_owned())
                .or_else(|| (name == "FILEVINE_CLIENT_ID").then(|| "c".into()))
        })
        .build()
        .unwrap_err();
    texts.push(shown_all(&Error::from(config)));

    // invalid_grant on refresh, echoing the refresh token.
    server.fail_next(Failure::oauth_error(400, "invalid_grant", Some(&format!("refresh token {REFRESH} revoked"))));
    refresher.invalidate();
    let error = refresher.token().await.unwrap_err();
    assert!(matches!(error, Error::SignInRequired { .. }), "{error:?}");
    texts.push(shown_all(&error));

    // Every variant of `Error` was produced and formatted above.
    let variants: std::collections::BTreeSet<&str> = texts
        .iter()
        .filter_map(|t| t.lines().nth(2))
        .filter_map(|debug| debug.split([' ', '(', '{']).next())
        .filter(|name| !name.is_empty() && *name != "TokenProvider")
        .collect();
    assert_eq!(
        variants.into_iter().collect::<Vec<_>>(),
        [
            "Config",
            "Forbidden",
            "InvalidCredentials",
            "MalformedResponse",
            "Network",
            "RateLimited",
            "Server",
            "SignInRequired",
            "Timeout",
        ]
    );

    let logs = captured.text_since(since);
    for event in ["requesting an access token", "received an access token", "token request failed"] {
        assert!(logs.contains(event), "the {event:?} event was not captured: {logs}");
    }
    let all = texts.join("\n") + &logs;
    assert_clean("errors and tracing", &all, &[&access_value, &refreshed_value]);
}

/// The token store's types and events: the encryption key, the store key
/// made from a session id, a provider with a store, what `forget()` returns,
/// and every event at TRACE through a saved refresh, a stored session read
/// by another provider, and the deletion.
#[tokio::test(flavor = "current_thread")]
async fn token_store_types_and_events_stay_clean() {
    use filevine_identity_ext::store::{MemoryStore, StoreEncryptionKey, StoreKey};
    use std::sync::Arc;

    const SESSION: &str = "SENTINELsession5e8a1c7f3b9d20";
    let log = Captured::global();
    let mark = log.mark();
    let server = TestServer::start().await.unwrap();
    server.add_client("client", CLIENT_SECRET);
    server.add_refresh_token(REFRESH);
    let seal = StoreEncryptionKey::generate().unwrap();
    let store = Arc::new(MemoryStore::new());
    let builder = || {
        TokenProvider::builder()
            .env(|_| None)
            .region(server.region())
            .store(store.clone())
            .store_key(StoreKey::session(SESSION))
            .store_encryption_key(seal.clone())
    };
    let first = builder()
        .credentials(
            Credentials::refresh_token(RefreshToken::new(REFRESH).unwrap())
                .with_client(ClientId::new("client").unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
        )
        .build()
        .unwrap();
    let token = first.token().await.unwrap();
    let rotated = first.refresh_token().unwrap();
    let second = builder()
        .stored_session(ClientId::new("client").unwrap(), Some(ClientSecret::new(CLIENT_SECRET).unwrap()))
        .build()
        .unwrap();
    second.token().await.unwrap();
    let forgotten = second.forget().await.unwrap();
    assert!(forgotten.refresh_token.is_some() && forgotten.access_token.is_some(), "it held both");

    let mut text = String::new();
    text += &shown_all(&seal);
    text += &shown_all(&StoreKey::session(SESSION));
    text += &shown(&first);
    text += &shown(&second);
    text += &shown(&forgotten);
    text += &shown(&builder());
    text += &log.text_since(mark);
    assert!(text.contains("saved the token set"), "the save was captured:\n{text}");
    assert!(text.contains("deleted the stored token set"), "the deletion was captured:\n{text}");
    assert_clean(
        "token store",
        &text,
        &[SESSION, seal.expose_secret(), token.expose_secret(), rotated.expose_secret()],
    );
}

/// A device sign-in, approved after one pending poll and then one that is
/// denied: the device code and the tokens it brings appear in no `Debug`,
/// no error and no event recorded at TRACE.
#[tokio::test(flavor = "current_thread")]
async fn the_device_flow_shows_no_device_code_and_no_token() {
    use filevine_identity_ext::OidcClient;
    use filevine_identity_ext::oidc::RedirectUrl;

    let captured = Captured::global();
    let since = captured.mark();
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("cli", Some(CLIENT_SECRET), &["http://127.0.0.1/callback"], &[]);
    server.set_device_polling(0, 600);
    let client = OidcClient::builder()
        .env(|_| None)
        .region(server.region())
        .client_id(ClientId::new("cli").unwrap())
        .client_secret(ClientSecret::new(CLIENT_SECRET).unwrap())
        .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback").unwrap())
        .scopes("openid offline_access".parse().unwrap())
        .build()
        .unwrap();

    let approved = client.device_authorization().await.unwrap();
    let approved_code = server.device_code(&approved.user_code).unwrap();
    let waiting = {
        let (client, device) = (client.clone(), approved.clone());
        tokio::spawn(async move { client.complete_device_sign_in(&device).await })
    };
    server.wait_for_token_requests(1).await;
    assert!(server.approve_device(&approved.user_code));
    let signed_in = waiting.await.unwrap().unwrap();

    let denied = client.device_authorization().await.unwrap();
    let denied_code = server.device_code(&denied.user_code).unwrap();
    assert!(server.deny_device(&denied.user_code));
    let error = client.complete_device_sign_in(&denied).await.unwrap_err();

    let set = &signed_in.token_set;
    let secrets = [
        approved_code.as_str(),
        denied_code.as_str(),
        set.access_token.expose_secret(),
        set.refresh_token.as_ref().unwrap().expose_secret(),
        set.id_token.as_ref().unwrap().expose_secret(),
    ];
    assert_clean("DeviceAuthorization", &shown(&approved), &secrets);
    assert_clean("SignedIn", &shown(&signed_in), &secrets);
    assert_clean("the denial", &shown_all(&error), &secrets);
    assert_clean("tracing", &captured.text_since(since), &secrets);
}

/// `private_key_jwt` and DPoP: a client key, the assertions and proofs the
/// SDK signs, and the bound token appear in no `Debug`, no error and no
/// event recorded at TRACE, through nonce challenges at the token endpoint
/// and the gateway, gateway calls, and an assertion the server refuses.
#[tokio::test(flavor = "current_thread")]
async fn keys_assertions_and_proofs_stay_out_of_logs_and_errors() {
    use filevine_identity_ext::FilevineApi;
    use filevine_identity_ext::jose::ClientKey;

    // A P-256 key made for this test; `d` is its private part.
    const JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"redaction",
      "x":"oHA-qSWD32yP0REgUdhaAO0cyhgl0AkS0H8UmDWqb2M",
      "y":"oPhRkXBUJOoRubdjM7ZEzI4jCCBMdGPgrCNz3APsXwo",
      "d":"fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8"}"#;
    const D: &str = "fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8";

    let captured = Captured::global();
    let since = captured.mark();
    let server = TestServer::start().await.unwrap();
    let key = ClientKey::from_jwk(JWK).unwrap();
    server.add_client_key("svc-redaction", &key);
    server.require_dpop_nonce("token-nonce-r");
    server.require_gateway_dpop_nonce("gateway-nonce-r");
    let credentials = Credentials::client_credentials_with_key(ClientId::new("svc-redaction").unwrap(), key.clone());
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(credentials)
        .dpop(true)
        .build()
        .unwrap();
    let token = provider.token().await.unwrap();
    let api = FilevineApi::new(provider.clone()).unwrap();
    api.get_user_orgs_with_token().await.unwrap();
    api.get_user_orgs_with_token().await.unwrap();

    // A key the server does not know for this client: refused.
    let stranger = ClientKey::from_jwk(
        r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#,
    )
    .unwrap();
    let refused = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::client_credentials_with_key(ClientId::new("svc-redaction").unwrap(), stranger))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();

    // Everything that was signed and sent: assertions and proofs.
    let mut sent: Vec<String> = Vec::new();
    for request in server.requests() {
        sent.extend(request.form.iter().filter(|(k, _)| k == "client_assertion").map(|(_, v)| v.clone()));
        sent.extend(request.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("dpop")).map(|(_, v)| v.clone()));
    }
    for request in server.gateway_log() {
        sent.extend(request.header("dpop").map(str::to_owned));
    }
    assert!(sent.len() >= 6, "assertions and proofs were recorded: {}", sent.len());
    let mut secrets: Vec<&str> = sent.iter().map(String::as_str).collect();
    secrets.extend([D, "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE", token.expose_secret()]);
    assert_clean("ClientKey", &shown(&key), &secrets);
    assert_clean("the DPoP key", &shown(token.dpop_key().unwrap()), &secrets);
    assert_clean("the provider", &shown(&provider), &secrets);
    assert_clean("the refusal", &shown_all(&refused), &secrets);
    let logs = captured.text_since(since);
    assert!(logs.contains("requesting an access token"), "the exchange was captured:\n{logs}");
    assert_clean("tracing", &logs, &secrets);
}

/// The PostgreSQL store writes each value as a literal of its statement:
/// sqlx's statement log (DEBUG, and WARN when slow) would carry a token
/// set's hex. A refresh-token provider saving, rotating and reading back
/// through the store's own pool, and through an application pool built
/// from `PostgresStore::connect_options`, logs no hex of any of its tokens
/// at TRACE; a pool built without those options does (so the check sees
/// what it looks for).
#[tokio::test(flavor = "current_thread")]
async fn the_postgres_store_logs_no_token_set() {
    use filevine_identity_ext::store::{PostgresStore, StoreKey, TokenStore};
    use std::str::FromStr as _;
    use std::sync::Arc;

    fn hex(text: &str) -> String {
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }
    let log = Captured::global();
    let url = crate::support::postgres::Postgres::shared().database("redaction_audit");
    let server = TestServer::start().await.unwrap();
    server.add_client("client", CLIENT_SECRET);
    let pools: Vec<(&str, PostgresStore)> = vec![
        ("the store's own pool", PostgresStore::open(&url).unwrap()),
        (
            "a pool from connect_options",
            PostgresStore::with_pool(
                sqlx::postgres::PgPoolOptions::new().connect_lazy_with(PostgresStore::connect_options(&url).unwrap()),
            ),
        ),
        (
            "a pool with sqlx's default options",
            PostgresStore::with_pool(
                sqlx::postgres::PgPoolOptions::new()
                    .connect_lazy_with(sqlx::postgres::PgConnectOptions::from_str(&url).unwrap()),
            ),
        ),
    ];
    for (n, (what, store)) in pools.into_iter().enumerate() {
        store.migrate().await.unwrap();
        let store: Arc<dyn TokenStore> = Arc::new(store);
        let refresh = format!("{REFRESH}{n}");
        server.add_refresh_token(&refresh);
        let mark = log.mark();
        let session = StoreKey::session(&format!("redaction-{n}"));
        let first = TokenProvider::builder()
            .env(|_| None)
            .region(server.region())
            .store(store.clone())
            .store_key(session.clone())
            .credentials(
                Credentials::refresh_token(RefreshToken::new(&refresh).unwrap())
                    .with_client(ClientId::new("client").unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
            )
            .build()
            .unwrap();
        let token = first.token().await.unwrap();
        let rotated = first.refresh_token().unwrap();
        let second = TokenProvider::builder()
            .env(|_| None)
            .region(server.region())
            .store(store.clone())
            .store_key(session)
            .stored_session(ClientId::new("client").unwrap(), Some(ClientSecret::new(CLIENT_SECRET).unwrap()))
            .build()
            .unwrap();
        assert_eq!(second.token().await.unwrap().expose_secret(), token.expose_secret());
        let text = log.text_since(mark);
        let planted = [hex(token.expose_secret()), hex(rotated.expose_secret()), hex(&refresh)];
        let leaked: Vec<&String> = planted.iter().filter(|hex| text.contains(hex.as_str())).collect();
        if what == "a pool with sqlx's default options" {
            assert!(text.contains("db.statement"), "sqlx's statement log was captured:\n{text}");
            assert!(!leaked.is_empty(), "sqlx's default statement log shows the token set's hex:\n{text}");
        } else {
            assert!(leaked.is_empty(), "{what}: the log holds a token's hex:\n{text}");
            assert_clean(what, &text, &[token.expose_secret(), rotated.expose_secret()]);
        }
    }
}
