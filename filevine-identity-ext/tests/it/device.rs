//! Device sign-in (RFC 8628) against the crate's test server, on tokio's
//! paused clock: the intervals are waited for without sleeping, and the
//! server records when each poll arrived on the same clock.

use std::time::Duration;

use filevine_identity_ext::oidc::{DeviceAuthorization, DiscoveryError, RedirectUrl};
use filevine_identity_ext::store::{MemoryStore, StoreKey};
use filevine_identity_ext::test_util::{TestServer, TestUser};
use filevine_identity_ext::{ClientId, ClientSecret, Error, OidcClient, Scopes, SignInError};

const CLIENT: &str = "filevine-cli";

async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client(CLIENT, None, &["http://127.0.0.1/callback"], &[]);
    server.set_user(TestUser::new("2002").email("grace@example.com"));
    server
}

fn client(server: &TestServer, secret: Option<&str>) -> OidcClient {
    let mut builder = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new(CLIENT).unwrap())
        .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback").unwrap())
        .scopes("openid email offline_access fv.api.gateway.access".parse::<Scopes>().unwrap())
        .env(|_| None);
    if let Some(secret) = secret {
        builder = builder.client_secret(ClientSecret::new(secret).unwrap());
    }
    builder.build().unwrap()
}

/// Seconds between consecutive polls.
fn gaps(server: &TestServer, device: &DeviceAuthorization) -> Vec<u64> {
    let polls = server.device_polls(&device.user_code);
    polls.windows(2).map(|pair| (pair[1] - pair[0]).as_secs()).collect()
}

/// Runs the wait in a task; the test plays the user meanwhile.
fn wait(
    client: &OidcClient,
    device: &DeviceAuthorization,
) -> tokio::task::JoinHandle<Result<filevine_identity_ext::oidc::SignedIn, SignInError>> {
    let (client, device) = (client.clone(), device.clone());
    tokio::spawn(async move { client.complete_device_sign_in(&device).await })
}

#[tokio::test(start_paused = true)]
async fn approved_after_two_pending_polls_signs_in_and_the_set_is_stored_like_a_browser_sign_in() {
    let server = server().await;
    let client = client(&server, None);
    let device = client.device_authorization().await.unwrap();
    assert_eq!(server.sign_in_requests("device_authorization"), 1);
    assert_eq!(device.interval, Duration::from_secs(5));
    assert_eq!(device.user_code.len(), 9);
    assert!(device.verification_uri.as_str().starts_with(server.url()));
    assert!(device.verification_uri_complete.as_ref().unwrap().as_str().contains(&device.user_code));

    let waiting = wait(&client, &device);
    server.wait_for_token_requests(2).await;
    // Typed the way a person would: lower case, no dash.
    assert!(server.approve_device(&device.user_code.to_lowercase().replace('-', "")));
    let signed_in = waiting.await.unwrap().unwrap();
    assert_eq!(signed_in.claims.sub, "2002");
    assert!(signed_in.token_set.refresh_token.is_some());
    assert_eq!(server.grant_requests("urn:ietf:params:oauth:grant-type:device_code"), 3);
    assert_eq!(gaps(&server, &device), [5, 5], "never sooner than the interval");

    // The same stored session as a browser sign-in.
    let store = std::sync::Arc::new(MemoryStore::new());
    let key = StoreKey::session("device");
    let access = signed_in.token_set.access_token.expose_secret().to_owned();
    client.token_provider(signed_in.token_set).store(store.clone()).store_key(key.clone()).build_saved().await.unwrap();
    let later = client.stored_session(key).store(store).build().unwrap();
    assert_eq!(later.token().await.unwrap().expose_secret(), access);
}

#[tokio::test(start_paused = true)]
async fn slow_down_adds_five_seconds_each_time() {
    let server = server().await;
    server.slow_down_device_polls(2);
    let client = client(&server, None);
    let device = client.device_authorization().await.unwrap();
    let waiting = wait(&client, &device);
    server.wait_for_token_requests(3).await;
    assert!(server.approve_device(&device.user_code));
    waiting.await.unwrap().unwrap();
    assert_eq!(server.grant_requests("urn:ietf:params:oauth:grant-type:device_code"), 4);
    // 5 s, then 10 s after the first slow_down, 15 s after the second.
    assert_eq!(gaps(&server, &device), [10, 15, 15]);
}

#[tokio::test(start_paused = true)]
async fn denied_and_expired_codes_end_the_wait_with_typed_errors() {
    let server = server().await;
    let client = client(&server, None);

    let device = client.device_authorization().await.unwrap();
    let waiting = wait(&client, &device);
    server.wait_for_token_requests(1).await;
    assert!(server.deny_device(&device.user_code));
    let error = waiting.await.unwrap().unwrap_err();
    assert!(matches!(&error, SignInError::Provider { error, .. } if error == "access_denied"), "{error}");
    assert_eq!(server.device_polls(&device.user_code).len(), 2);

    let device = client.device_authorization().await.unwrap();
    let waiting = wait(&client, &device);
    server.wait_for_token_requests(3).await;
    assert!(server.expire_device(&device.user_code));
    let error = waiting.await.unwrap().unwrap_err();
    assert!(matches!(error, SignInError::Expired { .. }), "{error}");
    assert!(error.to_string().contains("start a new sign-in"), "{error}");
    assert_eq!(server.device_polls(&device.user_code).len(), 2);
    assert!(!server.approve_device("ZZZZ-ZZZZ"), "an unknown code");
}

#[tokio::test(start_paused = true)]
async fn the_wait_ends_when_the_codes_expire_and_can_be_cancelled() {
    let server = server().await;
    server.set_device_polling(5, 12);
    let client = client(&server, None);

    // Polls at 5 s and 10 s; the next would be past the 12 s expiry.
    let device = client.device_authorization().await.unwrap();
    let started = tokio::time::Instant::now();
    let error = client.complete_device_sign_in(&device).await.unwrap_err();
    assert!(matches!(error, SignInError::Expired { .. }), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    assert_eq!(server.device_polls(&device.user_code).len(), 2);

    // Dropped after the first poll: nothing polls again.
    server.set_device_polling(5, 600);
    let device = client.device_authorization().await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_secs(7), client.complete_device_sign_in(&device)).await;
    assert!(cancelled.is_err());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(server.device_polls(&device.user_code).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_endpoint_in_discovery_the_error_says_so() {
    let server = server().await;
    server.set_device_flow_advertised(false);
    let error = client(&server, None).device_authorization().await.unwrap_err();
    assert!(
        matches!(error, SignInError::Discovery(DiscoveryError::MissingEndpoint("device_authorization_endpoint"))),
        "{error}"
    );
    assert!(error.to_string().contains("device_authorization_endpoint"), "{error}");
    assert_eq!(server.sign_in_requests("device_authorization"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_client_secret_is_refused_and_the_device_code_never_shows() {
    let server = server().await;
    server.add_sign_in_client("confidential", Some("right-secret"), &["http://127.0.0.1/callback"], &[]);
    let wrong = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new("confidential").unwrap())
        .client_secret(ClientSecret::new("wrong-secret").unwrap())
        .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback").unwrap())
        .env(|_| None)
        .build()
        .unwrap();
    let error = wrong.device_authorization().await.unwrap_err();
    assert!(matches!(error, SignInError::Token(Error::InvalidCredentials { .. })), "{error}");
    assert!(!format!("{error} {error:?}").contains("wrong-secret"));

    let client = client(&server, None);
    let device = client.device_authorization().await.unwrap();
    let device_code = server.device_code(&device.user_code).unwrap();
    let shown = format!("{device:?}");
    assert!(!shown.contains(&device_code), "{shown}");
    server.deny_device(&device.user_code);
    let error = client.complete_device_sign_in(&device).await.unwrap_err();
    assert!(!format!("{error} {error:?}").contains(&device_code));
}

/// A provider that says `interval: 0`: the client still waits a second
/// between polls, not back to back.
#[tokio::test(start_paused = true)]
async fn an_interval_of_zero_polls_once_a_second() {
    let server = server().await;
    server.set_device_polling(0, 600);
    let client = client(&server, None);
    let device = client.device_authorization().await.unwrap();
    assert_eq!(device.interval, Duration::from_secs(1));
    let waiting = wait(&client, &device);
    server.wait_for_token_requests(3).await;
    assert!(server.approve_device(&device.user_code));
    waiting.await.unwrap().unwrap();
    assert_eq!(gaps(&server, &device), [1, 1, 1]);
}

/// With DPoP, every poll of one sign-in is signed with one key: the key the
/// tokens are bound to, whose nonce carries from poll to poll.
#[tokio::test(start_paused = true)]
async fn every_poll_of_a_dpop_sign_in_uses_one_key() {
    use base64::Engine as _;
    let server = server().await;
    let client = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new(CLIENT).unwrap())
        .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback").unwrap())
        .scopes("openid email offline_access fv.api.gateway.access".parse::<Scopes>().unwrap())
        .dpop(true)
        .env(|_| None)
        .build()
        .unwrap();
    let device = client.device_authorization().await.unwrap();
    let waiting = wait(&client, &device);
    server.wait_for_token_requests(3).await;
    assert!(server.approve_device(&device.user_code));
    let signed_in = waiting.await.unwrap().unwrap();
    assert_eq!(signed_in.token_set.access_token.token_type(), "DPoP");
    let keys: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.grant_type == "urn:ietf:params:oauth:grant-type:device_code")
        .map(|r| {
            let proof = r.header("dpop").expect("every poll carries a proof");
            let header = proof.split('.').next().unwrap();
            let header: serde_json::Value =
                serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap())
                    .unwrap();
            header["jwk"].to_string()
        })
        .collect();
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|key| *key == keys[0]), "{keys:?}");
    let bound = signed_in.token_set.access_token.dpop_key().unwrap();
    assert!(keys[0].contains(&bound.public_jwk()["x"].as_str().unwrap().to_owned()));
}
