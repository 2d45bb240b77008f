//! OAuth 2.0 scopes: one [`Scope`], a set of them in [`Scopes`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The scopes for calling the Filevine API gateway with a PAT or client
/// credentials: `fv.api.gateway.access filevine.v2.api.*`.
pub const GATEWAY_SCOPES: &[&str] = &["fv.api.gateway.access", "filevine.v2.api.*"];

/// The scopes Filevine's sample partner apps request for a signed-in user.
pub const PARTNER_APP_SCOPES: &[&str] = &[
    "email",
    "profile",
    "openid",
    "tenant",
    "offline_access",
    "fv.auth.tenant.read",
    "filevine.v2.api.*",
    "fv.api.gateway.access",
];

/// One scope token (RFC 6749 §3.3): non-empty, printable ASCII, no spaces,
/// quotes or backslashes.
///
/// ```
/// use filevine_identity_ext::config::scope::Scope;
/// assert_eq!(Scope::new("filevine.v2.api.*").unwrap().as_str(), "filevine.v2.api.*");
/// assert!(Scope::new("two words").is_err());
/// assert!(Scope::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

/// A scope string that is not a valid scope token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {given:?}: {reason}")]
pub struct ScopeError {
    /// The scope as given.
    pub given: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl Scope {
    /// Validates one scope token.
    ///
    /// # Errors
    /// When it is empty or contains whitespace or a character RFC 6749 does
    /// not allow in a scope token.
    pub fn new(scope: impl Into<String>) -> Result<Self, ScopeError> {
        let scope = scope.into();
        let reason = if scope.is_empty() {
            Some("a scope cannot be empty")
        } else if scope.chars().any(char::is_whitespace) {
            Some("a scope cannot contain whitespace; separate scopes with spaces in a scope list instead")
        } else if !scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
            Some("a scope may contain only printable ASCII other than space, `\"` and `\\`")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ScopeError { given: scope, reason }),
            None => Ok(Self(scope)),
        }
    }

    /// `openid`, which every sign-in requests.
    #[cfg(feature = "oidc")]
    pub(crate) fn openid() -> Self {
        Self("openid".to_owned())
    }

    /// The scope token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes. Space-separated on the wire; order and duplicates do not
/// matter (`"a b"` equals `"b a a"`).
///
/// ```
/// use filevine_identity_ext::Scopes;
///
/// let scopes: Scopes = "fv.api.gateway.access  filevine.v2.api.* fv.api.gateway.access".parse().unwrap();
/// assert_eq!(scopes.len(), 2);
/// assert_eq!(scopes, Scopes::gateway());
/// assert_eq!(scopes.to_string(), "filevine.v2.api.* fv.api.gateway.access");
/// assert!(scopes.contains("fv.api.gateway.access"));
/// assert!("".parse::<Scopes>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Scopes(BTreeSet<Scope>);

/// A scope list that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopesError {
    /// The list names no scope at all.
    #[error("the scope list is empty; give at least one scope, e.g. `{}`", GATEWAY_SCOPES.join(" "))]
    Empty,
    /// One entry is not a valid scope.
    #[error(transparent)]
    Invalid(#[from] ScopeError),
}

impl Scopes {
    /// The default for gateway calls: [`GATEWAY_SCOPES`].
    pub fn gateway() -> Self {
        Self::from_known(GATEWAY_SCOPES)
    }

    /// What Filevine's sample partner apps request: [`PARTNER_APP_SCOPES`].
    pub fn partner_app() -> Self {
        Self::from_known(PARTNER_APP_SCOPES)
    }

    fn from_known(scopes: &[&str]) -> Self {
        Self(scopes.iter().map(|s| Scope((*s).to_owned())).collect())
    }

    /// Builds a set from individual scopes.
    ///
    /// # Errors
    /// [`ScopesError::Empty`] for no scopes; [`ScopesError::Invalid`] for
    /// an invalid one (e.g. one with a space inside).
    pub fn new<I, S>(scopes: I) -> Result<Self, ScopesError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set = scopes.into_iter().map(Scope::new).collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() { Err(ScopesError::Empty) } else { Ok(Self(set)) }
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) -> bool {
        self.0.insert(scope)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// Number of distinct scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty (only possible for granted scopes).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in a stable (sorted) order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Parses a granted-scope string from a token response, which may be
    /// empty. Invalid entries are kept out rather than failing the response.
    pub(crate) fn from_granted(granted: &str) -> Self {
        Self(granted.split_ascii_whitespace().filter_map(|s| Scope::new(s).ok()).collect())
    }
}

impl FromStr for Scopes {
    type Err = ScopesError;

    /// Space-separated scopes (any ASCII whitespace between them).
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::new(list.split_ascii_whitespace())
    }
}

impl fmt::Display for Scopes {
    /// The wire form: scopes separated by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, scope) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::collections::btree_set::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_semantics() {
        let a: Scopes = "openid profile openid".parse().unwrap();
        let b: Scopes = "profile\topenid".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a.to_string(), "openid profile");
    }

    #[test]
    fn rejects_empty_lists_and_bad_scopes() {
        assert_eq!("   ".parse::<Scopes>().unwrap_err(), ScopesError::Empty);
        assert_eq!(Scopes::new(Vec::<String>::new()).unwrap_err(), ScopesError::Empty);
        let err = Scopes::new(["openid", "two words"]).unwrap_err();
        assert!(err.to_string().contains("\"two words\""), "{err}");
        assert!(err.to_string().contains("cannot contain whitespace"), "{err}");
        let err = Scopes::new(["ok", ""]).unwrap_err();
        assert!(err.to_string().contains("cannot be empty"), "{err}");
        let err = Scopes::new(["quote\"d"]).unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
        assert!(Scope::new("é").is_err());
    }

    #[test]
    fn defaults_match_filevine_docs() {
        assert_eq!(Scopes::gateway().to_string(), "filevine.v2.api.* fv.api.gateway.access");
        assert!(Scopes::partner_app().contains("offline_access"));
        assert_eq!(Scopes::partner_app().len(), 8);
    }

    #[test]
    fn granted_scopes_are_lenient() {
        assert!(Scopes::from_granted("").is_empty());
        assert_eq!(Scopes::from_granted(" a  b ").len(), 2);
    }
}
