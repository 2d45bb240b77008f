//! [`OidcClient`]: the type, its configuration and what every call of it
//! shares (discovery, ID token checks, client authentication, the
//! generated client for the discovered endpoints).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use filevine_identity::{ClientOptions, operations};

use super::claims::IdTokenClaims;
use super::client_auth::{ClientAuthMethod, assertion_key};
use super::discovery::{DiscoveryCache, DiscoveryError, ProviderMetadata};
use super::error::SignInError;
use super::id_token::{self, Expectations};
use super::jwks::JwksCache;
use super::signin::RedirectUrl;
use crate::config::region::Region;
use crate::config::scope::Scopes;
use crate::error::{ConfigError, Error};
use crate::grant::{ClientId, ClientKeyRef, ClientSecret, IdToken};
use crate::http::LazyClient;
use crate::jose::{ClientKey, DpopKey, PrivateKeyJwt, Prover};
use crate::secret::Nonce;

/// What an ID token is checked against beyond the provider and the client:
/// what the sign-in it answers asked for and received.
#[derive(Default)]
pub(super) struct Checks<'a> {
    pub(super) nonce: Option<&'a Nonce>,
    /// The access token issued with it (`at_hash`).
    pub(super) access_token: Option<&'a str>,
    /// The `max_age` the sign-in requested (`auth_time`).
    pub(super) max_age: Option<u64>,
}

/// A partner app's OpenID Connect client for Filevine: sends users to sign
/// in, completes the callback, validates ID tokens, and hands the tokens to
/// a [`TokenProvider`](crate::provider::TokenProvider) that keeps them fresh.
///
/// Cheap to clone; discovery and signing keys are fetched on first use and
/// cached (1 hour by default).
///
/// ```no_run
/// use filevine_identity_ext::oidc::{AuthorizationOptions, RedirectUrl};
/// use filevine_identity_ext::{ClientId, ClientSecret, OidcClient, Region};
///
/// # async fn run(callback_url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let client = OidcClient::builder()
///     .region(Region::Us)
///     .client_id(ClientId::new("partner-app")?)
///     .client_secret(ClientSecret::new(std::env::var("FILEVINE_CLIENT_SECRET")?)?)
///     .redirect_uri(RedirectUrl::new("https://localhost:7059/signin-oidc")?)
///     .build()?;
///
/// // /login: send the user to Filevine, keep `pending` in the server-side session.
/// let request = client.authorization_request(AuthorizationOptions::default()).await?;
/// let (redirect_to, pending) = (request.url, request.pending);
/// # drop(redirect_to);
///
/// // /signin-oidc: check the callback, exchange the code, validate the ID token.
/// let signed_in = client.complete_sign_in(callback_url, pending).await?;
/// println!("hello {}", signed_in.claims.sub);
///
/// // Access tokens from now on, refreshed (and the refresh token rotated) as needed.
/// let provider = client.token_provider(signed_in.token_set).build()?;
/// let token = provider.token().await?;
/// # drop(token);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OidcClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) region: Region,
    pub(super) client_id: ClientId,
    pub(super) client_secret: Option<ClientSecret>,
    /// `private_key_jwt` instead of a secret: the key, or the file it is
    /// read from on the first request that authenticates the client.
    pub(super) client_key: Option<ClientKeyRef>,
    /// The key once read (a file is read once).
    pub(super) loaded_key: Mutex<Option<ClientKey>>,
    /// Ask for DPoP-bound tokens at sign-in.
    pub(super) dpop: bool,
    /// The provider refused a code exchange without a DPoP proof: later
    /// sign-ins send one from the start.
    pub(super) dpop_demanded: AtomicBool,
    /// Push authorization requests when the provider offers it (RFC 9126).
    pub(super) pushed_requests: bool,
    pub(super) redirect_uri: RedirectUrl,
    pub(super) post_logout_redirect_uri: Option<RedirectUrl>,
    pub(super) scopes: Scopes,
    pub(super) auth_method: Option<ClientAuthMethod>,
    pub(super) leeway: Duration,
    pub(super) sign_in_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) http: LazyClient,
    /// ID token times and sign-in ages are read from it (the injected
    /// source in tests).
    pub(super) clock: crate::time::Clock,
    pub(super) discovery: DiscoveryCache,
    pub(super) jwks: JwksCache,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("OidcClient")
            .field("region", &inner.region)
            .field("client_id", &inner.client_id)
            .field("client_secret", &inner.client_secret)
            .field("client_key", &inner.client_key)
            .field("dpop", &inner.dpop)
            .field("redirect_uri", &inner.redirect_uri.as_str())
            .field("scopes", &inner.scopes.to_string())
            .field("auth_method", &inner.auth_method)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// The region (identity authority) this client signs in with.
    pub fn region(&self) -> &Region {
        &self.inner.region
    }

    /// The redirect URI sign-ins come back to. An application served over
    /// `https://` (this URI's scheme) marks its cookies `Secure`.
    pub fn redirect_uri(&self) -> &RedirectUrl {
        &self.inner.redirect_uri
    }

    /// The provider's checked metadata, from the cache or a fresh fetch.
    ///
    /// # Errors
    /// [`DiscoveryError`] when it cannot be fetched or fails a check.
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, DiscoveryError> {
        self.inner.discovery.get(&self.inner.http, self.inner.request_timeout).await
    }

    pub(super) async fn verify_with(
        &self,
        metadata: &ProviderMetadata,
        id_token: &IdToken,
        checks: Checks<'_>,
    ) -> Result<IdTokenClaims, SignInError> {
        let parsed = id_token::parse(id_token.expose_secret())?;
        parsed.check_header(metadata.id_token_algorithms())?;
        let key = self.signing_key(metadata, &parsed).await?;
        let expect = self.expectations(metadata, checks);
        Ok(parsed.verify(&key, &expect, self.inner.clock.unix_seconds())?)
    }

    /// The provider's key that signed `parsed` (the JWKS, fetched again for
    /// a `kid` it does not hold yet). Call it after the header checks.
    pub(super) async fn signing_key(
        &self,
        metadata: &ProviderMetadata,
        parsed: &id_token::Parsed<'_>,
    ) -> Result<jsonwebtoken::DecodingKey, id_token::IdTokenError> {
        self.inner.jwks.key(&self.inner.http, metadata.jwks_uri(), parsed.kid(), parsed.alg()).await
    }

    /// What a token of this provider must be for this client (issuer,
    /// audience, algorithms, leeway), with `checks` of a sign-in's.
    pub(super) fn expectations<'a>(&'a self, metadata: &'a ProviderMetadata, checks: Checks<'a>) -> Expectations<'a> {
        Expectations {
            issuer: metadata.issuer(),
            client_id: self.inner.client_id.as_str(),
            algorithms: metadata.id_token_algorithms(),
            leeway: self.inner.leeway,
            nonce: checks.nonce,
            access_token: checks.access_token,
            max_age: checks.max_age,
        }
    }

    pub(super) fn auth_method(&self, metadata: &ProviderMetadata) -> Result<ClientAuthMethod, SignInError> {
        let inner = &self.inner;
        let offered = &metadata.document().token_endpoint_auth_methods_supported;
        let method = match inner.auth_method {
            Some(method) => method,
            None if inner.client_key.is_some() => ClientAuthMethod::choose_with_key(offered)?,
            None => ClientAuthMethod::choose(offered, inner.client_secret.is_some())?,
        };
        match method {
            ClientAuthMethod::ClientSecretPost | ClientAuthMethod::ClientSecretBasic
                if inner.client_secret.is_none() =>
            {
                Err(ConfigError::SecretRequired { method: method.as_str() }.into())
            }
            ClientAuthMethod::PrivateKeyJwt if inner.client_key.is_none() => {
                Err(ConfigError::ClientAuth { reason: "private_key_jwt needs a client key" }.into())
            }
            _ => Ok(method),
        }
    }

    /// The client key, read from its file the first time (a failure is
    /// not kept: the next request reads again).
    fn client_key(&self) -> Result<ClientKey, ConfigError> {
        let mut loaded = self.inner.loaded_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = &*loaded {
            return Ok(key.clone());
        }
        let key = self.inner.client_key.as_ref().ok_or(ConfigError::ClientAuth { reason: "no client key" })?.load()?;
        *loaded = Some(key.clone());
        Ok(key)
    }

    /// A new key for a DPoP-bound token request, when this client asks for
    /// DPoP or the provider demanded it; checked against the algorithms
    /// the provider lists for proofs (the SDK signs ES256).
    pub(super) fn dpop_key(&self, metadata: &ProviderMetadata) -> Result<Option<DpopKey>, SignInError> {
        if !self.inner.dpop && !self.inner.dpop_demanded.load(Ordering::Relaxed) {
            return Ok(None);
        }
        check_dpop_algorithms(&metadata.document().dpop_signing_alg_values_supported)?;
        Ok(Some(DpopKey::generate().map_err(ConfigError::from)?))
    }

    /// Remembers that the provider refused a token request without a DPoP
    /// proof; tells whether this is news (the caller then retries once).
    pub(super) fn note_dpop_demand(&self, error: &Error, proof_sent: bool) -> bool {
        if proof_sent || !error.demands_dpop() {
            return false;
        }
        tracing::info!("the identity provider requires DPoP; binding tokens to a new key");
        self.inner.dpop_demanded.store(true, Ordering::Relaxed);
        true
    }

    /// Whether tokens are DPoP-bound (asked for, or demanded by the
    /// provider).
    pub(super) fn uses_dpop(&self) -> bool {
        self.inner.dpop || self.inner.dpop_demanded.load(Ordering::Relaxed)
    }

    /// The client secret to put in a form body: only for
    /// `client_secret_post` (Basic sends it in the header, public clients
    /// have none).
    pub(super) fn form_secret(&self, method: ClientAuthMethod) -> Option<&ClientSecret> {
        match method {
            ClientAuthMethod::ClientSecretPost => self.inner.client_secret.as_ref(),
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::PrivateKeyJwt | ClientAuthMethod::None => None,
        }
    }

    /// The typed error of a revocation or introspection call, with the
    /// token it carried and the client secret scrubbed from its text.
    pub(super) async fn token_call_error(
        &self,
        error: filevine_identity::Error<filevine_identity::types::TokenError>,
        token: &str,
    ) -> SignInError {
        let secret = self.inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret);
        let error = crate::http::map_error(error, false, self.inner.request_timeout).await;
        error.scrub(&[token, secret]).into()
    }

    /// The generated client for this provider: `options` plus the
    /// discovered token endpoint, on the SDK's HTTP client.
    pub(super) fn wire(
        &self,
        metadata: &ProviderMetadata,
        options: ClientOptions,
    ) -> Result<filevine_identity::Client, Error> {
        let options = options.endpoint(&operations::GET_ACCESS_TOKEN, metadata.token_endpoint().clone());
        let http = self.inner.http.get()?.clone();
        Ok(filevine_identity::Client::new_with_client(metadata.token_base(), http, options))
    }

    /// What the generated client adds for the client authentication
    /// `method`: Basic credentials for `client_secret_basic`, a signer of
    /// fresh assertions (audience: the issuer) for `private_key_jwt`,
    /// nothing otherwise (the form carries them, or a public client has
    /// none).
    pub(super) fn client_auth(
        &self,
        method: ClientAuthMethod,
        metadata: &ProviderMetadata,
    ) -> Result<ClientOptions, SignInError> {
        let inner = &self.inner;
        match method {
            ClientAuthMethod::ClientSecretBasic => {
                let secret = inner
                    .client_secret
                    .as_ref()
                    .ok_or(ConfigError::SecretRequired { method: "client_secret_basic" })?;
                Ok(ClientOptions::new().basic(inner.client_id.as_str(), secret.secret()))
            }
            ClientAuthMethod::PrivateKeyJwt => {
                let offered = &metadata.document().token_endpoint_auth_signing_alg_values_supported;
                let key = assertion_key(self.client_key()?, offered)?;
                Ok(ClientOptions::new().client_assertion(Arc::new(PrivateKeyJwt {
                    key,
                    client_id: inner.client_id.as_str().to_owned(),
                    audience: metadata.issuer().to_owned(),
                    clock: inner.clock.clone(),
                })))
            }
            ClientAuthMethod::ClientSecretPost | ClientAuthMethod::None => Ok(ClientOptions::new()),
        }
    }

    /// `options` with DPoP proofs signed by `key`, when there is one.
    pub(super) fn with_proofs(&self, options: ClientOptions, key: Option<&DpopKey>) -> ClientOptions {
        match key {
            Some(key) => options.dpop(Arc::new(Prover { key: key.clone(), clock: self.inner.clock.clone() })),
            None => options,
        }
    }

    /// The `client_id` form field: with Basic the header names the client.
    pub(super) fn form_client_id(&self, method: ClientAuthMethod) -> Option<String> {
        (method != ClientAuthMethod::ClientSecretBasic).then(|| self.inner.client_id.as_str().to_owned())
    }
}

/// The SDK signs DPoP proofs with ES256: a provider that lists the
/// algorithms it takes (`dpop_signing_alg_values_supported`) must list it.
fn check_dpop_algorithms(offered: &[String]) -> Result<(), DiscoveryError> {
    if offered.is_empty() || offered.iter().any(|alg| alg == "ES256") {
        Ok(())
    } else {
        Err(DiscoveryError::Unsupported { what: "ES256 DPoP proofs", offered: offered.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dpop_needs_es256_among_what_the_provider_lists() {
        let list = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert!(super::check_dpop_algorithms(&[]).is_ok());
        assert!(super::check_dpop_algorithms(&list(&["EdDSA", "ES256"])).is_ok());
        let err = super::check_dpop_algorithms(&list(&["PS256", "EdDSA"])).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("ES256 DPoP proofs") && shown.contains("PS256"), "{shown}");
    }
}
