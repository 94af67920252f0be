//! [`AdmitStore`] on DynamoDB: an alert's arrival. One BatchGetItem finds the report
//! to join; then either one transaction opens the report, or the alert joins the
//! report. Either way the alert itself is then stored by the same writes of its own
//! items only.
//!
//! # Why a burst on one alert key lands whole
//!
//! Only the *opening* of a report is a transaction, of two items: the alert ID's
//! open-report item (conditional: none open inside the window) and the meta item, all
//! or nothing: what makes one report per alert ID. Only the first alerts of a key
//! contend there; the losers find the report on their next look and join it. The
//! opener then stores its alert and mentions as a joining alert does (below, steps 2
//! and 3), outside the transaction (a transaction bills two write units per item).
//! A crash between the transaction and the alert put leaves a report without its
//! first alert: the redelivery of the message finds its own report (the report ID
//! is derived from the message: [`Arrival::candidate_id`]), joins it, and stores the
//! alert and its mentions then.
//!
//! A *joining* alert takes no transaction and writes no shared item:
//!
//! 1. one BatchGetItem reads the report's meta, this message's alert item, and the
//!    claim (`attr#`) and first mention (`mention#`) of each attribute it names;
//! 2. a PutItem of its alert item (`alert#<message_id>`), conditional on
//!    `attribute_not_exists`: the message's own key, so only a redelivery of the same
//!    message can meet it (then `inserted = false`, and the first delivery's item and
//!    receive time stand);
//! 3. a PutItem of each mention the read did not find, each conditional on
//!    `attribute_not_exists`: a failed condition means another message named the
//!    attribute first, which is the answer we wanted anyway.
//!
//! Nothing counts alerts: [`ReadStore::report_counts`](alertresponder_core::ports::ReadStore::report_counts)
//! counts the `alert#` items when asked, so 200 concurrent receptors of one report
//! write 200 distinct alert items and never the same item twice, and DynamoDB has no
//! transaction to cancel (`TransactionConflict`) under them.
//!
//! It is safe because every write is to an item keyed by the input and conditional on
//! its absence, so any interleaving and any retry converge on the same items, and
//! because the alert is written before its mentions: a mention always names a message
//! whose alert is stored, so the dispatch of that alert (scheduled by its receptor,
//! or by its redelivery) claims the attribute.
//!
//! - A crash between the alert put and the mention puts leaves the alert stored and
//!   some mentions missing. The redelivery finds the alert (`inserted = false`) and
//!   still writes every mention the read did not find, the same conditional puts:
//!   idempotent, and a mention another message wrote meanwhile is left to it.
//! - `knows_all_attributes` is decided on the read of step 1, before this call writes,
//!   and never counts a mention written by this message itself: a message whose
//!   receptor died before scheduling its dispatch is told on its redelivery that the
//!   report does not know its attributes, and dispatches them. While its mentions are
//!   missing, another message naming those attributes is told the same and dispatches
//!   them itself (claims keep one inspection per attribute): the safe side.
//! - Two messages first naming one attribute at once both read no mention, both
//!   dispatch (one claim wins), and one mention is kept.
//! - The meta item is only read: a join can no longer push its TTL, so the opening
//!   gives it one that outlives every alert the window admits (see the module
//!   documentation of `dynamo`).

use std::collections::{HashMap, HashSet};

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Alert, Attribute};
use alertresponder_core::ports::{aggregation_bounds, Admission, AdmitStore, Arrival, ReportMeta};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use tracing::debug;

use super::client::{backoff, built, Tx, MAX_ATTEMPTS};
use super::codec::{
    get_json, get_s, get_time, malformed, meta_from, meta_item, n, now_ns, open_from, s, time,
    to_json,
};
use super::keys::{
    alert_sk, attr_sk, key, mention_sk, open_pk, report_pk, Item, Key, META_SK, OPEN_SK,
};
use super::{contention, DynamoStore, PK, SK, TTL_ATTRIBUTE};
use crate::error::AwsError;

/// Attributes of the meta item an arrival needs, plus an alert's `received_at` and a
/// mention's `message_id`.
const ADMISSION_PROJECTION: &[&str] = &[
    PK,
    SK,
    "alert_id",
    "created_at",
    "opened_by",
    "published_version",
    "last_published_at",
    "received_at",
    "message_id",
];

/// Most mention puts of one alert in flight at once.
const MENTION_PUTS_IN_FLIGHT: usize = 16;

/// An alert to store, with what its item and mentions are made of.
struct NewAlert<'a> {
    message_id: &'a str,
    json: &'a str,
    received_ms: i64,
    /// Its distinct attribute hashes.
    hashes: &'a [&'a str],
}

#[async_trait]
impl AdmitStore for DynamoStore {
    async fn admit(&self, arrival: &Arrival<'_>) -> Result<Admission, StoreError> {
        let (now_ms, since_ms) = aggregation_bounds(arrival.now, arrival.window);
        let json = to_json(
            arrival.alert,
            &format!("alert of message {}", arrival.message_id),
        )?;
        let hashes: Vec<String> = arrival
            .alert
            .attributes
            .iter()
            .map(Attribute::hash)
            .collect();
        let hashes = distinct(&hashes);
        let alert = NewAlert {
            message_id: arrival.message_id,
            json: &json,
            received_ms: now_ms,
            hashes: &hashes,
        };
        for attempt in 0..MAX_ATTEMPTS {
            if let Some(report_id) = self.report_to_join(arrival, since_ms).await? {
                return self.join(&report_id, arrival.alert_id, &alert).await;
            }
            // Open the report in one transaction, then store its first alert.
            let opened_at = time(now_ms, "report opening time")?;
            let meta = ReportMeta::opened(
                arrival.candidate_id,
                arrival.alert_id,
                opened_at,
                arrival.message_id,
            );
            let items = self.opening(&meta, since_ms, arrival, &alert)?;
            match self.transact(items).await? {
                Tx::Done => {
                    // As a join stores it (a crash before: the opener's redelivery
                    // joins its own report and stores it then). Nothing was read.
                    let (inserted, received_at) =
                        self.store_alert(&meta.id, &alert, &HashMap::new()).await?;
                    return Ok(Admission {
                        meta,
                        inserted,
                        received_at,
                        // Its own mentions never count.
                        knows_all_attributes: hashes.is_empty(),
                    });
                }
                // Someone opened a report (or this one) meanwhile: look again.
                Tx::Failed => {
                    debug!(
                        alert_id = arrival.alert_id,
                        "lost the race to open a report"
                    )
                }
                Tx::Busy => backoff(attempt).await,
            }
        }
        Err(contention("opening", arrival.candidate_id))
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
}

impl DynamoStore {
    /// The report an arrival joins: its own (a retry of the message that opened it,
    /// even once its window has passed and another report took over), else the one
    /// open for its alert ID inside the window. `None`: it opens one.
    async fn report_to_join(
        &self,
        arrival: &Arrival<'_>,
        since_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let own = (report_pk(arrival.candidate_id), META_SK.to_string());
        let open = (open_pk(arrival.alert_id), OPEN_SK.to_string());
        let found = self.batch_get(&[own.clone(), open.clone()], None).await?;
        if found.contains_key(&own) {
            return Ok(Some(arrival.candidate_id.to_string()));
        }
        Ok(found
            .get(&open)
            .map(|item| open_from(arrival.alert_id, item))
            .transpose()?
            .filter(|o| o.created_at > since_ms)
            .map(|o| o.report_id))
    }

    /// Stores the alert in an existing report, once per message, with no transaction
    /// and no write to a shared item (see the module documentation). What it answers
    /// is read before the writes, which change none of it for this message (its own
    /// mentions never count): the report's meta, this message's alert if stored
    /// before, and what the report knows of the attributes.
    async fn join(
        &self,
        report_id: &str,
        alert_id: &str,
        alert: &NewAlert<'_>,
    ) -> Result<Admission, StoreError> {
        let meta_key = (report_pk(report_id), META_SK.to_string());
        let alert_key = (report_pk(report_id), alert_sk(alert.message_id));
        let mut keys = vec![meta_key.clone(), alert_key.clone()];
        keys.extend(knowledge_keys(report_id, alert.hashes));
        let found = self.batch_get(&keys, Some(ADMISSION_PROJECTION)).await?;
        let meta_item = found
            .get(&meta_key)
            .ok_or_else(|| missing_meta(report_id, alert_id))?;
        let meta = meta_from(report_id, meta_item)?;
        let knows_all_attributes = knows_all(&found, report_id, alert.message_id, alert.hashes)?;
        let (inserted, received_at) = self.store_alert(report_id, alert, &found).await?;
        Ok(Admission {
            meta,
            inserted,
            received_at,
            knows_all_attributes,
        })
    }

    /// Stores the alert (unless `found` has it), then every mention `found` does not
    /// have, each put conditional on its absence (see the module documentation, steps
    /// 2 and 3): whether this call stored the alert, and when it was received.
    async fn store_alert(
        &self,
        report_id: &str,
        alert: &NewAlert<'_>,
        found: &HashMap<Key, Item>,
    ) -> Result<(bool, DateTime<Utc>), StoreError> {
        let alert_key = (report_pk(report_id), alert_sk(alert.message_id));
        let stored = match found.get(&alert_key) {
            Some(item) => {
                let what = format!("alert {} of report {report_id}", alert.message_id);
                (false, get_time(item, "received_at", &what)?)
            }
            None => {
                if self
                    .put_if_absent(self.alert_item(report_id, alert))
                    .await?
                {
                    (true, time(alert.received_ms, "receive time")?)
                } else {
                    // A redelivery of this message stored it meanwhile.
                    (false, self.received_at(report_id, alert.message_id).await?)
                }
            }
        };
        // Every mention the read did not find: on a redelivery, what a crash of an
        // earlier delivery left out.
        let unmentioned: Vec<&str> = alert
            .hashes
            .iter()
            .copied()
            .filter(|h| !found.contains_key(&(report_pk(report_id), mention_sk(h))))
            .collect();
        self.put_mentions(report_id, alert.message_id, unmentioned)
            .await?;
        Ok(stored)
    }

    /// The transaction that opens a report: the alert ID's open-report item (only if
    /// none is open inside the window) and the meta item.
    fn opening(
        &self,
        meta: &ReportMeta,
        since_ms: i64,
        arrival: &Arrival<'_>,
        alert: &NewAlert<'_>,
    ) -> Result<Vec<TransactWriteItem>, AwsError> {
        let mut open = key(open_pk(&meta.alert_id), OPEN_SK);
        open.extend([
            ("report_id".to_string(), s(&meta.id)),
            ("created_at".to_string(), n(alert.received_ms)),
            ("opened_by".to_string(), s(&meta.opened_by)),
            (TTL_ATTRIBUTE.to_string(), self.expires_at(arrival.window)),
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
        // The meta item is never written by a join: it expires with the open-report
        // item, after every alert the window admits. `attribute_count` starts the
        // claims' count (see `claims`).
        let mut stored = key(report_pk(&meta.id), META_SK);
        stored.extend(meta_item(meta));
        stored.insert("attribute_count".to_string(), n(0));
        stored.insert(TTL_ATTRIBUTE.to_string(), self.expires_at(arrival.window));
        Ok(vec![
            TransactWriteItem::builder().put(put_open).build(),
            self.put_new(stored)?,
        ])
    }

    /// The item of a stored alert.
    fn alert_item(&self, report_id: &str, alert: &NewAlert<'_>) -> Item {
        let mut item = key(report_pk(report_id), alert_sk(alert.message_id));
        item.extend([
            ("json".to_string(), s(alert.json)),
            ("message_id".to_string(), s(alert.message_id)),
            ("received_at".to_string(), n(alert.received_ms)),
            ("stored_ns".to_string(), n(now_ns())),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        item
    }

    /// The item recording `message_id` as the first to name an attribute.
    fn mention_item(&self, report_id: &str, message_id: &str, hash: &str) -> Item {
        let mut item = key(report_pk(report_id), mention_sk(hash));
        item.extend([
            ("message_id".to_string(), s(message_id)),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        item
    }

    /// Records `message_id` as the first to name each of `hashes`, one conditional
    /// PutItem each (a few in flight at once): where another message did first, its
    /// mention stays. Idempotent: a retry writes only what is still missing.
    async fn put_mentions(
        &self,
        report_id: &str,
        message_id: &str,
        hashes: Vec<&str>,
    ) -> Result<(), StoreError> {
        // Each put holds its own item: built here, so the stream borrows only `self`.
        let puts: Vec<_> = hashes
            .into_iter()
            .map(|h| self.put_if_absent(self.mention_item(report_id, message_id, h)))
            .collect();
        stream::iter(puts)
            .buffer_unordered(MENTION_PUTS_IN_FLIGHT)
            .try_for_each(|_first| async { Ok(()) })
            .await?;
        Ok(())
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
        Ok(get_time(&item, "received_at", &what)?)
    }
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

/// The open-report item names a report whose meta item is gone: the table was
/// written by something else than this store.
fn missing_meta(report_id: &str, alert_id: &str) -> StoreError {
    StoreError::Permanent(
        malformed(
            &format!("open report {report_id} of {alert_id}"),
            "its meta item is missing",
        )
        .to_string(),
    )
}
