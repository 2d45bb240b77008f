//! [`TestServer`]: starts the loopback server, and is how a test
//! configures it and reads what it saw.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::{get, post};

use super::failure::{ExpiresIn, Failure};
use super::model::{
    AuthorizationError, GatewayRequest, IdTokenAlgorithm, PushedRequests, RecordedRequest, RefreshedIdToken,
    SignInClient, TestUser, lock,
};
use super::state::{CodeGrant, Counts, Registry, Shared};
use super::{device, gateway, par, server, signin};
use crate::config::region::Region;
use crate::jose::ClientKey;

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
            arrived: tokio::sync::watch::Sender::new(0),
            held: tokio::sync::watch::Sender::new(false),
            discovery_requests: AtomicU64::new(0),
            date_behind: AtomicU64::new(0),
            gateway_requests: AtomicU64::new(0),
            per_grant: Mutex::new(HashMap::new()),
            counts: Counts::default(),
            seed,
        });
        let app = axum::Router::new()
            .route("/connect/token", post(server::token_endpoint))
            .route("/.well-known/openid-configuration", get(server::discovery))
            .route("/.well-known/openid-configuration/jwks", get(signin::jwks))
            .route("/connect/authorize", get(signin::authorize))
            .route("/connect/userinfo", get(signin::userinfo))
            .route("/connect/revocation", post(signin::revocation))
            .route("/connect/introspect", post(signin::introspection))
            .route("/connect/endsession", get(signin::end_session))
            .route("/connect/deviceauthorization", post(device::device_authorization))
            .route("/connect/par", post(par::pushed_authorization))
            .route("/gateway/fv-app/v2/utils/GetUserOrgsWithToken", post(gateway::gateway_user_orgs))
            .route("/gateway/fv-app/v2/Users/Me", get(gateway::gateway_users_me))
            .route("/gateway/identity/user", post(gateway::gateway_create_user_invite))
            .route("/gateway/fv-app/{*rest}", axum::routing::any(gateway::gateway_scripted))
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

    /// Sends a `Date` header `behind` in the past with the discovery
    /// document, as a server whose clock (or this machine's) is off.
    pub fn set_date_behind(&self, behind: Duration) {
        self.shared.date_behind.store(behind.as_secs(), Ordering::SeqCst);
    }

    /// Stops accepting this personal access token (revoked, or rotated away).
    pub fn revoke_personal_access_token(&self, pat: &str) {
        lock(&self.shared.registry).pats.remove(pat);
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
                sign_in: None,
            },
        );
        code
    }

    /// Registers a client that signs users in: its secret (`None` for a
    /// public client, e.g. a command line tool with PKCE), the redirect URIs
    /// the authorization endpoint accepts (exactly), and the post-logout
    /// redirect URIs end session accepts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use filevine_identity_ext::oidc::{AuthorizationOptions, RedirectUrl};
    /// use filevine_identity_ext::test_util::{TestServer, TestUser};
    /// use filevine_identity_ext::{ClientId, ClientSecret, OidcClient};
    ///
    /// let server = TestServer::start().await?;
    /// let callback = "http://127.0.0.1:7059/signin-oidc";
    /// server.add_sign_in_client("partner-app", Some("partner-secret"), &[callback], &[]);
    /// server.set_user(TestUser::new("1001").email("ada@example.com"));
    ///
    /// let client = OidcClient::builder()
    ///     .region(server.region())
    ///     .client_id(ClientId::new("partner-app")?)
    ///     .client_secret(ClientSecret::new("partner-secret")?)
    ///     .redirect_uri(RedirectUrl::new(callback)?)
    ///     .env(|_| None)
    ///     .build()?;
    /// let request = client.authorization_request(AuthorizationOptions::default()).await?;
    /// // The "browser": the server approves at once and redirects back.
    /// let answer = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?
    ///     .get(request.url.clone()).send().await?;
    /// let location = answer.headers()["location"].to_str()?;
    /// let signed_in = client.complete_sign_in(location, request.pending).await?;
    /// assert_eq!(signed_in.claims.sub, "1001");
    /// # Ok(()) }
    /// ```
    pub fn add_sign_in_client(
        &self,
        id: &str,
        secret: Option<&str>,
        redirect_uris: &[&str],
        post_logout_redirect_uris: &[&str],
    ) {
        let mut registry = lock(&self.shared.registry);
        if let Some(secret) = secret {
            registry.clients.insert(id.to_owned(), secret.to_owned());
        }
        let owned = |uris: &[&str]| uris.iter().map(|u| (*u).to_owned()).collect();
        registry.sign_in_clients.insert(
            id.to_owned(),
            SignInClient {
                redirect_uris: owned(redirect_uris),
                post_logout_redirect_uris: owned(post_logout_redirect_uris),
            },
        );
    }

    /// The user the authorization endpoint signs in (default
    /// [`TestUser::default`]).
    pub fn set_user(&self, user: TestUser) {
        lock(&self.shared.registry).user = user;
    }

    /// The next authorization request is answered with this error (e.g.
    /// `access_denied`), redirected to the client with its `state`.
    pub fn fail_next_authorization(&self, error: &str, description: &str) {
        lock(&self.shared.registry)
            .authorization_errors
            .push_back(AuthorizationError { error: error.to_owned(), description: description.to_owned() });
    }

    /// How the ID tokens of refresh responses are altered from here on
    /// (default: as issued at sign-in, with a new `iat`, `exp` and
    /// `at_hash`), to play a provider that answers a refresh with another
    /// user's token.
    ///
    /// ```
    /// # async fn run() -> std::io::Result<()> {
    /// use filevine_identity_ext::test_util::{RefreshedIdToken, TestServer};
    ///
    /// let server = TestServer::start().await?;
    /// server.set_refreshed_id_token(RefreshedIdToken::Subject("mallory".into()));
    /// # Ok(()) }
    /// ```
    pub fn set_refreshed_id_token(&self, refreshed: RefreshedIdToken) {
        lock(&self.shared.registry).refreshed_id_token = refreshed;
    }

    /// Whether discovery offers pushed authorization requests (RFC 9126),
    /// or requires them (default: the endpoint answers, discovery does
    /// not name it).
    pub fn set_pushed_requests(&self, mode: PushedRequests) {
        lock(&self.shared.registry).pushed_requests_mode = mode;
    }

    /// `claims` signed with the server's signing key, as its ID tokens are,
    /// with `typ` in the header: a token this server would send but does
    /// not issue itself, such as a back-channel logout token
    /// (`logout+jwt`). `None` if signing failed.
    ///
    /// ```
    /// # async fn run() -> std::io::Result<()> {
    /// use filevine_identity_ext::test_util::TestServer;
    ///
    /// let server = TestServer::start().await?;
    /// let claims = serde_json::json!({"iss": server.url(), "sub": "1001"});
    /// let jwt = server.sign_jwt(Some("logout+jwt"), &claims).unwrap();
    /// assert_eq!(jwt.split('.').count(), 3);
    /// # Ok(()) }
    /// ```
    pub fn sign_jwt(&self, typ: Option<&str>, claims: &serde_json::Value) -> Option<String> {
        signin::sign_jwt(&lock(&self.shared.registry), typ, claims)
    }

    /// Lets every pushed authorization request waiting for the browser
    /// expire now.
    pub fn expire_pushed_requests(&self) {
        par::expire_all(&mut lock(&self.shared.registry));
    }

    /// The algorithm of the ID tokens it signs (default RS512, Filevine's).
    pub fn set_id_token_algorithm(&self, algorithm: IdTokenAlgorithm) {
        lock(&self.shared.registry).id_token_algorithm = algorithm;
    }

    /// Requests received by one sign-in endpoint: `"authorization"`,
    /// `"jwks"`, `"userinfo"`, `"revocation"`, `"introspection"`,
    /// `"end_session"`, `"device_authorization"` or `"par"` (0 for another
    /// name).
    pub fn sign_in_requests(&self, endpoint: &str) -> u64 {
        let counts = &self.shared.counts;
        let counter = match endpoint {
            "authorization" => &counts.authorization,
            "jwks" => &counts.jwks,
            "userinfo" => &counts.userinfo,
            "revocation" => &counts.revocation,
            "introspection" => &counts.introspection,
            "end_session" => &counts.end_session,
            "device_authorization" => &counts.device_authorization,
            "par" => &counts.par,
            _ => return 0,
        };
        counter.load(Ordering::SeqCst)
    }

    /// Approves the device sign-in whose user code is `user_code` (typed as
    /// a person would: any case, with or without the dash), as the user
    /// would at the verification URI; its next poll gets the tokens of
    /// the [`TestUser`]. `false` when no device sign-in has that code.
    ///
    /// ```
    /// use filevine_identity_ext::test_util::TestServer;
    /// use filevine_identity_ext::{ClientId, OidcClient, oidc::RedirectUrl};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = TestServer::start().await?;
    /// server.add_sign_in_client("cli", None, &["http://127.0.0.1/callback"], &[]);
    /// server.set_device_polling(0, 600);
    /// let client = OidcClient::builder()
    ///     .region(server.region())
    ///     .client_id(ClientId::new("cli")?)
    ///     .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback")?)
    ///     .build()?;
    /// let device = client.device_authorization().await?;
    /// assert!(server.approve_device(&device.user_code.to_lowercase()));
    /// let signed_in = client.complete_device_sign_in(&device).await?;
    /// assert_eq!(signed_in.claims.sub, server_user_sub());
    /// # fn server_user_sub() -> String { filevine_identity_ext::test_util::TestUser::default().subject().to_owned() }
    /// # Ok(()) }
    /// ```
    pub fn approve_device(&self, user_code: &str) -> bool {
        device::decide(&mut lock(&self.shared.registry), user_code, Some(true))
    }

    /// Denies the device sign-in of `user_code`: its next poll gets
    /// `access_denied`.
    pub fn deny_device(&self, user_code: &str) -> bool {
        device::decide(&mut lock(&self.shared.registry), user_code, Some(false))
    }

    /// Lets the device code of `user_code` expire: its next poll gets
    /// `expired_token`.
    pub fn expire_device(&self, user_code: &str) -> bool {
        device::decide(&mut lock(&self.shared.registry), user_code, None)
    }

    /// The `interval` and `expires_in` (seconds) of the next device
    /// authorizations (default 5 and 600).
    pub fn set_device_polling(&self, interval: u64, expires_in: u64) {
        let mut registry = lock(&self.shared.registry);
        registry.device_settings.interval = interval;
        registry.device_settings.expires_in = expires_in;
    }

    /// The device code issued with `user_code` (for tests that check it
    /// is never shown).
    pub fn device_code(&self, user_code: &str) -> Option<String> {
        device::device_code(&lock(&self.shared.registry), user_code)
    }

    /// Whether discovery advertises the device authorization endpoint
    /// (default yes); the endpoint answers either way.
    pub fn set_device_flow_advertised(&self, advertised: bool) {
        lock(&self.shared.registry).device_settings.advertised = advertised;
    }

    /// The next `count` device code polls are answered `slow_down`.
    pub fn slow_down_device_polls(&self, count: u32) {
        lock(&self.shared.registry).device_settings.slow_downs = count;
    }

    /// When each token request polling the device sign-in of `user_code`
    /// arrived, on tokio's clock (paused-time tests see their own time).
    pub fn device_polls(&self, user_code: &str) -> Vec<tokio::time::Instant> {
        device::polls(&lock(&self.shared.registry), user_code)
    }

    /// Refresh tokens revoked through the revocation endpoint.
    pub fn revoked_refresh_tokens(&self) -> u64 {
        lock(&self.shared.registry).revoked_refresh_tokens
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
    /// Holds every token response (the request is counted and recorded,
    /// the answer waits) until the returned guard is dropped. Lets a test
    /// act while a refresh is in flight without guessing a delay.
    pub fn hold_token_responses(&self) -> HeldResponses {
        self.shared.held.send_replace(true);
        HeldResponses(Arc::clone(&self.shared))
    }

    /// Waits until the server has received at least `count` token requests.
    pub async fn wait_for_token_requests(&self, count: u64) {
        let mut arrived = self.shared.arrived.subscribe();
        // The sender lives as long as the server.
        let _ = arrived.wait_for(|n| *n >= count).await;
    }

    /// Grants this scope list instead of echoing the requested one (a
    /// provider may narrow or widen what was asked for).
    pub fn set_granted_scope(&self, scope: &str) {
        lock(&self.shared.registry).granted_scope = Some(scope.to_owned());
    }

    /// Answers each token request after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.registry).delay = delay;
    }

    /// Makes the next token request fail this way. Calls queue up: each
    /// failure applies to one request, in order.
    pub fn fail_next(&self, failure: Failure) {
        lock(&self.shared.registry).failures.push_back(failure);
    }

    /// The next request for the signing keys (the JWKS) is answered with
    /// `failure` instead; one failure per call, in order.
    pub fn fail_next_jwks(&self, failure: Failure) {
        lock(&self.shared.registry).jwks_failures.push_back(failure);
    }

    /// Token requests received, all grants.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Token requests received with this `grant_type`.
    pub fn grant_requests(&self, grant_type: &str) -> u64 {
        lock(&self.shared.per_grant).get(grant_type).copied().unwrap_or(0)
    }

    /// How many times a refresh token was presented after rotation had
    /// already replaced it: what reuse detection at a real provider flags
    /// (and answers by revoking the whole token family).
    pub fn refresh_token_reuses(&self) -> u64 {
        lock(&self.shared.registry).refresh_token_reuses
    }

    /// Accepts a rotated-away refresh token for `interval` after its
    /// rotation, rotating it again, as providers with a reuse interval (a
    /// grace period for rotation) do: a client whose refresh answer was lost
    /// on the way (the connection cut after the server rotated the token)
    /// can retry. Off (zero) by default; such replays are counted by
    /// [`refresh_token_grace_replays`](Self::refresh_token_grace_replays),
    /// not as reuses.
    ///
    /// ```
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = filevine_identity_ext::test_util::TestServer::start().await?;
    /// server.set_refresh_token_reuse_interval(std::time::Duration::from_secs(30));
    /// assert_eq!(server.refresh_token_grace_replays(), 0);
    /// # Ok(()) }
    /// ```
    pub fn set_refresh_token_reuse_interval(&self, interval: Duration) {
        lock(&self.shared.registry).reuse_interval = interval;
    }

    /// How many rotated-away refresh tokens were accepted within the reuse
    /// interval ([`set_refresh_token_reuse_interval`](Self::set_refresh_token_reuse_interval)).
    pub fn refresh_token_grace_replays(&self) -> u64 {
        lock(&self.shared.registry).grace_replays
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

    /// When an access token this server issued expires, on the wall clock;
    /// `None` for a token it never issued. A test that records when each
    /// token was handed out checks against it that none was handed out
    /// expired, whatever the provider's own clock said.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use filevine_identity_ext::test_util::TestServer;
    ///
    /// let server = TestServer::start().await?;
    /// assert!(server.access_token_expiry("never-issued").is_none());
    /// # Ok(()) }
    /// ```
    pub fn access_token_expiry(&self, token: &str) -> Option<std::time::SystemTime> {
        let expires = *lock(&self.shared.registry).access_tokens.get(token)?;
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        Some(match expires.checked_duration_since(now) {
            Some(left) => wall + left,
            None => wall - now.duration_since(expires),
        })
    }

    /// Every request the gateway stub received, in order.
    pub fn gateway_log(&self) -> Vec<GatewayRequest> {
        lock(&self.shared.registry).gateway_log.clone()
    }

    /// Makes the gateway stub answer 403 to user invites (`POST
    /// /identity/user`), as for a requesting user who may not invite.
    pub fn forbid_user_invites(&self, forbidden: bool) {
        lock(&self.shared.registry).invites_forbidden = forbidden;
    }

    /// The bodies of the user invites the gateway stub accepted, in order.
    pub fn user_invites(&self) -> Vec<serde_json::Value> {
        lock(&self.shared.registry).user_invites.clone()
    }

    /// The gateway stub answers the next request under `/fv-app/` that no
    /// route of its own serves with `status` and `body` (JSON; `None`: no body), once the
    /// request's token checked out; answers queue up in order. For testing
    /// a client of any gateway operation (a generated one).
    ///
    /// ```
    /// # async fn run() -> std::io::Result<()> {
    /// use filevine_identity_ext::test_util::TestServer;
    ///
    /// let server = TestServer::start().await?;
    /// server.answer_next_gateway_request(207, Some(serde_json::json!({"results": []})));
    /// server.answer_next_gateway_request(204, None);
    /// # Ok(()) }
    /// ```
    pub fn answer_next_gateway_request(&self, status: u16, body: Option<serde_json::Value>) {
        lock(&self.shared.registry).gateway_answers.push_back((status, body));
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

/// Token responses wait while this guard lives; see
/// [`TestServer::hold_token_responses`].
#[must_use = "responses are released when the guard drops"]
pub struct HeldResponses(Arc<Shared>);

impl std::fmt::Debug for HeldResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldResponses")
    }
}

impl Drop for HeldResponses {
    fn drop(&mut self) {
        self.0.held.send_replace(false);
    }
}

impl TestServer {
    /// Registers `key`'s public key for `client_id`: the client may
    /// authenticate with `private_key_jwt` (and only with it).
    pub fn add_client_key(&self, client_id: &str, key: &ClientKey) {
        let signing = key.signing_key();
        let is_ec = signing.ec_public_point().is_some();
        lock(&self.shared.registry)
            .proofs
            .client_keys
            .insert(client_id.to_owned(), (is_ec, signing.public_bytes().to_vec()));
    }

    /// Refuses token requests without a DPoP proof (`invalid_dpop_proof`).
    pub fn require_dpop(&self, required: bool) {
        lock(&self.shared.registry).proofs.required = required;
    }

    /// Requires `nonce` in token requests' proofs: a proof without it is
    /// answered `use_dpop_nonce` with `DPoP-Nonce: nonce`.
    pub fn require_dpop_nonce(&self, nonce: &str) {
        lock(&self.shared.registry).proofs.token_nonce = Some(nonce.to_owned());
    }

    /// The same at the gateway stub (a 401 with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"`).
    pub fn require_gateway_dpop_nonce(&self, nonce: &str) {
        lock(&self.shared.registry).proofs.gateway_nonce = Some(nonce.to_owned());
    }

    /// The thumbprint of the key `token` (access or refresh) is bound to.
    pub fn bound_key(&self, token: &str) -> Option<String> {
        lock(&self.shared.registry).proofs.bound.get(token).cloned()
    }

    /// Why assertions and proofs were refused, oldest first.
    pub fn proof_rejections(&self) -> Vec<String> {
        lock(&self.shared.registry).proofs.rejections.clone()
    }
}
