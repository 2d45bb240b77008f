//! JSON answers of the test server's endpoints, at the bottom of
//! `test_util`: every endpoint module imports them, they import none.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(super) fn json_response(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}

pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(status, serde_json::json!({"error": error, "error_description": description}))
}
