//! The requests every port is made of: a consistent GetItem, BatchGetItem that
//! retries what DynamoDB leaves unprocessed, a Query over a partition (or a count of
//! a range of it, or the items of a range) page by page, a PutItem only if the key
//! is new, and
//! TransactWriteItems whose failed condition is told apart from a lost race.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, Select, TransactWriteItem};
use chrono::Utc;

use super::codec::{get_s, s};
use super::keys::{key, Item, Key};
use super::{DynamoStore, PK, SK};
use crate::error::AwsError;

/// Most tries of an optimistic write that loses races before giving up (transient).
pub(super) const MAX_ATTEMPTS: u32 = 32;
/// Most keys in one BatchGetItem request.
const BATCH_GET_KEYS: usize = 100;

/// A request the SDK refused to build (a missing required field: a bug of ours).
pub(super) fn built<T>(r: Result<T, BuildError>) -> Result<T, AwsError> {
    r.map_err(|e| AwsError::Malformed {
        what: "DynamoDB request".into(),
        message: e.to_string(),
    })
}

/// Waits a little, longer after each lost race, with jitter so racers spread out.
pub(super) async fn backoff(attempt: u32) {
    let base = 5u64.saturating_mul(1 << attempt.min(5)).min(200);
    let jitter = u64::from(Utc::now().timestamp_subsec_nanos()) % (base + 1);
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter / 2)).await;
}

/// How a TransactWriteItems call ended.
pub(super) enum Tx {
    /// Every write was applied.
    Done,
    /// Nothing was applied: a condition failed.
    Failed,
    /// Nothing was applied: another transaction or throttling got in the way; try again.
    Busy,
}

impl DynamoStore {
    /// A put of `item` into the report table, only if no item has its key.
    pub(super) fn put_new(&self, item: Item) -> Result<TransactWriteItem, AwsError> {
        let put = built(
            Put::builder()
                .table_name(&self.report_table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Puts `item` into `table`, replacing any item with its key.
    pub(super) async fn put(&self, table: &str, item: Item) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "PutItem", e))?;
        Ok(())
    }

    /// Puts `item` into the report table only if no item has its key, outside any
    /// transaction: `true` if it was written, `false` if an item was there (left as
    /// it was). Throttling is retried by the SDK.
    pub(super) async fn put_if_absent(&self, item: Item) -> Result<bool, AwsError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.report_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(AwsError::sdk("dynamodb", "PutItem", err)),
        }
    }

    /// How many items of partition `pk` of the report table have a sort key starting
    /// with `prefix`: a Query with `Select=COUNT`, read consistently, page by page.
    pub(super) async fn count_prefix(&self, pk: String, prefix: &str) -> Result<u32, AwsError> {
        let mut total: u32 = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .prefix_query(&pk, prefix)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("dynamodb", "Query", e))?;
            total = total.saturating_add(u32::try_from(out.count).unwrap_or(0));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }

    /// One item by key, read consistently.
    pub(super) async fn get(
        &self,
        table: &str,
        pk: String,
        sk: String,
    ) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "GetItem", e))?;
        Ok(out.item)
    }

    /// Items of the report table by key, read consistently (absent keys are left out);
    /// only the attributes in `projection` if given.
    pub(super) async fn batch_get(
        &self,
        keys: &[Key],
        projection: Option<&[&str]>,
    ) -> Result<HashMap<Key, Item>, AwsError> {
        let mut unique: Vec<&Key> = Vec::with_capacity(keys.len());
        let mut seen = HashSet::new();
        for k in keys {
            if seen.insert(k) {
                unique.push(k);
            }
        }
        let mut found = HashMap::new();
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                request = request.keys(key(pk.clone(), sk.clone()));
            }
            if let Some(names) = projection {
                let placeholders: Vec<String> =
                    (0..names.len()).map(|i| format!("#p{i}")).collect();
                request = request.projection_expression(placeholders.join(", "));
                for (p, name) in placeholders.iter().zip(names) {
                    request = request.expression_attribute_names(p, *name);
                }
            }
            let mut pending = Some(built(request.build())?);
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.report_table, request)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk("dynamodb", "BatchGetItem", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.report_table))
                    .unwrap_or_default()
                {
                    let pk = get_s(&item, PK, "BatchGetItem answer")?.to_string();
                    let sk = get_s(&item, SK, "BatchGetItem answer")?.to_string();
                    found.insert((pk, sk), item);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.report_table))
                    .filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(AwsError::Service {
                            service: "dynamodb",
                            operation: "BatchGetItem",
                            message: "keys left unprocessed after every retry".into(),
                            retryable: true,
                        });
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// Runs a transaction, telling a failed condition (and which) from a conflict.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Tx, AwsError> {
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Tx::Done),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        else {
            return Err(AwsError::sdk("dynamodb", "TransactWriteItems", err));
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        let busy = [
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
            "RequestLimitExceeded",
        ];
        if codes.iter().any(|c| busy.contains(c)) {
            return Ok(Tx::Busy);
        }
        if codes.is_empty()
            || codes
                .iter()
                .any(|c| !["None", "ConditionalCheckFailed"].contains(c))
        {
            return Err(AwsError::sdk("dynamodb", "TransactWriteItems", err));
        }
        Ok(Tx::Failed)
    }

    /// A consistent Query of the items of partition `pk` of the report table whose sort
    /// key starts with `prefix` (what `count_prefix` and `query_prefix` page through).
    fn prefix_query(
        &self,
        pk: &str,
        prefix: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.report_table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
    }

    /// Every item of partition `pk` of the report table whose sort key starts with
    /// `prefix`, in sort-key order, read consistently, page by page.
    pub(super) async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .prefix_query(&pk, prefix)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("dynamodb", "Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Every item of a partition of the report table, read consistently, page by page.
    pub(super) async fn query_partition(&self, pk: String) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.report_table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("dynamodb", "Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}
