//! A small partner web app, like Filevine's sample apps: "Login with
//! Filevine" (authorization code + PKCE + client secret), the signed-in
//! user's claims, and sign-out.
//!
//! ```sh
//! FILEVINE_REGION=us \
//! FILEVINE_CLIENT_ID=… FILEVINE_CLIENT_SECRET=… \
//! FILEVINE_REDIRECT_URI=http://127.0.0.1:7059/signin-oidc \
//! FILEVINE_POST_LOGOUT_REDIRECT_URI=http://127.0.0.1:7059/logout/callback \
//! cargo run -p filevine-identity-ext --example partner_app
//! ```
//!
//! Then open http://127.0.0.1:7059/. `FILEVINE_AUTHORITY` instead of
//! `FILEVINE_REGION` points it at another provider (the sign-in tests' one:
//! `node filevine-identity-ext/tests/oidc-provider/server.mjs`);
//! `FILEVINE_SCOPES` overrides the scopes; `PARTNER_APP_ADDR` the address
//! (default 127.0.0.1:7059).
//!
//! Without a shared secret: `FILEVINE_CLIENT_KEY` (a PEM or JWK file) and
//! `FILEVINE_CLIENT_KEY_ID` in place of `FILEVINE_CLIENT_SECRET` sign each
//! token, revocation and introspection request with the key
//! (`private_key_jwt`); `FILEVINE_DPOP=true` binds the tokens to a key pair
//! kept with them in the token store (DPoP), so `/me` and every refresh
//! send proofs.
//!
//! Routes: `/login` redirects to Filevine, `/signin-oidc` completes the
//! sign-in, `/me` shows the ID token's claims and the userinfo (never a
//! token) and a logout button, `POST /logout` (with the form's `csrf`)
//! revokes the tokens and sends the user to sign out at Filevine,
//! `/logout/callback` is where Filevine sends them back, and
//! `POST /backchannel-logout` is where Filevine says a user's session ended
//! (OpenID Connect Back-Channel Logout; register
//! `{app}/backchannel-logout` as the client's `backchannel_logout_uri`):
//! every instance then sends that user to sign in again.
//!
//! What it does against session fixation, CSRF and unbounded growth:
//! - `/login` creates no session: the pending sign-in (state, nonce, PKCE
//!   verifier) is a server-side record named by its own 15-minute cookie,
//!   used once by the callback. The session starts at sign-in, with a new
//!   id (`cycle_id`), so an id planted before sign-in is worth nothing.
//! - Cookies are `HttpOnly`, `SameSite=Lax`, and over https (the redirect
//!   URI's scheme) `Secure` with the `__Host-` prefix ([`cookies`]).
//! - Logout is a POST carrying the session's CSRF token (`GET /logout`
//!   does nothing); the end-session `state` is kept in a cookie and checked
//!   when the provider sends the user back.
//! - Sessions expire after 8 hours without a request
//!   (`PARTNER_APP_SESSION_IDLE_SECS`); in memory at most
//!   `PARTNER_APP_MAX_SESSIONS` (default 10,000) sessions and as many
//!   pending sign-ins are kept ([`stores::BoundedMemory`]); in Redis every
//!   record carries its expiry, and is named by an HMAC of its id and
//!   sealed ([`stores::RedisSessions`]).
//! - A user's token set expires with the session's idle time
//!   (`store_idle_timeout`; each refresh renews it). This instance keeps a
//!   provider per active session only: a sweep drops those unused for the
//!   idle time, and when the token set is gone from the store too (the
//!   session ended everywhere) revokes the refresh token it held.
//!
//! Sessions are [tower-sessions] sessions; each user's token set lives in
//! a [token store](filevine_identity_ext::store) under a random key kept
//! in the session. By default both are in this process's memory. With a
//! PostgreSQL URL in `FILEVINE_TOKEN_STORE` (`postgres://…`) both live in
//! that database on one pool: the token sets in `PostgresStore`, the
//! sessions in tower-sessions' PostgreSQL store (rows named by an HMAC of
//! the session id and sealed, [`stores::Sealed`]); the tables are made at
//! start-up. With a
//! Redis URL in `FILEVINE_TOKEN_STORE` (`redis://…` for one node,
//! `redis+sentinel://…/<master>` for a primary behind Sentinels,
//! `redis+cluster://…` for a cluster) both live in that Redis deployment,
//! on one connection (`FILEVINE_STORE_KEY` is then required: it seals the token sets and the sessions): run several instances on
//! different `PARTNER_APP_ADDR`s behind one hostname, restart them, and users
//! stay signed in; a refresh that two instances need at once is made once.
//!
//! [tower-sessions]: https://docs.rs/tower-sessions

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use filevine_identity_ext::oidc::{AuthorizationOptions, BackChannelLogout, CsrfToken, IdTokenClaims, PendingSignIn};
use filevine_identity_ext::store::redis::RedisConnection;
use filevine_identity_ext::store::{self, PostgresStore, RedisStore, StoreEncryptionKeys, StoreKey, TokenStore};
use filevine_identity_ext::{OidcClient, SignInError, TokenProvider};
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::time::{Duration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

mod cookies;
mod stores;

/// What the session holds once the user signed in. No token: those are in
/// the token store, under `token_key`.
#[derive(Clone, Serialize, Deserialize)]
struct SignedInUser {
    claims: IdTokenClaims,
    /// The user's token set's name in the token store (random).
    token_key: String,
    /// The token the logout form must bring back.
    csrf: CsrfToken,
}

const USER: &str = "user";
/// The pending sign-in's field in its record.
const PENDING: &str = "pending_sign_in";
/// How long a sign-in may take (the SDK's default sign-in timeout), and so
/// how long its cookie and record live; the same for the sign-out state.
const SIGN_IN_TTL: Duration = Duration::minutes(15);
/// A session ends after this long without a request, unless
/// `PARTNER_APP_SESSION_IDLE_SECS` says otherwise.
const SESSION_IDLE: Duration = Duration::hours(8);

#[derive(Clone)]
struct App {
    oidc: OidcClient,
    tokens: Arc<dyn TokenStore>,
    /// Ends the sessions of a user Filevine signed out (back-channel
    /// logout), on every instance sharing the token store.
    logout: BackChannelLogout,
    /// This instance's providers, by token key, with when each was last
    /// used: the warm path stays in memory; a miss reads the store.
    providers: Arc<Mutex<HashMap<String, (TokenProvider, Instant)>>>,
    /// Pending sign-ins, named by the sign-in cookie.
    pending: Arc<dyn SessionStore>,
    cookies: cookies::Policy,
    /// How long a session (and its token set) lives without a request.
    idle: std::time::Duration,
}

#[tokio::main]
async fn main() {
    // Sign-ins and refreshes at INFO, on stderr; the SDK never logs a secret.
    tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::stderr).init();
    let oidc = OidcClient::from_env().unwrap_or_else(|error| exit(2, &error));
    let policy = cookies::Policy { https: oidc.redirect_uri().as_str().starts_with("https://") };
    let spec = std::env::var(store::TOKEN_STORE).unwrap_or_else(|_| "memory".into());
    // The key that seals token sets and, in Redis or PostgreSQL, names and
    // seals the sessions: required there (instances must share it).
    let keys = match std::env::var(store::STORE_KEY) {
        Ok(value) if !value.trim().is_empty() => {
            Some(StoreEncryptionKeys::parse(&value).unwrap_or_else(|error| exit(2, &error)))
        }
        _ => None,
    };
    let idle = match std::env::var("PARTNER_APP_SESSION_IDLE_SECS") {
        Ok(value) => match value.parse::<u64>() {
            Ok(secs) if secs > 0 => std::time::Duration::from_secs(secs),
            _ => exit(2, &"PARTNER_APP_SESSION_IDLE_SECS must be a whole number of seconds above 0"),
        },
        Err(_) => std::time::Duration::from_secs(SESSION_IDLE.whole_seconds().unsigned_abs()),
    };
    let capacity = match std::env::var("PARTNER_APP_MAX_SESSIONS") {
        Ok(value) => value.parse().unwrap_or_else(|error| exit(2, &format!("PARTNER_APP_MAX_SESSIONS: {error}"))),
        Err(_) => 10_000,
    };
    let shared_keys = || match &keys {
        Some(keys) => keys.clone(),
        None => exit(
            2,
            &"with a Redis or PostgreSQL store, set FILEVINE_STORE_KEY (32 bytes, base64): it seals the sessions and token sets",
        ),
    };
    let backend = Backend::open(&spec).await;
    let (tokens, pending): (Arc<dyn TokenStore>, Arc<dyn SessionStore>) = match &backend {
        Backend::Memory => {
            (store::open(&spec).unwrap_or_else(|error| exit(2, &error)), Arc::new(stores::BoundedMemory::new(capacity)))
        }
        // One connection for the token sets and the sessions, whichever
        // form the Redis deployment has.
        Backend::Redis(connection) => (
            Arc::new(RedisStore::with_connection(connection.clone())),
            Arc::new(stores::RedisSessions::new(connection.clone(), "partner-app:signin:", shared_keys())),
        ),
        // One pool for the token sets and the sessions.
        Backend::Postgres(pool) => {
            let signins = backend.postgres_sessions(pool, "partner_app_signins").await;
            (Arc::new(PostgresStore::with_pool(pool.clone())), Arc::new(stores::Sealed::new(signins, shared_keys())))
        }
    };
    let back_channel = oidc
        .back_channel_logout(tokens.clone())
        .idle_timeout(idle)
        .provider_options(move |builder| builder.store_idle_timeout(idle));
    let app = App { oidc, tokens, logout: back_channel, providers: Arc::default(), pending, cookies: policy, idle };
    tokio::spawn(sweep_idle_providers(app.clone()));
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/signin-oidc", get(signin_callback))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/logout/callback", get(logged_out))
        .route("/backchannel-logout", post(backchannel_logout))
        .with_state(app);
    let router = match &backend {
        Backend::Memory => router.layer(session_layer(stores::BoundedMemory::new(capacity), policy, idle)),
        Backend::Redis(connection) => router.layer(session_layer(
            stores::RedisSessions::new(connection.clone(), "partner-app:session:", shared_keys()),
            policy,
            idle,
        )),
        Backend::Postgres(pool) => {
            let sessions = backend.postgres_sessions(pool, "partner_app_sessions").await;
            router.layer(session_layer(stores::Sealed::new(sessions, shared_keys()), policy, idle))
        }
    };
    let addr = std::env::var("PARTNER_APP_ADDR").unwrap_or_else(|_| "127.0.0.1:7059".into());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => exit(1, &error),
    };
    println!("partner app listening on http://{addr}/");
    if let Err(error) = axum::serve(listener, router).await {
        exit(1, &error);
    }
}

/// Where the app keeps its token sets and sessions, from
/// `FILEVINE_TOKEN_STORE`.
enum Backend {
    /// This process's memory (or a file store for the token sets).
    Memory,
    /// A Redis deployment of any form.
    Redis(RedisConnection),
    /// A PostgreSQL database: the token table is made here if missing
    /// (`PostgresStore::migrate`), as are the session tables.
    Postgres(sqlx::PgPool),
}

impl Backend {
    async fn open(spec: &str) -> Backend {
        if spec.starts_with("redis") {
            return Backend::Redis(RedisConnection::open(spec).unwrap_or_else(|error| exit(2, &error)));
        }
        if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
            return Backend::Memory;
        }
        // Checked without repeating the password; one pool for all.
        let options = PostgresStore::connect_options(spec).unwrap_or_else(|error| exit(2, &error));
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect_lazy_with(options);
        let tokens = PostgresStore::with_pool(pool.clone());
        if let Err(error) = tokens.migrate().await {
            exit(1, &filevine_identity_ext::error::Report(&error));
        }
        Backend::Postgres(pool)
    }

    /// tower-sessions' PostgreSQL store on `table`, its table made.
    async fn postgres_sessions(&self, pool: &sqlx::PgPool, table: &str) -> tower_sessions_sqlx_store::PostgresStore {
        let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone())
            .with_table_name(table)
            .unwrap_or_else(|error| exit(2, &error));
        if let Err(error) = migrate_sessions(&store).await {
            exit(1, &format!("cannot create the session table {table}: {error}"));
        }
        // Expired sessions are filtered out on load and deleted here.
        let sweeper = store.clone();
        tokio::spawn(async move {
            use tower_sessions::ExpiredDeletion as _;
            if let Err(error) = sweeper.continuously_delete_expired(std::time::Duration::from_secs(60)).await {
                tracing::warn!(%error, "stopped deleting expired sessions");
            }
        });
        store
    }
}

/// Makes a session table. tower-sessions' `migrate` is a `CREATE TABLE IF
/// NOT EXISTS`, which fails with a duplicate key (SQLSTATE 23505, or 42P07)
/// when another instance makes the same table at the same moment: the
/// table is there then, and the next run finds it.
async fn migrate_sessions(store: &tower_sessions_sqlx_store::PostgresStore) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store.migrate().await {
            Err(error) if attempt < 5 && is_concurrent_create(&error) => {
                tracing::debug!(attempt, "another instance made the session table meanwhile; checking again");
            }
            other => return other,
        }
    }
}

fn is_concurrent_create(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|error| error.code()).is_some_and(|code| code == "23505" || code == "42P07")
}

fn session_layer<S: SessionStore + Clone>(
    store: S,
    policy: cookies::Policy,
    idle: std::time::Duration,
) -> SessionManagerLayer<S> {
    let idle = Duration::try_from(idle).unwrap_or(SESSION_IDLE);
    SessionManagerLayer::new(store)
        .with_name(policy.name(cookies::SESSION))
        .with_secure(policy.https)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

/// Drops the providers of sessions idle on this instance, so the map holds
/// active sessions only. A provider idle for the idle time whose token set
/// is gone from the store (it expires with the same idle time; every
/// refresh on any instance renews it) belongs to a session that ended
/// everywhere: it is dropped and the refresh token it held revoked. One
/// whose set is still stored (another instance keeps the session alive) is
/// dropped without revoking once idle here for twice the idle time.
async fn sweep_idle_providers(app: App) {
    let every = (app.idle / 4).clamp(std::time::Duration::from_millis(250), std::time::Duration::from_secs(60));
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let idle: Vec<(String, TokenProvider, bool)> = lock(&app)
            .iter()
            .filter(|(_, (_, used))| used.elapsed() >= app.idle)
            .map(|(key, (provider, used))| (key.clone(), provider.clone(), used.elapsed() >= app.idle * 2))
            .collect();
        let (mut dropped, mut revoked) = (0, 0);
        for (key, provider, long_idle) in idle {
            let stored = match provider.store_key() {
                Some(store_key) => app.tokens.load(store_key.as_str()).await,
                None => Ok(None),
            };
            match stored {
                Ok(None) => {
                    if let Some(refresh_token) = provider.refresh_token() {
                        match app.oidc.revoke_refresh_token(&refresh_token).await {
                            Ok(()) => revoked += 1,
                            Err(error) => tracing::warn!(%error, "could not revoke an ended session's refresh token"),
                        }
                    }
                }
                // Still stored (or the store is unreachable): used elsewhere.
                _ if !long_idle => continue,
                _ => {}
            }
            lock(&app).remove(&key);
            dropped += 1;
        }
        if dropped > 0 {
            let remaining = lock(&app).len();
            tracing::info!(dropped, revoked, remaining, "dropped the token providers of idle sessions");
        }
    }
}

fn exit(code: i32, error: &dyn std::fmt::Display) -> ! {
    eprintln!("error: {error}");
    std::process::exit(code)
}

async fn home() -> Html<&'static str> {
    Html(r#"<h1>Partner app</h1><p><a href="/login">Login with Filevine</a> · <a href="/me">Me</a></p>"#)
}

/// Starts a sign-in: the pending sign-in goes into its own short-lived
/// record and cookie (no session yet), the user to Filevine.
async fn login(State(app): State<App>, headers: HeaderMap) -> Response {
    let request = match app.oidc.authorization_request(AuthorizationOptions::default()).await {
        Ok(request) => request,
        Err(error) => return failure(StatusCode::BAD_GATEWAY, &error),
    };
    // A sign-in this browser started and did not finish is dropped.
    if let Some(id) = app.cookies.get(&headers, cookies::SIGN_IN).and_then(|v| v.parse::<Id>().ok()) {
        let _ = app.pending.delete(&id).await;
    }
    let pending = match serde_json::to_value(&request.pending) {
        Ok(pending) => pending,
        Err(error) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let mut record = Record {
        id: Id::default(),
        data: HashMap::from([(PENDING.to_owned(), pending)]),
        expiry_date: OffsetDateTime::now_utc() + SIGN_IN_TTL,
    };
    if let Err(error) = app.pending.create(&mut record).await {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    let cookie = app.cookies.set(cookies::SIGN_IN, &record.id.to_string(), SIGN_IN_TTL);
    ([(SET_COOKIE, cookie)], Redirect::to(request.url.as_str())).into_response()
}

/// The callback: takes the pending sign-in named by the sign-in cookie
/// (once), completes the sign-in, saves the token set to the token store,
/// and starts the session under a new id.
async fn signin_callback(State(app): State<App>, session: Session, headers: HeaderMap, uri: Uri) -> Response {
    let clear = [(SET_COOKIE, app.cookies.clear(cookies::SIGN_IN))];
    let Some(pending) = take_pending(&app, &headers).await else {
        return (StatusCode::BAD_REQUEST, clear, "no sign-in in progress: start at /login").into_response();
    };
    let signed_in = match app.oidc.complete_sign_in(&uri.to_string(), pending).await {
        Ok(signed_in) => signed_in,
        Err(error) => return (clear, failure(sign_in_failed(&error), &error)).into_response(),
    };
    let (token_key, csrf) = match (CsrfToken::generate(), CsrfToken::generate()) {
        (Ok(key), Ok(csrf)) => (key.expose_secret().to_owned(), csrf),
        (Err(error), _) | (_, Err(error)) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let builder = app.oidc.token_provider(signed_in.token_set).store(app.tokens.clone());
    let provider =
        match builder.store_idle_timeout(app.idle).store_key(StoreKey::session(&token_key)).build_saved().await {
            Ok(provider) => provider,
            Err(error) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
        };
    // Filed under the sign-in's sid and sub, so that Filevine ending the
    // session ends it here, on every instance.
    if let Err(error) = app.logout.register(&signed_in.claims, &StoreKey::session(&token_key)).await {
        let _ = app.oidc.sign_out(&provider).await;
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    tracing::info!(sub = %signed_in.claims.sub, "signed in");
    lock(&app).insert(token_key.clone(), (provider, Instant::now()));
    // A new session id at sign-in: a session id planted before (session
    // fixation) is not the one that gets signed in.
    if let Err(error) = session.cycle_id().await {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    if let Err(error) = session.insert(USER, SignedInUser { claims: signed_in.claims, token_key, csrf }).await {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    (clear, Redirect::to("/me")).into_response()
}

/// The status of a sign-in that did not complete. Never 401: that status
/// needs a `WWW-Authenticate` challenge (RFC 9110 §15.5.2), and a cookie
/// sign-in has none to offer. 403 when the provider or the checks refused
/// the user, 502 when the provider could not be reached, 400 for a
/// callback this sign-in cannot use.
fn sign_in_failed(error: &SignInError) -> StatusCode {
    match error {
        SignInError::Provider { .. }
        | SignInError::IdToken(_)
        | SignInError::SubjectMismatch { .. }
        | SignInError::IssuerMismatch { .. }
        | SignInError::MissingIssuer => StatusCode::FORBIDDEN,
        SignInError::Discovery(_) => StatusCode::BAD_GATEWAY,
        SignInError::Token(error) if error.is_retryable() => StatusCode::BAD_GATEWAY,
        SignInError::Token(_) | SignInError::Config(_) | SignInError::Randomness(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The pending sign-in the request's sign-in cookie names, removed from
/// the store so that it is used once.
async fn take_pending(app: &App, headers: &HeaderMap) -> Option<PendingSignIn> {
    let id = app.cookies.get(headers, cookies::SIGN_IN)?.parse::<Id>().ok()?;
    let record = app.pending.load(&id).await.ok().flatten();
    let _ = app.pending.delete(&id).await;
    serde_json::from_value(record?.data.remove(PENDING)?).ok()
}

/// The user's token provider: this instance's, or one that picks the token
/// set up from the store (another instance signed the user in, or this one
/// restarted).
async fn provider(app: &App, token_key: &str) -> Result<TokenProvider, Box<dyn std::error::Error + Send + Sync>> {
    if let Some((provider, used)) = lock(app).get_mut(token_key) {
        *used = Instant::now();
        return Ok(provider.clone());
    }
    let builder = app.oidc.stored_session(StoreKey::session(token_key)).store(app.tokens.clone());
    let provider = builder.store_idle_timeout(app.idle).build()?;
    lock(app).insert(token_key.to_owned(), (provider.clone(), Instant::now()));
    Ok(provider)
}

/// The signed-in user's claims and userinfo (no tokens), and the logout
/// form with the session's CSRF token.
async fn me(State(app): State<App>, session: Session) -> Response {
    let Ok(Some(user)) = session.get::<SignedInUser>(USER).await else {
        return Redirect::to("/login").into_response();
    };
    // A valid access token, refreshed (with a rotated refresh token) if
    // needed, through the store.
    let userinfo = match provider(&app, &user.token_key).await {
        Ok(tokens) => match userinfo(&app, &tokens, &user.claims.sub).await {
            Ok(info) => info,
            Err(Fetch::SignIn) => return Redirect::to("/login").into_response(),
            Err(Fetch::Failed(message)) => message,
        },
        Err(error) => format!("no access token: {error}"),
    };
    let claims = serde_json::to_string_pretty(&user.claims).unwrap_or_default();
    Html(format!(
        "<h1>Signed in</h1><h2>ID token claims</h2><pre>{}</pre><h2>Userinfo</h2><pre>{}</pre>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Logout</button></form>",
        escape(&claims),
        escape(&userinfo),
        escape(user.csrf.expose_secret()),
    ))
    .into_response()
}

/// Why `/me` has no userinfo to show.
enum Fetch {
    /// The session ended (signed out here, on another instance, or at
    /// Filevine): sign in again.
    SignIn,
    /// Anything else, in words.
    Failed(String),
}

/// The user's userinfo with a valid access token. A 401 means the token
/// was revoked (the session ended elsewhere, e.g. a back-channel logout on
/// another instance): the cached token is dropped and the token store
/// asked again, once, which says whether the session still exists.
async fn userinfo(app: &App, tokens: &TokenProvider, sub: &str) -> Result<String, Fetch> {
    for attempt in 0..2 {
        let token = match tokens.token().await {
            Ok(token) => token,
            Err(error) if error.needs_sign_in() => return Err(Fetch::SignIn),
            Err(error) => return Err(Fetch::Failed(format!("no access token: {error}"))),
        };
        match app.oidc.userinfo(&token, sub).await {
            Ok(info) => return Ok(serde_json::to_string_pretty(&info).unwrap_or_default()),
            Err(SignInError::Token(error)) if error.status() == Some(401) && attempt == 0 => tokens.invalidate(),
            Err(error) => return Err(Fetch::Failed(format!("userinfo failed: {error}"))),
        }
    }
    Err(Fetch::Failed("userinfo refused a fresh token".to_owned()))
}

/// `POST /backchannel-logout` from Filevine (OpenID Connect Back-Channel
/// Logout 1.0 §2.5, §2.8): a verified `logout_token` ends the sessions it
/// names on every instance (deletion marks in the shared token store, the
/// tokens revoked): 200. Anything else: 400. Neither has a body, and
/// neither may be cached.
async fn backchannel_logout(
    State(app): State<App>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let no_store = [(CACHE_CONTROL, "no-store")];
    let Some(token) = form.ok().and_then(|Form(mut form)| form.remove("logout_token")) else {
        return (StatusCode::BAD_REQUEST, no_store).into_response();
    };
    match app.logout.handle(&token).await {
        Ok(ended) => {
            // This instance's providers of those sessions go too.
            let ended: Vec<&str> = ended.sessions.iter().map(StoreKey::as_str).collect();
            lock(&app).retain(|token_key, _| !ended.contains(&StoreKey::session(token_key).as_str()));
            (StatusCode::OK, no_store).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "refused a back-channel logout");
            (StatusCode::BAD_REQUEST, no_store).into_response()
        }
    }
}

/// The logout form's field.
#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// `POST /logout` with the session's CSRF token: revokes the refresh and
/// access tokens, deletes the stored tokens and the session, and sends the
/// user to sign out at Filevine (303), keeping the end-session `state` in
/// a cookie for the way back. Another site cannot sign the user out: it
/// does not know the token.
async fn logout(State(app): State<App>, session: Session, form: Result<Form<LogoutForm>, FormRejection>) -> Response {
    let Ok(Some(user)) = session.get::<SignedInUser>(USER).await else {
        return Redirect::to("/").into_response();
    };
    match form {
        Ok(Form(form)) if user.csrf.matches(&form.csrf) => {}
        _ => return (StatusCode::FORBIDDEN, "the logout form is stale or forged: sign out from /me").into_response(),
    }
    let _ = session.flush().await;
    let mut hint = None;
    match provider(&app, &user.token_key).await {
        Ok(tokens) => {
            hint = tokens.latest_id_token();
            if let Err(error) = app.oidc.sign_out(&tokens).await {
                eprintln!("warning: could not revoke the tokens: {error}");
            }
        }
        Err(error) => eprintln!("warning: could not read the stored tokens: {error}"),
    }
    lock(&app).remove(&user.token_key);
    match app.oidc.end_session_url(hint.as_ref()).await {
        Ok(end) => {
            let cookie = app.cookies.set(cookies::SIGN_OUT, end.state.expose_secret(), SIGN_IN_TTL);
            ([(SET_COOKIE, cookie)], Redirect::to(end.url.as_str())).into_response()
        }
        // The provider has no end-session endpoint: signed out here.
        Err(_) => signed_out_page(&app),
    }
}

/// Where the provider sends the user after signing out: the `state` must
/// be the one this browser's logout sent.
async fn logged_out(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = app.cookies.get(&headers, cookies::SIGN_OUT);
    let matches = match (expected, query.get("state")) {
        (Some(expected), Some(got)) => subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), got.as_bytes()).into(),
        _ => false,
    };
    if !matches {
        return (StatusCode::BAD_REQUEST, "this sign-out response does not belong to a sign-out from this browser")
            .into_response();
    }
    signed_out_page(&app)
}

fn signed_out_page(app: &App) -> Response {
    (
        [(SET_COOKIE, app.cookies.clear(cookies::SIGN_OUT))],
        Html(r#"<h1>Signed out</h1><p><a href="/login">Login again</a></p>"#),
    )
        .into_response()
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, HashMap<String, (TokenProvider, Instant)>> {
    app.providers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An error page: the SDK's messages never contain a secret.
fn failure(status: StatusCode, error: &dyn std::error::Error) -> Response {
    (
        status,
        Html(format!(
            "<h1>Sign-in failed</h1><p>{}</p><p><a href=\"/login\">Try again</a></p>",
            escape(&error.to_string())
        )),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
