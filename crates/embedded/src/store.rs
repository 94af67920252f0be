//! [`SqliteStore`]: the [`Store`] port on one SQLite file (WAL).
//!
//! One connection behind a mutex; every operation runs on a blocking worker, in one
//! transaction (`BEGIN IMMEDIATE` for writes, so another process writing the same
//! file waits on the busy timeout rather than failing halfway). Times are integer
//! epoch milliseconds, records are JSON text, and a global counter gives every row a
//! `seq` so that content comes back in the order it was stored.

use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{
    Alert, Attribute, ErrorRecord, InspectionRecord, Report, ReportResult, ReportSection, Severity,
};
use alertresponder_core::ports::{Admission, Claim, PublishMark, ReportMeta, ReportState, Store};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Params, Row, TransactionBehavior,
};
use serde::{Deserialize, Serialize};

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
"#;

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

/// A line of the report list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    /// Report ID.
    pub id: String,
    /// The alert ID it aggregates.
    pub alert_id: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last published version (0: never published).
    pub published_version: u32,
    /// Severity of the last published version.
    pub severity: Option<Severity>,
    /// Alerts stored for it.
    pub alert_count: u32,
    /// `detector: rule` of its first alert (empty before the first alert is stored).
    pub title: String,
}

/// The [`Store`] port on a SQLite file.
///
/// One writer thread owns the connection. Calls queue up on a channel; the thread
/// runs every call waiting at that moment in one transaction, each call in a
/// savepoint of its own (a failing call rolls back only itself), commits once, and
/// only then answers each caller. Concurrent callers thus share a commit (group
/// commit) while every caller still learns of its write only once it is durable.
#[derive(Clone)]
pub struct SqliteStore {
    calls: mpsc::Sender<Box<dyn Call>>,
}

/// Most calls run in one transaction.
const MAX_GROUP: usize = 512;

/// One queued call: run inside the group's transaction, answered after the commit.
trait Call: Send {
    /// Runs the call in its own savepoint; returns how to answer it after the commit.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Answer>;
    /// Answers without running: the group's transaction could not begin.
    fn abort(self: Box<Self>, error: EmbeddedError);
}

/// A call's outcome, held until the group's commit.
trait Answer: Send {
    /// Sends the outcome, or `commit_error` if the commit failed.
    fn send(self: Box<Self>, commit_error: Option<EmbeddedError>);
}

struct Queued<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, EmbeddedError>>,
}

struct Held<T> {
    outcome: Result<T, EmbeddedError>,
    reply: tokio::sync::oneshot::Sender<Result<T, EmbeddedError>>,
}

impl<T, F> Call for Queued<T, F>
where
    F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Answer> {
        let Queued { f, reply } = *self;
        let outcome = conn
            .execute_batch("SAVEPOINT call")
            .map_err(EmbeddedError::from)
            .and_then(|()| f(conn));
        let closed = match &outcome {
            Ok(_) => conn.execute_batch("RELEASE call"),
            Err(_) => conn.execute_batch("ROLLBACK TO call; RELEASE call"),
        };
        let outcome = match closed {
            Ok(()) => outcome,
            Err(e) => Err(e.into()),
        };
        Box::new(Held { outcome, reply })
    }

    fn abort(self: Box<Self>, error: EmbeddedError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send + 'static> Answer for Held<T> {
    fn send(self: Box<Self>, commit_error: Option<EmbeddedError>) {
        let outcome = match commit_error {
            None => self.outcome,
            Some(e) => Err(e),
        };
        let _ = self.reply.send(outcome);
    }
}

/// The writer thread: group, run, commit, answer; ends when every store handle is gone.
fn writer(conn: Connection, calls: mpsc::Receiver<Box<dyn Call>>) {
    while let Ok(first) = calls.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match calls.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = e.to_string();
            let transient = EmbeddedError::from(e).is_transient();
            for c in group {
                c.abort(EmbeddedError::Commit {
                    message: message.clone(),
                    transient,
                });
            }
            continue;
        }
        let answers: Vec<Box<dyn Answer>> = group.into_iter().map(|c| c.run(&conn)).collect();
        let commit_error = conn.execute_batch("COMMIT").err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            let message = e.to_string();
            (message, EmbeddedError::from(e).is_transient())
        });
        for a in answers {
            a.send(
                commit_error
                    .as_ref()
                    .map(|(message, transient)| EmbeddedError::Commit {
                        message: message.clone(),
                        transient: *transient,
                    }),
            );
        }
    }
}

/// Executes `sql` through the connection's statement cache.
pub(crate) fn exec<P: Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Queries one row through the connection's statement cache.
pub(crate) fn row1<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: F,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating file, directory and schema on first run) the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, EmbeddedError> {
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
        let conn = Connection::open_with_flags(path, flags)?;
        Self::init(conn, durability)
    }

    /// A store in memory, gone when the last clone is dropped (for tests).
    pub fn open_in_memory() -> Result<Self, EmbeddedError> {
        Self::init(Connection::open_in_memory()?, Durability::Normal)
    }

    fn init(mut conn: Connection, durability: Durability) -> Result<Self, EmbeddedError> {
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
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        conn.set_prepared_statement_cache_capacity(128);
        let (calls, rx) = mpsc::channel::<Box<dyn Call>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| {
                EmbeddedError::Corrupt(format!("cannot start the database thread: {e}"))
            })?;
        Ok(Self { calls })
    }

    /// Runs `f` on the writer thread, in the next group transaction; answers once committed.
    async fn call<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.calls
            .send(Box::new(Queued { f, reply }))
            .map_err(|_| EmbeddedError::Corrupt("the database thread has stopped".into()))?;
        answer.await.map_err(|_| {
            EmbeddedError::Corrupt("the database thread stopped during a call".into())
        })?
    }

    /// Runs `f` as one atomic unit of writes (a savepoint in a group transaction).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        self.call(f).await
    }

    /// Runs `f` on one consistent snapshot (the writer's, so it sees every answered write).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        self.call(f).await
    }

    /// Reports, newest first, `limit` of them after skipping `offset`.
    pub async fn list_reports(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ReportSummary>, EmbeddedError> {
        self.read(move |tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT r.id, r.alert_id, r.created_at, r.published_version, r.alert_count,
                        r.last_result,
                        (SELECT a.alert FROM alerts a WHERE a.report_id = r.id
                          ORDER BY a.seq LIMIT 1)
                   FROM reports r
                  ORDER BY r.created_at DESC, r.rowid DESC
                  LIMIT ?1 OFFSET ?2",
            )?;
            let rows = stmt
                .query_map(params![to_i64(limit), to_i64(offset)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, alert_id, created, version, count, result, first)| {
                    let severity = result
                        .map(|s| serde_json::from_str::<ReportResult>(&s))
                        .transpose()?
                        .map(|r| r.severity);
                    let title = match first {
                        Some(json) => {
                            let alert: Alert = serde_json::from_str(&json)?;
                            let rule = if alert.rule_name.is_empty() {
                                alert.rule_id
                            } else {
                                alert.rule_name
                            };
                            format!("{}: {rule}", alert.detector)
                        }
                        None => String::new(),
                    };
                    Ok(ReportSummary {
                        id,
                        alert_id,
                        created_at: from_millis(created)?,
                        published_version: to_u32(version, "published_version")?,
                        severity,
                        alert_count: to_u32(count, "alert_count")?,
                        title,
                    })
                })
                .collect()
        })
        .await
    }

    /// The last published version of a report, if any.
    pub async fn latest_published(&self, report_id: &str) -> Result<Option<Report>, EmbeddedError> {
        let report_id = report_id.to_string();
        self.read(move |tx| {
            let json: Option<String> = row1(
                tx,
                "SELECT report FROM published WHERE report_id = ?1
                      ORDER BY version DESC LIMIT 1",
                params![report_id],
                |r| r.get(0),
            )
            .optional()?;
            Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
        })
        .await
    }

    /// The last `limit` error records, newest first.
    pub async fn list_errors(&self, limit: usize) -> Result<Vec<ErrorRecord>, EmbeddedError> {
        self.read(move |tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, stage, error, field, input, input_truncated, at
                   FROM errors ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map(params![to_i64(limit)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, bool>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, stage, error, field, input, input_truncated, at)| {
                    Ok(ErrorRecord {
                        id,
                        stage,
                        error,
                        field,
                        input,
                        input_truncated,
                        at: from_millis(at)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// How many error records are kept.
    pub async fn count_errors(&self) -> Result<u64, EmbeddedError> {
        self.read(|tx| count(tx, "SELECT count(*) FROM errors"))
            .await
    }

    /// How many reports are kept.
    pub async fn count_reports(&self) -> Result<u64, EmbeddedError> {
        self.read(|tx| count(tx, "SELECT count(*) FROM reports"))
            .await
    }

    /// Retention: deletes up to `batch` reports opened before `cutoff`, with everything
    /// stored for them, and error records older than `cutoff`. A report that still has
    /// queued work is kept. Returns how many reports were deleted (call again while it
    /// returns `batch`).
    pub async fn prune_before(
        &self,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> Result<u64, EmbeddedError> {
        let cutoff = millis(cutoff);
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        self.write(move |tx| {
            tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY); DELETE FROM doomed;")?;
            exec(
                tx,
                "INSERT INTO doomed (id)
                 SELECT id FROM reports
                  WHERE created_at < ?1
                    AND NOT EXISTS (SELECT 1 FROM jobs
                                     WHERE jobs.report_id = reports.id AND jobs.state IN ('pending', 'running'))
                  LIMIT ?2",
                params![cutoff, batch],
            )?;
            for table in ["alerts", "mentions", "attributes", "sections", "inspections", "published", "open_reports", "jobs"] {
                exec(tx, &format!("DELETE FROM {table} WHERE report_id IN (SELECT id FROM doomed)"), [])?;
            }
            let n = exec(tx, "DELETE FROM reports WHERE id IN (SELECT id FROM doomed)", [])?;
            exec(tx, "DELETE FROM errors WHERE at < ?1", params![cutoff])?;
            Ok(n as u64)
        })
        .await
    }
}

fn count(tx: &Connection, sql: &str) -> Result<u64, EmbeddedError> {
    let n: i64 = row1(tx, sql, [], |r| r.get(0))?;
    u64::try_from(n).map_err(|_| EmbeddedError::Corrupt(format!("negative count {n}")))
}

/// The next value of the store-wide sequence (insertion order across every table).
pub(crate) fn next_seq(tx: &Connection) -> Result<i64, EmbeddedError> {
    Ok(row1(
        tx,
        "UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value",
        [],
        |r| r.get(0),
    )?)
}

/// Epoch milliseconds of a time.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time at epoch milliseconds `ms`.
pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, EmbeddedError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| EmbeddedError::Corrupt(format!("time {ms} ms is out of range")))
}

fn to_u32(v: i64, what: &str) -> Result<u32, EmbeddedError> {
    u32::try_from(v).map_err(|_| EmbeddedError::Corrupt(format!("{what} {v} is out of range")))
}

pub(crate) fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn read_meta(tx: &Connection, report_id: &str) -> Result<Option<ReportMeta>, EmbeddedError> {
    let row = row1(
        tx,
        "SELECT id, alert_id, created_at, opened_by, published_version, alert_count,
                (SELECT max(published_at) FROM published WHERE published.report_id = reports.id)
               FROM reports WHERE id = ?1",
        params![report_id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        },
    )
    .optional()?;
    row.map(
        |(id, alert_id, created_at, opened_by, published, alerts, published_at)| {
            Ok(ReportMeta {
                id,
                alert_id,
                created_at: from_millis(created_at)?,
                opened_by,
                published_version: to_u32(published, "published_version")?,
                alert_count: to_u32(alerts, "alert_count")?,
                last_published_at: published_at.map(from_millis).transpose()?,
            })
        },
    )
    .transpose()
}

/// Every JSON column of one report's rows in a table, in `seq` order.
fn json_rows<T: serde::de::DeserializeOwned>(
    tx: &Connection,
    sql: &str,
    report_id: &str,
) -> Result<Vec<T>, EmbeddedError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let texts = stmt
        .query_map(params![report_id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    texts
        .iter()
        .map(|t| serde_json::from_str(t).map_err(EmbeddedError::from))
        .collect()
}

/// The identifiers a receive works with, owned so they can move to the writer thread.
struct ReceiveIds {
    alert_id: String,
    message_id: String,
    candidate_id: String,
}

impl ReceiveIds {
    fn new(alert_id: &str, message_id: &str, candidate_id: &str) -> Self {
        Self {
            alert_id: alert_id.to_string(),
            message_id: message_id.to_string(),
            candidate_id: candidate_id.to_string(),
        }
    }
}

/// `now` and the earliest opening time still inside the window, in epoch milliseconds.
fn window_bounds(now: DateTime<Utc>, window: Duration) -> (i64, i64) {
    let now_ms = millis(now);
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (now_ms, now_ms.saturating_sub(window_ms))
}

/// Opens or joins the report of `ids.alert_id`: see [`Store::open_or_join`].
fn open_or_join_in(
    tx: &Connection,
    ids: &ReceiveIds,
    now_ms: i64,
    since: i64,
) -> Result<ReportMeta, EmbeddedError> {
    // A retried receive of the message that opened the report.
    if let Some(meta) = read_meta(tx, &ids.candidate_id)? {
        return Ok(meta);
    }
    let open: Option<(String, i64)> = row1(
        tx,
        "SELECT report_id, created_at FROM open_reports WHERE alert_id = ?1",
        params![ids.alert_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    if let Some((report_id, created_at)) = open {
        if created_at > since {
            return read_meta(tx, &report_id)?.ok_or_else(|| {
                EmbeddedError::Corrupt(format!(
                    "open report {report_id} of {} has no report row",
                    ids.alert_id
                ))
            });
        }
    }
    exec(
        tx,
        "INSERT INTO reports (id, alert_id, created_at, opened_by, published_version, alert_count)
         VALUES (?1, ?2, ?3, ?4, 0, 0)",
        params![ids.candidate_id, ids.alert_id, now_ms, ids.message_id],
    )?;
    exec(
        tx,
        "INSERT INTO open_reports (alert_id, report_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (alert_id) DO UPDATE
           SET report_id = excluded.report_id, created_at = excluded.created_at",
        params![ids.alert_id, ids.candidate_id, now_ms],
    )?;
    Ok(ReportMeta {
        id: ids.candidate_id.clone(),
        alert_id: ids.alert_id.clone(),
        created_at: from_millis(now_ms)?,
        opened_by: ids.message_id.clone(),
        published_version: 0,
        alert_count: 0,
        last_published_at: None,
    })
}

/// Stores an alert once per message: see [`Store::put_alert`].
/// Returns whether it was stored now, and when it was stored.
fn put_alert_in(
    tx: &Connection,
    report_id: &str,
    message_id: &str,
    json: &str,
    hashes: &[String],
    at: i64,
) -> Result<(bool, DateTime<Utc>), EmbeddedError> {
    // Insert first, look only on a conflict: the common path is one statement shorter.
    let seq = next_seq(tx)?;
    let inserted = exec(
        tx,
        "INSERT OR IGNORE INTO alerts (report_id, message_id, seq, alert, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![report_id, message_id, seq, json, at],
    )?;
    if inserted == 0 {
        let received_at: i64 = row1(
            tx,
            "SELECT received_at FROM alerts WHERE report_id = ?1 AND message_id = ?2",
            params![report_id, message_id],
            |r| r.get(0),
        )?;
        return Ok((false, from_millis(received_at)?));
    }
    let counted = exec(
        tx,
        "UPDATE reports SET alert_count = alert_count + 1 WHERE id = ?1",
        params![report_id],
    )?;
    if counted == 0 {
        // The savepoint of this call rolls the insert back.
        return Err(EmbeddedError::UnknownReport(report_id.to_string()));
    }
    for hash in hashes {
        exec(
            tx,
            "INSERT OR IGNORE INTO mentions (report_id, hash, message_id) VALUES (?1, ?2, ?3)",
            params![report_id, hash, message_id],
        )?;
    }
    Ok((true, from_millis(at)?))
}

/// Whether the report has every hash: see [`Store::knows_attributes`].
fn knows_attributes_in(
    tx: &Connection,
    report_id: &str,
    message_id: &str,
    hashes: &[String],
) -> Result<bool, EmbeddedError> {
    let mut unique: Vec<&str> = hashes.iter().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    // One query per chunk (SQLite bounds the number of parameters).
    for chunk in unique.chunks(500) {
        // Numbered: the one list of hashes is used twice.
        let marks = (3..chunk.len() + 3)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT count(*) FROM (
                 SELECT hash FROM attributes WHERE report_id = ?1 AND hash IN ({marks})
                 UNION
                 SELECT hash FROM mentions WHERE report_id = ?1 AND message_id <> ?2 AND hash IN ({marks}))"
        );
        let mut values: Vec<&str> = Vec::with_capacity(chunk.len() + 2);
        values.push(report_id);
        values.push(message_id);
        values.extend_from_slice(chunk);
        let known: i64 = row1(tx, &sql, rusqlite::params_from_iter(values), |r| r.get(0))?;
        if known < chunk.len() as i64 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[async_trait]
impl Store for SqliteStore {
    async fn open_or_join(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<ReportMeta, StoreError> {
        let ids = ReceiveIds::new(alert_id, message_id, candidate_id);
        let (now_ms, since) = window_bounds(now, window);
        self.write(move |tx| open_or_join_in(tx, &ids, now_ms, since))
            .await
            .map_err(StoreError::from)
    }

    async fn open_join_and_put(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        alert: &Alert,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Admission, StoreError> {
        let ids = ReceiveIds::new(alert_id, message_id, candidate_id);
        let (now_ms, since) = window_bounds(now, window);
        let json = serde_json::to_string(alert).map_err(EmbeddedError::from)?;
        let hashes: Vec<String> = alert.attributes.iter().map(Attribute::hash).collect();
        self.write(move |tx| {
            let meta = open_or_join_in(tx, &ids, now_ms, since)?;
            let (inserted, received_at) =
                put_alert_in(tx, &meta.id, &ids.message_id, &json, &hashes, now_ms)?;
            let knows_all_attributes = knows_attributes_in(tx, &meta.id, &ids.message_id, &hashes)?;
            Ok(Admission {
                meta,
                inserted,
                received_at,
                knows_all_attributes,
            })
        })
        .await
        .map_err(StoreError::from)
    }

    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        let report_id = report_id.to_string();
        self.read(move |tx| read_meta(tx, &report_id))
            .await
            .map_err(StoreError::from)
    }

    async fn put_alert(
        &self,
        report_id: &str,
        message_id: &str,
        alert: &Alert,
        received_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (report_id, message_id) = (report_id.to_string(), message_id.to_string());
        let json = serde_json::to_string(alert).map_err(EmbeddedError::from)?;
        let hashes: Vec<String> = alert.attributes.iter().map(Attribute::hash).collect();
        let at = millis(received_at);
        self.write(move |tx| {
            put_alert_in(tx, &report_id, &message_id, &json, &hashes, at)
                .map(|(inserted, _)| inserted)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let (report_id, message_id) = (report_id.to_string(), message_id.to_string());
        self.read(move |tx| {
            let json: Option<String> = row1(
                tx,
                "SELECT alert FROM alerts WHERE report_id = ?1 AND message_id = ?2",
                params![report_id, message_id],
                |r| r.get(0),
            )
            .optional()?;
            Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn knows_attributes(
        &self,
        report_id: &str,
        message_id: &str,
        attribute_hashes: &[String],
    ) -> Result<bool, StoreError> {
        let (report_id, message_id, hashes) = (
            report_id.to_string(),
            message_id.to_string(),
            attribute_hashes.to_vec(),
        );
        self.read(move |tx| knows_attributes_in(tx, &report_id, &message_id, &hashes))
            .await
            .map_err(StoreError::from)
    }

    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError> {
        let (report_id, claimer) = (report_id.to_string(), claimer.to_string());
        let hash = attribute.hash();
        let json = serde_json::to_string(attribute).map_err(EmbeddedError::from)?;
        self.write(move |tx| {
            let by: Option<String> = row1(
                tx,
                "SELECT claimer FROM attributes WHERE report_id = ?1 AND hash = ?2",
                params![report_id, hash],
                |r| r.get(0),
            )
            .optional()?;
            if let Some(by) = by {
                return Ok(if by == claimer {
                    Claim::New
                } else {
                    Claim::Seen
                });
            }
            let claimed: i64 = row1(
                tx,
                "SELECT count(*) FROM attributes WHERE report_id = ?1",
                params![report_id],
                |r| r.get(0),
            )?;
            if claimed >= i64::from(cap) {
                return Ok(Claim::CapReached);
            }
            let seq = next_seq(tx)?;
            exec(
                tx,
                "INSERT INTO attributes (report_id, hash, attribute, claimer, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![report_id, hash, json, claimer, seq],
            )?;
            Ok(Claim::New)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn put_section(&self, section: &ReportSection, index: usize) -> Result<(), StoreError> {
        let report_id = section.report_id.clone();
        let author = section.author.clone();
        let hash = section.attribute.hash();
        let json = serde_json::to_string(section).map_err(EmbeddedError::from)?;
        let idx = to_i64(index);
        self.write(move |tx| {
            let seq = next_seq(tx)?;
            // An upsert, not INSERT OR REPLACE: a replaced row keeps its place (seq).
            exec(
                tx,
                "INSERT INTO sections (report_id, attr_hash, author, idx, section, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (report_id, attr_hash, author, idx)
                 DO UPDATE SET section = excluded.section",
                params![report_id, hash, author, idx, json, seq],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }

    async fn put_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        let report_id = report_id.to_string();
        let inspector = record.inspector.clone();
        let hash = record.attribute.hash();
        let json = serde_json::to_string(record).map_err(EmbeddedError::from)?;
        self.write(move |tx| {
            let seq = next_seq(tx)?;
            exec(
                tx,
                "INSERT INTO inspections (report_id, attr_hash, inspector, record, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (report_id, attr_hash, inspector)
                 DO UPDATE SET record = excluded.record",
                params![report_id, hash, inspector, json, seq],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }

    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError> {
        let report_id = report_id.to_string();
        self.read(move |tx| {
            let Some(meta) = read_meta(tx, &report_id)? else {
                return Ok(None);
            };
            let last_result: Option<String> = row1(
                tx,
                "SELECT last_result FROM reports WHERE id = ?1",
                params![report_id],
                |r| r.get(0),
            )?;
            let last_result = last_result
                .map(|j| serde_json::from_str::<ReportResult>(&j))
                .transpose()?;
            Ok(Some(ReportState {
                meta,
                alerts: json_rows(
                    tx,
                    "SELECT alert FROM alerts WHERE report_id = ?1 ORDER BY seq",
                    &report_id,
                )?,
                attributes: json_rows(
                    tx,
                    "SELECT attribute FROM attributes WHERE report_id = ?1 ORDER BY seq",
                    &report_id,
                )?,
                sections: json_rows(
                    tx,
                    "SELECT section FROM sections WHERE report_id = ?1 ORDER BY seq",
                    &report_id,
                )?,
                inspections: json_rows(
                    tx,
                    "SELECT record FROM inspections WHERE report_id = ?1 ORDER BY seq",
                    &report_id,
                )?,
                last_result,
            }))
        })
        .await
        .map_err(StoreError::from)
    }

    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError> {
        let report_id = report.id.clone();
        let version = report.version;
        let publisher = publisher.to_string();
        let json = serde_json::to_string(report).map_err(EmbeddedError::from)?;
        let result = serde_json::to_string(&report.result).map_err(EmbeddedError::from)?;
        let severity = report.result.severity.as_str();
        let published_at = report.published_at.map(millis);
        self.write(move |tx| {
            let published: Option<i64> = row1(tx,
                    "SELECT published_version FROM reports WHERE id = ?1",
                    params![report_id],
                    |r| r.get(0),
                )
                .optional()?;
            let published = to_u32(
                published.ok_or_else(|| EmbeddedError::UnknownReport(report_id.clone()))?,
                "published_version",
            )?;
            if published.checked_add(1) == Some(version) {
                exec(tx,
                    "INSERT INTO published (report_id, version, report, publisher, severity, published_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![report_id, version, json, publisher, severity, published_at],
                )?;
                exec(tx,
                    "UPDATE reports SET published_version = ?2, last_result = ?3 WHERE id = ?1",
                    params![report_id, version, result],
                )?;
                return Ok(PublishMark::Published);
            }
            let by: Option<String> = row1(tx,
                    "SELECT publisher FROM published WHERE report_id = ?1 AND version = ?2",
                    params![report_id, version],
                    |r| r.get(0),
                )
                .optional()?;
            match by {
                Some(publisher) => Ok(PublishMark::AlreadyPublished { publisher }),
                None => Err(EmbeddedError::VersionGap {
                    report_id,
                    version,
                    published,
                }),
            }
        })
        .await
        .map_err(StoreError::from)
    }

    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError> {
        let report_id = report_id.to_string();
        self.read(move |tx| {
            let row: Option<(String, String)> = row1(
                tx,
                "SELECT report, publisher FROM published WHERE report_id = ?1 AND version = ?2",
                params![report_id, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
            row.map(|(json, publisher)| Ok((serde_json::from_str(&json)?, publisher)))
                .transpose()
        })
        .await
        .map_err(StoreError::from)
    }

    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO errors (id, stage, error, field, input, input_truncated, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.id,
                    r.stage,
                    r.error,
                    r.field,
                    r.input,
                    r.input_truncated,
                    millis(r.at)
                ],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alertresponder_core::fixtures::*;
    use alertresponder_core::model::{InspectionStatus, Job};

    const HOUR: Duration = Duration::from_secs(3600);

    fn error_record(id: &str, at: i64) -> ErrorRecord {
        ErrorRecord {
            id: id.into(),
            stage: "receive".into(),
            error: "invalid alert: detector: missing".into(),
            field: Some("detector".into()),
            input: "{}".into(),
            input_truncated: false,
            at: t(at),
        }
    }

    async fn opened(
        store: &SqliteStore,
        alert_id: &str,
        msg: &str,
        now: DateTime<Utc>,
    ) -> ReportMeta {
        store
            .open_or_join(alert_id, msg, &format!("rep-{msg}"), now, HOUR)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn schema_is_created_on_first_open_and_data_survives_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("nested").join("ar.db");
        {
            let store = SqliteStore::open(&path, Durability::Full).unwrap();
            let meta = opened(&store, "alert:a", "m1", t(0)).await;
            assert!(store
                .put_alert(&meta.id, "m1", &alert("r", &["10.0.0.1"]), t(0))
                .await
                .unwrap());
            store.put_error(&error_record("m2", 1)).await.unwrap();
        }
        let raw = Connection::open(&path).unwrap();
        let version: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = raw
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(raw);

        let store = SqliteStore::open(&path, Durability::Normal).unwrap();
        let state = store.load_report("rep-m1").await.unwrap().unwrap();
        assert_eq!(state.meta.alert_count, 1);
        assert_eq!(state.alerts, vec![alert("r", &["10.0.0.1"])]);
        assert_eq!(store.count_errors().await.unwrap(), 1);
        // Still joinable after the restart.
        assert_eq!(opened(&store, "alert:a", "m3", t(10)).await.id, "rep-m1");
    }

    #[tokio::test]
    async fn retention_deletes_old_reports_with_their_records_but_not_those_with_queued_work() {
        use crate::queue::JobQueue;
        use alertresponder_core::ports::{ManualClock, Scheduler};
        let store = SqliteStore::open_in_memory().unwrap();
        let old = opened(&store, "alert:old", "m1", t(0)).await;
        store
            .put_alert(&old.id, "m1", &alert("r", &["10.0.0.1"]), t(0))
            .await
            .unwrap();
        let busy = opened(&store, "alert:busy", "m2", t(0)).await;
        let new = opened(&store, "alert:new", "m3", t(5000)).await;
        let clock = std::sync::Arc::new(ManualClock::new(t(0)));
        let queue = JobQueue::new(store.clone(), clock, vec![]);
        let job = Job::Review {
            report_id: busy.id.clone(),
            version: 1,
        };
        queue.schedule(&job, t(6000)).await.unwrap();
        store
            .put_error(&ErrorRecord {
                id: "e".into(),
                stage: "receive".into(),
                error: "x".into(),
                field: None,
                input: "{}".into(),
                input_truncated: false,
                at: t(0),
            })
            .await
            .unwrap();

        assert_eq!(store.prune_before(t(1000), 100).await.unwrap(), 1);
        assert!(store.report_meta(&old.id).await.unwrap().is_none());
        assert!(store.get_alert(&old.id, "m1").await.unwrap().is_none());
        assert!(
            store.report_meta(&busy.id).await.unwrap().is_some(),
            "queued work keeps a report"
        );
        assert!(store.report_meta(&new.id).await.unwrap().is_some());
        assert_eq!(store.count_errors().await.unwrap(), 0);
        // The alert ID can open a fresh report afterwards.
        assert_eq!(
            opened(&store, "alert:old", "m4", t(1500)).await.opened_by,
            "m4"
        );
    }

    #[tokio::test]
    async fn a_file_from_a_newer_schema_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("ar.db");
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(raw);
        let err = SqliteStore::open(&path, Durability::Normal).unwrap_err();
        assert!(matches!(err, EmbeddedError::Corrupt(_)), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_receives_of_one_alert_id_open_one_report() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("ar.db");
        // Separate connections to one file, as separate processes would have.
        let stores: Vec<SqliteStore> = (0..4)
            .map(|_| SqliteStore::open(&path, Durability::Normal).unwrap())
            .collect();
        let calls = (0..8).map(|i| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move { opened(&store, "alert:same", &format!("m{i}"), t(0)).await })
        });
        let metas: Vec<ReportMeta> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let first = &metas[0];
        assert!(metas.iter().all(|m| m == first), "{metas:?}");
        assert_eq!(stores[0].count_reports().await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_receives_of_distinct_alert_ids_open_one_report_each() {
        let store = SqliteStore::open_in_memory().unwrap();
        let calls = (0..8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                opened(&store, &format!("alert:{i}"), &format!("m{i}"), t(0)).await
            })
        });
        let ids: std::collections::HashSet<String> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|m| m.unwrap().id)
            .collect();
        assert_eq!(ids.len(), 8);
        assert_eq!(store.count_reports().await.unwrap(), 8);
    }

    #[tokio::test]
    async fn an_alert_after_the_window_opens_a_new_report() {
        let store = SqliteStore::open_in_memory().unwrap();
        let first = opened(&store, "alert:a", "m1", t(0)).await;
        let inside = opened(&store, "alert:a", "m2", t(3599)).await;
        assert_eq!(inside.id, first.id);
        assert_eq!(inside.opened_by, "m1");
        let after = opened(&store, "alert:a", "m3", t(3600)).await;
        assert_eq!(after.id, "rep-m3");
        assert_eq!(after.opened_by, "m3");
        assert_eq!(after.created_at, t(3600));
        // The window now runs from the new report's opening.
        assert_eq!(opened(&store, "alert:a", "m4", t(5000)).await.id, "rep-m3");
    }

    #[tokio::test]
    async fn the_openers_retry_gets_its_own_report_back_even_after_another_message_joined() {
        let store = SqliteStore::open_in_memory().unwrap();
        let first = opened(&store, "alert:a", "m1", t(0)).await;
        opened(&store, "alert:a", "m2", t(10)).await;
        assert_eq!(opened(&store, "alert:a", "m1", t(20)).await, first);
        // Even once the window has passed and another report took over.
        opened(&store, "alert:a", "m3", t(4000)).await;
        assert_eq!(opened(&store, "alert:a", "m1", t(4001)).await, first);
    }

    #[tokio::test]
    async fn putting_an_alert_twice_for_one_message_stores_it_once_and_counts_it_once() {
        let store = SqliteStore::open_in_memory().unwrap();
        let meta = opened(&store, "alert:a", "m1", t(0)).await;
        let a = alert("r", &["10.0.0.1"]);
        assert!(store.put_alert(&meta.id, "m1", &a, t(0)).await.unwrap());
        assert!(!store.put_alert(&meta.id, "m1", &a, t(1)).await.unwrap());
        let meta = store.report_meta(&meta.id).await.unwrap().unwrap();
        assert_eq!(meta.alert_count, 1);
        assert_eq!(store.get_alert(&meta.id, "m1").await.unwrap(), Some(a));
        assert_eq!(store.get_alert(&meta.id, "m2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_alert_for_an_unknown_report_is_a_permanent_error() {
        let store = SqliteStore::open_in_memory().unwrap();
        let err = store
            .put_alert("nope", "m1", &alert("r", &[]), t(0))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)), "{err}");
    }

    #[tokio::test]
    async fn attributes_named_by_an_earlier_alert_are_known_to_others_but_not_to_their_own_message()
    {
        let store = SqliteStore::open_in_memory().unwrap();
        alertresponder_core::fixtures::contract::attribute_mentions(&store).await;
    }

    #[tokio::test]
    async fn claims_are_new_then_seen_new_again_for_the_same_claimer_and_capped() {
        let store = SqliteStore::open_in_memory().unwrap();
        alertresponder_core::fixtures::contract::attribute_claims(&store).await;
    }

    #[tokio::test]
    async fn sections_and_inspections_are_replaced_in_place() {
        let store = SqliteStore::open_in_memory().unwrap();
        let id = opened(&store, "alert:a", "m1", t(0)).await.id;
        store
            .put_section(&section(&id, "10.0.0.1", "geo", "JP"), 0)
            .await
            .unwrap();
        store
            .put_section(&section(&id, "10.0.0.1", "geo", "US"), 1)
            .await
            .unwrap();
        store
            .put_section(&section(&id, "10.0.0.2", "geo", "FR"), 0)
            .await
            .unwrap();
        store
            .put_section(&section(&id, "10.0.0.1", "geo", "DE"), 0)
            .await
            .unwrap();
        store
            .put_inspection(
                &id,
                &inspection("10.0.0.1", "geo", InspectionStatus::Failed),
            )
            .await
            .unwrap();
        store
            .put_inspection(&id, &inspection("10.0.0.2", "geo", InspectionStatus::Ok))
            .await
            .unwrap();
        store
            .put_inspection(&id, &inspection("10.0.0.1", "geo", InspectionStatus::Ok))
            .await
            .unwrap();
        let state = store.load_report(&id).await.unwrap().unwrap();
        let countries: Vec<&str> = state
            .sections
            .iter()
            .map(|s| s.content["country"].as_str().unwrap())
            .collect();
        assert_eq!(countries, ["DE", "US", "FR"]);
        let statuses: Vec<(&str, InspectionStatus)> = state
            .inspections
            .iter()
            .map(|r| (r.attribute.value.as_str(), r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("10.0.0.1", InspectionStatus::Ok),
                ("10.0.0.2", InspectionStatus::Ok)
            ]
        );
    }

    #[tokio::test]
    async fn load_report_returns_everything_in_the_order_it_was_stored() {
        let store = SqliteStore::open_in_memory().unwrap();
        let id = opened(&store, "alert:a", "m1", t(0)).await.id;
        let alerts = [alert("z", &["3"]), alert("a", &["1"]), alert("m", &["2"])];
        for (i, a) in alerts.iter().enumerate() {
            store
                .put_alert(&id, &format!("m{i}"), a, t(i as i64))
                .await
                .unwrap();
        }
        for v in ["9.9.9.9", "1.1.1.1", "5.5.5.5"] {
            store.claim_attribute(&id, &attr(v), "d", 10).await.unwrap();
        }
        for (i, author) in ["zeta", "alpha"].iter().enumerate() {
            store
                .put_section(&section(&id, "1.1.1.1", author, "JP"), i)
                .await
                .unwrap();
        }
        for v in ["5.5.5.5", "1.1.1.1"] {
            store
                .put_inspection(&id, &inspection(v, "geo", InspectionStatus::NothingFound))
                .await
                .unwrap();
        }
        let state = store.load_report(&id).await.unwrap().unwrap();
        assert_eq!(state.meta.alert_count, 3);
        assert_eq!(state.alerts, alerts);
        let values: Vec<&str> = state.attributes.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(values, ["9.9.9.9", "1.1.1.1", "5.5.5.5"]);
        let authors: Vec<&str> = state.sections.iter().map(|s| s.author.as_str()).collect();
        assert_eq!(authors, ["zeta", "alpha"]);
        let inspected: Vec<&str> = state
            .inspections
            .iter()
            .map(|r| r.attribute.value.as_str())
            .collect();
        assert_eq!(inspected, ["5.5.5.5", "1.1.1.1"]);
        assert_eq!(state.last_result, None);
        assert_eq!(store.load_report("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_version_is_published_once_and_never_ahead_of_the_one_before() {
        let store = SqliteStore::open_in_memory().unwrap();
        let id = opened(&store, "alert:a", "m1", t(0)).await.id;
        let v1 = report(&id, 1, Severity::Safe);
        assert_eq!(
            store.mark_published(&v1, "review:1").await.unwrap(),
            PublishMark::Published
        );
        let again = report(&id, 1, Severity::Urgent);
        assert_eq!(
            store.mark_published(&again, "other").await.unwrap(),
            PublishMark::AlreadyPublished {
                publisher: "review:1".into()
            }
        );
        let err = store
            .mark_published(&report(&id, 3, Severity::Urgent), "review:3")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)), "{err}");

        let (stored, by) = store.published_report(&id, 1).await.unwrap().unwrap();
        assert_eq!((stored, by.as_str()), (v1.clone(), "review:1"));
        assert_eq!(store.published_report(&id, 2).await.unwrap(), None);
        let state = store.load_report(&id).await.unwrap().unwrap();
        assert_eq!(state.meta.published_version, 1);
        assert_eq!(state.last_result, Some(v1.result.clone()));

        let v2 = report(&id, 2, Severity::Urgent);
        assert_eq!(
            store.mark_published(&v2, "review:2").await.unwrap(),
            PublishMark::Published
        );
        assert_eq!(store.latest_published(&id).await.unwrap(), Some(v2));
        assert_eq!(store.latest_published("nope").await.unwrap(), None);
    }

    #[tokio::test]
    async fn errors_are_listed_newest_first() {
        let store = SqliteStore::open_in_memory().unwrap();
        for (i, id) in ["e1", "e2", "e3"].iter().enumerate() {
            store.put_error(&error_record(id, i as i64)).await.unwrap();
        }
        let listed = store.list_errors(2).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e3", "e2"]);
        assert_eq!(listed[0], error_record("e3", 2));
        assert_eq!(store.count_errors().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn reports_are_listed_newest_first_with_title_and_severity() {
        let store = SqliteStore::open_in_memory().unwrap();
        let old = opened(&store, "alert:a", "m1", t(0)).await.id;
        store
            .put_alert(&old, "m1", &alert("Port scan", &[]), t(0))
            .await
            .unwrap();
        let mut unnamed = alert("x", &[]);
        unnamed.rule_name = String::new();
        store
            .put_alert(&old, "m2", &alert("Later", &[]), t(1))
            .await
            .unwrap();
        store
            .mark_published(&report(&old, 1, Severity::Urgent), "p")
            .await
            .unwrap();
        let new = opened(&store, "alert:b", "m3", t(100)).await.id;
        store.put_alert(&new, "m3", &unnamed, t(100)).await.unwrap();
        let same_time = opened(&store, "alert:c", "m4", t(100)).await.id;

        let listed = store.list_reports(10, 0).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [same_time.as_str(), new.as_str(), old.as_str()]);
        assert_eq!(listed[0].title, "");
        assert_eq!(listed[1].title, "guardduty: x-id");
        assert_eq!(listed[1].severity, None);
        assert_eq!(
            listed[2],
            ReportSummary {
                id: old.clone(),
                alert_id: "alert:a".into(),
                created_at: t(0),
                published_version: 1,
                severity: Some(Severity::Urgent),
                alert_count: 2,
                title: "guardduty: Port scan".into(),
            }
        );
        let page = store.list_reports(1, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, new);
        assert_eq!(store.count_reports().await.unwrap(), 3);
    }

    #[test]
    fn durability_reads_its_config_names() {
        assert_eq!("full".parse::<Durability>(), Ok(Durability::Full));
        assert_eq!("normal".parse::<Durability>(), Ok(Durability::Normal));
        assert!("fast".parse::<Durability>().is_err());
    }
}
