//! The generated client against a real HTTP server on 127.0.0.1: what goes
//! on the wire for every grant, and how every documented (and undocumented)
//! response is parsed.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use filevine_identity::types::{
    AuthorizationCodeRequest, AuthorizationCodeRequestGrantType, ClientCredentialsRequest,
    ClientCredentialsRequestGrantType, PersonalAccessTokenRequest, PersonalAccessTokenRequestGrantType,
    RefreshTokenRequest, RefreshTokenRequestGrantType, TokenRequest, TokenResponseExpiresIn,
};
use filevine_identity::{Client, Error, MAX_RESPONSE_BYTES, ResponseTooLarge, SecretString};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
}

/// The reply the server gives to every request.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    reply: Option<Reply>,
}

/// A loopback server that records requests and answers with a set reply.
struct Server {
    state: Arc<Mutex<State>>,
    client: Client,
}

impl Server {
    async fn start(reply: Reply) -> Self {
        let state = Arc::new(Mutex::new(State { seen: Vec::new(), reply: Some(reply) }));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let shared = shared.clone();
            async move {
                let mut state = shared.lock().unwrap();
                state.seen.push(Seen {
                    method,
                    path: uri.path().to_owned(),
                    headers,
                    body: String::from_utf8(body.to_vec()).unwrap(),
                });
                let reply = state.reply.clone().unwrap();
                (
                    StatusCode::from_u16(reply.status).unwrap(),
                    [(axum::http::header::CONTENT_TYPE, reply.content_type)],
                    reply.body,
                )
                    .into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, client: Client::new(&format!("http://{address}")) }
    }

    async fn json(status: u16, body: &str) -> Self {
        Self::start(Reply { status, content_type: "application/json", body: body.to_owned() }).await
    }

    fn only_request(&self) -> Seen {
        let state = self.state.lock().unwrap();
        assert_eq!(state.seen.len(), 1, "exactly one request");
        state.seen[0].clone()
    }
}

const TOKEN_JSON: &str = r#"{"access_token":"at-123","token_type":"Bearer","expires_in":1200,"scope":"fv.api.gateway.access filevine.v2.api.*"}"#;

const SCOPE: &str = "fv.api.gateway.access filevine.v2.api.*";

fn pat_request() -> TokenRequest {
    PersonalAccessTokenRequest {
        grant_type: PersonalAccessTokenRequestGrantType::PersonalAccessToken,
        // Characters that must be percent-encoded in a form body.
        token: SecretString::from("pat+/=&%"),
        scope: SCOPE.to_owned(),
        client_id: Some("client-1".to_owned()),
        client_secret: Some(SecretString::from("sec ret")),
    }
    .into()
}

fn client_credentials_request() -> TokenRequest {
    ClientCredentialsRequest {
        grant_type: ClientCredentialsRequestGrantType::ClientCredentials,
        client_id: "client-1".to_owned(),
        client_secret: SecretString::from("s3cret"),
        scope: Some(SCOPE.to_owned()),
    }
    .into()
}

fn authorization_code_request() -> TokenRequest {
    AuthorizationCodeRequest {
        grant_type: AuthorizationCodeRequestGrantType::AuthorizationCode,
        code: SecretString::from("code-xyz"),
        redirect_uri: "https://localhost:7059/signin-oidc".to_owned(),
        client_id: "client-1".to_owned(),
        client_secret: Some(SecretString::from("s3cret")),
        code_verifier: Some(SecretString::from("v".repeat(43))),
    }
    .into()
}

fn refresh_token_request() -> TokenRequest {
    RefreshTokenRequest {
        grant_type: RefreshTokenRequestGrantType::RefreshToken,
        refresh_token: SecretString::from("rt-1"),
        scope: None,
        client_id: Some("client-1".to_owned()),
        client_secret: Some(SecretString::from("s3cret")),
    }
    .into()
}

/// Sends `request` and checks the exact body and headers on the wire.
async fn assert_wire(request: TokenRequest, expected_body: &str, expected_pairs: &[(&str, &str)]) {
    let server = Server::json(200, TOKEN_JSON).await;
    server.client.get_access_token(&request).await.unwrap();
    let seen = server.only_request();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, "/connect/token");
    assert_eq!(seen.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(seen.headers["accept"], "application/json");
    assert!(seen.headers.get("api-version").is_none(), "api-version must not be sent: {:?}", seen.headers);
    assert_eq!(seen.body, expected_body);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&seen.body).unwrap();
    let expected: Vec<(String, String)> =
        expected_pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    assert_eq!(pairs, expected);
}

#[tokio::test]
async fn personal_access_token_form_body() {
    assert_wire(
        pat_request(),
        // Space is `+`, `*` stays as is (WHATWG form encoding), `+/=&%` are escaped.
        "client_id=client-1&client_secret=sec+ret&grant_type=personal_access_token\
         &scope=fv.api.gateway.access+filevine.v2.api.*&token=pat%2B%2F%3D%26%25",
        &[
            ("client_id", "client-1"),
            ("client_secret", "sec ret"),
            ("grant_type", "personal_access_token"),
            ("scope", SCOPE),
            ("token", "pat+/=&%"),
        ],
    )
    .await;
}

#[tokio::test]
async fn personal_access_token_without_client_omits_the_fields() {
    let request: TokenRequest = PersonalAccessTokenRequest {
        grant_type: PersonalAccessTokenRequestGrantType::PersonalAccessToken,
        token: SecretString::from("pat"),
        scope: SCOPE.to_owned(),
        client_id: None,
        client_secret: None,
    }
    .into();
    assert_wire(
        request,
        "grant_type=personal_access_token&scope=fv.api.gateway.access+filevine.v2.api.*&token=pat",
        &[("grant_type", "personal_access_token"), ("scope", SCOPE), ("token", "pat")],
    )
    .await;
}

#[tokio::test]
async fn client_credentials_form_body() {
    assert_wire(
        client_credentials_request(),
        "client_id=client-1&client_secret=s3cret&grant_type=client_credentials\
         &scope=fv.api.gateway.access+filevine.v2.api.*",
        &[
            ("client_id", "client-1"),
            ("client_secret", "s3cret"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
}

#[tokio::test]
async fn authorization_code_form_body() {
    let verifier = "v".repeat(43);
    assert_wire(
        authorization_code_request(),
        &format!(
            "client_id=client-1&client_secret=s3cret&code=code-xyz&code_verifier={verifier}\
             &grant_type=authorization_code&redirect_uri=https%3A%2F%2Flocalhost%3A7059%2Fsignin-oidc"
        ),
        &[
            ("client_id", "client-1"),
            ("client_secret", "s3cret"),
            ("code", "code-xyz"),
            ("code_verifier", &verifier),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://localhost:7059/signin-oidc"),
        ],
    )
    .await;
}

#[tokio::test]
async fn refresh_token_form_body() {
    assert_wire(
        refresh_token_request(),
        "client_id=client-1&client_secret=s3cret&grant_type=refresh_token&refresh_token=rt-1",
        &[
            ("client_id", "client-1"),
            ("client_secret", "s3cret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-1"),
        ],
    )
    .await;
}

#[tokio::test]
async fn success_response_is_parsed_for_every_grant() {
    let body = r#"{"access_token":"at-9","token_type":"bearer","expires_in":3600,"scope":"openid offline_access",
                   "refresh_token":"rt-9","id_token":"eyJ.x.y","unknown_field":true}"#;
    for request in [pat_request(), client_credentials_request(), authorization_code_request(), refresh_token_request()]
    {
        let server = Server::json(200, body).await;
        let token = server.client.get_access_token(&request).await.unwrap().into_inner();
        assert_eq!(token.access_token.expose_secret(), "at-9");
        assert_eq!(token.token_type, "bearer");
        assert_eq!(token.expires_in, Some(TokenResponseExpiresIn::Int64(3600)));
        assert_eq!(token.scope.as_deref(), Some("openid offline_access"));
        assert_eq!(token.refresh_token.as_ref().map(SecretString::expose_secret), Some("rt-9"));
        assert_eq!(token.id_token.as_ref().map(SecretString::expose_secret), Some("eyJ.x.y"));
        // Debug of the parsed response shows no token.
        let debug = format!("{token:?}");
        assert!(!debug.contains("at-9") && !debug.contains("rt-9") && !debug.contains("eyJ"), "{debug}");
    }
}

#[tokio::test]
async fn expires_in_may_be_a_string_or_missing() {
    let server = Server::json(200, r#"{"access_token":"a","token_type":"Bearer","expires_in":"1200"}"#).await;
    let token = server.client.get_access_token(&pat_request()).await.unwrap().into_inner();
    assert_eq!(token.expires_in, Some(TokenResponseExpiresIn::String("1200".to_owned())));
    assert_eq!(token.scope, None);

    let server = Server::json(200, r#"{"access_token":"a","token_type":"Bearer"}"#).await;
    let token = server.client.get_access_token(&pat_request()).await.unwrap().into_inner();
    assert_eq!(token.expires_in, None);
}

const ENVELOPE: &str = r#"{"meta":{"pagination":{"limit":0,"offset":0,"total_count":0}},
                           "errors":[{"httpcode":400,"message":"Invalid PAT"}]}"#;

#[tokio::test]
async fn filevine_envelope_on_400_is_a_typed_error() {
    let server = Server::json(400, ENVELOPE).await;
    let Err(Error::ErrorResponse(response)) = server.client.get_access_token(&pat_request()).await else {
        panic!("expected a typed error response");
    };
    assert_eq!(response.status(), 400);
    let body = response.into_inner();
    assert_eq!(body.errors.len(), 1);
    assert_eq!(body.errors[0].httpcode, Some(400));
    assert_eq!(body.errors[0].message.as_deref(), Some("Invalid PAT"));
    assert_eq!(body.meta.unwrap().pagination.unwrap().total_count, Some(0));
    assert_eq!(body.error, None);
}

#[tokio::test]
async fn rfc6749_error_on_400_is_a_typed_error() {
    let server = Server::json(
        400,
        r#"{"error":"invalid_grant","error_description":"The refresh token has expired","error_uri":"https://example.test/e"}"#,
    )
    .await;
    let Err(Error::ErrorResponse(response)) = server.client.get_access_token(&refresh_token_request()).await else {
        panic!("expected a typed error response");
    };
    let body = response.into_inner();
    assert_eq!(body.error.as_deref(), Some("invalid_grant"));
    assert_eq!(body.error_description.as_deref(), Some("The refresh token has expired"));
    assert_eq!(body.error_uri.as_deref(), Some("https://example.test/e"));
    assert!(body.errors.is_empty());
}

#[tokio::test]
async fn filevine_envelope_on_403_is_a_typed_error() {
    let server = Server::json(403, &ENVELOPE.replace("400", "403").replace("Invalid PAT", "Forbidden")).await;
    let Err(Error::ErrorResponse(response)) = server.client.get_access_token(&client_credentials_request()).await
    else {
        panic!("expected a typed error response");
    };
    assert_eq!(response.status(), 403);
    assert_eq!(response.into_inner().errors[0].message.as_deref(), Some("Forbidden"));
}

#[tokio::test]
async fn html_502_is_an_error_not_a_panic() {
    let server = Server::start(Reply {
        status: 502,
        content_type: "text/html",
        body: "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
    })
    .await;
    let err = server.client.get_access_token(&pat_request()).await.unwrap_err();
    assert!(matches!(err, Error::UnexpectedResponse(_)), "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(502));
}

#[tokio::test]
async fn garbage_on_400_and_200_is_an_error_not_a_panic() {
    for status in [200, 400] {
        let server =
            Server::start(Reply { status, content_type: "application/json", body: "{\"access_tok".to_owned() }).await;
        let err = server.client.get_access_token(&pat_request()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidResponsePayload(..)), "{status}: {err:?}");
    }
}

#[tokio::test]
async fn discovery_document_is_fetched_and_parsed() {
    let document = r#"{
        "issuer": "https://identity.filevine.io",
        "authorization_endpoint": "https://identity.filevine.io/connect/authorize",
        "token_endpoint": "https://identity.filevine.io/connect/token",
        "userinfo_endpoint": "https://identity.filevine.io/connect/userinfo",
        "end_session_endpoint": "https://identity.filevine.io/connect/endsession",
        "revocation_endpoint": "https://identity.filevine.io/connect/revocation",
        "jwks_uri": "https://identity.filevine.io/.well-known/openid-configuration/jwks",
        "scopes_supported": ["openid", "profile", "email", "offline_access", "fv.api.gateway.access"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", "personal_access_token"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "id_token_signing_alg_values_supported": ["RS512"],
        "frontchannel_logout_supported": true,
        "a_field_this_sdk_does_not_know": {"nested": [1, 2]}
    }"#;
    let server = Server::json(200, document).await;
    let config = server.client.get_openid_configuration().await.unwrap().into_inner();
    let seen = server.only_request();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.path, "/.well-known/openid-configuration");
    assert!(seen.headers.get("api-version").is_none());
    assert_eq!(config.issuer, "https://identity.filevine.io");
    assert_eq!(config.token_endpoint, "https://identity.filevine.io/connect/token");
    assert_eq!(config.end_session_endpoint.as_deref(), Some("https://identity.filevine.io/connect/endsession"));
    assert_eq!(config.code_challenge_methods_supported, ["plain", "S256"]);
    assert_eq!(config.id_token_signing_alg_values_supported, ["RS512"]);
    assert_eq!(config.frontchannel_logout_supported, Some(true));
    assert!(config.token_endpoint_auth_methods_supported.is_empty());
}

#[tokio::test]
async fn discovery_errors_are_errors() {
    let server = Server::json(200, r#"{"issuer": "x"}"#).await;
    let err = server.client.get_openid_configuration().await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponsePayload(..)), "{err:?}");
    let server = Server::json(404, r#"{}"#).await;
    let err = server.client.get_openid_configuration().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
}

/// The [`ResponseTooLarge`] in an error's source chain, if any.
fn too_large(error: &Error<impl std::fmt::Debug>) -> Option<ResponseTooLarge> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<ResponseTooLarge>() {
            return Some(*found);
        }
        source = cause.source();
    }
    None
}

/// A token response padded with spaces to exactly `len` bytes.
fn padded_token_json(len: usize) -> String {
    format!("{TOKEN_JSON}{}", " ".repeat(len - TOKEN_JSON.len()))
}

#[tokio::test]
async fn response_bodies_are_bounded_for_every_operation() {
    // Exactly the limit is read and parsed.
    let server = Server::json(200, &padded_token_json(MAX_RESPONSE_BYTES)).await;
    let token = server.client.get_access_token(&pat_request()).await.unwrap().into_inner();
    assert_eq!(token.access_token.expose_secret(), "at-123");

    // One byte more is an error that says why, for a 200, a typed 400 and discovery.
    for status in [200, 400] {
        let server = Server::json(status, &padded_token_json(MAX_RESPONSE_BYTES + 1)).await;
        let err = server.client.get_access_token(&pat_request()).await.unwrap_err();
        assert!(matches!(err, Error::ResponseBodyError(_)), "{status}: {err:?}");
        assert_eq!(too_large(&err), Some(ResponseTooLarge { limit: MAX_RESPONSE_BYTES }), "{status}");
    }
    let server = Server::json(200, &format!("{{\"issuer\": \"{}\"}}", "x".repeat(MAX_RESPONSE_BYTES))).await;
    let err = server.client.get_openid_configuration().await.unwrap_err();
    assert_eq!(too_large(&err), Some(ResponseTooLarge { limit: MAX_RESPONSE_BYTES }), "{err:?}");
}

#[tokio::test]
async fn a_chunked_body_without_length_is_bounded_too() {
    // No Content-Length: the body arrives as a stream of 8 KiB chunks that
    // would never end; the client stops after the limit.
    let app = axum::Router::new().fallback(|| async {
        let chunks = futures_util::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 8192])));
        axum::response::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(axum::body::Body::from_stream(chunks))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new(&format!("http://{address}"));
    let err = client.get_access_token(&pat_request()).await.unwrap_err();
    assert_eq!(too_large(&err), Some(ResponseTooLarge { limit: MAX_RESPONSE_BYTES }), "{err:?}");
}

#[test]
fn every_form_body_round_trips_through_serde_urlencoded() {
    for request in [pat_request(), client_credentials_request(), authorization_code_request(), refresh_token_request()]
    {
        let encoded = serde_urlencoded::to_string(&request).unwrap();
        let decoded: TokenRequest = serde_urlencoded::from_str(&encoded).unwrap();
        assert_eq!(decoded, request, "{encoded}");
    }
    // The variant structs on their own too.
    let TokenRequest::PersonalAccessTokenRequest(pat) = pat_request() else { unreachable!() };
    let decoded: PersonalAccessTokenRequest =
        serde_urlencoded::from_str(&serde_urlencoded::to_string(&pat).unwrap()).unwrap();
    assert_eq!(decoded, pat);
    // The grant type on the wire selects the variant.
    let decoded: TokenRequest = serde_urlencoded::from_str("grant_type=refresh_token&refresh_token=r").unwrap();
    assert!(matches!(decoded, TokenRequest::RefreshTokenRequest(_)));
    assert!(serde_urlencoded::from_str::<TokenRequest>("grant_type=password&username=u").is_err());
}

#[test]
fn request_debug_never_shows_secrets() {
    for request in [pat_request(), client_credentials_request(), authorization_code_request(), refresh_token_request()]
    {
        let debug = format!("{request:?}");
        for secret in ["pat+/=&%", "sec ret", "s3cret", "code-xyz", "vvvvvvvv", "rt-1"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }
}

#[test]
fn servers_come_from_the_spec() {
    assert_eq!(filevine_identity::servers::US, "https://identity.filevine.io");
    assert_eq!(filevine_identity::servers::CANADA, "https://identity.filevineapp.ca");
    assert_eq!(filevine_identity::servers::ALL.len(), 2);
    assert_eq!(filevine_identity::servers::ALL[1].description, "Filevine Identity (Canada)");
}
