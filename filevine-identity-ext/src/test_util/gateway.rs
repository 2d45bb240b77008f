//! The API gateway stub: accepts only tokens this server issued, records
//! what it received.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::model::{GatewayRequest, lock};
use super::response::json_response;
use super::state::Shared;

/// Records a gateway request and checks its bearer token: `Some(401)`
/// unless it is one this server issued (or a rejection is queued).
fn gateway_check(shared: &Shared, method: &str, path: &str, headers: &HeaderMap) -> Option<Response> {
    gateway_check_with(shared, method, path, headers, "", b"")
}

/// [`gateway_check`], recording the query and body too.
fn gateway_check_with(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    query: &str,
    body: &[u8],
) -> Option<Response> {
    shared.gateway_requests.fetch_add(1, Ordering::SeqCst);
    let reject = {
        let mut registry = lock(&shared.registry);
        registry.gateway_log.push(GatewayRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            query: query.to_owned(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        let reject = registry.gateway_rejections > 0;
        registry.gateway_rejections = registry.gateway_rejections.saturating_sub(1);
        // A DPoP-bound token only with a proof from its key for this request.
        if let Err(refused) = registry.proofs.resource(headers, method, &format!("{}/gateway{path}", shared.base_url)) {
            return Some(refused);
        }
        reject
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("DPoP ")))
        .unwrap_or_default();
    if reject || !shared.is_valid_access_token(token) {
        return Some(
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")]).into_response(),
        );
    }
    None
}

/// Any other request under the gateway's `/fv-app/`: checked and recorded as the others,
/// then answered with the next of [`TestServer::answer_next_gateway_request`](super::TestServer::answer_next_gateway_request)'s
/// answers (404 when none is queued).
pub(super) async fn gateway_scripted(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/gateway").unwrap_or(uri.path());
    if let Some(rejected) =
        gateway_check_with(&shared, method.as_str(), path, &headers, uri.query().unwrap_or(""), &body)
    {
        return rejected;
    }
    let answer = lock(&shared.registry).gateway_answers.pop_front();
    match answer {
        Some((status, Some(body))) => json_response(status, body),
        Some((status, None)) => StatusCode::from_u16(status).unwrap_or(StatusCode::OK).into_response(),
        None => json_response(404, serde_json::json!({"message": "no answer queued for this request"})),
    }
}

/// `POST {gateway}/fv-app/v2/utils/GetUserOrgsWithToken`.
pub(super) async fn gateway_user_orgs(State(shared): State<Arc<Shared>>, headers: HeaderMap, _body: Bytes) -> Response {
    if let Some(rejected) = gateway_check(&shared, "POST", "/fv-app/v2/utils/GetUserOrgsWithToken", &headers) {
        return rejected;
    }
    json_response(
        200,
        serde_json::json!({
            "user": {"userId": {"native": 1001, "partner": null}, "username": "test.user", "email": "test@example.test"},
            "orgs": [{"orgId": 42, "name": "Test Law Firm"}, {"orgId": 43, "name": "Second Firm"}],
        }),
    )
}

/// `GET {gateway}/fv-app/v2/Users/Me`: needs `x-fv-orgid` and `x-fv-userid`.
pub(super) async fn gateway_users_me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(rejected) = gateway_check(&shared, "GET", "/fv-app/v2/Users/Me", &headers) {
        return rejected;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    match (header("x-fv-orgid"), header("x-fv-userid")) {
        (Some(org), Some(user)) => {
            json_response(200, serde_json::json!({"orgId": org, "userId": user, "firstName": "Test"}))
        }
        _ => json_response(400, serde_json::json!({"message": "x-fv-orgid and x-fv-userid are required"})),
    }
}

/// The products `CreateUserRequest.products` may hold (the spec's
/// `FilevineProductType`).
const PRODUCTS: [&str; 8] =
    ["Filevine", "Copilot", "ClientPortal", "LeadDocket", "Outlaw", "Timely", "Vinesign", "Payments"];

/// `POST {gateway}/identity/user` (Create User Invite): the bearer token,
/// integer `x-fv-orgid` / `x-fv-userid`, and a body as the spec's
/// `CreateUserRequest` describes it; answers `{"userId": <uuid>}`, 400 for
/// what fails validation, 403 when invites are forbidden.
pub(super) async fn gateway_create_user_invite(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(rejected) = gateway_check(&shared, "POST", "/identity/user", &headers) {
        return rejected;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    if header("x-fv-orgid").is_none() || header("x-fv-userid").is_none() {
        return invalid("x-fv-orgid and x-fv-userid are required integers");
    }
    if lock(&shared.registry).invites_forbidden {
        return json_response(403, serde_json::json!({"message": "the requesting user may not invite users"}));
    }
    let Ok(invite) = serde_json::from_slice::<serde_json::Value>(&body) else { return invalid("the body is not JSON") };
    if let Err(reason) = check_invite(&invite) {
        return invalid(reason);
    }
    let mut registry = lock(&shared.registry);
    registry.sequence += 1;
    let user_id = format!("00000000-0000-4000-8000-{:012x}", registry.sequence);
    registry.user_invites.push(invite);
    json_response(200, serde_json::json!({"userId": user_id}))
}

fn invalid(reason: &str) -> Response {
    json_response(400, serde_json::json!({"message": reason}))
}

/// The spec's `CreateUserRequest`: `tenantId` a UUID, `lastName` a
/// string, `products` a list of known products (all three required);
/// `email` a string, `firstName` and `referenceObject` a string or null.
fn check_invite(invite: &serde_json::Value) -> Result<(), &'static str> {
    let text = |name: &str| invite.get(name).and_then(serde_json::Value::as_str);
    if !text("tenantId").is_some_and(is_uuid) {
        return Err("tenantId must be a UUID");
    }
    if text("lastName").is_none_or(|name| name.trim().is_empty()) {
        return Err("lastName is required");
    }
    let products = invite.get("products").and_then(serde_json::Value::as_array);
    if !products.is_some_and(|p| !p.is_empty() && p.iter().all(|v| v.as_str().is_some_and(|v| PRODUCTS.contains(&v)))) {
        return Err("products must list at least one known product");
    }
    for name in ["firstName", "referenceObject"] {
        if invite.get(name).is_some_and(|v| !(v.is_null() || v.is_string())) {
            return Err("firstName and referenceObject are strings or null");
        }
    }
    if invite.get("email").is_some_and(|v| !v.is_string()) {
        return Err("email is a string");
    }
    Ok(())
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
