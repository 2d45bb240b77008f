//! After a sign-in: the token provider that keeps the tokens fresh (and
//! discovers the token endpoint on its first refresh), and signing out.

use std::sync::Arc;

use filevine_identity::operations;

use super::discovery::DiscoveryError;
use super::{OidcClient, SignInError};
use crate::error::Error;
use crate::grant::TokenSet;
use crate::provider::{TokenProvider, TokenProviderBuilder};
use crate::store::StoreKey;

impl OidcClient {
    /// A [`TokenProviderBuilder`] that starts from a sign-in's token set and
    /// refreshes at the discovered token endpoint with this client's
    /// credentials, storing each rotated refresh token. Add options
    /// (e.g. `background_refresh`) and `build()`.
    ///
    /// Every ID token a refresh brings is checked before anything of the
    /// refresh is used (OpenID Connect Core §12.2: valid, and the sign-in's
    /// user, issuer and client); one that fails ends the session
    /// ([`Error::RefreshedIdTokenRefused`]). The latest is
    /// [`TokenProvider::latest_id_token`].
    ///
    /// Sends nothing: the token endpoint and client authentication are
    /// discovered on the provider's first refresh (a discovery failure is
    /// that refresh's error).
    pub fn token_provider(&self, token_set: TokenSet) -> TokenProviderBuilder {
        self.refreshing_builder().token_set(token_set, self.inner.client_id.clone(), None)
    }

    /// A [`TokenProviderBuilder`] for a user's token set that lives in a
    /// [store](crate::store) under `key` (the user's session): after a
    /// restart or on another replica, the provider reads the refresh token
    /// from the store and refreshes at the discovered token endpoint with
    /// this client's credentials. Add `.store(…)` and `build()`; a call to
    /// `token()` with nothing stored is [`Error::NotStored`].
    ///
    /// ```no_run
    /// use filevine_identity_ext::store::{self, StoreKey};
    /// use filevine_identity_ext::OidcClient;
    ///
    /// # async fn run(oidc: OidcClient, session_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let store = store::open("redis://127.0.0.1:6379")?;
    /// let provider = oidc.stored_session(StoreKey::session(session_id)).store(store).build()?;
    /// let token = provider.token().await?;
    /// # drop(token);
    /// # Ok(()) }
    /// ```
    ///
    /// Sends nothing, as [`OidcClient::token_provider`]: a process that
    /// finds a valid token in the store never discovers, never builds a
    /// TLS client.
    pub fn stored_session(&self, key: StoreKey) -> TokenProviderBuilder {
        self.refreshing_builder().stored_session(self.inner.client_id.clone(), None).store_key(key)
    }

    /// Signs the provider's user out: forgets and deletes the stored token
    /// set ([`TokenProvider::forget`]), then revokes the refresh token and
    /// the access token it held (RFC 7009), so neither works anywhere any
    /// more. Follow with [`OidcClient::end_session_url`] to end the
    /// session at Filevine too.
    ///
    /// # Errors
    /// [`SignInError::Token`] when the store fails, or the first revocation
    /// that failed (the rest is still attempted).
    pub async fn sign_out(&self, provider: &TokenProvider) -> Result<(), SignInError> {
        let forgotten = provider.forget().await?;
        self.revoke_forgotten(&forgotten).await
    }

    /// Revokes the refresh token, and the access token unless it expired.
    pub(super) async fn revoke_forgotten(&self, forgotten: &crate::provider::Forgotten) -> Result<(), SignInError> {
        let refresh = match &forgotten.refresh_token {
            Some(token) => self.revoke_refresh_token(token).await,
            None => Ok(()),
        };
        let access = match &forgotten.access_token {
            Some(token) if !token.is_expired() => self.revoke_access_token(token).await,
            _ => Ok(()),
        };
        refresh.and(access)
    }

    /// A provider builder for this client's refresh grant: the HTTP client,
    /// and the discovered token endpoint and client authentication, found
    /// on the provider's first request (so a process whose store holds a
    /// valid token sends nothing, not even discovery).
    pub(super) fn refreshing_builder(&self) -> TokenProviderBuilder {
        let oidc = self.clone();
        let resolve: crate::provider::Resolve = Arc::new(move || {
            let oidc = oidc.clone();
            Box::pin(async move {
                let metadata = oidc.metadata().await.map_err(discovery_failure)?;
                let method = oidc.auth_method(&metadata).map_err(resolve_failure)?;
                let auth = oidc.client_auth(method, &metadata).map_err(resolve_failure)?;
                Ok(crate::provider::Resolved {
                    options: auth.endpoint(&operations::GET_ACCESS_TOKEN, metadata.token_endpoint().clone()),
                    form_secret: oidc.form_secret(method).cloned(),
                })
            })
        });
        let oidc = self.clone();
        let check: crate::provider::CheckIdToken = Arc::new(move |received| {
            let oidc = oidc.clone();
            Box::pin(async move { oidc.check_refreshed(received).await })
        });
        let builder = TokenProvider::builder()
            .region(self.inner.region.clone())
            .check_id_tokens(check)
            // A sign-in's DPoP key comes with its token set; this asks for
            // one for a stored session without a key.
            .dpop(self.uses_dpop())
            .shared_http(self.inner.http.clone())
            .resolve_with(resolve);
        // What a refresh receives after a sign-out is revoked, not dropped
        // alive.
        let oidc = self.clone();
        builder.revoke_discarded(Arc::new(move |forgotten| {
            let oidc = oidc.clone();
            Box::pin(async move {
                if let Err(error) = oidc.revoke_forgotten(&forgotten).await {
                    tracing::warn!(error = %crate::error::Report(&error), "could not revoke the tokens a refresh received after a sign-out");
                }
            })
        }))
    }
}

/// A discovery failure met by a provider's first refresh, as the provider's
/// error: the network or server error that stopped the fetch, or the
/// document's fault, named.
pub(super) fn discovery_failure(error: DiscoveryError) -> Error {
    match error {
        DiscoveryError::Fetch { source, .. } => source,
        other => Error::MalformedResponse {
            status: None,
            reason: format!("the discovery document cannot be used: {other}"),
            excerpt: String::new(),
            source: None,
        },
    }
}

/// The client-authentication choice of a provider's first refresh, as the
/// provider's error.
pub(super) fn resolve_failure(error: SignInError) -> Error {
    match error {
        SignInError::Config(config) => Error::Config(config),
        SignInError::Token(error) => error,
        SignInError::Discovery(error) => discovery_failure(error),
        other => {
            Error::MalformedResponse { status: None, reason: other.to_string(), excerpt: String::new(), source: None }
        }
    }
}
