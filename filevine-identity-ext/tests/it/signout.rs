//! Signing out stays done: a refresh racing `forget` (in this process or
//! another sharing the store) never writes its answer back and revokes it;
//! a failed compare-and-swap never overwrites; keys rotate; two apps on one
//! store never share a token set; every stored set expires.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use filevine_identity_ext::oidc::{AuthorizationOptions, RedirectUrl, SignedIn};
use filevine_identity_ext::store::{
    Entry, MemoryStore, RedisStore, StoreEncryptionKey, StoreEncryptionKeys, StoreError, StoreKey, TokenStore,
};
use filevine_identity_ext::test_util::{TestServer, TestUser};
use filevine_identity_ext::{
    ClientId, ClientSecret, Credentials, Error, OidcClient, PersonalAccessToken, Scopes, TokenProvider,
};

use crate::support::hooked::{Hook, Hooked};
use crate::support::redis::Redis;
use crate::support::{Captured, held_refresh};

const CALLBACK: &str = "http://127.0.0.1:7059/signin-oidc";
const CLIENT: &str = "signout-app";
const SECRET: &str = "signout-secret";
/// What a deleted entry holds.
const DELETED: &[u8] = b"FVTS\x02\x02";

async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client(CLIENT, Some(SECRET), &[CALLBACK], &[]);
    server.add_sign_in_client("other-app", Some(SECRET), &[CALLBACK], &[]);
    server.set_user(TestUser::new("1001").email("ada@example.com"));
    server
}

fn oidc(server: &TestServer, client: &str) -> OidcClient {
    OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new(client).unwrap())
        .client_secret(ClientSecret::new(SECRET).unwrap())
        .redirect_uri(RedirectUrl::new(CALLBACK).unwrap())
        .scopes(Scopes::partner_app())
        .env(|_| None)
        .build()
        .unwrap()
}

/// The authorization code flow; the test server approves at once.
async fn sign_in(client: &OidcClient) -> SignedIn {
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let http = crate::support::http_no_redirects();
    let answer = http.get(request.url.clone()).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    client.complete_sign_in(&location, request.pending).await.unwrap()
}

/// A signed-in user's provider whose token set is saved in `store`.
async fn signed_in(client: &OidcClient, store: Arc<dyn TokenStore>, session: &str) -> TokenProvider {
    let set = sign_in(client).await.token_set;
    client.token_provider(set).store(store).store_key(StoreKey::session(session)).build_saved().await.unwrap()
}

/// The same session read from the store, as another process (or replica)
/// builds it.
async fn replica(client: &OidcClient, store: Arc<dyn TokenStore>, session: &str) -> TokenProvider {
    client.stored_session(StoreKey::session(session)).store(store).build().unwrap()
}

fn revocations(server: &TestServer) -> u64 {
    server.sign_in_requests("revocation")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_racing_a_sign_out_elsewhere_is_discarded_and_revoked() {
    let server = server().await;
    let client = oidc(&server, CLIENT);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let a = signed_in(&client, store.clone(), "racing").await;
    let b = replica(&client, store.clone(), "racing").await;
    let key = a.store_key().unwrap().as_str().to_owned();
    let requests = server.token_requests();

    // A refreshes; the server holds its answer.
    let (held, refreshing) = held_refresh(&server, &a).await;
    // Meanwhile B signs the user out (forgets; no revocation of its own).
    let forgotten = b.forget().await.unwrap();
    assert!(forgotten.refresh_token.is_some(), "B returns the stored refresh token to revoke");
    assert_eq!(store.load(&key).await.unwrap().unwrap().value, DELETED);
    let before = (revocations(&server), server.revoked_refresh_tokens());
    drop(held);

    // A received a rotated set: it is not written back, it is revoked, and
    // A's callers are told the user signed out.
    let outcome = refreshing.await.unwrap();
    assert!(matches!(outcome, Err(Error::SignedOut)), "{outcome:?}");
    assert!(outcome.unwrap_err().needs_sign_in());
    let entry = store.load(&key).await.unwrap().unwrap();
    assert_eq!(entry.value, DELETED, "deletion wins: nothing written back");
    assert_eq!(revocations(&server), before.0 + 2, "the received refresh and access tokens");
    assert_eq!(server.revoked_refresh_tokens(), before.1 + 1);
    assert!(a.refresh_token().is_none(), "A holds nothing any more");
    assert_eq!(server.token_requests(), requests + 1);

    // Nobody picks the session up again.
    let again = replica(&client, store.clone(), "racing").await;
    assert!(matches!(again.token().await, Err(Error::SignedOut)));
    assert!(matches!(a.token().await, Err(Error::NotStored { .. })));
    assert_eq!(server.token_requests(), requests + 1, "no request after the sign-out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_during_this_providers_own_refresh_wins_with_and_without_a_store() {
    let server = server().await;
    let client = oidc(&server, CLIENT);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let stored = signed_in(&client, store.clone(), "own").await;
    let plain = client.token_provider(sign_in(&client).await.token_set).build().unwrap();
    for provider in [stored, plain] {
        let requests = server.token_requests();
        let (held, refreshing) = held_refresh(&server, &provider).await;
        let revoked_before = server.revoked_refresh_tokens();
        provider.forget().await.unwrap();
        drop(held);
        assert!(matches!(refreshing.await.unwrap(), Err(Error::SignedOut)));
        assert_eq!(server.revoked_refresh_tokens(), revoked_before + 1, "the rotated refresh token it received");
        assert!(provider.refresh_token().is_none() && provider.latest_id_token().is_none());
        if let Some(key) = provider.store_key() {
            assert_eq!(store.load(key.as_str()).await.unwrap().unwrap().value, DELETED);
        }
        // Nothing to refresh with: no request, no token.
        assert!(provider.token().await.unwrap_err().needs_sign_in());
        assert_eq!(server.token_requests(), requests + 1);
    }
}

#[tokio::test]
async fn a_provider_that_reads_a_newer_deletion_is_signed_out_and_revokes_what_it_held() {
    let server = server().await;
    let client = oidc(&server, CLIENT);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let a = signed_in(&client, store.clone(), "elsewhere").await;
    let held = a.refresh_token().unwrap();
    replica(&client, store.clone(), "elsewhere").await.forget().await.unwrap();
    let (requests, revoked) = (server.token_requests(), server.revoked_refresh_tokens());
    a.invalidate();
    assert!(matches!(a.token().await, Err(Error::SignedOut)));
    assert_eq!(server.token_requests(), requests, "it did not refresh with the token it held");
    assert_eq!(server.revoked_refresh_tokens(), revoked + 1, "it revoked the token it held");
    assert!(a.refresh_token().is_none());
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compare_and_swap_keeps_the_newer_set_another_process_saved() {
    let server = server().await;
    let client = oidc(&server, CLIENT);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let a = signed_in(&client, store.clone(), "newer").await;
    let key = a.store_key().unwrap().as_str().to_owned();
    // The user's sign-in on another replica, saved below while A refreshes.
    let second = client.token_provider(sign_in(&client).await.token_set);
    let (held, refreshing) = held_refresh(&server, &a).await;
    // The user signs in again on another replica meanwhile: a new set is
    // saved over the one A read.
    let newer = second.store(store.clone()).store_key(StoreKey::session("newer")).build_saved().await.unwrap();
    let saved: Entry = store.load(&key).await.unwrap().unwrap();
    drop(held);
    let served = refreshing.await.unwrap().unwrap();
    assert!(server.is_valid_access_token(served.expose_secret()), "A serves the token it received");
    assert_eq!(store.load(&key).await.unwrap().unwrap(), saved, "the newer set is not overwritten");
    // A continues from the stored set's refresh token.
    assert_eq!(a.refresh_token().unwrap().expose_secret(), newer.refresh_token().unwrap().expose_secret());
}

#[tokio::test]
async fn store_keys_rotate_without_signing_anyone_out() {
    let server = server().await;
    let client = oidc(&server, CLIENT);
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (old, new) = (StoreEncryptionKey::generate().unwrap(), StoreEncryptionKey::generate().unwrap());
    let set = sign_in(&client).await.token_set;
    let builder = client.token_provider(set).store(store.clone()).store_key(StoreKey::session("r"));
    builder.store_encryption_key(old.clone()).build_saved().await.unwrap();
    let requests = server.token_requests();

    // FILEVINE_STORE_KEY=<new>,<old>: the old set opens, no sign-in needed.
    let env = format!("{},{}", new.expose_secret(), old.expose_secret());
    let rotated = client
        .stored_session(StoreKey::session("r"))
        .store(store.clone())
        .env(move |name| (name == "FILEVINE_STORE_KEY").then(|| env.clone()))
        .build()
        .unwrap();
    rotated.token().await.unwrap();
    assert_eq!(server.token_requests(), requests, "read from the store, sealed with the old key");
    // Its next refresh seals with the new key: the old one can go.
    rotated.invalidate();
    rotated.token().await.unwrap();
    let only_new = client
        .stored_session(StoreKey::session("r"))
        .store(store.clone())
        .store_encryption_keys(StoreEncryptionKeys::new(new))
        .build()
        .unwrap();
    only_new.token().await.unwrap();
    assert_eq!(server.token_requests(), requests + 1, "the rewritten set opens with the new key alone");
}

#[tokio::test]
async fn two_apps_sharing_a_store_and_a_session_name_never_share_a_token_set() {
    let server = server().await;
    let (first, second) = (oidc(&server, CLIENT), oidc(&server, "other-app"));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let mine = signed_in(&first, store.clone(), "same-name").await;
    let theirs = replica(&second, store.clone(), "same-name").await;
    assert_ne!(mine.store_key(), theirs.store_key());
    assert!(matches!(theirs.token().await, Err(Error::NotStored { .. })), "the other app finds nothing");
    assert!(theirs.forget().await.is_ok());
    assert!(mine.token().await.is_ok(), "and cannot delete this app's set");
}

/// Records the expiry of each write.
#[derive(Default)]
struct Recorded(Mutex<Vec<(Vec<u8>, Duration)>>);

#[async_trait::async_trait]
impl Hook for Recorded {
    async fn save(&self, inner: &dyn TokenStore, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        self.0.lock().unwrap().push((value.to_vec(), ttl));
        inner.save(key, value, ttl).await
    }

    async fn compare_and_swap(
        &self,
        inner: &dyn TokenStore,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.0.lock().unwrap().push((value.to_vec(), ttl));
        inner.compare_and_swap(key, expected, value, ttl).await
    }

    fn kind(&self) -> Option<&'static str> {
        Some("recorded")
    }
}

#[tokio::test]
async fn every_write_carries_an_expiry_the_set_needs_no_longer_than() {
    let server = server().await;
    server.set_token_lifetime(Duration::from_secs(600));
    let client = oidc(&server, CLIENT);
    let store = Arc::new(Hooked::new(MemoryStore::new(), Recorded::default()));
    let idle = Duration::from_secs(8 * 3600);
    let set = sign_in(&client).await.token_set;
    let session = client.token_provider(set).store(store.clone()).store_idle_timeout(idle);
    let session = session.store_key(StoreKey::session("ttl")).build_saved().await.unwrap();
    session.forget().await.unwrap();
    server.add_personal_access_token("fvpat_ttl");
    let pat = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_ttl").unwrap()))
        .store(store.clone())
        .build()
        .unwrap();
    pat.token().await.unwrap();
    let ttls = store.hook.0.lock().unwrap().clone();
    assert_eq!(ttls.len(), 3, "{ttls:?}");
    assert_eq!(ttls[0].1, idle, "a session: the idle timeout");
    assert_eq!(ttls[1], (DELETED.to_vec(), idle), "its deletion mark: the idle timeout");
    assert!(ttls[2].1 <= Duration::from_secs(600) && ttls[2].1 > Duration::from_secs(590), "a PAT's set: its life");
    let zero = TokenProvider::builder().env(|_| None).store(MemoryStore::new()).store_idle_timeout(Duration::ZERO);
    let err = zero.credentials(Credentials::personal_access_token(PersonalAccessToken::new("x").unwrap())).build();
    assert!(err.unwrap_err().to_string().contains("store_idle_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_sessions_in_redis_leave_n_expiring_keys() {
    let server = server().await;
    let client = oidc(&server, CLIENT);
    let redis = Redis::start();
    let store: Arc<dyn TokenStore> = Arc::new(RedisStore::open(&redis.url).unwrap());
    let idle = Duration::from_secs(120);
    for n in 0..3 {
        let set = sign_in(&client).await.token_set;
        let builder = client.token_provider(set).store(store.clone()).store_idle_timeout(idle);
        builder.store_key(StoreKey::session(&format!("user-{n}"))).build_saved().await.unwrap();
    }
    let keys = redis.keys("filevine:tokens:*");
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis.server.cmd(redis::cmd("PTTL").arg(&key));
        assert!(ttl > 0 && ttl <= 120_000, "{key}: {ttl} ms");
    }
}

#[tokio::test]
async fn cleartext_redis_to_another_host_is_warned_about_once() {
    let log = Captured::global();
    let mark = log.mark();
    // Opening sends nothing: an address nobody answers is fine.
    for _ in 0..2 {
        RedisStore::open("redis://:hunter2@192.0.2.7:6379/3").unwrap();
    }
    RedisStore::open("rediss://192.0.2.7:6379/3").unwrap();
    RedisStore::open("redis://127.0.0.1:6379/3").unwrap();
    let text = log.text_since(mark);
    let warnings: Vec<_> = text.lines().filter(|l| l.contains("without TLS") && l.contains("192.0.2.7")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
