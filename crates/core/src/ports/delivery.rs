//! The delivery log: which published version reached which emitter, and what an
//! emitter remembers about a report between versions (the GitHub issue it opened).
//!
//! A delivery is keyed by (report, version, emitter): recording it twice keeps the
//! first record, so a runtime that retries a whole batch (the AWS fan-out after one
//! target failed) skips the targets already reached instead of sending again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;

/// The largest memo an emitter may keep about one report, in bytes of JSON.
pub const MAX_MEMO_BYTES: usize = 4096;

/// One version's delivery to one emitter, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The report.
    pub report_id: String,
    /// The published version delivered.
    pub version: u32,
    /// The emitter's name.
    pub emitter: String,
    /// When it was first delivered (a replay does not move it).
    pub delivered_at: DateTime<Utc>,
}

/// Deliveries and emitter memos, kept by the store.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Records that `version` of `report_id` reached `emitter` at `at`: `true` when this
    /// is the first record of that (report, version, emitter), `false` when one existed
    /// (which is kept unchanged).
    async fn record_delivery(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Whether `version` of `report_id` is recorded as delivered to `emitter`.
    async fn delivered(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
    ) -> Result<bool, StoreError>;
    /// Every recorded delivery of `report_id`, ordered by version, then emitter name.
    async fn deliveries(&self, report_id: &str) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// What `emitter` remembered about `report_id`, if anything.
    async fn recall(&self, report_id: &str, emitter: &str) -> Result<Option<Value>, StoreError>;
    /// Keeps `memo` for `emitter` about `report_id`, replacing the previous one. A memo
    /// larger than [`MAX_MEMO_BYTES`] of JSON is refused (`StoreError::Permanent`).
    async fn remember(
        &self,
        report_id: &str,
        emitter: &str,
        memo: &Value,
    ) -> Result<(), StoreError>;
}

/// Refuses a memo over [`MAX_MEMO_BYTES`]; every adapter calls it first.
pub fn check_memo(memo: &Value) -> Result<String, StoreError> {
    let json = serde_json::to_string(memo)
        .map_err(|e| StoreError::Permanent(format!("cannot encode an emitter memo: {e}")))?;
    if json.len() > MAX_MEMO_BYTES {
        return Err(StoreError::Permanent(format!(
            "an emitter memo is {} bytes of JSON, over the {MAX_MEMO_BYTES} allowed",
            json.len()
        )));
    }
    Ok(json)
}
