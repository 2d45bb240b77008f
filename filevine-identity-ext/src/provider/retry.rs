//! Retrying one logical token request: bounded attempts, capped exponential
//! backoff with full jitter, `Retry-After` honoured, and a bound on the
//! whole call.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// Stands in for "never" where a configured duration overflows the clock.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
use crate::provider::jitter::Jitter;

/// How a token request is retried.
///
/// Retried: network errors, timeouts, 5xx and 429 ([`Error::is_retryable`]).
/// Never retried: rejected credentials or grants (400, 401, 403,
/// `invalid_grant`, `invalid_client`, `unauthorized_client`), malformed
/// responses and configuration errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3; at least 1).
    pub max_attempts: u32,
    /// First backoff ceiling (default 100 ms); doubles per attempt.
    pub base_delay: Duration,
    /// Largest backoff ceiling (default 2 s).
    pub max_delay: Duration,
    /// Bound on the whole call, retries and waits included (default 30 s).
    pub total_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            total_timeout: Duration::from_secs(30),
        }
    }
}

/// How long to wait after `error` before trying again: the server's
/// `Retry-After` when it sent one (capped where it was parsed), else
/// `backoff`. The one `Retry-After` rule of the crate.
pub(crate) fn wait_before_retry(error: &Error, backoff: impl FnOnce() -> Duration) -> Duration {
    match error {
        Error::RateLimited { retry_after: Some(wait), .. } => *wait,
        _ => backoff(),
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: uniform in
    /// `[0, min(max_delay, base_delay · 2^(attempt−1)))` ("full jitter").
    pub(crate) fn backoff(&self, attempt: u32, jitter: Jitter) -> Duration {
        jitter.backoff(self.base_delay, self.max_delay, attempt.saturating_sub(1))
    }

    /// Runs `attempt` until it succeeds, fails for good, runs out of
    /// attempts or runs out of time. `attempt` gets the 1-based attempt
    /// number. `enforced` is the per-attempt timeout the HTTP client itself
    /// enforces, when known: an attempt that cannot outlive the remaining
    /// budget needs no timer of its own (one timer fewer per request).
    pub(crate) async fn run<T, F, Fut>(
        &self,
        enforced: Option<Duration>,
        jitter: Jitter,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let started = Instant::now();
        // A configured bound too large for the clock means no bound.
        let deadline = started.checked_add(self.total_timeout).unwrap_or_else(|| started + FAR_FUTURE);
        let mut number = 0;
        loop {
            number += 1;
            // The first attempt starts now: no second clock read for it.
            let remaining = deadline.saturating_duration_since(if number == 1 { started } else { Instant::now() });
            let result = if enforced.is_some_and(|bound| bound <= remaining) {
                attempt(number).await
            } else {
                match tokio::time::timeout(remaining, attempt(number)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Timeout { after: self.total_timeout }),
                }
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !error.is_retryable() || number >= self.max_attempts.max(1) {
                return Err(error);
            }
            let wait = wait_before_retry(&error, || self.backoff(number, jitter));
            if Instant::now().checked_add(wait).is_none_or(|at| at >= deadline) {
                // Waiting would overrun the bound on the whole call.
                return Err(error);
            }
            tracing::debug!(attempt = number, wait_ms = wait.as_millis() as u64, %error, "retrying the token request");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        }
    }

    async fn count_attempts(policy: RetryPolicy, errors: Vec<Error>) -> (Result<u32, Error>, u32) {
        let calls = AtomicU32::new(0);
        let errors = std::sync::Mutex::new(errors.into_iter());
        let result = policy
            .run(None, Jitter::Fixed(0.5), |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                let next = errors.lock().unwrap().next();
                async move {
                    match next {
                        Some(error) => Err(error),
                        None => Ok(n),
                    }
                }
            })
            .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn retries_transient_errors_up_to_the_limit() {
        let server = || Error::Server { status: 503, body: String::new() };
        let (result, calls) = count_attempts(fast(), vec![server(), server()]).await;
        assert_eq!((result.unwrap(), calls), (3, 3));
        let (result, calls) = count_attempts(fast(), vec![server(), server(), server(), server()]).await;
        assert!(matches!(result, Err(Error::Server { status: 503, .. })));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn never_retries_rejections() {
        for error in [
            Error::InvalidCredentials { status: 400, details: Default::default() },
            Error::SignInRequired { status: 400, details: Default::default() },
            Error::Forbidden { status: 403, details: Default::default() },
            Error::malformed("x"),
        ] {
            let (result, calls) = count_attempts(fast(), vec![error]).await;
            assert!(result.is_err());
            assert_eq!(calls, 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_the_total_bound() {
        let limited = |secs| Error::RateLimited { status: 429, retry_after: Some(Duration::from_secs(secs)) };
        let started = tokio::time::Instant::now();
        let (result, calls) = count_attempts(fast(), vec![limited(2)]).await;
        assert_eq!((result.unwrap(), calls), (2, 2));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // A wait beyond the total bound is not taken.
        let policy = RetryPolicy { total_timeout: Duration::from_secs(5), ..fast() };
        let (result, calls) = count_attempts(policy, vec![limited(10)]).await;
        assert!(matches!(result, Err(Error::RateLimited { .. })));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_whole_call_is_bounded() {
        let policy = RetryPolicy { total_timeout: Duration::from_secs(1), ..fast() };
        let result: Result<(), Error> = policy.run(None, Jitter::Fixed(0.5), |_| std::future::pending()).await;
        assert!(matches!(result, Err(Error::Timeout { after }) if after == Duration::from_secs(1)));
        // An enforced per-attempt bound longer than the budget still gets the timer.
        let result: Result<(), Error> =
            policy.run(Some(Duration::from_secs(5)), Jitter::Fixed(0.5), |_| std::future::pending()).await;
        assert!(matches!(result, Err(Error::Timeout { after }) if after == Duration::from_secs(1)));
    }

    #[test]
    fn backoff_doubles_per_attempt_and_is_capped() {
        let policy = RetryPolicy::default();
        let half = Jitter::Fixed(0.5);
        assert_eq!(policy.backoff(1, half), Duration::from_millis(50));
        assert_eq!(policy.backoff(2, half), Duration::from_millis(100));
        assert_eq!(policy.backoff(5, half), Duration::from_millis(800));
        assert_eq!(policy.backoff(50, half), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, Jitter::Fixed(0.0)), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_backoff() {
        let policy = RetryPolicy::default();
        let server = || Error::Server { status: 503, body: String::new() };
        let started = Instant::now();
        let (result, calls) = count_attempts(policy, vec![server(), server()]).await;
        assert_eq!((result.unwrap(), calls), (3, 3));
        // 50 ms after the first failure, 100 ms after the second (jitter 0.5).
        assert_eq!(started.elapsed(), Duration::from_millis(150));
    }
}
