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
//! So the refresh lives in a [`RefreshCell`] and is polled in place by the
//! caller on a runtime that started it: the common case, one caller, pays
//! no hand-off. The future is in exactly one place at a time, the cell or
//! a task that took it out, so it is never polled twice at once and never
//! dropped while someone could still need its answer. The flight keeps only
//! a weak handle. The first caller that joins moves the future to a task
//! (`InFlight::detach` in `flight.rs`; if the starter is polling it right
//! then, the starter moves it when that poll ends), so a starter that
//! stalls (polled once, then neither polled nor dropped) holds nobody up,
//! and the callers that joined wait for the outcome alone (woken once, not
//! at each step of the request). When the starter is dropped before the
//! refresh finished (a client disconnect, a `timeout`), [`Drive`] moves it
//! to a task on the runtime, where it runs to the end exactly as if it had
//! always been one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::task::{Context, Poll, Waker};

use tokio::runtime::Handle;

use super::sync::lock;

/// The refresh's own future: the request, storing its outcome, publishing
/// it.
pub(super) type RefreshFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a refresh waits to be run: by the caller that started it (polled
/// under the lock, in place), until a task takes it out.
pub(super) struct RefreshCell {
    slot: Mutex<Slot>,
    /// A caller joined: the future belongs in a task. Set before trying
    /// the lock, read by the poller after it released it (see `hand_off`).
    to_task: AtomicBool,
}

struct Slot {
    future: Option<RefreshFuture>,
    /// The starter's task, as of its last poll: a caller that moves the
    /// future to a task wakes it, since the future will not any more.
    starter: Option<Waker>,
}

/// A handle on one refresh.
pub(super) type Refresh = Arc<RefreshCell>;

/// The flight's handle on a refresh, which does not keep it alive.
pub(super) type WeakRefresh = Weak<RefreshCell>;

/// `future` as a refresh in its cell.
pub(super) fn refresh(future: RefreshFuture) -> Refresh {
    let slot = Slot { future: Some(future), starter: None };
    Arc::new(RefreshCell { slot: Mutex::new(slot), to_task: AtomicBool::new(false) })
}

impl RefreshCell {
    /// Takes the future out, unless a task has it or it is done.
    fn take(&self) -> Option<RefreshFuture> {
        lock(&self.slot).future.take()
    }
}

/// Moves the refresh to a task on the provider's runtime (the caller's,
/// else the one it was built in), unless a task has it already or it is
/// done; `false` when there is no runtime, and the refresh is dropped.
/// Called without the flight lock: on a runtime that is shutting down the
/// task is dropped at once, and the refresh's guard then takes that lock.
pub(super) fn run_in_task(built_in: Option<&Handle>, refresh: &RefreshCell) -> bool {
    match refresh.take() {
        Some(future) => spawn(built_in, future),
        None => true,
    }
}

/// For a caller that joins: the refresh goes to a task. If its starter is
/// polling it right now, the starter moves it when that poll ends.
pub(super) fn hand_off(built_in: Option<&Handle>, refresh: &RefreshCell) {
    refresh.to_task.store(true, Ordering::Relaxed);
    // Either this `try_lock` sees the lock free, or the poller holding it
    // reads `to_task` after releasing it: the two fences order the flag's
    // store before this attempt and the poller's release before its read.
    fence(Ordering::SeqCst);
    let mut slot = match refresh.slot.try_lock() {
        Ok(slot) => slot,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    let taken = slot.future.take().map(|future| (future, slot.starter.take()));
    drop(slot);
    if let Some((future, starter)) = taken {
        spawn(built_in, future);
        // The starter waits in `Drive` for a future it no longer has: it
        // goes on to wait for the outcome.
        if let Some(starter) = starter {
            starter.wake();
        }
    }
}

/// Where a refresh task runs: the caller's runtime, else `built_in` (the
/// one the provider was built in).
fn spawn(built_in: Option<&Handle>, future: RefreshFuture) -> bool {
    match Handle::try_current().ok().or_else(|| built_in.cloned()) {
        Some(runtime) => {
            drop(runtime.spawn(future));
            true
        }
        None => false,
    }
}

/// The starter's share in a refresh. Awaiting it polls the refresh in
/// place until it is done or a task took it; dropping it unfinished moves
/// the refresh to a task.
pub(super) struct Drive {
    /// The runtime the provider was built in, for a refresh moved to a task
    /// off any runtime.
    built_in: Option<Handle>,
    refresh: Option<Refresh>,
}

impl Drive {
    /// The share in `refresh` of the caller that started it, for a
    /// provider built in the runtime `built_in` (if any).
    pub(super) fn new(built_in: Option<Handle>, refresh: Refresh) -> Self {
        Self { built_in, refresh: Some(refresh) }
    }
}

impl Future for Drive {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(refresh) = this.refresh.as_ref() else { return Poll::Ready(()) };
        let polled = {
            let mut slot = lock(&refresh.slot);
            match slot.future.as_mut() {
                // A task has it: the outcome comes from there.
                None => Poll::Ready(()),
                Some(future) => {
                    let polled = future.as_mut().poll(cx);
                    if polled.is_ready() {
                        slot.future = None;
                    } else if !slot.starter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        slot.starter = Some(cx.waker().clone());
                    }
                    polled
                }
            }
        };
        if polled.is_pending() {
            fence(Ordering::SeqCst);
            if !refresh.to_task.load(Ordering::Relaxed) {
                return Poll::Pending;
            }
            // A caller joined during the poll: it could not take the
            // future, so it goes to a task from here.
            to_task_or_warn(this.built_in.as_ref(), refresh);
        }
        this.refresh = None;
        Poll::Ready(())
    }
}

impl Drop for Drive {
    fn drop(&mut self) {
        let Some(refresh) = self.refresh.take() else { return };
        to_task_or_warn(self.built_in.as_ref(), &refresh);
    }
}

/// [`run_in_task`] for the starter's share, which has nobody to report a
/// missing runtime to but the log.
fn to_task_or_warn(built_in: Option<&Handle>, refresh: &RefreshCell) {
    if !run_in_task(built_in, refresh) {
        tracing::warn!("a token refresh was abandoned: no runtime left to finish it on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A future that counts its polls and is ready at the `ready`th.
    fn counted(polls: &Arc<AtomicUsize>, ready: usize) -> RefreshFuture {
        let polls = Arc::clone(polls);
        Box::pin(std::future::poll_fn(move |cx| {
            if polls.fetch_add(1, Ordering::SeqCst) + 1 >= ready {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }))
    }

    #[test]
    fn a_refresh_is_taken_out_of_its_cell_once() {
        let polls = Arc::new(AtomicUsize::new(0));
        let cell = refresh(counted(&polls, 1));
        assert!(cell.take().is_some());
        assert!(cell.take().is_none(), "a task has it now; nobody else may");
    }

    #[test]
    fn a_hand_off_while_the_cell_is_locked_leaves_the_future_to_the_poller() {
        let polls = Arc::new(AtomicUsize::new(0));
        let cell = refresh(counted(&polls, 1));
        let held = cell.slot.lock().unwrap();
        // What `hand_off` does while the starter polls.
        cell.to_task.store(true, Ordering::Relaxed);
        assert!(matches!(cell.slot.try_lock(), Err(TryLockError::WouldBlock)));
        drop(held);
        assert!(cell.to_task.load(Ordering::Relaxed), "the poller sees the request");
        assert!(cell.take().is_some(), "and moves the future itself");
    }
}
