//! [`Hooked`]: a token store that passes every operation to a real store,
//! except the ones a test's [`Hook`] takes over (a compare-and-swap that
//! lands late, a lease that stays busy, a slow save, a record of what was
//! written). One pass-through for every such test instead of one each.

use std::sync::Arc;
use std::time::Duration;

use filevine_identity_ext::store::{Entry, StoreError, TokenStore};

/// What a test changes of a store: each method defaults to the real one.
#[async_trait::async_trait]
pub trait Hook: Send + Sync + 'static {
    async fn save(&self, inner: &dyn TokenStore, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
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
        inner.compare_and_swap(key, expected, value, ttl).await
    }

    async fn try_lease(
        &self,
        inner: &dyn TokenStore,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        inner.try_lease(key, owner, ttl).await
    }

    /// The store's name in logs and metrics, if the test gives it another.
    fn kind(&self) -> Option<&'static str> {
        None
    }
}

/// `inner` with `hook`'s changes.
pub struct Hooked<H> {
    pub inner: Arc<dyn TokenStore>,
    pub hook: H,
}

impl<H> Hooked<H> {
    pub fn new(inner: impl TokenStore + 'static, hook: H) -> Self {
        Self { inner: Arc::new(inner), hook }
    }
}

impl<H> std::fmt::Debug for Hooked<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<H: Hook> TokenStore for Hooked<H> {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        self.hook.save(&*self.inner, key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.hook.compare_and_swap(&*self.inner, key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn try_lease(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.hook.try_lease(&*self.inner, key, owner, ttl).await
    }
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.inner.release_lease(key, owner).await
    }
    fn kind(&self) -> &'static str {
        self.hook.kind().unwrap_or_else(|| self.inner.kind())
    }
    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
    fn requires_encryption(&self) -> bool {
        self.inner.requires_encryption()
    }
}
