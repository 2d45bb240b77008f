//! One token request of a refresh, with its retries: the credentials (or
//! what a credential source gives, once more after a refusal), a DPoP
//! proof when the tokens are bound, and the check of the ID token the
//! answer brings. The rotated refresh token is kept before it returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::Instrument as _;

use super::engine::Inner;
use super::flight::Fetched;
use super::link::StoreLink;
use super::sync::lock;
use crate::error::{ConfigError, Error};
use crate::grant::exchange;
use crate::grant::{ClientSecret, Grant};
use crate::jose::DpopKey;

impl Inner {
    /// The token request with retries. With a store, a retry of a
    /// refresh-token grant first reads the store: another replica may have
    /// rotated the token while this attempt failed. Returns what was
    /// fetched and whether it came from the identity provider (true) or the
    /// store (false).
    pub(super) async fn exchange_with_retries(&self, link: Option<&StoreLink>) -> Result<(Fetched, bool), Error> {
        let is_refresh = self.credentials.is_refresh();
        let fetched = self
            .retry
            .run(self.enforced_attempt_timeout, self.jitter, |attempt| async move {
                if attempt > 1
                    && is_refresh
                    && let Some(link) = link
                    && let Some(adopted) = Box::pin(self.read_and_adopt(link)).await?
                {
                    return Ok((adopted, false));
                }
                self.exchange_once(attempt).await.map(|fetched| (fetched, true))
            })
            .await?;
        Ok(fetched)
    }

    /// One token request. The rotated refresh token and the ID token are
    /// kept before this returns.
    pub(super) async fn exchange_once(&self, attempt: u32) -> Result<Fetched, Error> {
        let span = tracing::debug_span!("token_request", attempt);
        // As in `start_flight`: a disabled span is not entered at every poll,
        // and the request's future is awaited where it is made.
        if span.is_disabled() {
            self.exchange_once_inner(attempt).await
        } else {
            self.exchange_once_inner(attempt).instrument(span).await
        }
    }

    pub(super) async fn exchange_once_inner(&self, attempt: u32) -> Result<Fetched, Error> {
        // Read the refresh token per attempt: it is the latest one.
        let refresh_token = lock(&self.refresh_token).clone();
        if refresh_token.is_none()
            && self.credentials.is_refresh()
            && self.signed_out.load(std::sync::atomic::Ordering::Acquire)
        {
            // Signed out: the refresh token the provider was built with is
            // not to be sent again.
            return Err(match &self.store {
                Some(link) => Error::NotStored { key: link.key() },
                None => Error::SignedOut,
            });
        }
        // A stored session with nothing stored: nothing to send, so nothing
        // is built or discovered either.
        if refresh_token.is_none() && matches!(self.credentials.grant, Grant::StoredRefreshToken) {
            return Err(self.not_stored());
        }
        let wire = self.wire.get().await?;
        match &self.source {
            None => self.request_with(&self.credentials, wire, refresh_token.as_ref(), attempt).await,
            // Boxed: a path few providers take stays out of the common
            // request's future and its code.
            Some(source) => Box::pin(self.request_from_source(source, wire, refresh_token.as_ref(), attempt)).await,
        }
    }

    /// One token request with what `source` gives; exactly one more after
    /// a refusal.
    pub(super) async fn request_from_source(
        &self,
        source: &Arc<dyn crate::grant::CredentialSource>,
        wire: &super::wire::Ready,
        refresh_token: Option<&crate::grant::RefreshToken>,
        attempt: u32,
    ) -> Result<Fetched, Error> {
        let grant_type = self.credentials.grant_type();
        let candidates = source.credentials().await?;
        let first = candidates.first().ok_or(ConfigError::NoSourceCredentials)?;
        if !self.is_keyed_for(first) {
            // The source changed since the entry was chosen: its token
            // belongs under another key.
            return Err(Error::SourceChanged);
        }
        match self.request_with(first, wire, refresh_token, attempt).await {
            Err(error @ Error::InvalidCredentials { .. }) => {
                // Refused: asked again, the source may have a new value (a
                // rewritten file); else the older of a changeover. Exactly
                // one more request either way.
                source.refused();
                let again = source.credentials().await?;
                let retry = match again.first() {
                    Some(newer) if newer != first => Some(newer.clone()),
                    _ => candidates.get(1).cloned(),
                };
                let Some(retry) = retry else { return Err(error) };
                if !self.same_identity(first, &retry) {
                    // Its token would be saved under the entry of the
                    // identity the refresh started with: the caller
                    // (`fetch_sourced_through_store`) moves to its key first.
                    return Err(error);
                }
                tracing::info!(
                    grant_type,
                    source = %source.name(),
                    "the credentials were refused; retrying once with the source's other value"
                );
                self.request_with(&retry, wire, refresh_token, attempt).await
            }
            other => other,
        }
    }

    /// Whether the provider's entry is the one of `credentials` (always
    /// without a store).
    pub(super) fn is_keyed_for(&self, credentials: &crate::grant::Credentials) -> bool {
        match (&self.sourced_key, &self.store) {
            (Some(rule), Some(link)) => {
                rule.for_credentials(&self.region, credentials, self.scope.as_deref()) == Some(link.key())
            }
            _ => true,
        }
    }

    /// Whether a token for `retry` may stand where one for `first` was
    /// asked: always without a store; with one, when both are one client's
    /// secrets (a changeover) or name the same entry.
    pub(super) fn same_identity(&self, first: &crate::grant::Credentials, retry: &crate::grant::Credentials) -> bool {
        let Some(rule) = &self.sourced_key else { return true };
        if matches!(first.grant, Grant::ClientCredentials)
            && matches!(retry.grant, Grant::ClientCredentials)
            && first.client_id() == retry.client_id()
        {
            return true;
        }
        let key = |credentials| rule.for_credentials(&self.region, credentials, self.scope.as_deref());
        key(first) == key(retry)
    }

    /// One token request with `credentials`. The rotated refresh token and
    /// the ID token are kept before this returns.
    pub(super) async fn request_with(
        &self,
        credentials: &crate::grant::Credentials,
        wire: &super::wire::Ready,
        refresh_token: Option<&crate::grant::RefreshToken>,
        attempt: u32,
    ) -> Result<Fetched, Error> {
        let grant_type = credentials.grant_type();
        let make =
            || exchange::token_request(credentials, wire.form_secret.as_ref(), refresh_token, self.scope.as_deref());
        // The provider's own PAT or client credentials make the same form
        // every time; a refresh token or a source's credentials do not.
        let made;
        let request = if !credentials.is_refresh() && std::ptr::eq(credentials, &self.credentials) {
            wire.constant_request.get_or_init(make).as_ref()
        } else {
            made = make();
            made.as_ref()
        };
        let request = request.ok_or_else(|| self.not_stored())?;
        tracing::debug!(grant_type, attempt, authority = self.region.identity_url(), "requesting an access token");
        // Deadlines count from before the request left: never later than
        // the server's own clock started the lifetime.
        let sent_at = self.clock.now();
        let scrub = |error: Error| {
            let mut secrets = credentials.secrets();
            secrets.extend(wire.form_secret.as_ref().map(ClientSecret::expose_secret));
            if let Some(token) = refresh_token {
                secrets.push(token.expose_secret());
            }
            error.scrub(&secrets)
        };
        let mut dpop_key = self.dpop_key_for_request()?;
        let mut set = loop {
            let client = wire.client_for(dpop_key.as_ref(), &self.clock);
            let result = exchange::exchange(
                &client,
                request,
                credentials.is_refresh(),
                &self.expiry,
                &self.clock,
                self.request_timeout,
                dpop_key.as_ref(),
            )
            .await;
            match result {
                Ok(set) => break set,
                // A provider that requires DPoP (RFC 9449 §5) said so: once,
                // sign this request with a new key, and every later one.
                Err(error) if dpop_key.is_none() && error.demands_dpop() => {
                    tracing::info!(grant_type, "the identity provider requires DPoP; binding tokens to a new key");
                    self.dpop_demanded.store(true, Ordering::Relaxed);
                    dpop_key = self.dpop_key_for_request()?;
                }
                Err(error) => {
                    let error = scrub(error);
                    tracing::debug!(grant_type, attempt, %error, "token request failed");
                    return Err(error);
                }
            }
        };
        // Before anything of the answer is kept: a refused ID token ends
        // the session here.
        let held = self.check_id_token(&mut set, refresh_token).await?;
        if let Some(rotated) = set.refresh_token {
            // The token sent is spent once another replaced it: a stored set
            // that still holds it is older than this provider's.
            if let (Some(link), Some(sent)) = (&self.store, refresh_token)
                && *sent != rotated
            {
                link.spend(sent);
            }
            *lock(&self.refresh_token) = Some(rotated);
        }
        if dpop_key.is_some() {
            *lock(&self.dpop_key) = dpop_key;
        }
        if let Some(id_token) = set.id_token {
            *lock(&self.id_token) = Some(id_token);
        }
        // At INFO: one line per token the identity provider issued (a
        // sign-in's first, every refresh), what operators look for first.
        tracing::info!(
            grant_type,
            expires_in_s = set.access_token.lifetime().as_secs(),
            scopes = %set.access_token.scopes(),
            "received an access token"
        );
        let life = set.access_token.lifetime();
        Ok(Fetched { token: set.access_token, at: sent_at, life, held })
    }

    /// The key a token request signs its proof with: the one the refresh
    /// token is bound to, else (DPoP asked for or demanded) a new one, since
    /// the answer is bound to the key its proof was signed with.
    pub(super) fn dpop_key_for_request(&self) -> Result<Option<DpopKey>, Error> {
        let held = lock(&self.dpop_key).clone();
        Ok(match held {
            Some(key) => Some(key),
            None if self.dpop || self.dpop_demanded.load(Ordering::Relaxed) => {
                Some(DpopKey::generate().map_err(ConfigError::from)?)
            }
            None => None,
        })
    }

    /// The error for a refresh with nothing stored to refresh with.
    pub(super) fn not_stored(&self) -> Error {
        match &self.store {
            Some(link) => Error::NotStored { key: link.key() },
            None => Error::Config(ConfigError::NoStore),
        }
    }
}
