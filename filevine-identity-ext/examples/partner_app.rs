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
//! Sessions live in memory, keyed by a random cookie: a real app keeps them
//! in its session store (the `PendingSignIn` is serializable for that).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use filevine_identity_ext::grant::IdToken;
use filevine_identity_ext::oidc::{AuthorizationOptions, CsrfToken, IdTokenClaims, PendingSignIn};
use filevine_identity_ext::{OidcClient, TokenProvider};

const SESSION_COOKIE: &str = "partner_session";

#[derive(Default)]
struct Session {
    pending: Option<PendingSignIn>,
    user: Option<SignedInUser>,
}

struct SignedInUser {
    claims: IdTokenClaims,
    id_token: Option<IdToken>,
    tokens: TokenProvider,
}

#[derive(Clone)]
struct App {
    oidc: OidcClient,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

#[tokio::main]
async fn main() {
    // Sign-ins and refreshes at INFO, on stderr; the SDK never logs a secret.
    tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::stderr).init();
    let oidc = match OidcClient::from_env() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    let app = App { oidc, sessions: Arc::default() };
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/signin-oidc", get(signin_callback))
        .route("/me", get(me))
        .route("/logout", get(logout))
        .route("/logout/callback", get(logged_out))
        .with_state(app);
    let addr = std::env::var("PARTNER_APP_ADDR").unwrap_or_else(|_| "127.0.0.1:7059".into());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    println!("partner app listening on http://{addr}/");
    if let Err(error) = axum::serve(listener, router).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn home() -> Html<&'static str> {
    Html(
        r#"<h1>Partner app</h1><p><a href="/login">Login with Filevine</a> · <a href="/me">Me</a> · <a href="/logout">Logout</a></p>"#,
    )
}

/// Starts a sign-in: a new session holding the pending sign-in, and a
/// redirect to Filevine.
async fn login(State(app): State<App>) -> Response {
    let request = match app.oidc.authorization_request(AuthorizationOptions::default()).await {
        Ok(request) => request,
        Err(error) => return failure(StatusCode::BAD_GATEWAY, &error),
    };
    let session_id = match CsrfToken::generate() {
        Ok(id) => id.expose_secret().to_owned(),
        Err(error) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    lock(&app).insert(session_id.clone(), Session { pending: Some(request.pending), user: None });
    let cookie = format!("{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to(request.url.as_str())).into_response()
}

/// The callback: completes the sign-in with the session's pending sign-in.
async fn signin_callback(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(session_id) = session_id(&headers) else {
        return (StatusCode::BAD_REQUEST, "no session: start at /login").into_response();
    };
    // Taken out of the session: a pending sign-in is used once.
    let pending = lock(&app).get_mut(&session_id).and_then(|s| s.pending.take());
    let Some(pending) = pending else {
        return (StatusCode::BAD_REQUEST, "no sign-in in progress: start at /login").into_response();
    };
    let signed_in = match app.oidc.complete_sign_in(&uri.to_string(), pending).await {
        Ok(signed_in) => signed_in,
        Err(error) => return failure(StatusCode::UNAUTHORIZED, &error),
    };
    let id_token = signed_in.token_set.id_token.clone();
    let tokens = match app.oidc.token_provider(signed_in.token_set).await.map(|b| b.build()) {
        Ok(Ok(tokens)) => tokens,
        Ok(Err(error)) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
        Err(error) => return failure(StatusCode::BAD_GATEWAY, &error),
    };
    let user = SignedInUser { claims: signed_in.claims, id_token, tokens };
    lock(&app).entry(session_id).or_default().user = Some(user);
    Redirect::to("/me").into_response()
}

/// The signed-in user's claims and userinfo. No tokens.
async fn me(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = session_id(&headers)
        .and_then(|id| lock(&app).get(&id).and_then(|s| s.user.as_ref().map(|u| (u.claims.clone(), u.tokens.clone()))));
    let Some((claims, tokens)) = user else {
        return Redirect::to("/login").into_response();
    };
    // A valid access token, refreshed (with a rotated refresh token) if needed.
    let userinfo = match tokens.token().await {
        Ok(token) => match app.oidc.userinfo(&token, &claims.sub).await {
            Ok(info) => serde_json::to_string_pretty(&info).unwrap_or_default(),
            Err(error) => format!("userinfo failed: {error}"),
        },
        Err(error) => format!("no access token: {error}"),
    };
    let claims = serde_json::to_string_pretty(&claims).unwrap_or_default();
    Html(format!(
        "<h1>Signed in</h1><h2>ID token claims</h2><pre>{}</pre><h2>Userinfo</h2><pre>{}</pre><p><a href=\"/logout\">Logout</a></p>",
        escape(&claims),
        escape(&userinfo)
    ))
    .into_response()
}

/// Revokes the access token, forgets the session, and signs out at Filevine.
async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = session_id(&headers).and_then(|id| lock(&app).remove(&id)).and_then(|s| s.user);
    let Some(user) = user else {
        return Redirect::to("/").into_response();
    };
    if let Ok(token) = user.tokens.token().await
        && let Err(error) = app.oidc.revoke_access_token(&token).await
    {
        eprintln!("warning: could not revoke the access token: {error}");
    }
    let hint = user.tokens.latest_id_token().or(user.id_token);
    match app.oidc.end_session_url(hint.as_ref()).await {
        Ok(end) => Redirect::to(end.url.as_str()).into_response(),
        // The provider has no end-session endpoint: signed out locally.
        Err(_) => Redirect::to("/logout/callback").into_response(),
    }
}

async fn logged_out() -> Html<&'static str> {
    Html(r#"<h1>Signed out</h1><p><a href="/login">Login again</a></p>"#)
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| c.trim().strip_prefix(&format!("{SESSION_COOKIE}=")).map(str::to_owned))
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
    app.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
