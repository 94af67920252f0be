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

-- Which published version reached which emitter (`DeliveryLog`): the first record of
-- a delivery is kept. Tables an older build ignores: no new schema version.
CREATE TABLE IF NOT EXISTS deliveries (
    report_id    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    emitter      TEXT NOT NULL,
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (report_id, version, emitter)
);

-- What an emitter remembers about a report between versions (the GitHub issue it
-- opened), JSON of at most `ports::MAX_MEMO_BYTES`.
CREATE TABLE IF NOT EXISTS emitter_memos (
    report_id TEXT NOT NULL,
    emitter   TEXT NOT NULL,
    memo      TEXT NOT NULL,
    PRIMARY KEY (report_id, emitter)
);

-- The pages' read side (`BrowseStore`, store/browse.rs says what each costs): one row
-- per report with what the list filters on, and the values search finds, kept by
-- triggers in the transaction of the write they index. Tables an older build ignores
-- (its writes still fire the triggers): no new schema version; `browse::backfill`
-- fills them once in a file written before them.
CREATE TABLE IF NOT EXISTS browse_reports (
    report_id    TEXT PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    detector     TEXT NOT NULL,
    rule         TEXT NOT NULL,
    alert_key    TEXT NOT NULL,
    severity     TEXT,
    published_at INTEGER
);
-- One index per filter and order, each ending in the list's order (time, report ID).
-- Those of published reports only are partial: a new report writes two entries, its
-- publications the others.
CREATE INDEX IF NOT EXISTS browse_by_opened ON browse_reports (created_at, report_id);
CREATE INDEX IF NOT EXISTS browse_by_detector ON browse_reports (detector, created_at, report_id);
CREATE INDEX IF NOT EXISTS browse_by_severity ON browse_reports (severity, created_at, report_id)
    WHERE severity IS NOT NULL;
CREATE INDEX IF NOT EXISTS browse_by_published ON browse_reports (published_at, report_id)
    WHERE published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS browse_by_severity_published
    ON browse_reports (severity, published_at, report_id) WHERE published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS browse_by_detector_published
    ON browse_reports (detector, published_at, report_id) WHERE published_at IS NOT NULL;

-- Alert keys and attribute values (trimmed, ASCII lower case, at most 256 bytes:
-- `ports::MAX_SEARCH_BYTES`), once per report. No index by report: retention finds a
-- report's rows again from its alerts, claims and key (the triggers below).
CREATE TABLE IF NOT EXISTS browse_values (
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    report_id  TEXT NOT NULL,
    PRIMARY KEY (value, created_at, report_id)
) WITHOUT ROWID;

-- Messages, other than a report's opener, whose alert values are indexed.
CREATE TABLE IF NOT EXISTS browse_indexed (
    report_id  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (report_id, message_id)
) WITHOUT ROWID;

-- A report enters the list with its first alert: the receive that stores it moves
-- `alert_count` from 0 (once per report; later alerts only test the WHEN). Its key and
-- its first alert's attribute values are indexed.
CREATE TRIGGER IF NOT EXISTS browse_report_opened
AFTER UPDATE OF alert_count ON reports WHEN OLD.alert_count = 0 AND NEW.alert_count > 0
BEGIN
    INSERT OR IGNORE INTO browse_reports (report_id, created_at, detector, rule, alert_key)
    SELECT NEW.id, NEW.created_at,
           coalesce(json_extract(a.alert, '$.detector'), ''),
           coalesce(nullif(json_extract(a.alert, '$.rule_name'), ''),
                    json_extract(a.alert, '$.rule_id'), ''),
           coalesce(json_extract(a.alert, '$.alert_key'), '')
      FROM alerts a WHERE a.report_id = NEW.id ORDER BY a.seq LIMIT 1;
    INSERT OR IGNORE INTO browse_values (value, created_at, report_id)
    SELECT v, NEW.created_at, NEW.id FROM (
        SELECT lower(trim(alert_key, char(32, 9, 10, 12, 13))) AS v
          FROM browse_reports WHERE report_id = NEW.id
        UNION
        SELECT lower(trim(json_extract(j.value, '$.value'), char(32, 9, 10, 12, 13)))
          FROM alerts a, json_each(a.alert, '$.attributes') j
         WHERE a.report_id = NEW.id AND a.message_id = NEW.opened_by)
     WHERE v IS NOT NULL AND v <> '' AND length(CAST(v AS BLOB)) <= 256;
END;

-- A joining alert's attribute values, indexed when it first names an attribute new to
-- its report (its first new mention; once per message): the first message to name an
-- attribute indexes its value, and an alert naming only known attributes costs nothing.
CREATE TRIGGER IF NOT EXISTS browse_mention_values AFTER INSERT ON mentions
WHEN NOT EXISTS (SELECT 1 FROM reports
                  WHERE id = NEW.report_id AND opened_by = NEW.message_id)
 AND NOT EXISTS (SELECT 1 FROM browse_indexed
                  WHERE report_id = NEW.report_id AND message_id = NEW.message_id)
BEGIN
    INSERT INTO browse_indexed (report_id, message_id) VALUES (NEW.report_id, NEW.message_id);
    INSERT OR IGNORE INTO browse_values (value, created_at, report_id)
    SELECT v, created_at, report_id FROM (
        SELECT lower(trim(json_extract(j.value, '$.value'), char(32, 9, 10, 12, 13))) AS v,
               r.created_at AS created_at, r.id AS report_id
          FROM alerts a JOIN reports r ON r.id = a.report_id,
               json_each(a.alert, '$.attributes') j
         WHERE a.report_id = NEW.report_id AND a.message_id = NEW.message_id)
     WHERE v IS NOT NULL AND v <> '' AND length(CAST(v AS BLOB)) <= 256;
END;

-- Each claimed attribute's value (discovered ones included), once per claim.
CREATE TRIGGER IF NOT EXISTS browse_claim_values AFTER INSERT ON attributes
BEGIN
    INSERT OR IGNORE INTO browse_values (value, created_at, report_id)
    SELECT v, r.created_at, r.id
      FROM reports r,
           (SELECT lower(trim(json_extract(NEW.attribute, '$.value'), char(32, 9, 10, 12, 13))) AS v)
     WHERE r.id = NEW.report_id
       AND v IS NOT NULL AND v <> '' AND length(CAST(v AS BLOB)) <= 256;
END;

-- Each publication is the report's latest version (never ahead, never twice).
CREATE TRIGGER IF NOT EXISTS browse_report_published AFTER INSERT ON published
BEGIN
    UPDATE browse_reports SET severity = NEW.severity, published_at = NEW.published_at
     WHERE report_id = NEW.report_id;
END;

-- Retention (`prune_before` deletes a report's alerts and claims, then the report)
-- takes the browse rows along: each alert's and claim's values, then the key and row.
CREATE TRIGGER IF NOT EXISTS browse_alert_deleted AFTER DELETE ON alerts
BEGIN
    DELETE FROM browse_values
     WHERE report_id = OLD.report_id
       AND created_at = (SELECT created_at FROM reports WHERE id = OLD.report_id)
       AND value IN (SELECT lower(trim(json_extract(j.value, '$.value'), char(32, 9, 10, 12, 13)))
                       FROM json_each(OLD.alert, '$.attributes') j);
END;
CREATE TRIGGER IF NOT EXISTS browse_claim_deleted AFTER DELETE ON attributes
BEGIN
    DELETE FROM browse_values
     WHERE report_id = OLD.report_id
       AND created_at = (SELECT created_at FROM reports WHERE id = OLD.report_id)
       AND value = lower(trim(json_extract(OLD.attribute, '$.value'), char(32, 9, 10, 12, 13)));
END;
CREATE TRIGGER IF NOT EXISTS browse_report_deleted AFTER DELETE ON reports
BEGIN
    DELETE FROM browse_values
     WHERE report_id = OLD.id AND created_at = OLD.created_at
       AND value = (SELECT lower(trim(alert_key, char(32, 9, 10, 12, 13)))
                      FROM browse_reports WHERE report_id = OLD.id);
    DELETE FROM browse_reports WHERE report_id = OLD.id;
    DELETE FROM browse_indexed WHERE report_id = OLD.id;
END;

-- The error list's order (`BrowseStore::browse_errors`), paged by key.
CREATE INDEX IF NOT EXISTS errors_by_time ON errors (at, stage, id);
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
    let had_browse = super::browse::has_tables(&tx)?;
    tx.execute_batch(SCHEMA)?;
    if !had_inspected {
        tx.execute(INSPECTED_BACKFILL, [])?;
    }
    if !had_browse {
        super::browse::backfill(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}
