//! The client assertion (`private_key_jwt`, RFC 7523 §2.2, §3) the hooks of
//! the generated client put in each request that authenticates the client.

use filevine_identity::SecretString;

use super::client_key::ClientKey;
use crate::time::Clock;

/// How long an assertion is good for. Long enough for a slow network and a
/// little clock skew, short enough that a captured one is soon useless
/// (the server also refuses a `jti` it has seen).
pub(crate) const ASSERTION_LIFETIME_S: u64 = 60;

/// Signs assertions for one client at one provider.
pub(crate) struct PrivateKeyJwt {
    /// Signs with its own algorithm ([`ClientKey::algorithm`]).
    pub(crate) key: ClientKey,
    pub(crate) client_id: String,
    /// The issuer: RFC 7523 §3 makes the authorization server the audience.
    pub(crate) audience: String,
    pub(crate) clock: Clock,
}

impl PrivateKeyJwt {
    /// `iss` = `sub` = the client id, `aud` = the issuer, a fresh `jti`, `iat`
    /// now and `exp` a minute later.
    pub(crate) fn sign(&self) -> Result<SecretString, super::KeyError> {
        let now = self.clock.unix_seconds();
        let jti = crate::crypto::random_token(18).map_err(|_| super::KeyError::Signing("no randomness for a jti"))?;
        let alg = self.key.algorithm();
        let mut header = serde_json::json!({"alg": alg.as_str(), "typ": "JWT"});
        if let Some(kid) = self.key.key_id() {
            header["kid"] = kid.into();
        }
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "jti": jti,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        });
        self.key.signing_key().sign(alg, &header, &claims).map(SecretString::from)
    }
}

impl filevine_identity::ClientAssertion for PrivateKeyJwt {
    fn assertion(&self) -> Result<SecretString, String> {
        self.sign().map_err(|e| e.to_string())
    }
}
