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
use filevine_identity::types::{
    DeviceAuthorizationRequest, DeviceCodeRequest, DeviceCodeRequestGrantType, IntrospectionRequest,
    IntrospectionResponseAud, PushedAuthorizationRequest, RevocationRequest,
};
use filevine_identity::{Client, ClientOptions, Error, MAX_RESPONSE_BYTES, ResponseTooLarge, SecretString, operations};

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

/// A scripted reply: status, JSON body, extra headers.
type Step = (u16, &'static str, Vec<(&'static str, &'static str)>);

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    reply: Option<Reply>,
    /// Replies (status, JSON body, extra headers) given before `reply`, first first.
    script: std::collections::VecDeque<Step>,
}

/// A loopback server that records requests and answers with a set reply.
struct Server {
    state: Arc<Mutex<State>>,
    base: String,
    client: Client,
}

impl Server {
    async fn start(reply: Reply) -> Self {
        let state = Arc::new(Mutex::new(State { seen: Vec::new(), reply: Some(reply), script: Default::default() }));
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
                if let Some((status, body, headers)) = state.script.pop_front() {
                    let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
                    for (name, value) in headers.into_iter().chain([("content-type", "application/json")]) {
                        response.headers_mut().insert(name, value.parse().unwrap());
                    }
                    return response;
                }
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
        let base = format!("http://{address}");
        Self { state, client: Client::new(&base, ClientOptions::new()), base }
    }

    /// A client of this server with `options`.
    fn client_with(&self, options: ClientOptions) -> Client {
        Client::new(&self.base, options)
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().seen.len()
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

fn invite_request() -> filevine_identity::types::CreateUserRequest {
    use filevine_identity::types::{CreateUserRequest, FilevineProductType};
    CreateUserRequest {
        tenant_id: "6f9619ff-8b86-d011-b42d-00c04fc964ff".parse().unwrap(),
        email: Some("ada@example.com".to_owned()),
        first_name: None,
        last_name: "Lovelace".to_owned(),
        products: vec![FilevineProductType::Filevine, FilevineProductType::ClientPortal],
        reference_object: Some("{'Org':[1234],'Projects':[9876,8765]}".to_owned()),
    }
}

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
        client_secret: Some(SecretString::from("s3cret")),
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

fn device_code_request() -> TokenRequest {
    DeviceCodeRequest {
        grant_type: DeviceCodeRequestGrantType::UrnIetfParamsOauthGrantTypeDeviceCode,
        device_code: SecretString::from("dc+1"),
        client_id: "client-1".to_owned(),
        client_secret: None,
    }
    .into()
}

/// One request of each grant, as the tests above build them.
fn every_token_request() -> [TokenRequest; 5] {
    [
        pat_request(),
        client_credentials_request(),
        authorization_code_request(),
        refresh_token_request(),
        device_code_request(),
    ]
}

fn device_authorization_request() -> DeviceAuthorizationRequest {
    DeviceAuthorizationRequest {
        client_id: "client-1".to_owned(),
        client_secret: None,
        scope: Some("openid offline_access".to_owned()),
    }
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
async fn device_code_form_body() {
    assert_wire(
        device_code_request(),
        "client_id=client-1&device_code=dc%2B1&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
        &[
            ("client_id", "client-1"),
            ("device_code", "dc+1"),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ],
    )
    .await;
}

#[tokio::test]
async fn device_authorization_is_a_form_post_and_its_answer_is_parsed() {
    let body = r#"{"device_code":"dc-9","user_code":"WDJB-MJHT","verification_uri":"https://id.example/device",
                   "verification_uri_complete":"https://id.example/device?user_code=WDJB-MJHT","expires_in":600,"interval":5}"#;
    let server = Server::json(200, body).await;
    let answer = server.client.authorize_device(&device_authorization_request()).await.unwrap().into_inner();
    let seen = server.only_request();
    assert_eq!((seen.method, seen.path.as_str()), (Method::POST, "/connect/deviceauthorization"));
    assert_eq!(seen.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(seen.body, "client_id=client-1&scope=openid+offline_access");
    assert_eq!((answer.user_code.as_str(), answer.expires_in, answer.interval), ("WDJB-MJHT", 600, Some(5)));
    assert!(!format!("{answer:?}").contains("dc-9"), "the device code is a secret");
    // Without the optional members, and a refusal as a typed error.
    let server =
        Server::json(200, r#"{"device_code":"d","user_code":"U","verification_uri":"https://x","expires_in":1}"#).await;
    let answer = server.client.authorize_device(&device_authorization_request()).await.unwrap().into_inner();
    assert_eq!((answer.interval, answer.verification_uri_complete), (None, None));
    let server = Server::json(401, r#"{"error":"invalid_client"}"#).await;
    match server.client.authorize_device(&device_authorization_request()).await {
        Err(Error::ErrorResponse(response)) => assert_eq!(response.error.as_deref(), Some("invalid_client")),
        other => panic!("{other:?}"),
    }
}

fn pushed_request() -> PushedAuthorizationRequest {
    PushedAuthorizationRequest {
        response_type: "code".to_owned(),
        client_id: "client-1".to_owned(),
        client_secret: None,
        redirect_uri: "https://app.example/cb".to_owned(),
        scope: "openid offline_access".to_owned(),
        state: SecretString::from("st-1"),
        nonce: Some(SecretString::from("n-1")),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        code_challenge_method: "S256".to_owned(),
        prompt: Some("consent".to_owned()),
        login_hint: None,
        max_age: None,
    }
}

#[tokio::test]
async fn a_pushed_authorization_request_is_a_form_post_and_its_201_is_parsed() {
    let server = Server::json(201, r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#).await;
    let answer = server.client.push_authorization_request(&pushed_request()).await.unwrap().into_inner();
    let seen = server.only_request();
    assert_eq!((seen.method, seen.path.as_str()), (Method::POST, "/connect/par"));
    assert_eq!(seen.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(
        seen.body,
        "client_id=client-1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
         &nonce=n-1&prompt=consent&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code\
         &scope=openid+offline_access&state=st-1"
    );
    assert_eq!((answer.request_uri.as_str(), answer.expires_in), ("urn:ietf:params:oauth:request_uri:abc", 60));
    assert!(!format!("{:?}", pushed_request()).contains("st-1"), "the state is kept out of Debug");
    // A refusal is the provider's typed error.
    let server = Server::json(400, r#"{"error":"invalid_request","error_description":"bad redirect_uri"}"#).await;
    match server.client.push_authorization_request(&pushed_request()).await {
        Err(Error::ErrorResponse(response)) => assert_eq!(response.error.as_deref(), Some("invalid_request")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn success_response_is_parsed_for_every_grant() {
    let body = r#"{"access_token":"at-9","token_type":"bearer","expires_in":3600,"scope":"openid offline_access",
                   "refresh_token":"rt-9","id_token":"eyJ.x.y","unknown_field":true}"#;
    for request in every_token_request() {
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

/// Calls the operation `id` once with valid arguments and credentials;
/// `Err` carries the error with its status, if any. A new operation in the
/// spec fails [`every_operation_has_a_wire_test`] until it is added here.
#[allow(clippy::result_large_err)]
async fn call(server: &Server, id: &str) -> Result<(), Error<String>> {
    let client = server.client_with(
        ClientOptions::new()
            .bearer(SecretString::from("at-123"))
            .basic("client-1", &SecretString::from("s3cret"))
            .gateway(server.base.parse().unwrap()),
    );
    #[allow(clippy::result_large_err)]
    fn erase<T, E: std::fmt::Debug>(result: Result<T, Error<E>>) -> Result<(), Error<String>> {
        result.map(drop).map_err(|e| match e {
            Error::ErrorResponse(response) => Error::Custom(format!("error response {}", response.status())),
            Error::ResponseBodyError(e) => Error::ResponseBodyError(e),
            Error::InvalidResponsePayload(body, e) => Error::InvalidResponsePayload(body, e),
            Error::CommunicationError(e) => Error::CommunicationError(e),
            other => Error::Custom(format!("{other:?}")),
        })
    }
    match id {
        "get_openid_configuration" => erase(client.get_openid_configuration().await),
        "get_jwks" => erase(client.get_jwks().await),
        "get_userinfo" => erase(client.get_userinfo().await),
        "get_access_token" => erase(client.get_access_token(&pat_request()).await),
        "revoke_token" => erase(client.revoke_token(&revocation_request()).await),
        "introspect_token" => erase(client.introspect_token(&introspection_request()).await),
        "authorize_device" => erase(client.authorize_device(&device_authorization_request()).await),
        "push_authorization_request" => erase(client.push_authorization_request(&pushed_request()).await),
        "create_user_invite" => erase(client.create_user_invite(7, 42, &invite_request()).await),
        other => panic!("no wire call for operation {other}: add it to `call` and a wire test for it"),
    }
}

#[test]
fn every_operation_has_a_wire_test() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for operation in operations::ALL {
        // `call` panics for an operation it does not know.
        runtime.block_on(async {
            let server = Server::json(500, "{}").await;
            let _ = call(&server, operation.id).await;
            let seen = server.only_request();
            assert_eq!(
                (seen.method.as_str(), seen.path.as_str()),
                (operation.method, operation.path),
                "{}",
                operation.id
            );
        });
    }
}

#[tokio::test]
async fn response_bodies_are_bounded_for_every_operation() {
    // Exactly the limit is read and parsed.
    let server = Server::json(200, &padded_token_json(MAX_RESPONSE_BYTES)).await;
    let token = server.client.get_access_token(&pat_request()).await.unwrap().into_inner();
    assert_eq!(token.access_token.expose_secret(), "at-123");

    // One byte more is an error that says why, for every operation, for a
    // 200 and for the error statuses the spec types.
    for operation in operations::ALL {
        for status in [200, 400, 401] {
            let server = Server::json(status, &padded_token_json(MAX_RESPONSE_BYTES + 1)).await;
            match call(&server, operation.id).await {
                Err(err @ Error::ResponseBodyError(_)) => {
                    assert_eq!(
                        too_large(&err),
                        Some(ResponseTooLarge { limit: MAX_RESPONSE_BYTES }),
                        "{}",
                        operation.id
                    )
                }
                // Statuses the operation does not type are handed back
                // unread (`UnexpectedResponse`) or without a body.
                Err(Error::Custom(message)) => assert!(message.contains(&status.to_string()), "{message}"),
                // A 200 without content (revocation): the body is never read.
                Ok(()) if operation.id == "revoke_token" && status == 200 => {}
                other => panic!("{} {status}: {other:?}", operation.id),
            }
        }
    }
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
    let client = Client::new(&format!("http://{address}"), ClientOptions::new());
    let err = client.get_access_token(&pat_request()).await.unwrap_err();
    assert_eq!(too_large(&err), Some(ResponseTooLarge { limit: MAX_RESPONSE_BYTES }), "{err:?}");
}

#[tokio::test]
async fn bytes_past_the_declared_length_are_never_read() {
    // The client hands a body with a `Content-Length` within the limit on
    // unwrapped, trusting hyper to read exactly that many bytes. A server
    // that declares a token response and then keeps sending (more than the
    // limit) must not make the client read on: the answer parses, and the
    // extra bytes are not part of it.
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0_u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{TOKEN_JSON}",
            TOKEN_JSON.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        let garbage = vec![b'x'; 8192];
        for _ in 0..(2 * MAX_RESPONSE_BYTES / garbage.len()) {
            if socket.write_all(&garbage).await.is_err() {
                break;
            }
        }
    });
    let client = Client::new(&format!("http://{address}"), ClientOptions::new());
    let token = client.get_access_token(&pat_request()).await.unwrap().into_inner();
    assert_eq!(token.access_token.expose_secret(), "at-123");
}

#[test]
fn every_form_body_round_trips_through_serde_urlencoded() {
    for request in every_token_request() {
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
    for request in every_token_request() {
        let debug = format!("{request:?}");
        for secret in ["pat+/=&%", "sec ret", "s3cret", "code-xyz", "vvvvvvvv", "rt-1", "dc+1"] {
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

fn revocation_request() -> RevocationRequest {
    RevocationRequest {
        token: SecretString::from("rt+/=1"),
        token_type_hint: Some("refresh_token".to_owned()),
        client_id: Some("client-1".to_owned()),
        client_secret: None,
    }
}

fn introspection_request() -> IntrospectionRequest {
    IntrospectionRequest {
        token: SecretString::from("at-123"),
        token_type_hint: Some("access_token".to_owned()),
        client_id: None,
        client_secret: None,
    }
}

const JWKS_JSON: &str = r#"{"keys": [
    {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS512", "n": "pGnL", "e": "AQAB"},
    {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"},
    {"x5c": ["not a key the SDK uses"]}
]}"#;

#[tokio::test]
async fn jwks_is_fetched_and_keys_keep_their_material() {
    let server = Server::json(200, JWKS_JSON).await;
    let set = server.client.get_jwks().await.unwrap().into_inner();
    let seen = server.only_request();
    assert_eq!((seen.method, seen.path.as_str()), (Method::GET, "/.well-known/openid-configuration/jwks"));
    assert!(seen.headers.get("authorization").is_none());
    assert_eq!(set.keys.len(), 3, "a key of another type, or with no type, does not spoil the set");
    assert_eq!(set.keys[0].kid.as_deref(), Some("k1"));
    assert_eq!(set.keys[0].use_.as_deref(), Some("sig"));
    assert_eq!(set.keys[0].extra["n"], "pGnL");
    assert_eq!(set.keys[2].kty, None);
    let server = Server::json(200, r#"{"keys": "none"}"#).await;
    assert!(matches!(server.client.get_jwks().await, Err(Error::InvalidResponsePayload(..))));
}

#[tokio::test]
async fn userinfo_sends_the_bearer_token_and_only_there() {
    let server = Server::json(200, r#"{"sub": "u1", "email": "a@b.c", "tenant": "t1"}"#).await;
    // No access token: refused before anything is sent.
    let err = server.client.get_userinfo().await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("get_userinfo") && m.contains("access token")),
        "{err:?}"
    );
    assert_eq!(server.requests(), 0);

    let client = server.client_with(ClientOptions::new().bearer(SecretString::from("at-123")));
    let info = client.get_userinfo().await.unwrap().into_inner();
    let seen = server.only_request();
    assert_eq!((seen.method, seen.path.as_str()), (Method::GET, "/connect/userinfo"));
    assert_eq!(seen.headers["authorization"], "Bearer at-123");
    assert!(seen.headers.get("api-version").is_none());
    assert_eq!((info.sub.as_str(), info.email.as_deref()), ("u1", Some("a@b.c")));
    assert_eq!(info.extra["tenant"], "t1");

    // The same client sends no bearer token to the other operations.
    for request in [
        client.get_jwks().await.map(drop).map_err(drop),
        client.get_openid_configuration().await.map(drop).map_err(drop),
        client.get_access_token(&pat_request()).await.map(drop).map_err(drop),
        client.revoke_token(&revocation_request()).await.map(drop).map_err(drop),
        client.introspect_token(&introspection_request()).await.map(drop).map_err(drop),
    ] {
        let _ = request;
    }
    let state = server.state.lock().unwrap();
    assert_eq!(state.seen.len(), 6);
    for seen in &state.seen[1..] {
        assert!(seen.headers.get("authorization").is_none(), "{} got a credential", seen.path);
    }
}

#[tokio::test]
async fn userinfo_errors_are_typed_by_status() {
    for status in [401, 403] {
        let server = Server::start(Reply { status, content_type: "text/plain", body: String::new() }).await;
        let client = server.client_with(ClientOptions::new().bearer(SecretString::from("at-123")));
        let err = client.get_userinfo().await.unwrap_err();
        assert!(matches!(&err, Error::ErrorResponse(r) if r.status().as_u16() == status), "{err:?}");
    }
    let server = Server::json(200, r#"{"email": "no sub"}"#).await;
    let client = server.client_with(ClientOptions::new().bearer(SecretString::from("at-123")));
    assert!(matches!(client.get_userinfo().await, Err(Error::InvalidResponsePayload(..))));
}

#[tokio::test]
async fn an_operation_can_be_pointed_at_a_discovered_url() {
    let server = Server::json(200, r#"{"sub": "u1"}"#).await;
    let discovered: url::Url = format!("{}/oauth2/v1/me", server.base).parse().unwrap();
    let client = server.client_with(
        ClientOptions::new().bearer(SecretString::from("at-123")).endpoint(&operations::GET_USERINFO, discovered),
    );
    client.get_userinfo().await.unwrap();
    assert_eq!(server.only_request().path, "/oauth2/v1/me");
}

#[tokio::test]
async fn revocation_form_and_client_authentication() {
    // Public client: the form names the client; no header.
    let server = Server::start(Reply { status: 200, content_type: "text/plain", body: String::new() }).await;
    server.client.revoke_token(&revocation_request()).await.unwrap();
    let seen = server.only_request();
    assert_eq!((seen.method, seen.path.as_str()), (Method::POST, "/connect/revocation"));
    assert_eq!(seen.headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(seen.body, "client_id=client-1&token=rt%2B%2F%3D1&token_type_hint=refresh_token");
    assert!(seen.headers.get("authorization").is_none());

    // client_secret_basic: the header, id and secret form-urlencoded first.
    let server = Server::start(Reply { status: 200, content_type: "text/plain", body: String::new() }).await;
    let client = server.client_with(ClientOptions::new().basic("client 1", &SecretString::from("s3:cret")));
    client.revoke_token(&RevocationRequest { client_id: None, ..revocation_request() }).await.unwrap();
    let seen = server.only_request();
    // base64("client+1:s3%3Acret")
    assert_eq!(seen.headers["authorization"], "Basic Y2xpZW50KzE6czMlM0FjcmV0");
    assert_eq!(seen.body, "token=rt%2B%2F%3D1&token_type_hint=refresh_token");

    for status in [400, 401] {
        let server = Server::json(status, r#"{"error": "invalid_client"}"#).await;
        let err = server.client.revoke_token(&revocation_request()).await.unwrap_err();
        let Error::ErrorResponse(body) = err else { panic!("{status}: {err:?}") };
        assert_eq!(body.error.as_deref(), Some("invalid_client"));
    }
    assert!(!format!("{:?}", revocation_request()).contains("rt+/=1"), "Debug redacts the token");
}

#[tokio::test]
async fn introspection_form_and_response() {
    let active = r#"{"active": true, "scope": "openid fv.api.gateway.access", "client_id": "c", "sub": "u1",
        "exp": 1900000000, "aud": ["api", "other"], "tenant": "t1"}"#;
    let server = Server::json(200, active).await;
    let client = server.client_with(ClientOptions::new().basic("rs", &SecretString::from("rs-secret")));
    let answer = client.introspect_token(&introspection_request()).await.unwrap().into_inner();
    let seen = server.only_request();
    assert_eq!((seen.method, seen.path.as_str()), (Method::POST, "/connect/introspect"));
    assert_eq!(seen.body, "token=at-123&token_type_hint=access_token");
    assert!(seen.headers["authorization"].to_str().unwrap().starts_with("Basic "));
    assert!(answer.active);
    assert_eq!(answer.exp, Some(1_900_000_000));
    assert_eq!(answer.aud, Some(IntrospectionResponseAud::Array(vec!["api".into(), "other".into()])));
    assert_eq!(answer.extra["tenant"], "t1");

    let server = Server::json(200, r#"{"active": false}"#).await;
    let answer = server.client.introspect_token(&introspection_request()).await.unwrap().into_inner();
    assert!(!answer.active && answer.sub.is_none());
    let server = Server::json(200, r#"{"active": false, "aud": "one"}"#).await;
    let answer = server.client.introspect_token(&introspection_request()).await.unwrap().into_inner();
    assert_eq!(answer.aud, Some(IntrospectionResponseAud::String("one".into())));
    let server = Server::json(200, r#"{"scope": "no active"}"#).await;
    assert!(matches!(
        server.client.introspect_token(&introspection_request()).await,
        Err(Error::InvalidResponsePayload(..))
    ));
}

/// Signs with a counter, so each attempt's signature is visibly new, and
/// records the nonces it is handed.
#[derive(Default)]
struct Signer {
    signed: std::sync::atomic::AtomicUsize,
    nonces: Mutex<Vec<String>>,
}

impl filevine_identity::ClientAssertion for Signer {
    fn assertion(&self) -> Result<SecretString, String> {
        let n = self.signed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(SecretString::from(format!("assertion-{n}")))
    }
}

impl filevine_identity::DpopProver for Signer {
    fn proof(&self, method: &str, url: &url::Url, _: Option<&SecretString>) -> Result<SecretString, String> {
        let n = self.signed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nonce = self.nonces.lock().unwrap().last().cloned().unwrap_or_default();
        Ok(SecretString::from(format!("proof-{n}-{method}-{}-{nonce}", url.path())))
    }

    fn nonce(&self, _: &url::Url, nonce: &str) {
        self.nonces.lock().unwrap().push(nonce.to_owned());
    }
}

#[tokio::test]
async fn a_use_dpop_nonce_challenge_is_answered_once_with_everything_signed_anew() {
    let server = Server::json(200, TOKEN_JSON).await;
    server.state.lock().unwrap().script.push_back((
        400,
        r#"{"error":"use_dpop_nonce","error_description":"nonce required"}"#,
        vec![("dpop-nonce", "n-1")],
    ));
    let signer = Arc::new(Signer::default());
    let options = ClientOptions::new().client_assertion(signer.clone()).dpop(signer.clone());
    let client = server.client_with(options);
    let response = client.get_access_token(&client_credentials_request()).await.unwrap();
    assert_eq!(response.into_inner().access_token.expose_secret(), "at-123");

    let seen = server.state.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 2, "one challenge, one repeat");
    let field = |seen: &Seen, name: &str| {
        url::form_urlencoded::parse(seen.body.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    };
    assert_eq!(field(&seen[0], "client_assertion").as_deref(), Some("assertion-0"));
    assert_eq!(seen[0].headers["dpop"], "proof-1-POST-/connect/token-");
    assert_eq!(field(&seen[1], "client_assertion").as_deref(), Some("assertion-2"), "a new jti, not a replay");
    assert_eq!(seen[1].headers["dpop"], "proof-3-POST-/connect/token-n-1", "the new proof carries the nonce");
    assert_eq!(
        seen[1].body.matches("client_assertion=").count(),
        1,
        "the first attempt's assertion is replaced: {}",
        seen[1].body
    );
}

#[tokio::test]
async fn other_errors_are_never_repeated_even_with_a_nonce() {
    let server = Server::json(200, TOKEN_JSON).await;
    server.state.lock().unwrap().script.push_back((
        400,
        r#"{"error":"invalid_grant","error_description":"used refresh token"}"#,
        vec![("dpop-nonce", "n-2")],
    ));
    let signer = Arc::new(Signer::default());
    let client = server.client_with(ClientOptions::new().dpop(signer.clone()));
    let error = client.get_access_token(&refresh_token_request()).await.unwrap_err();
    match error {
        Error::ErrorResponse(response) => assert_eq!(response.status().as_u16(), 400),
        other => panic!("expected the server's error, got {other:?}"),
    }
    assert_eq!(server.requests(), 1, "a refresh token is never sent twice");
    assert_eq!(*signer.nonces.lock().unwrap(), ["n-2"], "the nonce is remembered all the same");
}

#[tokio::test]
async fn a_resource_servers_nonce_challenge_on_userinfo_is_answered_once() {
    let server = Server::json(200, r#"{"sub":"u-1"}"#).await;
    server.state.lock().unwrap().script.push_back((
        401,
        "",
        vec![("dpop-nonce", "r-1"), ("www-authenticate", r#"DPoP error="use_dpop_nonce", algs="ES256""#)],
    ));
    let signer = Arc::new(Signer::default());
    let client = server.client_with(ClientOptions::new().dpop_token("bound-at".into()).dpop(signer));
    let info = client.get_userinfo().await.unwrap().into_inner();
    assert_eq!(info.sub, "u-1");
    let seen = server.state.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["authorization"], "DPoP bound-at");
    assert_eq!(seen[1].headers["dpop"], "proof-1-GET-/connect/userinfo-r-1");
}

/// `POST /identity/user` is served by the API gateway: the client sends it
/// to the gateway URL of its options (not its base URL), with the bearer
/// token, the org and user headers and the JSON body; the answer's
/// `userId` is a UUID. Without a gateway URL nothing is sent.
#[tokio::test]
async fn a_user_invite_goes_to_the_gateway_with_its_headers_and_body() {
    let identity = Server::json(500, "{}").await;
    let gateway = Server::json(200, r#"{"userId":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#).await;
    let client = identity.client_with(
        ClientOptions::new()
            .bearer(SecretString::from("at-123"))
            .gateway(format!("{}/", gateway.base).parse().unwrap()),
    );
    let created = client.create_user_invite(7, 42, &invite_request()).await.unwrap().into_inner();
    assert_eq!(created.user_id.unwrap().to_string(), "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(identity.requests(), 0, "nothing went to the identity host");
    let seen = gateway.only_request();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/identity/user"));
    let header = |name: &str| seen.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("authorization").as_deref(), Some("Bearer at-123"));
    assert_eq!((header("x-fv-orgid").as_deref(), header("x-fv-userid").as_deref()), (Some("7"), Some("42")));
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "tenantId": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
            "email": "ada@example.com",
            "lastName": "Lovelace",
            "products": ["Filevine", "ClientPortal"],
            "referenceObject": "{'Org':[1234],'Projects':[9876,8765]}",
        })
    );

    // No gateway URL: refused before anything is sent.
    let client = identity.client_with(ClientOptions::new().bearer(SecretString::from("at-123")));
    match client.create_user_invite(7, 42, &invite_request()).await {
        Err(Error::InvalidRequest(message)) => assert!(message.contains("served by the API gateway"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(identity.requests(), 0);
    // The statuses the reference lists are typed errors.
    for status in [400, 401, 403] {
        let gateway = Server::json(status, "{}").await;
        let client = identity.client_with(
            ClientOptions::new().bearer(SecretString::from("at-123")).gateway(gateway.base.parse().unwrap()),
        );
        match client.create_user_invite(7, 42, &invite_request()).await {
            Err(Error::ErrorResponse(response)) => assert_eq!(response.status().as_u16(), status),
            other => panic!("{status}: {other:?}"),
        }
    }
}
