//! The identity endpoints: the token endpoint for every grant, as the spec
//! describes it, and the discovery document.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use base64::Engine as _;

use super::failure::{ExpiresIn, injected};
use super::model::{Grant, PushedRequests, RecordedRequest, lock};
use super::response::{json_response, oauth_error};
use super::state::{Registry, Shared};

fn envelope(status: u16, message: &str) -> Response {
    json_response(
        status,
        serde_json::json!({
            "meta": {"pagination": {"limit": 0, "offset": 0, "total_count": 0}},
            "errors": [{"httpcode": status, "message": message}],
        }),
    )
}

pub(super) async fn token_endpoint(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let count = shared.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    shared.arrived.send_replace(count);
    let _ = shared.held.subscribe().wait_for(|held| !*held).await;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let grant_type = field("grant_type").unwrap_or_default();
    *lock(&shared.per_grant).entry(grant_type.clone()).or_default() += 1;

    let (failure, delay) = {
        let mut registry = lock(&shared.registry);
        registry.requests.push(RecordedRequest {
            grant_type: grant_type.clone(),
            form: form.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
        });
        (registry.failures.pop_front(), registry.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = failure
        && let Some(response) = injected(failure).await
    {
        return response;
    }

    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded");
    }

    let mut registry = lock(&shared.registry);
    // A DPoP proof binds what is issued to its key (RFC 9449 §5).
    let jkt = match registry.proofs.token_proof(&headers, &format!("{}/connect/token", shared.base_url)) {
        Ok(jkt) => jkt,
        Err(refused) => return refused,
    };
    // private_key_jwt (RFC 7523): the assertion names and authenticates
    // the client.
    let asserted = match registry.proofs.client_assertion(&field, &shared.base_url) {
        None => None,
        Some(Ok(client_id)) => Some(client_id),
        Some(Err(why)) => return oauth_error(400, "invalid_client", &why),
    };
    // Client authentication, when a client is named: Basic or the form; a
    // public sign-in client has no secret.
    let basic = super::clients::basic_credentials(&headers);
    let client_id_sent =
        basic.as_ref().map(|(id, _)| id.clone()).or_else(|| field("client_id")).or_else(|| asserted.clone());
    let client_ok = |registry: &Registry| {
        asserted.is_some()
            || match &basic {
                Some((id, secret)) => registry.clients.get(id) == Some(secret),
                None => match field("client_id") {
                    None => true,
                    Some(id) => match registry.clients.get(&id) {
                        Some(secret) => field("client_secret").as_ref() == Some(secret),
                        None => registry.sign_in_clients.contains_key(&id) && field("client_secret").is_none(),
                    },
                },
            }
    };
    let mut refresh_token = None;
    let mut sign_in: Option<Grant> = None;
    let scope = field("scope");
    match grant_type.as_str() {
        "" => return oauth_error(400, "invalid_request", "grant_type is required"),
        "personal_access_token" => {
            let (Some(token), Some(_)) = (field("token"), scope.as_ref()) else {
                return oauth_error(400, "invalid_request", "token and scope are required");
            };
            if !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
            if !registry.pats.contains(&token) {
                return envelope(400, "Invalid PAT");
            }
        }
        "client_credentials" => {
            let has_secret = basic.is_some() || field("client_secret").is_some() || asserted.is_some();
            if client_id_sent.is_none() || !has_secret || !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
        }
        "authorization_code" => {
            let (Some(code), Some(redirect_uri), Some(client_id)) =
                (field("code"), field("redirect_uri"), client_id_sent.clone())
            else {
                return oauth_error(400, "invalid_request", "code, redirect_uri and client_id are required");
            };
            if !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
            if registry.used_codes.contains(&code) {
                return oauth_error(400, "invalid_grant", "the authorization code was already used");
            }
            let Some(grant) = registry.codes.remove(&code) else {
                return oauth_error(400, "invalid_grant", "unknown authorization code");
            };
            registry.used_codes.insert(code);
            if grant.client_id != client_id || grant.redirect_uri != redirect_uri {
                return oauth_error(400, "invalid_grant", "the code was issued to another client or redirect URI");
            }
            if let Some(challenge) = grant.code_challenge {
                let verifier = field("code_verifier").unwrap_or_default();
                let computed =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::sha256(verifier.as_ref()));
                if computed != challenge {
                    return oauth_error(400, "invalid_grant", "PKCE verification failed");
                }
            }
            refresh_token = Some(shared.next_value(&mut registry, "rt"));
            sign_in = grant.sign_in;
        }
        "refresh_token" => {
            let Some(token) = field("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is required");
            };
            if !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
            if let Some(bound) = registry.proofs.bound.get(&token)
                && jkt.as_ref() != Some(bound)
            {
                return oauth_error(400, "invalid_dpop_proof", "the refresh token is bound to another key");
            }
            let in_grace = !registry.refresh_tokens.contains(&token)
                && registry.spent_at.get(&token).is_some_and(|at| at.elapsed() < registry.reuse_interval);
            if in_grace {
                registry.grace_replays += 1;
            } else if !registry.refresh_tokens.contains(&token) {
                let reason = if registry.used_refresh_tokens.contains(&token) {
                    registry.refresh_token_reuses += 1;
                    "the refresh token was already used (rotation)"
                } else {
                    "unknown or expired refresh token"
                };
                return oauth_error(400, "invalid_grant", reason);
            }
            sign_in = registry.grants.get(&token).cloned().map(|grant| Grant { nonce: None, ..grant });
            if registry.rotate_refresh_tokens {
                registry.refresh_tokens.remove(&token);
                registry.grants.remove(&token);
                registry.spent_at.entry(token.clone()).or_insert_with(Instant::now);
                registry.used_refresh_tokens.insert(token);
                refresh_token = Some(shared.next_value(&mut registry, "rt"));
            }
        }
        super::device::GRANT_TYPE => {
            if !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
            match super::device::poll(&mut registry, field("device_code").as_deref(), client_id_sent.as_deref()) {
                Ok(grant) => {
                    if grant.scope.split(' ').any(|s| s == "offline_access") {
                        refresh_token = Some(shared.next_value(&mut registry, "rt"));
                    }
                    sign_in = Some(grant);
                }
                Err(answer) => return *answer,
            }
        }
        _ => return oauth_error(400, "unsupported_grant_type", "this grant type is not supported"),
    }

    let access_token = shared.next_value(&mut registry, "at");
    let expires_in = registry.expires_in.clone().unwrap_or(ExpiresIn::Seconds(1200));
    let lifetime = match &expires_in {
        ExpiresIn::Seconds(s) => Duration::from_secs((*s).max(0) as u64),
        ExpiresIn::Text(t) => Duration::from_secs(t.trim().parse().unwrap_or(0)),
        ExpiresIn::Missing => Duration::from_secs(300),
    };
    registry.access_tokens.insert(access_token.clone(), Instant::now() + lifetime);
    if let Some(rt) = &refresh_token {
        registry.refresh_tokens.insert(rt.clone());
    }
    if let Some(jkt) = &jkt {
        registry.proofs.bound.insert(access_token.clone(), jkt.clone());
        if let Some(rt) = &refresh_token {
            registry.proofs.bound.insert(rt.clone(), jkt.clone());
        }
    }
    let refreshed = grant_type == "refresh_token";
    let id_token =
        sign_in.as_ref().and_then(|grant| super::signin::id_token(&shared, &registry, grant, &access_token, refreshed));
    if let Some(grant) = sign_in {
        registry.grants.insert(access_token.clone(), grant.clone());
        if let Some(rt) = &refresh_token {
            registry.grants.insert(rt.clone(), grant);
        }
    }
    let granted = registry.granted_scope.clone().or(scope);
    drop(registry);

    let mut body = serde_json::json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "scope": granted.unwrap_or_else(|| crate::config::scope::GATEWAY_SCOPES.join(" ")),
    });
    match expires_in {
        ExpiresIn::Seconds(s) => body["expires_in"] = s.into(),
        ExpiresIn::Text(t) => body["expires_in"] = t.into(),
        ExpiresIn::Missing => {}
    }
    if let Some(rt) = refresh_token {
        body["refresh_token"] = rt.into();
    }
    if let Some(id_token) = id_token {
        body["id_token"] = id_token.into();
    }
    json_response(200, body)
}

pub(super) async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let base = &shared.base_url;
    let (device, pushed) = {
        let registry = lock(&shared.registry);
        (registry.device_settings.advertised, registry.pushed_requests_mode)
    };
    let mut document = serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/connect/authorize"),
            "token_endpoint": format!("{base}/connect/token"),
            "userinfo_endpoint": format!("{base}/connect/userinfo"),
            "end_session_endpoint": format!("{base}/connect/endsession"),
            "revocation_endpoint": format!("{base}/connect/revocation"),
            "introspection_endpoint": format!("{base}/connect/introspect"),
            "device_authorization_endpoint": format!("{base}/connect/deviceauthorization"),
            "jwks_uri": format!("{base}/.well-known/openid-configuration/jwks"),
            "scopes_supported": crate::config::scope::PARTNER_APP_SCOPES,
            "claims_supported": ["sub", "email", "email_verified", "name", "tenant"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", "personal_access_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS512", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
            "authorization_response_iss_parameter_supported": true,
            "frontchannel_logout_supported": false,
            "backchannel_logout_supported": false,
    });
    if !device {
        document.as_object_mut().map(|fields| fields.remove("device_authorization_endpoint"));
    }
    if pushed != PushedRequests::NotOffered {
        document["pushed_authorization_request_endpoint"] = format!("{base}/connect/par").into();
        document["require_pushed_authorization_requests"] = (pushed == PushedRequests::Required).into();
    }
    let mut response = json_response(200, document);
    let behind = shared.date_behind.load(Ordering::SeqCst);
    if behind > 0 {
        let date = std::time::SystemTime::now() - std::time::Duration::from_secs(behind);
        if let Ok(value) = axum::http::HeaderValue::from_str(&httpdate::fmt_http_date(date)) {
            response.headers_mut().insert(axum::http::header::DATE, value);
        }
    }
    response
}
