//! Calling the API gateway with the provider's tokens, against the test
//! server's gateway stub (it accepts only tokens the server issued).

use std::sync::Arc;

use filevine_identity_ext::api::{ApiError, BearerAuth, FilevineUser};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{ConfigError, Credentials, FilevineApi, PersonalAccessToken, Region, TokenProvider};

async fn setup() -> (TestServer, TokenProvider, FilevineApi) {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_api");
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_api").unwrap()))
        .build()
        .unwrap();
    let api = FilevineApi::new(provider.clone()).unwrap();
    (server, provider, api)
}

#[tokio::test]
async fn bearer_header_is_set_and_user_orgs_are_typed() {
    let (server, provider, api) = setup().await;
    let orgs = api.get_user_orgs_with_token().await.unwrap();
    assert_eq!(orgs.user.user_id.native, 1001);
    assert_eq!(orgs.orgs.iter().map(|o| o.org_id).collect::<Vec<_>>(), [42, 43]);
    assert_eq!(orgs.user.extra["username"], "test.user");
    assert_eq!(orgs.orgs[0].extra["name"], "Test Law Firm");
    let log = server.gateway_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/fv-app/v2/utils/GetUserOrgsWithToken");
    let token = provider.token().await.unwrap();
    assert_eq!(log[0].header("authorization"), Some(format!("Bearer {}", token.expose_secret()).as_str()));
    assert_eq!(log[0].header("x-fv-orgid"), None);
    // The recorded request's and the token's Debug name headers and
    // lifetimes, never the token.
    let shown = format!("{log:?} {token:?} {:?}", api.auth());
    assert!(shown.contains("authorization") && shown.contains("expires_in"), "{shown}");
    assert!(!shown.contains(token.expose_secret()), "{shown}");
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let (server, provider, api) = setup().await;
    let first = provider.token().await.unwrap();
    server.revoke_access_tokens();
    api.get_user_orgs_with_token().await.unwrap();
    assert_eq!(server.gateway_requests(), 2, "the 401, then the retry");
    assert_eq!(server.token_requests(), 2, "one refresh");
    assert!(!provider.token().await.unwrap().same_token(&first));
}

#[tokio::test]
async fn a_second_401_surfaces_as_an_error() {
    let (server, _provider, api) = setup().await;
    server.reject_next_gateway_requests(2);
    let err = api.get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized), "{err:?}");
    assert!(err.to_string().contains("even after a refresh"), "{err}");
    assert_eq!(server.gateway_requests(), 2, "exactly one retry");
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_for_one_token_share_one_refresh() {
    let (server, provider, api) = setup().await;
    provider.token().await.unwrap();
    server.revoke_access_tokens();
    let barrier = Arc::new(tokio::sync::Barrier::new(25));
    let calls: Vec<_> = (0..25)
        .map(|_| {
            let (api, barrier) = (api.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                api.get_user_orgs_with_token().await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(server.token_requests(), 2, "the first token and one shared refresh");
}

#[tokio::test]
async fn org_and_user_headers_per_client_and_per_request() {
    let (server, _provider, api) = setup().await;
    let orgs = api.get_user_orgs_with_token().await.unwrap();
    let as_me = api.with_user(orgs.as_user_in(42));
    let me: serde_json::Value =
        as_me.http().unwrap().get(as_me.url("/fv-app/v2/Users/Me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["orgId"], 42);
    assert_eq!(me["userId"], 1001);

    // A per-request extension wins over the client's user.
    let other: serde_json::Value = as_me
        .http()
        .unwrap()
        .get(as_me.url("/fv-app/v2/Users/Me"))
        .with_extension(FilevineUser { org_id: 43, user_id: 7 })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((other["orgId"].as_i64(), other["userId"].as_i64()), (Some(43), Some(7)));

    // Explicit headers win over both.
    let explicit: serde_json::Value = as_me
        .http()
        .unwrap()
        .get(as_me.url("/fv-app/v2/Users/Me"))
        .header("x-fv-orgid", "99")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((explicit["orgId"].as_i64(), explicit["userId"].as_i64()), (Some(99), Some(1001)));

    // Without a user the call is not user-scoped.
    let status = api.http().unwrap().get(api.url("/fv-app/v2/Users/Me")).send().await.unwrap().status();
    assert_eq!(status, 400);
    assert_eq!(server.gateway_log().last().unwrap().header("x-fv-userid"), None);
}

#[tokio::test]
async fn requests_whose_body_cannot_be_cloned_are_not_retried() {
    let (server, provider, api) = setup().await;
    provider.token().await.unwrap();
    server.revoke_access_tokens();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(b"{}".to_vec())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response =
        api.http().unwrap().post(api.url("/fv-app/v2/utils/GetUserOrgsWithToken")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 401, "returned as it is");
    assert_eq!(server.gateway_requests(), 1, "no retry");
}

#[tokio::test]
async fn gateway_url_comes_from_the_region() {
    let (server, _provider, api) = setup().await;
    assert_eq!(api.gateway_url(), format!("{}/gateway", server.url()));
    let build = |region: Region| {
        TokenProvider::builder()
            .env(|_| None)
            .region(region)
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new("p").unwrap()))
            .build()
            .unwrap()
    };
    assert_eq!(FilevineApi::new(build(Region::Us)).unwrap().gateway_url(), "https://api.filevine.io");
    assert_eq!(
        FilevineApi::new(build(Region::Canada)).unwrap().url("/fv-app/v2/x"),
        "https://api.filevineapp.ca/fv-app/v2/x"
    );
    let err = FilevineApi::new(build(Region::custom("https://id.example").unwrap())).unwrap_err();
    assert!(matches!(err, ConfigError::NoGateway { .. }), "{err}");
    assert!(err.to_string().contains("no API gateway URL"), "{err}");
}

#[tokio::test]
async fn token_failures_are_api_errors_and_nothing_leaks() {
    let server = TestServer::start().await.unwrap();
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new("SENTINELunknownpat12345").unwrap()))
        .build()
        .unwrap();
    let api = FilevineApi::new(provider).unwrap();
    let err = api.get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(err, ApiError::Token(_)), "{err:?}");
    let shown = format!("{err} {err:?} {api:?} {:?}", BearerAuth::new(api.auth().provider().clone()));
    assert!(!shown.contains("SENTINEL"), "{shown}");
}

/// A gateway answering garbage, a 500 page or an unexpected shape: typed
/// errors naming what was wrong, with redacted excerpts.
#[tokio::test]
async fn bad_gateway_answers_are_typed_errors() {
    use axum::http::StatusCode;
    use axum::routing::post;
    let (_server, provider, _api) = setup().await;
    let app = axum::Router::new()
        .route("/garbage/fv-app/v2/utils/GetUserOrgsWithToken", post(|| async { (StatusCode::OK, "not json at all") }))
        .route(
            "/error/fv-app/v2/utils/GetUserOrgsWithToken",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "<h1>boom</h1> access_token=SENTINELleak123456789") }),
        )
        .route("/shape/fv-app/v2/utils/GetUserOrgsWithToken", post(|| async { (StatusCode::OK, r#"{"orgs":[]}"#) }))
        .route(
            "/huge/fv-app/v2/utils/GetUserOrgsWithToken",
            post(|| async { (StatusCode::OK, " ".repeat(filevine_identity_ext::api::MAX_API_BODY + 1)) }),
        )
        .route(
            // 401 without a bearer token: a custom gateway gets the token.
            "/auth/fv-app/v2/utils/GetUserOrgsWithToken",
            post(|headers: axum::http::HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some(value) if value.starts_with("Bearer at_") => (StatusCode::OK, "authorized, not json"),
                    _ => (StatusCode::UNAUTHORIZED, ""),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let api =
        |prefix: &str| FilevineApi::with_gateway(provider.clone(), &format!("{base}/{prefix}"), crate::support::http());

    let err = api("garbage").get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(&err, ApiError::Decode { excerpt, .. } if excerpt == "not json at all"), "{err:?}");
    assert!(err.to_string().starts_with("unexpected response from the Filevine API"), "{err}");

    let err = api("error").get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(&err, ApiError::Status { status: 500, .. }), "{err:?}");
    assert!(!err.to_string().contains("SENTINEL"), "{err}");

    let err = api("shape").get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(&err, ApiError::Decode { reason, .. } if reason.starts_with("data error at line 1")), "{err:?}");

    // A body past the bound is refused, not buffered whole.
    let err = api("huge").get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(&err, ApiError::Decode { reason, .. } if reason.contains("larger than")), "{err:?}");

    // An explicit gateway is where the token goes.
    let err = api("auth").get_user_orgs_with_token().await.unwrap_err();
    assert!(matches!(&err, ApiError::Decode { excerpt, .. } if excerpt == "authorized, not json"), "{err:?}");
}

/// The bearer token goes only to the gateway's origin: an absolute URL to
/// another origin (here another server's gateway stub, on another port of
/// the same host) is sent without it, and its 401 refreshes nothing.
#[tokio::test]
async fn the_bearer_token_goes_only_to_the_gateway_origin() {
    let (server, provider, api) = setup().await;
    api.get_user_orgs_with_token().await.unwrap();
    assert_eq!(server.token_requests(), 1);
    let elsewhere = TestServer::start().await.unwrap();
    let foreign = format!("{}/gateway/fv-app/v2/Users/Me", elsewhere.url());
    let response = api.http().unwrap().get(&foreign).send().await.unwrap();
    assert_eq!(response.status(), 401, "the other server saw no token of its own");
    let log = elsewhere.gateway_log();
    assert_eq!(log.len(), 1, "sent once: its 401 is not retried");
    assert_eq!(log[0].header("authorization"), None, "no token to another origin");
    assert_eq!(server.token_requests(), 1, "a foreign 401 refreshes nothing");
    // Asked explicitly, BearerAuth refuses by name.
    let mut request = reqwest::Request::new(reqwest::Method::GET, foreign.parse().unwrap());
    let err = api.auth().authorize(&mut request).await.unwrap_err();
    assert!(
        matches!(err, filevine_identity_ext::Error::Config(ConfigError::NotGateway { ref origin, .. }) if *origin == elsewhere.url()),
        "{err}"
    );
    assert!(request.headers().get("authorization").is_none());
    // The gateway itself still gets it.
    let token = provider.token().await.unwrap();
    api.http().unwrap().get(api.url("/fv-app/v2/Users/Me")).send().await.unwrap();
    let authorization = server.gateway_log().last().unwrap().header("authorization").map(str::to_owned);
    assert_eq!(authorization, Some(format!("Bearer {}", token.expose_secret())));
}

fn invite() -> filevine_identity_ext::api::identity::CreateUserRequest {
    use filevine_identity_ext::api::identity::{CreateUserRequest, FilevineProductType};
    CreateUserRequest {
        tenant_id: "6f9619ff-8b86-d011-b42d-00c04fc964ff".parse().unwrap(),
        email: Some("ada@example.com".to_owned()),
        first_name: Some("Ada".to_owned()),
        last_name: "Lovelace".to_owned(),
        products: vec![FilevineProductType::Filevine, FilevineProductType::Vinesign],
        reference_object: None,
    }
}

/// Create User Invite end to end: through the generated client to the
/// region's gateway, with the token and the org and user headers of the
/// client's user; the stub validates them and the body, and answers the
/// new user's id.
#[tokio::test]
async fn a_user_is_invited_through_the_gateway_as_the_clients_user() {
    let (server, provider, api) = setup().await;
    let as_me = api.with_user(FilevineUser { org_id: 42, user_id: 1001 });
    let created = as_me.create_user_invite(&invite()).await.unwrap();
    assert_eq!(created.user_id.unwrap().to_string().len(), 36);
    let log = server.gateway_log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("POST", "/identity/user"));
    assert_eq!((log[0].header("x-fv-orgid"), log[0].header("x-fv-userid")), (Some("42"), Some("1001")));
    let token = provider.token().await.unwrap();
    assert_eq!(log[0].header("authorization"), Some(format!("Bearer {}", token.expose_secret()).as_str()));
    assert_eq!(
        server.user_invites(),
        [serde_json::json!({
            "tenantId": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "products": ["Filevine", "Vinesign"],
        })]
    );
}

/// Without a user nothing is sent; a 401 refreshes once and retries (a
/// second is `Unauthorized`); 400 and 403 are typed by status.
#[tokio::test]
async fn user_invite_failures_are_typed() {
    let (server, _provider, api) = setup().await;
    let err = api.create_user_invite(&invite()).await.unwrap_err();
    assert!(matches!(err, ApiError::UserRequired { call: "create_user_invite" }), "{err}");
    assert!(err.to_string().contains("with_user"), "{err}");
    assert_eq!(server.gateway_requests(), 0);

    let as_me = api.with_user(FilevineUser { org_id: 42, user_id: 1001 });
    server.reject_next_gateway_requests(1);
    as_me.create_user_invite(&invite()).await.unwrap();
    assert_eq!(server.gateway_requests(), 1 + 1, "the 401, then the retry");
    assert_eq!(server.token_requests(), 2, "one refresh");
    server.reject_next_gateway_requests(2);
    assert!(matches!(as_me.create_user_invite(&invite()).await.unwrap_err(), ApiError::Unauthorized));

    let mut no_products = invite();
    no_products.products.clear();
    let err = as_me.create_user_invite(&no_products).await.unwrap_err();
    assert!(matches!(err, ApiError::Status { status: 400, .. }), "{err}");
    server.forbid_user_invites(true);
    let err = as_me.create_user_invite(&invite()).await.unwrap_err();
    assert!(matches!(err, ApiError::Status { status: 403, .. }), "{err}");
    assert_eq!(server.user_invites().len(), 1, "only the accepted invite");
}
