//! The provider's other endpoints: userinfo, revocation (RFC 7009),
//! introspection (RFC 7662) and the end-session URL.

use std::fmt;

use filevine_identity::types::{IntrospectionRequest, RevocationRequest};
use filevine_identity::{ClientOptions, SecretString, operations};
use url::Url;

use super::discovery::DiscoveryError;
use super::{CsrfToken, OidcClient, SignInError, TokenIntrospection, UserInfo};
use crate::grant::{AccessToken, IdToken, RefreshToken};
use crate::redact::endpoint_only;

/// Where to send the user to sign out of Filevine, and the `state` to
/// expect back at the post-logout redirect URI.
pub struct EndSessionRequest {
    /// Redirect the user's browser here. It carries the ID token as
    /// `id_token_hint`, so it is not printed by `Debug`.
    pub url: Url,
    /// Compare with the `state` the post-logout redirect brings back.
    pub state: CsrfToken,
}

impl fmt::Debug for EndSessionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndSessionRequest")
            .field("endpoint", &endpoint_only(&self.url))
            .field("state", &self.state)
            .finish()
    }
}

impl OidcClient {
    /// The user's claims from the userinfo endpoint, checked to be about
    /// `subject` (the ID token's `sub`).
    ///
    /// # Errors
    /// [`SignInError::Discovery`] without a userinfo endpoint,
    /// [`SignInError::Token`] when the request fails (401 for an expired
    /// token), [`SignInError::SubjectMismatch`] for another user's claims.
    pub async fn userinfo(&self, access_token: &AccessToken, subject: &str) -> Result<UserInfo, SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.userinfo_endpoint().ok_or(DiscoveryError::MissingEndpoint("userinfo_endpoint"))?.clone();
        let options = ClientOptions::new().endpoint(&operations::GET_USERINFO, endpoint);
        // A DPoP-bound token goes out only with a proof for this request.
        let secret = SecretString::from(access_token.expose_secret());
        let options = match access_token.dpop_key() {
            Some(key) => self.with_proofs(options.dpop_token(secret), Some(key)),
            None => options.bearer(secret),
        };
        let client = self.wire(&metadata, options)?;
        let timeout = self.inner.request_timeout;
        let info = match client.get_userinfo().await {
            Ok(response) => UserInfo::from(response.into_inner()),
            Err(e) => {
                return Err(crate::http::map_status_error(e, timeout)
                    .await
                    .scrub(&[access_token.expose_secret()])
                    .into());
            }
        };
        if info.sub != subject {
            return Err(SignInError::SubjectMismatch { expected: subject.to_owned(), found: info.sub });
        }
        Ok(info)
    }

    /// Revokes a refresh token (RFC 7009), e.g. at sign-out.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] without a revocation endpoint,
    /// [`SignInError::Token`] when the provider refuses.
    pub async fn revoke_refresh_token(&self, token: &RefreshToken) -> Result<(), SignInError> {
        self.revoke(token.expose_secret(), "refresh_token").await
    }

    /// Revokes an access token (RFC 7009).
    ///
    /// # Errors
    /// As [`OidcClient::revoke_refresh_token`].
    pub async fn revoke_access_token(&self, token: &AccessToken) -> Result<(), SignInError> {
        self.revoke(token.expose_secret(), "access_token").await
    }

    /// Asks the provider whether `token` (an access or refresh token this
    /// application received) is active, and for whom and with which scopes
    /// it was issued (RFC 7662), authenticating as this client. For a
    /// resource server that checks the bearer tokens it receives.
    ///
    /// The token goes to the discovered introspection endpoint only; it
    /// never appears in an error.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] without an introspection endpoint,
    /// [`SignInError::Token`] when the provider refuses the client (401
    /// `invalid_client`) or the request fails.
    pub async fn introspect(&self, token: &str) -> Result<TokenIntrospection, SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.introspection_endpoint().ok_or(DiscoveryError::MissingEndpoint("introspection_endpoint"))?.clone();
        let method = self.auth_method(&metadata)?;
        let request = IntrospectionRequest {
            token: SecretString::from(token),
            token_type_hint: None,
            client_id: self.form_client_id(method),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
        };
        let client = self
            .wire(&metadata, self.client_auth(method, &metadata)?.endpoint(&operations::INTROSPECT_TOKEN, endpoint))?;
        match client.introspect_token(&request).await {
            Ok(answer) => Ok(answer.into_inner().into()),
            Err(e) => Err(self.token_call_error(e, token).await),
        }
    }

    /// The URL that signs the user out at Filevine (RP-initiated logout)
    /// and comes back to the post-logout redirect URI, if one is
    /// configured, with the returned `state`.
    ///
    /// # Errors
    /// [`SignInError::Discovery`] when the provider has no end-session
    /// endpoint.
    pub async fn end_session_url(&self, id_token_hint: Option<&IdToken>) -> Result<EndSessionRequest, SignInError> {
        let metadata = self.metadata().await?;
        let mut url =
            metadata.end_session_endpoint().ok_or(DiscoveryError::MissingEndpoint("end_session_endpoint"))?.clone();
        let state = CsrfToken::generate()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", self.inner.client_id.as_str());
            if let Some(hint) = id_token_hint {
                query.append_pair("id_token_hint", hint.expose_secret());
            }
            if let Some(uri) = &self.inner.post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri.as_str());
            }
            query.append_pair("state", state.expose_secret());
        }
        Ok(EndSessionRequest { url, state })
    }

    pub(super) async fn revoke(&self, token: &str, hint: &str) -> Result<(), SignInError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.revocation_endpoint().ok_or(DiscoveryError::MissingEndpoint("revocation_endpoint"))?.clone();
        let method = self.auth_method(&metadata)?;
        let request = RevocationRequest {
            token: SecretString::from(token),
            token_type_hint: Some(hint.to_owned()),
            client_id: self.form_client_id(method),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
        };
        let client =
            self.wire(&metadata, self.client_auth(method, &metadata)?.endpoint(&operations::REVOKE_TOKEN, endpoint))?;
        if let Err(e) = client.revoke_token(&request).await {
            return Err(self.token_call_error(e, token).await);
        }
        tracing::debug!(token_type = hint, "revoked a token");
        Ok(())
    }
}
