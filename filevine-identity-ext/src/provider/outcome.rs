//! Where a refresh publishes its outcome: set once, then every caller
//! waiting for it is woken once.
//!
//! A `tokio::sync::watch` channel did this before; a refresh paid for what
//! it does not need (a value that changes, eight wait lists woken one by
//! one). This is one slot and one wait list. A sender dropped without a
//! value (its refresh was dropped by a runtime shutting down) closes the
//! slot, so a waiter learns that no outcome will come.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use crate::error::Error;
use crate::grant::AccessToken;

/// A refresh's outcome.
pub(super) type Outcome = Result<AccessToken, Error>;

struct Slot {
    value: OnceLock<Outcome>,
    /// Set when the sender is gone, with or without a value.
    closed: AtomicBool,
    notify: Notify,
}

/// The refresh's end: publishes the outcome once.
pub(super) struct Sender {
    slot: Arc<Slot>,
}

/// A waiter's end; clones wait for the same outcome.
#[derive(Clone)]
pub(super) struct Receiver {
    slot: Arc<Slot>,
}

/// A new, empty slot.
pub(super) fn channel() -> (Sender, Receiver) {
    let slot = Arc::new(Slot { value: OnceLock::new(), closed: AtomicBool::new(false), notify: Notify::new() });
    (Sender { slot: Arc::clone(&slot) }, Receiver { slot })
}

impl Sender {
    /// Publishes `outcome` and wakes every waiter.
    pub(super) fn send(self, outcome: Outcome) {
        // The slot is set once, by the only sender; `drop` wakes.
        let _ = self.slot.value.set(outcome);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Release: a waiter that sees `closed` also sees the value.
        self.slot.closed.store(true, Ordering::Release);
        self.slot.notify.notify_waiters();
    }
}

impl Receiver {
    /// The outcome, once published; `None` when the sender went away
    /// without one.
    pub(super) async fn wait(&self) -> Option<Outcome> {
        // The caller that ran the refresh finds it published: no need to
        // join the wait list.
        if let Some(outcome) = self.slot.value.get() {
            return Some(outcome.clone());
        }
        loop {
            // Registered before the slot is read, so a publication between
            // the read and the wait is not missed.
            let mut notified = pin!(self.slot.notify.notified());
            notified.as_mut().enable();
            if let Some(outcome) = self.slot.value.get() {
                return Some(outcome.clone());
            }
            if self.slot.closed.load(Ordering::Acquire) {
                return self.slot.value.get().cloned();
            }
            notified.await;
        }
    }

    /// Whether `self` and `other` wait for the same refresh.
    pub(super) fn same_channel(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.slot, &other.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AccessToken {
        let clock = crate::time::Clock::System;
        let secret = filevine_identity::SecretString::from("t");
        AccessToken::new(
            secret,
            "Bearer".to_owned(),
            None,
            &clock,
            clock.now(),
            std::time::Duration::from_secs(60),
            None,
        )
        .unwrap()
    }

    /// A task waiting on a clone of `receiver`.
    fn waiting(receiver: &Receiver) -> tokio::task::JoinHandle<Option<Outcome>> {
        let receiver = receiver.clone();
        tokio::spawn(async move { receiver.wait().await })
    }

    #[tokio::test]
    async fn every_waiter_gets_the_outcome_sent_before_or_after_it_waits() {
        let (sender, receiver) = channel();
        let early = waiting(&receiver);
        tokio::task::yield_now().await;
        let sent = token();
        sender.send(Ok(sent.clone()));
        let late = receiver.wait().await;
        assert!(matches!(early.await.unwrap(), Some(Ok(t)) if t.same_token(&sent)));
        assert!(matches!(late, Some(Ok(t)) if t.same_token(&sent)));
    }

    #[tokio::test]
    async fn a_sender_dropped_without_an_outcome_ends_the_wait_with_none() {
        let (sender, receiver) = channel();
        let waiting = waiting(&receiver);
        tokio::task::yield_now().await;
        drop(sender);
        assert!(waiting.await.unwrap().is_none());
        assert!(receiver.wait().await.is_none());
    }

    #[test]
    fn clones_share_a_channel_and_new_channels_do_not() {
        let (_s, receiver) = channel();
        let (_t, other) = channel();
        assert!(receiver.same_channel(&receiver.clone()));
        assert!(!receiver.same_channel(&other));
    }
}
