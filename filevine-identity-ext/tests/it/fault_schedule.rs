//! A seeded, randomized schedule of faults over a fleet of worker processes
//! that share users' sessions (2-second tokens, rotating refresh tokens),
//! on each store form, with a TCP fault proxy in front of the store and of
//! the identity provider (and of the store where a client reaches it at one
//! address), process faults (SIGSTOP/SIGCONT, SIGKILL), the machine's wall
//! clock stepped forward or back, Redis `CLIENT PAUSE … WRITE`, Sentinel and
//! Cluster failovers, and PostgreSQL restarts. The
//! checker reads the
//! identity provider's counters and the workers' reports:
//!
//! - no refresh token refused as reused;
//! - nobody asked to sign in again;
//! - no expired token handed out, by the provider's clock and by the
//!   identity provider's record of each token's expiry (a clock step moves
//!   the first);
//! - refreshes per user within the token cycles, plus the faults.
//!
//! The identity provider accepts a rotated-away refresh token for a minute
//! after its rotation (a reuse interval, as providers offer): a refresh
//! whose answer a fault cut after the provider rotated the token, or a
//! worker killed between the answer and its save, leaves nothing else to
//! retry with. Such replays are counted apart and bounded by the faults
//! that can cause them, so a replay of a spent token outside that (the
//! fault class of `late_writes`) still fails the run.
//!
//! A failure prints the seed and the schedule; `FV_FAULT_SEED=<seed>`
//! runs that schedule first. `FV_FAULT_BUDGET_SECS` sets the seconds of
//! seeds per store form (default 25: CI's budget); a soak is the same
//! command with a larger budget (see README, "Reliability").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use filevine_identity_ext::Region;

use crate::fleet::{self, Report, WorkerConfig};
use crate::support::postgres::Postgres;
use crate::support::proxy::{Mode, Proxy};
use crate::support::redis::{Cluster, MASTER, Redis, SentinelGroup, Server};

/// Worker processes per run.
const WORKERS: usize = 3;
/// Users whose sessions the workers share.
const USERS: usize = 2;
/// Seconds each worker runs.
const RUN_SECS: u64 = 6;
/// How long a spent refresh token is still accepted.
const REUSE_INTERVAL: Duration = Duration::from_secs(60);

/// splitmix64: a seed gives one sequence, on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Store,
    IdentityProvider,
}

/// One injected fault.
#[derive(Debug, Clone)]
enum Fault {
    /// The proxy in front of `target` in `mode` for `ms`.
    Network { target: Target, mode: Mode, ms: u64 },
    /// SIGSTOP, then SIGCONT `ms` later (a long pause of the process).
    Pause { worker: usize, ms: u64 },
    /// SIGKILL; the worker is not started again.
    Kill { worker: usize },
    /// Redis stops executing writes (`CLIENT PAUSE ms WRITE`; every
    /// primary of a cluster).
    ClientPause { ms: u64 },
    /// The machine's wall clock is set (every worker's, as its providers
    /// see it): forward or back by `ms`, for the rest of the run.
    ClockStep { forward: bool, ms: u64 },
    /// A replica is promoted: `SENTINEL FAILOVER`, or `CLUSTER FAILOVER` on
    /// the replica `replica` picks (modulo the replicas there are).
    Failover { replica: usize },
    /// PostgreSQL restarts (`pg_ctl restart -m fast`: every connection cut).
    RestartDatabase,
}

impl Fault {
    /// The kind, for the counts.
    fn kind(&self) -> String {
        match self {
            Self::Network { target: Target::Store, mode, .. } => format!("store {}", mode.name()),
            Self::Network { target: Target::IdentityProvider, mode, .. } => {
                format!("identity provider {}", mode.name())
            }
            Self::Pause { .. } => "SIGSTOP/SIGCONT".to_owned(),
            Self::Kill { .. } => "SIGKILL".to_owned(),
            Self::ClientPause { .. } => "CLIENT PAUSE".to_owned(),
            Self::RestartDatabase => "database restart".to_owned(),
            Self::Failover { .. } => "failover".to_owned(),
            Self::ClockStep { forward: true, .. } => "clock stepped forward".to_owned(),
            Self::ClockStep { forward: false, .. } => "clock stepped back".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct Step {
    at_ms: u64,
    fault: Fault,
}

/// The store forms the schedule runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Redis,
    Sentinel,
    Cluster,
    Postgres,
    PgBouncer,
    File,
}

impl Form {
    /// Whether clients reach the store at one address a proxy can stand
    /// at (Sentinel and Cluster clients connect to the addresses the
    /// deployment announces).
    fn has_store_proxy(self) -> bool {
        matches!(self, Self::Redis | Self::Postgres | Self::PgBouncer)
    }

    fn is_redis(self) -> bool {
        matches!(self, Self::Redis | Self::Sentinel | Self::Cluster)
    }
}

/// The schedule `seed` gives for `form`: three to six faults within the
/// run, at most one SIGKILL.
fn schedule(seed: u64, form: Form) -> Vec<Step> {
    let mut rng = Rng(seed);
    let mut killed = false;
    let mut steps: Vec<Step> = (0..rng.between(3, 6))
        .map(|_| {
            let at_ms = rng.between(500, RUN_SECS * 1000 - 1500);
            let ms = rng.between(200, 3000);
            let worker = usize::try_from(rng.below(WORKERS as u64)).unwrap();
            let fault = match rng.below(11) {
                0..=4 => {
                    let target = if form.has_store_proxy() && rng.below(2) == 0 {
                        Target::Store
                    } else {
                        Target::IdentityProvider
                    };
                    let mode = match rng.below(6) {
                        0 => Mode::Delay(Duration::from_millis(rng.between(50, 400))),
                        1 => Mode::Stall,
                        2 => Mode::DropBefore,
                        3 => Mode::DropAfter,
                        4 => Mode::Reset,
                        _ => Mode::BlackHole,
                    };
                    Fault::Network { target, mode, ms }
                }
                5 | 6 => Fault::Pause { worker, ms },
                7 => Fault::ClockStep { forward: rng.below(2) == 0, ms: rng.between(1_000, 30_000) },
                8 | 9 if matches!(form, Form::Sentinel | Form::Cluster) && rng.below(2) == 0 => {
                    Fault::Failover { replica: usize::try_from(rng.below(3)).unwrap() }
                }
                8 | 9 if form.is_redis() => Fault::ClientPause { ms },
                8 | 9 if matches!(form, Form::Postgres | Form::PgBouncer) => Fault::RestartDatabase,
                _ if !killed => {
                    killed = true;
                    Fault::Kill { worker }
                }
                _ => Fault::Pause { worker, ms },
            };
            Step { at_ms, fault }
        })
        .collect();
    steps.sort_by_key(|step| step.at_ms);
    steps
}

/// A store of one form for a whole test: its URL for seeding, and the
/// address a proxy forwards to (none where clients reach several).
struct Store {
    form: Form,
    url: String,
    upstream: Option<SocketAddr>,
    deployment: Deployment,
}

/// The servers behind a store, which faults act on.
enum Deployment {
    Redis(Redis),
    Sentinel(SentinelGroup),
    Cluster(Cluster),
    /// A cluster of its own (restarted by a fault), the database's URL,
    /// and PgBouncer in front of it for that form.
    Postgres(std::sync::Arc<Postgres>, String, Option<crate::support::postgres::Bouncer>),
    File(tempfile::TempDir),
}

fn address(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).unwrap();
    format!("127.0.0.1:{}", parsed.port().unwrap()).parse().unwrap()
}

impl Store {
    async fn start(form: Form) -> Store {
        let blocking = |start: fn() -> Deployment| async move { tokio::task::spawn_blocking(start).await.unwrap() };
        let deployment = match form {
            Form::Redis => blocking(|| Deployment::Redis(Redis::start())).await,
            Form::Sentinel => blocking(|| Deployment::Sentinel(SentinelGroup::start())).await,
            Form::Cluster => blocking(|| Deployment::Cluster(Cluster::start())).await,
            Form::Postgres | Form::PgBouncer => {
                let postgres = std::sync::Arc::new(tokio::task::spawn_blocking(Postgres::start).await.unwrap());
                let url = postgres.database("fault_schedule");
                let store = filevine_identity_ext::store::PostgresStore::open(&url).unwrap();
                store.migrate().await.unwrap();
                let bouncer = (form == Form::PgBouncer)
                    .then(|| postgres.bouncer("fault_schedule").expect("pgbouncer is installed (cargo xtask setup)"));
                Deployment::Postgres(postgres, url, bouncer)
            }
            Form::File => Deployment::File(tempfile::tempdir().unwrap()),
        };
        let url = match &deployment {
            Deployment::Redis(redis) => redis.url.clone(),
            Deployment::Sentinel(group) => group.url(),
            Deployment::Cluster(cluster) => cluster.url(),
            Deployment::Postgres(_, _, Some(bouncer)) => bouncer.url.clone(),
            Deployment::Postgres(_, url, None) => url.clone(),
            Deployment::File(dir) => format!("file:{}", dir.path().join("tokens").display()),
        };
        let upstream = form.has_store_proxy().then(|| address(&url));
        Store { form, url, upstream, deployment }
    }

    /// The Redis servers that take writes now: where `CLIENT PAUSE` goes.
    fn primaries(&self) -> Vec<&Server> {
        match &self.deployment {
            Deployment::Redis(redis) => vec![&redis.server],
            Deployment::Sentinel(group) => {
                let port = group.primary_port();
                group.nodes.iter().filter(|n| n.port == port).collect()
            }
            Deployment::Cluster(cluster) => cluster.primaries().into_iter().map(|port| cluster.node(port)).collect(),
            _ => Vec::new(),
        }
    }

    /// A replica takes over; `false` when the deployment refused (a
    /// failover already under way, a replica not yet in sync).
    fn fail_over(&self, replica: usize) -> bool {
        match &self.deployment {
            Deployment::Sentinel(group) => {
                let sentinel = &group.sentinels[replica % group.sentinels.len()];
                sentinel.try_cmd::<String>(redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER)).is_ok()
            }
            Deployment::Cluster(cluster) => {
                let replicas: Vec<&Server> = cluster.nodes.iter().filter(|n| n.is_replica()).collect();
                let Some(node) = replicas.get(replica % replicas.len().max(1)) else { return false };
                node.try_cmd::<String>(redis::cmd("CLUSTER").arg("FAILOVER")).is_ok()
            }
            _ => false,
        }
    }

    /// Waits until the deployment is whole again after a seed's faults: a
    /// Redis deployment with every replica in sync and one view of who is
    /// primary, so each seed starts from the same state.
    fn settle(&self) {
        let limit = Duration::from_secs(60);
        match &self.deployment {
            Deployment::Sentinel(group) => crate::support::redis::eventually_or(
                "the Sentinel group to settle",
                limit,
                || group.is_settled(),
                || group.describe(),
            ),
            Deployment::Cluster(cluster) => crate::support::redis::eventually_or(
                "the cluster to settle",
                limit,
                || cluster.is_settled(),
                || cluster.describe(),
            ),
            _ => {}
        }
    }

    /// The URL the workers use: through `proxy` when there is one.
    fn through(&self, proxy: Option<&Proxy>) -> String {
        let Some(proxy) = proxy else { return self.url.clone() };
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_port(Some(proxy.port)).unwrap();
        url.to_string()
    }
}

/// What one seed's run saw.
struct Outcome {
    report: Report,
    /// Tokens handed out at or after the server's expiry of them.
    served_expired: u64,
    refreshes: u64,
    reuses: u64,
    grace_replays: u64,
    may_replay: u64,
    elapsed: f64,
    hits: BTreeMap<String, u64>,
    /// Faults the deployment refused (a failover while one was under way).
    refused: Vec<String>,
}

/// Runs `steps` against a fleet on `store`; the users' sessions are named
/// after `seed`.
async fn run(seed: u64, store: &Store, steps: &[Step]) -> Outcome {
    let server = fleet::server().await;
    server.set_refresh_token_reuse_interval(REUSE_INTERVAL);
    let idp = Proxy::start(address(server.url())).await;
    let store_proxy = match store.upstream {
        Some(upstream) => Some(Proxy::start(upstream).await),
        None => None,
    };
    let sessions: Vec<String> = (0..USERS).map(|user| format!("faults-{seed}-{user}")).collect();
    let authority = format!("http://127.0.0.1:{}", idp.port);
    for (user, session) in sessions.iter().enumerate() {
        let refresh_token = format!("rt-faults-{seed}-{user}");
        server.add_refresh_token(&refresh_token);
        let region = Region::custom(&authority).unwrap();
        let target = filevine_identity_ext::store::open(&store.url).unwrap();
        crate::late_writes::sign_in(region, target, session, &refresh_token).await;
    }
    let seeded = server.grant_requests("refresh_token");
    let clock = tempfile::NamedTempFile::new().unwrap();
    let mut offset_ms: i64 = 0;
    let config = WorkerConfig {
        authority,
        store: store.through(store_proxy.as_ref()),
        mode: "session".to_owned(),
        seconds: RUN_SECS,
        tasks: 8,
        sessions: sessions.clone(),
        clock_file: Some(clock.path().display().to_string()),
    };
    let started = Instant::now();
    let mut workers: Vec<Option<std::process::Child>> =
        (0..WORKERS).map(|_| Some(fleet::spawn_worker(&config))).collect();
    let pids: Vec<u32> = workers.iter().map(|child| child.as_ref().unwrap().id()).collect();
    let mut reverts = Vec::new();
    let mut killed = Vec::new();
    let mut refused = Vec::new();
    for step in steps {
        let at = started + Duration::from_millis(step.at_ms);
        tokio::time::sleep_until(at.into()).await;
        match step.fault {
            Fault::Network { target, mode, ms } => {
                let proxy = match target {
                    Target::Store => store_proxy.as_ref().unwrap(),
                    Target::IdentityProvider => &idp,
                };
                proxy.set(mode);
                reverts.push((Instant::now() + Duration::from_millis(ms), Revert::Proxy(target, mode)));
            }
            Fault::Pause { worker, ms } => {
                signal(pids[worker], "STOP");
                reverts.push((Instant::now() + Duration::from_millis(ms), Revert::Continue(pids[worker])));
            }
            Fault::Kill { worker } => {
                signal(pids[worker], "KILL");
                killed.push(worker);
            }
            Fault::ClientPause { ms } => tokio::task::block_in_place(|| {
                for primary in store.primaries() {
                    // A primary that just became a replica refuses nothing
                    // here; one that does not answer is no pause.
                    let _ = primary.try_cmd::<()>(redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("WRITE"));
                }
            }),
            Fault::RestartDatabase => {
                let Deployment::Postgres(postgres, _, _) = &store.deployment else { unreachable!("a PostgreSQL form") };
                let postgres = std::sync::Arc::clone(postgres);
                tokio::task::spawn_blocking(move || postgres.restart()).await.unwrap();
            }
            Fault::ClockStep { forward, ms } => {
                let ms = i64::try_from(ms).unwrap();
                offset_ms += if forward { ms } else { -ms };
                std::fs::write(clock.path(), offset_ms.to_string()).unwrap();
            }
            Fault::Failover { replica } => {
                if !tokio::task::block_in_place(|| store.fail_over(replica)) {
                    refused.push(step.fault.kind());
                }
            }
        }
        // Reverts that are due, in order.
        reverts.sort_by_key(|(at, _)| *at);
        while reverts.first().is_some_and(|(at, _)| *at <= Instant::now()) {
            let (_, revert) = reverts.remove(0);
            revert.apply(&idp, store_proxy.as_ref());
        }
    }
    reverts.sort_by_key(|(at, _)| *at);
    for (at, revert) in reverts {
        tokio::time::sleep_until(at.into()).await;
        revert.apply(&idp, store_proxy.as_ref());
    }
    let mut report = Report::default();
    for (n, child) in workers.iter_mut().enumerate() {
        let mut child = child.take().unwrap();
        if killed.contains(&n) {
            tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
            continue;
        }
        let one = fleet::report(child).await;
        report.served += one.served;
        report.expired += one.expired;
        report.failures += one.failures;
        report.sign_in_required += one.sign_in_required;
        fleet::merge_served(&mut report.served_at, one.served_at);
        for error in one.errors.into_iter().chain(one.warnings) {
            if report.errors.len() < 8 && !report.errors.contains(&error) {
                report.errors.push(error);
            }
        }
    }
    let mut hits: BTreeMap<String, u64> = BTreeMap::new();
    for (name, proxy) in [("identity provider", Some(&idp)), ("store", store_proxy.as_ref())] {
        for (mode, count) in proxy.map(Proxy::hits).unwrap_or_default() {
            *hits.entry(format!("{name} {mode}")).or_default() += count;
        }
    }
    Outcome {
        served_expired: fleet::served_expired(&server, &report),
        report,
        refreshes: server.grant_requests("refresh_token") - seeded,
        reuses: server.refresh_token_reuses(),
        grace_replays: server.refresh_token_grace_replays(),
        may_replay: cut_answers(&idp) + killed.len() as u64,
        elapsed: started.elapsed().as_secs_f64(),
        hits,
        refused,
    }
}

/// Identity provider answers the proxy cut or held past a timeout: each
/// can leave a worker without the refresh token the provider rotated to,
/// so that it retries with the spent one.
fn cut_answers(idp: &Proxy) -> u64 {
    let hits = idp.hits();
    ["drop-after", "reset", "black-hole", "stall"].iter().filter_map(|mode| hits.get(mode)).sum()
}

/// A fault's end.
enum Revert {
    Proxy(Target, Mode),
    Continue(u32),
}

impl Revert {
    fn apply(&self, idp: &Proxy, store: Option<&Proxy>) {
        match self {
            Self::Proxy(Target::IdentityProvider, mode) => idp.clear(*mode),
            Self::Proxy(Target::Store, mode) => store.unwrap().clear(*mode),
            Self::Continue(pid) => signal(*pid, "CONT"),
        }
    }
}

fn signal(pid: u32, signal: &str) {
    // A worker that already ended is no error.
    let _ = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// The invariants; `Err` names each one broken.
fn check(outcome: &Outcome, faults: usize) -> Result<(), String> {
    let mut broken = Vec::new();
    if outcome.reuses != 0 {
        broken.push(format!("{} refresh tokens refused as reused", outcome.reuses));
    }
    if outcome.grace_replays > outcome.may_replay {
        broken.push(format!(
            "{} spent refresh tokens replayed, more than the {} answers cut (or workers killed) that can cause one",
            outcome.grace_replays, outcome.may_replay
        ));
    }
    if outcome.report.sign_in_required != 0 {
        broken.push(format!("{} sign-ins required", outcome.report.sign_in_required));
    }
    if outcome.report.expired != 0 {
        broken.push(format!("{} expired tokens handed out", outcome.report.expired));
    }
    if outcome.served_expired != 0 {
        broken.push(format!("{} tokens handed out after the server's expiry of them", outcome.served_expired));
    }
    if outcome.report.served == 0 {
        broken.push("no token served".to_owned());
    }
    // One refresh per cycle (0.5 s at the earliest for 2-second tokens) per
    // user, plus one per fault and one per answer cut (each is retried).
    let most =
        USERS as u64 * ((outcome.elapsed / 0.5).ceil() as u64 + 1) + faults as u64 * USERS as u64 + outcome.may_replay;
    if outcome.refreshes > most {
        broken.push(format!("{} refreshes in {:.1} s: more than {most}", outcome.refreshes, outcome.elapsed));
    }
    if broken.is_empty() { Ok(()) } else { Err(broken.join("; ")) }
}

/// Seconds of seeds per form.
fn budget() -> Duration {
    let seconds = std::env::var("FV_FAULT_BUDGET_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    Duration::from_secs(seconds)
}

/// Runs seeds on `form` until the budget is spent, from `FV_FAULT_SEED` or
/// the form's fixed first seed; panics with the seed and schedule of the
/// first run that breaks an invariant.
async fn seeds(form: Form, first: u64) {
    let first = std::env::var("FV_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(first);
    let store = Store::start(form).await;
    let started = Instant::now();
    let (mut runs, mut injected, mut hits) = (0_u64, BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
    let mut refused = 0_u64;
    let mut seed = first;
    while runs == 0 || started.elapsed() < budget() {
        tokio::task::block_in_place(|| store.settle());
        let steps = schedule(seed, store.form);
        let outcome = run(seed, &store, &steps).await;
        if let Err(broken) = check(&outcome, steps.len()) {
            let schedule: Vec<String> = steps.iter().map(|s| format!("  at {} ms: {:?}", s.at_ms, s.fault)).collect();
            panic!(
                "{form:?}, seed {seed} (re-run: FV_FAULT_SEED={seed}): {broken}\nschedule:\n{}\nworkers said: {:?}",
                schedule.join("\n"),
                outcome.report.errors
            );
        }
        for step in &steps {
            *injected.entry(step.fault.kind()).or_default() += 1;
        }
        for kind in &outcome.refused {
            *injected.get_mut(kind).expect("a fault of the schedule") -= 1;
            refused += 1;
        }
        for (kind, count) in outcome.hits {
            *hits.entry(kind).or_default() += count;
        }
        runs += 1;
        seed += 1;
    }
    eprintln!(
        "fault schedule on {form:?}: {runs} seeds ({first}..{seed}), faults injected {injected:?} ({refused} refused by the deployment), chunks hit {hits:?}, invariant violations 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_schedule_on_redis() {
    seeds(Form::Redis, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_schedule_on_redis_sentinel() {
    seeds(Form::Sentinel, 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_schedule_on_redis_cluster() {
    seeds(Form::Cluster, 6_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_schedule_on_postgres() {
    seeds(Form::Postgres, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_schedule_on_postgres_through_pgbouncer() {
    seeds(Form::PgBouncer, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_schedule_on_the_file_store() {
    seeds(Form::File, 4_000).await;
}

#[test]
fn a_seed_gives_one_schedule() {
    let show = |steps: Vec<Step>| format!("{steps:?}");
    assert_eq!(show(schedule(7, Form::Redis)), show(schedule(7, Form::Redis)));
    assert_ne!(show(schedule(7, Form::Redis)), show(schedule(8, Form::Redis)));
    for seed in 0..200 {
        let steps = schedule(seed, Form::File);
        assert!((3..=6).contains(&steps.len()));
        assert!(steps.iter().filter(|s| matches!(s.fault, Fault::Kill { .. })).count() <= 1);
        assert!(
            !steps.iter().any(|s| matches!(s.fault, Fault::Network { target: Target::Store, .. })),
            "no store proxy"
        );
        assert!(steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }
}
