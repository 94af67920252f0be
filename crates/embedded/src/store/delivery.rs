//! [`SqliteStore`] as the [`DeliveryLog`]: which published version reached which
//! emitter (`deliveries`, keyed by report, version and emitter; the first record is
//! kept), and what an emitter remembers about a report (`emitter_memos`, keyed by
//! report and emitter; replaced by the next). Both go with their report at retention.

use alertresponder_core::error::StoreError;
use alertresponder_core::ports::{check_memo, DeliveryLog, DeliveryRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::sql::{exec, from_millis, millis, row1, to_u32};
use super::SqliteStore;
use crate::error::EmbeddedError;

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn record_delivery(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (report_id, emitter) = (report_id.to_string(), emitter.to_string());
        let at = millis(at);
        self.write(move |tx| {
            // OR IGNORE: a second record of the same delivery keeps the first's time.
            let n = exec(
                tx,
                "INSERT OR IGNORE INTO deliveries (report_id, version, emitter, delivered_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![report_id, version, emitter, at],
            )?;
            Ok(n == 1)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn delivered(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
    ) -> Result<bool, StoreError> {
        let (report_id, emitter) = (report_id.to_string(), emitter.to_string());
        self.read(move |tx| {
            Ok(row1(
                tx,
                "SELECT EXISTS (SELECT 1 FROM deliveries
                                 WHERE report_id = ?1 AND version = ?2 AND emitter = ?3)",
                params![report_id, version, emitter],
                |r| r.get::<_, bool>(0),
            )?)
        })
        .await
        .map_err(StoreError::from)
    }

    async fn deliveries(&self, report_id: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        let report_id = report_id.to_string();
        self.read(move |tx| {
            // The primary key's order: version, then emitter name (binary, as Rust sorts).
            let mut stmt = tx.prepare_cached(
                "SELECT version, emitter, delivered_at FROM deliveries
                  WHERE report_id = ?1 ORDER BY version, emitter",
            )?;
            let rows = stmt
                .query_map(params![report_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(version, emitter, at)| {
                    Ok(DeliveryRecord {
                        report_id: report_id.clone(),
                        version: to_u32(version, "delivered version")?,
                        emitter,
                        delivered_at: from_millis(at)?,
                    })
                })
                .collect()
        })
        .await
        .map_err(StoreError::from)
    }

    async fn recall(&self, report_id: &str, emitter: &str) -> Result<Option<Value>, StoreError> {
        let (report_id, emitter) = (report_id.to_string(), emitter.to_string());
        let json: Option<String> = self
            .read(move |tx| {
                Ok(row1(
                    tx,
                    "SELECT memo FROM emitter_memos WHERE report_id = ?1 AND emitter = ?2",
                    params![report_id, emitter],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await?;
        Ok(json
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(EmbeddedError::from)?)
    }

    async fn remember(
        &self,
        report_id: &str,
        emitter: &str,
        memo: &Value,
    ) -> Result<(), StoreError> {
        let json = check_memo(memo)?;
        let (report_id, emitter) = (report_id.to_string(), emitter.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO emitter_memos (report_id, emitter, memo) VALUES (?1, ?2, ?3)
                 ON CONFLICT (report_id, emitter) DO UPDATE SET memo = excluded.memo",
                params![report_id, emitter, json],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use alertresponder_core::fixtures::t;
    use alertresponder_core::ports::DeliveryLog;
    use serde_json::json;

    use super::SqliteStore;
    use crate::store::sql::count;

    #[tokio::test]
    async fn deliveries_and_memos_go_with_their_report_at_retention() {
        let store = SqliteStore::open_in_memory().unwrap();
        // A report past retention takes its deliveries and memos; another's stay.
        store
            .record_delivery("gone", 1, "slack", t(0))
            .await
            .unwrap();
        store
            .remember("gone", "github", &json!({"issue": 1}))
            .await
            .unwrap();
        store.write(|tx| {
            crate::store::sql::exec(
                tx,
                "INSERT INTO reports (id, alert_id, created_at, opened_by) VALUES ('gone', 'a', 0, 'm')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        store
            .record_delivery("kept", 1, "slack", t(0))
            .await
            .unwrap();
        let pruned = store
            .prune_before(t(0) + Duration::from_secs(3600), 10)
            .await
            .unwrap();
        assert_eq!(pruned, 1);
        assert!(store.deliveries("gone").await.unwrap().is_empty());
        assert_eq!(store.recall("gone", "github").await.unwrap(), None);
        assert_eq!(store.deliveries("kept").await.unwrap().len(), 1);
        let memos = store
            .read(|tx| count(tx, "SELECT count(*) FROM emitter_memos"))
            .await
            .unwrap();
        assert_eq!(memos, 0);
    }
}
