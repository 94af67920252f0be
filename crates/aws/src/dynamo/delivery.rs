//! [`DynamoStore`] as the [`DeliveryLog`], in the report's own partition (see the key
//! table in the module documentation):
//!
//! - a delivery is one item `report#<id>` / `delivery#<version:010>#<emitter>`
//!   (`version`, `emitter`, `delivered_at`), written by a PutItem conditional on the
//!   key being new: the first record wins, a second is told `false` and changes
//!   nothing. `deliveries` is one Query on the prefix, already in the contract's order
//!   (version, then emitter name: sort keys compare as UTF-8 bytes);
//! - a memo is one item `report#<id>` / `memo#<emitter>` (`json`), replaced by the next.
//!
//! Both carry the record TTL, as every item of the report does; `load_report` skips
//! them (it reads only the sort keys it knows).

use alertresponder_core::error::StoreError;
use alertresponder_core::ports::{check_memo, DeliveryLog, DeliveryRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::codec::{get_json, get_n, get_s, get_time, millis, n, s};
use super::keys::{delivery_sk, key, memo_sk, report_pk, DELIVERY_PREFIX};
use super::{DynamoStore, TTL_ATTRIBUTE};

#[async_trait]
impl DeliveryLog for DynamoStore {
    async fn record_delivery(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = key(report_pk(report_id), delivery_sk(version, emitter));
        item.extend([
            ("version".to_string(), n(version)),
            ("emitter".to_string(), s(emitter)),
            ("delivered_at".to_string(), n(millis(at))),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        Ok(self.put_if_absent(item).await?)
    }

    async fn delivered(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
    ) -> Result<bool, StoreError> {
        let item = self
            .get(
                &self.report_table,
                report_pk(report_id),
                delivery_sk(version, emitter),
            )
            .await?;
        Ok(item.is_some())
    }

    async fn deliveries(&self, report_id: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        let items = self
            .query_prefix(report_pk(report_id), DELIVERY_PREFIX)
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let what = format!(
                "delivery item {} of report {report_id}",
                get_s(item, super::SK, "delivery item")?
            );
            out.push(DeliveryRecord {
                report_id: report_id.to_string(),
                version: get_n(item, "version", &what)?,
                emitter: get_s(item, "emitter", &what)?.to_string(),
                delivered_at: get_time(item, "delivered_at", &what)?,
            });
        }
        Ok(out)
    }

    async fn recall(&self, report_id: &str, emitter: &str) -> Result<Option<Value>, StoreError> {
        let what = format!("memo of emitter {emitter} on report {report_id}");
        let Some(item) = self
            .get(&self.report_table, report_pk(report_id), memo_sk(emitter))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(get_json::<Value>(&item, &what)?))
    }

    async fn remember(
        &self,
        report_id: &str,
        emitter: &str,
        memo: &Value,
    ) -> Result<(), StoreError> {
        let json = check_memo(memo)?;
        let mut item = key(report_pk(report_id), memo_sk(emitter));
        item.extend([
            ("json".to_string(), s(json)),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        self.put(&self.report_table, item).await?;
        Ok(())
    }
}
