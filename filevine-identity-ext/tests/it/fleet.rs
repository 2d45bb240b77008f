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

use crate::support::Captured;
use crate::support::redis::{Cluster, Redis, SentinelGroup, Server};

pub(crate) const PAT: &str = "fvpat_fleet_0001";
pub(crate) const CLIENT_ID: &str = "fleet-app";
pub(crate) const CLIENT_SECRET: &str = "fleet-secret-0001";
pub(crate) const SESSION: &str = "fleet-user-session";
/// The hard margin of a 2-second token: half its lifetime.
const MARGIN: Duration = Duration::from_secs(1);

/// What one worker process saw.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Report {
    pub(crate) served: u64,
    /// Tokens handed out already expired.
    pub(crate) expired: u64,
    /// Tokens handed out with less than the hard margin left.
    pub(crate) below_margin: u64,
    pub(crate) failures: u64,
    pub(crate) sign_in_required: u64,
    /// The longest time in which no task of the worker got a token, in ms.
    pub(crate) longest_gap_ms: u64,
    /// The first few distinct errors, so a failed assertion shows them
    /// (the workers' stderr is not part of the test's captured output).
    #[serde(default)]
    pub(crate) errors: Vec<String>,
    /// The first few warnings and errors the SDK logged in the worker.
    #[serde(default)]
    pub(crate) warnings: Vec<String>,
    /// Each access token served, with the latest moment (milliseconds
    /// since the epoch, on the system's clock, before the call) it was
    /// handed out: checked against the server's expiry of it.
    #[serde(default)]
    pub(crate) served_at: std::collections::BTreeMap<String, u64>,
}

/// How many distinct errors a report keeps.
const ERRORS_KEPT: usize = 3;

/// Adds `error` to a report's errors unless it is there or they are full.
fn keep_error(errors: &mut Vec<String>, error: String) {
    keep(errors, error, ERRORS_KEPT);
}

/// How many distinct logged lines a report keeps.
const WARNINGS_KEPT: usize = 8;

fn keep(lines: &mut Vec<String>, line: String, most: usize) {
    if lines.len() < most && !lines.contains(&line) {
        lines.push(line);
    }
}

/// What every worker logs once per provider (the fleets store in the
/// clear on purpose: they read the stored versions back).
const UNENCRYPTED: &str = "token sets are stored unencrypted";

/// Keeps a logged line, without its timestamp, so repeats count once.
fn keep_line(lines: &mut Vec<String>, line: String) {
    let line = line.split_once(' ').map_or(line.as_str(), |(_, rest)| rest.trim_start()).to_owned();
    keep(lines, line, WARNINGS_KEPT);
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct WorkerConfig {
    pub(crate) authority: String,
    pub(crate) store: String,
    /// `pat`, `session` (the stored user session), or `hold` (a PAT: one
    /// call, then wait to be killed).
    pub(crate) mode: String,
    pub(crate) seconds: u64,
    pub(crate) tasks: usize,
    /// The users of `session` mode (one provider each; tasks spread over
    /// them); empty means the one user `SESSION`.
    #[serde(default)]
    pub(crate) sessions: Vec<String>,
    /// A file holding milliseconds (signed) by which the providers' wall
    /// clock is stepped, read as it changes ([`SteppedClock`]).
    #[serde(default)]
    pub(crate) clock_file: Option<String>,
}

/// The system's clocks with the wall clock stepped by the number of
/// milliseconds in a file, which the fault schedule changes while the
/// worker runs: a clock set on the machine, as the providers see it (the
/// monotonic clock, and its origin, stay the system's).
#[derive(Debug, Clone)]
struct SteppedClock(Arc<std::sync::atomic::AtomicI64>);

impl SteppedClock {
    /// Follows `file`, re-read every 5 ms on a thread of its own.
    fn following(file: String) -> SteppedClock {
        let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let shared = offset.clone();
        std::thread::spawn(move || {
            loop {
                if let Some(ms) = std::fs::read_to_string(&file).ok().and_then(|t| t.trim().parse().ok()) {
                    shared.store(ms, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        SteppedClock(offset)
    }
}

impl filevine_identity_ext::time::TimeSource for SteppedClock {
    fn monotonic(&self) -> Duration {
        filevine_identity_ext::time::SystemTimeSource.monotonic()
    }

    fn wall(&self) -> Duration {
        let wall = filevine_identity_ext::time::SystemTimeSource.wall();
        let offset = self.0.load(Ordering::Relaxed);
        let by = Duration::from_millis(offset.unsigned_abs());
        if offset >= 0 { wall + by } else { wall.saturating_sub(by) }
    }

    fn monotonic_origin(&self) -> Option<u128> {
        filevine_identity_ext::time::SystemTimeSource.monotonic_origin()
    }
}

/// The worker process. Ignored in a normal run; the fleet tests start it.
#[test]
#[ignore = "a worker process, started by the fleet tests"]
fn store_worker() {
    let Ok(config) = std::env::var("FV_WORKER") else { return };
    let config: WorkerConfig = serde_json::from_str(&config).unwrap();
    // The SDK's warnings and errors go into the report, so a failed fleet
    // run says what the store and the provider saw (a save that failed,
    // fewer replicas than asked) beside what the callers got.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).expect("the worker process sets its subscriber once");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut report = runtime.block_on(work(config));
    for line in captured.text_since(0).lines().filter(|line| !line.contains(UNENCRYPTED)) {
        keep_line(&mut report.warnings, line.to_owned());
    }
    println!("FV_REPORT {}", serde_json::to_string(&report).unwrap());
}

fn worker_builder(config: &WorkerConfig, session: &str) -> TokenProviderBuilder {
    match config.mode.as_str() {
        "pat" | "hold" => store_builder(&config.authority, &config.store)
            .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap())),
        _ => session_builder(&config.authority, &config.store, session),
    }
}

/// A provider of the identity provider at `authority` on the store at
/// `store`, without credentials yet.
fn store_builder(authority: &str, store: &str) -> TokenProviderBuilder {
    TokenProvider::builder().env(|_| None).region(Region::custom(authority).unwrap()).store(store::open(store).unwrap())
}

/// The fleet client's provider of the stored user session `session`.
fn session_builder(authority: &str, store: &str, session: &str) -> TokenProviderBuilder {
    store_builder(authority, store)
        .stored_session(ClientId::new(CLIENT_ID).unwrap(), Some(ClientSecret::new(CLIENT_SECRET).unwrap()))
        .store_key(StoreKey::session(session))
}

async fn work(config: WorkerConfig) -> Report {
    if config.mode == "hold" {
        // Takes the lease and waits on the held answer until killed.
        let provider = worker_builder(&config, SESSION)
            .total_timeout(Duration::from_secs(2))
            .lease_time(Duration::from_secs(3))
            .build()
            .unwrap();
        let _ = provider.token().await;
        return Report::default();
    }
    let sessions = if config.sessions.is_empty() { vec![SESSION.to_owned()] } else { config.sessions.clone() };
    let clock = config.clock_file.clone().map(SteppedClock::following);
    let providers: Vec<TokenProvider> = sessions
        .iter()
        .map(|session| {
            let builder = worker_builder(&config, session);
            let builder = match &clock {
                Some(clock) => builder.time_source(clock.clone()),
                None => builder,
            };
            builder.build().unwrap()
        })
        .collect();
    let served_at = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let counts: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // Milliseconds since `started` of the last token served, and the
    // longest gap between two.
    let started = Instant::now();
    let last_served = Arc::new(AtomicU64::new(0));
    let longest_gap = Arc::new(AtomicU64::new(0));
    let until = tokio::time::Instant::now() + Duration::from_secs(config.seconds);
    let tasks: Vec<_> = (0..config.tasks)
        .map(|n| {
            let provider = providers[n % providers.len()].clone();
            let (counts, errors) = (counts.clone(), errors.clone());
            let (last_served, longest_gap) = (last_served.clone(), longest_gap.clone());
            let served_at = served_at.clone();
            tokio::spawn(async move {
                while tokio::time::Instant::now() < until {
                    // Measured from before the call: the provider promises
                    // the margin at the moment it checks, which is later
                    // (a measurement after the call would count scheduling
                    // delays on a busy machine as the SDK's).
                    let before = std::time::Instant::now();
                    let before_wall = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    match provider.token().await {
                        Ok(token) => {
                            let mut served = served_at.lock().unwrap();
                            let at = served.entry(token.expose_secret().to_owned()).or_default();
                            *at = (*at).max(before_wall);
                            drop(served);
                            counts[0].fetch_add(1, Ordering::Relaxed);
                            let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                            let previous = last_served.fetch_max(now, Ordering::Relaxed);
                            longest_gap.fetch_max(now.saturating_sub(previous), Ordering::Relaxed);
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
                            keep_error(&mut errors.lock().unwrap(), error.to_string());
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
        longest_gap_ms: longest_gap.load(Ordering::Relaxed),
        errors: std::mem::take(&mut *errors.lock().unwrap()),
        warnings: Vec::new(),
        served_at: std::mem::take(&mut *served_at.lock().unwrap()),
    }
}

pub(crate) fn spawn_worker(config: &WorkerConfig) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fleet::store_worker", "--ignored", "--nocapture", "--test-threads=1", "-q"])
        .env("FV_WORKER", serde_json::to_string(config).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

pub(crate) async fn report(child: Child) -> Report {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line =
        stdout.lines().find_map(|l| l.strip_prefix("FV_REPORT ")).unwrap_or_else(|| panic!("no report: {stdout}"));
    serde_json::from_str(line).unwrap()
}

pub(crate) async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server.add_client(CLIENT_ID, CLIENT_SECRET);
    server.set_token_lifetime(Duration::from_secs(2));
    server
}

/// Runs `processes` workers for `seconds` and checks the fleet's counts.
pub(crate) async fn fleet(
    server: &TestServer,
    store: &str,
    mode: &str,
    processes: usize,
    seconds: u64,
) -> (Report, u64, f64) {
    let (report, requests, elapsed, _) = fleet_of(server, store, mode, &[], processes, seconds).await;
    (report, requests, elapsed)
}

/// [`fleet`] for the users `sessions`; also returns each worker's longest
/// gap without a token.
pub(crate) async fn fleet_of(
    server: &TestServer,
    store: &str,
    mode: &str,
    sessions: &[String],
    processes: usize,
    seconds: u64,
) -> (Report, u64, f64, Vec<u64>) {
    let config = WorkerConfig {
        authority: server.url().to_owned(),
        store: store.to_owned(),
        mode: mode.to_owned(),
        seconds,
        tasks: 250,
        sessions: sessions.to_vec(),
        clock_file: None,
    };
    let before = server.token_requests();
    let started = Instant::now();
    let children: Vec<_> = (0..processes).map(|_| spawn_worker(&config)).collect();
    let mut total = Report::default();
    let mut gaps = Vec::new();
    for child in children {
        let report = report(child).await;
        gaps.push(report.longest_gap_ms);
        total.served += report.served;
        total.expired += report.expired;
        total.below_margin += report.below_margin;
        total.failures += report.failures;
        total.sign_in_required += report.sign_in_required;
        for error in report.errors {
            keep_error(&mut total.errors, error);
        }
        for warning in report.warnings {
            keep(&mut total.warnings, warning, WARNINGS_KEPT);
        }
        merge_served(&mut total.served_at, report.served_at);
    }
    assert_eq!(served_expired(server, &total), 0, "tokens handed out after the server's expiry of them");
    (total, server.token_requests() - before, started.elapsed().as_secs_f64(), gaps)
}

/// Adds `more` to `served_at`, keeping each token's latest moment.
pub(crate) fn merge_served(
    served_at: &mut std::collections::BTreeMap<String, u64>,
    more: std::collections::BTreeMap<String, u64>,
) {
    for (token, at) in more {
        let latest = served_at.entry(token).or_default();
        *latest = (*latest).max(at);
    }
}

/// Tokens a report's workers handed out at or after the moment `server`
/// says they expired (or that it never issued): the check of the deadline
/// that does not rely on the providers' clocks.
pub(crate) fn served_expired(server: &TestServer, report: &Report) -> u64 {
    let millis = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    report
        .served_at
        .iter()
        .filter(|(token, at)| server.access_token_expiry(token).is_none_or(|expiry| **at >= millis(expiry)))
        .count() as u64
}

/// A refresh starts between 0.5 and 0.75 s after a 2-second token was
/// issued (1 s hard margin, 0.5 s soft window, jittered): over `elapsed`
/// seconds, one fleet-wide refresh per cycle is at most `elapsed / 0.5 + 1`
/// requests, where four processes refreshing on their own would make four
/// times the cycles. At least one request per lifetime was needed to serve
/// without a failure.
pub(crate) fn assert_one_request_per_cycle(requests: u64, elapsed: f64, processes: usize) {
    let most = (elapsed / 0.5).ceil() as u64 + 1;
    let least = (elapsed / 2.0).floor() as u64;
    eprintln!("{processes} processes, {elapsed:.1} s: {requests} token requests (one per cycle: {least}..={most})");
    assert!(requests <= most, "{requests} requests in {elapsed:.1} s: more than one per refresh cycle");
    assert!(requests >= least, "{requests} requests in {elapsed:.1} s: fewer than one per token lifetime");
}

pub(crate) fn assert_clean(report: &Report) {
    assert!(report.served > 0, "{report:?}");
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
    let redis = Redis::start();
    // The user signed in on one replica: its token set is in the store.
    rotates_without_reuse(&server, &redis.url, "rt-fleet-0", 4, 15, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_holding_the_lease_is_taken_over_after_the_lease_time() {
    let server = server().await;
    let redis = Redis::start();
    let lease = |key: &str| format!("filevine:tokens:{{{key}}}:lease");
    killed_holder_is_taken_over(&server, &redis.url, |key| redis.exists(&lease(key))).await;
}

/// `workers` replicas share the user's session (seeded with
/// `refresh_token`) through `store` for `seconds`: at least `min_cycles`
/// rotations, one request per cycle, no rotated-away refresh token ever
/// presented.
pub(crate) async fn rotates_without_reuse(
    server: &TestServer,
    store: &str,
    refresh_token: &str,
    workers: usize,
    seconds: u64,
    min_cycles: u64,
) {
    seed(server, store, SESSION, refresh_token).await;
    let (report, requests, elapsed) = fleet(server, store, "session", workers, seconds).await;
    assert_clean(&report);
    assert!(requests >= min_cycles, "{requests} refreshes: at least {min_cycles} rotation cycles");
    assert_one_request_per_cycle(requests, elapsed, workers);
    assert_eq!(server.refresh_token_reuses(), 0, "no rotated-away refresh token was presented");
    assert_eq!(server.grant_requests("refresh_token"), requests + 1);
}

/// A worker process asks for a PAT token through `store` and is killed
/// while it holds the lease (its request held at the server); a provider
/// of this process then takes over once the lease expires: exactly one
/// more request, and the lease released. `holds(key)` says whether the
/// store holds a lease on a key.
pub(crate) async fn killed_holder_is_taken_over(server: &TestServer, store: &str, holds: impl Fn(&str) -> bool) {
    let held = server.hold_token_responses();
    let config = WorkerConfig {
        authority: server.url().to_owned(),
        store: store.to_owned(),
        mode: "hold".to_owned(),
        seconds: 0,
        tasks: 0,
        sessions: Vec::new(),
        clock_file: None,
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
        .store(store::open(store).unwrap())
        .total_timeout(Duration::from_secs(2))
        .lease_time(Duration::from_secs(3))
        .build()
        .unwrap();
    let key = provider.store_key().unwrap().as_str().to_owned();
    assert!(holds(&key), "the worker holds the lease");
    worker.kill().unwrap();
    worker.wait().unwrap();
    drop(held);
    // The lease outlives its holder, then this provider takes over.
    let token = provider.token().await.unwrap();
    assert!(server.is_valid_access_token(token.expose_secret()));
    assert_eq!(server.token_requests(), 2, "the dead worker's request and the takeover's");
    assert!(!holds(&key), "released after the takeover");
}

/// The user's token set as stored by a provider that signed in with
/// `refresh_token` (the seed of a `session` fleet).
pub(crate) async fn seed(server: &TestServer, store: &str, session: &str, refresh_token: &str) {
    server.add_refresh_token(refresh_token);
    let seed = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(
            Credentials::refresh_token(RefreshToken::new(refresh_token).unwrap())
                .with_client(ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
        )
        .store(store::open(store).unwrap())
        .store_key(StoreKey::session(session))
        .build()
        .unwrap();
    seed.token().await.unwrap();
}

/// The Redis key of `session`'s token set: the session key as the
/// providers bind it to the authority and client (read from a provider
/// built for it; building sends nothing).
pub(crate) fn entry_key(server: &TestServer, session: &str) -> String {
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .stored_session(ClientId::new(CLIENT_ID).unwrap(), None)
        .store(store::MemoryStore::new())
        .store_key(StoreKey::session(session))
        .build()
        .unwrap();
    format!("filevine:tokens:{{{}}}", provider.store_key().unwrap().as_str())
}

/// The stored version of `session`'s token set on `node` (its primary).
fn stored_version(server: &TestServer, node: &Server, session: &str) -> Option<u64> {
    node.cmd::<Option<u64>>(redis::cmd("HGET").arg(entry_key(server, session)).arg("v"))
}

/// Waits (off the runtime) until the fleet has rotated `session`'s token a
/// few times, then SIGKILLs `primary` right after the next rotation was
/// saved there.
async fn kill_after_a_saved_rotation(server: &TestServer, primary: &Server, session: &str) {
    let start = server.grant_requests("refresh_token");
    while server.grant_requests("refresh_token") < start + 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| {
        let saved = stored_version(server, primary, session);
        while stored_version(server, primary, session) == saved {
            std::thread::sleep(Duration::from_millis(2));
        }
        primary.signal("KILL");
    });
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The checks of a failover fleet: nothing refused, nobody signed out, no
/// expired token, one refresh per cycle per user, exact counts at the
/// provider (every refresh request is one rotation of one user's token).
fn assert_failover_clean(
    form: &str,
    server: &TestServer,
    report: &Report,
    requests: u64,
    elapsed: f64,
    users: usize,
    gaps: &mut [u64],
) {
    let (median, max) = (median(gaps), gaps.iter().copied().max().unwrap());
    eprintln!("{form} failover: longest gap without a token per worker: median {median} ms, max {max} ms");
    for warning in &report.warnings {
        eprintln!("{form} failover: a worker logged: {warning}");
    }
    assert_clean(report);
    assert_eq!(server.refresh_token_reuses(), 0, "no rotated-away refresh token was presented");
    assert_eq!(
        server.grant_requests("refresh_token"),
        requests + users as u64,
        "every request a refresh, plus the seeds"
    );
    assert_one_request_per_cycle(requests / users as u64, elapsed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_loses_no_rotated_refresh_token() {
    let server = server().await;
    let group = SentinelGroup::start();
    let url = group.url();
    seed(&server, &url, SESSION, "rt-sentinel-0").await;
    let primary = group.primary_port();
    let sessions = [SESSION.to_owned()];
    let (fleet, ()) = tokio::join!(
        fleet_of(&server, &url, "session", &sessions, 3, 15),
        kill_after_a_saved_rotation(&server, group.nodes.iter().find(|n| n.port == primary).unwrap(), SESSION)
    );
    let (report, requests, elapsed, mut gaps) = fleet;
    // The Sentinels may still be agreeing on the promotion when the fleet
    // ends (the fleet's clients follow it as soon as it is made).
    tokio::task::block_in_place(|| {
        crate::support::redis::eventually_or(
            "the Sentinels to promote the replica",
            Duration::from_secs(30),
            || group.primary_port() != primary,
            || group.describe(),
        )
    });
    assert_failover_clean("sentinel", &server, &report, requests, elapsed, 1, &mut gaps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_loses_no_rotated_refresh_token() {
    let server = server().await;
    let cluster = Cluster::start();
    let url = cluster.url();
    // Users whose keys live on each of the three primaries.
    let mut sessions: Vec<String> = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for n in 0.. {
        let session = format!("cluster-user-{n}");
        if covered.insert(cluster.primary_for(&entry_key(&server, &session))) {
            sessions.push(session);
        }
        if covered.len() == 3 {
            break;
        }
    }
    for (n, session) in sessions.iter().enumerate() {
        seed(&server, &url, session, &format!("rt-cluster-{n}")).await;
    }
    let victim = &sessions[0];
    let key = entry_key(&server, victim);
    let primary = cluster.primary_for(&key);
    let (fleet, ()) = tokio::join!(
        fleet_of(&server, &url, "session", &sessions, 3, 15),
        kill_after_a_saved_rotation(&server, cluster.node(primary), victim)
    );
    let (report, requests, elapsed, mut gaps) = fleet;
    // The node asked learns of the promotion by gossip, which can trail
    // the clients that already write to the new primary.
    tokio::task::block_in_place(|| {
        crate::support::redis::eventually_or(
            "the replica to take over the slot",
            Duration::from_secs(30),
            || cluster.primary_for(&key) != primary,
            || cluster.describe(),
        )
    });
    let promoted = cluster.primary_for(&key);
    assert_failover_clean("cluster", &server, &report, requests, elapsed, 3, &mut gaps);

    // Its replica gone too, the slot has no server: the store says so.
    cluster.node(promoted).signal("KILL");
    let survivor = cluster.nodes.iter().find(|n| n.port != primary && n.port != promoted).unwrap();
    tokio::task::block_in_place(|| {
        crate::support::redis::eventually("the cluster to go down", Duration::from_secs(30), || {
            survivor.cluster_info().get("cluster_state").is_some_and(|s| s == "fail")
        })
    });
    let store = store::open(&url).unwrap();
    let err = store.load(key.trim_start_matches("filevine:tokens:{").trim_end_matches('}')).await.unwrap_err();
    let text = filevine_identity_ext::error::Report(&err).to_string();
    assert!(text.contains("CLUSTERDOWN"), "{text}");
}

/// A seeded user session in a Redis store, for the lost-write tests: tokens
/// of the default lifetime, so no deadline passes during a test.
struct StoredSession {
    server: TestServer,
    redis: Redis,
    session: &'static str,
    key: String,
}

impl StoredSession {
    async fn start(session: &'static str) -> Self {
        let server = TestServer::start().await.unwrap();
        server.add_client(CLIENT_ID, CLIENT_SECRET);
        let redis = Redis::start();
        seed(&server, &redis.url, session, &format!("rt-{session}-0")).await;
        let key = entry_key(&server, session);
        Self { server, redis, session, key }
    }

    fn provider(&self) -> TokenProvider {
        session_builder(self.server.url(), &self.redis.url, self.session).build().unwrap()
    }

    fn version(&self) -> Option<u64> {
        stored_version(&self.server, &self.redis.server, self.session)
    }

    /// The stored entry as it is now, for [`Self::go_back_to`].
    fn dump(&self) -> Vec<u8> {
        self.redis.server.cmd(redis::cmd("DUMP").arg(&self.key))
    }

    /// The failover that loses writes: the entry is again what `dumped`
    /// holds.
    fn go_back_to(&self, dumped: Vec<u8>) {
        let () = self.redis.server.cmd(redis::cmd("RESTORE").arg(&self.key).arg(0).arg(dumped).arg("REPLACE"));
    }
}

/// A failover that loses a saved rotation (the store goes back to the
/// entry the rotation replaced, as when the promoted replica had not
/// received it) costs nobody the session. The process that holds the newer
/// refresh token saves its next set over the old entry, at the version
/// number of the lost one; a process that had read the lost set adopts
/// that new set although its version number is the one it knows, instead
/// of presenting its spent refresh token and asking the user to sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_lost_in_a_failover_costs_nobody_the_session() {
    let stored = StoredSession::start("lost-write-user").await;
    let server = &stored.server;
    let (rotating, reading) = (stored.provider(), stored.provider());
    rotating.token().await.unwrap();
    let replaced = stored.dump();
    rotating.invalidate();
    rotating.token().await.unwrap();
    let read = reading.token().await.unwrap();
    assert_eq!(server.grant_requests("refresh_token"), 2, "the seed's and one rotation; the other provider read it");
    assert_eq!(stored.version(), Some(2));

    // The failover: the store is back at version 1, whose refresh token
    // the rotation spent.
    stored.go_back_to(replaced);
    assert_eq!(stored.version(), Some(1));

    rotating.invalidate();
    let rotated = rotating.token().await.unwrap();
    assert_eq!(stored.version(), Some(2), "saved over the entry the store went back to");
    reading.invalidate();
    let adopted = reading.token().await.unwrap();
    assert_ne!(adopted.expose_secret(), read.expose_secret());
    assert_eq!(adopted.expose_secret(), rotated.expose_secret(), "the set saved after the failover");
    assert_eq!(server.grant_requests("refresh_token"), 3, "one more rotation, by the provider holding the newer token");
    assert_eq!(server.refresh_token_reuses(), 0, "no spent refresh token was presented");
}

/// The same loss while a refresh is on the wire: the store goes back below
/// the version the refresh read, so its compare-and-swap fails on an older
/// entry. It saves its answer over that entry, and keeps the new refresh
/// token, instead of taking the spent one the entry holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_lost_during_a_refresh_is_saved_over() {
    let stored = StoredSession::start("lost-under-refresh-user").await;
    let server = &stored.server;
    let (refreshing, other) = (stored.provider(), stored.provider());
    other.token().await.unwrap();
    let replaced = stored.dump();
    other.invalidate();
    other.token().await.unwrap();
    assert_eq!(stored.version(), Some(2));
    // Takes version 2 from the store (no request).
    refreshing.token().await.unwrap();

    // `refreshing` reads version 2 again and asks for a new token; the
    // failover takes the store back to version 1 while the answer is held.
    let requests = server.token_requests();
    let held = server.hold_token_responses();
    refreshing.invalidate();
    let refresh = tokio::spawn(async move { refreshing.token().await.map(|token| (token, refreshing)) });
    tokio::time::timeout(Duration::from_secs(30), server.wait_for_token_requests(requests + 1))
        .await
        .expect("the refresh asked for a token");
    stored.go_back_to(replaced);
    drop(held);
    let (token, refreshing) = refresh.await.unwrap().unwrap();
    assert_eq!(stored.version(), Some(2), "saved over version 1");

    // It kept the refresh token it was given: its next refresh works, and
    // the other provider takes what it saves.
    refreshing.invalidate();
    let next = refreshing.token().await.unwrap();
    assert_ne!(next.expose_secret(), token.expose_secret());
    other.invalidate();
    assert_eq!(other.token().await.unwrap().expose_secret(), next.expose_secret());
    assert_eq!(server.grant_requests("refresh_token"), 4, "the seed's and three rotations");
    assert_eq!(server.refresh_token_reuses(), 0, "no spent refresh token was presented");
}
