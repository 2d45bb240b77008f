//! What the provider caches: the current token with its deadlines, and each
//! thread's remembered copy of it.
//!
//! Deadlines are [`Stamp`]s, checked against the clock on every call: a
//! token past its hard margin is never handed out, whatever timers did (see
//! [`crate::time`]).

use std::cell::RefCell;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::grant::AccessToken;
use crate::provider::jitter::Jitter;
use crate::time::{COARSE_GUARD, Stamp};

/// Providers a thread remembers a token for.
const LOCAL_ENTRIES: usize = 8;

/// The refresh timing settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) hard_margin: Duration,
    pub(crate) soft_window: Duration,
}

/// A cached token with its deadlines, computed once when it arrives.
///
/// `repr(C)` with the hot path's two fields first: behind the `Arc` header
/// they share one cache line (a 16-byte stamp at the end would straddle two).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct CachedToken {
    /// Before this point the hot path may trust the coarse clocks
    /// ([`COARSE_GUARD`] before `refresh_at`).
    pub(crate) coarse_until: Stamp,
    pub(crate) token: AccessToken,
    /// From this point on the token is not handed out (hard margin).
    pub(crate) usable_until: Stamp,
    /// From this point on a call starts a refresh (soft window, jittered).
    pub(crate) refresh_at: Stamp,
}

impl Timing {
    /// The deadlines of `token`, which has `life` left at `stamp`.
    ///
    /// - hard margin `M = min(hard_margin, L/2)` for lifetime `L`: a token
    ///   with less than `M` left is never handed out;
    /// - soft window `W = min(soft_window, (L−M)/2)`: the refresh starts at a
    ///   random point between `W` and `W/2` before `L−M`, so a fleet does not
    ///   refresh in lockstep and a refresh has at least `W/2` to finish.
    pub(crate) fn deadlines(&self, token: AccessToken, stamp: Stamp, life: Duration, jitter: Jitter) -> CachedToken {
        let lifetime = token.lifetime();
        let margin = self.hard_margin.min(lifetime / 2);
        let usable_for = life.saturating_sub(margin);
        let window = self.soft_window.min(lifetime.saturating_sub(margin) / 2);
        let refresh_after = usable_for.saturating_sub(jitter.upper_half(window));
        CachedToken::new(token, stamp.plus(usable_for), stamp.plus(refresh_after))
    }
}

/// The provider's current token, replaced once per refresh.
///
/// A lock rather than a lock-free swap: it is read on the checked path
/// only (once per thread after each new token, and in the last second
/// before the refresh time; every other call is served from the thread's
/// remembered copy), and a lock-free swap's store walks every thread's
/// read slots, which cost more per refresh than the lock costs per read.
#[derive(Debug, Default)]
pub(crate) struct Current(RwLock<Option<Arc<CachedToken>>>);

impl Current {
    /// The current token and its deadlines, if there is one.
    pub(crate) fn get(&self) -> Option<Arc<CachedToken>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Looks at the current token without taking a reference to it.
    pub(crate) fn with<R>(&self, look: impl FnOnce(Option<&CachedToken>) -> R) -> R {
        look(self.0.read().unwrap_or_else(PoisonError::into_inner).as_deref())
    }

    /// Replaces the current token; returns the one it replaced, to be
    /// dropped outside the lock.
    pub(crate) fn replace(&self, cached: Option<Arc<CachedToken>>) -> Option<Arc<CachedToken>> {
        std::mem::replace(&mut *self.0.write().unwrap_or_else(PoisonError::into_inner), cached)
    }

    /// Clears the current token if `matches` says it is the one meant;
    /// returns whether it did (one check and clear, so of many callers
    /// clearing the same token only one does).
    pub(crate) fn clear_if(&self, matches: impl FnOnce(&CachedToken) -> bool) -> bool {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let cleared = current.take_if(|cached| matches(cached));
        drop(current);
        cleared.is_some()
    }
}

impl CachedToken {
    /// A token with these deadlines; the hot path's coarse bound is derived
    /// from the refresh time.
    pub(crate) fn new(token: AccessToken, usable_until: Stamp, refresh_at: Stamp) -> Self {
        Self { coarse_until: refresh_at.minus(COARSE_GUARD), token, usable_until, refresh_at }
    }
}

/// A thread's remembered tokens: the most recent provider's in `last`, up to
/// [`LOCAL_ENTRIES`] others in `others`. Each entry is tagged with the
/// provider's generation when it was remembered; a newer generation (a new
/// or invalidated token) makes it stale.
struct Local {
    last: Option<Remembered>,
    others: Vec<Remembered>,
}

/// (provider id, generation, token).
type Remembered = (u64, u64, Arc<CachedToken>);

thread_local! {
    // `const` initialisation: no lazy-init check on every access.
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { last: None, others: Vec::new() }) };
}

/// This thread's remembered token of provider `id`, if it was remembered at
/// `generation` and the coarse clocks say it is well before its refresh
/// time.
#[inline]
pub(crate) fn remembered(id: u64, generation: u64, now: impl FnOnce() -> Stamp) -> Option<AccessToken> {
    LOCAL.with(|local| {
        let local = local.borrow();
        let (_, tagged, cached) = match &local.last {
            Some(entry) if entry.0 == id => entry,
            _ => local.others.iter().find(|(entry, _, _)| *entry == id)?,
        };
        (*tagged == generation && now().before(cached.coarse_until)).then(|| cached.token.clone())
    })
}

/// Remembers `cached` for this thread, tagged with `generation`.
pub(crate) fn remember(id: u64, generation: u64, cached: Arc<CachedToken>) {
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        match local.last.replace((id, generation, cached)) {
            Some(previous) if previous.0 != id => {
                local.others.retain(|(other, _, _)| *other != id);
                if local.others.len() == LOCAL_ENTRIES {
                    local.others.remove(0);
                }
                local.others.push(previous);
            }
            _ => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use filevine_identity::SecretString;

    fn token(lifetime: Duration) -> AccessToken {
        AccessToken::new(
            SecretString::from("t"),
            "Bearer".to_owned(),
            None,
            &crate::time::Clock::System,
            crate::time::Clock::System.now(),
            lifetime,
            None,
        )
        .unwrap()
    }

    fn timing() -> Timing {
        Timing { hard_margin: Duration::from_secs(60), soft_window: Duration::from_secs(300) }
    }

    fn start() -> Stamp {
        Stamp::default().plus(Duration::from_secs(1_000))
    }

    #[test]
    fn deadlines_for_a_long_lived_token() {
        let life = Duration::from_secs(1200);
        // The earliest refresh (jitter 1) and the latest (jitter 0).
        let early = timing().deadlines(token(life), start(), life, Jitter::Fixed(1.0));
        let late = timing().deadlines(token(life), start(), life, Jitter::Fixed(0.0));
        assert_eq!(start().until(late.usable_until), Duration::from_secs(1140));
        assert_eq!(late.refresh_at, start().plus(Duration::from_secs(990)));
        let early_by = start().until(early.usable_until) - start().until(early.refresh_at);
        assert!(early_by > Duration::from_millis(299_999) && early_by <= Duration::from_secs(300), "{early_by:?}");
    }

    #[test]
    fn deadlines_for_a_short_lived_token_use_half_the_lifetime() {
        let life = Duration::from_secs(2);
        let cached = timing().deadlines(token(life), start(), life, Jitter::Fixed(0.0));
        assert_eq!(start().until(cached.usable_until), Duration::from_secs(1));
        // Half of the half-second window before the hard margin.
        assert_eq!(start().until(cached.usable_until) - start().until(cached.refresh_at), Duration::from_millis(250));
    }

    #[test]
    fn a_token_set_restored_late_keeps_its_own_expiry() {
        // 1200 s lifetime, 100 s left: usable for 40 s, refresh now.
        let cached =
            timing().deadlines(token(Duration::from_secs(1200)), start(), Duration::from_secs(100), Jitter::Fixed(0.0));
        assert_eq!(start().until(cached.usable_until), Duration::from_secs(40));
        assert_eq!(cached.refresh_at, start());
    }
}
