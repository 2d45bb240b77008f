//! `login`: the authorization code flow with PKCE for a native client, with
//! an RFC 8252 loopback redirect; `login --device`: the device code flow
//! (RFC 8628); `login --with-pat`: a PAT from stdin.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Html;
use filevine_identity_ext::oidc::{AuthorizationOptions, CsrfToken, RedirectUrl};
use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use filevine_identity_ext::store::TokenStore as _;

use crate::config::Settings;
use crate::error::CliError;
use crate::output::with_spinner;
use crate::session::{self, Method, Profile, State as SignIn};

/// Longest PAT read from standard input.
const MAX_PAT_BYTES: u64 = 8 * 1024;

pub async fn login(
    settings: &Settings,
    open_browser: bool,
    port: Option<u16>,
    timeout: Duration,
) -> Result<(), CliError> {
    let client_id = client_id(settings)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))
        .await
        .map_err(CliError::io(format!("listening on 127.0.0.1:{}", port.unwrap_or(0))))?;
    let port = listener.local_addr().map_err(CliError::io("reading the loopback port"))?.port();
    let redirect = RedirectUrl::new(format!("http://127.0.0.1:{port}/callback"))?;
    let oidc = session::oidc_client(settings, settings.region.clone(), client_id.clone(), redirect)?;
    let request = oidc.authorization_request(AuthorizationOptions::default()).await?;

    // Always on stderr: the browser may not open, or be on another machine.
    eprintln!("Open this URL in a browser to sign in to Filevine:\n{}", request.url);
    // The URL may not show it (a pushed request carries only a reference):
    // a browser on another machine needs this port forwarded.
    eprintln!("(the browser comes back to http://127.0.0.1:{port}/callback on this machine)");
    if open_browser {
        match crate::browser::usable() {
            false => eprintln!(
                "(no browser here: open the URL on this machine, or run `filevine-auth login --device` to sign in from another device)"
            ),
            true => {
                if let Err(error) = crate::browser::open(request.url.as_str()) {
                    eprintln!(
                        "(could not open a browser: {error}; open the URL yourself, or run `filevine-auth login --device`)"
                    );
                }
            }
        }
    }
    let waiting = wait_for_callback(listener, port, timeout, request.pending.state().clone());
    let callback = with_spinner("waiting for the browser…", waiting).await?;
    let signed_in = oidc.complete_sign_in(&callback, request.pending).await?;
    finish(settings, &oidc, signed_in, &client_id).await
}

/// `login --device`: the device authorization grant (RFC 8628), for a
/// terminal without a usable browser. The URI and the user code are
/// printed; the user enters the code on any device; the tool polls.
pub async fn login_with_device(settings: &Settings) -> Result<(), CliError> {
    let client_id = client_id(settings)?;
    let oidc =
        session::oidc_client(settings, settings.region.clone(), client_id.clone(), session::placeholder_redirect())?;
    let device = oidc.device_authorization().await?;
    eprintln!(
        "To sign in to Filevine, open {} on any device and enter the code:\n\n    {}\n",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        eprintln!("(or open {complete}, which has the code in it)");
    }
    let minutes = device.expires_in.as_secs().div_ceil(60);
    let waiting = format!("waiting for the code to be entered (it expires in {minutes} min)…");
    let signed_in = with_spinner(&waiting, oidc.complete_device_sign_in(&device)).await?;
    finish(settings, &oidc, signed_in, &client_id).await
}

fn client_id(settings: &Settings) -> Result<filevine_identity_ext::ClientId, CliError> {
    settings.client_id.clone().ok_or_else(|| {
        CliError::Usage(
            "login needs FILEVINE_CLIENT_ID (or the profile's client_id): a native client registered with the redirect URI http://127.0.0.1/callback (or allowed the device code grant, for --device)".into(),
        )
    })
}

/// Stores a sign-in (browser or device alike): the token set under the
/// profile's session key, then the sign-in record with who signed in.
async fn finish(
    settings: &Settings,
    oidc: &filevine_identity_ext::OidcClient,
    signed_in: filevine_identity_ext::oidc::SignedIn,
    client_id: &filevine_identity_ext::ClientId,
) -> Result<(), CliError> {
    let profile = Profile::open(settings).await?;
    profile.forget().await?;
    let access_token = signed_in.token_set.access_token.clone();
    let builder = oidc.token_provider(signed_in.token_set).store(profile.store.clone()).store_key(profile.login_key());
    builder.store_encryption_keys(profile.seal().clone()).build_saved().await?;

    // Name and e-mail: from the ID token, else (conformant ID tokens carry
    // only `sub`) from userinfo; best effort.
    let claims = signed_in.claims;
    let mut profile_claims = claims.profile.clone();
    if profile_claims.email.is_none()
        && let Ok(info) = oidc.userinfo(&access_token, &claims.sub).await
    {
        profile_claims = info.profile;
    }
    let mut state = SignIn::new(Method::Login, &settings.region, Some(client_id));
    state.subject = Some(claims.sub.clone());
    state.name = profile_claims.name.clone();
    state.email = profile_claims.email.clone();
    profile.save_state(&state).await?;
    let who = profile_claims.email.or(profile_claims.name).unwrap_or(claims.sub);
    // The name and e-mail are the user's (or the provider's) choice.
    eprintln!("Signed in as {} ({}, profile {:?})", crate::output::clean(who), settings.region, settings.profile);
    Ok(())
}

/// Serves `http://127.0.0.1:<port>/callback` until the browser arrives
/// there with this sign-in's `state`, or `timeout`; returns the full
/// callback URL. Any other request to `/callback` (a stray tab, a wrong or
/// missing `state`) gets a plain 400 and is logged at debug level: it
/// does not end the sign-in. The page says what the provider answered,
/// its error too.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    port: u16,
    timeout: Duration,
    state: CsrfToken,
) -> Result<String, CliError> {
    let (sender, mut received) = mpsc::channel::<String>(1);
    let expected = std::sync::Arc::new(state);
    let app = axum::Router::new()
        .route(
            "/callback",
            axum::routing::get(|State((sender, expected)): State<Callback>, uri: Uri| async move {
                let query: Vec<(String, String)> =
                    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
                let field = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
                if !field("state").is_some_and(|state| expected.matches(state)) {
                    tracing::debug!("a request to /callback without this sign-in's state; still waiting");
                    return (
                        StatusCode::BAD_REQUEST,
                        Html("<p>Not the sign-in this terminal is waiting for.</p>".to_owned()),
                    );
                }
                let _ = sender.try_send(uri.to_string());
                (StatusCode::OK, Html(callback_page(field("error"), field("error_description"))))
            }),
        )
        .with_state((sender, expected));
    let server = axum::serve(listener, app).into_future();
    let target = tokio::select! {
        result = tokio::time::timeout(timeout, received.recv()) => result,
        _ = server => return Err(CliError::Failed("the loopback server stopped".into())),
    };
    match target {
        Ok(Some(target)) => Ok(format!("http://127.0.0.1:{port}{target}")),
        _ => Err(CliError::Failed(format!(
            "no sign-in within {} s; run `filevine-auth login` again (with --no-browser to open the URL yourself, or --device to sign in from another device)",
            timeout.as_secs()
        ))),
    }
}

/// The state of the loopback server: where the callback goes, and the
/// `state` it must carry.
type Callback = (mpsc::Sender<String>, std::sync::Arc<CsrfToken>);

/// The page the browser shows after the redirect: done, or the
/// provider's error (HTML-escaped: it comes from the query string).
fn callback_page(error: Option<&str>, description: Option<&str>) -> String {
    match error {
        None => "<h1>Filevine sign-in</h1><p>You can close this tab and return to the terminal.</p>".to_owned(),
        Some(error) => format!(
            "<h1>Filevine sign-in failed</h1><p>The identity provider answered <code>{}</code>{}.</p><p>Return to the terminal.</p>",
            escape(error),
            description.map(|d| format!(": {}", escape(d))).unwrap_or_default()
        ),
    }
}

/// HTML-escapes text for an element's content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().take(300) {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `login --with-pat`: a PAT from standard input (never an argument, where
/// the shell history and `ps` would see it), checked with one exchange,
/// then stored.
pub async fn login_with_pat(settings: &Settings) -> Result<(), CliError> {
    // At a terminal: a prompt, and the PAT is not echoed as it is typed.
    let typed = tokio::task::spawn_blocking(|| {
        crate::output::read_secret_line("Personal access token (not shown as you type): ", MAX_PAT_BYTES as usize)
    })
    .await
    .map_err(|e| CliError::Failed(format!("reading the PAT: {e}")))?;
    let text = match typed {
        Some(line) => line.map_err(CliError::io("reading the PAT from the terminal"))?,
        None => {
            let mut text = zeroize::Zeroizing::new(String::new());
            tokio::io::stdin()
                .take(MAX_PAT_BYTES)
                .read_to_string(&mut text)
                .await
                .map_err(CliError::io("reading the PAT from standard input"))?;
            text
        }
    };
    let pat = PersonalAccessToken::new(text.trim())
        .map_err(|_| CliError::Usage("no personal access token on standard input".into()))?;
    let profile = Profile::open(settings).await?;
    // The client id with its secret or key; without either, the PAT alone.
    let credentials = match (&settings.client_id, &settings.client_secret, &settings.client_key) {
        (Some(_), None, None) => Credentials::personal_access_token(pat.clone()),
        _ => settings.with_client(Credentials::personal_access_token(pat.clone()))?,
    };
    let mut builder =
        TokenProvider::builder().region(settings.region.clone()).credentials(credentials).store(profile.store.clone());
    builder = builder.store_encryption_keys(profile.seal().clone());
    // One exchange proves the PAT; nothing is stored when it fails.
    builder.build()?.token().await?;
    profile.forget().await?;
    profile.store.delete(profile.login_key().as_str()).await?;
    profile.save_pat(&pat).await?;
    profile.save_state(&SignIn::new(Method::Pat, &settings.region, settings.client_id.as_ref())).await?;
    eprintln!("Signed in with a personal access token ({}, profile {:?})", settings.region, settings.profile);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callback_page_escapes_the_providers_error() {
        let page = super::callback_page(Some("access_denied"), Some("<script>alert(1)</script> & \"more\""));
        assert!(page.contains("<code>access_denied</code>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;"), "{page}");
        assert!(!page.contains("<script>") && !page.contains("close this tab"), "{page}");
        assert!(super::callback_page(None, None).contains("close this tab"));
    }
}
