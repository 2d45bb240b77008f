//! What a [`TokenProvider`](crate::TokenProvider) exchanges for tokens: one
//! type per concept, and [`Credentials`] over every grant.

use std::fmt;

use filevine_identity::SecretString;

use crate::env::Lookup;
use crate::error::ConfigError;

/// Environment variable holding a personal access token.
pub const PAT_VAR: &str = "FILEVINE_PAT";
/// Environment variable holding the OAuth client id.
pub const CLIENT_ID_VAR: &str = "FILEVINE_CLIENT_ID";
/// Environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "FILEVINE_CLIENT_SECRET";
/// Environment variable holding space-separated scopes.
pub const SCOPES_VAR: &str = "FILEVINE_SCOPES";

/// The scopes [`SCOPES_VAR`] names, if it is set and not blank.
pub(crate) fn scopes_from_lookup(lookup: Lookup<'_>) -> Result<Option<crate::Scopes>, ConfigError> {
    match lookup(SCOPES_VAR).filter(|v| !v.trim().is_empty()) {
        Some(list) => list
            .parse::<crate::Scopes>()
            .map(Some)
            .map_err(|e| ConfigError::MalformedVar { name: SCOPES_VAR, reason: e.to_string() }),
        None => Ok(None),
    }
}

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
    /// [`ConfigError::Invalid`] for an empty or padded id.
    pub fn new(id: impl Into<String>) -> Result<Self, ConfigError> {
        let id = id.into();
        if id.trim().is_empty() {
            return Err(ConfigError::Invalid("the client id is empty".into()));
        }
        if id.trim() != id {
            return Err(ConfigError::Invalid(format!("the client id {id:?} has leading or trailing whitespace")));
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

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// `Debug` and `Display` never show the value; read it with
        /// `expose_secret`.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(SecretString);

        impl $name {
            #[doc = concat!("Wraps a ", $what, ".")]
            ///
            /// # Errors
            /// [`ConfigError::Invalid`] when it is empty or only whitespace.
            pub fn new(secret: impl Into<String>) -> Result<Self, ConfigError> {
                let secret = SecretString::new(secret);
                if secret.expose_secret().trim().is_empty() {
                    return Err(ConfigError::Invalid(concat!("the ", $what, " is empty").into()));
                }
                Ok(Self(secret))
            }

            /// The secret value.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            pub(crate) fn secret(&self) -> &SecretString {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[REDACTED]")
            }
        }
    };
}

secret_newtype!(
    /// An OAuth client secret.
    ClientSecret,
    "client secret"
);
secret_newtype!(
    /// A Filevine personal access token (PAT), issued from the Filevine UI.
    PersonalAccessToken,
    "personal access token"
);
secret_newtype!(
    /// A refresh token.
    RefreshToken,
    "refresh token"
);

impl RefreshToken {
    pub(crate) fn from_secret(secret: SecretString) -> Self {
        Self(secret)
    }
}

/// The credentials a [`TokenProvider`](crate::TokenProvider) exchanges for
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
}

/// A client id with its secret (or, for a public client, without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientAuth {
    pub(crate) id: ClientId,
    pub(crate) secret: Option<ClientSecret>,
}

impl Credentials {
    /// Exchange a personal access token (`grant_type=personal_access_token`).
    pub fn personal_access_token(token: PersonalAccessToken) -> Self {
        Self { grant: Grant::PersonalAccessToken(token), client: None }
    }

    /// The client credentials grant: a machine identity.
    pub fn client_credentials(id: ClientId, secret: ClientSecret) -> Self {
        Self { grant: Grant::ClientCredentials, client: Some(ClientAuth { id, secret: Some(secret) }) }
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
        self.client = Some(ClientAuth { id, secret: Some(secret) });
        self
    }

    /// Sends a client id without a secret (a public client's refresh).
    #[must_use]
    pub fn with_public_client(mut self, id: ClientId) -> Self {
        if !matches!(self.grant, Grant::ClientCredentials) {
            self.client = Some(ClientAuth { id, secret: None });
        }
        self
    }

    /// Every secret these credentials send, for scrubbing error text.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut secrets = Vec::with_capacity(2);
        match &self.grant {
            Grant::PersonalAccessToken(pat) => secrets.push(pat.expose_secret()),
            Grant::RefreshToken(token) => secrets.push(token.expose_secret()),
            Grant::ClientCredentials => {}
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
            Grant::RefreshToken(_) => "refresh_token",
        }
    }

    /// The client id, if any.
    pub fn client_id(&self) -> Option<&ClientId> {
        self.client.as_ref().map(|c| &c.id)
    }

    /// Credentials from the environment: [`PAT_VAR`] (with [`CLIENT_ID_VAR`]
    /// and [`CLIENT_SECRET_VAR`] if both are set), or else client credentials
    /// from [`CLIENT_ID_VAR`] and [`CLIENT_SECRET_VAR`].
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing or malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&crate::env::process_env)
    }

    pub(crate) fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let client_id = var(CLIENT_ID_VAR)
            .map(|id| {
                ClientId::new(id).map_err(|e| ConfigError::MalformedVar { name: CLIENT_ID_VAR, reason: e.to_string() })
            })
            .transpose()?;
        let client_secret = var(CLIENT_SECRET_VAR)
            .map(|s| {
                ClientSecret::new(s).map_err(|_| ConfigError::MalformedVar {
                    name: CLIENT_SECRET_VAR,
                    reason: "it is only whitespace".into(),
                })
            })
            .transpose()?;
        let client = match (client_id, client_secret) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::MissingVar {
                    name: CLIENT_SECRET_VAR,
                    hint: " (it is needed because FILEVINE_CLIENT_ID is set)",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::MissingVar {
                    name: CLIENT_ID_VAR,
                    hint: " (it is needed because FILEVINE_CLIENT_SECRET is set)",
                });
            }
        };
        match var(PAT_VAR) {
            Some(pat) => {
                let pat = PersonalAccessToken::new(pat)
                    .map_err(|_| ConfigError::MalformedVar { name: PAT_VAR, reason: "it is only whitespace".into() })?;
                let credentials = Self::personal_access_token(pat);
                Ok(match client {
                    Some((id, secret)) => credentials.with_client(id, secret),
                    None => credentials,
                })
            }
            None => match client {
                Some((id, secret)) => Ok(Self::client_credentials(id, secret)),
                None => Err(ConfigError::MissingVar {
                    name: PAT_VAR,
                    hint: " (or set FILEVINE_CLIENT_ID and FILEVINE_CLIENT_SECRET for client credentials)",
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::fake as env;

    #[test]
    fn pat_from_env_with_and_without_client() {
        let c = Credentials::from_lookup(&env(&[(PAT_VAR, "p")])).unwrap();
        assert_eq!(c.grant_type(), "personal_access_token");
        assert!(c.client_id().is_none());
        let c =
            Credentials::from_lookup(&env(&[(PAT_VAR, "p"), (CLIENT_ID_VAR, "id"), (CLIENT_SECRET_VAR, "s")])).unwrap();
        assert_eq!(c.client_id().map(ClientId::as_str), Some("id"));
        assert_eq!(c.grant_type(), "personal_access_token");
    }

    #[test]
    fn client_credentials_from_env() {
        let c = Credentials::from_lookup(&env(&[(CLIENT_ID_VAR, "id"), (CLIENT_SECRET_VAR, "s")])).unwrap();
        assert_eq!(c.grant_type(), "client_credentials");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = Credentials::from_lookup(&env(&[])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable FILEVINE_PAT is not set"), "{err}");
        let err = Credentials::from_lookup(&env(&[(PAT_VAR, "p"), (CLIENT_ID_VAR, "id")])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable FILEVINE_CLIENT_SECRET is not set"), "{err}");
        let err = Credentials::from_lookup(&env(&[(CLIENT_SECRET_VAR, "s")])).unwrap_err();
        assert!(err.to_string().contains("FILEVINE_CLIENT_ID is not set"), "{err}");
        let err = Credentials::from_lookup(&env(&[(PAT_VAR, "   ")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable FILEVINE_PAT is malformed: it is only whitespace");
        let err = Credentials::from_lookup(&env(&[(PAT_VAR, "p"), (CLIENT_ID_VAR, " id "), (CLIENT_SECRET_VAR, "s")]))
            .unwrap_err();
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
    fn empty_secrets_are_rejected() {
        assert!(PersonalAccessToken::new("").unwrap_err().to_string().contains("personal access token is empty"));
        assert!(ClientSecret::new(" \t").is_err());
        assert!(ClientId::new("").is_err());
    }
}
