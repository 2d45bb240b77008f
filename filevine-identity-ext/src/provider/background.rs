//! Background refresh (opt-in): a timer that starts the refresh at the
//! current token's soft deadline, so callers never wait on the network.
//!
//! The timer is an accelerator only. Whether a token may be handed out is
//! decided by the clock on every call ([`crate::time`]); a timer that fires
//! late (a blocked runtime, a suspended machine) makes a refresh later, never
//! a token stale.

use std::sync::Arc;

use std::sync::atomic::Ordering;

use super::cache::CachedToken;
use super::engine::Inner;
use super::sync::lock;

/// Arms the timer for `cached`'s refresh time, replacing the previous one.
/// Without a runtime there is no timer; calls still refresh on demand.
pub(super) fn arm(inner: &Arc<Inner>, cached: &CachedToken) {
    let Some(runtime) = inner.runtime() else { return };
    let wait = inner.clock.now().until(cached.refresh_at);
    let weak = Arc::downgrade(inner);
    let timer = runtime.spawn(async move {
        tokio::time::sleep(wait).await;
        if let Some(inner) = weak.upgrade() {
            Inner::start_soft_refresh(&inner);
        }
    });
    if let Some(previous) = lock(&inner.timer).replace(timer) {
        previous.abort();
    }
}

impl Inner {
    /// Replaces the current token, bumps the generation, and (refreshing in
    /// the background) arms the timer for the new token's refresh time.
    pub(super) fn set_current(self: &Arc<Self>, cached: Option<Arc<CachedToken>>) {
        let replaced = self.current.replace(cached.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(replaced);
        if self.background
            && let Some(cached) = cached
        {
            arm(self, &cached);
        }
    }
}
