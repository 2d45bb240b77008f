//! Everything between the wire and [`Error`]: the HTTP client settings the
//! SDK uses, bounded reads, and the mapping of generated-client errors and
//! unexpected responses into typed, redacted errors.
//!
//! progenitor-client's errors print raw bodies and headers; they stop here.
//! Nothing from a response reaches an [`Error`] without going through
//! [`redact`](crate::redact::redact).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use filevine_identity::types::TokenError;

use crate::error::{ConfigError, DecodeError, Error, ErrorDetails, TransportError};
use crate::redact::{body_excerpt, redact};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default timeout of one request attempt.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The `User-Agent` of every request the SDK builds a client for.
pub(crate) const USER_AGENT: &str = concat!("filevine-identity-rs/", env!("CARGO_PKG_VERSION"));

/// Checks the settings of a client the SDK builds, without building it.
pub(crate) fn check_timeouts(connect_timeout: Duration, request_timeout: Duration) -> Result<(), ConfigError> {
    if connect_timeout.is_zero() {
        return Err(ConfigError::ZeroDuration { setting: "connect_timeout" });
    }
    if request_timeout.is_zero() {
        return Err(ConfigError::ZeroDuration { setting: "request_timeout" });
    }
    Ok(())
}

/// A `reqwest::Client` with the SDK's settings: both timeouts and its user
/// agent, plus `headers` on every request.
pub(crate) fn client(
    connect_timeout: Duration,
    request_timeout: Duration,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, ConfigError> {
    check_timeouts(connect_timeout, request_timeout)?;
    crate::crypto::install_default_provider();
    // Building the client loads and parses the system's root certificates
    // (milliseconds of CPU): logged, so a test can see it did not happen.
    tracing::debug!("building the HTTP client (TLS roots)");
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .user_agent(USER_AGENT)
        // A 307/308 would re-send the form body (client secret, PAT, code,
        // refresh token) to wherever the Location points: identity
        // requests never follow a redirect.
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .map_err(|e| ConfigError::HttpClient(TransportError::new(e)))
}

/// The HTTP client of a provider or an OIDC client, built on the first
/// request that needs it and shared by every clone (and by the providers an
/// `OidcClient` makes): building a provider loads no TLS roots and opens
/// nothing, so one built per process, job or request that never refreshes
/// costs microseconds, not the milliseconds of a TLS client.
#[derive(Clone)]
pub(crate) struct LazyClient(Arc<LazyInner>);

enum LazyInner {
    /// A client the caller built (its timeouts are its own).
    Ready(reqwest::Client),
    /// The SDK's settings; the client is built on the first request.
    Deferred { connect_timeout: Duration, request_timeout: Duration, client: OnceLock<reqwest::Client> },
}

impl LazyClient {
    /// A client with the SDK's settings, built on first use. The timeouts
    /// are checked now.
    pub(crate) fn new(connect_timeout: Duration, request_timeout: Duration) -> Result<Self, ConfigError> {
        check_timeouts(connect_timeout, request_timeout)?;
        Ok(Self(Arc::new(LazyInner::Deferred { connect_timeout, request_timeout, client: OnceLock::new() })))
    }

    /// A client the caller built (it already paid for its TLS roots).
    pub(crate) fn ready(client: reqwest::Client) -> Self {
        Self(Arc::new(LazyInner::Ready(client)))
    }

    /// The client, built now if this is the first request. Two threads
    /// racing here may both build one; the first stored wins and the other
    /// is dropped (a rare, harmless duplicate, never two in use).
    pub(crate) fn get(&self) -> Result<&reqwest::Client, Error> {
        match &*self.0 {
            LazyInner::Ready(client) => Ok(client),
            LazyInner::Deferred { connect_timeout, request_timeout, client: cell } => {
                if let Some(built) = cell.get() {
                    return Ok(built);
                }
                let built = client(*connect_timeout, *request_timeout, Default::default())?;
                Ok(cell.get_or_init(|| built))
            }
        }
    }

    /// The per-request timeout the client enforces, when the SDK sets it
    /// (a caller's own client has timeouts the SDK does not know).
    pub(crate) fn sdk_timeout(&self) -> Option<Duration> {
        match &*self.0 {
            LazyInner::Ready(_) => None,
            LazyInner::Deferred { request_timeout, .. } => Some(*request_timeout),
        }
    }

    /// Whether the client has been built.
    fn built(&self) -> bool {
        match &*self.0 {
            LazyInner::Ready(_) => true,
            LazyInner::Deferred { client, .. } => client.get().is_some(),
        }
    }

    /// Whether the client has been built (tests assert that building a
    /// provider does not).
    #[cfg(test)]
    pub(crate) fn is_built(&self) -> bool {
        self.built()
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient").field("built", &self.built()).finish_non_exhaustive()
    }
}

/// Longest `Retry-After` honoured.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Most bytes of an unexpected response body read for the error message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Wraps a progenitor-client error without letting its body or headers out.
pub(crate) async fn map_error(
    error: filevine_identity::Error<TokenError>,
    is_refresh: bool,
    attempt_timeout: Duration,
) -> Error {
    match error {
        filevine_identity::Error::ErrorResponse(response) => {
            let status = response.status().as_u16();
            classify(status, &ErrorDetails::from_body(response.as_ref()), is_refresh)
        }
        other => map_untyped_error(other, attempt_timeout).await,
    }
}

/// Wraps a progenitor-client error of an operation whose error responses
/// the spec does not type (discovery), or every variant but a typed error
/// response of one that does.
pub(crate) async fn map_untyped_error<T>(error: filevine_identity::Error<T>, attempt_timeout: Duration) -> Error {
    use filevine_identity::Error as E;
    match error {
        E::ErrorResponse(response) => Error::MalformedResponse {
            status: Some(response.status().as_u16()),
            reason: "an error response the SDK does not know".into(),
            excerpt: String::new(),
            source: None,
        },
        E::UnexpectedResponse(response) => unexpected_response(response, false).await,
        E::InvalidResponsePayload(body, error) => Error::MalformedResponse {
            status: None,
            // serde_json's message can quote values from the body; the
            // source keeps only its category and position.
            reason: "the body does not match the spec".into(),
            excerpt: body_excerpt(&body),
            source: Some(DecodeError::from(&error)),
        },
        E::CommunicationError(error) | E::ResponseBodyError(error) | E::InvalidUpgrade(error) => {
            network_error(error, attempt_timeout)
        }
        // The generated client could not build the request from a checked
        // base URL and typed body: a wire-level fault, reported as such.
        E::InvalidRequest(message) | E::Custom(message) => Error::Network {
            message: format!("the request could not be sent: {}", redact(&message, 200)),
            source: None,
        },
    }
}

/// Wraps a progenitor-client error of an operation whose error responses
/// have no body the SDK reads (userinfo: RFC 6750 puts the reason in
/// `WWW-Authenticate`): the status decides, 401 → invalid credentials,
/// 403 → forbidden.
#[cfg(feature = "oidc")]
pub(crate) async fn map_status_error(error: filevine_identity::Error<()>, attempt_timeout: Duration) -> Error {
    match error {
        filevine_identity::Error::ErrorResponse(response) => {
            classify(response.status().as_u16(), &ErrorDetails::default(), false)
        }
        other => map_untyped_error(other, attempt_timeout).await,
    }
}

/// Maps a reqwest error to [`Error::Timeout`] or [`Error::Network`].
pub(crate) fn network_error(error: reqwest::Error, attempt_timeout: Duration) -> Error {
    if error.is_timeout() {
        return Error::Timeout { after: attempt_timeout };
    }
    if let Some(too_large) = response_too_large(&error) {
        return Error::MalformedResponse {
            status: error.status().map(|s| s.as_u16()),
            reason: format!("the response is larger than {} bytes", too_large.limit),
            excerpt: String::new(),
            source: None,
        };
    }
    // The message names the host and port (the identity provider's, no
    // secrets) and the root cause (refused, reset, DNS, TLS…): the first
    // thing a person needs, which a reader of only the top-level message
    // (a CLI, a log line) would otherwise lose.
    let what = if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response broke off"
    } else {
        "the request failed"
    };
    let place = error.url().and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    let cause = root_cause(&error).map(|cause| crate::redact::redact(&cause, 200));
    let message = match (place, cause) {
        (Some(place), Some(cause)) => format!("{what}: {place}: {cause}"),
        (Some(place), None) => format!("{what}: {place}"),
        (None, Some(cause)) => format!("{what}: {cause}"),
        (None, None) => what.to_owned(),
    };
    Error::Network { message, source: Some(TransportError::new(error)) }
}

/// The text of the innermost cause of `error` (the OS's or TLS's words),
/// when there is one below reqwest's own.
fn root_cause(error: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(error)?;
    while let Some(deeper) = source.source() {
        source = deeper;
    }
    Some(source.to_string())
}

/// The generated client's body bound, when that is what stopped a read.
fn response_too_large(error: &reqwest::Error) -> Option<filevine_identity::ResponseTooLarge> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<filevine_identity::ResponseTooLarge>() {
            return Some(*found);
        }
        source = cause.source();
    }
    None
}

/// A 4xx with a typed body: which kind of rejection it is.
pub(crate) fn classify(status: u16, details: &ErrorDetails, is_refresh: bool) -> Error {
    let details = details.clone();
    match status {
        403 => Error::Forbidden { status, details },
        429 => Error::RateLimited { status, retry_after: None },
        _ if is_refresh && details.code.as_deref() == Some("invalid_grant") => {
            Error::SignInRequired { status, details }
        }
        _ => Error::InvalidCredentials { status, details },
    }
}

/// A status the spec does not list (401, 429, 5xx, …).
pub(crate) async fn unexpected_response(mut response: reqwest::Response, is_refresh: bool) -> Error {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    // Where it came from (an endpoint URL is no secret; the query is left
    // out): a 404 most often means the authority URL is not the identity
    // provider's (the gateway's, say).
    let mut url = response.url().clone();
    url.set_query(None);
    let undocumented = match status {
        404 => format!("{url} does not exist (is the authority URL the identity provider's, not the API gateway's?)"),
        _ => format!("a status {url} does not document"),
    };
    let body = read_limited(&mut response).await;
    match status {
        429 => Error::RateLimited { status, retry_after },
        500..=599 => Error::Server { status, body: body_excerpt(&body) },
        400..=499 => match serde_json::from_slice::<TokenError>(&body) {
            Ok(parsed) if parsed.error.is_some() || !parsed.errors.is_empty() => {
                classify(status, &ErrorDetails::from_body(&parsed), is_refresh)
            }
            _ if status == 401 => Error::InvalidCredentials { status, details: ErrorDetails::default() },
            _ => Error::MalformedResponse {
                status: Some(status),
                reason: undocumented,
                excerpt: body_excerpt(&body),
                source: None,
            },
        },
        300..=399 => Error::MalformedResponse {
            status: Some(status),
            reason: "a redirect, which identity requests never follow (it would re-send the credentials); check the authority URL".into(),
            excerpt: body_excerpt(&body),
            source: None,
        },
        _ => Error::MalformedResponse { status: Some(status), reason: undocumented, excerpt: body_excerpt(&body), source: None },
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a body; a broken connection
/// just ends the read.
pub(crate) async fn read_limited(response: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - body.len())]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &reqwest::header::HeaderValue, now: std::time::SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(text).ok()?.duration_since(now).unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::SystemTime;

    #[test]
    fn retry_after_seconds_dates_and_caps() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("100000"), now), Some(MAX_RETRY_AFTER));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&HeaderValue::from_str(&date).unwrap(), now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&HeaderValue::from_str(&past).unwrap(), now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon"), now), None);
    }

    #[test]
    fn classification() {
        let grant = ErrorDetails::oauth("invalid_grant", Some("expired"));
        assert!(matches!(classify(400, &grant, true), Error::SignInRequired { status: 400, .. }));
        assert!(matches!(classify(400, &grant, false), Error::InvalidCredentials { .. }));
        assert!(matches!(classify(403, &grant, true), Error::Forbidden { .. }));
        let client = ErrorDetails::oauth("invalid_client", None);
        assert!(matches!(classify(400, &client, true), Error::InvalidCredentials { .. }));
    }
}
