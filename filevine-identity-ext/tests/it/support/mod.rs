//! Helpers shared by integration tests.

pub mod hooked;
pub mod identity;
pub mod metrics;
pub mod oidc;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod tls;

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A reqwest builder for a test's own requests (a browser, a replayed
/// cookie), with the crate's rustls provider installed first: with the
/// `ring` backend reqwest has no provider of its own, and whether another
/// test had installed one would depend on the order tests run in.
pub use oidc::http_builder;

/// A test's own HTTP client ([`http_builder`]).
pub fn http() -> reqwest::Client {
    http_builder().build().expect("a reqwest client")
}

/// A test's own HTTP client that follows no redirect: a browser whose
/// every hop the test looks at.
pub fn http_no_redirects() -> reqwest::Client {
    http_builder().redirect(reqwest::redirect::Policy::none()).build().expect("a reqwest client")
}

/// A manual clock a minute ahead of the system clock, for tests that check
/// times a real server stamps from the system clock (an ID token's `iat`).
/// A clock read at the start of a test trails the server's by however long
/// the test ran until the token was issued; past the 5 s leeway (a machine
/// that stalled for a few seconds, seen once in CI) a fresh token would be
/// "issued in the future". A minute ahead is past any `iat` and far from a
/// 5-minute `exp`.
pub fn clock_ahead() -> filevine_identity_ext::time::ManualTimeSource {
    let clock = filevine_identity_ext::time::ManualTimeSource::new();
    clock.advance(std::time::Duration::from_secs(60));
    clock
}

/// Starts a refresh of `provider` whose answer the server holds until the
/// returned guard is dropped; returns once the request arrived.
pub async fn held_refresh(
    server: &filevine_identity_ext::test_util::TestServer,
    provider: &filevine_identity_ext::TokenProvider,
) -> (
    filevine_identity_ext::test_util::HeldResponses,
    tokio::task::JoinHandle<Result<filevine_identity_ext::AccessToken, filevine_identity_ext::Error>>,
) {
    let requests = server.token_requests();
    let held = server.hold_token_responses();
    provider.invalidate();
    let refreshing = tokio::spawn({
        let provider = provider.clone();
        async move { provider.token().await }
    });
    server.wait_for_token_requests(requests + 1).await;
    (held, refreshing)
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The capture of this test binary: a TRACE-level subscriber installed
    /// as the global default on first use, so events from every thread and
    /// every runtime are recorded. (A per-thread subscriber misses events
    /// from other threads, and tracing's callsite cache can turn a callsite
    /// off for every thread while another thread has no subscriber.)
    pub fn global() -> &'static Captured {
        static GLOBAL: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                // A line when a span closes, with the fields recorded on it
                // (a refresh's outcome and duration).
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the test binary");
            captured
        })
    }

    /// Where the capture stands now.
    pub fn mark(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Everything captured since `mark` (other tests' events included).
    pub fn text_since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[mark..]).into_owned()
    }
}
