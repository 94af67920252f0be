//! Property: however receives interleave, one alert ID never has two open reports
//! within the aggregation window, and a retried receive of an opener finds its report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use alertresponder_core::fixtures::alert;
use alertresponder_core::ports::{AdmitStore, Arrival, ReportMeta};
use alertresponder_embedded::SqliteStore;
use chrono::{DateTime, Utc};
use proptest::prelude::*;

const WINDOW_SECS: i64 = 100;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

/// One receive in a batch: the key it is for, and whether it retries an earlier opener.
#[derive(Debug, Clone)]
struct Receive {
    key: u8,
    retry: bool,
}

fn batches() -> impl Strategy<Value = Vec<(i64, Vec<Receive>)>> {
    let receive =
        (0u8..3, prop::bool::weighted(0.2)).prop_map(|(key, retry)| Receive { key, retry });
    prop::collection::vec(
        (
            0i64..(2 * WINDOW_SECS),
            prop::collection::vec(receive, 1..6),
        ),
        1..12,
    )
}

async fn check(batches: Vec<(i64, Vec<Receive>)>) -> Result<(), TestCaseError> {
    let store = SqliteStore::open_in_memory().unwrap();
    let window = Duration::from_secs(WINDOW_SECS as u64);
    // Per key: the reports it had, in order: (report id, opened at, opening message).
    let mut reports: HashMap<u8, Vec<(String, DateTime<Utc>, String)>> = HashMap::new();
    let mut now_secs = 0;
    let mut counter = 0;
    for (dt, receives) in batches {
        now_secs += dt;
        let now = at(now_secs);
        let mut calls = Vec::new();
        for r in receives {
            let opener = reports.get(&r.key).and_then(|v| v.last()).cloned();
            let message = match (&opener, r.retry) {
                (Some((_, _, msg)), true) => msg.clone(),
                _ => {
                    counter += 1;
                    format!("m{counter}")
                }
            };
            let alert_id = format!("alert:{}", r.key);
            let candidate = format!("report-{alert_id}-{message}");
            let store = store.clone();
            calls.push(tokio::spawn(async move {
                let meta = store
                    .admit(&Arrival {
                        alert_id: &alert_id,
                        message_id: &message,
                        candidate_id: &candidate,
                        alert: &alert("r", &["10.0.0.1"]),
                        now,
                        window,
                    })
                    .await
                    .map(|admission| admission.meta);
                (r.key, message, meta)
            }));
        }
        let mut in_batch: HashMap<u8, Vec<(String, ReportMeta)>> = HashMap::new();
        for call in calls {
            let (key, message, meta) = call.await.unwrap();
            let meta = meta.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&meta.alert_id, &format!("alert:{key}"));
            in_batch.entry(key).or_default().push((message, meta));
        }
        for (key, results) in in_batch {
            let history = reports.entry(key).or_default();
            let is_known = |id: &str| history.iter().any(|(known, _, _)| known == id);
            let mut opened: Vec<&ReportMeta> = results
                .iter()
                .map(|(_, meta)| meta)
                .filter(|meta| !is_known(&meta.id))
                .collect();
            opened.dedup_by(|a, b| a.id == b.id);
            // At most one new report per key at one instant, whatever the interleaving.
            prop_assert!(opened.len() <= 1, "{:?}", opened);
            for (message, meta) in &results {
                prop_assert!(meta.created_at <= now);
                if let Some((_, at_, by)) = history.iter().find(|(id, _, _)| id == &meta.id) {
                    // A report opened earlier: joined within its window, or the opener's retry.
                    prop_assert!(
                        *at_ > now - window || by == message,
                        "joined {} opened at {} at {}",
                        meta.id,
                        at_,
                        now
                    );
                }
            }
            if let Some(meta) = opened.first() {
                // A new report only once the key's last report's window has passed.
                if let Some((_, last, _)) = history.last() {
                    prop_assert!(
                        *last <= now - window,
                        "opened a second report at {} while one opened at {} was open",
                        now,
                        last
                    );
                }
                prop_assert_eq!(meta.created_at, now);
                prop_assert!(results.iter().any(|(m, _)| *m == meta.opened_by));
                // Every fresh receive of the batch joined it.
                for (message, other) in &results {
                    prop_assert!(
                        other.id == meta.id || other.opened_by == *message,
                        "{} went to {} while {} was open",
                        message,
                        other.id,
                        meta.id
                    );
                }
                history.push((meta.id.clone(), meta.created_at, meta.opened_by.clone()));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn one_alert_id_never_has_two_open_reports_within_the_window(batches in batches()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(check(batches))?;
    }
}
