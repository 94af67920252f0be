//! [`DynamoStore`] against moto: the store contract every store passes
//! (`alertresponder_core::fixtures::contract`: one report per alert ID under
//! concurrent receptors, a retried receptor keeping its report, alerts stored once,
//! publication exactly once...), then what only DynamoDB shows: a TTL on every item,
//! gzip of large reports, Query pages, malformed items, and the handlers end to end
//! on the tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alertresponder_aws::dynamo::{DynamoStore, PK, SK, TTL_ATTRIBUTE};
use alertresponder_aws_testkit::{create_tables, unique, Moto};
use alertresponder_core::fixtures::contract::{admitted, opened, storage_order_with};
use alertresponder_core::fixtures::*;
use alertresponder_core::memory;
use alertresponder_core::pipeline::{self, ReviewOutcome};
use alertresponder_core::ports::*;
use alertresponder_core::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde_json::json;

const TTL: Duration = Duration::from_secs(30 * 24 * 3600);

struct Fixture {
    _moto: Moto,
    client: aws_sdk_dynamodb::Client,
    store: DynamoStore,
    report_table: String,
    error_table: String,
}

/// A store on fresh tables in a moto of its own.
async fn fixture() -> Fixture {
    Fixture::on(Moto::start(false)).await
}

/// A store on fresh tables in a moto that handles one request at a time (see
/// [`Moto::start_serialized`]): the contract's concurrent callers need it.
async fn serial_fixture() -> Fixture {
    Fixture::on(Moto::start_serialized()).await
}

impl Fixture {
    async fn on(moto: Moto) -> Fixture {
        let cfg = moto.sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&cfg);
        let (report_table, error_table) = (unique("reports"), unique("errors"));
        create_tables(&client, &report_table, &error_table)
            .await
            .unwrap();
        let store = DynamoStore::new(client.clone(), &report_table, &error_table, TTL);
        Fixture {
            _moto: moto,
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

alertresponder_core::contract_tests!(serial_fixture().await, |f| &f.store);
alertresponder_core::cache_contract_tests!(serial_fixture().await, |f| &f.store);
alertresponder_core::delivery_contract_tests!(fixture().await, |f| &f.store);

// --- What only DynamoDB shows ------------------------------------------------------

#[tokio::test]
async fn every_item_has_a_ttl_and_an_error_put_twice_is_one_item() {
    let f = fixture().await;
    let store = &f.store;
    let a = alert("r", &["10.0.0.1"]);
    let id = admitted(store, "alert:a", "m1", &a, t(0)).await.meta.id;
    admitted(store, "alert:a", "m2", &a, t(1)).await;
    admitted(store, "alert:b", "m3", &a, t(0)).await;
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
    store.mark_inspected(&id, &attr("10.0.0.1")).await.unwrap();
    store
        .mark_published(&report(&id, 1, Severity::Safe), "p")
        .await
        .unwrap();
    store.put_error(&error_record("e1", 0)).await.unwrap();
    store.put_error(&error_record("e1", 5)).await.unwrap();
    store.record_delivery(&id, 1, "slack", t(2)).await.unwrap();
    store
        .remember(&id, "github", &json!({"issue": 7}))
        .await
        .unwrap();

    let now = Utc::now().timestamp();
    let ttl = TTL.as_secs() as i64;
    let mut items = f.raw_items(&f.report_table).await;
    let errors = f.raw_items(&f.error_table).await;
    assert_eq!(errors.len(), 1, "the retry's record replaced the first");
    items.extend(errors);
    // 2 open reports, 2 metas, 3 alerts, 2 mentions (one per report), an attribute,
    // a section, an inspection, a published version, an error, a delivery and a memo.
    assert_eq!(
        items.len(),
        2 + 2 + 3 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1,
        "{items:#?}"
    );
    for item in &items {
        let key = format!("{:?} {:?}", item[PK], item[SK]);
        let Some(AttributeValue::N(at)) = item.get(TTL_ATTRIBUTE) else {
            panic!("{key} has no numeric {TTL_ATTRIBUTE}");
        };
        let at: i64 = at.parse().unwrap();
        // The open-report and meta items outlive the window (one hour here) by the
        // TTL: no join moves the meta's.
        let extra = if ["open", "meta"].contains(&item[SK].as_s().unwrap().as_str()) {
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

/// The raw items of a report's partition, by sort key.
async fn partition(
    f: &Fixture,
    report_id: &str,
) -> HashMap<String, HashMap<String, AttributeValue>> {
    f.raw_items(&f.report_table)
        .await
        .into_iter()
        .filter(|i| i[PK].as_s().unwrap() == &format!("report#{report_id}"))
        .map(|i| (i[SK].as_s().unwrap().clone(), i))
        .collect()
}

#[tokio::test]
async fn a_joining_alert_writes_its_own_items_only_never_the_meta() {
    let f = fixture().await;
    let store = &f.store;
    let opener = admitted(store, "alert:a", "m0", &alert("r", &["10.0.0.1"]), t(0)).await;
    let id = opener.meta.id;
    let before = partition(&f, &id).await;
    let meta_before = before["meta"].clone();
    assert!(
        !meta_before.contains_key("alert_count"),
        "no alert count is kept: {meta_before:?}"
    );
    // 20 joins, half naming the opener's attribute again, half one of their own.
    for i in 1..=20 {
        let value = if i % 2 == 0 {
            "10.0.0.1".to_string()
        } else {
            format!("10.0.1.{i}")
        };
        let joined = admitted(
            store,
            "alert:a",
            &format!("m{i}"),
            &alert("r", &[&value]),
            t(i),
        )
        .await;
        assert!(joined.inserted);
        assert_eq!(joined.knows_all_attributes, i % 2 == 0, "m{i}");
    }
    let after = partition(&f, &id).await;
    assert_eq!(
        after["meta"], meta_before,
        "the meta item is untouched by joins"
    );
    // 21 alerts and 11 mentions (the opener's, and one per odd join), each new item
    // with a TTL of its own.
    let now = Utc::now().timestamp();
    let ttl = TTL.as_secs() as i64;
    let new: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(new.len(), 20 + 10, "{new:?}");
    for sk in new {
        let Some(AttributeValue::N(at)) = after[sk].get(TTL_ATTRIBUTE) else {
            panic!("{sk} has no numeric {TTL_ATTRIBUTE}");
        };
        let at: i64 = at.parse().unwrap();
        assert!((now + ttl - 60..=now + ttl + 5).contains(&at), "{sk}: {at}");
    }
    let mention = &after[&format!("mention#{}", attr("10.0.0.1").hash())];
    assert_eq!(
        mention["message_id"].as_s().unwrap(),
        "m0",
        "the first to name it"
    );
    assert_eq!(
        store.report_counts(&id).await.unwrap(),
        Some(ReportCounts {
            alerts: 21,
            attributes: 0
        })
    );
}

#[tokio::test]
async fn deliveries_and_memos_live_in_the_reports_partition_and_change_nothing_it_loads() {
    let f = fixture().await;
    let store = &f.store;
    let id = admitted(store, "alert:a", "m0", &alert("r", &["10.0.0.1"]), t(0))
        .await
        .meta
        .id;
    let loaded = store.load_report(&id).await.unwrap();
    let counts = store.report_counts(&id).await.unwrap();
    store.record_delivery(&id, 1, "gh#1", t(5)).await.unwrap();
    store.record_delivery(&id, 10, "a", t(6)).await.unwrap();
    store
        .remember(&id, "gh#1", &json!({"issue": 3}))
        .await
        .unwrap();
    let items = partition(&f, &id).await;
    let delivery = &items["delivery#0000000001#gh#1"];
    assert_eq!(delivery["emitter"].as_s().unwrap(), "gh#1");
    assert_eq!(delivery["version"].as_n().unwrap(), "1");
    assert!(items.contains_key("memo#gh#1"), "{:?}", items.keys());
    // Version 10 after version 1: the padded version sorts before the free-text name.
    let listed: Vec<(u32, String)> = store
        .deliveries(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.version, d.emitter))
        .collect();
    assert_eq!(listed, [(1, "gh#1".to_string()), (10, "a".to_string())]);
    assert_eq!(store.load_report(&id).await.unwrap(), loaded);
    assert_eq!(store.report_counts(&id).await.unwrap(), counts);
}

#[tokio::test]
async fn a_redelivery_writes_the_mentions_a_crash_after_the_alert_put_left_out() {
    let f = fixture().await;
    let store = &f.store;
    let id = opened(store, "alert:a", "m0", t(0)).await.id;
    let a = alert("r", &["10.0.0.1", "10.0.0.2"]);
    assert!(admitted(store, "alert:a", "m1", &a, t(1)).await.inserted);
    // As if the receptor died after its alert put, before its mention puts.
    for v in ["10.0.0.1", "10.0.0.2"] {
        f.client
            .delete_item()
            .table_name(&f.report_table)
            .key(PK, AttributeValue::S(format!("report#{id}")))
            .key(SK, AttributeValue::S(format!("mention#{}", attr(v).hash())))
            .send()
            .await
            .unwrap();
    }
    // Meanwhile another message names one of them: unknown, so it dispatches it.
    let other = admitted(store, "alert:a", "m2", &alert("r", &["10.0.0.2"]), t(2)).await;
    assert!(other.inserted && !other.knows_all_attributes);
    let redelivered = admitted(store, "alert:a", "m1", &a, t(3)).await;
    assert!(!redelivered.inserted);
    assert_eq!(redelivered.received_at, t(1));
    assert!(!redelivered.knows_all_attributes, "it still dispatches");
    let items = partition(&f, &id).await;
    let by = |v: &str| {
        items[&format!("mention#{}", attr(v).hash())]["message_id"]
            .as_s()
            .unwrap()
            .clone()
    };
    assert_eq!(by("10.0.0.1"), "m1", "written by the redelivery");
    assert_eq!(by("10.0.0.2"), "m2", "left to the one that wrote it first");
    // Now known to others.
    assert!(
        admitted(store, "alert:a", "m3", &a, t(4))
            .await
            .knows_all_attributes
    );
}

#[tokio::test]
async fn an_opening_redelivered_after_a_crash_before_its_alert_put_stores_the_alert() {
    let f = fixture().await;
    let store = &f.store;
    let a = alert("r", &["10.0.0.1", "10.0.0.2"]);
    let opener = admitted(store, "alert:a", "m0", &a, t(0)).await;
    let id = opener.meta.id;
    let opened = partition(&f, &id).await;
    assert!(opened.contains_key("meta"));
    // As if the receptor died after the opening transaction, before its alert put:
    // the report is open, with neither its first alert nor its mentions.
    let mut gone = vec!["alert#m0".to_string()];
    gone.extend(["10.0.0.1", "10.0.0.2"].map(|v| format!("mention#{}", attr(v).hash())));
    for sk in &gone {
        assert!(opened.contains_key(sk), "{sk} written by the opening");
        f.client
            .delete_item()
            .table_name(&f.report_table)
            .key(PK, AttributeValue::S(format!("report#{id}")))
            .key(SK, AttributeValue::S(sk.clone()))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(store.get_alert(&id, "m0").await.unwrap(), None);
    // The redelivery finds its own report and stores the alert and its mentions.
    let redelivered = admitted(store, "alert:a", "m0", &a, t(1)).await;
    assert_eq!(redelivered.meta.id, id, "its own report");
    assert!(redelivered.inserted, "stored by the redelivery");
    assert!(!redelivered.knows_all_attributes, "so it dispatches them");
    assert_eq!(store.get_alert(&id, "m0").await.unwrap(), Some(a.clone()));
    let items = partition(&f, &id).await;
    for v in ["10.0.0.1", "10.0.0.2"] {
        let mention = &items[&format!("mention#{}", attr(v).hash())];
        assert_eq!(mention["message_id"].as_s().unwrap(), "m0", "{v}");
    }
    assert_eq!(
        store.report_counts(&id).await.unwrap(),
        Some(ReportCounts {
            alerts: 1,
            attributes: 0
        })
    );
    // Now known to others.
    assert!(
        admitted(store, "alert:a", "m1", &a, t(2))
            .await
            .knows_all_attributes
    );
}

#[tokio::test]
async fn a_claim_whose_count_a_crash_lost_is_still_counted_and_new_to_its_claimer() {
    let f = fixture().await;
    let store = &f.store;
    let id = opened(store, "alert:a", "m0", t(0)).await.id;
    let a = attr("10.0.0.1");
    assert_eq!(
        store.claim_attribute(&id, &a, "d1", 1).await.unwrap(),
        Claim::New
    );
    // As if the claimer died after its `attr#` put, before counting it on the meta.
    f.client
        .update_item()
        .table_name(&f.report_table)
        .key(PK, AttributeValue::S(format!("report#{id}")))
        .key(SK, AttributeValue::S("meta".into()))
        .update_expression("SET attribute_count = :zero")
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.report_counts(&id).await.unwrap().unwrap().attributes,
        1,
        "the claims are the attr# items, not the meta's count"
    );
    assert_eq!(
        store.claim_attribute(&id, &a, "d1", 1).await.unwrap(),
        Claim::New,
        "its claimer's retry"
    );
    assert_eq!(
        store.claim_attribute(&id, &a, "d2", 1).await.unwrap(),
        Claim::Seen
    );
    // The documented limit: the cap may be passed by one per such crash.
    assert_eq!(
        store
            .claim_attribute(&id, &attr("10.0.0.2"), "d2", 1)
            .await
            .unwrap(),
        Claim::New
    );
    assert_eq!(
        store
            .claim_attribute(&id, &attr("10.0.0.3"), "d3", 1)
            .await
            .unwrap(),
        Claim::CapReached
    );
    let state = store.load_report(&id).await.unwrap().unwrap();
    assert_eq!(state.attributes, [a, attr("10.0.0.2")]);
    assert_eq!(
        store.report_counts(&id).await.unwrap().unwrap().attributes,
        2
    );
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
    // 30 alerts of ~60 KB: more than one 1 MB page of Query (and of the counting
    // Query), the storage-order contract otherwise.
    storage_order_with(&f.store, 30, |_| Some(json!({ "blob": noise(60_000) }))).await;
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
    let clock = Arc::new(ManualClock::new(t(0)));
    // Jobs and buses in memory, run in virtual time; the store is DynamoDB.
    let (mut p, rt) = memory::pipeline(Settings::default(), clock.clone());
    let store: Arc<dyn Store> = Arc::new(f.store.clone());
    p.store = store.clone();
    p.errors = store;
    p.inspectors = vec![Arc::new(Resolver)];
    let raw = |ips: &[&str]| {
        json!({
            "detector": "test", "rule_id": "r1", "rule_name": "rule one", "alert_key": "k1",
            "attributes": ips.iter().map(|ip| json!({"type": "ipaddr", "key": "src", "value": ip, "context": ["remote"]})).collect::<Vec<_>>(),
        })
        .to_string()
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
    rt.run_until(&p, &clock, None).await.unwrap();

    let published = rt.reports.take();
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
    // What the handlers decided on: the meta and the counts.
    let meta = f.store.report_meta(&r.id).await.unwrap().unwrap();
    assert_eq!(meta.published_version, 1);
    let counts = f.store.report_counts(&r.id).await.unwrap().unwrap();
    assert_eq!((counts.alerts, counts.attributes), (2, 6));
    let state = f.store.load_report(&r.id).await.unwrap().unwrap();
    assert!(state.pending.is_empty(), "every inspection marked");
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
    rt.run_until(&p, &clock, None).await.unwrap();
    let published = rt.reports.take();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].version, 2);
    assert_eq!(published[0].alerts.len(), 3);
    assert_eq!(published[0].previous_result, Some(r.result.clone()));
}

/// Answers a section of 1 MiB between two small ones, and discovers an attribute of
/// 1 MiB beside a small one: more than a DynamoDB item takes.
struct Oversized;

#[async_trait]
impl Inspector for Oversized {
    fn name(&self) -> &str {
        "oversized"
    }
    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let small = SectionDraft {
            section_type: "host".into(),
            content: json!({ "ipaddr": [task.attribute.value] }),
        };
        let domain = |value: String| Attribute {
            attr_type: "domain".into(),
            key: "resolved".into(),
            value,
            context: vec!["remote".into()],
            timestamp: None,
        };
        Ok(Inspection {
            sections: vec![
                small.clone(),
                SectionDraft {
                    section_type: "binary".into(),
                    content: json!({ "dump": noise(1024 * 1024) }),
                },
                small,
            ],
            new_attributes: vec![domain(noise(1024 * 1024)), domain("found.example".into())],
        })
    }
}

#[tokio::test]
async fn an_inspector_answer_of_a_mebibyte_is_stored_cut_and_every_record_written() {
    let f = fixture().await;
    let id = opened(&f.store, "alert:a", "m1", t(0)).await.id;
    f.store
        .claim_attribute(&id, &attr("10.0.0.1"), "d", 10)
        .await
        .unwrap();
    let task = Task {
        report_id: id.clone(),
        attribute: attr("10.0.0.1"),
        depth: 0,
        review_at: None,
    };
    let inspectors: Vec<Arc<dyn Inspector>> = vec![Arc::new(Oversized), Arc::new(Resolver)];
    let tasks = memory::MemoryTaskBus::new();
    pipeline::inspect(
        &f.store,
        &tasks,
        &inspectors,
        &ManualClock::new(t(10)),
        &Settings::default(),
        &task,
    )
    .await
    .unwrap();

    let state = f.store.load_report(&id).await.unwrap().unwrap();
    let sections: Vec<(&str, &str)> = state
        .sections
        .iter()
        .map(|s| (s.author.as_str(), s.section_type.as_str()))
        .collect();
    assert_eq!(
        sections,
        [
            ("oversized", "host"),
            ("oversized", "binary"),
            ("oversized", "host"),
            ("resolver", "host")
        ]
    );
    let cut = state.sections[1].content["cut"].as_str().unwrap();
    assert!(cut.contains("exceeded the 65536-byte bound"), "{cut}");
    let records: Vec<(&str, InspectionStatus)> = state
        .inspections
        .iter()
        .map(|r| (r.inspector.as_str(), r.status))
        .collect();
    assert!(
        records.contains(&("oversized", InspectionStatus::Ok))
            && records.contains(&("resolver", InspectionStatus::Ok))
            && records.contains(&("alertresponder", InspectionStatus::Skipped)),
        "{records:?}"
    );
    let oversized = state
        .inspections
        .iter()
        .find(|r| r.inspector == "oversized")
        .unwrap();
    assert!(
        oversized
            .detail
            .as_deref()
            .unwrap()
            .contains("section 1 cut"),
        "{oversized:?}"
    );
    let fed: Vec<String> = tasks
        .take()
        .into_iter()
        .map(|t| t.attribute.value)
        .collect();
    assert_eq!(fed, ["found.example", "10.0.0.1.example"]);
}
