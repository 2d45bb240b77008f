//! [`TokenIntrospection`]: what the provider says about a token it issued
//! (RFC 7662), for resource servers that check the bearer tokens they
//! receive.

use std::time::{Duration, SystemTime};

use filevine_identity::types::{IntrospectionResponse, IntrospectionResponseAud};

/// The provider's answer about a token ([`OidcClient::introspect`](super::OidcClient::introspect)).
///
/// An unknown, expired or revoked token is simply not active: everything
/// else is then empty. [`TokenIntrospection::is_active_at`] also checks the
/// expiry against a clock, so an answer kept for a while does not outlive
/// the token.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use filevine_identity_ext::oidc::TokenIntrospection;
///
/// let answer = TokenIntrospection::inactive();
/// assert!(!answer.is_active_at(SystemTime::now()));
/// assert!(answer.scopes.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenIntrospection {
    /// Whether the provider considers the token valid now.
    pub active: bool,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// The client it was issued to.
    pub client_id: Option<String>,
    /// The user it was issued for.
    pub subject: Option<String>,
    /// A human-readable name of that user.
    pub username: Option<String>,
    /// When it expires.
    pub expires_at: Option<SystemTime>,
    /// When it was issued.
    pub issued_at: Option<SystemTime>,
    /// Its audiences.
    pub audiences: Vec<String>,
    /// Who issued it.
    pub issuer: Option<String>,
    /// Every other member of the answer (Filevine's `tenant`, …).
    pub additional: serde_json::Map<String, serde_json::Value>,
}

impl TokenIntrospection {
    /// The answer for a token that is not active.
    pub fn inactive() -> Self {
        Self {
            active: false,
            scopes: Vec::new(),
            client_id: None,
            subject: None,
            username: None,
            expires_at: None,
            issued_at: None,
            audiences: Vec::new(),
            issuer: None,
            additional: serde_json::Map::new(),
        }
    }

    /// Active, and not past its expiry at `now`.
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        self.active && self.expires_at.is_none_or(|at| now < at)
    }
}

/// Seconds since the epoch as a time; negative or absurd values are dropped.
fn epoch(seconds: Option<i64>) -> Option<SystemTime> {
    let seconds = u64::try_from(seconds?).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

impl From<IntrospectionResponse> for TokenIntrospection {
    fn from(answer: IntrospectionResponse) -> Self {
        // RFC 7662 §2.2: when `active` is false the other members say
        // nothing about a valid token; don't surface them.
        if !answer.active {
            return Self::inactive();
        }
        Self {
            active: true,
            scopes: answer.scope.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
            client_id: answer.client_id,
            subject: answer.sub,
            username: answer.username,
            expires_at: epoch(answer.exp),
            issued_at: epoch(answer.iat),
            audiences: match answer.aud {
                None => Vec::new(),
                Some(IntrospectionResponseAud::String(one)) => vec![one],
                Some(IntrospectionResponseAud::Array(many)) => many,
            },
            issuer: answer.iss,
            additional: answer.extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> TokenIntrospection {
        serde_json::from_str::<IntrospectionResponse>(json).unwrap().into()
    }

    #[test]
    fn active_answers_are_typed() {
        let answer = parse(
            r#"{"active": true, "scope": "openid  fv.api.gateway.access", "sub": "u1", "exp": 2000000000,
                "iat": 1000000000, "aud": "api", "tenant": "t1"}"#,
        );
        assert!(answer.is_active_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_999_999_999)));
        assert!(!answer.is_active_at(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000)), "at exp");
        assert_eq!(answer.scopes, ["openid", "fv.api.gateway.access"]);
        assert_eq!(answer.audiences, ["api"]);
        assert_eq!(answer.subject.as_deref(), Some("u1"));
        assert_eq!(answer.additional["tenant"], "t1");
    }

    #[test]
    fn inactive_answers_carry_nothing_and_bad_dates_are_dropped() {
        assert_eq!(parse(r#"{"active": false, "sub": "u1", "scope": "a"}"#), TokenIntrospection::inactive());
        let answer = parse(r#"{"active": true, "exp": -5}"#);
        assert_eq!(answer.expires_at, None);
        assert!(answer.is_active_at(SystemTime::now()), "no expiry: the provider's word");
    }
}
