//! The fault matrix: each injected failure ends in the expected success or
//! typed error, after the expected number of attempts (the server's counter).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use filevine_identity_ext::provider::{RetryPolicy, TokenProviderBuilder};
use filevine_identity_ext::test_util::{Failure, TestServer};
use filevine_identity_ext::{ConfigError, Credentials, Error, PersonalAccessToken, TokenProvider};

const PAT: &str = "fvpat_faults";

async fn server() -> TestServer {
    crate::support::identity::server_with(PAT, None).await
}

/// Fast retries so the matrix runs in seconds; three attempts as by default.
fn builder(server: &TestServer) -> TokenProviderBuilder {
    crate::support::identity::builder(server).credentials(crate::support::identity::pat(PAT)).retry_policy(
        RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        },
    )
}

const BAD_GATEWAY_HTML: &str =
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>";

#[tokio::test]
async fn three_503s_exhaust_the_attempts_then_the_next_call_succeeds() {
    let server = server().await;
    for _ in 0..3 {
        server.fail_next(Failure::garbage(503, "Service Unavailable"));
    }
    let provider = builder(&server).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(&err, Error::Server { status: 503, body } if body == "Service Unavailable"), "{err:?}");
    assert!(err.to_string().contains("usually temporary, retry later"), "{err}");
    assert_eq!(server.token_requests(), 3);
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 4);
}

#[tokio::test]
async fn two_503s_then_success_within_one_call() {
    let server = server().await;
    server.fail_next(Failure::garbage(503, "Service Unavailable"));
    server.fail_next(Failure::garbage(503, "Service Unavailable"));
    let provider = builder(&server).build().unwrap();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 3);
}

#[tokio::test]
async fn connection_dropped_mid_response_is_retried() {
    let server = server().await;
    server.fail_next(Failure::DropConnection);
    let provider = builder(&server).build().unwrap();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn dropped_every_time_is_a_network_error() {
    let server = server().await;
    for _ in 0..3 {
        server.fail_next(Failure::DropConnection);
    }
    let provider = builder(&server).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_eq!(server.token_requests(), 3);
}

#[tokio::test]
async fn a_response_slower_than_the_attempt_timeout_is_retried() {
    let server = server().await;
    server.fail_next(Failure::Delay(Duration::from_secs(2)));
    let provider = builder(&server).request_timeout(Duration::from_millis(300)).build().unwrap();
    let started = Instant::now();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
    assert!(started.elapsed() < Duration::from_secs(2), "the slow attempt was abandoned");
}

#[tokio::test]
async fn always_slow_is_a_timeout_error() {
    let server = server().await;
    server.set_delay(Duration::from_secs(2));
    let provider = builder(&server).request_timeout(Duration::from_millis(200)).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { after } if after == Duration::from_millis(200)), "{err:?}");
    assert!(err.to_string().contains("did not answer within 0.2 s"), "{err}");
    assert_eq!(server.token_requests(), 3);
}

#[tokio::test]
async fn the_whole_call_including_retries_is_bounded() {
    let server = server().await;
    server.set_delay(Duration::from_secs(3));
    let provider = builder(&server).total_timeout(Duration::from_millis(500)).build().unwrap();
    let started = Instant::now();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { after } if after == Duration::from_millis(500)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn html_502_pages_are_server_errors_with_a_short_excerpt() {
    let server = server().await;
    for _ in 0..3 {
        server.fail_next(Failure::garbage(502, BAD_GATEWAY_HTML));
    }
    let provider = builder(&server).build().unwrap();
    let err = provider.token().await.unwrap_err();
    let Error::Server { status: 502, body } = &err else { panic!("{err:?}") };
    assert!(body.contains("502 Bad Gateway") && body.chars().count() <= 201, "{body}");
    assert_eq!(server.token_requests(), 3);
}

#[tokio::test]
async fn truncated_json_is_a_malformed_response_and_not_retried() {
    let server = server().await;
    server.fail_next(Failure::json(200, r#"{"access_token":"at_trunc123456789012345","token_type":"Bea"#));
    let provider = builder(&server).build().unwrap();
    let err = provider.token().await.unwrap_err();
    let Error::MalformedResponse { excerpt, reason, .. } = &err else { panic!("{err:?}") };
    assert!(reason.contains("does not match the spec"), "{reason}");
    assert!(!excerpt.contains("at_trunc"), "{excerpt}");
    assert!(excerpt.contains("[REDACTED]"), "{excerpt}");
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn forbidden_envelope_is_not_retried() {
    let server = server().await;
    server.fail_next(Failure::filevine_envelope(403, "User is not allowed to use the API"));
    let provider = builder(&server).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden { status: 403, details } if details.messages == ["User is not allowed to use the API"]),
        "{err:?}"
    );
    assert!(err.to_string().contains("ask your Filevine administrator"), "{err}");
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn rejections_are_never_retried() {
    let server = server().await;
    let provider = builder(&server).build().unwrap();
    let cases = [
        (Failure::oauth_error(400, "invalid_client", Some("bad secret")), 400),
        (Failure::oauth_error(400, "unauthorized_client", None), 400),
        (Failure::oauth_error(400, "invalid_grant", None), 400),
        (Failure::json(401, r#"{"error":"invalid_client"}"#), 401),
        (Failure::garbage(401, ""), 401),
    ];
    for (count, (failure, status)) in cases.into_iter().enumerate() {
        server.fail_next(failure);
        let err = provider.token().await.unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials { status: s, .. } if s == status), "{err:?}");
        assert_eq!(server.token_requests(), count as u64 + 1, "{err}");
    }
}

#[tokio::test]
async fn rate_limited_waits_for_retry_after() {
    let server = server().await;
    server.fail_next(Failure::RateLimited { retry_after_secs: 1 });
    let provider = builder(&server).build().unwrap();
    let started = Instant::now();
    provider.token().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn rate_limited_beyond_the_bound_reports_the_wait() {
    let server = server().await;
    server.fail_next(Failure::RateLimited { retry_after_secs: 45 });
    let provider = builder(&server).total_timeout(Duration::from_secs(5)).build().unwrap();
    let err = provider.token().await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { status: 429, retry_after: Some(wait) } if wait == Duration::from_secs(45)),
        "{err:?}"
    );
    assert!(err.to_string().contains("retry after 45 s"), "{err}");
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_holds_across_retries() {
    let server = server().await;
    server.set_delay(Duration::from_millis(50));
    server.fail_next(Failure::garbage(503, "busy"));
    server.fail_next(Failure::DropConnection);
    let provider = builder(&server).build().unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (provider, barrier) = (provider.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                provider.token().await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.token_requests(), 3, "one logical refresh: 503, dropped, success");
}

#[test]
fn invalid_retry_settings_are_config_errors() {
    let err = TokenProvider::builder()
        .env(|_| None)
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .max_attempts(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_attempts must be at least 1"), "{err}");
}

#[test]
fn zero_durations_and_a_missing_runtime_are_named_errors() {
    let builder = || {
        TokenProvider::builder()
            .env(|_| None)
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
    };
    for (builder, setting) in [
        (builder().request_timeout(Duration::ZERO), "request_timeout"),
        (builder().connect_timeout(Duration::ZERO), "connect_timeout"),
        (builder().total_timeout(Duration::ZERO), "total_timeout"),
    ] {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, ConfigError::ZeroDuration { setting: s } if s == setting), "{err:?}");
        assert_eq!(err.to_string(), format!("{setting} must be longer than zero"));
    }
    // Outside any runtime: background refresh cannot be built, and a call
    // that needs a refresh has nowhere to run it.
    let err = builder().background_refresh(true).build().unwrap_err();
    assert_eq!(err, ConfigError::NoRuntime { feature: "background refresh" });
    assert!(err.to_string().contains("needs a Tokio runtime"), "{err}");
    let provider = builder().build().unwrap();
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut call = std::pin::pin!(provider.token());
    let std::task::Poll::Ready(Err(err)) = call.as_mut().poll(&mut context) else { panic!("an immediate error") };
    assert!(matches!(err, Error::NoRuntime), "{err:?}");
    assert!(err.to_string().contains("no Tokio runtime"), "{err}");
}

/// A redirect from the token endpoint is never followed: a 307/308 would
/// re-send the PAT (and any client secret) to the Location, here another
/// server that accepts the same PAT. Each status is an error naming the
/// redirect, not retried, and the other server sees nothing.
#[tokio::test]
async fn token_requests_never_follow_redirects() {
    let server = server().await;
    let elsewhere = TestServer::start().await.unwrap();
    elsewhere.add_personal_access_token(PAT);
    let target = format!("{}/connect/token", elsewhere.url());
    for (n, status) in [301u16, 302, 303, 307, 308].into_iter().enumerate() {
        server.fail_next(Failure::redirect(status, &target));
        let provider = builder(&server).build().unwrap();
        let err = provider.token().await.unwrap_err();
        assert!(
            matches!(err, Error::MalformedResponse { status: Some(s), ref reason, .. } if s == status && reason.contains("never follow")),
            "{status}: {err}"
        );
        assert!(!err.to_string().contains(PAT), "{err}");
        assert_eq!(server.token_requests(), n as u64 + 1, "{status}: not retried");
    }
    assert_eq!(elsewhere.token_requests(), 0, "the credentials went nowhere else");
}

#[tokio::test]
async fn an_oversized_token_response_is_refused_not_buffered() {
    let server = server().await;
    // A valid token response padded past the generated client's bound.
    let padding = " ".repeat(filevine_identity::MAX_RESPONSE_BYTES);
    let body = format!(r#"{{"access_token":"at-huge","token_type":"Bearer","expires_in":1200}}{padding}"#);
    for status in [200, 400] {
        server.fail_next(Failure::json(status, &body));
        let provider = builder(&server).build().unwrap();
        let err = provider.token().await.unwrap_err();
        assert!(
            matches!(&err, Error::MalformedResponse { reason, .. } if reason == "the response is larger than 65536 bytes"),
            "{status}: {err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("at-huge"), "{err:?}");
    }
    assert_eq!(server.token_requests(), 2, "not retried");
}
