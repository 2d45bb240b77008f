//! The Redis store as production runs it, against real deployments the
//! tests start on loopback (`support::redis`): a primary with a replica and
//! three Sentinels, a cluster of three primaries with a replica each, and
//! single nodes with and without a replica. The fleet tests that kill a
//! primary mid-run are in `fleet`.

use std::time::Duration;

use filevine_identity_ext::error::Report;
use filevine_identity_ext::store::redis::RedisConnection;
use filevine_identity_ext::store::{self, RedisStore, StoreKey, TokenStore};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{ClientId, ClientSecret, Credentials, RefreshToken, TokenProvider};

use crate::store::store_contract;
use crate::support::Captured;
use crate::support::metrics::TestRecorder;
use crate::support::redis::{Cluster, MASTER, Redis, Replicated, SentinelGroup, eventually};

/// A time to live no test reaches.
const HOUR: Duration = Duration::from_secs(3600);

const CLIENT_ID: &str = "ha-app";
const CLIENT_SECRET: &str = "ha-secret-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_store_keeps_the_contract_on_the_primary_and_its_replica_has_each_write() {
    let group = SentinelGroup::shared();
    let store = RedisStore::open(&group.url()).unwrap().with_prefix("contract-sentinel:");
    store_contract(&store).await;
    // The default waits for the replica: the last write is there already.
    let key = format!("contract-sentinel:{{{}}}", StoreKey::session("other").as_str());
    let replica = group.nodes.iter().find(|n| n.port != group.primary_port()).unwrap();
    assert_eq!(replica.cmd::<Option<Vec<u8>>>(redis::cmd("HGET").arg(&key).arg("d")), Some(b"x".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_store_keeps_the_contract_with_each_entry_and_its_lease_in_one_slot() {
    let cluster = Cluster::shared();
    let store = RedisStore::open(&cluster.url()).unwrap().with_prefix("contract-cluster:");
    store_contract(&store).await;
    // Entries spread over every primary, each next to its lease.
    let mut primaries = std::collections::BTreeSet::new();
    for n in 0..30 {
        let key = StoreKey::session(&format!("spread-{n}"));
        assert!(store.compare_and_swap(key.as_str(), 0, b"v", HOUR).await.unwrap());
        assert!(store.try_lease(key.as_str(), "owner", Duration::from_secs(30)).await.unwrap());
        let entry = format!("contract-cluster:{{{}}}", key.as_str());
        let lease = format!("{entry}:lease");
        let node = cluster.node(cluster.primary_for(&entry));
        let slot = |name: &str| node.cmd::<u16>(redis::cmd("CLUSTER").arg("KEYSLOT").arg(name));
        assert_eq!(slot(&entry), slot(&lease), "{entry}");
        assert_eq!(node.cmd::<i64>(redis::cmd("EXISTS").arg(&entry)), 1, "{entry} on its primary");
        assert_eq!(node.cmd::<i64>(redis::cmd("EXISTS").arg(&lease)), 1, "{lease} on its primary");
        primaries.insert(node.port);
    }
    assert_eq!(primaries.len(), 3, "keys on every primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_renewed_by_its_owner_only() {
    let redis = Redis::start();
    let store = RedisStore::open(&redis.url).unwrap();
    let key = StoreKey::session("renew");
    let lease = format!("filevine:tokens:{{{}}}:lease", key.as_str());
    assert!(store.try_lease(key.as_str(), "a", Duration::from_secs(5)).await.unwrap());
    assert!(store.try_lease(key.as_str(), "a", Duration::from_secs(600)).await.unwrap(), "a renews its own lease");
    let ttl: i64 = redis.server.cmd(redis::cmd("PTTL").arg(&lease));
    assert!(ttl > 5_000, "renewed for the new time: {ttl} ms left");
    assert!(!store.try_lease(key.as_str(), "b", Duration::from_secs(5)).await.unwrap());
    assert_eq!(redis.server.cmd::<String>(redis::cmd("GET").arg(&lease)), "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deployments_are_named_without_the_password() {
    let group = SentinelGroup::shared();
    let url = group.url().replace("redis+sentinel://", "redis+sentinel://:hunter2@").replace(MASTER, "nosuch");
    let store = RedisStore::open(&url).unwrap();
    let err = store.load(StoreKey::session("k").as_str()).await.unwrap_err();
    let text = format!("{} | {err:?}", Report(&err));
    assert!(text.contains("the Sentinels know no primary named `nosuch`"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    // Nothing listening: the connection fails by name, no password.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for url in
        [format!("redis+cluster://:hunter2@127.0.0.1:{port}"), format!("redis+sentinel://:hunter2@127.0.0.1:{port}/m")]
    {
        let store = RedisStore::open(&url).unwrap().with_timeout(Duration::from_millis(500));
        let err = store.load(StoreKey::session("k").as_str()).await.unwrap_err();
        let text = format!("{} | {err:?}", Report(&err));
        assert!(text.contains("the redis token store failed to load"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_a_replica_and_say_when_it_does_not_answer_in_time() {
    let log = Captured::global();
    let recorder = TestRecorder::global();
    let pair = Replicated::start();
    let key = StoreKey::session("durable");
    let entry = format!("filevine:tokens:{{{}}}", key.as_str());
    // By default: one replica is connected, so each write waits for one.
    let store = RedisStore::open(&pair.primary.url()).unwrap();
    assert!(store.compare_and_swap(key.as_str(), 0, b"one", HOUR).await.unwrap());
    assert_eq!(pair.primary.calls("wait"), 1);
    assert_eq!(pair.replica.cmd::<Option<Vec<u8>>>(redis::cmd("HGET").arg(&entry).arg("d")), Some(b"one".to_vec()));
    store.delete(key.as_str()).await.unwrap();
    assert_eq!(pair.primary.calls("wait"), 2, "a delete waits too");
    // A lease is not a token set: no WAIT.
    assert!(store.try_lease(key.as_str(), "a", Duration::from_secs(5)).await.unwrap());
    assert_eq!(pair.primary.calls("wait"), 2);
    // replicas=0 turns it off.
    let off = RedisStore::open(&format!("{}?replicas=0", pair.primary.url())).unwrap();
    off.save(key.as_str(), b"two", HOUR).await.unwrap();
    assert_eq!(pair.primary.calls("wait"), 2);
    // A node without replicas: nothing to wait for.
    let lone = Redis::start();
    RedisStore::open(&lone.url).unwrap().save(key.as_str(), b"x", HOUR).await.unwrap();
    assert_eq!(lone.server.calls("wait"), 0);

    // The replica stops answering: the write is used after the bound, with
    // a warning and the metric. MONITOR shows the WAIT the store sent.
    let monitor = Monitor::start(pair.primary.port);
    pair.replica.signal("STOP");
    let url = format!("{}?replicas=1", pair.primary.url());
    let bounded = RedisStore::open(&url).unwrap().with_replica_wait(Duration::from_millis(300));
    let mark = log.mark();
    let version = bounded.save(key.as_str(), b"three", HOUR).await.unwrap();
    pair.replica.signal("CONT");
    assert_eq!(version, 2);
    let text = log.text_since(mark);
    assert!(text.contains("fewer replicas than asked took the saved token set in time"), "{text}");
    assert!(text.contains("acknowledged=0"), "{text}");
    let shortfalls = recorder
        .counter("filevine_identity_store_replication_shortfall_total", &["store=redis", &format!("url={url}")]);
    assert_eq!(shortfalls, 1);
    // The WAIT carried the bound (300 ms), as the server saw it.
    let waits: Vec<String> = monitor.stop().into_iter().filter(|line| line.contains("\"WAIT\"")).collect();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(waits[0].ends_with(r#""WAIT" "1" "300""#), "{waits:?}");
}

/// `redis-cli monitor`: every command the server runs, one per line.
struct Monitor {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "monitor"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        // MONITOR answers OK before it streams.
        assert_eq!(lines.recv_timeout(Duration::from_secs(10)).unwrap(), "OK");
        Monitor { child, lines }
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.try_iter().collect()
    }
}

/// The store refuses writes (`CLIENT PAUSE WRITE`, as during a failover)
/// just when a rotated refresh token is to be saved, with a second provider
/// waiting for the same session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsaved_rotation_keeps_its_lease_and_is_saved_when_the_store_is_back() {
    let server = TestServer::start().await.unwrap();
    server.add_client(CLIENT_ID, CLIENT_SECRET);
    server.add_refresh_token("rt-pause-0");
    server.set_token_lifetime(Duration::from_secs(300));
    let recorder = TestRecorder::global();
    let redis = Redis::start();
    let session = StoreKey::session("paused-user");
    let store = || RedisStore::open(&redis.url).unwrap().with_timeout(Duration::from_millis(300));
    let provider = |credentials: Credentials| {
        TokenProvider::builder()
            .env(|_| None)
            .region(server.region())
            .credentials(credentials)
            .store(store())
            .store_key(session.clone())
            .build()
            .unwrap()
    };
    let client = || (ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap());
    // The user signed in: the token set is stored (version 1).
    let (id, secret) = client();
    let seed = provider(Credentials::refresh_token(RefreshToken::new("rt-pause-0").unwrap()).with_client(id, secret));
    seed.token().await.unwrap();
    drop(seed);
    let stored = |id_secret: (ClientId, ClientSecret)| {
        TokenProvider::builder()
            .env(|_| None)
            .region(server.region())
            .stored_session(id_secret.0, Some(id_secret.1))
            .store(store())
            .store_key(session.clone())
            .build()
            .unwrap()
    };
    let a = stored(client());
    let b = stored(client());
    // The provider binds the session key to its authority and client.
    let lease = format!("filevine:tokens:{{{}}}:lease", a.store_key().unwrap().as_str());
    let old = a.token().await.unwrap();
    assert_eq!(b.token().await.unwrap().expose_secret(), old.expose_secret(), "both read the stored set");
    assert_eq!(server.grant_requests("refresh_token"), 1);

    // A refreshes; its answer is held while the store stops taking writes.
    let held = server.hold_token_responses();
    a.invalidate();
    let refreshing = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    tokio::time::timeout(Duration::from_secs(30), server.wait_for_token_requests(2)).await.unwrap();
    assert!(redis.exists(&lease), "A holds the lease while it refreshes");
    redis.server.cmd::<()>(redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE"));
    let log = Captured::global();
    let mark = log.mark();
    drop(held);
    // A serves its own caller with the rotated set it could not save.
    let new = refreshing.await.unwrap().unwrap();
    assert_ne!(new.expose_secret(), old.expose_secret());
    assert!(
        log.text_since(mark).contains("could not save the new token set; keeping the lease"),
        "{}",
        log.text_since(mark)
    );
    // B wants a new token too: it waits for the lease instead of replaying
    // the consumed refresh token the store still holds.
    b.invalidate();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.token().await }
    });
    assert!(redis.exists(&lease), "A keeps the lease");
    redis.server.cmd::<()>(redis::cmd("CLIENT").arg("UNPAUSE"));
    let got = tokio::time::timeout(Duration::from_secs(60), waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(got.expose_secret(), new.expose_secret(), "B gets A's rotated set once it is saved");
    assert_eq!(server.grant_requests("refresh_token"), 2, "the seed and A; B made no request");
    assert_eq!(server.refresh_token_reuses(), 0, "no consumed refresh token was replayed");
    let unsaved = recorder
        .counter("filevine_identity_store_unsaved_total", &[&format!("authority={}", server.url()), "store=redis"]);
    assert_eq!(unsaved, 1);
    eventually("A to release the lease once saved", Duration::from_secs(30), || !redis.exists(&lease));
    // A restarted process reads the saved set.
    assert_eq!(stored(client()).token().await.unwrap().expose_secret(), new.expose_secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_serves_application_keys_on_every_form() {
    use redis::AsyncCommands as _;
    let single = Redis::start();
    for url in [single.url.clone(), SentinelGroup::shared().url(), Cluster::shared().url()] {
        let mut connection = RedisConnection::open(&url).unwrap();
        let key = format!("app:{url}");
        connection.set_ex::<_, _, ()>(&key, "value", 60).await.unwrap();
        assert_eq!(connection.get::<_, String>(&key).await.unwrap(), "value", "{url}");
        connection.del::<_, ()>(&key).await.unwrap();
        assert_eq!(connection.get::<_, Option<String>>(&key).await.unwrap(), None, "{url}");
        // Opened through store::open, the same forms.
        assert_eq!(store::open(&url).unwrap().kind(), "redis");
    }
}
