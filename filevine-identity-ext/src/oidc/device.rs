//! Device sign-in (RFC 8628): for a terminal without a usable browser (an
//! SSH session, a container). The client asks for a user code, the user
//! types it at the verification URI on any other device, and the client
//! polls the token endpoint until the user approves or denies.
//!
//! ```text
//! device_authorization ──► "go to URI, enter WDJB-MJHT" ──► user approves elsewhere
//!        │ DeviceAuthorization (device code kept here)             │
//!        └──► complete_device_sign_in: poll every `interval` ◄─────┘
//!               authorization_pending → wait; slow_down → +5 s;
//!               access_denied / expired_token → error; tokens → ID token checked
//! ```

use std::fmt;
use std::time::Duration;

use filevine_identity::operations;
use filevine_identity::types::{
    DeviceAuthorizationRequest, DeviceAuthorizationResponse, DeviceCodeRequest, DeviceCodeRequestGrantType,
};
use tokio::time::Instant;
use url::Url;

use super::client::{Checks, OidcClient};
use super::discovery::DiscoveryError;
use super::{SignInError, SignedIn};
use crate::error::{Error, ErrorDetails};
use crate::grant::{ClientSecret, ExpiryPolicy};
use crate::jose::DpopKey;
use crate::redact::redact;
use crate::secret::DeviceCode;

/// The interval RFC 8628 §3.2 prescribes when the provider names none.
pub const DEFAULT_DEVICE_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The shortest interval honoured: a provider that says 0 (or less) would
/// have the client poll back to back for the codes' whole life.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval honoured: a provider asking for more would leave
/// the user staring at a code long after approving it.
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The longest a device code is waited for, whatever the provider says.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(30 * 60);

/// A device sign-in in progress: show [`user_code`](Self::user_code) and
/// [`verification_uri`](Self::verification_uri) to the user, then wait in
/// [`OidcClient::complete_device_sign_in`].
///
/// The device code stays inside (`Debug` does not print it); the user code
/// is meant to be shown.
#[derive(Clone)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The code the user types at the verification URI.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: Url,
    /// The verification URI with the code in it (a link or QR code), when
    /// the provider sends one.
    pub verification_uri_complete: Option<Url>,
    /// How long the codes are good for.
    pub expires_in: Duration,
    /// The least time between two polls.
    pub interval: Duration,
    device_code: DeviceCode,
    issued_at: Instant,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl DeviceAuthorization {
    /// Checks the provider's answer: the URIs must be absolute `https://`
    /// URLs (`http://` only on loopback, as for every endpoint), the
    /// lifetime positive. `issued_at` is when the request was sent.
    fn from_response(response: DeviceAuthorizationResponse, issued_at: Instant) -> Result<Self, Error> {
        let uri = |field: &str, value: &str| -> Result<Url, Error> {
            let url = Url::parse(value)
                .map_err(|_| Error::malformed(format!("{field} {:?} is not a URL", redact(value, 200))))?;
            let loopback_http = url.scheme() == "http" && crate::config::region::is_loopback(&url);
            if url.scheme() != "https" && !loopback_http {
                return Err(Error::malformed(format!("{field} {:?} is not an https:// URL", redact(value, 200))));
            }
            Ok(url)
        };
        let verification_uri = uri("verification_uri", &response.verification_uri)?;
        let verification_uri_complete = response
            .verification_uri_complete
            .as_deref()
            .map(|value| uri("verification_uri_complete", value))
            .transpose()?;
        let user_code = response.user_code.trim().to_owned();
        if user_code.is_empty() || user_code.len() > 64 || user_code.chars().any(char::is_control) {
            return Err(Error::malformed("the user_code is empty, too long or not printable"));
        }
        if user_code.chars().any(crate::redact::is_invisible) {
            return Err(Error::malformed(
                "the user_code holds invisible or direction-changing characters (it would show other than it is)",
            ));
        }
        let expires_in =
            u64::try_from(response.expires_in).ok().filter(|s| *s > 0).map(Duration::from_secs).ok_or_else(|| {
                Error::malformed(format!("expires_in {} is not a positive number", response.expires_in))
            })?;
        let interval = match response.interval {
            None => DEFAULT_DEVICE_INTERVAL,
            Some(seconds) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        };
        Ok(Self {
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in: expires_in.min(MAX_EXPIRES_IN),
            interval: interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            device_code: DeviceCode::from_secret(response.device_code),
            issued_at,
        })
    }
}

/// [`DeviceAuthorization::from_response`] for the fuzz target.
#[cfg(fuzzing)]
pub(crate) fn check_for_fuzzing(response: DeviceAuthorizationResponse) -> Result<DeviceAuthorization, Error> {
    DeviceAuthorization::from_response(response, Instant::now())
}

/// What one poll says.
enum Poll {
    Done(crate::grant::TokenSet),
    Pending,
    SlowDown,
}

impl OidcClient {
    /// Starts a device sign-in (RFC 8628 §3.1) for this client's scopes:
    /// the user code and where to enter it. Then call
    /// [`OidcClient::complete_device_sign_in`].
    ///
    /// ```no_run
    /// # async fn run(client: filevine_identity_ext::OidcClient) -> Result<(), Box<dyn std::error::Error>> {
    /// let device = client.device_authorization().await?;
    /// eprintln!("Go to {} and enter {}", device.verification_uri, device.user_code);
    /// let signed_in = client.complete_device_sign_in(&device).await?;
    /// eprintln!("Signed in as {}", signed_in.claims.sub);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SignInError::Discovery`] with
    /// [`DiscoveryError::MissingEndpoint`] when discovery advertises no
    /// `device_authorization_endpoint` (the provider does not offer device
    /// sign-in), [`SignInError::Token`] when the provider refuses the
    /// client or a scope, or answers something unusable.
    pub async fn device_authorization(&self) -> Result<DeviceAuthorization, SignInError> {
        let metadata = self.metadata().await?;
        let endpoint = metadata
            .device_authorization_endpoint()
            .ok_or(DiscoveryError::MissingEndpoint("device_authorization_endpoint"))?
            .clone();
        let method = self.auth_method(&metadata)?;
        let request = DeviceAuthorizationRequest {
            client_id: self.inner.client_id.as_str().to_owned(),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
            scope: Some(self.inner.scopes.to_string()),
        };
        let options = self.client_auth(method, &metadata)?.endpoint(&operations::AUTHORIZE_DEVICE, endpoint);
        let client = self.wire(&metadata, options)?;
        let issued_at = Instant::now();
        let response = match client.authorize_device(&request).await {
            Ok(response) => response.into_inner(),
            Err(error) => {
                let secret = self.inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret);
                let error = crate::http::map_error(error, false, self.inner.request_timeout).await;
                return Err(error.scrub(&[secret]).into());
            }
        };
        let device = DeviceAuthorization::from_response(response, issued_at)?;
        tracing::debug!(
            verification_uri = %device.verification_uri,
            interval_s = device.interval.as_secs(),
            expires_in_s = device.expires_in.as_secs(),
            "started a device sign-in"
        );
        Ok(device)
    }

    /// Waits for the user to answer a device sign-in: polls the token
    /// endpoint with the device code, never sooner than the interval after
    /// the last poll, adding 5 s on every `slow_down` and waiting on
    /// `authorization_pending`, until tokens come (their ID token is
    /// checked as a browser sign-in's is) or the user denies, or the codes
    /// expire. Cancel by dropping the future (e.g. on Ctrl-C, or with
    /// `tokio::time::timeout`); nothing is left behind.
    ///
    /// # Errors
    /// [`SignInError::Provider`] with `access_denied` when the user
    /// declined; [`SignInError::Expired`] when the codes expired
    /// (`expired_token`, or `expires_in` passed); [`SignInError::Token`]
    /// for another refusal or a network failure; ID token failures as in
    /// [`OidcClient::complete_sign_in`].
    pub async fn complete_device_sign_in(&self, device: &DeviceAuthorization) -> Result<SignedIn, SignInError> {
        let deadline = device.issued_at + device.expires_in;
        let expired = || SignInError::Expired { age: device.issued_at.elapsed(), limit: device.expires_in };
        let mut interval = device.interval;
        let mut polls = 0u32;
        // One DPoP key for the whole sign-in: its nonce carries from one
        // poll to the next, and the tokens are bound to it.
        let mut dpop = None;
        loop {
            // Never sooner than the interval: the first poll too (the user
            // cannot have answered yet).
            let next = Instant::now() + interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(expired());
            }
            tokio::time::sleep_until(next).await;
            polls += 1;
            match self.poll_device(device, &mut dpop).await? {
                Poll::Done(token_set) => {
                    let metadata = self.metadata().await?;
                    let id_token = token_set.id_token.as_ref().ok_or(SignInError::MissingIdToken)?;
                    let checks =
                        Checks { access_token: Some(token_set.access_token.expose_secret()), ..Checks::default() };
                    let claims = self.verify_with(&metadata, id_token, checks).await?;
                    tracing::info!(sub = %claims.sub, polls, "signed in with a device code");
                    return Ok(SignedIn { token_set, claims });
                }
                Poll::Pending => {}
                Poll::SlowDown => {
                    interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    tracing::debug!(interval_s = interval.as_secs(), "the provider asked to poll more slowly");
                }
            }
        }
    }

    /// One poll of the token endpoint with the device code.
    async fn poll_device(&self, device: &DeviceAuthorization, dpop: &mut Option<DpopKey>) -> Result<Poll, SignInError> {
        let metadata = self.metadata().await?;
        let method = self.auth_method(&metadata)?;
        let request = DeviceCodeRequest {
            grant_type: DeviceCodeRequestGrantType::UrnIetfParamsOauthGrantTypeDeviceCode,
            device_code: device.device_code.secret().clone(),
            client_id: self.inner.client_id.as_str().to_owned(),
            client_secret: self.form_secret(method).map(|s| s.secret().clone()),
        };
        // The sign-in's key, made at the first poll that needs one (DPoP
        // asked for, or demanded by the provider at an earlier poll).
        if dpop.is_none() {
            *dpop = self.dpop_key(&metadata)?;
        }
        let dpop = dpop.clone();
        let options = self.with_proofs(self.client_auth(method, &metadata)?, dpop.as_ref());
        let client = self.wire(&metadata, options)?;
        let result = crate::grant::exchange::exchange(
            &client,
            &request.into(),
            false,
            &ExpiryPolicy::default(),
            &self.inner.clock,
            self.inner.request_timeout,
            dpop.as_ref(),
        )
        .await;
        // A provider that requires DPoP: the next poll carries a proof.
        if let Err(error) = &result
            && self.note_dpop_demand(error, dpop.is_some())
        {
            return Ok(Poll::Pending);
        }
        let secrets = [
            device.device_code.expose_secret(),
            self.inner.client_secret.as_ref().map_or("", ClientSecret::expose_secret),
        ];
        match result.map_err(|e| e.scrub(&secrets)) {
            Ok(set) => Ok(Poll::Done(set)),
            Err(Error::InvalidCredentials { status, details }) => match details.code.as_deref() {
                Some("authorization_pending") => Ok(Poll::Pending),
                Some("slow_down") => Ok(Poll::SlowDown),
                Some("expired_token") => {
                    Err(SignInError::Expired { age: device.issued_at.elapsed(), limit: device.expires_in })
                }
                Some("access_denied") => Err(SignInError::Provider {
                    error: "access_denied".to_owned(),
                    description: details.description.as_deref().map(|d| redact(d, 300)),
                }),
                _ => Err(Error::InvalidCredentials { status, details: ErrorDetails::clone(&details) }.into()),
            },
            Err(other) => Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(uri: &str, expires_in: i64, interval: Option<i64>) -> DeviceAuthorizationResponse {
        serde_json::from_value(serde_json::json!({
            "device_code": "device-secret",
            "user_code": "WDJB-MJHT",
            "verification_uri": uri,
            "expires_in": expires_in,
            "interval": interval,
        }))
        .unwrap()
    }

    #[test]
    fn answers_are_checked_and_bounded() {
        let now = Instant::now();
        let ok = DeviceAuthorization::from_response(response("https://id.example/device", 600, None), now).unwrap();
        assert_eq!(ok.interval, DEFAULT_DEVICE_INTERVAL);
        assert_eq!(ok.expires_in, Duration::from_secs(600));
        assert!(!format!("{ok:?}").contains("device-secret"));
        let long = DeviceAuthorization::from_response(response("https://id.example/d", 86_400, Some(3600)), now);
        let long = long.unwrap();
        assert_eq!((long.expires_in, long.interval), (MAX_EXPIRES_IN, MAX_INTERVAL));
        let bad = [
            ("http://id.example/device", 600, "verification_uri \"http://id.example/device\" is not an https:// URL"),
            ("not a url", 600, "verification_uri \"not a url\" is not a URL"),
            ("https://id.example/d", 0, "expires_in 0 is not a positive number"),
        ];
        for (uri, expires_in, says) in bad {
            let error = DeviceAuthorization::from_response(response(uri, expires_in, None), now).unwrap_err();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{uri}: {error}");
            assert!(error.to_string().contains(says), "{uri}: {error}");
        }
        let mut control = response("https://id.example/d", 600, None);
        control.user_code = "AB\u{1b}[2J".into();
        let error = DeviceAuthorization::from_response(control, now).unwrap_err();
        assert!(error.to_string().contains("the user_code is empty, too long or not printable"), "{error}");
        // Shown other than it is: a right-to-left override, a zero-width
        // space, an isolate, a BOM.
        for code in ["WDJB\u{202E}TJHM", "WDJB\u{200B}-MJHT", "\u{2067}WDJB-MJHT", "WDJB-MJHT\u{FEFF}X"] {
            let mut hidden = response("https://id.example/d", 600, None);
            hidden.user_code = code.into();
            let error = DeviceAuthorization::from_response(hidden, now).unwrap_err();
            assert!(error.to_string().contains("invisible or direction-changing"), "{code:?}: {error}");
        }
    }

    /// RFC 8628 §3.2: 5 s when absent. An interval of 0 or less would make
    /// the client poll back to back: it is 1 s at least.
    #[test]
    fn the_polling_interval_has_a_floor() {
        let now = Instant::now();
        for (interval, expected) in [(Some(0), 1), (Some(-5), 1), (Some(1), 1), (Some(7), 7), (None, 5)] {
            let device =
                DeviceAuthorization::from_response(response("https://id.example/d", 600, interval), now).unwrap();
            assert_eq!(device.interval, Duration::from_secs(expected), "{interval:?}");
        }
    }
}
