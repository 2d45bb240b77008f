//! Several processes sharing one token store, against the test server with
//! 2-second tokens: a fleet with one PAT (Redis, and the file store), one
//! user's rotating refresh token shared by four replicas, and a replica
//! killed while it holds the lease.
//!
//! The workers are this test binary run again, filtered to
//! [`store_worker`], which does nothing unless `FV_WORKER` holds its
//! configuration. Each prints one `FV_REPORT {json}` line.
//!
//! These run in real time (processes cannot share a paused clock); what they
//! assert are counts: requests per token lifetime, reuse detections,
//! expired tokens served, failures.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use filevine_identity_ext::provider::TokenProviderBuilder;
use filevine_identity_ext::store::{self, StoreKey};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{
    ClientId, ClientSecret, Credentials, PersonalAccessToken, RefreshToken, Region, TokenProvider,
};

use crate::support::redis::Redis;

const PAT: &str = "fvpat_fleet_0001";
const CLIENT_ID: &str = "fleet-app";
const CLIENT_SECRET: &str = "fleet-secret-0001";
const SESSION: &str = "fleet-user-session";
/// The hard margin of a 2-second token: half its lifetime.
const MARGIN: Duration = Duration::from_secs(1);

/// What one worker process saw.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Report {
    served: u64,
    /// Tokens handed out already expired.
    expired: u64,
    /// Tokens handed out with less than the hard margin left.
    below_margin: u64,
    failures: u64,
    sign_in_required: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerConfig {
    authority: String,
    store: String,
    /// `pat`, `session` (the stored user session), or `hold` (a PAT: one
    /// call, then wait to be killed).
    mode: String,
    seconds: u64,
    tasks: usize,
}

/// The worker process. Ignored in a normal run; the fleet tests start it.
#[test]
#[ignore = "a worker process, started by the fleet tests"]
fn store_worker() {
    let Ok(config) = std::env::var("FV_WORKER") else { return };
    let config: WorkerConfig = serde_json::from_str(&config).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(work(config));
    println!("FV_REPORT {}", serde_json::to_string(&report).unwrap());
}

fn worker_builder(config: &WorkerConfig) -> TokenProviderBuilder {
    let builder = TokenProvider::builder()
        .env(|_| None)
        .region(Region::custom(&config.authority).unwrap())
        .store(store::open(&config.store).unwrap());
    match config.mode.as_str() {
        "pat" | "hold" => {
            builder.credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        }
        _ => builder
            .stored_session(ClientId::new(CLIENT_ID).unwrap(), Some(ClientSecret::new(CLIENT_SECRET).unwrap()))
            .store_key(StoreKey::session(SESSION)),
    }
}

async fn work(config: WorkerConfig) -> Report {
    if config.mode == "hold" {
        // Takes the lease and waits on the held answer until killed.
        let provider = worker_builder(&config)
            .total_timeout(Duration::from_secs(2))
            .lease_time(Duration::from_secs(3))
            .build()
            .unwrap();
        let _ = provider.token().await;
        return Report::default();
    }
    let provider = worker_builder(&config).build().unwrap();
    let counts: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let until = tokio::time::Instant::now() + Duration::from_secs(config.seconds);
    let tasks: Vec<_> = (0..config.tasks)
        .map(|_| {
            let provider = provider.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                while tokio::time::Instant::now() < until {
                    // Measured from before the call: the provider promises
                    // the margin at the moment it checks, which is later
                    // (a measurement after the call would count scheduling
                    // delays on a busy machine as the SDK's).
                    let before = std::time::Instant::now();
                    match provider.token().await {
                        Ok(token) => {
                            counts[0].fetch_add(1, Ordering::Relaxed);
                            let left = token.expires_at().saturating_duration_since(before);
                            if left.is_zero() {
                                counts[1].fetch_add(1, Ordering::Relaxed);
                            }
                            if left < MARGIN {
                                counts[2].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(error) => {
                            counts[3].fetch_add(1, Ordering::Relaxed);
                            if error.needs_sign_in() {
                                counts[4].fetch_add(1, Ordering::Relaxed);
                            }
                            eprintln!("worker: {error}");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let count = |i: usize| counts[i].load(Ordering::Relaxed);
    Report {
        served: count(0),
        expired: count(1),
        below_margin: count(2),
        failures: count(3),
        sign_in_required: count(4),
    }
}

fn spawn_worker(config: &WorkerConfig) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fleet::store_worker", "--ignored", "--nocapture", "--test-threads=1", "-q"])
        .env("FV_WORKER", serde_json::to_string(config).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn report(child: Child) -> Report {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line =
        stdout.lines().find_map(|l| l.strip_prefix("FV_REPORT ")).unwrap_or_else(|| panic!("no report: {stdout}"));
    serde_json::from_str(line).unwrap()
}

async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server.add_client(CLIENT_ID, CLIENT_SECRET);
    server.set_token_lifetime(Duration::from_secs(2));
    server
}

/// Runs `processes` workers for `seconds` and checks the fleet's counts.
async fn fleet(server: &TestServer, store: &str, mode: &str, processes: usize, seconds: u64) -> (Report, u64, f64) {
    let config = WorkerConfig {
        authority: server.url().to_owned(),
        store: store.to_owned(),
        mode: mode.to_owned(),
        seconds,
        tasks: 250,
    };
    let before = server.token_requests();
    let started = Instant::now();
    let children: Vec<_> = (0..processes).map(|_| spawn_worker(&config)).collect();
    let mut total = Report::default();
    for child in children {
        let report = report(child).await;
        total.served += report.served;
        total.expired += report.expired;
        total.below_margin += report.below_margin;
        total.failures += report.failures;
        total.sign_in_required += report.sign_in_required;
    }
    (total, server.token_requests() - before, started.elapsed().as_secs_f64())
}

/// A refresh starts between 0.5 and 0.75 s after a 2-second token was
/// issued (1 s hard margin, 0.5 s soft window, jittered): over `elapsed`
/// seconds, one fleet-wide refresh per cycle is at most `elapsed / 0.5 + 1`
/// requests, where four processes refreshing on their own would make four
/// times the cycles. At least one request per lifetime was needed to serve
/// without a failure.
fn assert_one_request_per_cycle(requests: u64, elapsed: f64, processes: usize) {
    let most = (elapsed / 0.5).ceil() as u64 + 1;
    let least = (elapsed / 2.0).floor() as u64;
    eprintln!("{processes} processes, {elapsed:.1} s: {requests} token requests (one per cycle: {least}..={most})");
    assert!(requests <= most, "{requests} requests in {elapsed:.1} s: more than one per refresh cycle");
    assert!(requests >= least, "{requests} requests in {elapsed:.1} s: fewer than one per token lifetime");
}

fn assert_clean(report: &Report) {
    assert!(report.served > 0);
    assert_eq!(report.expired, 0, "{report:?}");
    assert_eq!(report.below_margin, 0, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(report.sign_in_required, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_with_one_pat_shares_each_token_through_redis() {
    let server = server().await;
    let redis = Redis::start();
    let (report, requests, elapsed) = fleet(&server, &redis.url, "pat", 4, 20).await;
    assert_clean(&report);
    assert_one_request_per_cycle(requests, elapsed, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_each_token_through_the_file_store() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("tokens").display());
    let (report, requests, elapsed) = fleet(&server, &store, "pat", 2, 20).await;
    assert_clean(&report);
    assert_one_request_per_cycle(requests, elapsed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_rotate_one_refresh_token_without_reuse() {
    let server = server().await;
    server.add_refresh_token("rt-fleet-0");
    let redis = Redis::start();
    // The user signed in on one replica: its token set is in the store.
    let seed = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(
            Credentials::refresh_token(RefreshToken::new("rt-fleet-0").unwrap())
                .with_client(ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
        )
        .store(store::open(&redis.url).unwrap())
        .store_key(StoreKey::session(SESSION))
        .build()
        .unwrap();
    seed.token().await.unwrap();
    drop(seed);
    let (report, requests, elapsed) = fleet(&server, &redis.url, "session", 4, 15).await;
    assert_clean(&report);
    assert!(requests >= 20, "{requests} refreshes: at least 20 rotation cycles");
    assert_one_request_per_cycle(requests, elapsed, 4);
    assert_eq!(server.refresh_token_reuses(), 0, "no rotated-away refresh token was presented");
    assert_eq!(server.grant_requests("refresh_token"), requests + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_holding_the_lease_is_taken_over_after_the_lease_time() {
    let server = server().await;
    let redis = Redis::start();
    let held = server.hold_token_responses();
    let config = WorkerConfig {
        authority: server.url().to_owned(),
        store: redis.url.clone(),
        mode: "hold".to_owned(),
        seconds: 0,
        tasks: 0,
    };
    let mut worker = spawn_worker(&config);
    tokio::time::timeout(Duration::from_secs(60), server.wait_for_token_requests(1))
        .await
        .expect("the worker never asked for a token");
    // It holds the lease and waits for the answer: kill it there.
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .store(store::open(&redis.url).unwrap())
        .total_timeout(Duration::from_secs(2))
        .lease_time(Duration::from_secs(3))
        .build()
        .unwrap();
    let lease = format!("filevine:tokens:{{{}}}:lease", provider.store_key().unwrap().as_str());
    assert!(redis.exists(&lease), "the worker holds the lease");
    worker.kill().unwrap();
    worker.wait().unwrap();
    drop(held);
    // The lease outlives its holder, then this provider takes over.
    let token = provider.token().await.unwrap();
    assert!(server.is_valid_access_token(token.expose_secret()));
    assert_eq!(server.token_requests(), 2, "the dead worker's request and the takeover's");
    assert!(!redis.exists(&lease), "released after the takeover");
}
