//! What an [`OidcClient`](crate::oidc::OidcClient) plugs into the providers
//! it builds, and what they hand back: the revocation of what a provider
//! discards, and the check of the ID tokens refreshes bring.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, RefusedIdToken};
use crate::grant::{AccessToken, IdToken, RefreshToken};

/// What [`TokenProvider::forget`](crate::provider::TokenProvider::forget)
/// removed: the tokens to revoke.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Forgotten {
    /// The latest access token, if one was held or stored.
    pub access_token: Option<AccessToken>,
    /// The latest refresh token, if one was held or stored.
    pub refresh_token: Option<RefreshToken>,
}

/// Revokes what a provider discarded; errors are the callee's to log.
pub(crate) type Revoke = Arc<dyn Fn(Forgotten) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the check is given: the ID token the provider held before (the
/// sign-in's, or the last one that passed), the one the refresh brought,
/// and the access token issued with it (`at_hash`).
#[cfg_attr(not(feature = "oidc"), allow(dead_code))]
pub(crate) struct Received {
    pub(crate) previous: Option<IdToken>,
    pub(crate) id_token: IdToken,
    pub(crate) access_token: AccessToken,
}

/// Why a refreshed ID token did not pass.
#[cfg_attr(not(feature = "oidc"), allow(dead_code))]
pub(crate) enum Verdict {
    /// It fails a check: the session ends.
    Refused(RefusedIdToken),
    /// It could not be checked (the keys or the metadata could not be
    /// fetched): the refresh token is kept, the access token is not used.
    Unverified(Error),
}

/// Checks the ID token of a refresh response.
pub(crate) type CheckIdToken =
    Arc<dyn Fn(Received) -> Pin<Box<dyn Future<Output = Result<(), Verdict>> + Send>> + Send + Sync>;
