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

#[cfg(feature = "metrics")]
mod emit {
    use super::Duration;

    /// `authority` and `grant`, and `tenant` when the provider has one.
    fn labels(authority: &str, grant: &'static str, tenant: Option<&str>) -> Vec<metrics::Label> {
        let mut labels =
            vec![metrics::Label::new("authority", authority.to_owned()), metrics::Label::new("grant", grant)];
        labels.extend(tenant.map(|tenant| metrics::Label::new("tenant", tenant.to_owned())));
        labels
    }

    pub(crate) fn refresh(
        authority: &str,
        grant: &'static str,
        tenant: Option<&str>,
        outcome: &'static str,
        took: Duration,
    ) {
        let labels = labels(authority, grant, tenant);
        let mut with_outcome = labels.clone();
        with_outcome.push(metrics::Label::new("outcome", outcome));
        metrics::counter!("filevine_identity_refreshes_total", with_outcome).increment(1);
        metrics::histogram!("filevine_identity_refresh_duration_seconds", labels).record(took.as_secs_f64());
    }

    pub(crate) fn served_stale(authority: &str, grant: &'static str, tenant: Option<&str>) {
        metrics::counter!("filevine_identity_served_stale_total", labels(authority, grant, tenant)).increment(1);
    }

    pub(crate) fn waiter(authority: &str, grant: &'static str, tenant: Option<&str>) {
        metrics::counter!("filevine_identity_refresh_waiters_total", labels(authority, grant, tenant)).increment(1);
    }

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
    use super::Duration;

    pub(crate) fn refresh(_: &str, _: &'static str, _: Option<&str>, _: &'static str, _: Duration) {}
    pub(crate) fn served_stale(_: &str, _: &'static str, _: Option<&str>) {}
    pub(crate) fn waiter(_: &str, _: &'static str, _: Option<&str>) {}
    pub(crate) fn lease_wait(_: &str, _: &'static str, _: Option<&str>) {}
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn replication_shortfall(_: &'static str, _: &str) {}
    pub(crate) fn unsaved(_: &str, _: &'static str, _: Option<&str>) {}
    pub(crate) fn registry_size(_: usize) {}
    pub(crate) fn registry_eviction(_: &'static str) {}
}

#[cfg(feature = "redis")]
pub(crate) use emit::replication_shortfall;
pub(crate) use emit::{lease_wait, refresh, registry_eviction, registry_size, served_stale, unsaved, waiter};
