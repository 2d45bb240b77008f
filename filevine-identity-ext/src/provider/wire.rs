//! How a provider reaches the token endpoint: the generated client, made on
//! the first request that needs it.
//!
//! Building a provider does no I/O. The HTTP client (whose TLS roots cost
//! milliseconds to load) is built on the first exchange; for a provider an
//! [`OidcClient`](crate::oidc::OidcClient) made, the discovered token endpoint and
//! client authentication are resolved then too, so a process that finds a
//! valid token in its store sends nothing and builds nothing.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use filevine_identity::ClientOptions;

use crate::error::{ConfigError, Error};
use crate::grant::{ClientKeyRef, ClientSecret};
use crate::http::LazyClient;
use filevine_identity::ClientInfo as _;

use crate::jose::{DpopKey, PrivateKeyJwt, Prover};
use crate::time::Clock;

/// What a resolver finds out on the first request: the options of the
/// generated client (endpoint, Basic credentials) and, for
/// `client_secret_post`, the secret that goes in the form.
pub(crate) struct Resolved {
    pub(crate) options: ClientOptions,
    pub(crate) form_secret: Option<ClientSecret>,
}

/// Finds the token endpoint and client authentication (discovery).
pub(crate) type Resolve = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Resolved, Error>> + Send>> + Send + Sync>;

/// The generated client of a provider, made once.
pub(crate) struct Wire {
    http: LazyClient,
    base: String,
    resolve: Option<Resolve>,
    /// `private_key_jwt` for a provider without a resolver: the key (read
    /// on the first request), the client id, and the issuer as audience.
    assertion: Option<(ClientKeyRef, String)>,
    clock: Clock,
    ready: tokio::sync::OnceCell<Ready>,
}

/// The generated client and the form secret it sends with.
pub(crate) struct Ready {
    pub(crate) client: filevine_identity::Client,
    pub(crate) form_secret: Option<ClientSecret>,
    /// The form of a grant whose every request is the same (a PAT, client
    /// credentials), made on the first request rather than on each.
    pub(crate) constant_request: std::sync::OnceLock<Option<filevine_identity::types::TokenRequest>>,
}

impl Ready {
    /// The client, with DPoP proofs signed by `key` when there is one (then
    /// a client per token request, since the proof's key belongs to the
    /// token set; without DPoP the one client, borrowed: a clone copies its
    /// base URL and options on every refresh).
    pub(crate) fn client_for(&self, key: Option<&DpopKey>, clock: &Clock) -> Cow<'_, filevine_identity::Client> {
        match key {
            None => Cow::Borrowed(&self.client),
            Some(key) => Cow::Owned(filevine_identity::Client::new_with_client(
                self.client.baseurl(),
                self.client.client().clone(),
                self.client.inner().clone().dpop(Arc::new(Prover { key: key.clone(), clock: clock.clone() })),
            )),
        }
    }
}

impl Wire {
    /// A client for `base`, or for what `resolve` finds on the first
    /// request.
    pub(crate) fn new(http: LazyClient, base: &str, resolve: Option<Resolve>, clock: Clock) -> Self {
        Self { http, base: base.to_owned(), resolve, assertion: None, clock, ready: tokio::sync::OnceCell::new() }
    }

    /// Authenticates the client with `key` (`private_key_jwt`); the
    /// assertions' audience is the issuer, the authority without a
    /// trailing slash.
    pub(crate) fn with_client_key(mut self, key: ClientKeyRef, client_id: &str) -> Self {
        self.assertion = Some((key, client_id.to_owned()));
        self
    }

    /// The generated client, made now if this is the first request. A
    /// failure (discovery down, no TLS backend) is returned and tried again
    /// on the next request.
    pub(crate) async fn get(&self) -> Result<&Ready, Error> {
        self.ready
            .get_or_try_init(|| async {
                let http = self.http.get()?.clone();
                let (options, form_secret) = match &self.resolve {
                    Some(resolve) => {
                        let resolved = resolve().await?;
                        (resolved.options, resolved.form_secret)
                    }
                    None => (ClientOptions::new(), None),
                };
                let options = match &self.assertion {
                    Some((key, client_id)) => {
                        let key = key.load().map_err(ConfigError::from)?;
                        options.client_assertion(Arc::new(PrivateKeyJwt {
                            key,
                            client_id: client_id.clone(),
                            audience: self.base.trim_end_matches('/').to_owned(),
                            clock: self.clock.clone(),
                        }))
                    }
                    None => options,
                };
                let client = filevine_identity::Client::new_with_client(&self.base, http, options);
                Ok(Ready { client, form_secret, constant_request: std::sync::OnceLock::new() })
            })
            .await
    }

    /// Whether the HTTP client has been built.
    #[cfg(test)]
    pub(crate) fn is_built(&self) -> bool {
        self.http.is_built()
    }
}
