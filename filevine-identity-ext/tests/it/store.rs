//! Token stores: the store contract for memory, file and a real Redis; the
//! provider reading and refreshing through a store (restarts, cancelled
//! callers, unreadable entries, an unreachable store, encryption); and
//! several worker processes sharing one store (`store_worker` below is the
//! worker: the parent test runs this binary again, filtered to it).

use std::sync::Arc;
use std::time::Duration;

use filevine_identity_ext::store::{
    FileStore, MemoryStore, RedisStore, StoreEncryptionKey, StoreError, StoreKey, TokenStore,
};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{ClientId, ClientSecret, ConfigError, Credentials, Error, RefreshToken, TokenProvider};

use crate::support::Captured;
use crate::support::redis::Redis;

/// A time to live no test reaches.
const HOUR: Duration = Duration::from_secs(3600);

const PAT: &str = "fvpat_store_0001";
const CLIENT_ID: &str = "partner-app";
const CLIENT_SECRET: &str = "partner-secret-0001";

async fn server() -> TestServer {
    crate::support::identity::server_with(PAT, Some((CLIENT_ID, CLIENT_SECRET))).await
}

use crate::support::identity::builder;

fn pat() -> Credentials {
    crate::support::identity::pat(PAT)
}

fn refresh(token: &str) -> Credentials {
    Credentials::refresh_token(RefreshToken::new(token).unwrap())
        .with_client(ClientId::new(CLIENT_ID).unwrap(), ClientSecret::new(CLIENT_SECRET).unwrap())
}

/// A PAT provider on a file store in `dir/tokens`, sealed with `seal`.
fn sealed_file_provider(server: &TestServer, dir: &std::path::Path, seal: &StoreEncryptionKey) -> TokenProvider {
    builder(server)
        .credentials(pat())
        .store(FileStore::new(dir.join("tokens")))
        .store_encryption_key(seal.clone())
        .build()
        .unwrap()
}

fn client() -> (ClientId, Option<ClientSecret>) {
    (ClientId::new(CLIENT_ID).unwrap(), Some(ClientSecret::new(CLIENT_SECRET).unwrap()))
}

/// The contract every store keeps: versions, compare-and-swap, leases.
pub(crate) async fn store_contract(store: &dyn TokenStore) {
    let key = StoreKey::session("contract").as_str().to_owned();
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(store.compare_and_swap(&key, 0, b"one", HOUR).await.unwrap(), "CAS on an absent entry at version 0");
    assert!(!store.compare_and_swap(&key, 0, b"lost", HOUR).await.unwrap(), "a second CAS at version 0 loses");
    let entry = store.load(&key).await.unwrap().unwrap();
    assert_eq!((entry.version, entry.value.as_slice()), (1, &b"one"[..]));
    assert!(!store.compare_and_swap(&key, 5, b"lost", HOUR).await.unwrap(), "CAS at a wrong version loses");
    assert_eq!(store.save(&key, b"two", HOUR).await.unwrap(), 2);
    assert!(store.compare_and_swap(&key, 2, b"three", HOUR).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap().unwrap().version, 3);

    let ttl = Duration::from_secs(30);
    assert!(store.try_lease(&key, "a", ttl).await.unwrap());
    assert!(!store.try_lease(&key, "b", ttl).await.unwrap(), "b cannot take a's lease");
    store.release_lease(&key, "b").await.unwrap();
    assert!(!store.try_lease(&key, "b", ttl).await.unwrap(), "b's release does not free a's lease");
    store.release_lease(&key, "a").await.unwrap();
    assert!(store.try_lease(&key, "b", ttl).await.unwrap(), "free once a released it");
    store.release_lease(&key, "b").await.unwrap();

    store.delete(&key).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    store.delete(&key).await.unwrap();
    // Keys are independent.
    let other = StoreKey::session("other").as_str().to_owned();
    assert!(store.compare_and_swap(&other, 0, b"x", HOUR).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), None);
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    store_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn file_store_keeps_the_contract_with_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("tokens"));
    store_contract(&store).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("tokens")), 0o700);
        let files: Vec<_> = std::fs::read_dir(dir.path().join("tokens")).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "token")), "{files:?}");
        for file in files {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        // A directory others can read is refused, by name.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = FileStore::new(&open).save(StoreKey::session("k").as_str(), b"v", HOUR).await.unwrap_err();
        assert!(filevine_identity_ext::error::Report(&err).to_string().contains("open to other users"), "{err}");
    }
    // A key that is not a StoreKey name cannot name a path.
    assert!(store.save("../escape", b"v", HOUR).await.is_err());
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_store_follows_no_link_trusts_no_other_user_and_never_reuses_a_leftover_temp_file() {
    use std::os::unix::fs::{PermissionsExt as _, symlink};
    let report = |err: StoreError| filevine_identity_ext::error::Report(&err).to_string();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let store = FileStore::new(&real);
    let (key, other) = (StoreKey::session("k"), StoreKey::session("other"));
    store.save(key.as_str(), b"v", HOUR).await.unwrap();

    // A directory reached through a symbolic link: refused, reads too.
    symlink(&real, dir.path().join("link")).unwrap();
    let linked = FileStore::new(dir.path().join("link"));
    assert!(report(linked.load(key.as_str()).await.unwrap_err()).contains("symbolic link"));
    assert!(report(linked.save(key.as_str(), b"w", HOUR).await.unwrap_err()).contains("symbolic link"));

    // A token file planted as a link: not read through, not written through.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"1 99999999999999\nsomeone else's file").unwrap();
    symlink(&victim, real.join(format!("{}.token", other.as_str()))).unwrap();
    assert!(report(store.load(other.as_str()).await.unwrap_err()).contains("symbolic link"));
    assert!(store.save(other.as_str(), b"w", HOUR).await.is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"1 99999999999999\nsomeone else's file");

    // A leftover temporary file (even a link) is removed and created anew.
    let temp = real.join(format!(".{}.{}.tmp", key.as_str(), std::process::id()));
    symlink(&victim, &temp).unwrap();
    assert_eq!(store.save(key.as_str(), b"v2", HOUR).await.unwrap(), 2);
    assert_eq!(store.load(key.as_str()).await.unwrap().unwrap().value, b"v2");
    assert_eq!(std::fs::read(&victim).unwrap(), b"1 99999999999999\nsomeone else's file");
    assert!(!temp.exists());

    // A directory of another user: refused (only root can make one here).
    if rustix::process::geteuid().is_root() {
        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        let err = FileStore::new(&foreign).load(key.as_str()).await.unwrap_err();
        assert!(report(err).contains("belongs to user 65534"));
    }
}

#[tokio::test]
async fn file_entries_expire_and_a_later_write_removes_them() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("tokens");
    let store = FileStore::new(&dir);
    let (gone, kept) = (StoreKey::session("gone"), StoreKey::session("kept"));
    store.save(gone.as_str(), b"v", Duration::ZERO).await.unwrap();
    assert_eq!(store.load(gone.as_str()).await.unwrap(), None, "expired: absent");
    // The first write of a store sweeps: the expired file is removed.
    let fresh = FileStore::new(&dir);
    fresh.save(kept.as_str(), b"v", HOUR).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".token"))
        .collect();
    assert_eq!(names, [format!("{}.token", kept.as_str())]);
    // A file of the previous format (a version line alone) never expires.
    std::fs::write(dir.join(format!("{}.token", gone.as_str())), b"7\nold").unwrap();
    assert_eq!(fresh.load(gone.as_str()).await.unwrap().unwrap().version, 7);
}

#[tokio::test]
async fn redis_store_keeps_the_contract() {
    let redis = Redis::start();
    store_contract(&RedisStore::open(&redis.url).unwrap()).await;
}

#[tokio::test]
async fn redis_leases_expire_and_only_their_owner_releases_them() {
    let redis = Redis::start();
    let store = RedisStore::open(&redis.url).unwrap();
    let key = StoreKey::session("lease").as_str().to_owned();
    assert!(store.try_lease(&key, "dead", Duration::from_millis(50)).await.unwrap());
    let lease = format!("filevine:tokens:{{{key}}}:lease");
    assert!(redis.exists(&lease));
    // Redis expires it on its own clock.
    let mut freed = false;
    for _ in 0..200 {
        if !redis.exists(&lease) {
            freed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(freed, "the lease expired");
    assert!(store.try_lease(&key, "next", Duration::from_secs(30)).await.unwrap());
    store.release_lease(&key, "dead").await.unwrap();
    assert!(redis.exists(&lease), "a late release by the old owner leaves the new lease alone");
}

#[tokio::test]
async fn providers_sharing_a_store_make_one_exchange() {
    let server = server().await;
    let store = Arc::new(MemoryStore::new());
    let first = builder(&server).credentials(pat()).store(store.clone()).build().unwrap();
    let second = builder(&server).credentials(pat()).store(store.clone()).build().unwrap();
    let a = first.token().await.unwrap();
    let b = second.token().await.unwrap();
    assert_eq!(a.expose_secret(), b.expose_secret());
    assert_eq!(server.token_requests(), 1);
    // Other credentials get their own key.
    let other = builder(&server)
        .credentials(Credentials::client_credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(CLIENT_SECRET).unwrap(),
        ))
        .store(store)
        .build()
        .unwrap();
    assert_ne!(other.token().await.unwrap().expose_secret(), a.expose_secret());
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn a_restarted_process_uses_the_saved_token() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let seal = StoreEncryptionKey::generate().unwrap();
    let run = || sealed_file_provider(&server, dir.path(), &seal);
    let first = run().token().await.unwrap();
    // "Restart": a new provider, nothing in memory.
    let second = run().token().await.unwrap();
    assert_eq!(first.expose_secret(), second.expose_secret());
    assert_eq!(server.token_requests(), 1);
    // The file holds no token text.
    for file in std::fs::read_dir(dir.path().join("tokens")).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(first.expose_secret()));
    }
    // Another key cannot read it: a new exchange, and the entry replaced.
    let third = sealed_file_provider(&server, dir.path(), &StoreEncryptionKey::generate().unwrap());
    assert_ne!(third.token().await.unwrap().expose_secret(), first.expose_secret());
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn a_saved_session_is_refreshed_by_a_new_process() {
    let server = server().await;
    server.add_refresh_token("rt-restart-0");
    let store = Arc::new(MemoryStore::new());
    let key = StoreKey::session("user-1");
    // Process one: signs in (here: a refresh token) and refreshes once.
    let one = builder(&server)
        .credentials(refresh("rt-restart-0"))
        .store(store.clone())
        .store_key(key.clone())
        .build()
        .unwrap();
    let first = one.token().await.unwrap();
    let rotated = one.refresh_token().unwrap();
    drop(one);
    // Process two: only the store and the session key.
    let (id, secret) = client();
    let two = builder(&server).stored_session(id, secret).store(store.clone()).store_key(key.clone()).build().unwrap();
    assert_eq!(two.token().await.unwrap().expose_secret(), first.expose_secret(), "the stored token, no request");
    assert_eq!(server.token_requests(), 1);
    assert_eq!(two.refresh_token().unwrap(), rotated);
    // Its next refresh uses the rotated token, and saves the next one.
    two.invalidate();
    two.token().await.unwrap();
    assert_eq!(server.grant_requests("refresh_token"), 2);
    assert_eq!(server.refresh_token_reuses(), 0);
    assert_ne!(two.refresh_token().unwrap(), rotated);
    // Nothing stored under another session: the user must sign in.
    let (id, secret) = client();
    let stranger = builder(&server)
        .stored_session(id, secret)
        .store(store)
        .store_key(StoreKey::session("nobody"))
        .build()
        .unwrap();
    let err = stranger.token().await.unwrap_err();
    assert!(matches!(err, Error::NotStored { .. }) && err.needs_sign_in(), "{err}");
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test]
async fn build_saved_stores_the_starting_token_set() {
    let server = server().await;
    server.add_refresh_token("rt-initial-0");
    let set = builder(&server).credentials(refresh("rt-initial-0")).build().unwrap();
    let token = set.token().await.unwrap();
    let token_set = filevine_identity_ext::TokenSet {
        access_token: token.clone(),
        refresh_token: set.refresh_token(),
        id_token: None,
    };
    let store = Arc::new(MemoryStore::new());
    let key = StoreKey::session("user-2");
    let (id, secret) = client();
    // build() refuses: it could not save before returning.
    let err = builder(&server)
        .token_set(token_set.clone(), id.clone(), secret.clone())
        .store(store.clone())
        .store_key(key.clone())
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::UnsavedTokenSet);
    builder(&server)
        .token_set(token_set, id.clone(), secret.clone())
        .store(store.clone())
        .store_key(key.clone())
        .build_saved()
        .await
        .unwrap();
    let replica = builder(&server).stored_session(id, secret).store(store).store_key(key).build().unwrap();
    assert_eq!(replica.token().await.unwrap().expose_secret(), token.expose_secret());
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn a_refresh_whose_caller_gave_up_is_still_saved() {
    let server = server().await;
    server.add_refresh_token("rt-cancel-0");
    let dir = tempfile::tempdir().unwrap();
    let key = StoreKey::session("user-cancel");
    let provider = builder(&server)
        .credentials(refresh("rt-cancel-0"))
        .store(FileStore::new(dir.path().join("tokens")))
        .store_key(key.clone())
        .build()
        .unwrap();
    let held = server.hold_token_responses();
    tokio::select! {
        _ = provider.token() => panic!("the answer is held"),
        () = server.wait_for_token_requests(1) => {}
    }
    // The caller's future is dropped; the server rotated the token and
    // answers now.
    drop(held);
    provider.settled().await;
    // A new process reads the rotated set and refreshes with it.
    let (id, secret) = client();
    let next = builder(&server)
        .stored_session(id, secret)
        .store(FileStore::new(dir.path().join("tokens")))
        .store_key(key)
        .build()
        .unwrap();
    next.token().await.unwrap();
    assert_eq!(server.token_requests(), 1, "the saved token was used");
    next.invalidate();
    next.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
    assert_eq!(server.refresh_token_reuses(), 0, "the rotated token was the one used");
}

/// A PAT's entry lives as long as its token, so a refresh that outlasts it
/// (an outage, a paused process) finds it expired; or another process's
/// `forget` left a deletion mark. Neither signs a PAT out (there is no
/// session): the new token is served and saved over it, and a new process
/// uses the saved token without a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pat_entry_gone_during_a_refresh_is_written_again() {
    let server = server().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let pat_provider = || builder(&server).credentials(pat()).store(store.clone()).build().unwrap();
    let provider = pat_provider();
    provider.token().await.unwrap();
    let key = provider.store_key().unwrap().as_str().to_owned();
    for gone in ["expired", "forgotten elsewhere"] {
        let requests = server.token_requests();
        let (held, refreshing) = crate::support::held_refresh(&server, &provider).await;
        if gone == "expired" {
            // What the entry's time to live does to it.
            store.delete(&key).await.unwrap();
        } else {
            pat_provider().forget().await.unwrap();
        }
        drop(held);
        let served = refreshing.await.unwrap().unwrap_or_else(|error| panic!("{gone}: {error}"));
        assert!(server.is_valid_access_token(served.expose_secret()), "{gone}");
        let next = pat_provider().token().await.unwrap();
        assert_eq!(next.expose_secret(), served.expose_secret(), "{gone}: the new token was saved");
        assert_eq!(server.token_requests(), requests + 1, "{gone}");
    }
}

#[tokio::test]
async fn unreadable_entries_count_as_absent_and_are_replaced() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let seal = StoreEncryptionKey::generate().unwrap();
    let provider = || sealed_file_provider(&server, dir.path(), &seal);
    let name = provider().store_key().unwrap().as_str().to_owned();
    let path = dir.path().join("tokens").join(format!("{name}.token"));
    // A valid entry sealed with another key, to corrupt in different ways.
    let foreign = sealed_file_provider(&server, dir.path(), &StoreEncryptionKey::generate().unwrap());
    foreign.token().await.unwrap();
    let sealed = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("another key", sealed.clone()),
        ("truncated", sealed[..sealed.len() / 2].to_vec()),
        ("garbage", b"\x00\xffnot a token set at all".to_vec()),
        ("foreign version", b"3\nFVTS\x07\x00{}".to_vec()),
        ("empty", Vec::new()),
        ("plain JSON", b"1\n{\"access_token\":\"planted\"}".to_vec()),
    ];
    let log = Captured::global();
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let mark = log.mark();
        let before = server.token_requests();
        let token = provider().token().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(server.token_requests(), before + 1, "{what}: a new exchange");
        assert_ne!(token.expose_secret(), "planted");
        let text = log.text_since(mark);
        assert!(text.contains("ignoring an unreadable stored token set"), "{what}: {text}");
        assert!(!text.contains(token.expose_secret()) && !text.contains(PAT), "{what}: a secret in the log");
        // Replaced by a good entry: the next process uses it.
        assert_eq!(provider().token().await.unwrap().expose_secret(), token.expose_secret(), "{what}");
        assert_eq!(server.token_requests(), before + 1, "{what}");
    }
}

#[tokio::test]
async fn an_unreachable_store_falls_back_for_a_pat_but_not_for_a_refresh_token() {
    let server = server().await;
    server.add_refresh_token("rt-down-0");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down =
        || RedisStore::open(&format!("redis://127.0.0.1:{port}/0")).unwrap().with_timeout(Duration::from_millis(500));
    let log = Captured::global();
    let mark = log.mark();
    let provider = builder(&server).credentials(pat()).store(down()).build().unwrap();
    provider.token().await.expect("a PAT refreshes without the store");
    assert_eq!(server.token_requests(), 1);
    assert!(log.text_since(mark).contains("the token store failed; refreshing without it"));
    // A refresh token retries the store (a failover takes seconds) until
    // its total timeout, then fails.
    let session = builder(&server)
        .credentials(refresh("rt-down-0"))
        .store(down())
        .store_key(StoreKey::session("s"))
        .total_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mark = log.mark();
    let err = session.token().await.unwrap_err();
    assert!(log.text_since(mark).contains("the token store failed; trying again"));
    assert!(matches!(err, Error::Store(_)), "{err}");
    assert_eq!(server.token_requests(), 1, "no refresh outside the store");
    assert!(!format!("{err} {err:?}").contains("rt-down-0"));
}

#[tokio::test]
async fn redis_values_are_sealed_when_a_key_is_set() {
    let server = server().await;
    let redis = Redis::start();
    let provider = |seal: Option<StoreEncryptionKey>| {
        let builder = builder(&server).credentials(pat()).store(RedisStore::open(&redis.url).unwrap());
        match seal {
            Some(seal) => builder.store_encryption_key(seal),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let sealed = provider(Some(StoreEncryptionKey::generate().unwrap()));
    let token = sealed.token().await.unwrap();
    let raw = redis.hget(&format!("filevine:tokens:{{{}}}", sealed.store_key().unwrap().as_str()), "d").unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(token.expose_secret()), "sealed: no token text");
    // The check can fail: without a key the value holds the token.
    let plain = provider(None);
    plain.forget().await.unwrap();
    let token = plain.token().await.unwrap();
    let raw = redis.hget(&format!("filevine:tokens:{{{}}}", plain.store_key().unwrap().as_str()), "d").unwrap();
    assert!(String::from_utf8_lossy(&raw).contains(token.expose_secret()));
}

/// Durations too large for the clock mean "no bound", never a panic.
#[tokio::test]
async fn huge_lease_and_timeouts_do_not_overflow() {
    let server = server().await;
    let provider = builder(&server)
        .credentials(pat())
        .store(MemoryStore::new())
        .total_timeout(Duration::MAX)
        .lease_time(Duration::MAX)
        .build()
        .unwrap();
    provider.token().await.unwrap();
    provider.invalidate();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
    // The default lease is the total timeout plus 5 s: saturating.
    builder(&server).credentials(pat()).store(MemoryStore::new()).total_timeout(Duration::MAX).build().unwrap();
}

#[tokio::test]
async fn store_configuration_errors_are_named() {
    let server = server().await;
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    };
    let build = |pairs: &'static [(&'static str, &'static str)]| {
        TokenProvider::builder().region(server.region()).credentials(pat()).env(env(pairs)).build()
    };
    let err = build(&[("FILEVINE_TOKEN_STORE", "mysql://x")]).unwrap_err();
    assert!(matches!(err, ConfigError::TokenStore { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "the token store setting is invalid: expected `memory`, `file:<directory>`, a Redis URL (`redis://`, `redis+sentinel://`, `redis+cluster://`) or a PostgreSQL URL (`postgres://`)"
    );
    for (key, reason) in
        [("c2hvcnQ=", "it must decode to exactly 32 bytes"), ("not base64!", "it is not standard base64")]
    {
        let pairs: &'static [(&'static str, &'static str)] =
            Box::leak(Box::new([("FILEVINE_TOKEN_STORE", "memory"), ("FILEVINE_STORE_KEY", key)]));
        let err = build(pairs).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidStoreKey { .. }), "{err}");
        assert!(err.to_string().contains(reason) && !err.to_string().contains(key), "{err}");
    }
    let provider = build(&[("FILEVINE_TOKEN_STORE", "memory")]).unwrap();
    assert!(provider.store_key().is_some());
    // A refresh token needs a key named by the application.
    let err = builder(&server).credentials(refresh("rt")).store(MemoryStore::new()).build().unwrap_err();
    assert_eq!(err, ConfigError::StoreKeyRequired);
    let (id, secret) = client();
    assert_eq!(builder(&server).stored_session(id, secret).build().unwrap_err(), ConfigError::NoStore);
    let err = builder(&server)
        .credentials(pat())
        .store(MemoryStore::new())
        .lease_time(Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::LeaseTooShort { .. }), "{err}");
}

/// TLS that checks no certificate is said once per URL: Redis with
/// `#insecure`, PostgreSQL on another host without `sslmode=verify-full`
/// (libpq's default `prefer` falls back to plaintext). A checked
/// certificate, or a server on this machine, is not warned about.
#[test]
fn unchecked_tls_is_warned_about_once_per_url() {
    use filevine_identity_ext::store::PostgresStore;
    let log = crate::support::Captured::global();
    let mark = log.mark();
    for _ in 0..2 {
        filevine_identity_ext::store::open("rediss://tls-audit-redis.invalid:6380/0#insecure").unwrap();
        filevine_identity_ext::store::open("rediss://tls-audit-redis-checked.invalid:6380/0").unwrap();
        PostgresStore::open("postgres://app@tls-audit-pg.invalid/app").unwrap();
        PostgresStore::open("postgres://app@tls-audit-pg-checked.invalid/app?sslmode=verify-full").unwrap();
        PostgresStore::open("postgres://app@127.0.0.1/tls_audit_local").unwrap();
    }
    let text = log.text_since(mark);
    let count = |needle: &str| text.lines().filter(|line| line.contains(needle)).count();
    assert_eq!(count("tls-audit-redis.invalid"), 1, "{text}");
    assert!(text.contains("checks no certificate"), "{text}");
    assert_eq!(count("tls-audit-redis-checked.invalid"), 0, "{text}");
    assert_eq!(count("tls-audit-pg.invalid"), 1, "{text}");
    assert!(text.contains("sslmode=verify-full"), "{text}");
    assert_eq!(count("tls-audit-pg-checked.invalid"), 0, "{text}");
    assert_eq!(count("tls_audit_local"), 0, "{text}");
}
