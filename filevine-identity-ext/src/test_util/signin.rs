//! The OpenID Connect side of the test server: the authorization endpoint
//! (auto-approving the configured test user, or answering a configured
//! error), the JWKS, ID tokens, userinfo, revocation, introspection and end
//! session — everything the discovery document advertises.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::model::{AuthorizationError, Grant, RefreshedIdToken, SIGNING_KEY_ID, lock, now};
use super::response::{json_response, oauth_error};
use super::state::{CodeGrant, Registry, Shared};

fn page(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.to_owned()).into_response()
}

/// The authorization endpoint's error answer (RFC 6749 §4.1.2.1, with the
/// RFC 9207 `iss`): back to `target` with the error, and the request's
/// `state` when it had one.
fn error_redirect(mut target: url::Url, error: &str, description: &str, state: Option<&str>, issuer: &str) -> Response {
    let mut pairs = target.query_pairs_mut();
    pairs.append_pair("error", error).append_pair("error_description", description);
    if let Some(state) = state {
        pairs.append_pair("state", state);
    }
    pairs.append_pair("iss", issuer);
    drop(pairs);
    redirect(&target)
}

fn redirect(location: &url::Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.as_str().to_owned()), (header::CACHE_CONTROL, "no-store".into())])
        .into_response()
}

/// `GET /connect/authorize`: checks the request as a real provider would
/// (registered client and exact redirect URI — anything wrong there is a
/// page, never a redirect — `response_type=code`, PKCE S256), then signs the
/// test user in without a page and redirects with `code`, `state` and `iss`
/// (RFC 9207), or with the configured error.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    shared.counts.authorization.fetch_add(1, Ordering::SeqCst);
    let mut registry = lock(&shared.registry);
    let client_id = query.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let Some(client_id) = client_id else {
        return page(StatusCode::BAD_REQUEST, "invalid_request: client_id is required");
    };
    let Some(client) = registry.sign_in_clients.get(&client_id).cloned() else {
        return page(StatusCode::BAD_REQUEST, "invalid_client: unknown client");
    };
    // A pushed request's parameters, or the query's own. A request_uri
    // that cannot be used is answered at the client's redirect URI (its
    // only one here): the pushed state is gone with it.
    let query = match super::par::parameters(&mut registry, query) {
        Ok(query) => query,
        Err((error, description)) => {
            let Some(Ok(target)) = client.redirect_uris.first().map(|uri| url::Url::parse(uri)) else {
                return page(StatusCode::BAD_REQUEST, description);
            };
            return error_redirect(target, error, description, None, &shared.base_url);
        }
    };
    let field = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let Some(redirect_uri) = field("redirect_uri").filter(|uri| client.redirect_uris.contains(uri)) else {
        return page(StatusCode::BAD_REQUEST, "invalid_request: redirect_uri is not registered for this client");
    };
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "invalid_request: redirect_uri is not a URL");
    };
    let state = field("state");
    let fail = |target: &url::Url, error: &str, description: &str| {
        error_redirect(target.clone(), error, description, state.as_deref(), &shared.base_url)
    };
    if field("response_type").as_deref() != Some("code") {
        return fail(&target, "unsupported_response_type", "only response_type=code");
    }
    let (Some(challenge), Some("S256")) = (field("code_challenge"), field("code_challenge_method").as_deref()) else {
        return fail(&target, "invalid_request", "PKCE with code_challenge_method=S256 is required");
    };
    if let Some(AuthorizationError { error, description }) = registry.authorization_errors.pop_front() {
        return fail(&target, &error, &description);
    }
    let scope = field("scope").unwrap_or_default();
    let sid = shared.next_value(&mut registry, "sid");
    let grant = Grant {
        sid: Some(sid),
        sub: registry.user.sub.clone(),
        client_id: client_id.clone(),
        scope,
        nonce: field("nonce"),
        auth_time: now(),
    };
    let code = shared.next_value(&mut registry, "code");
    registry.codes.insert(
        code.clone(),
        CodeGrant { client_id, redirect_uri, code_challenge: Some(challenge), sign_in: Some(grant) },
    );
    drop(registry);
    let mut pairs = target.query_pairs_mut();
    pairs.append_pair("code", &code);
    if let Some(state) = &state {
        pairs.append_pair("state", state);
    }
    pairs.append_pair("iss", &shared.base_url);
    drop(pairs);
    redirect(&target)
}

/// The signed ID token for a sign-in's token response.
pub(super) fn id_token(
    shared: &Shared,
    registry: &Registry,
    grant: &Grant,
    access_token: &str,
    refreshed: bool,
) -> Option<String> {
    if !grant.scope.split_whitespace().any(|s| s == "openid") {
        return None;
    }
    let alg = registry.id_token_algorithm.jwt();
    let issued = now();
    let mut claims = serde_json::json!({
        "iss": shared.base_url,
        "sub": grant.sub,
        "aud": grant.client_id,
        "azp": grant.client_id,
        "iat": issued,
        "exp": issued + ID_TOKEN_LIFETIME.as_secs(),
        "auth_time": grant.auth_time,
        "at_hash": crate::oidc::id_token::at_hash(alg, access_token),
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = nonce.clone().into();
    }
    if let Some(sid) = &grant.sid {
        claims["sid"] = sid.clone().into();
    }
    if refreshed {
        match &registry.refreshed_id_token {
            RefreshedIdToken::AsIssued => {}
            RefreshedIdToken::Subject(sub) => claims["sub"] = sub.clone().into(),
            RefreshedIdToken::Issuer(iss) => claims["iss"] = iss.clone().into(),
            RefreshedIdToken::Audience(aud) => {
                claims["aud"] = aud.clone().into();
                claims["azp"] = aud.clone().into();
            }
            RefreshedIdToken::Nonce(nonce) => claims["nonce"] = nonce.clone().into(),
        }
    }
    sign_jwt(registry, Some("JWT"), &claims)
}

/// `claims` signed with the server's key and ID token algorithm.
pub(super) fn sign_jwt(registry: &Registry, typ: Option<&str>, claims: &serde_json::Value) -> Option<String> {
    let (key, _) = crate::jose::test_key::signing_keys()?;
    let mut header = jsonwebtoken::Header::new(registry.id_token_algorithm.jwt());
    header.kid = Some(SIGNING_KEY_ID.to_owned());
    header.typ = typ.map(str::to_owned);
    crate::crypto::install_default_provider();
    jsonwebtoken::encode(&header, claims, key).ok()
}

/// `GET /.well-known/openid-configuration/jwks`: the test signing key.
pub(super) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.counts.jwks.fetch_add(1, Ordering::SeqCst);
    let failure = lock(&shared.registry).jwks_failures.pop_front();
    if let Some(failure) = failure
        && let Some(response) = super::failure::injected(failure).await
    {
        return response;
    }
    json_response(
        200,
        serde_json::json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": SIGNING_KEY_ID,
            "n": crate::jose::test_key::KEY_N,
            "e": "AQAB",
        }]}),
    )
}

/// `GET /connect/userinfo`: the claims of the user an unexpired access
/// token of a sign-in was issued for (RFC 6750 errors otherwise); a
/// DPoP-bound token with a valid proof only.
pub(super) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.counts.userinfo.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("DPoP ")))
        .map(str::to_owned);
    let mut registry = lock(&shared.registry);
    // A DPoP-bound token only with a proof from its key for this request
    // (and never as Bearer), as at the gateway.
    let url = format!("{}/connect/userinfo", shared.base_url);
    if let Err(refused) = registry.proofs.resource(&headers, "GET", &url) {
        return refused;
    }
    let grant = token.as_deref().filter(|t| shared.is_valid_in(&registry, t)).and_then(|t| registry.grants.get(t));
    match grant {
        Some(grant) if grant.scope.split_whitespace().any(|s| s == "openid") => {
            json_response(200, serde_json::Value::Object(registry.user.claims_for(&grant.scope)))
        }
        Some(_) => {
            (StatusCode::FORBIDDEN, [(header::WWW_AUTHENTICATE, "Bearer error=\"insufficient_scope\"")]).into_response()
        }
        None => {
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")]).into_response()
        }
    }
}

fn parse_form(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /connect/revocation` (RFC 7009): revokes an access or refresh
/// token of the authenticated client; 200 for a token it does not know.
pub(super) async fn revocation(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.counts.revocation.fetch_add(1, Ordering::SeqCst);
    let form = parse_form(&body);
    let mut registry = lock(&shared.registry);
    let Some(_client) = super::clients::authenticated_client(&registry, &headers, &form) else {
        return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    };
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()) else {
        return oauth_error(400, "invalid_request", "token is required");
    };
    registry.access_tokens.remove(&token);
    if registry.refresh_tokens.remove(&token) {
        registry.revoked_refresh_tokens += 1;
    }
    registry.grants.remove(&token);
    StatusCode::OK.into_response()
}

/// `POST /connect/introspect` (RFC 7662).
pub(super) async fn introspection(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.counts.introspection.fetch_add(1, Ordering::SeqCst);
    let form = parse_form(&body);
    let registry = lock(&shared.registry);
    if super::clients::authenticated_client(&registry, &headers, &form).is_none() {
        return oauth_error(401, "invalid_client", "unknown client or wrong secret");
    }
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()) else {
        return oauth_error(400, "invalid_request", "token is required");
    };
    let Some(expires) = registry.access_tokens.get(&token).filter(|_| shared.is_valid_in(&registry, &token)) else {
        return json_response(200, serde_json::json!({"active": false}));
    };
    let left = expires.saturating_duration_since(std::time::Instant::now());
    let mut answer = serde_json::json!({
        "active": true,
        "token_type": "access_token",
        "iss": shared.base_url,
        "exp": now() + left.as_secs(),
    });
    if let Some(grant) = registry.grants.get(&token) {
        answer["sub"] = grant.sub.clone().into();
        answer["client_id"] = grant.client_id.clone().into();
        answer["scope"] = grant.scope.clone().into();
    }
    json_response(200, answer)
}

/// `GET /connect/endsession`: signs the user out and goes back to a
/// registered post-logout redirect URI with the `state`, or shows a page.
pub(super) async fn end_session(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    shared.counts.end_session.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let registry = lock(&shared.registry);
    let Some(target) = field("post_logout_redirect_uri") else {
        return page(StatusCode::OK, "You are signed out.");
    };
    let registered = registry.sign_in_clients.values().any(|c| c.post_logout_redirect_uris.contains(&target));
    let Ok(mut target) = url::Url::parse(&target).map_err(drop).and_then(|u| if registered { Ok(u) } else { Err(()) })
    else {
        return page(StatusCode::BAD_REQUEST, "post_logout_redirect_uri is not registered");
    };
    if let Some(state) = field("state") {
        target.query_pairs_mut().append_pair("state", &state);
    }
    redirect(&target)
}

/// Lifetime of the ID tokens the server signs.
pub(super) const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
