//! Grants: what a [`TokenProvider`](crate::provider::TokenProvider) exchanges for
//! tokens ([`Credentials`], one constructor per grant), the token request
//! built from them, and what comes back ([`AccessToken`], [`TokenSet`]).

use std::fmt;

use crate::config::env::{self, CLIENT_ID, CLIENT_KEY, CLIENT_KEY_ID, CLIENT_SECRET, Lookup, PAT};
use crate::error::ConfigError;
use crate::jose::ClientKey;

pub(crate) mod exchange;
pub(crate) mod source;
mod token;

pub use crate::secret::{ClientSecret, IdToken, PersonalAccessToken, RefreshToken};
pub use source::{CredentialSource, FileCredentials};
pub use token::{AccessToken, ExpiryPolicy, TokenSet};

/// An OAuth client id. Not a secret.
///
/// ```
/// use filevine_identity_ext::ClientId;
/// assert_eq!(ClientId::new("my-app").unwrap().as_str(), "my-app");
/// assert!(ClientId::new("  ").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Validates a client id: not empty, no whitespace at either end.
    ///
    /// # Errors
    /// [`ConfigError::InvalidClientId`] for an empty or padded id.
    pub fn new(id: impl Into<String>) -> Result<Self, ConfigError> {
        let id = id.into();
        if id.trim().is_empty() {
            return Err(ConfigError::InvalidClientId { given: id, reason: "is empty" });
        }
        if id.trim() != id {
            return Err(ConfigError::InvalidClientId { given: id, reason: "has leading or trailing whitespace" });
        }
        Ok(Self(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The credentials a [`TokenProvider`](crate::provider::TokenProvider) exchanges for
/// access tokens, one constructor per grant.
///
/// ```
/// use filevine_identity_ext::{ClientId, ClientSecret, Credentials, PersonalAccessToken};
///
/// # fn main() -> Result<(), filevine_identity_ext::ConfigError> {
/// // A PAT, sent with the integration's client id and secret in one form body.
/// let pat = Credentials::personal_access_token(PersonalAccessToken::new("fvpat_…")?)
///     .with_client(ClientId::new("my-integration")?, ClientSecret::new("…")?);
/// assert_eq!(pat.grant_type(), "personal_access_token");
///
/// let machine = Credentials::client_credentials(ClientId::new("svc")?, ClientSecret::new("…")?);
/// assert_eq!(machine.grant_type(), "client_credentials");
///
/// // Debug shows the shape, never a secret.
/// assert!(!format!("{pat:?}").contains("fvpat_"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) grant: Grant,
    pub(crate) client: Option<ClientAuth>,
}

/// The grant, without the client authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    PersonalAccessToken(PersonalAccessToken),
    ClientCredentials,
    RefreshToken(RefreshToken),
    /// A refresh token read from the provider's token store (a user's
    /// session, picked up by another replica or after a restart).
    StoredRefreshToken,
    /// A PAT or client credentials asked of a
    /// [`CredentialSource`] on each refresh; the `grant_type` it sends.
    Sourced(&'static str),
}

/// A client id with its secret (or, for a public client, without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientAuth {
    pub(crate) id: ClientId,
    pub(crate) secret: Option<ClientSecret>,
    /// `private_key_jwt` instead of a secret.
    pub(crate) key: Option<ClientKeyRef>,
}

impl ClientAuth {
    pub(crate) fn with_secret(id: ClientId, secret: Option<ClientSecret>) -> Self {
        Self { id, secret, key: None }
    }
}

/// A client key, or where to read it on the first request (building does
/// no I/O).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClientKeyRef {
    Loaded(ClientKey),
    File { path: std::path::PathBuf, kid: Option<String> },
}

impl ClientKeyRef {
    /// `FILEVINE_CLIENT_KEY` (a file, read on the first request that needs
    /// it) and `FILEVINE_CLIENT_KEY_ID`.
    pub(crate) fn from_env(lookup: Lookup<'_>) -> Option<Self> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        var(CLIENT_KEY).map(|path| Self::File { path: path.into(), kid: var(CLIENT_KEY_ID) })
    }

    /// The key, read now if it is a file.
    pub(crate) fn load(&self) -> Result<ClientKey, crate::jose::KeyError> {
        match self {
            Self::Loaded(key) => Ok(key.clone()),
            Self::File { path, kid } => {
                let key = ClientKey::from_file(path)?;
                match kid {
                    Some(kid) => key.with_key_id(kid.clone()),
                    None => Ok(key),
                }
            }
        }
    }

    /// What names the key without showing it (a store key's input): the
    /// file and key id, or the public key's digest.
    pub(crate) fn identity(&self) -> String {
        match self {
            Self::Loaded(key) => key.fingerprint(),
            Self::File { path, kid } => format!("{}#{}", path.display(), kid.as_deref().unwrap_or("")),
        }
    }
}

impl Credentials {
    /// Exchange a personal access token (`grant_type=personal_access_token`).
    pub fn personal_access_token(token: PersonalAccessToken) -> Self {
        Self { grant: Grant::PersonalAccessToken(token), client: None }
    }

    /// The client credentials grant: a machine identity.
    pub fn client_credentials(id: ClientId, secret: ClientSecret) -> Self {
        Self { grant: Grant::ClientCredentials, client: Some(ClientAuth::with_secret(id, Some(secret))) }
    }

    /// The refresh token grant. The provider stores the rotated refresh
    /// token from every response, so this is only the starting token.
    pub fn refresh_token(token: RefreshToken) -> Self {
        Self { grant: Grant::RefreshToken(token), client: None }
    }

    /// Sends the client id and secret with the grant (integrations send them
    /// with their PAT; confidential clients with their refresh token).
    #[must_use]
    pub fn with_client(mut self, id: ClientId, secret: ClientSecret) -> Self {
        self.client = Some(ClientAuth::with_secret(id, Some(secret)));
        self
    }

    /// Sends a client id without a secret (a public client's refresh).
    #[must_use]
    pub fn with_public_client(mut self, id: ClientId) -> Self {
        if !matches!(self.grant, Grant::ClientCredentials) {
            self.client = Some(ClientAuth::with_secret(id, None));
        }
        self
    }

    /// Every secret these credentials send, for scrubbing error text.
    /// The client credentials grant for a client that authenticates with
    /// a private key (`private_key_jwt`, RFC 7523) instead of a secret.
    ///
    /// ```
    /// use filevine_identity_ext::jose::ClientKey;
    /// use filevine_identity_ext::{ClientId, Credentials};
    ///
    /// # let jwk = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#;
    /// let key = ClientKey::from_jwk(jwk)?.with_key_id("2026-key")?;
    /// let credentials = Credentials::client_credentials_with_key(ClientId::new("my-service")?, key);
    /// assert_eq!(credentials.grant_type(), "client_credentials");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_credentials_with_key(id: ClientId, key: ClientKey) -> Self {
        let client = ClientAuth { id, secret: None, key: Some(ClientKeyRef::Loaded(key)) };
        Self { grant: Grant::ClientCredentials, client: Some(client) }
    }

    /// Names the confidential client a PAT or refresh-token grant goes
    /// with, authenticated by a private key instead of a secret.
    #[must_use]
    pub fn with_client_key(mut self, id: ClientId, key: ClientKey) -> Self {
        self.client = Some(ClientAuth { id, secret: None, key: Some(ClientKeyRef::Loaded(key)) });
        self
    }

    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut secrets = Vec::with_capacity(2);
        match &self.grant {
            Grant::PersonalAccessToken(pat) => secrets.push(pat.expose_secret()),
            Grant::RefreshToken(token) => secrets.push(token.expose_secret()),
            Grant::ClientCredentials | Grant::StoredRefreshToken | Grant::Sourced(_) => {}
        }
        if let Some(secret) = self.client.as_ref().and_then(|c| c.secret.as_ref()) {
            secrets.push(secret.expose_secret());
        }
        secrets
    }

    /// The `grant_type` these credentials send.
    pub fn grant_type(&self) -> &'static str {
        match self.grant {
            Grant::PersonalAccessToken(_) => "personal_access_token",
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken(_) | Grant::StoredRefreshToken => "refresh_token",
            Grant::Sourced(grant_type) => grant_type,
        }
    }

    /// Whether these credentials refresh a user's token set.
    pub(crate) fn is_refresh(&self) -> bool {
        matches!(self.grant, Grant::RefreshToken(_) | Grant::StoredRefreshToken)
    }

    /// The client id, if any.
    pub fn client_id(&self) -> Option<&ClientId> {
        self.client.as_ref().map(|c| &c.id)
    }

    /// Credentials from the environment: [`PAT`] (with [`CLIENT_ID`]
    /// and [`CLIENT_SECRET`] if both are set), or else client credentials
    /// from [`CLIENT_ID`] and [`CLIENT_SECRET`].
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing or malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env::process_env)
    }

    pub(crate) fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let client_id = var(CLIENT_ID)
            .map(|id| {
                ClientId::new(id).map_err(|e| ConfigError::MalformedVar { name: CLIENT_ID, reason: e.to_string() })
            })
            .transpose()?;
        let client_secret = var(CLIENT_SECRET)
            .map(|s| {
                ClientSecret::new(s).map_err(|_| ConfigError::MalformedVar {
                    name: CLIENT_SECRET,
                    reason: "it is only whitespace".into(),
                })
            })
            .transpose()?;
        let client_key = ClientKeyRef::from_env(lookup);
        if client_key.is_some() && client_secret.is_some() {
            return Err(ConfigError::ClientAuth {
                reason: "FILEVINE_CLIENT_SECRET and FILEVINE_CLIENT_KEY are both set; a client authenticates with one",
            });
        }
        let client = match (client_id, client_secret, client_key) {
            (Some(id), Some(secret), None) => Some(ClientAuth::with_secret(id, Some(secret))),
            (Some(id), None, Some(key)) => Some(ClientAuth { id, secret: None, key: Some(key) }),
            (None, None, None) => None,
            (Some(_), None, None) => {
                return Err(ConfigError::MissingVar {
                    name: CLIENT_SECRET,
                    hint: " (or FILEVINE_CLIENT_KEY; one is needed because FILEVINE_CLIENT_ID is set)",
                });
            }
            (None, _, _) => {
                return Err(ConfigError::MissingVar {
                    name: CLIENT_ID,
                    hint: " (it is needed because FILEVINE_CLIENT_SECRET or FILEVINE_CLIENT_KEY is set)",
                });
            }
            (Some(_), Some(_), Some(_)) => unreachable!("refused above"),
        };
        match var(PAT) {
            Some(pat) => {
                let pat = PersonalAccessToken::new(pat)
                    .map_err(|_| ConfigError::MalformedVar { name: PAT, reason: "it is only whitespace".into() })?;
                let credentials = Self::personal_access_token(pat);
                Ok(Self { client, ..credentials })
            }
            None => match client {
                Some(client) => Ok(Self { grant: Grant::ClientCredentials, client: Some(client) }),
                None => Err(ConfigError::MissingVar {
                    name: PAT,
                    hint: " (or set FILEVINE_CLIENT_ID and FILEVINE_CLIENT_SECRET for client credentials)",
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::fake;

    #[test]
    fn pat_from_env_with_and_without_client() {
        let c = Credentials::from_lookup(&fake(&[(PAT, "p")])).unwrap();
        assert_eq!(c.grant_type(), "personal_access_token");
        assert!(c.client_id().is_none());
        let c = Credentials::from_lookup(&fake(&[(PAT, "p"), (CLIENT_ID, "id"), (CLIENT_SECRET, "s")])).unwrap();
        assert_eq!(c.client_id().map(ClientId::as_str), Some("id"));
        assert_eq!(c.grant_type(), "personal_access_token");
    }

    #[test]
    fn client_credentials_from_env() {
        let c = Credentials::from_lookup(&fake(&[(CLIENT_ID, "id"), (CLIENT_SECRET, "s")])).unwrap();
        assert_eq!(c.grant_type(), "client_credentials");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = Credentials::from_lookup(&fake(&[])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable FILEVINE_PAT is not set"), "{err}");
        let err = Credentials::from_lookup(&fake(&[(PAT, "p"), (CLIENT_ID, "id")])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable FILEVINE_CLIENT_SECRET is not set"), "{err}");
        let err = Credentials::from_lookup(&fake(&[(CLIENT_SECRET, "s")])).unwrap_err();
        assert!(err.to_string().contains("FILEVINE_CLIENT_ID is not set"), "{err}");
        let err = Credentials::from_lookup(&fake(&[(PAT, "   ")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable FILEVINE_PAT is malformed: it is only whitespace");
        let err =
            Credentials::from_lookup(&fake(&[(PAT, "p"), (CLIENT_ID, " id "), (CLIENT_SECRET, "s")])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable FILEVINE_CLIENT_ID is malformed"), "{err}");
    }

    #[test]
    fn secrets_never_format() {
        let sentinel = "SENTINEL-cred-42";
        let values = [
            format!("{:?}", PersonalAccessToken::new(sentinel).unwrap()),
            format!("{}", PersonalAccessToken::new(sentinel).unwrap()),
            format!("{:?}", ClientSecret::new(sentinel).unwrap()),
            format!("{}", RefreshToken::new(sentinel).unwrap()),
            format!(
                "{:#?}",
                Credentials::personal_access_token(PersonalAccessToken::new(sentinel).unwrap())
                    .with_client(ClientId::new("id").unwrap(), ClientSecret::new(sentinel).unwrap())
            ),
        ];
        for shown in values {
            assert!(!shown.contains(sentinel), "{shown}");
        }
    }

    #[test]
    fn client_ids_are_checked() {
        assert_eq!(ClientId::new("").unwrap_err().to_string(), "the client id \"\" is empty");
        assert!(matches!(ClientId::new(" a "), Err(ConfigError::InvalidClientId { .. })));
    }
}
