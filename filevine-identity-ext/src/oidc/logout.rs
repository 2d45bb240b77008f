//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a
//! user signs out at Filevine, or an administrator ends their session, the
//! provider posts a logout token to the application; every session of that
//! sign-in ends, on every replica.
//!
//! [`BackChannelLogout`] does the three parts:
//!
//! - **register** each sign-in's session key under the sign-in's `sid` and
//!   `sub`, in the token store (the index every replica reads);
//! - **verify** a logout token (§2.6): signature with the provider's keys,
//!   `iss`, `aud`/`azp`, `iat` neither in the future nor older than allowed,
//!   `exp`, the back-channel logout event, `sub` or `sid`, no `nonce`, and a
//!   `jti` not seen before, recorded in the store so a token replayed to
//!   another replica is refused too;
//! - **end** the sessions it names: each stored token set is replaced by a
//!   deletion mark (which every replica obeys) and its refresh and access
//!   tokens are revoked, as [`OidcClient::sign_out`] does.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::claims::IdTokenClaims;
use super::discovery::DiscoveryError;
use super::id_token::{self, Expectations, IdTokenError};
use super::{OidcClient, SignInError};
use crate::provider::TokenProviderBuilder;
use crate::store::{StoreError, StoreKey, TokenStore};

/// The event a logout token must carry (Back-Channel Logout §2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The explicit type a logout token may carry (§2.4).
const LOGOUT_TYPE: &str = "logout+jwt";
/// How old a logout token may be by its `iat`, by default.
pub const DEFAULT_MAX_LOGOUT_TOKEN_AGE: Duration = Duration::from_secs(300);
/// Sessions remembered per user; the oldest make room.
const MAX_SESSIONS_PER_USER: usize = 100;
/// Compare-and-swap attempts on an index entry before giving up.
const INDEX_ATTEMPTS: usize = 8;
/// The value of a seen `jti`'s entry.
const SEEN: &[u8] = b"seen";

/// Why a logout token was refused or its sessions could not be ended.
/// Answer the provider 400 for any of them (§2.8). No variant shows the
/// token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// It fails a check it shares with ID tokens (signature, algorithm,
    /// issuer, audience, expiry, a malformed token, a missing claim).
    #[error("the logout token fails a check: {0}")]
    Token(#[from] IdTokenError),
    /// It carries no back-channel logout event: it is another kind of
    /// token.
    #[error("the logout token has no back-channel logout event ({LOGOUT_EVENT})")]
    NotALogout,
    /// It names neither a user (`sub`) nor a session (`sid`).
    #[error("the logout token names neither a subject (sub) nor a session (sid)")]
    NoSubjectOrSession,
    /// It names no session (`sid`), which this application requires.
    #[error("the logout token names no session (sid), which this application requires")]
    SessionRequired,
    /// It carries a `nonce`, which a logout token never does (§2.4): it
    /// may be an ID token passed off as one.
    #[error("the logout token carries a nonce, which logout tokens never do")]
    Nonce,
    /// It was issued longer ago than allowed.
    #[error("the logout token was issued at {iat}, more than {max_age_secs} s before now ({now})")]
    TooOld {
        /// Its `iat`.
        iat: u64,
        /// The age allowed.
        max_age_secs: u64,
        /// Now.
        now: u64,
    },
    /// Its `jti` was seen before: a replay.
    #[error("this logout token was already used (its jti was seen before)")]
    Replayed,
    /// The provider's metadata or keys could not be had.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The store failed: the token could not be recorded, or the sessions
    /// not found or ended.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// The index of a user's sessions kept changing under this sign-in's
    /// registration (others signing in at the same moment); try again.
    #[error("the sessions index kept changing while this sign-in was registered; try again")]
    Contended,
    /// Ending a session failed (its provider could not be built, or the
    /// store failed while deleting it).
    #[error("could not end a session: {0}")]
    SignOut(#[source] Box<SignInError>),
}

/// What a verified logout token says ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogoutNotice {
    /// The issuer.
    pub issuer: String,
    /// The user whose sessions ended, if the token names one.
    pub subject: Option<String>,
    /// The session that ended, if the token names one.
    pub session_id: Option<String>,
}

/// A logout handled: what the token said, and the sessions ended (their
/// token sets deleted everywhere and revoked).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoggedOut {
    /// What the logout token said.
    pub notice: LogoutNotice,
    /// The session keys (as registered) whose token sets were ended.
    pub sessions: Vec<StoreKey>,
}

/// Back-channel logout for the sessions an application keeps in a token
/// store. Cheap to clone; sends nothing until used.
///
/// ```no_run
/// use std::sync::Arc;
/// use filevine_identity_ext::OidcClient;
/// use filevine_identity_ext::store::{self, StoreKey};
///
/// # async fn run(oidc: OidcClient, form_logout_token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = store::open("redis://127.0.0.1:6379")?;
/// let logout = oidc.back_channel_logout(tokens.clone());
///
/// // At sign-in: the session's token set lives under `key`.
/// # let signed_in: filevine_identity_ext::oidc::SignedIn = todo!();
/// let key = StoreKey::session("the session's random name");
/// logout.register(&signed_in.claims, &key).await?;
///
/// // POST /backchannel-logout (form field `logout_token`): 200 if Ok, else 400.
/// let ended = logout.handle(form_logout_token).await?;
/// println!("{} session(s) ended", ended.sessions.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BackChannelLogout {
    oidc: OidcClient,
    store: Arc<dyn TokenStore>,
    idle: Duration,
    max_age: Duration,
    session_required: bool,
    configure: Arc<dyn Fn(TokenProviderBuilder) -> TokenProviderBuilder + Send + Sync>,
}

impl std::fmt::Debug for BackChannelLogout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackChannelLogout")
            .field("store", &self.store.kind())
            .field("idle", &self.idle)
            .field("max_age", &self.max_age)
            .field("session_required", &self.session_required)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Back-channel logout for the sessions whose token sets live in
    /// `store` (see [`BackChannelLogout`]).
    pub fn back_channel_logout(&self, store: Arc<dyn TokenStore>) -> BackChannelLogout {
        BackChannelLogout {
            oidc: self.clone(),
            store,
            idle: crate::provider::DEFAULT_STORE_IDLE_TIMEOUT,
            max_age: DEFAULT_MAX_LOGOUT_TOKEN_AGE,
            session_required: false,
            configure: Arc::new(|builder| builder),
        }
    }
}

impl BackChannelLogout {
    /// How long a registered session is remembered without another
    /// sign-in of its user: the sessions' idle timeout (the providers'
    /// [`store_idle_timeout`](TokenProviderBuilder::store_idle_timeout)).
    #[must_use]
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How old a logout token may be by its `iat` (default 5 minutes).
    #[must_use]
    pub fn max_token_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Refuses logout tokens without a `sid`, as a client registered with
    /// `backchannel_logout_session_required` expects.
    #[must_use]
    pub fn require_session_id(mut self, required: bool) -> Self {
        self.session_required = required;
        self
    }

    /// How the providers that end a session are built beyond
    /// [`OidcClient::stored_session`] and the store (encryption keys, idle
    /// timeout): the same options the application's providers use.
    #[must_use]
    pub fn provider_options(
        mut self,
        configure: impl Fn(TokenProviderBuilder) -> TokenProviderBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Arc::new(configure);
        self
    }

    /// Remembers that the session stored under `session` belongs to the
    /// sign-in of `claims` (its `sub`, and its `sid` when the ID token has
    /// one), so a logout token for either ends it on every replica.
    ///
    /// # Errors
    /// [`LogoutError::Store`] when the index cannot be written.
    pub async fn register(&self, claims: &IdTokenClaims, session: &StoreKey) -> Result<(), LogoutError> {
        self.add(&self.index("sub", &claims.iss, &claims.sub), session).await?;
        if let Some(sid) = &claims.sid {
            self.add(&self.index("sid", &claims.iss, sid), session).await?;
        }
        Ok(())
    }

    /// Verifies a logout token and ends the sessions it names.
    ///
    /// # Errors
    /// A [`LogoutError`] naming the failed check, or what failed while
    /// ending the sessions: answer 400.
    pub async fn handle(&self, logout_token: &str) -> Result<LoggedOut, LogoutError> {
        let notice = self.verify(logout_token).await?;
        let sessions = self.end_sessions(&notice).await?;
        tracing::info!(sessions = sessions.len(), "ended sessions on a back-channel logout");
        Ok(LoggedOut { notice, sessions })
    }

    /// Verifies a logout token (§2.6) and records its `jti`, so the same
    /// token is refused next time, on any replica.
    ///
    /// # Errors
    /// A [`LogoutError`] naming the failed check.
    pub async fn verify(&self, logout_token: &str) -> Result<LogoutNotice, LogoutError> {
        let oidc = &self.oidc;
        let metadata = oidc.metadata().await?;
        let parsed = id_token::parse(logout_token)?;
        check_header(&parsed, metadata.id_token_algorithms())?;
        let key = oidc.signing_key(&metadata, &parsed).await?;
        let expect = oidc.expectations(&metadata, super::client::Checks::default());
        let now = oidc.inner.clock.unix_seconds();
        let rules = Rules { max_age: self.max_age, session_required: self.session_required };
        let checked = check(&parsed, &key, &expect, &rules, now)?;
        // Recorded last: a token that fails a check does not spend its jti.
        let seen = StoreKey::internal("logout-jti", &[&checked.notice.issuer, &checked.jti]);
        if !self.store.compare_and_swap(seen.as_str(), 0, SEEN, checked.remember).await? {
            return Err(LogoutError::Replayed);
        }
        Ok(checked.notice)
    }

    /// Ends the sessions `notice` names: the one of its `sid` when it has
    /// one, else every session of its `sub`. Each stored token set is
    /// replaced by a deletion mark and its tokens revoked.
    ///
    /// # Errors
    /// [`LogoutError::Store`] when the index cannot be read,
    /// [`LogoutError::SignOut`] for the first session that could not be
    /// ended (the others are still ended).
    pub async fn end_sessions(&self, notice: &LogoutNotice) -> Result<Vec<StoreKey>, LogoutError> {
        let index = match (&notice.session_id, &notice.subject) {
            (Some(sid), _) => self.index("sid", &notice.issuer, sid),
            (None, Some(sub)) => self.index("sub", &notice.issuer, sub),
            (None, None) => return Err(LogoutError::NoSubjectOrSession),
        };
        let sessions = self.sessions(&index).await?;
        let mut first_error = None;
        for session in &sessions {
            if let Err(error) = self.end(session).await {
                tracing::warn!(error = %crate::error::Report(&error), "could not end a session on a back-channel logout");
                first_error.get_or_insert(error);
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        self.store.delete(index.as_str()).await?;
        Ok(sessions)
    }

    /// Signs one stored session out: deletion mark, revocation.
    async fn end(&self, session: &StoreKey) -> Result<(), LogoutError> {
        let builder = (self.configure)(self.oidc.stored_session(session.clone()).store(self.store.clone()));
        let provider = builder.build().map_err(|error| LogoutError::SignOut(Box::new(SignInError::Config(error))))?;
        self.oidc.sign_out(&provider).await.map_err(|error| LogoutError::SignOut(Box::new(error)))
    }

    /// The index entry of one `sub` or `sid` of this client.
    fn index(&self, kind: &str, issuer: &str, value: &str) -> StoreKey {
        StoreKey::internal("logout-index", &[kind, issuer, self.oidc.inner.client_id.as_str(), value])
    }

    /// The sessions an index entry lists.
    async fn sessions(&self, index: &StoreKey) -> Result<Vec<StoreKey>, LogoutError> {
        let entry = self.store.load(index.as_str()).await?;
        Ok(entry.map(|entry| decode_sessions(&entry.value)).unwrap_or_default())
    }

    /// Adds `session` to an index entry (by compare-and-swap; the oldest
    /// make room), renewing its life.
    async fn add(&self, index: &StoreKey, session: &StoreKey) -> Result<(), LogoutError> {
        for _ in 0..INDEX_ATTEMPTS {
            let entry = self.store.load(index.as_str()).await?;
            let version = entry.as_ref().map_or(0, |entry| entry.version);
            let mut sessions = entry.map(|entry| decode_sessions(&entry.value)).unwrap_or_default();
            sessions.retain(|known| known != session);
            sessions.push(session.clone());
            let excess = sessions.len().saturating_sub(MAX_SESSIONS_PER_USER);
            sessions.drain(..excess);
            let value =
                serde_json::to_vec(&sessions.iter().map(StoreKey::as_str).collect::<Vec<_>>()).unwrap_or_default();
            if self.store.compare_and_swap(index.as_str(), version, &value, self.idle).await? {
                return Ok(());
            }
        }
        Err(LogoutError::Contended)
    }
}

/// What a logout token must be beyond the provider and the client.
pub(crate) struct Rules {
    pub(crate) max_age: Duration,
    pub(crate) session_required: bool,
}

/// A logout token that passed every check but the replay check.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) notice: LogoutNotice,
    pub(crate) jti: String,
    /// How long its `jti` must be remembered.
    pub(crate) remember: Duration,
}

/// The header checks of a logout token, before any key is looked up: those
/// of an ID token, with the explicit type `logout+jwt` allowed.
pub(crate) fn check_header(parsed: &id_token::Parsed<'_>, algorithms: &[String]) -> Result<(), IdTokenError> {
    parsed.check_header_typed(algorithms, &[LOGOUT_TYPE])
}

/// Every check of §2.6 after the header's ([`check_header`]) but the
/// replay: the signature with `key`, the issuer and audience (`expect`),
/// then the claims.
pub(crate) fn check(
    parsed: &id_token::Parsed<'_>,
    key: &jsonwebtoken::DecodingKey,
    expect: &Expectations<'_>,
    rules: &Rules,
    now: u64,
) -> Result<Checked, LogoutError> {
    let claims: LogoutClaims = parsed.decode(key, expect, &["iss", "aud"], now)?;
    let leeway = expect.leeway.as_secs();
    let audiences = claims.aud.audiences();
    if (audiences.len() > 1 || claims.azp.is_some()) && claims.azp.as_deref() != Some(expect.client_id) {
        return Err(IdTokenError::WrongAuthorizedParty {
            expected: expect.client_id.to_owned(),
            found: claims.azp.as_deref().map(|azp| crate::redact::shown(azp, 200)),
        }
        .into());
    }
    let iat = claims.iat.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > now.saturating_add(leeway) {
        return Err(IdTokenError::IssuedInFuture { iat, now }.into());
    }
    let max_age = rules.max_age.as_secs();
    if now > iat.saturating_add(max_age).saturating_add(leeway) {
        return Err(LogoutError::TooOld { iat, max_age_secs: max_age, now });
    }
    let exp = claims.exp.ok_or(IdTokenError::MissingClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(IdTokenError::Expired { exp, now, leeway_secs: leeway }.into());
    }
    if !claims.events.as_ref().is_some_and(|events| events.get(LOGOUT_EVENT).is_some_and(|e| e.is_object())) {
        return Err(LogoutError::NotALogout);
    }
    if claims.sub.is_none() && claims.sid.is_none() {
        return Err(LogoutError::NoSubjectOrSession);
    }
    if claims.nonce.is_some() {
        return Err(LogoutError::Nonce);
    }
    if rules.session_required && claims.sid.is_none() {
        return Err(LogoutError::SessionRequired);
    }
    let jti = claims.jti.clone().ok_or(IdTokenError::MissingClaim("jti"))?;
    // Until the token can no longer pass: its expiry, or its age limit.
    let until = exp.min(iat.saturating_add(max_age)).saturating_add(leeway);
    Ok(Checked {
        notice: LogoutNotice { issuer: claims.iss, subject: claims.sub, session_id: claims.sid },
        jti,
        remember: Duration::from_secs(until.saturating_sub(now).max(1)),
    })
}

/// An index entry's sessions; an unreadable entry lists none.
fn decode_sessions(value: &[u8]) -> Vec<StoreKey> {
    serde_json::from_slice::<Vec<String>>(value)
        .map(|names| names.iter().filter_map(|name| StoreKey::from_name(name)).collect())
        .unwrap_or_default()
}

/// The claims of a logout token, as they arrive.
#[derive(Deserialize)]
struct LogoutClaims {
    iss: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    events: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    nonce: Option<serde_json::Value>,
}

/// `aud`: one audience or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn audiences(&self) -> Vec<&str> {
        match self {
            Self::One(one) => vec![one.as_str()],
            Self::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}
