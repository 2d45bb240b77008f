//! The three forms of a Redis store URL, parsed without sending anything:
//!
//! - one node: `redis://[user:password@]host[:port][/db]` (`rediss://` for
//!   TLS, `redis+unix:///path` for a socket), what the `redis` crate reads;
//! - Sentinel: `redis+sentinel://[user:password@]host1[:26379][,host2…]/<master>[/<db>]`
//!   (`rediss+sentinel://`);
//! - Cluster: `redis+cluster://[user:password@]host1[:6379][,host2…]`
//!   (`rediss+cluster://`).
//!
//! Each may end in `?replicas=N` (how many replicas must acknowledge a
//! saved token set). The user and password are for the data nodes (the
//! primary, its replicas, the cluster's nodes); Sentinels are asked without
//! them. No error repeats the password.

use std::fmt;

use crate::config::region::is_loopback_host;
use crate::error::ConfigError;

/// Port of a Sentinel when the URL gives none (Redis's default).
const SENTINEL_PORT: u16 = 26379;
/// Port of a Redis node when the URL gives none (Redis's default).
const REDIS_PORT: u16 = 6379;

/// Where the store's data lives, as the URL says.
pub(crate) enum Topology {
    /// One node (or a fixed primary): the `redis` crate's own URL.
    Single(redis::Client),
    /// A primary found through Sentinels.
    Sentinel { sentinels: Vec<Node>, master: String, db: i64, auth: Auth, tls: bool },
    /// A Redis Cluster, found through any of `nodes`.
    Cluster { nodes: Vec<Node>, auth: Auth, tls: bool },
}

/// A host and port of a Sentinel or cluster node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl fmt::Display for Node {
    /// `host:port`, an IPv6 address in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The URL's user and password. Never printed.
#[derive(Default, Clone)]
pub(crate) struct Auth {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username.is_some())
            .field("password", &self.password.is_some())
            .finish()
    }
}

/// A parsed store URL.
pub(crate) struct Target {
    pub(crate) topology: Topology,
    /// `?replicas=N`, if given.
    pub(crate) replicas: Option<u32>,
    /// The URL without user and password, for `Debug` and logs.
    pub(crate) display: String,
}

impl Target {
    /// A host that is reached without TLS and is not this machine: token
    /// sets (sealed or not), leases and the password then cross a network
    /// in the clear.
    pub(crate) fn cleartext_remote_host(&self) -> Option<&str> {
        let (nodes, tls) = match &self.topology {
            Topology::Single(client) => {
                return match client.get_connection_info().addr() {
                    redis::ConnectionAddr::Tcp(host, _) => Some(host.as_str()).filter(|host| !is_loopback_host(host)),
                    _ => None,
                };
            }
            Topology::Sentinel { sentinels, tls, .. } => (sentinels, *tls),
            Topology::Cluster { nodes, tls, .. } => (nodes, *tls),
        };
        if tls {
            return None;
        }
        nodes.iter().map(|node| node.host.as_str()).find(|host| !is_loopback_host(host))
    }
}

impl Target {
    /// A host reached over TLS whose certificate is not checked
    /// (`rediss://host#insecure`): anyone on the path can pose as it.
    pub(crate) fn unverified_tls_host(&self) -> Option<&str> {
        match &self.topology {
            Topology::Single(client) => match client.get_connection_info().addr() {
                redis::ConnectionAddr::TcpTls { host, insecure: true, .. } => Some(host.as_str()),
                _ => None,
            },
            _ => None,
        }
    }
}

fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::TokenStore { reason: reason.into() }
}

/// Parses a store URL of any of the three forms.
pub(crate) fn parse(url: &str) -> Result<Target, ConfigError> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("a Redis URL starts with `redis://`, `redis+sentinel://` or `redis+cluster://`"))?;
    match scheme {
        "redis" | "rediss" | "redis+unix" => single(url),
        "redis+sentinel" | "rediss+sentinel" => {
            let parts = Parts::split(rest, SENTINEL_PORT)?;
            let mut path = parts.path.split('/').filter(|segment| !segment.is_empty());
            let master = path.next().ok_or_else(|| {
                invalid("a Sentinel URL needs the master name as its path, e.g. `redis+sentinel://host:26379/mymaster`")
            })?;
            let master = decode(master, "master name")?;
            let db = match path.next() {
                Some(db) => db.parse::<i64>().map_err(|_| invalid(format!("the database `{db}` is not a number")))?,
                None => 0,
            };
            if let Some(extra) = path.next() {
                return Err(invalid(format!("unexpected `/{extra}` after the master name and database")));
            }
            let display = parts.display(scheme);
            let tls = scheme == "rediss+sentinel";
            Ok(Target {
                topology: Topology::Sentinel { sentinels: parts.nodes, master, db, auth: parts.auth, tls },
                replicas: parts.replicas,
                display,
            })
        }
        "redis+cluster" | "rediss+cluster" => {
            let parts = Parts::split(rest, REDIS_PORT)?;
            if !parts.path.trim_matches('/').is_empty() {
                return Err(invalid("a cluster URL has no path: Redis Cluster has database 0 only"));
            }
            let display = parts.display(scheme);
            let tls = scheme == "rediss+cluster";
            Ok(Target {
                topology: Topology::Cluster { nodes: parts.nodes, auth: parts.auth, tls },
                replicas: parts.replicas,
                display,
            })
        }
        other => Err(invalid(format!(
            "unknown scheme `{other}`: expected `redis`, `rediss`, `redis+unix`, `redis+sentinel`, `rediss+sentinel`, `redis+cluster` or `rediss+cluster`"
        ))),
    }
}

/// One node: the `redis` crate reads the URL once `replicas` is taken out.
fn single(url: &str) -> Result<Target, ConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| invalid(format!("invalid Redis URL: {e}")))?;
    let mut replicas = None;
    let mut kept = parsed.clone();
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(name, value)| {
            if name == "replicas" {
                replicas = Some(value.into_owned());
                None
            } else {
                Some((name.into_owned(), value.into_owned()))
            }
        })
        .collect();
    let replicas = replicas.map(|value| parse_replicas(&value)).transpose()?;
    if others.is_empty() {
        kept.set_query(None);
    } else {
        kept.query_pairs_mut().clear().extend_pairs(others);
    }
    if parsed.scheme() != "redis+unix" && parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the Redis URL names no host"));
    }
    let client =
        redis::Client::open(kept.as_str()).map_err(|e| invalid(format!("invalid Redis URL: {}", e.category())))?;
    Ok(Target { topology: Topology::Single(client), replicas, display: single_display(&parsed) })
}

/// A one-node URL without its user and password, wherever they are: the
/// userinfo, or the query of a `redis+unix` URL (`?user=…&pass=…`). Only
/// the parameters known to hold nothing secret are kept.
fn single_display(parsed: &url::Url) -> String {
    const SHOWN: [&str; 3] = ["db", "protocol", "replicas"];
    let mut display = parsed.clone();
    let _ = display.set_password(None);
    let _ = display.set_username("");
    let shown: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(name, _)| SHOWN.contains(&name.as_ref()))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if shown.is_empty() {
        display.set_query(None);
    } else {
        display.query_pairs_mut().clear().extend_pairs(shown);
    }
    display.to_string()
}

fn parse_replicas(value: &str) -> Result<u32, ConfigError> {
    value.parse().map_err(|_| invalid(format!("`replicas` must be a whole number of replicas, not `{value}`")))
}

fn decode(text: &str, what: &str) -> Result<String, ConfigError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| invalid(format!("the {what} is not UTF-8 once percent-decoded")))
}

/// The parts of a Sentinel or cluster URL after the scheme.
struct Parts<'a> {
    auth: Auth,
    nodes: Vec<Node>,
    path: &'a str,
    replicas: Option<u32>,
}

impl<'a> Parts<'a> {
    fn split(rest: &'a str, default_port: u16) -> Result<Self, ConfigError> {
        // The user and password first, up to the last `@`: a password may
        // hold `/`, `?` or `#` unencoded, and no part of it may reach the
        // host list, the path or an error (host names, master names and
        // parameters hold no `@`).
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (hosts, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let auth = match userinfo {
            None => Auth::default(),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                Auth {
                    username: (!user.is_empty()).then(|| decode(user, "user name")).transpose()?,
                    password: password.map(|password| decode(password, "password")).transpose()?,
                }
            }
        };
        if hosts.trim().is_empty() {
            return Err(invalid("the URL names no host: list one or more `host:port`, separated by commas"));
        }
        let nodes = hosts.split(',').map(|host| node(host.trim(), default_port)).collect::<Result<Vec<_>, _>>()?;
        let mut replicas = None;
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*name {
                "replicas" => replicas = Some(parse_replicas(&value)?),
                other => return Err(invalid(format!("unknown parameter `{other}`: the only one is `replicas`"))),
            }
        }
        Ok(Self { auth, nodes, path, replicas })
    }

    /// The URL again, without user and password.
    fn display(&self, scheme: &str) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(Node::to_string).collect();
        let mut out = format!("{scheme}://{}{}", hosts.join(","), self.path);
        if let Some(replicas) = self.replicas {
            out.push_str(&format!("?replicas={replicas}"));
        }
        out
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn node(text: &str, default_port: u16) -> Result<Node, ConfigError> {
    if text.is_empty() {
        return Err(invalid("the host list has an empty entry (two commas, or a comma at an end)"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| invalid(format!("`{text}` has no closing `]`")))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(invalid(format!("`{text}` is not `[address]:port`"))),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(invalid(format!("`{text}` has no host name")));
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid(format!("`{text}` has an invalid port")))?,
        None => default_port,
    };
    Ok(Node { host: host.to_owned(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_to_another_host_is_noticed() {
        let host = |url: &str| parse(url).unwrap().cleartext_remote_host().map(str::to_owned);
        assert_eq!(host("redis://10.0.0.5:6379"), Some("10.0.0.5".into()));
        assert_eq!(host("redis://:pw@cache.internal/0"), Some("cache.internal".into()));
        assert_eq!(host("redis+sentinel://127.0.0.1,10.0.0.2/m"), Some("10.0.0.2".into()));
        assert_eq!(host("redis+cluster://[::1]:7000,db.internal:7001"), Some("db.internal".into()));
        for quiet in [
            "redis://127.0.0.1:6379",
            "redis://localhost",
            "redis://[::1]:6379",
            "rediss://cache.internal",
            "rediss+sentinel://10.0.0.1/m",
            "rediss+cluster://10.0.0.1:7000",
            "redis+unix:///run/redis.sock",
        ] {
            assert_eq!(host(quiet), None, "{quiet}");
        }
    }

    fn err(url: &str) -> String {
        match parse(url) {
            Ok(_) => panic!("{url} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn sentinel_urls_name_sentinels_master_and_database() {
        let target =
            parse("redis+sentinel://app:s3cr%40t@10.0.0.1:26380,sentinel-b,[::1]:26381/mymaster/2?replicas=2").unwrap();
        let Topology::Sentinel { sentinels, master, db, auth, tls } = target.topology else { panic!("not sentinel") };
        assert_eq!(
            sentinels,
            [
                Node { host: "10.0.0.1".into(), port: 26380 },
                Node { host: "sentinel-b".into(), port: 26379 },
                Node { host: "::1".into(), port: 26381 }
            ]
        );
        assert_eq!((master.as_str(), db, tls), ("mymaster", 2, false));
        assert_eq!((auth.username.as_deref(), auth.password.as_deref()), (Some("app"), Some("s3cr@t")));
        assert_eq!(target.replicas, Some(2));
        assert_eq!(
            target.display,
            "redis+sentinel://10.0.0.1:26380,sentinel-b:26379,[::1]:26381/mymaster/2?replicas=2"
        );
        let tls = parse("rediss+sentinel://:pw@h/m").unwrap();
        assert!(matches!(tls.topology, Topology::Sentinel { tls: true, db: 0, .. }));
        assert_eq!(tls.display, "rediss+sentinel://h:26379/m");
    }

    #[test]
    fn cluster_urls_list_seed_nodes() {
        let target = parse("rediss+cluster://:pw@a:7000,b:7001").unwrap();
        let Topology::Cluster { nodes, auth, tls } = target.topology else { panic!("not cluster") };
        assert_eq!(nodes.len(), 2);
        assert!(tls);
        assert_eq!(auth.password.as_deref(), Some("pw"));
        assert_eq!(target.display, "rediss+cluster://a:7000,b:7001");
        assert_eq!(parse("redis+cluster://a/").unwrap().display, "redis+cluster://a:6379/");
    }

    #[test]
    fn single_node_urls_keep_working_and_lose_replicas_before_redis_reads_them() {
        let target = parse("redis://:hunter2@127.0.0.1:6380/3?replicas=1").unwrap();
        assert!(matches!(target.topology, Topology::Single(_)));
        assert_eq!(target.replicas, Some(1));
        assert_eq!(target.display, "redis://127.0.0.1:6380/3?replicas=1");
        assert!(parse("redis+unix:///run/redis.sock").is_ok());
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, expected) in [
            ("redis+sentinel://:hunter2@h1,h2", "needs the master name"),
            ("redis+sentinel://:hunter2@h1/", "needs the master name"),
            ("redis+sentinel://:hunter2@/mymaster", "names no host"),
            ("redis+cluster://:hunter2@", "names no host"),
            ("redis+cluster://:hunter2@a,,b", "empty entry"),
            ("redis+cluster://:hunter2@a:99999", "invalid port"),
            ("redis+cluster://:hunter2@a:0", "invalid port"),
            ("redis+cluster://:hunter2@a/1", "database 0 only"),
            ("redis+sentinel://:hunter2@a/m/x", "`x` is not a number"),
            ("redis+sentinel://:hunter2@a/m/1/z", "unexpected `/z`"),
            ("redis+cluster://:hunter2@a?replicas=many", "whole number"),
            ("redis+cluster://:hunter2@a?timeout=3", "unknown parameter `timeout`"),
            ("redis+cluster://:hunter2@[::1", "no closing"),
            ("redis://:hunter2@127.0.0.1/0?replicas=-1", "whole number"),
            ("redis://:hunter2@/0", "empty host"),
            ("valkey+cluster://:hunter2@a", "unknown scheme `valkey+cluster`"),
            ("redis:hunter2", "starts with"),
        ] {
            let message = err(url);
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
    }

    #[test]
    fn passwords_with_url_delimiters_stay_out_of_hosts_paths_and_errors() {
        for (url, password) in [
            ("redis+sentinel://:hun/ter2@h1,h2/mymaster", "hun/ter2"),
            ("redis+sentinel://app:hun?ter2@h1/mymaster/1", "hun?ter2"),
            ("redis+cluster://:hun/te?r2@a:7000,b:7001", "hun/te?r2"),
            ("redis+cluster://:hun#ter2@a:7000", "hun#ter2"),
            ("rediss+sentinel://u:a@b/c@h1/m", "a@b/c"),
        ] {
            let target = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let auth = match &target.topology {
                Topology::Sentinel { auth, .. } | Topology::Cluster { auth, .. } => auth,
                Topology::Single(_) => panic!("{url}"),
            };
            assert_eq!(auth.password.as_deref(), Some(password), "{url}");
            for part in ["hun", "ter2", "a@b"] {
                assert!(!target.display.contains(part), "{url}: {}", target.display);
            }
        }
        // Wrong URLs with such a password: the error holds none of it.
        for url in ["redis+sentinel://:hun/ter2@h1", "redis+cluster://:hun?ter2@a?x=1", "redis+cluster://:hun/1@a/1"] {
            let message = err(url);
            assert!(!message.contains("hun") && !message.contains("ter2"), "{url}: {message}");
        }
    }

    #[test]
    fn tls_without_verification_is_noticed() {
        let host = |url: &str| parse(url).unwrap().unverified_tls_host().map(str::to_owned);
        assert_eq!(host("rediss://cache.internal:6380/0#insecure").as_deref(), Some("cache.internal"));
        assert_eq!(host("rediss://cache.internal:6380/0"), None);
        assert_eq!(host("redis://cache.internal:6380/0"), None);
    }

    #[test]
    fn a_socket_urls_password_parameters_are_not_shown() {
        let target =
            parse("redis+unix:///run/redis.sock?db=2&user=app&pass=hunter2&password=hunter3&replicas=1").unwrap();
        assert_eq!(target.display, "redis+unix:///run/redis.sock?db=2&replicas=1");
        let target = parse("redis://:hunter2@127.0.0.1:6380/3?protocol=resp3").unwrap();
        assert_eq!(target.display, "redis://127.0.0.1:6380/3?protocol=resp3");
    }

    #[test]
    fn auth_debug_hides_both() {
        let auth = Auth { username: Some("u".into()), password: Some("hunter2".into()) };
        assert_eq!(format!("{auth:?}"), "Auth { username: true, password: true }");
    }
}
