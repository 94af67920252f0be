//! What the CLI and the HTTP API show of the store beyond the ports (the report and
//! error lists, counts, the last published version), and retention.

use alertresponder_core::model::{Alert, ErrorRecord, Report, ReportResult, Severity};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::ports::{error_from_row, ERROR_COLUMNS};
use super::sql::{count, exec, from_millis, millis, row1, to_i64, to_u32};
use super::SqliteStore;
use crate::error::EmbeddedError;

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

impl SqliteStore {
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
                            alert.title()
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
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {ERROR_COLUMNS} FROM errors ORDER BY seq DESC LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map(params![to_i64(limit)], error_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
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
            for table in ["alerts", "mentions", "attributes", "inspected", "sections", "inspections", "published", "open_reports", "jobs", "deliveries", "emitter_memos"] {
                exec(tx, &format!("DELETE FROM {table} WHERE report_id IN (SELECT id FROM doomed)"), [])?;
            }
            let n = exec(tx, "DELETE FROM reports WHERE id IN (SELECT id FROM doomed)", [])?;
            exec(tx, "DELETE FROM errors WHERE at < ?1", params![cutoff])?;
            Ok(n as u64)
        })
        .await
    }
}
