//! Where sessions and pending sign-ins live: a bounded in-memory store for
//! one process, or Redis for replicas. Both are tower-sessions
//! `SessionStore`s, and both let records expire.
//!
//! In Redis a record is named by an HMAC of its id under the server's key
//! and sealed like a token set: a `SCAN` of a replica or an RDB backup
//! yields neither a session cookie nor what a session holds (the token
//! set's key, the CSRF token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use filevine_identity_ext::store::redis::RedisConnection;
use filevine_identity_ext::store::{self, StoreEncryptionKeys, StoreKey};
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};

/// Records in this process's memory, at most `capacity` of them: expired
/// ones are dropped on every write, and when the store is full the one
/// closest to expiry makes room. Calls to `/login` (or any other route)
/// cannot grow it without bound.
#[derive(Debug, Clone)]
pub struct BoundedMemory {
    capacity: usize,
    records: Arc<Mutex<HashMap<Id, Record>>>,
}

impl BoundedMemory {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), records: Arc::default() }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SessionStore for BoundedMemory {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let mut records = self.records();
        while records.contains_key(&record.id) {
            record.id = Id::default();
        }
        insert(&mut records, record.clone(), self.capacity);
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        insert(&mut self.records(), record.clone(), self.capacity);
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut records = self.records();
        match records.get(id) {
            Some(record) if record.expiry_date > OffsetDateTime::now_utc() => Ok(Some(record.clone())),
            Some(_) => {
                records.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.records().remove(id);
        Ok(())
    }
}

fn insert(records: &mut HashMap<Id, Record>, record: Record, capacity: usize) {
    let now = OffsetDateTime::now_utc();
    records.retain(|_, r| r.expiry_date > now);
    if !records.contains_key(&record.id) && records.len() >= capacity {
        let soonest = records.iter().min_by_key(|(_, r)| r.expiry_date).map(|(id, _)| *id);
        if let Some(id) = soonest {
            records.remove(&id);
        }
    }
    records.insert(record.id, record);
}

/// tower-sessions over the SDK's `RedisConnection`, so the sessions live
/// in the same Redis deployment as the token sets, whichever form it has
/// (one node, Sentinel, Cluster) and follow it through a failover (the
/// published Redis adapter brings a second Redis client and knows one
/// form). Each record is one key with Redis's own expiry, so every command
/// touches one key and works on a cluster.
///
/// The key is `<prefix><HMAC of the id>` and the value the record's JSON
/// sealed (AES-256-GCM, bound to that key) with the server's keys
/// (`FILEVINE_STORE_KEY`): reading Redis gives no usable cookie, and a
/// value written by someone without the key, or moved to another key, does
/// not open (it loads as no session).
#[derive(Clone)]
pub struct RedisSessions {
    connection: RedisConnection,
    prefix: &'static str,
    keys: StoreEncryptionKeys,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions").field("connection", &self.connection).field("prefix", &self.prefix).finish()
    }
}

impl RedisSessions {
    /// Records under `<prefix><HMAC of the id>` on `connection`, sealed
    /// with `keys`.
    pub fn new(connection: RedisConnection, prefix: &'static str, keys: StoreEncryptionKeys) -> Self {
        Self { connection, prefix, keys }
    }

    fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    /// The record's name under each key, the current key's first (a record
    /// written before a key rotation is still found).
    fn names(&self, id: &Id) -> Vec<String> {
        self.keys.keyed_names(&id.to_string()).into_iter().map(|name| format!("{}{name}", self.prefix)).collect()
    }
}

fn backend(error: redis::RedisError) -> tower_sessions::session_store::Error {
    tower_sessions::session_store::Error::Backend(error.to_string())
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn save(&self, record: &Record) -> Result<()> {
        use redis::AsyncCommands as _;
        use tower_sessions::session_store::Error;
        let json = zeroize::Zeroizing::new(serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?);
        let name = self.names(&record.id).swap_remove(0);
        let sealed = store::seal_record(&json, &StoreKey::session(&name), &self.keys)
            .map_err(|e| Error::Encode(e.to_string()))?;
        let left = (record.expiry_date - OffsetDateTime::now_utc()).whole_milliseconds();
        let millis = u64::try_from(left).unwrap_or(0).max(1);
        self.connection().pset_ex::<_, _, ()>(name, sealed, millis).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        use redis::AsyncCommands as _;
        for name in self.names(id) {
            let sealed: Option<Vec<u8>> = self.connection().get(&name).await.map_err(backend)?;
            let Some(sealed) = sealed else { continue };
            // A value that does not open (forged, moved, another key) or
            // does not parse is no session.
            let record = store::open_record(&sealed, &StoreKey::session(&name), &self.keys)
                .and_then(|json| serde_json::from_slice(&json).ok());
            return Ok(record);
        }
        Ok(None)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        use redis::AsyncCommands as _;
        // One key per command (they may live in different cluster slots).
        for name in self.names(id) {
            self.connection().del::<_, ()>(name).await.map_err(backend)?;
        }
        Ok(())
    }
}

/// Any tower-sessions store, with records named by an HMAC of their id and
/// sealed, as [`RedisSessions`] does by itself: the PostgreSQL store from
/// tower-sessions-sqlx-store keeps `(id, data, expiry)` rows, and here the
/// row's id is derived from the cookie's under the server's key and its
/// data is one sealed field. A dump of the table yields no cookie, no CSRF
/// token and no token key; a row not sealed by the app loads as no session.
#[derive(Clone)]
pub struct Sealed<S> {
    inner: S,
    keys: StoreEncryptionKeys,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Sealed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("inner", &self.inner).finish_non_exhaustive()
    }
}

/// The one field of a sealed record's data.
const SEALED_FIELD: &str = "sealed";

impl<S> Sealed<S> {
    pub fn new(inner: S, keys: StoreEncryptionKeys) -> Self {
        Self { inner, keys }
    }

    /// The stored ids of `id` under each key, the current key's first.
    fn stored_ids(&self, id: &Id) -> Vec<Id> {
        self.keys.keyed_names(&id.to_string()).iter().map(|name| keyed_id(name)).collect()
    }
}

/// An id from the first 128 bits of a keyed name (64 hex digits).
fn keyed_id(name: &str) -> Id {
    Id(u128::from_str_radix(&name[..32], 16).map_or(0, |bits| bits as i128))
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for Sealed<S> {
    async fn save(&self, record: &Record) -> Result<()> {
        use base64::Engine as _;
        use tower_sessions::session_store::Error;
        let stored_id = self.stored_ids(&record.id).swap_remove(0);
        let json = zeroize::Zeroizing::new(serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?);
        let sealed = store::seal_record(&json, &StoreKey::session(&stored_id.to_string()), &self.keys)
            .map_err(|e| Error::Encode(e.to_string()))?;
        let data = HashMap::from([(
            SEALED_FIELD.to_owned(),
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(sealed)),
        )]);
        self.inner.save(&Record { id: stored_id, data, expiry_date: record.expiry_date }).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        use base64::Engine as _;
        for stored_id in self.stored_ids(id) {
            let Some(row) = self.inner.load(&stored_id).await? else { continue };
            let record = row
                .data
                .get(SEALED_FIELD)
                .and_then(serde_json::Value::as_str)
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .and_then(|sealed| store::open_record(&sealed, &StoreKey::session(&stored_id.to_string()), &self.keys))
                .and_then(|json| serde_json::from_slice::<Record>(&json).ok())
                // The sealed record names the cookie's id: a row copied
                // under another id does not open as that session.
                .filter(|record| record.id == *id);
            return Ok(record);
        }
        Ok(None)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        for stored_id in self.stored_ids(id) {
            self.inner.delete(&stored_id).await?;
        }
        Ok(())
    }
}
