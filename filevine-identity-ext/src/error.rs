//! The one error type of this crate, and the redaction applied to anything a
//! server sent before it reaches a message.

use std::fmt;
use std::time::Duration;

use crate::region::RegionError;
use crate::scope::ScopesError;

/// Everything that can go wrong getting a token.
///
/// Match on the variant to decide what to do; `Display` says it in words.
/// No variant ever shows a secret: bodies are cut short and anything that
/// looks like a token is replaced by `[REDACTED]`.
///
/// ```
/// use filevine_identity_ext::{Error, ErrorDetails};
///
/// let err = Error::SignInRequired { status: 400, details: ErrorDetails::oauth("invalid_grant", None) };
/// assert!(err.to_string().contains("sign in again"));
/// assert_eq!(err.status(), Some(400));
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The identity provider rejected the credentials or the grant (400 or
    /// 401: `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `invalid_scope`, `invalid_request`, or Filevine's error envelope).
    #[error(
        "the identity provider rejected the credentials (HTTP {status}{details}); check the personal access token, client id and secret, and the requested scopes"
    )]
    InvalidCredentials {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// A refresh token was rejected (`invalid_grant` on a refresh): it expired
    /// or was revoked. The user has to sign in again.
    #[error("the refresh token was rejected (HTTP {status}{details}); the user must sign in again")]
    SignInRequired {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// 403: the credentials are valid but not allowed to do this.
    #[error(
        "the identity provider refused access (HTTP {status}{details}); the credentials are not allowed this, ask your Filevine administrator"
    )]
    Forbidden {
        /// HTTP status.
        status: u16,
        /// What the provider said.
        details: ErrorDetails,
    },
    /// 429: too many requests.
    #[error("the identity provider is rate limiting (HTTP {status}); retry after {}", retry_after.map_or_else(|| "a while".to_owned(), |d| format!("{} s", d.as_secs_f64().ceil())))]
    RateLimited {
        /// HTTP status.
        status: u16,
        /// How long the provider asked to wait (`Retry-After`), capped.
        retry_after: Option<Duration>,
    },
    /// 5xx: the identity provider (or a proxy before it) failed.
    #[error("the identity provider failed (HTTP {status}); this is usually temporary, retry later (body: {body:?})")]
    Server {
        /// HTTP status.
        status: u16,
        /// The first bytes of the body, redacted.
        body: String,
    },
    /// The provider could not be reached, or the connection broke.
    #[error("could not reach the identity provider: {message}; check the network and the region or authority URL")]
    Network {
        /// What failed (no secrets: URLs of the token endpoint carry none).
        message: String,
    },
    /// No answer in time.
    #[error("the identity provider did not answer within {} s; retry later or raise the timeout", after.as_secs_f64())]
    Timeout {
        /// The limit that was hit.
        after: Duration,
    },
    /// An answer that is not what the spec describes.
    #[error("unexpected response from the identity provider{}: {reason} (body starts: {excerpt:?})", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    MalformedResponse {
        /// HTTP status, when known.
        status: Option<u16>,
        /// What was wrong with it.
        reason: String,
        /// The first bytes of the body, redacted.
        excerpt: String,
    },
    /// The SDK is configured wrongly; nothing was sent.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
}

impl Error {
    /// The HTTP status, where there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::InvalidCredentials { status, .. }
            | Self::SignInRequired { status, .. }
            | Self::Forbidden { status, .. }
            | Self::RateLimited { status, .. }
            | Self::Server { status, .. } => Some(*status),
            Self::MalformedResponse { status, .. } => *status,
            Self::Network { .. } | Self::Timeout { .. } | Self::Config(_) => None,
        }
    }

    /// Whether trying again later can succeed without changing anything:
    /// network errors, timeouts, 5xx, 429. Never for rejected credentials.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Network { .. } | Self::Timeout { .. } | Self::Server { .. } | Self::RateLimited { .. })
    }
}

impl Error {
    /// Replaces every occurrence of the given secrets (the ones a request
    /// carried) in the error's text. Pattern redaction catches what looks
    /// like a token; this catches a server echoing exactly what it was sent.
    pub(crate) fn scrub(self, secrets: &[&str]) -> Self {
        let clean = |text: String| {
            secrets.iter().filter(|s| !s.is_empty()).fold(text, |text, secret| text.replace(secret, "[REDACTED]"))
        };
        let clean_details = |details: ErrorDetails| ErrorDetails {
            code: details.code.map(clean),
            description: details.description.map(clean),
            messages: details.messages.into_iter().map(clean).collect(),
        };
        match self {
            Self::InvalidCredentials { status, details } => {
                Self::InvalidCredentials { status, details: clean_details(details) }
            }
            Self::SignInRequired { status, details } => {
                Self::SignInRequired { status, details: clean_details(details) }
            }
            Self::Forbidden { status, details } => Self::Forbidden { status, details: clean_details(details) },
            Self::Server { status, body } => Self::Server { status, body: clean(body) },
            Self::Network { message } => Self::Network { message: clean(message) },
            Self::MalformedResponse { status, reason, excerpt } => {
                Self::MalformedResponse { status, reason: clean(reason), excerpt: clean(excerpt) }
            }
            other @ (Self::RateLimited { .. } | Self::Timeout { .. } | Self::Config(_)) => other,
        }
    }
}

/// What the provider said about an error: RFC 6749 §5.2 fields, or the
/// messages of Filevine's error envelope. Redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    /// RFC 6749 error code, e.g. `invalid_grant`.
    pub code: Option<String>,
    /// RFC 6749 `error_description`.
    pub description: Option<String>,
    /// The `message`s of Filevine's `errors` list.
    pub messages: Vec<String>,
}

impl ErrorDetails {
    /// Details with an RFC 6749 code and description.
    pub fn oauth(code: &str, description: Option<&str>) -> Self {
        Self { code: Some(code.to_owned()), description: description.map(str::to_owned), messages: Vec::new() }
    }

    pub(crate) fn from_body(body: &filevine_identity::types::TokenError) -> Self {
        Self {
            code: body.error.as_deref().map(|s| redact(s, 100)),
            description: body.error_description.as_deref().map(|s| redact(s, 300)),
            messages: body.errors.iter().filter_map(|e| e.message.as_deref()).map(|s| redact(s, 300)).take(5).collect(),
        }
    }
}

impl fmt::Display for ErrorDetails {
    /// `: invalid_grant: The refresh token expired` or `: Invalid PAT`; empty
    /// when the provider said nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        for message in &self.messages {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// The SDK was configured wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("environment variable {name} is not set{hint}")]
    MissingVar {
        /// The variable.
        name: &'static str,
        /// What else would do, e.g. ` (or set FILEVINE_CLIENT_ID and FILEVINE_CLIENT_SECRET)`.
        hint: &'static str,
    },
    /// An environment variable is set but unusable.
    #[error("environment variable {name} is malformed: {reason}")]
    MalformedVar {
        /// The variable.
        name: &'static str,
        /// Why (never the value if the variable is a secret).
        reason: String,
    },
    /// An invalid region or authority.
    #[error(transparent)]
    Region(#[from] RegionError),
    /// An invalid scope list.
    #[error(transparent)]
    Scopes(#[from] ScopesError),
    /// A value given to a builder is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// Returns at most `max_chars` of `text` with anything that looks like a
/// secret replaced by `[REDACTED]`: the values of token-bearing JSON or form
/// fields, JWT-shaped strings, and long opaque runs of token characters.
///
/// Used on every piece of a response that can reach an error message.
pub(crate) fn redact(text: &str, max_chars: usize) -> String {
    // Redact first, then cut: cutting first could shorten a token below the
    // length that marks it as one.
    let mut out = redact_secret_fields(text);
    out = redact_opaque_runs(&out);
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars).collect::<String>() + "…";
    }
    out
}

/// The first bytes of a body as text, redacted.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(4096)];
    redact(String::from_utf8_lossy(head).trim(), 200)
}

/// Token-bearing field names as they open a JSON member (`"name"`, then
/// `:`) or a form pair (`name=`).
const SECRET_FIELD_OPENERS: &[(&str, char)] = &[
    ("\"access_token\"", ':'),
    ("access_token=", '='),
    ("\"refresh_token\"", ':'),
    ("refresh_token=", '='),
    ("\"id_token\"", ':'),
    ("id_token=", '='),
    ("\"token\"", ':'),
    ("token=", '='),
    ("\"client_secret\"", ':'),
    ("client_secret=", '='),
    ("\"code\"", ':'),
    ("code=", '='),
    ("\"code_verifier\"", ':'),
    ("code_verifier=", '='),
    ("\"password\"", ':'),
    ("password=", '='),
];

/// `"access_token": "…"` and `access_token=…` keep their names, lose their values.
fn redact_secret_fields(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        // Only `"` or a letter can open a field; skip the table otherwise.
        if rest.starts_with(|c: char| c == '"' || c.is_ascii_lowercase()) {
            for (open, value_start) in SECRET_FIELD_OPENERS {
                if let Some(after) = rest.strip_prefix(open) {
                    let preceded_by_word =
                        out.chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                    if preceded_by_word {
                        continue;
                    }
                    out.push_str(open);
                    let (consumed, redacted) = skip_value(after, *value_start);
                    out.push_str(&redacted);
                    rest = &after[consumed..];
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Skips a JSON string value after `:` or a form value after `=`; returns
/// the bytes consumed and their redacted replacement.
fn skip_value(after: &str, kind: char) -> (usize, String) {
    if kind == '=' {
        let end = after.find(['&', ' ', '\n', '"']).unwrap_or(after.len());
        return (end, if end == 0 { String::new() } else { "[REDACTED]".to_owned() });
    }
    let trimmed = after.trim_start();
    let leading = after.len() - trimmed.len();
    let Some(colon_rest) = trimmed.strip_prefix(':') else { return (0, String::new()) };
    let value = colon_rest.trim_start();
    let offset = leading + 1 + (colon_rest.len() - value.len());
    if let Some(string) = value.strip_prefix('"') {
        // To the closing quote (honouring escapes), or the end of the text.
        let mut escaped = false;
        let mut end = string.len();
        for (i, c) in string.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i + 1;
                    break;
                }
                _ => escaped = false,
            }
        }
        (offset + 1 + end, ": \"[REDACTED]\"".to_owned())
    } else {
        let end = value.find([',', '}', ' ', '\n']).unwrap_or(value.len());
        (offset + end, ": [REDACTED]".to_owned())
    }
}

/// Long runs of token characters (base64url, JWT dots): 32+ characters, or
/// 16+ that mix letters and digits.
fn redact_opaque_runs(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let has_digit = run.chars().any(|c| c.is_ascii_digit());
        let has_alpha = run.chars().any(|c| c.is_ascii_alphabetic());
        let looks_like_url = run.contains("//");
        if !looks_like_url && (run.len() >= 32 || (run.len() >= 16 && has_digit && has_alpha)) {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_json_fields_are_redacted() {
        let body = r#"{"access_token":"at-1","token_type":"Bearer","refresh_token" : "r\"t","code":5}"#;
        let out = redact(body, 1000);
        assert_eq!(
            out,
            r#"{"access_token": "[REDACTED]","token_type":"Bearer","refresh_token": "[REDACTED]","code": [REDACTED]}"#
        );
    }

    #[test]
    fn truncated_json_values_are_redacted() {
        let out = redact(r#"{"id_token":"eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiIxIn0.sig"#, 1000);
        assert_eq!(out, r#"{"id_token": "[REDACTED]""#);
    }

    #[test]
    fn form_fields_and_opaque_runs_are_redacted() {
        let out = redact("grant_type=refresh_token&refresh_token=abc&client_secret=s", 1000);
        assert_eq!(out, "grant_type=refresh_token&refresh_token=[REDACTED]&client_secret=[REDACTED]");
        let out = redact("<p>token A1b2C3d4E5f6G7h8I9 expired</p>", 1000);
        assert_eq!(out, "<p>token [REDACTED] expired</p>");
        // Ordinary words, numbers and URLs survive.
        let text = "502 Bad Gateway at https://identity.filevine.io/connect/token";
        assert_eq!(redact(text, 1000), text);
    }

    #[test]
    fn words_ending_in_a_field_name_are_not_fields() {
        assert_eq!(redact("mycode=1&barcode=2", 1000), "mycode=1&barcode=2");
    }

    #[test]
    fn long_text_is_cut() {
        let out = redact(&"a ".repeat(500), 10);
        assert_eq!(out.chars().count(), 11);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn excerpt_handles_binary_and_huge_bodies() {
        let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let out = body_excerpt(&body);
        assert!(out.chars().count() <= 201);
    }
}
