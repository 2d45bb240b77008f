//! The identity side every provider test starts from: a test server that
//! knows a PAT (and a client), and a provider builder that reads no
//! process environment.

use filevine_identity_ext::grant::{Credentials, PersonalAccessToken};
use filevine_identity_ext::provider::{TokenProvider, TokenProviderBuilder};
use filevine_identity_ext::test_util::TestServer;

/// A test server that knows `pat` and, when given, the client `(id, secret)`.
pub async fn server_with(pat: &str, client: Option<(&str, &str)>) -> TestServer {
    let server = TestServer::start().await.expect("a test server");
    server.add_personal_access_token(pat);
    if let Some((id, secret)) = client {
        server.add_client(id, secret);
    }
    server
}

/// A builder for `server`'s region that reads no process environment.
pub fn builder(server: &TestServer) -> TokenProviderBuilder {
    TokenProvider::builder().env(|_| None).region(server.region())
}

/// PAT credentials.
pub fn pat(pat: &str) -> Credentials {
    Credentials::personal_access_token(PersonalAccessToken::new(pat).expect("a PAT"))
}
