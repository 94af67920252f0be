//! [`MemoryStore`]: every store port on plain maps behind one mutex.
//!
//! Each call takes the lock once and never across an await, so every call is atomic
//! (what SQLite gets from a transaction and DynamoDB from a conditional write). The
//! rules are those of the SQLite and DynamoDB stores: the same contract suite
//! (`fixtures::contract`) runs on all three.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::model::{
    Alert, Attribute, ErrorRecord, InspectionRecord, Report, ReportResult, ReportSection,
};
use crate::ports::{
    aggregation_bounds, Admission, AdmitStore, Arrival, Claim, ClaimStore, ErrorLog, ErrorSink,
    FindingStore, PublishMark, PublishStore, ReadStore, ReportCounts, ReportMeta, ReportState,
};
use std::collections::HashSet;

/// The store ports in memory: for tests, and for trying the pipeline without a file.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// The answer cache and the rate windows (`memory::cache`), under their own lock.
    pub(super) cache: Mutex<super::cache::CacheState>,
    /// Deliveries and emitter memos (`memory::delivery`), under their own lock.
    pub(super) deliveries: Mutex<super::delivery::DeliveryState>,
}

#[derive(Debug, Default)]
struct State {
    /// The open report of each alert ID: (report ID, opened at in epoch ms).
    open: HashMap<String, (String, i64)>,
    /// Reports that exist: what `report_meta` answers.
    reports: HashMap<String, Kept>,
    /// What was stored under a report ID. Findings written for a report that does not
    /// exist are kept here and never read, as the other stores keep such rows.
    content: HashMap<String, Content>,
    /// Error records by (id, stage).
    errors: Ordered<(String, String), ErrorRecord>,
}

/// A report's meta and what it remembers of its last publication.
#[derive(Debug)]
struct Kept {
    meta: ReportMeta,
    last_result: Option<ReportResult>,
    published: BTreeMap<u32, (Report, String)>,
}

#[derive(Debug, Default)]
struct Content {
    /// Alerts by message ID.
    alerts: Ordered<String, (Alert, DateTime<Utc>)>,
    /// The first message to name each attribute hash.
    mentions: HashMap<String, String>,
    /// Claimed attributes by hash: (attribute, claimer).
    attributes: Ordered<String, (Attribute, String)>,
    /// Hashes of claimed attributes whose inspection finished.
    inspected: HashSet<String>,
    /// Sections by (attribute hash, author, index).
    sections: Ordered<(String, String, usize), ReportSection>,
    /// Inspection records by (attribute hash, inspector).
    inspections: Ordered<(String, String), InspectionRecord>,
}

/// Values in the order their key was first stored; a value stored again under a
/// known key replaces the old one in its place.
#[derive(Debug)]
struct Ordered<K, V> {
    index: HashMap<K, usize>,
    values: Vec<V>,
}

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<K: Hash + Eq, V> Ordered<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        self.index.get(key).map(|&i| &self.values[i])
    }

    fn upsert(&mut self, key: K, value: V) {
        match self.index.get(&key) {
            Some(&i) => self.values[i] = value,
            None => {
                self.index.insert(key, self.values.len());
                self.values.push(value);
            }
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }
}

impl<K, V: Clone> Ordered<K, V> {
    fn to_vec(&self) -> Vec<V> {
        self.values.clone()
    }
}

fn unknown_report(report_id: &str) -> StoreError {
    StoreError::Permanent(format!("report {report_id} not found"))
}

/// Epoch milliseconds back to a time: the precision the other stores keep.
fn at_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Permanent(format!("time {ms} ms is out of range")))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left the maps whole (every call
        // checks before it writes), so the state is still worth reading.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every error record kept, in the order first kept.
    pub fn errors(&self) -> Vec<ErrorRecord> {
        self.lock().errors.to_vec()
    }

    /// How many reports exist.
    pub fn report_count(&self) -> usize {
        self.lock().reports.len()
    }

    /// The IDs of every report, sorted.
    pub fn report_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().reports.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// What the browse adapter (`memory::browse`) reads beyond the ports, in storage
    /// order: each alert's message ID and arrival, each claim's hash and claimer.
    pub(super) fn provenance(&self, report_id: &str) -> Provenance {
        let state = self.lock();
        let Some(content) = state.content.get(report_id) else {
            return Provenance::default();
        };
        let mut arrivals: Vec<(usize, String)> = content
            .alerts
            .index
            .iter()
            .map(|(message_id, &i)| (i, message_id.clone()))
            .collect();
        arrivals.sort_unstable();
        let mut claims: Vec<(usize, String)> = content
            .attributes
            .index
            .iter()
            .map(|(hash, &i)| (i, hash.clone()))
            .collect();
        claims.sort_unstable();
        Provenance {
            arrivals: arrivals
                .into_iter()
                .map(|(i, m)| (m, content.alerts.values[i].1))
                .collect(),
            claims: claims
                .into_iter()
                .map(|(i, h)| (h, content.attributes.values[i].1.clone()))
                .collect(),
        }
    }
}

/// See [`MemoryStore::provenance`].
#[derive(Debug, Default)]
pub(super) struct Provenance {
    /// (message ID, received at) of each alert.
    pub arrivals: Vec<(String, DateTime<Utc>)>,
    /// (attribute hash, claimer) of each claim.
    pub claims: Vec<(String, String)>,
}

impl State {
    /// The report `arrival` opens or joins: its own if the message opened one before,
    /// else the open report of the alert ID inside the window, else a new one.
    fn open_or_join(&mut self, arrival: &Arrival<'_>) -> Result<String, StoreError> {
        // A retried receive of the message that opened the report.
        if self.reports.contains_key(arrival.candidate_id) {
            return Ok(arrival.candidate_id.to_string());
        }
        let (now_ms, since_ms) = aggregation_bounds(arrival.now, arrival.window);
        if let Some((report_id, created_ms)) = self.open.get(arrival.alert_id) {
            if *created_ms > since_ms {
                return Ok(report_id.clone());
            }
        }
        let meta = ReportMeta::opened(
            arrival.candidate_id,
            arrival.alert_id,
            at_millis(now_ms)?,
            arrival.message_id,
        );
        self.reports.insert(
            arrival.candidate_id.to_string(),
            Kept {
                meta,
                last_result: None,
                published: BTreeMap::new(),
            },
        );
        self.open.insert(
            arrival.alert_id.to_string(),
            (arrival.candidate_id.to_string(), now_ms),
        );
        Ok(arrival.candidate_id.to_string())
    }
}

#[async_trait]
impl AdmitStore for MemoryStore {
    async fn admit(&self, arrival: &Arrival<'_>) -> Result<Admission, StoreError> {
        let mut state = self.lock();
        let report_id = state.open_or_join(arrival)?;
        let (now_ms, _) = aggregation_bounds(arrival.now, arrival.window);
        let now = at_millis(now_ms)?;
        let State {
            reports, content, ..
        } = &mut *state;
        let meta = reports
            .get(&report_id)
            .ok_or_else(|| unknown_report(&report_id))?
            .meta
            .clone();
        let content = content.entry(report_id).or_default();
        let message_id = arrival.message_id.to_string();
        let hashes: Vec<String> = arrival
            .alert
            .attributes
            .iter()
            .map(Attribute::hash)
            .collect();
        let (inserted, received_at) = match content.alerts.get(&message_id) {
            Some((_, received_at)) => (false, *received_at),
            None => {
                content
                    .alerts
                    .upsert(message_id.clone(), (arrival.alert.clone(), now));
                for hash in &hashes {
                    content
                        .mentions
                        .entry(hash.clone())
                        .or_insert_with(|| message_id.clone());
                }
                (true, now)
            }
        };
        let knows_all_attributes = hashes.iter().all(|h| {
            content.attributes.get(h).is_some()
                || content.mentions.get(h).is_some_and(|by| *by != message_id)
        });
        Ok(Admission {
            meta,
            inserted,
            received_at,
            knows_all_attributes,
        })
    }

    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let state = self.lock();
        Ok(state
            .content
            .get(report_id)
            .and_then(|c| c.alerts.get(&message_id.to_string()))
            .map(|(alert, _)| alert.clone()))
    }
}

#[async_trait]
impl ClaimStore for MemoryStore {
    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError> {
        let hash = attribute.hash();
        let mut state = self.lock();
        let State {
            reports, content, ..
        } = &mut *state;
        let content = content.entry(report_id.to_string()).or_default();
        if let Some((_, by)) = content.attributes.get(&hash) {
            return Ok(if by == claimer {
                Claim::New
            } else {
                Claim::Seen
            });
        }
        if !reports.contains_key(report_id) {
            return Err(unknown_report(report_id));
        }
        if count(content.attributes.len()) >= cap {
            return Ok(Claim::CapReached);
        }
        content
            .attributes
            .upsert(hash, (attribute.clone(), claimer.to_string()));
        Ok(Claim::New)
    }
}

#[async_trait]
impl FindingStore for MemoryStore {
    async fn put_section(&self, section: &ReportSection, index: usize) -> Result<(), StoreError> {
        let key = (section.attribute.hash(), section.author.clone(), index);
        self.lock()
            .content
            .entry(section.report_id.clone())
            .or_default()
            .sections
            .upsert(key, section.clone());
        Ok(())
    }

    async fn put_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        let key = (record.attribute.hash(), record.inspector.clone());
        self.lock()
            .content
            .entry(report_id.to_string())
            .or_default()
            .inspections
            .upsert(key, record.clone());
        Ok(())
    }

    async fn put_last_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError> {
        // One lock would be the same: each call is atomic, and the mark comes last.
        self.put_inspection(report_id, record).await?;
        self.mark_inspected(report_id, &record.attribute).await
    }

    async fn mark_inspected(
        &self,
        report_id: &str,
        attribute: &Attribute,
    ) -> Result<(), StoreError> {
        let hash = attribute.hash();
        let mut state = self.lock();
        if let Some(content) = state.content.get_mut(report_id) {
            if content.attributes.get(&hash).is_some() {
                content.inspected.insert(hash);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ReadStore for MemoryStore {
    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        Ok(self.lock().reports.get(report_id).map(|k| k.meta.clone()))
    }

    async fn report_counts(&self, report_id: &str) -> Result<Option<ReportCounts>, StoreError> {
        let state = self.lock();
        if !state.reports.contains_key(report_id) {
            return Ok(None);
        }
        Ok(Some(state.content.get(report_id).map_or_else(
            ReportCounts::default,
            |c| ReportCounts {
                alerts: count(c.alerts.len()),
                attributes: count(c.attributes.len()),
            },
        )))
    }

    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError> {
        let state = self.lock();
        let Some(kept) = state.reports.get(report_id) else {
            return Ok(None);
        };
        let empty = Content::default();
        let content = state.content.get(report_id).unwrap_or(&empty);
        Ok(Some(ReportState {
            meta: kept.meta.clone(),
            alerts: content.alerts.values.iter().map(|a| a.0.clone()).collect(),
            attributes: content
                .attributes
                .values
                .iter()
                .map(|a| a.0.clone())
                .collect(),
            pending: content
                .attributes
                .values
                .iter()
                .filter(|a| !content.inspected.contains(&a.0.hash()))
                .map(|a| a.0.clone())
                .collect(),
            sections: content.sections.to_vec(),
            inspections: content.inspections.to_vec(),
            last_result: kept.last_result.clone(),
        }))
    }

    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError> {
        Ok(self
            .lock()
            .reports
            .get(report_id)
            .and_then(|k| k.published.get(&version))
            .cloned())
    }
}

#[async_trait]
impl PublishStore for MemoryStore {
    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError> {
        let mut state = self.lock();
        let kept = state
            .reports
            .get_mut(&report.id)
            .ok_or_else(|| unknown_report(&report.id))?;
        let version = report.version;
        if kept.meta.published_version.checked_add(1) == Some(version) {
            kept.published
                .insert(version, (report.clone(), publisher.to_string()));
            kept.meta.published_version = version;
            // The latest publication time, as SQLite reads it (max over the versions).
            kept.meta.last_published_at = kept.meta.last_published_at.max(report.published_at);
            kept.last_result = Some(report.result.clone());
            return Ok(PublishMark::Published);
        }
        match kept.published.get(&version) {
            Some((_, by)) => Ok(PublishMark::AlreadyPublished {
                publisher: by.clone(),
            }),
            None => Err(StoreError::Permanent(format!(
                "cannot publish report {} version {version}: the last published version is {}",
                report.id, kept.meta.published_version
            ))),
        }
    }
}

#[async_trait]
impl ErrorSink for MemoryStore {
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        self.lock()
            .errors
            .upsert((record.id.clone(), record.stage.clone()), record.clone());
        Ok(())
    }
}

#[async_trait]
impl ErrorLog for MemoryStore {
    async fn get_error(&self, id: &str, stage: &str) -> Result<Option<ErrorRecord>, StoreError> {
        Ok(self
            .lock()
            .errors
            .get(&(id.to_string(), stage.to_string()))
            .cloned())
    }
}
