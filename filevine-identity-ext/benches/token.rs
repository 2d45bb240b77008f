//! `cargo bench -p filevine-identity-ext --bench token`
//!
//! 1. `warm`: a cached `token()`, on one and on two threads at once, beside
//!    the floor of a sound check (an `Arc` clone plus the SDK's clock read),
//!    and hand-written caches that check expiry the usual way: a
//!    `tokio::sync::Mutex<Option<_>>` (its `lock()` polled like the SDK's
//!    future) and a `std::sync::RwLock<Option<_>>`, each with
//!    `Instant::now()`.
//! 2. `cold_start`: 1, 100 and 10,000 concurrent callers on an empty cache
//!    against the loopback test server; each iteration asserts that exactly
//!    one token request was made.
//! 3. `exchange`: one PAT exchange through the SDK beside a hand-written
//!    reqwest form POST of the same body to the same server with the same
//!    client settings: from `block_on` (a caller outside the runtime) and
//!    from a task on a runtime worker (`*_in_runtime`, 100 per sample),
//!    with the server on the same runtime or on one of its own
//!    (`*_server_apart`); and the hand-written exchange in a spawned task
//!    (what a hand-off to a task costs).
//! 4. `store`: warm `token()` and a refresh with no store, a memory store
//!    and a Redis store on each form: one node, a primary with a replica
//!    behind three Sentinels, a cluster of three primaries with a replica
//!    each (started for the run by the test suite's `support::redis`; the
//!    last two wait for a replica after each write), and a PostgreSQL store
//!    (a throwaway cluster from the test suite's `support::postgres`).
//! 5. `build`: `TokenProvider` and `OidcClient` builds (no I/O) beside
//!    building the HTTP client they make on their first request.
//! 6. `registry`: a warm firm's token through `TokenProviders` beside a
//!    provider held by hand and a hand-written map of providers.
//! 7. `dpop`: a warm `token()` of a bearer and of a DPoP-bound token, and
//!    a warm token plus its proof for one request (ES256), beside the same
//!    proof written by hand with `jsonwebtoken`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use divan::Bencher;
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{AccessToken, Credentials, PersonalAccessToken, TokenProvider};
use tokio::runtime::Runtime;

/// The test suite's Redis deployments (one node, Sentinel, Cluster).
#[allow(dead_code)]
#[path = "../tests/it/support/redis.rs"]
mod redis_support;

/// The test suite's throwaway PostgreSQL cluster.
#[allow(dead_code)]
#[path = "../tests/it/support/postgres.rs"]
mod postgres_support;

fn main() {
    divan::main();
}

const PAT: &str = "fvpat_bench";

/// One runtime and server for every bench in this file.
struct Fixture {
    runtime: Runtime,
    server: TestServer,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = runtime.block_on(TestServer::start()).unwrap();
    server.add_personal_access_token(PAT);
    Fixture { runtime, server }
});

/// The reqwest settings the SDK builds its own client with (its defaults:
/// 3 s connect, 10 s per request, its user agent); the hand-written side of
/// the exchange comparison uses exactly these.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(filevine_identity_ext::provider::DEFAULT_CONNECT_TIMEOUT)
        .timeout(filevine_identity_ext::provider::DEFAULT_REQUEST_TIMEOUT)
        .user_agent(concat!("filevine-identity-rs/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap()
}

fn provider() -> TokenProvider {
    let fixture = &*FIXTURE;
    let _guard = fixture.runtime.enter();
    TokenProvider::builder()
        .env(|_| None)
        .region(fixture.server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .build()
        .unwrap()
}

/// Polls a future once. A warm `token()` is ready at once; measuring it this
/// way leaves executor overhead out.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a warm token() must not wait"),
    }
}

/// Polls a future until it is ready, spinning between polls: what an
/// executor does for a future that is ready soon, without its overhead. The
/// baseline's `lock()` is pending while the other thread holds the lock.
fn poll_until_ready<F: Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => return output,
            std::task::Poll::Pending => std::hint::spin_loop(),
        }
    }
}

mod warm {
    use super::*;

    static PROVIDER: LazyLock<TokenProvider> = LazyLock::new(|| {
        let provider = provider();
        FIXTURE.runtime.block_on(provider.token()).unwrap();
        provider
    });
    static TOKEN: LazyLock<AccessToken> = LazyLock::new(|| poll_once(PROVIDER.token()).unwrap());
    /// What a hand-written cache keeps: the token and when to stop using it.
    type Entry = Option<(AccessToken, Instant)>;
    fn entry() -> Entry {
        Some((TOKEN.clone(), Instant::now() + Duration::from_secs(600)))
    }
    static TOKIO_MUTEX: LazyLock<tokio::sync::Mutex<Entry>> = LazyLock::new(|| tokio::sync::Mutex::new(entry()));
    static RW_LOCK: LazyLock<RwLock<Entry>> = LazyLock::new(|| RwLock::new(entry()));

    /// Calls per iteration. Each bench below does the same work per call
    /// (get a token, drop it) in the same loop, so the harness's
    /// per-iteration cost is amortised away and the ratios are fair. Divide
    /// the reported times by `CALLS` for the cost of one call.
    const CALLS: usize = 1000;

    fn calls<T>(bencher: Bencher<'_, '_>, call: impl Fn() -> T + Sync) {
        bencher.counter(divan::counter::ItemsCount::new(CALLS)).bench(|| {
            for _ in 0..CALLS {
                divan::black_box(call());
            }
        });
    }

    /// The SDK: `TokenProvider::token()` with a valid cached token, its
    /// deadline checked against the clock.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn sdk_token(bencher: Bencher<'_, '_>) {
        let provider = &*PROVIDER;
        calls(bencher, || poll_once(provider.token()).unwrap());
    }

    /// The naive sound baseline most hand-written caches are: a
    /// `tokio::sync::Mutex<Option<_>>`, its `lock()` future polled the same
    /// way as the SDK's, and an `Instant::now()` expiry check.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn tokio_mutex(bencher: Bencher<'_, '_>) {
        let cache = &*TOKIO_MUTEX;
        calls(bencher, || {
            let guard = poll_until_ready(cache.lock());
            let (token, until) = guard.as_ref().unwrap();
            assert!(Instant::now() < *until);
            token.clone()
        });
    }

    /// Baseline: a `std::sync::RwLock<Option<_>>` cache with the same
    /// `Instant::now()` expiry check.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn std_rwlock(bencher: Bencher<'_, '_>) {
        let cache = &*RW_LOCK;
        calls(bencher, || {
            let guard = cache.read().unwrap();
            let (token, until) = guard.as_ref().unwrap();
            assert!(Instant::now() < *until);
            token.clone()
        });
    }

    /// The floor of a sound check: cloning the token's `Arc` plus one read
    /// of the clock the SDK checks (on Linux, the coarse monotonic and wall
    /// clocks: `crate::time`).
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn floor_arc_clone_and_clock(bencher: Bencher<'_, '_>) {
        let token = &*TOKEN;
        calls(bencher, || {
            divan::black_box(clock::read());
            token.clone()
        });
    }

    /// Cloning (and dropping) the token's `Arc` alone.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn arc_clone(bencher: Bencher<'_, '_>) {
        let token = &*TOKEN;
        calls(bencher, || token.clone());
    }

    /// Context: what the SDK's clock read costs alone.
    #[divan::bench(sample_size = 100)]
    fn clock_read(bencher: Bencher<'_, '_>) {
        calls(bencher, clock::read);
    }

    /// Context: one precise monotonic clock read (`CLOCK_MONOTONIC`).
    #[divan::bench(sample_size = 100)]
    fn instant_now(bencher: Bencher<'_, '_>) {
        calls(bencher, Instant::now);
    }
}

/// The clock reads of `filevine_identity_ext::time`'s default source, the
/// same calls, for the floor.
mod clock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    pub fn read() -> (rustix::time::Timespec, rustix::time::Timespec) {
        use rustix::time::{ClockId, clock_gettime};
        (clock_gettime(ClockId::MonotonicCoarse), clock_gettime(ClockId::RealtimeCoarse))
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    #[inline]
    pub fn read() -> (std::time::Instant, std::time::SystemTime) {
        (std::time::Instant::now(), std::time::SystemTime::now())
    }
}

mod cold_start {
    use super::*;

    /// Wall time for `callers` tasks to get a token from an empty cache.
    #[divan::bench(args = [1, 100, 10_000], sample_count = 20, sample_size = 1)]
    fn concurrent_callers(bencher: Bencher<'_, '_>, callers: usize) {
        let fixture = &*FIXTURE;
        let iterations = Arc::new(AtomicU64::new(0));
        let before = fixture.server.token_requests();
        bencher.with_inputs(provider).bench_local_values(|provider| {
            fixture.runtime.block_on(async {
                let tasks: Vec<_> = (0..callers)
                    .map(|_| {
                        let provider = provider.clone();
                        tokio::spawn(async move { provider.token().await })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap().unwrap();
                }
            });
            iterations.fetch_add(1, Ordering::Relaxed);
        });
        let requests = fixture.server.token_requests() - before;
        let iterations = iterations.load(Ordering::Relaxed);
        assert_eq!(requests, iterations, "{callers} cold callers must cause exactly one request per cold start");
    }
}

mod exchange {
    use super::*;

    /// One PAT exchange through the SDK: request, parse, cache.
    #[divan::bench(sample_count = 3000)]
    fn sdk(bencher: Bencher<'_, '_>) {
        let fixture = &*FIXTURE;
        let provider = provider();
        bencher.bench_local(|| {
            provider.invalidate();
            fixture.runtime.block_on(provider.token()).unwrap()
        });
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct RawTokenResponse {
        access_token: String,
        token_type: String,
        expires_in: Option<serde_json::Value>,
        scope: Option<String>,
    }

    /// What a hand-written cache keeps after a refresh: the token and when
    /// it expires.
    #[allow(dead_code)]
    struct HandToken {
        access_token: String,
        expires_at: Instant,
    }

    /// The hand-written token cache of the baselines.
    type HandCache = RwLock<Option<Arc<HandToken>>>;

    /// The same form POST written by hand with reqwest, parsed into a
    /// struct, and then what a competent hand-written cache does with the
    /// answer, as the SDK's `token()` does: the expiry computed from
    /// `expires_in` (a number or a string of one, five minutes when absent)
    /// and the token stored in the cache and handed out.
    async fn raw_exchange(client: &reqwest::Client, url: &str, cache: &HandCache) -> Arc<HandToken> {
        let response = client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "personal_access_token"),
                ("scope", "filevine.v2.api.* fv.api.gateway.access"),
                ("token", PAT),
            ])
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json::<RawTokenResponse>()
            .await
            .unwrap();
        let seconds = match &response.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64().unwrap(),
            Some(serde_json::Value::String(s)) => s.parse().unwrap(),
            _ => 300,
        };
        let token = Arc::new(HandToken {
            access_token: response.access_token,
            expires_at: Instant::now() + Duration::from_secs(seconds),
        });
        *cache.write().unwrap() = Some(Arc::clone(&token));
        token
    }

    /// One exchange per `block_on` (a caller outside the runtime).
    #[divan::bench(sample_count = 3000)]
    fn raw_reqwest(bencher: Bencher<'_, '_>) {
        let fixture = &*FIXTURE;
        let client = http_client();
        let url = format!("{}/connect/token", fixture.server.url());
        let cache = HandCache::default();
        bencher.bench_local(|| fixture.runtime.block_on(raw_exchange(&client, &url, &cache)));
    }

    /// Exchanges made by a task already on a runtime worker (the common
    /// case: a `#[tokio::main]` application): 100 per sample, so the one
    /// `block_on` that enters the runtime is spread over them.
    const IN_RUNTIME: usize = 100;

    /// `IN_RUNTIME` exchanges through `provider` per sample, from a task on
    /// a worker of the caller's runtime.
    fn sdk_exchanges_in_runtime(bencher: Bencher<'_, '_>, provider: TokenProvider) {
        bencher.counter(divan::counter::ItemsCount::new(IN_RUNTIME)).bench_local(|| {
            FIXTURE.runtime.block_on(async {
                let provider = provider.clone();
                tokio::spawn(async move {
                    for _ in 0..IN_RUNTIME {
                        provider.invalidate();
                        divan::black_box(provider.token().await.unwrap());
                    }
                })
                .await
                .unwrap()
            })
        });
    }

    /// `IN_RUNTIME` hand-written exchanges with `server` per sample, from a
    /// task on a worker of the caller's runtime.
    fn raw_exchanges_in_runtime(bencher: Bencher<'_, '_>, server: &TestServer) {
        let client = http_client();
        let url = format!("{}/connect/token", server.url());
        bencher.counter(divan::counter::ItemsCount::new(IN_RUNTIME)).bench_local(|| {
            FIXTURE.runtime.block_on(async {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let cache = HandCache::default();
                    for _ in 0..IN_RUNTIME {
                        divan::black_box(raw_exchange(&client, &url, &cache).await);
                    }
                })
                .await
                .unwrap()
            })
        });
    }

    #[divan::bench(sample_count = 100)]
    fn sdk_in_runtime(bencher: Bencher<'_, '_>) {
        sdk_exchanges_in_runtime(bencher, provider());
    }

    #[divan::bench(sample_count = 100)]
    fn raw_reqwest_in_runtime(bencher: Bencher<'_, '_>) {
        raw_exchanges_in_runtime(bencher, &FIXTURE.server);
    }

    /// A server on a runtime of its own (one worker thread), as the
    /// identity provider is never on the caller's runtime: the caller's
    /// 2-worker runtime then runs only the client side.
    static APART: LazyLock<(Runtime, TestServer)> = LazyLock::new(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(TestServer::start()).unwrap();
        server.add_personal_access_token(PAT);
        (runtime, server)
    });

    #[divan::bench(sample_count = 100)]
    fn sdk_in_runtime_server_apart(bencher: Bencher<'_, '_>) {
        let guard = FIXTURE.runtime.enter();
        let provider = TokenProvider::builder()
            .env(|_| None)
            .region(APART.1.region())
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
            .build()
            .unwrap();
        drop(guard);
        sdk_exchanges_in_runtime(bencher, provider);
    }

    #[divan::bench(sample_count = 100)]
    fn raw_reqwest_in_runtime_server_apart(bencher: Bencher<'_, '_>) {
        raw_exchanges_in_runtime(bencher, &APART.1);
    }

    /// The same exchange through the generated client alone (no provider:
    /// no cache, single flight, retries or deadlines), from a task on a
    /// runtime worker: where the SDK's cost splits between the wire and the
    /// provider.
    #[divan::bench(sample_count = 100)]
    fn generated_client_in_runtime(bencher: Bencher<'_, '_>) {
        use filevine_identity::types::{PersonalAccessTokenRequest, PersonalAccessTokenRequestGrantType, TokenRequest};
        let fixture = &*FIXTURE;
        let client = filevine_identity::Client::new_with_client(
            fixture.server.url(),
            http_client(),
            filevine_identity::ClientOptions::new(),
        );
        let client = Arc::new(client);
        bencher.counter(divan::counter::ItemsCount::new(IN_RUNTIME)).bench_local(|| {
            fixture.runtime.block_on(async {
                let client = Arc::clone(&client);
                tokio::spawn(async move {
                    for _ in 0..IN_RUNTIME {
                        let request: TokenRequest = PersonalAccessTokenRequest {
                            grant_type: PersonalAccessTokenRequestGrantType::PersonalAccessToken,
                            token: PAT.to_owned().into(),
                            scope: "filevine.v2.api.* fv.api.gateway.access".to_owned(),
                            client_id: None,
                            client_secret: None,
                        }
                        .into();
                        divan::black_box(client.get_access_token(&request).await.unwrap());
                    }
                })
                .await
                .unwrap()
            })
        });
    }

    /// The hand-written exchange, each in a task of its own that the
    /// caller awaits: the hand-off the SDK's refresh task costs, alone.
    #[divan::bench(sample_count = 100)]
    fn raw_reqwest_spawned_in_runtime(bencher: Bencher<'_, '_>) {
        let fixture = &*FIXTURE;
        let client = http_client();
        let url = format!("{}/connect/token", fixture.server.url());
        bencher.counter(divan::counter::ItemsCount::new(IN_RUNTIME)).bench_local(|| {
            fixture.runtime.block_on(async {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let cache = Arc::new(HandCache::default());
                    for _ in 0..IN_RUNTIME {
                        let (client, url, cache) = (client.clone(), url.clone(), Arc::clone(&cache));
                        let task = tokio::spawn(async move { raw_exchange(&client, &url, &cache).await });
                        divan::black_box(task.await.unwrap());
                    }
                })
                .await
                .unwrap()
            })
        });
    }
}

/// 5. `build`: building a provider and an OIDC client (no I/O: the HTTP
///    client comes with the first request), beside what building the HTTP
///    client costs (its TLS roots: what every build paid when it was eager).
mod build {
    use super::*;
    use filevine_identity_ext::oidc::RedirectUrl;
    use filevine_identity_ext::{ClientId, OidcClient, Region};

    #[divan::bench(sample_count = 1000)]
    fn token_provider(bencher: Bencher<'_, '_>) {
        bencher.bench(|| {
            TokenProvider::builder()
                .env(|_| None)
                .region(Region::Us)
                .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
                .build()
                .unwrap()
        });
    }

    #[divan::bench(sample_count = 1000)]
    fn oidc_client(bencher: Bencher<'_, '_>) {
        bencher.bench(|| {
            OidcClient::builder()
                .env(|_| None)
                .region(Region::Us)
                .client_id(ClientId::new("partner-app").unwrap())
                .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback").unwrap())
                .build()
                .unwrap()
        });
    }

    /// The HTTP client the first request builds, with the SDK's settings.
    #[divan::bench(sample_count = 200)]
    fn http_client_alone(bencher: Bencher<'_, '_>) {
        bencher.bench(http_client);
    }
}

/// 4. `store`: the same warm `token()` and the same refresh with no store,
///    a `MemoryStore` and a `RedisStore` (a `redis-server` started on a free
///    loopback port; skipped when there is none). The warm call must not
///    notice the store; a refresh through the store pays a read, the lease,
///    a read under it, the compare-and-swap and the release.
mod store {
    use super::*;
    use filevine_identity_ext::store::{MemoryStore, PostgresStore, RedisStore, StoreEncryptionKey, TokenStore};

    /// The Redis deployments of this run (each started on first use,
    /// stopped when the bench process exits); `None` without redis-server.
    fn deployment(kind: &str) -> Option<String> {
        static SINGLE: LazyLock<Option<redis_support::Redis>> =
            LazyLock::new(|| installed().then(redis_support::Redis::start));
        static SENTINEL: LazyLock<Option<redis_support::SentinelGroup>> =
            LazyLock::new(|| installed().then(redis_support::SentinelGroup::start));
        static CLUSTER: LazyLock<Option<redis_support::Cluster>> =
            LazyLock::new(|| installed().then(redis_support::Cluster::start));
        match kind {
            "redis" => SINGLE.as_ref().map(|r| r.url.clone()),
            "sentinel" => SENTINEL.as_ref().map(redis_support::SentinelGroup::url),
            "cluster" => CLUSTER.as_ref().map(redis_support::Cluster::url),
            _ => None,
        }
    }

    fn installed() -> bool {
        std::process::Command::new("redis-server").arg("--version").output().is_ok()
    }

    fn with_store(store: Option<Arc<dyn TokenStore>>) -> TokenProvider {
        let fixture = &*FIXTURE;
        let _guard = fixture.runtime.enter();
        let builder = TokenProvider::builder()
            .env(|_| None)
            .region(fixture.server.region())
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()));
        match store {
            Some(store) => builder.store(store).store_encryption_key(StoreEncryptionKey::generate().unwrap()),
            None => builder,
        }
        .build()
        .unwrap()
    }

    /// A migrated PostgreSQL store on a database of its own; `None` without
    /// PostgreSQL.
    fn postgres() -> Option<Arc<dyn TokenStore>> {
        static CLUSTER: LazyLock<Option<postgres_support::Postgres>> = LazyLock::new(|| {
            let installed = std::path::Path::new("/usr/lib/postgresql").exists()
                || std::process::Command::new("initdb").arg("--version").output().is_ok();
            installed.then(postgres_support::Postgres::start)
        });
        let cluster = CLUSTER.as_ref()?;
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let url = cluster.database(&format!("bench_{}", COUNT.fetch_add(1, Ordering::Relaxed)));
        let store = PostgresStore::open(&url).unwrap();
        FIXTURE.runtime.block_on(store.migrate()).unwrap();
        Some(Arc::new(store))
    }

    fn store(kind: &str) -> Option<Option<Arc<dyn TokenStore>>> {
        match kind {
            "none" => Some(None),
            "memory" => Some(Some(Arc::new(MemoryStore::new()))),
            "postgres" => match postgres() {
                Some(store) => Some(Some(store)),
                None => {
                    eprintln!("PostgreSQL is not installed: skipping the PostgreSQL store bench");
                    None
                }
            },
            _ => match deployment(kind) {
                Some(url) => Some(Some(Arc::new(RedisStore::open(&url).unwrap()))),
                None => {
                    eprintln!("redis-server is not installed: skipping the Redis store bench");
                    None
                }
            },
        }
    }

    #[divan::bench(args = ["none", "memory", "redis", "sentinel", "cluster", "postgres"], sample_size = 100)]
    fn warm_token(bencher: Bencher<'_, '_>, kind: &str) {
        let Some(store) = store(kind) else { return };
        let provider = with_store(store);
        FIXTURE.runtime.block_on(provider.token()).unwrap();
        bencher.bench_local(|| poll_once(provider.token()).unwrap());
    }

    #[divan::bench(args = ["none", "memory", "redis", "sentinel", "cluster", "postgres"], sample_count = 1000)]
    fn refresh(bencher: Bencher<'_, '_>, kind: &str) {
        let Some(store) = store(kind) else { return };
        let provider = with_store(store);
        bencher.bench_local(|| {
            provider.invalidate();
            FIXTURE.runtime.block_on(provider.token()).unwrap()
        });
    }
}

/// 6. `registry`: a warm firm's token through `TokenProviders` (1,000 firms
///    held) beside a warm `token()` of a provider held by hand and the map a
///    competent user writes without the registry (`Mutex<HashMap>` of
///    providers by firm id, cloned out, then `token()`).
mod registry {
    use super::*;
    use filevine_identity_ext::Scopes;
    use filevine_identity_ext::provider::TokenProviders;
    use std::collections::HashMap;

    const FIRMS: usize = 1_000;

    fn firm_pat(n: usize) -> Credentials {
        Credentials::personal_access_token(PersonalAccessToken::new(format!("fvpat_bench_firm_{n:04}")).unwrap())
    }

    struct Firms {
        registry: TokenProviders,
        by_hand: std::sync::Mutex<HashMap<String, TokenProvider>>,
        held: TokenProvider,
    }

    static FIRMS_FIXTURE: LazyLock<Firms> = LazyLock::new(|| {
        let fixture = &*FIXTURE;
        let region = fixture.server.region();
        let registry = TokenProviders::builder()
            .template(move || TokenProvider::builder().env(|_| None).region(region.clone()))
            .max_providers(FIRMS)
            .build()
            .unwrap();
        let mut by_hand = HashMap::new();
        fixture.runtime.block_on(async {
            for n in 0..FIRMS {
                fixture.server.add_personal_access_token(&format!("fvpat_bench_firm_{n:04}"));
                registry.token(&firm_pat(n), &Scopes::gateway(), &format!("firm-{n}")).await.unwrap();
                let provider = TokenProvider::builder()
                    .env(|_| None)
                    .region(fixture.server.region())
                    .credentials(firm_pat(n))
                    .build()
                    .unwrap();
                provider.token().await.unwrap();
                by_hand.insert(format!("firm-{n}"), provider);
            }
        });
        let held = by_hand["firm-500"].clone();
        Firms { registry, by_hand: std::sync::Mutex::new(by_hand), held }
    });

    #[divan::bench(sample_count = 1000)]
    fn provider_held_by_hand(bencher: Bencher<'_, '_>) {
        let firms = &*FIRMS_FIXTURE;
        bencher.bench(|| poll_once(firms.held.token()).unwrap());
    }

    #[divan::bench(sample_count = 1000)]
    fn registry_lookup(bencher: Bencher<'_, '_>) {
        let firms = &*FIRMS_FIXTURE;
        let credentials = firm_pat(500);
        let scopes = Scopes::gateway();
        bencher.bench(|| poll_once(firms.registry.token(&credentials, &scopes, "firm-500")).unwrap());
    }

    #[divan::bench(sample_count = 1000)]
    fn hand_written_map(bencher: Bencher<'_, '_>) {
        let firms = &*FIRMS_FIXTURE;
        bencher.bench(|| {
            let provider = firms.by_hand.lock().unwrap().get("firm-500").cloned().unwrap();
            poll_once(provider.token()).unwrap()
        });
    }
}

/// What DPoP adds per request: a warm `token()` is the same lookup either
/// way; the proof (an ES256 signature, a fresh `jti`, the token's hash) is
/// signed for every request the token goes out with.
mod dpop {
    use super::*;

    fn warm(dpop: bool) -> TokenProvider {
        let fixture = &*FIXTURE;
        let _guard = fixture.runtime.enter();
        let provider = TokenProvider::builder()
            .env(|_| None)
            .region(fixture.server.region())
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
            .dpop(dpop)
            .build()
            .unwrap();
        fixture.runtime.block_on(provider.token()).unwrap();
        provider
    }

    static BEARER: LazyLock<TokenProvider> = LazyLock::new(|| warm(false));
    static BOUND: LazyLock<TokenProvider> = LazyLock::new(|| warm(true));
    static URL: LazyLock<url::Url> = LazyLock::new(|| {
        format!("{}/fv-app/v2/Users/Me", FIXTURE.server.region().gateway_url().unwrap()).parse().unwrap()
    });

    #[divan::bench(sample_count = 1000, sample_size = 64)]
    fn warm_token_bearer(bencher: Bencher<'_, '_>) {
        // Made (and its first token fetched) before the clock runs.
        let provider = &*BEARER;
        bencher.bench(|| poll_once(provider.token()).unwrap());
    }

    #[divan::bench(sample_count = 1000, sample_size = 64)]
    fn warm_token_dpop(bencher: Bencher<'_, '_>) {
        let provider = &*BOUND;
        bencher.bench(|| poll_once(provider.token()).unwrap());
    }

    #[divan::bench(sample_count = 1000)]
    fn warm_token_and_proof(bencher: Bencher<'_, '_>) {
        let (provider, url) = (&*BOUND, &*URL);
        bencher.bench(|| {
            let token = poll_once(provider.token()).unwrap();
            token.dpop_proof(&reqwest::Method::GET, url).unwrap()
        });
    }

    /// The baseline: what a competent user writes for the same proof with
    /// `jsonwebtoken` (ES256 on aws-lc-rs, as the SDK), a P-256 key made
    /// once, the public JWK in the header, a random `jti`, `ath` as the
    /// base64url SHA-256 of the token, and the header value it goes in.
    #[cfg(feature = "aws-lc")]
    #[divan::bench(sample_count = 1000)]
    fn warm_token_and_hand_written_proof(bencher: Bencher<'_, '_>) {
        let (provider, url) = (&*BOUND, &*URL);
        hand_written::make_key();
        bencher.bench(|| {
            let token = poll_once(provider.token()).unwrap();
            hand_written::proof("GET", url, token.expose_secret())
        });
    }

    /// The floor: the same proof signed straight with aws-lc-rs, the key
    /// pair parsed once and held (what `jsonwebtoken` re-parses per call).
    #[cfg(feature = "aws-lc")]
    #[divan::bench(sample_count = 1000)]
    fn warm_token_and_proof_on_aws_lc_directly(bencher: Bencher<'_, '_>) {
        let (provider, url) = (&*BOUND, &*URL);
        hand_written::make_key();
        bencher.bench(|| {
            let token = poll_once(provider.token()).unwrap();
            hand_written::proof_direct("GET", url, token.expose_secret())
        });
    }

    #[cfg(feature = "aws-lc")]
    mod hand_written {
        use std::sync::LazyLock;

        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use jsonwebtoken::jwk::{
            AlgorithmParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
        };
        use jsonwebtoken::{EncodingKey, Header};

        struct Key {
            signing: EncodingKey,
            jwk: Jwk,
            pair: EcdsaKeyPair,
            jwk_json: serde_json::Value,
        }

        static KEY: LazyLock<Key> = LazyLock::new(|| {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new())
                    .unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
            let point = pair.public_key().as_ref();
            let jwk = Jwk {
                common: Default::default(),
                algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                    y: URL_SAFE_NO_PAD.encode(&point[33..65]),
                }),
            };
            let jwk_json = serde_json::to_value(&jwk).unwrap();
            Key { signing: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk, pair, jwk_json }
        });

        fn claims(method: &str, url: &url::Url, token: &str) -> serde_json::Value {
            let mut jti = [0u8; 16];
            aws_lc_rs::rand::fill(&mut jti).unwrap();
            let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let ath = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()));
            serde_json::json!({
                "jti": URL_SAFE_NO_PAD.encode(jti),
                "htm": method,
                "htu": url.as_str(),
                "iat": iat,
                "ath": ath,
            })
        }

        fn header_value(jwt: String) -> reqwest::header::HeaderValue {
            let mut value = reqwest::header::HeaderValue::try_from(jwt).unwrap();
            value.set_sensitive(true);
            value
        }

        pub(super) fn proof_direct(method: &str, url: &url::Url, token: &str) -> reqwest::header::HeaderValue {
            let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": KEY.jwk_json});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(method, url, token)).unwrap())
            );
            let signature = KEY.pair.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
            header_value(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
        }

        /// Makes the key before the clock runs.
        pub(super) fn make_key() {
            LazyLock::force(&KEY);
        }

        pub(super) fn proof(method: &str, url: &url::Url, token: &str) -> reqwest::header::HeaderValue {
            let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
            header.typ = Some("dpop+jwt".to_owned());
            header.jwk = Some(KEY.jwk.clone());
            header_value(jsonwebtoken::encode(&header, &claims(method, url, token), &KEY.signing).unwrap())
        }
    }
}
