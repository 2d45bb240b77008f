//! Spans and metrics: a refresh is a span (grant, outcome, duration) whose
//! parent is the span of the caller that started it, even when it outlives
//! that caller in a task of its own; sign-in, discovery, JWKS and store operations are spans
//! too; and the `metrics` feature counts refreshes, latency, served-stale
//! tokens, single-flight waiters and store lease waits. No secret in any
//! span field.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use filevine_identity_ext::oidc::{AuthorizationOptions, RedirectUrl};
use filevine_identity_ext::store::{MemoryStore, StoreError, TokenStore};
use filevine_identity_ext::test_util::{Failure, TestServer};
use filevine_identity_ext::time::ManualTimeSource;
use filevine_identity_ext::{ClientId, ClientSecret, Credentials, OidcClient, PersonalAccessToken, TokenProvider};
use tracing::Instrument as _;

use crate::support::Captured;
use crate::support::hooked::{Hook, Hooked};
use crate::support::metrics::TestRecorder;

const PAT: &str = "fvpat_observability_7c1d";

fn pat_provider(server: &TestServer) -> filevine_identity_ext::provider::TokenProviderBuilder {
    server.add_personal_access_token(PAT);
    TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .max_attempts(1)
}

/// This test's lines: the ones that name its server.
fn lines_about(text: &str, server: &TestServer) -> Vec<String> {
    text.lines().filter(|l| l.contains(server.url())).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_a_span_under_the_caller_with_its_outcome() {
    let captured = Captured::global();
    let since = captured.mark();
    let server = TestServer::start().await.unwrap();
    let provider = pat_provider(&server).build().unwrap();

    let token = provider.token().instrument(tracing::info_span!("handle_request", request_id = 4711)).await.unwrap();
    provider.invalidate();
    server.fail_next(Failure::filevine_envelope(403, "Forbidden"));
    provider.token().instrument(tracing::info_span!("handle_request", request_id = 4712)).await.unwrap_err();

    // The refresh's span closes when its task ends, a moment after the
    // caller has the answer: wait until both have closed.
    let is_close = |l: &String| l.contains("token_refresh{") && !l.contains(":token_request{") && l.contains(": close");
    let mut lines = lines_about(&captured.text_since(since), &server);
    while lines.iter().filter(|l| is_close(l)).count() < 2 {
        tokio::task::yield_now().await;
        lines = lines_about(&captured.text_since(since), &server);
    }
    let authority = format!("authority=\"{}\"", server.url());
    // The request event runs inside token_request inside token_refresh,
    // inside the caller's span, though the refresh is a spawned task.
    let nested = format!(
        "handle_request{{request_id=4711}}:token_refresh{{grant_type=\"personal_access_token\" {authority}}}:token_request{{attempt=1}}"
    );
    assert!(lines.iter().any(|l| l.contains(&nested) && l.contains("requesting an access token")), "{lines:#?}");
    // The span closes with its outcome and duration, once per refresh.
    let closed: Vec<&String> = lines.iter().filter(|l| is_close(l)).collect();
    assert_eq!(closed.len(), 2, "{closed:#?}");
    assert!(
        closed[0].contains("handle_request{request_id=4711}") && closed[0].contains("outcome=\"ok\""),
        "{closed:#?}"
    );
    assert!(closed[0].contains("duration_ms="), "{closed:#?}");
    assert!(closed[1].contains("handle_request{request_id=4712}") && closed[1].contains("outcome=\"forbidden\""));
    for line in &lines {
        assert!(!line.contains(PAT) && !line.contains(token.expose_secret()), "a secret in {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_discovery_jwks_and_store_operations_are_spans() {
    let captured = Captured::global();
    let since = captured.mark();
    let server = TestServer::start().await.unwrap();
    let callback = "http://127.0.0.1:7059/signin-oidc";
    server.add_sign_in_client("span-app", Some("span-secret"), &[callback], &[]);
    let client = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new("span-app").unwrap())
        .client_secret(ClientSecret::new("span-secret").unwrap())
        .redirect_uri(RedirectUrl::new(callback).unwrap())
        .env(|_| None)
        .build()
        .unwrap();
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let browser = crate::support::http_no_redirects();
    let answer = browser.get(request.url.clone()).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let signed_in = client.complete_sign_in(&location, request.pending).await.unwrap();

    let store = Arc::new(MemoryStore::new());
    let provider = pat_provider(&server).store(Arc::clone(&store)).build().unwrap();
    provider.token().await.unwrap();

    let text = captured.text_since(since);
    let issuer = format!("issuer={}", server.url());
    assert!(
        text.lines().any(|l| l.contains(&format!("discovery_fetch{{{issuer}}}")) && l.contains(": close")),
        "{text}"
    );
    let jwks = format!("jwks_fetch{{url={}/.well-known/openid-configuration/jwks}}", server.url());
    assert!(text.lines().any(|l| l.contains(&jwks) && l.contains(": close")), "{text}");
    assert!(
        text.lines().any(|l| l.contains("sign_in{client_id=\"span-app\" outcome=\"ok\"}") && l.contains(": close")),
        "{text}"
    );
    let key = provider.store_key().unwrap().to_string();
    for span in ["store_load", "store_save"] {
        let wanted = format!("{span}{{store=\"memory\" key={key}");
        assert!(text.lines().any(|l| l.contains(&wanted)), "{span}: {text}");
    }
    for secret in [PAT, "span-secret", signed_in.token_set.access_token.expose_secret()] {
        assert!(!text.contains(secret), "a secret in the spans");
    }
}

/// A lease refused the first `.0` times.
struct BusyLease(AtomicU32);

#[async_trait::async_trait]
impl Hook for BusyLease {
    async fn try_lease(
        &self,
        inner: &dyn TokenStore,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        if self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Ok(false);
        }
        inner.try_lease(key, owner, ttl).await
    }

    fn kind(&self) -> Option<&'static str> {
        Some("busy-memory")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_refreshes_waiters_stale_tokens_and_lease_waits() {
    let recorder = TestRecorder::global();
    let server = TestServer::start().await.unwrap();
    let clock = ManualTimeSource::new();
    // Fixed jitter: the 20-minute token is due for refresh at 990 s and
    // usable until 1140 s.
    let provider = pat_provider(&server).time_source(clock.clone()).fixed_jitter(0.0).build().unwrap();
    let authority = format!("authority={}", server.url());
    let grant = "grant=personal_access_token";
    let refreshes = |outcome: &str| {
        recorder.counter("filevine_identity_refreshes_total", &[&authority, grant, &format!("outcome={outcome}")])
    };

    // Five callers, one refresh: the first starts it, four wait for it.
    let held = server.hold_token_responses();
    let callers: Vec<_> = (0..5)
        .map(|_| {
            tokio::spawn({
                let provider = provider.clone();
                async move { provider.token().await.map(drop) }
            })
        })
        .collect();
    server.wait_for_token_requests(1).await;
    while recorder.counter("filevine_identity_refresh_waiters_total", &[&authority, grant]) < 4 {
        tokio::task::yield_now().await;
    }
    drop(held);
    for caller in callers {
        caller.await.unwrap().unwrap();
    }
    assert_eq!(server.token_requests(), 1);
    assert_eq!(recorder.counter("filevine_identity_refresh_waiters_total", &[&authority, grant]), 4);
    assert_eq!(refreshes("ok"), 1);
    assert_eq!(recorder.samples("filevine_identity_refresh_duration_seconds", &[&authority, grant]), 1);

    // In the soft window (1000 s): served from the cache while a refresh
    // starts; that refresh fails.
    server.fail_next(Failure::filevine_envelope(403, "Forbidden"));
    clock.advance(Duration::from_secs(1000));
    provider.token().await.unwrap();
    assert_eq!(recorder.counter("filevine_identity_served_stale_total", &[&authority, grant]), 1);
    server.wait_for_token_requests(2).await;
    while refreshes("forbidden") == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(refreshes("forbidden"), 1);
    assert_eq!(refreshes("ok"), 1);

    // A store whose lease another process holds for two tries.
    let busy = TestServer::start().await.unwrap();
    let store = Hooked::new(MemoryStore::new(), BusyLease(AtomicU32::new(2)));
    let provider = pat_provider(&busy).store(store).build().unwrap();
    provider.token().await.unwrap();
    let busy_authority = format!("authority={}", busy.url());
    assert_eq!(
        recorder.counter("filevine_identity_store_lease_waits_total", &[&busy_authority, "store=busy-memory"]),
        2
    );
    assert_eq!(busy.token_requests(), 1);
}
