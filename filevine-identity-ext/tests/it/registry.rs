//! `TokenProviders`: one registry for many firms' credentials, bounded,
//! against the loopback test server. Each test starts its own server, so
//! the exchange counts are its own.

use std::sync::Arc;
use std::time::Duration;

use filevine_identity_ext::provider::{TokenProvider, TokenProviders};
use filevine_identity_ext::store::{MemoryStore, StoreKey};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::time::ManualTimeSource;
use filevine_identity_ext::{
    ClientId, ClientSecret, ConfigError, Credentials, PersonalAccessToken, RefreshToken, Scopes, TokenSet,
};
use tracing::Instrument as _;

use crate::support::Captured;

fn pat(n: usize) -> String {
    format!("fvpat_registry_firm_{n:04}")
}

fn credentials(n: usize) -> Credentials {
    Credentials::personal_access_token(PersonalAccessToken::new(pat(n)).unwrap())
}

async fn server_with_firms(firms: usize) -> TestServer {
    let server = TestServer::start().await.unwrap();
    for n in 0..firms {
        server.add_personal_access_token(&pat(n));
    }
    server
}

fn registry(server: &TestServer, max: usize) -> TokenProviders {
    let region = server.region();
    TokenProviders::builder()
        .template(move || TokenProvider::builder().env(|_| None).region(region.clone()))
        .max_providers(max)
        .build()
        .unwrap()
}

/// 1,000 firms through one registry: each PAT exchanged exactly once, and a
/// second round served from the cache with no exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_firms_each_exchange_once() {
    let server = server_with_firms(1_000).await;
    let providers = registry(&server, 1_000);
    let gateway = Scopes::gateway();
    for round in 0..2 {
        for n in 0..1_000 {
            let token = providers.token(&credentials(n), &gateway, &format!("firm-{n}")).await.unwrap();
            assert!(server.is_valid_access_token(token.expose_secret()), "round {round}, firm {n}");
        }
        assert_eq!(server.token_requests(), 1_000, "round {round}");
    }
    assert_eq!(providers.len(), 1_000);
}

/// A bound of 100: never more than 100 providers held; the 100 most recent
/// firms are warm, an evicted firm's next call makes exactly one exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_holds_and_evicts_the_least_recently_used() {
    let server = server_with_firms(1_000).await;
    let providers = registry(&server, 100);
    let gateway = Scopes::gateway();
    for n in 0..1_000 {
        providers.token(&credentials(n), &gateway, "firm").await.unwrap();
        assert!(providers.len() <= 100, "at firm {n}: {}", providers.len());
    }
    assert_eq!(providers.len(), 100);
    assert_eq!(server.token_requests(), 1_000);
    // Firms 900..1000 are held: no exchange.
    for n in 900..1_000 {
        providers.token(&credentials(n), &gateway, "firm").await.unwrap();
    }
    assert_eq!(server.token_requests(), 1_000);
    // Firm 0 was evicted long ago: one exchange, and it evicts firm 900
    // (the least recently used now), not a firm used since.
    providers.token(&credentials(0), &gateway, "firm").await.unwrap();
    assert_eq!(server.token_requests(), 1_001);
    providers.token(&credentials(999), &gateway, "firm").await.unwrap();
    assert_eq!(server.token_requests(), 1_001);
    providers.token(&credentials(900), &gateway, "firm").await.unwrap();
    assert_eq!(server.token_requests(), 1_002);
    assert_eq!(providers.len(), 100);
}

/// Fifty concurrent first calls for one firm: one provider, one exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_for_one_firm_make_one_exchange() {
    let server = server_with_firms(1).await;
    let providers = registry(&server, 10);
    let held = server.hold_token_responses();
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let providers = providers.clone();
            tokio::spawn(async move { providers.token(&credentials(0), &Scopes::gateway(), "firm-0").await })
        })
        .collect();
    server.wait_for_token_requests(1).await;
    drop(held);
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(server.token_requests(), 1);
    assert_eq!(providers.len(), 1);
}

/// Two scope sets for one PAT are two providers and two tokens: a token
/// granted for one set is never handed to a caller who asked for the other.
#[tokio::test]
async fn two_scope_sets_make_two_exchanges() {
    let server = server_with_firms(1).await;
    let providers = registry(&server, 10);
    let narrow: Scopes = "fv.api.gateway.access".parse().unwrap();
    let wide = Scopes::gateway();
    let a = providers.token(&credentials(0), &narrow, "firm-0").await.unwrap();
    let b = providers.token(&credentials(0), &wide, "firm-0").await.unwrap();
    assert_eq!(server.token_requests(), 2);
    assert_ne!(a.expose_secret(), b.expose_secret());
    assert_eq!(a.scopes(), &narrow);
    assert_eq!(b.scopes(), &wide);
    let forms: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.form.iter().find(|(k, _)| k == "scope").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(forms, ["fv.api.gateway.access", "filevine.v2.api.* fv.api.gateway.access"]);
    // Each again: from its own cache.
    assert!(providers.token(&credentials(0), &narrow, "firm-0").await.unwrap().same_token(&a));
    assert!(providers.token(&credentials(0), &wide, "firm-0").await.unwrap().same_token(&b));
    assert_eq!(server.token_requests(), 2);
}

/// Evicting a provider whose refresh is in flight does not cancel it: the
/// caller gets its token, and nothing is requested twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicting_never_cancels_a_refresh_in_flight() {
    let server = server_with_firms(2).await;
    let providers = registry(&server, 1);
    let held = server.hold_token_responses();
    let first = tokio::spawn({
        let providers = providers.clone();
        async move { providers.token(&credentials(0), &Scopes::gateway(), "firm-0").await }
    });
    server.wait_for_token_requests(1).await;
    // Firm 1's provider takes the only place: firm 0's is evicted.
    providers.provider(&credentials(1), &Scopes::gateway(), "firm-1").unwrap();
    assert_eq!(providers.len(), 1);
    drop(held);
    let token = first.await.unwrap().unwrap();
    assert!(server.is_valid_access_token(token.expose_secret()));
    assert_eq!(server.token_requests(), 1);
}

/// A provider unused for the idle timeout is dropped; read on the
/// registry's clock, so the test moves it instead of waiting.
#[tokio::test]
async fn idle_providers_are_dropped() {
    let server = server_with_firms(3).await;
    let region = server.region();
    let clock = ManualTimeSource::new();
    let providers = TokenProviders::builder()
        .template(move || TokenProvider::builder().env(|_| None).region(region.clone()))
        .idle_timeout(Duration::from_secs(600))
        .time_source(clock.clone())
        .build()
        .unwrap();
    let gateway = Scopes::gateway();
    providers.token(&credentials(0), &gateway, "a").await.unwrap();
    providers.token(&credentials(1), &gateway, "b").await.unwrap();
    clock.advance(Duration::from_secs(599));
    providers.token(&credentials(1), &gateway, "b").await.unwrap();
    assert_eq!((providers.evict_idle(), providers.len()), (0, 2));
    clock.advance(Duration::from_secs(1));
    // Firm 0 has been idle 600 s, firm 1 only 1 s.
    assert_eq!((providers.evict_idle(), providers.len()), (1, 1));
    // Dropped as it is seen, too: firm 1 after 600 s more makes a new
    // provider (and, with no store, a new exchange).
    clock.advance(Duration::from_secs(600));
    providers.token(&credentials(1), &gateway, "b").await.unwrap();
    assert_eq!(server.token_requests(), 3);
    assert_eq!(providers.len(), 1);
}

/// Two registries (two replicas) with one store share each firm's token:
/// one exchange for both.
#[tokio::test]
async fn registries_sharing_a_store_share_tokens() {
    let server = server_with_firms(1).await;
    let store = Arc::new(MemoryStore::new());
    let replica = || {
        let (region, store) = (server.region(), store.clone());
        TokenProviders::builder()
            .template(move || TokenProvider::builder().env(|_| None).region(region.clone()).store(store.clone()))
            .build()
            .unwrap()
    };
    let (one, two) = (replica(), replica());
    let a = one.token(&credentials(0), &Scopes::gateway(), "firm-0").await.unwrap();
    let b = two.token(&credentials(0), &Scopes::gateway(), "firm-0").await.unwrap();
    assert_eq!(a.expose_secret(), b.expose_secret());
    assert_eq!(server.token_requests(), 1);
}

/// Signed-in users' sessions by store key: one provider per session and
/// scope set, reading what a sign-in saved.
#[tokio::test]
async fn sessions_are_keyed_by_their_store_key() {
    let server = TestServer::start().await.unwrap();
    server.add_client("partner-app", "partner-secret");
    server.add_refresh_token("rt-alice");
    let store = Arc::new(MemoryStore::new());
    let (region, shared) = (server.region(), store.clone());
    let providers = TokenProviders::builder()
        .template(move || TokenProvider::builder().env(|_| None).region(region.clone()).store(shared.clone()))
        .build()
        .unwrap();
    let (id, secret) = (ClientId::new("partner-app").unwrap(), ClientSecret::new("partner-secret").unwrap());
    let alice = StoreKey::session("alice");
    // Nothing saved yet: NotStored, no request.
    let provider = providers.session(&alice, &id, Some(&secret), &Scopes::default(), "alice").unwrap();
    assert!(matches!(provider.token().await, Err(filevine_identity_ext::Error::NotStored { .. })));
    assert_eq!(server.token_requests(), 0);
    // A sign-in saves a token set under alice's key.
    let response = serde_json::from_value(serde_json::json!({
        "access_token": "at-alice", "token_type": "Bearer", "expires_in": 1200, "refresh_token": "rt-alice",
    }))
    .unwrap();
    let set = TokenSet::from_response(response, std::time::Instant::now()).unwrap();
    TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .token_set(set, id.clone(), Some(secret.clone()))
        .store(store)
        .store_key(alice.clone())
        .build_saved()
        .await
        .unwrap();
    let again = providers.session(&alice, &id, Some(&secret), &Scopes::default(), "alice").unwrap();
    assert_eq!(again.token().await.unwrap().expose_secret(), "at-alice");
    assert_eq!(providers.len(), 1, "the same provider");
    assert_eq!(server.token_requests(), 0);
}

#[test]
fn bad_configuration_is_a_typed_error() {
    let refresh = Credentials::refresh_token(RefreshToken::new("rt").unwrap());
    let providers = TokenProviders::builder().template(|| TokenProvider::builder().env(|_| None)).build().unwrap();
    let error = providers.provider(&refresh, &Scopes::gateway(), "firm").unwrap_err();
    assert!(matches!(error, ConfigError::RegistryCredentials), "{error}");
    assert!(error.to_string().contains("TokenProviders::session"), "{error}");
    let error = TokenProviders::builder().max_providers(0).build().unwrap_err();
    assert!(matches!(error, ConfigError::ZeroProviders), "{error}");
    let error = TokenProviders::builder().idle_timeout(Duration::ZERO).build().unwrap_err();
    assert!(matches!(error, ConfigError::ZeroDuration { setting: "idle_timeout" }), "{error}");
    // A template naming a bad region fails at build, by name.
    let error = TokenProviders::builder()
        .template(|| TokenProvider::builder().env(|name| (name == "FILEVINE_REGION").then(|| "mars".to_owned())))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("mars"), "{error}");
    // A template with a credential source would exchange the source's
    // credentials for every tenant while the key and label name the
    // tenant: refused at build.
    let error = TokenProviders::builder()
        .template(|| {
            TokenProvider::builder().env(|_| None).credential_source(
                filevine_identity_ext::grant::FileCredentials::personal_access_token("/run/secrets/pat"),
            )
        })
        .build()
        .unwrap_err();
    assert!(matches!(error, ConfigError::SourceWithCredentials { .. }), "{error}");
    assert!(error.to_string().contains("per-tenant credentials"), "{error}");
}

/// The caller's label is on the span around each refresh; the PAT is in no
/// log line and not in the registry's Debug.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_label_is_in_the_spans_and_the_credential_is_not() {
    let captured = Captured::global();
    let since = captured.mark();
    let server = server_with_firms(1).await;
    let providers = registry(&server, 10);
    providers
        .token(&credentials(0), &Scopes::gateway(), "firm-label-7731")
        .instrument(tracing::info_span!("registry_test", server = server.url()))
        .await
        .unwrap();
    let text = captured.text_since(since);
    let ours: Vec<&str> = text.lines().filter(|l| l.contains(server.url())).collect();
    assert!(
        ours.iter().any(|l| l.contains("tenant_token{tenant=\"firm-label-7731\"}") && l.contains("token_refresh")),
        "{ours:#?}"
    );
    assert!(!text.contains(&pat(0)), "the PAT is in the logs");
    let shown = format!("{providers:?}");
    assert!(!shown.contains(&pat(0)) && shown.contains("providers: 1"), "{shown}");
}

/// Each firm's refreshes are counted under its own `tenant` label (the
/// label is this test's own, so the counts are too); the credential is in
/// no metric.
#[tokio::test]
async fn metrics_carry_the_tenant_label() {
    let recorder = crate::support::metrics::TestRecorder::global();
    let server = server_with_firms(2).await;
    let providers = registry(&server, 10);
    let authority = format!("authority={}", server.url());
    let count = |tenant: &str, outcome: &str| {
        recorder.counter(
            "filevine_identity_refreshes_total",
            &[&authority, "grant=personal_access_token", &format!("tenant={tenant}"), &format!("outcome={outcome}")],
        )
    };
    providers.token(&credentials(0), &Scopes::gateway(), "metrics-firm-a").await.unwrap();
    let b = providers.provider(&credentials(1), &Scopes::gateway(), "metrics-firm-b").unwrap();
    b.token().await.unwrap();
    b.invalidate();
    b.token().await.unwrap();
    assert_eq!((count("metrics-firm-a", "ok"), count("metrics-firm-b", "ok")), (1, 2));
    // Firm a's PAT revoked: a rejected refresh under its label.
    server.revoke_personal_access_token(&pat(0));
    let a = providers.provider(&credentials(0), &Scopes::gateway(), "metrics-firm-a").unwrap();
    a.invalidate();
    a.token().await.unwrap_err();
    assert_eq!(count("metrics-firm-a", "rejected"), 1);
    assert_eq!(count("metrics-firm-b", "rejected"), 0);
}
