//! Providers the SDK must cope with, written for the test. One answers
//! every sign-in side operation (userinfo, revocation, introspection, JWKS)
//! with a body one byte too large, or with an error that echoes the secrets
//! it was sent: each operation is bounded, and no error, `Display` or
//! `Debug`, shows the token or the client secret. Another serves every
//! endpoint at paths other than the spec's: each request goes to the URL
//! discovery named.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filevine_identity_ext::grant::IdToken;
use filevine_identity_ext::oidc::{ClientAuthMethod, RedirectUrl};
use filevine_identity_ext::{
    ClientId, ClientSecret, Credentials, Error, OidcClient, Region, SignInError, TokenProvider,
};

const SECRET: &str = "client-secret-7f3a";
const ACCESS_TOKEN: &str = "access-token-9c2e";
const LIMIT: usize = filevine_identity::MAX_RESPONSE_BYTES;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 200 with a body of `LIMIT + 1` bytes.
    Huge,
    /// 400/401 whose JSON error description repeats what was sent.
    Echo,
}

async fn start(mode: Mode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let discovery = serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/connect/authorize"),
        "token_endpoint": format!("{base}/connect/token"),
        "userinfo_endpoint": format!("{base}/connect/userinfo"),
        "revocation_endpoint": format!("{base}/connect/revocation"),
        "introspection_endpoint": format!("{base}/connect/introspect"),
        "jwks_uri": format!("{base}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    });
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .route(
            "/connect/token",
            post(|| async {
                axum::Json(serde_json::json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 600}))
            }),
        )
        .route("/connect/userinfo", get(answer))
        .route("/connect/revocation", post(answer))
        .route("/connect/introspect", post(answer))
        .route("/jwks", get(answer))
        .with_state(mode);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn answer(State(mode): State<Mode>, headers: axum::http::HeaderMap, body: String) -> Response {
    match mode {
        Mode::Huge => (StatusCode::OK, [("content-type", "application/json")], " ".repeat(LIMIT + 1)).into_response(),
        Mode::Echo => {
            let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
            let echo = format!("you sent {body} with {authorization:?} {ACCESS_TOKEN} {SECRET}");
            let json = serde_json::json!({"error": "invalid_client", "error_description": echo});
            (StatusCode::UNAUTHORIZED, [("content-type", "application/json")], json.to_string()).into_response()
        }
    }
}

fn client(base: &str, method: ClientAuthMethod) -> OidcClient {
    OidcClient::builder()
        .region(Region::custom(base).unwrap())
        .client_id(ClientId::new("hostile-client").unwrap())
        .client_secret(ClientSecret::new(SECRET).unwrap())
        .redirect_uri(RedirectUrl::new("http://127.0.0.1:7059/signin-oidc").unwrap())
        .auth_method(method)
        .env(|_| None)
        .build()
        .unwrap()
}

async fn access_token(base: &str) -> filevine_identity_ext::AccessToken {
    let provider = TokenProvider::builder()
        .region(Region::custom(base).unwrap())
        .credentials(Credentials::client_credentials(
            ClientId::new("hostile-client").unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        ))
        .env(|_| None)
        .build()
        .unwrap();
    provider.token().await.unwrap()
}

/// An ID token naming a key, so that verifying it fetches the JWKS.
fn id_token() -> IdToken {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(r#"{"iss":"x","sub":"s","aud":"hostile-client","exp":1,"iat":1}"#);
    IdToken::new(format!("{header}.{claims}.AAAA"))
}

/// Every operation's outcome, for one mode and client authentication.
async fn outcomes(mode: Mode, method: ClientAuthMethod) -> Vec<(&'static str, Result<(), SignInError>)> {
    let base = start(mode).await;
    let client = client(&base, method);
    let token = access_token(&base).await;
    vec![
        ("userinfo", client.userinfo(&token, "s").await.map(drop)),
        ("revocation", client.revoke_access_token(&token).await),
        ("introspection", client.introspect(token.expose_secret()).await.map(drop)),
        ("jwks", client.verify_id_token(&id_token(), None).await.map(drop)),
    ]
}

fn malformed(error: &SignInError) -> Option<&Error> {
    match error {
        SignInError::Token(error) => Some(error),
        SignInError::IdToken(filevine_identity_ext::oidc::IdTokenError::Keys { source, .. }) => Some(source),
        _ => None,
    }
}

#[tokio::test]
async fn every_sign_in_operation_is_bounded() {
    for (operation, outcome) in outcomes(Mode::Huge, ClientAuthMethod::ClientSecretPost).await {
        // RFC 7009's 200 has no content: the body is never read.
        if operation == "revocation" {
            assert!(outcome.is_ok(), "{outcome:?}");
            continue;
        }
        let error = outcome.unwrap_err();
        let reason = match malformed(&error) {
            Some(Error::MalformedResponse { reason, .. }) => reason.clone(),
            _ => panic!("{operation}: {error:?}"),
        };
        assert_eq!(reason, format!("the response is larger than {LIMIT} bytes"), "{operation}");
    }
}

#[tokio::test]
async fn no_error_shows_the_token_or_the_client_secret() {
    for method in [ClientAuthMethod::ClientSecretPost, ClientAuthMethod::ClientSecretBasic] {
        let basic = URL_SAFE_NO_PAD.encode(format!("hostile-client:{SECRET}"));
        for (operation, outcome) in outcomes(Mode::Echo, method).await {
            let error = outcome.unwrap_err();
            let shown = format!("{error} | {error:?} | {:?}", std::error::Error::source(&error));
            for secret in [ACCESS_TOKEN, SECRET, basic.trim_end_matches('=')] {
                assert!(!shown.contains(secret), "{operation} ({method:?}) shows a secret: {shown}");
            }
            // The error still says what happened.
            if operation != "jwks" {
                assert!(
                    matches!(malformed(&error), Some(Error::InvalidCredentials { status: 401, .. })),
                    "{operation}: {error:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_operation_goes_to_the_url_discovery_names() {
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let discovery = serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth2/v1/authorize"),
        "token_endpoint": format!("{base}/oauth2/v1/token"),
        "userinfo_endpoint": format!("{base}/oauth2/v1/userinfo"),
        "revocation_endpoint": format!("{base}/oauth2/v1/revoke"),
        "introspection_endpoint": format!("{base}/oauth2/v1/introspect"),
        "jwks_uri": format!("{base}/oauth2/v1/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&seen);
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .fallback(move |uri: axum::http::Uri| {
            let log = Arc::clone(&log);
            async move {
                let path = uri.path().to_owned();
                log.lock().unwrap().push(path.clone());
                let body = match path.as_str() {
                    "/oauth2/v1/token" => serde_json::json!({
                        "access_token": "at-2", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-2",
                    }),
                    "/oauth2/v1/userinfo" => serde_json::json!({"sub": "s"}),
                    "/oauth2/v1/introspect" => serde_json::json!({"active": false}),
                    "/oauth2/v1/keys" => serde_json::json!({"keys": []}),
                    "/oauth2/v1/revoke" => return StatusCode::OK.into_response(),
                    _ => return StatusCode::NOT_FOUND.into_response(),
                };
                axum::Json(body).into_response()
            }
        });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = client(&base, ClientAuthMethod::ClientSecretPost);
    let response: filevine_identity::types::TokenResponse = serde_json::from_value(serde_json::json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-1",
    }))
    .unwrap();
    let set = filevine_identity_ext::TokenSet::from_response(response, std::time::Instant::now()).unwrap();
    let provider = client.token_provider(set).build().unwrap();
    provider.invalidate();
    let token = provider.token().await.unwrap();
    assert_eq!(token.expose_secret(), "at-2", "refreshed at the discovered token endpoint");
    client.userinfo(&token, "s").await.unwrap();
    client.revoke_access_token(&token).await.unwrap();
    assert!(!client.introspect(token.expose_secret()).await.unwrap().active);
    let err = client.verify_id_token(&id_token(), None).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(filevine_identity_ext::oidc::IdTokenError::UnknownKey { .. })), "{err}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["/oauth2/v1/token", "/oauth2/v1/userinfo", "/oauth2/v1/revoke", "/oauth2/v1/introspect", "/oauth2/v1/keys"]
    );
}
