//! The claims an application reads about a signed-in user: from the ID
//! token ([`IdTokenClaims`]) and from the userinfo endpoint ([`UserInfo`]).
//! The standard profile claims both can carry are one type,
//! [`ProfileClaims`].

use serde::{Deserialize, Deserializer, Serialize};

/// The standard profile claims (OpenID Connect Core §5.1) Filevine sends,
/// in an ID token or a userinfo response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileClaims {
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail address is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Preferred user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// The claims of a validated ID token: the standard ones typed, every other
/// one (Filevine's `tenant`, …) in [`IdTokenClaims::additional`].
///
/// ```
/// use filevine_identity_ext::oidc::IdTokenClaims;
///
/// let claims: IdTokenClaims = serde_json::from_value(serde_json::json!({
///     "iss": "https://identity.filevine.io", "sub": "1001", "aud": "partner-app",
///     "exp": 1_900_000_000, "iat": 1_800_000_000, "email": "a@example.com", "tenant": "acme",
/// })).unwrap();
/// assert_eq!(claims.audiences, ["partner-app"]);
/// assert_eq!(claims.profile.email.as_deref(), Some("a@example.com"));
/// assert_eq!(claims.additional["tenant"], "acme");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user's id at the provider.
    pub sub: String,
    /// Audiences (`aud`, a string or an array on the wire).
    #[serde(rename = "aud", deserialize_with = "one_or_many")]
    pub audiences: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(deserialize_with = "numeric_date")]
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(deserialize_with = "numeric_date")]
    pub iat: u64,
    /// Not before, seconds since the epoch.
    #[serde(default, deserialize_with = "optional_numeric_date", skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// When the user authenticated, seconds since the epoch.
    #[serde(default, deserialize_with = "optional_numeric_date", skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// Authorized party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The standard profile claims (`email`, `name`, …).
    #[serde(flatten)]
    pub profile: ProfileClaims,
    /// Every other claim (`tenant`, `at_hash`, …). The `nonce` is checked
    /// and not kept.
    #[serde(flatten)]
    pub additional: serde_json::Map<String, serde_json::Value>,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// A NumericDate: integer or fractional seconds (fractions are dropped).
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !(0.0..=9_999_999_999.0).contains(&value) {
        return Err(serde::de::Error::custom("a date out of range"));
    }
    // In range and non-negative, so the conversion is exact enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(value as u64)
}

fn optional_numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    numeric_date(deserializer).map(Some)
}

/// The claims the userinfo endpoint returned: `sub`, the profile claims,
/// and the rest (`tenant`, …) in [`UserInfo::additional`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Subject; checked against the ID token's.
    pub sub: String,
    /// The standard profile claims.
    #[serde(flatten)]
    pub profile: ProfileClaims,
    /// Every other claim.
    #[serde(flatten)]
    pub additional: serde_json::Map<String, serde_json::Value>,
}

impl From<filevine_identity::types::UserInfo> for UserInfo {
    fn from(info: filevine_identity::types::UserInfo) -> Self {
        Self {
            sub: info.sub,
            profile: ProfileClaims {
                email: info.email,
                email_verified: info.email_verified,
                name: info.name,
                given_name: info.given_name,
                family_name: info.family_name,
                preferred_username: info.preferred_username,
            },
            additional: info.extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_accept_string_or_array_audiences_and_float_dates() {
        let claims: IdTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 10.5, "iat": 1, "tenant": "t", "name": "N",
        }))
        .unwrap();
        assert_eq!(claims.audiences, ["a", "b"]);
        assert_eq!(claims.exp, 10);
        assert_eq!(claims.additional["tenant"], "t");
        assert_eq!(claims.profile.name.as_deref(), Some("N"));
        assert!(!claims.additional.contains_key("name"), "a profile claim is not also in `additional`");
        for bad in [
            serde_json::json!({"iss": "i", "sub": "s", "aud": "a", "exp": -1, "iat": 1}),
            serde_json::json!({"iss": "i", "sub": "s", "aud": "a", "exp": "soon", "iat": 1}),
            serde_json::json!({"iss": "i", "sub": "s", "aud": 3, "exp": 1, "iat": 1}),
            serde_json::json!({"iss": "i", "aud": "a", "exp": 1, "iat": 1}),
        ] {
            assert!(serde_json::from_value::<IdTokenClaims>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn userinfo_shares_the_profile_claims() {
        let info: UserInfo = serde_json::from_value(serde_json::json!({
            "sub": "1001", "email": "a@example.com", "email_verified": true, "tenant": "acme",
        }))
        .unwrap();
        assert_eq!(info.profile.email.as_deref(), Some("a@example.com"));
        assert_eq!(info.profile.email_verified, Some(true));
        assert_eq!(info.additional.len(), 1);
        let back = serde_json::to_value(&info).unwrap();
        assert_eq!(back["email"], "a@example.com");
        assert_eq!(back["tenant"], "acme");
    }
}
