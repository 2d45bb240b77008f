//! The clock token deadlines are checked against, as an input.
//!
//! Every call to [`TokenProvider::token`](crate::provider::TokenProvider::token) checks
//! the cached token's deadline against the clock; no timer has to have run
//! for that to be right. The check reads *two* clocks and a token is usable
//! only while both say so:
//!
//! - a **monotonic** clock, which never jumps when someone sets the time, but
//!   on most platforms stops while the machine is suspended;
//! - the **wall** clock, which keeps counting through a suspend (a laptop
//!   that slept for an hour wakes up an hour later), but can be set.
//!
//! A suspend is caught by the wall clock, a clock set back by the monotonic
//! one; a clock set forward only causes an early refresh.
//!
//! Two readings of each: **coarse** and **precise**. On Linux and Android
//! the coarse ones are `CLOCK_MONOTONIC_COARSE` and `CLOCK_REALTIME_COARSE`
//! (a few nanoseconds each from the vDSO), updated once per scheduler tick;
//! a tick can come late (a VM whose timekeeping CPU is descheduled), so the
//! coarse clocks are trusted only while a token is at least
//! [`COARSE_GUARD`] (1 s) from its refresh time. Closer than that, and for
//! every deadline computation, the precise clocks decide
//! (`CLOCK_MONOTONIC`, `CLOCK_REALTIME`). Elsewhere both readings are
//! [`Instant`](std::time::Instant) and `SystemTime`.
//!
//! A token set in a shared store carries its expiry on the wall clock, the
//! one clock every machine has. Processes that read the same monotonic
//! clock (one kernel boot, one time namespace: replicas on one host, a CLI
//! beside a service) also share the set's monotonic deadline, so a wall
//! clock stepped back between a write and a read does not lengthen the
//! token's life ([`TimeSource::monotonic_origin`]). Across machines the
//! wall clocks must agree within the refresh margin; a restored token never
//! gets more than the lifetime it was issued with.
//!
//! Tests replace the clock with [`ManualTimeSource`] (feature `test-util`)
//! through [`TokenProviderBuilder::time_source`](crate::provider::TokenProviderBuilder::time_source).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
#[cfg(any(test, feature = "test-util"))]
use std::time::SystemTime;

/// A source of the current time, for the deadlines of cached tokens.
///
/// The default reads the system's clocks; tests inject
/// [`ManualTimeSource`] (feature `test-util`) to move time without sleeping.
pub trait TimeSource: Send + Sync + fmt::Debug {
    /// Time since an arbitrary fixed origin, never going back.
    fn monotonic(&self) -> Duration;
    /// The wall clock: time since the Unix epoch.
    fn wall(&self) -> Duration;
    /// Names the origin [`monotonic`](Self::monotonic) counts from when
    /// other processes read the same clock; `None` (the default) when it is
    /// this source's own.
    ///
    /// Token sets a provider stores carry their monotonic deadline beside
    /// the wall-clock expiry; a provider whose source names the same origin
    /// holds a restored token to both, so a wall clock stepped back does
    /// not lengthen its life. [`SystemTimeSource`] names the kernel's boot
    /// (and time namespace) on Linux.
    fn monotonic_origin(&self) -> Option<u128> {
        None
    }
}

/// The system's clocks as a [`TimeSource`]: what a provider reads when no
/// source is set, for sources that build on it (a test that steps the wall
/// clock of a process, say).
///
/// ```
/// use filevine_identity_ext::time::{SystemTimeSource, TimeSource};
///
/// let clock = SystemTimeSource;
/// let before = clock.monotonic();
/// assert!(clock.monotonic() >= before);
/// assert!(clock.wall().as_secs() > 1_700_000_000);
/// # #[cfg(target_os = "linux")]
/// assert!(clock.monotonic_origin().is_some());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTimeSource;

impl TimeSource for SystemTimeSource {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(system::precise().monotonic)
    }

    fn wall(&self) -> Duration {
        Duration::from_nanos(system::precise().wall)
    }

    fn monotonic_origin(&self) -> Option<u128> {
        system::origin()
    }
}

/// How far from a deadline the coarse clocks are trusted: a tick is at most
/// 10 ms, and the kernel hands the timekeeping duty to another CPU when the
/// one holding it stalls, so a coarse reading a whole second late is far
/// outside anything seen; closer than this, the precise clocks decide.
pub const COARSE_GUARD: Duration = Duration::from_secs(1);

/// A reading of both clocks, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stamp {
    monotonic: u64,
    wall: u64,
}

impl Stamp {
    fn new(monotonic: Duration, wall: Duration) -> Self {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self { monotonic: nanos(monotonic), wall: nanos(wall) }
    }

    /// This stamp moved `by` later on both clocks (saturating).
    pub(crate) fn plus(self, by: Duration) -> Self {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        Self { monotonic: self.monotonic.saturating_add(by), wall: self.wall.saturating_add(by) }
    }

    /// This stamp moved `by` earlier on both clocks (saturating).
    pub(crate) fn minus(self, by: Duration) -> Self {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        Self { monotonic: self.monotonic.saturating_sub(by), wall: self.wall.saturating_sub(by) }
    }

    /// This stamp moved `by` later on both clocks; `None` past the range.
    pub(crate) fn checked_plus(self, by: Duration) -> Option<Self> {
        let by = u64::try_from(by.as_nanos()).ok()?;
        Some(Self { monotonic: self.monotonic.checked_add(by)?, wall: self.wall.checked_add(by)? })
    }

    /// The wall-clock reading: time since the Unix epoch.
    pub(crate) fn since_epoch(self) -> Duration {
        Duration::from_nanos(self.wall)
    }

    /// How long until `deadline` on the monotonic clock alone.
    pub(crate) fn monotonic_until(self, deadline: Stamp) -> Duration {
        Duration::from_nanos(deadline.monotonic.saturating_sub(self.monotonic))
    }

    /// Whether `self` is before `deadline` on both clocks.
    #[inline]
    pub(crate) fn before(self, deadline: Stamp) -> bool {
        self.monotonic < deadline.monotonic && self.wall < deadline.wall
    }

    /// How long until `deadline` by the clock that says least (zero once
    /// either has passed it).
    pub(crate) fn until(self, deadline: Stamp) -> Duration {
        let left = deadline.monotonic.saturating_sub(self.monotonic).min(deadline.wall.saturating_sub(self.wall));
        Duration::from_nanos(left)
    }
}

/// A deadline on a monotonic clock other processes read too: the
/// clock's [`TimeSource::monotonic_origin`] and the deadline on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedDeadline {
    pub(crate) origin: u128,
    pub(crate) monotonic: u64,
}

/// The clock a provider reads: the system's (a direct call, no dispatch) or
/// an injected [`TimeSource`].
#[derive(Clone, Default)]
pub(crate) enum Clock {
    #[default]
    System,
    Source(Arc<dyn TimeSource>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("SystemClock"),
            Self::Source(source) => source.fmt(f),
        }
    }
}

impl Clock {
    /// Both clocks, now, coarsely: for the hot path, far from deadlines.
    #[inline]
    pub(crate) fn coarse(&self) -> Stamp {
        match self {
            Self::System => system::coarse(),
            Self::Source(source) => Stamp::new(source.monotonic(), source.wall()),
        }
    }

    /// The wall clock in whole seconds since the Unix epoch: what ID token
    /// claims (`iat`, `exp`, `auth_time`) and a sign-in's age are compared
    /// with. The injected source in tests, so they move it instead of
    /// sleeping. Also a client assertion's and a DPoP proof's `iat`.
    pub(crate) fn unix_seconds(&self) -> u64 {
        match self {
            Self::System => {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
            }
            Self::Source(source) => source.wall().as_secs(),
        }
    }

    /// The origin of the monotonic clock, when other processes share it
    /// ([`TimeSource::monotonic_origin`]).
    pub(crate) fn origin(&self) -> Option<u128> {
        match self {
            Self::System => system::origin(),
            Self::Source(source) => source.monotonic_origin(),
        }
    }

    /// `deadline` as other processes on this clock can read it; `None`
    /// when no other process shares its monotonic clock.
    pub(crate) fn share(&self, deadline: Stamp) -> Option<SharedDeadline> {
        Some(SharedDeadline { origin: self.origin()?, monotonic: deadline.monotonic })
    }

    /// What is left at `now` of `shared`, when it is on this clock; `None`
    /// for a deadline on another machine's (or process's) clock.
    pub(crate) fn left_of(&self, shared: SharedDeadline, now: Stamp) -> Option<Duration> {
        (self.origin() == Some(shared.origin))
            .then(|| Duration::from_nanos(shared.monotonic.saturating_sub(now.monotonic)))
    }

    /// Both clocks, now, precisely: near deadlines and to compute them.
    pub(crate) fn now(&self) -> Stamp {
        match self {
            Self::System => system::precise(),
            Self::Source(source) => Stamp::new(source.monotonic(), source.wall()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod system {
    use rustix::time::{ClockId, clock_gettime};

    use super::Stamp;

    fn nanos(t: rustix::time::Timespec) -> u64 {
        // The kernel keeps both fields non-negative.
        (t.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(t.tv_nsec as u64)
    }

    #[inline]
    pub(super) fn coarse() -> Stamp {
        Stamp {
            monotonic: nanos(clock_gettime(ClockId::MonotonicCoarse)),
            wall: nanos(clock_gettime(ClockId::RealtimeCoarse)),
        }
    }

    pub(super) fn precise() -> Stamp {
        Stamp { monotonic: nanos(clock_gettime(ClockId::Monotonic)), wall: nanos(clock_gettime(ClockId::Realtime)) }
    }

    /// `CLOCK_MONOTONIC` counts from the kernel's boot, shifted by the
    /// process's time namespace (a container restored by CRIU has its
    /// own): the boot id and the namespace's offsets name it. `None` when
    /// the boot id cannot be read (no `/proc`).
    pub(super) fn origin() -> Option<u128> {
        static ORIGIN: std::sync::OnceLock<Option<u128>> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(|| {
            let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let boot = boot.trim();
            if boot.is_empty() {
                return None;
            }
            // Absent before Linux 5.6 (no time namespaces: no offsets).
            let offsets = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
            let digest = crate::crypto::sha256(format!("{boot}\n{offsets}").as_bytes());
            let mut first = [0u8; 16];
            first.copy_from_slice(&digest[..16]);
            Some(u128::from_be_bytes(first))
        })
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod system {
    use std::sync::OnceLock;
    use std::time::{Instant, SystemTime};

    use super::Stamp;

    pub(super) fn coarse() -> Stamp {
        precise()
    }

    /// This process's own origin: no other process reads its clock.
    pub(super) fn origin() -> Option<u128> {
        None
    }

    pub(super) fn precise() -> Stamp {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Stamp::new(origin.elapsed(), wall)
    }
}

/// A clock that moves only when told to, for tests (feature `test-util`).
///
/// [`advance`](ManualTimeSource::advance) moves both clocks, as time passing
/// does; [`suspend`](ManualTimeSource::suspend) moves only the wall clock,
/// as a machine that sleeps does; [`set_back`](ManualTimeSource::set_back)
/// moves the wall clock back, as someone setting the time does. Clones are
/// the same clock (and name the same [`monotonic_origin`](TimeSource::monotonic_origin),
/// as processes of one machine would).
///
/// ```
/// use std::time::Duration;
/// use filevine_identity_ext::time::{ManualTimeSource, TimeSource};
///
/// let clock = ManualTimeSource::new();
/// let (mono, wall) = (clock.monotonic(), clock.wall());
/// clock.advance(Duration::from_secs(5));
/// clock.suspend(Duration::from_secs(60));
/// assert_eq!(clock.monotonic() - mono, Duration::from_secs(5));
/// assert_eq!(clock.wall() - wall, Duration::from_secs(65));
/// clock.set_back(Duration::from_secs(65));
/// assert_eq!(clock.wall(), wall);
/// assert_eq!(clock.clone().monotonic_origin(), clock.monotonic_origin());
/// assert_ne!(ManualTimeSource::new().monotonic_origin(), clock.monotonic_origin());
/// ```
#[cfg(feature = "test-util")]
#[derive(Debug, Clone)]
pub struct ManualTimeSource {
    state: Arc<std::sync::Mutex<(Duration, Duration)>>,
    origin: u128,
}

#[cfg(feature = "test-util")]
impl Default for ManualTimeSource {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "test-util")]
impl ManualTimeSource {
    /// A clock at monotonic zero and the current wall-clock time.
    pub fn new() -> Self {
        static CLOCKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        // One origin per clock of this process; the process id keeps two
        // test processes' clocks apart.
        let number = CLOCKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let origin = (u128::from(std::process::id()) << 64) | u128::from(number);
        Self { state: Arc::new(std::sync::Mutex::new((Duration::ZERO, wall))), origin }
    }

    /// Time passes: both clocks move by `by`.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0 += by;
        state.1 += by;
    }

    /// The machine sleeps for `by`: only the wall clock moves.
    pub fn suspend(&self, by: Duration) {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 += by;
    }

    /// Someone sets the wall clock `by` earlier (saturating at the epoch);
    /// the monotonic clock does not move.
    pub fn set_back(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1 = state.1.saturating_sub(by);
    }
}

#[cfg(feature = "test-util")]
impl TimeSource for ManualTimeSource {
    fn monotonic(&self) -> Duration {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0
    }

    fn wall(&self) -> Duration {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1
    }

    fn monotonic_origin(&self) -> Option<u128> {
        Some(self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_holds_on_both_clocks() {
        let start = Stamp::new(Duration::from_secs(100), Duration::from_secs(10_000));
        let deadline = start.plus(Duration::from_secs(10));
        assert!(start.before(deadline));
        assert_eq!(start.until(deadline), Duration::from_secs(10));
        // Suspended for a minute: the monotonic clock did not move.
        let after_sleep = Stamp::new(Duration::from_secs(100), Duration::from_secs(10_060));
        assert!(!after_sleep.before(deadline));
        assert_eq!(after_sleep.until(deadline), Duration::ZERO);
        // Wall clock set back an hour: the monotonic clock still counts.
        let set_back = Stamp::new(Duration::from_secs(111), Duration::from_secs(10_000 - 3_600));
        assert!(!set_back.before(deadline));
    }

    #[test]
    fn the_system_clock_moves_forward() {
        let clock = Clock::System;
        let first = clock.now();
        let first_coarse = clock.coarse();
        std::thread::sleep(Duration::from_millis(30));
        let second = clock.now();
        assert!(first.before(second), "{first:?} {second:?}");
        assert!(first_coarse.before(clock.coarse()));
        // The coarse reading is never ahead of the precise one.
        assert!(!clock.now().before(clock.coarse()) || clock.coarse() == clock.now());
        let std_wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert!(std_wall.abs_diff(Duration::from_nanos(second.wall)) < Duration::from_secs(1));
    }
}
