//! Where sessions and pending sign-ins live: a bounded in-memory store for
//! one process, or Redis for replicas. Both are tower-sessions
//! `SessionStore`s, and both let records expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use filevine_identity_ext::store::redis::RedisConnection;
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
#[derive(Clone)]
pub struct RedisSessions {
    connection: RedisConnection,
    prefix: &'static str,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions").field("connection", &self.connection).field("prefix", &self.prefix).finish()
    }
}

impl RedisSessions {
    /// Records under `<prefix><id>` on `connection`.
    pub fn new(connection: RedisConnection, prefix: &'static str) -> Self {
        Self { connection, prefix }
    }

    fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    fn key(&self, id: &Id) -> String {
        format!("{}{id}", self.prefix)
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
        let json = serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        let left = (record.expiry_date - OffsetDateTime::now_utc()).whole_milliseconds();
        let millis = u64::try_from(left).unwrap_or(0).max(1);
        self.connection().pset_ex::<_, _, ()>(self.key(&record.id), json, millis).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        use redis::AsyncCommands as _;
        use tower_sessions::session_store::Error;
        let json: Option<Vec<u8>> = self.connection().get(self.key(id)).await.map_err(backend)?;
        json.map(|json| serde_json::from_slice(&json).map_err(|e| Error::Decode(e.to_string()))).transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        use redis::AsyncCommands as _;
        self.connection().del::<_, ()>(self.key(id)).await.map_err(backend)
    }
}
