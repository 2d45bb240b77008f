//! The typed answer of `GetUserOrgsWithToken`: the user and the orgs a
//! token can reach.

use serde::{Deserialize, Serialize};

use super::FilevineUser;

/// What `GetUserOrgsWithToken` returns: the user and the orgs the token can
/// reach. Fields not named here are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserOrgs {
    /// The user.
    pub user: GatewayUser,
    /// The orgs.
    #[serde(default)]
    pub orgs: Vec<Org>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The user of a `GetUserOrgsWithToken` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayUser {
    /// The user's ids.
    pub user_id: UserId,
    /// Everything else (username, email, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A user's ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserId {
    /// The native user id, for `x-fv-userid`.
    pub native: i64,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An org the token can reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    /// The org id, for `x-fv-orgid`.
    pub org_id: i64,
    /// Everything else (name, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl UserOrgs {
    /// The [`FilevineUser`] for calls in `org_id` as this user.
    pub fn as_user_in(&self, org_id: i64) -> FilevineUser {
        FilevineUser { org_id, user_id: self.user.user_id.native }
    }
}
