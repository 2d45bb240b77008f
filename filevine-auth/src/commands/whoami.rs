//! `whoami`: the user and orgs of the token (`GetUserOrgsWithToken`).

use filevine_identity_ext::{ConfigError, FilevineApi};

use crate::config::Settings;
use crate::error::CliError;
use crate::session::{Profile, provider};

pub async fn whoami(settings: &Settings, json: bool) -> Result<(), CliError> {
    let profile = Profile::open(settings).await?;
    let provider = provider(settings, &profile).await?;
    let api = match FilevineApi::new(provider) {
        Ok(api) => api,
        Err(ConfigError::NoGateway { region }) => {
            return Err(CliError::Failed(format!(
                "the authority {region} has no known API gateway: pass --gateway <URL> or set FILEVINE_GATEWAY"
            )));
        }
        Err(other) => return Err(other.into()),
    };
    let orgs = api.get_user_orgs_with_token().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&orgs).map_err(|e| CliError::Failed(e.to_string()))?);
        return Ok(());
    }
    let label = |extra: &serde_json::Map<String, serde_json::Value>| {
        ["name", "fullName", "username", "email", "displayName"]
            .iter()
            .find_map(|k| extra.get(*k).and_then(serde_json::Value::as_str))
            .map(|s| format!(" ({})", crate::output::clean(s)))
            .unwrap_or_default()
    };
    println!("user {}{}", orgs.user.user_id.native, label(&orgs.user.extra));
    for org in &orgs.orgs {
        println!("org  {}{}", org.org_id, label(&org.extra));
    }
    Ok(())
}
