//! What both builders — [`TokenProviderBuilder`](crate::provider::TokenProviderBuilder)
//! and [`OidcClientBuilder`](crate::oidc::OidcClientBuilder) — take the
//! same way: one [`Settings`] value each holds, and one macro that writes
//! the setters for it into both, so a setting means the same in both and
//! is documented once.

use std::time::Duration;

use crate::config::env::{self, EnvSource, Lookup};
use crate::config::error::ConfigError;
use crate::config::region::Region;
use crate::config::scope::Scopes;
use crate::http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use crate::time::Clock;

/// Where to sign in, what to ask for, how long to wait for the network,
/// where the environment and the clock come from, and DPoP.
pub(crate) struct Settings {
    pub(crate) region: Option<Region>,
    pub(crate) scopes: Option<Scopes>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) env: EnvSource,
    pub(crate) clock: Clock,
    pub(crate) dpop: Option<bool>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: None,
            scopes: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            env: Box::new(env::process_env),
            clock: Clock::System,
            dpop: None,
        }
    }
}

impl Settings {
    /// The environment these settings read what was not set.
    pub(crate) fn lookup(&self) -> Lookup<'_> {
        &*self.env
    }

    /// The region set, else the environment's, else US.
    pub(crate) fn region(&self) -> Result<Region, ConfigError> {
        Ok(Region::resolve_with(self.region.clone(), self.lookup())?)
    }

    /// The scopes set, else `FILEVINE_SCOPES`, else none (the builder's
    /// default).
    pub(crate) fn scopes(&self) -> Result<Option<Scopes>, ConfigError> {
        match &self.scopes {
            Some(scopes) => Ok(Some(scopes.clone())),
            None => env::scopes(self.lookup()),
        }
    }

    /// DPoP as set, else `FILEVINE_DPOP`, else off.
    pub(crate) fn dpop(&self) -> Result<bool, ConfigError> {
        match self.dpop {
            Some(enabled) => Ok(enabled),
            None => env::flag(self.lookup(), env::DPOP),
        }
    }
}

/// The setters of [`Settings`], written into a builder's `impl` block (the
/// builder holds them in a field named `settings`).
macro_rules! settings_setters {
    () => {
        /// The region or custom authority (the issuer). Default:
        /// `FILEVINE_AUTHORITY` / `FILEVINE_REGION`, else US.
        pub fn region(mut self, region: $crate::config::region::Region) -> Self {
            self.settings.region = Some(region);
            self
        }

        /// The scopes to request. Default: `FILEVINE_SCOPES`, else the
        /// gateway scopes for a personal access token or client
        /// credentials, the partner app's for a sign-in (which always asks
        /// for `openid`); a refresh asks for the original scopes.
        pub fn scopes(mut self, scopes: $crate::config::scope::Scopes) -> Self {
            self.settings.scopes = Some(scopes);
            self
        }

        /// Connect timeout (default 3 s). Ignored with an HTTP client of
        /// the application's.
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.connect_timeout = timeout;
            self
        }

        /// Timeout of one request attempt (default 10 s). Ignored with an
        /// HTTP client of the application's.
        pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.request_timeout = timeout;
            self
        }

        /// Read configuration from this function instead of the process
        /// environment.
        pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
            self.settings.env = Box::new(lookup);
            self
        }

        /// The clock every deadline, cache age and token time is read from
        /// (default: the system's). Tests pass a
        /// [`ManualTimeSource`]($crate::time::ManualTimeSource) to move time
        /// without sleeping.
        pub fn time_source(mut self, source: impl $crate::time::TimeSource + 'static) -> Self {
            self.settings.clock = $crate::time::Clock::Source(std::sync::Arc::new(source));
            self
        }

        /// Binds tokens to a DPoP key (RFC 9449): every token request, and
        /// every API call with the token, carries a proof signed with a
        /// new ES256 key that moves with the token set (into a token store
        /// too). Default: `FILEVINE_DPOP`, else off; a provider that
        /// refuses a request without a proof turns it on.
        pub fn dpop(mut self, enabled: bool) -> Self {
            self.settings.dpop = Some(enabled);
            self
        }
    };
}

pub(crate) use settings_setters;
