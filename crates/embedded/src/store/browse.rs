//! [`BrowseStore`] on SQLite: the report list with its filters, search and keyset
//! paging, a report's versions, arrivals and claim origins, the error list.
//!
//! The list reads tables of its own (see the end of `schema::SCHEMA`), filled by
//! triggers in the same transaction as the write they index, so no write path knows
//! them:
//!
//! - `browse_reports`, one row per report: detector, rule and alert key when the
//!   report's first alert is stored (`alert_count` going from 0), severity and time of
//!   the latest version at each publication. One index per filter and order, each
//!   ending in `(time, report_id)`: a page is one index seek and a scan of `limit`
//!   entries however deep it is (no OFFSET); severity and detector together read one
//!   index and test the other. The indexes of published reports are partial.
//! - `browse_values`, `(value, created_at, report_id)`: the alert key and every
//!   attribute value (trimmed, ASCII lower case, at most `MAX_SEARCH_BYTES`), written
//!   when a value can be new to the report: by its first alert (key and values), by a
//!   joining message that names an attribute the report had not seen (its first new
//!   mention indexes the alert's values, once per message: `browse_indexed`), by each
//!   claim (discovered attributes). An exact search reads one range of its primary
//!   key, newest first; a prefix search sorts its matches.
//!
//! What the receive path pays (`make bench` A/B, triggers dropped live): an alert
//! that joins a report and names only attributes it knows pays nothing but the
//! trigger's WHEN tests (a burst on one key: within the noise); a new report pays its
//! row, two index entries and one entry per value; a joining alert with a new
//! attribute pays a walk of its attributes (JSON) with a probe each and one
//! `browse_indexed` row; a publication one update. Retention deletes the rows through
//! triggers on the alerts, claims and report it deletes.
//!
//! The pages read on connections of their own ([`Readers`]), never queueing behind
//! the receive path's writes.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{ErrorRecord, ReportResult, Severity};
use alertresponder_core::ports::{
    AlertArrival, AttributeOrigin, BrowseStore, Cursor, Direction, ErrorCursor, ErrorPage, FoundBy,
    PageRequest, ReportFilter, ReportPage, ReportRow, TimeField, VersionRecord, MAX_DETECTORS,
    MAX_PAGE, MAX_SEARCH_BYTES,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OpenFlags};

use super::ports::{error_from_row, ERROR_COLUMNS};
use super::sql::{from_millis, to_i64, to_u32};
use super::SqliteStore;
use crate::error::EmbeddedError;

/// Most idle read-only connections kept for the pages.
const MAX_IDLE_READERS: usize = 4;

/// Read-only connections to the store's file, for the pages: WAL lets them read while
/// the writer writes, so a page load (a prefix search sorting thousands of rows
/// included) never holds up a receive queued behind it on the writer thread, and two
/// page loads run on two cores. Opened when first needed, kept idle up to
/// [`MAX_IDLE_READERS`]. A store in memory has no file to share: its pages read
/// through the writer.
#[derive(Clone, Default)]
pub(super) struct Readers {
    path: Option<Arc<PathBuf>>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Readers {
    /// Readers of the file at `path`.
    pub(super) fn on_file(path: &Path) -> Self {
        Self {
            path: Some(Arc::new(path.to_path_buf())),
            idle: Arc::default(),
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, EmbeddedError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -16384)?;
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Runs the read `f` on a reader of the file (see [`Readers`]), or on the writer
    /// for a store in memory.
    async fn browse_read<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(path) = self.readers.path.clone() else {
            return self.read(f).await;
        };
        let idle = self.readers.idle.clone();
        tokio::task::spawn_blocking(move || {
            let taken = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match taken {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let out = f(&conn);
            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| EmbeddedError::Join(e.to_string()))?
    }
}

// The schema's triggers and `backfill` spell the bound out: keep them in step.
const _: () = assert!(MAX_SEARCH_BYTES == 256);

/// Whether the browse tables exist yet (before the schema is applied): a file without
/// them is filled by [`backfill`] once they are created.
pub(super) fn has_tables(tx: &Connection) -> Result<bool, EmbeddedError> {
    Ok(super::sql::row1(
        tx,
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'browse_reports')",
        [],
        |r| r.get(0),
    )?)
}

/// The normalised form of the SQL expression `x`, as `Search::normalise` computes it:
/// ASCII whitespace trimmed, ASCII letters lower-cased.
macro_rules! normalised {
    ($x:literal) => {
        concat!("lower(trim(", $x, ", char(32, 9, 10, 12, 13)))")
    };
}

/// Fills the browse tables from what a file written before them holds (run once, when
/// `schema::prepare` creates them): as if every report had been received and published
/// with the triggers in place.
pub(super) fn backfill(tx: &Connection) -> Result<(), EmbeddedError> {
    tx.execute_batch(concat!(
        "INSERT OR IGNORE INTO browse_reports
             (report_id, created_at, detector, rule, alert_key, severity, published_at)
         SELECT r.id, r.created_at,
                coalesce(json_extract(a.alert, '$.detector'), ''),
                coalesce(nullif(json_extract(a.alert, '$.rule_name'), ''),
                         json_extract(a.alert, '$.rule_id'), ''),
                coalesce(json_extract(a.alert, '$.alert_key'), ''),
                p.severity, p.published_at
           FROM reports r
           JOIN alerts a ON a.report_id = r.id
                        AND a.seq = (SELECT min(seq) FROM alerts WHERE report_id = r.id)
           LEFT JOIN published p ON p.report_id = r.id AND p.version = r.published_version;
         INSERT OR IGNORE INTO browse_values (value, created_at, report_id)
         SELECT v, created_at, report_id FROM (
             SELECT ",
        normalised!("b.alert_key"),
        " AS v, b.created_at, b.report_id FROM browse_reports b
             UNION ALL
             SELECT ",
        normalised!("json_extract(j.value, '$.value')"),
        ", r.created_at, r.id
               FROM alerts a JOIN reports r ON r.id = a.report_id,
                    json_each(a.alert, '$.attributes') j
             UNION ALL
             SELECT ",
        normalised!("json_extract(c.attribute, '$.value')"),
        ", r.created_at, r.id
               FROM attributes c JOIN reports r ON r.id = c.report_id)
          WHERE v IS NOT NULL AND v <> '' AND length(CAST(v AS BLOB)) <= 256;"
    ))?;
    Ok(())
}

/// Numbered parameters of a query built piece by piece.
#[derive(Default)]
struct Binds(Vec<Value>);

impl Binds {
    /// Binds `v`, returning its placeholder.
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("?{}", self.0.len())
    }
}

/// The columns a list row is read from (`b`: browse_reports, `r`: reports).
const ROW_COLUMNS: &str = "b.report_id, r.alert_id, b.detector, b.rule, b.alert_key,
    r.alert_count, r.published_version, b.severity, b.created_at, b.published_at";

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        detector: r.get(2)?,
        rule: r.get(3)?,
        alert_key: r.get(4)?,
        alert_count: r.get(5)?,
        version: r.get(6)?,
        severity: r.get(7)?,
        created_at: r.get(8)?,
        published_at: r.get(9)?,
    })
}

/// A list row as stored, before conversion.
struct RawRow {
    id: String,
    alert_id: String,
    detector: String,
    rule: String,
    alert_key: String,
    alert_count: i64,
    version: i64,
    severity: Option<String>,
    created_at: i64,
    published_at: Option<i64>,
}

impl RawRow {
    fn into_row(self) -> Result<ReportRow, EmbeddedError> {
        let severity = self
            .severity
            .map(|s| s.parse::<Severity>().map_err(EmbeddedError::Corrupt))
            .transpose()?;
        Ok(ReportRow {
            id: self.id,
            alert_id: self.alert_id,
            detector: self.detector,
            rule: self.rule,
            alert_key: self.alert_key,
            alert_count: to_u32(self.alert_count, "alert_count")?,
            version: to_u32(self.version, "published_version")?,
            severity,
            created_at: from_millis(self.created_at)?,
            published_at: self.published_at.map(from_millis).transpose()?,
        })
    }
}

/// The query of one page: SQL and its parameters.
fn list_query(filter: &ReportFilter, page: &PageRequest, limit: usize) -> (String, Binds) {
    let mut b = Binds::default();
    let time = match filter.time {
        TimeField::Opened => "b.created_at",
        TimeField::Published => "b.published_at",
    };
    let mut from = String::from("browse_reports b JOIN reports r ON r.id = b.report_id");
    let mut conditions: Vec<String> = Vec::new();
    // An exact search in opened order walks the value index itself: its key ends in
    // the list's order.
    let mut key = time.to_string();
    let mut id = "b.report_id".to_string();
    match &filter.search {
        Some(s) if !s.is_prefix() => {
            from = "browse_values v JOIN browse_reports b ON b.report_id = v.report_id\n                    JOIN reports r ON r.id = b.report_id"
                .into();
            conditions.push(format!("v.value = {}", b.bind(s.text().to_string())));
            if filter.time == TimeField::Opened {
                key = "v.created_at".into();
                id = "v.report_id".into();
            }
        }
        Some(s) => {
            let low = b.bind(s.text().to_string());
            let high = b.bind(format!("{}\u{10FFFF}", s.text()));
            conditions.push(format!(
                "b.report_id IN (SELECT report_id FROM browse_values WHERE value >= {low} AND value < {high})"
            ));
        }
        None => {}
    }
    if filter.time == TimeField::Published {
        conditions.push("b.published_at IS NOT NULL".into());
    }
    if let Some(severity) = filter.severity {
        conditions.push(format!(
            "b.severity = {}",
            b.bind(severity.as_str().to_string())
        ));
    }
    if let Some(detector) = &filter.detector {
        conditions.push(format!("b.detector = {}", b.bind(detector.clone())));
    }
    if let Some(since) = filter.since {
        conditions.push(format!("{key} >= {}", b.bind(since.timestamp_millis())));
    }
    if let Some(until) = filter.until {
        conditions.push(format!("{key} < {}", b.bind(until.timestamp_millis())));
    }
    let (op, order) = match page.direction {
        Direction::Older => ("<", "DESC"),
        Direction::Newer => (">", "ASC"),
    };
    if let Some(Cursor { at_ms, id: cid }) = &page.cursor {
        let (at, cid) = (b.bind(*at_ms), b.bind(cid.clone()));
        conditions.push(format!("({key}, {id}) {op} ({at}, {cid})"));
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = b.bind(to_i64(limit + 1));
    (
        format!(
            "SELECT {ROW_COLUMNS} FROM {from} {filter_sql}
              ORDER BY {key} {order}, {id} {order} LIMIT {limit}"
        ),
        b,
    )
}

fn list_page(
    tx: &Connection,
    filter: &ReportFilter,
    page: &PageRequest,
) -> Result<ReportPage, EmbeddedError> {
    let limit = page.bounded_limit();
    let (sql, binds) = list_query(filter, page, limit);
    // Not cached: the statement's shape depends on the filters, and the writer's
    // cache is for the receive path.
    let mut stmt = tx.prepare(&sql)?;
    let raw = stmt
        .query_map(rusqlite::params_from_iter(binds.0), row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = raw
        .into_iter()
        .map(RawRow::into_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    if page.direction == Direction::Newer {
        rows.reverse();
    }
    let first = rows.first().and_then(|r| r.cursor(filter.time));
    let last = rows.last().and_then(|r| r.cursor(filter.time));
    let (older, newer) = match page.direction {
        Direction::Older => (
            last.filter(|_| more),
            first.filter(|_| page.cursor.is_some()),
        ),
        Direction::Newer => (last, first.filter(|_| more)),
    };
    Ok(ReportPage {
        reports: rows,
        older,
        newer,
    })
}

#[async_trait]
impl BrowseStore for SqliteStore {
    async fn browse_reports(
        &self,
        filter: &ReportFilter,
        page: &PageRequest,
    ) -> Result<ReportPage, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.browse_read(move |tx| list_page(tx, &filter, &page))
            .await
            .map_err(StoreError::from)
    }

    async fn detectors(&self) -> Result<Vec<String>, StoreError> {
        self.browse_read(|tx| {
            // A skip scan of the detector index: one seek per distinct detector.
            let mut stmt = tx.prepare_cached(
                "WITH RECURSIVE d(name) AS (
                     SELECT min(detector) FROM browse_reports
                     UNION ALL
                     SELECT (SELECT min(detector) FROM browse_reports WHERE detector > d.name)
                       FROM d WHERE d.name IS NOT NULL)
                 SELECT name FROM d WHERE name IS NOT NULL LIMIT ?1",
            )?;
            let names = stmt
                .query_map(params![to_i64(MAX_DETECTORS)], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn versions(&self, report_id: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let report_id = report_id.to_string();
        self.browse_read(move |tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT version, json_extract(report, '$.result'), published_at
                   FROM published WHERE report_id = ?1 ORDER BY version",
            )?;
            let rows = stmt
                .query_map(params![report_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(version, result, at)| {
                    let result: ReportResult = match result {
                        Some(json) => serde_json::from_str(&json)?,
                        None => ReportResult::default(),
                    };
                    Ok(VersionRecord {
                        version: to_u32(version, "version")?,
                        result,
                        published_at: at.map(from_millis).transpose()?,
                    })
                })
                .collect()
        })
        .await
        .map_err(StoreError::from)
    }

    async fn arrivals(
        &self,
        report_id: &str,
        limit: usize,
    ) -> Result<Vec<AlertArrival>, StoreError> {
        let report_id = report_id.to_string();
        self.browse_read(move |tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT message_id, received_at FROM alerts WHERE report_id = ?1
                  ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![report_id, to_i64(limit)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(message_id, at)| {
                    Ok(AlertArrival {
                        message_id,
                        received_at: from_millis(at)?,
                    })
                })
                .collect()
        })
        .await
        .map_err(StoreError::from)
    }

    async fn origins(&self, report_id: &str) -> Result<Vec<AttributeOrigin>, StoreError> {
        let report_id = report_id.to_string();
        self.browse_read(move |tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT hash, claimer FROM attributes WHERE report_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt
                .query_map(params![report_id], |r| {
                    Ok(AttributeOrigin {
                        hash: r.get(0)?,
                        found_by: FoundBy::from_claimer(&r.get::<_, String>(1)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn browse_errors(
        &self,
        cursor: Option<&ErrorCursor>,
        limit: usize,
    ) -> Result<ErrorPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let cursor = cursor.cloned();
        self.browse_read(move |tx| {
            let fetch = to_i64(limit + 1);
            let mut errors: Vec<ErrorRecord> = match &cursor {
                None => tx
                    .prepare_cached(&format!(
                        "SELECT {ERROR_COLUMNS} FROM errors
                          ORDER BY at DESC, stage DESC, id DESC LIMIT ?1"
                    ))?
                    .query_map(params![fetch], error_from_row)?
                    .collect::<Result<_, _>>()?,
                Some(c) => tx
                    .prepare_cached(&format!(
                        "SELECT {ERROR_COLUMNS} FROM errors WHERE (at, stage, id) < (?1, ?2, ?3)
                          ORDER BY at DESC, stage DESC, id DESC LIMIT ?4"
                    ))?
                    .query_map(params![c.at_ms, c.stage, c.id, fetch], error_from_row)?
                    .collect::<Result<_, _>>()?,
            };
            let more = errors.len() > limit;
            errors.truncate(limit);
            let older = errors.last().filter(|_| more).map(ErrorCursor::of);
            Ok(ErrorPage { errors, older })
        })
        .await
        .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use alertresponder_core::fixtures::contract::admitted;
    use alertresponder_core::fixtures::{alert, t};
    use alertresponder_core::ports::{BrowseStore, PageRequest, ReportFilter, Search, TimeField};
    use rusqlite::Connection;

    use super::super::schema;
    use super::super::{Durability, SqliteStore};

    fn plan(conn: &Connection, filter: &ReportFilter) -> String {
        let (sql, binds) = super::list_query(filter, &PageRequest::first(50), 50);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(binds.0), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    }

    /// Every filter and order reads an index and sorts nothing (a prefix search
    /// excepted): the page costs `limit` rows however many reports there are.
    #[test]
    fn each_filter_reads_an_index_without_sorting() {
        let conn =
            schema::prepare(Connection::open_in_memory().unwrap(), Durability::Normal).unwrap();
        let severity = Some(alertresponder_core::model::Severity::Urgent);
        let detector = Some("guardduty".to_string());
        let cases = [
            ReportFilter::default(),
            ReportFilter {
                severity,
                ..Default::default()
            },
            ReportFilter {
                detector: detector.clone(),
                ..Default::default()
            },
            ReportFilter {
                severity,
                detector: detector.clone(),
                since: Some(t(0)),
                until: Some(t(10)),
                ..Default::default()
            },
            ReportFilter {
                time: TimeField::Published,
                ..Default::default()
            },
            ReportFilter {
                time: TimeField::Published,
                severity,
                detector,
                ..Default::default()
            },
            ReportFilter {
                search: Search::new("10.0.0.1", false),
                ..Default::default()
            },
        ];
        for filter in cases {
            let plan = plan(&conn, &filter);
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?} sorts: {plan}");
            for step in plan.split("; ").filter(|s| s.starts_with("SCAN")) {
                assert!(step.contains("INDEX"), "{filter:?} scans a table: {plan}");
            }
        }
    }

    /// A file written before the browse tables is listed and searchable once opened by
    /// this build (the backfill), and retention takes a report's browse rows with it.
    #[tokio::test]
    async fn an_older_file_is_backfilled_and_retention_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let store = SqliteStore::open(&path, Durability::Normal).unwrap();
            let a = alert("r", &["10.9.8.7"]);
            admitted(&store, &a.alert_id(), "m1", &a, t(0)).await;
            // A joining alert with a new value: indexed by its first new mention.
            let b = alert("r", &["10.9.8.7", "10.9.8.8"]);
            admitted(&store, &b.alert_id(), "m2", &b, t(1)).await;
        }
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP TABLE browse_reports; DROP TABLE browse_values;
                 DROP TRIGGER IF EXISTS browse_report_opened;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, Durability::Normal).unwrap();
        let found = store
            .browse_reports(
                &ReportFilter {
                    search: Search::new("10.9.8.7", false),
                    ..Default::default()
                },
                &PageRequest::first(10),
            )
            .await
            .unwrap();
        assert_eq!(found.reports.len(), 1);
        assert_eq!(found.reports[0].alert_key, "key");
        assert_eq!(found.reports[0].alert_count, 2);
        assert_eq!(store.prune_before(t(3600), 100).await.unwrap(), 1);
        let left: i64 = store
            .read(|tx| {
                Ok(tx.query_row(
                    "SELECT (SELECT count(*) FROM browse_reports) + (SELECT count(*) FROM browse_values)
                          + (SELECT count(*) FROM browse_indexed)",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
}
