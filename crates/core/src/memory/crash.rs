//! [`CrashingStore`]: a store that dies once, at a chosen call, to prove that a step
//! retried after a crash between any two of its store calls ends where a clean run ends.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::StoreError;
use crate::model::{Alert, Attribute, ErrorRecord, InspectionRecord, Report, ReportSection};
use crate::ports::{
    Admission, AdmitStore, Arrival, Claim, ClaimStore, DeliveryLog, DeliveryRecord, ErrorLog,
    ErrorSink, FindingStore, PublishMark, PublishStore, ReadStore, ReportCounts, ReportMeta,
    ReportState, Store,
};

/// When the injected crash strikes the chosen call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// Before the call reaches the store: nothing of it is written.
    Before,
    /// After the store did the call, before its caller hears of it (the answer is lost).
    After,
}

/// Forwards every store call to `inner`, counting them; once armed with
/// [`CrashingStore::crash_at`], fails the chosen call once with a transient error.
pub struct CrashingStore {
    inner: Arc<dyn Store>,
    calls: AtomicU32,
    armed: Mutex<Option<(u32, Crash)>>,
}

impl std::fmt::Debug for CrashingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrashingStore")
            .field("calls", &self.calls)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl CrashingStore {
    /// Wraps `inner`; nothing is armed.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: AtomicU32::new(0),
            armed: Mutex::new(None),
        }
    }

    /// Store calls since the wrapper was made or last armed.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Restarts the count, with nothing armed.
    pub fn disarm(&self) {
        self.calls.store(0, Ordering::SeqCst);
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Restarts the count and fails the `call`th call from now (1 is the next one), once.
    pub fn crash_at(&self, call: u32, when: Crash) {
        self.calls.store(0, Ordering::SeqCst);
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = Some((call, when));
    }

    /// Counts a call; fails it now if it is the one armed to crash before, or says
    /// whether it must fail once done.
    fn enter(&self) -> Result<bool, StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut armed = self.armed.lock().unwrap_or_else(PoisonError::into_inner);
        match *armed {
            Some((call, when)) if call == n => {
                *armed = None;
                match when {
                    Crash::Before => Err(crashed(n)),
                    Crash::After => Ok(true),
                }
            }
            _ => Ok(false),
        }
    }

    fn leave<T>(&self, crash: bool, out: Result<T, StoreError>) -> Result<T, StoreError> {
        let out = out?;
        if crash {
            return Err(crashed(self.calls()));
        }
        Ok(out)
    }
}

fn crashed(call: u32) -> StoreError {
    StoreError::Transient(format!("crash injected at store call {call}"))
}

#[async_trait]
impl AdmitStore for CrashingStore {
    async fn admit(&self, arrival: &Arrival<'_>) -> Result<Admission, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.admit(arrival).await)
    }

    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.get_alert(report_id, message_id).await)
    }
}

#[async_trait]
impl ClaimStore for CrashingStore {
    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError> {
        let crash = self.enter()?;
        let out = self
            .inner
            .claim_attribute(report_id, attribute, claimer, cap)
            .await;
        self.leave(crash, out)
    }
}

#[async_trait]
impl FindingStore for CrashingStore {
    async fn put_section(&self, section: &ReportSection, index: usize) -> Result<(), StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.put_section(section, index).await)
    }

    async fn put_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.put_inspection(report_id, record).await)
    }

    async fn put_last_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        let crash = self.enter()?;
        self.leave(
            crash,
            self.inner.put_last_inspection(report_id, record).await,
        )
    }

    async fn mark_inspected(
        &self,
        report_id: &str,
        attribute: &Attribute,
    ) -> Result<(), StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.mark_inspected(report_id, attribute).await)
    }
}

#[async_trait]
impl ReadStore for CrashingStore {
    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.report_meta(report_id).await)
    }

    async fn report_counts(&self, report_id: &str) -> Result<Option<ReportCounts>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.report_counts(report_id).await)
    }

    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.load_report(report_id).await)
    }

    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.published_report(report_id, version).await)
    }
}

#[async_trait]
impl PublishStore for CrashingStore {
    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.mark_published(report, publisher).await)
    }
}

#[async_trait]
impl ErrorSink for CrashingStore {
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.put_error(record).await)
    }
}

#[async_trait]
impl ErrorLog for CrashingStore {
    async fn get_error(&self, id: &str, stage: &str) -> Result<Option<ErrorRecord>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.get_error(id, stage).await)
    }
}

#[async_trait]
impl DeliveryLog for CrashingStore {
    async fn record_delivery(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let crash = self.enter()?;
        let out = self
            .inner
            .record_delivery(report_id, version, emitter, at)
            .await;
        self.leave(crash, out)
    }

    async fn delivered(
        &self,
        report_id: &str,
        version: u32,
        emitter: &str,
    ) -> Result<bool, StoreError> {
        let crash = self.enter()?;
        self.leave(
            crash,
            self.inner.delivered(report_id, version, emitter).await,
        )
    }

    async fn deliveries(&self, report_id: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.deliveries(report_id).await)
    }

    async fn recall(&self, report_id: &str, emitter: &str) -> Result<Option<Value>, StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.recall(report_id, emitter).await)
    }

    async fn remember(
        &self,
        report_id: &str,
        emitter: &str,
        memo: &Value,
    ) -> Result<(), StoreError> {
        let crash = self.enter()?;
        self.leave(crash, self.inner.remember(report_id, emitter, memo).await)
    }
}
