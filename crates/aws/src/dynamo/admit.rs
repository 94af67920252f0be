//! [`AdmitStore`] on DynamoDB: an alert's arrival in two or three round trips. One
//! BatchGetItem finds the report to join; then either one transaction opens the
//! report with the alert, or one BatchGetItem reads what the report knows and one
//! transaction stores the alert.

use std::collections::{HashMap, HashSet};

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Alert, Attribute};
use alertresponder_core::ports::{aggregation_bounds, Admission, AdmitStore, Arrival, ReportMeta};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use tracing::debug;

use super::client::{backoff, built, Tx, MAX_ATTEMPTS};
use super::codec::{
    get_json, get_s, get_time, malformed, meta_from, meta_item, n, now_ns, open_from, s, time,
    to_json,
};
use super::keys::{
    alert_sk, attr_sk, key, mention_sk, open_pk, report_pk, Item, Key, META_SK, OPEN_SK,
};
use super::{contention, unknown_report, DynamoStore, PK, SK, TTL_ATTRIBUTE};
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
    "alert_count",
    "attribute_count",
    "last_published_at",
    "received_at",
    "message_id",
];

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
            // Open the report and store its first alert in one transaction.
            let opened_at = time(now_ms, "report opening time")?;
            let meta = ReportMeta::opened(
                arrival.candidate_id,
                arrival.alert_id,
                opened_at,
                arrival.message_id,
            );
            let items = self.opening(&meta, since_ms, arrival, &alert)?;
            match self.transact_all(items).await? {
                Tx::Done => {
                    return Ok(Admission {
                        meta,
                        inserted: true,
                        received_at: opened_at,
                        // Its own mentions never count.
                        knows_all_attributes: hashes.is_empty(),
                    });
                }
                // Someone opened a report (or this one) meanwhile: look again.
                Tx::Failed(_) => {
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

    /// Stores the alert in an existing report, once per message. What it answers is
    /// read before the put, which changes none of it for this message (its own
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
        let (inserted, received_at) = match found.get(&alert_key) {
            Some(item) => {
                let what = format!("alert {} of report {report_id}", alert.message_id);
                (false, get_time(item, "received_at", &what)?)
            }
            None => match self.put_alert_item(report_id, alert).await? {
                AlertPut::Inserted => (true, time(alert.received_ms, "receive time")?),
                AlertPut::AlreadyStored => {
                    (false, self.received_at(report_id, alert.message_id).await?)
                }
            },
        };
        Ok(Admission {
            meta,
            inserted,
            received_at,
            knows_all_attributes,
        })
    }

    /// The writes that open a report, all or nothing: the alert ID's open-report item
    /// (only if none is open inside the window), the meta item, the first alert and
    /// its mentions.
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
        // Stored with its first alert counted; the admission answers the meta before it.
        let mut stored = key(report_pk(&meta.id), META_SK);
        stored.extend(meta_item(&ReportMeta {
            alert_count: 1,
            ..meta.clone()
        }));
        stored.insert(TTL_ATTRIBUTE.to_string(), self.ttl());
        let mut items = vec![
            TransactWriteItem::builder().put(put_open).build(),
            self.put_new(stored)?,
            self.put_new(self.alert_item(&meta.id, alert))?,
        ];
        items.extend(self.mentions(&meta.id, alert)?);
        Ok(items)
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
                        .set_key(Some(key(report_pk(report_id), mention_sk(h))))
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
                    .set_key(Some(key(report_pk(report_id), META_SK)))
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
