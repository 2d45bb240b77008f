//! The provider's smallest shared pieces: the one way it takes its `std`
//! mutexes, and its ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Locks a std mutex, recovering from poisoning: every critical section
/// here leaves the data consistent, so a panic elsewhere must not wedge
/// token refresh forever.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands out unique provider ids.
pub(super) fn next_provider_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
