//! A one-off look at the identity provider, for diagnostics
//! (`filevine-auth doctor`): is the discovery document reachable, where is
//! its token endpoint, and what time does the server say it is.

use std::time::{Duration, SystemTime};

use crate::config::region::Region;
use crate::http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, LazyClient};
use crate::oidc::DiscoveryError;

/// What one discovery request told.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The issuer the document names.
    pub issuer: String,
    /// The token endpoint the document names.
    pub token_endpoint: String,
    /// The server's `Date` header, if it sent a valid one.
    pub server_time: Option<SystemTime>,
    /// When the answer arrived, on this machine's wall clock.
    pub local_time: SystemTime,
}

impl Probe {
    /// How far this machine's clock is ahead of the server's (negative:
    /// behind), in whole seconds; `None` without a `Date` header. `Date`
    /// has one-second resolution, so ±1 s is noise.
    pub fn clock_skew(&self) -> Option<i64> {
        let server = self.server_time?;
        Some(match self.local_time.duration_since(server) {
            Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
        })
    }
}

/// Fetches `region`'s discovery document once, through the generated
/// client, with the SDK's timeouts; no cache, nothing kept.
///
/// ```no_run
/// # async fn run() -> Result<(), filevine_identity_ext::oidc::DiscoveryError> {
/// let probe = filevine_identity_ext::oidc::probe(&filevine_identity_ext::Region::Us).await?;
/// println!("token endpoint {}, clock skew {:?} s", probe.token_endpoint, probe.clock_skew());
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`DiscoveryError::Fetch`] when the document cannot be fetched.
pub async fn probe(region: &Region) -> Result<Probe, DiscoveryError> {
    let base = region.identity_url().trim_end_matches('/').to_owned();
    let url = || format!("{base}/.well-known/openid-configuration");
    let fetch = |source| DiscoveryError::Fetch { url: url(), source };
    let http = LazyClient::new(DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT).map_err(|e| fetch(e.into()))?;
    let client = filevine_identity::Client::new_with_client(
        &base,
        http.get().map_err(fetch)?.clone(),
        filevine_identity::ClientOptions::new(),
    );
    let timeout: Duration = DEFAULT_REQUEST_TIMEOUT;
    let response = match client.get_openid_configuration().await {
        Ok(response) => response,
        Err(error) => return Err(fetch(crate::http::map_untyped_error(error, timeout).await)),
    };
    let local_time = SystemTime::now();
    let server_time = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| httpdate::parse_http_date(text).ok());
    let document = response.into_inner();
    Ok(Probe { issuer: document.issuer, token_endpoint: document.token_endpoint, server_time, local_time })
}
