//! Failures the test server injects into token requests.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A failure to inject into the next token request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Answer with this status, content type and body.
    Status {
        /// HTTP status.
        status: u16,
        /// `Content-Type`.
        content_type: String,
        /// Body.
        body: String,
    },
    /// 429 with `Retry-After: <seconds>`.
    RateLimited {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Send the status line and headers, then drop the connection.
    DropConnection,
    /// A redirect (301, 302, 303, 307, 308) to `location`.
    Redirect {
        /// HTTP status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
}

impl Failure {
    /// A redirect to `location` (e.g. `307` to another server).
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::Redirect { status, location: location.to_owned() }
    }

    /// Filevine's error envelope with one message.
    pub fn filevine_envelope(status: u16, message: &str) -> Self {
        let body = serde_json::json!({
            "meta": {"pagination": {"limit": 0, "offset": 0, "total_count": 0}},
            "errors": [{"httpcode": status, "message": message}],
        });
        Self::Status { status, content_type: "application/json".into(), body: body.to_string() }
    }

    /// An RFC 6749 §5.2 error body.
    pub fn oauth_error(status: u16, error: &str, description: Option<&str>) -> Self {
        let mut body = serde_json::json!({ "error": error });
        if let Some(description) = description {
            body["error_description"] = description.into();
        }
        Self::Status { status, content_type: "application/json".into(), body: body.to_string() }
    }

    /// A status with a JSON body.
    pub fn json(status: u16, body: &str) -> Self {
        Self::Status { status, content_type: "application/json".into(), body: body.into() }
    }

    /// A status with a body that is not JSON (e.g. a proxy's HTML page).
    pub fn garbage(status: u16, body: &str) -> Self {
        Self::Status { status, content_type: "text/html".into(), body: body.into() }
    }
}

/// How the server writes `expires_in`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiresIn {
    /// A JSON number of seconds (the default, 1200).
    Seconds(i64),
    /// A JSON string, e.g. `"1200"`.
    Text(String),
    /// Leave the field out.
    Missing,
}

/// The failure response, or `None` to answer normally (after a delay).
pub(super) async fn injected(failure: Failure) -> Option<Response> {
    match failure {
        Failure::Status { status, content_type, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("text/plain"));
            Some((status, [(header::CONTENT_TYPE, content_type)], body).into_response())
        }
        Failure::RateLimited { retry_after_secs } => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "{\"error\":\"rate_limited\"}",
            )
                .into_response(),
        ),
        Failure::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Failure::Redirect { status, location } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
            let location = HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/"));
            Some((status, [(header::LOCATION, location)]).into_response())
        }
        Failure::DropConnection => {
            // Headers go out, then the body stream fails: hyper aborts the
            // connection mid-response.
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"access_token\":\"")),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "injected drop")),
            ];
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            Some((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
    }
}
