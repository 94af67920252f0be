//! Errors of the embedded adapters, and how they map onto the core's retryable /
//! not-retryable distinction.

use std::path::PathBuf;

use alertresponder_core::error::{CoreError, StoreError};
use rusqlite::ErrorCode;
use thiserror::Error;

/// A failure of the SQLite store or the job queue.
#[derive(Debug, Error)]
pub enum EmbeddedError {
    /// The group transaction holding this call could not begin or commit.
    #[error("SQLite commit failed: {message}")]
    Commit {
        /// SQLite's message.
        message: String,
        /// Whether the database was only busy or locked.
        transient: bool,
    },
    /// SQLite refused or failed an operation.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A record could not be encoded to, or decoded from, JSON.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The file holds something this build cannot read (bad time, schema from a newer build …).
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A store operation behind a core port failed (already classified).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking worker running a store operation panicked or was cancelled.
    #[error("store worker failed: {0}")]
    Join(String),
    /// The directory that should hold the database file could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An operation named a report the store does not have.
    #[error("report {0} not found")]
    UnknownReport(String),
    /// A version was marked published while the version before it is not.
    #[error("cannot publish report {report_id} version {version}: the last published version is {published}")]
    VersionGap {
        /// The report.
        report_id: String,
        /// The version asked for.
        version: u32,
        /// The last version published.
        published: u32,
    },
}

impl EmbeddedError {
    /// Whether a retry may succeed: the database was busy or locked by another writer.
    pub fn is_transient(&self) -> bool {
        match self {
            EmbeddedError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            EmbeddedError::Store(e) => matches!(e, StoreError::Transient(_)),
            EmbeddedError::Commit { transient, .. } => *transient,
            _ => false,
        }
    }
}

impl From<EmbeddedError> for StoreError {
    fn from(e: EmbeddedError) -> Self {
        if let EmbeddedError::Store(inner) = e {
            return inner;
        }
        if e.is_transient() {
            StoreError::Transient(e.to_string())
        } else {
            StoreError::Permanent(e.to_string())
        }
    }
}

impl From<EmbeddedError> for CoreError {
    fn from(e: EmbeddedError) -> Self {
        CoreError::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32) -> EmbeddedError {
        EmbeddedError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn busy_and_locked_databases_are_worth_a_retry() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let e = StoreError::from(sqlite_failure(code));
            assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
        }
    }

    #[test]
    fn other_failures_are_permanent() {
        let cases = [
            sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT),
            EmbeddedError::Corrupt("bad time".into()),
            EmbeddedError::Join("panicked".into()),
            EmbeddedError::VersionGap {
                report_id: "r".into(),
                version: 3,
                published: 1,
            },
        ];
        for case in cases {
            let e = StoreError::from(case);
            assert!(matches!(e, StoreError::Permanent(_)), "{e:?}");
        }
    }

    #[test]
    fn core_errors_from_busy_store_are_retryable() {
        let e = CoreError::from(sqlite_failure(rusqlite::ffi::SQLITE_BUSY));
        assert!(e.is_retryable());
        let e = CoreError::from(EmbeddedError::UnknownReport("r".into()));
        assert!(!e.is_retryable());
    }
}
