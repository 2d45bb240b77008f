//! Random fractions for jitter, injectable for tests. Not for secrets:
//! spreading refreshes and retries only needs values that differ between
//! processes and calls.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Where jitter fractions come from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum Jitter {
    /// A per-thread xorshift generator seeded from std's random hasher keys.
    #[default]
    Random,
    /// Always this fraction (tests: deadlines and backoffs become exact).
    #[cfg_attr(not(any(test, feature = "test-util")), allow(dead_code))]
    Fixed(f64),
}

impl Jitter {
    /// A value in `[0, 1)`.
    pub(crate) fn unit(self) -> f64 {
        match self {
            Self::Random => random_unit(),
            Self::Fixed(fraction) => fraction.clamp(0.0, 1.0 - f64::EPSILON),
        }
    }

    /// `span` scaled by a value from one half to one: spread, but never
    /// less than half (the soft refresh window, the pause between store polls).
    pub(crate) fn upper_half(self, span: std::time::Duration) -> std::time::Duration {
        let half = span / 2;
        half + scaled(half, self.unit())
    }

    /// Full-jitter exponential backoff: uniform in
    /// `[0, min(cap, base · 2^exponent))`. The one backoff formula of the
    /// crate (retries within a refresh, and failed refreshes).
    pub(crate) fn backoff(
        self,
        base: std::time::Duration,
        cap: std::time::Duration,
        exponent: u32,
    ) -> std::time::Duration {
        scaled(base.saturating_mul(1u32 << exponent.min(16)).min(cap), self.unit())
    }
}

/// `span` times `fraction` (in `[0, 1)`), in whole nanoseconds. Integer
/// arithmetic: `Duration::mul_f64` goes through a checked float
/// conversion that cost more than the rest of a refresh's deadline math.
/// A span past `u64::MAX` nanoseconds (584 years) counts as that.
fn scaled(span: std::time::Duration, fraction: f64) -> std::time::Duration {
    let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    // `fraction` in units of 2^-32; below 2^32, as `fraction` is below one.
    let units = (fraction * 4_294_967_296.0) as u64;
    std::time::Duration::from_nanos(((u128::from(nanos) * u128::from(units)) >> 32) as u64)
}

thread_local! {
    /// xorshift64* state, seeded from std's per-process random hasher keys.
    static STATE: Cell<u64> = Cell::new({
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x9E37_79B9_7F4A_7C15);
        hasher.finish() | 1
    });
}

/// A uniformly distributed value in `[0, 1)`.
fn random_unit() -> f64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        // The top 53 bits make an exactly representable f64 in [0, 1).
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backoff_formula_and_one_spread() {
        use std::time::Duration;
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(Jitter::Fixed(0.5).backoff(base, cap, 0), Duration::from_millis(50));
        assert_eq!(Jitter::Fixed(0.5).backoff(base, cap, 3), Duration::from_millis(400));
        assert_eq!(Jitter::Fixed(0.5).backoff(base, cap, 60), cap / 2, "capped, no overflow");
        assert_eq!(Jitter::Fixed(0.0).backoff(base, cap, 3), Duration::ZERO);
        let span = Duration::from_secs(10);
        assert_eq!(Jitter::Fixed(0.0).upper_half(span), span / 2);
        assert!(Jitter::Fixed(1.0).upper_half(span) <= span);
        for _ in 0..1000 {
            let spread = Jitter::Random.upper_half(span);
            assert!(spread >= span / 2 && spread <= span);
        }
    }

    #[test]
    fn random_values_are_in_range_and_spread() {
        let values: Vec<f64> = (0..10_000).map(|_| Jitter::Random.unit()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");
        let low = values.iter().filter(|v| **v < 0.1).count();
        assert!((800..1200).contains(&low), "{low}");
    }

    #[test]
    fn scaling_is_exact_for_binary_fractions_and_never_overflows() {
        use std::time::Duration;
        assert_eq!(scaled(Duration::from_millis(100), 0.5), Duration::from_millis(50));
        assert_eq!(scaled(Duration::from_secs(8), 0.25), Duration::from_secs(2));
        assert_eq!(scaled(Duration::from_secs(8), 0.0), Duration::ZERO);
        assert!(scaled(Duration::from_secs(8), Jitter::Fixed(1.0).unit()) < Duration::from_secs(8));
        assert!(scaled(Duration::MAX, 0.5) <= Duration::from_nanos(u64::MAX / 2 + 1));
    }

    #[test]
    fn fixed_values_stay_below_one() {
        assert_eq!(Jitter::Fixed(0.25).unit(), 0.25);
        assert!(Jitter::Fixed(1.0).unit() < 1.0);
        assert_eq!(Jitter::Fixed(-3.0).unit(), 0.0);
    }
}
