//! The whole authorization code flow against the crate's own test server
//! (feature `test-util`): what a consumer runs in a plain `cargo test`,
//! without Node. The same flow runs against `oidc-provider` in `oidc.rs`.

use filevine_identity_ext::oidc::{AuthorizationOptions, ClientAuthMethod, RedirectUrl};
use std::sync::Arc;

use filevine_identity_ext::error::RefusedIdToken;
use filevine_identity_ext::oidc::{IdTokenError, LogoutError};
use filevine_identity_ext::store::{MemoryStore, StoreKey};
use filevine_identity_ext::test_util::{
    Failure, IdTokenAlgorithm, PushedRequests, RefreshedIdToken, TestServer, TestUser,
};
use filevine_identity_ext::{AccessToken, ClientId, ClientSecret, Error, OidcClient, Scopes, SignInError};

const CALLBACK: &str = "http://127.0.0.1:7059/signin-oidc";
const LOGGED_OUT: &str = "http://127.0.0.1:7059/logout/callback";

fn client(server: &TestServer, id: &str, secret: Option<&str>, method: Option<ClientAuthMethod>) -> OidcClient {
    let mut builder = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new(id).unwrap())
        .redirect_uri(RedirectUrl::new(CALLBACK).unwrap())
        .post_logout_redirect_uri(RedirectUrl::new(LOGGED_OUT).unwrap())
        .scopes(Scopes::partner_app())
        .env(|_| None);
    if let Some(secret) = secret {
        builder = builder.client_secret(ClientSecret::new(secret).unwrap());
    }
    if let Some(method) = method {
        builder = builder.auth_method(method);
    }
    builder.build().unwrap()
}

fn no_redirects() -> reqwest::Client {
    crate::support::http_no_redirects()
}

/// The browser's part: the server approves at once; the redirect's target.
async fn follow(url: &url::Url) -> reqwest::Response {
    no_redirects().get(url.clone()).send().await.unwrap()
}

async fn sign_in(client: &OidcClient) -> Result<filevine_identity_ext::oidc::SignedIn, SignInError> {
    let request = client.authorization_request(AuthorizationOptions::default()).await?;
    let answer = follow(&request.url).await;
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CALLBACK), "{location}");
    client.complete_sign_in(&location, request.pending).await
}

#[tokio::test]
async fn the_whole_flow_runs_against_the_test_server() {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    server.set_user(TestUser::new("1001").email("ada@example.com").name("Ada").claim("tenant", "acme"));
    let client = client(&server, "partner-app", Some("partner-secret"), None);

    // Sign-in: PKCE and the code checked by the server, the ID token
    // (RS512, nonce, aud, azp, iss, at_hash) by the SDK.
    let signed_in = sign_in(&client).await.unwrap();
    assert_eq!(signed_in.claims.sub, "1001");
    assert_eq!(signed_in.claims.audiences, ["partner-app"]);
    assert_eq!(signed_in.claims.azp.as_deref(), Some("partner-app"));
    assert_eq!(signed_in.claims.iss, server.url());
    assert_eq!(server.sign_in_requests("authorization"), 1);
    assert_eq!(server.grant_requests("authorization_code"), 1);
    assert_eq!(server.sign_in_requests("jwks"), 1);

    // Userinfo: the claims the scopes allow, for the same subject.
    let access = signed_in.token_set.access_token.clone();
    let info = client.userinfo(&access, "1001").await.unwrap();
    assert_eq!(info.profile.email.as_deref(), Some("ada@example.com"));
    assert_eq!(info.additional["tenant"], "acme");

    // Introspection: active, for whom.
    let answer = client.introspect(access.expose_secret()).await.unwrap();
    assert!(answer.is_active_at(std::time::SystemTime::now()));
    assert_eq!((answer.subject.as_deref(), answer.client_id.as_deref()), (Some("1001"), Some("partner-app")));

    // Refresh: rotation, and a new ID token that validates.
    let provider = client.token_provider(signed_in.token_set.clone()).build().unwrap();
    provider.invalidate();
    let refreshed = provider.token().await.unwrap();
    assert!(!refreshed.same_token(&access));
    assert_eq!(server.grant_requests("refresh_token"), 1);
    let id_token = provider.latest_id_token().unwrap();
    assert_eq!(client.verify_id_token(&id_token, None).await.unwrap().sub, "1001");

    // Sign out: both tokens revoked; userinfo refuses, introspection says inactive.
    client.sign_out(&provider).await.unwrap();
    assert_eq!(server.sign_in_requests("revocation"), 2);
    assert_eq!(server.revoked_refresh_tokens(), 1);
    let err = client.userinfo(&refreshed, "1001").await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { status: 401, .. })), "{err}");
    assert!(!client.introspect(refreshed.expose_secret()).await.unwrap().active);

    // End session: back to the registered post-logout URI with the state.
    let end = client.end_session_url(Some(&id_token)).await.unwrap();
    let answer = follow(&end.url).await;
    assert_eq!(answer.status(), 302);
    let back = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(LOGGED_OUT));
    assert_eq!(back.query_pairs().find(|(k, _)| k == "state").unwrap().1, end.state.expose_secret());
    assert_eq!(server.sign_in_requests("end_session"), 1);
    assert_eq!(server.sign_in_requests("userinfo"), 2);
    assert_eq!(server.sign_in_requests("introspection"), 2);
}

#[tokio::test]
async fn rs256_basic_and_public_clients() {
    let server = TestServer::start().await.unwrap();
    server.set_id_token_algorithm(IdTokenAlgorithm::Rs256);
    server.add_sign_in_client("basic-app", Some("basic-secret"), &[CALLBACK], &[]);
    server.add_sign_in_client("cli", None, &[CALLBACK], &[]);

    let basic = client(&server, "basic-app", Some("basic-secret"), Some(ClientAuthMethod::ClientSecretBasic));
    let signed_in = sign_in(&basic).await.unwrap();
    let header = signed_in.token_set.id_token.as_ref().unwrap().expose_secret().split('.').next().unwrap().to_owned();
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    assert!(String::from_utf8(header).unwrap().contains("\"RS256\""));
    let request = server.requests().into_iter().find(|r| r.grant_type == "authorization_code").unwrap();
    assert!(request.header("authorization").unwrap().starts_with("Basic "));
    assert_eq!(request.field("client_secret"), None, "the secret only in the header");

    // A public client (no secret): PKCE alone.
    let public = client(&server, "cli", None, Some(ClientAuthMethod::None));
    assert_eq!(sign_in(&public).await.unwrap().claims.sub, TestUser::default().subject());
    // A wrong secret is refused at the token endpoint.
    let wrong = client(&server, "basic-app", Some("wrong"), Some(ClientAuthMethod::ClientSecretBasic));
    let err = sign_in(&wrong).await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { .. })), "{err}");
}

#[tokio::test]
async fn authorization_errors_and_unregistered_redirects() {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[]);
    let client = client(&server, "partner-app", Some("partner-secret"), None);

    // A configured error comes back to the client, with the state: typed.
    server.fail_next_authorization("access_denied", "the user declined");
    let err = sign_in(&client).await.unwrap_err();
    assert!(matches!(&err, SignInError::Provider { error, .. } if error == "access_denied"), "{err:?}");
    assert_eq!(server.grant_requests("authorization_code"), 0);

    // A redirect URI the client did not register: a page, never a redirect.
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let mut url = request.url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" { "http://127.0.0.1:9/evil".to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let answer = follow(&url).await;
    assert_eq!(answer.status(), 400);
    assert!(answer.headers().get("location").is_none());

    // Without PKCE: an error redirect, as the spec's provider requires S256.
    let stripped: Vec<(String, String)> = request
        .url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = request.url.clone();
    url.query_pairs_mut().clear().extend_pairs(stripped);
    let location = follow(&url).await.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("error=invalid_request"), "{location}");
}

#[tokio::test]
async fn the_discovery_document_advertises_exactly_what_is_served() {
    let server = TestServer::start().await.unwrap();
    let document: serde_json::Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", server.url())).await.unwrap().json().await.unwrap();
    let http = no_redirects();
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "jwks_uri",
    ] {
        let url = document[field].as_str().unwrap_or_else(|| panic!("{field} advertised"));
        let get = http.get(url).send().await.unwrap().status().as_u16();
        let post = http.post(url).form(&[("token", "x")]).send().await.unwrap().status().as_u16();
        // Each one is served (not 404 or 405) by one of the two methods.
        assert!([get, post].iter().any(|s| *s != 404 && *s != 405), "{field}: GET {get}, POST {post}");
    }
    assert_eq!(document["authorization_response_iss_parameter_supported"], true);
    // Through the generated client's discovery schema and the SDK's checks.
    let metadata = filevine_identity_ext::oidc::ProviderMetadata::from_document(
        serde_json::from_value(document.clone()).unwrap(),
        server.url(),
    )
    .unwrap();
    assert_eq!(metadata.id_token_algorithms(), ["RS512", "RS256"]);
}

/// A new operation in the spec fails this test until the test server
/// serves it (its route goes in `src/test_util/mod.rs`), on the host the
/// spec names for it (the identity server, or its gateway stub).
#[tokio::test]
async fn the_test_server_serves_every_operation_of_the_spec() {
    let server = TestServer::start().await.unwrap();
    let http = no_redirects();
    let region = server.region();
    for operation in filevine_identity::operations::ALL {
        let base = match operation.host {
            filevine_identity::Host::Gateway => region.gateway_url().unwrap(),
            _ => server.url(),
        };
        let url = format!("{base}{}", operation.path);
        let method = reqwest::Method::from_bytes(operation.method.as_bytes()).unwrap();
        let status = http.request(method, &url).send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405, "{} {}: {status}", operation.method, operation.path);
    }
}

/// ID token times and a pending sign-in's age are read from the injected
/// clock: a test moves it past an ID token's `exp` or the sign-in timeout
/// instead of sleeping.
#[tokio::test]
async fn id_token_expiry_and_sign_in_age_follow_the_injected_clock() {
    use filevine_identity_ext::oidc::IdTokenError;
    use filevine_identity_ext::time::TimeSource;
    use std::time::Duration;

    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    // Ahead of the test server's clock, which stamps the ID token's `iat`.
    let clock = crate::support::clock_ahead();
    let client = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new("partner-app").unwrap())
        .client_secret(ClientSecret::new("partner-secret").unwrap())
        .redirect_uri(filevine_identity_ext::oidc::RedirectUrl::new(CALLBACK).unwrap())
        .time_source(clock.clone())
        .env(|_| None)
        .build()
        .unwrap();

    let signed_in = sign_in(&client).await.unwrap();
    let id_token = signed_in.token_set.id_token.clone().unwrap();
    client.verify_id_token(&id_token, None).await.unwrap();
    // One second past `exp` and the 5 s leeway, by the injected clock.
    let now = clock.wall().as_secs();
    assert!(signed_in.claims.exp > now, "the token is still valid by the injected clock");
    clock.advance(Duration::from_secs(signed_in.claims.exp + 5 + 1 - now));
    let error = client.verify_id_token(&id_token, None).await.unwrap_err();
    assert!(matches!(error, SignInError::IdToken(IdTokenError::Expired { .. })), "{error}");

    // A sign-in started, then left for longer than the 15-minute timeout.
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = follow(&request.url).await.headers()["location"].to_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(15 * 60 + 1));
    let error = client.complete_sign_in(&callback, request.pending).await.unwrap_err();
    assert!(matches!(error, SignInError::Expired { .. }), "{error}");
}

/// A provider a sign-in made, sharing a store under one session key, after
/// the server was told how to alter the ID token of the next refresh.
async fn refresh_with(alteration: RefreshedIdToken) -> (TestServer, Result<AccessToken, Error>, Arc<MemoryStore>) {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    server.set_user(TestUser::new("1001"));
    let client = client(&server, "partner-app", Some("partner-secret"), None);
    let signed_in = sign_in(&client).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let provider = client
        .token_provider(signed_in.token_set)
        .store(store.clone())
        .store_key(StoreKey::session("session-1"))
        .build_saved()
        .await
        .unwrap();
    server.set_refreshed_id_token(alteration);
    provider.invalidate();
    let outcome = provider.token().await;
    assert_eq!(server.grant_requests("refresh_token"), 1);
    (server, outcome, store)
}

#[tokio::test]
async fn a_refreshed_id_token_of_the_same_user_passes() {
    let (server, outcome, _) = refresh_with(RefreshedIdToken::AsIssued).await;
    let token = outcome.unwrap();
    assert!(server.is_valid_access_token(token.expose_secret()));
    assert_eq!(server.sign_in_requests("revocation"), 0);
}

#[tokio::test]
async fn a_refreshed_id_token_of_another_user_issuer_or_client_ends_the_session() {
    let issuer = "http://127.0.0.1:9/another-issuer";
    for (alteration, expected) in [
        (
            RefreshedIdToken::Subject("mallory".into()),
            RefusedIdToken::OtherSubject { expected: "1001".into(), found: "mallory".into() },
        ),
        (
            RefreshedIdToken::Issuer(issuer.into()),
            RefusedIdToken::OtherIssuer { expected: String::new(), found: issuer.into() },
        ),
        (
            RefreshedIdToken::Audience("another-app".into()),
            RefusedIdToken::OtherAudience { expected: "partner-app".into(), found: vec!["another-app".into()] },
        ),
    ] {
        let (server, outcome, store) = refresh_with(alteration.clone()).await;
        let err = outcome.unwrap_err();
        let Error::RefreshedIdTokenRefused { reason } = &err else { panic!("{alteration:?}: {err}") };
        match (reason, &expected) {
            // The issuer is the server's, known only once it runs.
            (RefusedIdToken::OtherIssuer { expected, found }, RefusedIdToken::OtherIssuer { found: want, .. }) => {
                assert_eq!((expected.as_str(), found), (server.url(), want));
            }
            _ => assert_eq!(reason, &expected, "{alteration:?}"),
        }
        assert!(err.needs_sign_in());
        // The issuer is shown whole: not a secret.
        assert!(alteration != RefreshedIdToken::Issuer(issuer.into()) || err.to_string().contains(issuer), "{err}");
        // What the refresh brought: its refresh token revoked, once.
        assert_eq!(server.sign_in_requests("revocation"), 1, "{alteration:?}");
        assert_eq!(server.revoked_refresh_tokens(), 1, "{alteration:?}");
        // The session is gone from the store: a replica reading it is signed out.
        let replica = client(&server, "partner-app", Some("partner-secret"), None)
            .stored_session(StoreKey::session("session-1"))
            .store(store.clone())
            .build()
            .unwrap();
        let err = replica.token().await.unwrap_err();
        assert!(err.needs_sign_in(), "{alteration:?}: {err}");
        // No access token was handed out, and no other refresh was made.
        assert_eq!(server.grant_requests("refresh_token"), 1, "{alteration:?}");
    }
}

#[tokio::test]
async fn a_refreshed_id_token_with_a_nonce_or_a_bad_signature_is_refused() {
    let (server, outcome, _) = refresh_with(RefreshedIdToken::Nonce("another-sign-in".into())).await;
    let err = outcome.unwrap_err();
    assert!(
        matches!(&err, Error::RefreshedIdTokenRefused { reason: RefusedIdToken::Invalid { reason } } if reason.contains("nonce")),
        "{err}"
    );
    assert_eq!(server.revoked_refresh_tokens(), 1);
}

#[tokio::test]
async fn a_refreshed_id_token_that_cannot_be_checked_keeps_the_refresh_token_not_the_access_token() {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    let signed_in = sign_in(&client(&server, "partner-app", Some("partner-secret"), None)).await.unwrap();
    // Another process (a fresh client, no keys cached) refreshes while the
    // provider's keys cannot be fetched.
    let client = client(&server, "partner-app", Some("partner-secret"), None);
    let store = Arc::new(MemoryStore::new());
    let key = StoreKey::session("session-1");
    let provider = client
        .token_provider(signed_in.token_set)
        .store(store.clone())
        .store_key(key.clone())
        .build_saved()
        .await
        .unwrap();
    provider.invalidate();
    server.fail_next_jwks(Failure::json(503, "{}"));
    let err = provider.token().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(server.grant_requests("refresh_token"), 1);
    // The rotated refresh token is stored: a replica refreshes with it (no
    // reuse), and the keys now come.
    let replica = client.stored_session(key).store(store).build().unwrap();
    let token = replica.token().await.unwrap();
    assert!(server.is_valid_access_token(token.expose_secret()));
    assert_eq!(server.grant_requests("refresh_token"), 2);
    assert_eq!(server.refresh_token_reuses(), 0);
    assert_eq!(server.sign_in_requests("revocation"), 0);
}

#[tokio::test]
async fn pushed_requests_at_the_test_server() {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    server.set_pushed_requests(PushedRequests::Offered);
    // Pushed with the secret in the form, and with Basic.
    for method in [None, Some(ClientAuthMethod::ClientSecretBasic)] {
        let client = client(&server, "partner-app", Some("partner-secret"), method);
        let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
        let keys: Vec<_> = request.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        assert_eq!(keys, ["client_id", "request_uri"], "{method:?}");
        let answer = follow(&request.url).await;
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        client.complete_sign_in(&location, request.pending).await.unwrap();
    }
    assert_eq!(server.sign_in_requests("par"), 2);
    // A wrong secret is refused at the push.
    let wrong = client(&server, "partner-app", Some("not-the-secret"), None);
    let err = wrong.authorization_request(AuthorizationOptions::default()).await.unwrap_err();
    assert!(err.to_string().ends_with("check the client id and its secret or key"), "{err}");
    // Expired before the browser used it: the provider's error, typed.
    let client = client(&server, "partner-app", Some("partner-secret"), None);
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    server.expire_pushed_requests();
    let location = follow(&request.url).await.headers()["location"].to_str().unwrap().to_owned();
    let err = client.complete_sign_in(&location, request.pending).await.unwrap_err();
    assert!(matches!(&err, SignInError::Provider { error, .. } if error == "invalid_request_uri"), "{err}");

    // Required: a client that does not push is refused before it sends.
    server.set_pushed_requests(PushedRequests::Required);
    let front = OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new("partner-app").unwrap())
        .client_secret(ClientSecret::new("partner-secret").unwrap())
        .redirect_uri(RedirectUrl::new(CALLBACK).unwrap())
        .pushed_authorization_requests(false)
        .env(|_| None)
        .build()
        .unwrap();
    let pushes = server.sign_in_requests("par");
    let err = front.authorization_request(AuthorizationOptions::default()).await.unwrap_err();
    assert!(matches!(err, SignInError::PushRequired { .. }), "{err}");
    assert_eq!(server.sign_in_requests("par"), pushes);
}

/// A signed-in session of `server`'s user, saved in `store` under
/// `session` and registered for back-channel logout; its `sid`.
async fn stored_session(client: &OidcClient, store: &Arc<MemoryStore>, session: &str) -> String {
    let signed_in = sign_in(client).await.unwrap();
    let sid = signed_in.claims.sid.clone().expect("the test server's ID tokens carry a sid");
    let key = StoreKey::session(session);
    client.token_provider(signed_in.token_set).store(store.clone()).store_key(key.clone()).build_saved().await.unwrap();
    client.back_channel_logout(store.clone()).register(&signed_in.claims, &key).await.unwrap();
    sid
}

/// Standard logout token claims from `server` for `partner-app`, `edit`ed.
fn logout_claims(server: &TestServer, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = serde_json::json!({
        "iss": server.url(), "aud": "partner-app", "iat": now, "exp": now + 120,
        "jti": format!("jti-{}", rand_suffix()), "sub": "1001",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    edit(claims.as_object_mut().unwrap());
    server.sign_jwt(Some("logout+jwt"), &claims).unwrap()
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Whether the session stored under `session` still gives a token.
async fn alive(client: &OidcClient, store: &Arc<MemoryStore>, session: &str) -> bool {
    let provider = client.stored_session(StoreKey::session(session)).store(store.clone()).build().unwrap();
    match provider.token().await {
        Ok(_) => true,
        Err(error) if error.needs_sign_in() => false,
        Err(error) => panic!("{error}"),
    }
}

#[tokio::test]
async fn back_channel_logout_ends_the_named_sessions_on_every_replica_once() {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    server.set_user(TestUser::new("1001"));
    let client = client(&server, "partner-app", Some("partner-secret"), None);
    let store = Arc::new(MemoryStore::new());
    let sid_1 = stored_session(&client, &store, "s1").await;
    let _sid_2 = stored_session(&client, &store, "s2").await;
    // Two replicas, one store.
    let replica_a = client.back_channel_logout(store.clone());
    let replica_b =
        self::client(&server, "partner-app", Some("partner-secret"), None).back_channel_logout(store.clone());

    // One session, by its sid: its token set is gone, its tokens revoked.
    let token = logout_claims(&server, |c| drop(c.insert("sid".into(), sid_1.clone().into())));
    let ended = replica_a.handle(&token).await.unwrap();
    assert_eq!(ended.sessions, [StoreKey::session("s1")]);
    assert_eq!(ended.notice.session_id.as_deref(), Some(sid_1.as_str()));
    assert_eq!(server.sign_in_requests("revocation"), 2, "the refresh and the access token");
    assert_eq!(server.revoked_refresh_tokens(), 1);
    assert!(!alive(&client, &store, "s1").await);
    assert!(alive(&client, &store, "s2").await);
    // The same token again, at either replica: a replay.
    for replica in [&replica_a, &replica_b] {
        assert!(matches!(replica.handle(&token).await, Err(LogoutError::Replayed)));
    }

    // Every session of the user, by its sub.
    let token = logout_claims(&server, |c| drop(c.remove("sid")));
    let ended = replica_b.handle(&token).await.unwrap();
    assert_eq!(ended.sessions, [StoreKey::session("s1"), StoreKey::session("s2")]);
    assert!(!alive(&client, &store, "s2").await);
    assert_eq!(server.revoked_refresh_tokens(), 2);
}

/// Whether an error is the one a case expects.
type Expected = fn(&LogoutError) -> bool;

#[tokio::test]
async fn forged_and_malformed_logout_tokens_are_refused_and_end_nothing() {
    let server = TestServer::start().await.unwrap();
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[CALLBACK], &[LOGGED_OUT]);
    server.set_user(TestUser::new("1001"));
    let client = client(&server, "partner-app", Some("partner-secret"), None);
    let store = Arc::new(MemoryStore::new());
    stored_session(&client, &store, "s1").await;
    let logout = client.back_channel_logout(store.clone());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let jti = "the-one-jti";
    let with_jti = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        logout_claims(&server, |c| {
            c.insert("jti".into(), jti.into());
            edit(c);
        })
    };
    let tampered = {
        let token = with_jti(&|_| {});
        let (rest, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        format!("{rest}.{flipped}{}", &signature[1..])
    };
    let cases: Vec<(&str, String, Expected)> = vec![
        ("a bad signature", tampered, |e| matches!(e, LogoutError::Token(IdTokenError::BadSignature))),
        ("another audience", with_jti(&|c| drop(c.insert("aud".into(), "another-app".into()))), |e| {
            matches!(e, LogoutError::Token(IdTokenError::WrongAudience { .. }))
        }),
        ("another issuer", with_jti(&|c| drop(c.insert("iss".into(), "http://127.0.0.1:9/other".into()))), |e| {
            matches!(e, LogoutError::Token(IdTokenError::WrongIssuer { .. }))
        }),
        ("a nonce", with_jti(&|c| drop(c.insert("nonce".into(), "n".into()))), |e| matches!(e, LogoutError::Nonce)),
        ("no event", with_jti(&|c| drop(c.remove("events"))), |e| matches!(e, LogoutError::NotALogout)),
        ("another event", with_jti(&|c| drop(c.insert("events".into(), serde_json::json!({"urn:x": {}})))), |e| {
            matches!(e, LogoutError::NotALogout)
        }),
        ("neither sub nor sid", with_jti(&|c| drop(c.remove("sub"))), |e| matches!(e, LogoutError::NoSubjectOrSession)),
        ("iat in the future", with_jti(&|c| drop(c.insert("iat".into(), (now + 600).into()))), |e| {
            matches!(e, LogoutError::Token(IdTokenError::IssuedInFuture { .. }))
        }),
        ("too old", with_jti(&|c| drop(c.insert("iat".into(), (now - 3600).into()))), |e| {
            matches!(e, LogoutError::TooOld { .. })
        }),
        ("expired", with_jti(&|c| drop(c.insert("exp".into(), (now - 60).into()))), |e| {
            matches!(e, LogoutError::Token(IdTokenError::Expired { .. }))
        }),
        ("no jti", logout_claims(&server, |c| drop(c.remove("jti"))), |e| {
            matches!(e, LogoutError::Token(IdTokenError::MissingClaim("jti")))
        }),
        ("no iat", with_jti(&|c| drop(c.remove("iat"))), |e| {
            matches!(e, LogoutError::Token(IdTokenError::MissingClaim("iat")))
        }),
        (
            "an ID token's type",
            server.sign_jwt(Some("at+jwt"), &serde_json::json!({"iss": server.url()})).unwrap(),
            |e| matches!(e, LogoutError::Token(IdTokenError::WrongType { .. })),
        ),
        ("not a JWT", "not-a-jwt".to_owned(), |e| matches!(e, LogoutError::Token(IdTokenError::Malformed { .. }))),
    ];
    for (what, token, expected) in &cases {
        let err = logout.handle(token).await.unwrap_err();
        assert!(expected(&err), "{what}: {err}");
        assert!(!err.to_string().contains(token.as_str()), "{what}: the token in {err}");
    }
    // Session required and none named.
    let strict = client.back_channel_logout(store.clone()).require_session_id(true);
    let err = strict.handle(&with_jti(&|_| {})).await.unwrap_err();
    assert!(matches!(err, LogoutError::SessionRequired), "{err}");
    // Nothing ended, nothing revoked; the refused tokens did not spend the jti.
    assert!(alive(&client, &store, "s1").await);
    assert_eq!(server.sign_in_requests("revocation"), 0);
    let ended = logout.handle(&with_jti(&|_| {})).await.unwrap();
    assert_eq!(ended.sessions, [StoreKey::session("s1")]);
}
