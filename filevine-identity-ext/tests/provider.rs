//! The token provider against the loopback test server: every grant on the
//! wire, caching, soft and hard refresh, single flight, rotation, failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use filevine_identity::SecretString;
use filevine_identity::types::{TokenResponse, TokenResponseExpiresIn};
use filevine_identity_ext::test_server::{ExpiresIn, Failure, TestServer};
use filevine_identity_ext::{
    ClientId, ClientSecret, ConfigError, Credentials, Error, PersonalAccessToken, RefreshToken, Region, Scopes,
    TokenProvider, TokenProviderBuilder, TokenSet,
};

const PAT: &str = "fvpat_test_0001";
const CLIENT_ID: &str = "integration-1";
const CLIENT_SECRET: &str = "client-secret-0001";

async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server.add_client(CLIENT_ID, CLIENT_SECRET);
    server
}

/// A builder that reads no process environment.
fn builder(server: &TestServer) -> TokenProviderBuilder {
    TokenProvider::builder().env(|_| None).region(server.region())
}

fn pat() -> Credentials {
    Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap())
}

fn client() -> (ClientId, ClientSecret) {
    (ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap())
}

/// Waits until `condition` holds, polling; fails after 5 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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
    server.set_token_lifetime(Duration::from_secs(2));
    // What the authorization code flow returns, exchanged through the server.
    let code = server.issue_authorization_code(CLIENT_ID, "https://localhost:7059/signin-oidc", None);
    let response = filevine_identity::Client::new(server.url())
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
    let provider = builder(&server).token_set(set, id, Some(secret)).soft_window(Duration::ZERO).build().unwrap();

    // The seeded token is served without a request.
    assert!(provider.token().await.unwrap().same_token(&first));
    assert_eq!(server.grant_requests("refresh_token"), 0);
    // Past the hard margin (1 s of a 2 s token) the refresh token is used.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(server.grant_requests("refresh_token"), 1);
    assert!(server.is_valid_access_token(second.expose_secret()));
}

#[tokio::test]
async fn token_set_without_refresh_token_is_a_config_error() {
    let response = TokenResponse {
        access_token: SecretString::from("at"),
        token_type: "Bearer".into(),
        expires_in: Some(TokenResponseExpiresIn::Int64(60)),
        scope: None,
        refresh_token: None,
        id_token: None,
    };
    let set = TokenSet::from_response(response, Instant::now()).unwrap();
    let err = TokenProvider::builder().env(|_| None).token_set(set, client().0, None).build().unwrap_err();
    assert!(err.to_string().contains("no refresh token"), "{err}");
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
    server.set_token_lifetime(Duration::from_secs(2));
    let provider = builder(&server).credentials(pat()).soft_window(Duration::ZERO).build().unwrap();
    let first = provider.token().await.unwrap();
    // 2 s token: hard margin = min(60 s, 1 s). Before it: cached.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(provider.token().await.unwrap().same_token(&first));
    assert_eq!(server.token_requests(), 1);
    // Inside it: never handed out, a new one is fetched.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = provider.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert!(second.expires_in() > Duration::from_millis(1500));
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn soft_window_refreshes_in_the_background_while_serving_the_current_token() {
    let server = server().await;
    server.set_token_lifetime(Duration::from_secs(4));
    let provider = builder(&server)
        .credentials(pat())
        .hard_margin(Duration::from_secs(1))
        .soft_window(Duration::from_secs(10))
        .build()
        .unwrap();
    // 4 s token, 1 s margin: usable for 3 s; soft window min(10, 1.5) s, so
    // the refresh starts between 1.5 s and 2.25 s.
    let first = provider.token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2400)).await;
    server.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    let during = provider.token().await.unwrap();
    assert!(during.same_token(&first), "the current token is served during a soft refresh");
    assert!(started.elapsed() < Duration::from_millis(250), "the caller did not wait for the refresh");
    eventually("the soft refresh request", || server.token_requests() == 2).await;
    eventually("the refreshed token to be served", || {
        futures_now(provider.token()).is_some_and(|t| t.is_ok_and(|t| !t.same_token(&first)))
    })
    .await;
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
async fn one_thousand_concurrent_cold_callers_cause_one_request() {
    let server = server().await;
    server.set_delay(Duration::from_millis(200));
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let provider = provider.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                provider.token().await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    assert_eq!(server.token_requests(), 1, "exactly one request for 1,000 callers");
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
async fn stale_token_is_served_when_refresh_fails_until_it_expires() {
    let server = server().await;
    server.set_token_lifetime(Duration::from_secs(2));
    // One attempt per refresh, so one injected failure fails the refresh.
    let provider = builder(&server).credentials(pat()).soft_window(Duration::ZERO).max_attempts(1).build().unwrap();
    let first = provider.token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Inside the hard margin, not expired: the refresh fails, the cached token is served.
    server.fail_next(Failure::garbage(503, "<h1>Service Unavailable</h1>"));
    let served = provider.token().await.unwrap();
    assert!(served.same_token(&first));
    assert_eq!(server.token_requests(), 2);
    // Expired: the error comes through.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(first.is_expired());
    server.fail_next(Failure::garbage(503, "<h1>Service Unavailable</h1>"));
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err:?}");
    // And when the server recovers, so does the provider.
    let recovered = provider.token().await.unwrap();
    assert!(!recovered.is_expired());
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
    eventually("the eager first fetch", || server.token_requests() == 1).await;
    let first = provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 1);
    // Before 2.25 s the background task refreshes, no call needed, and the
    // new token is served without waiting.
    eventually("the refreshed token to be served without waiting", || {
        futures_now(provider.token()).is_some_and(|t| t.is_ok_and(|t| !t.same_token(&first)))
    })
    .await;
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn background_task_ends_when_the_provider_drops() {
    let server = server().await;
    server.set_token_lifetime(Duration::from_secs(2));
    let provider = builder(&server).credentials(pat()).background_refresh(true).build().unwrap();
    eventually("the eager first fetch", || server.token_requests() == 1).await;
    drop(provider);
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

/// The deadline keeper runs on the runtime that stored the token. When that
/// runtime shuts down, calls fall back to reading the clock, so a token is
/// still never handed out inside its hard margin.
#[test]
fn tokens_stay_correct_after_the_storing_runtime_shuts_down() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = server_runtime.block_on(server());
    server.set_token_lifetime(Duration::from_secs(2));
    let provider = builder(&server).credentials(pat()).soft_window(Duration::ZERO).build().unwrap();

    let first_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = first_runtime.block_on(provider.token()).unwrap();
    drop(first_runtime); // the keeper dies with it

    let second_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    second_runtime.block_on(async {
        assert!(provider.token().await.unwrap().same_token(&first), "still usable: served from cache");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = provider.token().await.unwrap();
        assert!(!second.same_token(&first), "inside the hard margin: refreshed, not served");
    });
    assert_eq!(server.token_requests(), 2);
}

/// A token set stored before any runtime exists has no keeper; the clock
/// decides.
#[test]
fn a_token_set_stored_outside_a_runtime_is_checked_by_the_clock() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = runtime.block_on(server());
    server.add_refresh_token("rt-outside");
    let response = TokenResponse {
        access_token: SecretString::from("at-outside"),
        token_type: "Bearer".into(),
        expires_in: Some(TokenResponseExpiresIn::Int64(2)),
        scope: None,
        refresh_token: Some(SecretString::from("rt-outside")),
        id_token: None,
    };
    let set = TokenSet::from_response(response, Instant::now()).unwrap();
    let provider =
        builder(&server).token_set(set, client().0, Some(client().1)).soft_window(Duration::ZERO).build().unwrap();
    runtime.block_on(async {
        assert_eq!(provider.token().await.unwrap().expose_secret(), "at-outside");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_ne!(provider.token().await.unwrap().expose_secret(), "at-outside");
    });
    assert_eq!(server.grant_requests("refresh_token"), 1);
}

/// The first caller runs the refresh; if it gives up midway, the callers
/// waiting on it are not stranded: one of them runs the refresh again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_does_not_strand_the_waiters() {
    let server = server().await;
    server.set_delay(Duration::from_millis(400));
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let leader = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn({
                let p = provider.clone();
                async move { p.token().await }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    leader.abort();
    for waiter in waiters {
        waiter.await.unwrap().unwrap();
    }
    // The abandoned request reached the server, then one more for everyone.
    assert_eq!(server.token_requests(), 2);
}

/// A caller that times out waiting does not cancel the refresh for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_timing_out_leaves_the_refresh_to_the_others() {
    let server = server().await;
    server.set_delay(Duration::from_millis(300));
    let provider = builder(&server).credentials(pat()).build().unwrap();
    let impatient = tokio::time::timeout(Duration::from_millis(50), provider.token()).await;
    assert!(impatient.is_err());
    provider.token().await.unwrap();
    assert!(server.token_requests() <= 2);
}
