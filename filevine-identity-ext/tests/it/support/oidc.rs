//! The real OpenID provider for the sign-in tests: `oidc-provider` from the
//! npm registry, configured like Filevine (tests/oidc-provider/server.mjs),
//! started once per test binary on 127.0.0.1, and a "browser" that signs a
//! user in through its login and consent pages over HTTP.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use url::Url;

pub const REDIRECT_URI: &str = "http://127.0.0.1:7059/signin-oidc";
pub const POST_LOGOUT_REDIRECT_URI: &str = "http://127.0.0.1:7059/logout/callback";
pub const CLIENT_ID: &str = "partner-app";
pub const CLIENT_SECRET: &str = "partner-app-secret";
pub const BASIC_CLIENT_ID: &str = "partner-app-basic";
pub const BASIC_CLIENT_SECRET: &str = "partner-app-basic-secret";

pub struct Provider {
    pub issuer: String,
    // Held so the provider's stdin stays open: it exits when this process does.
    _child: Child,
}

/// The provider of this test binary, started on first use.
pub fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| start_with(APP))
}

impl Provider {
    /// A provider of its own, for a test that counts requests or changes
    /// the provider's keys.
    pub fn start() -> Provider {
        start_with(APP)
    }

    /// A provider whose clients redirect to an app at `app` (e.g.
    /// `http://127.0.0.1:PORT`) instead of 127.0.0.1:7059.
    pub fn start_for_app(app: &str) -> Provider {
        start_with(app)
    }

    /// As [`Provider::start_for_app`], issuing access tokens that live
    /// `seconds`.
    pub fn start_for_app_with_token_ttl(app: &str, seconds: u64) -> Provider {
        start_with_env(app, &[("OIDC_ACCESS_TOKEN_TTL", seconds.to_string())])
    }

    /// A provider for an app at `app` that is told of ended sessions at
    /// `{app}/backchannel-logout` (Back-Channel Logout 1.0, with `sid`).
    pub fn start_for_app_with_backchannel_logout(app: &str) -> Provider {
        start_with_env(app, &[("OIDC_BACKCHANNEL_LOGOUT_URI", format!("{app}/backchannel-logout"))])
    }

    /// A provider that takes only pushed authorization requests (RFC 9126
    /// `require_pushed_authorization_requests`).
    pub fn start_requiring_par() -> Provider {
        start_with_env(APP, &[("OIDC_REQUIRE_PAR", "1".to_owned())])
    }
}

/// Where the clients' redirect URIs point by default.
const APP: &str = "http://127.0.0.1:7059";

fn start_with(app: &str) -> Provider {
    start_with_env(app, &[])
}

fn start_with_env(app: &str, env: &[(&str, String)]) -> Provider {
    // Through the workspace, so that other crates' tests can include this module.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../filevine-identity-ext/tests/oidc-provider");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "oidc-provider is not installed: run `cargo xtask test`, or `npm ci --prefix {}` once",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg("0")
        .current_dir(&dir)
        .env("OIDC_REDIRECT_HOST", app)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node (is Node.js 20+ installed?): {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the provider's issuer");
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!("the provider did not start (run `node server.mjs` in {} to see why)", dir.display())
    });
    Provider { issuer: ready["issuer"].as_str().expect("issuer").to_owned(), _child: child }
}

impl Provider {
    /// A harness route: JSON in, JSON out.
    pub async fn harness(&self, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let client = http_builder().build().expect("client");
        let url = format!("{}/_harness/{path}", self.issuer);
        let request = match body {
            Some(body) => client.post(url).json(&body),
            None => client.get(url),
        };
        let response = request.send().await.expect("harness request");
        assert!(response.status().is_success(), "harness {path}: {}", response.status());
        response.json().await.expect("harness JSON")
    }

    /// Signs `claims` with one of the harness's keys (`provider`, `rotated`,
    /// `stranger`), `alg` RS256/384/512.
    pub async fn sign(&self, claims: serde_json::Value, alg: &str, key: &str) -> String {
        let body = serde_json::json!({ "claims": claims, "header": { "alg": alg }, "key": key });
        self.harness("sign", Some(body)).await["jwt"].as_str().expect("jwt").to_owned()
    }

    /// Moves the provider's clock forward (its expiry checks see the
    /// future; nothing waits).
    pub async fn advance_clock(&self, by: std::time::Duration) {
        self.harness("advance", Some(serde_json::json!({ "seconds": by.as_secs() }))).await;
    }

    /// How many requests each endpoint has served.
    pub async fn stats(&self) -> serde_json::Value {
        self.harness("stats", None).await
    }
}

/// A browser without a browser: follows redirects by hand, keeps cookies,
/// and submits the provider's login and consent forms.
pub struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    app: String,
}

impl Browser {
    /// A browser whose sign-ins end at the app on 127.0.0.1:7059.
    pub fn new() -> Self {
        Self::for_app(APP)
    }

    /// A browser whose sign-ins end at the app at `app`.
    pub fn for_app(app: &str) -> Self {
        let http = http_builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { http, cookies: BTreeMap::new(), app: format!("{app}/") }
    }

    /// One request with the cookie jar; the response's cookies are kept.
    pub async fn request(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = self.with_cookies(request).send().await.expect("request");
        self.keep_cookies(&response);
        response
    }

    /// Sets a cookie as if a server (or an attacker) had planted it.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// Takes over another browser's cookies (the same user in a second tab).
    pub fn copy_cookies_from(&mut self, other: &Browser) {
        self.cookies = other.cookies.clone();
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Follows `url` through login (as `login`) and consent until the
    /// provider redirects to the app; returns that callback URL.
    pub async fn sign_in(&mut self, url: &Url, login: &str) -> String {
        self.sign_in_with(url, login, true).await
    }

    /// As [`Browser::sign_in`]; `consent: false` aborts at the consent page
    /// (the user declines).
    pub async fn sign_in_with(&mut self, url: &Url, login: &str, consent: bool) -> String {
        let mut next = (url.clone(), None);
        for _ in 0..20 {
            let (url, form) = next;
            next = match self.step(&url, form).await {
                Step::Redirect(target) if target.as_str().starts_with(&self.app) => return target.to_string(),
                Step::Redirect(target) => (target, None),
                Step::Page(page) => login_or_consent(&page, &url, login, consent)
                    .unwrap_or_else(|| panic!("an unexpected page: {page}")),
            };
        }
        panic!("no callback after 20 steps");
    }

    /// What a person does with a device sign-in's code: opens the
    /// verification URI, types the code (lower case, as people do), confirms
    /// it, signs in as `login` and consents (or declines with `consent:
    /// false`). Returns the provider's last page.
    pub async fn enter_device_code(
        &mut self,
        verification_uri: &str,
        user_code: &str,
        login: &str,
        consent: bool,
    ) -> String {
        let mut next = (Url::parse(verification_uri).expect("verification URI"), None);
        let mut entered = false;
        for _ in 0..20 {
            let (url, form) = next;
            let page = match self.step(&url, form).await {
                Step::Redirect(target) => {
                    next = (target, None);
                    continue;
                }
                Step::Page(page) => page,
            };
            if let Some(answer) = login_or_consent(&page, &url, login, consent) {
                next = answer;
                continue;
            }
            let Some(action) = form_action(&page, &url) else { return page };
            let mut fields = hidden_inputs(&page);
            if page.contains("name=\"user_code\"") && !fields.iter().any(|(k, _)| k == "user_code") {
                if entered {
                    // Back at the code page (a declined sign-in): done.
                    return page;
                }
                entered = true;
                fields.push(("user_code".into(), user_code.to_lowercase()));
            } else if !page.contains("name=\"confirm\"") {
                return page;
            }
            next = (action, Some(fields));
        }
        panic!("no end of the device sign-in after 20 steps");
    }

    /// One request of a walk through the provider's pages, with the cookie
    /// jar: where a redirect points, or the page (a success status).
    async fn step(&mut self, url: &Url, form: Option<Vec<(String, String)>>) -> Step {
        let request = match &form {
            Some(form) => self.http.post(url.clone()).form(form),
            None => self.http.get(url.clone()),
        };
        let response = self.with_cookies(request).send().await.expect("provider request");
        self.keep_cookies(&response);
        if let Some(location) = response.headers().get(LOCATION) {
            return Step::Redirect(url.join(location.to_str().expect("ascii location")).expect("location URL"));
        }
        let status = response.status();
        let page = response.text().await.expect("page");
        assert!(status.is_success(), "provider answered {status}: {page}");
        Step::Page(page)
    }

    fn with_cookies(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.cookies.is_empty() {
            return request;
        }
        let header = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        request.header(COOKIE, header)
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = text.to_ascii_lowercase().contains("expires=thu, 01 jan 1970");
                if value.is_empty() || expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
    }
}

/// A request of a walk: where, and the form to post (a GET without one).
type Request = (Url, Option<Vec<(String, String)>>);

/// What one request of a walk led to.
enum Step {
    Redirect(Url),
    Page(String),
}

/// The next request for the provider's login page (log in as `login`) or
/// consent page (consent, or follow its cancel link); `None` for any other
/// page.
fn login_or_consent(page: &str, url: &Url, login: &str, consent: bool) -> Option<Request> {
    let field = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    if page.contains("name=\"prompt\" value=\"login\"") {
        let form = vec![field("prompt", "login"), field("login", login), field("password", "x")];
        Some((form_action(page, url).expect("a form on the login page"), Some(form)))
    } else if page.contains("name=\"prompt\" value=\"consent\"") {
        if consent {
            return Some((
                form_action(page, url).expect("a form on the consent page"),
                Some(vec![field("prompt", "consent")]),
            ));
        }
        let end = page.find("\">[ Cancel ]").expect("a cancel link");
        let abort = &page[page[..end].rfind("href=\"").expect("its href") + 6..end];
        Some((url.join(&abort.replace("&amp;", "&")).expect("abort URL"), None))
    } else {
        None
    }
}

/// The action of the first form on a page, resolved against its URL.
fn form_action(page: &str, url: &Url) -> Option<Url> {
    let action = between(page, "action=\"", "\"")?;
    Some(url.join(&action.replace("&amp;", "&")).expect("form action"))
}

/// The hidden inputs of the first form on a page, in order.
fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    let form_end = page.find("</form>").unwrap_or(page.len());
    page[..form_end]
        .split("<input")
        .skip(1)
        .filter(|input| input.contains("type=\"hidden\""))
        .filter_map(|input| {
            Some((between(input, "name=\"", "\"")?, between(input, "value=\"", "\"").unwrap_or_default()))
        })
        .collect()
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_owned())
}

/// A reqwest builder with the SDK's rustls provider installed first (with
/// the `ring` backend reqwest has none of its own). Here, not in `mod.rs`:
/// the CLI's tests include this file alone.
pub fn http_builder() -> reqwest::ClientBuilder {
    filevine_identity_ext::crypto::install_default_provider();
    reqwest::Client::builder()
}
