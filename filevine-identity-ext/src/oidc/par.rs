//! Pushed authorization requests (RFC 9126): the sign-in's parameters go
//! to the provider from the server, authenticated as at the token
//! endpoint, and the browser carries only a one-time reference to them.

use filevine_identity::operations;
use filevine_identity::types::PushedAuthorizationRequest;
use url::Url;

use super::discovery::ProviderMetadata;
use super::{OidcClient, PendingSignIn, SignInError};
use crate::error::Error;
use crate::jose::DpopKey;

/// Longest `request_uri` accepted: it goes into the browser's URL.
const MAX_REQUEST_URI_BYTES: usize = 2048;

impl OidcClient {
    /// Where to push this sign-in, if anywhere: the provider's endpoint
    /// when it has one and pushing is on; an error when the provider
    /// requires a push this client cannot make.
    pub(super) fn push_endpoint<'m>(&self, metadata: &'m ProviderMetadata) -> Result<Option<&'m Url>, SignInError> {
        match (metadata.pushed_authorization_request_endpoint(), self.inner.pushed_requests) {
            (Some(endpoint), true) => Ok(Some(endpoint)),
            (endpoint, _) if metadata.requires_pushed_authorization_requests() => Err(SignInError::PushRequired {
                reason: if endpoint.is_none() {
                    "its discovery document names no pushed_authorization_request_endpoint"
                } else {
                    "this client has pushed authorization requests turned off"
                },
            }),
            _ => Ok(None),
        }
    }

    /// Pushes `parameters` to `endpoint`; returns the URL to send the
    /// browser to and the DPoP key the code is bound to, if any.
    pub(super) async fn push(
        &self,
        metadata: &ProviderMetadata,
        endpoint: &Url,
        parameters: &[(&'static str, String)],
        pending: &PendingSignIn,
    ) -> Result<(Url, Option<DpopKey>), SignInError> {
        let method = self.auth_method(metadata)?;
        let request = push_request(parameters, self.form_secret(method).map(|s| s.secret().clone()));
        let auth =
            self.client_auth(method, metadata)?.endpoint(&operations::PUSH_AUTHORIZATION_REQUEST, endpoint.clone());
        let mut dpop = self.dpop_key(metadata)?;
        let answer = loop {
            let client = self.wire(metadata, self.with_proofs(auth.clone(), dpop.as_ref()))?;
            match client.push_authorization_request(&request).await {
                Ok(answer) => break answer.into_inner(),
                Err(error) => {
                    let error = self.token_call_error(error, pending.state.expose_secret()).await;
                    match error {
                        SignInError::Token(ref token_error) if self.note_dpop_demand(token_error, dpop.is_some()) => {
                            dpop = self.dpop_key(metadata)?;
                        }
                        other => return Err(other),
                    }
                }
            }
        };
        let request_uri = answer.request_uri;
        if request_uri.is_empty() || request_uri.len() > MAX_REQUEST_URI_BYTES || answer.expires_in <= 0 {
            return Err(Error::MalformedResponse {
                status: Some(201),
                reason:
                    "the pushed authorization response needs a request_uri of at most 2 KiB and a positive expires_in"
                        .into(),
                excerpt: String::new(),
                source: None,
            }
            .into());
        }
        let mut url = metadata.authorization_endpoint().clone();
        url.query_pairs_mut()
            .append_pair("client_id", self.inner.client_id.as_str())
            .append_pair("request_uri", &request_uri);
        tracing::debug!(expires_in_s = answer.expires_in, "pushed the authorization request");
        Ok((url, dpop))
    }
}

/// The pushed form: the authorization request's parameters, and the
/// client secret for `client_secret_post`.
fn push_request(
    parameters: &[(&'static str, String)],
    client_secret: Option<filevine_identity::SecretString>,
) -> PushedAuthorizationRequest {
    let get = |name: &str| parameters.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
    let required = |name: &str| get(name).unwrap_or_default();
    PushedAuthorizationRequest {
        response_type: required("response_type"),
        client_id: required("client_id"),
        client_secret,
        redirect_uri: required("redirect_uri"),
        scope: required("scope"),
        state: required("state").into(),
        nonce: get("nonce").map(Into::into),
        code_challenge: required("code_challenge"),
        code_challenge_method: required("code_challenge_method"),
        prompt: get("prompt"),
        login_hint: get("login_hint"),
        max_age: get("max_age"),
    }
}
