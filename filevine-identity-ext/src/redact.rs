//! Redaction: what a server sent never reaches an error message, a log line
//! or a panic with anything that looks like a secret in it.
//!
//! Two layers: [`redact`] replaces what *looks* like a secret (token-bearing
//! fields, JWT-shaped and long opaque strings) in any text from a response;
//! [`scrub`] replaces exactly the secrets a request carried, for a server
//! that echoes what it was sent.

/// Returns at most `max_chars` of `text` with anything that looks like a
/// secret replaced by `[REDACTED]`: the values of token-bearing JSON or form
/// fields, JWT-shaped strings, and long opaque runs of token characters.
///
/// Used on every piece of a response that can reach an error message.
pub(crate) fn redact(text: &str, max_chars: usize) -> String {
    // Made printable first: server text reaches terminals and log viewers
    // through errors. Redact, then cut: cutting first could shorten a token
    // below the length that marks it as one.
    let text = printable(text);
    let mut out = redact_secret_fields(&text);
    out = redact_opaque_runs(&out);
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars).collect::<String>() + "…";
    }
    out
}

/// At most `max_chars` of `text`, made printable but not redacted: for
/// what a server sent that is no secret and must be read whole to be of
/// use (an issuer, an endpoint URL, a key id, a client id).
#[cfg_attr(not(feature = "oidc"), allow(dead_code))]
pub(crate) fn shown(text: &str, max_chars: usize) -> String {
    let text = printable(text);
    if text.chars().count() > max_chars {
        return text.chars().take(max_chars).collect::<String>() + "…";
    }
    text.into_owned()
}

/// `text` without what a terminal would act on or hide: control characters
/// (escape sequences, bells, backspaces; a line break or tab becomes a
/// space) and characters that show as nothing or turn the text around them
/// (Unicode's bidirectional controls and zero-width characters).
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || is_invisible(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let cleaned = text
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() || is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    std::borrow::Cow::Owned(cleaned)
}

/// A character that shows as nothing or changes the direction of the text
/// around it (Unicode's bidirectional controls and zero-width characters).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
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
    let looks_secret = |part: &str| {
        let has_digit = part.chars().any(|c| c.is_ascii_digit());
        let has_alpha = part.chars().any(|c| c.is_ascii_alphabetic());
        part.len() >= 32 || (part.len() >= 16 && has_digit && has_alpha)
    };
    // Segment by segment, so a URL keeps its shape and loses only what
    // looks like a secret.
    let push_segments = |path: &str, out: &mut String| {
        for (i, segment) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(if looks_secret(segment) { "[REDACTED]" } else { segment });
        }
    };
    // Whether the run being flushed continues a URL's host (`:` then the
    // port and path).
    let mut in_url = false;
    let flush = |run: &mut String, out: &mut String, in_url: &mut bool| {
        // A URL's run is `//host/path` after `https:` (`:` ends a run);
        // anything else with a `/` in it (standard base64 has them, and
        // `//`) is judged whole.
        let after_scheme = out.ends_with("http:") || out.ends_with("https:");
        let is_port = |part: &str| {
            let port = part.split('/').next().unwrap_or_default();
            (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit())
        };
        if let Some(path) = run.strip_prefix("//").filter(|_| after_scheme) {
            out.push_str("//");
            push_segments(path, out);
            *in_url = !path.contains('/');
        } else if *in_url && out.ends_with(':') && is_port(run) {
            push_segments(run, out);
            *in_url = false;
        } else {
            out.push_str(if looks_secret(run) { "[REDACTED]" } else { run });
            *in_url = false;
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            if !run.is_empty() {
                flush(&mut run, &mut out, &mut in_url);
            } else if c != ':' {
                in_url = false;
            }
            out.push(c);
        }
    }
    flush(&mut run, &mut out, &mut in_url);
    out
}

/// Replaces every occurrence of `secrets` (the ones a request carried) in
/// `text`. Empty secrets are skipped.
pub(crate) fn scrub(text: String, secrets: &[&str]) -> String {
    secrets.iter().filter(|s| !s.is_empty()).fold(text, |text, secret| text.replace(secret, "[REDACTED]"))
}

/// A URL without its query and fragment: what `Debug` shows of a URL whose
/// query carries per-sign-in secrets (state, nonce, an ID token hint).
#[cfg(feature = "oidc")]
pub(crate) fn endpoint_only(url: &url::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_made_printable() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("a\u{1b}]0;title\u{7}b\u{1b}[2Jc"), "a]0;titleb[2Jc");
        assert_eq!(printable("line\none\ttab\u{7f}\u{9b}"), "line one tab");
        assert_eq!(printable("abc\u{202E}fed\u{200B}"), "abcfed");
        assert_eq!(redact("bad \u{1b}[31mthing", 100), "bad [31mthing");
    }

    #[test]
    fn base64_secrets_with_slashes_are_redacted_and_urls_keep_their_shape() {
        // Standard base64 can hold `/` and `//`.
        for secret in ["abc//DEF0123456789ghijklmnop+/xyz==", "k3Y//Q9zLm+8vR2/aBcD0eF1gH2iJ3kL"] {
            let shown = redact(&format!("error: bad secret {secret} here"), 300);
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("[REDACTED]"), "{shown}");
        }
        assert_eq!(
            redact("see https://identity.filevine.com/connect/token now", 300),
            "see https://identity.filevine.com/connect/token now"
        );
        let shown = redact("at https://h.example/cb/eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9abc/x", 300);
        assert_eq!(shown, "at https://h.example/cb/[REDACTED]/x");
        // A port and the path after it are a URL's, not a secret.
        for url in ["http://127.0.0.1:43567/realms/filevine2024", "https://id.example:8443/oidc/v2/connect/token"] {
            assert_eq!(redact(&format!("issued by \"{url}\""), 300), format!("issued by \"{url}\""));
        }
        let shown = redact("https://h.example:8443/cb/eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9abc", 300);
        assert_eq!(shown, "https://h.example:8443/cb/[REDACTED]");
        // Not after a URL's host: judged whole.
        assert_eq!(redact("key:12345/abcdefghij0123456789", 300), "key:[REDACTED]");
    }

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
        assert_eq!(out.chars().count(), 201, "200 characters and the ellipsis");
        assert!(out.ends_with('…'), "{out}");
        // A short body comes back whole, trimmed; a token in it does not.
        assert_eq!(body_excerpt(b"  <h1>Bad Gateway</h1>\n"), "<h1>Bad Gateway</h1>");
        assert_eq!(body_excerpt(br#"{"access_token":"at-1"}"#), r#"{"access_token": "[REDACTED]"}"#);
    }
}
