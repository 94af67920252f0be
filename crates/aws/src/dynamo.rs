//! [`DynamoStore`]: the [`Store`] port on two DynamoDB tables.
//!
//! Both tables have the key `pk` (S, HASH) + `sk` (S, RANGE), on-demand capacity,
//! and TTL on the Number attribute `expires_at` (epoch seconds). Every key derives
//! from the input (alert ID, report ID, message ID, attribute hash, inspector name,
//! section index, version): a retried write overwrites, or fails its condition,
//! instead of adding an item. Reads go by key (GetItem, BatchGetItem, Query), always
//! consistent, never Scan.
//!
//! Report table:
//!
//! | pk                     | sk                                  | item                                        |
//! |------------------------|-------------------------------------|---------------------------------------------|
//! | `alert#<alert_id>`     | `open`                              | the open report of an alert ID: `report_id`, `created_at`, `opened_by` |
//! | `report#<report_id>`   | `meta`                              | `alert_id`, `created_at`, `opened_by`, `published_version`, `alert_count`, `attribute_count`, `last_published_at`, `last_result` |
//! | `report#<report_id>`   | `alert#<message_id>`                | an alert (`json`), `received_at`, `stored_ns` |
//! | `report#<report_id>`   | `mention#<attribute hash>`          | the first message to name an attribute: `message_id` |
//! | `report#<report_id>`   | `attr#<attribute hash>`             | a claimed attribute (`json`), `claimer`, `seq` (claim order) |
//! | `report#<report_id>`   | `section#<hash>#<index:06>#<author>` | a section (`json`), `first_ns`             |
//! | `report#<report_id>`   | `inspection#<hash>#<inspector>`     | an inspection record (`json`), `first_ns`   |
//! | `published#<report_id>`| `v#<version:010>`                   | a published version (`report` JSON, or `report_gz` gzipped JSON), `publisher` |
//!
//! Error table: pk `error#<record id>`, sk `stage#<stage>`, the record as `json`.
//!
//! Times are epoch milliseconds (Numbers); `stored_ns` / `first_ns` are the wall
//! clock in nanoseconds when an item was first written, to give back content in
//! the order it was stored. Published versions live in a partition of their own so
//! that loading a report (one Query on `report#<id>`) never reads them.
//!
//! Every write sets `expires_at` to now + the record TTL (an update of the meta item
//! pushes it back, so the meta outlives the content it counts). The `alert#…/open`
//! item expires at now + aggregation window + record TTL, so that it outlives its
//! window whatever the TTL.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{
    Alert, Attribute, ErrorRecord, InspectionRecord, Report, ReportResult, ReportSection,
};
use alertresponder_core::ports::{Admission, Claim, PublishMark, ReportMeta, ReportState, Store};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::debug;

use crate::error::AwsError;

/// Name of the partition key attribute of both tables.
pub const PK: &str = "pk";
/// Name of the sort key attribute of both tables.
pub const SK: &str = "sk";
/// Name of the TTL attribute of both tables (Number, epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Largest published report kept as is; above it, gzipped (an item holds 400 KB in all).
const MAX_REPORT_BYTES: usize = 350_000;
/// Most tries of an optimistic write that loses races before giving up (transient).
const MAX_ATTEMPTS: u32 = 32;
/// Most writes in one TransactWriteItems request.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// Most keys in one BatchGetItem request.
const BATCH_GET_KEYS: usize = 100;
/// Sort key of a report's meta item.
const META_SK: &str = "meta";
/// Sort key of an alert ID's open-report item.
const OPEN_SK: &str = "open";
/// Attributes of the meta item a receive needs, plus an alert's `received_at`.
const ADMISSION_PROJECTION: &[&str] = &[
    PK,
    SK,
    "alert_id",
    "created_at",
    "opened_by",
    "published_version",
    "alert_count",
    "last_published_at",
    "received_at",
    "message_id",
];

/// One DynamoDB item.
type Item = HashMap<String, AttributeValue>;
/// The key of an item: (pk, sk).
type Key = (String, String);

fn report_pk(report_id: &str) -> String {
    format!("report#{report_id}")
}

fn open_pk(alert_id: &str) -> String {
    format!("alert#{alert_id}")
}

fn alert_sk(message_id: &str) -> String {
    format!("alert#{message_id}")
}

fn attr_sk(hash: &str) -> String {
    format!("attr#{hash}")
}

fn mention_sk(hash: &str) -> String {
    format!("mention#{hash}")
}

fn section_sk(hash: &str, index: usize, author: &str) -> String {
    format!("section#{hash}#{index:06}#{author}")
}

fn inspection_sk(hash: &str, inspector: &str) -> String {
    format!("inspection#{hash}#{inspector}")
}

fn published_pk(report_id: &str) -> String {
    format!("published#{report_id}")
}

fn published_sk(version: u32) -> String {
    format!("v#{version:010}")
}

fn error_pk(id: &str) -> String {
    format!("error#{id}")
}

fn error_sk(stage: &str) -> String {
    format!("stage#{stage}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The wall clock in nanoseconds: the order in which items are first stored.
fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A request the SDK refused to build (a missing required field: a bug of ours).
fn built<T>(r: Result<T, BuildError>) -> Result<T, AwsError> {
    r.map_err(|e| AwsError::Malformed {
        what: "DynamoDB request".into(),
        message: e.to_string(),
    })
}

fn malformed(what: &str, message: impl Into<String>) -> AwsError {
    AwsError::Malformed {
        what: what.to_string(),
        message: message.into(),
    }
}

/// A String attribute of a stored item.
fn get_s<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str, AwsError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(malformed(what, format!("{name} is not a string"))),
        None => Err(malformed(what, format!("{name} is missing"))),
    }
}

/// A Number attribute of a stored item, if present.
fn opt_n<T: std::str::FromStr>(item: &Item, name: &str, what: &str) -> Result<Option<T>, AwsError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| malformed(what, format!("{name} {v:?} is not a valid number here"))),
        Some(AttributeValue::Null(_)) | None => Ok(None),
        Some(_) => Err(malformed(what, format!("{name} is not a number"))),
    }
}

/// A Number attribute of a stored item.
fn get_n<T: std::str::FromStr>(item: &Item, name: &str, what: &str) -> Result<T, AwsError> {
    opt_n(item, name, what)?.ok_or_else(|| malformed(what, format!("{name} is missing")))
}

fn time(ms: i64, what: &str) -> Result<DateTime<Utc>, AwsError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| malformed(what, format!("time {ms} ms is out of range")))
}

/// The JSON document in attribute `json` of a stored item.
fn get_json<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, AwsError> {
    serde_json::from_str(get_s(item, "json", what)?)
        .map_err(|e| malformed(what, format!("json: {e}")))
}

fn to_json<T: Serialize>(v: &T, what: &str) -> Result<String, AwsError> {
    serde_json::to_string(v).map_err(|e| malformed(what, format!("cannot encode: {e}")))
}

/// The ReportMeta of a meta item.
fn meta_from(report_id: &str, item: &Item) -> Result<ReportMeta, AwsError> {
    let what = format!("meta item of report {report_id}");
    Ok(ReportMeta {
        id: report_id.to_string(),
        alert_id: get_s(item, "alert_id", &what)?.to_string(),
        created_at: time(get_n(item, "created_at", &what)?, &what)?,
        opened_by: get_s(item, "opened_by", &what)?.to_string(),
        published_version: get_n(item, "published_version", &what)?,
        alert_count: get_n(item, "alert_count", &what)?,
        last_published_at: opt_n(item, "last_published_at", &what)?
            .map(|ms| time(ms, &what))
            .transpose()?,
    })
}

/// An alert ID's open-report item.
struct OpenReport {
    report_id: String,
    created_at: i64,
}

fn open_from(alert_id: &str, item: &Item) -> Result<OpenReport, AwsError> {
    let what = format!("open-report item of {alert_id}");
    Ok(OpenReport {
        report_id: get_s(item, "report_id", &what)?.to_string(),
        created_at: get_n(item, "created_at", &what)?,
    })
}

/// `now` and the earliest opening time still inside the window, in epoch milliseconds.
fn window_bounds(now: DateTime<Utc>, window: Duration) -> (i64, i64) {
    let now_ms = millis(now);
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (now_ms, now_ms.saturating_sub(window_ms))
}

/// How a TransactWriteItems call ended.
enum Tx {
    /// Every write was applied.
    Done,
    /// Nothing was applied; `true` at index `i`: the condition of item `i` failed.
    Failed(Vec<bool>),
    /// Nothing was applied: another transaction or throttling got in the way; try again.
    Busy,
}

impl Tx {
    fn failed(&self, index: usize) -> bool {
        matches!(self, Tx::Failed(f) if f.get(index).copied().unwrap_or(false))
    }
}

/// An alert to store, with what its item and mentions are made of.
struct NewAlert<'a> {
    message_id: &'a str,
    json: &'a str,
    received_ms: i64,
    /// Its distinct attribute hashes.
    hashes: &'a [&'a str],
}

/// What a conditional put of an alert found.
enum AlertPut {
    Inserted,
    AlreadyStored,
}

/// Waits a little, longer after each lost race, with jitter so racers spread out.
async fn backoff(attempt: u32) {
    let base = 5u64.saturating_mul(1 << attempt.min(5)).min(200);
    let jitter = u64::from(Utc::now().timestamp_subsec_nanos()) % (base + 1);
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter / 2)).await;
}

/// Creates the report table and the error table (key `pk` + `sk`, on-demand), waits
/// until they are active and enables TTL on `expires_at`. Fails if a table exists.
pub async fn create_tables(
    client: &aws_sdk_dynamodb::Client,
    report_table: &str,
    error_table: &str,
) -> Result<(), AwsError> {
    for table in [report_table, error_table] {
        create_table(client, table).await?;
    }
    Ok(())
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), AwsError> {
    let attr = |name: &str| {
        built(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )
    };
    let key = |name: &str, kind: KeyType| {
        built(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build(),
        )
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| AwsError::sdk("dynamodb", "CreateTable", e))?;
    // UpdateTimeToLive wants an active table; a new on-demand table is so within seconds.
    for _ in 0..300 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "DescribeTable", e))?;
        let status = described.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(built(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build(),
        )?)
        .send()
        .await
        .map_err(|e| AwsError::sdk("dynamodb", "UpdateTimeToLive", e))?;
    Ok(())
}

/// The [`Store`] port on DynamoDB: a report table and an error table (see the module
/// documentation for the item layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    report_table: String,
    error_table: String,
    record_ttl: Duration,
}

impl DynamoStore {
    /// A store on `report_table` and `error_table`; every item written expires
    /// `record_ttl` after it is written (DynamoDB TTL deletes it some time after).
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        report_table: impl Into<String>,
        error_table: impl Into<String>,
        record_ttl: Duration,
    ) -> Self {
        Self {
            client,
            report_table: report_table.into(),
            error_table: error_table.into(),
            record_ttl,
        }
    }

    /// `expires_at` for an item written now that must live `extra` longer than the TTL.
    fn expires_at(&self, extra: Duration) -> AttributeValue {
        let secs = self.record_ttl.saturating_add(extra).as_secs();
        n(Utc::now()
            .timestamp()
            .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)))
    }

    fn ttl(&self) -> AttributeValue {
        self.expires_at(Duration::ZERO)
    }

    /// A put of `item` into the report table, only if no item has its key.
    fn put_new(&self, item: Item) -> Result<TransactWriteItem, AwsError> {
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

    fn key(pk: String, sk: impl Into<String>) -> Item {
        HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
    }

    /// One item by key, read consistently.
    async fn get(&self, table: &str, pk: String, sk: String) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "GetItem", e))?;
        Ok(out.item)
    }

    /// Items of the report table by key, read consistently (absent keys are left out);
    /// only the attributes in `projection` if given.
    async fn batch_get(
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
                request = request.keys(Self::key(pk.clone(), sk.clone()));
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
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Tx, AwsError> {
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
        Ok(Tx::Failed(
            codes
                .iter()
                .map(|c| *c == "ConditionalCheckFailed")
                .collect(),
        ))
    }

    /// Every item of a partition of the report table, read consistently, page by page.
    async fn query_partition(&self, pk: String) -> Result<Vec<Item>, AwsError> {
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

    /// The open-report item and the meta item of a new report, and optionally its
    /// first alert: the writes that open a report, all or nothing.
    #[allow(clippy::too_many_arguments)]
    fn opening(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        now_ms: i64,
        since_ms: i64,
        window: Duration,
        first_alert: Option<&NewAlert<'_>>,
    ) -> Result<Vec<TransactWriteItem>, AwsError> {
        let mut open = Self::key(open_pk(alert_id), OPEN_SK);
        open.extend([
            ("report_id".to_string(), s(candidate_id)),
            ("created_at".to_string(), n(now_ms)),
            ("opened_by".to_string(), s(message_id)),
            (TTL_ATTRIBUTE.to_string(), self.expires_at(window)),
        ]);
        let put_open = built(
            Put::builder()
                .table_name(&self.report_table)
                .set_item(Some(open))
                .condition_expression("attribute_not_exists(#pk) OR #created <= :since")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#created", "created_at")
                .expression_attribute_values(":since", n(since_ms))
                .build(),
        )?;
        let mut meta = Self::key(report_pk(candidate_id), META_SK);
        meta.extend([
            ("alert_id".to_string(), s(alert_id)),
            ("created_at".to_string(), n(now_ms)),
            ("opened_by".to_string(), s(message_id)),
            ("published_version".to_string(), n(0)),
            (
                "alert_count".to_string(),
                n(u8::from(first_alert.is_some())),
            ),
            ("attribute_count".to_string(), n(0)),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        let mut items = vec![
            TransactWriteItem::builder().put(put_open).build(),
            self.put_new(meta)?,
        ];
        if let Some(alert) = first_alert {
            items.push(self.put_new(self.alert_item(candidate_id, alert))?);
            items.extend(self.mentions(candidate_id, alert)?);
        }
        Ok(items)
    }

    fn alert_item(&self, report_id: &str, alert: &NewAlert<'_>) -> Item {
        let mut item = Self::key(report_pk(report_id), alert_sk(alert.message_id));
        item.extend([
            ("json".to_string(), s(alert.json)),
            ("message_id".to_string(), s(alert.message_id)),
            ("received_at".to_string(), n(alert.received_ms)),
            ("stored_ns".to_string(), n(now_ns())),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        item
    }

    /// Records `alert.message_id` as the first to name each of its attributes, where
    /// no message did before (never a failed condition: these never cancel a transaction).
    fn mentions(
        &self,
        report_id: &str,
        alert: &NewAlert<'_>,
    ) -> Result<Vec<TransactWriteItem>, AwsError> {
        alert
            .hashes
            .iter()
            .map(|h| {
                let update = built(
                    Update::builder()
                        .table_name(&self.report_table)
                        .set_key(Some(Self::key(report_pk(report_id), mention_sk(h))))
                        .update_expression("SET #m = if_not_exists(#m, :m), #exp = :exp")
                        .expression_attribute_names("#m", "message_id")
                        .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                        .expression_attribute_values(":m", s(alert.message_id))
                        .expression_attribute_values(":exp", self.ttl())
                        .build(),
                )?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect()
    }

    /// Runs `items` (the conditional ones first) as one transaction; what does not fit
    /// in one (only mentions, unconditional) follows in further transactions once the
    /// first is done. A crash in between leaves some mentions out: a later message
    /// naming those attributes then dispatches them itself, the safe side.
    async fn transact_all(&self, mut items: Vec<TransactWriteItem>) -> Result<Tx, StoreError> {
        let rest = items.split_off(items.len().min(MAX_TRANSACTION_ITEMS));
        let tx = self.transact(items).await?;
        if !matches!(tx, Tx::Done) {
            return Ok(tx);
        }
        let mut rest = rest.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<TransactWriteItem> = rest.by_ref().take(MAX_TRANSACTION_ITEMS).collect();
            let mut attempt = 0;
            loop {
                match self.transact(chunk.clone()).await? {
                    Tx::Done => break,
                    Tx::Busy if attempt < MAX_ATTEMPTS => {
                        attempt += 1;
                        backoff(attempt).await;
                    }
                    _ => {
                        return Err(StoreError::Transient(
                            "recording the attributes an alert names failed".into(),
                        ))
                    }
                }
            }
        }
        Ok(Tx::Done)
    }

    /// Stores an alert, counts it on the meta item and records the attributes it is
    /// the first to name: all or nothing (but for the mentions of an alert of more than
    /// 98 attributes, see [`Self::transact_all`]).
    async fn put_alert_item(
        &self,
        report_id: &str,
        alert: &NewAlert<'_>,
    ) -> Result<AlertPut, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let count = built(
                Update::builder()
                    .table_name(&self.report_table)
                    .set_key(Some(Self::key(report_pk(report_id), META_SK)))
                    .update_expression("ADD #count :one SET #exp = :exp")
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#count", "alert_count")
                    .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":exp", self.ttl())
                    .build(),
            )?;
            let mut items = vec![
                self.put_new(self.alert_item(report_id, alert))?,
                TransactWriteItem::builder().update(count).build(),
            ];
            items.extend(self.mentions(report_id, alert)?);
            match self.transact_all(items).await? {
                Tx::Done => return Ok(AlertPut::Inserted),
                tx if tx.failed(0) => return Ok(AlertPut::AlreadyStored),
                Tx::Failed(_) => return Err(unknown_report(report_id)),
                Tx::Busy => backoff(attempt).await,
            }
        }
        Err(contention("storing an alert", report_id))
    }

    /// When a stored alert was received.
    async fn received_at(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<DateTime<Utc>, StoreError> {
        let what = format!("alert {message_id} of report {report_id}");
        let item = self
            .get(
                &self.report_table,
                report_pk(report_id),
                alert_sk(message_id),
            )
            .await?
            .ok_or_else(|| StoreError::Transient(format!("{what} vanished after it was stored")))?;
        Ok(time(get_n(&item, "received_at", &what)?, &what)?)
    }
}

fn unknown_report(report_id: &str) -> StoreError {
    StoreError::Permanent(format!("report {report_id} not found"))
}

fn contention(doing: &str, report_id: &str) -> StoreError {
    StoreError::Transient(format!(
        "{doing} for report {report_id} lost {MAX_ATTEMPTS} races in a row"
    ))
}

/// The keys that say whether a report knows each hash: its claim and its first mention.
fn knowledge_keys(report_id: &str, hashes: &[&str]) -> Vec<Key> {
    hashes
        .iter()
        .flat_map(|h| {
            [
                (report_pk(report_id), attr_sk(h)),
                (report_pk(report_id), mention_sk(h)),
            ]
        })
        .collect()
}

/// Whether `found` (read at [`knowledge_keys`]) has every hash claimed, or first named
/// by a message other than `message_id`.
fn knows_all(
    found: &HashMap<Key, Item>,
    report_id: &str,
    message_id: &str,
    hashes: &[&str],
) -> Result<bool, AwsError> {
    for h in hashes {
        if found.contains_key(&(report_pk(report_id), attr_sk(h))) {
            continue;
        }
        match found.get(&(report_pk(report_id), mention_sk(h))) {
            Some(item) if get_s(item, "message_id", "mention item")? != message_id => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The distinct hashes, in order.
fn distinct(hashes: &[String]) -> Vec<&str> {
    let mut seen = HashSet::new();
    hashes
        .iter()
        .map(String::as_str)
        .filter(|h| seen.insert(*h))
        .collect()
}

/// Encodes a published report for its item: JSON, or gzipped JSON when large.
fn encode_report(report: &Report) -> Result<(&'static str, AttributeValue), StoreError> {
    let what = format!("report {} version {}", report.id, report.version);
    let json = to_json(report, &what)?;
    if json.len() <= MAX_REPORT_BYTES {
        return Ok(("report", s(json)));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zipped = gz
        .write_all(json.as_bytes())
        .and_then(|()| gz.finish())
        .map_err(|e| StoreError::Permanent(format!("cannot gzip {what}: {e}")))?;
    if zipped.len() > MAX_REPORT_BYTES {
        return Err(StoreError::Permanent(format!(
            "{what} is too large to store: {} bytes of JSON, {} gzipped, over the {MAX_REPORT_BYTES} bytes a DynamoDB item can take",
            json.len(),
            zipped.len()
        )));
    }
    Ok(("report_gz", AttributeValue::B(Blob::new(zipped))))
}

/// Decodes the report of a published item.
fn decode_report(item: &Item, what: &str) -> Result<Report, AwsError> {
    let json = match (item.get("report"), item.get("report_gz")) {
        (Some(AttributeValue::S(json)), _) => json.clone(),
        (_, Some(AttributeValue::B(zipped))) => {
            let mut json = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(zipped.as_ref()),
                &mut json,
            )
            .map_err(|e| malformed(what, format!("report_gz: {e}")))?;
            json
        }
        _ => return Err(malformed(what, "neither report nor report_gz is present")),
    };
    serde_json::from_str(&json).map_err(|e| malformed(what, format!("report: {e}")))
}

#[async_trait]
impl Store for DynamoStore {
    async fn open_or_join(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<ReportMeta, StoreError> {
        let (now_ms, since_ms) = window_bounds(now, window);
        let own = (report_pk(candidate_id), META_SK.to_string());
        let open = (open_pk(alert_id), OPEN_SK.to_string());
        for attempt in 0..MAX_ATTEMPTS {
            let found = self.batch_get(&[own.clone(), open.clone()], None).await?;
            // A retried receive of the message that opened the report.
            if let Some(item) = found.get(&own) {
                return Ok(meta_from(candidate_id, item)?);
            }
            if let Some(item) = found.get(&open) {
                let current = open_from(alert_id, item)?;
                if current.created_at > since_ms {
                    let item = self
                        .get(
                            &self.report_table,
                            report_pk(&current.report_id),
                            META_SK.into(),
                        )
                        .await?
                        .ok_or_else(|| missing_meta(&current.report_id, alert_id))?;
                    return Ok(meta_from(&current.report_id, &item)?);
                }
            }
            let items = self.opening(
                alert_id,
                message_id,
                candidate_id,
                now_ms,
                since_ms,
                window,
                None,
            )?;
            match self.transact(items).await? {
                Tx::Done => {
                    return Ok(ReportMeta {
                        id: candidate_id.to_string(),
                        alert_id: alert_id.to_string(),
                        created_at: time(now_ms, "report opening time")?,
                        opened_by: message_id.to_string(),
                        published_version: 0,
                        alert_count: 0,
                        last_published_at: None,
                    })
                }
                // Someone opened a report (or this one) meanwhile: read again.
                Tx::Failed(_) => debug!(alert_id, "lost the race to open a report"),
                Tx::Busy => backoff(attempt).await,
            }
        }
        Err(contention("opening", candidate_id))
    }

    /// The same as the default (open or join, put, check attributes), in two or three
    /// round trips instead of four, and with the true `received_at` of a redelivery.
    async fn open_join_and_put(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        alert: &Alert,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Admission, StoreError> {
        let (now_ms, since_ms) = window_bounds(now, window);
        let json = to_json(alert, &format!("alert of message {message_id}"))?;
        let hashes: Vec<String> = alert.attributes.iter().map(Attribute::hash).collect();
        let hashes = distinct(&hashes);
        let new_alert = NewAlert {
            message_id,
            json: &json,
            received_ms: now_ms,
            hashes: &hashes,
        };
        let own = (report_pk(candidate_id), META_SK.to_string());
        let open = (open_pk(alert_id), OPEN_SK.to_string());
        for attempt in 0..MAX_ATTEMPTS {
            let found = self.batch_get(&[own.clone(), open.clone()], None).await?;
            let report_id = if found.contains_key(&own) {
                candidate_id.to_string()
            } else {
                let current = found
                    .get(&open)
                    .map(|item| open_from(alert_id, item))
                    .transpose()?
                    .filter(|o| o.created_at > since_ms);
                match current {
                    Some(o) => o.report_id,
                    None => {
                        // Open the report and store its first alert in one transaction.
                        let items = self.opening(
                            alert_id,
                            message_id,
                            candidate_id,
                            now_ms,
                            since_ms,
                            window,
                            Some(&new_alert),
                        )?;
                        match self.transact_all(items).await? {
                            Tx::Done => {
                                return Ok(Admission {
                                    meta: ReportMeta {
                                        id: candidate_id.to_string(),
                                        alert_id: alert_id.to_string(),
                                        created_at: time(now_ms, "report opening time")?,
                                        opened_by: message_id.to_string(),
                                        published_version: 0,
                                        alert_count: 0,
                                        last_published_at: None,
                                    },
                                    inserted: true,
                                    received_at: time(now_ms, "receive time")?,
                                    knows_all_attributes: hashes.is_empty(),
                                })
                            }
                            Tx::Failed(_) => {
                                debug!(alert_id, "lost the race to open a report");
                                continue;
                            }
                            Tx::Busy => {
                                backoff(attempt).await;
                                continue;
                            }
                        }
                    }
                }
            };
            // The report's meta, this message's alert if stored before, and what the
            // report knows of the attributes. Read before the put, which changes none
            // of it for this message (its own mentions never count).
            let meta_key = (report_pk(&report_id), META_SK.to_string());
            let alert_key = (report_pk(&report_id), alert_sk(message_id));
            let mut keys = vec![meta_key.clone(), alert_key.clone()];
            keys.extend(knowledge_keys(&report_id, &hashes));
            let found = self.batch_get(&keys, Some(ADMISSION_PROJECTION)).await?;
            let meta_item = found
                .get(&meta_key)
                .ok_or_else(|| missing_meta(&report_id, alert_id))?;
            let meta = meta_from(&report_id, meta_item)?;
            let knows_all_attributes = knows_all(&found, &report_id, message_id, &hashes)?;
            let (inserted, received_at) = match found.get(&alert_key) {
                Some(item) => {
                    let what = format!("alert {message_id} of report {report_id}");
                    (false, time(get_n(item, "received_at", &what)?, &what)?)
                }
                None => match self.put_alert_item(&report_id, &new_alert).await? {
                    AlertPut::Inserted => (true, time(now_ms, "receive time")?),
                    AlertPut::AlreadyStored => {
                        (false, self.received_at(&report_id, message_id).await?)
                    }
                },
            };
            return Ok(Admission {
                meta,
                inserted,
                received_at,
                knows_all_attributes,
            });
        }
        Err(contention("opening", candidate_id))
    }

    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        let item = self
            .get(&self.report_table, report_pk(report_id), META_SK.into())
            .await?;
        Ok(item.map(|i| meta_from(report_id, &i)).transpose()?)
    }

    async fn put_alert(
        &self,
        report_id: &str,
        message_id: &str,
        alert: &Alert,
        received_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = to_json(alert, &format!("alert of message {message_id}"))?;
        let hashes: Vec<String> = alert.attributes.iter().map(Attribute::hash).collect();
        let alert = NewAlert {
            message_id,
            json: &json,
            received_ms: millis(received_at),
            hashes: &distinct(&hashes),
        };
        let put = self.put_alert_item(report_id, &alert).await?;
        Ok(matches!(put, AlertPut::Inserted))
    }

    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let item = self
            .get(
                &self.report_table,
                report_pk(report_id),
                alert_sk(message_id),
            )
            .await?;
        let what = format!("alert {message_id} of report {report_id}");
        Ok(item.map(|i| get_json(&i, &what)).transpose()?)
    }

    async fn knows_attributes(
        &self,
        report_id: &str,
        message_id: &str,
        attribute_hashes: &[String],
    ) -> Result<bool, StoreError> {
        let hashes = distinct(attribute_hashes);
        if hashes.is_empty() {
            return Ok(true);
        }
        let keys = knowledge_keys(report_id, &hashes);
        let found = self.batch_get(&keys, Some(&[PK, SK, "message_id"])).await?;
        Ok(knows_all(&found, report_id, message_id, &hashes)?)
    }

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
                    .set_key(Some(Self::key(meta_key.0.clone(), META_SK)))
                    .update_expression("SET #count = :next, #exp = :exp")
                    .condition_expression("#count = :claimed")
                    .expression_attribute_names("#count", "attribute_count")
                    .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                    .expression_attribute_values(":next", n(claimed + 1))
                    .expression_attribute_values(":claimed", n(claimed))
                    .expression_attribute_values(":exp", self.ttl())
                    .build(),
            )?;
            let mut item = Self::key(attr_key.0.clone(), attr_key.1.clone());
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
                Tx::Failed(_) => debug!(report_id, attribute = %hash, "claim raced"),
                Tx::Busy => backoff(attempt).await,
            }
        }
        Err(contention("claiming an attribute", report_id))
    }

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
        let hash = record.attribute.hash();
        let json = to_json(record, &format!("inspection by {}", record.inspector))?;
        self.upsert_keeping_place(
            report_pk(report_id),
            inspection_sk(&hash, &record.inspector),
            json,
        )
        .await
    }

    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError> {
        let items = self.query_partition(report_pk(report_id)).await?;
        let mut meta = None;
        let mut alerts = Vec::new();
        let mut attributes = Vec::new();
        let mut sections = Vec::new();
        let mut inspections = Vec::new();
        for item in &items {
            let sk = get_s(item, SK, "report item")?;
            let what = format!("item {sk} of report {report_id}");
            if sk == META_SK {
                let last_result = match item.get("last_result") {
                    Some(AttributeValue::S(j)) => Some(
                        serde_json::from_str::<ReportResult>(j)
                            .map_err(|e| malformed(&what, format!("last_result: {e}")))?,
                    ),
                    _ => None,
                };
                meta = Some((meta_from(report_id, item)?, last_result));
            } else if let Some(message_id) = sk.strip_prefix("alert#") {
                let order = (
                    get_n::<i64>(item, "received_at", &what)?,
                    get_n::<i64>(item, "stored_ns", &what)?,
                    message_id,
                );
                alerts.push((order, get_json::<Alert>(item, &what)?));
            } else if sk.starts_with("attr#") {
                attributes.push((
                    get_n::<i64>(item, "seq", &what)?,
                    get_json::<Attribute>(item, &what)?,
                ));
            } else if sk.starts_with("section#") {
                sections.push((
                    (get_n::<i64>(item, "first_ns", &what)?, sk),
                    get_json::<ReportSection>(item, &what)?,
                ));
            } else if sk.starts_with("inspection#") {
                inspections.push((
                    (get_n::<i64>(item, "first_ns", &what)?, sk),
                    get_json::<InspectionRecord>(item, &what)?,
                ));
            }
        }
        let Some((meta, last_result)) = meta else {
            return Ok(None);
        };
        alerts.sort_by(|a, b| a.0.cmp(&b.0));
        attributes.sort_by_key(|a| a.0);
        sections.sort_by(|a, b| a.0.cmp(&b.0));
        inspections.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(ReportState {
            meta,
            alerts: alerts.into_iter().map(|a| a.1).collect(),
            attributes: attributes.into_iter().map(|a| a.1).collect(),
            sections: sections.into_iter().map(|s| s.1).collect(),
            inspections: inspections.into_iter().map(|i| i.1).collect(),
            last_result,
        }))
    }

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
                    .set_key(Some(Self::key(report_pk(&report.id), META_SK)))
                    .update_expression(
                        "SET #version = :version, #at = :at, #result = :result, #exp = :exp",
                    )
                    .condition_expression("#version = :previous")
                    .expression_attribute_names("#version", "published_version")
                    .expression_attribute_names("#at", "last_published_at")
                    .expression_attribute_names("#result", "last_result")
                    .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                    .expression_attribute_values(":version", n(version))
                    .expression_attribute_values(":previous", n(previous))
                    .expression_attribute_values(":at", n(published_at))
                    .expression_attribute_values(":result", s(result.clone()))
                    .expression_attribute_values(":exp", self.ttl())
                    .build(),
            )?;
            let mut item = Self::key(published_pk(&report.id), published_sk(version));
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
                Tx::Failed(_) => break,
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

    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError> {
        let what = format!("published version {version} of report {report_id}");
        let Some(item) = self
            .get(
                &self.report_table,
                published_pk(report_id),
                published_sk(version),
            )
            .await?
        else {
            return Ok(None);
        };
        let publisher = get_s(&item, "publisher", &what)?.to_string();
        Ok(Some((decode_report(&item, &what)?, publisher)))
    }

    /// Keeps the record under its ID and stage: a retried failure of the same input
    /// overwrites its record instead of adding one (SQLite keeps every attempt).
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        let json = to_json(record, &format!("error record {}", record.id))?;
        let mut item = Self::key(error_pk(&record.id), error_sk(&record.stage));
        item.extend([
            ("json".to_string(), s(json)),
            ("id".to_string(), s(record.id.clone())),
            ("stage".to_string(), s(record.stage.clone())),
            ("at".to_string(), n(millis(record.at))),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        self.client
            .put_item()
            .table_name(&self.error_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "PutItem", e))?;
        Ok(())
    }
}

impl DynamoStore {
    /// Writes `json` at a key, keeping the time it was first written (its place in
    /// the report) when it replaces an earlier write.
    async fn upsert_keeping_place(
        &self,
        pk: String,
        sk: String,
        json: String,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.report_table)
            .set_key(Some(Self::key(pk, sk)))
            .update_expression(
                "SET #json = :json, #first = if_not_exists(#first, :now), #exp = :exp",
            )
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

fn missing_meta(report_id: &str, alert_id: &str) -> StoreError {
    StoreError::Permanent(
        malformed(
            &format!("open report {report_id} of {alert_id}"),
            "its meta item is missing",
        )
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_put_fixed_width_parts_before_free_text() {
        assert_eq!(section_sk("ab", 7, "geo#ip"), "section#ab#000007#geo#ip");
        assert_eq!(published_sk(12), "v#0000000012");
        assert!(published_sk(9) < published_sk(10));
    }

    #[test]
    fn a_small_report_stays_json_and_a_large_one_is_gzipped_both_decode() {
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "id": "r1", "alerts": [], "attributes": [], "sections": [],
            "result": {"severity": "safe", "reason": ""}, "status": "published",
            "created_at": "2024-01-01T00:00:00Z", "version": 1
        }))
        .unwrap();
        let (field, body) = encode_report(&report).unwrap();
        assert_eq!(field, "report");
        let item: Item = HashMap::from([(field.to_string(), body)]);
        assert_eq!(decode_report(&item, "t").unwrap(), report);

        report.result.reason = "x".repeat(500_000);
        let (field, body) = encode_report(&report).unwrap();
        assert_eq!(field, "report_gz");
        let item: Item = HashMap::from([(field.to_string(), body)]);
        assert_eq!(decode_report(&item, "t").unwrap(), report);
    }

    #[test]
    fn a_malformed_meta_item_is_told_apart_naming_the_field() {
        let item: Item = HashMap::from([("alert_id".to_string(), s("a"))]);
        let err = meta_from("r1", &item).unwrap_err();
        assert!(err.to_string().contains("created_at"), "{err}");
        assert!(matches!(StoreError::from(err), StoreError::Permanent(_)));
    }
}
