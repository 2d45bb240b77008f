//! A blocking token provider, for programs without an async runtime
//! (feature `blocking`).
//!
//! [`TokenProvider`] wraps the async [`crate::provider::TokenProvider`]: the same
//! cache, the same single flight, the same guarantee that `token()` never
//! returns a token past its deadline, the same token stores. Its refreshes
//! run on a small Tokio runtime of its own (one worker thread, named
//! `filevine-identity`), which lives as long as the last clone of the
//! provider. Like reqwest's blocking client, it must not be used from
//! inside an async runtime: there, use the async provider (calling
//! [`TokenProvider::token`] inside a runtime returns
//! [`Error::BlockingInsideRuntime`] instead of blocking a runtime thread).
//!
//! ```no_run
//! use filevine_identity_ext::blocking::TokenProvider;
//! use filevine_identity_ext::{Credentials, PersonalAccessToken};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let provider = TokenProvider::new(
//!         filevine_identity_ext::TokenProvider::builder()
//!             .credentials(Credentials::personal_access_token(PersonalAccessToken::new(
//!                 std::env::var("FILEVINE_PAT")?,
//!             )?)),
//!     )?;
//!     let token = provider.token()?; // cached until it nears its deadline
//!     let response = std::process::Command::new("curl")
//!         .arg("-H")
//!         .arg(format!("Authorization: Bearer {}", token.expose_secret()))
//!         .arg("https://api.filevine.io/fv-app/v2/Users/Me")
//!         .status()?;
//!     # drop(response);
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::{ConfigError, Error};
use crate::grant::{AccessToken, IdToken, RefreshToken};
use crate::provider::TokenProviderBuilder;

/// The runtime the refreshes run on; shut down without waiting when the
/// last provider clone goes (even from inside another runtime, where
/// dropping a `Runtime` would panic).
struct Worker(Mutex<Option<tokio::runtime::Runtime>>);

impl Drop for Worker {
    fn drop(&mut self) {
        let runtime = self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

/// A token provider for blocking code; see the [module](self) docs.
#[derive(Clone)]
pub struct TokenProvider {
    inner: crate::provider::TokenProvider,
    /// Held, not read: the runtime lives as long as the last clone.
    _worker: Arc<Worker>,
    handle: tokio::runtime::Handle,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::TokenProvider").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// Builds the provider `builder` describes, with a runtime of its own.
    ///
    /// # Errors
    /// [`Error::Config`] for a configuration the builder refuses, or when
    /// the runtime thread cannot be started.
    pub fn new(builder: TokenProviderBuilder) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("filevine-identity")
            .enable_all()
            .build()
            .map_err(|e| ConfigError::Runtime { reason: e.to_string() })?;
        let handle = runtime.handle().clone();
        // Built inside the runtime, so the provider's refresh tasks and
        // timers run there whichever thread calls token().
        let inner = {
            let _entered = handle.enter();
            builder.build()?
        };
        Ok(Self { inner, _worker: Arc::new(Worker(Mutex::new(Some(runtime)))), handle })
    }

    /// A valid access token: from the cache, or after a refresh, blocking
    /// the calling thread meanwhile. Concurrent callers share one refresh.
    ///
    /// # Errors
    /// As [`crate::provider::TokenProvider::token`]; [`Error::BlockingInsideRuntime`]
    /// when called from inside an async runtime.
    pub fn token(&self) -> Result<AccessToken, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInsideRuntime);
        }
        self.handle.block_on(self.inner.token())
    }

    /// Drops the cached token: the next [`TokenProvider::token`] refreshes.
    pub fn invalidate(&self) {
        self.inner.invalidate();
    }

    /// The current refresh token, if the provider has one.
    pub fn refresh_token(&self) -> Option<RefreshToken> {
        self.inner.refresh_token()
    }

    /// The most recent ID token a refresh response carried, if any.
    pub fn latest_id_token(&self) -> Option<IdToken> {
        self.inner.latest_id_token()
    }

    /// The async provider underneath, for code that has a runtime after all.
    pub fn as_async(&self) -> &crate::provider::TokenProvider {
        &self.inner
    }
}
