//! [`MemoryStore`]: token sets in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::contract::{Entry, StoreError, TokenStore};

/// Token sets in memory, shared by every provider given this store (clone
/// an `Arc` of it): several providers for the same credentials make one
/// exchange, and a per-request provider for a user's session finds the
/// tokens the last request saved. Gone when the process exits.
///
/// Bounded by time: an entry expires with the `ttl` of its last write, and
/// every write drops the expired entries and leases, so a long-running app
/// holds only the sessions still in use.
///
/// ```
/// use std::sync::Arc;
/// use filevine_identity_ext::store::{MemoryStore, TokenStore};
///
/// let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
/// assert_eq!(store.kind(), "memory");
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Each entry with its expiry (`None`: a time too large for the clock).
    entries: HashMap<String, (Entry, Option<Instant>)>,
    /// Owner and expiry (`None`: a lease time too large for the clock).
    leases: HashMap<String, (String, Option<Instant>)>,
}

fn live(until: Option<Instant>, now: Instant) -> bool {
    until.is_none_or(|until| now < until)
}

impl State {
    /// The entry under `key` unless it expired.
    fn live_entry(&self, key: &str, now: Instant) -> Option<&Entry> {
        self.entries.get(key).filter(|(_, until)| live(*until, now)).map(|(entry, _)| entry)
    }

    /// Writes `value` as `version`, dropping whatever expired.
    fn write(&mut self, key: &str, version: u64, value: &[u8], ttl: Duration, now: Instant) {
        self.entries.retain(|_, (_, until)| live(*until, now));
        self.leases.retain(|_, (_, until)| live(*until, now));
        self.entries.insert(key.to_owned(), (Entry { version, value: value.to_vec() }, now.checked_add(ttl)));
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self.state().live_entry(key, Instant::now()).cloned())
    }

    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        let version = state.live_entry(key, now).map_or(0, |e| e.version) + 1;
        state.write(key, version, value, ttl, now);
        Ok(version)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        if state.live_entry(key, now).map_or(0, |e| e.version) != expected {
            return Ok(false);
        }
        state.write(key, expected + 1, value, ttl, now);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.state().entries.remove(key);
        Ok(())
    }

    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        match state.leases.get(key) {
            Some((holder, until)) if holder != owner && live(*until, now) => Ok(false),
            _ => {
                state.leases.insert(key.to_owned(), (owner.to_owned(), now.checked_add(ttl)));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.leases.get(key).is_some_and(|(holder, _)| holder == owner) {
            state.leases.remove(key);
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn is_persistent(&self) -> bool {
        false
    }
}

impl MemoryStore {
    /// How many entries and leases it holds, expired ones included until
    /// the next write drops them (for tests of its bound).
    #[cfg(any(test, feature = "test-util"))]
    pub fn len(&self) -> usize {
        let state = self.state();
        state.entries.len() + state.leases.len()
    }

    /// Whether it holds nothing.
    #[cfg(any(test, feature = "test-util"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_and_writes_drop_them() {
        let store = MemoryStore::new();
        for i in 0..100 {
            store.save(&format!("k{i}"), b"v", Duration::ZERO).await.unwrap();
        }
        assert_eq!(store.load("k0").await.unwrap(), None);
        // Expired: absent to compare-and-swap as well.
        assert!(store.compare_and_swap("k1", 0, b"w", Duration::from_secs(60)).await.unwrap());
        assert_eq!(store.len(), 1, "the write dropped the 99 expired entries");
        assert_eq!(store.load("k1").await.unwrap().unwrap().version, 1);
    }
}
