//! The single flight: at most one refresh per provider at a time, its
//! outcome stored before it is published to every waiter.
//!
//! The caller that starts a refresh runs it in place, and a task of its own
//! runs it once another caller joins or that caller goes away
//! ([`super::drive`]): the answer to a refresh-token grant carries the
//! rotated refresh token, so a refresh is never cancelled with a caller.

use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::Instrument as _;

use super::cache::CachedToken;
use super::drive::{Drive, Refresh, hand_off, run_in_task};
use super::engine::{Flight, InFlight, Inner};
use super::hooks::Forgotten;
use super::jitter::Jitter;
use super::link::StoreLink;
use super::outcome;
use super::sync::lock;
use crate::error::{ConfigError, Error};
use crate::grant::AccessToken;
use crate::time::Stamp;

/// First backoff step after a failed refresh.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest backoff after repeated failures.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// A token a refresh produced, with what its deadlines count from: `life`
/// left at `at` (the whole lifetime from before the request left, or what
/// a stored token has left when it was read).
#[derive(Debug, Clone)]
pub(super) struct Fetched {
    pub(super) token: AccessToken,
    pub(super) at: Stamp,
    pub(super) life: Duration,
    /// The refresh's ID token could not be checked (see `id_check`): its
    /// refresh token is kept and stored, its access token neither stored
    /// nor handed out, and the refresh fails with this error.
    pub(super) held: Option<Error>,
}

impl Fetched {
    /// What callers get: the token, unless it is held back.
    fn into_outcome(self) -> Result<Self, Error> {
        match self.held {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }
}

/// Full-jitter exponential backoff after `failures` consecutive failed
/// refreshes.
fn backoff(failures: u32, jitter: Jitter) -> Duration {
    jitter.backoff(BACKOFF_BASE, BACKOFF_CAP, failures)
}

/// Whether this thread is in a Tokio runtime, where a caller can run a
/// refresh while it waits.
fn on_a_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// The future `make` makes, in a box allocated before it is made, so it is
/// written into the box. `Box::pin(future)` makes it on the stack and
/// copies it into the box, twice as compiled here: for the refresh (an
/// unstarted future of 4.2 KB when measured, about 3 KB since the
/// generated client's `exec` hook shrank) that was 8 KB of copying and 120
/// cache misses per refresh (cachegrind, BENCHMARKS.md).
fn boxed<F: std::future::Future<Output = ()> + Send + 'static>(
    make: impl FnOnce() -> F,
) -> super::drive::RefreshFuture {
    let boxed: Box<F> = Box::write(Box::new_uninit(), make());
    Box::into_pin(boxed)
}

/// Clears its flight when the task ends without finishing it (its runtime
/// shut down), so the next caller can start another.
struct FlightGuard(Option<(Weak<Inner>, outcome::Receiver)>);

impl FlightGuard {
    /// The refresh cleared its flight itself ([`Inner::finish_flight`]):
    /// nothing left to do, and no lock to take.
    fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let Some((inner, receiver)) = self.0.take() else { return };
        if let Some(inner) = inner.upgrade() {
            let mut flight = lock(&inner.flight);
            if flight.in_flight.as_ref().is_some_and(|r| r.outcome.same_channel(&receiver)) {
                flight.in_flight = None;
                inner.refreshing.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Flights in a row whose token expired before it was handed out, after
/// which `token()` gives up with [`Error::ExpiredInFlight`].
const MAX_EXPIRED_FLIGHTS: u32 = 3;

impl Inner {
    /// The slow path: waits for the refresh in flight, or starts one. The
    /// caller that starts a refresh on a runtime runs it while it waits; the
    /// first caller to join hands it to a task ([`InFlight::detach`]).
    pub(super) async fn token_slow(self: &Arc<Self>) -> Result<AccessToken, Error> {
        // A flight whose refresh vanished (its runtime shut down) is started
        // again once; vanishing twice means there is no runtime to run on.
        let mut vanished = 0;
        // A flight's token can be past its deadline by the time it is
        // handed out (the process was stopped, the store or the network
        // held the flight longer than the token's life): another flight
        // then, a few times at most.
        let mut expired = 0;
        loop {
            let (receiver, drive, detach) = {
                let mut flight = lock(&self.flight);
                // Re-check under the lock: a refresh may have finished since
                // the fast path looked.
                if let Some(token) = self.usable() {
                    return Ok(token);
                }
                match &mut flight.in_flight {
                    Some(running) => {
                        self.metrics.waiter();
                        (running.outcome.clone(), None, running.detach())
                    }
                    None => {
                        // Another executor cannot run Tokio I/O: a task on
                        // the provider's runtime does.
                        let here = on_a_runtime();
                        let (receiver, refresh) = self.start_flight(&mut flight, !here)?;
                        if here { (receiver, Some(refresh), None) } else { (receiver, None, Some(refresh)) }
                    }
                }
            };
            // Outside the lock (see `run_in_task`). No runtime: the refresh
            // is dropped, its outcome never comes, and the loop says so.
            if let Some(refresh) = detach {
                hand_off(self.runtime.as_ref(), &refresh);
            }
            if let Some(refresh) = drive {
                Drive::new(self.runtime.clone(), refresh).await;
            }
            match receiver.wait().await {
                Some(Ok(token)) if !token.is_expired() => return Ok(token),
                Some(Ok(_)) => {
                    expired += 1;
                    tracing::warn!("the refreshed token expired before it could be handed out; refreshing again");
                    if expired == MAX_EXPIRED_FLIGHTS {
                        return Err(Error::ExpiredInFlight { flights: expired });
                    }
                }
                Some(Err(error)) => return self.usable().ok_or(error),
                None => {
                    vanished += 1;
                    if vanished == 2 {
                        return Err(Error::NoRuntime);
                    }
                }
            }
        }
    }

    /// The current token if it is before its hard margin.
    fn usable(&self) -> Option<AccessToken> {
        self.current.with(|cached| {
            let cached = cached?;
            self.clock.now().before(cached.usable_until).then(|| cached.token.clone())
        })
    }

    /// Starts a refresh without waiting for it, unless one runs already or
    /// the backoff says not yet.
    pub(super) fn start_soft_refresh(this: &Arc<Self>) {
        let started = {
            let mut flight = lock(&this.flight);
            if flight.in_flight.is_some() || flight.not_before.is_some_and(|t| this.clock.now().before(t)) {
                return;
            }
            // Nobody waits for it: a task of its own runs it.
            this.start_flight(&mut flight, true)
        };
        match started {
            Ok((_, refresh)) => {
                if !run_in_task(this.runtime.as_ref(), &refresh) {
                    tracing::warn!("could not start a background token refresh: no runtime");
                }
            }
            Err(error) => tracing::warn!(%error, "could not start a background token refresh"),
        }
    }

    /// Makes the refresh and records it as in flight; the caller holds the
    /// flight lock, and runs the refresh or hands it to a task (`detached`:
    /// a task, so no joining caller needs to start another). A refresh
    /// needs a runtime (the caller's, or the one the provider was built in).
    fn start_flight(
        self: &Arc<Self>,
        flight: &mut Flight,
        detached: bool,
    ) -> Result<(outcome::Receiver, Refresh), Error> {
        // Not detached, its starter runs it: that caller is on a runtime.
        if detached && self.runtime().is_none() {
            return Err(Error::NoRuntime);
        }
        let (sender, receiver) = outcome::channel();
        self.refreshing.store(true, std::sync::atomic::Ordering::Relaxed);
        let delay = flight.not_before.map(|t| self.clock.now().until(t)).filter(|d| !d.is_zero());
        // Read under the flight lock, as `forget` bumps it.
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        let guard = FlightGuard(Some((Arc::downgrade(self), receiver.clone())));
        let inner = Arc::clone(self);
        // Created here, so its parent is the span of the caller that
        // started the refresh, even if the refresh ends in a task of its own.
        let span = tracing::info_span!(
            "token_refresh",
            grant_type = self.credentials.grant_type(),
            authority = self.region.identity_url(),
            tenant = self.tenant.as_deref(),
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        // A span no subscriber wants is not entered and left at every poll.
        // Each branch makes the refresh in its box (see `boxed`).
        let refresh = if span.is_disabled() {
            super::drive::refresh(boxed(|| inner.refresh(guard, delay, epoch, sender, span)))
        } else {
            let recorded = span.clone();
            super::drive::refresh(boxed(|| inner.refresh(guard, delay, epoch, sender, recorded).instrument(span)))
        };
        flight.in_flight = Some(InFlight { outcome: receiver.clone(), refresh: Arc::downgrade(&refresh), detached });
        Ok((receiver, refresh))
    }

    /// A refresh from start to end: waits out the backoff, fetches, and
    /// stores the outcome before it is published to `sender`. The span's
    /// fields are recorded when it is enabled.
    async fn refresh(
        self: Arc<Self>,
        guard: FlightGuard,
        delay: Option<Duration>,
        epoch: u64,
        sender: outcome::Sender,
        span: tracing::Span,
    ) {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let started = std::time::Instant::now();
        // Saved first (a held token's refresh token too), then published.
        let outcome = self.fetch().await.and_then(Fetched::into_outcome);
        let took = started.elapsed();
        let label = crate::metrics::outcome(outcome.as_ref().map(drop));
        if !span.is_disabled() {
            span.record("outcome", label);
            span.record("duration_ms", u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        }
        self.metrics.refresh(label, took);
        let (published, discarded) = self.finish_flight(&outcome, epoch);
        guard.finished();
        if let Some(discarded) = discarded {
            self.revoke_discarded(discarded).await;
        }
        // Nobody may be waiting (a background refresh); that is fine.
        sender.send(published);
    }

    /// One refresh: through the token store when there is one, else a
    /// request (with retries) whose rotated refresh token is kept here.
    async fn fetch(self: &Arc<Self>) -> Result<Fetched, Error> {
        match (&self.store, &self.sourced_key) {
            // Boxed, as the credential-source path in `exchange_once_inner`.
            (Some(link), None) => Box::pin(self.fetch_through_store(link)).await,
            (Some(link), Some(rule)) => Box::pin(self.fetch_sourced_through_store(link, rule)).await,
            (None, _) => self.exchange_with_retries(None).await.map(|(fetched, _)| fetched),
        }
    }

    /// [`fetch_through_store`](Self::fetch_through_store) under the key of
    /// the identity the credential source gives now; once more under the
    /// new one when the source's credentials were refused and it now gives
    /// another identity (a secret rewritten during the refresh).
    async fn fetch_sourced_through_store(
        self: &Arc<Self>,
        link: &StoreLink,
        rule: &super::derived_key::SourcedKey,
    ) -> Result<Fetched, Error> {
        self.key_by_source(link, rule).await?;
        // A source rewritten between the choice of the key and the request
        // (or refused and now naming another identity) moves the key; a
        // few tries, not a loop a flapping source could keep spinning.
        let mut moves = 0;
        loop {
            match self.fetch_through_store(link).await {
                Err(error @ (Error::InvalidCredentials { .. } | Error::SourceChanged)) if moves < 3 => {
                    if !self.key_by_source(link, rule).await? {
                        return Err(error);
                    }
                    moves += 1;
                }
                other => return other,
            }
        }
    }

    /// Moves `link` to the key of the identity the source gives now;
    /// whether it moved.
    pub(super) async fn key_by_source(
        &self,
        link: &StoreLink,
        rule: &super::derived_key::SourcedKey,
    ) -> Result<bool, Error> {
        let Some(source) = &self.source else { return Ok(false) };
        let candidates = source.credentials().await?;
        let first = candidates.first().ok_or(ConfigError::NoSourceCredentials)?;
        let key =
            rule.for_credentials(&self.region, first, self.scope.as_deref()).ok_or(ConfigError::StoreKeyRequired)?;
        Ok(link.rekey(key))
    }

    /// Stores the outcome before it is published: the token becomes current,
    /// or the failure count and backoff advance.
    /// A refresh that started before a `forget` (`epoch` is older) installs
    /// nothing: its answer is discarded and revoked.
    fn finish_flight(
        self: &Arc<Self>,
        outcome: &Result<Fetched, Error>,
        epoch: u64,
    ) -> (Result<AccessToken, Error>, Option<Forgotten>) {
        let mut flight = lock(&self.flight);
        flight.in_flight = None;
        self.refreshing.store(false, std::sync::atomic::Ordering::Relaxed);
        if self.epoch.load(std::sync::atomic::Ordering::Acquire) != epoch {
            let discarded = outcome.as_ref().ok().map(|fetched| self.discard(Some(fetched.token.clone())));
            return (Err(Error::SignedOut), discarded);
        }
        (self.install(&mut flight, outcome), None)
    }

    /// Installs a refresh's outcome (the caller holds the flight lock).
    fn install(self: &Arc<Self>, flight: &mut Flight, outcome: &Result<Fetched, Error>) -> Result<AccessToken, Error> {
        match outcome {
            Ok(Fetched { token, at, life, .. }) => {
                let cached = self.timing.deadlines(token.clone(), *at, *life, self.jitter);
                self.set_current(Some(Arc::new(cached)));
                flight.failures = 0;
                flight.not_before = None;
                Ok(token.clone())
            }
            Err(error) => {
                flight.failures = flight.failures.saturating_add(1);
                let wait = super::retry::wait_before_retry(error, || backoff(flight.failures, self.jitter));
                let now = self.clock.now();
                let retry_at = now.plus(wait);
                flight.not_before = Some(retry_at);
                // Keep serving the cached token until its hard margin, but
                // start the next soft refresh only once the backoff passed.
                match self.current.get() {
                    Some(cached) if now.before(cached.usable_until) && cached.refresh_at.before(retry_at) => {
                        let refresh_at =
                            if retry_at.before(cached.usable_until) { retry_at } else { cached.usable_until };
                        let postponed = CachedToken::new(cached.token.clone(), cached.usable_until, refresh_at);
                        self.set_current(Some(Arc::new(postponed)));
                    }
                    Some(_) => {}
                    None if self.background => self.retry_in_background(wait),
                    None => {}
                }
                Err(error.clone())
            }
        }
    }

    /// With background refresh and no token at all, try again after `wait`.
    fn retry_in_background(self: &Arc<Self>, wait: Duration) {
        let Some(runtime) = self.runtime() else { return };
        let inner: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(inner) = inner.upgrade() {
                Inner::start_soft_refresh(&inner);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_failures_and_is_capped() {
        let half = Jitter::Fixed(0.5);
        assert_eq!(backoff(0, half), Duration::from_millis(100));
        assert_eq!(backoff(1, half), Duration::from_millis(200));
        assert_eq!(backoff(3, half), Duration::from_millis(800));
        assert_eq!(backoff(40, half), BACKOFF_CAP / 2);
        assert_eq!(backoff(40, Jitter::Fixed(0.0)), Duration::ZERO);
    }
}
