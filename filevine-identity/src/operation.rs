//! What the generated [`operations`](crate::operations) table is made of:
//! an operation's method, path and security requirements.

/// A kind of credentials an operation's `security` can ask for; the spec's
/// `components/securitySchemes` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `Authorization: Bearer <access token>` (RFC 6750).
    Bearer,
    /// `Authorization: Basic` with the client id and secret
    /// (`client_secret_basic`, RFC 6749 §2.3.1). With a
    /// [`ClientAssertion`](crate::ClientAssertion) in the options, the hooks
    /// authenticate such an operation with `private_key_jwt` instead.
    Basic,
    /// `Authorization: DPoP <access token>` with a `DPoP` proof for the
    /// request (RFC 9449 §7.1): a sender-constrained access token.
    Dpop,
}

/// The host an operation is sent to. The spec says so with `x-fv-host`
/// on the servers an operation (or its path) names; without any, the
/// identity authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// The identity authority: the client's base URL.
    Identity,
    /// The API gateway of the region (Filevine's published reference serves
    /// `POST /identity/user` there): [`ClientOptions::gateway`](crate::ClientOptions::gateway).
    Gateway,
}

/// One operation of the spec.
///
/// ```
/// use filevine_identity::{Scheme, operations};
///
/// let userinfo = operations::GET_USERINFO;
/// assert_eq!((userinfo.method, userinfo.path), ("GET", "/connect/userinfo"));
/// assert_eq!(userinfo.security, &[&[Scheme::Bearer][..], &[Scheme::Dpop][..]]);
/// assert!(operations::GET_ACCESS_TOKEN.dpop_proof && !userinfo.dpop_proof);
/// assert!(operations::ALL.iter().any(|op| op.id == "get_access_token"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The method name on [`Client`](crate::Client) (the spec's
    /// `operationId` in snake case), as the hooks receive it.
    pub id: &'static str,
    /// The HTTP method, uppercase.
    pub method: &'static str,
    /// The path under the client's base URL.
    pub path: &'static str,
    /// The spec's security requirements: any one alternative is enough, and
    /// each alternative needs all of its schemes. Empty: no credentials. An
    /// empty alternative: the operation may be called without any (e.g. a
    /// public client, or credentials in the form body).
    pub security: &'static [&'static [Scheme]],
    /// Whether the operation takes a DPoP proof of its own (RFC 9449 §5:
    /// the token endpoint), which the hooks add when the options hold a
    /// [`DpopProver`](crate::DpopProver); the spec marks it
    /// `x-dpop-proof: true`.
    pub dpop_proof: bool,
    /// Where the operation is sent.
    pub host: Host,
}

impl Operation {
    /// The operation the generated method `id` calls.
    ///
    /// ```
    /// let op = filevine_identity::Operation::find("revoke_token").unwrap();
    /// assert_eq!(op.path, "/connect/revocation");
    /// ```
    pub fn find(id: &str) -> Option<&'static Operation> {
        crate::operations::ALL.iter().find(|op| op.id == id)
    }

    /// Whether the operation can be called without credentials.
    pub fn allows_anonymous(&self) -> bool {
        self.security.is_empty() || self.security.iter().any(|schemes| schemes.is_empty())
    }
}
