//! The authorization code flow with PKCE: the request that sends the user
//! to sign in, and the callback that completes it.

use std::time::Duration;

use filevine_identity::types::{AuthorizationCodeRequest, AuthorizationCodeRequestGrantType, TokenRequest};

use super::client::Checks;
use super::discovery::ProviderMetadata;
use super::{
    AuthorizationOptions, AuthorizationRequest, AuthorizationResponse, CsrfToken, IdTokenClaims, Nonce, OidcClient,
    PendingSignIn, PkceCodeVerifier, SignInError, SignedIn,
};
use crate::error::Error;
use crate::grant::{ClientSecret, ExpiryPolicy, IdToken, TokenSet};
use crate::redact::redact;

impl OidcClient {
    /// Starts a sign-in: the URL to redirect the user to and the
    /// [`PendingSignIn`] to keep server-side until the callback. Fresh
    /// `state`, `nonce` and PKCE verifier (S256) every time. When the scopes
    /// include `offline_access` and `options` sets no prompt, it sends
    /// `prompt=consent`, as OpenID Connect Core §11 requires for a refresh
    /// token.
    ///
    /// When the provider offers pushed authorization requests (RFC 9126),
    /// the parameters are pushed to it first, authenticated as this
    /// client, and the URL carries only `client_id` and the `request_uri`
    /// it answered (see
    /// [`OidcClientBuilder::pushed_authorization_requests`](super::OidcClientBuilder::pushed_authorization_requests)).
    ///
    /// # Errors
    /// [`SignInError::Discovery`] when the provider's metadata is unusable,
    /// [`SignInError::PushRequired`] when the provider requires a push this
    /// client cannot make, [`SignInError::Token`] when the push fails.
    pub async fn authorization_request(
        &self,
        options: AuthorizationOptions,
    ) -> Result<AuthorizationRequest, SignInError> {
        let metadata = self.metadata().await?;
        let inner = &self.inner;
        let mut pending = PendingSignIn {
            state: CsrfToken::generate()?,
            nonce: Nonce::generate()?,
            pkce_verifier: PkceCodeVerifier::generate()?,
            redirect_uri: inner.redirect_uri.clone(),
            scopes: inner.scopes.to_string(),
            issuer: metadata.issuer().to_owned(),
            client_id: inner.client_id.as_str().to_owned(),
            created_at: self.inner.clock.unix_seconds(),
            max_age: options.max_age,
            dpop_key: None,
            pushed: false,
        };
        let parameters = self.authorization_parameters(&pending, &options);
        let url = match self.push_endpoint(&metadata)? {
            Some(endpoint) => {
                let (url, key) = self.push(&metadata, endpoint, &parameters, &pending).await?;
                pending.dpop_key = key.map(super::signin::SignInKey);
                pending.pushed = true;
                url
            }
            None => {
                let mut url = metadata.authorization_endpoint().clone();
                url.query_pairs_mut().extend_pairs(&parameters);
                url
            }
        };
        tracing::debug!(scopes = %pending.scopes, "starting a sign-in");
        Ok(AuthorizationRequest { url, pending })
    }

    /// The parameters of an authorization request, in the order they are
    /// sent: fresh `state`, `nonce` and PKCE challenge, and the options.
    fn authorization_parameters(
        &self,
        pending: &PendingSignIn,
        options: &AuthorizationOptions,
    ) -> Vec<(&'static str, String)> {
        let inner = &self.inner;
        let challenge = pending.pkce_verifier.challenge();
        let mut parameters = vec![
            ("response_type", "code".to_owned()),
            ("client_id", inner.client_id.as_str().to_owned()),
            ("redirect_uri", inner.redirect_uri.as_str().to_owned()),
            ("scope", pending.scopes.clone()),
            ("state", pending.state.expose_secret().to_owned()),
            ("nonce", pending.nonce.expose_secret().to_owned()),
            ("code_challenge", challenge.as_str().to_owned()),
            ("code_challenge_method", challenge.method().to_owned()),
        ];
        // OpenID Connect Core §11: a request for offline_access (a refresh
        // token) must carry prompt=consent unless the caller chose another
        // prompt.
        match (&options.prompt, inner.scopes.contains("offline_access")) {
            (Some(prompt), _) => parameters.push(("prompt", prompt.clone())),
            (None, true) => parameters.push(("prompt", "consent".to_owned())),
            (None, false) => {}
        }
        if let Some(hint) = &options.login_hint {
            parameters.push(("login_hint", hint.clone()));
        }
        if let Some(max_age) = options.max_age {
            parameters.push(("max_age", max_age.to_string()));
        }
        parameters
    }

    /// Completes a sign-in from the callback (the URL the provider
    /// redirected to, or its query) and the saved [`PendingSignIn`]:
    /// checks `state` (constant time) and `iss`, turns a provider `error`
    /// into [`SignInError::Provider`], exchanges the code with the PKCE
    /// verifier and the client's credentials, and validates the ID token
    /// (signature, issuer, audience, expiry, nonce).
    ///
    /// # Errors
    /// One [`SignInError`] variant per cause; see its documentation.
    pub async fn complete_sign_in(&self, callback: &str, pending: PendingSignIn) -> Result<SignedIn, SignInError> {
        use tracing::Instrument as _;
        let span =
            tracing::info_span!("sign_in", client_id = self.inner.client_id.as_str(), outcome = tracing::field::Empty,);
        let result = self.complete_sign_in_inner(callback, pending).instrument(span.clone()).await;
        span.record("outcome", if result.is_ok() { "ok" } else { "refused" });
        result
    }

    pub(super) async fn complete_sign_in_inner(
        &self,
        callback: &str,
        pending: PendingSignIn,
    ) -> Result<SignedIn, SignInError> {
        let response = AuthorizationResponse::parse(callback)?;
        // The state first: nothing in a callback that is not this browser's
        // is worth acting on, not even its error.
        match &response.state {
            Some(state) if pending.state.matches(state) => {}
            // RFC 9126 §4: a pushed request the provider can no longer find
            // (expired, used) comes back without the state only it held.
            // Its error is still this sign-in's end, once the issuer
            // checks below pass; nothing is exchanged on it.
            None if pending.pushed => {
                if response.error.is_none() || response.code.is_some() {
                    return Err(SignInError::StateMismatch);
                }
            }
            _ => return Err(SignInError::StateMismatch),
        }
        let metadata = self.metadata().await?;
        self.check_pending(&pending, &metadata)?;
        match &response.iss {
            Some(iss) if iss != metadata.issuer() => {
                return Err(SignInError::IssuerMismatch {
                    expected: metadata.issuer().to_owned(),
                    found: crate::redact::shown(iss, 200),
                });
            }
            // RFC 9207 §2.4: a provider that says it sends `iss` always
            // does; a callback without it did not come from it.
            None if metadata.requires_iss_parameter() => return Err(SignInError::MissingIssuer),
            _ => {}
        }
        if let Some(error) = &response.error {
            return Err(SignInError::Provider {
                error: redact(error, 100),
                description: response.error_description.as_deref().map(|d| redact(d, 300)),
            });
        }
        let code = response.code.filter(|c| !c.is_empty()).ok_or(SignInError::MissingCode)?;
        let token_set = self.exchange_code(&metadata, code, &pending).await?;
        let id_token = token_set.id_token.as_ref().ok_or(SignInError::MissingIdToken)?;
        let checks = Checks {
            nonce: Some(&pending.nonce),
            access_token: Some(token_set.access_token.expose_secret()),
            max_age: pending.max_age,
        };
        let claims = self.verify_with(&metadata, id_token, checks).await?;
        tracing::info!(sub = %claims.sub, "signed in");
        Ok(SignedIn { token_set, claims })
    }

    /// Validates an ID token against the provider's keys and this client:
    /// signature, `iss`, `aud`/`azp`, `exp`/`iat`/`nbf` with the leeway,
    /// and the `nonce` when given. It knows no session, so it cannot tell
    /// whether the token is the signed-in user's: the ID tokens refreshes
    /// bring are checked against the sign-in's by the provider itself
    /// ([`OidcClient::token_provider`]).
    ///
    /// # Errors
    /// [`SignInError::IdToken`] naming the failed check, or
    /// [`SignInError::Discovery`].
    pub async fn verify_id_token(
        &self,
        id_token: &IdToken,
        nonce: Option<&Nonce>,
    ) -> Result<IdTokenClaims, SignInError> {
        let metadata = self.metadata().await?;
        self.verify_with(&metadata, id_token, Checks { nonce, ..Checks::default() }).await
    }

    pub(super) fn check_pending(
        &self,
        pending: &PendingSignIn,
        metadata: &ProviderMetadata,
    ) -> Result<(), SignInError> {
        if pending.client_id != self.inner.client_id.as_str() {
            return Err(SignInError::PendingMismatch {
                what: "client",
                expected: self.inner.client_id.to_string(),
                found: pending.client_id.clone(),
            });
        }
        if pending.issuer != metadata.issuer() {
            return Err(SignInError::PendingMismatch {
                what: "issuer",
                expected: metadata.issuer().to_owned(),
                found: pending.issuer.clone(),
            });
        }
        let age = Duration::from_secs(self.inner.clock.unix_seconds().saturating_sub(pending.created_at));
        if age > self.inner.sign_in_timeout {
            return Err(SignInError::Expired { age, limit: self.inner.sign_in_timeout });
        }
        Ok(())
    }

    pub(super) async fn exchange_code(
        &self,
        metadata: &ProviderMetadata,
        code: filevine_identity::SecretString,
        pending: &PendingSignIn,
    ) -> Result<TokenSet, SignInError> {
        let inner = &self.inner;
        let method = self.auth_method(metadata)?;
        let request: TokenRequest = AuthorizationCodeRequest {
            grant_type: AuthorizationCodeRequestGrantType::AuthorizationCode,
            code: code.clone(),
            redirect_uri: pending.redirect_uri.as_str().to_owned(),
            client_id: inner.client_id.as_str().to_owned(),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
            code_verifier: Some(pending.pkce_verifier.secret().clone()),
        }
        .into();
        let auth = self.client_auth(method, metadata)?;
        // A pushed request bound the code to the sign-in's key.
        let mut dpop = match &pending.dpop_key {
            Some(key) => Some(key.0.clone()),
            None => self.dpop_key(metadata)?,
        };
        // Not retried: a code is good for one exchange, and a retry after a
        // lost response would only earn `invalid_grant`. The one exception:
        // a provider that refuses the exchange for want of a DPoP proof has
        // refused it before using the code (oidc-provider checks the proof
        // first), so it is sent once more, with one.
        let result = loop {
            let client = self.wire(metadata, self.with_proofs(auth.clone(), dpop.as_ref()))?;
            let result = crate::grant::exchange::exchange(
                &client,
                &request,
                false,
                &ExpiryPolicy::default(),
                &inner.clock,
                inner.request_timeout,
                dpop.as_ref(),
            )
            .await;
            match result {
                Err(error) if self.note_dpop_demand(&error, dpop.is_some()) => dpop = self.dpop_key(metadata)?,
                result => break result,
            }
        };
        let secrets = [
            code.expose_secret(),
            pending.pkce_verifier.expose_secret(),
            inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret),
        ];
        match result.map_err(|e| e.scrub(&secrets)) {
            Ok(set) => Ok(set),
            Err(Error::InvalidCredentials { status, details }) if details.code.as_deref() == Some("invalid_grant") => {
                Err(SignInError::CodeRejected { status, details })
            }
            Err(other) => Err(other.into()),
        }
    }
}
