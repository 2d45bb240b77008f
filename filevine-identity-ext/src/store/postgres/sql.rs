//! The table and its statements. Every operation is one statement (no
//! transaction spans two, no session state, no session-level advisory
//! lock), so the store works through a pooler in transaction mode; the
//! migration is one message holding one transaction (its advisory lock is
//! the transaction's).
//!
//! One row per key: the entry (`version`, `value`, `expires_at`) and its
//! lease (`lease_owner`, `lease_until`). A row that has only a lease has no
//! value; an entry past `expires_at` is absent.

use std::fmt;

use crate::error::ConfigError;

/// Where the table lives: `[schema.]table`, each a plain identifier.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Table {
    schema: Option<String>,
    name: String,
}

/// The default table name.
pub(super) const DEFAULT_TABLE: &str = "filevine_token_sets";

impl Table {
    /// `table` or `schema.table`: letters, digits and `_`, not starting with
    /// a digit, at most 63 bytes each (PostgreSQL's limit).
    pub(super) fn parse(text: &str) -> Result<Self, ConfigError> {
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(identifier(schema)?), identifier(name)?),
            None => (None, identifier(text)?),
        };
        Ok(Self { schema, name })
    }

    /// The quoted, qualified name for SQL.
    fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }

    /// The table name alone (for its index's name).
    fn bare(&self) -> &str {
        &self.name
    }

    /// The statements on this table, written once.
    pub(super) fn statements(&self) -> Statements {
        Statements::new(self)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

fn identifier(text: &str) -> Result<String, ConfigError> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(ConfigError::TokenStore {
            reason: format!(
                "`{}` is not a usable table or schema name: letters, digits and `_`, not starting with a digit, at most 63 bytes",
                text.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(text.to_ascii_lowercase())
}

/// The SQL of each operation for one table.
#[derive(Debug, Clone)]
pub(super) struct Statements {
    /// The table and its index, made in one transaction under an advisory
    /// lock (one simple-query message: one server connection, also
    /// through a pooler in transaction mode).
    pub(super) migrate: String,
    pub(super) load: String,
    pub(super) insert: String,
    pub(super) update: String,
    pub(super) save: String,
    pub(super) delete: String,
    pub(super) take_lease: String,
    pub(super) release_lease: String,
    pub(super) sweep: String,
    pub(super) shape: String,
}

/// How many dead rows a write removes at most.
pub(super) const SWEEP_LIMIT: i64 = 16;

/// `BEGIN`, the advisory lock of `table`'s creation, the table and its
/// index, `COMMIT`.
fn migrate(table: &Table) -> String {
    let t = table.sql();
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {t} (\
         key TEXT PRIMARY KEY, \
         version BIGINT NOT NULL DEFAULT 0, \
         value BYTEA, \
         expires_at TIMESTAMPTZ NOT NULL, \
         lease_owner TEXT, \
         lease_until TIMESTAMPTZ)"
    );
    let index = format!(
        "CREATE INDEX IF NOT EXISTS \"{}_expires_at\" ON {t} (expires_at)",
        table.bare().chars().take(50).collect::<String>()
    );
    // The lock's key: a hash of the qualified name (a plain identifier,
    // checked by `Table::parse`), so tables of other names do not wait.
    format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtext('filevine-identity migrate {table}')); {create}; {index}; COMMIT"
    )
}

impl Statements {
    fn new(table: &Table) -> Self {
        let t = table.sql();
        // Times are the server's clock (`now()`), the same for every
        // process; `$n * interval '1 millisecond'` gives an expiry.
        Self {
            migrate: migrate(table),
            load: format!("SELECT version, value FROM {t} WHERE key = $1 AND value IS NOT NULL AND expires_at > now()"),
            // Version 0 (absent): a new row, or a row with only a lease, or
            // an expired entry.
            insert: format!(
                "INSERT INTO {t} AS t (key, version, value, expires_at) \
                 VALUES ($1, 1, $2, now() + $3 * interval '1 millisecond') \
                 ON CONFLICT (key) DO UPDATE SET version = 1, value = EXCLUDED.value, expires_at = EXCLUDED.expires_at \
                 WHERE t.value IS NULL OR t.expires_at <= now()"
            ),
            update: format!(
                "UPDATE {t} SET version = version + 1, value = $3, expires_at = now() + $4 * interval '1 millisecond' \
                 WHERE key = $1 AND version = $2 AND value IS NOT NULL AND expires_at > now()"
            ),
            save: format!(
                "INSERT INTO {t} AS t (key, version, value, expires_at) \
                 VALUES ($1, 1, $2, now() + $3 * interval '1 millisecond') \
                 ON CONFLICT (key) DO UPDATE SET \
                 version = CASE WHEN t.value IS NULL OR t.expires_at <= now() THEN 1 ELSE t.version + 1 END, \
                 value = EXCLUDED.value, expires_at = EXCLUDED.expires_at \
                 RETURNING version"
            ),
            // The entry goes; a row still leased keeps the lease alone.
            delete: format!(
                "UPDATE {t} SET version = 0, value = NULL, expires_at = GREATEST(lease_until, now()) \
                 WHERE key = $1"
            ),
            take_lease: format!(
                "INSERT INTO {t} AS t (key, version, value, expires_at, lease_owner, lease_until) \
                 VALUES ($1, 0, NULL, now() + $3 * interval '1 millisecond', $2, now() + $3 * interval '1 millisecond') \
                 ON CONFLICT (key) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until \
                 WHERE t.lease_owner IS NULL OR t.lease_until <= now() OR t.lease_owner = EXCLUDED.lease_owner"
            ),
            release_lease: format!(
                "UPDATE {t} SET lease_owner = NULL, lease_until = NULL WHERE key = $1 AND lease_owner = $2"
            ),
            // Bounded, and skipping rows another statement holds.
            sweep: format!(
                "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} \
                 WHERE expires_at <= now() AND (lease_until IS NULL OR lease_until <= now()) \
                 LIMIT {SWEEP_LIMIT} FOR UPDATE SKIP LOCKED)"
            ),
            // Every column with the type the statements need: a table of
            // another shape is named before it is used.
            shape: format!(
                "SELECT key::text, version::bigint, value::bytea, expires_at::timestamptz, \
                 lease_owner::text, lease_until::timestamptz FROM {t} LIMIT 0"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers_quoted_in_sql() {
        assert_eq!(Table::parse("tokens").unwrap().sql(), "\"tokens\"");
        assert_eq!(Table::parse("Auth.Tokens").unwrap().sql(), "\"auth\".\"tokens\"");
        assert_eq!(Table::parse("auth.tokens").unwrap().to_string(), "auth.tokens");
        for bad in ["", "a.b.c", "1tokens", "to-kens", "t\"; DROP TABLE x; --", ".t", "t.", &"x".repeat(64)] {
            let err = Table::parse(bad).unwrap_err().to_string();
            assert!(err.contains("not a usable table or schema name"), "{bad}: {err}");
        }
    }
}

/// A value put into a statement as a literal. Statements go out as simple
/// queries with literals, not as prepared statements with parameters: a
/// pooler in transaction mode may run the parse and the execution of a
/// prepared statement on two server connections (PgBouncer before 1.21
/// does), a simple query is one message. Every literal here is safe by
/// construction: digits, hex, or a name of `[A-Za-z0-9_-]` checked first.
#[derive(Debug, Clone, Copy)]
pub(super) enum Literal<'a> {
    /// A store key or lease owner; refused unless `[A-Za-z0-9_-]{1,128}`.
    Name(&'a str),
    /// Bytes, as `decode('<hex>', 'hex')`.
    Bytes(&'a [u8]),
    /// A whole number.
    Int(i64),
}

/// `Name` refused: what a store key or owner may be.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a store key or lease owner must be 1 to 128 characters of `[A-Za-z0-9_-]`")]
pub(super) struct NotAName;

impl Literal<'_> {
    fn write(&self, out: &mut String) -> Result<(), NotAName> {
        use std::fmt::Write as _;
        match self {
            Self::Name(name) => {
                let valid = (1..=128).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !valid {
                    return Err(NotAName);
                }
                out.push('\'');
                out.push_str(name);
                out.push('\'');
            }
            Self::Bytes(bytes) => {
                out.push_str("decode('");
                for byte in *bytes {
                    let _ = write!(out, "{byte:02x}");
                }
                out.push_str("', 'hex')");
            }
            Self::Int(n) => {
                let _ = write!(out, "{n}");
            }
        }
        Ok(())
    }
}

/// `template` with `$1`…`$9` replaced by `values` as literals.
pub(super) fn fill(template: &str, values: &[Literal<'_>]) -> Result<String, NotAName> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digit = rest[at + 1..].chars().next().and_then(|c| c.to_digit(10));
        match digit.and_then(|d| values.get((d as usize).wrapping_sub(1))) {
            Some(value) => {
                value.write(&mut out)?;
                rest = &rest[at + 2..];
            }
            None => {
                out.push('$');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod literal_tests {
    use super::*;

    #[test]
    fn literals_are_digits_hex_or_checked_names() {
        let sql =
            fill("SELECT $1, $2, $3, $4", &[Literal::Name("ab-C_9"), Literal::Bytes(b"\x00'\xff"), Literal::Int(-5)])
                .unwrap();
        assert_eq!(sql, "SELECT 'ab-C_9', decode('0027ff', 'hex'), -5, $4");
        for bad in ["", "a'b", "a b", "k;DROP", "é", &"k".repeat(129)] {
            assert!(fill("$1", &[Literal::Name(bad)]).is_err(), "{bad:?}");
        }
    }
}
