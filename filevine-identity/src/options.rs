//! [`ClientOptions`]: what the hooks apply to a [`Client`](crate::Client)'s
//! requests besides what the generated code builds.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::HeaderValue;

use crate::signing::{CLIENT_ASSERTION_TYPE, DPOP_HEADER as DPOP};
use crate::{ClientAssertion, DpopProver, Operation, Scheme, SecretString};

/// Per-client settings the generated client's hooks apply to each request
/// (progenitor's "inner type"; pass it to [`Client::new`](crate::Client::new)).
///
/// - **Endpoints.** A discovery document may place an operation at a URL
///   whose path differs from the spec's (`userinfo_endpoint`,
///   `jwks_uri`, …). [`ClientOptions::endpoint`] sends that operation there
///   instead of to base URL + path.
/// - **Credentials.** progenitor ignores the spec's `security`; the hooks
///   apply it. A bearer token is sent only to operations whose security
///   names the bearer scheme (userinfo), Basic client credentials (or a
///   client assertion) only to those that accept them (token, revocation,
///   introspection). An operation that requires credentials the options do
///   not hold fails before anything is sent.
/// - **Signed per request.** A [`ClientAssertion`] and a [`DpopProver`]
///   sign each attempt anew (see [`signing`](crate::signing)).
///
/// `Debug` shows which credentials are set, never their values.
///
/// ```
/// use filevine_identity::{Client, ClientOptions, SecretString, operations};
///
/// let options = ClientOptions::new()
///     .bearer(SecretString::from("an-access-token"))
///     .endpoint(&operations::GET_USERINFO, "https://identity.example/oauth/userinfo".parse().unwrap());
/// assert_eq!(
///     format!("{options:?}"),
///     "ClientOptions { endpoints: {\"get_userinfo\": \"https://identity.example/oauth/userinfo\"}, \
///      gateway: None, bearer: true, dpop_token: false, basic: false, client_assertion: false, dpop: false }",
/// );
/// let client = Client::new("https://identity.example", options);
/// # drop(client);
/// ```
#[derive(Clone, Default)]
pub struct ClientOptions {
    endpoints: BTreeMap<&'static str, url::Url>,
    gateway: Option<url::Url>,
    access: Option<(Scheme, SecretString)>,
    basic: Option<SecretString>,
    assertion: Option<Arc<dyn ClientAssertion>>,
    dpop: Option<Arc<dyn DpopProver>>,
}

/// `url`, built by the generated code on `base_url`, moved to `gateway`:
/// the gateway's URL (with any path prefix) + the operation's path and
/// query.
fn on_gateway(gateway: &url::Url, url: &url::Url, base_url: &str) -> url::Url {
    let base_path =
        url::Url::parse(base_url).map(|base| base.path().trim_end_matches('/').to_owned()).unwrap_or_default();
    let operation_path = url.path().strip_prefix(base_path.as_str()).unwrap_or(url.path());
    let mut target = gateway.clone();
    let prefix = target.path().trim_end_matches('/').to_owned();
    target.set_path(&format!("{prefix}{operation_path}"));
    target.set_query(url.query());
    target
}

/// The credentials the options send to one operation.
enum Credential<'a> {
    Bearer(&'a SecretString),
    Dpop(&'a SecretString),
    Basic(&'a SecretString),
    Assertion(&'a dyn ClientAssertion),
}

/// The form fields a client assertion adds; removed before a request is
/// signed again.
const ASSERTION_FIELDS: [&str; 2] = ["client_assertion_type", "client_assertion"];

impl ClientOptions {
    /// No endpoint overrides, no credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// The API gateway's base URL, where operations on [`Host::Gateway`](crate::Host::Gateway)
    /// are sent (the gateway URL + the operation's path). Without it, such
    /// an operation fails before anything is sent.
    #[must_use]
    pub fn gateway(mut self, url: url::Url) -> Self {
        self.gateway = Some(url);
        self
    }

    /// Sends `operation` to `url` instead of the base URL + its path.
    #[must_use]
    pub fn endpoint(mut self, operation: &Operation, url: url::Url) -> Self {
        self.endpoints.insert(operation.id, url);
        self
    }

    /// The access token for operations secured with [`Scheme::Bearer`].
    #[must_use]
    pub fn bearer(mut self, access_token: SecretString) -> Self {
        self.access = Some((Scheme::Bearer, access_token));
        self
    }

    /// A DPoP-bound access token, for operations secured with
    /// [`Scheme::Dpop`]: sent as `Authorization: DPoP …` with a proof from
    /// the [`DpopProver`] (which [`dpop`](Self::dpop) sets), never as a
    /// bearer token.
    #[must_use]
    pub fn dpop_token(mut self, access_token: SecretString) -> Self {
        self.access = Some((Scheme::Dpop, access_token));
        self
    }

    /// The client credentials for operations that accept [`Scheme::Basic`]
    /// (`client_secret_basic`): id and secret are form-urlencoded before
    /// they are joined, as RFC 6749 §2.3.1 says.
    #[must_use]
    pub fn basic(mut self, client_id: &str, client_secret: &SecretString) -> Self {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(client_id), encode(client_secret.expose_secret()));
        self.basic = Some(SecretString::from(base64::engine::general_purpose::STANDARD.encode(pair)));
        self
    }

    /// Authenticates the client with `private_key_jwt` (RFC 7523 §2.2) on
    /// the operations that accept [`Scheme::Basic`]: each request's form
    /// gets `client_assertion_type` and a freshly signed
    /// `client_assertion`. Takes the place of [`basic`](Self::basic).
    #[must_use]
    pub fn client_assertion(mut self, signer: Arc<dyn ClientAssertion>) -> Self {
        self.assertion = Some(signer);
        self
    }

    /// Adds a DPoP proof (RFC 9449) to the operations that take one (the
    /// token endpoint) and to those sent with a [`dpop_token`](Self::dpop_token);
    /// remembers each `DPoP-Nonce` a server sends, and repeats a request
    /// once, newly signed, when the server answers `use_dpop_nonce`.
    #[must_use]
    pub fn dpop(mut self, prover: Arc<dyn DpopProver>) -> Self {
        self.dpop = Some(prover);
        self
    }

    /// The prover, when requests to `operation` carry proofs.
    pub(crate) fn prover_for(&self, operation: &Operation) -> Option<&dyn DpopProver> {
        let prover = self.dpop.as_deref()?;
        let bound = matches!(self.credentials_for(operation), Ok(Some(Credential::Dpop(_))));
        (operation.dpop_proof || bound).then_some(prover)
    }

    /// Points `request` at the operation's endpoint and adds the
    /// credentials its security asks for.
    pub(crate) fn apply(
        &self,
        operation: &Operation,
        request: &mut reqwest::Request,
        base_url: &str,
    ) -> Result<(), String> {
        if operation.host == crate::Host::Gateway && !self.endpoints.contains_key(operation.id) {
            let gateway = self.gateway.as_ref().ok_or_else(|| {
                format!(
                    "`{}` is served by the API gateway, and no gateway URL is set (ClientOptions::gateway)",
                    operation.id
                )
            })?;
            *request.url_mut() = on_gateway(gateway, request.url(), base_url);
        }
        if let Some(url) = self.endpoints.get(operation.id) {
            let query = request.url().query().map(str::to_owned);
            let mut target = url.clone();
            if let Some(query) = query {
                let joined = match target.query() {
                    Some(own) if !own.is_empty() => format!("{own}&{query}"),
                    _ => query,
                };
                target.set_query(Some(&joined));
            }
            *request.url_mut() = target;
        }
        // A request fresh from the generated code carries no credentials
        // yet: nothing to replace.
        self.add_credentials(operation, request)
    }

    /// Adds the operation's credentials to `request`, replacing the
    /// per-request signatures of an earlier attempt (a request repeated
    /// with a server's nonce is signed anew: a `jti` is never sent twice).
    pub(crate) fn sign(&self, operation: &Operation, request: &mut reqwest::Request) -> Result<(), String> {
        request.headers_mut().remove(reqwest::header::AUTHORIZATION);
        request.headers_mut().remove(DPOP);
        self.add_credentials(operation, request)
    }

    /// Adds the operation's credentials to a request that has none.
    fn add_credentials(&self, operation: &Operation, request: &mut reqwest::Request) -> Result<(), String> {
        let credential = self.credentials_for(operation)?;
        let header = match credential {
            None | Some(Credential::Assertion(_)) => None,
            Some(Credential::Bearer(token)) => Some(format!("Bearer {}", token.expose_secret())),
            Some(Credential::Dpop(token)) => Some(format!("DPoP {}", token.expose_secret())),
            Some(Credential::Basic(pair)) => Some(format!("Basic {}", pair.expose_secret())),
        };
        if let Some(header) = header {
            // The value is a secret: the message names the scheme, never it.
            let value = sensitive(&header)
                .ok_or_else(|| format!("`{}`: the credentials are not a valid header value", operation.id))?;
            request.headers_mut().insert(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(Credential::Assertion(signer)) = credential {
            let assertion = signer.assertion().map_err(|e| format!("`{}`: client assertion: {e}", operation.id))?;
            add_assertion(request, &assertion);
        }
        if let Some(prover) = self.prover_for(operation) {
            let token = match credential {
                Some(Credential::Dpop(token)) => Some(token),
                _ => None,
            };
            let proof = prover
                .proof(request.method().as_str(), request.url(), token)
                .map_err(|e| format!("`{}`: DPoP proof: {e}", operation.id))?;
            let value = sensitive(proof.expose_secret())
                .ok_or_else(|| format!("`{}`: the DPoP proof is not a valid header value", operation.id))?;
            request.headers_mut().insert(DPOP, value);
        }
        Ok(())
    }

    /// The first security alternative these options satisfy: one with
    /// credentials first, else an empty one (no credentials needed).
    fn credentials_for(&self, operation: &Operation) -> Result<Option<Credential<'_>>, String> {
        for alternative in operation.security {
            if let [scheme] = alternative {
                let held = match (scheme, &self.access) {
                    (Scheme::Bearer, Some((Scheme::Bearer, token))) => Some(Credential::Bearer(token)),
                    (Scheme::Dpop, Some((Scheme::Dpop, token))) if self.dpop.is_some() => Some(Credential::Dpop(token)),
                    (Scheme::Basic, _) => match (&self.assertion, &self.basic) {
                        (Some(signer), _) => Some(Credential::Assertion(signer.as_ref())),
                        (None, Some(pair)) => Some(Credential::Basic(pair)),
                        (None, None) => None,
                    },
                    _ => None,
                };
                if held.is_some() {
                    return Ok(held);
                }
            }
        }
        if operation.allows_anonymous() {
            return Ok(None);
        }
        let mut wanted: Vec<&str> = operation
            .security
            .iter()
            .flat_map(|alternative| alternative.iter())
            .map(|scheme| match scheme {
                Scheme::Bearer => "an access token (bearer)",
                Scheme::Basic => "client credentials (Basic)",
                Scheme::Dpop => "a DPoP-bound access token with a DPoP prover",
            })
            .collect();
        wanted.dedup();
        Err(format!("`{}` needs {}; the client has none", operation.id, wanted.join(" or ")))
    }
}

/// A header value marked sensitive (left out of HTTP/2 header tables and
/// `Debug`).
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Appends `client_assertion_type` and `assertion` to the form body,
/// dropping any an earlier attempt added.
fn add_assertion(request: &mut reqwest::Request, assertion: &SecretString) {
    let body = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default();
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(body) {
        if !ASSERTION_FIELDS.contains(&name.as_ref()) {
            form.append_pair(&name, &value);
        }
    }
    form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE);
    form.append_pair("client_assertion", assertion.expose_secret());
    let body = zeroize::Zeroizing::new(form.finish());
    *request.body_mut() = Some(reqwest::Body::from(body.as_bytes().to_vec()));
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: BTreeMap<_, _> = self.endpoints.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.debug_struct("ClientOptions")
            .field("endpoints", &endpoints)
            .field("gateway", &self.gateway.as_ref().map(url::Url::as_str))
            .field("bearer", &matches!(self.access, Some((Scheme::Bearer, _))))
            .field("dpop_token", &matches!(self.access, Some((Scheme::Dpop, _))))
            .field("basic", &self.basic.is_some())
            .field("client_assertion", &self.assertion.is_some())
            .field("dpop", &self.dpop.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Operation = Operation {
        id: "op",
        method: "POST",
        path: "/op",
        security: &[&[Scheme::Basic], &[]],
        dpop_proof: true,
        host: crate::Host::Identity,
    };
    const BEARER: Operation = Operation {
        id: "me",
        method: "GET",
        path: "/me",
        security: &[&[Scheme::Bearer], &[Scheme::Dpop]],
        dpop_proof: false,
        host: crate::Host::Identity,
    };
    const OPEN: Operation = Operation {
        id: "open",
        method: "GET",
        path: "/open",
        security: &[],
        dpop_proof: false,
        host: crate::Host::Identity,
    };
    const ON_GATEWAY: Operation = Operation {
        id: "invite",
        method: "POST",
        path: "/identity/user",
        security: &[&[Scheme::Bearer]],
        dpop_proof: false,
        host: crate::Host::Gateway,
    };

    /// An operation on the gateway goes to the gateway URL (its path prefix
    /// kept) + the operation's path and query, whatever path the client's
    /// base URL has; without a gateway URL it fails before sending.
    #[test]
    fn gateway_operations_go_to_the_gateway() {
        let options = ClientOptions::new().bearer("tok".into()).gateway("https://gw.example/prefix/".parse().unwrap());
        let mut r = request("https://id.example/base/identity/user?x=1");
        options.apply(&ON_GATEWAY, &mut r, "https://id.example/base").unwrap();
        assert_eq!(r.url().as_str(), "https://gw.example/prefix/identity/user?x=1");
        assert_eq!(authorization(&r), Some("Bearer tok"));
        let mut r = request("https://id.example/identity/user");
        let error =
            ClientOptions::new().bearer("tok".into()).apply(&ON_GATEWAY, &mut r, "https://id.example").unwrap_err();
        assert!(error.contains("served by the API gateway") && error.contains("ClientOptions::gateway"), "{error}");
        // Identity operations stay on the base URL.
        let mut r = request("https://id.example/open");
        options.apply(&OPEN, &mut r, "https://id.example").unwrap();
        assert_eq!(r.url().as_str(), "https://id.example/open");
    }

    fn request(url: &str) -> reqwest::Request {
        reqwest::Client::new().get(url).build().unwrap()
    }

    fn authorization(request: &reqwest::Request) -> Option<&str> {
        request.headers().get("authorization").map(|v| v.to_str().unwrap())
    }

    #[test]
    fn credentials_go_only_where_the_security_names_them() {
        let options = ClientOptions::new().bearer("tok".into()).basic("a b", &"p:w/+".into());
        let mut r = request("http://127.0.0.1/open");
        options.apply(&OPEN, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(authorization(&r), None, "no security: nothing sent");
        let mut r = request("http://127.0.0.1/me");
        options.apply(&BEARER, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(authorization(&r), Some("Bearer tok"));
        assert!(r.headers()["authorization"].is_sensitive());
        let mut r = request("http://127.0.0.1/op");
        options.apply(&BOTH, &mut r, "http://127.0.0.1").unwrap();
        // base64("a+b:p%3Aw%2F%2B")
        assert_eq!(authorization(&r), Some("Basic YStiOnAlM0F3JTJGJTJC"));
    }

    #[test]
    fn missing_required_credentials_are_refused_by_name() {
        let mut r = request("http://127.0.0.1/me");
        let error =
            ClientOptions::new().basic("a", &"s".into()).apply(&BEARER, &mut r, "http://127.0.0.1").unwrap_err();
        assert_eq!(
            error,
            "`me` needs an access token (bearer) or a DPoP-bound access token with a DPoP prover; the client has none"
        );
        assert_eq!(authorization(&r), None);
        let mut r = request("http://127.0.0.1/op");
        ClientOptions::new().apply(&BOTH, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(authorization(&r), None, "the empty alternative: no credentials");
    }

    #[test]
    fn endpoints_replace_the_url_and_keep_the_query() {
        let options = ClientOptions::new().endpoint(&OPEN, "https://other.example/x/y?a=1".parse().unwrap());
        let mut r = request("http://127.0.0.1/open?b=2");
        options.apply(&OPEN, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(r.url().as_str(), "https://other.example/x/y?a=1&b=2");
        let mut r = request("http://127.0.0.1/me");
        options.apply(&BEARER, &mut r, "http://127.0.0.1").unwrap_err();
        assert_eq!(r.url().as_str(), "http://127.0.0.1/me", "other operations keep theirs");
    }

    #[test]
    fn debug_shows_no_secret() {
        let options = ClientOptions::new().bearer("tok-secret".into()).basic("id", &"sec-secret".into());
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret") && !shown.contains("tok-"), "{shown}");
        let bound = ClientOptions::new().dpop_token("tok-secret".into()).dpop(Arc::new(Counting(0.into())));
        let shown = format!("{bound:?}");
        assert!(!shown.contains("tok-") && shown.contains("dpop_token: true"), "{shown}");
    }

    struct Counting(std::sync::atomic::AtomicUsize);

    impl ClientAssertion for Counting {
        fn assertion(&self) -> Result<SecretString, String> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(SecretString::from(format!("jwt-{n}")))
        }
    }

    impl DpopProver for Counting {
        fn proof(&self, method: &str, url: &url::Url, token: Option<&SecretString>) -> Result<SecretString, String> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ath = token.map_or("-", |t| t.expose_secret());
            Ok(SecretString::from(format!("proof-{n}-{method}-{}-{ath}", url.path())))
        }

        fn nonce(&self, _: &url::Url, _: &str) {}
    }

    fn form_request(body: &str) -> reqwest::Request {
        reqwest::Client::new().post("http://127.0.0.1/op").body(body.to_owned()).build().unwrap()
    }

    fn body(request: &reqwest::Request) -> &str {
        std::str::from_utf8(request.body().unwrap().as_bytes().unwrap()).unwrap()
    }

    #[test]
    fn a_client_assertion_replaces_basic_and_is_signed_anew_per_attempt() {
        let signer = Arc::new(Counting(0.into()));
        let options = ClientOptions::new().basic("id", &"s".into()).client_assertion(signer);
        let mut r = form_request("grant_type=client_credentials&client_id=id");
        options.apply(&BOTH, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(authorization(&r), None, "no Basic with an assertion");
        let expected = "grant_type=client_credentials&client_id=id&client_assertion_type=\
                        urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=jwt-0";
        assert_eq!(body(&r), expected);
        options.sign(&BOTH, &mut r).unwrap();
        assert_eq!(body(&r), expected.replace("jwt-0", "jwt-1"), "the old assertion is replaced, not repeated");
        let mut r = request("http://127.0.0.1/me");
        options.apply(&BEARER, &mut r, "http://127.0.0.1").unwrap_err();
        assert_eq!(r.body().map(|b| b.as_bytes()), None, "an assertion goes only where Basic would");
    }

    #[test]
    fn a_dpop_token_goes_only_with_a_proof_and_never_as_bearer() {
        let prover = Arc::new(Counting(0.into()));
        let options = ClientOptions::new().dpop_token("at".into()).dpop(prover.clone());
        let mut r = request("http://127.0.0.1/me?x=1");
        options.apply(&BEARER, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(authorization(&r), Some("DPoP at"));
        assert_eq!(r.headers()["dpop"], "proof-0-GET-/me-at");
        assert!(r.headers()["dpop"].is_sensitive());

        let without_prover = ClientOptions::new().dpop_token("at".into());
        let mut r = request("http://127.0.0.1/me");
        let error = without_prover.apply(&BEARER, &mut r, "http://127.0.0.1").unwrap_err();
        assert!(error.contains("DPoP prover") && !error.contains("at "), "{error}");
        assert_eq!(authorization(&r), None, "a DPoP token is never sent as bearer");

        // The token endpoint takes a proof of its own, without a token.
        let options = ClientOptions::new().dpop(prover);
        let mut r = form_request("grant_type=client_credentials");
        options.apply(&BOTH, &mut r, "http://127.0.0.1").unwrap();
        assert_eq!(r.headers()["dpop"], "proof-1-POST-/op--");
        let mut r = request("http://127.0.0.1/open");
        options.apply(&OPEN, &mut r, "http://127.0.0.1").unwrap();
        assert!(r.headers().get("dpop").is_none(), "no proof where neither the operation nor a token asks");
    }
}
