//! Any progenitor-generated client (here, a slice of the API gateway) gets
//! the provider's tokens and the 401 → refresh-once behaviour by taking
//! `BearerAuth` as its inner type and calling it from its hooks.

use filevine_identity_ext::api::BearerAuth;
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};

progenitor::generate_api!(spec = "tests/it/gateway-openapi.yaml", inner_type = filevine_identity_ext::api::BearerAuth);

impl ClientHooks<BearerAuth> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        self.inner().authorize(request).await.map(drop).map_err(|e| progenitor_client::Error::Custom(e.to_string()))
    }

    async fn exec(&self, request: reqwest::Request, _: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        self.inner().execute(self.client(), request).await
    }
}

#[tokio::test]
async fn a_generated_client_is_authenticated_and_retries_a_401_once() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_gen");
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_gen").unwrap()))
        .build()
        .unwrap();
    let gateway = provider.region().gateway_url().unwrap().to_owned();
    let client = Client::new_with_client(&gateway, crate::support::http(), BearerAuth::new(provider.clone()));

    let orgs = client.get_user_orgs_with_token().await.unwrap().into_inner();
    assert_eq!(orgs.user.user_id.native, 1001);
    assert_eq!(orgs.orgs[0].org_id, 42);
    let token = provider.token().await.unwrap();
    let sent = server.gateway_log()[0].header("authorization").unwrap().to_owned();
    assert_eq!(sent, format!("Bearer {}", token.expose_secret()));

    server.revoke_access_tokens();
    client.get_user_orgs_with_token().await.unwrap();
    assert_eq!(server.gateway_requests(), 3, "one 401 and one retry");
    assert_eq!(server.token_requests(), 2);

    server.reject_next_gateway_requests(2);
    let err = client.get_user_orgs_with_token().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(server.gateway_requests(), 5);
}
