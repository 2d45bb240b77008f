//! A Filevine Identity server on 127.0.0.1, for tests — yours and ours.
//!
//! Enabled by the `test-server` feature. It serves the token endpoint for
//! every grant exactly as the spec describes (form body in, JSON out,
//! Filevine's envelope or RFC 6749 errors), the discovery document, and a
//! tiny API gateway stub that accepts only tokens this server issued. It
//! counts requests per grant, issues tokens with short lifetimes on demand,
//! and injects failures: any status, the Filevine envelope, RFC 6749 errors,
//! delays, dropped connections and garbage bodies.
//!
//! ```
//! use filevine_identity_ext::test_server::{Failure, TestServer};
//! use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start().await?;
//! server.add_personal_access_token("fvpat_test");
//!
//! let provider = TokenProvider::builder()
//!     .region(server.region())
//!     .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_test")?))
//!     .build()?;
//! let token = provider.token().await?;
//! assert!(server.is_valid_access_token(token.expose_secret()));
//! assert_eq!(server.grant_requests("personal_access_token"), 1);
//!
//! // The next token request fails with Filevine's 403 envelope.
//! server.fail_next(Failure::filevine_envelope(403, "Forbidden"));
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::region::Region;

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
}

impl Failure {
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

/// A token request as the server received it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The `grant_type` field.
    pub grant_type: String,
    /// The decoded form fields, in order.
    pub form: Vec<(String, String)>,
    /// The raw body.
    pub body: String,
    /// The request headers.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for RecordedRequest {
    /// Field names only: recorded forms carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("grant_type", &self.grant_type)
            .field("fields", &self.form.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RecordedRequest {
    /// The value of one form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of one header (lowercase name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A request to the gateway stub as the server received it.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path under `/gateway`.
    pub path: String,
    /// The request headers (lowercase names).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for GatewayRequest {
    /// Header names only: `authorization` carries a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl GatewayRequest {
    /// The value of one header (lowercase name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Registry {
    pats: HashSet<String>,
    clients: HashMap<String, String>,
    refresh_tokens: HashSet<String>,
    used_refresh_tokens: HashSet<String>,
    codes: HashMap<String, CodeGrant>,
    used_codes: HashSet<String>,
    access_tokens: HashMap<String, Instant>,
    failures: VecDeque<Failure>,
    delay: Duration,
    expires_in: Option<ExpiresIn>,
    rotate_refresh_tokens: bool,
    requests: Vec<RecordedRequest>,
    gateway_log: Vec<GatewayRequest>,
    gateway_rejections: u32,
    sequence: u64,
}

#[derive(Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
}

struct Shared {
    base_url: String,
    registry: Mutex<Registry>,
    token_requests: AtomicU64,
    discovery_requests: AtomicU64,
    gateway_requests: AtomicU64,
    per_grant: Mutex<HashMap<String, u64>>,
    /// Random per server, so tokens from two servers never collide.
    seed: u64,
}

/// The loopback Filevine Identity server. Stops when dropped.
pub struct TestServer {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("url", &self.shared.base_url).finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TestServer {
    /// Starts a server on `127.0.0.1` on a free port.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u16(address.port());
            h.finish()
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{address}"),
            registry: Mutex::new(Registry { rotate_refresh_tokens: true, ..Registry::default() }),
            token_requests: AtomicU64::new(0),
            discovery_requests: AtomicU64::new(0),
            gateway_requests: AtomicU64::new(0),
            per_grant: Mutex::new(HashMap::new()),
            seed,
        });
        let app = axum::Router::new()
            .route("/connect/token", post(token_endpoint))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/gateway/fv-app/v2/utils/GetUserOrgsWithToken", post(gateway_user_orgs))
            .route("/gateway/fv-app/v2/Users/Me", get(gateway_users_me))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            // Serving ends only when the task is aborted on drop.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, task })
    }

    /// The base URL, `http://127.0.0.1:<port>`: the authority.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// A custom region pointing at this server, with its gateway stub.
    pub fn region(&self) -> Region {
        Region::custom_with_gateway(self.url(), &format!("{}/gateway", self.url()))
            .unwrap_or_else(|_| unreachable!("a loopback http URL is a valid custom region"))
    }

    /// Accepts this personal access token.
    pub fn add_personal_access_token(&self, pat: &str) {
        lock(&self.shared.registry).pats.insert(pat.to_owned());
    }

    /// Accepts this client id and secret (client credentials, and the
    /// client authentication of the other grants).
    pub fn add_client(&self, id: &str, secret: &str) {
        lock(&self.shared.registry).clients.insert(id.to_owned(), secret.to_owned());
    }

    /// Accepts this refresh token (once, when rotation is on).
    pub fn add_refresh_token(&self, token: &str) {
        lock(&self.shared.registry).refresh_tokens.insert(token.to_owned());
    }

    /// Issues an authorization code, as if a user had signed in at the
    /// authorization endpoint. `code_challenge` is the S256 PKCE challenge.
    pub fn issue_authorization_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: Option<&str>,
    ) -> String {
        let mut registry = lock(&self.shared.registry);
        let code = self.next_value(&mut registry, "code");
        registry.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.map(str::to_owned),
            },
        );
        code
    }

    /// Token lifetime in whole seconds (`expires_in`); default 1200.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.set_expires_in(ExpiresIn::Seconds(lifetime.as_secs() as i64));
    }

    /// How `expires_in` is written in the next responses.
    pub fn set_expires_in(&self, expires_in: ExpiresIn) {
        lock(&self.shared.registry).expires_in = Some(expires_in);
    }

    /// Whether a refresh revokes the refresh token it used and issues a new
    /// one (default on).
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        lock(&self.shared.registry).rotate_refresh_tokens = rotate;
    }

    /// Delays every token response by this much.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.registry).delay = delay;
    }

    /// Makes the next token request fail this way. Calls queue up: each
    /// failure applies to one request, in order.
    pub fn fail_next(&self, failure: Failure) {
        lock(&self.shared.registry).failures.push_back(failure);
    }

    /// Token requests received, all grants.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Token requests received with this `grant_type`.
    pub fn grant_requests(&self, grant_type: &str) -> u64 {
        lock(&self.shared.per_grant).get(grant_type).copied().unwrap_or(0)
    }

    /// Discovery document requests received.
    pub fn discovery_requests(&self) -> u64 {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// Gateway stub requests received.
    pub fn gateway_requests(&self) -> u64 {
        self.shared.gateway_requests.load(Ordering::SeqCst)
    }

    /// Every token request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.registry).requests.clone()
    }

    /// Whether `token` is an unexpired access token this server issued.
    pub fn is_valid_access_token(&self, token: &str) -> bool {
        self.shared.is_valid_access_token(token)
    }

    /// Every request the gateway stub received, in order.
    pub fn gateway_log(&self) -> Vec<GatewayRequest> {
        lock(&self.shared.registry).gateway_log.clone()
    }

    /// Makes the gateway stub answer 401 to the next `count` requests,
    /// whatever token they carry.
    pub fn reject_next_gateway_requests(&self, count: u32) {
        lock(&self.shared.registry).gateway_rejections = count;
    }

    /// Revokes every access token issued so far (the gateway stub then
    /// answers 401 to them).
    pub fn revoke_access_tokens(&self) {
        lock(&self.shared.registry).access_tokens.clear();
    }

    fn next_value(&self, registry: &mut Registry, prefix: &str) -> String {
        self.shared.next_value(registry, prefix)
    }
}

impl Shared {
    fn next_value(&self, registry: &mut Registry, prefix: &str) -> String {
        registry.sequence += 1;
        let mixed =
            (self.seed ^ registry.sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        format!("{prefix}_{:016x}{:04x}", mixed, registry.sequence)
    }

    fn is_valid_access_token(&self, token: &str) -> bool {
        lock(&self.registry).access_tokens.get(token).is_some_and(|expires| Instant::now() < *expires)
    }
}

fn json_response(status: u16, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(status, serde_json::json!({"error": error, "error_description": description}))
}

fn envelope(status: u16, message: &str) -> Response {
    json_response(
        status,
        serde_json::json!({
            "meta": {"pagination": {"limit": 0, "offset": 0, "total_count": 0}},
            "errors": [{"httpcode": status, "message": message}],
        }),
    )
}

/// The failure response, or `None` to answer normally (after a delay).
async fn injected(failure: Failure) -> Option<Response> {
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

async fn token_endpoint(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
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
    // Client authentication, when a client id is sent.
    let client_ok = |registry: &Registry| match field("client_id") {
        None => true,
        Some(id) => registry.clients.get(&id).is_some_and(|secret| field("client_secret").as_ref() == Some(secret)),
    };
    let mut refresh_token = None;
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
            if field("client_id").is_none() || field("client_secret").is_none() || !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
        }
        "authorization_code" => {
            let (Some(code), Some(redirect_uri), Some(client_id)) =
                (field("code"), field("redirect_uri"), field("client_id"))
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
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
                if computed != challenge {
                    return oauth_error(400, "invalid_grant", "PKCE verification failed");
                }
            }
            refresh_token = Some(shared.next_value(&mut registry, "rt"));
        }
        "refresh_token" => {
            let Some(token) = field("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is required");
            };
            if !client_ok(&registry) {
                return oauth_error(400, "invalid_client", "unknown client or wrong secret");
            }
            if !registry.refresh_tokens.contains(&token) {
                let reason = if registry.used_refresh_tokens.contains(&token) {
                    "the refresh token was already used (rotation)"
                } else {
                    "unknown or expired refresh token"
                };
                return oauth_error(400, "invalid_grant", reason);
            }
            if registry.rotate_refresh_tokens {
                registry.refresh_tokens.remove(&token);
                registry.used_refresh_tokens.insert(token);
                refresh_token = Some(shared.next_value(&mut registry, "rt"));
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
    drop(registry);

    let mut body = serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "scope": scope.unwrap_or_else(|| crate::scope::GATEWAY_SCOPES.join(" ")),
    });
    match expires_in {
        ExpiresIn::Seconds(s) => body["expires_in"] = s.into(),
        ExpiresIn::Text(t) => body["expires_in"] = t.into(),
        ExpiresIn::Missing => {}
    }
    if let Some(rt) = refresh_token {
        body["refresh_token"] = rt.into();
    }
    json_response(200, body)
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let base = &shared.base_url;
    json_response(
        200,
        serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/connect/authorize"),
            "token_endpoint": format!("{base}/connect/token"),
            "userinfo_endpoint": format!("{base}/connect/userinfo"),
            "end_session_endpoint": format!("{base}/connect/endsession"),
            "revocation_endpoint": format!("{base}/connect/revocation"),
            "jwks_uri": format!("{base}/.well-known/openid-configuration/jwks"),
            "scopes_supported": crate::scope::PARTNER_APP_SCOPES,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", "personal_access_token"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS512"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }),
    )
}

/// Records a gateway request and checks its bearer token: `Some(401)`
/// unless it is one this server issued (or a rejection is queued).
fn gateway_check(shared: &Shared, method: &str, path: &str, headers: &HeaderMap) -> Option<Response> {
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
        });
        let reject = registry.gateway_rejections > 0;
        registry.gateway_rejections = registry.gateway_rejections.saturating_sub(1);
        reject
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if reject || !shared.is_valid_access_token(token) {
        return Some(
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")]).into_response(),
        );
    }
    None
}

/// `POST {gateway}/fv-app/v2/utils/GetUserOrgsWithToken`.
async fn gateway_user_orgs(State(shared): State<Arc<Shared>>, headers: HeaderMap, _body: Bytes) -> Response {
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
async fn gateway_users_me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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
