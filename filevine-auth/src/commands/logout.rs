//! `logout`: revoke what can be revoked, delete what is cached.

use filevine_identity_ext::ClientId;

use filevine_identity_ext::store::TokenStore as _;

use crate::config::Settings;
use crate::error::CliError;
use crate::session::{self, Method, Profile};

pub async fn logout(settings: &Settings) -> Result<(), CliError> {
    let profile = Profile::open(settings).await?;
    let state = profile.state().await?;
    match &state {
        Some(state) if state.method == Method::Login => {
            let client_id = match (&state.client_id, &settings.client_id) {
                (Some(id), _) => ClientId::new(id.clone())?,
                (None, Some(id)) => id.clone(),
                (None, None) => return Err(CliError::Failed("the sign-in record has no client id".into())),
            };
            let oidc = session::oidc_client(settings, state.region()?, client_id, session::placeholder_redirect())?;
            let provider = oidc
                .stored_session(profile.login_key())
                .store(profile.store.clone())
                .store_encryption_keys(profile.seal().clone())
                .build()?;
            // Revokes the refresh and access tokens and deletes the stored set;
            // a failed revocation is reported, the cache is deleted anyway.
            if let Err(error) = oidc.sign_out(&provider).await {
                eprintln!("warning: {}", crate::output::clean(&error));
            }
            // The deletion mark goes too (see below).
            if let Some(key) = provider.store_key() {
                profile.store.delete(key.as_str()).await?;
            }
        }
        _ => {
            // A PAT (stored or from the environment) cannot be revoked from
            // here; the cached access token is deleted.
            if let Ok(provider) = session::provider(settings, &profile).await {
                provider.forget().await?;
                // The deletion mark protects against a refresh racing the
                // sign-out; one that lands later finds no entry and, as it
                // expected a version, writes nothing: the file can go.
                if let Some(key) = provider.store_key() {
                    profile.store.delete(key.as_str()).await?;
                }
            }
            if state.is_some() {
                eprintln!("note: a personal access token is revoked in Filevine's settings, not here");
            }
        }
    }
    profile.forget().await?;
    eprintln!("Signed out (profile {:?}); the cached tokens are deleted", settings.profile);
    Ok(())
}
