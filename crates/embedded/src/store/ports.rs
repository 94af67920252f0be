//! The store ports but admission: claims, findings, reading, publication and errors.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{
    Attribute, ErrorRecord, InspectionRecord, Report, ReportResult, ReportSection,
};
use alertresponder_core::ports::{
    Claim, ClaimStore, ErrorLog, ErrorSink, FindingStore, PublishMark, PublishStore, ReadStore,
    ReportCounts, ReportMeta, ReportState,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::sql::{exec, from_millis, json_rows, millis, next_seq, row1, to_i64, to_u32};
use super::SqliteStore;
use crate::error::EmbeddedError;

/// What the store knows of a report in one statement (see [`ReportMeta`]).
pub(super) fn read_meta(
    tx: &Connection,
    report_id: &str,
) -> Result<Option<ReportMeta>, EmbeddedError> {
    let row = row1(
        tx,
        "SELECT id, alert_id, created_at, opened_by, published_version,
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
                r.get::<_, Option<i64>>(5)?,
            ))
        },
    )
    .optional()?;
    row.map(
        |(id, alert_id, created_at, opened_by, published, published_at)| {
            Ok(ReportMeta {
                id,
                alert_id,
                created_at: from_millis(created_at)?,
                opened_by,
                published_version: to_u32(published, "published_version")?,
                last_published_at: published_at.map(from_millis).transpose()?,
            })
        },
    )
    .transpose()
}

/// How many alerts and claimed attributes a report holds (see [`ReportCounts`]).
///
/// Both are counted, not read from a column: the alerts' and the claims' primary keys
/// start with the report ID, so each count reads one range of an index (the alerts of
/// one report; at most the attribute cap of claims). `reports.alert_count` is kept
/// for the report list only.
fn read_counts(tx: &Connection, report_id: &str) -> Result<Option<ReportCounts>, EmbeddedError> {
    let row: Option<(i64, i64)> = row1(
        tx,
        "SELECT (SELECT count(*) FROM alerts WHERE alerts.report_id = reports.id),
                (SELECT count(*) FROM attributes WHERE attributes.report_id = reports.id)
           FROM reports WHERE id = ?1",
        params![report_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    row.map(|(alerts, attributes)| {
        Ok(ReportCounts {
            alerts: to_u32(alerts, "alert count")?,
            attributes: to_u32(attributes, "attribute count")?,
        })
    })
    .transpose()
}

#[async_trait]
impl ClaimStore for SqliteStore {
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
            // The report's existence rides along with the count: a claim for a report
            // that does not exist (a job outliving retention) is refused, not kept.
            let (claimed, exists): (i64, bool) = row1(
                tx,
                "SELECT (SELECT count(*) FROM attributes WHERE report_id = ?1),
                        EXISTS (SELECT 1 FROM reports WHERE id = ?1)",
                params![report_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if !exists {
                return Err(EmbeddedError::UnknownReport(report_id));
            }
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
}

#[async_trait]
impl FindingStore for SqliteStore {
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

    async fn put_last_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        // Two transactions on one writer thread: the mark after the record, so a
        // crash between them leaves the attribute pending and the retry writes both.
        self.put_inspection(report_id, record).await?;
        self.mark_inspected(report_id, &record.attribute).await
    }

    async fn mark_inspected(
        &self,
        report_id: &str,
        attribute: &Attribute,
    ) -> Result<(), StoreError> {
        let report_id = report_id.to_string();
        let hash = attribute.hash();
        self.write(move |tx| {
            // Only a claim is marked: an attribute the report has not claimed is ignored.
            exec(
                tx,
                "INSERT OR IGNORE INTO inspected (report_id, hash)
                 SELECT report_id, hash FROM attributes WHERE report_id = ?1 AND hash = ?2",
                params![report_id, hash],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }
}

#[async_trait]
impl ReadStore for SqliteStore {
    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        let report_id = report_id.to_string();
        self.read(move |tx| read_meta(tx, &report_id))
            .await
            .map_err(StoreError::from)
    }

    async fn report_counts(&self, report_id: &str) -> Result<Option<ReportCounts>, StoreError> {
        let report_id = report_id.to_string();
        self.read(move |tx| read_counts(tx, &report_id))
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
                pending: json_rows(
                    tx,
                    "SELECT a.attribute FROM attributes a
                      WHERE a.report_id = ?1
                        AND NOT EXISTS (SELECT 1 FROM inspected i
                                         WHERE i.report_id = a.report_id AND i.hash = a.hash)
                      ORDER BY a.seq",
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
}

#[async_trait]
impl PublishStore for SqliteStore {
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
}

/// The columns [`error_from_row`] reads, in its order.
pub(super) const ERROR_COLUMNS: &str = "id, stage, error, field, input, input_truncated, at";

/// An error record from a row of [`ERROR_COLUMNS`].
pub(super) fn error_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ErrorRecord> {
    let at: i64 = r.get(6)?;
    Ok(ErrorRecord {
        id: r.get(0)?,
        stage: r.get(1)?,
        error: r.get(2)?,
        field: r.get(3)?,
        input: r.get(4)?,
        input_truncated: r.get(5)?,
        at: from_millis(at).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Integer,
                Box::new(e),
            )
        })?,
    })
}

#[async_trait]
impl ErrorSink for SqliteStore {
    /// Replaces the record of the same ID and stage: a retried bad input is kept once,
    /// as the newest record.
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.write(move |tx| {
            exec(
                tx,
                "DELETE FROM errors WHERE id = ?1 AND stage = ?2",
                params![r.id, r.stage],
            )?;
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

#[async_trait]
impl ErrorLog for SqliteStore {
    async fn get_error(&self, id: &str, stage: &str) -> Result<Option<ErrorRecord>, StoreError> {
        let (id, stage) = (id.to_string(), stage.to_string());
        self.read(move |tx| {
            Ok(row1(
                tx,
                &format!(
                    "SELECT {ERROR_COLUMNS} FROM errors WHERE id = ?1 AND stage = ?2
                      ORDER BY seq DESC LIMIT 1"
                ),
                params![id, stage],
                error_from_row,
            )
            .optional()?)
        })
        .await
        .map_err(StoreError::from)
    }
}
