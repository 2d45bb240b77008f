//! The store key of a provider whose credentials name it: the same
//! credentials against the same authority and scopes share one entry.

use crate::config::region::Region;
use crate::grant::{ClientId, CredentialSource, Credentials, Grant};
use crate::store::StoreKey;

/// The key a PAT or client-credentials provider stores its token under:
/// the same credentials against the same authority and scopes share it.
/// `None` for a refresh token (it changes with every refresh).
/// A source's credentials change: its key comes from its name.
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
