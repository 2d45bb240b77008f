//! What a profile is signed in with, kept in the file token store beside
//! the tokens, and the token provider each kind of sign-in gets.
//!
//! Three entries per profile, each under a session key of the store (the
//! store names its files by a hash of the key):
//! - `filevine-auth/<profile>/state`: who signed in, how, where (no secret,
//!   but it decides where the secrets go: sealed, and a record that does
//!   not open is refused);
//! - `filevine-auth/<profile>/login`: the token set of a `login`, read and
//!   refreshed (with rotation) by the SDK's stored-session provider;
//! - `filevine-auth/<profile>/pat`: the PAT of `login --with-pat`, in the
//!   store's record format.
//!
//! Everything is sealed (AES-256-GCM, by the library) with the key
//! [`crate::keys`] finds: FILEVINE_STORE_KEY, the OS keyring, or
//! `<config dir>/store.key`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use filevine_identity_ext::oidc::RedirectUrl;
use filevine_identity_ext::store::{self, FileStore, StoreEncryptionKeys, StoreKey, TokenStore};
use filevine_identity_ext::{ClientId, Credentials, OidcClient, PersonalAccessToken, Region, TokenProvider};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::CliError;

/// How the profile signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `login`: a user's token set, refreshed with its refresh token.
    Login,
    /// `login --with-pat`: a stored personal access token.
    Pat,
}

/// The profile's sign-in, without secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub method: Method,
    /// The authority signed in to (the issuer for `login`).
    pub authority: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Seconds since the epoch.
    pub since: u64,
}

impl State {
    pub fn new(method: Method, region: &Region, client_id: Option<&ClientId>) -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self {
            method,
            authority: region.issuer().to_owned(),
            gateway: region.gateway_url().map(str::to_owned),
            client_id: client_id.map(|c| c.as_str().to_owned()),
            subject: None,
            name: None,
            email: None,
            since,
        }
    }

    /// The region the profile signed in to.
    pub fn region(&self) -> Result<Region, CliError> {
        let usage = |e: filevine_identity_ext::config::region::RegionError| CliError::Usage(e.to_string());
        let region = match &self.gateway {
            Some(gateway) => Region::custom_with_gateway(&self.authority, gateway).map_err(usage)?,
            None => Region::custom(&self.authority).map_err(usage)?,
        };
        // The known regions by name (their gateways are known).
        Ok(match region.identity_url() {
            url if url == Region::Us.identity_url() => Region::Us,
            url if url == Region::Canada.identity_url() => Region::Canada,
            _ => region,
        })
    }
}

/// The profile's entries in the file token store.
#[derive(Debug, Clone)]
pub struct Profile {
    pub store: Arc<FileStore>,
    pub name: String,
    seal: StoreEncryptionKeys,
    /// Where the sealing key came from (for `status`).
    pub key_source: crate::keys::KeySource,
}

/// The sign-in record and the PAT stay until `logout`.
const UNTIL_LOGOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Profile {
    pub async fn open(settings: &Settings) -> Result<Self, CliError> {
        let (seal, key_source) = crate::keys::load(&settings.dir).await?;
        Ok(Self {
            store: Arc::new(FileStore::new(settings.tokens_dir())),
            name: settings.profile.clone(),
            seal,
            key_source,
        })
    }

    fn key(&self, what: &str) -> StoreKey {
        StoreKey::session(&format!("filevine-auth/{}/{what}", self.name))
    }

    /// The key of a `login` token set.
    pub fn login_key(&self) -> StoreKey {
        self.key("login")
    }

    /// The sign-in record. One that does not open with the key (written
    /// by hand, restored from elsewhere, sealed with another key) is
    /// refused: it names the authority the tokens go to.
    pub async fn state(&self) -> Result<Option<State>, CliError> {
        let key = self.key("state");
        let Some(entry) = self.store.load(key.as_str()).await? else { return Ok(None) };
        let state = store::open_record(&entry.value, &key, &self.seal)
            .and_then(|json| serde_json::from_slice::<State>(&json).ok());
        if state.is_none() {
            tracing::warn!(profile = %self.name, "the sign-in record does not open with the store key; refusing it");
            eprintln!(
                "warning: the sign-in record of profile {:?} does not open with the store key (not written by this tool with this key); ignoring it: sign in again",
                self.name
            );
        }
        Ok(state)
    }

    pub async fn save_state(&self, state: &State) -> Result<(), CliError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(state).map_err(|e| CliError::Usage(e.to_string()))?);
        let key = self.key("state");
        let value = store::seal_record(&json, &key, &self.seal)?;
        self.store.save(key.as_str(), &value, UNTIL_LOGOUT).await?;
        Ok(())
    }

    pub async fn save_pat(&self, pat: &PersonalAccessToken) -> Result<(), CliError> {
        let key = self.key("pat");
        let value = store::encode_credential(pat, &key, Some(&self.seal))?;
        self.store.save(key.as_str(), &value, UNTIL_LOGOUT).await?;
        Ok(())
    }

    pub async fn pat(&self) -> Result<Option<PersonalAccessToken>, CliError> {
        let key = self.key("pat");
        let Some(entry) = self.store.load(key.as_str()).await? else { return Ok(None) };
        let pat = store::decode_credential(&entry.value, &key, Some(&self.seal));
        if pat.is_none() {
            eprintln!(
                "warning: the stored PAT of profile {:?} is unreadable (another FILEVINE_STORE_KEY?); ignoring it",
                self.name
            );
        }
        Ok(pat)
    }

    /// Deletes the state and the PAT (the token sets are the providers').
    pub async fn forget(&self) -> Result<(), CliError> {
        for what in ["state", "pat"] {
            self.store.delete(self.key(what).as_str()).await?;
        }
        Ok(())
    }

    pub fn seal(&self) -> &StoreEncryptionKeys {
        &self.seal
    }
}

/// The redirect URI a stored `login` session is refreshed with (the code
/// exchange is over; only the client's identity matters).
pub fn placeholder_redirect() -> RedirectUrl {
    RedirectUrl::new("http://127.0.0.1/callback").unwrap_or_else(|_| unreachable!("a loopback URL"))
}

/// The OIDC client of a `login` for `region`.
pub fn oidc_client(
    settings: &Settings,
    region: Region,
    client_id: ClientId,
    redirect: RedirectUrl,
) -> Result<OidcClient, CliError> {
    let mut builder = OidcClient::builder().region(region).client_id(client_id).redirect_uri(redirect).env(|name| {
        // Only what the library reads for a CLI sign-in; the secret is optional.
        std::env::var(name).ok()
    });
    if let Some(scopes) = &settings.scopes {
        builder = builder.scopes(scopes.clone());
    } else {
        builder = builder.scopes(default_scopes());
    }
    if let Some(secret) = &settings.client_secret {
        builder = builder.client_secret(secret.clone());
    }
    Ok(builder.build()?)
}

/// The scopes of a CLI sign-in: who the user is, a refresh token, the API.
pub fn default_scopes() -> filevine_identity_ext::Scopes {
    "openid profile email offline_access fv.api.gateway.access filevine.v2.api.*"
        .parse()
        .unwrap_or_else(|_| filevine_identity_ext::Scopes::partner_app())
}

/// The region a stored sign-in's tokens go to: the sealed record's. An
/// `--authority` or `--region` that names another is refused: the stored
/// refresh token or PAT belongs to the authority it was issued by, and a
/// flag (typed, or left in a script) must not send it elsewhere. The same
/// authority given by flag keeps the flag's gateway.
fn stored_region(settings: &Settings, state: &State, profile: &str) -> Result<Region, CliError> {
    let stored = state.region()?;
    if !settings.region_from_flags {
        return settings.gatewayed(stored);
    }
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    if !same(settings.region.identity_url(), stored.identity_url()) {
        return Err(CliError::Usage(format!(
            "profile {profile:?} is signed in at {}, and the command line names {}: its stored credentials are only sent where they were issued. \
             To use that authority, sign in there under another profile (filevine-auth --profile <name> --authority {} login), \
             or drop the flag",
            stored.identity_url(),
            settings.region.identity_url(),
            settings.region.identity_url(),
        )));
    }
    Ok(settings.region.clone())
}

/// The token provider for the profile: its `login`, its stored PAT, or the
/// environment's credentials, with the file store.
pub async fn provider(settings: &Settings, profile: &Profile) -> Result<TokenProvider, CliError> {
    let state = profile.state().await?;
    let builder = match &state {
        Some(state) if state.method == Method::Login => {
            let region = stored_region(settings, state, &profile.name)?;
            let client_id = match (&state.client_id, &settings.client_id) {
                (Some(id), _) => ClientId::new(id.clone())?,
                (None, Some(id)) => id.clone(),
                (None, None) => return Err(CliError::SignInRequired("the sign-in record has no client id".into())),
            };
            let oidc = oidc_client(settings, region, client_id, placeholder_redirect())?;
            oidc.stored_session(profile.login_key())
        }
        Some(state) => {
            let Some(pat) = profile.pat().await? else {
                return Err(CliError::SignInRequired(format!("profile {:?} has no readable PAT", profile.name)));
            };
            let region = stored_region(settings, state, &profile.name)?;
            let credentials = settings.with_client(Credentials::personal_access_token(pat))?;
            TokenProvider::builder().region(region).credentials(credentials)
        }
        None => {
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            use filevine_identity_ext::config::env::{CLIENT_SECRET_FILE, PAT, PAT_FILE};
            let has_pat = env(PAT).is_some() || env(PAT_FILE).is_some();
            let has_client = settings.client_id.is_some()
                && (settings.client_secret.is_some()
                    || settings.client_key.is_some()
                    || env(CLIENT_SECRET_FILE).is_some());
            if !has_pat && !has_client {
                let missing = if settings.client_id.is_some() {
                    "; FILEVINE_CLIENT_ID is set without FILEVINE_CLIENT_SECRET (or FILEVINE_CLIENT_KEY, \
                     FILEVINE_CLIENT_SECRET_FILE) for client credentials"
                } else {
                    ""
                };
                return Err(CliError::SignInRequired(format!("profile {:?} is not signed in{missing}", profile.name)));
            }
            TokenProvider::builder().region(settings.region.clone())
        }
    };
    let mut builder = builder.store(profile.store.clone()).store_encryption_keys(profile.seal().clone());
    if let (Some(scopes), None | Some(State { method: Method::Pat, .. })) = (&settings.scopes, &state) {
        builder = builder.scopes(scopes.clone());
    }
    Ok(builder.build()?)
}
