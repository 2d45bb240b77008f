//! The PostgreSQL token store against a real PostgreSQL the tests start
//! (`initdb`/`pg_ctl` in a temporary directory): the contract every store
//! keeps, the errors a team meets (bad URL, refused login, missing table,
//! a table of another shape), a fleet rotating one refresh token, a lease
//! holder killed mid-refresh, and a restart under load.

use std::time::Duration;

use filevine_identity_ext::error::Report;
use filevine_identity_ext::store::{self, PostgresStore, StoreKey, TokenStore};
use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};

use crate::fleet::{
    PAT, SESSION, assert_clean, assert_one_request_per_cycle, fleet, killed_holder_is_taken_over,
    rotates_without_reuse, seed, server,
};
use crate::store::store_contract;
use crate::support::postgres::{PASSWORD, Postgres};

const HOUR: Duration = Duration::from_secs(3600);

/// A store on a database of its own in the shared cluster, migrated.
async fn migrated(name: &str) -> (String, PostgresStore) {
    let url = Postgres::shared().database(name);
    let store = PostgresStore::open(&url).unwrap();
    store.migrate().await.unwrap();
    (url, store)
}

fn text(error: &filevine_identity_ext::store::StoreError) -> String {
    Report(error).to_string()
}

#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let (_, store) = migrated("contract").await;
    store_contract(&store).await;
    // Migrating again is harmless.
    store.migrate().await.unwrap();
    // Through FILEVINE_TOKEN_STORE's form too, in a schema of its own.
    let url = Postgres::shared().database("contract_schema");
    Postgres::shared().sql_in("contract_schema", "CREATE SCHEMA auth");
    let in_schema = PostgresStore::open(&url).unwrap().with_table("auth.tokens").unwrap();
    in_schema.migrate().await.unwrap();
    store_contract(&in_schema).await;
    assert!(store::open(&url.replacen("postgres://", "postgresql://", 1)).is_ok());
}

#[tokio::test]
async fn expired_rows_are_absent_and_writes_remove_them() {
    let (url, store) = migrated("expiry").await;
    for n in 0..20 {
        store.save(&format!("gone-{n}"), b"v", Duration::from_millis(1)).await.unwrap();
    }
    let key = StoreKey::session("kept");
    // Expired: absent to load and to compare-and-swap at version 0.
    let count = || Postgres::shared().sql_in("expiry", "SELECT count(*) FROM filevine_token_sets");
    Postgres::shared().sql_in("expiry", "SELECT pg_sleep(0.01)");
    assert_eq!(store.load("gone-0").await.unwrap(), None);
    assert!(store.compare_and_swap("gone-0", 0, b"again", HOUR).await.unwrap());
    assert_eq!(store.load("gone-0").await.unwrap().unwrap().version, 1);
    // A store's first write (then one every 30 s) removes up to 16 dead
    // rows: two stores' writes leave only the live rows.
    for _ in 0..2 {
        let fresh = PostgresStore::open(&url).unwrap();
        fresh.save(key.as_str(), b"v", HOUR).await.unwrap();
    }
    assert_eq!(count(), "2", "the 19 expired rows are gone");
    // A lease on an absent entry is a row that expires with the lease.
    assert!(store.try_lease("leased", "a", Duration::from_millis(1)).await.unwrap());
    Postgres::shared().sql_in("expiry", "SELECT pg_sleep(0.01)");
    assert!(store.try_lease("leased", "b", HOUR).await.unwrap(), "an expired lease is free");
    assert_eq!(store.load("leased").await.unwrap(), None);
}

#[tokio::test]
async fn bad_urls_refused_logins_and_missing_or_foreign_tables_are_named() {
    let postgres = Postgres::shared();
    for (url, expected) in [
        ("postgres://u:hunter2@localhost/db?sslmode=sometimes", "not valid"),
        ("postgres://u:hunter2@/db", "does not parse"),
        ("mysql://u:hunter2@h/db", "expected `memory`"),
        ("postgres://u:hunter2@h:notaport/db", "does not parse"),
    ] {
        let shown = match store::open(url) {
            Ok(store) => panic!("{url} opened: {store:?}"),
            Err(error) => format!("{error} {error:?}"),
        };
        assert!(shown.contains(expected), "{url}: {shown}");
        assert!(!shown.contains("hunter2"), "{url}: {shown}");
    }
    let wrong = format!("postgres://postgres:hunter2@127.0.0.1:{}/postgres", postgres.port);
    let err = PostgresStore::open(&wrong).unwrap().load("k").await.unwrap_err();
    assert!(text(&err).contains("refused the login"), "{}", text(&err));
    assert!(!format!("{} {err:?}", text(&err)).contains("hunter2"));
    let nowhere = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/no_such_db", postgres.port);
    let err = PostgresStore::open(&nowhere).unwrap().load("k").await.unwrap_err();
    assert!(text(&err).contains("does not exist"), "{}", text(&err));
    assert!(!text(&err).contains(PASSWORD));

    let url = postgres.database("shapes");
    let store = PostgresStore::open(&url).unwrap();
    let err = store.load("k").await.unwrap_err();
    assert!(text(&err).contains("call PostgresStore::migrate()"), "{}", text(&err));
    postgres.sql_in("shapes", "CREATE TABLE other (key TEXT PRIMARY KEY, payload JSONB)");
    let other = PostgresStore::open(&url).unwrap().with_table("other").unwrap();
    let err = other.check().await.unwrap_err();
    assert!(text(&err).contains("is not a Filevine token table"), "{}", text(&err));
    let err = other.save("k", b"v", HOUR).await.unwrap_err();
    assert!(text(&err).contains("is not a Filevine token table"), "{}", text(&err));
    // Opening never changes a schema.
    assert_eq!(
        postgres.sql_in("shapes", "SELECT count(*) FROM pg_tables WHERE tablename = 'filevine_token_sets'"),
        "0"
    );
    assert!(PostgresStore::open(&url).unwrap().with_table("x; DROP TABLE other").is_err());
}

#[tokio::test]
async fn sealed_values_hold_no_token_text() {
    let (url, _) = migrated("sealed").await;
    let server = server().await;
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .store(store::open(&url).unwrap())
        .store_encryption_key(filevine_identity_ext::store::StoreEncryptionKey::generate().unwrap())
        .build()
        .unwrap();
    let token = provider.token().await.unwrap();
    let stored = Postgres::shared().sql_in("sealed", "SELECT encode(value, 'escape') FROM filevine_token_sets");
    assert!(!stored.is_empty() && !stored.contains(token.expose_secret()), "{stored}");
    let key = Postgres::shared().sql_in("sealed", "SELECT key FROM filevine_token_sets");
    assert_eq!(key, provider.store_key().unwrap().as_str(), "keys are the same digests as the other stores'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_rotates_one_refresh_token_through_postgres_without_reuse() {
    let server = server().await;
    let (url, _) = migrated("fleet").await;
    rotates_without_reuse(&server, &url, "rt-pg-0", 3, 10, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_mid_refresh_is_taken_over_after_the_lease_time() {
    let server = server().await;
    let (url, _) = migrated("killed").await;
    let holds = |key: &str| {
        let query = format!("SELECT lease_owner IS NOT NULL FROM filevine_token_sets WHERE key = '{key}'");
        Postgres::shared().sql_in("killed", &query) == "t"
    };
    killed_holder_is_taken_over(&server, &url, holds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_fleet_loses_nothing() {
    let server = server().await;
    let postgres = Postgres::start();
    let url = postgres.database("restart");
    PostgresStore::open(&url).unwrap().migrate().await.unwrap();
    seed(&server, &url, SESSION, "rt-pg-restart").await;
    let restart = async {
        // Restart once the fleet has rotated a few times.
        let start = server.grant_requests("refresh_token");
        while server.grant_requests("refresh_token") < start + 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::task::block_in_place(|| postgres.restart());
    };
    let ((report, requests, elapsed), ()) = tokio::join!(fleet(&server, &url, "session", 3, 10), restart);
    assert_clean(&report);
    assert_eq!(server.refresh_token_reuses(), 0, "no rotated-away refresh token was presented");
    assert_eq!(server.grant_requests("refresh_token"), requests + 1, "every request a refresh, plus the seed");
    assert_one_request_per_cycle(requests, elapsed, 3);
}

#[test]
fn opening_needs_no_runtime_and_connects_to_nothing() {
    // A port nobody listens on: nothing is tried until the first operation.
    let store = store::open("postgres://u:hunter2@127.0.0.1:1/db").unwrap();
    assert_eq!(store.kind(), "postgres");
    assert!(!format!("{store:?}").contains("hunter2"));
    let provider = TokenProvider::builder()
        .env(|name| (name == "FILEVINE_TOKEN_STORE").then(|| "postgresql://u:hunter2@127.0.0.1:1/db".to_owned()))
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .build();
    assert!(provider.is_ok());
}

/// Behind PgBouncer in transaction mode (two server connections for every
/// client): the contract and a fleet rotating one refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_behind_a_pooler_in_transaction_mode() {
    let postgres = Postgres::shared();
    postgres.database("pooled");
    let Some(bouncer) = postgres.bouncer("pooled") else {
        panic!("pgbouncer is not installed (apt-get install pgbouncer)");
    };
    let store = PostgresStore::open(&bouncer.url).unwrap();
    store.migrate().await.unwrap();
    store_contract(&store).await;
    let server = server().await;
    seed(&server, &bouncer.url, SESSION, "rt-pg-pooled").await;
    let (report, requests, elapsed) = fleet(&server, &bouncer.url, "session", 3, 6).await;
    assert_clean(&report);
    assert_eq!(server.refresh_token_reuses(), 0);
    assert_eq!(server.grant_requests("refresh_token"), requests + 1);
    assert_one_request_per_cycle(requests, elapsed, 3);
}

/// Replicas that start together each call `migrate()` on a fresh
/// database: ten at once all succeed (two `CREATE TABLE IF NOT EXISTS`
/// racing fail with a duplicate key in the catalog without the lock),
/// directly and through PgBouncer in transaction mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_migrations_of_a_fresh_database_all_succeed() {
    let postgres = Postgres::shared();
    let direct = postgres.database("migrate_together");
    let pooled_database = "migrate_together_pooled";
    postgres.database(pooled_database);
    let bouncer = postgres.bouncer(pooled_database).expect("pgbouncer is installed (apt-get install pgbouncer)");
    for url in [direct.as_str(), bouncer.url.as_str()] {
        // A store (and so a pool) per replica: ten connections at once.
        let stores: Vec<PostgresStore> = (0..10).map(|_| PostgresStore::open(url).unwrap()).collect();
        let results = futures_util::future::join_all(stores.iter().map(PostgresStore::migrate)).await;
        let failed: Vec<String> = results.iter().filter_map(|r| r.as_ref().err()).map(text).collect();
        assert!(failed.is_empty(), "{url}: {failed:?}");
        for store in &stores {
            store.check().await.unwrap();
        }
        assert!(stores[0].compare_and_swap("k", 0, b"v", HOUR).await.unwrap());
    }
}

/// A server off this machine sees every statement's values in its logs and
/// `pg_stat_activity`: a provider there needs an encryption key (refused
/// at build without one, naming the fix), and the store itself refuses an
/// unencrypted token set before sending anything. Loopback, a Unix socket
/// and `allow_unencrypted` take plain sets.
#[tokio::test]
async fn a_remote_server_gets_only_encrypted_token_sets() {
    let remote = PostgresStore::open("postgres://app@db.invalid/app").unwrap();
    assert!(remote.requires_encryption());
    for local in ["postgres://app@127.0.0.1/app", "postgres://app@localhost/app", "postgres://app@[::1]/app"] {
        assert!(!PostgresStore::open(local).unwrap().requires_encryption(), "{local}");
    }
    assert!(
        !PostgresStore::open("postgres://app@db.invalid/app?host=/var/run/postgresql").unwrap().requires_encryption()
    );
    assert!(!remote.clone().allow_unencrypted().requires_encryption());
    let pat = || Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap());
    let provider = |store: PostgresStore| {
        TokenProvider::builder().env(|_| None).store(std::sync::Arc::new(store)).credentials(pat())
    };
    let error = provider(remote.clone()).build().unwrap_err();
    assert!(matches!(error, filevine_identity_ext::ConfigError::StoreNeedsEncryption { store: "postgres" }), "{error}");
    assert!(error.to_string().contains("FILEVINE_STORE_KEY"), "{error}");
    let key = filevine_identity_ext::store::StoreEncryptionKey::generate().unwrap();
    provider(remote.clone()).store_encryption_key(key).build().unwrap();
    provider(remote.clone().allow_unencrypted()).build().unwrap();
    // The store alone: refused before any connection (db.invalid never
    // resolves, so an attempt would fail otherwise).
    let plain = b"FVTS\x02\x00{\"refresh_token\":\"r\"}";
    for error in [
        remote.save("k", plain, HOUR).await.unwrap_err(),
        remote.compare_and_swap("k", 0, plain, HOUR).await.unwrap_err(),
    ] {
        assert!(text(&error).contains("refusing to write an unencrypted token set"), "{}", text(&error));
    }
}
