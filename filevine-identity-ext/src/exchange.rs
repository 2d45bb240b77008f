//! One token request through the generated client, and the translation of
//! everything it can return into [`Error`].
//!
//! progenitor-client's errors print raw bodies and headers; they stop here.
//! Nothing from a response reaches an [`Error`] without going through
//! [`crate::error::redact`].

use std::time::{Duration, Instant};

use filevine_identity::Client;
use filevine_identity::types::{
    ClientCredentialsRequest, ClientCredentialsRequestGrantType, PersonalAccessTokenRequest,
    PersonalAccessTokenRequestGrantType, RefreshTokenRequest, RefreshTokenRequestGrantType, TokenError, TokenRequest,
};

use crate::credentials::{Credentials, Grant, RefreshToken};
use crate::error::{Error, ErrorDetails, body_excerpt};
use crate::scope::Scopes;
use crate::token::{ExpiryPolicy, TokenSet};

/// Longest `Retry-After` honoured.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Most bytes of an unexpected response body read for the error message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The form body for `credentials`. `refresh_token` is the current (possibly
/// rotated) refresh token for the refresh grant.
pub(crate) fn token_request(
    credentials: &Credentials,
    refresh_token: Option<&RefreshToken>,
    scope: Option<&str>,
) -> TokenRequest {
    let client_id = credentials.client.as_ref().map(|c| c.id.as_str().to_owned());
    let client_secret = credentials.client.as_ref().and_then(|c| c.secret.as_ref()).map(|s| s.secret().clone());
    let scope = scope.map(str::to_owned);
    match &credentials.grant {
        Grant::PersonalAccessToken(pat) => PersonalAccessTokenRequest {
            grant_type: PersonalAccessTokenRequestGrantType::PersonalAccessToken,
            token: pat.secret().clone(),
            scope: scope.unwrap_or_else(|| Scopes::gateway().to_string()),
            client_id,
            client_secret,
        }
        .into(),
        Grant::ClientCredentials => ClientCredentialsRequest {
            grant_type: ClientCredentialsRequestGrantType::ClientCredentials,
            client_id: client_id.unwrap_or_default(),
            client_secret: client_secret.unwrap_or_default(),
            scope,
        }
        .into(),
        Grant::RefreshToken(initial) => RefreshTokenRequest {
            grant_type: RefreshTokenRequestGrantType::RefreshToken,
            refresh_token: refresh_token.unwrap_or(initial).secret().clone(),
            scope,
            client_id,
            client_secret,
        }
        .into(),
    }
}

/// Sends one token request and turns the answer into a [`TokenSet`] or an
/// [`Error`]. `is_refresh` makes `invalid_grant` mean "sign in again".
pub(crate) async fn exchange(
    client: &Client,
    request: &TokenRequest,
    is_refresh: bool,
    policy: &ExpiryPolicy,
    attempt_timeout: Duration,
) -> Result<TokenSet, Error> {
    match client.get_access_token(request).await {
        Ok(response) => {
            // Expiry counts from the moment the response arrived.
            let received_at = Instant::now();
            TokenSet::from_response_with(response.into_inner(), received_at, policy)
        }
        Err(error) => Err(map_error(error, is_refresh, attempt_timeout).await),
    }
}

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
        },
        E::UnexpectedResponse(response) => unexpected_response(response, false).await,
        E::InvalidResponsePayload(body, error) => Error::MalformedResponse {
            status: None,
            // serde_json's message can quote values from the body; keep only
            // its category and position.
            reason: format!(
                "the body does not match the spec ({:?} error at line {} column {})",
                error.classify(),
                error.line(),
                error.column()
            ),
            excerpt: body_excerpt(&body),
        },
        E::CommunicationError(error) | E::ResponseBodyError(error) | E::InvalidUpgrade(error) => {
            network_error(&error, attempt_timeout)
        }
        E::InvalidRequest(message) => Error::Config(crate::ConfigError::Invalid(format!(
            "the request could not be built: {}",
            crate::error::redact(&message, 200)
        ))),
        E::Custom(message) => Error::Network { message: crate::error::redact(&message, 200) },
    }
}

/// Maps a reqwest error to [`Error::Timeout`] or [`Error::Network`].
pub(crate) fn network_error(error: &reqwest::Error, attempt_timeout: Duration) -> Error {
    if error.is_timeout() {
        return Error::Timeout { after: attempt_timeout };
    }
    // The error chain names the URL (the token endpoint, no secrets) and the
    // cause (refused, reset, DNS…).
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Network { message: crate::error::redact(&message, 300) }
}

/// A 4xx with a typed body: which kind of rejection it is.
fn classify(status: u16, details: &ErrorDetails, is_refresh: bool) -> Error {
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
                reason: "a status the token endpoint does not document".into(),
                excerpt: body_excerpt(&body),
            },
        },
        _ => Error::MalformedResponse {
            status: Some(status),
            reason: "a status the token endpoint does not document".into(),
            excerpt: body_excerpt(&body),
        },
    }
}

/// Sends a hand-written request (JWKS, userinfo, revocation: not in the
/// spec) and returns the body of a 2xx, at most `max_bytes` of it; any other
/// status is classified like the token endpoint's.
pub(crate) async fn send_bounded(
    request: reqwest::RequestBuilder,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    let mut response = request.send().await.map_err(|e| network_error(&e, timeout))?;
    if !response.status().is_success() {
        return Err(unexpected_response(response, false).await);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network_error(&e, timeout))? {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(Error::MalformedResponse {
                status: Some(response.status().as_u16()),
                reason: format!("the response is larger than {max_bytes} bytes"),
                excerpt: String::new(),
            });
        }
    }
    Ok(body)
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a body; a broken connection
/// just ends the read.
async fn read_limited(response: &mut reqwest::Response) -> Vec<u8> {
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
