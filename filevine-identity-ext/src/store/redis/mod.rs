//! [`RedisStore`]: token sets in Redis, for replicas and fleets (feature
//! `redis`), on one node, a primary behind Sentinels, or a cluster.
//!
//! # Durability across a failover
//!
//! Redis replicates asynchronously: a write the primary acknowledged can be
//! missing on the replica that a failover promotes. For a rotated refresh
//! token that would be fatal (the promoted replica holds the previous,
//! already consumed one, and the next refresh is refused). So after every
//! write of a token set the store sends `WAIT`: the token set is handed out
//! only once `replicas` replicas have it, or the bound
//! ([`RedisStore::with_replica_wait`], 1 s by default) has passed.
//!
//! - `replicas` is `?replicas=N` in the URL or
//!   [`RedisStore::with_replicas`]; by default 1 when the node that took the
//!   write has a replica connected, 0 (no `WAIT`) when it has none.
//! - When fewer replicas acknowledge in time, the token set is still used
//!   (the identity provider has already rotated the token; not using it
//!   would sign the user out for sure), and a warning and the metric
//!   `filevine_identity_store_replication_shortfall_total` say so.
//!
//! What this does not guarantee: `WAIT` makes a lost write unlikely, not
//! impossible. Redis can still lose an acknowledged write when a partition
//! isolates the primary with a minority and a replica that did not get the
//! write is promoted on the other side (Redis's own replication
//! documentation says as much). Several replicas (`replicas=2`) and
//! `min-replicas-to-write` on the server narrow that window further. A
//! write lost anyway does not lose the session while the process that made
//! it lives: it still holds the newer refresh token, refreshes with it and
//! saves over the older entry, and the other processes' providers take
//! that set. One that refreshes first, with the spent token the entry went
//! back to, fails that refresh (`invalid_grant`).

use std::fmt;
use std::time::Duration;

use super::contract::{Entry, StoreError, TokenStore};

mod connection;
mod url;

pub use connection::RedisConnection;
use connection::millis;

const KIND: &str = "redis";
/// The longest expiry set: Redis refuses one past its clock's range.
const MAX_EXPIRY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn expiry_millis(ttl: Duration) -> u64 {
    millis(ttl.min(MAX_EXPIRY))
}
/// How long a write waits for its replicas unless configured.
const DEFAULT_REPLICA_WAIT: Duration = Duration::from_secs(1);

/// The number of replicas connected to the node running a script, for the
/// default of `replicas`.
const REPLICAS: &str = r"
local function replicas()
  local info = redis.call('INFO', 'replication')
  return tonumber(string.match(info, 'connected_slaves:(%d+)')) or 0
end
";

/// Compare-and-swap: write version `ARGV[1] + 1` only if the entry is at
/// version `ARGV[1]` (an absent entry is version 0).
/// The entry expires `ARGV[3]` milliseconds later.
const CAS: &str = r"
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then return {0, replicas()} end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, replicas()}
";

/// Unconditional write: bump the version, replace the value, expire
/// `ARGV[2]` milliseconds later.
const SAVE: &str = r"
local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {version, replicas()}
";

/// Delete the entry.
const DELETE: &str = r"
redis.call('DEL', KEYS[1])
return {1, replicas()}
";

/// Take the lease for `ARGV[1]`, or renew it if `ARGV[1]` holds it already.
const LEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Release the lease only if `ARGV[1]` still owns it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Token sets in Redis: a hash per key (`v` version, `d` value, with the
/// expiry of its last write) under `filevine:tokens:{<key>}`, a lease on `filevine:tokens:{<key>}:lease`
/// holding its owner (taken, renewed and released by scripts that check
/// the owner). Compare-and-swap is a script too, so it is atomic on the
/// server. The braces are a hash tag: an entry and its lease live in one
/// hash slot, so nothing is cross-slot on a cluster.
///
/// Opened from a URL in one of three forms (see [`store::open`](super::open)):
/// `redis://` (one node), `redis+sentinel://` (a primary behind Sentinels,
/// followed through a failover), `redis+cluster://`; the `rediss` variants
/// use TLS. Connects on first use ([`RedisConnection`]); each command has a
/// timeout. After each write it waits for replicas (see the
/// [module documentation](self)).
///
/// ```
/// use filevine_identity_ext::store::RedisStore;
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/0").unwrap();
/// let sentinel = RedisStore::open("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster").unwrap();
/// let cluster = RedisStore::open("redis+cluster://10.0.0.1:7000,10.0.0.2:7000?replicas=1").unwrap();
/// // The URL's password never shows.
/// let store = RedisStore::open("redis://:hunter2@127.0.0.1/0").unwrap();
/// assert!(!format!("{store:?}").contains("hunter2"));
/// ```
pub struct RedisStore {
    connection: RedisConnection,
    prefix: String,
    /// Replicas that must acknowledge a write; `None`: 1 when the node has
    /// one, else 0.
    replicas: Option<u32>,
    replica_wait: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.connection.url())
            .field("prefix", &self.prefix)
            .field("replicas", &self.replicas)
            .finish()
    }
}

impl RedisStore {
    /// A store at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `redis+sentinel://[user:password@]host1[:26379][,host2…]/<master>[/<db>]`
    /// or `redis+cluster://[user:password@]host1[:6379][,host2…]` (`rediss…`
    /// for TLS), each with an optional `?replicas=N`. Sends nothing until
    /// first used.
    ///
    /// # Errors
    /// [`ConfigError::TokenStore`](crate::error::ConfigError::TokenStore) naming
    /// what is wrong with the URL (the error does not repeat its password).
    pub fn open(url: &str) -> Result<Self, crate::error::ConfigError> {
        Ok(Self::with_connection(RedisConnection::open(url)?))
    }

    /// A store on a connection the application already has (the same
    /// deployment as its sessions, say).
    pub fn with_connection(connection: RedisConnection) -> Self {
        let replicas = connection.replicas_setting();
        Self { connection, prefix: "filevine:tokens:".to_owned(), replicas, replica_wait: DEFAULT_REPLICA_WAIT }
    }

    /// Puts keys under `prefix` instead of `filevine:tokens:` (several
    /// applications in one database).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Timeout of each command, connecting included (default 3 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.with_timeout(timeout);
        self
    }

    /// How many replicas must have a written token set before it is used
    /// (`WAIT`); overrides `?replicas=` of the URL. By default 1 when the
    /// node that took the write has a replica, else 0. See the
    /// [module documentation](self) for what it guarantees.
    #[must_use]
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = Some(replicas);
        self
    }

    /// The longest a write waits for its replicas (default 1 s); after it
    /// the token set is used anyway, with a warning.
    #[must_use]
    pub fn with_replica_wait(mut self, bound: Duration) -> Self {
        self.replica_wait = bound;
        self
    }

    /// The connection this store runs on.
    pub fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    async fn run<T: redis::FromRedisValue>(&self, operation: &'static str, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.connection.query(cmd).await.map_err(|failure| StoreError::backend(KIND, operation, failure))
    }

    /// `EVAL script 1 key args…`: the script text each time (a few hundred
    /// bytes), so a promoted replica or a new cluster node with an empty
    /// script cache needs no second round trip.
    async fn eval<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        script: &str,
        key: &str,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(key);
        for arg in args {
            cmd.arg(*arg);
        }
        self.run(operation, &cmd).await
    }

    /// A write script: its result, then `WAIT` for the replicas.
    async fn write(&self, operation: &'static str, script: &str, key: &str, args: &[&[u8]]) -> Result<i64, StoreError> {
        let source = format!("{REPLICAS}{script}");
        let (result, connected): (i64, u32) = self.eval(operation, &source, key, args).await?;
        self.replicate(key, connected).await;
        Ok(result)
    }

    /// Waits until the replicas acknowledge this connection's writes, up to
    /// the bound. Never an error: the write is done; a shortfall is logged
    /// and counted.
    async fn replicate(&self, key: &str, connected: u32) {
        let wanted = self.replicas.unwrap_or(u32::from(connected > 0));
        if wanted == 0 {
            return;
        }
        let acknowledged = match self.connection.wait_for_replicas(key, wanted, self.replica_wait).await {
            Ok(acknowledged) => acknowledged,
            Err(failure) => {
                tracing::warn!(store = KIND, url = %self.connection.url(), error = %failure, "could not wait for the replicas to take a token set");
                0
            }
        };
        if acknowledged < wanted {
            tracing::warn!(
                store = KIND,
                url = %self.connection.url(),
                wanted,
                acknowledged,
                waited_ms = u64::try_from(self.replica_wait.as_millis()).unwrap_or(u64::MAX),
                "fewer replicas than asked took the saved token set in time; a failover now could lose it"
            );
            crate::metrics::replication_shortfall(KIND, self.connection.url());
        }
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}{{{key}}}", self.prefix)
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:lease", self.prefix)
    }
}

#[async_trait::async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.entry_key(key)).arg("v").arg("d");
        let (version, value): (Option<u64>, Option<Vec<u8>>) = self.run("load", &cmd).await?;
        Ok(match (version, value) {
            (Some(version), Some(value)) => Some(Entry { version, value }),
            // A hash with a version and no value (a partial foreign write):
            // present but unreadable, so it can be replaced by CAS.
            (Some(version), None) => Some(Entry { version, value: Vec::new() }),
            _ => None,
        })
    }

    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        let ttl = expiry_millis(ttl).to_string();
        let version = self.write("save", SAVE, &self.entry_key(key), &[value, ttl.as_bytes()]).await?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (expected, ttl) = (expected.to_string(), expiry_millis(ttl).to_string());
        let args: [&[u8]; 3] = [expected.as_bytes(), value, ttl.as_bytes()];
        let written = self.write("compare and swap", CAS, &self.entry_key(key), &args).await?;
        Ok(written == 1)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write("delete", DELETE, &self.entry_key(key), &[]).await.map(drop)
    }

    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let taken: i64 = self
            .eval(
                "take the lease",
                LEASE,
                &self.lease_key(key),
                &[owner.as_bytes(), millis(ttl).to_string().as_bytes()],
            )
            .await?;
        Ok(taken == 1)
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.eval::<i64>("release the lease", RELEASE, &self.lease_key(key), &[owner.as_bytes()]).await.map(drop)
    }

    fn kind(&self) -> &'static str {
        KIND
    }
}
