//! The whole pipeline on the embedded adapters (real SQLite, durable queue) in
//! virtual time, with the test plugins of `alertresponder_core::fixtures::plugins`:
//! what a user of AlertResponder relies on across steps. Core's pipeline tests leave
//! these behaviours to this suite, so each is proven here once, on the real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use alertresponder_core::fixtures::plugins::{
    decides, host_section, FixedReviewer, Recorder, TestInspector,
};
use alertresponder_core::fixtures::raw_alert;
use alertresponder_core::pipeline::{Pipeline, Receipt};
use alertresponder_core::ports::*;
use alertresponder_core::*;
use alertresponder_embedded::runtime::REVIEW_POSTPONE;
use alertresponder_embedded::{JobQueue, Runtime, SqliteStore};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

struct Harness {
    runtime: Runtime,
    clock: Arc<ManualClock>,
    store: SqliteStore,
    recorder: Arc<Recorder>,
}

fn t0() -> DateTime<Utc> {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

fn harness(
    settings: Settings,
    inspectors: Vec<Arc<dyn Inspector>>,
    reviewers: Vec<Arc<dyn Reviewer>>,
) -> Harness {
    let store = SqliteStore::open_in_memory().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let recorder = Arc::new(Recorder::default());
    let queue = JobQueue::new(store.clone(), clock.clone(), vec!["recorder".into()]);
    let pipeline = Pipeline {
        store: Arc::new(store.clone()),
        errors: Arc::new(store.clone()),
        scheduler: Arc::new(queue.clone()),
        tasks: Arc::new(queue.clone()),
        reports: Arc::new(queue.clone()),
        inspectors,
        reviewers,
        emitters: vec![recorder.clone()],
        clock: clock.clone(),
        settings,
    };
    Harness {
        runtime: Runtime::new(pipeline, queue, 4),
        clock,
        store,
        recorder,
    }
}

impl Harness {
    async fn receive(&self, alert: Value) -> Receipt {
        self.runtime
            .pipeline()
            .receive(alert.to_string().as_bytes(), None)
            .await
            .unwrap()
    }
    /// Runs what is due until `at` (virtual), then moves the clock there.
    async fn until(&self, at: DateTime<Utc>) {
        self.runtime
            .drain_virtual(&self.clock, Some(at))
            .await
            .unwrap();
    }
    async fn drain(&self) {
        self.runtime.drain_virtual(&self.clock, None).await.unwrap();
    }
    fn emitted(&self) -> Vec<Report> {
        self.recorder.reports()
    }
}

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

#[tokio::test]
async fn alerts_with_one_key_inside_the_window_make_one_report_reviewed_after_review_delay() {
    let h = harness(Settings::default(), vec![], vec![]);
    let first = h.receive(raw_alert("k1", &["192.0.2.1"])).await;
    assert_eq!(first.status, ReportStatus::New);
    h.until(t0() + minutes(4)).await;
    let second = h.receive(raw_alert("k1", &["192.0.2.2"])).await;
    assert_eq!(second.status, ReportStatus::More);
    assert_eq!(second.report_id, first.report_id);
    h.drain().await;

    let emitted = h.emitted();
    assert_eq!(emitted.len(), 1, "one publication");
    let r = &emitted[0];
    assert_eq!(r.alerts.len(), 2);
    assert_eq!(r.version, 1);
    assert_eq!(r.status, ReportStatus::Published);
    assert_eq!(
        r.result.severity,
        Severity::Unclassified,
        "no reviewer: unclassified"
    );
    assert_eq!(
        r.published_at,
        Some(t0() + minutes(10)),
        "review_delay counts from the opening"
    );
}

#[tokio::test]
async fn an_alert_after_the_window_opens_a_new_report() {
    let settings = Settings {
        aggregation_window: Duration::from_secs(3600),
        ..Settings::default()
    };
    let h = harness(settings, vec![], vec![]);
    let a = h.receive(raw_alert("k1", &[])).await;
    h.until(t0() + minutes(61)).await;
    let b = h.receive(raw_alert("k1", &["192.0.2.9"])).await;
    assert_ne!(a.report_id, b.report_id);
    assert_eq!(b.status, ReportStatus::New);
    h.drain().await;
    let ids: Vec<String> = h.emitted().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, [a.report_id, b.report_id]);
}

#[tokio::test]
async fn a_redelivered_message_is_stored_once() {
    let h = harness(Settings::default(), vec![], vec![]);
    let raw = raw_alert("k1", &["192.0.2.1"]).to_string();
    let p = h.runtime.pipeline();
    let a = p.receive(raw.as_bytes(), Some("sns-1")).await.unwrap();
    let b = p.receive(raw.as_bytes(), Some("sns-1")).await.unwrap();
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(
        b.status,
        ReportStatus::New,
        "a retried opener still owns its report"
    );
    let c = p.receive(raw.as_bytes(), None).await.unwrap();
    let d = p.receive(raw.as_bytes(), None).await.unwrap();
    assert!(
        !c.duplicate && d.duplicate,
        "without a message ID the bytes identify the message"
    );
    h.drain().await;
    let r = &h.emitted()[0];
    assert_eq!(
        r.alerts.len(),
        2,
        "sns-1 once, and the content-identified message once"
    );
}

#[tokio::test]
async fn an_attribute_seen_in_two_alerts_of_a_report_is_inspected_once() {
    let ins = Arc::new(TestInspector::new("intel", |t| Ok(host_section(t))));
    let h = harness(Settings::default(), vec![ins.clone()], vec![]);
    h.receive(raw_alert("k1", &["192.0.2.1", "192.0.2.2"]))
        .await;
    h.until(t0() + minutes(1)).await;
    h.receive(raw_alert("k1", &["192.0.2.2", "192.0.2.3"]))
        .await;
    h.drain().await;
    let mut calls = ins.calls();
    calls.sort();
    assert_eq!(calls, vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let r = &h.emitted()[0];
    assert_eq!(r.sections.len(), 3);
    assert_eq!(r.attributes.len(), 3);
}

/// Every answer discovers a brand-new address: an endless chain.
fn chain() -> TestInspector {
    TestInspector::new("chain", |t| {
        let n: u32 = t
            .attribute
            .value
            .rsplit('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Ok(Inspection {
            sections: vec![],
            new_attributes: vec![Attribute {
                attr_type: "ipaddr".into(),
                key: "next".into(),
                value: format!("10.0.0.{}", n + 1),
                context: vec![],
                timestamp: None,
            }],
        })
    })
}

#[tokio::test]
async fn discovered_attributes_are_inspected_until_max_depth_and_the_rest_is_noted() {
    let ins = Arc::new(chain());
    let settings = Settings {
        max_depth: 3,
        ..Settings::default()
    };
    let h = harness(settings, vec![ins.clone()], vec![]);
    h.receive(raw_alert("k1", &["10.0.0.0"])).await;
    h.drain().await;
    assert_eq!(ins.calls().len(), 4, "depth 0, 1, 2 and 3");
    let r = &h.emitted()[0];
    let skipped: Vec<_> = r
        .inspections
        .iter()
        .filter(|i| i.status == InspectionStatus::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].attribute.value, "10.0.0.4");
    assert!(skipped[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("maximum depth"));
}

#[tokio::test]
async fn a_cycle_of_discoveries_ends() {
    // a -> b -> a: the per-report dedup stops it whatever the depth.
    let ins = Arc::new(TestInspector::new("cycle", |t| {
        let next = if t.attribute.value == "a.example" {
            "b.example"
        } else {
            "a.example"
        };
        Ok(Inspection {
            sections: vec![],
            new_attributes: vec![Attribute {
                attr_type: "domain".into(),
                key: String::new(),
                value: next.into(),
                context: vec![],
                timestamp: None,
            }],
        })
    }));
    let settings = Settings {
        max_depth: 100,
        ..Settings::default()
    };
    let h = harness(settings, vec![ins.clone()], vec![]);
    h.receive(json!({"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"domain","value":"a.example"}]}))
        .await;
    h.drain().await;
    assert_eq!(ins.calls().len(), 2);
}

#[tokio::test]
async fn the_per_report_attribute_cap_is_recorded_not_silently_dropped() {
    let settings = Settings {
        max_attributes_per_report: 2,
        ..Settings::default()
    };
    // Discoveries count against the cap too.
    let h = harness(settings, vec![Arc::new(chain())], vec![]);
    h.receive(raw_alert("k1", &["192.0.2.1", "192.0.2.2", "192.0.2.3"]))
        .await;
    h.drain().await;
    let r = &h.emitted()[0];
    assert_eq!(r.attributes.len(), 2);
    let skipped: Vec<_> = r
        .inspections
        .iter()
        .filter(|i| i.status == InspectionStatus::Skipped)
        .collect();
    assert_eq!(
        skipped
            .iter()
            .map(|i| i.attribute.value.as_str())
            .collect::<Vec<_>>(),
        ["192.0.2.3", "10.0.0.2", "10.0.0.3"],
        "the alert's third and both discoveries"
    );
    assert!(skipped
        .iter()
        .all(|i| i.detail.as_deref().unwrap().contains("cap of 2")));
}

#[tokio::test]
async fn failing_and_slow_inspectors_are_recorded_and_the_others_still_count() {
    let good = Arc::new(TestInspector::new("good", |t| Ok(host_section(t))));
    let bad = Arc::new(TestInspector::new("bad", |_| {
        Err(PluginError::Failed("exit status 3: boom".into()))
    }));
    let empty = Arc::new(TestInspector::new("empty", |_| Ok(Inspection::default())));
    let slow = TestInspector::new("slow", |t| Ok(host_section(t)))
        .slow(Duration::from_secs(5), Duration::from_millis(50));
    let h = harness(
        Settings::default(),
        vec![good, bad, empty, Arc::new(slow)],
        vec![],
    );
    h.receive(raw_alert("k1", &["192.0.2.1"])).await;
    h.drain().await;
    let r = &h.emitted()[0];
    assert_eq!(r.sections.len(), 1);
    assert_eq!(r.sections[0].author, "good");
    let status = |n: &str| {
        r.inspections
            .iter()
            .find(|i| i.inspector == n)
            .unwrap()
            .status
    };
    assert_eq!(status("good"), InspectionStatus::Ok);
    assert_eq!(status("bad"), InspectionStatus::Failed);
    assert_eq!(status("empty"), InspectionStatus::NothingFound);
    assert_eq!(status("slow"), InspectionStatus::TimedOut);
    let bad_detail = r
        .inspections
        .iter()
        .find(|i| i.inspector == "bad")
        .unwrap()
        .detail
        .clone()
        .unwrap();
    assert!(bad_detail.contains("boom"));
}

#[tokio::test]
async fn inspectors_only_get_the_types_they_declare() {
    let ins = Arc::new(TestInspector::new("dns", |t| Ok(host_section(t))).accepting(&["domain"]));
    let h = harness(Settings::default(), vec![ins.clone()], vec![]);
    h.receive(
        json!({"detector":"d","rule_id":"r","alert_key":"k","attributes":[
        {"type":"domain","value":"x.example"},{"type":"ipaddr","value":"192.0.2.1"}]}),
    )
    .await;
    h.drain().await;
    assert_eq!(ins.calls(), ["x.example"]);
}

#[tokio::test]
async fn an_alert_joining_after_publication_publishes_version_two_with_the_previous_result() {
    let h = harness(
        Settings::default(),
        vec![],
        vec![Arc::new(decides("p", Severity::Urgent, "r"))],
    );
    let a = h.receive(raw_alert("k1", &["192.0.2.1"])).await;
    h.until(t0() + minutes(30)).await;
    assert_eq!(h.emitted().len(), 1);
    let mut late = raw_alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late, nothing new to inspect");
    let b = h.receive(late).await;
    assert_eq!(b.report_id, a.report_id);
    h.until(t0() + minutes(35)).await;
    let c = h.receive(raw_alert("k1", &["192.0.2.7"])).await; // something new
    assert_eq!(c.report_id, a.report_id);
    h.drain().await;
    let emitted = h.emitted();
    let versions: Vec<(u32, usize)> = emitted
        .iter()
        .map(|r| (r.version, r.alerts.len()))
        .collect();
    assert_eq!(
        versions,
        vec![(1, 1), (2, 3)],
        "one re-review covers both late alerts"
    );
    let v2 = &emitted[1];
    assert_eq!(
        v2.previous_result.as_ref().unwrap().severity,
        Severity::Urgent
    );
    // review_delay after the first late alert, put off once (the runtime's postponement)
    // for the dispatch of the second one's new attribute, due at the same moment
    assert_eq!(
        v2.published_at,
        Some(t0() + minutes(40) + chrono::Duration::from_std(REVIEW_POSTPONE).unwrap())
    );
    assert_eq!(v2.attributes.len(), 2);
}

#[tokio::test]
async fn the_most_severe_review_wins_and_every_reason_is_kept() {
    let h = harness(
        Settings::default(),
        vec![],
        vec![
            Arc::new(decides("a", Severity::Safe, "known scanner")),
            Arc::new(decides("b", Severity::Urgent, "malware")),
            Arc::new(FixedReviewer("c", Ok(None))),
        ],
    );
    h.receive(raw_alert("k1", &[])).await;
    h.drain().await;
    let r = &h.emitted()[0].result;
    assert_eq!(r.severity, Severity::Urgent);
    assert!(
        r.reason.contains("malware") && r.reason.contains("known scanner"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn a_failing_reviewer_never_makes_a_report_safe() {
    let h = harness(
        Settings::default(),
        vec![],
        vec![
            Arc::new(decides("a", Severity::Safe, "ok")),
            Arc::new(FixedReviewer(
                "broken",
                Err(PluginError::Failed("policy error".into())),
            )),
        ],
    );
    h.receive(raw_alert("k1", &[])).await;
    h.drain().await;
    let r = &h.emitted()[0].result;
    assert_eq!(r.severity, Severity::Unclassified);
    assert!(
        r.reason.contains("broken") && r.reason.contains("policy error"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn a_malformed_alert_is_rejected_naming_the_field_and_kept_with_its_input() {
    let h = harness(Settings::default(), vec![], vec![]);
    let raw = br#"{"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"ipaddr","value":7}]}"#;
    let err = h
        .runtime
        .pipeline()
        .receive(raw, Some("m-1"))
        .await
        .unwrap_err();
    match err {
        CoreError::Invalid(e) => assert_eq!(e.field, "attributes[0].value"),
        other => panic!("expected a validation error, got {other}"),
    }
    let errors = h.store.list_errors(10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].id, "m-1");
    assert_eq!(errors[0].field.as_deref(), Some("attributes[0].value"));
    assert_eq!(errors[0].input.as_bytes(), raw);
    // Redelivered, the same bad input is rejected again and kept once.
    h.clock.advance(Duration::from_secs(5));
    h.runtime
        .pipeline()
        .receive(raw, Some("m-1"))
        .await
        .unwrap_err();
    let errors = h.store.list_errors(10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].at, t0() + chrono::Duration::seconds(5));
    assert_eq!(
        h.store.get_error("m-1", "receive").await.unwrap(),
        Some(errors[0].clone())
    );
}

#[tokio::test]
async fn a_follow_up_before_publication_with_known_attributes_schedules_nothing() {
    let h = harness(Settings::default(), vec![], vec![]);
    h.receive(raw_alert("k1", &["192.0.2.1"])).await;
    let before = h.runtime.queue().stats().await.unwrap().pending;
    h.until(t0() + minutes(6)).await; // dispatched
    let queued = h.runtime.queue().stats().await.unwrap();
    let mut follow_up = raw_alert("k1", &["192.0.2.1"]);
    follow_up["description"] = json!("follow-up");
    h.receive(follow_up).await;
    assert_eq!(
        h.runtime.queue().stats().await.unwrap(),
        queued,
        "no job for a follow-up with nothing new"
    );
    assert!(before >= 1);
    h.drain().await;
    assert_eq!(h.emitted().len(), 1);
    assert_eq!(h.emitted()[0].alerts.len(), 2);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Whatever the discovery graph, inspection ends, and no attribute is inspected twice.
        #[test]
        fn the_feedback_loop_always_terminates(edges in proptest::collection::vec((0u8..12, 0u8..12), 0..40), depth in 0u32..6) {
            let edges = Arc::new(edges);
            let e2 = edges.clone();
            let ins = Arc::new(TestInspector::new("graph", move |t| {
                let n: u8 = t.attribute.value.parse().unwrap();
                Ok(Inspection { sections: vec![], new_attributes: e2.iter().filter(|(a, _)| *a == n).map(|(_, b)| Attribute {
                    attr_type: "node".into(), key: String::new(), value: b.to_string(), context: vec![], timestamp: None }).collect() })
            }));
            let settings = Settings { max_depth: depth, ..Settings::default() };
            rt().block_on(async {
                let h = harness(settings, vec![ins.clone()], vec![]);
                h.receive(json!({"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"node","value":"0"}]})).await;
                h.drain().await;
                let calls = ins.calls();
                let mut unique = calls.clone();
                unique.sort();
                unique.dedup();
                prop_assert_eq!(calls.len(), unique.len(), "an attribute was inspected twice");
                prop_assert!(calls.len() <= 12);
                prop_assert_eq!(h.emitted().len(), 1);
                Ok(())
            })?;
        }

        /// Any arrival pattern of alerts: within one window one key never has two reports.
        #[test]
        fn aggregation_never_opens_two_reports_for_one_key(arrivals in proptest::collection::vec((0u8..4, 0u32..400), 1..30)) {
            let settings = Settings { aggregation_window: Duration::from_secs(3600), ..Settings::default() };
            rt().block_on(async {
                let h = harness(settings, vec![], vec![]);
                let mut arrivals = arrivals.clone();
                arrivals.sort_by_key(|a| a.1);
                let mut opened: std::collections::HashMap<u8, Vec<(DateTime<Utc>, String)>> = Default::default();
                for (i, (key, minute)) in arrivals.iter().enumerate() {
                    h.until(t0() + minutes(*minute as i64)).await;
                    let mut a = raw_alert(&format!("k{key}"), &[]);
                    a["description"] = json!(format!("alert {i}"));
                    let r = h.receive(a).await;
                    let list = opened.entry(*key).or_default();
                    if r.status == ReportStatus::New {
                        if let Some((t, _)) = list.last() {
                            prop_assert!(h.clock.now() - *t >= chrono::Duration::hours(1), "second report inside the window");
                        }
                        list.push((h.clock.now(), r.report_id));
                    } else {
                        prop_assert_eq!(&list.last().unwrap().1, &r.report_id);
                    }
                }
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn a_review_run_again_after_a_crash_does_not_deliver_twice() {
    let h = harness(Settings::default(), vec![], vec![]);
    let r = h.receive(raw_alert("k1", &["192.0.2.1"])).await;
    h.until(t0() + minutes(10) - chrono::Duration::seconds(1))
        .await;
    h.clock.advance(Duration::from_secs(1));
    // The review job ran to its end, but the process died before the queue recorded
    // it: on restart the same job (same publisher) runs again.
    let job = Job::Review {
        report_id: r.report_id.clone(),
        version: 1,
    };
    h.runtime.pipeline().run_job(&job, 0).await.unwrap();
    h.runtime.pipeline().run_job(&job, 1).await.unwrap();
    h.drain().await;
    assert_eq!(h.emitted().len(), 1, "one delivery of version 1");
    // A different publisher finding v1 published leaves it alone.
    let other = alertresponder_core::pipeline::review(
        h.runtime.pipeline(),
        &r.report_id,
        1,
        "someone-else",
    )
    .await
    .unwrap();
    assert_eq!(
        other,
        alertresponder_core::pipeline::ReviewOutcome::AlreadyPublished {
            version: 1,
            republished: false
        }
    );
    h.drain().await;
    assert_eq!(h.emitted().len(), 1, "and delivers nothing");
}

#[tokio::test]
async fn a_message_redelivered_after_publication_publishes_nothing_new() {
    let h = harness(Settings::default(), vec![], vec![]);
    let opener = raw_alert("k1", &["192.0.2.1"]).to_string();
    let mut late = raw_alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late");
    let late = late.to_string();
    let p = h.runtime.pipeline();
    p.receive(opener.as_bytes(), Some("m-1")).await.unwrap();
    h.until(t0() + minutes(20)).await;
    p.receive(late.as_bytes(), Some("m-2")).await.unwrap();
    h.drain().await;
    assert_eq!(h.emitted().len(), 2, "v1, and v2 for the late alert");
    for (raw, id) in [(&opener, "m-1"), (&late, "m-2")] {
        let r = p.receive(raw.as_bytes(), Some(id)).await.unwrap();
        assert!(r.duplicate);
    }
    h.drain().await;
    assert_eq!(h.emitted().len(), 2, "redeliveries re-review nothing");
}
