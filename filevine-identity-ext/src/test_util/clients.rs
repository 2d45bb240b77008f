//! Client authentication at the test server's endpoints other than the
//! token endpoint (revocation, introspection, pushed requests): Basic or
//! the form, as RFC 6749 §2.3.1 allows.

use axum::http::{HeaderMap, header};
use base64::Engine as _;

use super::state::Registry;

/// The client that authenticated a revocation or introspection request
/// (Basic or the form), or `None` when the credentials are wrong.
pub(super) fn authenticated_client(
    registry: &Registry,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Option<String> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (id, secret) = match basic_credentials(headers) {
        Some(pair) => pair,
        None => (field("client_id")?, field("client_secret").unwrap_or_default()),
    };
    let known = registry.clients.get(&id);
    let public = registry.sign_in_clients.contains_key(&id) && known.is_none();
    (public || known.is_some_and(|s| *s == secret)).then_some(id)
}

/// `Authorization: Basic` credentials, form-urlencoded inside (RFC 6749 §2.3.1).
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((decode(id)?, decode(secret)?))
}
