//! The refresh engine's state: what every clone of a provider shares
//! ([`Inner`]), the flight of the refresh in progress, and the steps that
//! only touch that state (discarding what a sign-out made worthless). The
//! steps of a refresh are `impl Inner` blocks beside it: `flight.rs` (one
//! request at a time, retries, publishing), `through_store.rs` (the token
//! store's lease and saves), `id_check.rs` (refreshed ID tokens),
//! `background.rs` (the timer); `handle.rs` is the public face: a valid
//! access token on every call, one request per refresh however many
//! callers ask at once.
//!
//! # How a call is served
//!
//! - **Hot path** (`cache`). Each thread remembers the last token it was
//!   handed, tagged with the provider's generation counter. A call reads that
//!   counter (one atomic load of a read-mostly cache line), finds its
//!   thread's entry, reads the coarse clocks ([`crate::time`]) and checks
//!   that the token is at least a second before its refresh time, then
//!   clones one `Arc`. No lock, no allocation, no timer needed to be right.
//! - **Checked path.** Otherwise it reads the current token (a read lock
//!   held for an `Arc` clone; see `cache::Current` for why not a lock-free
//!   swap) and reads the precise clocks: before its
//!   refresh time it is remembered and
//!   returned; inside the soft window it is returned and a refresh starts in
//!   the background; past the hard margin it is never returned.
//! - **Slow path** (`flight`). With no usable token, the caller takes the
//!   flight lock (a short `std` mutex, never held across `.await`),
//!   re-checks, and joins the refresh in flight or starts one. The caller
//!   that starts it runs it in place (`drive`); once another joins, or when
//!   it gives up (a dropped future, a timeout), a task of its own runs it,
//!   so no caller cancels a request whose answer may carry a rotated
//!   refresh token. Everyone waiting gets the outcome from the flight's
//!   outcome slot (`outcome`), after the token was stored.
//! - **Background refresh** (`background`, opt-in): a timer starts the
//!   refresh at the soft deadline, so callers never wait on the network.
//!   The timer only makes refreshes earlier; correctness never depends on it.
//!
//! # When a token is refreshed
//!
//! With lifetime `L` (from `expires_in`, see [`ExpiryPolicy`]):
//!
//! - hard margin `M = min(hard_margin, L/2)` (default 60 s, as Filevine's
//!   samples use): a token with less than `M` left is never handed out;
//! - soft window `W = min(soft_window, (L−M)/2)` (default 5 min): the refresh
//!   starts at a random point between `W` and `W/2` before `L−M`;
//! - if a refresh fails, callers keep getting the cached token until its
//!   hard margin, then the error. Failures back off (full jitter, capped).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::cache::{Current, Timing};
use super::drive::{Refresh, WeakRefresh};
use super::hooks::Forgotten;
use super::jitter::Jitter;
use super::link::StoreLink;
use super::outcome;
use super::retry::RetryPolicy;
use super::sync::lock;
use crate::config::region::Region;
use crate::grant::{AccessToken, Credentials, ExpiryPolicy, IdToken, RefreshToken};
use crate::time::{Clock, Stamp};

/// The state all clones of a provider share.
pub(super) struct Inner {
    /// Unique per provider (never reused), keys the thread-local entries.
    pub(super) id: u64,
    /// The generated client, made on the first request.
    pub(super) wire: super::wire::Wire,
    pub(super) region: Region,
    /// The caller's non-secret label (a firm's id) on spans and metrics.
    pub(super) tenant: Option<Arc<str>>,
    /// The keys of this provider's metrics (authority, grant, tenant).
    pub(super) metrics: crate::metrics::ProviderMetrics,
    pub(super) credentials: Credentials,
    /// Asked for the credentials on each refresh (`Grant::Sourced`).
    pub(super) source: Option<Arc<dyn crate::grant::CredentialSource>>,
    /// With a source and a store: how each request keys the entry by the
    /// identity the source gives.
    pub(super) sourced_key: Option<super::derived_key::SourcedKey>,
    /// The `scope` form value, built once.
    pub(super) scope: Option<String>,
    /// The latest refresh token (rotated by every refresh response).
    pub(super) refresh_token: Mutex<Option<RefreshToken>>,
    /// The latest ID token from a refresh response.
    pub(super) id_token: Mutex<Option<IdToken>>,
    /// Ask for DPoP-bound tokens.
    pub(super) dpop: bool,
    /// The identity provider refused a request without a DPoP proof: every
    /// later request of this provider carries one.
    pub(super) dpop_demanded: AtomicBool,
    /// The key the current tokens are bound to (with `dpop`: the one the
    /// next token request signs with). Moves with the refresh token.
    pub(super) dpop_key: Mutex<Option<crate::jose::DpopKey>>,
    pub(super) timing: Timing,
    pub(super) expiry: ExpiryPolicy,
    pub(super) retry: RetryPolicy,
    /// The per-attempt timeout the HTTP client enforces, when the SDK built
    /// the client (a user's client has timeouts the SDK does not know).
    pub(super) enforced_attempt_timeout: Option<std::time::Duration>,
    pub(super) request_timeout: std::time::Duration,
    pub(super) clock: Clock,
    pub(super) jitter: Jitter,
    /// Refresh ahead of time without waiting for a call.
    pub(super) background: bool,
    /// The current token and its deadlines.
    pub(super) current: Current,
    /// Bumped after every change of `current`; thread-local entries tagged
    /// with an older generation are not used.
    pub(super) generation: AtomicU64,
    /// Set while a refresh runs; lets the checked path skip the flight lock.
    pub(super) refreshing: AtomicBool,
    pub(super) flight: Mutex<Flight>,
    /// The background refresh timer of the current token.
    pub(super) timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The runtime the provider was built in, for refreshes started by calls
    /// made outside any runtime.
    pub(super) runtime: Option<tokio::runtime::Handle>,
    /// Where token sets are shared with other processes, if anywhere.
    pub(super) store: Option<StoreLink>,
    /// Bumped (under the flight lock) by every `forget`, so a refresh that
    /// started before it never installs what it received.
    pub(super) epoch: AtomicU64,
    /// Set by `forget` and by a discarded refresh: the refresh token the
    /// provider was built with is dead, never to be sent again; only a
    /// newer set read from the store (a new sign-in) revives the provider.
    pub(super) signed_out: AtomicBool,
    /// Revokes tokens this provider discards (a refresh that raced a
    /// sign-out): set when an [`OidcClient`](crate::oidc::OidcClient), which knows
    /// the revocation endpoint, built the provider.
    pub(super) revoke: Option<super::hooks::Revoke>,
    /// Checks the ID token of every refresh response (OpenID Connect Core
    /// §12.2): set when an [`OidcClient`](crate::oidc::OidcClient) built the
    /// provider.
    pub(super) check_id_token: Option<super::hooks::CheckIdToken>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.timer).take() {
            task.abort();
        }
    }
}

impl Inner {
    /// Drops the refresh and ID tokens this provider holds and the current
    /// token (a sign-out happened while a refresh ran). Returns them with
    /// `received` (the access token the refresh got), to be revoked.
    pub(super) fn discard(&self, received: Option<AccessToken>) -> Forgotten {
        self.signed_out.store(true, Ordering::Release);
        let forgotten = Forgotten { access_token: received, refresh_token: lock(&self.refresh_token).take() };
        lock(&self.dpop_key).take();
        lock(&self.id_token).take();
        drop(self.current.replace(None));
        self.generation.fetch_add(1, Ordering::AcqRel);
        forgotten
    }

    /// Revokes what [`discard`](Self::discard) dropped, when the provider
    /// knows how (it came from an [`OidcClient`](crate::oidc::OidcClient)).
    /// Awaited before the refresh's outcome is published, so that a caller
    /// told [`Error::SignedOut`] knows the tokens are revoked.
    pub(super) async fn revoke_discarded(&self, forgotten: Forgotten) {
        if forgotten.access_token.is_none() && forgotten.refresh_token.is_none() {
            return;
        }
        match &self.revoke {
            Some(revoke) => {
                tracing::debug!("revoking the tokens a refresh received after a sign-out");
                revoke(forgotten).await;
            }
            None => tracing::debug!(
                "discarded the tokens a refresh received after a sign-out (no revocation endpoint known)"
            ),
        }
    }

    /// Where refresh and timer tasks run: the caller's runtime, else the one
    /// the provider was built in.
    pub(super) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        tokio::runtime::Handle::try_current().ok().or_else(|| self.runtime.clone())
    }
}

/// A refresh in progress: where its outcome is published, and a weak
/// handle on the refresh itself, for the first caller that joins to hand
/// to a task.
pub(super) struct InFlight {
    pub(super) outcome: outcome::Receiver,
    pub(super) refresh: WeakRefresh,
    /// Whether the refresh is in a task of its own, or on its way there.
    pub(super) detached: bool,
}

impl InFlight {
    /// For a caller that joins: the refresh to move to a task of its own,
    /// the first time anyone joins. From then on the caller that started
    /// it may stall without holding anybody up, and everyone waits for the
    /// outcome alone, woken once.
    pub(super) fn detach(&mut self) -> Option<Refresh> {
        if std::mem::replace(&mut self.detached, true) {
            return None;
        }
        self.refresh.upgrade()
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").finish_non_exhaustive()
    }
}

/// The refresh in flight and the failure backoff. Guarded by `Inner::flight`.
#[derive(Debug, Default)]
pub(super) struct Flight {
    /// The refresh in progress, if any.
    pub(super) in_flight: Option<InFlight>,
    /// Consecutive failed refreshes.
    pub(super) failures: u32,
    /// No new refresh starts before this (backoff after failures).
    pub(super) not_before: Option<Stamp>,
}
