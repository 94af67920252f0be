//! [`ClaimStore`] on DynamoDB: a claim is a conditional PutItem of the attribute's
//! `attr#` item (it is the claim), then an UpdateItem that counts it on the meta
//! item only while the count is under the cap. No transaction: a claim of an
//! attribute new to the report writes two items, one request each.
//!
//! A claim of an attribute already claimed is answered from its `attr#` item with no
//! write, as is a report whose meta's `attribute_count` has reached the cap. Else:
//!
//! 1. PutItem `attr#<hash>` (with `claimer`), conditional on `attribute_not_exists`.
//!    If the condition fails, the item is read back (consistently): the same claimer
//!    is a retry (New), another is Seen.
//! 2. UpdateItem `ADD attribute_count :1` on the meta, conditional on the meta
//!    existing and its count under the cap. If it fails, the `attr#` item is deleted,
//!    conditional on `claimer = :me` (the claim is taken back), and the answer is
//!    CapReached.
//!
//! # Why it is safe
//!
//! - Concurrent claims of *distinct* attributes at the cap: every put succeeds (each
//!   is its own item), and the counting updates are applied one after the other on
//!   the meta item, each conditional on the count it finds: exactly as many as the
//!   cap leaves room for pass; the others take their `attr#` item back. Only cap
//!   claims keep their slot.
//! - Concurrent claims of the *same* attribute: one put wins; the others fail their
//!   condition and read the winner's item: Seen. If the winner then loses the count
//!   at the cap and takes its item back, the readers were told Seen instead of
//!   CapReached: both mean "do not inspect it", and nobody inspects it.
//! - A crash between the put and the count leaves the attribute claimed but not
//!   counted: its claimer's retry finds its own `attr#` item and gets New again (it
//!   publishes its task), with no count. The meta's count then lags the claims by
//!   one, so the cap may be passed by one per such crash (as by a crash between a
//!   refused count and the take-back). That is why the meta's `attribute_count` only
//!   gates claims, and [`ReportCounts::attributes`](alertresponder_core::ports::ReportCounts)
//!   counts the `attr#` items (see `read`).
//! - An unknown report: the first read finds no meta and answers the permanent error
//!   before any write; a report is never deleted but by TTL, past its window.
//!
//! The claim order (`seq`, the clock in nanoseconds at the put) is the order claims
//! were made in, as far as one clock tells: exact for claims made one after another.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::Attribute;
use alertresponder_core::ports::{Claim, ClaimStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use tracing::{debug, warn};

use super::client::MAX_ATTEMPTS;
use super::codec::{get_n, get_s, n, now_ns, s, to_json};
use super::keys::{attr_sk, key, report_pk, Item, META_SK};
use super::{contention, unknown_report, DynamoStore, PK, SK, TTL_ATTRIBUTE};
use crate::error::AwsError;

/// The meta item's count of claims (a gate for the cap, see the module documentation).
const ATTRIBUTE_COUNT: &str = "attribute_count";

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
        let found = self
            .batch_get(
                &[meta_key.clone(), attr_key.clone()],
                Some(&[PK, SK, "claimer", ATTRIBUTE_COUNT]),
            )
            .await?;
        if let Some(item) = found.get(&attr_key) {
            return Ok(claimed_by(item, claimer, &what)?);
        }
        let meta = found
            .get(&meta_key)
            .ok_or_else(|| unknown_report(report_id))?;
        // It may lag the claims (a crash before a count), never lead them.
        let counted: u32 = match meta.get(ATTRIBUTE_COUNT) {
            Some(_) => get_n(
                meta,
                ATTRIBUTE_COUNT,
                &format!("meta item of report {report_id}"),
            )?,
            None => 0,
        };
        if counted >= cap {
            return Ok(Claim::CapReached);
        }
        // A put that fails finds the item there; it is gone again only if its claimer
        // took it back at the cap: then look again.
        for _ in 0..MAX_ATTEMPTS {
            let mut item = key(attr_key.0.clone(), attr_key.1.clone());
            item.extend([
                ("json".to_string(), s(json.clone())),
                ("claimer".to_string(), s(claimer)),
                ("seq".to_string(), n(now_ns())),
                (TTL_ATTRIBUTE.to_string(), self.ttl()),
            ]);
            if self.put_if_absent(item).await? {
                return self.count_claim(report_id, &hash, claimer, cap).await;
            }
            let item = self
                .get(&self.report_table, attr_key.0.clone(), attr_key.1.clone())
                .await?;
            match item {
                Some(item) => return Ok(claimed_by(&item, claimer, &what)?),
                None => debug!(report_id, attribute = %hash, "claim taken back meanwhile"),
            }
        }
        Err(contention("claiming an attribute", report_id))
    }
}

/// New if `item` (an `attr#` item) was claimed by `claimer` (a retry), else Seen.
fn claimed_by(item: &Item, claimer: &str, what: &str) -> Result<Claim, AwsError> {
    Ok(if get_s(item, "claimer", what)? == claimer {
        Claim::New
    } else {
        Claim::Seen
    })
}

impl DynamoStore {
    /// Counts the claim `claimer` just put on the meta item, if the cap leaves room;
    /// else takes the claim back. The throttling of either request is retried by
    /// the SDK.
    async fn count_claim(
        &self,
        report_id: &str,
        hash: &str,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError> {
        let counted = self
            .client
            .update_item()
            .table_name(&self.report_table)
            .set_key(Some(key(report_pk(report_id), META_SK)))
            // Not its TTL: the opening set one that outlives the window.
            .update_expression("ADD #count :one")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#count) OR #count < :cap)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#count", ATTRIBUTE_COUNT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(cap))
            .send()
            .await;
        match counted {
            Ok(_) => return Ok(Claim::New),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) => {}
            Err(err) => return Err(AwsError::sdk("dynamodb", "UpdateItem", err).into()),
        }
        let taken_back = self
            .client
            .delete_item()
            .table_name(&self.report_table)
            .set_key(Some(key(report_pk(report_id), attr_sk(hash))))
            .condition_expression("#claimer = :me")
            .expression_attribute_names("#claimer", "claimer")
            .expression_attribute_values(":me", s(claimer))
            .send()
            .await;
        match taken_back {
            Ok(_) => {}
            // Not ours any more: nothing of ours to take back.
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                warn!(report_id, attribute = %hash, "a claim refused at the cap was not ours")
            }
            Err(err) => return Err(AwsError::sdk("dynamodb", "DeleteItem", err).into()),
        }
        // The meta was read before the put: a failed condition is the cap (a report
        // gone since would be past its TTL, and is treated alike).
        Ok(Claim::CapReached)
    }
}
