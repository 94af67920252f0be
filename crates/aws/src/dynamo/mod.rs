//! [`DynamoStore`]: the store ports on two DynamoDB tables.
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
//! | `report#<report_id>`   | `meta`                              | `alert_id`, `created_at`, `opened_by`, `published_version`, `attribute_count` (counted claims: the cap's gate), `last_published_at`, `last_result` |
//! | `report#<report_id>`   | `alert#<message_id>`                | an alert (`json`), `received_at`, `stored_ns` |
//! | `report#<report_id>`   | `mention#<attribute hash>`          | the first message to name an attribute: `message_id` |
//! | `report#<report_id>`   | `attr#<attribute hash>`             | a claimed attribute (`json`), `claimer`, `seq` (claim order: the clock in ns), `inspected` (true once its inspection finished) |
//! | `report#<report_id>`   | `section#<hash>#<index:06>#<author>` | a section (`json`), `first_ns`             |
//! | `report#<report_id>`   | `inspection#<hash>#<inspector>`     | an inspection record (`json`), `first_ns`   |
//! | `report#<report_id>`   | `delivery#<version:010>#<emitter>`  | a version delivered to an emitter: `version`, `emitter`, `delivered_at` (the first delivery's; a replay does not move it) |
//! | `report#<report_id>`   | `memo#<emitter>`                    | what an emitter remembers about the report (`json`, at most `ports::MAX_MEMO_BYTES`: the GitHub issue it opened) |
//! | `published#<report_id>`| `v#<version:010>`                   | a published version (`report` JSON, or `report_gz` gzipped JSON), `publisher` |
//! | `answer#<cache key>`   | `answer`                            | an inspector's answer kept across reports (`json`, or `json_gz` gzipped JSON), `expires_ms`; TTL = its expiry |
//! | `limit#<limit key>`    | `w#<window start ms>`               | a rate window: `calls` granted in it; TTL = the window's end + 1 h |
//!
//! Error table: pk `error#<record id>`, sk `stage#<stage>`, the record as `json`.
//!
//! Times are epoch milliseconds (Numbers); `stored_ns` / `first_ns` are the wall
//! clock in nanoseconds when an item was first written, to give back content in
//! the order it was stored. Published versions live in a partition of their own so
//! that loading a report (one Query on `report#<id>`) never reads them; what the
//! handlers decide on (last published version) is on the meta item, one GetItem.
//!
//! Who writes what, so that a burst on one alert key lands whole (see `admit`):
//!
//! | writer                | items                                                      | how |
//! |-----------------------|------------------------------------------------------------|-----|
//! | receptor, opening     | `open`, `meta`; then the first `alert#`, its `mention#`s   | one transaction of two items (only the first alerts of a key contend); then as a join |
//! | receptor, joining     | its own `alert#`, the `mention#`s nobody wrote before      | conditional PutItems, no transaction; never the meta |
//! | claim (dispatch, inspect) | `attr#`, then the meta's `attribute_count`             | a conditional PutItem, then an UpdateItem `ADD` conditional on the cap (else the `attr#` is deleted); no transaction |
//! | inspect               | `section#`, `inspection#`, then `inspected` on `attr#`     | UpdateItem each |
//! | review                | `published#…/v#…`, the meta's `published_version`          | one transaction, conditional on the version before |
//! | emitter fan-out       | `delivery#…` after a target took a version, `memo#…`       | a PutItem only if the key is new (the first record wins); a PutItem replacing the memo |
//!
//! Nothing keeps an alert count: `report_counts` counts the `alert#` and `attr#` items
//! (a Query with `Select=COUNT` each); the meta's `attribute_count` only gates claims
//! at the cap (it may lag the claims, see `claims`). Meta items written by earlier
//! builds carry an `alert_count`; it is ignored.
//!
//! Every item is written with `expires_at` = now + the record TTL, but for two written
//! at the opening of a report: the `alert#…/open` item and the meta item expire the
//! aggregation window later, so that they outlive the window, and the meta every
//! alert the window admits, whatever the TTL; no later write moves the meta's.
//! The cache's items are the exception: an answer expires when it does, a rate window
//! an hour after it ends (see `cache`).
//!
//! Layout: `keys` builds the keys above, `codec` turns items into
//! records and back, `client` holds the request helpers (consistent reads,
//! transactions told apart from races, backoff), and one module per port implements
//! it: `admit`, `claims`, `findings`, `read`, `publish`, `errors`; `cache` is the
//! inspectors' answer cache and rate limiter, `delivery` the delivery log (a report's
//! deliveries are one Query on the `delivery#` prefix of its partition).

use std::time::Duration;

use alertresponder_core::error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

use self::client::MAX_ATTEMPTS;
use self::codec::n;

mod admit;
mod cache;
mod claims;
mod client;
mod codec;
mod delivery;
mod errors;
mod findings;
mod keys;
mod publish;
mod read;

/// Name of the partition key attribute of both tables.
pub const PK: &str = "pk";
/// Name of the sort key attribute of both tables.
pub const SK: &str = "sk";
/// Name of the TTL attribute of both tables (Number, epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The store ports on DynamoDB: a report table and an error table (see the module
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

    /// `expires_at` for an item written now.
    fn ttl(&self) -> AttributeValue {
        self.expires_at(Duration::ZERO)
    }
}

/// A report the caller names but the store does not have.
fn unknown_report(report_id: &str) -> StoreError {
    StoreError::Permanent(format!("report {report_id} not found"))
}

/// An optimistic write that lost every race: worth a retry later.
fn contention(doing: &str, report_id: &str) -> StoreError {
    StoreError::Transient(format!(
        "{doing} for report {report_id} lost {MAX_ATTEMPTS} races in a row"
    ))
}
