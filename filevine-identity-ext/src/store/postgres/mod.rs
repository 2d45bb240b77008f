//! [`PostgresStore`]: token sets in PostgreSQL (feature `postgres`), for
//! applications whose only database is PostgreSQL.
//!
//! One table (`filevine_token_sets` unless named otherwise), made by
//! [`PostgresStore::migrate`] and by nothing else: opening a store never
//! changes a schema, and a missing table is an error that says to call it.
//! Every operation is one statement, so the store works through a pooler
//! in transaction mode (no advisory locks, no session state, no prepared
//! statement: each goes out as one simple query with its values as safe
//! literals; tested behind PgBouncer in transaction mode):
//!
//! - compare-and-swap is one `UPDATE … WHERE version = $n` (one `INSERT …
//!   ON CONFLICT` for version 0);
//! - the lease is the row's `lease_owner`/`lease_until`, taken by one
//!   statement that succeeds only when the lease is free, expired or
//!   already this owner's, and released only by its owner;
//! - expired entries and leases are deleted a few at a time by a write (at
//!   most every 30 s per store; `FOR UPDATE SKIP LOCKED`), so no cleanup
//!   job is needed; until then they are absent to every read.
//!
//! Times are the database server's (`now()`), one clock for every process.
//! Values are what the SDK gives every store: sealed token sets (with
//! `FILEVINE_STORE_KEY`) under SHA-256 keys.

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::contract::{Entry, StoreError, TokenStore};
use super::sweep::SweepClock;
use crate::error::ConfigError;

mod failure;
mod sql;

use failure::Failure;
use sql::{DEFAULT_TABLE, Literal, Statements, Table, fill};

const KIND: &str = "postgres";
/// Timeout of each statement, acquiring a connection included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a store's writes remove expired rows.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Connections of a pool the store builds itself.
const POOL_SIZE: u32 = 4;

/// Token sets in a PostgreSQL table.
///
/// ```
/// use filevine_identity_ext::store::PostgresStore;
///
/// // Opening connects to nothing; the first operation does.
/// let store = PostgresStore::open("postgres://app:hunter2@db.internal/app").unwrap();
/// assert!(!format!("{store:?}").contains("hunter2"));
/// let in_schema = PostgresStore::open("postgresql://localhost/app").unwrap().with_table("auth.tokens").unwrap();
/// # drop(in_schema);
/// ```
///
/// With the application's own pool (one pool for the app and the tokens),
/// and the table made once, at deploy or start-up:
///
/// ```no_run
/// use filevine_identity_ext::store::PostgresStore;
///
/// # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::with_pool(pool);
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    table: Table,
    sql: std::sync::Arc<Statements>,
    timeout: Duration,
    /// The URL without its password, for logs and `Debug`.
    display: String,
    /// The server is on this machine (loopback or a Unix socket).
    local: bool,
    /// The application accepts unencrypted token sets on a remote server.
    allow_unencrypted: bool,
    /// When this store last removed expired rows.
    swept: SweepClock,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.display)
            .field("table", &self.table)
            .field("requires_encryption", &self.requires_encryption())
            .finish()
    }
}

/// The pool a store runs on: the application's, or one of its own made on
/// first use (sqlx's pool starts a task, so it needs the runtime that the
/// first operation runs on; opening a store works anywhere).
#[derive(Clone)]
enum Pool {
    Given(PgPool),
    Own { options: Box<PgConnectOptions>, pool: std::sync::Arc<std::sync::OnceLock<PgPool>> },
}

impl Pool {
    fn get(&self) -> &PgPool {
        match self {
            Self::Given(pool) => pool,
            Self::Own { options, pool } => pool.get_or_init(|| {
                PgPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(DEFAULT_TIMEOUT)
                    .connect_lazy_with((**options).clone())
            }),
        }
    }
}

impl PostgresStore {
    /// A store at `url` (`postgres://` or `postgresql://`, with libpq's
    /// parameters such as `sslmode`), on a small pool of its own made and
    /// connected on first use: opening sends nothing and needs no runtime.
    ///
    /// # Errors
    /// [`ConfigError::TokenStore`] when the URL does not parse; the error
    /// never repeats the password.
    pub fn open(url: &str) -> Result<Self, ConfigError> {
        let options = Self::connect_options(url)?;
        let display = display(url).unwrap_or_default();
        let local = is_local(&options);
        warn_if_unverified(&options, local, &display);
        Ok(Self::build(Pool::Own { options: Box::new(options), pool: std::sync::Arc::default() }, display, local))
    }

    /// The connection settings `url` gives, checked as [`open`](Self::open)
    /// checks them (errors never repeat the password), set so that a pooler
    /// in transaction mode (PgBouncer) works as it is: statements left
    /// unnamed, no startup parameter a pooler would refuse. For an
    /// application that builds the one pool it shares with the store.
    ///
    /// ```
    /// use filevine_identity_ext::store::PostgresStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = PostgresStore::connect_options("postgres://app:secret@db.internal/app")?;
    /// let pool = sqlx::postgres::PgPoolOptions::new().max_connections(10).connect_lazy_with(options);
    /// let store = PostgresStore::with_pool(pool.clone()); // and the app's queries on `pool`
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::TokenStore`] naming what is wrong.
    pub fn connect_options(url: &str) -> Result<PgConnectOptions, ConfigError> {
        let invalid = |reason: String| ConfigError::TokenStore { reason };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("a PostgreSQL URL starts with `postgres://` or `postgresql://`".into()));
        }
        let display = display(url).ok_or_else(|| invalid("the PostgreSQL URL does not parse".into()))?;
        // sqlx's own message can quote the URL: only the fact is kept.
        let options = PgConnectOptions::from_str(url).map_err(|_| {
            invalid(format!("the PostgreSQL URL {display} is not valid (its host, port or parameters)"))
        })?;
        // No statement cache (the store's statements are unnamed anyway:
        // a pooler in transaction mode may hand each statement another
        // server connection). No `extra_float_digits`
        // startup parameter (the store reads no float): PgBouncer refuses
        // parameters it does not know unless configured to ignore them.
        // No statement logging: sqlx logs each statement at DEBUG and a
        // slow one at WARN, values included, and a value is a token set.
        Ok(options.statement_cache_capacity(0).extra_float_digits(None::<i8>).disable_statement_logging())
    }

    /// A store on the application's pool.
    ///
    /// sqlx logs every statement (at DEBUG, and a slow one at WARN) with
    /// its values, and the store's values are token sets: build the pool's
    /// options with [`connect_options`](Self::connect_options), or call
    /// `disable_statement_logging()` on them (`sqlx::ConnectOptions`).
    pub fn with_pool(pool: PgPool) -> Self {
        let local = is_local(&pool.connect_options());
        warn_if_unverified(&pool.connect_options(), local, "(the application's pool)");
        Self::build(Pool::Given(pool), "(the application's pool)".to_owned(), local)
    }

    fn build(pool: Pool, display: String, local: bool) -> Self {
        let table = Table::parse(DEFAULT_TABLE).unwrap_or_else(|_| unreachable!("a valid name"));
        let sql = std::sync::Arc::new(table.statements());
        Self {
            pool,
            table,
            sql,
            timeout: DEFAULT_TIMEOUT,
            display,
            local,
            allow_unencrypted: false,
            swept: SweepClock::default(),
        }
    }

    /// Accepts unencrypted token sets on a server off this machine.
    ///
    /// The store writes each value as a literal of its statement, which
    /// the server's logs (`log_min_duration_statement`, `log_statement`)
    /// and `pg_stat_activity` show: by default a store whose server is not
    /// on loopback or a Unix socket refuses a token set that is not
    /// encrypted, and a provider on it needs `FILEVINE_STORE_KEY` (or
    /// [`store_encryption_key`](crate::provider::TokenProviderBuilder::store_encryption_key)).
    ///
    /// ```
    /// use filevine_identity_ext::store::{PostgresStore, TokenStore};
    ///
    /// let remote = PostgresStore::open("postgres://app@db.internal/app")?;
    /// assert!(remote.requires_encryption());
    /// assert!(!remote.allow_unencrypted().requires_encryption());
    /// assert!(!PostgresStore::open("postgres://app@127.0.0.1/app")?.requires_encryption());
    /// # Ok::<(), filevine_identity_ext::ConfigError>(())
    /// ```
    #[must_use]
    pub fn allow_unencrypted(mut self) -> Self {
        self.allow_unencrypted = true;
        self
    }

    /// Keeps the token sets in `table` (`name` or `schema.name`) instead of
    /// `filevine_token_sets`.
    ///
    /// # Errors
    /// [`ConfigError::TokenStore`] for a name that is not a plain identifier.
    pub fn with_table(mut self, table: &str) -> Result<Self, ConfigError> {
        self.table = Table::parse(table)?;
        self.sql = std::sync::Arc::new(self.table.statements());
        Ok(self)
    }

    /// Timeout of each operation, acquiring a connection included (default
    /// 5 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Creates the table and its index if they do not exist (the schema, if
    /// named, must exist). Idempotent; safe from any number of replicas at
    /// once, directly or through a pooler in transaction mode: one
    /// transaction that first takes a transaction-level advisory lock named
    /// after the table, so concurrent creators run one after the other (two
    /// `CREATE TABLE IF NOT EXISTS` racing fail with a duplicate key in
    /// PostgreSQL's catalog).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database cannot be reached, refuses
    /// the login or the statement.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.timed("create the table", sqlx::raw_sql(&self.sql.migrate).execute(self.pool.get())).await?;
        tracing::info!(store = KIND, table = %self.table, "the token table is ready");
        Ok(())
    }

    /// Checks that the table exists and has the columns this store uses,
    /// with their types; the first operation does this too.
    ///
    /// # Errors
    /// [`StoreError::Backend`] naming a missing table (call
    /// [`migrate`](Self::migrate)) or a table of another shape.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.timed("check the table", sqlx::raw_sql(&self.sql.shape).execute(self.pool.get())).await.map(drop)
    }

    /// Runs a statement with the timeout, naming what failed.
    async fn timed<T>(
        &self,
        operation: &'static str,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, statement).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::backend(KIND, operation, Failure::from_sqlx(&error, &self.table))),
            Err(_) => Err(StoreError::backend(KIND, operation, Failure::Timeout(self.timeout))),
        }
    }

    /// A statement with its values as literals; a key or owner that is not a
    /// plain name is refused (the SDK's are hex digests and random tokens).
    fn fill(&self, operation: &'static str, template: &str, values: &[Literal<'_>]) -> Result<String, StoreError> {
        fill(template, values).map_err(|error| StoreError::backend(KIND, operation, error))
    }

    /// A row's columns; a type this store does not read names the table.
    fn decode<'r, T: sqlx::FromRow<'r, sqlx::postgres::PgRow>>(
        &self,
        operation: &'static str,
        row: &'r sqlx::postgres::PgRow,
    ) -> Result<T, StoreError> {
        T::from_row(row).map_err(|error| StoreError::backend(KIND, operation, Failure::from_sqlx(&error, &self.table)))
    }

    /// Refuses an unencrypted token set when the server is off this
    /// machine ([`allow_unencrypted`](Self::allow_unencrypted)).
    fn refuse_unencrypted(&self, operation: &'static str, value: &[u8]) -> Result<(), StoreError> {
        if self.requires_encryption() && super::record::is_unsealed_token_set(value) {
            return Err(StoreError::backend(KIND, operation, Failure::Unencrypted));
        }
        Ok(())
    }

    /// Removes a few expired rows, at most every [`SWEEP_EVERY`] per store
    /// (a write pays one more statement then); a failure only delays that.
    async fn sweep(&self) {
        if !self.swept.due(SWEEP_EVERY) {
            return;
        }
        if let Err(error) =
            self.timed("remove expired rows", sqlx::raw_sql(&self.sql.sweep).execute(self.pool.get())).await
        {
            tracing::debug!(store = KIND, error = %crate::error::Report(&error), "could not remove expired token sets");
        }
    }
}

/// Warns once per URL when a server off this machine is reached without a
/// checked certificate: libpq's default `sslmode=prefer` (and `allow`,
/// `require`) falls back to plaintext or takes any certificate.
fn warn_if_unverified(options: &PgConnectOptions, local: bool, shown: &str) {
    use sqlx::postgres::PgSslMode;
    let verified = matches!(options.get_ssl_mode(), PgSslMode::VerifyCa | PgSslMode::VerifyFull);
    if !local && !verified && crate::store::warn_once::first("postgres unverified", shown) {
        tracing::warn!(
            store = KIND,
            url = %shown,
            "the PostgreSQL token store is on another host without a checked certificate (sslmode is not verify-full): its password and token sets can be read or changed on the way; add `sslmode=verify-full` (and `sslrootcert`) to the URL"
        );
    }
}

/// Whether `options` reach a server on this machine: a loopback address,
/// `localhost`, or a Unix socket.
fn is_local(options: &PgConnectOptions) -> bool {
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host();
    host.starts_with('/') || crate::config::region::is_loopback_host(host)
}

/// Milliseconds for an interval, within what PostgreSQL's `interval`
/// holds comfortably (a century).
fn millis(duration: Duration) -> i64 {
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    i64::try_from(duration.min(century).as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The URL without user password: `postgres://user@host:port/db`.
fn display(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    Some(parsed.to_string())
}

#[async_trait::async_trait]
impl TokenStore for PostgresStore {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let sql = self.fill("load", &self.sql.load, &[Literal::Name(key)])?;
        // (`RawSql::fetch_optional` of sqlx 0.8 errors on no row: all rows,
        // of which there is one at most, the key being the primary key.)
        let rows = self.timed("load", sqlx::raw_sql(&sql).fetch_all(self.pool.get())).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (version, value): (i64, Vec<u8>) = self.decode("load", row)?;
        Ok(Some(Entry { version: u64::try_from(version).unwrap_or(0), value }))
    }

    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        self.refuse_unencrypted("save", value)?;
        let values = [Literal::Name(key), Literal::Bytes(value), Literal::Int(millis(ttl))];
        let sql = self.fill("save", &self.sql.save, &values)?;
        let row = self.timed("save", sqlx::raw_sql(&sql).fetch_one(self.pool.get())).await?;
        let (version,): (i64,) = self.decode("save", &row)?;
        self.sweep().await;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.refuse_unencrypted("compare and swap", value)?;
        let sql = if expected == 0 {
            let values = [Literal::Name(key), Literal::Bytes(value), Literal::Int(millis(ttl))];
            self.fill("compare and swap", &self.sql.insert, &values)?
        } else {
            let expected = Literal::Int(i64::try_from(expected).unwrap_or(i64::MAX));
            let values = [Literal::Name(key), expected, Literal::Bytes(value), Literal::Int(millis(ttl))];
            self.fill("compare and swap", &self.sql.update, &values)?
        };
        let done = self.timed("compare and swap", sqlx::raw_sql(&sql).execute(self.pool.get())).await?;
        let written = done.rows_affected() == 1;
        if written {
            self.sweep().await;
        }
        Ok(written)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let sql = self.fill("delete", &self.sql.delete, &[Literal::Name(key)])?;
        self.timed("delete", sqlx::raw_sql(&sql).execute(self.pool.get())).await.map(drop)
    }

    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let values = [Literal::Name(key), Literal::Name(owner), Literal::Int(millis(ttl))];
        let sql = self.fill("take the lease", &self.sql.take_lease, &values)?;
        Ok(self.timed("take the lease", sqlx::raw_sql(&sql).execute(self.pool.get())).await?.rows_affected() == 1)
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let sql =
            self.fill("release the lease", &self.sql.release_lease, &[Literal::Name(key), Literal::Name(owner)])?;
        self.timed("release the lease", sqlx::raw_sql(&sql).execute(self.pool.get())).await.map(drop)
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn requires_encryption(&self) -> bool {
        !self.local && !self.allow_unencrypted
    }
}
