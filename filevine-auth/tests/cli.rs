//! `filevine-auth` run as a process, against the SDK's test server (PAT,
//! gateway) and the real OpenID provider the sign-in tests use (`login`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use filevine_identity_ext::test_util::TestServer;

#[allow(dead_code, clippy::all)]
#[path = "../../filevine-identity-ext/tests/it/support/oidc.rs"]
mod oidc;

const PAT: &str = "fvpat_cli_test_0123456789";

/// The binary with a clean environment: only what the test gives it.
fn cli(config: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_filevine-auth"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FILEVINE_CONFIG_DIR", config)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// The binary inside a D-Bus session of its own with an unlocked
/// Secret Service (the Debian `gnome-keyring` daemon), whose keyrings live
/// under `home`: what a desktop user has. Each run is a new session; the
/// keyring persists in `home` between runs, as a login keyring does.
fn cli_with_keyring(config: &Path, home: &Path, env: &[(&str, &str)]) -> Command {
    in_keyring_session(env!("CARGO_BIN_EXE_filevine-auth"), config, home, env)
}

/// `program` inside such a session (the binary, or `secret-tool`).
fn in_keyring_session(program: &str, config: &Path, home: &Path, env: &[(&str, &str)]) -> Command {
    for program in ["dbus-run-session", "gnome-keyring-daemon", "gdbus"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain(["/usr/bin".into()])
            .any(|dir| dir.join(program).is_file());
        assert!(found, "{program} is not installed (apt-get install dbus-daemon gnome-keyring libglib2.0-bin)");
    }
    // `--unlock` can return before the daemon owns its bus name; a client
    // that asks first gets a second daemon activated by D-Bus, which finds
    // the login keyring half written. So wait for the name (gdbus, bounded).
    let script = "printf keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; \
                  gdbus wait --session --timeout 10 org.freedesktop.secrets >/dev/null 2>&1; exec \"$0\" \"$@\"";
    let mut command = Command::new("dbus-run-session");
    command
        .args(["--", "sh", "-c", script, program])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("FILEVINE_CONFIG_DIR", config)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Runs it on the blocking pool (the test server keeps serving meanwhile).
async fn run(mut command: Command, args: &[&str]) -> Output {
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// `login --with-pat`, the PAT typed on standard input.
async fn login_with_pat(mut command: Command, input: String) -> Output {
    command.args(["login", "--with-pat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn pat_server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server
}

fn server_env(server: &TestServer) -> Vec<(&'static str, String)> {
    vec![("FILEVINE_AUTHORITY", server.url().to_owned()), ("FILEVINE_GATEWAY", format!("{}/gateway", server.url()))]
}

fn borrow<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_cached_between_runs_and_formats_are_as_asked() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);

    let first = run(cli(config.path(), &env), &["token", "--verbose"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("building the HTTP client"), "the cold run builds it");
    let token = text(&first.stdout).trim().to_owned();
    assert!(server.is_valid_access_token(&token), "stdout is the token: {token}");
    assert_eq!(server.token_requests(), 1);

    // Warm: no request, and no HTTP client built (its TLS roots are what a
    // warm call would otherwise spend its time on).
    let second = run(cli(config.path(), &env), &["token", "--header", "--verbose"]).await;
    assert_eq!(text(&second.stdout), format!("Authorization: Bearer {token}\n"));
    assert_eq!(server.token_requests(), 1, "the second run is served from the cache");
    assert!(!text(&second.stderr).contains("building the HTTP client"), "{}", text(&second.stderr));

    let json = run(cli(config.path(), &env), &["token", "--json"]).await;
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["access_token"], token.as_str());
    assert!(value["expires_in"].as_u64().unwrap() > 1000, "{value}");
    assert!(value["scopes"].as_array().unwrap().iter().any(|s| s == "fv.api.gateway.access"), "{value}");

    // --min-valid longer than half the token's lifetime is bounded by it:
    // the cached hour-long token has more than half an hour left.
    let longer = run(cli(config.path(), &env), &["token", "--min-valid", "2h"]).await;
    assert!(longer.status.success(), "{}", text(&longer.stderr));
    assert_eq!(text(&longer.stdout).trim(), token);
    assert_eq!(server.token_requests(), 1);

    // The cache: a 0700 directory of 0600 files named by hashes, sealed
    // (with the tool's own key: FILEVINE_STORE_KEY is not set).
    let tokens = config.path().join("tokens");
    assert_eq!(std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777, 0o700);
    for file in std::fs::read_dir(&tokens).unwrap() {
        let file = file.unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", file.path());
        assert!(!file.file_name().to_string_lossy().contains(PAT), "file names are hashes");
        let bytes = std::fs::read(file.path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&token), "no token text on disk");
    }
    // Nothing but the token that was asked for on any stream.
    for output in [&first, &second, &json, &longer] {
        assert!(!text(&output.stderr).contains(&token) && !text(&output.stderr).contains(PAT));
        assert!(!text(&output.stdout).contains(PAT));
    }
}

/// Tokens that live less than the default --min-valid (5 min): one
/// refresh for the first call (it was two: the provider's, then one more
/// for --min-valid), none for the next while the token has over half its
/// life left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_make_one_refresh_per_call_at_most() {
    let server = pat_server().await;
    server.set_token_lifetime(std::time::Duration::from_secs(30));
    let config = tempfile::tempdir().unwrap();
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);

    let first = run(cli(config.path(), &env), &["token"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(server.token_requests(), 1);
    let second = run(cli(config.path(), &env), &["token", "--min-valid", "1h"]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(text(&second.stdout), text(&first.stdout), "served from the cache");
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_parallel_runs_with_an_empty_cache_make_one_exchange() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);
    let children: Vec<_> = (0..10)
        .map(|_| cli(config.path(), &env).arg("token").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children.into_iter().map(|child| child.wait_with_output().unwrap()).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for output in &outputs {
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let tokens: std::collections::HashSet<_> = outputs.iter().map(|o| text(&o.stdout)).collect();
    assert_eq!(tokens.len(), 1, "every process printed the same token");
    assert_eq!(server.token_requests(), 1, "one exchange for ten processes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_pat_checks_stores_and_logs_out() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let env = server_env(&server);
    let env = borrow(&env);
    let with_stdin = |input: &str| login_with_pat(cli(config.path(), &env), input.to_owned());

    // A PAT the server does not know: exit 1, a message, nothing stored.
    let bad = with_stdin("fvpat_not_known_to_the_server\n").await;
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stderr));
    let message = text(&bad.stderr);
    assert!(message.starts_with("error: ") && message.lines().count() == 1, "{message}");
    assert!(message.contains("check the personal access token") && !message.contains("fvpat_not_known"), "{message}");
    let stored = std::fs::read_dir(config.path().join("tokens"))
        .map(|d| d.filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|e| e == "token")).count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "nothing stored");
    // The cache's key, made on first use, is private.
    let key = std::fs::metadata(config.path().join("store.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let none = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(none.status.code(), Some(4), "sign-in required: {}", text(&none.stderr));
    assert!(text(&none.stderr).contains("filevine-auth login"));

    let good = with_stdin(&format!("{PAT}\n")).await;
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert_eq!(server.token_requests(), 2, "one exchange each");
    // No FILEVINE_PAT in the environment: the stored one is used.
    let token = run(cli(config.path(), &env), &["token"]).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert_eq!(server.token_requests(), 2, "the checked token was cached");

    let whoami = run(cli(config.path(), &env), &["whoami"]).await;
    assert!(whoami.status.success(), "{}", text(&whoami.stderr));
    assert!(text(&whoami.stdout).starts_with("user "), "{}", text(&whoami.stdout));
    let json = run(cli(config.path(), &env), &["whoami", "--json"]).await;
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(value["orgs"].is_array(), "{value}");

    let status = run(cli(config.path(), &env), &["status"]).await;
    let shown = text(&status.stdout) + &text(&status.stderr);
    assert!(shown.contains("personal access token") && shown.contains(server.url()), "{shown}");
    let access = text(&token.stdout).trim().to_owned();
    for output in [&good, &whoami, &json, &status] {
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(!all.contains(PAT) && !all.contains(&access), "a secret in: {all}");
    }

    let logout = run(cli(config.path(), &env), &["logout"]).await;
    assert!(logout.status.success(), "{}", text(&logout.stderr));
    assert!(text(&logout.stderr).contains("the cached tokens are deleted"), "{}", text(&logout.stderr));
    let after = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(after.status.code(), Some(4));
    // It removed what it says: the state, the PAT and the token set (a
    // refresh racing the logout finds no entry and writes nothing).
    let left: Vec<_> = std::fs::read_dir(config.path().join("tokens"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "token"))
        .collect();
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "no .token file stays");
    // `status` after `logout`: not signed in, which is no error.
    let status = run(cli(config.path(), &env), &["status"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("not signed in"), "{}", text(&status.stdout));
}

/// A P-256 key made for this test (a JWK, as `FILEVINE_CLIENT_KEY` may be).
const CLIENT_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"cli-key",
  "x":"oHA-qSWD32yP0REgUdhaAO0cyhgl0AkS0H8UmDWqb2M",
  "y":"oPhRkXBUJOoRubdjM7ZEzI4jCCBMdGPgrCNz3APsXwo",
  "d":"fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_and_dpop_from_the_environment() {
    let server = pat_server().await;
    server.add_client_key("svc-cli", &filevine_identity_ext::jose::ClientKey::from_jwk(CLIENT_JWK).unwrap());
    let config = tempfile::tempdir().unwrap();
    let key_file = config.path().join("client.jwk");
    std::fs::write(&key_file, CLIENT_JWK).unwrap();
    let mut env = server_env(&server);
    env.extend([
        ("FILEVINE_CLIENT_ID", "svc-cli".to_owned()),
        ("FILEVINE_CLIENT_KEY", key_file.display().to_string()),
        ("FILEVINE_CLIENT_KEY_ID", "cli-key".to_owned()),
        ("FILEVINE_DPOP", "true".to_owned()),
    ]);
    let env = borrow(&env);

    // The PAT exchange authenticates the client with an assertion and
    // binds the token to a new key, which is stored with it.
    let login = login_with_pat(cli(config.path(), &env), format!("{PAT}\n")).await;
    assert!(login.status.success(), "{}", text(&login.stderr));
    assert_eq!(server.token_requests(), 1);
    let request = &server.requests()[0];
    let field = |name: &str| request.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("client_id").as_deref(), Some("svc-cli"));
    assert!(field("client_assertion").is_some() && field("client_secret").is_none());

    // The next process reads the token and its key from the cache: the
    // token is bound, and the gateway takes it with this process's proofs.
    let token = run(cli(config.path(), &env), &["token"]).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(text(&token.stderr).contains("DPoP-bound"), "{}", text(&token.stderr));
    let access = text(&token.stdout).trim().to_owned();
    assert!(server.bound_key(&access).is_some(), "bound to a key");
    let whoami = run(cli(config.path(), &env), &["whoami"]).await;
    assert!(whoami.status.success(), "{}", text(&whoami.stderr));
    assert_eq!(server.token_requests(), 1, "served from the cache each time");
    assert_eq!(server.proof_rejections(), Vec::<String>::new());
    for output in [&login, &token, &whoami] {
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(!all.contains("fwb0hjTg") && !all.contains(PAT), "a secret in: {all}");
    }

    // A key file that is not there: exit 1 naming the file, nothing sent.
    let mut env = env.clone();
    env.retain(|(name, _)| *name != "FILEVINE_CLIENT_KEY");
    env.push(("FILEVINE_CLIENT_KEY", "/nonexistent/client.pem"));
    let other = tempfile::tempdir().unwrap();
    let missing = login_with_pat(cli(other.path(), &env), format!("{PAT}\n")).await;
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("/nonexistent/client.pem"), "{}", text(&missing.stderr));
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_cache_file_is_absent_with_one_warning() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);
    assert!(run(cli(config.path(), &env), &["token"]).await.status.success());
    for file in std::fs::read_dir(config.path().join("tokens")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "token") {
            std::fs::write(&path, b"\x00garbage").unwrap();
        }
    }
    let again = run(cli(config.path(), &env), &["token"]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(server.token_requests(), 2, "treated as absent: one new exchange");
    let warnings = text(&again.stderr);
    assert_eq!(warnings.lines().count(), 1, "one line: {warnings}");
    assert!(warnings.contains("WARN") && !warnings.contains(PAT), "{warnings}");

    // whoami needs a gateway: a custom authority without one is an error
    // (not a usage error) that names both ways to give it.
    let no_gateway = [("FILEVINE_AUTHORITY", server.url()), ("FILEVINE_PAT", PAT)];
    let whoami = run(cli(config.path(), &no_gateway), &["whoami"]).await;
    assert_eq!(whoami.status.code(), Some(1), "{}", text(&whoami.stderr));
    assert!(text(&whoami.stderr).contains("--gateway <URL> or set FILEVINE_GATEWAY"), "{}", text(&whoami.stderr));
    // One rule: `--gateway` alone, or FILEVINE_GATEWAY read at run time,
    // with FILEVINE_AUTHORITY.
    let gateway = format!("{}/gateway", server.url());
    let flagged = run(cli(config.path(), &no_gateway), &["--gateway", &gateway, "whoami"]).await;
    assert!(flagged.status.success(), "{}", text(&flagged.stderr));
    let mut from_env = no_gateway.to_vec();
    from_env.push(("FILEVINE_GATEWAY", gateway.as_str()));
    let env_run = run(cli(config.path(), &from_env), &["whoami"]).await;
    assert!(env_run.status.success(), "{}", text(&env_run.stderr));
}

#[tokio::test]
async fn usage_errors_exit_2_and_help_and_completions_work() {
    let config = tempfile::tempdir().unwrap();
    let bad = run(cli(config.path(), &[]), &["token", "--min-valid", "soon"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("not a duration"), "{}", text(&bad.stderr));
    let region = run(cli(config.path(), &[]), &["--region", "mars", "status"]).await;
    assert_eq!(region.status.code(), Some(2), "{}", text(&region.stderr));
    let help = run(cli(config.path(), &[]), &["--help"]).await;
    let help = text(&help.stdout);
    for expected in ["token", "login", "whoami", "status", "logout", "completions", "4  sign-in required"] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
    let completions = run(cli(config.path(), &[]), &["completions", "bash"]).await;
    assert!(completions.status.success() && text(&completions.stdout).contains("filevine-auth"));
    let none = run(cli(config.path(), &[]), &["token"]).await;
    assert_eq!(none.status.code(), Some(4), "{}", text(&none.stderr));
}

/// `login --no-browser` driven through the real provider's login page, then
/// `token`, `status`, `logout` (revocation seen by the provider).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_status_logout_against_the_real_provider() {
    let provider = oidc::Provider::start();
    let config = tempfile::tempdir().unwrap();
    let env = [("FILEVINE_AUTHORITY", provider.issuer.as_str()), ("FILEVINE_CLIENT_ID", "filevine-cli")];

    let login = BrowserLogin::start(config.path(), &env).await;
    let app = login.app.clone();
    // A stray request first (another tab, a wrong state): refused, and the
    // sign-in goes on.
    let stray = reqwest::get(format!("{app}/callback?code=stray&state=not-this-one")).await.unwrap();
    assert_eq!(stray.status(), 400);
    let stray = reqwest::get(format!("{app}/callback")).await.unwrap();
    assert_eq!(stray.status(), 400);
    let page = login.sign_in("dave").await;
    assert!(page.contains("return to the terminal"), "{page}");
    let output = login.finish().await;
    assert!(output.0.success(), "{}", output.1);
    assert!(output.1.contains("Signed in as dave@example.com"), "{}", output.1);

    // The provider's access tokens live 5 minutes: ask for 1 minute left.
    let token = run(cli(config.path(), &env), &["token", "--min-valid", "1m"]).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    let access = text(&token.stdout).trim().to_owned();
    let before = provider.stats().await;
    let again = run(cli(config.path(), &env), &["token", "--header", "--min-valid", "1m"]).await;
    assert_eq!(text(&again.stdout).trim(), format!("Authorization: Bearer {access}"));
    assert_eq!(provider.stats().await["token"], before["token"], "served from the cache");
    assert_eq!(provider.stats().await["discovery"], before["discovery"], "a warm token discovers nothing");

    let status = run(cli(config.path(), &env), &["status"]).await;
    let shown = text(&status.stdout);
    assert!(
        shown.contains("login") && shown.contains("dave@example.com") && shown.contains(&provider.issuer),
        "{shown}"
    );
    assert!(!shown.contains(&access) && !text(&status.stderr).contains(&access), "{shown}");
    assert!(shown.contains("the cache drops it after 30 days unused"), "{shown}");
    assert!(shown.contains("store key: ") && shown.contains("store.key (no OS keyring here)"), "{shown}");

    let revocations = provider.stats().await["revocation"].as_u64().unwrap();
    let logout = run(cli(config.path(), &env), &["logout"]).await;
    assert!(logout.status.success(), "{}", text(&logout.stderr));
    assert_eq!(provider.stats().await["revocation"].as_u64().unwrap(), revocations + 2, "refresh and access token");
    let after = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(after.status.code(), Some(4), "{}", text(&after.stderr));
}

/// A `login --no-browser` in progress: the sign-in URL it printed, the
/// loopback address it waits on, and the rest of its standard error.
struct BrowserLogin {
    child: std::process::Child,
    url: url::Url,
    app: String,
    rest: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
}

impl BrowserLogin {
    async fn start(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(config, env, &[]).await
    }

    /// With more arguments for `login` (`--port N`).
    async fn start_with(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut command = cli(config, env);
        command.args(["login", "--no-browser", "--timeout", "60s"]).args(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (url, redirect, rest) = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
            let url = lines.by_ref().map(Result::unwrap).find(|l| l.starts_with("http")).expect("the URL on stderr");
            // The provider takes pushed requests: the URL carries a
            // reference, and the CLI says where the browser comes back.
            let back = lines.next().expect("where the browser comes back").unwrap();
            let redirect = back.split("comes back to ").nth(1).and_then(|r| r.split(' ').next()).map(str::to_owned);
            (url, redirect.unwrap_or_else(|| panic!("no callback address: {back}")), lines)
        })
        .await
        .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"), "{redirect}");
        // Pushed (the real provider offers it: only a reference), or in
        // the URL (the test server does not), where it is the same.
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        match query.get("request_uri") {
            Some(_) => assert_eq!(query.len(), 2, "only client_id and request_uri: {url}"),
            None => assert_eq!(query.get("redirect_uri"), Some(&redirect)),
        }
        let app = redirect.trim_end_matches("/callback").to_owned();
        Self { child, url, app, rest }
    }

    /// The user signs in as `login`; the page the callback shows.
    async fn sign_in(&self, login: &str) -> String {
        let callback = oidc::Browser::for_app(&self.app).sign_in(&self.url, login).await;
        reqwest::get(&callback).await.unwrap().text().await.unwrap()
    }

    /// The login's exit status and the rest of what it printed.
    async fn finish(self) -> (std::process::ExitStatus, String) {
        let Self { mut child, rest, .. } = self;
        tokio::task::spawn_blocking(move || {
            let rest: Vec<String> = rest.map(Result::unwrap).collect();
            (child.wait().unwrap(), rest.join("\n"))
        })
        .await
        .unwrap()
    }
}

/// `FILEVINE_DPOP=true` with the real provider: the sign-in's tokens are
/// bound to a key kept (sealed) in the token cache, and another process
/// refreshes the bound refresh token with it. oidc-provider binds a public
/// client's refresh token to the key, so the refresh fails with any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_bound_sign_in_is_refreshed_by_the_next_process() {
    // 4-second access tokens: the next process finds it past its margin.
    let provider = oidc::Provider::start_for_app_with_token_ttl("http://127.0.0.1:7059", 4);
    let config = tempfile::tempdir().unwrap();
    let env = [
        ("FILEVINE_AUTHORITY", provider.issuer.as_str()),
        ("FILEVINE_CLIENT_ID", "filevine-cli"),
        ("FILEVINE_DPOP", "true"),
    ];
    let login = BrowserLogin::start(config.path(), &env).await;
    login.sign_in("erin").await;
    let (status, printed) = login.finish().await;
    assert!(status.success(), "{printed}");
    let first = run(cli(config.path(), &env), &["token"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("DPoP-bound"), "{}", text(&first.stderr));
    let before = provider.stats().await["token"].as_u64().unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let refreshed = run(cli(config.path(), &env), &["token", "--json"]).await;
    assert!(refreshed.status.success(), "the stored key signs the refresh: {}", text(&refreshed.stderr));
    let value: serde_json::Value = serde_json::from_slice(&refreshed.stdout).unwrap();
    assert_eq!(value["token_type"], "DPoP");
    assert_ne!(value["access_token"].as_str().unwrap(), text(&first.stdout).trim(), "a new token");
    // The provider wants a server nonce in every proof; a new process has
    // none yet: the refresh is challenged once (use_dpop_nonce) and sent
    // again with it.
    assert_eq!(provider.stats().await["token"].as_u64().unwrap(), before + 2, "one refresh and its nonce challenge");
}

/// Starts `login --device` and reads what it prints for the user: the
/// verification URI and the user code. The rest of its standard error is
/// read on a thread of its own, for [`finish`].
async fn start_device_login(config: &Path, env: &[(&str, &str)]) -> (Running, String, String) {
    let mut login = cli(config, env);
    login.args(["login", "--device"]).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (uri, code, rest) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr)).map(Result::unwrap);
        let mut seen = Vec::new();
        let mut uri = None;
        for line in lines.by_ref() {
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("To sign in to Filevine, open ") {
                uri = rest.split_once(' ').map(|(uri, _)| uri.to_owned());
            } else if let Some(uri) = uri.clone()
                && !line.trim().is_empty()
            {
                let rest = std::thread::spawn(move || lines.collect::<Vec<_>>().join("\n"));
                return (uri, line.trim().to_owned(), rest);
            }
        }
        panic!("no code printed: {seen:?}");
    })
    .await
    .unwrap();
    (Running { child: Some(child), rest: Some(rest) }, uri, code)
}

/// A `login --device` process, killed if the test fails before it ends
/// (it would poll for the code's whole 10 minutes).
struct Running {
    child: Option<std::process::Child>,
    rest: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for the process to end: its exit status and the rest of its
/// standard error.
async fn finish(mut running: Running) -> (std::process::ExitStatus, String) {
    let (mut child, rest) = (running.child.take().unwrap(), running.rest.take().unwrap());
    tokio::task::spawn_blocking(move || (child.wait().unwrap(), rest.join().unwrap())).await.unwrap()
}

/// `login --device` against the real provider: the user types the code
/// in a browser elsewhere; one poll later the tool is signed in, and
/// `token` serves the stored session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_device_code_against_the_real_provider() {
    let provider = oidc::Provider::start();
    let config = tempfile::tempdir().unwrap();
    let env = [("FILEVINE_AUTHORITY", provider.issuer.as_str()), ("FILEVINE_CLIENT_ID", "filevine-cli")];
    let (child, uri, code) = start_device_login(config.path(), &env).await;
    assert!(uri.starts_with(&provider.issuer), "{uri}");
    let page = oidc::Browser::new().enter_device_code(&uri, &code, "erin", true).await;
    assert!(page.contains("Sign-in Success"), "{page}");
    let (status, stderr) = finish(child).await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("Signed in as erin@example.com"), "{stderr}");
    // One poll: the code was entered within the provider's 5 s interval.
    assert_eq!(provider.stats().await["token"], 1);

    let token = run(cli(config.path(), &env), &["token"]).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert_eq!(provider.stats().await["token"], 1, "the device sign-in's token, from the store");
    let status = run(cli(config.path(), &env), &["status"]).await;
    assert!(text(&status.stdout).contains("erin@example.com"), "{}", text(&status.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_device_code_ends_the_login_with_the_reason() {
    let provider = oidc::Provider::start();
    let config = tempfile::tempdir().unwrap();
    let env = [("FILEVINE_AUTHORITY", provider.issuer.as_str()), ("FILEVINE_CLIENT_ID", "filevine-cli")];
    let (child, uri, code) = start_device_login(config.path(), &env).await;
    oidc::Browser::new().enter_device_code(&uri, &code, "frank", false).await;
    let (status, stderr) = finish(child).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    let after = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(after.status.code(), Some(4), "not signed in: {}", text(&after.stderr));
}

/// The user declines at the provider: the page and the terminal say what
/// the provider answered, and the tool exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_browser_sign_in_shows_the_providers_answer() {
    let provider = oidc::Provider::start();
    let config = tempfile::tempdir().unwrap();
    let env = [("FILEVINE_AUTHORITY", provider.issuer.as_str()), ("FILEVINE_CLIENT_ID", "filevine-cli")];
    let login = BrowserLogin::start(config.path(), &env).await;
    let mut browser = oidc::Browser::for_app(&login.app);
    let callback = browser.sign_in_with(&login.url, "ivan", false).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let page = reqwest::get(&callback).await.unwrap().text().await.unwrap();
    assert!(page.contains("sign-in failed") && page.contains("<code>access_denied</code>"), "{page}");
    assert!(!page.contains("close this tab"), "{page}");
    let (status, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
}

/// The path of a profile record in the file store.
fn record_path(config: &Path, what: &str) -> std::path::PathBuf {
    let key = filevine_identity_ext::store::StoreKey::session(&format!("filevine-auth/default/{what}"));
    config.join("tokens").join(format!("{}.token", key.as_str()))
}

/// Whoever can write the tokens directory (a restored or synced copy) must
/// not be able to send the stored PAT to a host of their choosing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_record_that_does_not_open_is_refused() {
    let server = pat_server().await;
    let elsewhere = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let env = server_env(&server);
    let env = borrow(&env);
    let login = login_with_pat(cli(config.path(), &env), format!("{PAT}\n")).await;
    assert!(login.status.success(), "{}", text(&login.stderr));
    let state = record_path(config.path(), "state");
    let sealed = std::fs::read(&state).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("authority"), "the record is sealed");

    // An edited record pointing the profile at another authority, in the
    // store's file format, as the previous release wrote it.
    let forged = format!(
        r#"{{"method":"pat","authority":"{}","gateway":"{}/gateway","since":1}}"#,
        elsewhere.url(),
        elsewhere.url()
    );
    std::fs::write(&state, format!("9 99999999999999\n{forged}")).unwrap();
    let token = run(cli(config.path(), &[]), &["token"]).await;
    assert_eq!(token.status.code(), Some(4), "treated as signed out: {}", text(&token.stderr));
    assert!(text(&token.stderr).contains("does not open"), "{}", text(&token.stderr));
    assert_eq!(elsewhere.token_requests(), 0, "the PAT went nowhere");
    assert!(!text(&token.stderr).contains(PAT));
}

/// `store.key` is trusted only as a private file of this user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_key_others_can_read_or_a_link_is_not_trusted() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);
    assert!(run(cli(config.path(), &env), &["token"]).await.status.success());
    let key = config.path().join("store.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(open.status.code(), Some(1));
    assert!(text(&open.stderr).contains("chmod 600"), "{}", text(&open.stderr));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&key, config.path().join("real.key")).unwrap();
    std::os::unix::fs::symlink(config.path().join("real.key"), &key).unwrap();
    let linked = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(linked.status.code(), Some(1));
    assert!(text(&linked.stderr).contains("symbolic link"), "{}", text(&linked.stderr));
    assert_eq!(server.token_requests(), 1, "nothing was refreshed with an untrusted key");
}

/// `login` starts the browser without the process's secrets: a stand-in
/// `xdg-open` first on PATH records the environment it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_gets_no_filevine_variable() {
    let server = TestServer::start().await.unwrap();
    let config = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let record = bin.path().join("environment");
    let opener = bin.path().join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nenv > '{0}.tmp'\necho \"url=$1\" >> '{0}.tmp'\nmv '{0}.tmp' '{0}'\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = filevine_identity_ext::store::StoreEncryptionKey::generate().unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let env = [
        ("PATH", path.as_str()),
        ("FILEVINE_AUTHORITY", server.url()),
        ("FILEVINE_CLIENT_ID", "filevine-cli"),
        ("FILEVINE_CLIENT_SECRET", "sekrit-client-secret"),
        ("FILEVINE_PAT", PAT),
        ("FILEVINE_STORE_KEY", key.expose_secret()),
        ("DISPLAY", ":0"),
    ];
    let mut login = cli(config.path(), &env);
    login.args(["login", "--timeout", "60s"]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = login.spawn().unwrap();
    let recorded = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !record.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::read_to_string(&record).unwrap_or_default()
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(recorded.contains("url=http"), "the opener was started with the sign-in URL: {recorded}");
    assert!(recorded.contains("DISPLAY=:0"), "the rest of the environment stays: {recorded}");
    for secret in ["FILEVINE_", "sekrit-client-secret", PAT, key.expose_secret()] {
        assert!(!recorded.contains(secret), "{secret} reached the browser: {recorded}");
    }
}

/// With a Secret Service, the sealing key lives in the keyring, not in a
/// file beside the tokens; the next run (a new session) finds it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_key_lives_in_the_os_keyring_when_there_is_one() {
    let server = pat_server().await;
    let (config, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);
    let first = run(cli_with_keyring(config.path(), home.path(), &env), &["token"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(!config.path().join("store.key").exists(), "no key file beside the tokens");
    let again = run(cli_with_keyring(config.path(), home.path(), &env), &["token"]).await;
    assert_eq!(text(&again.stdout), text(&first.stdout), "the cache opens with the keyring's key");
    assert_eq!(server.token_requests(), 1);
    let status = run(cli_with_keyring(config.path(), home.path(), &env), &["status"]).await;
    assert!(text(&status.stdout).contains("store key: the OS keyring (Secret Service)"), "{}", text(&status.stdout));
    // FILEVINE_STORE_KEY still wins.
    let key = filevine_identity_ext::store::StoreEncryptionKey::generate().unwrap();
    let mut with_key = env.clone();
    with_key.push(("FILEVINE_STORE_KEY", key.expose_secret()));
    let status = run(cli_with_keyring(config.path(), home.path(), &with_key), &["status"]).await;
    assert!(text(&status.stdout).contains("store key: FILEVINE_STORE_KEY"), "{}", text(&status.stdout));
    assert!(!text(&status.stdout).contains(key.expose_secret()));
    // FILEVINE_KEYRING=off keeps the key in a file, and status says why.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut off = env.clone();
    off.push(("FILEVINE_KEYRING", "off"));
    let status = run(cli_with_keyring(elsewhere.path(), home.path(), &off), &["status"]).await;
    assert!(text(&status.stdout).contains("store.key (FILEVINE_KEYRING=off)"), "{}", text(&status.stdout));
}

/// A keyring entry that holds something other than a key (another tool
/// wrote it, or it was edited by hand): exit 1 with what to do, the entry's
/// text not repeated, nothing sent, no store.key written instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_entry_that_is_not_a_key_is_refused_with_what_to_do() {
    assert!(
        std::process::Command::new("secret-tool").arg("--version").output().is_ok(),
        "secret-tool is not installed (apt-get install libsecret-tools)"
    );
    let server = pat_server().await;
    let (config, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The entry filevine-auth looks up: service filevine-auth, user
    // store-key:<the configuration directory>.
    let dir = std::fs::canonicalize(config.path()).unwrap();
    let user = format!("store-key:{}", dir.display());
    let mut store = in_keyring_session("secret-tool", config.path(), home.path(), &[]);
    store.args(["store", "--label=filevine-auth", "service", "filevine-auth", "username", &user]);
    store.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = store.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"not-a-key-but-hunter2").unwrap();
    drop(child.stdin.take());
    let stored = child.wait_with_output().unwrap();
    assert!(stored.status.success(), "secret-tool store: {}", text(&stored.stderr));

    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let env = borrow(&env);
    let token = run(cli_with_keyring(config.path(), home.path(), &env), &["token"]).await;
    assert_eq!(token.status.code(), Some(1), "{}", text(&token.stderr));
    let message = text(&token.stderr);
    assert!(message.contains("is not a key") && message.contains("delete the keyring entry"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(server.token_requests(), 0);
    assert!(!config.path().join("store.key").exists(), "no second key beside the keyring's");
}

/// A user who signed in without a keyring (store.key) and then has one:
/// the key moves into the keyring and the user stays signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_store_key_into_the_keyring_keeps_the_user_signed_in() {
    let server = pat_server().await;
    let (config, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = server_env(&server);
    let env = borrow(&env);
    let login = login_with_pat(cli(config.path(), &env), format!("{PAT}\n")).await;
    assert!(login.status.success(), "{}", text(&login.stderr));
    let status = run(cli(config.path(), &env), &["status"]).await;
    assert!(text(&status.stdout).contains("store.key (no OS keyring here)"), "{}", text(&status.stdout));
    let before = run(cli(config.path(), &env), &["token"]).await;
    assert!(config.path().join("store.key").exists());

    let after = run(cli_with_keyring(config.path(), home.path(), &env), &["token"]).await;
    assert!(after.status.success(), "still signed in: {}", text(&after.stderr));
    assert_eq!(text(&after.stdout), text(&before.stdout), "the same cache, opened with the same key");
    assert!(!config.path().join("store.key").exists(), "moved, not copied");
    let status = run(cli_with_keyring(config.path(), home.path(), &env), &["status"]).await;
    assert!(text(&status.stdout).contains("signed in: personal access token"), "{}", text(&status.stdout));
    assert!(text(&status.stdout).contains("store key: the OS keyring"), "{}", text(&status.stdout));
    assert_eq!(server.grant_requests("personal_access_token"), 1, "one exchange: login's");
}

/// `doctor`: one line per check, exit 0 when all pass and 1 otherwise; a
/// wrong PAT, an unreachable authority and a server clock an hour behind
/// each fail their own line. No secret in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_each_part_and_names_what_failed() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let line = |out: &str, check: &str| out.lines().find(|l| l[5..].starts_with(check)).unwrap_or("").to_owned();

    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let healthy = run(cli(config.path(), &borrow(&env)), &["doctor"]).await;
    let out = text(&healthy.stdout);
    assert!(healthy.status.success(), "{out}{}", text(&healthy.stderr));
    for check in ["configuration", "token cache", "discovery", "clock", "token endpoint", "credentials"] {
        assert!(line(&out, check).starts_with("ok   "), "{check}: {out}");
    }
    assert_eq!(out.lines().count(), 6, "{out}");
    assert_eq!(server.token_requests(), 1, "one fresh token request");

    // A PAT the server does not know.
    let mut wrong = server_env(&server);
    wrong.push(("FILEVINE_PAT", "fvpat_SENTINEL_not_known".to_owned()));
    let refused = run(cli(config.path(), &borrow(&wrong)), &["doctor"]).await;
    let out = text(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(line(&out, "credentials").starts_with("FAIL "), "{out}");
    assert!(line(&out, "token endpoint").starts_with("ok   "), "{out}");
    assert!(line(&out, "discovery").starts_with("ok   "), "{out}");
    let all = format!("{out}{}", text(&refused.stderr));
    assert!(!all.contains("SENTINEL"), "{all}");

    // The server's clock an hour behind this machine's.
    server.set_date_behind(std::time::Duration::from_secs(3600));
    let skewed = run(cli(config.path(), &borrow(&env)), &["doctor"]).await;
    let out = text(&skewed.stdout);
    assert_eq!(skewed.status.code(), Some(1), "{out}");
    let clock = line(&out, "clock");
    assert!(clock.starts_with("FAIL ") && clock.contains("ahead of the server"), "{out}");
    let seconds: u64 = clock.split_whitespace().find_map(|w| w.parse().ok()).unwrap();
    assert!((3599..=3601).contains(&seconds), "{clock}");
    assert!(line(&out, "credentials").starts_with("ok   "), "{out}");
    server.set_date_behind(std::time::Duration::ZERO);

    // An authority where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = [("FILEVINE_AUTHORITY", format!("http://127.0.0.1:{port}")), ("FILEVINE_PAT", PAT.to_owned())];
    let unreachable = run(cli(config.path(), &borrow(&nowhere)), &["doctor"]).await;
    let out = text(&unreachable.stdout);
    assert_eq!(unreachable.status.code(), Some(1), "{out}");
    assert!(line(&out, "discovery").starts_with("FAIL "), "{out}");
    assert!(line(&out, "token endpoint").starts_with("FAIL "), "{out}");
    assert!(line(&out, "configuration").starts_with("ok   "), "{out}");
}

/// Serves one fixed discovery document to every request: an issuer with
/// escape sequences in it.
async fn hostile_discovery() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let document = serde_json::json!({
        "issuer": format!("{base}\u{1b}]0;pwned\u{7}\u{1b}[2J"),
        "authorization_endpoint": format!("{base}/connect/authorize"),
        "token_endpoint": format!("{base}/connect/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let document = document.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{document}",
                    document.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

/// Text a provider or a user chose never drives the terminal: an escape
/// sequence in an `error_description`, in discovery's `issuer` (`doctor`)
/// and in the `name` and `email` claims (`login`, `status`) is printed
/// without its control characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_with_escape_sequences_never_reaches_the_terminal() {
    let escape = |what: &str, bytes: &[u8]| {
        let shown = text(bytes);
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}'), "{what} printed a control character: {shown:?}");
        shown
    };
    // error_description
    let server = pat_server().await;
    server.fail_next(filevine_identity_ext::test_util::Failure::Status {
        status: 400,
        content_type: "application/json".into(),
        body: r#"{"error":"invalid_grant","error_description":"\u001b]0;pwned\u0007refused \u001b[2Jhere"}"#.into(),
    });
    let config = tempfile::tempdir().unwrap();
    let mut env = server_env(&server);
    env.push(("FILEVINE_PAT", PAT.to_owned()));
    let refused = run(cli(config.path(), &borrow(&env)), &["token"]).await;
    assert!(!refused.status.success());
    let shown = escape("an error", &refused.stderr);
    assert!(shown.contains("refused") && shown.contains("here"), "{shown}");

    // discovery's issuer
    let authority = hostile_discovery().await;
    let env = [("FILEVINE_AUTHORITY", authority.as_str()), ("FILEVINE_PAT", PAT)];
    let doctor = run(cli(config.path(), &env), &["doctor"]).await;
    escape("doctor's stdout", &doctor.stdout);
    escape("doctor's stderr", &doctor.stderr);
    assert!(text(&doctor.stdout).contains("]0;pwned"), "the issuer is shown, cleaned: {}", text(&doctor.stdout));

    // name and email
    let server = TestServer::start().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    server.add_sign_in_client("filevine-cli", None, &[callback.as_str()], &[]);
    server.set_user(
        filevine_identity_ext::test_util::TestUser::new("3003")
            .name("Ada\u{1b}]0;pwned\u{7} Lovelace")
            .email("ada\u{1b}[31m@example.com"),
    );
    let config = tempfile::tempdir().unwrap();
    let env = [("FILEVINE_AUTHORITY", server.url()), ("FILEVINE_CLIENT_ID", "filevine-cli")];
    let login = BrowserLogin::start_with(config.path(), &env, &["--port", &port.to_string()]).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = http.get(login.url.clone()).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&callback), "{location}");
    http.get(&location).send().await.unwrap();
    let (status, stderr) = login.finish().await;
    assert!(status.success(), "{stderr}");
    let shown = escape("login", stderr.as_bytes());
    assert!(shown.contains("Signed in as ada[31m@example.com"), "{shown}");
    let status = run(cli(config.path(), &env), &["status"]).await;
    let shown = escape("status", &status.stdout);
    assert!(shown.contains("Ada]0;pwned Lovelace"), "{shown}");
}

/// `--authority` (or `--region`) naming another authority than the one a
/// profile signed in at: refused, nothing sent anywhere, the message says
/// where the profile is signed in and how to sign in at the other. The
/// same authority by flag works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authority_flag_never_takes_stored_credentials_elsewhere() {
    let server = pat_server().await;
    let elsewhere = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let env = server_env(&server);
    let login = login_with_pat(cli(config.path(), &borrow(&env)), format!("{PAT}\n")).await;
    assert!(login.status.success(), "{}", text(&login.stderr));
    let requests = server.token_requests();
    for flags in [vec!["--authority", elsewhere.url()], vec!["--region", "ca"]] {
        let mut args = flags.clone();
        args.push("token");
        let refused = run(cli(config.path(), &[]), &args).await;
        let stderr = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(&format!("is signed in at {}", server.url())), "{stderr}");
        assert!(stderr.contains("--profile <name>") && stderr.contains("login"), "{stderr}");
        assert!(!stderr.contains(PAT), "{stderr}");
    }
    assert_eq!(elsewhere.token_requests(), 0, "the PAT went nowhere");
    assert_eq!(server.token_requests(), requests);
    let same = run(cli(config.path(), &[]), &["--authority", server.url(), "token"]).await;
    assert!(same.status.success(), "{}", text(&same.stderr));
}

/// The binary on a pseudo-terminal (util-linux `script`): what a person at
/// a terminal runs. Its output is everything the terminal showed, echo
/// included.
fn on_terminal(config: &Path, env: &[(&str, &str)], args: &str) -> Command {
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c", &format!("{} {args}", env!("CARGO_BIN_EXE_filevine-auth")), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("FILEVINE_CONFIG_DIR", config)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// On a terminal every command prints only its own lines: no notice from
/// the log subscriber about colours (a debug build panicked on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_a_terminal_prints_no_stray_line() {
    let config = tempfile::tempdir().unwrap();
    let mut status = on_terminal(config.path(), &[], "status");
    let output = tokio::task::spawn_blocking(move || {
        let child = status.spawn().expect("script (util-linux) runs");
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let shown = text(&output.stdout) + &text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(!shown.contains("ansi") && !shown.contains("panicked"), "{shown}");
    assert!(shown.contains("not signed in"), "{shown}");
}

/// `login --with-pat` at a terminal: a prompt on stderr, and the PAT is not
/// echoed as it is typed (the terminal shows everything written to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pat_typed_at_a_terminal_is_prompted_for_and_not_echoed() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let env = server_env(&server);
    let mut login = on_terminal(config.path(), &borrow(&env), "login --with-pat");
    let shown = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut child = login.spawn().expect("script (util-linux) runs");
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 256];
        // Type only once the prompt is there (echo is turned off by then).
        while !String::from_utf8_lossy(&seen).contains("not shown as you type") {
            let n = stdout.read(&mut chunk).unwrap();
            assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
        child.stdin.take().unwrap().write_all(format!("{PAT}\n").as_bytes()).unwrap();
        stdout.read_to_end(&mut seen).unwrap();
        assert!(child.wait().unwrap().success(), "{}", String::from_utf8_lossy(&seen));
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await
    .unwrap();
    assert!(shown.contains("Personal access token (not shown as you type): "), "{shown}");
    assert!(shown.contains("Signed in with a personal access token"), "{shown}");
    assert!(!shown.contains(PAT), "the PAT was echoed: {shown}");
    assert_eq!(server.token_requests(), 1);
}

/// A secret pasted where an argument goes is never printed back (clap
/// would quote an unexpected argument).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_argument_is_not_printed_back() {
    let config = tempfile::tempdir().unwrap();
    for args in [&["login", PAT][..], &[PAT], &["token", "--header", PAT]] {
        let output = run(cli(config.path(), &[]), args).await;
        let shown = text(&output.stdout) + &text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {shown}");
        assert!(!shown.contains(PAT), "{args:?}: {shown}");
        assert!(shown.contains("not shown: it may be a secret") && shown.contains("--with-pat"), "{shown}");
    }
    // `--help` still prints help and exits 0; the help texts agree with the
    // README on what wins (FILEVINE_REGION over the profile).
    let help = run(cli(config.path(), &[]), &["login", "--help"]).await;
    assert_eq!(help.status.code(), Some(0));
    let help = text(&help.stdout);
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.starts_with("Sign in: with your Filevine account in a browser"), "{help}");
    let help = run(cli(config.path(), &[]), &["--help"]).await;
    // clap wraps the help to the terminal's width: compare words.
    let words = text(&help.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("FILEVINE_AUTHORITY or FILEVINE_REGION, else the profile's, else us"), "{words}");
}

/// Errors name what they are about: the variable that named a missing
/// file, the secret a client id lacks, the URL that answered 404 (the
/// gateway given as the authority).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_variable_and_the_url() {
    let server = pat_server().await;
    let config = tempfile::tempdir().unwrap();
    let missing = config.path().join("no-such-pat");
    let env = [("FILEVINE_AUTHORITY", server.url()), ("FILEVINE_PAT_FILE", missing.to_str().unwrap())];
    let said = text(&run(cli(config.path(), &env), &["token"]).await.stderr);
    assert!(said.contains("does not exist (the file FILEVINE_PAT_FILE names)"), "{said}");
    assert!(!said.contains("entity not found"), "{said}");

    let env = [("FILEVINE_AUTHORITY", server.url()), ("FILEVINE_CLIENT_ID", "svc")];
    let output = run(cli(config.path(), &env), &["token"]).await;
    assert_eq!(output.status.code(), Some(4));
    assert!(
        text(&output.stderr).contains("FILEVINE_CLIENT_ID is set without FILEVINE_CLIENT_SECRET"),
        "{}",
        text(&output.stderr)
    );

    let gateway = format!("{}/gateway", server.url());
    let env = [("FILEVINE_AUTHORITY", gateway.as_str()), ("FILEVINE_PAT", PAT)];
    let said = text(&run(cli(config.path(), &env), &["token"]).await.stderr);
    assert!(said.contains(&format!("{gateway}/connect/token does not exist")), "{said}");
    assert!(said.contains("not the API gateway's"), "{said}");
}
