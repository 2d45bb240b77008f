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

/// A provider whose credentials come from `source`, on `store`.
fn sourced(
    server: &TestServer,
    store: &std::sync::Arc<dyn filevine_identity_ext::store::TokenStore>,
    source: impl CredentialSource + 'static,
) -> TokenProvider {
    TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .store(store.clone())
        .credential_source(source)
        .max_attempts(1)
        .build()
        .unwrap()
}

/// Two deployments share one store and mount their PAT at the same path
/// (`/run/secrets/…` in each container): each gets its own token, under the
/// key of its own PAT (the key a fixed PAT gets), with or without an
/// application store key.
#[tokio::test]
async fn two_identities_behind_one_file_path_never_share_an_entry() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_deployment_a");
    server.add_personal_access_token("fvpat_deployment_b");
    let dir = tempfile::tempdir().unwrap();
    let store = filevine_identity_ext::store::open(&format!("file:{}", dir.path().join("tokens").display())).unwrap();
    let file = dir.path().join("pat");
    for named in [false, true] {
        let build = |file: &std::path::Path| {
            let builder = TokenProvider::builder()
                .env(|_| None)
                .region(server.region())
                .store(store.clone())
                .credential_source(FileCredentials::personal_access_token(file))
                .max_attempts(1);
            let builder =
                if named { builder.store_key(filevine_identity_ext::store::StoreKey::session("app")) } else { builder };
            builder.build().unwrap()
        };
        let before = server.token_requests();
        std::fs::write(&file, "fvpat_deployment_a\n").unwrap();
        let a = build(&file);
        let token_a = a.token().await.unwrap();
        std::fs::write(&file, "fvpat_deployment_b\n").unwrap();
        let b = build(&file);
        let token_b = b.token().await.unwrap();
        assert_ne!(token_a.expose_secret(), token_b.expose_secret(), "named: {named}");
        assert_eq!(server.token_requests() - before, 2, "one exchange each (named: {named})");
        assert_eq!(token_of(&server, before as usize), "fvpat_deployment_a");
        assert_eq!(token_of(&server, before as usize + 1), "fvpat_deployment_b");
        assert_ne!(a.store_key(), b.store_key());
        if !named {
            // The key a fixed PAT gets: one identity, one entry.
            let fixed = TokenProvider::builder()
                .env(|_| None)
                .region(server.region())
                .store(store.clone())
                .credentials(Credentials::personal_access_token(
                    PersonalAccessToken::new("fvpat_deployment_b").unwrap(),
                ))
                .build()
                .unwrap();
            assert_eq!(fixed.store_key(), b.store_key());
            assert_eq!(fixed.token().await.unwrap().expose_secret(), token_b.expose_secret());
            assert_eq!(server.token_requests() - before, 2);
        }
    }
}

/// The same with client credentials: two client ids whose secret files sit
/// at one path.
#[tokio::test]
async fn two_clients_behind_one_secret_path_never_share_an_entry() {
    let server = TestServer::start().await.unwrap();
    server.add_client("client-one", "secret-one");
    server.add_client("client-two", "secret-two");
    let dir = tempfile::tempdir().unwrap();
    let store = filevine_identity_ext::store::open(&format!("file:{}", dir.path().join("tokens").display())).unwrap();
    let file = dir.path().join("client-secret");
    std::fs::write(&file, "secret-one\n").unwrap();
    let one =
        sourced(&server, &store, FileCredentials::client_credentials(ClientId::new("client-one").unwrap(), &file));
    let token_one = one.token().await.unwrap();
    std::fs::write(&file, "secret-two\n").unwrap();
    let two =
        sourced(&server, &store, FileCredentials::client_credentials(ClientId::new("client-two").unwrap(), &file));
    let token_two = two.token().await.unwrap();
    assert_ne!(token_one.expose_secret(), token_two.expose_secret());
    assert_eq!(server.token_requests(), 2);
}

/// A rotated PAT (a new value for the same integration) costs one exchange
/// across the processes sharing the store: the first to see it exchanges
/// it under its new key, the others adopt that.
#[tokio::test]
async fn a_rotated_secret_costs_one_exchange_across_replicas() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_before_rotation");
    server.add_personal_access_token("fvpat_after_rotation");
    let dir = tempfile::tempdir().unwrap();
    let store = filevine_identity_ext::store::open(&format!("file:{}", dir.path().join("tokens").display())).unwrap();
    let file = dir.path().join("pat");
    std::fs::write(&file, "fvpat_before_rotation\n").unwrap();
    let replicas: Vec<TokenProvider> =
        (0..3).map(|_| sourced(&server, &store, FileCredentials::personal_access_token(&file))).collect();
    for replica in &replicas {
        replica.token().await.unwrap();
    }
    assert_eq!(server.token_requests(), 1);
    std::fs::write(&file, "fvpat_after_rotation\n").unwrap();
    let mut tokens = Vec::new();
    for replica in &replicas {
        replica.invalidate();
        tokens.push(replica.token().await.unwrap().expose_secret().to_owned());
    }
    assert_eq!(server.token_requests(), 2, "one exchange for the new PAT");
    assert_eq!(token_of(&server, 1), "fvpat_after_rotation");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

/// The source gives another identity between the choice of the entry and
/// the request (a file rewritten in between): nothing is sent for the first
/// key; the token is saved under the key of the PAT it was exchanged for.
#[tokio::test]
async fn a_source_rewritten_between_key_and_request_saves_under_the_sent_identity() {
    let server = TestServer::start().await.unwrap();
    server.add_personal_access_token("fvpat_later");
    let dir = tempfile::tempdir().unwrap();
    let store = filevine_identity_ext::store::open(&format!("file:{}", dir.path().join("tokens").display())).unwrap();
    let source = std::sync::Arc::new(Rotating {
        values: Mutex::new(vec!["fvpat_earlier", "fvpat_later"]),
        ..Rotating::default()
    });
    let provider = sourced(&server, &store, SharedSource(source.clone()));
    let token = provider.token().await.unwrap();
    assert_eq!(server.token_requests(), 1);
    assert_eq!(token_of(&server, 0), "fvpat_later");
    let fixed = TokenProvider::builder()
        .env(|_| None)
        .region(server.region())
        .store(store.clone())
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new("fvpat_later").unwrap()))
        .build()
        .unwrap();
    assert_eq!(provider.store_key(), fixed.store_key());
    assert_eq!(fixed.token().await.unwrap().expose_secret(), token.expose_secret());
    assert_eq!(server.token_requests(), 1);
}

/// A source beside fixed credentials, a token set or a stored session is
/// refused at build: the source would be asked for what the others name.
#[test]
fn a_source_with_other_credentials_is_refused_at_build() {
    let source = || FileCredentials::personal_access_token("/run/secrets/filevine-pat");
    let pat = Credentials::personal_access_token(PersonalAccessToken::new("fvpat_fixed").unwrap());
    let error =
        TokenProvider::builder().env(|_| None).credentials(pat).credential_source(source()).build().unwrap_err();
    assert!(matches!(error, ConfigError::SourceWithCredentials { other: "fixed credentials" }), "{error}");
    let error = TokenProvider::builder()
        .env(|_| None)
        .stored_session(ClientId::new("app").unwrap(), None)
        .credential_source(source())
        .build()
        .unwrap_err();
    assert!(matches!(error, ConfigError::SourceWithCredentials { other: "a stored session" }), "{error}");
    assert!(error.to_string().contains("credential_source"), "{error}");
}
