//! What went wrong with PostgreSQL, named for the person who has to fix it,
//! never with the password.

use std::time::Duration;

use super::sql::Table;

/// A PostgreSQL failure, the source of a store's `StoreError::Backend`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The table does not exist.
    #[error("the table `{table}` does not exist: call PostgresStore::migrate() once (at deploy or start-up)")]
    MissingTable {
        /// The table's name.
        table: String,
    },
    /// The table exists but is not one this store made.
    #[error("the table `{table}` is not a Filevine token table ({detail}); name another table or drop this one")]
    OtherShape {
        /// The table's name.
        table: String,
        /// The database's words for the mismatch.
        detail: String,
    },
    /// The database refused the user or password.
    #[error("the database refused the login (check the user and password of the URL)")]
    LoginRefused,
    /// The URL names a database that does not exist.
    #[error("the database named in the URL does not exist")]
    UnknownDatabase,
    /// No answer in time (connecting included).
    #[error("no answer from the database within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The database could not be reached.
    #[error("cannot reach the database: {0}")]
    Unreachable(String),
    /// Another error the database reported, with its SQLSTATE.
    #[error("the database refused the statement (SQLSTATE {code}): {message}")]
    Database {
        /// The SQLSTATE code.
        code: String,
        /// The database's message.
        message: String,
    },
    /// An unencrypted token set for a server off this machine, whose logs
    /// and activity views would show it.
    #[error(
        "refusing to write an unencrypted token set to a PostgreSQL server off this machine (its logs show statement values): set FILEVINE_STORE_KEY, or call PostgresStore::allow_unencrypted()"
    )]
    Unencrypted,
    /// Anything else the driver reported.
    #[error("the PostgreSQL driver failed: {0}")]
    Driver(String),
}

impl Failure {
    pub(super) fn from_sqlx(error: &sqlx::Error, table: &Table) -> Self {
        match error {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                match code.as_str() {
                    "42P01" => Self::MissingTable { table: table.to_string() },
                    // undefined column, datatype mismatch, cannot coerce,
                    // not-null violation on a column this store leaves out.
                    "42703" | "42804" | "42846" | "23502" => {
                        Self::OtherShape { table: table.to_string(), detail: db.message().to_owned() }
                    }
                    "28P01" | "28000" => Self::LoginRefused,
                    "3D000" => Self::UnknownDatabase,
                    _ => Self::Database { code, message: db.message().to_owned() },
                }
            }
            sqlx::Error::PoolTimedOut => Self::Unreachable("no connection could be made in time".into()),
            sqlx::Error::Io(io) => Self::Unreachable(io.to_string()),
            sqlx::Error::Tls(tls) => Self::Unreachable(format!("TLS: {tls}")),
            // A column of another type than this store reads.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::TypeNotFound { .. } => {
                Self::OtherShape { table: table.to_string(), detail: "a column has another type".into() }
            }
            // Configuration errors can quote the connection string.
            sqlx::Error::Configuration(_) => Self::Driver("the connection settings are invalid".into()),
            other => Self::Driver(other.to_string()),
        }
    }
}
