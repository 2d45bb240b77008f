//! The tool's errors: one line on stderr that says what to do, and an exit
//! code (1 error, 2 usage, 4 sign-in required).

use filevine_identity_ext::api::ApiError;
use filevine_identity_ext::store::StoreError;
use filevine_identity_ext::{ConfigError, Error, SignInError};

/// Exit code: sign-in required.
pub const SIGN_IN_REQUIRED: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Nothing to get a token with, or the stored sign-in is no longer accepted.
    #[error("sign-in required: {0}")]
    SignInRequired(String),
    /// Something else that failed, with what to do in the message.
    #[error("{0}")]
    Failed(String),
    /// The command line or the configuration file is wrong.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Token(#[from] Error),
    #[error("{0}")]
    SignIn(#[from] SignInError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("the token cache: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::SignInRequired(_) => SIGN_IN_REQUIRED,
            Self::Usage(_) => 2,
            Self::Token(error) if error.needs_sign_in() => SIGN_IN_REQUIRED,
            Self::SignIn(SignInError::Token(error)) if error.needs_sign_in() => SIGN_IN_REQUIRED,
            _ => 1,
        }
    }

    /// What to do about it, when the message alone does not say.
    pub fn hint(&self) -> Option<&'static str> {
        match self.exit_code() {
            SIGN_IN_REQUIRED => Some("run `filevine-auth login` (or `login --with-pat`), or set FILEVINE_PAT"),
            // The library's messages say what to check already: once is enough.
            _ => None,
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
