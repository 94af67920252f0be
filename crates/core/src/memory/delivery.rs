//! [`MemoryStore`] as a [`DeliveryLog`]: deliveries by (report, version, emitter) and
//! memos by (report, emitter), behind one mutex so that each call is atomic.

use std::collections::BTreeMap;
use std::sync::{MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::MemoryStore;
use crate::error::StoreError;
use crate::ports::{check_memo, DeliveryLog, DeliveryRecord};

/// The deliveries and memos of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct DeliveryState {
    /// First delivery time by (report, version, emitter): ordered as `deliveries` answers.
    delivered: BTreeMap<(String, u32, String), DateTime<Utc>>,
    /// Memos by (report, emitter).
    memos: BTreeMap<(String, String), Value>,
}

impl MemoryStore {
    fn delivery_state(&self) -> MutexGuard<'_, DeliveryState> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeliveryLog for MemoryStore {
    async fn record_delivery(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.delivery_state();
        let key = (report_id.to_string(), version, emitter.to_string());
        if state.delivered.contains_key(&key) {
            return Ok(false);
        }
        state.delivered.insert(key, at);
        Ok(true)
    }

    async fn delivered(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
    ) -> Result<bool, StoreError> {
        let key = (report_id.to_string(), version, emitter.to_string());
        Ok(self.delivery_state().delivered.contains_key(&key))
    }

    async fn deliveries(&self, report_id: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(self
            .delivery_state()
            .delivered
            .iter()
            .filter(|((r, _, _), _)| r == report_id)
            .map(|((r, v, e), at)| DeliveryRecord {
                report_id: r.clone(),
                version: *v,
                emitter: e.clone(),
                delivered_at: *at,
            })
            .collect())
    }

    async fn recall(&self, report_id: &str, emitter: &str) -> Result<Option<Value>, StoreError> {
        let key = (report_id.to_string(), emitter.to_string());
        Ok(self.delivery_state().memos.get(&key).cloned())
    }

    async fn remember(
        &self,
        report_id: &str,
        emitter: &str,
        memo: &Value,
    ) -> Result<(), StoreError> {
        check_memo(memo)?;
        self.delivery_state()
            .memos
            .insert((report_id.to_string(), emitter.to_string()), memo.clone());
        Ok(())
    }
}
