//! Partner sign-in end to end against a real OpenID provider (oidc-provider
//! configured like Filevine: confidential clients, PKCE required, RS512 ID
//! tokens, refresh-token rotation), and the negative matrix: every way a
//! callback or ID token can be wrong, each rejected with its own error.

#[allow(dead_code)] // each test binary uses a different part of it
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filevine_identity_ext::grant::IdToken;
use filevine_identity_ext::oidc::{
    AuthorizationOptions, ClientAuthMethod, DiscoveryError, IdTokenError, OidcClientBuilder, RedirectUrl,
};
use filevine_identity_ext::{ClientId, ClientSecret, Error, OidcClient, Region, Scopes, SignInError};

use crate::support::oidc::{self, Browser, provider};

fn client_for(id: &str, secret: &str) -> OidcClient {
    client_at(provider(), id, secret)
}

/// A client of `provider` (the shared one, or a test's own).
fn client_at(provider: &oidc::Provider, id: &str, secret: &str) -> OidcClient {
    builder_at(provider, id, secret).build().unwrap()
}

fn builder_at(provider: &oidc::Provider, id: &str, secret: &str) -> OidcClientBuilder {
    OidcClient::builder()
        .region(Region::custom(&provider.issuer).unwrap())
        .client_id(ClientId::new(id).unwrap())
        .client_secret(ClientSecret::new(secret).unwrap())
        .redirect_uri(RedirectUrl::new(oidc::REDIRECT_URI).unwrap())
        .post_logout_redirect_uri(RedirectUrl::new(oidc::POST_LOGOUT_REDIRECT_URI).unwrap())
        .scopes(Scopes::partner_app())
        .env(|_| None)
}

fn client() -> OidcClient {
    client_for(oidc::CLIENT_ID, oidc::CLIENT_SECRET)
}

/// A full sign-in as `login`: authorization URL, login and consent pages,
/// callback.
async fn sign_in(client: &OidcClient, login: &str) -> filevine_identity_ext::oidc::SignedIn {
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in(&request.url, login).await;
    client.complete_sign_in(&callback, request.pending).await.unwrap()
}

/// Standard claims for a harness-signed ID token; `edit` changes them.
fn claims(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> serde_json::Value {
    claims_for(provider(), edit)
}

fn claims_for(
    provider: &oidc::Provider,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> serde_json::Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = serde_json::json!({
        "iss": provider.issuer, "sub": "alice", "aud": oidc::CLIENT_ID,
        "exp": now + 300, "iat": now, "nonce": "n-1",
    });
    edit(claims.as_object_mut().unwrap());
    claims
}

async fn verify(client: &OidcClient, jwt: String) -> Result<filevine_identity_ext::oidc::IdTokenClaims, SignInError> {
    let nonce = serde_json::from_str("\"n-1\"").unwrap();
    client.verify_id_token(&IdToken::new(jwt), Some(&nonce)).await
}

#[tokio::test]
async fn partner_sign_in_end_to_end() {
    // Its own provider: the test counts the provider's token requests.
    let own = oidc::Provider::start();
    // The front channel: the request in the browser's URL (pushed requests
    // have tests of their own).
    let client =
        builder_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET).pushed_authorization_requests(false).build().unwrap();
    let metadata = client.metadata().await.unwrap();
    assert_eq!(metadata.issuer(), own.issuer);
    assert_eq!(metadata.id_token_algorithms(), ["RS256", "RS384", "RS512"]);

    // The authorization URL carries everything the provider needs.
    let request = client.authorization_request(AuthorizationOptions::default().login_hint("alice")).await.unwrap();
    let query: std::collections::HashMap<_, _> = request.url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], oidc::CLIENT_ID);
    assert_eq!(query["redirect_uri"], oidc::REDIRECT_URI);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["prompt"], "consent", "offline_access needs prompt=consent (OIDC Core §11)");
    assert_eq!(query["login_hint"], "alice");
    assert_eq!(query["state"], request.pending.state().expose_secret());
    assert!(query["scope"].split(' ').any(|s| s == "openid") && query["scope"].contains("fv.api.gateway.access"));
    assert_eq!(query["code_challenge"].len(), 43);
    // 32 random bytes each, base64url: 43 characters.
    assert_eq!(query["state"].len(), 43);
    assert_eq!(query["nonce"].len(), 43);
    assert_ne!(query["state"], query["nonce"]);

    // The pending sign-in survives a session store (JSON) round trip.
    let stored = serde_json::to_string(&request.pending).unwrap();
    let pending = serde_json::from_str(&stored).unwrap();

    let callback = Browser::new().sign_in(&request.url, "alice").await;
    assert!(callback.starts_with(oidc::REDIRECT_URI), "{callback}");
    let signed_in = client.complete_sign_in(&callback, pending).await.unwrap();

    // ID token: validated (RS512, issuer, audience, nonce), claims typed.
    assert_eq!(signed_in.claims.sub, "alice");
    assert_eq!(signed_in.claims.iss, own.issuer);
    assert_eq!(signed_in.claims.audiences, [oidc::CLIENT_ID]);
    let id_token = signed_in.token_set.id_token.clone().unwrap();
    let header = id_token.expose_secret().split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS512", "Filevine signs ID tokens RS512");
    assert!(signed_in.token_set.refresh_token.is_some(), "offline_access gives a refresh token");
    assert!(signed_in.token_set.access_token.scopes().contains("fv.api.gateway.access"));

    // Userinfo: the claims the ID token left out (conformant ID tokens carry
    // only sub), for the same subject.
    let info = client.userinfo(&signed_in.token_set.access_token, "alice").await.unwrap();
    assert_eq!(info.profile.email.as_deref(), Some("alice@example.com"));
    assert_eq!(info.additional["tenant"], "acme-law");
    let err = client.userinfo(&signed_in.token_set.access_token, "bob").await.unwrap_err();
    assert!(matches!(err, SignInError::SubjectMismatch { .. }), "{err}");

    // The token set plugs into the provider: refreshes through the real
    // provider rotate the refresh token.
    let token_provider = client.token_provider(signed_in.token_set.clone()).build().unwrap();
    let first = token_provider.token().await.unwrap();
    assert!(first.same_token(&signed_in.token_set.access_token), "the sign-in's token is served first");
    let token_requests = own.stats().await["token"].as_u64().unwrap();
    token_provider.invalidate();
    let second = token_provider.token().await.unwrap();
    assert_ne!(second.expose_secret(), first.expose_secret());
    token_provider.invalidate();
    let third = token_provider.token().await.unwrap();
    assert_ne!(third.expose_secret(), second.expose_secret());
    assert_eq!(own.stats().await["token"].as_u64().unwrap(), token_requests + 2, "two refreshes");
    // The refreshed ID token validates too.
    // (RS512 signatures are deterministic: within the same second it can
    // equal the first one byte for byte, so only its validity is checked.)
    let refreshed_id = token_provider.latest_id_token().unwrap();
    client.verify_id_token(&refreshed_id, None).await.unwrap();
    // Revocation: the access token stops working at userinfo, and
    // introspection says it is no longer active.
    let current = token_provider.token().await.unwrap();
    client.userinfo(&current, "alice").await.unwrap();
    let answer = client.introspect(current.expose_secret()).await.unwrap();
    assert!(answer.is_active_at(std::time::SystemTime::now()), "{answer:?}");
    assert_eq!(answer.subject.as_deref(), Some("alice"));
    assert_eq!(answer.client_id.as_deref(), Some(oidc::CLIENT_ID));
    assert!(answer.scopes.iter().any(|s| s == "fv.api.gateway.access"), "{:?}", answer.scopes);
    let introspections = own.stats().await["introspection"].as_u64().unwrap();
    client.revoke_access_token(&current).await.unwrap();
    let err = client.userinfo(&current, "alice").await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { status: 401, .. })), "{err}");
    let answer = client.introspect(current.expose_secret()).await.unwrap();
    assert_eq!(answer, filevine_identity_ext::oidc::TokenIntrospection::inactive());
    assert_eq!(own.stats().await["introspection"].as_u64().unwrap(), introspections + 1);

    // The original refresh token was rotated away: the provider refuses it
    // (SignInRequired), and, detecting the reuse, revokes the whole grant,
    // so the rotated refresh token stops working too.
    let stale = client.token_provider(signed_in.token_set.clone()).build().unwrap();
    stale.invalidate();
    let err = stale.token().await.unwrap_err();
    assert!(matches!(err, Error::SignInRequired { .. }), "{err}");
    token_provider.invalidate();
    assert!(matches!(token_provider.token().await, Err(Error::SignInRequired { .. })));

    // End session: the provider's endpoint with the hint, the post-logout
    // redirect and a state; the provider accepts it.
    let end = client.end_session_url(Some(&refreshed_id)).await.unwrap();
    let query: std::collections::HashMap<_, _> = end.url.query_pairs().into_owned().collect();
    assert_eq!(end.url.path(), "/connect/endsession");
    assert_eq!(query["post_logout_redirect_uri"], oidc::POST_LOGOUT_REDIRECT_URI);
    assert_eq!(query["id_token_hint"], refreshed_id.expose_secret());
    assert_eq!(query["state"], end.state.expose_secret());
    let page = reqwest::get(end.url.clone()).await.unwrap();
    assert_eq!(page.status(), 200, "the provider shows its logout confirmation");
    assert!(!format!("{end:?}").contains(refreshed_id.expose_secret()));
}

#[tokio::test]
async fn client_secret_basic_and_refresh_token_revocation() {
    let basic = |secret: &str| {
        OidcClient::builder()
            .region(Region::custom(&provider().issuer).unwrap())
            .client_id(ClientId::new(oidc::BASIC_CLIENT_ID).unwrap())
            .client_secret(ClientSecret::new(secret).unwrap())
            .redirect_uri(RedirectUrl::new(oidc::REDIRECT_URI).unwrap())
            .auth_method(ClientAuthMethod::ClientSecretBasic)
            .env(|_| None)
            .build()
            .unwrap()
    };
    // The secret travels only in the Basic header: a wrong one is refused,
    // the right one works.
    let err = sign_in_result(&basic("wrong-secret")).await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { .. })), "{err}");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
    let client = basic(oidc::BASIC_CLIENT_SECRET);
    let signed_in = sign_in(&client, "bob").await;
    assert_eq!(signed_in.claims.sub, "bob");
    let provider = client.token_provider(signed_in.token_set.clone()).build().unwrap();
    provider.invalidate();
    let token = provider.token().await.expect("refresh with client_secret_basic");
    // Introspection with Basic: the provider knows who asks; a wrong secret
    // is a typed refusal that never shows the token or the secret.
    let answer = client.introspect(token.expose_secret()).await.unwrap();
    assert_eq!((answer.active, answer.subject.as_deref()), (true, Some("bob")));
    let err = basic("wrong-secret").introspect(token.expose_secret()).await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { status: 401, .. })), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-secret") && !shown.contains(token.expose_secret()), "{shown}");

    // Revoking the refresh token signs the user out: the next refresh needs
    // a new sign-in.
    let signed_in = sign_in(&client, "bob").await;
    client.revoke_refresh_token(signed_in.token_set.refresh_token.as_ref().unwrap()).await.unwrap();
    let provider = client.token_provider(signed_in.token_set).build().unwrap();
    provider.invalidate();
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::SignInRequired { .. }), "{err}");
}

async fn sign_in_result(client: &OidcClient) -> Result<filevine_identity_ext::oidc::SignedIn, SignInError> {
    let request = client.authorization_request(AuthorizationOptions::default()).await?;
    let callback = Browser::new().sign_in(&request.url, "bob").await;
    client.complete_sign_in(&callback, request.pending).await
}

#[tokio::test]
async fn wrong_state_is_rejected_before_anything_else() {
    // Its own provider: the test counts the provider's token requests.
    let own = oidc::Provider::start();
    let client = client_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET);
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    let forged = callback.replace(&format!("state={}", request.pending.state().expose_secret()), "state=forged");
    assert_ne!(forged, callback);
    let before = own.stats().await["token"].as_u64().unwrap();
    let err = client.complete_sign_in(&forged, request.pending.clone()).await.unwrap_err();
    assert!(matches!(err, SignInError::StateMismatch), "{err}");
    assert_eq!(own.stats().await["token"].as_u64().unwrap(), before, "no code exchange was attempted");
    // A callback without state, and a callback for another sign-in.
    let no_state = callback.split("&state=").next().unwrap().to_owned();
    assert!(matches!(
        client.complete_sign_in(&no_state, request.pending.clone()).await,
        Err(SignInError::StateMismatch)
    ));
    let other = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    assert!(matches!(client.complete_sign_in(&callback, other.pending).await, Err(SignInError::StateMismatch)));
    // The right state still works.
    client.complete_sign_in(&callback, request.pending).await.unwrap();
}

#[tokio::test]
async fn provider_error_callback_is_typed() {
    let client = client();
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in_with(&request.url, "alice", false).await;
    let err = client.complete_sign_in(&callback, request.pending).await.unwrap_err();
    match &err {
        SignInError::Provider { error, description } => {
            assert_eq!(error, "access_denied");
            assert!(description.as_deref().unwrap_or_default().contains("aborted"), "{err}");
        }
        other => panic!("expected a provider error, got {other}"),
    }
    assert!(err.to_string().contains("refused the sign-in: access_denied"), "{err}");
}

#[tokio::test]
async fn reused_authorization_code_is_rejected() {
    let client = client();
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    client.complete_sign_in(&callback, request.pending.clone()).await.unwrap();
    let err = client.complete_sign_in(&callback, request.pending).await.unwrap_err();
    assert!(matches!(err, SignInError::CodeRejected { status: 400, .. }), "{err}");
    let code = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    assert!(!err.to_string().contains(&code) && !format!("{err:?}").contains(&code), "{err:?}");
}

#[tokio::test]
async fn expired_authorization_code_is_rejected() {
    // Its own provider: the test moves the provider's clock past the code's
    // 60 s lifetime (as a user who lingers on the consent page would).
    let own = oidc::Provider::start();
    let client = client_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET);
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    own.advance_clock(Duration::from_secs(61)).await;
    let err = client.complete_sign_in(&callback, request.pending).await.unwrap_err();
    assert!(matches!(err, SignInError::CodeRejected { status: 400, .. }), "{err}");
    assert_eq!(own.stats().await["token"], 1, "one exchange, not retried");
}

#[tokio::test]
async fn wrong_pkce_verifier_is_rejected_by_the_provider() {
    let client = client();
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    // Swap in another sign-in's verifier (same state, so the state check passes).
    let other = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let mut stored: serde_json::Value = serde_json::to_value(&request.pending).unwrap();
    stored["pkce_verifier"] = serde_json::to_value(&other.pending).unwrap()["pkce_verifier"].clone();
    let tampered = serde_json::from_value(stored).unwrap();
    let err = client.complete_sign_in(&callback, tampered).await.unwrap_err();
    assert!(matches!(err, SignInError::CodeRejected { .. }), "{err}");
}

#[tokio::test]
async fn tampered_signature_is_rejected() {
    let client = client();
    let jwt = provider().sign(claims(|_| {}), "RS512", "provider").await;
    verify(&client, jwt.clone()).await.expect("the untampered token is valid");
    let (head, signature) = jwt.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x01;
    let err = verify(&client, format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::BadSignature)), "{err}");
    // A changed payload under the original signature.
    let mut parts: Vec<&str> = jwt.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(claims(|c| drop(c.insert("sub".into(), "mallory".into()))).to_string());
    parts[1] = &forged;
    let err = verify(&client, parts.join(".")).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::BadSignature)), "{err}");
}

#[tokio::test]
async fn wrong_nonce_is_rejected() {
    let client = client();
    let jwt =
        provider().sign(claims(|c| drop(c.insert("nonce".into(), "another-sign-in".into()))), "RS512", "provider");
    let err = verify(&client, jwt.await).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::NonceMismatch)), "{err}");
    let jwt = provider().sign(claims(|c| drop(c.remove("nonce"))), "RS512", "provider").await;
    assert!(matches!(verify(&client, jwt).await, Err(SignInError::IdToken(IdTokenError::NonceMismatch))));
}

#[tokio::test]
async fn wrong_audience_and_authorized_party_are_rejected() {
    let client = client();
    let jwt = provider().sign(claims(|c| drop(c.insert("aud".into(), "someone-else".into()))), "RS512", "provider");
    let err = verify(&client, jwt.await).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::WrongAudience { .. })), "{err}");
    assert!(err.to_string().contains("someone-else") && err.to_string().contains(oidc::CLIENT_ID), "{err}");
    // Several audiences need azp = this client.
    let several = |azp: Option<&str>| {
        claims(|c| {
            c.insert("aud".into(), serde_json::json!([oidc::CLIENT_ID, "other"]));
            if let Some(azp) = azp {
                c.insert("azp".into(), azp.into());
            }
        })
    };
    let err = verify(&client, provider().sign(several(None), "RS512", "provider").await).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::WrongAuthorizedParty { found: None, .. })), "{err}");
    let err = verify(&client, provider().sign(several(Some("other")), "RS512", "provider").await).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::WrongAuthorizedParty { .. })), "{err}");
    verify(&client, provider().sign(several(Some(oidc::CLIENT_ID)), "RS512", "provider").await).await.unwrap();
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let client = client();
    let jwt =
        provider().sign(claims(|c| drop(c.insert("iss".into(), "https://evil.example".into()))), "RS512", "provider");
    let err = verify(&client, jwt.await).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::WrongIssuer { .. })), "{err}");
    assert!(err.to_string().contains("https://evil.example"), "{err}");
}

#[tokio::test]
async fn expiry_is_checked_with_leeway() {
    let client = client();
    let now = |offset: i64| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        serde_json::Value::from(now.checked_add_signed(offset).unwrap())
    };
    // Expired 2 s ago: inside the default 5 s leeway.
    let jwt = provider().sign(claims(|c| drop(c.insert("exp".into(), now(-2)))), "RS512", "provider").await;
    verify(&client, jwt).await.expect("within leeway");
    // Expired 60 s ago: beyond it.
    let jwt = provider().sign(claims(|c| drop(c.insert("exp".into(), now(-60)))), "RS512", "provider").await;
    let err = verify(&client, jwt).await.unwrap_err();
    assert!(matches!(err, SignInError::IdToken(IdTokenError::Expired { leeway_secs: 5, .. })), "{err}");
    // Not valid for another minute, and issued in the future.
    let jwt = provider().sign(claims(|c| drop(c.insert("nbf".into(), now(60)))), "RS512", "provider").await;
    assert!(matches!(verify(&client, jwt).await, Err(SignInError::IdToken(IdTokenError::NotYetValid { .. }))));
    let jwt = provider().sign(claims(|c| drop(c.insert("iat".into(), now(120)))), "RS512", "provider").await;
    assert!(matches!(verify(&client, jwt).await, Err(SignInError::IdToken(IdTokenError::IssuedInFuture { .. }))));
    // A client with a larger leeway accepts the 60 s-old token.
    let lenient = OidcClient::builder()
        .region(Region::custom(&provider().issuer).unwrap())
        .client_id(ClientId::new(oidc::CLIENT_ID).unwrap())
        .redirect_uri(RedirectUrl::new(oidc::REDIRECT_URI).unwrap())
        .leeway(Duration::from_secs(120))
        .env(|_| None)
        .build()
        .unwrap();
    let jwt = provider().sign(claims(|c| drop(c.insert("exp".into(), now(-60)))), "RS512", "provider").await;
    verify(&lenient, jwt).await.unwrap();
    // Missing required claims.
    let jwt = provider().sign(claims(|c| drop(c.remove("exp"))), "RS512", "provider").await;
    assert!(matches!(verify(&client, jwt).await, Err(SignInError::IdToken(IdTokenError::MissingClaim("exp")))));
}

#[tokio::test]
async fn unknown_kid_is_refetched_once_then_rejected() {
    // Its own provider, so the JWKS counter counts this test's fetches only.
    let provider = &oidc::Provider::start();
    let clock = crate::support::clock_ahead();
    let client = builder_at(provider, oidc::CLIENT_ID, oidc::CLIENT_SECRET).time_source(clock.clone()).build().unwrap();
    // Warm the key cache with a valid token.
    verify(&client, provider.sign(claims_for(provider, |_| {}), "RS512", "provider").await).await.unwrap();
    let before = provider.stats().await["jwks"].as_u64().unwrap();
    let jwt = provider.sign(claims_for(provider, |_| {}), "RS512", "stranger").await;
    let err = verify(&client, jwt.clone()).await.unwrap_err();
    assert!(
        matches!(err, SignInError::IdToken(IdTokenError::UnknownKey { kid: Some(ref kid) }) if kid == "stranger"),
        "{err}"
    );
    assert_eq!(provider.stats().await["jwks"].as_u64().unwrap(), before + 1, "exactly one refetch");
    // Again right away: no second refetch (rate limited).
    assert!(matches!(verify(&client, jwt.clone()).await, Err(SignInError::IdToken(IdTokenError::UnknownKey { .. }))));
    assert_eq!(provider.stats().await["jwks"].as_u64().unwrap(), before + 1, "no refetch storm");
    // Still rate limited a moment before 30 s have passed…
    clock.advance(Duration::from_millis(29_999));
    assert!(matches!(verify(&client, jwt.clone()).await, Err(SignInError::IdToken(IdTokenError::UnknownKey { .. }))));
    assert_eq!(provider.stats().await["jwks"].as_u64().unwrap(), before + 1, "refetch inside the 30 s window");
    // …and allowed once again at 30 s.
    clock.advance(Duration::from_millis(1));
    assert!(matches!(verify(&client, jwt).await, Err(SignInError::IdToken(IdTokenError::UnknownKey { .. }))));
    assert_eq!(provider.stats().await["jwks"].as_u64().unwrap(), before + 2, "one refetch after the window");
}

/// Discovery and the key set are fetched once and reused until
/// `metadata_ttl` has passed (default 1 hour), then fetched again.
#[tokio::test]
async fn discovery_and_keys_are_cached_for_the_metadata_ttl() {
    // Its own provider: the test counts discovery and JWKS fetches.
    let own = oidc::Provider::start();
    let count = async |what: &str| own.stats().await[what].as_u64().unwrap();
    let valid = || async { own.sign(claims_for(&own, |_| {}), "RS512", "provider").await };

    let clock = crate::support::clock_ahead();
    let minute = Duration::from_secs(60);
    let client = builder_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET)
        .metadata_ttl(minute)
        .time_source(clock.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        client.authorization_request(AuthorizationOptions::default()).await.unwrap();
        verify(&client, valid().await).await.unwrap();
    }
    assert_eq!((count("discovery").await, count("jwks").await), (1, 1), "fetched once, then cached");
    clock.advance(minute - Duration::from_millis(1));
    client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    verify(&client, valid().await).await.unwrap();
    assert_eq!((count("discovery").await, count("jwks").await), (1, 1), "still cached just before the TTL");
    clock.advance(Duration::from_millis(1));
    client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    verify(&client, valid().await).await.unwrap();
    assert_eq!((count("discovery").await, count("jwks").await), (2, 2), "fetched again at the TTL");

    // The default TTL is one hour.
    let clock = crate::support::clock_ahead();
    let client = builder_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET).time_source(clock.clone()).build().unwrap();
    client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    clock.advance(Duration::from_secs(3599));
    client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    assert_eq!(count("discovery").await, 3, "cached for the default hour");
    clock.advance(Duration::from_secs(1));
    client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    assert_eq!(count("discovery").await, 4, "fetched again after an hour");
}

#[tokio::test]
async fn alg_none_and_hmac_key_confusion_are_refused() {
    // Its own provider: the test counts JWKS fetches.
    let own = oidc::Provider::start();
    let client = client_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET);
    let payload = URL_SAFE_NO_PAD.encode(claims(|_| {}).to_string());
    // alg: none, with and without a signature part.
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    for jwt in [format!("{none}.{payload}."), format!("{none}.{payload}.c2ln")] {
        let err = verify(&client, jwt).await.unwrap_err();
        assert!(matches!(err, SignInError::IdToken(IdTokenError::Unsigned)), "{err}");
    }
    // HS256 "signed" with the provider's public RSA key as the HMAC secret.
    let keys = own.harness("public-keys", None).await;
    let public_key = serde_json::to_vec(&keys["provider"]).unwrap();
    let header = jsonwebtoken::Header {
        kid: Some("filevine-test-1".into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let forged =
        jsonwebtoken::encode(&header, &claims(|_| {}), &jsonwebtoken::EncodingKey::from_secret(&public_key)).unwrap();
    let err = verify(&client, forged).await.unwrap_err();
    assert!(
        matches!(err, SignInError::IdToken(IdTokenError::AlgorithmNotAllowed { ref alg, .. }) if alg == "HS256"),
        "{err}"
    );
    // Both were refused before any key was looked up: no JWKS fetch.
    assert_eq!(own.stats().await["jwks"], 0);
    // The counter counts: a properly signed token fetches the keys once.
    verify(&client, own.sign(claims_for(&own, |_| {}), "RS512", "provider").await).await.unwrap();
    assert_eq!(own.stats().await["jwks"], 1);
}

#[tokio::test]
async fn key_rotation_is_picked_up_by_one_refetch() {
    // Its own provider: the rotation changes the provider's JWKS.
    let provider = &oidc::Provider::start();
    let client = client_at(provider, oidc::CLIENT_ID, oidc::CLIENT_SECRET);
    verify(&client, provider.sign(claims_for(provider, |_| {}), "RS512", "provider").await).await.unwrap();
    provider.harness("rotate", Some(serde_json::json!({}))).await;
    let jwt = provider.sign(claims_for(provider, |_| {}), "RS256", "rotated").await;
    let claims = verify(&client, jwt).await.expect("the rotated key is fetched");
    assert_eq!(claims.sub, "alice");
}

#[tokio::test]
async fn discovery_issuer_mismatch_is_refused() {
    // Same server, named differently: its issuer is 127.0.0.1, not localhost.
    let localhost = provider().issuer.replace("127.0.0.1", "localhost");
    let client = OidcClient::builder()
        .region(Region::custom(&localhost).unwrap())
        .client_id(ClientId::new(oidc::CLIENT_ID).unwrap())
        .redirect_uri(RedirectUrl::new(oidc::REDIRECT_URI).unwrap())
        .env(|_| None)
        .build()
        .unwrap();
    let err = client.authorization_request(AuthorizationOptions::default()).await.unwrap_err();
    match &err {
        SignInError::Discovery(DiscoveryError::IssuerMismatch { expected, found }) => {
            assert_eq!(expected, &localhost);
            assert_eq!(found, &provider().issuer);
        }
        other => panic!("expected an issuer mismatch, got {other}"),
    }
}

#[tokio::test]
async fn callback_issuer_mismatch_and_stale_sign_ins_are_refused() {
    let client = client();
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    let mixed_up = callback.split("&iss=").next().unwrap().to_owned() + "&iss=https%3A%2F%2Fother.example";
    let err = client.complete_sign_in(&mixed_up, request.pending.clone()).await.unwrap_err();
    assert!(matches!(err, SignInError::IssuerMismatch { .. }), "{err}");
    // RFC 9207: the provider advertises authorization_response_iss_parameter_supported,
    // so a callback without iss is not its.
    assert!(client.metadata().await.unwrap().requires_iss_parameter());
    let without_iss = callback.split("&iss=").next().unwrap().to_owned();
    assert!(!without_iss.contains("iss="), "{without_iss}");
    let err = client.complete_sign_in(&without_iss, request.pending.clone()).await.unwrap_err();
    assert!(matches!(err, SignInError::MissingIssuer), "{err}");

    let mut stored = serde_json::to_value(&request.pending).unwrap();
    // Started 16 minutes ago: past the 15-minute limit.
    stored["created_at"] = serde_json::Value::from(stored["created_at"].as_u64().unwrap() - 960);
    let err = client.complete_sign_in(&callback, serde_json::from_value(stored).unwrap()).await.unwrap_err();
    assert!(
        matches!(err, SignInError::Expired { age, limit } if limit == Duration::from_secs(900) && age >= Duration::from_secs(960)),
        "{err}"
    );

    let other_client = client_for(oidc::BASIC_CLIENT_ID, oidc::BASIC_CLIENT_SECRET);
    let err = other_client.complete_sign_in(&callback, request.pending).await.unwrap_err();
    assert!(matches!(err, SignInError::PendingMismatch { what: "client", .. }), "{err}");
}

/// The redaction audit for sign-in: every sign-in type that holds a secret,
/// every `SignInError` produced above, and everything `tracing` records at
/// TRACE through a sign-in, a refresh, userinfo, revocation and failures.
/// No code, verifier, state, nonce, client secret or token may appear.
#[tokio::test(flavor = "current_thread")]
async fn sign_in_never_shows_a_secret() {
    let captured = crate::support::Captured::global();
    let since = captured.mark();
    let client = client();
    let mut shown = vec![format!("{client:?}"), format!("{:?}", OidcClient::builder())];
    let mut secrets = vec![oidc::CLIENT_SECRET.to_owned()];

    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    let pending = request.pending.clone();
    secrets.push(pending.state().expose_secret().to_owned());
    let stored: serde_json::Value = serde_json::to_value(&pending).unwrap();
    secrets.push(stored["nonce"].as_str().unwrap().to_owned());
    secrets.push(stored["pkce_verifier"].as_str().unwrap().to_owned());
    shown.push(format!("{request:?} {request:#?} {pending:?}"));

    let callback = Browser::new().sign_in(&request.url, "alice").await;
    let response = filevine_identity_ext::oidc::AuthorizationResponse::parse(&callback).unwrap();
    secrets.push(response.code.as_ref().unwrap().expose_secret().to_owned());
    shown.push(format!("{response:?}"));
    let signed_in = client.complete_sign_in(&callback, pending.clone()).await.unwrap();
    let set = &signed_in.token_set;
    secrets.push(set.access_token.expose_secret().to_owned());
    secrets.push(set.refresh_token.as_ref().unwrap().expose_secret().to_owned());
    secrets.push(set.id_token.as_ref().unwrap().expose_secret().to_owned());
    shown.push(format!("{signed_in:?} {signed_in:#?}"));

    // Refresh, userinfo, end session, revocation.
    let provider = client.token_provider(set.clone()).build().unwrap();
    provider.invalidate();
    let refreshed = provider.token().await.unwrap();
    secrets.push(refreshed.expose_secret().to_owned());
    shown.push(format!("{provider:?} {refreshed:?}"));
    client.userinfo(&refreshed, "alice").await.unwrap();
    let end = client.end_session_url(set.id_token.as_ref()).await.unwrap();
    secrets.push(end.state.expose_secret().to_owned());
    shown.push(format!("{end:?} {end:#?}"));
    client.revoke_access_token(&refreshed).await.unwrap();

    // Failures: reused code, a callback without iss (RFC 9207), forged
    // state, revoked token at userinfo, a tampered ID token, a wrong client
    // secret.
    let without_iss = callback.split("&iss=").next().unwrap().to_owned();
    let errors = [
        client.complete_sign_in(&callback, pending.clone()).await.unwrap_err(),
        client.complete_sign_in(&without_iss, pending.clone()).await.unwrap_err(),
        client.complete_sign_in(&callback.replace("state=", "state=x"), pending).await.unwrap_err(),
        client.userinfo(&refreshed, "alice").await.unwrap_err(),
        client
            .verify_id_token(&IdToken::new(format!("{}x", set.id_token.as_ref().unwrap().expose_secret())), None)
            .await
            .unwrap_err(),
        sign_in_result(&client_for(oidc::CLIENT_ID, "a-wrong-client-secret")).await.unwrap_err(),
    ];
    secrets.push("a-wrong-client-secret".into());
    assert!(matches!(errors[1], SignInError::MissingIssuer), "{}", errors[1]);
    // A partner app has no personal access token: the message names what it sent.
    let wrong_secret = errors.last().unwrap().to_string();
    assert!(wrong_secret.ends_with("check the client id and its secret or key"), "{wrong_secret}");
    for error in &errors {
        shown.push(format!("{error}\n{error:?}\n{error:#?}"));
    }

    let logs = captured.text_since(since);
    // Every SDK event this test caused was captured (from every thread),
    // so the check below sees them all.
    for event in
        ["starting a sign-in", "signed in", "requesting an access token", "received an access token", "revoked a token"]
    {
        assert!(logs.contains(event), "the {event:?} event was not captured: {logs}");
    }
    let all = shown.join("\n") + &logs;
    for secret in &secrets {
        assert!(secret.len() >= 16, "a real secret: {secret}");
        assert!(!all.contains(secret.as_str()), "leaked {secret}:\n{all}");
    }
}

#[tokio::test]
async fn max_age_is_sent_and_auth_time_checked_end_to_end() {
    // In the URL, and pushed.
    for pushed in [false, true] {
        let client = builder_at(provider(), oidc::CLIENT_ID, oidc::CLIENT_SECRET)
            .pushed_authorization_requests(pushed)
            .build()
            .unwrap();
        let options = AuthorizationOptions::default().max_age(Duration::from_secs(300));
        let request = client.authorization_request(options).await.unwrap();
        let query: std::collections::HashMap<_, _> = request.url.query_pairs().into_owned().collect();
        assert_eq!(query.get("max_age").map(String::as_str), (!pushed).then_some("300"));
        let callback = Browser::new().sign_in(&request.url, "alice").await;
        let signed_in = client.complete_sign_in(&callback, request.pending).await.unwrap();
        // The provider answered max_age with auth_time, and it is recent.
        let auth_time = signed_in.claims.auth_time.expect("auth_time, as max_age requires");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(auth_time <= now && now - auth_time < 300, "auth_time {auth_time}, now {now}");
    }
}

/// The query keys of a URL the SDK sends the browser to.
fn query_keys(url: &url::Url) -> Vec<String> {
    let mut keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn pushed_authorization_requests_keep_the_request_out_of_the_browser() {
    let own = oidc::Provider::start();
    let client = client_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET);
    assert!(client.metadata().await.unwrap().pushed_authorization_request_endpoint().is_some());
    let request = client.authorization_request(AuthorizationOptions::default().login_hint("alice")).await.unwrap();
    assert_eq!(own.stats().await["par"], 1);
    // Only the client and the reference: no redirect_uri, scope, state,
    // nonce or PKCE challenge where the browser (or its history) sees them.
    assert_eq!(query_keys(&request.url), ["client_id", "request_uri"]);
    assert_eq!(request.url.path(), "/connect/authorize");
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    let signed_in = client.complete_sign_in(&callback, request.pending).await.unwrap();
    assert_eq!(signed_in.claims.sub, "alice");
    assert!(signed_in.token_set.refresh_token.is_some(), "offline_access and prompt=consent were pushed");

    // Client authentication as at the token endpoint: Basic.
    let basic = client_at(&own, "partner-app-basic", "partner-app-basic-secret");
    let request = basic.authorization_request(AuthorizationOptions::default()).await.unwrap();
    assert_eq!(query_keys(&request.url), ["client_id", "request_uri"]);
    let callback = Browser::new().sign_in(&request.url, "bob").await;
    assert_eq!(basic.complete_sign_in(&callback, request.pending).await.unwrap().claims.sub, "bob");
    // A wrong secret is refused at the push, before the browser goes anywhere.
    let wrong = client_at(&own, oidc::CLIENT_ID, "a-wrong-client-secret");
    let err = wrong.authorization_request(AuthorizationOptions::default()).await.unwrap_err();
    assert!(matches!(&err, SignInError::Token(Error::InvalidCredentials { .. })), "{err}");
    assert!(!err.to_string().contains("a-wrong-client-secret"), "{err}");
    assert_eq!(own.stats().await["par"], 3);
}

#[tokio::test]
async fn a_provider_that_requires_pushed_requests() {
    let own = oidc::Provider::start_requiring_par();
    // Pushing turned off: a clear error, and nothing sent.
    let front =
        builder_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET).pushed_authorization_requests(false).build().unwrap();
    let err = front.authorization_request(AuthorizationOptions::default()).await.unwrap_err();
    assert!(matches!(err, SignInError::PushRequired { .. }), "{err}");
    assert!(err.to_string().contains("turned off"), "{err}");
    assert_eq!(own.stats().await["par"], 0);

    // Pushed: the browser URL carries no redirect_uri, scope or challenge,
    // and the sign-in completes.
    let client = client_at(&own, oidc::CLIENT_ID, oidc::CLIENT_SECRET);
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    assert_eq!(query_keys(&request.url), ["client_id", "request_uri"]);
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    assert_eq!(client.complete_sign_in(&callback, request.pending).await.unwrap().claims.sub, "alice");

    // A request_uri that expired before the browser used it: the
    // provider's error, typed.
    let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
    own.advance_clock(Duration::from_secs(600)).await;
    let callback = Browser::new().sign_in(&request.url, "alice").await;
    let pending = request.pending.clone();
    let err = client.complete_sign_in(&callback, request.pending).await.unwrap_err();
    assert!(matches!(&err, SignInError::Provider { error, .. } if error == "invalid_request_uri"), "{err}");
    // Only an error may come back without the state: a code never does.
    let forged = format!("{}?code=a-code-from-elsewhere&iss={}", oidc::REDIRECT_URI, own.issuer);
    let err = client.complete_sign_in(&forged, pending).await.unwrap_err();
    assert!(matches!(err, SignInError::StateMismatch), "{err}");
}

/// Device sign-in (RFC 8628) against the real provider: a person types
/// the code at the verification URI, confirms, signs in and consents; the
/// waiting client gets a checked sign-in and a refresh token.
#[tokio::test]
async fn device_sign_in_end_to_end() {
    let provider = provider();
    let client = OidcClient::builder()
        .region(Region::custom(&provider.issuer).unwrap())
        .client_id(ClientId::new("filevine-cli").unwrap())
        .redirect_uri(RedirectUrl::new("http://127.0.0.1/callback").unwrap())
        .scopes("openid email offline_access".parse::<Scopes>().unwrap())
        .env(|_| None)
        .build()
        .unwrap();
    let device = client.device_authorization().await.unwrap();
    assert_eq!(device.interval, Duration::from_secs(5), "the RFC's default: the provider names none");
    let waiting = {
        let (client, device) = (client.clone(), device.clone());
        tokio::spawn(async move { client.complete_device_sign_in(&device).await })
    };
    let page =
        Browser::new().enter_device_code(device.verification_uri.as_str(), &device.user_code, "gina", true).await;
    assert!(page.contains("Sign-in Success"), "{page}");
    let signed_in = waiting.await.unwrap().unwrap();
    assert_eq!(signed_in.claims.sub, "gina");
    assert!(signed_in.token_set.refresh_token.is_some());
}
