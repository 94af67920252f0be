//! [`PublishStore`] on DynamoDB: the published version's item (only if new) and the
//! meta item's move from the version before, in one transaction: each version is
//! published once, never ahead of the one before.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::Report;
use alertresponder_core::ports::{PublishMark, PublishStore, ReadStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::Utc;

use super::client::{backoff, built, Tx, MAX_ATTEMPTS};
use super::codec::{encode_report, get_s, millis, n, s, to_json};
use super::keys::{key, published_pk, published_sk, report_pk, META_SK};
use super::{contention, unknown_report, DynamoStore, TTL_ATTRIBUTE};

#[async_trait]
impl PublishStore for DynamoStore {
    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError> {
        let (field, body) = encode_report(report)?;
        let version = report.version;
        let result = to_json(&report.result, &format!("result of report {}", report.id))?;
        let published_at = millis(report.published_at.unwrap_or_else(Utc::now));
        for attempt in 0..MAX_ATTEMPTS {
            let Some(previous) = version.checked_sub(1) else {
                break;
            };
            let meta = built(
                Update::builder()
                    .table_name(&self.report_table)
                    .set_key(Some(key(report_pk(&report.id), META_SK)))
                    // Not its TTL: the opening set one that outlives the window.
                    .update_expression("SET #version = :version, #at = :at, #result = :result")
                    .condition_expression("#version = :previous")
                    .expression_attribute_names("#version", "published_version")
                    .expression_attribute_names("#at", "last_published_at")
                    .expression_attribute_names("#result", "last_result")
                    .expression_attribute_values(":version", n(version))
                    .expression_attribute_values(":previous", n(previous))
                    .expression_attribute_values(":at", n(published_at))
                    .expression_attribute_values(":result", s(result.clone()))
                    .build(),
            )?;
            let mut item = key(published_pk(&report.id), published_sk(version));
            item.extend([
                (field.to_string(), body.clone()),
                ("publisher".to_string(), s(publisher)),
                ("version".to_string(), n(version)),
                ("severity".to_string(), s(report.result.severity.as_str())),
                ("published_at".to_string(), n(published_at)),
                (TTL_ATTRIBUTE.to_string(), self.ttl()),
            ]);
            let items = vec![
                TransactWriteItem::builder().update(meta).build(),
                self.put_new(item)?,
            ];
            match self.transact(items).await? {
                Tx::Done => return Ok(PublishMark::Published),
                Tx::Failed => break,
                Tx::Busy => backoff(attempt).await,
            }
        }
        // Published before (by whom?), or a version gap, or no such report.
        let what = format!("published version {version} of report {}", report.id);
        if let Some(item) = self
            .get(
                &self.report_table,
                published_pk(&report.id),
                published_sk(version),
            )
            .await?
        {
            return Ok(PublishMark::AlreadyPublished {
                publisher: get_s(&item, "publisher", &what)?.to_string(),
            });
        }
        match self.report_meta(&report.id).await? {
            None => Err(unknown_report(&report.id)),
            Some(meta) if meta.published_version.checked_add(1) == Some(version) => {
                Err(contention("publishing", &report.id))
            }
            Some(meta) => Err(StoreError::Permanent(format!(
                "cannot publish report {} version {version}: the last published version is {}",
                report.id, meta.published_version
            ))),
        }
    }
}
