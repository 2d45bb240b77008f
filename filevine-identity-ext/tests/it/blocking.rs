//! The blocking facade from plain `#[test]` functions: no runtime in the
//! test; the test server runs on a runtime of the test's own on other
//! threads.

use std::sync::Arc;

use filevine_identity_ext::Error;
use filevine_identity_ext::blocking::TokenProvider;
use filevine_identity_ext::store::MemoryStore;
use filevine_identity_ext::test_util::{Failure, TestServer};

const PAT: &str = "fvpat_blocking_5e2f";

/// A test server on a runtime the caller keeps alive.
fn server() -> (tokio::runtime::Runtime, TestServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = runtime.block_on(TestServer::start()).unwrap();
    server.add_personal_access_token(PAT);
    (runtime, server)
}

fn builder(server: &TestServer) -> filevine_identity_ext::provider::TokenProviderBuilder {
    crate::support::identity::builder(server).credentials(crate::support::identity::pat(PAT)).max_attempts(1)
}

#[test]
fn tokens_are_cached_and_shared_by_threads() {
    let (_runtime, server) = server();
    let provider = TokenProvider::new(builder(&server)).unwrap();
    let first = provider.token().unwrap();
    assert!(server.is_valid_access_token(first.expose_secret()));
    assert!(provider.token().unwrap().same_token(&first));
    assert_eq!(server.token_requests(), 1);

    // Eight threads after an invalidation: one refresh between them.
    provider.invalidate();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let provider = provider.clone();
            std::thread::spawn(move || provider.token().map(|t| t.expose_secret().to_owned()))
        })
        .collect();
    let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
    assert_eq!(server.token_requests(), 2);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

#[test]
fn errors_are_the_async_providers_and_the_store_works_too() {
    let (_runtime, server) = server();
    let store = Arc::new(MemoryStore::new());
    let provider = TokenProvider::new(builder(&server).store(Arc::clone(&store))).unwrap();
    server.fail_next(Failure::filevine_envelope(403, "Forbidden"));
    assert!(matches!(provider.token(), Err(Error::Forbidden { status: 403, .. })));
    provider.token().unwrap();
    // A second provider on the same store: served from it, no request.
    let replica = TokenProvider::new(builder(&server).store(Arc::clone(&store))).unwrap();
    replica.token().unwrap();
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn inside_a_runtime_it_refuses_instead_of_blocking_and_drops_cleanly() {
    let (runtime, server) = server();
    let provider = TokenProvider::new(builder(&server)).unwrap();
    let moved = provider.clone();
    let refused = runtime.block_on(async move {
        let refused = matches!(moved.token(), Err(Error::BlockingInsideRuntime));
        // The last-but-one clone dropped inside a runtime: no panic.
        drop(moved);
        refused
    });
    assert!(refused);
    assert_eq!(server.token_requests(), 0);
    // The last clone dropped inside a runtime shuts its own down quietly.
    runtime.block_on(async move { drop(provider) });
}

#[test]
fn a_bad_configuration_is_an_error_not_a_panic() {
    let err = TokenProvider::new(filevine_identity_ext::TokenProvider::builder().env(|_| None)).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}
