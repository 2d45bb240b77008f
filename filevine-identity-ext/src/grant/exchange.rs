//! One token request through the generated client: the form body for a
//! grant, and the answer as a [`TokenSet`] or an [`Error`].

use std::time::Duration;

use filevine_identity::Client;
use filevine_identity::types::{
    ClientCredentialsRequest, ClientCredentialsRequestGrantType, PersonalAccessTokenRequest,
    PersonalAccessTokenRequestGrantType, RefreshTokenRequest, RefreshTokenRequestGrantType, TokenRequest,
};

use crate::config::scope::Scopes;
use crate::error::Error;
use crate::grant::{ClientSecret, Credentials, ExpiryPolicy, Grant, RefreshToken, TokenSet};
use crate::jose::DpopKey;
use crate::time::Clock;

/// The `scope` of a PAT exchange that names none: the gateway's, spelled
/// once per process rather than per request.
static GATEWAY_SCOPE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| Scopes::gateway().to_string());

/// The form body for `credentials` (with `form_secret` when the client
/// secret goes in the form and the credentials do not carry it: an
/// `OidcClient`'s provider, which learns the method by discovery).
/// `refresh_token` is the current (possibly
/// rotated) refresh token for the refresh grant; `None` when a refresh grant
/// has no refresh token at all (nothing stored).
pub(crate) fn token_request(
    credentials: &Credentials,
    form_secret: Option<&ClientSecret>,
    refresh_token: Option<&RefreshToken>,
    scope: Option<&str>,
) -> Option<TokenRequest> {
    let client_id = credentials.client.as_ref().map(|c| c.id.as_str().to_owned());
    let client_secret =
        credentials.client.as_ref().and_then(|c| c.secret.as_ref()).or(form_secret).map(|s| s.secret().clone());
    let scope = scope.map(str::to_owned);
    Some(match &credentials.grant {
        Grant::PersonalAccessToken(pat) => PersonalAccessTokenRequest {
            grant_type: PersonalAccessTokenRequestGrantType::PersonalAccessToken,
            token: pat.secret().clone(),
            scope: scope.unwrap_or_else(|| GATEWAY_SCOPE.clone()),
            client_id,
            client_secret,
        }
        .into(),
        Grant::ClientCredentials => ClientCredentialsRequest {
            grant_type: ClientCredentialsRequestGrantType::ClientCredentials,
            client_id: client_id.unwrap_or_default(),
            client_secret,
            scope,
        }
        .into(),
        Grant::RefreshToken(initial) => RefreshTokenRequest {
            grant_type: RefreshTokenRequestGrantType::RefreshToken,
            refresh_token: refresh_token.unwrap_or(initial).secret().clone(),
            scope,
            client_id,
            client_secret,
        }
        .into(),
        // Only the credentials the source gives are sent.
        Grant::Sourced(_) => return None,
        Grant::StoredRefreshToken => RefreshTokenRequest {
            grant_type: RefreshTokenRequestGrantType::RefreshToken,
            refresh_token: refresh_token?.secret().clone(),
            scope,
            client_id,
            client_secret,
        }
        .into(),
    })
}

/// Sends one token request and turns the answer into a [`TokenSet`] or an
/// [`Error`]. `is_refresh` makes `invalid_grant` mean "sign in again".
/// `dpop`: the key the client's prover signs with, which a `DPoP` answer
/// is bound to.
pub(crate) async fn exchange(
    client: &Client,
    request: &TokenRequest,
    is_refresh: bool,
    policy: &ExpiryPolicy,
    clock: &Clock,
    attempt_timeout: Duration,
    dpop: Option<&DpopKey>,
) -> Result<TokenSet, Error> {
    match client.get_access_token(request).await {
        // Expiry counts from the moment the response arrived.
        Ok(response) => TokenSet::from_response_with(response.into_inner(), clock, clock.now(), policy, dpop),
        Err(error) => Err(crate::http::map_error(error, is_refresh, attempt_timeout).await),
    }
}
