//! [`ClaimStore`] on DynamoDB: a claim is the attribute's item and a move of the
//! meta item's `attribute_count` from exactly what was read, in one transaction, so
//! that the cap holds under concurrent claims and `seq` is the claim order.
//!
//! Claims keep this transaction on the shared meta item (receptors no longer touch
//! it, see `admit`): it is what makes the cap exact, and it is bounded: only a claim
//! of an attribute new to the report gets here (one already claimed is answered from
//! its `attr#` item, with no write), and at most the cap of them per report ever
//! succeed. A lost race is read again and retried with backoff. The count is also
//! what [`ReportCounts::attributes`](alertresponder_core::ports::ReportCounts) reads:
//! exact, as it moves only with a claim.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::Attribute;
use alertresponder_core::ports::{Claim, ClaimStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use tracing::debug;

use super::client::{backoff, built, Tx, MAX_ATTEMPTS};
use super::codec::{get_n, get_s, n, s, to_json};
use super::keys::{attr_sk, key, report_pk, META_SK};
use super::{contention, unknown_report, DynamoStore, PK, SK, TTL_ATTRIBUTE};

#[async_trait]
impl ClaimStore for DynamoStore {
    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError> {
        let hash = attribute.hash();
        let json = to_json(attribute, &format!("attribute {hash}"))?;
        let meta_key = (report_pk(report_id), META_SK.to_string());
        let attr_key = (report_pk(report_id), attr_sk(&hash));
        let what = format!("attribute {hash} of report {report_id}");
        for attempt in 0..MAX_ATTEMPTS {
            let found = self
                .batch_get(
                    &[meta_key.clone(), attr_key.clone()],
                    Some(&[PK, SK, "claimer", "attribute_count"]),
                )
                .await?;
            if let Some(item) = found.get(&attr_key) {
                return Ok(if get_s(item, "claimer", &what)? == claimer {
                    Claim::New
                } else {
                    Claim::Seen
                });
            }
            let meta = found
                .get(&meta_key)
                .ok_or_else(|| unknown_report(report_id))?;
            let claimed: u32 = get_n(
                meta,
                "attribute_count",
                &format!("meta item of report {report_id}"),
            )?;
            if claimed >= cap {
                return Ok(Claim::CapReached);
            }
            // The count moves from exactly what was read, so the cap holds and the
            // claim's `seq` is its place in claim order.
            let count = built(
                Update::builder()
                    .table_name(&self.report_table)
                    .set_key(Some(key(meta_key.0.clone(), META_SK)))
                    // Not its TTL: the opening set one that outlives the window.
                    .update_expression("SET #count = :next")
                    .condition_expression("#count = :claimed")
                    .expression_attribute_names("#count", "attribute_count")
                    .expression_attribute_values(":next", n(claimed + 1))
                    .expression_attribute_values(":claimed", n(claimed))
                    .build(),
            )?;
            let mut item = key(attr_key.0.clone(), attr_key.1.clone());
            item.extend([
                ("json".to_string(), s(json.clone())),
                ("claimer".to_string(), s(claimer)),
                ("seq".to_string(), n(claimed + 1)),
                (TTL_ATTRIBUTE.to_string(), self.ttl()),
            ]);
            let items = vec![
                TransactWriteItem::builder().update(count).build(),
                self.put_new(item)?,
            ];
            match self.transact(items).await? {
                Tx::Done => return Ok(Claim::New),
                // The count moved or the attribute was claimed meanwhile: read again.
                Tx::Failed => debug!(report_id, attribute = %hash, "claim raced"),
                Tx::Busy => backoff(attempt).await,
            }
        }
        Err(contention("claiming an attribute", report_id))
    }
}
