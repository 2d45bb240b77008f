//! HTTPS to the identity provider, through the crate's crypto backend
//! (aws-lc-rs by default; ring in CI's `--features ring` run): the
//! handshake, certificate checks and the exchange over it.

use filevine_identity_ext::error::Report;
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{Credentials, Error, PersonalAccessToken, Region, TokenProvider};

use crate::support::tls::{CA_PEM, TlsFront};

const PAT: &str = "fvpat_tls";

async fn server_behind_tls() -> (TestServer, TlsFront) {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token(PAT);
    let front = TlsFront::start(server.url()).await;
    (server, front)
}

fn provider(front: &TlsFront, client: impl FnOnce() -> reqwest::Client) -> TokenProvider {
    // builder() first: under `ring` it installs the process's rustls
    // provider, which the client built next then uses.
    let builder = TokenProvider::builder();
    builder
        .env(|_| None)
        .http_client(client())
        .region(Region::custom(front.url()).unwrap())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(PAT).unwrap()))
        .max_attempts(1)
        .build()
        .unwrap()
}

fn client_trusting(pem: &[u8]) -> reqwest::Client {
    crate::support::http_builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_token_over_https_with_a_trusted_certificate() {
    let (server, front) = server_behind_tls().await;
    let provider = provider(&front, || client_trusting(CA_PEM));
    let token = provider.token().await.unwrap();
    assert!(!token.expose_secret().is_empty());
    assert_eq!(front.handshakes(), 1);
    assert_eq!(server.token_requests(), 1);
    // Cached: no second connection, no second exchange.
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_before_the_pat_is_sent() {
    let (server, front) = server_behind_tls().await;
    // A client of the application's own, built before it touches the SDK:
    // under `ring` it needs the provider installed first.
    filevine_identity_ext::crypto::install_default_provider();
    // The platform's roots only: the test CA is not among them.
    let client = reqwest::Client::builder().build().unwrap();
    let provider = provider(&front, || client);
    let err = provider.token().await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    // The cause, down the source chain: rustls refused the issuer.
    let report = Report(&err).to_string();
    assert!(report.contains("UnknownIssuer"), "{report}");
    assert!(!format!("{report} {err:?}").contains(PAT), "{report}");
    assert_eq!(front.handshakes(), 0);
    assert_eq!(server.token_requests(), 0);
}
