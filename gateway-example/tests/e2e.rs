//! The generated client of `codegen/tests/fixtures/gateway/gateway.yaml`
//! (this crate, written by `filevine-codegen gateway`) against the test
//! server's gateway: every call carries the provider's token and the
//! client's user headers, a 401 is retried once with a fresh token, a DPoP
//! token goes with its proof, and the 204/207 bulk operation is one result
//! type.

use filevine_gateway_example::{Client, types};
use filevine_identity_ext::TokenProvider;
use filevine_identity_ext::api::{FilevineApi, FilevineUser};
use filevine_identity_ext::grant::{ClientId, Credentials, PersonalAccessToken};
use filevine_identity_ext::jose::ClientKey;
use filevine_identity_ext::test_util::TestServer;

const PAT: &str = "fvpat_gateway_example";

async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    server
}

fn provider(server: &TestServer) -> TokenProvider {
    TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .build()
        .unwrap()
}

fn header<'a>(request: &'a filevine_identity_ext::test_util::GatewayRequest, name: &str) -> Option<&'a str> {
    request.header(name)
}

#[tokio::test]
async fn calls_carry_the_token_and_the_users_headers_and_a_401_refreshes_once() {
    let server = server().await;
    let provider = provider(&server);
    let api = FilevineApi::new(provider.clone()).unwrap().with_user(FilevineUser { org_id: 42, user_id: 1001 });
    let client = Client::from_api(&api).unwrap();

    // A path parameter, a query array and a date-time.
    server.answer_next_gateway_request(
        200,
        Some(serde_json::json!({"items": [{"projectId": 7, "name": "Smith v. Jones", "createdAt": "2026-12-01T09:30:00Z"}], "hasMore": false})),
    );
    let phases = vec!["Intake".to_owned(), "Discovery".to_owned()];
    let since: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let list = client.list_projects(Some(10), None, Some(&phases), Some(&since)).await.unwrap().into_inner();
    assert_eq!((list.items[0].project_id, list.items[0].name.as_str(), list.has_more), (7, "Smith v. Jones", false));
    let sent = &server.gateway_log()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("GET", "/fv-app/v2/Projects"));
    assert_eq!(sent.query, "limit=10&phase=Intake&phase=Discovery&updatedSince=2026-11-01T00%3A00%3A00Z");
    let token = provider.token().await.unwrap();
    assert_eq!(header(sent, "authorization"), Some(format!("Bearer {}", token.expose_secret()).as_str()));
    assert_eq!((header(sent, "x-fv-orgid"), header(sent, "x-fv-userid")), (Some("42"), Some("1001")));

    // A uuid in the path; another user for one call.
    let note_id = uuid::Uuid::parse_str("6f1c2b8e-9c1d-4b7a-8f00-2b1e0c9d7a11").unwrap();
    server.answer_next_gateway_request(200, Some(serde_json::json!({"noteId": note_id, "body": "called the client"})));
    let other = client.with_user(FilevineUser { org_id: 43, user_id: 2002 });
    let note = other.get_note(7, &note_id).await.unwrap().into_inner();
    assert_eq!((note.note_id, note.body.as_str()), (Some(note_id), "called the client"));
    let sent = &server.gateway_log()[1];
    assert_eq!(sent.path, format!("/fv-app/v2/Projects/7/Notes/{note_id}"));
    assert_eq!((header(sent, "x-fv-orgid"), header(sent, "x-fv-userid")), (Some("43"), Some("2002")));

    // The token revoked: a 401, one refresh, the call repeated once.
    server.revoke_access_tokens();
    server.answer_next_gateway_request(200, Some(serde_json::json!({"projectId": 7, "name": "Smith v. Jones"})));
    let project = client.get_project(7).await.unwrap().into_inner();
    assert_eq!(project.project_id, 7);
    assert_eq!(server.gateway_requests(), 4, "the two calls, the 401 and its retry");
    assert_eq!(server.token_requests(), 2, "one refresh for the 401");
    // Still refused after the refresh: the 401 is the caller's, no loop.
    server.reject_next_gateway_requests(2);
    let err = client.get_project(7).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(server.gateway_requests(), 6);
}

#[tokio::test]
async fn the_bulk_operation_answers_207_or_204_as_one_result_type() {
    let server = server().await;
    let api = FilevineApi::new(provider(&server)).unwrap().with_user(FilevineUser { org_id: 42, user_id: 1001 });
    let client = Client::from_api(&api).unwrap();
    let item = uuid::Uuid::parse_str("0b6f9a52-2f4e-4d1c-9a55-7d3b8e1f4c20").unwrap();
    let tags = vec![types::TagRequest { item_id: item, tag: "urgent".to_owned() }];

    // 207: some failed, the body says which.
    server.answer_next_gateway_request(
        207,
        Some(serde_json::json!({"results": [{"itemId": item, "status": 404, "message": "no such item"}]})),
    );
    let partial = client.tag_projects_bulk(7, &tags).await.unwrap();
    assert_eq!(partial.status().as_u16(), 207);
    let results = partial.into_inner().expect("a 207 has a body").results;
    assert_eq!((results[0].item_id, results[0].status), (item, 404));
    let sent = &server.gateway_log()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/fv-app/v2/Projects/7/Tags/bulk"));
    assert_eq!(sent.body, format!(r#"[{{"itemId":"{item}","tag":"urgent"}}]"#));

    // 204: all applied, nothing to say.
    server.answer_next_gateway_request(204, None);
    let applied = client.tag_projects_bulk(7, &tags).await.unwrap();
    assert!(applied.into_inner().is_none(), "a 204 is None");
}

#[tokio::test]
async fn a_dpop_bound_token_goes_with_its_proof() {
    let server = server().await;
    // The P-256 key of the SDK's DPoP tests (a test key, public in this repository).
    let key = ClientKey::from_jwk(
        r#"{"kty":"EC","crv":"P-256","kid":"key-a","x":"oHA-qSWD32yP0REgUdhaAO0cyhgl0AkS0H8UmDWqb2M",
            "y":"oPhRkXBUJOoRubdjM7ZEzI4jCCBMdGPgrCNz3APsXwo","d":"fwb0hjTg-W_2kOPzr8dc5L82iGSFXlpeoJvZzaitFD8"}"#,
    )
    .unwrap();
    server.add_client_key("dpop-client", &key);
    server.require_dpop(true);
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::client_credentials_with_key(ClientId::new("dpop-client").unwrap(), key.clone()))
        .dpop(true)
        .build()
        .unwrap();
    let client = Client::from_provider(provider.clone()).unwrap().with_user(FilevineUser { org_id: 42, user_id: 1001 });
    server.answer_next_gateway_request(200, Some(serde_json::json!({"userId": 1001, "email": "ada@example.test"})));
    let me = client.get_me().await.unwrap().into_inner();
    assert_eq!(me.user_id, 1001);
    let sent = &server.gateway_log()[0];
    let token = provider.token().await.unwrap();
    assert_eq!(header(sent, "authorization"), Some(format!("DPoP {}", token.expose_secret()).as_str()));
    assert!(header(sent, "dpop").is_some_and(|proof| proof.split('.').count() == 3), "a proof for this request");
    assert!(server.proof_rejections().is_empty(), "{:?}", server.proof_rejections());
}
