//! [`SweepClock`]: how a store that has no expiry of its own (files,
//! PostgreSQL) lets its writes remove expired entries now and then, with no
//! background task: at most once per period per store, and only one of the
//! writes that arrive together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a store last swept (seconds since the epoch), shared by its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct SweepClock(Arc<AtomicU64>);

impl SweepClock {
    /// Whether the caller should sweep now: `every` has passed since the
    /// last sweep and no other caller claimed this one.
    pub(crate) fn due(&self, every: Duration) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = self.0.load(Ordering::Relaxed);
        now >= last.saturating_add(every.as_secs())
            && self.0.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_call_sweeps_then_not_again_within_the_period() {
        let clock = SweepClock::default();
        assert!(clock.due(Duration::from_secs(60)));
        assert!(!clock.due(Duration::from_secs(60)));
        assert!(!clock.clone().due(Duration::from_secs(60)), "clones share it");
        assert!(clock.due(Duration::ZERO));
    }
}
