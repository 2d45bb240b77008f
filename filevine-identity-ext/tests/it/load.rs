//! Load: 10,000 concurrent callers across 20 expiry cycles of 1-second
//! tokens. Asserts counts, not times: no caller ever receives a token inside
//! its hard margin, every token the server issued was handed out (no wasted
//! refresh: requests == distinct tokens seen), and the whole run ends (no
//! deadlock) within a bound.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};

const CALLERS: usize = 10_000;
const CYCLES: u64 = 20;
const LIFETIME: Duration = Duration::from_secs(1);
/// A token is never handed out with less than this left.
const HARD_MARGIN: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_twenty_expiry_cycles() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_load");
    server.set_token_lifetime(LIFETIME);
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_load").unwrap()))
        .hard_margin(HARD_MARGIN)
        // No soft window: every token is used until its hard margin, so one
        // request per cycle is the ideal to compare against.
        .soft_window(Duration::ZERO)
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let inside_margin = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run = LIFETIME * CYCLES as u32;

    let callers: Vec<_> = (0..CALLERS)
        .map(|index| {
            let (provider, stop) = (provider.clone(), Arc::clone(&stop));
            let (calls, inside_margin, failed) = (Arc::clone(&calls), Arc::clone(&inside_margin), Arc::clone(&failed));
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                // Spread the callers' rhythms: 50–149 ms between calls.
                let pause = Duration::from_millis(50 + (index % 100) as u64);
                let mut last: Option<filevine_identity_ext::AccessToken> = None;
                while !stop.load(Ordering::Relaxed) {
                    // Measured from before the call: the invariant says the
                    // token had the margin left when it was handed out, which
                    // is no earlier than this (a thread descheduled after the
                    // call cannot make a sound hand-out look late).
                    let before = Instant::now();
                    match provider.token().await {
                        Ok(token) => {
                            if token.expires_at().saturating_duration_since(before) < HARD_MARGIN {
                                inside_margin.fetch_add(1, Ordering::Relaxed);
                            }
                            if !last.as_ref().is_some_and(|l| l.same_token(&token)) {
                                seen.lock().unwrap().insert(token.expose_secret().to_owned());
                                last = Some(token);
                            }
                        }
                        Err(_) => _ = failed.fetch_add(1, Ordering::Relaxed),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(pause).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        for caller in callers {
            caller.await.unwrap();
        }
    })
    .await;
    assert!(finished.is_ok(), "callers did not finish: deadlock?");

    let elapsed = started.elapsed();
    let requests = server.token_requests();
    let calls = calls.load(Ordering::Relaxed);
    // Each cycle lasts the usable part of a token (lifetime − margin); the
    // slack covers the cycle in progress at the start and at the end.
    let cycles = (elapsed.as_secs_f64() / (LIFETIME - HARD_MARGIN).as_secs_f64()).ceil() as u64;
    println!(
        "load: {CALLERS} callers, {calls} calls in {:.1} s, {requests} token requests for {CYCLES} lifetimes \
         ({cycles} usable-lifetime cycles), {} inside the margin, {} failed",
        elapsed.as_secs_f64(),
        inside_margin.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    assert_eq!(inside_margin.load(Ordering::Relaxed), 0, "a caller received a token inside its hard margin");
    assert_eq!(seen.lock().unwrap().len() as u64, requests, "every token request's token was handed out");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "a call failed");
    assert!(calls > CALLERS as u64 * CYCLES / 4, "the callers kept calling ({calls})");
    assert!(requests >= CYCLES, "tokens were refreshed every cycle ({requests})");
    // A time bound, not a count of the SDK's work: the cycle in progress at
    // the start and at the end.
    assert!(requests <= cycles + 3, "{requests} token requests for {cycles} cycles");
}
