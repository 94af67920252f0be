//! The file: its schema, its version, and how a connection to it is opened and set up.
//!
//! The schema is created on first open and re-applied (`IF NOT EXISTS`) on every open,
//! so an addition an older build can ignore (a table, an index) needs no new version;
//! [`SCHEMA_VERSION`] changes only when a file written by this build would be misread
//! by an older one, and a build refuses a file of a newer version.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::sql::row1;
use crate::error::EmbeddedError;

/// Schema version kept in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('seq', 0);

CREATE TABLE IF NOT EXISTS reports (
    id                TEXT PRIMARY KEY,
    alert_id          TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    opened_by         TEXT NOT NULL,
    published_version INTEGER NOT NULL DEFAULT 0,
    alert_count       INTEGER NOT NULL DEFAULT 0,
    last_result       TEXT
);
CREATE INDEX IF NOT EXISTS reports_by_created ON reports (created_at);

CREATE TABLE IF NOT EXISTS open_reports (
    alert_id   TEXT PRIMARY KEY,
    report_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS alerts (
    report_id   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    alert       TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (report_id, message_id)
);

-- The first message to name an attribute of a report (its dispatch claims it).
CREATE TABLE IF NOT EXISTS mentions (
    report_id  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (report_id, hash)
);

CREATE TABLE IF NOT EXISTS attributes (
    report_id TEXT NOT NULL,
    hash      TEXT NOT NULL,
    attribute TEXT NOT NULL,
    claimer   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (report_id, hash)
);

-- Claimed attributes whose inspection has finished (`mark_inspected`): a claim
-- without a row here is pending. A table of its own, not a column of `attributes`,
-- so that a file of this schema version opens unchanged (see `INSPECTED_BACKFILL`).
CREATE TABLE IF NOT EXISTS inspected (
    report_id TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (report_id, hash)
);

CREATE TABLE IF NOT EXISTS sections (
    report_id TEXT NOT NULL,
    attr_hash TEXT NOT NULL,
    author    TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    section   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (report_id, attr_hash, author, idx)
);

CREATE TABLE IF NOT EXISTS inspections (
    report_id TEXT NOT NULL,
    attr_hash TEXT NOT NULL,
    inspector TEXT NOT NULL,
    record    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (report_id, attr_hash, inspector)
);

CREATE TABLE IF NOT EXISTS published (
    report_id    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    report       TEXT NOT NULL,
    publisher    TEXT NOT NULL,
    severity     TEXT NOT NULL,
    published_at INTEGER,
    PRIMARY KEY (report_id, version)
);

CREATE TABLE IF NOT EXISTS errors (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL,
    stage           TEXT NOT NULL,
    error           TEXT NOT NULL,
    field           TEXT,
    input           TEXT NOT NULL,
    input_truncated INTEGER NOT NULL,
    at              INTEGER NOT NULL
);
-- A retried failure replaces its record (see put_error): found by its key.
CREATE INDEX IF NOT EXISTS errors_by_key ON errors (id, stage);

CREATE TABLE IF NOT EXISTS jobs (
    name       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    job        TEXT NOT NULL,
    report_id  TEXT NOT NULL,
    due_at     INTEGER NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_due ON jobs (state, due_at, seq);
CREATE INDEX IF NOT EXISTS jobs_by_report ON jobs (report_id, kind, state);

-- Inspector answers kept across reports (`AnswerCache`): the key is the inspector's
-- name and the attribute's hash; an answer at or past `expires_at` is never returned.
CREATE TABLE IF NOT EXISTS answers (
    key        TEXT PRIMARY KEY,
    answer     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_expiry ON answers (expires_at);

-- Calls granted in each fixed window of a rate limit (`RateLimiter`).
CREATE TABLE IF NOT EXISTS rate_windows (
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    calls        INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
);
"#;

/// Run once, when `inspected` is first created in a file that has claims already
/// (written by a build that did not mark inspections): those claims count as
/// inspected, as that build treated them, so that re-reviews of old reports do not list
/// every attribute as timed out. A file created with the table has nothing to fill.
const INSPECTED_BACKFILL: &str =
    "INSERT OR IGNORE INTO inspected (report_id, hash) SELECT report_id, hash FROM attributes";

/// How hard SQLite works to keep a commit across a power loss (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous = NORMAL`: with WAL, a power loss may lose the last commits, never corrupts.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is on disk before it returns.
    Full,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "normal" => Ok(Durability::Normal),
            "full" => Ok(Durability::Full),
            other => Err(format!(
                "unknown durability {other:?} (expected normal or full)"
            )),
        }
    }
}

/// Opens (creating file and directory on first run) the file at `path`, set up by [`prepare`].
pub(super) fn open_file(path: &Path, durability: Durability) -> Result<Connection, EmbeddedError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // Only the writer thread ever touches the connection: SQLite's own locking
    // of every call would be pure overhead.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    prepare(Connection::open_with_flags(path, flags)?, durability)
}

/// Sets a fresh connection up (WAL, durability, caches) and creates or checks the schema.
pub(super) fn prepare(
    mut conn: Connection,
    durability: Durability,
) -> Result<Connection, EmbeddedError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // An in-memory database answers `memory`: WAL only applies to files.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // A larger page cache and memory-mapped reads keep hot pages out of read(2);
    // a longer checkpoint interval turns many small checkpoints into fewer larger ones.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = row1(&tx, "PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(EmbeddedError::Corrupt(format!(
            "schema version {version} was written by a newer build (this one reads {SCHEMA_VERSION})"
        )));
    }
    let had_inspected: bool = row1(
        &tx,
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inspected')",
        [],
        |r| r.get(0),
    )?;
    tx.execute_batch(SCHEMA)?;
    if !had_inspected {
        tx.execute(INSPECTED_BACKFILL, [])?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}
