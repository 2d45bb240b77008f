//! Proof of possession against the test server, which verifies what it is
//! sent (tests/test_util/proofs.rs): `private_key_jwt` client assertions
//! (RFC 7523) and DPoP-bound tokens (RFC 9449), at the token endpoint and
//! at the gateway, through a restart, and with bad keys and refusals.

use std::sync::Arc;

use filevine_identity_ext::jose::{Algorithm, ClientKey, DpopKey, KeyError};
use filevine_identity_ext::store::{MemoryStore, StoreKey};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{
    ClientId, ClientSecret, ConfigError, Credentials, Error, FilevineApi, PersonalAccessToken, RefreshToken,
    TokenProvider,
};

/// A P-256 key made for these tests.
const KEY_A: &str = r#"{"kty":"EC","crv":"P-256","kid":"key-a",
  "x":"oHA-qSWD32yP0REgUdhaAO0cyhgl0AkS0H8UmDWqb2M",
  "y":"oPhRkXBUJOoRubdjM7ZEzI4jCCBMdGPgrCNz3APsXwo",
  "d":"fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8"}"#;
/// RFC 7517 Appendix A.2's published P-256 example key.
const KEY_B: &str = r#"{"kty":"EC","crv":"P-256","kid":"key-b",
  "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
  "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
  "d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#;
/// The private parts, which nothing may ever show.
const PRIVATE: [&str; 2] = ["fwb0hjTg", "870MB6gfuTJ4"];

const PAT: &str = "fvpat_dpop_0001";
const CLIENT: &str = "svc-with-key";

use crate::support::identity::builder;

fn key_credentials(jwk: &str) -> Credentials {
    Credentials::client_credentials_with_key(ClientId::new(CLIENT).unwrap(), ClientKey::from_jwk(jwk).unwrap())
}

fn form(request: &filevine_identity_ext::test_util::RecordedRequest, name: &str) -> Option<String> {
    request.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn assert_no_key_material(text: &str) {
    for private in PRIVATE {
        assert!(!text.contains(private), "key material in {text}");
    }
}

#[tokio::test]
async fn private_key_jwt_signs_a_fresh_assertion_for_each_request_and_a_replay_is_refused() {
    let server = TestServer::start().await.unwrap();
    server.add_client_key(CLIENT, &ClientKey::from_jwk(KEY_A).unwrap());
    let provider = builder(&server).credentials(key_credentials(KEY_A)).build().unwrap();
    provider.token().await.unwrap();
    provider.invalidate();
    provider.token().await.unwrap();
    assert_eq!(server.grant_requests("client_credentials"), 2);
    let requests = server.requests();
    let assertions: Vec<_> = requests.iter().map(|r| form(r, "client_assertion").unwrap()).collect();
    assert_ne!(assertions[0], assertions[1], "a new jti per request");
    for request in &requests {
        assert_eq!(form(request, "client_secret"), None, "no secret on the wire");
        assert_eq!(request.header("authorization"), None, "no Basic either");
    }
    assert_eq!(server.proof_rejections(), Vec::<String>::new());

    // Sent again by someone who copied it: refused as a replay.
    let replay = crate::support::http()
        .post(format!("{}/connect/token", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(requests[0].body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("invalid_client"));
    assert_eq!(server.proof_rejections(), ["assertion: jti replayed"]);
}

#[tokio::test]
async fn a_key_the_provider_does_not_know_is_invalid_credentials_without_key_material() {
    let server = TestServer::start().await.unwrap();
    server.add_client_key(CLIENT, &ClientKey::from_jwk(KEY_A).unwrap());
    let provider = builder(&server).credentials(key_credentials(KEY_B)).build().unwrap();
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, Error::InvalidCredentials { .. }), "{error:?}");
    assert_no_key_material(&format!("{error} {error:?}"));
    assert_eq!(server.proof_rejections(), ["assertion: bad signature"]);
    assert_eq!(server.token_requests(), 1, "a refused client is not retried");
}

#[tokio::test]
async fn dpop_binds_the_token_and_the_gateway_takes_it_only_with_a_proof_from_its_key() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    let credentials = Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap());
    let provider = builder(&server).credentials(credentials).dpop(true).build().unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(token.token_type(), "DPoP");
    let key = token.dpop_key().expect("bound").clone();
    assert_eq!(server.bound_key(token.expose_secret()).as_deref(), Some(key.thumbprint()));
    assert!(token.authorization_header().to_str().unwrap().starts_with("DPoP "));

    let api = FilevineApi::new(provider.clone()).unwrap();
    api.get_user_orgs_with_token().await.unwrap();
    api.get_user_orgs_with_token().await.unwrap();
    // The generated client's gateway call (Create User Invite) too.
    let invite = filevine_identity_ext::api::identity::CreateUserRequest {
        tenant_id: "6f9619ff-8b86-d011-b42d-00c04fc964ff".parse().unwrap(),
        email: None,
        first_name: None,
        last_name: "Lovelace".to_owned(),
        products: vec![filevine_identity_ext::api::identity::FilevineProductType::Filevine],
        reference_object: None,
    };
    let as_user = api.with_user(filevine_identity_ext::api::FilevineUser { org_id: 42, user_id: 1001 });
    as_user.create_user_invite(&invite).await.unwrap();
    let log = server.gateway_log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].path, "/identity/user");
    assert!(log[2].header("dpop").is_some() && log[2].header("authorization").unwrap().starts_with("DPoP "));
    let log = &log[..2];
    let proofs: Vec<_> = log.iter().map(|r| r.header("dpop").unwrap().to_owned()).collect();
    assert_ne!(proofs[0], proofs[1], "a proof per request");
    assert!(log.iter().all(|r| r.header("authorization").unwrap().starts_with("DPoP ")));

    // A thief with the token: as Bearer, or with a proof from their own key.
    let url = format!("{}/gateway/fv-app/v2/utils/GetUserOrgsWithToken", server.url());
    let http = crate::support::http();
    let as_bearer = http.post(&url).bearer_auth(token.expose_secret()).send().await.unwrap();
    assert_eq!(as_bearer.status(), 401);
    let thief = DpopKey::generate().unwrap();
    let stolen = thief.proof_header("POST", &url.parse().unwrap(), Some(token.expose_secret())).unwrap();
    let other_key = http
        .post(&url)
        .header("authorization", format!("DPoP {}", token.expose_secret()))
        .header("dpop", stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(other_key.status(), 401);
    // A proof replayed from the log, for the right key and URL.
    let replayed = http
        .post(&url)
        .header("authorization", format!("DPoP {}", token.expose_secret()))
        .header("dpop", &proofs[0])
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);
    assert_eq!(
        server.proof_rejections(),
        ["a DPoP-bound token sent as Bearer", "the proof is from another key than the token's", "proof: jti replayed"]
    );
}

#[tokio::test]
async fn nonce_challenges_from_the_token_endpoint_and_the_gateway_are_answered_once() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server.require_dpop_nonce("token-nonce-1");
    server.require_gateway_dpop_nonce("gateway-nonce-1");
    let credentials = Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap());
    let provider = builder(&server).credentials(credentials).dpop(true).build().unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(server.token_requests(), 2, "the challenge and the repeat");
    let api = FilevineApi::new(provider.clone()).unwrap();
    api.get_user_orgs_with_token().await.unwrap();
    assert_eq!(server.gateway_requests(), 2, "the challenge and the repeat");
    // Remembered: the next request carries the nonce from the start.
    api.get_user_orgs_with_token().await.unwrap();
    assert_eq!(server.gateway_requests(), 3);
    assert_eq!(server.proof_rejections(), ["proof: nonce missing or stale", "proof: nonce missing or stale"]);
}

#[tokio::test]
async fn a_dpop_bound_refresh_token_survives_a_restart_through_the_store() {
    let server = TestServer::start().await.unwrap();
    server.add_client("partner-app", "partner-secret");
    server.add_refresh_token("rt-dpop-0");
    let store = Arc::new(MemoryStore::new());
    let session = StoreKey::session("user-dpop");
    let client = || (ClientId::new("partner-app").unwrap(), Some(ClientSecret::new("partner-secret").unwrap()));
    let (id, secret) = client();
    let one = builder(&server)
        .credentials(
            Credentials::refresh_token(RefreshToken::new("rt-dpop-0").unwrap()).with_client(id, secret.unwrap()),
        )
        .dpop(true)
        .store(store.clone())
        .store_key(session.clone())
        .build()
        .unwrap();
    let first = one.token().await.unwrap();
    let thumbprint = first.dpop_key().unwrap().thumbprint().to_owned();
    let rotated = one.refresh_token().unwrap();
    assert_eq!(server.bound_key(rotated.expose_secret()).as_deref(), Some(thumbprint.as_str()));
    drop(one);

    // A new process (or a replica) with only the store: it signs with the
    // stored key, which the rotated refresh token is bound to.
    let (id, secret) = client();
    let two = builder(&server).stored_session(id, secret).store(store.clone()).store_key(session).build().unwrap();
    let adopted = two.token().await.unwrap();
    assert_eq!(adopted.dpop_key().unwrap().thumbprint(), thumbprint, "the stored key, not a new one");
    two.invalidate();
    let refreshed = two.token().await.unwrap();
    assert_eq!(server.grant_requests("refresh_token"), 2);
    assert_eq!(server.bound_key(refreshed.expose_secret()).as_deref(), Some(thumbprint.as_str()));
    assert_eq!(server.proof_rejections(), Vec::<String>::new());
    assert_eq!(server.refresh_token_reuses(), 0);
}

#[tokio::test]
async fn a_server_that_demands_dpop_gets_it_from_then_on() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server.require_dpop(true);
    // Not asked for DPoP: the server's `invalid_dpop_proof` turns it on, the
    // request goes again with a proof, and every later one starts with one.
    let credentials = Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap());
    let provider = builder(&server).credentials(credentials).build().unwrap();
    let token = provider.token().await.unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(server.token_requests(), 2, "the refusal and the repeat");
    assert_eq!(server.proof_rejections(), ["token request without a DPoP proof"]);
    provider.invalidate();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 3);
    assert_eq!(server.proof_rejections().len(), 1);
    // A refusal that is not about DPoP is not repeated.
    let wrong = Credentials::personal_access_token(PersonalAccessToken::new("fvpat_unknown").unwrap());
    let error = builder(&server).credentials(wrong).build().unwrap().token().await.unwrap_err();
    assert!(matches!(error, Error::InvalidCredentials { .. }), "{error}");
    assert_eq!(server.token_requests(), 5, "refused without a proof, then (DPoP demanded) with one");
}

#[tokio::test]
async fn a_sign_in_at_a_server_that_demands_dpop_is_bound_and_the_next_starts_bound() {
    use filevine_identity_ext::oidc::{AuthorizationOptions, RedirectUrl};
    let server = TestServer::start().await.unwrap();
    let callback = "http://127.0.0.1:7059/signin-oidc";
    server.add_sign_in_client("partner-app", Some("partner-secret"), &[callback], &[]);
    server.require_dpop(true);
    let client = filevine_identity_ext::OidcClient::builder()
        .region(server.region())
        .client_id(ClientId::new("partner-app").unwrap())
        .client_secret(ClientSecret::new("partner-secret").unwrap())
        .redirect_uri(RedirectUrl::new(callback).unwrap())
        .env(|_| None)
        .build()
        .unwrap();
    let http = crate::support::http_no_redirects();
    for (round, exchanges) in [(1, 2), (2, 3)] {
        let request = client.authorization_request(AuthorizationOptions::default()).await.unwrap();
        let answer = http.get(request.url.clone()).send().await.unwrap();
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        let signed_in = client.complete_sign_in(&location, request.pending).await.unwrap();
        let access = &signed_in.token_set.access_token;
        assert_eq!(access.token_type(), "DPoP", "round {round}");
        let key = access.dpop_key().unwrap();
        assert_eq!(server.bound_key(access.expose_secret()).as_deref(), Some(key.thumbprint()));
        assert_eq!(server.grant_requests("authorization_code"), exchanges, "round {round}");
        // userinfo with a proof; a copy of the token as Bearer is refused.
        client.userinfo(access, &signed_in.claims.sub).await.unwrap();
        let as_bearer = http
            .get(format!("{}/connect/userinfo", server.url()))
            .bearer_auth(access.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(as_bearer.status(), 401, "round {round}");
    }
    assert_eq!(
        server.proof_rejections(),
        [
            "token request without a DPoP proof",
            "a DPoP-bound token sent as Bearer",
            "a DPoP-bound token sent as Bearer"
        ]
    );
}

#[tokio::test]
async fn bad_keys_are_typed_errors_that_name_the_file_or_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let error = ClientKey::from_file(&missing).unwrap_err();
    assert!(matches!(error, KeyError::Unreadable { .. }) && error.to_string().contains("missing.pem"), "{error}");

    let public = dir.path().join("public.pem");
    std::fs::write(&public, "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n").unwrap();
    let error = ClientKey::from_file(&public).unwrap_err();
    assert!(matches!(error, KeyError::Unsupported { .. }) && error.to_string().contains("public.pem"), "{error}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n").unwrap();
    assert!(matches!(ClientKey::from_file(&garbage).unwrap_err(), KeyError::Unsupported { .. }));

    let jwk = dir.path().join("key.jwk");
    std::fs::write(&jwk, KEY_A).unwrap();
    let error = ClientKey::from_file(&jwk).unwrap().with_key_id("another").unwrap_err();
    assert!(matches!(error, KeyError::KidMismatch { .. }), "{error}");
    assert!(error.to_string().contains("key.jwk") && error.to_string().contains("key-a"), "{error}");
    assert_no_key_material(&format!("{error} {error:?}"));
    let error = ClientKey::from_jwk(KEY_A).unwrap().with_algorithm(Algorithm::Rs256).unwrap_err();
    assert!(error.to_string().contains("RS256"), "{error}");
    // x and y of one key, d of another: not one pair.
    let mismatched =
        KEY_A.replace("fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8", "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
    let error = ClientKey::from_jwk(&mismatched).unwrap_err();
    assert!(
        matches!(error, KeyError::Malformed { .. }) && error.to_string().contains("not one P-256 key pair"),
        "{error}"
    );
    let public_jwk = KEY_A.replace(r#""d":"fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8""#, r#""use":"sig""#);
    assert!(matches!(ClientKey::from_jwk(&public_jwk).unwrap_err(), KeyError::Unsupported { .. }));

    // From the environment: read on the first request (building does no
    // I/O), and the error names the variable's file.
    let server = TestServer::start().await.unwrap();
    let path = missing.display().to_string();
    let provider = TokenProvider::builder()
        .env(move |name| match name {
            "FILEVINE_CLIENT_ID" => Some(CLIENT.into()),
            "FILEVINE_CLIENT_KEY" => Some(path.clone()),
            _ => None,
        })
        .region(server.region())
        .build()
        .unwrap();
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, Error::Config(ConfigError::ClientKey(KeyError::Unreadable { .. }))), "{error:?}");
    assert_eq!(server.token_requests(), 0, "nothing sent without a key");
    let both = TokenProvider::builder()
        .env(|name| match name {
            "FILEVINE_CLIENT_ID" => Some(CLIENT.into()),
            "FILEVINE_CLIENT_KEY" => Some("/k.pem".into()),
            "FILEVINE_CLIENT_SECRET" => Some("s".into()),
            _ => None,
        })
        .region(server.region())
        .build()
        .unwrap_err();
    assert!(matches!(both, ConfigError::ClientAuth { .. }), "{both:?}");
    let dpop = TokenProvider::builder()
        .env(|name| match name {
            "FILEVINE_PAT" => Some(PAT.into()),
            "FILEVINE_DPOP" => Some("maybe".into()),
            _ => None,
        })
        .region(server.region())
        .build()
        .unwrap_err();
    assert!(dpop.to_string().contains("FILEVINE_DPOP"), "{dpop}");
}

#[test]
fn keys_and_proofs_never_show_key_material() {
    let key = ClientKey::from_jwk(KEY_A).unwrap();
    assert_no_key_material(&format!("{key:?}"));
    let dpop = DpopKey::generate().unwrap();
    let shown = format!("{dpop:?}");
    assert!(shown.contains("[REDACTED]") && shown.contains(dpop.thumbprint()), "{shown}");
    let proof = dpop.proof_header("GET", &"https://api.example/x".parse().unwrap(), None).unwrap();
    assert_eq!(format!("{proof:?}"), "Sensitive");
}
