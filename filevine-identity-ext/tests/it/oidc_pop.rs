//! Partner sign-in with proof of possession against the real OpenID
//! provider (tests/oidc-provider/server.mjs): a client that authenticates
//! with `private_key_jwt` (RFC 7523) and gets only DPoP-bound tokens
//! (RFC 9449, with server nonces on every proof), and an RSA client whose
//! provider accepts PS256 assertions only.

use filevine_identity_ext::jose::{ClientKey, DpopKey};
use filevine_identity_ext::oidc::{OidcClientBuilder, RedirectUrl};
use filevine_identity_ext::{ClientId, ClientSecret, ConfigError, Error, OidcClient, Region, Scopes, SignInError};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use crate::support::oidc::{self, Browser, provider};

const JWT_CLIENT: &str = "partner-app-jwt";
const RSA_CLIENT: &str = "partner-app-rsa";

/// The clients' private keys, which the provider made and registered.
struct Keys {
    ec_jwk: String,
    ec_d: String,
    rsa_pem: String,
    rsa_kid: String,
}

async fn keys() -> Keys {
    let keys = provider().harness("client-keys", None).await;
    let text = |name: &str| keys[name].as_str().unwrap().to_owned();
    Keys {
        ec_jwk: keys["ec_jwk"].to_string(),
        ec_d: keys["ec_jwk"]["d"].as_str().unwrap().to_owned(),
        rsa_pem: text("rsa_pem"),
        rsa_kid: text("rsa_kid"),
    }
}

fn builder(client_id: &str) -> OidcClientBuilder {
    OidcClient::builder()
        .region(Region::custom(&provider().issuer).unwrap())
        .client_id(ClientId::new(client_id).unwrap())
        .redirect_uri(RedirectUrl::new(oidc::REDIRECT_URI).unwrap())
        .scopes(Scopes::partner_app())
        .env(|_| None)
}

async fn sign_in(client: &OidcClient, login: &str) -> Result<filevine_identity_ext::oidc::SignedIn, SignInError> {
    let request = client.authorization_request(Default::default()).await?;
    let callback = Browser::new().sign_in(&request.url, login).await;
    client.complete_sign_in(&callback, request.pending).await
}

/// The userinfo endpoint, for requests made by hand.
async fn userinfo_url(client: &OidcClient) -> url::Url {
    client.metadata().await.unwrap().userinfo_endpoint().unwrap().clone()
}

/// The `error` of a `WWW-Authenticate` answer.
fn challenge(response: &reqwest::Response) -> String {
    response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn private_key_jwt_and_dpop_sign_in_userinfo_refresh_and_revocation() {
    let keys = keys().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("partner-app-jwt.jwk");
    std::fs::write(&key_file, &keys.ec_jwk).unwrap();
    // Everything from the environment, as the example app and the CLI read it.
    let issuer = provider().issuer.clone();
    let path = key_file.display().to_string();
    let client = OidcClient::builder()
        .env(move |name| match name {
            "FILEVINE_AUTHORITY" => Some(issuer.clone()),
            "FILEVINE_CLIENT_ID" => Some(JWT_CLIENT.to_owned()),
            "FILEVINE_CLIENT_KEY" => Some(path.clone()),
            "FILEVINE_CLIENT_KEY_ID" => Some("partner-app-jwt-1".to_owned()),
            "FILEVINE_DPOP" => Some("true".to_owned()),
            "FILEVINE_REDIRECT_URI" => Some(oidc::REDIRECT_URI.to_owned()),
            "FILEVINE_SCOPES" => Some("openid email profile offline_access".to_owned()),
            _ => None,
        })
        .build()
        .unwrap();

    let signed_in = sign_in(&client, "carol").await.expect("sign-in with private_key_jwt and DPoP");
    assert_eq!(signed_in.claims.sub, "carol");
    let access = signed_in.token_set.access_token.clone();
    assert_eq!(access.token_type(), "DPoP");
    let key = access.dpop_key().expect("bound to a key").clone();

    // userinfo goes with a proof (and the nonce the provider asks for).
    let info = client.userinfo(&access, "carol").await.expect("userinfo with a DPoP token");
    assert_eq!(info.profile.email.as_deref(), Some("carol@example.com"));

    // A copy of the token is worth nothing: as Bearer, or with a proof from
    // another key (carrying a valid server nonce, so only the key is wrong).
    let url = userinfo_url(&client).await;
    let http = crate::support::http();
    let as_bearer = http.get(url.clone()).bearer_auth(access.expose_secret()).send().await.unwrap();
    assert_eq!(as_bearer.status(), 401);
    assert!(challenge(&as_bearer).contains("invalid_token"), "{}", challenge(&as_bearer));
    let thief = DpopKey::generate().unwrap();
    let ask = |proof: reqwest::header::HeaderValue| {
        http.get(url.clone())
            .header(AUTHORIZATION, format!("DPoP {}", access.expose_secret()))
            .header("DPoP", proof)
            .send()
    };
    let first = ask(thief.proof_header("GET", &url, Some(access.expose_secret())).unwrap()).await.unwrap();
    assert_eq!(first.status(), 401);
    assert!(challenge(&first).contains("use_dpop_nonce"), "{}", challenge(&first));
    let nonce = first.headers().get("dpop-nonce").expect("a nonce").to_str().unwrap().to_owned();
    thief.remember_nonce(&url, &nonce);
    let stolen = ask(thief.proof_header("GET", &url, Some(access.expose_secret())).unwrap()).await.unwrap();
    assert_eq!(stolen.status(), 401);
    let refused = challenge(&stolen);
    assert!(refused.contains("invalid_token") || refused.contains("invalid_dpop_proof"), "{refused}");
    assert!(!refused.contains("use_dpop_nonce"), "{refused}");

    // The refresh is signed by the same key: the new token is bound to it.
    let provider = client.token_provider(signed_in.token_set.clone()).build().unwrap();
    provider.invalidate();
    let refreshed = provider.token().await.expect("refresh with an assertion and a proof");
    assert!(!refreshed.same_token(&access));
    assert_eq!(refreshed.token_type(), "DPoP");
    assert_eq!(refreshed.dpop_key().unwrap().thumbprint(), key.thumbprint());
    client.userinfo(&refreshed, "carol").await.expect("userinfo after the refresh");

    // Introspection and revocation authenticate with assertions too.
    let answer = client.introspect(refreshed.expose_secret()).await.unwrap();
    assert_eq!((answer.active, answer.subject.as_deref()), (true, Some("carol")));
    client.sign_out(&provider).await.expect("revocation with private_key_jwt");
    let answer = client.introspect(refreshed.expose_secret()).await.unwrap();
    assert!(!answer.active);
    let err = client.userinfo(&refreshed, "carol").await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { status: 401, .. })), "{err:?}");

    // No key material, token or proof in what a client or an error shows.
    let shown = format!("{client:?} {provider:?} {access:?} {err} {err:?}");
    for secret in [keys.ec_d.as_str(), access.expose_secret(), refreshed.expose_secret()] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn a_client_bound_to_dpop_must_ask_for_it_at_this_provider() {
    let keys = keys().await;
    // oidc-provider refuses a DPoP-bound client's code exchange without a
    // proof with a plain `invalid_grant` ("grant request is invalid"), which
    // says nothing of DPoP: the SDK cannot tell it from a bad code, so it
    // does not guess (a retry of a refresh token on a guess could trip
    // reuse detection). Such a client sets `dpop(true)`.
    let client = builder(JWT_CLIENT).client_key(ClientKey::from_jwk(&keys.ec_jwk).unwrap()).build().unwrap();
    let err = sign_in(&client, "dave").await.unwrap_err();
    assert!(matches!(err, SignInError::CodeRejected { status: 400, .. }), "{err:?}");
    let client = builder(JWT_CLIENT).client_key(ClientKey::from_jwk(&keys.ec_jwk).unwrap()).dpop(true).build().unwrap();
    let signed_in = sign_in(&client, "dave").await.expect("sign-in with dpop(true)");
    let access = signed_in.token_set.access_token.clone();
    assert_eq!(access.token_type(), "DPoP");
    client.userinfo(&access, "dave").await.unwrap();
}

#[tokio::test]
async fn an_rsa_key_signs_ps256_where_the_provider_refuses_rs256() {
    let keys = keys().await;
    let key = ClientKey::from_pem(&keys.rsa_pem).unwrap().with_key_id(keys.rsa_kid.clone()).unwrap();
    assert_eq!(key.algorithm().as_str(), "RS256");
    let client = builder(RSA_CLIENT).client_key(key).build().unwrap();
    let discovered = client.metadata().await.unwrap();
    assert_eq!(discovered.document().token_endpoint_auth_signing_alg_values_supported, ["ES256", "PS256"]);
    let signed_in = sign_in(&client, "erin").await.expect("sign-in with a PS256 assertion");
    // Not asked for, not demanded: a bearer token.
    assert_eq!(signed_in.token_set.access_token.token_type(), "Bearer");
    assert!(signed_in.token_set.access_token.dpop_key().is_none());
    let provider = client.token_provider(signed_in.token_set).build().unwrap();
    provider.invalidate();
    provider.token().await.expect("refresh with a PS256 assertion");
}

#[tokio::test]
async fn a_key_the_provider_does_not_know_and_bad_configurations_are_named() {
    // A key of the right type that is not the registered one: the provider
    // refuses the client, and the error shows nothing of the key.
    let stranger = r#"{"kty":"EC","crv":"P-256","kid":"partner-app-jwt-1",
      "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
      "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
      "d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#;
    let client = builder(JWT_CLIENT).client_key(ClientKey::from_jwk(stranger).unwrap()).dpop(true).build().unwrap();
    let err = sign_in(&client, "frank").await.unwrap_err();
    assert!(matches!(err, SignInError::Token(Error::InvalidCredentials { status: 401, .. })), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("870MB6gfuTJ4"), "{shown}");

    // A secret and a key: one or the other.
    let err = builder(JWT_CLIENT)
        .client_key(ClientKey::from_jwk(stranger).unwrap())
        .client_secret(ClientSecret::new("s3cret").unwrap())
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::ClientAuth { .. }), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    // private_key_jwt without a key.
    let err = builder(JWT_CLIENT)
        .auth_method(filevine_identity_ext::oidc::ClientAuthMethod::PrivateKeyJwt)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "client authentication: private_key_jwt needs a client key");
    // A key file that is not there: named when the first request needs it
    // (building read nothing).
    let client = builder(JWT_CLIENT)
        .env(|name| (name == "FILEVINE_CLIENT_KEY").then(|| "/nonexistent/partner.pem".to_owned()))
        .build()
        .expect("building reads no file");
    let err = sign_in(&client, "frank").await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/partner.pem"), "{err}");
    // FILEVINE_DPOP that is not a boolean.
    let err =
        builder(JWT_CLIENT).env(|name| (name == "FILEVINE_DPOP").then(|| "maybe".to_owned())).build().unwrap_err();
    assert!(err.to_string().contains("FILEVINE_DPOP"), "{err}");
}

#[tokio::test]
async fn a_pushed_request_binds_the_code_to_the_sign_ins_dpop_key() {
    let keys = keys().await;
    let client = builder(JWT_CLIENT).client_key(ClientKey::from_jwk(&keys.ec_jwk).unwrap()).dpop(true).build().unwrap();
    // The push carries a proof (the provider demands a nonce in every
    // one: a second try) and a client assertion; the pending sign-in keeps
    // the key.
    let request = client.authorization_request(Default::default()).await.unwrap();
    let keys_in_url: Vec<_> = request.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys_in_url, ["client_id", "request_uri"]);
    let kept = serde_json::to_value(&request.pending).unwrap();
    assert!(kept["dpop_key"].as_str().is_some_and(|key| key.len() > 100), "{kept}");
    assert!(format!("{:?}", request.pending).contains("dpop_key: Some("));
    assert!(!format!("{:?}", request.pending).contains(kept["dpop_key"].as_str().unwrap()));
    // The pending sign-in without its key: the exchange proves another key,
    // and the provider refuses the code bound to the first.
    let mut unbound = kept.clone();
    unbound.as_object_mut().unwrap().remove("dpop_key");
    let unbound = serde_json::from_value(unbound).unwrap();
    let callback = Browser::new().sign_in(&request.url, "erin").await;
    let err = client.complete_sign_in(&callback, unbound).await.unwrap_err();
    assert!(matches!(err, SignInError::CodeRejected { .. }), "{err:?}");
    // With it (after a session store's JSON round trip), the sign-in
    // completes with tokens bound to that key.
    let request = client.authorization_request(Default::default()).await.unwrap();
    let pending = serde_json::from_value(serde_json::to_value(&request.pending).unwrap()).unwrap();
    let callback = Browser::new().sign_in(&request.url, "erin").await;
    let signed_in = client.complete_sign_in(&callback, pending).await.unwrap();
    assert_eq!(signed_in.token_set.access_token.token_type(), "DPoP");
    client.userinfo(&signed_in.token_set.access_token, "erin").await.unwrap();
}
