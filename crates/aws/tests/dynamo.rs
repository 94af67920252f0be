//! [`DynamoStore`] against moto: the same behaviour as the SQLite store, and the
//! DeepAlert v1 defects (two reports for one alert ID, a retried receptor losing its
//! report, duplicated alerts, a publication sent twice) kept out.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertresponder_aws::dynamo::{create_tables, DynamoStore, PK, SK, TTL_ATTRIBUTE};
use alertresponder_aws::testing::{http, sdk_config, unique, venv_bin, Moto};
use alertresponder_core::fixtures::contract::{self, admitted, opened};
use alertresponder_core::fixtures::*;
use alertresponder_core::pipeline::{self, Pipeline, ReviewOutcome};
use alertresponder_core::ports::*;
use alertresponder_core::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde_json::json;

const TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// moto with its requests handled one at a time, for the tests of concurrent callers.
///
/// moto's server is threaded and not linearizable: TransactWriteItems snapshots a
/// table, checks and writes, and on a failed condition puts the snapshot back, undoing
/// whatever another thread committed meanwhile (a winner told `Published` whose write
/// is then gone). DynamoDB applies each request atomically; one request at a time is
/// the closest moto gets, and the callers still interleave request by request.
struct SerialMoto {
    child: Child,
    endpoint: String,
}

const SERIALIZED_MOTO: &str = r#"
import sys, threading
from moto.moto_server import werkzeug_app
from moto import server
lock = threading.Lock()
call = werkzeug_app.DomainDispatcherApplication.__call__
def serialized(self, environ, start_response):
    with lock:
        return call(self, environ, start_response)
werkzeug_app.DomainDispatcherApplication.__call__ = serialized
server.main(sys.argv[1:])
"#;

impl SerialMoto {
    fn start() -> SerialMoto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(venv_bin("python3"))
            .args([
                "-c",
                SERIALIZED_MOTO,
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = SerialMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http(port, "GET", "/moto-api/data.json", ""), Ok((200, _))) {
            assert!(Instant::now() < deadline, "moto did not answer within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for SerialMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The moto server a fixture runs on.
#[allow(dead_code)]
enum Server {
    Plain(Moto),
    Serial(SerialMoto),
}

struct Fixture {
    _server: Server,
    client: aws_sdk_dynamodb::Client,
    store: DynamoStore,
    report_table: String,
    error_table: String,
}

/// A store on fresh tables in a moto of its own.
async fn fixture() -> Fixture {
    let moto = Moto::start(false);
    let cfg = moto.sdk_config().await;
    Fixture::on(Server::Plain(moto), cfg).await
}

/// A store on fresh tables in a moto that handles one request at a time.
async fn serial_fixture() -> Fixture {
    let moto = SerialMoto::start();
    let cfg = sdk_config(&moto.endpoint).await;
    Fixture::on(Server::Serial(moto), cfg).await
}

impl Fixture {
    async fn on(server: Server, cfg: aws_config::SdkConfig) -> Fixture {
        let client = aws_sdk_dynamodb::Client::new(&cfg);
        let (report_table, error_table) = (unique("reports"), unique("errors"));
        create_tables(&client, &report_table, &error_table)
            .await
            .unwrap();
        let store = DynamoStore::new(client.clone(), &report_table, &error_table, TTL);
        Fixture {
            _server: server,
            client,
            store,
            report_table,
            error_table,
        }
    }

    /// Every item of a table, raw (a Scan: fine in a test, never in the store).
    async fn raw_items(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_receptors_open_one_report() {
    let f = serial_fixture().await;
    let calls = (0..8).map(|i| {
        let store = f.store.clone();
        tokio::spawn(async move { opened(&store, "alert:same", &format!("m{i}"), t(i)).await })
    });
    let metas: Vec<ReportMeta> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let first = &metas[0];
    assert!(metas.iter().all(|m| m.id == first.id), "{metas:?}");
    assert_eq!(first.id, format!("rep-{}", first.opened_by));
    for i in 0..8 {
        let exists = f
            .store
            .report_meta(&format!("rep-m{i}"))
            .await
            .unwrap()
            .is_some();
        assert_eq!(
            exists,
            first.opened_by == format!("m{i}"),
            "only the opener's report exists"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receives_of_one_alert_id_store_every_alert_in_one_report() {
    let f = serial_fixture().await;
    let calls = (0..8).map(|i| {
        let store = f.store.clone();
        tokio::spawn(async move {
            let a = alert("r", &[&format!("10.0.0.{i}")]);
            admitted(&store, "alert:same", &format!("m{i}"), &a, t(0)).await
        })
    });
    let admissions: Vec<Admission> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let id = &admissions[0].meta.id;
    assert!(admissions.iter().all(|a| &a.meta.id == id && a.inserted));
    let openers = admissions
        .iter()
        .filter(|a| format!("rep-{}", a.meta.opened_by) == a.meta.id && a.meta.alert_count == 0)
        .count();
    assert!(openers >= 1);
    let state = f.store.load_report(id).await.unwrap().unwrap();
    assert_eq!(state.meta.alert_count, 8);
    assert_eq!(state.alerts.len(), 8);
}

#[tokio::test]
async fn the_receptor_that_opened_a_report_gets_it_back_on_retry() {
    let f = fixture().await;
    let first = opened(&f.store, "alert:a", "m1", t(0)).await;
    assert_eq!(first.opened_by, "m1");
    assert_eq!(opened(&f.store, "alert:a", "m2", t(10)).await.id, first.id);
    assert_eq!(opened(&f.store, "alert:a", "m1", t(20)).await, first);
    // Even once the window has passed and another report took over.
    assert_eq!(
        opened(&f.store, "alert:a", "m3", t(4000)).await.opened_by,
        "m3"
    );
    assert_eq!(opened(&f.store, "alert:a", "m1", t(4001)).await, first);

    // The same through the one-step receive: its own report, stored once.
    let a = alert("r", &["10.0.0.1"]);
    let opener = admitted(&f.store, "alert:b", "n1", &a, t(0)).await;
    assert_eq!(
        (opener.meta.opened_by.as_str(), opener.inserted),
        ("n1", true)
    );
    admitted(&f.store, "alert:b", "n2", &a, t(5)).await;
    let retry = admitted(&f.store, "alert:b", "n1", &a, t(9)).await;
    assert_eq!(retry.meta.id, opener.meta.id);
    assert_eq!(retry.meta.opened_by, "n1");
    assert!(!retry.inserted);
    assert_eq!(retry.received_at, t(0));
}

#[tokio::test]
async fn report_past_its_window_is_replaced_by_a_new_one() {
    let f = fixture().await;
    let first = opened(&f.store, "alert:a", "m1", t(0)).await;
    let inside = opened(&f.store, "alert:a", "m2", t(3599)).await;
    assert_eq!(inside.id, first.id);
    assert_eq!(inside.opened_by, "m1");
    let after = opened(&f.store, "alert:a", "m3", t(3600)).await;
    assert_eq!(after.id, "rep-m3");
    assert_eq!(after.opened_by, "m3");
    assert_eq!(after.created_at, t(3600));
    // The window now runs from the new report's opening.
    assert_eq!(
        opened(&f.store, "alert:a", "m4", t(5000)).await.id,
        "rep-m3"
    );
    // The one-step receive sees the same windows.
    let a = alert("r", &[]);
    assert_eq!(
        admitted(&f.store, "alert:a", "m5", &a, t(7000))
            .await
            .meta
            .id,
        "rep-m3"
    );
    let next = admitted(&f.store, "alert:a", "m6", &a, t(7200)).await;
    assert_eq!(
        (next.meta.id.as_str(), next.meta.alert_count),
        ("rep-m6", 0)
    );
    assert!(next.knows_all_attributes, "an alert without attributes");
}

#[tokio::test]
async fn redelivered_alert_is_stored_once() {
    let f = fixture().await;
    let a = alert("r", &["10.0.0.1"]);
    let first = admitted(&f.store, "alert:a", "m1", &a, t(0)).await;
    assert!(first.inserted);
    assert!(!first.knows_all_attributes);
    let again = admitted(&f.store, "alert:a", "m1", &a, t(30)).await;
    assert!(!again.inserted);
    assert_eq!(
        again.received_at,
        t(0),
        "when the first delivery was stored"
    );
    assert_eq!(again.meta.alert_count, 1);

    // A message that joined, redelivered.
    let joined = admitted(&f.store, "alert:a", "m2", &a, t(40)).await;
    assert_eq!((joined.inserted, joined.received_at), (true, t(40)));
    let redelivered = admitted(&f.store, "alert:a", "m2", &a, t(50)).await;
    assert_eq!(
        (redelivered.inserted, redelivered.received_at),
        (false, t(40))
    );

    // The separate steps agree.
    let id = first.meta.id;
    assert!(!f.store.put_alert(&id, "m2", &a, t(60)).await.unwrap());
    assert!(f.store.put_alert(&id, "m3", &a, t(60)).await.unwrap());
    let meta = f.store.report_meta(&id).await.unwrap().unwrap();
    assert_eq!(meta.alert_count, 3);
    assert_eq!(f.store.get_alert(&id, "m2").await.unwrap(), Some(a.clone()));
    assert_eq!(f.store.get_alert(&id, "m9").await.unwrap(), None);
    let err = f.store.put_alert("nope", "m1", &a, t(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err}");
}

#[tokio::test]
async fn attribute_claims_are_new_then_seen_new_again_for_the_same_claimer_and_capped() {
    let f = fixture().await;
    contract::attribute_claims(&f.store).await;
}

#[tokio::test]
async fn attributes_named_by_an_earlier_alert_are_known_to_others_but_not_to_their_own_message() {
    let f = fixture().await;
    contract::attribute_mentions(&f.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_respect_the_cap_and_count_each_attribute_once() {
    let f = serial_fixture().await;
    let id = opened(&f.store, "alert:a", "m1", t(0)).await.id;
    let calls = (0..12).map(|i| {
        let (store, id) = (f.store.clone(), id.clone());
        // Six distinct attributes, each claimed by two claimers.
        tokio::spawn(async move {
            store
                .claim_attribute(
                    &id,
                    &attr(&format!("10.0.0.{}", i % 6)),
                    &format!("d{i}"),
                    4,
                )
                .await
                .unwrap()
        })
    });
    let claims: Vec<Claim> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let new = claims.iter().filter(|c| **c == Claim::New).count();
    let st = f.store.load_report(&id).await.unwrap().unwrap();
    eprintln!(
        "DEBUG new={new} stored={} items={:?}",
        st.attributes.len(),
        f.raw_items(&f.report_table)
            .await
            .iter()
            .filter(|i| i[SK].as_s().unwrap().starts_with("attr#"))
            .map(|i| (i["claimer"].clone(), i["seq"].clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(new, 4, "{claims:?}");
    assert_eq!(
        f.store
            .load_report(&id)
            .await
            .unwrap()
            .unwrap()
            .attributes
            .len(),
        4
    );
}

#[tokio::test]
async fn every_item_has_a_ttl() {
    let f = fixture().await;
    let store = &f.store;
    let a = alert("r", &["10.0.0.1"]);
    let id = admitted(store, "alert:a", "m1", &a, t(0)).await.meta.id;
    admitted(store, "alert:a", "m2", &a, t(1)).await;
    opened(store, "alert:b", "m3", t(0)).await;
    store.put_alert("rep-m3", "m3", &a, t(0)).await.unwrap();
    store
        .claim_attribute(&id, &attr("10.0.0.1"), "d", 10)
        .await
        .unwrap();
    store
        .put_section(&section(&id, "10.0.0.1", "geo", "JP"), 0)
        .await
        .unwrap();
    store
        .put_inspection(&id, &inspection("10.0.0.1", "geo", InspectionStatus::Ok))
        .await
        .unwrap();
    store
        .mark_published(&report(&id, 1, Severity::Safe), "p")
        .await
        .unwrap();
    store.put_error(&error_record("e1", 0)).await.unwrap();

    let now = Utc::now().timestamp();
    let ttl = TTL.as_secs() as i64;
    let mut items = f.raw_items(&f.report_table).await;
    items.extend(f.raw_items(&f.error_table).await);
    // 2 open reports, 2 metas, 3 alerts, 2 mentions (one per report), an attribute,
    // a section, an inspection, a published version and an error.
    assert_eq!(items.len(), 2 + 2 + 3 + 2 + 1 + 1 + 1 + 1 + 1, "{items:#?}");
    for item in &items {
        let key = format!("{:?} {:?}", item[PK], item[SK]);
        let Some(AttributeValue::N(at)) = item.get(TTL_ATTRIBUTE) else {
            panic!("{key} has no numeric {TTL_ATTRIBUTE}");
        };
        let at: i64 = at.parse().unwrap();
        // The open-report item outlives its window (one hour here) by the TTL.
        let extra = if item[SK].as_s().unwrap() == "open" {
            3600
        } else {
            0
        };
        assert!(
            (now + ttl + extra - 60..=now + ttl + extra + 5).contains(&at),
            "{key}: {TTL_ATTRIBUTE} {at}, now {now}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_happens_exactly_once_per_version() {
    let f = serial_fixture().await;
    let store = &f.store;
    let id = opened(store, "alert:a", "m1", t(0)).await.id;
    let v1 = report(&id, 1, Severity::Safe);
    let calls = ["p1", "p2"].map(|publisher| {
        let (store, mut r) = (store.clone(), v1.clone());
        r.result.reason = publisher.into();
        tokio::spawn(async move {
            (
                publisher,
                store.mark_published(&r, publisher).await.unwrap(),
            )
        })
    });
    let marks: Vec<(&str, PublishMark)> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<&str> = marks
        .iter()
        .filter(|(_, m)| *m == PublishMark::Published)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(winners.len(), 1, "{marks:?}");
    let winner = winners[0];
    for (_, mark) in marks.iter().filter(|(p, _)| *p != winner) {
        assert_eq!(
            *mark,
            PublishMark::AlreadyPublished {
                publisher: winner.into()
            }
        );
    }
    let (stored, by) = store.published_report(&id, 1).await.unwrap().unwrap();
    assert_eq!(by, winner);
    assert_eq!(stored.result.reason, winner);
    assert_eq!(store.published_report(&id, 2).await.unwrap(), None);

    // Version 2 requires version 1; version 3 is not next.
    let err = store
        .mark_published(&report(&id, 3, Severity::Urgent), "p3")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err}");
    let state = store.load_report(&id).await.unwrap().unwrap();
    assert_eq!(state.meta.published_version, 1);
    assert_eq!(state.meta.last_published_at, v1.published_at);
    assert_eq!(state.last_result, Some(stored.result));
    let v2 = report(&id, 2, Severity::Urgent);
    assert_eq!(
        store.mark_published(&v2, "p2").await.unwrap(),
        PublishMark::Published
    );
    assert_eq!(
        store.published_report(&id, 2).await.unwrap(),
        Some((v2, "p2".into()))
    );
    let err = store
        .mark_published(&report("nope", 1, Severity::Safe), "p")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err}");
}

/// Text that gzip barely shrinks (a xorshift stream in hex).
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn a_large_report_round_trips_gzipped_and_one_too_large_is_refused() {
    let f = fixture().await;
    let id = opened(&f.store, "alert:a", "m1", t(0)).await.id;
    let mut large = report(&id, 1, Severity::Urgent);
    large.alerts = (0..8)
        .map(|i| {
            let mut a = alert("r", &["10.0.0.1"]);
            a.body =
                Some(json!({ "log": format!("{i} {}", "GET /index.html 200\n".repeat(3000)) }));
            a
        })
        .collect();
    assert!(serde_json::to_string(&large).unwrap().len() > 400_000);
    assert_eq!(
        f.store.mark_published(&large, "p").await.unwrap(),
        PublishMark::Published
    );
    assert_eq!(
        f.store.published_report(&id, 1).await.unwrap(),
        Some((large, "p".into()))
    );

    let mut huge = report(&id, 2, Severity::Urgent);
    huge.result.reason = noise(900_000);
    let err = f.store.mark_published(&huge, "p").await.unwrap_err();
    let StoreError::Permanent(message) = err else {
        panic!("{err}");
    };
    assert!(
        message.contains(&id) && message.contains("bytes"),
        "{message}"
    );
    assert_eq!(
        f.store
            .report_meta(&id)
            .await
            .unwrap()
            .unwrap()
            .published_version,
        1
    );
}

#[tokio::test]
async fn load_report_returns_everything_in_order_across_pages() {
    let f = fixture().await;
    let store = &f.store;
    let id = opened(store, "alert:a", "m1", t(0)).await.id;
    // 30 alerts of ~60 KB: more than one 1 MB page of Query. Some share a receive
    // time: those come back in the order stored.
    let alerts: Vec<Alert> = (0..30)
        .map(|i| {
            let mut a = alert(&format!("rule {}", 29 - i), &[]);
            a.body = Some(json!({ "blob": noise(60_000) }));
            a
        })
        .collect();
    for (i, a) in alerts.iter().enumerate() {
        let received = t(i as i64 / 3);
        assert!(store
            .put_alert(&id, &format!("m{}", 99 - i), a, received)
            .await
            .unwrap());
    }
    for v in ["9.9.9.9", "1.1.1.1", "5.5.5.5"] {
        store.claim_attribute(&id, &attr(v), "d", 10).await.unwrap();
    }
    for (i, author) in ["zeta", "alpha"].iter().enumerate() {
        store
            .put_section(&section(&id, "1.1.1.1", author, "JP"), i)
            .await
            .unwrap();
    }
    store
        .put_section(&section(&id, "0.0.0.0", "geo", "FR"), 0)
        .await
        .unwrap();
    // A retried inspection replaces its section in place.
    store
        .put_section(&section(&id, "1.1.1.1", "zeta", "DE"), 0)
        .await
        .unwrap();
    for (v, status) in [
        ("5.5.5.5", InspectionStatus::Failed),
        ("1.1.1.1", InspectionStatus::NothingFound),
        ("5.5.5.5", InspectionStatus::Ok),
    ] {
        store
            .put_inspection(&id, &inspection(v, "geo", status))
            .await
            .unwrap();
    }

    let state = store.load_report(&id).await.unwrap().unwrap();
    assert_eq!(state.meta.alert_count, 30);
    assert_eq!(state.alerts.len(), 30);
    assert!(state.alerts == alerts, "alerts in the order received");
    let values: Vec<&str> = state.attributes.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(values, ["9.9.9.9", "1.1.1.1", "5.5.5.5"]);
    let sections: Vec<(&str, &str)> = state
        .sections
        .iter()
        .map(|s| (s.author.as_str(), s.content["country"].as_str().unwrap()))
        .collect();
    assert_eq!(sections, [("zeta", "DE"), ("alpha", "JP"), ("geo", "FR")]);
    let inspected: Vec<(&str, InspectionStatus)> = state
        .inspections
        .iter()
        .map(|r| (r.attribute.value.as_str(), r.status))
        .collect();
    assert_eq!(
        inspected,
        [
            ("5.5.5.5", InspectionStatus::Ok),
            ("1.1.1.1", InspectionStatus::NothingFound)
        ]
    );
    assert_eq!(state.last_result, None);
    assert_eq!(store.load_report("nope").await.unwrap(), None);
}

fn error_record(id: &str, secs: i64) -> ErrorRecord {
    ErrorRecord {
        id: id.into(),
        stage: "receive".into(),
        error: "invalid alert: detector: missing".into(),
        field: Some("detector".into()),
        input: "{}".into(),
        input_truncated: false,
        at: t(secs),
    }
}

#[tokio::test]
async fn an_error_put_twice_is_kept_once() {
    let f = fixture().await;
    f.store.put_error(&error_record("e1", 0)).await.unwrap();
    f.store.put_error(&error_record("e1", 5)).await.unwrap();
    f.store.put_error(&error_record("e2", 5)).await.unwrap();
    let items = f.raw_items(&f.error_table).await;
    assert_eq!(items.len(), 2);
    let e1 = items
        .iter()
        .find(|i| i[PK].as_s().unwrap() == "error#e1")
        .unwrap();
    let kept: ErrorRecord = serde_json::from_str(e1["json"].as_s().unwrap()).unwrap();
    assert_eq!(kept, error_record("e1", 5), "the retry's record");
}

#[tokio::test]
async fn a_malformed_stored_item_is_a_permanent_error_naming_it() {
    let f = fixture().await;
    f.client
        .put_item()
        .table_name(&f.report_table)
        .item(PK, AttributeValue::S("report#bad".into()))
        .item(SK, AttributeValue::S("meta".into()))
        .item("alert_id", AttributeValue::S("alert:x".into()))
        .item("created_at", AttributeValue::S("yesterday".into()))
        .send()
        .await
        .unwrap();
    let err = f.store.report_meta("bad").await.unwrap_err();
    let StoreError::Permanent(message) = err else {
        panic!("{err}");
    };
    assert!(
        message.contains("bad") && message.contains("created_at"),
        "{message}"
    );
}

// --- The real handlers on the DynamoDB store --------------------------------------

/// Jobs and tasks kept in memory, run by hand in due order.
#[derive(Default)]
struct Queues {
    jobs: Mutex<Vec<(Job, DateTime<Utc>)>>,
    reports: Mutex<Vec<Report>>,
}

#[async_trait]
impl Scheduler for Queues {
    async fn schedule(&self, job: &Job, due: DateTime<Utc>) -> Result<(), CoreError> {
        let mut jobs = self.jobs.lock().unwrap();
        if !jobs.iter().any(|(j, _)| j.name() == job.name()) {
            jobs.push((job.clone(), due));
        }
        Ok(())
    }
}

#[async_trait]
impl TaskBus for Queues {
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError> {
        self.jobs
            .lock()
            .unwrap()
            .push((Job::Inspect(task.clone()), DateTime::<Utc>::MIN_UTC));
        Ok(())
    }
}

#[async_trait]
impl ReportBus for Queues {
    async fn publish_report(&self, report: &Report) -> Result<(), CoreError> {
        self.reports.lock().unwrap().push(report.clone());
        Ok(())
    }
}

impl Queues {
    /// The next job due, earliest first (tasks at once).
    fn next(&self) -> Option<(Job, DateTime<Utc>)> {
        let mut jobs = self.jobs.lock().unwrap();
        let i = (0..jobs.len()).min_by_key(|&i| jobs[i].1)?;
        Some(jobs.remove(i))
    }
}

/// Answers a host section for an IP and discovers `<ip>.example` from it.
struct Resolver;

#[async_trait]
impl Inspector for Resolver {
    fn name(&self) -> &str {
        "resolver"
    }
    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let value = &task.attribute.value;
        let new_attributes = if task.attribute.attr_type == "ipaddr" {
            vec![Attribute {
                attr_type: "domain".into(),
                key: "resolved".into(),
                value: format!("{value}.example"),
                context: vec!["remote".into()],
                timestamp: None,
            }]
        } else {
            vec![]
        };
        Ok(Inspection {
            sections: vec![SectionDraft {
                section_type: "host".into(),
                content: json!({ "ipaddr": [value] }),
            }],
            new_attributes,
        })
    }
}

#[tokio::test]
async fn the_pipeline_handlers_run_end_to_end_on_the_dynamodb_store() {
    let f = fixture().await;
    let queues = Arc::new(Queues::default());
    let clock = Arc::new(ManualClock::new(t(0)));
    let p = Pipeline {
        store: Arc::new(f.store.clone()),
        scheduler: queues.clone(),
        tasks: queues.clone(),
        reports: queues.clone(),
        inspectors: vec![Arc::new(Resolver)],
        reviewers: vec![],
        emitters: vec![],
        clock: clock.clone(),
        settings: Settings::default(),
    };
    let raw = |ips: &[&str]| {
        json!({
            "detector": "test", "rule_id": "r1", "rule_name": "rule one", "alert_key": "k1",
            "attributes": ips.iter().map(|ip| json!({"type": "ipaddr", "key": "src", "value": ip, "context": ["remote"]})).collect::<Vec<_>>(),
        })
        .to_string()
    };
    let run_all = || async {
        while let Some((job, due)) = queues.next() {
            clock.advance_to(due);
            p.run_job(&job, 0).await.unwrap();
        }
    };

    let first = p
        .receive(raw(&["192.0.2.1", "192.0.2.2"]).as_bytes(), Some("sns-1"))
        .await
        .unwrap();
    assert_eq!(first.status, ReportStatus::New);
    clock.advance(Duration::from_secs(60));
    let second = p
        .receive(raw(&["192.0.2.2", "192.0.2.3"]).as_bytes(), Some("sns-2"))
        .await
        .unwrap();
    assert_eq!(
        (second.status, second.report_id.as_str()),
        (ReportStatus::More, first.report_id.as_str())
    );
    let again = p
        .receive(raw(&["192.0.2.1", "192.0.2.2"]).as_bytes(), Some("sns-1"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(
        again.status,
        ReportStatus::New,
        "a retried opener still owns its report"
    );
    run_all().await;

    let published = queues.reports.lock().unwrap().clone();
    assert_eq!(published.len(), 1, "one publication");
    let r = &published[0];
    assert_eq!((r.version, r.alerts.len()), (1, 2));
    let values: Vec<&str> = r.attributes.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(
        values.len(),
        6,
        "three IPs and three discovered domains: {values:?}"
    );
    assert_eq!(r.sections.len(), 6);
    assert_eq!(r.inspections.len(), 6);
    assert_eq!(
        f.store
            .published_report(&r.id, 1)
            .await
            .unwrap()
            .map(|(rep, _)| rep),
        Some(r.clone())
    );
    // Reviewing the same version again publishes nothing new.
    let outcome = pipeline::review(&p, &r.id, 1, "someone else")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ReviewOutcome::AlreadyPublished {
            version: 1,
            republished: false
        }
    );

    // A late alert joins the published report: version 2, with the result before.
    clock.advance(Duration::from_secs(1800));
    let late = p
        .receive(raw(&["192.0.2.9"]).as_bytes(), Some("sns-3"))
        .await
        .unwrap();
    assert_eq!(late.report_id, first.report_id);
    run_all().await;
    let published = queues.reports.lock().unwrap().clone();
    assert_eq!(published.len(), 2);
    assert_eq!(published[1].version, 2);
    assert_eq!(published[1].alerts.len(), 3);
    assert_eq!(published[1].previous_result, Some(r.result.clone()));
}
