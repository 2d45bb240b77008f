//! Writes whose outcome the client never saw: a compare-and-swap that timed
//! out on the client and was applied by the store later (a paused Redis,
//! a statement that committed after its client gave up, a slow disk).
//!
//! A provider must know such a write for its own when it finds it: the set
//! it holds is older than the one the provider made since (whose refresh
//! token spent the stored one). Adopting it, or letting another replica
//! adopt it, would present a spent refresh token, and a provider with
//! reuse detection revokes the whole grant.

use std::sync::Arc;
use std::time::Duration;

use filevine_identity_ext::provider::RetryPolicy;
use filevine_identity_ext::store::{self, MemoryStore, StoreError, StoreKey, TokenStore};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{ClientId, ClientSecret, Credentials, RefreshToken, Region, TokenProvider};

use crate::fleet::{CLIENT_ID, CLIENT_SECRET};
use crate::support::hooked::{Hook, Hooked};
use crate::support::postgres::Postgres;
use crate::support::redis::Redis;

/// A compare-and-swap queued while the store is held: applied later.
struct Queued {
    key: String,
    expected: u64,
    value: Vec<u8>,
    ttl: Duration,
}

/// A real store whose compare-and-swaps, while held, fail as a client-side
/// timeout does and are applied later, in order, when released: the store
/// did the write, the client never heard of it. Everything else passes
/// through at once.
pub(crate) type LateWrites = Hooked<Held>;

/// The queue of a [`LateWrites`]: `None` while writes go through.
pub(crate) struct Held(tokio::sync::Mutex<Option<Vec<Queued>>>);

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").field("expected", &self.expected).finish_non_exhaustive()
    }
}

impl LateWrites {
    pub(crate) fn late(inner: Arc<dyn TokenStore>) -> Self {
        Hooked { inner, hook: Held(tokio::sync::Mutex::new(None)) }
    }

    /// From now on, compare-and-swaps time out and wait in the queue.
    pub(crate) async fn hold(&self) {
        *self.hook.0.lock().await = Some(Vec::new());
    }

    /// Applies the queued compare-and-swaps in order; returns how many of
    /// them wrote.
    pub(crate) async fn release(&self) -> usize {
        let mut queue = self.hook.0.lock().await;
        let mut applied = 0;
        for write in queue.take().unwrap_or_default() {
            if self.inner.compare_and_swap(&write.key, write.expected, &write.value, write.ttl).await.unwrap() {
                applied += 1;
            }
        }
        applied
    }
}

#[async_trait::async_trait]
impl Hook for Held {
    async fn compare_and_swap(
        &self,
        inner: &dyn TokenStore,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut queue = self.0.lock().await;
        match queue.as_mut() {
            Some(queue) => {
                queue.push(Queued { key: key.to_owned(), expected, value: value.to_vec(), ttl });
                Err(StoreError::backend(
                    inner.kind(),
                    "compare and swap",
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out (the store applies it later)"),
                ))
            }
            None => inner.compare_and_swap(key, expected, value, ttl).await,
        }
    }
}

/// Fast retries: the saves that time out are retried in milliseconds.
fn quick() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

/// A provider of the user session `session` on `store`.
pub(crate) fn session_on(server: &TestServer, store: Arc<dyn TokenStore>, session: &str) -> TokenProvider {
    TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .stored_session(ClientId::new(CLIENT_ID).unwrap(), Some(ClientSecret::new(CLIENT_SECRET).unwrap()))
        .store(store)
        .store_key(StoreKey::session(session))
        .retry_policy(quick())
        .build()
        .unwrap()
}

/// The user signed in with `refresh_token`: its set is in `store`.
pub(crate) async fn seed_on(server: &TestServer, store: Arc<dyn TokenStore>, session: &str, refresh_token: &str) {
    server.add_refresh_token(refresh_token);
    sign_in(server.region(), store, session, refresh_token).await;
}

/// The user's session as a sign-in with `refresh_token` at `region`'s
/// authority stores it in `store` (the session key names the authority).
pub(crate) async fn sign_in(region: Region, store: Arc<dyn TokenStore>, session: &str, refresh_token: &str) {
    TokenProvider::builder()
        .env(|_| None)
        .region(region)
        .credentials(
            Credentials::refresh_token(RefreshToken::new(refresh_token).unwrap())
                .with_client(ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap()),
        )
        .store(store)
        .store_key(StoreKey::session(session))
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
}

/// The stored version of `provider`'s entry (0: absent).
async fn version(store: &dyn TokenStore, provider: &TokenProvider) -> u64 {
    store.load(provider.store_key().unwrap().as_str()).await.unwrap().map_or(0, |entry| entry.version)
}

/// Waits (bounded) until `provider`'s entry is at `wanted`.
async fn wait_for_version(store: &dyn TokenStore, provider: &TokenProvider, wanted: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = version(store, provider).await;
        if now == wanted {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the entry stayed at version {now}, expected {wanted}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Process A's first rotation is saved late: its compare-and-swap times out
/// on the client, A refreshes again under the lease it kept (a second
/// rotation), and only then does the store apply the first write (version
/// 2, holding the refresh token A's second refresh spent). A knows it for
/// its own older write and saves its newest set over it; process B then
/// continues from that set. No spent refresh token is ever presented.
async fn a_late_save_is_written_over_by_its_writer(store: Arc<dyn TokenStore>, session: &str) {
    let server = TestServer::start().await.unwrap();
    server.add_client(CLIENT_ID, CLIENT_SECRET);
    seed_on(&server, store.clone(), session, &format!("rt-{session}-0")).await;
    let late = Arc::new(LateWrites::late(store.clone()));
    let a = session_on(&server, late.clone(), session);
    let b = session_on(&server, store.clone(), session);
    a.token().await.unwrap();
    assert_eq!(version(&*store, &a).await, 1);

    late.hold().await;
    a.invalidate();
    let first = a.token().await.unwrap();
    a.invalidate();
    let second = a.token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(server.grant_requests("refresh_token"), 3, "the seed's and A's two rotations");
    assert_eq!(late.release().await, 1, "the first save that timed out is applied now, the others fail");
    assert_eq!(version(&*store, &a).await, 2);

    // A's saving task finds its own older set and saves the newest over it.
    wait_for_version(&*store, &a, 3).await;
    let adopted = b.token().await.unwrap();
    assert_eq!(adopted.expose_secret(), second.expose_secret(), "B takes A's newest set");
    assert_eq!(server.grant_requests("refresh_token"), 3, "B asked nothing");
    b.invalidate();
    let rotated = b.token().await.unwrap();
    assert_eq!(version(&*store, &a).await, 4);
    a.invalidate();
    assert_eq!(a.token().await.unwrap().expose_secret(), rotated.expose_secret(), "A takes B's rotation");
    assert_eq!(server.grant_requests("refresh_token"), 4);
    assert_eq!(server.refresh_token_reuses(), 0, "no spent refresh token was presented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_save_on_the_memory_store_is_written_over() {
    a_late_save_is_written_over_by_its_writer(Arc::new(MemoryStore::new()), "late-memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_save_on_the_file_store_is_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&format!("file:{}", dir.path().join("tokens").display())).unwrap();
    a_late_save_is_written_over_by_its_writer(store, "late-file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_save_on_redis_is_written_over() {
    let redis = Redis::start();
    a_late_save_is_written_over_by_its_writer(store::open(&redis.url).unwrap(), "late-redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_save_on_postgres_is_written_over() {
    let url = Postgres::shared().database("late_writes");
    let store = store::PostgresStore::open(&url).unwrap();
    store.migrate().await.unwrap();
    a_late_save_is_written_over_by_its_writer(Arc::new(store), "late-postgres").await;
}

/// The same on a real Redis that stops executing writes (`CLIENT PAUSE …
/// WRITE`: a fork, a slow disk, a stalled network) while A saves its first
/// rotation: A's compare-and-swaps time out after 300 ms but stay queued in
/// Redis, A refreshes again under its lease, and when writes resume Redis
/// applies the first queued save. A saves its newest set over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_redis_applies_after_a_client_pause_is_written_over() {
    let session = "late-redis-pause";
    let server = TestServer::start().await.unwrap();
    server.add_client(CLIENT_ID, CLIENT_SECRET);
    let redis = Redis::start();
    let store = || -> Arc<dyn TokenStore> {
        Arc::new(store::RedisStore::open(&redis.url).unwrap().with_timeout(Duration::from_millis(300)))
    };
    seed_on(&server, store(), session, "rt-late-redis-pause-0").await;
    let (a, b) = (session_on(&server, store(), session), session_on(&server, store(), session));
    a.token().await.unwrap();

    // A's refresh is on the wire; writes stop before its answer comes back.
    let requests = server.token_requests();
    let held = server.hold_token_responses();
    a.invalidate();
    let refresh = tokio::spawn(async move { a.token().await.map(|token| (token, a)) });
    tokio::time::timeout(Duration::from_secs(30), server.wait_for_token_requests(requests + 1))
        .await
        .expect("A asked for a token");
    let () = redis.server.cmd(redis::cmd("CLIENT").arg("PAUSE").arg(4000).arg("WRITE"));
    drop(held);
    let (first, a) = refresh.await.unwrap().unwrap();
    a.invalidate();
    let second = a.token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(server.grant_requests("refresh_token"), 3, "the seed's and A's two rotations");

    // Writes resume: the first queued save lands (version 2), then A's
    // saving task writes its newest set over it.
    wait_for_version(&*store(), &b, 3).await;
    assert_eq!(b.token().await.unwrap().expose_secret(), second.expose_secret(), "B takes A's newest set");
    b.invalidate();
    let rotated = b.token().await.unwrap();
    a.invalidate();
    assert_eq!(a.token().await.unwrap().expose_secret(), rotated.expose_secret(), "A takes B's rotation");
    assert_eq!(server.grant_requests("refresh_token"), 4);
    assert_eq!(server.refresh_token_reuses(), 0, "no spent refresh token was presented");
}
