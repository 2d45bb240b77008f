//! The device authorization grant (RFC 8628): the device authorization
//! endpoint, the token endpoint's answers to a device code poll, and what a
//! test does in place of the user (approve or deny a user code).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::clients::basic_credentials;
use super::model::{Decision, Device, Grant, lock, now};
use super::response::{json_response, oauth_error};
use super::state::{Registry, Shared};

/// The device code grant type.
pub(super) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /connect/deviceauthorization`: a device code and a user code for a
/// registered sign-in client.
pub(super) async fn device_authorization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.counts.device_authorization.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let basic = basic_credentials(&headers);
    let Some(client_id) = basic.as_ref().map(|(id, _)| id.clone()).or_else(|| field("client_id")) else {
        return oauth_error(400, "invalid_request", "client_id is required");
    };
    let mut registry = lock(&shared.registry);
    let secret = basic.map(|(_, secret)| secret).or_else(|| field("client_secret"));
    let known = match registry.clients.get(&client_id) {
        Some(expected) => secret.as_ref() == Some(expected),
        None => registry.sign_in_clients.contains_key(&client_id) && secret.is_none(),
    };
    if !known {
        return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    }
    let device_code = shared.next_value(&mut registry, "dc");
    // Eight letters in two groups of four, as RFC 8628 §6.1 suggests.
    let user_code = user_code(registry.sequence, shared.seed);
    let settings = registry.device_settings.clone();
    registry.devices.insert(
        device_code.clone(),
        Device {
            user_code: user_code.clone(),
            client_id,
            scope: field("scope").unwrap_or_else(|| "openid".to_owned()),
            decision: Decision::Waiting,
            polls: Vec::new(),
            spent: false,
        },
    );
    drop(registry);
    let verification_uri = format!("{}/device", shared.base_url);
    json_response(
        200,
        serde_json::json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
            "expires_in": settings.expires_in,
            "interval": settings.interval,
        }),
    )
}

/// A user code from the server's counter: consonants only (no vowels, so no
/// words), `XXXX-XXXX`.
fn user_code(sequence: u64, seed: u64) -> String {
    const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut value = sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(char::from(LETTERS[(value % 20) as usize]));
        value /= 20;
    }
    code
}

/// The token endpoint's answer to a device code poll: the sign-in to issue
/// tokens for, or the RFC 8628 §3.5 error (boxed: a response is large, and
/// the pending answer is the common one).
pub(super) fn poll(
    registry: &mut Registry,
    device_code: Option<&str>,
    client_id: Option<&str>,
) -> Result<Grant, Box<Response>> {
    let Some(device_code) = device_code else {
        return Err(Box::new(oauth_error(400, "invalid_request", "device_code is required")));
    };
    let sub = registry.user.subject().to_owned();
    let slow_down = registry.device_settings.slow_downs > 0;
    let Some(device) = registry.devices.get_mut(device_code) else {
        return Err(Box::new(oauth_error(400, "invalid_grant", "unknown device code")));
    };
    if client_id != Some(device.client_id.as_str()) {
        return Err(Box::new(oauth_error(400, "invalid_grant", "the device code was issued to another client")));
    }
    device.polls.push(tokio::time::Instant::now());
    if device.spent {
        return Err(Box::new(oauth_error(400, "invalid_grant", "the device code was already used")));
    }
    let answer = match device.decision {
        Decision::Expired => Err(Box::new(oauth_error(400, "expired_token", "the device code expired"))),
        Decision::Denied => Err(Box::new(oauth_error(400, "access_denied", "the user denied the request"))),
        _ if slow_down => Err(Box::new(oauth_error(400, "slow_down", "polling too often"))),
        Decision::Waiting => Err(Box::new(oauth_error(400, "authorization_pending", "the user has not answered yet"))),
        Decision::Approved => {
            device.spent = true;
            Ok(Grant {
                sub,
                client_id: device.client_id.clone(),
                scope: device.scope.clone(),
                nonce: None,
                auth_time: now(),
                sid: None,
            })
        }
    };
    if slow_down && !matches!(device.decision, Decision::Expired | Decision::Denied) {
        registry.device_settings.slow_downs -= 1;
    }
    answer
}

/// Sets what the user did with `user_code`; `false` when no device sign-in
/// has that code.
pub(super) fn decide(registry: &mut Registry, user_code: &str, approve: Option<bool>) -> bool {
    let decision = match approve {
        Some(true) => Decision::Approved,
        Some(false) => Decision::Denied,
        None => Decision::Expired,
    };
    let normalized = normalize(user_code);
    match registry.devices.values_mut().find(|d| normalize(&d.user_code) == normalized) {
        Some(device) => {
            device.decision = decision;
            true
        }
        None => false,
    }
}

/// When each poll for `user_code` arrived.
pub(super) fn polls(registry: &Registry, user_code: &str) -> Vec<tokio::time::Instant> {
    let normalized = normalize(user_code);
    registry
        .devices
        .values()
        .find(|d| normalize(&d.user_code) == normalized)
        .map(|d| d.polls.clone())
        .unwrap_or_default()
}

/// The device code issued with `user_code`.
pub(super) fn device_code(registry: &Registry, user_code: &str) -> Option<String> {
    let normalized = normalize(user_code);
    registry.devices.iter().find(|(_, d)| normalize(&d.user_code) == normalized).map(|(code, _)| code.clone())
}

/// The user code as a person may type it: any case, with or without the dash.
fn normalize(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_codes_have_two_groups_of_four_consonants() {
        let code = super::user_code(7, 42);
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(code.chars().filter(|c| *c != '-').all(|c| c.is_ascii_uppercase() && !"AEIOUY".contains(c)));
        assert_ne!(super::user_code(8, 42), code);
        assert_eq!(super::normalize("bcdf-ghjk"), "BCDFGHJK");
    }
}
