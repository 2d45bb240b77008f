//! Who runs a refresh: the caller that started it, and a task of its own
//! once someone else waits for it too or that caller goes away first.
//!
//! A refresh must run to the end whoever is still waiting: the answer to a
//! refresh-token grant carries the rotated refresh token, and the old one
//! is dead once the server has sent it. Running every refresh in a task of
//! its own guarantees that, but costs each refresh a hand-off to the task
//! and a wake-up back (two more thread wake-ups per refresh on a
//! multi-threaded runtime, measured with `strace -c` in BENCHMARKS.md).
//!
//! So the refresh is a [`Shared`] future, polled in place by the caller on
//! a runtime that started it: the common case, one caller, pays no
//! hand-off. The flight keeps only a weak handle. The first caller that
//! joins hands a second handle to a task (`InFlight::detach` in
//! `flight.rs`), so a starter that stalls (polled once, then neither
//! polled nor dropped) holds nobody up, and the callers that joined wait
//! for the outcome alone (woken once, not at each step of the request).
//! When the last holder is dropped before the refresh finished (a client
//! disconnect, a `timeout`), [`Drive`] hands it to a task on the runtime,
//! where it runs to the end exactly as if it had always been one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::FutureExt as _;
use futures_util::future::{Shared, WeakShared};

use super::{Inner, lock};

/// The refresh's own future: the request, storing its outcome, publishing
/// it.
pub(super) type RefreshFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A handle on one refresh; the refresh lives as long as one does.
pub(super) type Refresh = Shared<RefreshFuture>;

/// The flight's handle on a refresh, which does not keep it alive.
pub(super) type WeakRefresh = WeakShared<RefreshFuture>;

/// Hands `refresh` to a task on the provider's runtime (the caller's, else
/// the one it was built in); `false` when there is none, and the refresh
/// handle is dropped. Called without the flight lock: on a runtime that is
/// shutting down the task is dropped at once, and the refresh's guard then
/// takes that lock.
pub(super) fn run_in_task(inner: &Inner, refresh: Refresh) -> bool {
    match inner.runtime() {
        Some(runtime) => {
            drop(runtime.spawn(refresh));
            true
        }
        None => false,
    }
}

/// A caller's share in a refresh. Awaiting it polls the refresh until it
/// is done; dropping it unfinished, as the last holder, hands the refresh
/// to a task.
pub(super) struct Drive {
    inner: Arc<Inner>,
    refresh: Option<Refresh>,
    forward: Arc<Forward>,
    waker: Waker,
}

impl Drive {
    /// A share in `refresh` for a caller of `inner`.
    pub(super) fn new(inner: &Arc<Inner>, refresh: Refresh) -> Self {
        let forward = Arc::new(Forward::default());
        let waker = Waker::from(Arc::clone(&forward));
        Self { inner: Arc::clone(inner), refresh: Some(refresh), forward, waker }
    }
}

impl Future for Drive {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(refresh) = this.refresh.as_mut() else { return Poll::Ready(()) };
        this.forward.start(cx.waker());
        let polled = refresh.poll_unpin(&mut Context::from_waker(&this.waker));
        let woken = this.forward.finish();
        match polled {
            Poll::Ready(()) => {
                this.refresh = None;
                Poll::Ready(())
            }
            Poll::Pending => {
                if woken {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

/// The waker a [`Drive`] polls the refresh with: it passes wake-ups on to
/// the caller's task, except those that come while this very caller is
/// polling. [`Shared`] wakes every registered waker when the refresh
/// completes, the poller's own included; a task woken during its own poll
/// is rescheduled at the back of the queue and another worker is woken to
/// help (one futex wake and one I/O driver wake per refresh, for nothing,
/// since the poller already has the outcome). A wake-up during a poll that
/// ends `Pending` is passed on once the poll is over, so none is lost.
#[derive(Default)]
struct Forward {
    state: std::sync::Mutex<ForwardState>,
}

#[derive(Default)]
struct ForwardState {
    target: Option<Waker>,
    polling: bool,
    woken_while_polling: bool,
}

impl Forward {
    fn start(&self, target: &Waker) {
        let mut state = lock(&self.state);
        if !state.target.as_ref().is_some_and(|current| current.will_wake(target)) {
            state.target = Some(target.clone());
        }
        state.polling = true;
        state.woken_while_polling = false;
    }

    /// Ends a poll; whether a wake-up came during it.
    fn finish(&self) -> bool {
        let mut state = lock(&self.state);
        state.polling = false;
        std::mem::take(&mut state.woken_while_polling)
    }
}

impl Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let target = {
            let mut state = lock(&self.state);
            if state.polling {
                state.woken_while_polling = true;
                return;
            }
            state.target.clone()
        };
        if let Some(target) = target {
            target.wake();
        }
    }
}

impl Drop for Drive {
    fn drop(&mut self) {
        let Some(refresh) = self.refresh.take() else { return };
        if refresh.peek().is_some() {
            return;
        }
        // Counted and released under the flight lock, where a joining
        // caller upgrades the flight's weak handle: the count cannot change
        // between reading it and acting on it.
        let orphan = {
            let _flight = lock(&self.inner.flight);
            if refresh.strong_count() == Some(1) {
                Some(refresh)
            } else {
                drop(refresh);
                None
            }
        };
        if let Some(refresh) = orphan
            && !run_in_task(&self.inner, refresh)
        {
            tracing::warn!("a token refresh was abandoned: no runtime left to finish it on");
        }
    }
}

/// The refresh future as a [`Refresh`].
pub(super) fn shared(refresh: RefreshFuture) -> Refresh {
    refresh.shared()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_during_the_poll_is_held_back_and_one_after_it_passes_on() {
        let count = Arc::new(Count::default());
        let target = Waker::from(Arc::clone(&count));
        let forward = Arc::new(Forward::default());
        let waker = Waker::from(Arc::clone(&forward));

        forward.start(&target);
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "not while this caller polls");
        assert!(forward.finish(), "the poll learns it was woken");
        assert!(!forward.finish(), "once");

        waker.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "after the poll, to the caller's task");
    }

    #[test]
    fn a_new_target_replaces_the_old_one() {
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let forward = Arc::new(Forward::default());
        let waker = Waker::from(Arc::clone(&forward));
        forward.start(&Waker::from(Arc::clone(&first)));
        forward.finish();
        forward.start(&Waker::from(Arc::clone(&second)));
        forward.finish();
        waker.wake();
        assert_eq!((first.0.load(Ordering::SeqCst), second.0.load(Ordering::SeqCst)), (0, 1));
    }
}
