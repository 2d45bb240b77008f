//! The [`ClientHooks`] implementation code generation wires into every
//! operation: `pre` applies the operation's endpoint and security
//! ([`ClientOptions`]), `exec` bounds every response body.

use std::fmt;
use std::future::Future;

use futures_util::TryFutureExt as _;
use futures_util::future::Either;

use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};

use crate::signing::{dpop_nonce, is_resource_nonce_challenge};
use crate::{Client, ClientOptions, Operation};

/// Most bytes of a response body the client reads, for every operation
/// (a token response is about 2 KiB, a discovery document about 3 KiB).
/// A larger body fails with [`ResponseTooLarge`] in the error's source
/// chain instead of being read into memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A response body was longer than the client reads
/// ([`MAX_RESPONSE_BYTES`]). It is the source of the
/// [`Error::ResponseBodyError`](crate::Error::ResponseBodyError) the
/// operation returns; find it by walking [`std::error::Error::source`].
///
/// ```
/// use filevine_identity::ResponseTooLarge;
///
/// let error: Box<dyn std::error::Error> = Box::new(ResponseTooLarge { limit: 65536 });
/// assert_eq!(error.to_string(), "the response body is longer than 65536 bytes");
/// assert!(error.downcast_ref::<ResponseTooLarge>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseTooLarge {
    /// The limit, in bytes.
    pub limit: usize,
}

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the response body is longer than {} bytes", self.limit)
    }
}

impl std::error::Error for ResponseTooLarge {}

/// The generator is configured (`HooksMode::Expected`) to require this
/// implementation: every operation's request goes through `pre` and its
/// response through `exec`.
impl ClientHooks<ClientOptions> for Client {
    /// Applies [`ClientOptions`]: the endpoint the operation was pointed
    /// at, and the credentials its `security` names (nothing else). An
    /// operation that needs credentials the options lack fails here with
    /// `Error::InvalidRequest`, before anything is sent. (progenitor's
    /// `api-version` header is left out at generation.)
    async fn pre<E>(&self, request: &mut reqwest::Request, info: &OperationInfo) -> Result<(), Error<E>> {
        let operation = Operation::find(info.operation_id)
            .ok_or_else(|| Error::InvalidRequest(format!("`{}` is not in the operations table", info.operation_id)))?;
        self.inner().apply(operation, request, self.baseurl()).map_err(Error::InvalidRequest)
    }

    /// Sends the request and hands the response on with a body that stops
    /// with [`ResponseTooLarge`] after [`MAX_RESPONSE_BYTES`]. The generated
    /// code reads whole bodies (`ResponseValue::from_response`); without
    /// this a hostile or broken server could make it buffer without end.
    ///
    /// With a [`DpopProver`](crate::DpopProver), every `DPoP-Nonce` a
    /// server sends is handed to it, and a `use_dpop_nonce` challenge
    /// (RFC 9449 §8, §9) is answered once: the request is signed again
    /// (new proof with the nonce, new client assertion) and repeated. Any
    /// other error is never repeated: a refresh token or a code is never
    /// sent twice.
    ///
    /// Not an `async fn`: without a prover (the common case) the future is
    /// reqwest's own, mapped. An `async fn` would hold the request and
    /// every local of the prover's path (2 KB, in every operation's future),
    /// and copy the request into itself before sending it. The request is
    /// handed to reqwest when `exec` is called rather than at the first
    /// poll; the generated code awaits the future at once.
    fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> {
        let options = self.inner();
        let proving = Operation::find(info.operation_id).and_then(|op| Some((options.prover_for(op)?, op)));
        match proving {
            None => {
                Either::Left(self.client().execute(request).map_ok(|response| bounded(response, MAX_RESPONSE_BYTES)))
            }
            Some((prover, operation)) => Either::Right(Box::pin(exec_proved(self, prover, operation, request))),
        }
    }
}

/// [`ClientHooks::exec`] with a prover: hands it each nonce a server sends,
/// and answers one `use_dpop_nonce` challenge.
async fn exec_proved(
    client: &Client,
    prover: &dyn crate::DpopProver,
    operation: &'static Operation,
    request: reqwest::Request,
) -> reqwest::Result<reqwest::Response> {
    let options = client.inner();
    let repeat = request.try_clone();
    let url = request.url().clone();
    let response = bounded(client.client().execute(request).await?, MAX_RESPONSE_BYTES);
    let Some(nonce) = dpop_nonce(response.headers()) else { return Ok(response) };
    prover.nonce(&url, &nonce);
    let (challenged, response) = asks_for_nonce(response).await?;
    let Some(mut repeat) = repeat.filter(|_| challenged) else { return Ok(response) };
    if options.sign(operation, &mut repeat).is_err() {
        // The first answer stands; it names the challenge.
        return Ok(response);
    }
    let response = bounded(client.client().execute(repeat).await?, MAX_RESPONSE_BYTES);
    if let Some(nonce) = dpop_nonce(response.headers()) {
        prover.nonce(&url, &nonce);
    }
    Ok(response)
}

/// Whether `response` is a `use_dpop_nonce` challenge: a resource
/// server's 401 says so in `WWW-Authenticate` (§9), the token endpoint's
/// 400 in its JSON error (§8). The body is read only for a 400 that came
/// with a nonce, and handed on in a response equal to the one received.
async fn asks_for_nonce(response: reqwest::Response) -> reqwest::Result<(bool, reqwest::Response)> {
    match response.status().as_u16() {
        401 => Ok((is_resource_nonce_challenge(&response), response)),
        400 => {
            let head = head_of(&response);
            let body = response.bytes().await?;
            #[derive(serde::Deserialize)]
            struct OAuthError {
                error: String,
            }
            let challenged = serde_json::from_slice::<OAuthError>(&body).is_ok_and(|e| e.error == "use_dpop_nonce");
            Ok((challenged, rebuild(head, reqwest::Body::from(body))))
        }
        _ => Ok((false, response)),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response's status, version, headers and URL.
fn head_of(response: &reqwest::Response) -> http::response::Builder {
    use reqwest::ResponseBuilderExt as _;

    let mut builder =
        http::Response::builder().status(response.status()).version(response.version()).url(response.url().clone());
    if let Some(headers) = builder.headers_mut() {
        headers.extend(response.headers().iter().map(|(name, value)| (name.clone(), value.clone())));
    }
    builder
}

/// The response `head` describes, with `body`.
fn rebuild(head: http::response::Builder, body: reqwest::Body) -> reqwest::Response {
    match head.body(body) {
        Ok(response) => reqwest::Response::from(response),
        // Status, version and headers came from a valid response; the
        // builder cannot refuse them. Should it, an empty 502 says so.
        Err(_) => reqwest::Response::from(
            http::Response::builder().status(http::StatusCode::BAD_GATEWAY).body(Vec::<u8>::new()).unwrap_or_default(),
        ),
    }
}

/// `response` with its body cut off by an error after `limit` bytes; the
/// status, version, headers and URL are kept.
///
/// A body whose `Content-Length` is within the limit is handed on as it
/// is: hyper reads exactly the declared length and never more (bytes past
/// it are not part of this response), so the bound already holds, and the
/// common case (a token response of a few hundred bytes) pays for no
/// second response and no boxed stream.
pub fn bounded(response: reqwest::Response, limit: usize) -> reqwest::Response {
    if response.content_length().is_some_and(|length| length <= limit as u64) {
        return response;
    }
    let head = head_of(&response);
    let body = futures_util::stream::try_unfold((response, 0_usize), move |(mut response, read)| async move {
        let Some(chunk) = response.chunk().await.map_err(BoxError::from)? else {
            return Ok::<_, BoxError>(None);
        };
        let read = read + chunk.len();
        if read > limit {
            return Err(Box::new(ResponseTooLarge { limit }) as BoxError);
        }
        Ok(Some((chunk, (response, read))))
    });
    rebuild(head, reqwest::Body::wrap_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a prover, `exec` is reqwest's future, mapped: no copy of the
    /// request and no room for the prover's path in every operation's
    /// future (an `async fn` here was 2,064 bytes).
    #[test]
    fn exec_without_a_prover_is_reqwests_future_and_little_more() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _entered = runtime.enter();
        let client = Client::new("http://127.0.0.1:9", ClientOptions::new());
        let request = client.client().post("http://127.0.0.1:9/connect/token").build().unwrap();
        let pending = client.client().execute(request.try_clone().unwrap());
        let exec = client.exec(request, &OperationInfo { operation_id: "get_access_token" });
        assert!(
            std::mem::size_of_val(&exec) <= std::mem::size_of_val(&pending) + 16,
            "exec's future is {} bytes, reqwest's {}",
            std::mem::size_of_val(&exec),
            std::mem::size_of_val(&pending),
        );
    }
}
