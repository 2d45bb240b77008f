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
//! Routes: `/login` redirects to Filevine, `/signin-oidc` completes the
//! sign-in, `/me` shows the ID token's claims and the userinfo (never a
//! token), `/logout` revokes the access token and signs out at Filevine,
//! `/logout/callback` is where Filevine sends the user back.
//!
//! Sessions are [tower-sessions] sessions; each user's token set lives in
//! a [token store](filevine_identity_ext::store) under a random key kept
//! in the session. By default both are in this process's memory. With
//! `FILEVINE_TOKEN_STORE=redis://…` both live in Redis (set
//! `FILEVINE_STORE_KEY` to encrypt the tokens): run several instances on
//! different `PARTNER_APP_ADDR`s behind one hostname, restart them, and users
//! stay signed in; a refresh that two instances need at once is made once.
//!
//! [tower-sessions]: https://docs.rs/tower-sessions

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use filevine_identity_ext::oidc::{AuthorizationOptions, CsrfToken, IdTokenClaims, PendingSignIn};
use filevine_identity_ext::store::{self, StoreKey, TokenStore};
use filevine_identity_ext::{OidcClient, TokenProvider};
use serde::{Deserialize, Serialize};
use tower_sessions::{MemoryStore as MemorySessions, Session, SessionManagerLayer};

/// What the session holds once the user signed in. No token: those are in
/// the token store, under `token_key`.
#[derive(Clone, Serialize, Deserialize)]
struct SignedInUser {
    claims: IdTokenClaims,
    /// The user's token set's name in the token store (random).
    token_key: String,
}

const PENDING: &str = "pending_sign_in";
const USER: &str = "user";

#[derive(Clone)]
struct App {
    oidc: OidcClient,
    tokens: Arc<dyn TokenStore>,
    /// This instance's providers, by token key: the warm path stays in
    /// memory; a miss reads the store.
    providers: Arc<Mutex<HashMap<String, TokenProvider>>>,
}

#[tokio::main]
async fn main() {
    // Sign-ins and refreshes at INFO, on stderr; the SDK never logs a secret.
    tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::stderr).init();
    let oidc = OidcClient::from_env().unwrap_or_else(|error| exit(2, &error));
    let spec = std::env::var(store::TOKEN_STORE).unwrap_or_else(|_| "memory".into());
    let tokens = store::open(&spec).unwrap_or_else(|error| exit(2, &error));
    let app = App { oidc, tokens, providers: Arc::default() };
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/signin-oidc", get(signin_callback))
        .route("/me", get(me))
        .route("/logout", get(logout))
        .route("/logout/callback", get(logged_out))
        .with_state(app);
    let router = if spec.starts_with("redis") {
        let sessions = sessions::RedisSessions::open(&spec).unwrap_or_else(|error| exit(2, &error));
        router.layer(session_layer(sessions))
    } else {
        router.layer(session_layer(MemorySessions::default()))
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

fn session_layer<S: tower_sessions::SessionStore + Clone>(store: S) -> SessionManagerLayer<S> {
    // Served over http on 127.0.0.1 here; behind TLS, keep `Secure` on.
    SessionManagerLayer::new(store)
        .with_name("partner_session")
        .with_secure(false)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
}

fn exit(code: i32, error: &dyn std::fmt::Display) -> ! {
    eprintln!("error: {error}");
    std::process::exit(code)
}

async fn home() -> Html<&'static str> {
    Html(
        r#"<h1>Partner app</h1><p><a href="/login">Login with Filevine</a> · <a href="/me">Me</a> · <a href="/logout">Logout</a></p>"#,
    )
}

/// Starts a sign-in: the pending sign-in goes into the session, the user
/// to Filevine.
async fn login(State(app): State<App>, session: Session) -> Response {
    let request = match app.oidc.authorization_request(AuthorizationOptions::default()).await {
        Ok(request) => request,
        Err(error) => return failure(StatusCode::BAD_GATEWAY, &error),
    };
    if let Err(error) = session.insert(PENDING, &request.pending).await {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    Redirect::to(request.url.as_str()).into_response()
}

/// The callback: completes the sign-in with the session's pending sign-in
/// and saves the token set to the token store.
async fn signin_callback(State(app): State<App>, session: Session, uri: Uri) -> Response {
    // Taken out of the session: a pending sign-in is used once.
    let pending = match session.remove::<PendingSignIn>(PENDING).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return (StatusCode::BAD_REQUEST, "no sign-in in progress: start at /login").into_response(),
        Err(error) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let signed_in = match app.oidc.complete_sign_in(&uri.to_string(), pending).await {
        Ok(signed_in) => signed_in,
        Err(error) => return failure(StatusCode::UNAUTHORIZED, &error),
    };
    let token_key = match CsrfToken::generate() {
        Ok(random) => random.expose_secret().to_owned(),
        Err(error) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let provider = match app.oidc.token_provider(signed_in.token_set).await {
        Ok(builder) => builder.store(app.tokens.clone()).store_key(StoreKey::session(&token_key)).build_saved().await,
        Err(error) => return failure(StatusCode::BAD_GATEWAY, &error),
    };
    let provider = match provider {
        Ok(provider) => provider,
        Err(error) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    tracing::info!(sub = %signed_in.claims.sub, "signed in");
    lock(&app).insert(token_key.clone(), provider);
    // A new session id at sign-in (no session fixation).
    if let Err(error) = session.cycle_id().await {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    if let Err(error) = session.insert(USER, SignedInUser { claims: signed_in.claims, token_key }).await {
        return failure(StatusCode::INTERNAL_SERVER_ERROR, &error);
    }
    Redirect::to("/me").into_response()
}

/// The user's token provider: this instance's, or one that picks the token
/// set up from the store (another instance signed the user in, or this one
/// restarted).
async fn provider(app: &App, token_key: &str) -> Result<TokenProvider, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(provider) = lock(app).get(token_key) {
        return Ok(provider.clone());
    }
    let provider = app.oidc.stored_session(StoreKey::session(token_key)).await?.store(app.tokens.clone()).build()?;
    lock(app).insert(token_key.to_owned(), provider.clone());
    Ok(provider)
}

/// The signed-in user's claims and userinfo. No tokens.
async fn me(State(app): State<App>, session: Session) -> Response {
    let Ok(Some(user)) = session.get::<SignedInUser>(USER).await else {
        return Redirect::to("/login").into_response();
    };
    // A valid access token, refreshed (with a rotated refresh token) if
    // needed, through the store.
    let userinfo = match provider(&app, &user.token_key).await {
        Ok(tokens) => match tokens.token().await {
            Ok(token) => match app.oidc.userinfo(&token, &user.claims.sub).await {
                Ok(info) => serde_json::to_string_pretty(&info).unwrap_or_default(),
                Err(error) => format!("userinfo failed: {error}"),
            },
            Err(error) if error.needs_sign_in() => return Redirect::to("/login").into_response(),
            Err(error) => format!("no access token: {error}"),
        },
        Err(error) => format!("no access token: {error}"),
    };
    let claims = serde_json::to_string_pretty(&user.claims).unwrap_or_default();
    Html(format!(
        "<h1>Signed in</h1><h2>ID token claims</h2><pre>{}</pre><h2>Userinfo</h2><pre>{}</pre><p><a href=\"/logout\">Logout</a></p>",
        escape(&claims),
        escape(&userinfo)
    ))
    .into_response()
}

/// Revokes the refresh and access tokens, deletes the stored tokens and
/// the session, and signs out at Filevine.
async fn logout(State(app): State<App>, session: Session) -> Response {
    let user = session.get::<SignedInUser>(USER).await.ok().flatten();
    let _ = session.flush().await;
    let Some(user) = user else {
        return Redirect::to("/").into_response();
    };
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
        Ok(end) => Redirect::to(end.url.as_str()).into_response(),
        // The provider has no end-session endpoint: signed out locally.
        Err(_) => Redirect::to("/logout/callback").into_response(),
    }
}

async fn logged_out() -> Html<&'static str> {
    Html(r#"<h1>Signed out</h1><p><a href="/login">Login again</a></p>"#)
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, HashMap<String, TokenProvider>> {
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

/// tower-sessions over the `redis` crate the SDK's token store already
/// uses (the published Redis adapter brings a second Redis client).
mod sessions {
    use redis::AsyncCommands as _;
    use tower_sessions::cookie::time::OffsetDateTime;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::{Error, Result, SessionStore};

    #[derive(Clone)]
    pub struct RedisSessions {
        client: redis::Client,
        connection: std::sync::Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    }

    impl std::fmt::Debug for RedisSessions {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("RedisSessions")
        }
    }

    impl RedisSessions {
        pub fn open(url: &str) -> std::result::Result<Self, redis::RedisError> {
            Ok(Self { client: redis::Client::open(url)?, connection: Default::default() })
        }

        async fn connection(&self) -> Result<redis::aio::ConnectionManager> {
            let client = self.client.clone();
            self.connection
                .get_or_try_init(|| async move { redis::aio::ConnectionManager::new(client).await })
                .await
                .cloned()
                .map_err(backend)
        }
    }

    fn backend(error: redis::RedisError) -> Error {
        Error::Backend(error.to_string())
    }

    fn key(id: &Id) -> String {
        format!("partner-app:session:{id}")
    }

    #[async_trait::async_trait]
    impl SessionStore for RedisSessions {
        async fn save(&self, record: &Record) -> Result<()> {
            let json = serde_json::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
            let left = (record.expiry_date - OffsetDateTime::now_utc()).whole_milliseconds();
            let millis = u64::try_from(left).unwrap_or(0).max(1);
            self.connection().await?.pset_ex::<_, _, ()>(key(&record.id), json, millis).await.map_err(backend)
        }

        async fn load(&self, id: &Id) -> Result<Option<Record>> {
            let json: Option<Vec<u8>> = self.connection().await?.get(key(id)).await.map_err(backend)?;
            json.map(|json| serde_json::from_slice(&json).map_err(|e| Error::Decode(e.to_string()))).transpose()
        }

        async fn delete(&self, id: &Id) -> Result<()> {
            self.connection().await?.del::<_, ()>(key(id)).await.map_err(backend)
        }
    }
}
