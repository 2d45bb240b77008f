//! `cargo bench -p filevine-identity-ext --bench token`
//!
//! 1. `warm`: a cached `token()`, on one and on two threads at once, beside a
//!    `tokio::sync::Mutex<Option<_>>` cache, a `std::sync::RwLock<Option<_>>`
//!    cache and a plain `Arc` clone (the floor).
//! 2. `cold_start`: 1, 100 and 10,000 concurrent callers on an empty cache
//!    against the loopback test server; each iteration asserts that exactly
//!    one token request was made.
//! 3. `exchange`: one PAT exchange through the SDK beside a hand-written
//!    reqwest form POST of the same body to the same server with the same
//!    client settings.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Instant;

use divan::Bencher;
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{AccessToken, Credentials, PersonalAccessToken, TokenProvider};
use tokio::runtime::Runtime;

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

mod warm {
    use super::*;

    static PROVIDER: LazyLock<TokenProvider> = LazyLock::new(|| {
        let provider = provider();
        FIXTURE.runtime.block_on(provider.token()).unwrap();
        provider
    });
    static TOKEN: LazyLock<AccessToken> = LazyLock::new(|| poll_once(PROVIDER.token()).unwrap());
    static TOKIO_MUTEX: LazyLock<tokio::sync::Mutex<Option<AccessToken>>> =
        LazyLock::new(|| tokio::sync::Mutex::new(Some(TOKEN.clone())));
    static RW_LOCK: LazyLock<RwLock<Option<AccessToken>>> = LazyLock::new(|| RwLock::new(Some(TOKEN.clone())));

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

    /// The SDK: `TokenProvider::token()` with a valid cached token.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn sdk_token(bencher: Bencher<'_, '_>) {
        let provider = &*PROVIDER;
        calls(bencher, || poll_once(provider.token()).unwrap());
    }

    /// Baseline: a token cache behind `tokio::sync::Mutex`.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn tokio_mutex(bencher: Bencher<'_, '_>) {
        let cache = &*TOKIO_MUTEX;
        calls(bencher, || cache.blocking_lock().clone().unwrap());
    }

    /// Baseline: a token cache behind `std::sync::RwLock`.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn std_rwlock(bencher: Bencher<'_, '_>) {
        let cache = &*RW_LOCK;
        calls(bencher, || cache.read().unwrap().clone().unwrap());
    }

    /// The floor: cloning (and dropping) the token's `Arc`.
    #[divan::bench(threads = [1, 2], sample_size = 100)]
    fn arc_clone(bencher: Bencher<'_, '_>) {
        let token = &*TOKEN;
        calls(bencher, || token.clone());
    }

    /// Context: what one monotonic clock read costs on this machine (the
    /// hot path reads none).
    #[divan::bench(sample_size = 100)]
    fn instant_now(bencher: Bencher<'_, '_>) {
        calls(bencher, Instant::now);
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

    /// The same form POST written by hand with reqwest, parsed into a struct.
    #[divan::bench(sample_count = 3000)]
    fn raw_reqwest(bencher: Bencher<'_, '_>) {
        let fixture = &*FIXTURE;
        let client = http_client();
        let url = format!("{}/connect/token", fixture.server.url());
        bencher.bench_local(|| {
            fixture.runtime.block_on(async {
                client
                    .post(&url)
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
                    .unwrap()
            })
        });
    }
}
