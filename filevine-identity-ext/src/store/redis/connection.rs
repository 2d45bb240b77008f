//! [`RedisConnection`]: one handle over the three forms of a Redis
//! deployment, connecting on first use.
//!
//! - One node: redis-rs's `ConnectionManager`, which reconnects by itself.
//! - Sentinel: redis-rs's `SentinelClient` finds the primary (and checks it
//!   says it is one); the connection to it is dropped on a connection error
//!   or a `READONLY`/`MASTERDOWN` answer (a primary demoted by a failover),
//!   and the next command asks the Sentinels again. So the store follows the
//!   primary through a failover without a redeploy.
//! - Cluster: redis-rs's async cluster client, which routes every command by
//!   its key's hash slot and follows `MOVED`/`ASK` and a promoted replica.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, ConnectionAddr, FromRedisValue, RedisError, RedisFuture, TlsMode, Value};
use tokio::sync::Mutex;

use super::url::{Auth, Node, Target, Topology};

/// Timeout of each command unless configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Whole milliseconds for `PX` and `WAIT`, at least 1 (0 means "forever"
/// to `WAIT`, and `PX 0` is refused).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Warns once per process and URL when a store's traffic crosses a network
/// without TLS (`redis://` to a host that is not this machine), or over TLS
/// that checks no certificate (`rediss://…#insecure`).
fn warn_if_unprotected(target: &Target) {
    if let Some(host) = target.cleartext_remote_host()
        && crate::store::warn_once::first("redis cleartext", &target.display)
    {
        tracing::warn!(
            url = %target.display,
            host,
            "the Redis token store is reached without TLS on another host: its password, leases and token sets cross the network in the clear; use `rediss://`"
        );
    }
    if let Some(host) = target.unverified_tls_host()
        && crate::store::warn_once::first("redis insecure", &target.display)
    {
        tracing::warn!(
            url = %target.display,
            host,
            "the Redis token store's TLS checks no certificate (`#insecure`): anyone on the path can pose as the server and read its password and token sets; drop `#insecure` and trust the server's CA"
        );
    }
}

/// A connection to a Redis deployment of any form: one node, a primary
/// behind Sentinels, or a cluster. Cheap to clone (clones share the
/// connection); connects on first use and reconnects after failures, so
/// building one does no I/O.
///
/// It is what [`RedisStore`](super::RedisStore) runs on, and an
/// application can use it for its own keys in the same deployment (the
/// example partner app keeps its sessions with it): it implements the
/// `redis` crate's [`ConnectionLike`], so every command of
/// [`redis::AsyncCommands`] works on it. Each command has the connection's
/// timeout. On a cluster, a command must touch keys of one hash slot.
///
/// ```
/// use filevine_identity_ext::store::redis::RedisConnection;
///
/// let sessions = RedisConnection::open("redis+sentinel://:pw@127.0.0.1:26379/mymaster").unwrap();
/// assert_eq!(format!("{sessions:?}"), r#"RedisConnection { url: "redis+sentinel://127.0.0.1:26379/mymaster" }"#);
/// ```
#[derive(Clone)]
pub struct RedisConnection {
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    target: Target,
    /// The live connection, made on first use (and again, for Sentinel,
    /// after a failure).
    live: Mutex<Option<Live>>,
    /// Asks the Sentinels for the primary (Sentinel form only).
    sentinel: Option<Mutex<SentinelClient>>,
}

#[derive(Clone)]
enum Live {
    Single(ConnectionManager),
    /// The primary a Sentinel named, with a number that tells this
    /// connection from its successors.
    Sentinel(MultiplexedConnection, u64),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection").field("url", &self.shared.target.display).finish()
    }
}

impl RedisConnection {
    /// A connection to the deployment `url` names, in any of the forms
    /// [`store::open`](crate::store::open) takes; commands time out after
    /// 3 s. Sends nothing until first used.
    ///
    /// # Errors
    /// [`ConfigError::TokenStore`](crate::error::ConfigError::TokenStore) naming
    /// what is wrong with the URL (never its password).
    pub fn open(url: &str) -> Result<Self, crate::error::ConfigError> {
        Self::from_target(super::url::parse(url)?, DEFAULT_TIMEOUT)
    }

    /// The same connection with another timeout per command (connecting
    /// included). Clones share the connection whatever their timeouts.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn from_target(target: Target, timeout: Duration) -> Result<Self, crate::error::ConfigError> {
        warn_if_unprotected(&target);
        let sentinel = match &target.topology {
            Topology::Sentinel { sentinels, master, db, auth, tls } => {
                Some(Mutex::new(sentinel_client(sentinels, master, *db, auth, *tls)?))
            }
            _ => None,
        };
        Ok(Self { shared: Arc::new(Shared { target, live: Mutex::new(None), sentinel }), timeout })
    }

    /// The URL without user and password.
    pub fn url(&self) -> &str {
        &self.shared.target.display
    }

    pub(super) fn replicas_setting(&self) -> Option<u32> {
        self.shared.target.replicas
    }

    /// Runs `cmd` (routed by its key on a cluster) within the timeout.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Failure> {
        let value = self.request(cmd, None, self.timeout).await?;
        redis::from_redis_value(value).map_err(|e| Failure::from(RedisError::from(e)))
    }

    /// `WAIT replicas bound` on the node that holds `key` (the primary the
    /// last write went to). Returns how many replicas acknowledged.
    pub(super) async fn wait_for_replicas(&self, key: &str, replicas: u32, bound: Duration) -> Result<u32, Failure> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(millis(bound));
        // WAIT blocks the server side for up to `bound`: the reply may take
        // that long on top of the command timeout.
        let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
        let value = self.request(&cmd, Some(route), self.timeout.saturating_add(bound)).await?;
        redis::from_redis_value(value).map_err(|e| Failure::from(RedisError::from(e)))
    }

    async fn request(&self, cmd: &Cmd, route: Option<Route>, limit: Duration) -> Result<Value, Failure> {
        self.run(limit, |live| async move {
            match live {
                Live::Single(mut c) => c.req_packed_command(cmd).await,
                Live::Sentinel(mut c, _) => c.req_packed_command(cmd).await,
                Live::Cluster(mut c) => match route {
                    Some(route) => {
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                        c.route_command(cmd.clone(), routing).await
                    }
                    None => c.req_packed_command(cmd).await,
                },
            }
        })
        .await
    }

    async fn pipeline(&self, pipeline: &redis::Pipeline, offset: usize, count: usize) -> Result<Vec<Value>, Failure> {
        self.run(self.timeout, |live| async move {
            match live {
                Live::Single(mut c) => c.req_packed_commands(pipeline, offset, count).await,
                Live::Sentinel(mut c, _) => c.req_packed_commands(pipeline, offset, count).await,
                Live::Cluster(mut c) => c.req_packed_commands(pipeline, offset, count).await,
            }
        })
        .await
    }

    /// Runs `op` on the live connection (made now if needed) within
    /// `limit`. A Sentinel primary that failed or did not answer in time is
    /// forgotten, so the next command asks the Sentinels again.
    async fn run<T, F, Fut>(&self, limit: Duration, op: F) -> Result<T, Failure>
    where
        F: FnOnce(Live) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut used = None;
        let attempt = tokio::time::timeout(limit, async {
            let live = self.live().await?;
            used = Some(live.clone());
            let result = op(live.clone()).await;
            if let Err(error) = &result {
                self.after_error(&live, error).await;
            }
            result.map_err(Failure::from)
        })
        .await;
        match attempt {
            Ok(result) => result,
            Err(_) => {
                if let Some(live) = &used {
                    self.forget(live).await;
                }
                Err(Failure::Timeout(limit))
            }
        }
    }

    /// The live connection, made now if there is none.
    async fn live(&self) -> Result<Live, Failure> {
        let mut live = self.shared.live.lock().await;
        if let Some(live) = &*live {
            return Ok(live.clone());
        }
        let made = self.connect().await?;
        *live = Some(made.clone());
        Ok(made)
    }

    async fn connect(&self) -> Result<Live, Failure> {
        let timeout = self.timeout;
        match &self.shared.target.topology {
            Topology::Single(client) => {
                // Timeouts are the caller's (`request`): a WAIT may take
                // longer than one command.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(None)
                    .set_number_of_retries(1);
                Ok(Live::Single(ConnectionManager::new_with_config(client.clone(), config).await?))
            }
            Topology::Sentinel { master, .. } => {
                let sentinel = self.shared.sentinel.as_ref().expect("a Sentinel target has a Sentinel client");
                let client = sentinel.lock().await.async_get_client().await.map_err(|error| {
                    if error.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel {
                        Failure::UnknownMaster(master.clone())
                    } else {
                        Failure::Redis(error)
                    }
                })?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(None);
                let connection = client.get_multiplexed_async_connection_with_config(&config).await?;
                static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(url = %self.shared.target.display, "connected to the primary the Sentinels named");
                Ok(Live::Sentinel(connection, generation))
            }
            Topology::Cluster { nodes, auth, tls } => {
                let urls = nodes.iter().map(|node| address(node, *tls));
                // A few quick retries inside the client (a MOVED, a node
                // that just went away): the provider retries a failing
                // store with its own backoff and deadline, and an error
                // such as CLUSTERDOWN must reach it within the command
                // timeout (the client's default waits minutes).
                let mut builder = redis::cluster::ClusterClientBuilder::new(urls)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(250);
                if let Some(username) = &auth.username {
                    builder = builder.username(username);
                }
                if let Some(password) = &auth.password {
                    builder = builder.password(password);
                }
                if *tls {
                    builder = builder.tls(TlsMode::Secure);
                }
                Ok(Live::Cluster(builder.build()?.get_async_connection().await?))
            }
        }
    }

    /// After a failed command: a Sentinel primary that is gone or demoted is
    /// forgotten, so the next command asks the Sentinels again.
    async fn after_error(&self, live: &Live, error: &RedisError) {
        if matches!(live, Live::Sentinel(..))
            && (error.is_io_error()
                || error.is_connection_dropped()
                || error.is_connection_refusal()
                || error.is_timeout()
                || matches!(error.code(), Some("READONLY" | "MASTERDOWN" | "LOADING")))
        {
            self.forget(live).await;
        }
    }

    async fn forget(&self, failed: &Live) {
        let Live::Sentinel(_, failed) = failed else { return };
        let mut live = self.shared.live.lock().await;
        if matches!(&*live, Some(Live::Sentinel(_, current)) if current == failed) {
            tracing::debug!(url = %self.shared.target.display, "the primary failed; asking the Sentinels again on the next command");
            *live = None;
        }
    }
}

/// `redis://host:port` or `rediss://…` of a node, as the cluster client
/// takes seed nodes (without credentials: the builder adds them).
fn address(node: &Node, tls: bool) -> String {
    format!("{}://{node}", if tls { "rediss" } else { "redis" })
}

fn sentinel_client(
    sentinels: &[Node],
    master: &str,
    db: i64,
    auth: &Auth,
    tls: bool,
) -> Result<SentinelClient, crate::error::ConfigError> {
    let addresses = sentinels.iter().map(|node| {
        if tls {
            ConnectionAddr::TcpTls { host: node.host.clone(), port: node.port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(node.host.clone(), node.port)
        }
    });
    let invalid = |e: RedisError| crate::error::ConfigError::TokenStore {
        reason: format!("invalid Sentinel settings: {}", e.category()),
    };
    let mut builder = SentinelClientBuilder::new(addresses, master, SentinelServerType::Master).map_err(invalid)?;
    builder = builder.set_client_to_redis_db(db);
    if let Some(username) = &auth.username {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = &auth.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if tls {
        builder =
            builder.set_client_to_redis_tls_mode(TlsMode::Secure).set_client_to_sentinel_tls_mode(TlsMode::Secure);
    }
    builder.build().map_err(invalid)
}

/// Why a command failed, in words an operator can act on. The `redis`
/// crate's error is the source where there is one.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error("the Sentinels know no primary named `{0}` (check the master name in the URL)")]
    UnknownMaster(String),
    #[error("the Redis cluster is down (CLUSTERDOWN): some hash slots are not served")]
    ClusterDown(#[source] RedisError),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("{}", describe(.0))]
    Redis(#[source] RedisError),
}

impl From<RedisError> for Failure {
    fn from(error: RedisError) -> Self {
        if error.code() == Some("CLUSTERDOWN") { Failure::ClusterDown(error) } else { Failure::Redis(error) }
    }
}

/// A redis-rs error in one line: its category and the server's code, never
/// the command (which may carry a sealed value) or a URL.
fn describe(error: &RedisError) -> String {
    match error.code() {
        Some(code) => format!("Redis answered {code} ({})", error.category()),
        None => format!("Redis failed: {}", error.category()),
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.request(cmd, None, self.timeout).await.map_err(into_redis_error) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move { self.pipeline(pipeline, offset, count).await.map_err(into_redis_error) })
    }

    fn get_db(&self) -> i64 {
        match &self.shared.target.topology {
            Topology::Sentinel { db, .. } => *db,
            Topology::Single(client) => client.get_connection_info().redis_settings().db(),
            Topology::Cluster { .. } => 0,
        }
    }
}

fn into_redis_error(failure: Failure) -> RedisError {
    match failure {
        Failure::Redis(error) | Failure::ClusterDown(error) => error,
        other => RedisError::from(std::io::Error::other(other.to_string())),
    }
}
