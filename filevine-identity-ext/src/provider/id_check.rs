//! The ID tokens refreshes bring, for a provider an
//! [`OidcClient`](crate::oidc::OidcClient) built: the check it plugs in, and what
//! the provider does with its verdict.
//!
//! OpenID Connect Core §12.2: an ID token a refresh returns must be the
//! sign-in's user, issuer and client, and valid. The check runs after the
//! response arrived and before anything of it is kept, handed out or
//! stored:
//!
//! - passed: the refresh counts as usual;
//! - refused: nothing of it is kept. The refresh token it brought (else the
//!   one sent, still alive without rotation) is revoked, the provider is
//!   signed out, and the stored set is replaced by a deletion mark, so
//!   every replica is signed out too ([`Error::RefreshedIdTokenRefused`]);
//! - could not be checked (the provider's keys could not be fetched): the
//!   rotated refresh token is kept and stored, since losing it would end
//!   the session, but the access token is neither handed out nor stored.
//!   The caller gets the fetch's error; the next refresh brings another ID
//!   token to check.

use super::engine::Inner;
use super::hooks::{Forgotten, Received, Verdict};
use super::sync::lock;
use crate::error::{Error, RefusedIdToken};
use crate::grant::{RefreshToken, TokenSet};

impl Inner {
    /// Runs the check on `set`'s ID token, if it has one and the provider
    /// checks them. `Ok(None)`: use the set; `Ok(Some(error))`: keep its
    /// refresh token only and fail the refresh with `error`; `Err`: the
    /// session was ended (`sent` is the refresh token the request carried).
    pub(super) async fn check_id_token(
        &self,
        set: &mut TokenSet,
        sent: Option<&RefreshToken>,
    ) -> Result<Option<Error>, Error> {
        let (Some(check), Some(id_token)) = (&self.check_id_token, &set.id_token) else { return Ok(None) };
        let received = Received {
            previous: lock(&self.id_token).clone(),
            id_token: id_token.clone(),
            access_token: set.access_token.clone(),
        };
        match check(received).await {
            Ok(()) => Ok(None),
            Err(Verdict::Unverified(error)) => {
                tracing::warn!(
                    error = %crate::error::Report(&error),
                    "could not check the ID token a refresh brought; keeping its refresh token, not its access token"
                );
                set.id_token = None;
                Ok(Some(error))
            }
            Err(Verdict::Refused(reason)) => Err(self.end_after_refusal(set, sent, reason).await),
        }
    }

    /// Ends the session after a refused ID token: signs the provider out,
    /// revokes the live refresh token (which revokes its access tokens;
    /// RFC 7009 §2.1), or the access token when there is none, and marks
    /// the stored set deleted.
    async fn end_after_refusal(&self, set: &TokenSet, sent: Option<&RefreshToken>, reason: RefusedIdToken) -> Error {
        tracing::warn!(%reason, "a refresh brought an ID token that fails its checks; ending the session");
        let held = self.discard(None);
        let refresh_token = set.refresh_token.clone().or(held.refresh_token).or_else(|| sent.cloned());
        let access_token = refresh_token.is_none().then(|| set.access_token.clone());
        self.revoke_discarded(Forgotten { access_token, refresh_token }).await;
        if let Some(link) = &self.store {
            link.drop_unsaved();
            if let Err(error) = link.delete().await {
                tracing::warn!(
                    store = link.store.kind(),
                    key = %link.key(),
                    error = %crate::error::Report(&error),
                    "could not mark the stored token set deleted after a refused ID token"
                );
            }
        }
        Error::RefreshedIdTokenRefused { reason }
    }
}
