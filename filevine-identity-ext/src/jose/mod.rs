//! Keys and signed JWTs (JOSE) for the two ways a client proves more than
//! a shared secret:
//!
//! - [`ClientKey`]: a confidential client authenticates with a private key
//!   instead of a client secret (`private_key_jwt`, RFC 7523): every token,
//!   revocation and introspection request carries a fresh assertion signed
//!   with it. Set it with
//!   [`Credentials::client_credentials_with_key`](crate::grant::Credentials::client_credentials_with_key)
//!   (or [`with_client_key`](crate::grant::Credentials::with_client_key)) or
//!   `FILEVINE_CLIENT_KEY` (a PEM or JWK file) and
//!   `FILEVINE_CLIENT_KEY_ID`.
//! - [`DpopKey`]: sender-constrained tokens (DPoP, RFC 9449). With
//!   [`TokenProviderBuilder::dpop`](crate::provider::TokenProviderBuilder::dpop)
//!   or `FILEVINE_DPOP=true`, tokens are bound to a key pair the SDK makes
//!   and keeps with the token set; an [`AccessToken`](crate::grant::AccessToken) of
//!   type `DPoP` goes out only with a proof for its request.

mod assertion;
mod client_key;
mod der;
mod dpop;
mod error;
mod jws;
#[cfg(all(feature = "oidc", any(test, fuzzing, feature = "test-util")))]
pub(crate) mod test_key;

pub(crate) use assertion::PrivateKeyJwt;
pub use client_key::{ClientKey, MAX_KEY_FILE_BYTES};
pub use dpop::DpopKey;
pub(crate) use dpop::Prover;
// The test server computes a proof's key thumbprint the same way.
#[cfg(feature = "test-util")]
pub(crate) use dpop::thumbprint;
pub use error::KeyError;
pub use jws::Algorithm;
