//! Where the identity provider and the API gateway live.
//!
//! Filevine runs separate environments per region, each a pair of an identity
//! authority (tokens, discovery) and an API gateway (the API itself). The
//! identity URLs come from the spec's `servers` through the generated crate.

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};

pub use super::region_error::RegionError;
use crate::config::env::{AUTHORITY, GATEWAY, Lookup, REGION};

/// API gateway of the US region.
pub const US_GATEWAY: &str = "https://api.filevine.io";
/// API gateway of the Canada region.
pub const CANADA_GATEWAY: &str = "https://api.filevineapp.ca";

/// A Filevine region: an identity authority and, where known, its API gateway.
///
/// ```
/// use filevine_identity_ext::Region;
///
/// let region: Region = "Canada".parse().unwrap();
/// assert_eq!(region, Region::Canada);
/// assert_eq!(region.identity_url(), "https://identity.filevineapp.ca");
/// assert_eq!(region.gateway_url(), Some("https://api.filevineapp.ca"));
///
/// // Any other environment, or a test server on loopback:
/// let custom = Region::custom("http://127.0.0.1:8080/").unwrap();
/// assert_eq!(custom.identity_url(), "http://127.0.0.1:8080");
/// assert_eq!(custom.gateway_url(), None);
///
/// // http:// to anything but loopback is refused, and the error says why.
/// let err = Region::custom("http://identity.example.com").unwrap_err();
/// assert!(err.to_string().contains("http:// is only allowed for loopback hosts"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Region {
    /// Production US: `https://identity.filevine.io`, gateway `https://api.filevine.io`.
    #[default]
    Us,
    /// Production Canada: `https://identity.filevineapp.ca`, gateway `https://api.filevineapp.ca`.
    Canada,
    /// Any other authority (another environment, or a test server).
    Custom(CustomRegion),
}

/// A custom authority with an optional API gateway. Build it with
/// [`Region::custom`] or [`Region::custom_with_gateway`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomRegion {
    /// The base the SDK appends paths to: no trailing slash.
    authority: String,
    /// The issuer identifier exactly as configured (OpenID Connect
    /// Discovery §4.3 compares it character for character).
    issuer: String,
    gateway: Option<String>,
}

impl Region {
    /// A custom authority, e.g. `https://identity.staging.example` or a
    /// loopback test server. Trailing slashes are removed from the base the
    /// SDK builds URLs on ([`Region::identity_url`]); the issuer identifier
    /// keeps the URL as given ([`Region::issuer`]).
    ///
    /// # Errors
    /// When the URL does not parse, is not `https://` (or `http://` to a
    /// loopback host), or has a query or fragment.
    pub fn custom(authority: &str) -> Result<Self, RegionError> {
        let (authority, issuer) = issuer_and_base(authority)?;
        Ok(Self::Custom(CustomRegion { authority, issuer, gateway: None }))
    }

    /// A custom authority with its API gateway.
    ///
    /// # Errors
    /// As [`Region::custom`], for either URL.
    pub fn custom_with_gateway(authority: &str, gateway: &str) -> Result<Self, RegionError> {
        let (authority, issuer) = issuer_and_base(authority)?;
        let gateway = normalize_url("gateway URL", gateway)?;
        Ok(Self::Custom(CustomRegion { authority, issuer, gateway: Some(gateway) }))
    }

    /// The identity authority (OIDC issuer): the token endpoint and the
    /// discovery document live under it.
    pub fn identity_url(&self) -> &str {
        match self {
            Self::Us => filevine_identity::servers::US,
            Self::Canada => filevine_identity::servers::CANADA,
            Self::Custom(custom) => &custom.authority,
        }
    }

    /// The issuer identifier the provider's discovery document and ID
    /// tokens must name, compared exactly (OpenID Connect Discovery §4.3):
    /// the authority as configured, trailing slash included if it had one
    /// (scheme and host in lower case).
    ///
    /// ```
    /// use filevine_identity_ext::Region;
    ///
    /// assert_eq!(Region::Us.issuer(), "https://identity.filevine.io");
    /// let custom = Region::custom("https://id.example/tenant/").unwrap();
    /// assert_eq!(custom.issuer(), "https://id.example/tenant/");
    /// assert_eq!(custom.identity_url(), "https://id.example/tenant");
    /// ```
    pub fn issuer(&self) -> &str {
        match self {
            Self::Custom(custom) => &custom.issuer,
            known => known.identity_url(),
        }
    }

    /// The API gateway base URL, when known.
    pub fn gateway_url(&self) -> Option<&str> {
        match self {
            Self::Us => Some(US_GATEWAY),
            Self::Canada => Some(CANADA_GATEWAY),
            Self::Custom(custom) => custom.gateway.as_deref(),
        }
    }

    /// The region from the environment: [`AUTHORITY`] if set, else
    /// [`REGION`], else `None`. A set but invalid variable is an error,
    /// never a silent fallback.
    ///
    /// # Errors
    /// A [`RegionError`] naming the variable and its value.
    pub fn from_env() -> Result<Option<Self>, RegionError> {
        Self::from_lookup(&crate::config::env::process_env)
    }

    /// Resolves the region: the explicit setting if there is one, else the
    /// environment, else [`Region::Us`].
    ///
    /// # Errors
    /// When the environment names an invalid region.
    pub fn resolve(explicit: Option<Region>) -> Result<Self, RegionError> {
        Self::resolve_with(explicit, &crate::config::env::process_env)
    }

    pub(crate) fn resolve_with(explicit: Option<Region>, lookup: Lookup<'_>) -> Result<Self, RegionError> {
        match explicit {
            Some(region) => Ok(region),
            None => Ok(Self::from_lookup(lookup)?.unwrap_or_default()),
        }
    }

    pub(crate) fn from_lookup(lookup: Lookup<'_>) -> Result<Option<Self>, RegionError> {
        if let Some(authority) = lookup(AUTHORITY).filter(|v| !v.trim().is_empty()) {
            let region = match lookup(GATEWAY).filter(|v| !v.trim().is_empty()) {
                None => Self::custom(authority.trim()).map_err(|e| RegionError { what: AUTHORITY.into(), ..e })?,
                Some(gateway) => {
                    let gateway_error = |e: RegionError| match e.what.as_str() {
                        "authority" => RegionError { what: AUTHORITY.into(), ..e },
                        _ => RegionError { what: GATEWAY.into(), ..e },
                    };
                    Self::custom_with_gateway(authority.trim(), gateway.trim()).map_err(gateway_error)?
                }
            };
            return Ok(Some(region.canonical()));
        }
        match lookup(REGION).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|e: RegionError| RegionError { what: REGION.into(), ..e }),
        }
    }

    /// A custom authority that is exactly a known region's is that region
    /// (so it gets the region's gateway).
    fn canonical(self) -> Self {
        match &self {
            Self::Custom(custom) if custom.gateway.is_none() && custom.issuer == custom.authority => {
                match custom.authority.as_str() {
                    filevine_identity::servers::US => Self::Us,
                    filevine_identity::servers::CANADA => Self::Canada,
                    _ => self,
                }
            }
            _ => self,
        }
    }
}

impl FromStr for Region {
    type Err = RegionError;

    /// `us`, `ca`, `canada` (any case), or an authority URL.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let trimmed = value.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "us" | "usa" => Ok(Self::Us),
            "ca" | "canada" => Ok(Self::Canada),
            lower if lower.starts_with("https://") || lower.starts_with("http://") => {
                Self::custom(trimmed).map(Self::canonical).map_err(|e| RegionError { what: "region".into(), ..e })
            }
            "" => Err(RegionError { what: "region".into(), given: value.into(), reason: "it is empty".into() }),
            _ => Err(RegionError { what: "region".into(), given: value.into(), reason: "not a known region".into() }),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Us => f.write_str("us"),
            Self::Canada => f.write_str("canada"),
            Self::Custom(custom) => f.write_str(&custom.authority),
        }
    }
}

/// The base URL of an authority (no trailing slash) and its issuer
/// identifier: the same URL, with the trailing slash it was given with.
/// Scheme and host are normalised (lower case) in both.
fn issuer_and_base(given: &str) -> Result<(String, String), RegionError> {
    let base = normalize_url("authority", given)?;
    let issuer = if given.trim().ends_with('/') { format!("{base}/") } else { base.clone() };
    Ok((base, issuer))
}

/// Validates an authority or gateway URL and removes trailing slashes.
fn normalize_url(what: &str, given: &str) -> Result<String, RegionError> {
    let error = |reason: &str| RegionError { what: what.into(), given: given.into(), reason: reason.into() };
    let url = Url::parse(given.trim()).map_err(|e| error(&format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(error("http:// is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost)")),
        _ => return Err(error("the scheme must be https")),
    }
    if url.host().is_none() {
        return Err(error("the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(error("an authority cannot have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error("an authority cannot carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `https://`, or `http://` to a loopback host: the only URLs the SDK sends
/// secrets to or accepts endpoints at.
#[cfg(feature = "oidc")]
pub(crate) fn is_secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

/// Whether a host as written in a URL or a connection string (`localhost`,
/// `127.0.0.1`, `[::1]`) is this machine.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::fake as env;

    #[test]
    fn parses_names_case_insensitively() {
        for (text, region) in
            [("us", Region::Us), ("US", Region::Us), (" Ca ", Region::Canada), ("CANADA", Region::Canada)]
        {
            assert_eq!(text.parse::<Region>().unwrap(), region, "{text}");
        }
    }

    #[test]
    fn identity_urls_come_from_the_spec() {
        assert_eq!(Region::Us.identity_url(), filevine_identity::servers::US);
        assert_eq!(Region::Canada.identity_url(), filevine_identity::servers::CANADA);
        assert_eq!(Region::Us.gateway_url(), Some("https://api.filevine.io"));
    }

    #[test]
    fn parses_authority_urls() {
        let region: Region = "https://identity.staging.example/".parse().unwrap();
        assert_eq!(region.identity_url(), "https://identity.staging.example");
        // A known region's URL is that region.
        assert_eq!("HTTPS://identity.filevine.io".parse::<Region>().unwrap(), Region::Us);
        for loopback in ["http://127.0.0.1:9", "http://localhost:80/", "http://[::1]:3000", "http://127.8.9.10"] {
            assert!(loopback.parse::<Region>().is_ok(), "{loopback}");
        }
        let custom = Region::custom_with_gateway("https://id.example/base/", "https://gw.example").unwrap();
        assert_eq!(custom.identity_url(), "https://id.example/base");
        assert_eq!(custom.issuer(), "https://id.example/base/", "the issuer keeps its trailing slash");
        assert_eq!(Region::custom("HTTPS://ID.example").unwrap().issuer(), "https://id.example");
        assert_eq!(Region::custom("https://id.example/").unwrap().issuer(), "https://id.example/");
        assert_eq!(custom.gateway_url(), Some("https://gw.example"));
    }

    #[test]
    fn errors_say_what_was_given_and_what_is_accepted() {
        let cases = [
            ("mars", "not a known region"),
            ("", "it is empty"),
            ("http://identity.example.com", "http:// is only allowed for loopback hosts"),
            ("ftp://x", "not a known region"),
            ("https://", "not a URL"),
            ("https://id.example/?a=1", "query or fragment"),
            ("https://user:pw@id.example", "cannot carry credentials"),
        ];
        for (given, reason) in cases {
            let err = given.parse::<Region>().unwrap_err();
            let text = err.to_string();
            assert!(text.contains(reason), "{given}: {text}");
            assert!(text.contains(&format!("{given:?}")), "{given}: {text}");
            assert!(text.contains("accepted: `us`, `ca`, `canada`"), "{text}");
        }
    }

    #[test]
    fn precedence_is_explicit_then_environment_then_us() {
        let none = env(&[]);
        assert_eq!(Region::resolve_with(None, &none).unwrap(), Region::Us);
        let ca = env(&[(REGION, "ca")]);
        assert_eq!(Region::resolve_with(None, &ca).unwrap(), Region::Canada);
        assert_eq!(Region::resolve_with(Some(Region::Us), &ca).unwrap(), Region::Us);
        // The authority variable wins over the region name.
        let both = env(&[(REGION, "ca"), (AUTHORITY, "http://127.0.0.1:7")]);
        assert_eq!(Region::resolve_with(None, &both).unwrap().identity_url(), "http://127.0.0.1:7");
        // Empty variables count as unset.
        let empty = env(&[(REGION, " "), (AUTHORITY, "")]);
        assert_eq!(Region::resolve_with(None, &empty).unwrap(), Region::Us);
    }

    #[test]
    fn invalid_environment_is_an_error_naming_the_variable_not_a_fallback() {
        let bad = env(&[(REGION, "mars")]);
        let err = Region::resolve_with(None, &bad).unwrap_err();
        assert!(err.to_string().starts_with("invalid FILEVINE_REGION \"mars\""), "{err}");
        let bad = env(&[(AUTHORITY, "http://10.0.0.1")]);
        let err = Region::resolve_with(None, &bad).unwrap_err();
        assert!(err.to_string().starts_with("invalid FILEVINE_AUTHORITY \"http://10.0.0.1\""), "{err}");
        // An explicit setting is not overridden, and never falls back.
        assert_eq!(Region::resolve_with(Some(Region::Canada), &bad).unwrap(), Region::Canada);
        let bad = env(&[(AUTHORITY, "https://id.example"), (GATEWAY, "http://10.0.0.1")]);
        let err = Region::resolve_with(None, &bad).unwrap_err();
        assert!(err.to_string().starts_with("invalid FILEVINE_GATEWAY \"http://10.0.0.1\""), "{err}");
    }

    #[test]
    fn a_custom_authority_takes_its_gateway_from_the_environment() {
        let vars = env(&[(AUTHORITY, "https://id.example/"), (GATEWAY, "https://gw.example/")]);
        let region = Region::resolve_with(None, &vars).unwrap();
        assert_eq!((region.identity_url(), region.gateway_url()), ("https://id.example", Some("https://gw.example")));
        assert_eq!(region.issuer(), "https://id.example/");
    }
}
