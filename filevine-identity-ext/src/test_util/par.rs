//! Pushed authorization requests (RFC 9126) on the test server: the
//! endpoint that stores a client's request, and the lookup the
//! authorization endpoint makes for a `request_uri`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::model::{Pushed, PushedRequests, lock};
use super::response::{json_response, oauth_error};
use super::state::{Registry, Shared};

/// How long a pushed request may wait for the browser (oidc-provider's
/// default, as RFC 9126 §2.2 suggests: short).
const PUSHED_REQUEST_LIFETIME: Duration = Duration::from_secs(60);
/// The prefix of every `request_uri` (RFC 9126 §2.2).
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `POST /connect/par`: authenticates the client as the token endpoint
/// does, checks the redirect URI, and stores the parameters (without the
/// client's credentials) under a new `request_uri`.
pub(super) async fn pushed_authorization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.counts.par.fetch_add(1, Ordering::SeqCst);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut registry = lock(&shared.registry);
    let Some(client_id) = super::clients::authenticated_client(&registry, &headers, &form) else {
        return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    };
    let registered = registry.sign_in_clients.get(&client_id).map(|client| client.redirect_uris.clone());
    if !field("redirect_uri").is_some_and(|uri| registered.is_some_and(|uris| uris.contains(&uri))) {
        return oauth_error(400, "invalid_request", "redirect_uri is not registered for this client");
    }
    if field("request_uri").is_some() {
        return oauth_error(400, "invalid_request", "request_uri must not be pushed");
    }
    let parameters = form
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "client_secret" | "client_assertion" | "client_assertion_type"))
        .collect();
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", shared.next_value(&mut registry, "par"));
    let expires = Instant::now() + PUSHED_REQUEST_LIFETIME;
    registry.pushed_requests.insert(request_uri.clone(), Pushed { client_id, parameters, expires });
    json_response(201, serde_json::json!({"request_uri": request_uri, "expires_in": PUSHED_REQUEST_LIFETIME.as_secs()}))
}

/// The authorization request's parameters: the pushed ones its
/// `request_uri` names (used once, unexpired, the same client), or its
/// own. `Err`: what is wrong, as an OAuth error code and description.
pub(super) fn parameters(
    registry: &mut Registry,
    query: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, (&'static str, &'static str)> {
    let field = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(request_uri) = field("request_uri") else {
        if registry.pushed_requests_mode == PushedRequests::Required {
            return Err(("invalid_request", "this provider requires pushed authorization requests"));
        }
        return Ok(query);
    };
    match registry.pushed_requests.remove(&request_uri) {
        Some(pushed) if pushed.expires > Instant::now() && Some(&pushed.client_id) == field("client_id").as_ref() => {
            Ok(pushed.parameters)
        }
        _ => Err(("invalid_request_uri", "request_uri is invalid, expired, or was already used")),
    }
}

/// Lets pushed requests expire now (as if their minute had passed).
pub(super) fn expire_all(registry: &mut Registry) {
    for pushed in registry.pushed_requests.values_mut() {
        pushed.expires = Instant::now();
    }
}
