//! [`RedisStore`]: token sets in Redis, for replicas and fleets (feature
//! `redis`).

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands as _, Script};
use tokio::sync::OnceCell;

use super::{Entry, StoreError, TokenStore};

const KIND: &str = "redis";

/// Compare-and-swap: write version `ARGV[1] + 1` only if the entry is at
/// version `ARGV[1]` (an absent entry is version 0).
const CAS: &str = r"
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), 'd', ARGV[2])
return 1
";

/// Unconditional write: bump the version, replace the value.
const SAVE: &str = r"
local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1])
return version
";

/// Release the lease only if `ARGV[1]` still owns it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Token sets in Redis: a hash per key (`v` version, `d` value) under
/// `filevine:tokens:<key>`, a lease as `SET NX PX` on
/// `filevine:tokens:<key>:lease` holding its owner, released by a script
/// that checks the owner. Compare-and-swap is a script too, so it is atomic
/// on the server.
///
/// Connects on first use through redis-rs's `ConnectionManager`, which
/// reconnects after a dropped connection. Each command has a timeout.
///
/// ```
/// use filevine_identity_ext::store::RedisStore;
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/0").unwrap();
/// // The URL's password never shows.
/// let store = RedisStore::open("redis://:hunter2@127.0.0.1/0").unwrap();
/// assert!(!format!("{store:?}").contains("hunter2"));
/// ```
pub struct RedisStore {
    client: redis::Client,
    /// Shown in `Debug` and errors: the URL without credentials.
    display: String,
    prefix: String,
    timeout: Duration,
    connection: OnceCell<ConnectionManager>,
    cas: Script,
    save: Script,
    release: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.display).field("prefix", &self.prefix).finish()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://[:password@]host[:port][/db]`,
    /// `rediss://` for TLS). Sends nothing until first used.
    ///
    /// # Errors
    /// [`ConfigError::TokenStore`](crate::ConfigError::TokenStore) for a URL
    /// Redis cannot use (the error does not repeat the URL).
    pub fn open(url: &str) -> Result<Self, crate::ConfigError> {
        let client = redis::Client::open(url)
            .map_err(|e| crate::ConfigError::TokenStore { reason: format!("invalid Redis URL: {}", e.category()) })?;
        let display = match url::Url::parse(url) {
            Ok(mut parsed) => {
                let _ = parsed.set_password(None);
                let _ = parsed.set_username("");
                parsed.to_string()
            }
            Err(_) => "redis://…".to_owned(),
        };
        Ok(Self {
            client,
            display,
            prefix: "filevine:tokens:".to_owned(),
            timeout: Duration::from_secs(3),
            connection: OnceCell::new(),
            cas: Script::new(CAS),
            save: Script::new(SAVE),
            release: Script::new(RELEASE),
        })
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
        self.timeout = timeout;
        self
    }

    async fn connection(&self, operation: &'static str) -> Result<ConnectionManager, StoreError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| async {
                tokio::time::timeout(self.timeout, ConnectionManager::new_with_config(self.client.clone(), config))
                    .await
                    .map_err(|elapsed| StoreError::backend(KIND, operation, elapsed))?
                    .map_err(|e| StoreError::backend(KIND, operation, e))
            })
            .await
            .cloned()
    }

    async fn run<T>(
        &self,
        operation: &'static str,
        command: impl AsyncFnOnce(ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let connection = self.connection(operation).await?;
        match tokio::time::timeout(self.timeout, command(connection)).await {
            Ok(result) => result.map_err(|e| StoreError::backend(KIND, operation, e)),
            Err(elapsed) => Err(StoreError::backend(KIND, operation, elapsed)),
        }
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait::async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let name = self.entry_key(key);
        let (version, value): (Option<u64>, Option<Vec<u8>>) = self
            .run("load", async move |mut c| redis::cmd("HMGET").arg(&name).arg("v").arg("d").query_async(&mut c).await)
            .await?;
        Ok(match (version, value) {
            (Some(version), Some(value)) => Some(Entry { version, value }),
            // A hash with a version and no value (a partial foreign write):
            // present but unreadable, so it can be replaced by CAS.
            (Some(version), None) => Some(Entry { version, value: Vec::new() }),
            _ => None,
        })
    }

    async fn save(&self, key: &str, value: &[u8]) -> Result<u64, StoreError> {
        let name = self.entry_key(key);
        let script = self.save.clone();
        let value = value.to_vec();
        self.run("save", async move |mut c| script.key(&name).arg(value).invoke_async(&mut c).await).await
    }

    async fn compare_and_swap(&self, key: &str, expected: u64, value: &[u8]) -> Result<bool, StoreError> {
        let name = self.entry_key(key);
        let script = self.cas.clone();
        let value = value.to_vec();
        let written: i64 = self
            .run("compare and swap", async move |mut c| {
                script.key(&name).arg(expected.to_string()).arg(value).invoke_async(&mut c).await
            })
            .await?;
        Ok(written == 1)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let name = self.entry_key(key);
        self.run("delete", async move |mut c| c.del::<_, ()>(&name).await).await
    }

    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let name = format!("{}:lease", self.entry_key(key));
        let owner = owner.to_owned();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .run("take the lease", async move |mut c| {
                redis::cmd("SET").arg(&name).arg(&owner).arg("NX").arg("PX").arg(millis).query_async(&mut c).await
            })
            .await?;
        Ok(set.is_some())
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let name = format!("{}:lease", self.entry_key(key));
        let script = self.release.clone();
        let owner = owner.to_owned();
        self.run("release the lease", async move |mut c| {
            script.key(&name).arg(owner).invoke_async::<i64>(&mut c).await.map(drop)
        })
        .await
    }

    fn kind(&self) -> &'static str {
        KIND
    }
}
