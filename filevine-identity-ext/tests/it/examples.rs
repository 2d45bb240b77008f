//! The examples' command-line contract, run as real processes. `cargo test`
//! builds the examples next to the test binaries.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use filevine_identity_ext::test_util::TestServer;

use crate::support::oidc;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

async fn run(name: &str, env: Vec<(&'static str, String)>) -> Output {
    let path = example(name);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&path);
        command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pat_token_prints_one_authorization_line() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_cli");
    server.add_client("cli-client", "cli-secret");
    let output = run(
        "pat_token",
        vec![
            ("FILEVINE_PAT", "fvpat_cli".into()),
            ("FILEVINE_CLIENT_ID", "cli-client".into()),
            ("FILEVINE_CLIENT_SECRET", "cli-secret".into()),
            ("FILEVINE_SCOPES", "fv.api.gateway.access".into()),
            ("FILEVINE_AUTHORITY", server.url().to_owned()),
        ],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_prefix("Authorization: Bearer ").and_then(|t| t.strip_suffix('\n')).unwrap();
    assert!(server.is_valid_access_token(token), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
    assert_eq!(server.requests()[0].field("scope"), Some("fv.api.gateway.access"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pat_token_errors_go_to_stderr_with_exit_1() {
    let server = TestServer::start().await.unwrap();
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (vec![], "FILEVINE_PAT is not set"),
        (vec![("FILEVINE_PAT", "x".into()), ("FILEVINE_REGION", "mars".into())], "invalid FILEVINE_REGION \"mars\""),
        (
            vec![("FILEVINE_PAT", "fvpat_unknown".into()), ("FILEVINE_AUTHORITY", server.url().to_owned())],
            "rejected the credentials",
        ),
    ];
    for (env, expected) in cases {
        let output = run("pat_token", env).await;
        assert_eq!(output.status.code(), Some(1));
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{expected}: {stderr}");
        assert!(!stderr.contains("fvpat_unknown"), "{stderr}");
    }
}

#[tokio::test]
async fn quickstart_runs_against_the_in_process_test_server_and_prints_no_token() {
    let output = run("quickstart", vec![]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("started the test server"), "{stdout}");
    assert!(stdout.contains("the same token from the cache"), "{stdout}");
    assert!(stdout.contains("the refreshed token, token requests: 2"), "{stdout}");
    assert!(stdout.contains("token requests: 3"), "{stdout}");
    assert!(!stdout.contains("at_"), "a token value was printed: {stdout}");
}

/// examples/partner_app.rs against the real OpenID provider, as a person
/// would use it: /login, the provider's login and consent pages, the
/// callback, /me, the logout form, the provider's logout confirmation, and
/// back; and as an attacker would: a planted session id, a replayed
/// callback, a sign-in pushed out by a flood of /login calls, GET and
/// forged POSTs to /logout, a forged end-session state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_signs_in_and_out_against_the_real_provider() {
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let provider = oidc::Provider::start_for_app(&app);
    let mut child = start_partner_app(port, &provider, &app, &[("PARTNER_APP_MAX_SESSIONS", "3")]);

    // A sign-in started early, then pushed out by three more /login calls:
    // pending sign-ins are bounded (3 here), the oldest makes room.
    let mut early = oidc::Browser::for_app(&app);
    let early_login = early.request(early.http().get(format!("{app}/login"))).await;
    let early_url = url::Url::parse(early_login.headers()["location"].to_str().unwrap()).unwrap();
    for _ in 0..3 {
        let mut flood = oidc::Browser::for_app(&app);
        assert_eq!(flood.request(flood.http().get(format!("{app}/login"))).await.status(), 303);
    }
    let early_callback = early.sign_in(&early_url, "carol").await;
    let refused = early.request(early.http().get(&early_callback)).await;
    assert_eq!(refused.status(), 400, "the pushed-out sign-in");
    assert!(refused.text().await.unwrap().contains("no sign-in in progress"));

    // A sign-in the user declines at the consent page: 403 with the
    // provider's words; never a 401, which would need a challenge.
    let mut declined = oidc::Browser::for_app(&app);
    let login = declined.request(declined.http().get(format!("{app}/login"))).await;
    let to_provider = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let callback = declined.sign_in_with(&to_provider, "carol", false).await;
    let answer = declined.request(declined.http().get(&callback)).await;
    assert_eq!(answer.status(), 403);
    assert!(answer.headers().get("www-authenticate").is_none());
    assert!(answer.text().await.unwrap().contains("access_denied"));

    let mut browser = oidc::Browser::for_app(&app);
    // A session id planted before sign-in (session fixation).
    browser.set_cookie("partner_session", "planted-by-an-attacker");
    let login = browser.request(browser.http().get(format!("{app}/login"))).await;
    assert_eq!(login.status(), 303);
    let cookies = set_cookies(&login);
    // The only cookie set is the sign-in's; the planted session id, unknown
    // to the app, is deleted.
    let sign_in = cookies.iter().find(|c| c.starts_with("partner_signin=")).expect("a sign-in cookie");
    let flags = ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=900"];
    assert!(flags.iter().all(|f| sign_in.contains(f)) && !sign_in.contains("Secure"), "over http: {sign_in}");
    let sign_in_id = sign_in["partner_signin=".len()..].split(';').next().unwrap().to_owned();
    let others: Vec<_> = cookies.iter().filter(|c| !c.starts_with("partner_signin=")).collect();
    assert!(others.iter().all(|c| c.starts_with("partner_session=;") && c.contains("Max-Age=0")), "{cookies:?}");
    let to_provider = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let callback = browser.sign_in(&to_provider, "carol").await;
    let done = browser.request(browser.http().get(&callback)).await;
    assert_eq!(done.headers()["location"], "/me");
    let cookies = set_cookies(&done);
    let session = cookies.iter().find(|c| c.starts_with("partner_session=")).expect("a session cookie");
    assert!(!session.contains("planted-by-an-attacker"), "a new session id at sign-in: {session}");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(cookies.iter().any(|c| c.starts_with("partner_signin=;")), "the sign-in cookie is cleared: {cookies:?}");
    // The planted id is not signed in; the callback cannot be replayed.
    let mut attacker = oidc::Browser::for_app(&app);
    attacker.set_cookie("partner_session", "planted-by-an-attacker");
    let planted = attacker.request(attacker.http().get(format!("{app}/me"))).await;
    assert_eq!(planted.headers()["location"], "/login");
    let mut replay = oidc::Browser::for_app(&app);
    replay.set_cookie("partner_signin", &sign_in_id);
    assert_eq!(replay.request(replay.http().get(&callback)).await.status(), 400, "a pending sign-in is used once");

    let me = browser.request(browser.http().get(format!("{app}/me"))).await.text().await.unwrap();
    assert!(me.contains("&quot;sub&quot;: &quot;carol&quot;") || me.contains("\"sub\": \"carol\""), "{me}");
    assert!(me.contains("carol@example.com") && me.contains("acme-law"), "claims and userinfo: {me}");
    assert!(!me.contains("eyJ") && !me.contains("access_token"), "no tokens on the page: {me}");
    assert!(me.contains("<form method=\"post\" action=\"/logout\">"), "{me}");
    let csrf = csrf_of(&me);
    assert_eq!(csrf.len(), 43, "32 random bytes, base64url");

    // GET /logout, a POST without the token and one with another token sign nobody out.
    let get = browser.request(browser.http().get(format!("{app}/logout"))).await;
    assert_eq!(get.status(), 405);
    for form in [vec![], vec![("csrf", "A".repeat(43))]] {
        let forged = browser.request(browser.http().post(format!("{app}/logout")).form(&form)).await;
        assert_eq!(forged.status(), 403, "{form:?}");
    }
    let still = browser.request(browser.http().get(format!("{app}/me"))).await;
    assert_eq!(still.status(), 200, "still signed in");
    assert_eq!(provider.stats().await["revocation"].as_u64().unwrap(), 0, "nothing revoked");

    // Logout: the form redirects (303) to the provider's end-session
    // endpoint, the user confirms, the provider sends them back with the state.
    let logout = browser.request(browser.http().post(format!("{app}/logout")).form(&[("csrf", &csrf)])).await;
    assert_eq!(logout.status(), 303);
    assert!(set_cookies(&logout).iter().any(|c| c.starts_with("partner_signout=") && c.contains("HttpOnly")));
    let end_session = url::Url::parse(logout.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(end_session.path(), "/connect/endsession");
    let page = browser.request(browser.http().get(end_session.clone())).await.text().await.unwrap();
    let xsrf = page.split("name=\"xsrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let confirm = end_session.join("/connect/endsession/confirm").unwrap();
    let confirmed =
        browser.request(browser.http().post(confirm).form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])).await;
    let back = confirmed.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&format!("{app}/logout/callback?state=")), "{back}");
    let forged = browser.request(browser.http().get(format!("{app}/logout/callback?state=forged"))).await;
    assert_eq!(forged.status(), 400, "an end-session state this browser did not send");
    let mut stranger = oidc::Browser::for_app(&app);
    assert_eq!(stranger.request(stranger.http().get(&back)).await.status(), 400, "another browser's state");
    let signed_out = browser.request(browser.http().get(&back)).await.text().await.unwrap();
    assert!(signed_out.contains("Signed out"), "{signed_out}");
    let me = browser.request(browser.http().get(format!("{app}/me"))).await;
    assert_eq!(me.headers()["location"], "/login", "the session is gone");

    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("signed in sub=carol"), "{logs}");
    assert!(!logs.contains("eyJ") && !logs.contains(oidc::CLIENT_SECRET), "no secret in the logs: {logs}");
}

/// Served over https (an https redirect URI), every cookie is `Secure` with
/// the `__Host-` prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_cookies_are_secure_host_cookies_over_https() {
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    // The provider knows the https redirect URI (a pushed request is
    // checked before the browser is sent).
    let provider = oidc::Provider::start_for_app(&format!("https://localhost:{port}"));
    let redirect = format!("https://localhost:{port}/signin-oidc");
    let mut child = start_partner_app(port, &provider, &app, &[("FILEVINE_REDIRECT_URI", redirect.as_str())]);
    let mut browser = oidc::Browser::for_app(&app);
    let login = browser.request(browser.http().get(format!("{app}/login"))).await;
    assert_eq!(login.status(), 303);
    let cookies = set_cookies(&login);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    for flag in ["__Host-partner_signin=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookies[0].contains(flag), "{flag}: {cookies:?}");
    }
    assert!(!cookies[0].contains("Domain"), "a __Host- cookie has no Domain: {cookies:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The keys of the token sets in `redis` (records that start `FVTS`): the
/// entries of the back-channel logout index beside them are not.
fn token_sets(redis: &crate::support::redis::Redis) -> Vec<String> {
    let keys = redis.keys("filevine:tokens:*");
    keys.into_iter().filter(|key| redis.hget(key, "d").is_some_and(|value| value.starts_with(b"FVTS"))).collect()
}

/// Two partner app addresses on free ports: `(port, base URL)` of A and B.
fn two_apps() -> ((u16, String), (u16, String)) {
    let (port_a, port_b) = (free_port(), free_port());
    ((port_a, format!("http://127.0.0.1:{port_a}")), (port_b, format!("http://127.0.0.1:{port_b}")))
}

/// What two instances share: the token store at `url`, sealed with one key.
fn shared_store(url: &str) -> [(&'static str, &str); 2] {
    [("FILEVINE_TOKEN_STORE", url), ("FILEVINE_STORE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")]
}

/// Instances A and B with `env`, both known to `provider` by A's address.
fn start_pair(
    provider: &oidc::Provider,
    ((port_a, app_a), (port_b, _)): &((u16, String), (u16, String)),
    env: &[(&str, &str)],
) -> (std::process::Child, std::process::Child) {
    (start_partner_app(*port_a, provider, app_a, env), start_partner_app(*port_b, provider, app_a, env))
}

/// Carol signs in at `app` in `browser`: the app's /login, the provider's
/// pages, the callback, which sends her to /me.
async fn sign_in_carol(browser: &mut oidc::Browser, app: &str) {
    let login = browser.request(browser.http().get(format!("{app}/login"))).await;
    let to_provider = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let callback = browser.sign_in(&to_provider, "carol").await;
    assert_eq!(browser.request(browser.http().get(&callback)).await.headers()["location"], "/me");
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// The logout form's CSRF token on a /me page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"").nth(1).expect("a csrf input").split('"').next().unwrap().to_owned()
}

/// The partner app as a client that has no secret: `private_key_jwt` with
/// `FILEVINE_CLIENT_KEY` (a JWK file) and DPoP-bound tokens
/// (`FILEVINE_DPOP`), which the provider requires of this client. Sign-in,
/// `/me` (userinfo with a proof), and a refresh once the 4-second token is
/// past its margin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_signs_in_with_a_client_key_and_dpop() {
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let provider = oidc::Provider::start_for_app_with_token_ttl(&app, 4);
    let keys = provider.harness("client-keys", None).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("partner-app-jwt.jwk");
    std::fs::write(&key_file, keys["ec_jwk"].to_string()).unwrap();
    let key_path = key_file.display().to_string();
    let env = [
        ("FILEVINE_CLIENT_ID", "partner-app-jwt"),
        // Empty is unset: this client has no secret.
        ("FILEVINE_CLIENT_SECRET", ""),
        ("FILEVINE_CLIENT_KEY", key_path.as_str()),
        ("FILEVINE_CLIENT_KEY_ID", "partner-app-jwt-1"),
        ("FILEVINE_DPOP", "true"),
    ];
    let mut child = start_partner_app(port, &provider, &app, &env);

    let mut browser = oidc::Browser::for_app(&app);
    let login = browser.request(browser.http().get(format!("{app}/login"))).await;
    let to_provider = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let callback = browser.sign_in(&to_provider, "carol").await;
    let done = browser.request(browser.http().get(&callback)).await;
    let location = done.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let status = done.status();
    assert_eq!(location.as_deref(), Some("/me"), "{status} {}", done.text().await.unwrap());
    assert!(carol_signed_in(&me(&mut browser, &app).await), "signed in, userinfo with a proof");
    let before = provider.stats().await["token"].as_u64().unwrap();
    // Past the token's hard margin (half of 4 s): /me refreshes first, with
    // an assertion and a proof from the same key.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(carol_signed_in(&me(&mut browser, &app).await), "after a refresh");
    assert_eq!(provider.stats().await["token"].as_u64().unwrap(), before + 1, "one refresh");

    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("signed in sub=carol"), "{logs}");
    let private = keys["ec_jwk"]["d"].as_str().unwrap();
    assert!(!logs.contains("eyJ") && !logs.contains(private), "no token or key in the logs: {logs}");
}

/// Starts examples/partner_app.rs on `port` with `env`; returns once it
/// listens.
fn start_partner_app(port: u16, provider: &oidc::Provider, app: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut child = Command::new(example("partner_app"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PARTNER_APP_ADDR", format!("127.0.0.1:{port}"))
        .env("FILEVINE_AUTHORITY", &provider.issuer)
        .env("FILEVINE_CLIENT_ID", oidc::CLIENT_ID)
        .env("FILEVINE_CLIENT_SECRET", oidc::CLIENT_SECRET)
        .env("FILEVINE_REDIRECT_URI", format!("{app}/signin-oidc"))
        .env("FILEVINE_POST_LOGOUT_REDIRECT_URI", format!("{app}/logout/callback"))
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    if !line.contains("listening") {
        // It stopped before listening: what it said on the way out is the
        // only clue to why.
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        panic!(
            "the partner app did not start ({}): stdout {line:?}, stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    child
}

/// The partner app's `/me` page as `browser` sees it on `app`.
async fn me(browser: &mut oidc::Browser, app: &str) -> String {
    let response = browser.request(browser.http().get(format!("{app}/me"))).await;
    response.text().await.unwrap()
}

/// Whether a `/me` page shows carol signed in (her e-mail and tenant).
fn carol_signed_in(page: &str) -> bool {
    page.contains("carol@example.com") && page.contains("acme-law")
}

/// Two replicas, A and B, sharing one store: restarts A (the user stays
/// signed in), then lets the access token pass its hard margin (half of the
/// provider's 4 s) and asks both replicas at once: one refresh between
/// them. Returns the new A.
async fn restart_a_then_one_refresh_for_both(
    mut a: std::process::Child,
    port_a: u16,
    provider: &oidc::Provider,
    (app_a, app_b): (&str, &str),
    env: &[(&str, &str)],
    browser: &mut oidc::Browser,
) -> std::process::Child {
    a.kill().unwrap();
    a.wait().unwrap();
    let a = start_partner_app(port_a, provider, app_a, env);
    assert!(carol_signed_in(&me(browser, app_a).await), "A after a restart");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = provider.stats().await["token"].as_u64().unwrap();
    let mut other = oidc::Browser::for_app(app_a);
    other.copy_cookies_from(browser);
    let (on_a, on_b) = tokio::join!(me(browser, app_a), me(&mut other, app_b));
    assert!(carol_signed_in(&on_a) && carol_signed_in(&on_b), "{on_a}\n{on_b}");
    assert_eq!(provider.stats().await["token"].as_u64().unwrap(), before + 1, "one refresh for both instances");
    a
}

/// A port for a partner app to listen on, free when picked. Below Linux's
/// ephemeral range (32768–60999 by default), where the kernel picks the
/// local port of every outgoing connection and of every `bind(0)`: a port
/// from that range can be taken by one of the many connections the other
/// tests make before the app binds it (seen in CI with 8 test threads).
fn free_port() -> u16 {
    use std::hash::{BuildHasher as _, Hasher as _};
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let port = 20_000 + u16::try_from(hasher.finish() % 12_000).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Two instances of the partner app sharing one Redis (sessions and token
/// sets), against the real provider with 4-second access tokens: a session
/// from one works on the other, a restart keeps the user signed in, both
/// needing a refresh at once make one refresh request, and logout revokes
/// the refresh token and removes what was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_replicas_share_sessions_and_tokens_through_redis() {
    let redis = crate::support::redis::Redis::start();
    let apps = two_apps();
    let ((port_a, app_a), (_, app_b)) = apps.clone();
    let provider = oidc::Provider::start_for_app_with_token_ttl(&app_a, 4);
    let env = shared_store(&redis.url);
    let (a, b) = start_pair(&provider, &apps, &env);

    let mut browser = oidc::Browser::for_app(&app_a);
    let login = browser.request(browser.http().get(format!("{app_a}/login"))).await;
    let to_provider = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    // /login made a pending sign-in that expires, and no session.
    let ttl = |key: &str| -> i64 {
        let mut connection = redis::Client::open(redis.url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("PTTL").arg(key).query(&mut connection).unwrap()
    };
    let pending = redis.keys("partner-app:signin:*");
    assert_eq!(pending.len(), 1, "{:?}", redis.keys("*"));
    assert!((1..=900_000).contains(&ttl(&pending[0])), "expires within 15 minutes");
    assert!(redis.keys("partner-app:session:*").is_empty(), "no session before sign-in");
    let callback = browser.sign_in(&to_provider, "carol").await;
    let done = browser.request(browser.http().get(&callback)).await;
    assert_eq!(done.headers()["location"], "/me");
    assert!(redis.keys("partner-app:signin:*").is_empty(), "the pending sign-in is used once");
    let sessions = redis.keys("partner-app:session:*");
    assert_eq!(sessions.len(), 1);
    assert!((1..=8 * 3600 * 1000).contains(&ttl(&sessions[0])), "a session expires after 8 idle hours");
    assert!(carol_signed_in(&me(&mut browser, &app_a).await), "instance A");
    assert!(carol_signed_in(&me(&mut browser, &app_b).await), "instance B, with A's session cookie");
    // Nothing token-shaped in Redis: sealed token sets, sessions without tokens.
    for key in redis.keys("*") {
        let mut connection = redis::Client::open(redis.url.as_str()).unwrap().get_connection().unwrap();
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query(&mut connection).unwrap();
        assert!(!String::from_utf8_lossy(&dump).contains("eyJ"), "{key} holds an ID token in the clear");
    }

    let a = restart_a_then_one_refresh_for_both(a, port_a, &provider, (&app_a, &app_b), &env, &mut browser).await;

    // Logout on B: the refresh and access tokens are revoked, the stored
    // token set and the session are gone, A sends the user to /login.
    let revocations = provider.stats().await["revocation"].as_u64().unwrap();
    let csrf = csrf_of(&me(&mut browser, &app_b).await);
    let logout = browser.request(browser.http().post(format!("{app_b}/logout")).form(&[("csrf", &csrf)])).await;
    assert_eq!(logout.status(), 303);
    assert_eq!(url::Url::parse(logout.headers()["location"].to_str().unwrap()).unwrap().path(), "/connect/endsession");
    assert_eq!(provider.stats().await["revocation"].as_u64().unwrap(), revocations + 2, "refresh and access token");
    // The stored token set is replaced by the mark of its deletion (no
    // token), which expires on its own.
    let entries = token_sets(&redis);
    assert_eq!(entries.len(), 1, "{:?}", redis.keys("*"));
    assert_eq!(redis.hget(&entries[0], "d").unwrap(), b"FVTS\x02\x02");
    assert!(redis.server.cmd::<i64>(redis::cmd("PTTL").arg(&entries[0])) > 0, "it expires");
    let response = browser.request(browser.http().get(format!("{app_a}/me"))).await;
    assert_eq!(response.headers()["location"], "/login", "signed out on A too");

    let mut refreshes = 0;
    for mut child in [a, b] {
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let logs = String::from_utf8_lossy(&output.stderr);
        assert!(!logs.contains("eyJ") && !logs.contains(oidc::CLIENT_SECRET), "no secret in the logs: {logs}");
        // The app logs sign-ins and refreshes at INFO: the one refresh too.
        refreshes += logs
            .lines()
            .filter(|line| line.contains("INFO") && line.contains("received an access token"))
            .inspect(|line| assert!(line.contains("grant_type=\"refresh_token\""), "{line}"))
            .count();
    }
    assert_eq!(refreshes, 1);
}

/// The app's Redis sessions are named by an HMAC of the id and sealed: a
/// key read from Redis, sent as the cookie, is no session, and nothing in
/// Redis names the user or holds the CSRF token. With a short idle time, N
/// sign-ins leave N expiring token sets, and once they expired the
/// instance's provider map is empty and each refresh token revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_redis_sessions_are_keyed_sealed_and_end_with_their_tokens() {
    use crate::support::redis::eventually;
    let redis = crate::support::redis::Redis::start();
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let provider = oidc::Provider::start_for_app(&app);
    let env = [
        ("FILEVINE_TOKEN_STORE", redis.url.as_str()),
        ("FILEVINE_STORE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ("PARTNER_APP_SESSION_IDLE_SECS", "2"),
    ];
    let child = start_partner_app(port, &provider, &app, &env);
    let mut browsers = Vec::new();
    for _ in 0..3 {
        let mut browser = oidc::Browser::for_app(&app);
        sign_in_carol(&mut browser, &app).await;
        browsers.push(browser);
    }
    let revocations = provider.stats().await["revocation"].as_u64().unwrap();
    let sessions = redis.keys("partner-app:session:*");
    assert_eq!(sessions.len(), 3, "{:?}", redis.keys("*"));
    let tokens = token_sets(&redis);
    assert_eq!(tokens.len(), 3, "{:?}", redis.keys("*"));
    for key in &tokens {
        let ttl: i64 = redis.server.cmd(redis::cmd("PTTL").arg(key));
        assert!((1..=2000).contains(&ttl), "{key} expires with the session idle time: {ttl}");
    }
    for key in &sessions {
        let name = key.trim_start_matches("partner-app:session:");
        assert!(name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()), "an HMAC: {key}");
        let value = redis.server.cmd::<Vec<u8>>(redis::cmd("GET").arg(key));
        let shown = String::from_utf8_lossy(&value);
        for plain in ["carol", "token_key", "csrf", "user"] {
            assert!(!shown.contains(plain), "{plain} in a session record: {shown}");
        }
        // What Redis shows, sent as the session cookie: no session.
        let replay = crate::support::http_no_redirects();
        let response = replay.get(format!("{app}/me")).header("cookie", format!("partner_session={name}")).send().await;
        assert_eq!(response.unwrap().headers()["location"], "/login", "a Redis key is not a cookie");
    }

    // The token sets expire with the idle time; the sweep then drops every
    // provider and revokes its refresh token.
    tokio::task::block_in_place(|| {
        eventually("the token sets to expire", Duration::from_secs(30), || redis.keys("filevine:tokens:*").is_empty())
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while provider.stats().await["revocation"].as_u64().unwrap() < revocations + 3 {
        assert!(std::time::Instant::now() < deadline, "the sweep did not revoke the three refresh tokens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(provider.stats().await["revocation"].as_u64().unwrap(), revocations + 3);
    let mut child = child;
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("remaining=0"), "the provider map is empty: {logs}");
    drop(browsers);
}

/// Two instances of the partner app sharing one PostgreSQL database (one
/// pool each for token sets and sessions), chosen by `FILEVINE_TOKEN_STORE`
/// alone: signed in on one, `/me` works on the other; a restart keeps the
/// user signed in; both needing a refresh at once make one refresh; the
/// session rows are named by an HMAC and sealed; logout removes it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_replicas_share_sessions_and_tokens_through_postgres() {
    use crate::support::postgres::Postgres;
    let postgres = Postgres::shared();
    let url = postgres.database("partner_app");
    let apps = two_apps();
    let ((port_a, app_a), (_, app_b)) = apps.clone();
    let provider = oidc::Provider::start_for_app_with_token_ttl(&app_a, 4);
    let env = shared_store(&url);
    let (a, b) = start_pair(&provider, &apps, &env);
    let sql = |query: &str| postgres.sql_in("partner_app", query);

    let mut browser = oidc::Browser::for_app(&app_a);
    let login = browser.request(browser.http().get(format!("{app_a}/login"))).await;
    let to_provider = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(sql("SELECT count(*) FROM tower_sessions.partner_app_signins"), "1", "a pending sign-in, in PostgreSQL");
    let callback = browser.sign_in(&to_provider, "carol").await;
    let done = browser.request(browser.http().get(&callback)).await;
    assert_eq!(done.headers()["location"], "/me");
    assert_eq!(sql("SELECT count(*) FROM tower_sessions.partner_app_signins"), "0", "used once");
    assert!(carol_signed_in(&me(&mut browser, &app_a).await), "instance A");
    assert!(carol_signed_in(&me(&mut browser, &app_b).await), "instance B, with A's session cookie");
    // One token set (and the user's entry in the back-channel logout index).
    assert_eq!(sql("SELECT count(*) FROM filevine_token_sets WHERE encode(value, 'hex') LIKE '46565453%'"), "1");
    // Nothing readable in the tables; a row's id is no cookie.
    let rows = sql("SELECT id || ' ' || encode(data, 'escape') FROM tower_sessions.partner_app_sessions");
    for plain in ["carol", "csrf", "token_key", "eyJ"] {
        assert!(!rows.contains(plain), "{plain} in the session table: {rows}");
    }
    let tokens = sql("SELECT encode(value, 'escape') FROM filevine_token_sets");
    assert!(!tokens.contains("eyJ"), "an ID token in the clear: {tokens}");
    let row_id = sql("SELECT id FROM tower_sessions.partner_app_sessions");
    let replay = crate::support::http_no_redirects();
    let response = replay.get(format!("{app_a}/me")).header("cookie", format!("partner_session={row_id}")).send();
    assert_eq!(response.await.unwrap().headers()["location"], "/login", "a row id is not a cookie");

    let a = restart_a_then_one_refresh_for_both(a, port_a, &provider, (&app_a, &app_b), &env, &mut browser).await;

    let csrf = csrf_of(&me(&mut browser, &app_b).await);
    let logout = browser.request(browser.http().post(format!("{app_b}/logout")).form(&[("csrf", &csrf)])).await;
    assert_eq!(logout.status(), 303);
    assert_eq!(sql("SELECT count(*) FROM tower_sessions.partner_app_sessions"), "0", "the session is gone");
    assert_eq!(
        sql(
            "SELECT count(*) FROM filevine_token_sets WHERE encode(value, 'hex') LIKE '46565453%' AND encode(value, 'hex') <> '465654530202'"
        ),
        "0",
        "only the deletion mark is left"
    );
    let response = browser.request(browser.http().get(format!("{app_a}/me"))).await;
    assert_eq!(response.headers()["location"], "/login", "signed out on A too");
    for mut child in [a, b] {
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let logs = String::from_utf8_lossy(&output.stderr);
        assert!(!logs.contains("eyJ") && !logs.contains(oidc::CLIENT_SECRET), "no secret in the logs: {logs}");
        assert!(!logs.contains(crate::support::postgres::PASSWORD), "no database password in the logs: {logs}");
    }
}

/// The same app on a primary behind Sentinels and on a cluster, chosen by
/// `FILEVINE_TOKEN_STORE` alone: signed in on one instance, the session and
/// the token set work on the other; logout removes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_replicas_share_sessions_on_sentinel_and_on_a_cluster() {
    use crate::support::redis::{Cluster, SentinelGroup};
    for url in [SentinelGroup::shared().url(), Cluster::shared().url()] {
        let apps = two_apps();
        let (app_a, app_b) = (apps.0.1.clone(), apps.1.1.clone());
        let provider = oidc::Provider::start_for_app(&app_a);
        let (a, b) = start_pair(&provider, &apps, &shared_store(&url));
        let mut browser = oidc::Browser::for_app(&app_a);
        sign_in_carol(&mut browser, &app_a).await;
        let page = me(&mut browser, &app_b).await;
        assert!(page.contains("carol@example.com"), "{url}: instance B, with A's session cookie: {page}");
        let csrf = csrf_of(&page);
        let logout = browser.request(browser.http().post(format!("{app_b}/logout")).form(&[("csrf", &csrf)])).await;
        assert_eq!(logout.status(), 303, "{url}");
        let response = browser.request(browser.http().get(format!("{app_a}/me"))).await;
        assert_eq!(response.headers()["location"], "/login", "{url}: signed out on A too");
        for mut child in [a, b] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

/// Two instances of the partner app started at the same moment on one
/// fresh PostgreSQL database both start: each makes the token table and
/// the session tables, and neither fails on the other's `CREATE TABLE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_instances_started_together_on_a_fresh_database_both_start() {
    use crate::support::postgres::Postgres;
    let postgres = Postgres::shared();
    let url = postgres.database("partner_app_together");
    let ((port_a, app_a), (port_b, _)) = two_apps();
    let provider = oidc::Provider::start_for_app(&app_a);
    let env = shared_store(&url);
    let children = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let a = scope.spawn(|| start_partner_app(port_a, &provider, &app_a, &env));
            let b = scope.spawn(|| start_partner_app(port_b, &provider, &app_a, &env));
            [a.join().unwrap(), b.join().unwrap()]
        })
    });
    let tables = postgres.sql_in(
        "partner_app_together",
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('filevine_token_sets', 'partner_app_sessions', 'partner_app_signins')",
    );
    assert_eq!(tables, "3");
    for mut child in children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// The README's "Try it in five minutes", as a newcomer runs it: the test
/// server in the foreground (its standard input closed, as when started
/// with `&`), the Quickstart program (`first_token`) against it, then
/// SIGTERM ends the server. `--help` prints help and starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_try_it_path_of_the_readme_runs_as_written() {
    let help = tokio::task::spawn_blocking(|| Command::new(example("test_server")).arg("--help").output().unwrap())
        .await
        .unwrap();
    assert!(
        help.status.success()
            && String::from_utf8_lossy(&help.stdout).starts_with("Usage: test_server [--foreground] [PAT ...]")
    );
    assert!(!String::from_utf8_lossy(&help.stdout).contains("{\"authority\""), "no server was started");

    let mut server = Command::new(example("test_server"))
        .args(["--foreground", "fvpat_try_me"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let urls: serde_json::Value = serde_json::from_str(&line).unwrap();
    // Its stdin closed long ago: a foreground server is still there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.try_wait().unwrap().is_none(), "the foreground server exited when stdin closed");
    let env = vec![
        ("FILEVINE_AUTHORITY", urls["authority"].as_str().unwrap().to_owned()),
        ("FILEVINE_GATEWAY", urls["gateway"].as_str().unwrap().to_owned()),
        ("FILEVINE_PAT", "fvpat_try_me".to_owned()),
    ];
    let first = run("first_token", env.clone()).await;
    let shown = String::from_utf8_lossy(&first.stdout).into_owned() + &String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{shown}");
    assert!(shown.contains("got an access token for") && shown.contains("user 1001 in 2 org(s)"), "{shown}");
    // A mistake prints the message, not Debug.
    let wrong = run("first_token", vec![env[0].clone(), env[1].clone()]).await;
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && said.starts_with("error: ") && said.contains("FILEVINE_PAT"), "{said}");
    assert!(!said.contains("MissingVar {"), "{said}");
    std::process::Command::new("kill").arg(server.id().to_string()).status().unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap()).await.unwrap();
    assert!(status.success(), "SIGTERM ends it cleanly: {status}");
}

/// Back-channel logout against the real provider: two instances sharing
/// Redis, the user signed in on A and seen on B; the user signs out at the
/// provider itself (not through the app), which posts a logout token to A;
/// then neither instance knows the user, and the tokens are revoked. A
/// replayed logout token (at the other instance) and forged ones (another
/// key, another audience, a nonce) are answered 400 with no body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_app_ends_a_session_filevine_ended_on_every_instance() {
    let redis = crate::support::redis::Redis::start();
    let apps = two_apps();
    let (app_a, app_b) = (apps.0.1.clone(), apps.1.1.clone());
    let provider = oidc::Provider::start_for_app_with_backchannel_logout(&app_a);
    let (a, b) = start_pair(&provider, &apps, &shared_store(&redis.url));

    let mut browser = oidc::Browser::for_app(&app_a);
    sign_in_carol(&mut browser, &app_a).await;
    assert!(carol_signed_in(&me(&mut browser, &app_a).await), "instance A");
    assert!(carol_signed_in(&me(&mut browser, &app_b).await), "instance B");
    let revocations = provider.stats().await["revocation"].as_u64().unwrap();

    // The user signs out at the provider: its end-session page, "yes".
    let end_session = url::Url::parse(&format!("{}/connect/endsession", provider.issuer)).unwrap();
    let page = browser.request(browser.http().get(end_session.clone())).await.text().await.unwrap();
    let xsrf = page.split("name=\"xsrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let confirm = end_session.join("/connect/endsession/confirm").unwrap();
    browser.request(browser.http().post(confirm).form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])).await;
    // The provider posted the logout token to A before it answered.
    let stats = provider.stats().await;
    assert_eq!(
        (stats["backchannel"].as_u64(), stats["backchannel_errors"].as_array().map(Vec::len)),
        (Some(1), Some(0)),
        "{stats}"
    );
    assert_eq!(provider.stats().await["revocation"].as_u64().unwrap(), revocations + 2, "refresh and access token");
    for app in [&app_b, &app_a] {
        let response = browser.request(browser.http().get(format!("{app}/me"))).await;
        assert_eq!(response.headers()["location"], "/login", "{app} sends the user to sign in");
    }

    // Logout tokens made by hand with the provider's harness.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = |jti: &str| {
        serde_json::json!({
            "iss": provider.issuer, "aud": oidc::CLIENT_ID, "iat": now, "exp": now + 120, "jti": jti,
            "sub": "carol", "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        })
    };
    let post = |app: &str, token: &str| {
        let request = reqwest::Client::new().post(format!("{app}/backchannel-logout")).form(&[("logout_token", token)]);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            assert_eq!(response.headers()["cache-control"], "no-store");
            assert!(response.bytes().await.unwrap().is_empty(), "no body");
            status
        }
    };
    let genuine = provider.sign(claims("replayed-1"), "RS512", "provider").await;
    assert_eq!(post(&app_a, &genuine).await, 200);
    assert_eq!(post(&app_b, &genuine).await, 400, "a replay, at the other instance");
    let stranger = provider.sign(claims("forged-1"), "RS512", "stranger").await;
    let mut other_audience = claims("forged-2");
    other_audience["aud"] = "another-app".into();
    let mut with_nonce = claims("forged-3");
    with_nonce["nonce"] = "n-1".into();
    for forged in [
        stranger,
        provider.sign(other_audience, "RS512", "provider").await,
        provider.sign(with_nonce, "RS512", "provider").await,
    ] {
        assert_eq!(post(&app_a, &forged).await, 400);
    }
    assert_eq!(post(&app_a, "not-a-token").await, 400);

    for mut child in [a, b] {
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let logs = String::from_utf8_lossy(&output.stderr);
        assert!(!logs.contains("eyJ") && !logs.contains(oidc::CLIENT_SECRET), "no secret in the logs: {logs}");
    }
}
