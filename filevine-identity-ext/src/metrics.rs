//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`); without the feature every function here is empty and
//! compiles away. Install any `metrics` recorder (Prometheus, StatsD, …)
//! and these appear:
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `filevine_identity_refreshes_total` | counter | `authority`, `grant`, `outcome`, `tenant` | token requests of the cache, by result (`ok`, `rejected`, `sign_in_required`, `forbidden`, `rate_limited`, `server`, `network`, `timeout`, `malformed`, `store`, `other`) |
//! | `filevine_identity_refresh_duration_seconds` | histogram | `authority`, `grant`, `tenant` | how long a refresh took, retries and store included |
//! | `filevine_identity_served_stale_total` | counter | `authority`, `grant`, `tenant` | a token due for refresh (in its soft window), still before its deadline, was served while a refresh ran or after it failed |
//! | `filevine_identity_refresh_waiters_total` | counter | `authority`, `grant`, `tenant` | callers that joined a refresh already in flight (single flight) |
//! | `filevine_identity_store_lease_waits_total` | counter | `authority`, `store`, `tenant` | times a refresh found the token store's lease held by another process and waited |
//! | `filevine_identity_store_replication_shortfall_total` | counter | `store`, `url` | a saved token set was used although fewer replicas than asked acknowledged it in time (Redis `WAIT`; `url` is the store's URL without user and password) |
//! | `filevine_identity_registry_providers` | gauge | | providers a `TokenProviders` registry holds (the last registry to change) |
//! | `filevine_identity_registry_evictions_total` | counter | `reason` | providers a registry dropped: `capacity` (least recently used, at the bound) or `idle` |
//! | `filevine_identity_store_unsaved_total` | counter | `authority`, `store`, `tenant` | a new token set could not be saved at once; its refresh keeps the lease and retries until it is saved |
//!
//! No label carries a secret: the authority is the identity provider's URL,
//! the grant its `grant_type`, and `tenant` (only on providers given one,
//! e.g. by a `TokenProviders` registry) the caller's non-secret label, such
//! as a firm's id.

use std::time::Duration;

use crate::error::Error;

/// The `outcome` label of a refresh.
pub(crate) fn outcome(result: Result<(), &Error>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(Error::InvalidCredentials { .. }) => "rejected",
        Err(Error::SignInRequired { .. }) => "sign_in_required",
        Err(Error::Forbidden { .. }) => "forbidden",
        Err(Error::RateLimited { .. }) => "rate_limited",
        Err(Error::Server { .. }) => "server",
        Err(Error::Network { .. }) => "network",
        Err(Error::Timeout { .. }) => "timeout",
        Err(Error::MalformedResponse { .. }) => "malformed",
        Err(Error::Store(_) | Error::NotStored { .. }) => "store",
        Err(_) => "other",
    }
}

/// A provider's labels and the keys of its metrics, made once when the
/// provider is built: a refresh then emits without allocating (the keys of
/// the facade's macros are built, labels and all, on every call).
#[cfg(feature = "metrics")]
pub(crate) struct ProviderMetrics {
    /// `authority` and `grant`, and `tenant` when the provider has one; the
    /// strings are shared, so cloning a label copies no text.
    labels: Vec<metrics::Label>,
    refreshed_ok: metrics::Key,
    refresh_duration: metrics::Key,
    served_stale: metrics::Key,
    waiters: metrics::Key,
}

#[cfg(feature = "metrics")]
impl ProviderMetrics {
    /// The keys of a provider of `grant` at `authority`, for `tenant`.
    pub(crate) fn new(authority: &str, grant: &'static str, tenant: Option<&str>) -> Self {
        let shared = |text: &str| metrics::SharedString::from(std::sync::Arc::<str>::from(text));
        let mut labels = vec![metrics::Label::new("authority", shared(authority)), metrics::Label::new("grant", grant)];
        labels.extend(tenant.map(|tenant| metrics::Label::new("tenant", shared(tenant))));
        let key = |name: &'static str| metrics::Key::from_parts(name, labels.clone());
        Self {
            refreshed_ok: Self::with_outcome(&labels, "ok"),
            refresh_duration: key(REFRESH_DURATION),
            served_stale: key(SERVED_STALE),
            waiters: key(WAITERS),
            labels,
        }
    }

    fn with_outcome(labels: &[metrics::Label], outcome: &'static str) -> metrics::Key {
        let mut labels = labels.to_vec();
        labels.push(metrics::Label::new("outcome", outcome));
        metrics::Key::from_parts(REFRESHES, labels)
    }

    /// A refresh ended with `outcome` after `took`.
    pub(crate) fn refresh(&self, outcome: &'static str, took: Duration) {
        metrics::with_recorder(|recorder| {
            match outcome {
                "ok" => recorder.register_counter(&self.refreshed_ok, &METADATA).increment(1),
                other => recorder.register_counter(&Self::with_outcome(&self.labels, other), &METADATA).increment(1),
            }
            recorder.register_histogram(&self.refresh_duration, &METADATA).record(took.as_secs_f64());
        });
    }

    /// A token in its soft window was served.
    pub(crate) fn served_stale(&self) {
        metrics::with_recorder(|recorder| recorder.register_counter(&self.served_stale, &METADATA).increment(1));
    }

    /// A caller joined the refresh in flight.
    pub(crate) fn waiter(&self) {
        metrics::with_recorder(|recorder| recorder.register_counter(&self.waiters, &METADATA).increment(1));
    }
}

/// What the facade's macros would say about these metrics: this module, at
/// level INFO.
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

#[cfg(feature = "metrics")]
const REFRESHES: &str = "filevine_identity_refreshes_total";
#[cfg(feature = "metrics")]
const REFRESH_DURATION: &str = "filevine_identity_refresh_duration_seconds";
#[cfg(feature = "metrics")]
const SERVED_STALE: &str = "filevine_identity_served_stale_total";
#[cfg(feature = "metrics")]
const WAITERS: &str = "filevine_identity_refresh_waiters_total";

/// Without the `metrics` feature: nothing to keep, nothing to emit.
#[cfg(not(feature = "metrics"))]
pub(crate) struct ProviderMetrics;

#[cfg(not(feature = "metrics"))]
impl ProviderMetrics {
    pub(crate) fn new(_: &str, _: &'static str, _: Option<&str>) -> Self {
        Self
    }
    pub(crate) fn refresh(&self, _: &'static str, _: Duration) {}
    pub(crate) fn served_stale(&self) {}
    pub(crate) fn waiter(&self) {}
}

#[cfg(feature = "metrics")]
mod emit {
    /// `authority` and `store`, and `tenant` when the provider has one.
    fn store_labels(authority: &str, store: &'static str, tenant: Option<&str>) -> Vec<metrics::Label> {
        let mut labels =
            vec![metrics::Label::new("authority", authority.to_owned()), metrics::Label::new("store", store)];
        labels.extend(tenant.map(|tenant| metrics::Label::new("tenant", tenant.to_owned())));
        labels
    }

    pub(crate) fn lease_wait(authority: &str, store: &'static str, tenant: Option<&str>) {
        metrics::counter!("filevine_identity_store_lease_waits_total", store_labels(authority, store, tenant))
            .increment(1);
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn replication_shortfall(store: &'static str, url: &str) {
        metrics::counter!("filevine_identity_store_replication_shortfall_total", "store" => store, "url" => url.to_owned())
            .increment(1);
    }

    pub(crate) fn unsaved(authority: &str, store: &'static str, tenant: Option<&str>) {
        metrics::counter!("filevine_identity_store_unsaved_total", store_labels(authority, store, tenant)).increment(1);
    }

    pub(crate) fn registry_size(providers: usize) {
        metrics::gauge!("filevine_identity_registry_providers").set(providers as f64);
    }

    pub(crate) fn registry_eviction(reason: &'static str) {
        metrics::counter!("filevine_identity_registry_evictions_total", "reason" => reason).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod emit {
    pub(crate) fn lease_wait(_: &str, _: &'static str, _: Option<&str>) {}
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn replication_shortfall(_: &'static str, _: &str) {}
    pub(crate) fn unsaved(_: &str, _: &'static str, _: Option<&str>) {}
    pub(crate) fn registry_size(_: usize) {}
    pub(crate) fn registry_eviction(_: &'static str) {}
}

#[cfg(feature = "redis")]
pub(crate) use emit::replication_shortfall;
pub(crate) use emit::{lease_wait, registry_eviction, registry_size, unsaved};
