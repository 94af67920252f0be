//! Receiving an alert: [`AdmitStore`] in one transaction (open or join the report,
//! store the alert once per message with its mentions, tell whether the report knew
//! every attribute already).

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Alert, Attribute};
use alertresponder_core::ports::{aggregation_bounds, Admission, AdmitStore, Arrival, ReportMeta};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::ports::read_meta;
use super::sql::{exec, from_millis, next_seq, row1};
use super::SqliteStore;
use crate::error::EmbeddedError;

#[async_trait]
impl AdmitStore for SqliteStore {
    async fn admit(&self, arrival: &Arrival<'_>) -> Result<Admission, StoreError> {
        let ids = ReceiveIds::new(arrival.alert_id, arrival.message_id, arrival.candidate_id);
        let (now_ms, since) = aggregation_bounds(arrival.now, arrival.window);
        let json = serde_json::to_string(arrival.alert).map_err(EmbeddedError::from)?;
        let hashes: Vec<String> = arrival
            .alert
            .attributes
            .iter()
            .map(Attribute::hash)
            .collect();
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
}

/// The identifiers a receive works with, owned so they can move to the writer thread.
pub(super) struct ReceiveIds {
    alert_id: String,
    message_id: String,
    candidate_id: String,
}

impl ReceiveIds {
    pub(super) fn new(alert_id: &str, message_id: &str, candidate_id: &str) -> Self {
        Self {
            alert_id: alert_id.to_string(),
            message_id: message_id.to_string(),
            candidate_id: candidate_id.to_string(),
        }
    }
}

/// Opens or joins the report of `ids.alert_id` (see [`AdmitStore::admit`]): its meta
/// before this receive stores anything.
pub(super) fn open_or_join_in(
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
    Ok(ReportMeta::opened(
        &ids.candidate_id,
        &ids.alert_id,
        from_millis(now_ms)?,
        &ids.message_id,
    ))
}

/// Stores an alert once per message, recording the message as the first to name each
/// attribute the report had not seen named. Returns whether it was stored now, and when
/// it was stored (for a redelivery: when the first delivery was).
pub(super) fn put_alert_in(
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
    // The report list's count (a read model: the ports count rows, see `read_counts`).
    // One writer thread runs every write, so this shared row is never contended.
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

/// Whether the report has every hash, claimed or first named by another message: see
/// [`Admission::knows_all_attributes`].
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
