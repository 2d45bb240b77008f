//! [`MemoryStore`]: token sets in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Entry, StoreError, TokenStore};

/// Token sets in memory, shared by every provider given this store (clone
/// an `Arc` of it): several providers for the same credentials make one
/// exchange, and a per-request provider for a user's session finds the
/// tokens the last request saved. Gone when the process exits.
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
    entries: HashMap<String, Entry>,
    /// Owner and expiry (`None`: a lease time too large for the clock).
    leases: HashMap<String, (String, Option<Instant>)>,
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
        Ok(self.state().entries.get(key).cloned())
    }

    async fn save(&self, key: &str, value: &[u8]) -> Result<u64, StoreError> {
        let mut state = self.state();
        let version = state.entries.get(key).map_or(0, |e| e.version) + 1;
        state.entries.insert(key.to_owned(), Entry { version, value: value.to_vec() });
        Ok(version)
    }

    async fn compare_and_swap(&self, key: &str, expected: u64, value: &[u8]) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.entries.get(key).map_or(0, |e| e.version) != expected {
            return Ok(false);
        }
        state.entries.insert(key.to_owned(), Entry { version: expected + 1, value: value.to_vec() });
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
            Some((holder, until)) if holder != owner && until.is_none_or(|until| now < until) => Ok(false),
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
