//! The test server's data: the user it signs in, its clients and grants,
//! device sign-ins, pushed requests, what it recorded; and the lock its
//! state is taken with. No behaviour beyond what the data says of itself.

use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Locks a std mutex, recovering from poisoning (a panicking test must not
/// wedge the server for the others).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key id of the test server's signing key in its JWKS.
pub const SIGNING_KEY_ID: &str = "filevine-test-server-1";

/// The user the authorization endpoint signs in, without asking.
///
/// ```
/// use filevine_identity_ext::test_util::TestUser;
///
/// let user = TestUser::new("1001").email("ada@example.com").name("Ada Lovelace").claim("tenant", "acme");
/// assert_eq!(user.subject(), "1001");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TestUser {
    pub(super) sub: String,
    pub(super) email: Option<String>,
    pub(super) name: Option<String>,
    pub(super) claims: serde_json::Map<String, serde_json::Value>,
}

impl Default for TestUser {
    /// `test-user`, `test.user@example.com`, "Test User", tenant `test-tenant`.
    fn default() -> Self {
        Self::new("test-user").email("test.user@example.com").name("Test User").claim("tenant", "test-tenant")
    }
}

impl TestUser {
    /// A user with this subject and no other claims.
    pub fn new(sub: &str) -> Self {
        Self { sub: sub.to_owned(), email: None, name: None, claims: serde_json::Map::new() }
    }

    /// Their e-mail address (a verified one).
    #[must_use]
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// Their full name.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// One more claim, in userinfo (and in ID tokens with `profile`).
    #[must_use]
    pub fn claim(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// The subject (`sub`).
    pub fn subject(&self) -> &str {
        &self.sub
    }

    /// The userinfo claims of this user for `scope`.
    pub(super) fn claims_for(&self, scope: &str) -> serde_json::Map<String, serde_json::Value> {
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), self.sub.clone().into());
        if scopes.contains(&"email")
            && let Some(email) = &self.email
        {
            claims.insert("email".into(), email.clone().into());
            claims.insert("email_verified".into(), true.into());
        }
        if scopes.contains(&"profile") {
            if let Some(name) = &self.name {
                claims.insert("name".into(), name.clone().into());
            }
            claims.extend(self.claims.clone());
        }
        claims
    }
}

/// How the test server alters the ID token of a refresh response
/// ([`TestServer::set_refreshed_id_token`](super::TestServer::set_refreshed_id_token)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshedIdToken {
    /// As issued at sign-in (no nonce), freshly timed.
    #[default]
    AsIssued,
    /// For another subject.
    Subject(String),
    /// From another issuer.
    Issuer(String),
    /// For another client (`aud` and `azp`).
    Audience(String),
    /// With this `nonce`.
    Nonce(String),
}

/// A client registered for sign-in (see [`TestServer::add_sign_in_client`](super::TestServer::add_sign_in_client)).
#[derive(Debug, Clone)]
pub(super) struct SignInClient {
    pub(super) redirect_uris: Vec<String>,
    pub(super) post_logout_redirect_uris: Vec<String>,
}

/// Who a sign-in's tokens are for.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub(super) sub: String,
    pub(super) client_id: String,
    pub(super) scope: String,
    pub(super) nonce: Option<String>,
    pub(super) auth_time: u64,
    /// The provider-side session of a browser sign-in (the ID token's `sid`).
    pub(super) sid: Option<String>,
}

/// An error the authorization endpoint answers once instead of signing
/// the user in.
#[derive(Debug, Clone)]
pub(super) struct AuthorizationError {
    pub(super) error: String,
    pub(super) description: String,
}

/// The algorithm the test server signs ID tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdTokenAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-512: Filevine's default.
    #[default]
    Rs512,
}

impl IdTokenAlgorithm {
    pub(super) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Rs512 => jsonwebtoken::Algorithm::RS512,
        }
    }
}

pub(super) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether and how the test server takes pushed requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushedRequests {
    /// Not advertised (the endpoint still answers).
    #[default]
    NotOffered,
    /// Advertised in discovery.
    Offered,
    /// Advertised, and the only way to sign in
    /// (`require_pushed_authorization_requests`).
    Required,
}

/// A pushed request waiting for the browser.
#[derive(Debug, Clone)]
pub(super) struct Pushed {
    pub(super) client_id: String,
    pub(super) parameters: Vec<(String, String)>,
    pub(super) expires: Instant,
}

/// What the user did with a user code so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Waiting,
    Approved,
    Denied,
    Expired,
}

/// One device sign-in, by device code.
#[derive(Debug, Clone)]
pub(super) struct Device {
    pub(super) user_code: String,
    pub(super) client_id: String,
    pub(super) scope: String,
    pub(super) decision: Decision,
    /// When each poll arrived (tokio's clock, so paused-time tests see
    /// their own time).
    pub(super) polls: Vec<tokio::time::Instant>,
    /// Set once the tokens were issued: the device code is spent.
    pub(super) spent: bool,
}

/// Device flow settings of the server.
#[derive(Debug, Clone)]
pub(super) struct DeviceSettings {
    /// The `interval` sent (seconds).
    pub(super) interval: u64,
    /// The `expires_in` sent (seconds).
    pub(super) expires_in: u64,
    /// Polls answered `slow_down` before any other answer.
    pub(super) slow_downs: u32,
    /// Whether discovery advertises the endpoint.
    pub(super) advertised: bool,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        // RFC 8628's default interval; a 10-minute code.
        Self { interval: 5, expires_in: 600, slow_downs: 0, advertised: true }
    }
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
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    /// The body, as text.
    pub body: String,
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
