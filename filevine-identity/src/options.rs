//! [`ClientOptions`]: what the hooks apply to a [`Client`](crate::Client)'s
//! requests besides what the generated code builds.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use reqwest::header::HeaderValue;

use crate::{Operation, Scheme, SecretString};

/// Per-client settings the generated client's hooks apply to each request
/// (progenitor's "inner type"; pass it to [`Client::new`](crate::Client::new)).
///
/// - **Endpoints.** A discovery document may place an operation at a URL
///   whose path differs from the spec's (`userinfo_endpoint`,
///   `jwks_uri`, …). [`ClientOptions::endpoint`] sends that operation there
///   instead of to base URL + path.
/// - **Credentials.** progenitor ignores the spec's `security`; the hooks
///   apply it. A bearer token is sent only to operations whose security
///   names the bearer scheme (userinfo), Basic client credentials only to
///   those that accept them (token, revocation, introspection). An
///   operation that requires credentials the options do not hold fails
///   before anything is sent.
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
///      bearer: true, basic: false }",
/// );
/// let client = Client::new("https://identity.example", options);
/// # drop(client);
/// ```
#[derive(Clone, Default)]
pub struct ClientOptions {
    endpoints: BTreeMap<&'static str, url::Url>,
    bearer: Option<SecretString>,
    basic: Option<SecretString>,
}

impl ClientOptions {
    /// No endpoint overrides, no credentials.
    pub fn new() -> Self {
        Self::default()
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
        self.bearer = Some(access_token);
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

    /// Points `request` at the operation's endpoint and adds the
    /// credentials its security asks for.
    pub(crate) fn apply(&self, operation: &Operation, request: &mut reqwest::Request) -> Result<(), String> {
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
        let header = match self.credentials_for(operation)? {
            None => return Ok(()),
            Some((Scheme::Bearer, token)) => format!("Bearer {}", token.expose_secret()),
            Some((Scheme::Basic, pair)) => format!("Basic {}", pair.expose_secret()),
        };
        // The value is a secret: the message names the scheme, never it.
        let mut value = HeaderValue::from_str(&header)
            .map_err(|_| format!("`{}`: the credentials are not a valid header value", operation.id))?;
        value.set_sensitive(true);
        request.headers_mut().insert(reqwest::header::AUTHORIZATION, value);
        Ok(())
    }

    /// The first security alternative these options satisfy: one with
    /// credentials first, else an empty one (no credentials needed).
    fn credentials_for(&self, operation: &Operation) -> Result<Option<(Scheme, &SecretString)>, String> {
        for alternative in operation.security {
            if let [scheme] = alternative {
                let held = match scheme {
                    Scheme::Bearer => self.bearer.as_ref(),
                    Scheme::Basic => self.basic.as_ref(),
                };
                if let Some(secret) = held {
                    return Ok(Some((*scheme, secret)));
                }
            }
        }
        if operation.allows_anonymous() {
            return Ok(None);
        }
        let wanted: Vec<&str> = operation
            .security
            .iter()
            .flat_map(|alternative| alternative.iter())
            .map(|scheme| match scheme {
                Scheme::Bearer => "an access token (bearer)",
                Scheme::Basic => "client credentials (Basic)",
            })
            .collect();
        Err(format!("`{}` needs {}; the client has none", operation.id, wanted.join(" or ")))
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: BTreeMap<_, _> = self.endpoints.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.debug_struct("ClientOptions")
            .field("endpoints", &endpoints)
            .field("bearer", &self.bearer.is_some())
            .field("basic", &self.basic.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Operation = Operation { id: "op", method: "POST", path: "/op", security: &[&[Scheme::Basic], &[]] };
    const BEARER: Operation = Operation { id: "me", method: "GET", path: "/me", security: &[&[Scheme::Bearer]] };
    const OPEN: Operation = Operation { id: "open", method: "GET", path: "/open", security: &[] };

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
        options.apply(&OPEN, &mut r).unwrap();
        assert_eq!(authorization(&r), None, "no security: nothing sent");
        let mut r = request("http://127.0.0.1/me");
        options.apply(&BEARER, &mut r).unwrap();
        assert_eq!(authorization(&r), Some("Bearer tok"));
        assert!(r.headers()["authorization"].is_sensitive());
        let mut r = request("http://127.0.0.1/op");
        options.apply(&BOTH, &mut r).unwrap();
        // base64("a+b:p%3Aw%2F%2B")
        assert_eq!(authorization(&r), Some("Basic YStiOnAlM0F3JTJGJTJC"));
    }

    #[test]
    fn missing_required_credentials_are_refused_by_name() {
        let mut r = request("http://127.0.0.1/me");
        let error = ClientOptions::new().basic("a", &"s".into()).apply(&BEARER, &mut r).unwrap_err();
        assert_eq!(error, "`me` needs an access token (bearer); the client has none");
        assert_eq!(authorization(&r), None);
        let mut r = request("http://127.0.0.1/op");
        ClientOptions::new().apply(&BOTH, &mut r).unwrap();
        assert_eq!(authorization(&r), None, "the empty alternative: no credentials");
    }

    #[test]
    fn endpoints_replace_the_url_and_keep_the_query() {
        let options = ClientOptions::new().endpoint(&OPEN, "https://other.example/x/y?a=1".parse().unwrap());
        let mut r = request("http://127.0.0.1/open?b=2");
        options.apply(&OPEN, &mut r).unwrap();
        assert_eq!(r.url().as_str(), "https://other.example/x/y?a=1&b=2");
        let mut r = request("http://127.0.0.1/me");
        options.apply(&BEARER, &mut r).unwrap_err();
        assert_eq!(r.url().as_str(), "http://127.0.0.1/me", "other operations keep theirs");
    }

    #[test]
    fn debug_shows_no_secret() {
        let options = ClientOptions::new().bearer("tok-secret".into()).basic("id", &"sec-secret".into());
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret") && !shown.contains("tok-"), "{shown}");
    }
}
