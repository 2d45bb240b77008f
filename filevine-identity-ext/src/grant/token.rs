//! Access tokens, token sets, and when a token counts as expired.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use filevine_identity::SecretString;
use filevine_identity::types::{TokenResponse, TokenResponseExpiresIn};
use reqwest::header::HeaderValue;

use crate::config::scope::Scopes;
use crate::error::Error;
use crate::jose::DpopKey;
use crate::redact::redact;
use crate::secret::{IdToken, RefreshToken};
use crate::time::{Clock, SharedDeadline, Stamp};

/// An access token: a bearer token, or a DPoP-bound one (RFC 9449) that
/// goes out only with a proof signed by its [`DpopKey`].
///
/// Cheap to clone (one `Arc`). The token itself is reachable only through
/// [`AccessToken::expose_secret`] and [`AccessToken::authorization_header`];
/// `Debug` shows its type, scopes and remaining life, never its value.
///
/// Its expiry is read from the clock of whatever obtained it: the system's,
/// or the [`TimeSource`](crate::time::TimeSource) given to the provider or
/// [`OidcClient`](crate::oidc::OidcClient) (so a test moves that clock past
/// the expiry instead of sleeping). Both the monotonic and the wall clock
/// count, as in [`crate::time`].
#[derive(Clone)]
pub struct AccessToken(Arc<TokenInner>);

struct TokenInner {
    secret: SecretString,
    header: HeaderValue,
    token_type: String,
    /// The granted scopes as sent; parsed on first use, since most callers
    /// never ask.
    granted: Option<String>,
    scopes: std::sync::OnceLock<Scopes>,
    /// The clock `expires` is on.
    clock: Clock,
    /// From this point on both clocks say the token has expired.
    expires: Stamp,
    /// The whole life the server gave it.
    lifetime: Duration,
    /// `expires` and the arrival on the standard clocks, for the public
    /// accessors (mapped when the token was made).
    received_at: Instant,
    expires_at: Instant,
    /// The key a `DPoP` token is bound to.
    dpop: Option<DpopKey>,
}

impl AccessToken {
    /// Builds a token from a response's parts: it arrived at `received` on
    /// `clock` and was given `lifetime` from then.
    pub(crate) fn new(
        secret: SecretString,
        token_type: String,
        granted: Option<String>,
        clock: &Clock,
        received: Stamp,
        lifetime: Duration,
        dpop: Option<&DpopKey>,
    ) -> Result<Self, Error> {
        Self::with_deadline(secret, token_type, granted, clock, received.checked_plus(lifetime), lifetime, dpop)
    }

    /// A token that expires at `expires` on `clock`, issued with `lifetime`.
    fn with_deadline(
        secret: SecretString,
        token_type: String,
        granted: Option<String>,
        clock: &Clock,
        expires: Option<Stamp>,
        lifetime: Duration,
        dpop: Option<&DpopKey>,
    ) -> Result<Self, Error> {
        // RFC 6750 and RFC 9449: the scheme is `Bearer` or `DPoP`, whatever
        // case the server used. A bearer answer to a request with a proof
        // is a bearer token (a server without DPoP ignores the proof); a
        // `DPoP` answer needs the key the proof was signed with.
        let (scheme, dpop) = if token_type.eq_ignore_ascii_case("bearer") {
            ("Bearer", None)
        } else if token_type.eq_ignore_ascii_case("dpop") {
            let key = dpop.ok_or_else(|| Error::malformed("token_type is DPoP, but no DPoP proof was sent"))?;
            ("DPoP", Some(key.clone()))
        } else {
            return Err(Error::malformed(format!(
                "token_type {:?} is neither Bearer nor DPoP",
                redact(&token_type, 40)
            )));
        };
        // Built by hand: `format!` goes through the formatting machinery
        // for what is two copies of a token, once per refresh.
        let mut value = String::with_capacity(scheme.len() + 1 + secret.expose_secret().len());
        value.push_str(scheme);
        value.push(' ');
        value.push_str(secret.expose_secret());
        let mut header = HeaderValue::try_from(value)
            .map_err(|_| Error::malformed("the access token contains characters not allowed in an HTTP header"))?;
        header.set_sensitive(true);
        if secret.is_empty() {
            return Err(Error::malformed("the access token is empty"));
        }
        let expires = expires.ok_or_else(|| Error::malformed("expires_in is too large"))?;
        // The standard clocks' view of the same moments: now, plus what is
        // left on the token's clock.
        let (now, left) = (Instant::now(), clock.now().monotonic_until(expires));
        let expires_at = now.checked_add(left).ok_or_else(|| Error::malformed("expires_in is too large"))?;
        let received_at = expires_at.checked_sub(lifetime).unwrap_or(now.min(expires_at));
        Ok(Self(Arc::new(TokenInner {
            secret,
            header,
            token_type,
            granted,
            scopes: std::sync::OnceLock::new(),
            clock: clock.clone(),
            expires,
            lifetime,
            received_at,
            expires_at,
            dpop,
        })))
    }

    /// The token value. Each call site is where the secret leaves its
    /// wrapper: prefer [`AccessToken::authorization_header`].
    pub fn expose_secret(&self) -> &str {
        self.0.secret.expose_secret()
    }

    /// `Bearer <token>` (or `DPoP <token>` for a DPoP-bound token, which
    /// also needs [`dpop_proof`](Self::dpop_proof)) as a header value,
    /// marked sensitive (so hyper and reqwest leave it out of their debug
    /// output). Cloning it does not copy the token.
    pub fn authorization_header(&self) -> HeaderValue {
        self.0.header.clone()
    }

    /// The clock the token's deadline (and its DPoP proofs' `iat`) is read on.
    #[cfg(feature = "api")]
    pub(crate) fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// The key a DPoP-bound token is bound to; `None` for a bearer token.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.0.dpop.as_ref()
    }

    /// The `DPoP` header value for one request with this token (RFC 9449
    /// §7.1: `method`, `url`, `ath`, and the last nonce `url`'s origin
    /// sent); `None` for a bearer token. Make one per request: a resource
    /// server refuses a proof it has seen.
    ///
    /// # Errors
    /// [`Error::Config`] when the proof cannot be signed (no randomness).
    pub fn dpop_proof(&self, method: &reqwest::Method, url: &url::Url) -> Result<Option<HeaderValue>, Error> {
        let Some(key) = &self.0.dpop else { return Ok(None) };
        let proof = key
            .proof(method.as_str(), url, Some(self.expose_secret()), &self.0.clock)
            .map_err(|e| Error::Config(crate::error::ConfigError::ClientKey(e)))?;
        let mut value = HeaderValue::try_from(proof.expose_secret())
            .map_err(|_| Error::malformed("a DPoP proof is not a header value"))?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// The token type as the server sent it (`Bearer` or `DPoP`, any case).
    pub fn token_type(&self) -> &str {
        &self.0.token_type
    }

    /// The scopes the server granted (empty if it did not say).
    pub fn scopes(&self) -> &Scopes {
        self.0.scopes.get_or_init(|| self.0.granted.as_deref().map(Scopes::from_granted).unwrap_or_default())
    }

    /// When the token expires, as an [`Instant`] (mapped from the token's
    /// clock when it was made).
    pub fn expires_at(&self) -> Instant {
        self.0.expires_at
    }

    /// When the response carrying the token arrived, as an [`Instant`].
    pub fn received_at(&self) -> Instant {
        self.0.received_at
    }

    /// When the token expires on the wall clock (of the token's clock): what
    /// to persist, and what still holds after the machine was suspended.
    pub fn expiry(&self) -> SystemTime {
        UNIX_EPOCH + self.0.expires.since_epoch()
    }

    /// Life left now (zero once expired), by whichever of the monotonic and
    /// the wall clock says less, read from the token's clock.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use filevine_identity_ext::grant::TokenSet;
    ///
    /// let response = serde_json::from_value(serde_json::json!({
    ///     "access_token": "at", "token_type": "Bearer", "expires_in": 60,
    /// })).unwrap();
    /// let set = TokenSet::from_response(response, Instant::now()).unwrap();
    /// assert!(set.access_token.expires_in() <= Duration::from_secs(60));
    /// assert!(!set.access_token.is_expired());
    /// ```
    pub fn expires_in(&self) -> Duration {
        self.0.clock.now().until(self.0.expires)
    }

    /// Whether the token has expired, by the monotonic or the wall clock (a
    /// machine that was suspended past the expiry counts it as expired).
    pub fn is_expired(&self) -> bool {
        self.expires_in().is_zero()
    }

    /// Whether `self` and `other` are the same token (not just equal values).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The whole life the server gave the token, from its response to its
    /// expiry (kept across a token store: a restored token has the lifetime
    /// it was issued with, not what was left when it was read).
    ///
    /// ```no_run
    /// # async fn run(provider: filevine_identity_ext::TokenProvider) -> Result<(), filevine_identity_ext::Error> {
    /// let token = provider.token().await?;
    /// // A margin that never makes every call refresh: half the lifetime.
    /// let margin = std::time::Duration::from_secs(300).min(token.lifetime() / 2);
    /// # drop(margin);
    /// # Ok(()) }
    /// ```
    pub fn lifetime(&self) -> Duration {
        self.0.lifetime
    }

    /// The granted scope list as the server sent it.
    pub(crate) fn granted(&self) -> Option<&str> {
        self.0.granted.as_deref()
    }

    /// The token's deadline as other processes reading the same monotonic
    /// clock can use it (stored beside the wall-clock expiry).
    pub(crate) fn shared_deadline(&self) -> Option<SharedDeadline> {
        self.0.clock.share(self.0.expires)
    }

    /// A token read back from a store: it was issued with `lifetime` and
    /// expires `expiry` after the Unix epoch on `clock`'s wall clock, and at
    /// `shared` when that is on `clock`'s monotonic clock. `None` once
    /// either has passed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore(
        secret: SecretString,
        token_type: &str,
        granted: Option<String>,
        clock: &Clock,
        expiry: Duration,
        lifetime: Duration,
        dpop: Option<&DpopKey>,
        shared: Option<SharedDeadline>,
    ) -> Result<Option<Self>, Error> {
        let now = clock.now();
        // Never more life than it was issued with (a clock set back), nor
        // more than the writer's monotonic deadline when this process reads
        // the same monotonic clock (a wall clock set back between the write
        // and now); the monotonic clock counts the rest from now.
        let on_monotonic = shared.and_then(|shared| clock.left_of(shared, now)).unwrap_or(Duration::MAX);
        let left = expiry.saturating_sub(now.since_epoch()).min(lifetime).min(on_monotonic);
        if left.is_zero() {
            return Ok(None);
        }
        Self::with_deadline(secret, token_type.to_owned(), granted, clock, now.checked_plus(left), lifetime, dpop)
            .map(Some)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[REDACTED]")
            .field("token_type", &self.0.token_type)
            .field("scopes", &self.scopes().to_string())
            .field("expires_in", &self.expires_in())
            .finish()
    }
}

/// What a token response carried: the access token and, for the
/// authorization code and refresh token grants, a refresh token and an ID
/// token.
///
/// Hand a token set with a refresh token to
/// [`TokenProviderBuilder::token_set`](crate::provider::TokenProviderBuilder::token_set)
/// and the provider keeps the access token fresh, rotating the refresh token.
#[derive(Clone, Debug)]
pub struct TokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token, if the server issued one.
    pub refresh_token: Option<RefreshToken>,
    /// The ID token, if `openid` was requested.
    pub id_token: Option<IdToken>,
}

impl TokenSet {
    /// Builds a token set from a generated [`TokenResponse`] that arrived at
    /// `received_at`, with the default [`ExpiryPolicy`].
    ///
    /// # Errors
    /// [`Error::MalformedResponse`] for a token type other than Bearer, an
    /// unusable `expires_in`, or an access token that cannot be a header.
    /// The token's expiry is on the system clock.
    pub fn from_response(response: TokenResponse, received_at: Instant) -> Result<Self, Error> {
        let clock = Clock::System;
        let received = clock.now().minus(received_at.elapsed());
        Self::from_response_with(response, &clock, received, &ExpiryPolicy::default(), None)
    }

    /// [`from_response`](Self::from_response) for a response that arrived at
    /// `received` on `clock`.
    pub(crate) fn from_response_with(
        response: TokenResponse,
        clock: &Clock,
        received: Stamp,
        policy: &ExpiryPolicy,
        dpop: Option<&DpopKey>,
    ) -> Result<Self, Error> {
        let lifetime = policy.lifetime(response.expires_in.as_ref())?;
        let refresh_token = response.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::from_secret);
        let id_token = response.id_token.filter(|t| !t.is_empty()).map(IdToken::from_secret);
        let access_token = AccessToken::new(
            response.access_token,
            response.token_type,
            response.scope,
            clock,
            received,
            lifetime,
            dpop,
        )?;
        Ok(Self { access_token, refresh_token, id_token })
    }
}

/// How `expires_in` becomes a lifetime.
///
/// - a positive number, or a string holding one (`"1200"`), is the lifetime
///   in seconds;
/// - missing: [`ExpiryPolicy::assumed_lifetime`] (default 5 minutes; RFC
///   6749 makes `expires_in` optional);
/// - zero or negative: an error, a token that is already expired is of no use;
/// - larger than [`ExpiryPolicy::max_lifetime`] (default 24 hours): capped
///   there, so a server bug cannot make the SDK keep a token for years;
/// - anything else (`"soon"`, `"12.5"`): an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Lifetime assumed when the response has no `expires_in`.
    pub assumed_lifetime: Duration,
    /// Longest lifetime believed.
    pub max_lifetime: Duration,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self { assumed_lifetime: Duration::from_secs(300), max_lifetime: Duration::from_secs(24 * 3600) }
    }
}

impl ExpiryPolicy {
    /// The lifetime a response's `expires_in` means under this policy.
    ///
    /// # Errors
    /// [`Error::MalformedResponse`] for zero, negative or non-numeric values.
    pub fn lifetime(&self, expires_in: Option<&TokenResponseExpiresIn>) -> Result<Duration, Error> {
        let seconds: i64 = match expires_in {
            None => return Ok(self.assumed_lifetime),
            Some(TokenResponseExpiresIn::Int64(seconds)) => *seconds,
            Some(TokenResponseExpiresIn::String(text)) => text.trim().parse().map_err(|_| {
                Error::malformed(format!("expires_in {:?} is not a whole number of seconds", redact(text, 40)))
            })?,
        };
        if seconds <= 0 {
            return Err(Error::malformed(format!("expires_in is {seconds}: the token is already expired")));
        }
        let lifetime = Duration::from_secs(seconds.unsigned_abs());
        if lifetime > self.max_lifetime {
            tracing::warn!(
                expires_in = seconds,
                capped_at = self.max_lifetime.as_secs(),
                "token lifetime is implausibly long; capping it"
            );
            return Ok(self.max_lifetime);
        }
        Ok(lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(value: Option<TokenResponseExpiresIn>) -> Result<Duration, Error> {
        ExpiryPolicy::default().lifetime(value.as_ref())
    }

    #[test]
    fn expires_in_as_number_or_numeric_string() {
        assert_eq!(lifetime(Some(TokenResponseExpiresIn::Int64(1200))).unwrap(), Duration::from_secs(1200));
        assert_eq!(lifetime(Some(TokenResponseExpiresIn::String(" 1200 ".into()))).unwrap(), Duration::from_secs(1200));
    }

    #[test]
    fn missing_expires_in_uses_the_assumed_lifetime() {
        assert_eq!(lifetime(None).unwrap(), Duration::from_secs(300));
    }

    #[test]
    fn zero_negative_and_garbage_are_errors() {
        for value in [
            TokenResponseExpiresIn::Int64(0),
            TokenResponseExpiresIn::Int64(-5),
            TokenResponseExpiresIn::String("-1".into()),
            TokenResponseExpiresIn::String("soon".into()),
            TokenResponseExpiresIn::String("12.5".into()),
            TokenResponseExpiresIn::String(String::new()),
        ] {
            let err = lifetime(Some(value.clone())).unwrap_err();
            assert!(matches!(err, Error::MalformedResponse { .. }), "{value:?}: {err}");
            assert!(err.to_string().contains("expires_in"), "{err}");
        }
    }

    #[test]
    fn absurd_lifetimes_are_capped() {
        assert_eq!(lifetime(Some(TokenResponseExpiresIn::Int64(i64::MAX))).unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            lifetime(Some(TokenResponseExpiresIn::String("99999999999".into()))).unwrap(),
            Duration::from_secs(86_400)
        );
    }

    fn response(token_type: &str, access: &str) -> TokenResponse {
        serde_json::from_value(serde_json::json!({
            "access_token": access, "token_type": token_type, "expires_in": 60, "scope": "a b", "refresh_token": "rt",
        }))
        .unwrap()
    }

    #[test]
    fn token_set_from_response() {
        let now = Instant::now();
        let set = TokenSet::from_response(response("bearer", "at"), now).unwrap();
        assert_eq!(set.access_token.expose_secret(), "at");
        assert_eq!(set.access_token.authorization_header(), "Bearer at");
        assert!(set.access_token.authorization_header().is_sensitive());
        assert_eq!(set.access_token.lifetime(), Duration::from_secs(60));
        // Mapped from the clock the token was made on: to the millisecond.
        assert_eq!(set.access_token.expires_at().duration_since(now).as_millis().div_ceil(1000), 60);
        assert_eq!(set.access_token.expires_at() - set.access_token.received_at(), Duration::from_secs(60));
        assert_eq!(set.access_token.scopes().len(), 2);
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt");
    }

    #[test]
    fn bad_token_responses_are_errors() {
        let err = TokenSet::from_response(response("mac", "at"), Instant::now()).unwrap_err();
        assert!(err.to_string().contains("neither Bearer nor DPoP"), "{err}");
        // A DPoP token is usable only with the key its proof was signed with.
        let err = TokenSet::from_response(response("DPoP", "at"), Instant::now()).unwrap_err();
        assert!(err.to_string().contains("no DPoP proof was sent"), "{err}");
        let err = TokenSet::from_response(response("Bearer", "bad\ntoken"), Instant::now()).unwrap_err();
        assert!(err.to_string().contains("not allowed in an HTTP header"), "{err}");
        assert!(!err.to_string().contains("bad"), "{err}");
        let err = TokenSet::from_response(response("Bearer", ""), Instant::now()).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn debug_is_redacted() {
        let set = TokenSet::from_response(response("Bearer", "SENTINEL-at-99"), Instant::now()).unwrap();
        let shown = format!("{set:?} {:?}", IdToken::new("SENTINEL-id"));
        assert!(!shown.contains("SENTINEL"), "{shown}");
        assert!(shown.contains("expires_in"), "{shown}");
    }
}
