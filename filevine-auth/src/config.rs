//! Where the tool keeps its files, the profiles of `config.json`, and the
//! settings a command runs with (flags, then the environment, then the
//! profile, then the defaults).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use filevine_identity_ext::config::env as vars;
use filevine_identity_ext::jose::ClientKey;
use filevine_identity_ext::{ClientId, ClientSecret, ConfigError, Credentials, Region, Scopes};
use serde::Deserialize;

use crate::cli::Global;
use crate::error::CliError;

/// The configuration directory's variable.
pub const CONFIG_DIR: &str = "FILEVINE_CONFIG_DIR";

/// One named configuration in `config.json`:
///
/// ```json
/// { "profiles": { "staging": { "authority": "https://identity.staging.example",
///                              "gateway": "https://api.staging.example",
///                              "client_id": "my-cli-client", "scopes": "openid offline_access" } } }
/// ```
///
/// No secrets: a client secret comes from FILEVINE_CLIENT_SECRET only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub region: Option<String>,
    pub authority: Option<String>,
    pub gateway: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// What a command runs with.
#[derive(Debug)]
pub struct Settings {
    pub profile: String,
    pub dir: PathBuf,
    /// The region from the flags, the environment or the profile.
    pub region: Region,
    /// Whether a flag chose the region (it then wins over a stored sign-in's).
    pub region_from_flags: bool,
    /// The API gateway from `--gateway`, else `FILEVINE_GATEWAY`: it wins
    /// over the profile's, a sign-in record's and the region's, whatever
    /// chose the authority (one rule, the library's variable).
    pub gateway: Option<String>,
    pub client_id: Option<ClientId>,
    pub client_secret: Option<ClientSecret>,
    /// `FILEVINE_CLIENT_KEY` (a PEM or JWK file, read when a command needs
    /// it) and `FILEVINE_CLIENT_KEY_ID`: `private_key_jwt` instead of a
    /// secret.
    pub client_key: Option<(PathBuf, Option<String>)>,
    pub scopes: Option<Scopes>,
}

impl Settings {
    /// The settings for `global`, reading the process environment.
    pub fn resolve(global: &Global) -> Result<Self, CliError> {
        Self::resolve_with(global, &|name| std::env::var(name).ok())
    }

    pub fn resolve_with(global: &Global, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, CliError> {
        let var = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let dir = match var(CONFIG_DIR) {
            Some(dir) => PathBuf::from(dir),
            None => platform_config_dir(env)
                .ok_or_else(|| CliError::Usage(format!("no configuration directory: set {CONFIG_DIR}")))?
                .join("filevine"),
        };
        let profile = load_profile(&dir, &global.profile)?;
        let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());

        let gateway = global.gateway.clone().or_else(|| var(GATEWAY_VAR));
        let (region, region_from_flags) = match (&global.authority, &global.region) {
            (Some(authority), _) => (custom(authority, None).map_err(|e| usage(&e))?, true),
            (None, Some(region)) => (region.parse::<Region>().map_err(|e| usage(&e))?, true),
            (None, None) => match Region::from_env().map_err(|e| usage(&e))? {
                Some(region) => (region, false),
                None => match (&profile.authority, &profile.region) {
                    (Some(authority), _) => {
                        (custom(authority, profile.gateway.as_deref()).map_err(|e| usage(&e))?, false)
                    }
                    (None, Some(region)) => (region.parse::<Region>().map_err(|e| usage(&e))?, false),
                    (None, None) => (Region::Us, false),
                },
            },
        };
        let region = with_gateway(region, gateway.as_deref()).map_err(|e| usage(&e))?;
        let client_id = var(vars::CLIENT_ID)
            .or_else(|| profile.client_id.clone())
            .map(ClientId::new)
            .transpose()
            .map_err(|e| usage(&format_args!("the client id: {e}")))?;
        // The secret's value never goes into a message.
        let client_secret = var(vars::CLIENT_SECRET)
            .map(ClientSecret::new)
            .transpose()
            .map_err(|e| usage(&format_args!("{}: {e}", vars::CLIENT_SECRET)))?;
        let client_key = var(vars::CLIENT_KEY).map(|path| (PathBuf::from(path), var(vars::CLIENT_KEY_ID)));
        let scopes = var(vars::SCOPES)
            .or_else(|| profile.scopes.clone())
            .map(|s| s.parse::<Scopes>())
            .transpose()
            .map_err(|e| usage(&e))?;
        Ok(Self {
            profile: global.profile.clone(),
            dir,
            region,
            region_from_flags,
            gateway,
            client_id,
            client_secret,
            client_key,
            scopes,
        })
    }

    /// `region` (a sign-in record's) with the gateway of `--gateway` or
    /// `FILEVINE_GATEWAY`, when one is set.
    pub fn gatewayed(&self, region: Region) -> Result<Region, CliError> {
        with_gateway(region, self.gateway.as_deref()).map_err(|e| CliError::Usage(e.to_string()))
    }

    /// The client key, read from its file now. The error names the file
    /// or the check that failed, never the key.
    pub fn client_key(&self) -> Result<Option<ClientKey>, CliError> {
        let Some((path, kid)) = &self.client_key else { return Ok(None) };
        let key = ClientKey::from_file(path).map_err(ConfigError::from)?;
        let key = match kid {
            Some(kid) => key.with_key_id(kid.clone()).map_err(ConfigError::from)?,
            None => key,
        };
        Ok(Some(key))
    }

    /// The client authentication of a PAT exchange: the client id with its
    /// secret or its key, a public client's id, or none.
    pub fn with_client(&self, credentials: Credentials) -> Result<Credentials, CliError> {
        Ok(match (&self.client_id, &self.client_secret, self.client_key()?) {
            (Some(_), Some(_), Some(_)) => {
                return Err(CliError::Usage(format!(
                    "{} and {} are both set; a client authenticates with one",
                    vars::CLIENT_SECRET,
                    vars::CLIENT_KEY
                )));
            }
            (Some(id), Some(secret), None) => credentials.with_client(id.clone(), secret.clone()),
            (Some(id), None, Some(key)) => credentials.with_client_key(id.clone(), key),
            (Some(id), None, None) => credentials.with_public_client(id.clone()),
            (None, _, _) => credentials,
        })
    }

    /// The token cache: the file store's directory.
    pub fn tokens_dir(&self) -> PathBuf {
        self.dir.join("tokens")
    }
}

/// The environment variable of the gateway, as the library reads it.
const GATEWAY_VAR: &str = filevine_identity_ext::config::env::GATEWAY;

/// `region` with `gateway` as its API gateway, when one is given.
fn with_gateway(
    region: Region,
    gateway: Option<&str>,
) -> Result<Region, filevine_identity_ext::config::region::RegionError> {
    match gateway {
        Some(gateway) if region.gateway_url() != Some(gateway.trim_end_matches('/')) => {
            Region::custom_with_gateway(region.identity_url(), gateway)
        }
        _ => Ok(region),
    }
}

fn custom(
    authority: &str,
    gateway: Option<&str>,
) -> Result<Region, filevine_identity_ext::config::region::RegionError> {
    match gateway {
        Some(gateway) => Region::custom_with_gateway(authority, gateway),
        None => Region::custom(authority),
    }
}

/// The profile `name` from `<dir>/config.json`; `default` may be absent.
fn load_profile(dir: &Path, name: &str) -> Result<Profile, CliError> {
    let path = dir.join("config.json");
    let file: ConfigFile = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| CliError::Usage(format!("{} is not a valid configuration: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
        Err(e) => return Err(CliError::io(format!("reading {}", path.display()))(e)),
    };
    match file.profiles.get(name) {
        Some(profile) => Ok(profile.clone()),
        None if name == "default" => Ok(Profile::default()),
        None => Err(CliError::Usage(format!(
            "no profile {name:?} in {} (it has: {})",
            path.display(),
            file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The platform's configuration directory: `%APPDATA%` on Windows,
/// `~/Library/Application Support` on macOS, `$XDG_CONFIG_HOME` or
/// `~/.config` elsewhere.
fn platform_config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if cfg!(windows) {
        return absolute("APPDATA");
    }
    if cfg!(target_os = "macos") {
        return absolute("HOME").map(|home| home.join("Library/Application Support"));
    }
    absolute("XDG_CONFIG_HOME").or_else(|| absolute("HOME").map(|home| home.join(".config")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn global(args: &[&str]) -> Global {
        crate::cli::Cli::parse_from(["filevine-auth"].iter().chain(args).chain(&["status"])).global
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_directory_comes_from_the_environment_or_the_platform() {
        let settings = Settings::resolve_with(&global(&[]), &env(&[(CONFIG_DIR, "/tmp/fv-none")])).unwrap();
        assert_eq!(settings.dir, PathBuf::from("/tmp/fv-none"));
        assert_eq!(settings.region, Region::Us);
        if cfg!(target_os = "linux") {
            let settings = Settings::resolve_with(&global(&[]), &env(&[("HOME", "/home/u")])).unwrap();
            assert_eq!(settings.dir, PathBuf::from("/home/u/.config/filevine"));
            let settings =
                Settings::resolve_with(&global(&[]), &env(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/x")])).unwrap();
            assert_eq!(settings.dir, PathBuf::from("/x/filevine"));
        }
        let err = Settings::resolve_with(&global(&[]), &env(&[("HOME", "relative")])).unwrap_err();
        assert!(err.to_string().contains(CONFIG_DIR), "{err}");
    }

    #[test]
    fn profiles_flags_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"profiles": {"staging": {"authority": "https://id.staging.example", "gateway": "https://gw.staging.example", "client_id": "cli"}}}"#,
        )
        .unwrap();
        let dir_str: &'static str = Box::leak(dir.path().to_str().unwrap().to_owned().into_boxed_str());
        let vars: &'static [(&str, &str)] = Box::leak(Box::new([(CONFIG_DIR, dir_str)]));
        let staging = Settings::resolve_with(&global(&["--profile", "staging"]), &env(vars)).unwrap();
        assert_eq!(staging.region.identity_url(), "https://id.staging.example");
        assert_eq!(staging.region.gateway_url(), Some("https://gw.staging.example"));
        assert_eq!(staging.client_id.unwrap().as_str(), "cli");
        // A flag wins over the profile.
        let flagged = Settings::resolve_with(&global(&["--profile", "staging", "--region", "ca"]), &env(vars)).unwrap();
        assert_eq!((flagged.region, flagged.region_from_flags), (Region::Canada, true));
        // An unknown profile is a usage error naming the known ones.
        let err = Settings::resolve_with(&global(&["--profile", "prod"]), &env(vars)).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("\"prod\"") && err.to_string().contains("staging"), "{err}");
        // A malformed file names itself.
        std::fs::write(dir.path().join("config.json"), r#"{"profiles": {"x": {"secret": "s"}}}"#).unwrap();
        let err = Settings::resolve_with(&global(&[]), &env(vars)).unwrap_err();
        assert!(err.to_string().contains("config.json") && err.to_string().contains("unknown field"), "{err}");
        let err = Settings::resolve_with(&global(&["--region", "mars"]), &env(&[(CONFIG_DIR, "/tmp/fv-none")]));
        assert!(err.unwrap_err().to_string().contains("mars"));
    }
}
