//! The test server's state: what every handler reads and changes
//! ([`Registry`], behind one lock) and the counters they bump ([`Shared`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::failure::{ExpiresIn, Failure};
use super::model::{
    AuthorizationError, Device, DeviceSettings, GatewayRequest, Grant, IdTokenAlgorithm, Pushed, PushedRequests,
    RecordedRequest, RefreshedIdToken, SignInClient, TestUser, lock,
};
use super::proofs::ProofState;

#[derive(Default)]
pub(super) struct Registry {
    pub(super) pats: HashSet<String>,
    pub(super) clients: HashMap<String, String>,
    pub(super) refresh_tokens: HashSet<String>,
    pub(super) used_refresh_tokens: HashSet<String>,
    /// When each rotated-away refresh token was first spent.
    pub(super) spent_at: HashMap<String, Instant>,
    /// How long a rotated-away refresh token is still accepted (zero: not).
    pub(super) reuse_interval: Duration,
    /// Rotated-away refresh tokens accepted within the reuse interval.
    pub(super) grace_replays: u64,
    pub(super) codes: HashMap<String, CodeGrant>,
    pub(super) used_codes: HashSet<String>,
    pub(super) access_tokens: HashMap<String, Instant>,
    pub(super) failures: VecDeque<Failure>,
    /// Failures the JWKS endpoint answers, one per request.
    pub(super) jwks_failures: VecDeque<Failure>,
    pub(super) delay: Duration,
    pub(super) expires_in: Option<ExpiresIn>,
    pub(super) rotate_refresh_tokens: bool,
    pub(super) granted_scope: Option<String>,
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) gateway_log: Vec<GatewayRequest>,
    pub(super) gateway_rejections: u32,
    /// Answers (status, JSON body) the gateway stub gives to requests no
    /// route of its own serves, one per request, in order.
    pub(super) gateway_answers: VecDeque<(u16, Option<serde_json::Value>)>,
    /// `POST {gateway}/identity/user` answers 403.
    pub(super) invites_forbidden: bool,
    /// The bodies of the user invites the gateway stub accepted.
    pub(super) user_invites: Vec<serde_json::Value>,
    /// Refresh tokens presented again after they were rotated away.
    pub(super) refresh_token_reuses: u64,
    pub(super) sequence: u64,
    /// Clients that may sign users in, by id.
    pub(super) sign_in_clients: HashMap<String, SignInClient>,
    /// The user the authorization endpoint signs in.
    pub(super) user: TestUser,
    /// Errors the authorization endpoint answers, one per request.
    pub(super) authorization_errors: VecDeque<AuthorizationError>,
    /// The sign-in behind each access and refresh token of one.
    pub(super) grants: HashMap<String, Grant>,
    pub(super) id_token_algorithm: IdTokenAlgorithm,
    /// How the ID tokens of refresh responses are altered.
    pub(super) refreshed_id_token: RefreshedIdToken,
    /// Pushed authorization requests waiting for the browser, by request URI.
    pub(super) pushed_requests: HashMap<String, Pushed>,
    /// Whether pushed requests are advertised, or required.
    pub(super) pushed_requests_mode: PushedRequests,
    pub(super) revoked_refresh_tokens: u64,
    /// Device sign-ins (RFC 8628) by device code.
    pub(super) devices: HashMap<String, Device>,
    pub(super) device_settings: DeviceSettings,
    /// Client assertions, DPoP proofs and bound tokens.
    pub(super) proofs: ProofState,
}

#[derive(Clone)]
pub(super) struct CodeGrant {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) code_challenge: Option<String>,
    /// Set for codes the authorization endpoint issued.
    pub(super) sign_in: Option<Grant>,
}

/// Requests per sign-in endpoint.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) authorization: AtomicU64,
    pub(super) jwks: AtomicU64,
    pub(super) userinfo: AtomicU64,
    pub(super) revocation: AtomicU64,
    pub(super) introspection: AtomicU64,
    pub(super) end_session: AtomicU64,
    pub(super) device_authorization: AtomicU64,
    pub(super) par: AtomicU64,
}

pub(super) struct Shared {
    pub(super) base_url: String,
    pub(super) registry: Mutex<Registry>,
    pub(super) token_requests: AtomicU64,
    /// The token request count, for waiters.
    pub(super) arrived: tokio::sync::watch::Sender<u64>,
    /// While `true`, token responses wait.
    pub(super) held: tokio::sync::watch::Sender<bool>,
    pub(super) discovery_requests: AtomicU64,
    /// Seconds the discovery answer's `Date` is set back (0: the real time).
    pub(super) date_behind: AtomicU64,
    pub(super) gateway_requests: AtomicU64,
    pub(super) per_grant: Mutex<HashMap<String, u64>>,
    pub(super) counts: Counts,
    /// Random per server, so tokens from two servers never collide.
    pub(super) seed: u64,
}

impl Shared {
    pub(super) fn next_value(&self, registry: &mut Registry, prefix: &str) -> String {
        registry.sequence += 1;
        let mixed =
            (self.seed ^ registry.sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        format!("{prefix}_{:016x}{:04x}", mixed, registry.sequence)
    }

    pub(super) fn is_valid_access_token(&self, token: &str) -> bool {
        self.is_valid_in(&lock(&self.registry), token)
    }

    pub(super) fn is_valid_in(&self, registry: &Registry, token: &str) -> bool {
        registry.access_tokens.get(token).is_some_and(|expires| Instant::now() < *expires)
    }
}
