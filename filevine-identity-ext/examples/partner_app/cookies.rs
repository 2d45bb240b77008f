//! The app's cookies and their flags, in one place.
//!
//! Every cookie is `HttpOnly` (no script reads it), `SameSite=Lax` (sent on
//! the provider's top-level redirect back, not on cross-site POSTs) and
//! `Path=/`. Served over https (the redirect URI's scheme), each is also
//! `Secure` and carries the `__Host-` prefix, which browsers accept only
//! from a secure origin, without a `Domain`, for `/`: no subdomain and no
//! plain-http page can set or overwrite it.

use axum::http::header::{COOKIE, HeaderMap, HeaderValue};
use tower_sessions::cookie::time::Duration;
use tower_sessions::cookie::{Cookie, SameSite};

/// The session cookie (tower-sessions).
pub const SESSION: &str = "partner_session";
/// The pending sign-in: the id of its server-side record, from `/login` to
/// the callback.
pub const SIGN_IN: &str = "partner_signin";
/// The end-session `state`, from `/logout` to the post-logout callback.
pub const SIGN_OUT: &str = "partner_signout";

/// How the app names and flags its cookies.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Served over https: `Secure` and the `__Host-` prefix.
    pub https: bool,
}

impl Policy {
    /// `base`, with the `__Host-` prefix over https.
    pub fn name(self, base: &str) -> String {
        if self.https { format!("__Host-{base}") } else { base.to_owned() }
    }

    /// A `Set-Cookie` value for `base` = `value`, living `max_age`.
    pub fn set(self, base: &str, value: &str, max_age: Duration) -> HeaderValue {
        let cookie = Cookie::build((self.name(base), value.to_owned()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.https)
            .max_age(max_age)
            .build();
        // A cookie of ASCII names and base64/base64url values is a valid header.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` value that deletes `base`.
    pub fn clear(self, base: &str) -> HeaderValue {
        let mut cookie = Cookie::build((self.name(base), ""))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.https)
            .build();
        cookie.make_removal();
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The value of cookie `base` in a request.
    pub fn get(self, headers: &HeaderMap, base: &str) -> Option<String> {
        let name = self.name(base);
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_owned())
    }
}
