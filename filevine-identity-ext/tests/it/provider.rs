//! The token provider against the loopback test server: every grant on the
//! wire, caching, soft and hard refresh, single flight, rotation, failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use filevine_identity::SecretString;
use filevine_identity::types::TokenResponse;
use filevine_identity_ext::provider::TokenProviderBuilder;
use filevine_identity_ext::test_util::{ExpiresIn, Failure, TestServer};
use filevine_identity_ext::time::ManualTimeSource;
use filevine_identity_ext::{
    ClientId, ClientSecret, ConfigError, Credentials, Error, PersonalAccessToken, RefreshToken, Region, Scopes,
    TokenProvider, TokenSet,
};

const PAT: &str = "fvpat_test_0001";
const CLIENT_ID: &str = "integration-1";
const CLIENT_SECRET: &str = "client-secret-0001";

async fn server() -> TestServer {
    crate::support::identity::server_with(PAT, Some((CLIENT_ID, CLIENT_SECRET))).await
}

/// A builder that reads no process environment.
use crate::support::identity::builder;

fn pat() -> Credentials {
    crate::support::identity::pat(PAT)
}

fn client() -> (ClientId, ClientSecret) {
    (ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap())
}

/// A builder on a manual clock with fixed jitter, so deadlines are exact.
/// With the server's default 1200 s tokens, the 60 s hard margin and the
/// 300 s soft window, a token is fresh until [`SOFT`], served while a
/// refresh runs until [`STALE`], and never handed out after that.
fn timed(server: &TestServer) -> (TokenProviderBuilder, ManualTimeSource) {
    let clock = ManualTimeSource::new();
    (builder(server).time_source(clock.clone()).fixed_jitter(0.0), clock)
}

/// Past the refresh time (1200 − 60 − 300/2 s, jitter 0).
const SOFT: Duration = Duration::from_secs(1000);
/// Past the hard margin (1200 − 60 s).
const STALE: Duration = Duration::from_secs(1140);

#[tokio::test]
async fn pat_with_client_on_the_wire() {
    let server = server().await;
    let (id, secret) = client();
    let provider = builder(&server).credentials(pat().with_client(id, secret)).build().unwrap();
    let token = provider.token().await.unwrap();
    assert!(server.is_valid_access_token(token.expose_secret()));
    let request = &server.requests()[0];
    assert_eq!(
        request.form,
        [
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "personal_access_token"),
            ("scope", "filevine.v2.api.* fv.api.gateway.access"),
            ("token", PAT),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("api-version"), None);
    assert!(request.header("user-agent").unwrap().starts_with("filevine-identity-rs/"));
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.scopes(), &Scopes::gateway());
    assert!(token.expires_in() > Duration::from_secs(1190));
}

#[tokio::test]
async fn pat_alone_sends_no_client_fields_and_explicit_scopes() {
    let server = server().await;
    let scopes: Scopes = "fv.api.gateway.access filevine.v2.api.* email openid tenant".parse().unwrap();
    let provider = builder(&server).credentials(pat()).scopes(scopes.clone()).build().unwrap();
    provider.token().await.unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.field("client_id"), None);
    assert_eq!(request.field("client_secret"), None);
    assert_eq!(request.field("scope"), Some(scopes.to_string().as_str()));
}

#[tokio::test]
async fn client_credentials_on_the_wire() {
    let server = server().await;
    let (id, secret) = client();
    let provider = builder(&server).credentials(Credentials::client_credentials(id, secret)).build().unwrap();
    provider.token().await.unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.grant_type, "client_credentials");
    assert_eq!(request.field("client_id"), Some(CLIENT_ID));
    assert_eq!(request.field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(server.grant_requests("client_credentials"), 1);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_each_request_uses_the_latest() {
    let server = server().await;
    server.add_refresh_token("rt-initial");
    let (id, secret) = client();
    let credentials = Credentials::refresh_token(RefreshToken::new("rt-initial").unwrap()).with_client(id, secret);
    let provider = builder(&server).credentials(credentials).build().unwrap();
    for _ in 0..3 {
        provider.token().await.unwrap();
        provider.invalidate();
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].field("refresh_token"), Some("rt-initial"));
    // The server revokes each refresh token it rotates, so three successes
    // prove the provider sent the rotated token every time.
    let sent: Vec<&str> = requests.iter().map(|r| r.field("refresh_token").unwrap()).collect();
    assert_ne!(sent[1], sent[0]);
    assert_ne!(sent[2], sent[1]);
    assert!(requests.iter().all(|r| r.field("client_id") == Some(CLIENT_ID)));
    assert_eq!(requests[0].field("scope"), None, "a refresh asks for the original scopes");
}

#[tokio::test]
async fn invalid_grant_on_refresh_means_sign_in_again() {
    let server = server().await;
    let credentials = Credentials::refresh_token(RefreshToken::new("rt-unknown").unwrap());
    let provider = builder(&server).credentials(credentials).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::SignInRequired { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("must sign in again"), "{err}");
    assert!(err.to_string().contains("invalid_grant"), "{err}");
}

#[tokio::test]
async fn authorization_code_token_set_is_kept_fresh() {
    let server = server().await;
    // What the authorization code flow returns, exchanged through the server.
    let code = server.issue_authorization_code(CLIENT_ID, "https://localhost:7059/signin-oidc", None);
    let response = filevine_identity::Client::new(server.url(), filevine_identity::ClientOptions::new())
        .get_access_token(
            &filevine_identity::types::AuthorizationCodeRequest {
                grant_type: filevine_identity::types::AuthorizationCodeRequestGrantType::AuthorizationCode,
                code: SecretString::from(code),
                redirect_uri: "https://localhost:7059/signin-oidc".into(),
                client_id: CLIENT_ID.into(),
                client_secret: Some(SecretString::from(CLIENT_SECRET)),
                code_verifier: None,
            }
            .into(),
        )
        .await
        .unwrap()
        .into_inner();
    let set = TokenSet::from_response(response, Instant::now()).unwrap();
    let first = set.access_token.clone();
    let (id, secret) = client();
    let (builder, clock) = timed(&server);
    let provider = builder.token_set(set, id, Some(secret)).build().unwrap();

    // The seeded token is served without a request.
    assert!(provider.token().await.unwrap().same_token(&first));
    assert_eq!(server.grant_requests("refresh_token"), 0);
    // Past the hard margin the refresh token is used.
    clock.advance(STALE);
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.grant_requests("refresh_token"), 1);
    assert!(server.is_valid_access_token(second.expose_secret()));
}

#[tokio::test]
async fn token_set_without_refresh_token_is_a_config_error() {
    // Response types are #[non_exhaustive]: built the way the client gets them, from JSON.
    let response: TokenResponse =
        serde_json::from_value(serde_json::json!({"access_token": "at", "token_type": "Bearer", "expires_in": 60}))
            .unwrap();
    let set = TokenSet::from_response(response, Instant::now()).unwrap();
    let err = TokenProvider::builder().env(|_| None).token_set(set, client().0, None).build().unwrap_err();
    assert!(err.to_string().contains("no refresh token"), "{err}");
}

#[tokio::test]
async fn the_granted_scopes_are_the_servers_not_the_requested_ones() {
    let server = server().await;
    server.set_granted_scope("fv.api.gateway.access openid");
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(server.requests()[0].field("scope"), Some("filevine.v2.api.* fv.api.gateway.access"));
    assert_eq!(token.scopes().to_string(), "fv.api.gateway.access openid");
    assert!(!token.scopes().contains("filevine.v2.api.*"));
}

#[tokio::test]
async fn a_second_call_makes_no_request() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let first = provider.token().await.unwrap();
    let second = provider.token().await.unwrap();
    let from_clone = provider.clone().token().await.unwrap();
    assert!(first.same_token(&second) && first.same_token(&from_clone));
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn hard_margin_forces_a_waiting_refresh() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    let provider = builder.credentials(pat()).soft_window(Duration::ZERO).build().unwrap();
    let first = provider.token().await.unwrap();
    // Just before the hard margin: cached.
    clock.advance(STALE - Duration::from_secs(1));
    assert!(provider.token().await.unwrap().same_token(&first));
    assert_eq!(server.token_requests(), 1);
    // At it: never handed out, a new one is fetched while the caller waits.
    clock.advance(Duration::from_secs(1));
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.token_requests(), 2);
    // The new token counts from its own request.
    clock.advance(STALE - Duration::from_secs(1));
    assert!(provider.token().await.unwrap().same_token(&second));
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn soft_window_refreshes_in_the_background_while_serving_the_current_token() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    let provider = builder.credentials(pat()).build().unwrap();
    let first = provider.token().await.unwrap();
    clock.advance(SOFT - Duration::from_secs(11));
    assert!(futures_now(provider.token()).unwrap().unwrap().same_token(&first), "fresh: no refresh yet");
    assert_eq!(server.token_requests(), 1);

    clock.advance(Duration::from_secs(11));
    let held = server.hold_token_responses();
    // In the soft window: the current token, at once, and a refresh starts.
    let during = futures_now(provider.token()).expect("the caller does not wait for a soft refresh").unwrap();
    assert!(during.same_token(&first));
    server.wait_for_token_requests(2).await;
    // More calls while it runs: still the current token, no second refresh.
    for _ in 0..10 {
        assert!(futures_now(provider.token()).unwrap().unwrap().same_token(&first));
    }
    drop(held);
    provider.settled().await;
    let refreshed = futures_now(provider.token()).expect("the refreshed token is cached").unwrap();
    assert!(!refreshed.same_token(&first));
    assert_eq!(server.token_requests(), 2, "one soft refresh, however many calls");
}

/// Polls a future once: `Some` if it completes without waiting.
fn futures_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_cold_callers_cause_one_request() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    // Held until every caller has started waiting: all 10,000 find the cache
    // empty, none can be served by an early answer.
    let held = server.hold_token_responses();
    let barrier = Arc::new(tokio::sync::Barrier::new(10_001));
    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let provider = provider.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let mut call = std::pin::pin!(provider.token());
                // Make the first poll (which joins or starts the flight)
                // before reporting ready.
                let first = futures_now(call.as_mut());
                barrier.wait().await;
                match first {
                    Some(result) => result,
                    None => call.await,
                }
            })
        })
        .collect();
    barrier.wait().await;
    drop(held);
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    assert_eq!(server.token_requests(), 1, "exactly one request for 10,000 callers");
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])), "all got its result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_failure_too() {
    let server = server().await;
    server.set_delay(Duration::from_millis(100));
    server.fail_next(Failure::filevine_envelope(403, "Forbidden"));
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            tokio::spawn({
                let p = provider.clone();
                async move { p.token().await }
            })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Forbidden { status: 403, .. }), "{err:?}");
    }
    assert_eq!(server.token_requests(), 1);
    // Errors are not cached: the next call asks again (after a short backoff).
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn invalidate_forces_the_next_call_to_fetch() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let first = provider.token().await.unwrap();
    provider.invalidate();
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn invalidate_token_only_forgets_that_token() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let first = provider.token().await.unwrap();
    provider.invalidate_token(&first);
    let second = provider.token().await.unwrap();
    // A late 401 for the old token must not throw away the new one.
    provider.invalidate_token(&first);
    assert!(provider.token().await.unwrap().same_token(&second));
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn a_failed_refresh_serves_the_cached_token_until_the_hard_margin_never_after() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    // One attempt per refresh, so one injected failure fails the refresh.
    let provider = builder.credentials(pat()).max_attempts(1).build().unwrap();
    let first = provider.token().await.unwrap();
    // In the soft window the refresh fails: the cached token is still served.
    clock.advance(SOFT);
    server.fail_next(Failure::garbage(503, "<h1>Service Unavailable</h1>"));
    assert!(provider.token().await.unwrap().same_token(&first));
    provider.settled().await;
    assert_eq!(server.token_requests(), 2);
    // At the hard margin the token is not handed out: the error comes through.
    clock.advance(STALE - SOFT);
    let requests = server.token_requests();
    server.fail_next(Failure::garbage(503, "<h1>Service Unavailable</h1>"));
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err:?}");
    assert_eq!(server.token_requests(), requests + 1);
    // And when the server recovers, so does the provider.
    let recovered = provider.token().await.unwrap();
    assert!(!recovered.same_token(&first));
    assert_eq!(server.token_requests(), requests + 2);
}

#[tokio::test]
async fn background_refresh_keeps_the_hot_path_off_the_network() {
    let server = server().await;
    server.set_token_lifetime(Duration::from_secs(4));
    let provider = builder(&server)
        .credentials(pat())
        .hard_margin(Duration::from_secs(1))
        .soft_window(Duration::from_secs(10))
        .background_refresh(true)
        .build()
        .unwrap();
    // The first token is fetched eagerly, without a call.
    server.wait_for_token_requests(1).await;
    provider.settled().await;
    let first = futures_now(provider.token()).expect("fetched ahead of the first call").unwrap();
    assert_eq!(server.token_requests(), 1);
    // The timer refreshes before 2.25 s, with no call, and the new token is
    // served without waiting.
    server.wait_for_token_requests(2).await;
    provider.settled().await;
    let second = futures_now(provider.token()).expect("refreshed ahead of the call").unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn background_task_ends_when_the_provider_drops() {
    let server = server().await;
    server.set_token_lifetime(Duration::from_secs(2));
    let provider = builder(&server).credentials(pat()).background_refresh(true).build().unwrap();
    server.wait_for_token_requests(1).await;
    provider.settled().await;
    drop(provider);
    // Asserting that nothing happens takes time passing: past the 2 s
    // token's whole life, a live timer would have refreshed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.token_requests(), 1, "no refresh after the provider is gone");
}

#[tokio::test]
async fn expires_in_edge_cases() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();

    server.set_expires_in(ExpiresIn::Text("1200".into()));
    let token = provider.token().await.unwrap();
    assert!(token.expires_in() > Duration::from_secs(1190));

    provider.invalidate();
    server.set_expires_in(ExpiresIn::Missing);
    let token = provider.token().await.unwrap();
    assert!(token.expires_in() <= Duration::from_secs(300) && token.expires_in() > Duration::from_secs(290));

    provider.invalidate();
    server.set_expires_in(ExpiresIn::Seconds(10_i64.pow(12)));
    let token = provider.token().await.unwrap();
    assert!(token.expires_in() <= Duration::from_secs(86_400));

    for bad in [ExpiresIn::Seconds(0), ExpiresIn::Seconds(-30), ExpiresIn::Text("soon".into())] {
        provider.invalidate();
        server.set_expires_in(bad.clone());
        let err = provider.token().await.unwrap_err();
        assert!(matches!(err, Error::MalformedResponse { status: Some(200), .. }), "{bad:?}: {err:?}");
        assert!(err.to_string().contains("expires_in"), "{err}");
    }
}

#[tokio::test]
async fn rejected_credentials_are_typed_errors() {
    let server = server().await;
    let wrong = Credentials::personal_access_token(PersonalAccessToken::new("fvpat_wrong").unwrap());
    let provider = builder(&server).credentials(wrong).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(&err, Error::InvalidCredentials { status: 400, details } if details.messages == ["Invalid PAT"]));
    assert!(err.to_string().contains("check the personal access token"), "{err}");

    let bad_client = Credentials::client_credentials(ClientId::new("nobody").unwrap(), ClientSecret::new("x").unwrap());
    let provider = builder(&server).credentials(bad_client).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidCredentials { details, .. } if details.code.as_deref() == Some("invalid_client"))
    );
    // What to check is what the provider named: the client, not a PAT.
    let shown = err.to_string();
    assert!(shown.ends_with("check the client id and its secret or key"), "{shown}");
}

#[tokio::test]
async fn unreachable_server_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(Region::custom(&url).unwrap())
        .credentials(pat())
        .build()
        .unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(err.to_string().contains("could not reach the identity provider"), "{err}");
}

#[tokio::test]
async fn configuration_from_the_environment() {
    let server = server().await;
    let url = server.url().to_owned();
    let provider = TokenProvider::builder()
        .env(move |name| match name {
            "FILEVINE_PAT" => Some(PAT.into()),
            "FILEVINE_CLIENT_ID" => Some(CLIENT_ID.into()),
            "FILEVINE_CLIENT_SECRET" => Some(CLIENT_SECRET.into()),
            "FILEVINE_SCOPES" => Some("fv.api.gateway.access openid".into()),
            "FILEVINE_AUTHORITY" => Some(url.clone()),
            _ => None,
        })
        .build()
        .unwrap();
    provider.token().await.unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.field("scope"), Some("fv.api.gateway.access openid"));
    assert_eq!(request.field("client_id"), Some(CLIENT_ID));
}

#[test]
fn environment_errors_name_the_variable() {
    let build = |pairs: &'static [(&'static str, &'static str)]| {
        TokenProvider::builder()
            .env(move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
            .build()
            .unwrap_err()
    };
    let err = build(&[]);
    assert!(matches!(err, ConfigError::MissingVar { name: "FILEVINE_PAT", .. }), "{err}");
    let err = build(&[("FILEVINE_PAT", "p"), ("FILEVINE_SCOPES", "ok bad\"scope")]);
    assert!(err.to_string().starts_with("environment variable FILEVINE_SCOPES is malformed"), "{err}");
    let err = build(&[("FILEVINE_PAT", "p"), ("FILEVINE_REGION", "eu")]);
    assert!(err.to_string().starts_with("invalid FILEVINE_REGION \"eu\""), "{err}");
    let err = build(&[("FILEVINE_PAT", "p"), ("FILEVINE_AUTHORITY", "http://example.com")]);
    assert!(err.to_string().contains("http:// is only allowed for loopback hosts"), "{err}");
}

#[test]
fn explicit_settings_win_over_the_environment() {
    let provider = TokenProvider::builder()
        .env(|name| (name == "FILEVINE_REGION").then(|| "mars".into()))
        .region(Region::Canada)
        .credentials(pat())
        .build()
        .unwrap();
    assert_eq!(provider.region(), &Region::Canada);
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_errors() {
    let server = server().await;
    let sentinel_pat = "SENTINEL-pat-5a5a";
    let sentinel_secret = "SENTINEL-secret-6b6b";
    server.add_personal_access_token(sentinel_pat);
    server.add_client(CLIENT_ID, sentinel_secret);
    let credentials = Credentials::personal_access_token(PersonalAccessToken::new(sentinel_pat).unwrap())
        .with_client(ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(sentinel_secret).unwrap());
    let builder_debug = format!("{:?}", builder(&server).credentials(credentials.clone()));
    let provider = builder(&server).credentials(credentials).build().unwrap();
    let token = provider.token().await.unwrap();
    let access = token.expose_secret().to_owned();
    // A response that echoes the token in a malformed body.
    server.fail_next(Failure::json(200, &format!(r#"{{"access_token":"{access}","token_type":5}}"#)));
    provider.invalidate();
    let err = provider.token().await.unwrap_err();
    let shown = [
        builder_debug,
        format!("{provider:?}"),
        format!("{token:?}"),
        format!("{:?}", token.authorization_header()),
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", server.requests()),
    ]
    .join("\n");
    for secret in [sentinel_pat, sentinel_secret, access.as_str()] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
}

/// The clock is checked on every call, whatever runtime stored the token and
/// whether it still runs: nothing depends on a timer.
#[test]
fn tokens_stay_correct_after_the_storing_runtime_shuts_down() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = server_runtime.block_on(server());
    let (builder, clock) = timed(&server);
    let provider = builder.credentials(pat()).soft_window(Duration::ZERO).build().unwrap();

    let first_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = first_runtime.block_on(provider.token()).unwrap();
    drop(first_runtime);

    let second_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    second_runtime.block_on(async {
        assert!(provider.token().await.unwrap().same_token(&first), "still usable: served from cache");
        clock.advance(STALE);
        let second = provider.token().await.unwrap();
        assert!(!second.same_token(&first), "at the hard margin: refreshed, not served");
    });
    assert_eq!(server.token_requests(), 2);
}

/// The reported case: a synchronous program calls `block_on(token())` on a
/// current-thread runtime after an idle gap longer than the token's life.
/// The runtime polls the call before it runs any timer; the clock check
/// alone must refuse the expired token.
#[test]
fn block_on_after_an_idle_gap_never_returns_the_expired_token() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = server_runtime.block_on(server());
    let (builder, clock) = timed(&server);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let provider = runtime.block_on(async { builder.credentials(pat()).build().unwrap() });
    let first = runtime.block_on(provider.token()).unwrap();
    clock.advance(Duration::from_secs(1201));
    let second = runtime.block_on(provider.token()).unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.token_requests(), 2);
}

/// A laptop that sleeps: the monotonic clock stops, the wall clock does not.
/// A token whose life ran out during the suspend is not handed out.
#[tokio::test]
async fn a_suspended_machine_does_not_get_the_expired_token() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    let provider = builder.credentials(pat()).build().unwrap();
    let first = provider.token().await.unwrap();
    clock.suspend(Duration::from_secs(3600));
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.token_requests(), 2);
}

/// A token's own `expires_in` and `is_expired` read the provider's clock:
/// a test moves it instead of sleeping, and a suspend counts. The same for
/// a token read back from a store.
#[tokio::test]
async fn a_tokens_expiry_reads_the_providers_clock() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    let store = Arc::new(filevine_identity_ext::store::MemoryStore::new());
    let provider = builder.credentials(pat()).store(store.clone()).build().unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(token.expires_in(), Duration::from_secs(1200));
    clock.advance(Duration::from_secs(200));
    assert_eq!(token.expires_in(), Duration::from_secs(1000));
    // A second provider on the same clock reads the stored token: it
    // expires at the same moment.
    let restored = self::builder(&server)
        .time_source(clock.clone())
        .credentials(pat())
        .store(store)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert_eq!(restored.expose_secret(), token.expose_secret());
    // The store keeps the expiry to the millisecond, rounded down.
    let stored_to_the_ms = |left: Duration| left.as_millis();
    assert_eq!(stored_to_the_ms(restored.expires_in() + Duration::from_millis(1)), 1_000_000);
    assert_eq!(restored.lifetime(), Duration::from_secs(1200));
    clock.suspend(Duration::from_secs(999));
    assert_eq!(token.expires_in(), Duration::from_secs(1));
    assert_eq!(stored_to_the_ms(restored.expires_in() + Duration::from_millis(1)), 1_000);
    assert!(!token.is_expired() && !restored.is_expired());
    clock.advance(Duration::from_secs(1));
    assert!(token.is_expired() && restored.is_expired());
    assert_eq!(server.token_requests(), 1);
}

/// The machine's wall clock is set back between one process storing a
/// token and another reading it: the second holds the token to the
/// monotonic deadline they share (one machine), not the longer life the
/// wall clock now shows, and refreshes when it passes. A provider on
/// another machine's clock has only the wall clock to go by.
#[tokio::test]
async fn a_wall_clock_set_back_does_not_lengthen_a_stored_token() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    let store = Arc::new(filevine_identity_ext::store::MemoryStore::new());
    let writer = builder.credentials(pat()).store(store.clone()).build().unwrap();
    let stored = writer.token().await.unwrap();
    clock.advance(Duration::from_secs(900));
    clock.set_back(Duration::from_secs(600));
    let reader = |clock: ManualTimeSource| {
        self::builder(&server).time_source(clock).fixed_jitter(0.0).credentials(pat()).store(store.clone()).build()
    };
    let same_machine = reader(clock.clone()).unwrap();
    let restored = same_machine.token().await.unwrap();
    assert_eq!(restored.expose_secret(), stored.expose_secret());
    assert_eq!(restored.expires_in(), Duration::from_secs(300), "the shared monotonic deadline, not 900 s");
    // Past the real expiry, the reader refreshes instead of handing out
    // the token its wall clock still shows 600 s of life in.
    clock.advance(Duration::from_secs(301));
    let refreshed = same_machine.token().await.unwrap();
    assert_ne!(refreshed.expose_secret(), stored.expose_secret());
    assert_eq!(server.token_requests(), 2);
    // A provider on another machine's clock goes by the wall clock alone.
    let other = reader(ManualTimeSource::new()).unwrap().token().await.unwrap();
    assert_eq!(other.expose_secret(), refreshed.expose_secret());
    assert_eq!(server.token_requests(), 2);
}

/// The runtime that would run any timer is blocked past the hard margin
/// while other threads keep calling: none of them gets the stale token.
#[test]
fn a_blocked_runtime_does_not_make_other_threads_serve_a_stale_token() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = server_runtime.block_on(server());
    let (builder, clock) = timed(&server);
    let blocked = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let provider = blocked.block_on(async { builder.credentials(pat()).background_refresh(true).build().unwrap() });
    let first = blocked.block_on(provider.token()).unwrap();
    // `blocked` is not driven from here on: its timers cannot fire.
    clock.advance(STALE);
    let callers = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tokens = callers.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.token().await })
            })
            .collect();
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(task.await.unwrap().unwrap());
        }
        tokens
    });
    assert!(tokens.iter().all(|t| !t.same_token(&first)), "nobody got the stale token");
    assert_eq!(server.token_requests(), 2);
}

/// A token set stored before any runtime exists: the clock decides.
#[test]
fn a_token_set_stored_outside_a_runtime_is_checked_by_the_clock() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = runtime.block_on(server());
    server.add_refresh_token("rt-outside");
    let (builder, clock) = timed(&server);
    let response: TokenResponse = serde_json::from_value(serde_json::json!({
        "access_token": "at-outside", "token_type": "Bearer", "expires_in": 1200, "refresh_token": "rt-outside",
    }))
    .unwrap();
    let set = TokenSet::from_response(response, Instant::now()).unwrap();
    let provider = builder.token_set(set, client().0, Some(client().1)).soft_window(Duration::ZERO).build().unwrap();
    runtime.block_on(async {
        assert_eq!(provider.token().await.unwrap().expose_secret(), "at-outside");
        clock.advance(STALE);
        assert_ne!(provider.token().await.unwrap().expose_secret(), "at-outside");
    });
    assert_eq!(server.grant_requests("refresh_token"), 1);
}

/// A caller that gives up while its refresh is in flight (dropped, aborted,
/// timed out) does not cancel the refresh: it completes, is stored, and
/// everyone else gets it. Exactly one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_first_caller_does_not_cancel_the_refresh() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let held = server.hold_token_responses();
    let leader = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    server.wait_for_token_requests(1).await;
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    drop(held);
    for waiter in waiters {
        waiter.await.unwrap().unwrap();
    }
    assert_eq!(server.token_requests(), 1);
}

/// The one caller of a refresh-token grant gives up while the server holds
/// the answer (which carries the rotated refresh token): the refresh runs
/// on in a task of its own, the rotated token is kept, and the next refresh
/// sends it. Two refresh grants in all, no token presented twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_caller_that_gives_up_never_loses_the_rotated_refresh_token() {
    let server = server().await;
    server.add_refresh_token("rt-initial");
    let (id, secret) = client();
    let credentials = Credentials::refresh_token(RefreshToken::new("rt-initial").unwrap()).with_client(id, secret);
    let provider = builder(&server).credentials(credentials).build().unwrap();
    let held = server.hold_token_responses();
    let caller = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    server.wait_for_token_requests(1).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled(), "the caller gave up before the answer");
    drop(held);
    provider.settled().await;
    provider.invalidate();
    provider.token().await.unwrap();
    let sent: Vec<String> = server.requests().iter().map(|r| r.field("refresh_token").unwrap().to_owned()).collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], "rt-initial");
    assert_ne!(sent[1], sent[0], "the second refresh sent the rotated token");
    assert_eq!(server.refresh_token_reuses(), 0);
}

/// Two callers of the same refresh (the one that started it runs it, the
/// one that joined handed it to a task) are dropped at the same moment:
/// the refresh still ends and is stored. One request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_dropped_together_leave_one_refresh_running() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let held = server.hold_token_responses();
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await })
        })
        .collect();
    server.wait_for_token_requests(1).await;
    for caller in &callers {
        caller.abort();
    }
    for caller in callers {
        assert!(caller.await.unwrap_err().is_cancelled());
    }
    drop(held);
    provider.settled().await;
    futures_now(provider.token()).expect("the abandoned refresh was stored").unwrap();
    assert_eq!(server.token_requests(), 1);
}

/// A caller on a thread with no Tokio runtime (another executor) gets its
/// token: the refresh runs in a task on the runtime the provider was built
/// in, not in the caller's poll.
#[test]
fn a_caller_outside_any_runtime_gets_a_token_from_the_providers_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = runtime.block_on(server());
    let provider = runtime.block_on(async { builder(&server).credentials(pat()).build().unwrap() });
    let token = std::thread::spawn({
        let provider = provider.clone();
        move || {
            assert!(tokio::runtime::Handle::try_current().is_err());
            park_on(provider.token())
        }
    })
    .join()
    .unwrap()
    .unwrap();
    assert!(!token.expose_secret().is_empty());
    assert_eq!(server.token_requests(), 1);
}

/// The smallest executor: polls `future` on this thread, parking between
/// polls until its waker is called.
fn park_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// The first caller polls the refresh itself; one that stops polling
/// (kept alive, never polled again) holds nobody up: the next caller drives
/// the same refresh. One request; both get the same token.
#[tokio::test]
async fn a_first_caller_that_stops_polling_holds_nobody_up() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let held = server.hold_token_responses();
    let mut stalled = Box::pin(provider.token());
    let first_poll = std::future::poll_fn(|cx| std::task::Poll::Ready(stalled.as_mut().poll(cx))).await;
    assert!(first_poll.is_pending());
    let (token, ()) = tokio::join!(provider.token(), async {
        server.wait_for_token_requests(1).await;
        drop(held);
    });
    let token = token.unwrap();
    assert_eq!(server.token_requests(), 1);
    assert!(stalled.await.unwrap().same_token(&token));
    assert_eq!(server.token_requests(), 1);
}

/// The first caller waits for the answer (its task idle, not polling) when
/// a second joins and moves the refresh to a task: the first is woken to
/// wait for the outcome instead of for a refresh it no longer holds, and
/// both get the same token. One request.
#[tokio::test]
async fn a_first_caller_waiting_when_its_refresh_moves_to_a_task_gets_the_token() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let held = server.hold_token_responses();
    let first = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    server.wait_for_token_requests(1).await;
    let mut joiner = Box::pin(provider.token());
    let joined = std::future::poll_fn(|cx| std::task::Poll::Ready(joiner.as_mut().poll(cx))).await;
    assert!(joined.is_pending(), "the second caller joined the refresh in flight");
    drop(held);
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("the first caller was woken when its refresh moved to a task")
        .unwrap()
        .unwrap();
    assert!(joiner.await.unwrap().same_token(&first));
    assert_eq!(server.token_requests(), 1);
}

/// A caller whose future is dropped after starting the refresh: the refresh
/// still completes and is stored, so the next call makes no request.
#[tokio::test]
async fn a_caller_timing_out_leaves_the_refresh_to_the_others() {
    let server = server().await;
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let held = server.hold_token_responses();
    let impatient = futures_now(provider.token());
    assert!(impatient.is_none(), "the first call waits for the server");
    server.wait_for_token_requests(1).await;
    drop(held);
    provider.settled().await;
    futures_now(provider.token()).expect("the abandoned refresh was stored").unwrap();
    assert_eq!(server.token_requests(), 1);
}

/// The next `save_ticks` compare-and-swaps take the manual clock `by`
/// forward before they answer: a save that takes longer than the token
/// lives (a stalled store, a process stopped mid-refresh).
struct SlowSaves {
    clock: ManualTimeSource,
    by: Duration,
    save_ticks: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl crate::support::hooked::Hook for SlowSaves {
    async fn compare_and_swap(
        &self,
        inner: &dyn filevine_identity_ext::store::TokenStore,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, filevine_identity_ext::store::StoreError> {
        let saved = inner.compare_and_swap(key, expected, value, ttl).await;
        let tick = self.save_ticks.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if tick.is_ok() {
            self.clock.advance(self.by);
        }
        saved
    }

    fn kind(&self) -> Option<&'static str> {
        Some("slow-saves")
    }
}

/// A refresh held past its token's life (found by the fault schedule: a
/// worker stopped, then a store that answered late): the token it brought
/// is never handed out expired; another refresh runs, and after three such
/// refreshes in a row `token()` gives up with a typed, retryable error.
#[tokio::test]
async fn a_token_that_expired_during_its_refresh_is_not_handed_out() {
    let server = server().await;
    let (builder, clock) = timed(&server);
    let slow = SlowSaves {
        clock: clock.clone(),
        by: Duration::from_secs(1201),
        save_ticks: std::sync::atomic::AtomicU32::new(1),
    };
    let store = std::sync::Arc::new(crate::support::hooked::Hooked::new(
        filevine_identity_ext::store::MemoryStore::new(),
        slow,
    ));
    let provider = builder.credentials(pat()).store(store.clone()).build().unwrap();
    let token = provider.token().await.unwrap();
    assert!(!token.is_expired());
    assert_eq!(token.expires_in(), Duration::from_secs(1200), "the second refresh's token");
    assert_eq!(server.token_requests(), 2, "the first refresh's token expired during its save");

    store.hook.save_ticks.store(3, std::sync::atomic::Ordering::SeqCst);
    provider.invalidate();
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, Error::ExpiredInFlight { flights: 3 }), "{error}");
    assert!(error.is_retryable());
    assert_eq!(server.token_requests(), 5);
}

/// A wrong port, or https:// against an http server: the error names the
/// host and port and keeps the OS's or TLS's words, once.
#[tokio::test]
async fn network_errors_keep_their_cause_and_place() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let server = server().await;
    let http_port = url::Url::parse(server.url()).unwrap().port().unwrap();
    for (authority, cause) in
        [(format!("http://127.0.0.1:{port}"), "refused"), (format!("https://127.0.0.1:{http_port}"), "corrupt message")]
    {
        let provider = TokenProvider::builder()
            .env(|_| None)
            .region(Region::custom(&authority).unwrap())
            .credentials(pat())
            .max_attempts(1)
            .build()
            .unwrap();
        let error = provider.token().await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Network { .. }), "{text}");
        let place = authority.trim_start_matches("http://").trim_start_matches("https://");
        assert!(text.contains(place), "{text}");
        assert!(text.to_ascii_lowercase().contains(cause), "{text}");
        assert_eq!(text.matches("check the network").count(), 1, "{text}");
    }
}
