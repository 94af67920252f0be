//! [`FindingStore`] on DynamoDB: sections and inspection outcomes are keyed by
//! attribute, inspector and index, so a retried inspection replaces its items; each
//! keeps the time it was first written, its place in the report. A finished
//! inspection is a flag on its claim's `attr#` item (no item, no transaction of its
//! own): a claim without it is pending.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Attribute, InspectionRecord, ReportSection};
use alertresponder_core::ports::FindingStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{n, now_ns, s, to_json};
use super::keys::{attr_sk, inspection_sk, key, report_pk, section_sk};
use super::{DynamoStore, PK, TTL_ATTRIBUTE};
use crate::error::AwsError;

#[async_trait]
impl FindingStore for DynamoStore {
    async fn put_section(&self, section: &ReportSection, index: usize) -> Result<(), StoreError> {
        let hash = section.attribute.hash();
        let json = to_json(section, &format!("section of {}", section.author))?;
        self.upsert_keeping_place(
            report_pk(&section.report_id),
            section_sk(&hash, index, &section.author),
            json,
        )
        .await
    }

    async fn put_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        self.put_outcome(report_id, record, false).await
    }

    async fn put_last_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        // The record's own item says it completes its attribute (`load_report` reads
        // it as the claim's `inspected`): one write instead of two.
        self.put_outcome(report_id, record, true).await
    }

    async fn mark_inspected(
        &self,
        report_id: &str,
        attribute: &Attribute,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.report_table)
            .set_key(Some(key(report_pk(report_id), attr_sk(&attribute.hash()))))
            .update_expression("SET #inspected = :yes")
            // Only a claim: an update would otherwise create the item.
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#inspected", INSPECTED)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Not claimed by this report: nothing to mark.
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(AwsError::sdk("dynamodb", "UpdateItem", err).into()),
        }
    }
}

/// The attribute of a claim's `attr#` item set once its inspection has finished.
pub(super) const INSPECTED: &str = "inspected";
/// Attribute of an inspection item that is the last outcome of its attribute's
/// inspection: the claim is then inspected, as if [`INSPECTED`] were set on it.
pub(super) const COMPLETES: &str = "completes";

impl DynamoStore {
    /// Writes `json` at a key, keeping the time it was first written (its place in
    /// the report) when it replaces an earlier write.
    /// Stores an inspector's outcome in place; with `completes`, as the last one.
    async fn put_outcome(
        &self,
        report_id: &str,
        record: &InspectionRecord,
        completes: bool,
    ) -> Result<(), StoreError> {
        let hash = record.attribute.hash();
        let json = to_json(record, &format!("inspection by {}", record.inspector))?;
        self.upsert_with(
            report_pk(report_id),
            inspection_sk(&hash, &record.inspector),
            json,
            completes,
        )
        .await
    }

    async fn upsert_keeping_place(
        &self,
        pk: String,
        sk: String,
        json: String,
    ) -> Result<(), StoreError> {
        self.upsert_with(pk, sk, json, false).await
    }

    /// [`Self::upsert_keeping_place`]; with `completes`, the item also says that it
    /// is the last outcome of its attribute's inspection.
    async fn upsert_with(
        &self,
        pk: String,
        sk: String,
        json: String,
        completes: bool,
    ) -> Result<(), StoreError> {
        let expression = if completes {
            "SET #json = :json, #first = if_not_exists(#first, :now), #exp = :exp, #completes = :yes"
        } else {
            "SET #json = :json, #first = if_not_exists(#first, :now), #exp = :exp"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.report_table)
            .set_key(Some(key(pk, sk)))
            .update_expression(expression);
        if completes {
            update = update
                .expression_attribute_names("#completes", COMPLETES)
                .expression_attribute_values(":yes", AttributeValue::Bool(true));
        }
        update
            .expression_attribute_names("#json", "json")
            .expression_attribute_names("#first", "first_ns")
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":json", s(json))
            .expression_attribute_values(":now", n(now_ns()))
            .expression_attribute_values(":exp", self.ttl())
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "UpdateItem", e))?;
        Ok(())
    }
}
