//! The store key of a provider whose credentials name it: the same
//! credentials against the same authority and scopes share one entry.

use crate::config::region::Region;
use crate::grant::{ClientId, CredentialSource, Credentials, Grant};
use crate::store::StoreKey;

/// The key a PAT or client-credentials provider stores its token under:
/// the same credentials against the same authority and scopes share it.
/// `None` for a refresh token (it changes with every refresh).
/// A source's credentials are not read before the first request: until
/// then its key comes from its name, and [`SourcedKey`] keys each request
/// by the identity the source gives.
pub(crate) fn derived_key(
    region: &Region,
    credentials: &Credentials,
    source: Option<&dyn CredentialSource>,
    scope: Option<&str>,
) -> Option<StoreKey> {
    let named;
    let secret = match &credentials.grant {
        Grant::PersonalAccessToken(pat) => pat.expose_secret(),
        Grant::ClientCredentials => {
            let client = credentials.client.as_ref()?;
            match (&client.secret, &client.key) {
                (Some(secret), _) => secret.expose_secret(),
                (None, Some(key)) => {
                    named = key.identity();
                    &named
                }
                (None, None) => return None,
            }
        }
        Grant::Sourced(_) => {
            named = source?.name();
            &named
        }
        Grant::RefreshToken(_) | Grant::StoredRefreshToken => return None,
    };
    let client_id = credentials.client_id().map_or("", ClientId::as_str);
    Some(StoreKey::derived(region.identity_url(), credentials.grant_type(), client_id, scope.unwrap_or(""), secret))
}

/// How a provider whose credentials come from a source keys its entry: by
/// the identity the source gives now, so two deployments that mount
/// different secrets at the same path never share an entry, and a secret
/// that changes costs one exchange.
#[derive(Debug, Clone)]
pub(crate) enum SourcedKey {
    /// The digest of the credential and client id, as for fixed
    /// credentials.
    Derived,
    /// The application's store key (bound), joined with that digest.
    Named(StoreKey),
}

impl SourcedKey {
    /// The key for `credentials`, one value the source gave.
    pub(crate) fn for_credentials(
        &self,
        region: &Region,
        credentials: &Credentials,
        scope: Option<&str>,
    ) -> Option<StoreKey> {
        let identity = derived_key(region, credentials, None, scope)?;
        Some(match self {
            Self::Derived => identity,
            Self::Named(named) => named.joined(&identity),
        })
    }
}
