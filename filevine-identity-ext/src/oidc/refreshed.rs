//! The check of an ID token a refresh brings (OpenID Connect Core §12.2),
//! which providers an [`OidcClient`] built run before a refresh counts.
//!
//! The new token is verified as at sign-in (signature with the JWKS,
//! issuer, audience and `azp`, expiry, `at_hash` against the access token
//! it came with), without a nonce of its own; then compared with the ID
//! token the session held: the same `iss` and `sub`, the same `auth_time`
//! when both carry one, and a `nonce` only if it is the sign-in's.

use super::id_token::{self, IdTokenError};
use super::{OidcClient, SignInError};
use crate::error::RefusedIdToken;
use crate::provider::{Received, Verdict};

impl OidcClient {
    /// Checks `received`; see the module documentation.
    pub(super) async fn check_refreshed(&self, received: Received) -> Result<(), Verdict> {
        let metadata =
            self.metadata().await.map_err(|error| Verdict::Unverified(super::session::discovery_failure(error)))?;
        let checks =
            super::client::Checks { access_token: Some(received.access_token.expose_secret()), ..Default::default() };
        let claims = match self.verify_with(&metadata, &received.id_token, checks).await {
            Ok(claims) => claims,
            Err(SignInError::IdToken(error)) => return Err(judge(error)),
            Err(other) => return Err(Verdict::Unverified(super::session::resolve_failure(other))),
        };
        let Some(previous) = &received.previous else { return Ok(()) };
        // The previous token passed these checks when it was accepted; it
        // is only read here.
        let previous = id_token::parse(previous.expose_secret()).map_err(judge)?;
        let text = |name: &str| previous.claim(name).and_then(serde_json::Value::as_str).map(str::to_owned);
        if let Some(expected) = text("iss")
            && expected != claims.iss
        {
            return Err(Verdict::Refused(RefusedIdToken::OtherIssuer { expected, found: shown(&claims.iss) }));
        }
        if let Some(expected) = text("sub")
            && expected != claims.sub
        {
            return Err(Verdict::Refused(RefusedIdToken::OtherSubject { expected, found: shown(&claims.sub) }));
        }
        let auth_time = previous.claim("auth_time").and_then(serde_json::Value::as_u64);
        if let (Some(expected), Some(found)) = (auth_time, claims.auth_time)
            && expected != found
        {
            return Err(invalid(format!("its auth_time {found} is not the sign-in's {expected}")));
        }
        let parsed = id_token::parse(received.id_token.expose_secret()).map_err(judge)?;
        if let Some(nonce) = parsed.claim("nonce")
            && Some(nonce) != previous.claim("nonce")
        {
            return Err(invalid("it carries a nonce that is not the sign-in's".to_owned()));
        }
        Ok(())
    }
}

/// What a failed verification means for the session: a fetch that failed
/// says nothing about the token; anything else refuses it.
fn judge(error: IdTokenError) -> Verdict {
    Verdict::Refused(match error {
        IdTokenError::Keys { source, .. } => return Verdict::Unverified(source),
        IdTokenError::WrongIssuer { expected, found } => RefusedIdToken::OtherIssuer { expected, found },
        IdTokenError::WrongAudience { expected, found } => RefusedIdToken::OtherAudience { expected, found },
        IdTokenError::WrongAuthorizedParty { expected, found } => {
            RefusedIdToken::OtherAudience { expected, found: found.into_iter().collect() }
        }
        other => RefusedIdToken::Invalid { reason: other.to_string() },
    })
}

fn invalid(reason: String) -> Verdict {
    Verdict::Refused(RefusedIdToken::Invalid { reason })
}

/// A claim from a token, made printable and cut short for an error.
fn shown(text: &str) -> String {
    crate::redact::shown(text, 200)
}
