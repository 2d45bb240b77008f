//! Real Redis deployments on loopback, from the Debian package's
//! `redis-server` and `redis-cli`: one node, a primary with a replica and
//! three Sentinels, and a cluster of three primaries with a replica each
//! (`redis-cli --cluster create`). No persistence; each in a temporary
//! directory.
//!
//! Every server runs under a small shell that kills it when this test
//! binary's end of a pipe closes, so a deployment shared through a static
//! (started once per test binary) does not outlive the binary, and a
//! dropped one stops at once. Failover tests start their own deployment:
//! they kill its primaries.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One `redis-server` process (a node or a Sentinel).
pub struct Server {
    pub port: u16,
    pid: u32,
    shell: Child,
    /// Closing it (drop) makes the shell kill the server.
    _tie: Option<ChildStdin>,
}

fn free_port() -> u16 {
    // Bind, read, release. Another process could take it in between; the
    // readiness check would then fail loudly.
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free port whose cluster bus port (the port + 10000, which a cluster
/// node also listens on) is free too: a node whose bus port was taken
/// aborts ("Failed listening on port … (cluster)", seen in CI).
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        let Some(bus) = port.checked_add(10_000) else { continue };
        if std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
}

/// Why a `redis-server` did not start.
enum SpawnError {
    /// Another process took the port (or the cluster bus port) between
    /// the pick and the server's bind: pick again.
    PortTaken,
    /// Anything else, with the server's log.
    Failed(String),
}

impl Server {
    /// `redis-server` with the arguments `args` makes for a port `pick`
    /// chooses. A port is free only when picked: when another process takes
    /// it before the server binds it, a new one is picked (up to five
    /// times), rather than the test failing on a busy machine.
    fn spawn_on(pick: fn() -> u16, dir: &Path, args: impl Fn(u16) -> Vec<String>) -> Server {
        for _ in 0..5 {
            let port = pick();
            match Server::try_spawn(port, dir, &args(port)) {
                Ok(server) => return server,
                Err(SpawnError::PortTaken) => continue,
                Err(SpawnError::Failed(log)) => {
                    panic!("redis-server did not start on port {port} (apt-get install redis-server): {log}")
                }
            }
        }
        panic!("redis-server found its port taken five times in a row")
    }

    /// `redis-server <args…>` on `port`, logging to `<dir>/<port>.log`.
    fn try_spawn(port: u16, dir: &Path, args: &[String]) -> Result<Server, SpawnError> {
        let log = dir.join(format!("{port}.log"));
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(r#"redis-server "$@" >/dev/null 2>&1 & echo $!; read _; kill -9 $! 2>/dev/null"#)
            .arg("sh")
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            // A primary sends a new replica its data at once, not after the
            // default 5 s wait for more replicas to share the transfer.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh: {e}"));
        let mut line = String::new();
        BufReader::new(shell.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let pid = line.trim().parse().unwrap_or_else(|_| panic!("no pid from the redis-server shell: {line:?}"));
        let tie = shell.stdin.take();
        let server = Server { port, pid, shell, _tie: tie };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // The server exits at once when it cannot bind ("Could not
            // create server TCP listening socket …: bind: Address already
            // in use"); read first, as a PING to whoever holds the port may
            // wait for its timeout.
            if std::fs::read_to_string(&log).is_ok_and(|text| text.contains("Address already in use")) {
                return Err(SpawnError::PortTaken);
            }
            if server.try_cmd::<String>(&redis::cmd("PING")).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(SpawnError::Failed(std::fs::read_to_string(&log).unwrap_or_default()))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn try_cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url().as_str())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
        cmd.query(&mut connection)
    }

    /// Runs `cmd` on this server.
    pub fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        self.try_cmd(cmd).unwrap_or_else(|e| panic!("port {}: {e}", self.port))
    }

    /// `INFO <section>` as `field → value`.
    pub fn info(&self, section: &str) -> std::collections::HashMap<String, String> {
        fields(&self.cmd::<String>(redis::cmd("INFO").arg(section)))
    }

    /// `CLUSTER INFO` as `field → value`.
    pub fn cluster_info(&self) -> std::collections::HashMap<String, String> {
        fields(&self.cmd::<String>(redis::cmd("CLUSTER").arg("INFO")))
    }

    /// How many times this server ran `command` (`INFO commandstats`).
    pub fn calls(&self, command: &str) -> u64 {
        let stats = self.info("commandstats");
        stats
            .get(&format!("cmdstat_{command}"))
            .and_then(|v| v.split(',').find_map(|p| p.strip_prefix("calls=")))
            .map_or(0, |n| n.parse().unwrap())
    }

    /// Whether this node's replication is set up: a replica's link to its
    /// primary is up (its first sync done); a primary has a replica and
    /// every replica it has is online (`slaveN:…,state=online,…`).
    pub fn replication_in_sync(&self) -> bool {
        let Ok(text) = self.try_cmd::<String>(redis::cmd("INFO").arg("replication")) else { return false };
        let info = fields(&text);
        match info.get("role").map(String::as_str) {
            Some("slave") => info.get("master_link_status").is_some_and(|s| s == "up"),
            Some("master") => {
                let replicas: usize = info.get("connected_slaves").and_then(|n| n.parse().ok()).unwrap_or(0);
                replicas > 0
                    && (0..replicas).all(|i| {
                        info.get(&format!("slave{i}")).is_some_and(|line| line.split(',').any(|p| p == "state=online"))
                    })
            }
            _ => false,
        }
    }

    /// Whether this node answers and is a replica now.
    pub fn is_replica(&self) -> bool {
        self.try_cmd::<String>(redis::cmd("INFO").arg("replication"))
            .is_ok_and(|text| fields(&text).get("role").is_some_and(|role| role == "slave"))
    }

    /// Sends a signal (`KILL`, `STOP`, `CONT`) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid.to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }
}

/// The `field:value` lines of an `INFO`-style answer.
fn fields(text: &str) -> std::collections::HashMap<String, String> {
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        self._tie.take();
        let _ = self.shell.wait();
    }
}

/// Waits for `condition`, polling; panics with `what` after `limit`.
pub fn eventually(what: &str, limit: Duration, condition: impl FnMut() -> bool) {
    eventually_or(what, limit, condition, String::new);
}

/// [`eventually`], with what `state` says at the deadline in the panic
/// message (a deployment's own view, when it did not do what was awaited).
pub fn eventually_or(what: &str, limit: Duration, mut condition: impl FnMut() -> bool, state: impl FnOnce() -> String) {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", state());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One node, as most tests use.
pub struct Redis {
    pub url: String,
    pub server: Server,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::spawn_on(free_port, dir.path(), |_| Vec::new());
        Redis { url: server.url(), server, _dir: dir }
    }

    /// A raw value, for checking what the store wrote.
    pub fn hget(&self, key: &str, field: &str) -> Option<Vec<u8>> {
        self.server.cmd(redis::cmd("HGET").arg(key).arg(field))
    }

    /// The keys matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        self.server.cmd(redis::cmd("KEYS").arg(pattern))
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> bool {
        self.server.cmd::<i64>(redis::cmd("EXISTS").arg(key)) == 1
    }
}

/// A primary and its replica (no Sentinels).
pub struct Replicated {
    pub primary: Server,
    pub replica: Server,
    _dir: tempfile::TempDir,
}

impl Replicated {
    pub fn start() -> Replicated {
        let dir = tempfile::tempdir().unwrap();
        let primary = Server::spawn_on(free_port, dir.path(), |_| Vec::new());
        let of = primary.port.to_string();
        let replica =
            Server::spawn_on(free_port, dir.path(), |_| vec!["--replicaof".into(), "127.0.0.1".into(), of.clone()]);
        eventually("the replica to sync", Duration::from_secs(20), || {
            replica.replication_in_sync() && primary.replication_in_sync()
        });
        Replicated { primary, replica, _dir: dir }
    }
}

pub const MASTER: &str = "fvmaster";

/// A primary, a replica and three Sentinels monitoring them as `fvmaster`
/// (down after 1 s, so a failover takes seconds).
pub struct SentinelGroup {
    pub nodes: Vec<Server>,
    pub sentinels: Vec<Server>,
    /// Where the servers keep their logs (and it holds the deployment's
    /// files until it is dropped).
    dir: tempfile::TempDir,
}

impl SentinelGroup {
    /// The group of this test binary, for tests that do not kill anything.
    pub fn shared() -> &'static SentinelGroup {
        static GROUP: OnceLock<SentinelGroup> = OnceLock::new();
        GROUP.get_or_init(SentinelGroup::start)
    }

    pub fn start() -> SentinelGroup {
        let Replicated { primary, replica, _dir: dir } = Replicated::start();
        let sentinels: Vec<Server> = (0..3)
            .map(|_| {
                Server::spawn_on(free_port, dir.path(), |port| {
                    let conf = dir.path().join(format!("sentinel-{port}.conf"));
                    std::fs::write(
                        &conf,
                        format!(
                            "sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
                             sentinel down-after-milliseconds {MASTER} 1000\n\
                             sentinel failover-timeout {MASTER} 10000\n\
                             sentinel parallel-syncs {MASTER} 1\n",
                            primary.port
                        ),
                    )
                    .unwrap();
                    vec![conf.to_str().unwrap().to_owned(), "--sentinel".into()]
                })
            })
            .collect();
        let group = SentinelGroup { nodes: vec![primary, replica], sentinels, dir };
        // Each Sentinel must know the replica and the two other Sentinels
        // before a failover can happen.
        eventually("the Sentinels to know each other and the replica", Duration::from_secs(30), || {
            group.sentinels.iter().all(|s| {
                s.try_cmd::<String>(redis::cmd("SENTINEL").arg("CKQUORUM").arg(MASTER)).is_ok()
                    && s.try_cmd::<Vec<redis::Value>>(redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER))
                        .is_ok_and(|r| r.len() == 1)
                    && s.try_cmd::<Vec<redis::Value>>(redis::cmd("SENTINEL").arg("SENTINELS").arg(MASTER))
                        .is_ok_and(|r| r.len() == 2)
            })
        });
        group
    }

    /// `redis+sentinel://…/fvmaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis+sentinel://{}/{MASTER}", hosts.join(","))
    }

    /// The port of the primary, as the first Sentinel that answers says.
    pub fn primary_port(&self) -> u16 {
        for sentinel in &self.sentinels {
            if let Ok((_, port)) =
                sentinel.try_cmd::<(String, u16)>(redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER))
            {
                return port;
            }
        }
        panic!("no Sentinel answers");
    }

    /// Whether every Sentinel names the same primary, that node is a
    /// primary, and its replica is in sync: the group after a failover
    /// has finished.
    pub fn is_settled(&self) -> bool {
        let named: Vec<Option<u16>> = self
            .sentinels
            .iter()
            .map(|s| {
                s.try_cmd::<(String, u16)>(redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER))
                    .ok()
                    .map(|(_, port)| port)
            })
            .collect();
        let Some(Some(port)) = named.first().copied() else { return false };
        named.iter().all(|p| *p == Some(port))
            && self.nodes.iter().all(|n| (n.port == port) != n.is_replica())
            && self.nodes.iter().all(Server::replication_in_sync)
    }

    /// The end of every node's and Sentinel's log: for the message of a
    /// failed wait.
    pub fn describe(&self) -> String {
        log_tails(self.dir.path(), &self.nodes) + &log_tails(self.dir.path(), &self.sentinels)
    }
}

/// The last lines of each server's log in `dir`, for the message of a
/// failed wait.
fn log_tails(dir: &Path, servers: &[Server]) -> String {
    let mut text = String::new();
    for server in servers {
        let log = std::fs::read_to_string(dir.join(format!("{}.log", server.port))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        text.push_str(&format!("--- log of {} (last lines):\n", server.port));
        for line in tail.into_iter().rev() {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Three primaries with a replica each, made by `redis-cli --cluster
/// create`, failing over after 1 s without a primary.
pub struct Cluster {
    pub nodes: Vec<Server>,
    /// Where the servers keep their logs (and it holds the deployment's
    /// files until it is dropped).
    dir: tempfile::TempDir,
}

impl Cluster {
    /// The cluster of this test binary, for tests that do not kill anything.
    pub fn shared() -> &'static Cluster {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        CLUSTER.get_or_init(Cluster::start)
    }

    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Server> = (0..6)
            .map(|_| {
                Server::spawn_on(free_cluster_port, dir.path(), |port| {
                    let conf = format!("nodes-{port}.conf");
                    ["--cluster-enabled", "yes", "--cluster-config-file", &conf, "--cluster-node-timeout", "1000"]
                        .map(str::to_owned)
                        .to_vec()
                })
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli (apt-get install redis-tools): {e}"));
        assert!(output.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&output.stdout));
        let cluster = Cluster { nodes, dir };
        // Ready means every replica holds its primary's data too: a replica
        // that never finished its first sync is not promoted when its
        // primary dies (a failover test that killed a primary before then
        // waited for a promotion that never came).
        eventually_or(
            "the cluster to be ready",
            Duration::from_secs(30),
            || cluster.is_settled(),
            || cluster.describe(),
        );
        cluster
    }

    /// Whether every node says the cluster is up, three primaries serve
    /// the slots and every replica is in sync: ready, or whole again after
    /// a failover.
    pub fn is_settled(&self) -> bool {
        self.nodes.iter().all(|n| {
            n.try_cmd::<String>(redis::cmd("CLUSTER").arg("INFO"))
                .is_ok_and(|text| fields(&text).get("cluster_state").is_some_and(|s| s == "ok"))
        }) && self.primaries().len() == 3
            && self.nodes.iter().all(Server::replication_in_sync)
    }

    /// `redis+cluster://` with the first three nodes as seeds.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().take(3).map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The ports of the primaries that serve slots, as a live node sees it.
    pub fn primaries(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.slot_owners().into_iter().map(|(_, _, port)| port).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// `(first slot, last slot, primary port)` from `CLUSTER SLOTS` of a
    /// live node.
    fn slot_owners(&self) -> Vec<(u16, u16, u16)> {
        for node in &self.nodes {
            if let Ok(slots) = node.try_cmd::<Vec<redis::Value>>(&redis::cmd("CLUSTER").arg("SLOTS").to_owned()) {
                return slots
                    .into_iter()
                    .map(|range| {
                        let redis::Value::Array(items) = range else { panic!("CLUSTER SLOTS: {range:?}") };
                        let start: u16 = redis::from_redis_value(items[0].clone()).unwrap();
                        let end: u16 = redis::from_redis_value(items[1].clone()).unwrap();
                        let redis::Value::Array(primary) = &items[2] else { panic!("CLUSTER SLOTS: {items:?}") };
                        let port: u16 = redis::from_redis_value(primary[1].clone()).unwrap();
                        (start, end, port)
                    })
                    .collect();
            }
        }
        panic!("no cluster node answers");
    }

    /// The port of the primary that holds `key`.
    pub fn primary_for(&self, key: &str) -> u16 {
        let slot: u16 = self.live_node().cmd(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key));
        self.slot_owners()
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| port)
            .expect("every slot has a primary")
    }

    fn live_node(&self) -> &Server {
        self.nodes.iter().find(|n| n.try_cmd::<String>(&redis::cmd("PING")).is_ok()).expect("a live node")
    }

    pub fn node(&self, port: u16) -> &Server {
        self.nodes.iter().find(|n| n.port == port).expect("a node of the cluster")
    }

    /// What each node that answers says of the cluster (`CLUSTER NODES`),
    /// and the end of every node's log: for the message of a failed wait.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            let view = node.try_cmd::<String>(redis::cmd("CLUSTER").arg("NODES"));
            let view = view.unwrap_or_else(|e| format!("(no answer: {e})\n"));
            text.push_str(&format!("--- CLUSTER NODES of {}:\n{view}", node.port));
        }
        text + &log_tails(self.dir.path(), &self.nodes)
    }
}

/// The helper itself: a port another process took between the pick and the
/// bind makes it pick again instead of failing the test.
#[test]
fn a_redis_server_whose_port_was_taken_starts_on_the_next_pick() {
    use std::sync::atomic::{AtomicU16, Ordering};
    static TAKEN: AtomicU16 = AtomicU16::new(0);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    TAKEN.store(taken.local_addr().unwrap().port(), Ordering::SeqCst);
    // The taken port first, then free ones.
    fn pick() -> u16 {
        match TAKEN.swap(0, Ordering::SeqCst) {
            0 => free_port(),
            port => port,
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn_on(pick, dir.path(), |_| Vec::new());
    assert_ne!(server.port, taken.local_addr().unwrap().port());
    assert_eq!(server.cmd::<String>(&redis::cmd("PING")), "PONG");
    assert!(
        std::fs::read_to_string(dir.path().join(format!("{}.log", taken.local_addr().unwrap().port())))
            .unwrap()
            .contains("Address already in use")
    );
}
