//! One cached document of the provider's (the discovery metadata, the
//! signing keys): read without a lock while it is fresh, fetched by one
//! caller at a time, and served stale through an outage.
//!
//! The rules, for a value fetched at `t` with a `ttl` and a `max_stale`:
//!
//! - **fresh** (`now < t + ttl`): every caller gets it; no lock is taken.
//! - **stale but usable** (`now < t + ttl + max_stale`): one caller
//!   fetches; everyone else gets the stale value at once instead of waiting
//!   for that fetch. A failed fetch keeps the stale value and is not tried
//!   again for `retry_interval`, so N callers during an outage cost at most
//!   one request (and one timeout) per interval, not N.
//! - **nothing usable**: callers queue for one fetch; those that queued
//!   while a fetch ran get its result (the value, or a copy of its error)
//!   instead of fetching again, so N callers cost one timeout, not N.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::time::{Clock, Stamp};

/// How long after a failed fetch the stale value is served before the next
/// fetch is tried.
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// A value and the times that govern it.
#[derive(Debug)]
struct Entry<T> {
    value: Arc<T>,
    /// Fresh until here.
    stale_at: Stamp,
    /// Served (stale) until here when a fetch fails.
    unusable_at: Stamp,
}

/// The last fetch, kept under the fetch lock.
#[derive(Debug)]
struct LastFetch<E> {
    /// The error of the last fetch, if it failed.
    failure: Option<E>,
    /// No fetch before this (after a failure, while a stale value is usable).
    retry_at: Option<Stamp>,
}

/// A document fetched on demand and cached; see the module docs.
#[derive(Debug)]
pub(crate) struct Cached<T, E> {
    ttl: Duration,
    max_stale: Duration,
    retry_interval: Duration,
    clock: Clock,
    current: ArcSwapOption<Entry<T>>,
    /// Held by the one caller that fetches.
    fetch: tokio::sync::Mutex<LastFetch<E>>,
    /// Completed fetches, so a caller that waited for the lock knows one
    /// ran meanwhile.
    fetches: AtomicU64,
}

impl<T, E: Clone> Cached<T, E> {
    pub(crate) fn new(ttl: Duration, max_stale: Duration, retry_interval: Duration, clock: Clock) -> Self {
        Self {
            ttl,
            max_stale,
            retry_interval,
            clock,
            current: ArcSwapOption::empty(),
            fetch: tokio::sync::Mutex::new(LastFetch { failure: None, retry_at: None }),
            fetches: AtomicU64::new(0),
        }
    }

    /// The cached value while it is fresh, else the result of `fetch` (or
    /// a stale value, by the rules in the module docs).
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let now = self.clock.now();
        let current = self.current.load_full();
        if let Some(entry) = &current
            && now.before(entry.stale_at)
        {
            return Ok(entry.value.clone());
        }
        let usable = current.filter(|entry| now.before(entry.unusable_at));
        let seen = self.fetches.load(Ordering::Acquire);
        let mut last = match &usable {
            // Someone is fetching: a reader does not wait for it.
            Some(stale) => match self.fetch.try_lock() {
                Ok(last) => last,
                Err(_) => return Ok(stale.value.clone()),
            },
            None => self.fetch.lock().await,
        };
        if let Some(entry) = self.current.load_full()
            && self.clock.now().before(entry.stale_at)
        {
            return Ok(entry.value.clone());
        }
        if self.fetches.load(Ordering::Acquire) != seen
            && let Some(error) = &last.failure
        {
            // A fetch failed while this caller waited: its answer is this
            // caller's too.
            return match usable {
                Some(stale) => Ok(stale.value.clone()),
                None => Err(error.clone()),
            };
        }
        if let (Some(stale), Some(retry_at)) = (&usable, last.retry_at)
            && self.clock.now().before(retry_at)
        {
            return Ok(stale.value.clone());
        }
        self.fetch_locked(&mut last, usable, fetch).await
    }

    /// Fetches now, unless another fetch completed since `seen` (then its
    /// value is as new as this one would be). For a value the caller knows
    /// to be outdated (a signing key it does not have).
    pub(crate) async fn refetch<F, Fut>(&self, seen: u64, fetch: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut last = self.fetch.lock().await;
        let current = self.current.load_full();
        if self.fetches.load(Ordering::Acquire) != seen {
            match (&current, &last.failure) {
                (_, Some(error)) => return Err(error.clone()),
                (Some(entry), None) => return Ok(entry.value.clone()),
                (None, None) => {}
            }
        }
        let now = self.clock.now();
        let usable = current.filter(|entry| now.before(entry.unusable_at));
        self.fetch_locked(&mut last, usable, fetch).await
    }

    /// How many fetches have completed; pass it to [`Cached::refetch`].
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Acquire)
    }

    async fn fetch_locked<F, Fut>(
        &self,
        last: &mut LastFetch<E>,
        usable: Option<Arc<Entry<T>>>,
        fetch: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let result = fetch().await;
        let now = self.clock.now();
        let outcome = match result {
            Ok(value) => {
                let stale_at = now.plus(self.ttl);
                let entry =
                    Arc::new(Entry { value: Arc::new(value), stale_at, unusable_at: stale_at.plus(self.max_stale) });
                let value = entry.value.clone();
                self.current.store(Some(entry));
                *last = LastFetch { failure: None, retry_at: None };
                Ok(value)
            }
            Err(error) => {
                *last = LastFetch { failure: Some(error.clone()), retry_at: Some(now.plus(self.retry_interval)) };
                match usable {
                    Some(stale) => {
                        tracing::warn!(
                            retry_in_secs = self.retry_interval.as_secs(),
                            "could not refresh the provider's metadata; serving the cached copy"
                        );
                        Ok(stale.value.clone())
                    }
                    None => Err(error),
                }
            }
        };
        self.fetches.fetch_add(1, Ordering::AcqRel);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::time::ManualTimeSource;

    const TTL: Duration = Duration::from_secs(60);
    const MAX_STALE: Duration = Duration::from_secs(600);

    fn cache() -> (Cached<u32, String>, Arc<ManualTimeSource>) {
        let time = Arc::new(ManualTimeSource::new());
        (Cached::new(TTL, MAX_STALE, RETRY_INTERVAL, Clock::Source(time.clone())), time)
    }

    /// A fetch that counts its calls and answers `answer`.
    fn counted(calls: &AtomicUsize, answer: Result<u32, &str>) -> impl Future<Output = Result<u32, String>> {
        calls.fetch_add(1, Ordering::SeqCst);
        let answer = answer.map_err(str::to_owned);
        async move { answer }
    }

    #[tokio::test]
    async fn fresh_stale_and_outage() {
        let (cache, time) = cache();
        let calls = AtomicUsize::new(0);
        assert_eq!(*cache.get(|| counted(&calls, Ok(1))).await.unwrap(), 1);
        assert_eq!(*cache.get(|| counted(&calls, Ok(2))).await.unwrap(), 1, "fresh: cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Stale, and the provider is down: the stale value, one attempt.
        time.advance(TTL);
        assert_eq!(*cache.get(|| counted(&calls, Err("down"))).await.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Within the retry interval nobody tries again.
        for _ in 0..100 {
            assert_eq!(*cache.get(|| counted(&calls, Err("down"))).await.unwrap(), 1);
        }
        time.advance(RETRY_INTERVAL - Duration::from_millis(1));
        assert_eq!(*cache.get(|| counted(&calls, Err("down"))).await.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // After it, one more attempt; it succeeds.
        time.advance(Duration::from_millis(1));
        assert_eq!(*cache.get(|| counted(&calls, Ok(3))).await.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn too_old_to_serve_is_an_error() {
        let (cache, time) = cache();
        let calls = AtomicUsize::new(0);
        cache.get(|| counted(&calls, Ok(1))).await.unwrap();
        time.advance(TTL + MAX_STALE - Duration::from_millis(1));
        assert_eq!(*cache.get(|| counted(&calls, Err("down"))).await.unwrap(), 1, "last usable moment");
        time.advance(Duration::from_millis(1));
        assert_eq!(cache.get(|| counted(&calls, Err("down"))).await.unwrap_err(), "down");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "past max_stale every call tries");
    }

    #[tokio::test]
    async fn readers_do_not_wait_for_a_fetch_of_a_stale_value() {
        let (cache, time) = cache();
        let calls = AtomicUsize::new(0);
        cache.get(|| counted(&calls, Ok(1))).await.unwrap();
        time.advance(TTL);
        // One caller fetches and hangs; others are served the stale value.
        let gate = tokio::sync::Notify::new();
        let cache = &cache;
        let fetcher = cache.get(|| async {
            gate.notified().await;
            Ok::<_, String>(2)
        });
        tokio::pin!(fetcher);
        assert!(futures_poll(fetcher.as_mut()).is_none(), "the fetch is in flight");
        assert_eq!(*cache.get(|| counted(&calls, Ok(9))).await.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the reader did not fetch");
        gate.notify_one();
        assert_eq!(*fetcher.await.unwrap(), 2);
        assert_eq!(*cache.get(|| counted(&calls, Ok(9))).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn waiters_share_one_failed_fetch() {
        let (cache, _time) = cache();
        let cache = &cache;
        let calls = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        let first = cache.get(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            Err::<u32, _>("timed out".to_owned())
        });
        tokio::pin!(first);
        assert!(futures_poll(first.as_mut()).is_none());
        // Nine more callers queue behind the fetch.
        let mut waiters: Vec<_> = (0..9).map(|_| Box::pin(cache.get(|| counted(&calls, Ok(5))))).collect();
        for waiter in &mut waiters {
            assert!(futures_poll(waiter.as_mut()).is_none());
        }
        gate.notify_one();
        assert_eq!(first.await.unwrap_err(), "timed out");
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap_err(), "timed out");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for ten callers");
        // A caller that arrives afterwards tries again.
        assert_eq!(*cache.get(|| counted(&calls, Ok(5))).await.unwrap(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refetch_runs_once_for_callers_that_saw_the_same_value() {
        let (cache, _time) = cache();
        let calls = AtomicUsize::new(0);
        cache.get(|| counted(&calls, Ok(1))).await.unwrap();
        let seen = cache.fetches();
        assert_eq!(*cache.refetch(seen, || counted(&calls, Ok(2))).await.unwrap(), 2);
        assert_eq!(*cache.refetch(seen, || counted(&calls, Ok(3))).await.unwrap(), 2, "already refetched");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Polls a future once; `Some` if it finished.
    fn futures_poll<F: Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        match future.poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }
}
