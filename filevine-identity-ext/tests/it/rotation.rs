//! Credentials that change while the process runs: files re-read on
//! refresh, one retry after a refusal, two client secrets in a changeover.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use filevine_identity_ext::grant::{CredentialSource, FileCredentials};
use filevine_identity_ext::test_util::TestServer;
use filevine_identity_ext::{ClientId, ConfigError, Credentials, Error, PersonalAccessToken, TokenProvider};

fn token_of(server: &TestServer, n: usize) -> String {
    let form = &server.requests()[n].form;
    form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()).unwrap_or_default()
}

fn secret_of(server: &TestServer, n: usize) -> String {
    let form = &server.requests()[n].form;
    form.iter().find(|(k, _)| k == "client_secret").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// `FILEVINE_PAT_FILE` rewritten while the provider runs: the next refresh
/// sends the new PAT; no refresh, no read (the hot path never looks).
#[tokio::test]
async fn a_rewritten_pat_file_is_used_by_the_next_refresh() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_rotation_old");
    server.add_personal_access_token("fvpat_rotation_new");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pat");
    std::fs::write(&file, "fvpat_rotation_old\n").unwrap();
    let path = file.display().to_string();
    let provider = TokenProvider::builder()
        .env(move |name| (name == "FILEVINE_PAT_FILE").then(|| path.clone()))
        .region(server.region())
        .build()
        .unwrap();
    let first = provider.token().await.unwrap();
    assert_eq!(token_of(&server, 0), "fvpat_rotation_old");
    std::fs::write(&file, "fvpat_rotation_new_and_longer\n").unwrap();
    server.add_personal_access_token("fvpat_rotation_new_and_longer");
    assert!(provider.token().await.unwrap().same_token(&first), "cached: the file is not read");
    assert_eq!(server.token_requests(), 1);
    provider.invalidate();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
    assert_eq!(token_of(&server, 1), "fvpat_rotation_new_and_longer");
}

/// A source whose value changes between two reads (a file rewritten after
/// the refresh read it, a secret manager updated): the refused request is
/// retried exactly once, with the new value.
#[derive(Debug, Default)]
struct Rotating {
    reads: AtomicUsize,
    values: Mutex<Vec<&'static str>>,
}

#[async_trait::async_trait]
impl CredentialSource for Rotating {
    fn grant_type(&self) -> &'static str {
        "personal_access_token"
    }
    fn name(&self) -> String {
        "test:rotating".into()
    }
    async fn credentials(&self) -> Result<Vec<Credentials>, ConfigError> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        let values = self.values.lock().unwrap();
        let value = values[n.min(values.len() - 1)];
        Ok(vec![Credentials::personal_access_token(PersonalAccessToken::new(value)?)])
    }
}

#[tokio::test]
async fn a_revoked_pat_recovers_with_exactly_one_retry() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_rotated_in");
    let source = std::sync::Arc::new(Rotating {
        values: Mutex::new(vec!["fvpat_revoked", "fvpat_rotated_in"]),
        ..Rotating::default()
    });
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credential_source(SharedSource(source.clone()))
        .max_attempts(1)
        .build()
        .unwrap();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2, "the refused request and exactly one retry");
    assert_eq!((token_of(&server, 0).as_str(), token_of(&server, 1).as_str()), ("fvpat_revoked", "fvpat_rotated_in"));
    assert_eq!(source.reads.load(Ordering::SeqCst), 2);

    // Revoked with no new value: one request, the typed error, no retry.
    server.revoke_personal_access_token("fvpat_rotated_in");
    provider.invalidate();
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, Error::InvalidCredentials { .. }), "{error}");
    assert!(!error.to_string().contains("fvpat_"), "{error}");
    assert_eq!(server.token_requests(), 3);
}

#[derive(Debug)]
struct SharedSource(std::sync::Arc<Rotating>);

#[async_trait::async_trait]
impl CredentialSource for SharedSource {
    fn grant_type(&self) -> &'static str {
        self.0.grant_type()
    }
    fn name(&self) -> String {
        self.0.name()
    }
    async fn credentials(&self) -> Result<Vec<Credentials>, ConfigError> {
        self.0.credentials().await
    }
}

/// Two client secrets in the file during a changeover: the newer first, the
/// older once when the newer is refused; once the server has the newer, one
/// request.
#[tokio::test]
async fn two_client_secrets_during_a_changeover() {
    let server = TestServer::start().await.unwrap();
    server.add_client("reporting", "secret-2025");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client-secret");
    std::fs::write(&file, "secret-2026\nsecret-2025\n").unwrap();
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credential_source(FileCredentials::client_credentials(ClientId::new("reporting").unwrap(), &file))
        .max_attempts(1)
        .build()
        .unwrap();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 2);
    assert_eq!((secret_of(&server, 0).as_str(), secret_of(&server, 1).as_str()), ("secret-2026", "secret-2025"));
    // The identity provider now has the newer secret only.
    server.add_client("reporting", "secret-2026");
    provider.invalidate();
    provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 3);
    assert_eq!(secret_of(&server, 2), "secret-2026");
}

/// A missing file is a typed error at the first refresh naming the file,
/// and nothing is sent.
#[tokio::test]
async fn a_missing_file_is_a_typed_error_naming_it() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-pat");
    let provider = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .credential_source(FileCredentials::personal_access_token(&missing))
        .max_attempts(1)
        .build()
        .unwrap();
    let error = provider.token().await.unwrap_err();
    assert!(matches!(error, Error::Config(ConfigError::CredentialsFile { .. })), "{error}");
    assert!(error.to_string().contains("no-such-pat"), "{error}");
    assert_eq!(server.token_requests(), 0);
    // FILEVINE_CLIENT_SECRET_FILE without FILEVINE_CLIENT_ID: named at build.
    let error = TokenProvider::builder()
        .env(|name| (name == "FILEVINE_CLIENT_SECRET_FILE").then(|| "/run/secrets/x".to_owned()))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("FILEVINE_CLIENT_ID"), "{error}");
}
