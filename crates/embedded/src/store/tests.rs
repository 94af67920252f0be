//! Behaviours only SQLite shows (the file, its schema, retention, several connections,
//! the CLI's lists); the store behaviours every store shares run from the contract suite.

use std::time::Duration;

use alertresponder_core::error::StoreError;
use alertresponder_core::fixtures::*;
use alertresponder_core::model::{Alert, ErrorRecord, Job, Severity};
use alertresponder_core::ports::*;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::admit::{open_or_join_in, put_alert_in, ReceiveIds};
use super::sql::millis;
use super::*;

const HOUR: Duration = Duration::from_secs(3600);

/// Receives `a` as the receptor of `msg` does, opening `rep-{msg}` if it opens a report.
async fn admitted(
    store: &SqliteStore,
    alert_id: &str,
    msg: &str,
    a: &Alert,
    now: DateTime<Utc>,
) -> Admission {
    let candidate = format!("rep-{msg}");
    store
        .admit(&Arrival {
            alert_id,
            message_id: msg,
            candidate_id: &candidate,
            alert: a,
            now,
            window: HOUR,
        })
        .await
        .unwrap()
}

/// Opens or joins the report of `alert_id` without storing an alert: the first half
/// of [`AdmitStore::admit`], alone.
async fn opened(store: &SqliteStore, alert_id: &str, msg: &str, now: DateTime<Utc>) -> ReportMeta {
    let ids = ReceiveIds::new(alert_id, msg, &format!("rep-{msg}"));
    let (now_ms, since) = aggregation_bounds(now, HOUR);
    store
        .write(move |tx| open_or_join_in(tx, &ids, now_ms, since))
        .await
        .unwrap()
}

/// Stores `a` for `msg` in a report: the second half of [`AdmitStore::admit`], alone.
async fn put_alert(
    store: &SqliteStore,
    report_id: &str,
    msg: &str,
    a: &Alert,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (report_id, msg) = (report_id.to_string(), msg.to_string());
    let json = serde_json::to_string(a).unwrap();
    let hashes: Vec<String> = a.attributes.iter().map(|x| x.hash()).collect();
    let at = millis(at);
    store
        .write(move |tx| put_alert_in(tx, &report_id, &msg, &json, &hashes, at))
        .await
        .map(|(inserted, _)| inserted)
        .map_err(StoreError::from)
}

#[tokio::test]
async fn schema_is_created_on_first_open_and_data_survives_reopen() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("nested").join("ar.db");
    {
        let store = SqliteStore::open(&path, Durability::Full).unwrap();
        let first = admitted(&store, "alert:a", "m1", &alert("r", &["10.0.0.1"]), t(0)).await;
        assert!(first.inserted);
        store.put_error(&error_record("m2", 1)).await.unwrap();
    }
    let raw = Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(raw);

    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
    let state = store.load_report("rep-m1").await.unwrap().unwrap();
    assert_eq!(
        store.report_counts("rep-m1").await.unwrap().unwrap().alerts,
        1
    );
    assert_eq!(state.alerts, vec![alert("r", &["10.0.0.1"])]);
    assert_eq!(store.count_errors().await.unwrap(), 1);
    // Still joinable after the restart.
    let joined = admitted(&store, "alert:a", "m3", &alert("r", &[]), t(10)).await;
    assert_eq!(joined.meta.id, "rep-m1");
}

#[tokio::test]
async fn retention_deletes_old_reports_with_their_records_but_not_those_with_queued_work() {
    use crate::queue::JobQueue;
    use alertresponder_core::ports::{ManualClock, Scheduler};
    let store = SqliteStore::open_in_memory().unwrap();
    let a = alert("r", &["10.0.0.1"]);
    let old = admitted(&store, "alert:old", "m1", &a, t(0)).await.meta;
    store
        .claim_attribute(&old.id, &a.attributes[0], "d", 10)
        .await
        .unwrap();
    store
        .put_section(&section(&old.id, "10.0.0.1", "geo", "JP"), 0)
        .await
        .unwrap();
    store
        .mark_inspected(&old.id, &a.attributes[0])
        .await
        .unwrap();
    store
        .mark_published(&report(&old.id, 1, Severity::Safe), "p")
        .await
        .unwrap();
    let busy = admitted(&store, "alert:busy", "m2", &a, t(0)).await.meta;
    let new = admitted(&store, "alert:new", "m3", &a, t(5000)).await.meta;
    let clock = std::sync::Arc::new(ManualClock::new(t(0)));
    let queue = JobQueue::new(store.clone(), clock, vec![]);
    let job = Job::Review {
        report_id: busy.id.clone(),
        version: 1,
    };
    queue.schedule(&job, t(6000)).await.unwrap();
    store
        .put_error(&ErrorRecord {
            id: "e".into(),
            stage: "receive".into(),
            error: "x".into(),
            field: None,
            input: "{}".into(),
            input_truncated: false,
            at: t(0),
        })
        .await
        .unwrap();

    assert_eq!(store.prune_before(t(1000), 100).await.unwrap(), 1);
    assert!(store.report_meta(&old.id).await.unwrap().is_none());
    assert!(store.get_alert(&old.id, "m1").await.unwrap().is_none());
    assert!(
        store.report_meta(&busy.id).await.unwrap().is_some(),
        "queued work keeps a report"
    );
    assert!(store.report_meta(&new.id).await.unwrap().is_some());
    assert_eq!(store.count_errors().await.unwrap(), 0);
    for table in [
        "alerts",
        "mentions",
        "attributes",
        "inspected",
        "sections",
        "published",
    ] {
        let left = store
            .read(move |tx| {
                sql::count(
                    tx,
                    &format!("SELECT count(*) FROM {table} WHERE report_id = 'rep-m1'"),
                )
            })
            .await
            .unwrap();
        assert_eq!(left, 0, "{table} rows of the pruned report");
    }
    // The alert ID can open a fresh report afterwards.
    let fresh = admitted(&store, "alert:old", "m4", &a, t(1500)).await;
    assert_eq!(fresh.meta.opened_by, "m4");
    assert!(
        !fresh.knows_all_attributes,
        "the old report's claims went with it"
    );
}

#[tokio::test]
async fn a_file_written_before_inspections_were_marked_opens_with_its_claims_inspected() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("ar.db");
    {
        let store = SqliteStore::open(&path, Durability::Normal).unwrap();
        let a = alert("r", &["10.0.0.1", "10.0.0.2"]);
        let id = admitted(&store, "alert:a", "m1", &a, t(0)).await.meta.id;
        for x in &a.attributes {
            store.claim_attribute(&id, x, "d", 10).await.unwrap();
        }
    }
    // As a file of schema version 1 written before the `inspected` table existed.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("DROP TABLE inspected").unwrap();
    drop(raw);
    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
    let state = store.load_report("rep-m1").await.unwrap().unwrap();
    assert_eq!(state.attributes.len(), 2);
    assert!(
        state.pending.is_empty(),
        "claims of the older build count as inspected: {:?}",
        state.pending
    );
    // Claims made from now on are pending until marked; the fill does not run again.
    store
        .claim_attribute("rep-m1", &attr("10.0.0.3"), "d", 10)
        .await
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
    let state = store.load_report("rep-m1").await.unwrap().unwrap();
    assert_eq!(state.pending, [attr("10.0.0.3")]);
    let version: i64 = store
        .read(|tx| Ok(sql::row1(tx, "PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(version, 1, "no new schema version");
}

#[tokio::test]
async fn a_file_of_this_version_missing_a_later_index_gains_it_on_open() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("ar.db");
    drop(SqliteStore::open(&path, Durability::Normal).unwrap());
    // As a file written before the index was added to the schema.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("DROP INDEX errors_by_key").unwrap();
    drop(raw);
    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
    store.put_error(&error_record("e1", 0)).await.unwrap();
    drop(store);
    let raw = Connection::open(&path).unwrap();
    let indexes: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'errors_by_key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1);
}

#[tokio::test]
async fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("ar.db");
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    let err = SqliteStore::open(&path, Durability::Normal).unwrap_err();
    assert!(matches!(err, EmbeddedError::Corrupt(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receives_of_one_alert_id_open_one_report() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("ar.db");
    // Separate connections to one file, as separate processes would have.
    let stores: Vec<SqliteStore> = (0..4)
        .map(|_| SqliteStore::open(&path, Durability::Normal).unwrap())
        .collect();
    let calls = (0..8).map(|i| {
        let store = stores[i % stores.len()].clone();
        tokio::spawn(async move {
            let a = alert("r", &["10.0.0.1"]);
            admitted(&store, "alert:same", &format!("m{i}"), &a, t(0)).await
        })
    });
    let admissions: Vec<Admission> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let first = &admissions[0].meta;
    assert!(
        admissions.iter().all(|a| a.meta.id == first.id
            && a.meta.opened_by == first.opened_by
            && a.meta.created_at == first.created_at),
        "{admissions:?}"
    );
    assert_eq!(stores[0].count_reports().await.unwrap(), 1);
    // Each admission saw the report as the one before left it: no two interleaved,
    // so exactly one was the first to name the attribute they all name.
    let first_to_name = admissions
        .iter()
        .filter(|a| !a.knows_all_attributes)
        .count();
    assert_eq!(first_to_name, 1, "{admissions:?}");
    let counts = stores[3].report_counts(&first.id).await.unwrap().unwrap();
    assert_eq!(counts.alerts, 8);
}

#[tokio::test]
async fn an_alert_for_an_unknown_report_is_a_permanent_error_and_stores_nothing() {
    // Admission opens the report in the same transaction, so only a broken file gets
    // here; the guard keeps an alert from outliving its report.
    let store = SqliteStore::open_in_memory().unwrap();
    let err = put_alert(&store, "nope", "m1", &alert("r", &["10.0.0.1"]), t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err}");
    assert_eq!(store.get_alert("nope", "m1").await.unwrap(), None);
    let mentions = store
        .read(|tx| sql::count(tx, "SELECT count(*) FROM mentions"))
        .await
        .unwrap();
    assert_eq!(mentions, 0);
}

#[tokio::test]
async fn errors_are_listed_newest_first() {
    let store = SqliteStore::open_in_memory().unwrap();
    for (i, id) in ["e1", "e2", "e3"].iter().enumerate() {
        store.put_error(&error_record(id, i as i64)).await.unwrap();
    }
    let listed = store.list_errors(2).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e3", "e2"]);
    assert_eq!(listed[0], error_record("e3", 2));
    assert_eq!(store.count_errors().await.unwrap(), 3);
    // A retried failure replaces its record, which is then the newest.
    store.put_error(&error_record("e1", 9)).await.unwrap();
    let listed = store.list_errors(10).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e3", "e2"]);
    assert_eq!(listed[0], error_record("e1", 9));
    assert_eq!(store.count_errors().await.unwrap(), 3);
}

#[tokio::test]
async fn the_latest_published_version_is_the_last_one_marked() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = admitted(&store, "alert:a", "m1", &alert("r", &[]), t(0))
        .await
        .meta
        .id;
    assert_eq!(store.latest_published(&id).await.unwrap(), None);
    let v1 = report(&id, 1, Severity::Safe);
    store.mark_published(&v1, "review:1").await.unwrap();
    assert_eq!(store.latest_published(&id).await.unwrap(), Some(v1));
    let v2 = report(&id, 2, Severity::Urgent);
    store.mark_published(&v2, "review:2").await.unwrap();
    assert_eq!(store.latest_published(&id).await.unwrap(), Some(v2));
    assert_eq!(store.latest_published("nope").await.unwrap(), None);
}

#[tokio::test]
async fn reports_are_listed_newest_first_with_title_and_severity() {
    let store = SqliteStore::open_in_memory().unwrap();
    let old = admitted(&store, "alert:a", "m1", &alert("Port scan", &[]), t(0))
        .await
        .meta
        .id;
    let mut unnamed = alert("x", &[]);
    unnamed.rule_name = String::new();
    admitted(&store, "alert:a", "m2", &alert("Later", &[]), t(1)).await;
    store
        .mark_published(&report(&old, 1, Severity::Urgent), "p")
        .await
        .unwrap();
    let new = admitted(&store, "alert:b", "m3", &unnamed, t(100))
        .await
        .meta
        .id;
    // A report whose alert is not stored (yet): listed with no title.
    let same_time = opened(&store, "alert:c", "m4", t(100)).await.id;

    let listed = store.list_reports(10, 0).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [same_time.as_str(), new.as_str(), old.as_str()]);
    assert_eq!(listed[0].title, "");
    assert_eq!(listed[1].title, "guardduty: x-id");
    assert_eq!(listed[1].severity, None);
    assert_eq!(
        listed[2],
        ReportSummary {
            id: old.clone(),
            alert_id: "alert:a".into(),
            created_at: t(0),
            published_version: 1,
            severity: Some(Severity::Urgent),
            alert_count: 2,
            title: "guardduty: Port scan".into(),
        }
    );
    let page = store.list_reports(1, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, new);
    assert_eq!(store.count_reports().await.unwrap(), 3);
}

#[test]
fn durability_reads_its_config_names() {
    assert_eq!("full".parse::<Durability>(), Ok(Durability::Full));
    assert_eq!("normal".parse::<Durability>(), Ok(Durability::Normal));
    assert!("fast".parse::<Durability>().is_err());
}
