//! [`TokenProviderBuilder::build`], in steps: resolve the region and
//! scopes, the grant and what the provider starts with, check the retry
//! settings, link the token store, then assemble the engine. Each step
//! resolves what was not set from the environment and validates it; none
//! sends anything.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::builder::TokenProviderBuilder;
use super::cache::{Current, Timing};
use super::derived_key::SourcedKey;
use super::engine::Inner;
use super::handle::TokenProvider;
use super::link::StoreLink;
use super::sync::next_provider_id;
use super::wire::Wire;
use crate::config::env::{Lookup, STORE_KEY, TOKEN_STORE};
use crate::config::region::Region;
use crate::config::scope::Scopes;
use crate::error::ConfigError;
use crate::grant::{
    AccessToken, ClientAuth, ClientId, CredentialSource as _, Credentials, Grant, IdToken, RefreshToken,
};
use crate::http::LazyClient;
use crate::store::StoreEncryptionKeys;

/// What the provider starts with: its credentials, a token already in
/// hand (a sign-in's), and the refresh and ID tokens of that grant.
struct Start {
    credentials: Credentials,
    initial: Option<AccessToken>,
    refresh_token: Option<RefreshToken>,
    id_token: Option<IdToken>,
}

impl TokenProviderBuilder {
    /// Validates the configuration and builds the provider. Sends nothing.
    ///
    /// # Errors
    /// A [`ConfigError`] naming what is missing or wrong.
    pub fn build(mut self) -> Result<TokenProvider, ConfigError> {
        let region = self.settings.region()?;
        let scopes = self.settings.scopes()?;
        let dpop = self.settings.dpop()?;
        // Taken out, so the steps can borrow the builder mutably while they
        // read it.
        let env = std::mem::replace(&mut self.settings.env, Box::new(|_| None));
        let lookup: Lookup<'_> = &*env;
        self.check_source_alone()?;
        let start = self.start(lookup)?;
        self.check_retry()?;
        // Nothing is built or opened here: the HTTP client (and its TLS
        // roots) comes with the first request that needs it.
        let http = match self.http_client.take() {
            Some(client) => client,
            None => LazyClient::new(self.settings.connect_timeout, self.settings.request_timeout)?,
        };
        if self.background_refresh && tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime { feature: "background refresh" });
        }
        let scope = scopes.as_ref().map(Scopes::to_string).or_else(|| match start.credentials.grant {
            // PAT and client credentials ask for the gateway scopes by default.
            Grant::PersonalAccessToken(_) | Grant::ClientCredentials | Grant::Sourced(_) => {
                Some(Scopes::gateway().to_string())
            }
            Grant::RefreshToken(_) | Grant::StoredRefreshToken => None,
        });
        let (store, sourced_key) = self.link_store(lookup, &region, &start, scope.as_deref())?;
        Ok(self.assemble(Parts { region, scope, start, http, store, sourced_key, dpop }))
    }

    /// A credential source is the only source of credentials.
    fn check_source_alone(&self) -> Result<(), ConfigError> {
        if self.source.is_none() {
            return Ok(());
        }
        let other = if self.credentials.is_some() {
            Some("fixed credentials")
        } else if self.token_set.is_some() {
            Some("a token set")
        } else if self.stored_session.is_some() {
            Some("a stored session")
        } else {
            None
        };
        match other {
            Some(other) => Err(ConfigError::SourceWithCredentials { other }),
            None => Ok(()),
        }
    }

    /// The grant: a stored session, a sign-in's token set, the credentials
    /// or source given, else the environment's.
    fn start(&mut self, lookup: Lookup<'_>) -> Result<Start, ConfigError> {
        let start = match (self.token_set.take(), self.stored_session.take()) {
            (_, Some(client)) => Start {
                credentials: Credentials { grant: Grant::StoredRefreshToken, client: Some(client) },
                initial: None,
                refresh_token: None,
                id_token: None,
            },
            (Some((set, client)), None) => {
                let refresh = set.refresh_token.clone().ok_or(ConfigError::NoRefreshToken)?;
                let credentials = Credentials { grant: Grant::RefreshToken(refresh.clone()), client: Some(client) };
                Start {
                    credentials,
                    initial: Some(set.access_token),
                    refresh_token: Some(refresh),
                    id_token: set.id_token,
                }
            }
            (None, None) => {
                let credentials = match (self.credentials.take(), &self.source) {
                    (Some(credentials), _) => credentials,
                    (None, Some(source)) => Credentials { grant: Grant::Sourced(source.grant_type()), client: None },
                    (None, None) => match crate::grant::source::from_lookup(lookup)? {
                        Some(source) => {
                            let credentials = Credentials { grant: Grant::Sourced(source.grant_type()), client: None };
                            self.source = Some(Arc::new(source));
                            credentials
                        }
                        None => Credentials::from_lookup(lookup)?,
                    },
                };
                let refresh_token = match &credentials.grant {
                    Grant::RefreshToken(token) => Some(token.clone()),
                    _ => None,
                };
                Start { credentials, initial: None, refresh_token, id_token: None }
            }
        };
        Ok(start)
    }

    fn check_retry(&self) -> Result<(), ConfigError> {
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        if self.retry.total_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { setting: "total_timeout" });
        }
        Ok(())
    }

    /// The token store (given, else `FILEVINE_TOKEN_STORE`), its key, its
    /// seal and lease; and how a credential source keys it.
    fn link_store(
        &mut self,
        lookup: Lookup<'_>,
        region: &Region,
        start: &Start,
        scope: Option<&str>,
    ) -> Result<(Option<StoreLink>, Option<SourcedKey>), ConfigError> {
        let credentials = &start.credentials;
        let store = match self.store.take() {
            Some(store) => Some(store),
            None => lookup(TOKEN_STORE)
                .filter(|v| !v.trim().is_empty())
                .map(|spec| crate::store::open(&spec))
                .transpose()?,
        };
        let Some(store) = store else {
            if matches!(credentials.grant, Grant::StoredRefreshToken) {
                return Err(ConfigError::NoStore);
            }
            return Ok((None, None));
        };
        let seal = match self.store_encryption_keys.take() {
            Some(keys) => Some(keys),
            None => lookup(STORE_KEY)
                .filter(|v| !v.trim().is_empty())
                .map(|v| StoreEncryptionKeys::parse(&v))
                .transpose()?,
        };
        if self.store_idle_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration { setting: "store_idle_timeout" });
        }
        if seal.is_none() && store.requires_encryption() {
            return Err(ConfigError::StoreNeedsEncryption { store: store.kind() });
        }
        // Bound to this authority and client: another app on the same
        // store never shares a token set by session name.
        let named = self
            .store_key
            .take()
            .map(|key| key.bound(region.identity_url(), credentials.client_id().map_or("", ClientId::as_str)));
        let sourced_key = matches!(credentials.grant, Grant::Sourced(_)).then(|| match &named {
            Some(named) => SourcedKey::Named(named.clone()),
            None => SourcedKey::Derived,
        });
        let key = match named {
            Some(key) => key,
            None => super::derived_key::derived_key(region, credentials, self.source.as_deref(), scope)
                .ok_or(ConfigError::StoreKeyRequired)?,
        };
        let lease = self.lease_time.unwrap_or(self.retry.total_timeout.saturating_add(Duration::from_secs(5)));
        if lease < self.retry.total_timeout {
            return Err(ConfigError::LeaseTooShort { lease, total_timeout: self.retry.total_timeout });
        }
        if start.initial.is_some() && !self.allow_unsaved {
            return Err(ConfigError::UnsavedTokenSet);
        }
        let strict = credentials.is_refresh();
        let link =
            StoreLink::new((store, key), seal, (self.store_idle_timeout, lease), strict, self.settings.clock.clone());
        Ok((Some(link), sourced_key))
    }

    /// The engine, and the provider on it, starting with the token in
    /// hand (or, refreshing in the background, with a refresh).
    fn assemble(self, parts: Parts) -> TokenProvider {
        let Parts { region, scope, start, http, store, sourced_key, dpop } = parts;
        let Start { credentials, initial, refresh_token, id_token } = start;
        let enforced_attempt_timeout = http.sdk_timeout();
        let dpop_key = initial.as_ref().and_then(|token| token.dpop_key().cloned());
        let mut wire = Wire::new(http, region.identity_url(), self.resolve, self.settings.clock.clone());
        if let Some(ClientAuth { id, key: Some(key), .. }) = &credentials.client {
            wire = wire.with_client_key(key.clone(), id.as_str());
        }
        let metrics = crate::metrics::ProviderMetrics::new(
            region.identity_url(),
            credentials.grant_type(),
            self.tenant.as_deref(),
        );
        let inner = Arc::new(Inner {
            id: next_provider_id(),
            metrics,
            wire,
            dpop,
            dpop_demanded: AtomicBool::new(false),
            dpop_key: Mutex::new(dpop_key),
            region,
            scope,
            credentials,
            source: self.source,
            sourced_key,
            tenant: self.tenant,
            refresh_token: Mutex::new(refresh_token),
            id_token: Mutex::new(id_token),
            timing: Timing { hard_margin: self.hard_margin, soft_window: self.soft_window },
            expiry: self.expiry,
            retry: self.retry,
            enforced_attempt_timeout,
            request_timeout: self.settings.request_timeout,
            clock: self.settings.clock,
            jitter: self.jitter,
            background: self.background_refresh,
            current: Current::default(),
            generation: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            flight: Mutex::default(),
            timer: Mutex::new(None),
            runtime: tokio::runtime::Handle::try_current().ok(),
            store,
            epoch: AtomicU64::new(0),
            signed_out: AtomicBool::new(false),
            revoke: self.revoke,
            check_id_token: self.check_id_token,
        });
        match initial {
            Some(token) => {
                let cached = inner.timing.deadlines(token.clone(), inner.clock.now(), token.expires_in(), inner.jitter);
                inner.set_current(Some(Arc::new(cached)));
            }
            // Refreshing in the background starts with the first token.
            None if self.background_refresh => Inner::start_soft_refresh(&inner),
            None => {}
        }
        TokenProvider { inner }
    }
}

/// What the steps resolved, for [`TokenProviderBuilder::assemble`].
struct Parts {
    region: Region,
    scope: Option<String>,
    start: Start,
    http: LazyClient,
    store: Option<StoreLink>,
    sourced_key: Option<SourcedKey>,
    dpop: bool,
}
