//! Across the steps, in virtual time: what a user of AlertResponder relies on. The
//! embedded runtime proves the same through SQLite and its job queue.

use super::*;
use crate::model::{InspectionStatus, ReportStatus, Severity};
use crate::pipeline::{review, ReviewOutcome};

#[tokio::test]
async fn alerts_with_one_key_inside_the_window_make_one_report_reviewed_after_review_delay() {
    let h = harness(Settings::default());
    let first = h.receive(&alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(4)).await;
    let second = h.receive(&alert("k1", &["192.0.2.2"]), "sns-2").await;
    assert_eq!(
        (second.status, second.report_id.as_str()),
        (ReportStatus::More, first.report_id.as_str())
    );
    h.drain().await;
    let published = h.published();
    assert_eq!(published.len(), 1, "one publication");
    let r = &published[0];
    assert_eq!((r.alerts.len(), r.version), (2, 1));
    assert_eq!(r.status, ReportStatus::Published);
    assert_eq!(r.result.severity, Severity::Unclassified, "no reviewer");
    assert_eq!(
        r.published_at,
        Some(t0() + minutes(10)),
        "review_delay counts from the opening"
    );
}

#[tokio::test]
async fn an_alert_after_the_window_makes_a_report_of_its_own() {
    let h = harness(Settings {
        aggregation_window: Duration::from_secs(3600),
        ..Settings::default()
    });
    let a = h.receive(&alert("k1", &[]), "sns-1").await;
    h.until(t0() + minutes(61)).await;
    let b = h.receive(&alert("k1", &["192.0.2.9"]), "sns-2").await;
    assert_ne!(a.report_id, b.report_id);
    assert_eq!(b.status, ReportStatus::New);
    h.drain().await;
    let ids: Vec<String> = h.published().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, [a.report_id, b.report_id]);
}

#[tokio::test]
async fn redelivered_messages_are_stored_once() {
    let h = harness(Settings::default());
    let raw = alert("k1", &["192.0.2.1"]).to_string();
    h.p.receive(raw.as_bytes(), Some("sns-1")).await.unwrap();
    h.p.receive(raw.as_bytes(), Some("sns-1")).await.unwrap();
    h.p.receive(raw.as_bytes(), None).await.unwrap();
    h.p.receive(raw.as_bytes(), None).await.unwrap();
    h.drain().await;
    assert_eq!(
        h.published()[0].alerts.len(),
        2,
        "sns-1 once, and the content-identified message once"
    );
}

#[tokio::test]
async fn an_attribute_seen_in_two_alerts_of_a_report_is_inspected_once() {
    let ins = Arc::new(TestInspector::new("intel", |t| Ok(host_section(t))));
    let h = harness(Settings::default()).with_inspectors(vec![ins.clone()]);
    h.receive(&alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    h.until(t0() + minutes(1)).await;
    h.receive(&alert("k1", &["192.0.2.2", "192.0.2.3"]), "sns-2")
        .await;
    h.drain().await;
    let mut calls = ins.calls();
    calls.sort();
    assert_eq!(calls, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let r = &h.published()[0];
    assert_eq!((r.sections.len(), r.attributes.len()), (3, 3));
}

/// Every answer discovers the next address: an endless chain.
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
    let h = harness(Settings {
        max_depth: 3,
        ..Settings::default()
    })
    .with_inspectors(vec![ins.clone()]);
    h.receive(&alert("k1", &["10.0.0.0"]), "sns-1").await;
    h.drain().await;
    assert_eq!(ins.calls().len(), 4, "depth 0, 1, 2 and 3");
    let r = &h.published()[0];
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
    // a -> b -> a: the per-report claims stop it whatever the depth.
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
    let h = harness(Settings {
        max_depth: 10,
        ..Settings::default()
    })
    .with_inspectors(vec![ins.clone()]);
    let raw = json!({"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"domain","value":"a.example"}]});
    h.receive(&raw, "sns-1").await;
    h.drain().await;
    assert_eq!(ins.calls().len(), 2);
}

#[tokio::test]
async fn the_per_report_attribute_cap_is_recorded_not_silently_dropped() {
    let h = harness(Settings {
        max_attributes_per_report: 2,
        ..Settings::default()
    })
    .with_inspectors(vec![Arc::new(chain())]);
    h.receive(
        &alert("k1", &["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
        "sns-1",
    )
    .await;
    h.drain().await;
    let r = &h.published()[0];
    assert_eq!(r.attributes.len(), 2);
    let skipped: Vec<&str> = r
        .inspections
        .iter()
        .filter(|i| i.status == InspectionStatus::Skipped)
        .map(|i| i.attribute.value.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["192.0.2.3", "10.0.0.2", "10.0.0.3"],
        "the alert's third and both discoveries"
    );
    assert!(r
        .inspections
        .iter()
        .filter(|i| i.status == InspectionStatus::Skipped)
        .all(|i| i.detail.as_deref().unwrap().contains("cap of 2")));
}

#[tokio::test(start_paused = true)]
async fn failing_and_slow_inspectors_are_recorded_and_the_others_still_count() {
    let good = Arc::new(TestInspector::new("good", |t| Ok(host_section(t))));
    let bad = Arc::new(TestInspector::new("bad", |_| {
        Err(PluginError::Failed("exit status 3: boom".into()))
    }));
    let empty = Arc::new(TestInspector::new("empty", |_| Ok(Inspection::default())));
    let mut slow = TestInspector::new("slow", |t| Ok(host_section(t)));
    slow.timeout = Duration::from_millis(50);
    slow.delay = Duration::from_secs(5);
    let h = harness(Settings::default()).with_inspectors(vec![good, bad, empty, Arc::new(slow)]);
    h.receive(&alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.drain().await;
    let r = &h.published()[0];
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
}

#[tokio::test]
async fn an_alert_joining_after_publication_publishes_version_two_with_the_previous_result() {
    let h = harness(Settings::default()).with_reviewers(vec![Arc::new(decides(
        "p",
        Severity::Urgent,
        "r",
    ))]);
    let a = h.receive(&alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(30)).await;
    assert_eq!(h.published().len(), 1);
    let mut late = alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late, nothing new to inspect");
    let b = h.receive(&late, "sns-2").await;
    assert_eq!(b.report_id, a.report_id);
    h.until(t0() + minutes(35)).await;
    let c = h.receive(&alert("k1", &["192.0.2.7"]), "sns-3").await; // something new
    assert_eq!(c.report_id, a.report_id);
    h.drain().await;
    let published = h.published();
    let versions: Vec<(u32, usize)> = published
        .iter()
        .map(|r| (r.version, r.alerts.len()))
        .collect();
    assert_eq!(
        versions,
        [(1, 1), (2, 3)],
        "one re-review covers both late alerts"
    );
    let v2 = &published[1];
    assert_eq!(
        v2.previous_result.as_ref().unwrap().severity,
        Severity::Urgent
    );
    // review_delay after the first late alert, once the dispatch of the second one's
    // new attribute, due at the same moment, has run
    assert_eq!(v2.published_at, Some(t0() + minutes(40)));
    assert_eq!(v2.attributes.len(), 2);
}

#[tokio::test]
async fn a_follow_up_before_publication_with_known_attributes_adds_no_work() {
    let h = harness(Settings::default());
    h.receive(&alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(6)).await; // dispatched
    let pending = h.pending();
    let mut follow_up = alert("k1", &["192.0.2.1"]);
    follow_up["description"] = json!("follow-up");
    h.receive(&follow_up, "sns-2").await;
    assert_eq!(
        h.pending(),
        pending,
        "no job for a follow-up with nothing new"
    );
    h.drain().await;
    assert_eq!(h.published().len(), 1);
    assert_eq!(h.published()[0].alerts.len(), 2);
}

#[tokio::test]
async fn a_review_run_again_after_a_crash_does_not_publish_twice() {
    let h = harness(Settings::default());
    let r = h.receive(&alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(10) - chrono::Duration::seconds(1))
        .await;
    h.clock.advance(Duration::from_secs(1));
    // The review ran to its end, but the runtime died before it recorded so: the same
    // job (same publisher) runs again, and hands on the same copy.
    let job = h.rt.scheduler.take_next(h.now()).unwrap().0;
    h.p.run_job(&job, 0).await.unwrap();
    h.p.run_job(&job, 1).await.unwrap();
    h.drain().await;
    let published = h.published();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], published[1], "one version, handed on again");
    let other = review(&h.p, &r.report_id, 1, "someone-else").await.unwrap();
    assert_eq!(
        other,
        ReviewOutcome::AlreadyPublished {
            version: 1,
            republished: false
        }
    );
    assert_eq!(h.published().len(), 2);
}

#[tokio::test]
async fn the_handlers_run_end_to_end_with_feedback_and_a_late_alert() {
    let h = harness(Settings::default()).with_inspectors(vec![Arc::new(resolver())]);
    let first = h
        .receive(&alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    assert_eq!(first.status, ReportStatus::New);
    h.clock.advance(Duration::from_secs(60));
    let second = h
        .receive(&alert("k1", &["192.0.2.2", "192.0.2.3"]), "sns-2")
        .await;
    assert_eq!(
        (second.status, second.report_id.as_str()),
        (ReportStatus::More, first.report_id.as_str())
    );
    let again = h
        .receive(&alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    assert!(again.duplicate);
    assert_eq!(
        again.status,
        ReportStatus::New,
        "a retried opener still owns its report"
    );
    h.drain().await;
    let published = h.published();
    assert_eq!(published.len(), 1, "one publication");
    let r = &published[0];
    assert_eq!((r.version, r.alerts.len()), (1, 2));
    assert_eq!(
        r.attributes.len(),
        6,
        "three IPs and three discovered domains"
    );
    assert_eq!((r.sections.len(), r.inspections.len()), (6, 6));
    assert_eq!(
        h.store()
            .published_report(&r.id, 1)
            .await
            .unwrap()
            .map(|(rep, _)| rep),
        Some(r.clone())
    );
    // A late alert joins the published report: version 2, with the result before.
    h.clock.advance(Duration::from_secs(1800));
    let late = h.receive(&alert("k1", &["192.0.2.9"]), "sns-3").await;
    assert_eq!(late.report_id, first.report_id);
    h.drain().await;
    let published = h.published();
    assert_eq!(published.len(), 2);
    assert_eq!((published[1].version, published[1].alerts.len()), (2, 3));
    assert_eq!(published[1].previous_result, Some(r.result.clone()));
    assert_eq!(published[1].attributes.len(), 8);
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
            rt().block_on(async {
                let h = harness(Settings { max_depth: depth, ..Settings::default() }).with_inspectors(vec![ins.clone()]);
                h.receive(&json!({"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"node","value":"0"}]}), "m").await;
                h.drain().await;
                let calls = ins.calls();
                let mut unique = calls.clone();
                unique.sort();
                unique.dedup();
                prop_assert_eq!(calls.len(), unique.len(), "an attribute was inspected twice");
                prop_assert!(calls.len() <= 12);
                prop_assert_eq!(h.published().len(), 1);
                Ok(())
            })?;
        }

        /// Any arrival pattern of alerts: within one window one key never has two reports.
        #[test]
        fn aggregation_never_opens_two_reports_for_one_key(arrivals in proptest::collection::vec((0u8..4, 0u32..400), 1..30)) {
            rt().block_on(async {
                let h = harness(Settings { aggregation_window: Duration::from_secs(3600), ..Settings::default() });
                let mut arrivals = arrivals.clone();
                arrivals.sort_by_key(|a| a.1);
                let mut opened: std::collections::HashMap<u8, Vec<(DateTime<Utc>, String)>> = Default::default();
                for (i, (key, minute)) in arrivals.iter().enumerate() {
                    h.until(t0() + minutes(i64::from(*minute))).await;
                    let r = h.receive(&alert(&format!("k{key}"), &[]), &format!("m{i}")).await;
                    let list = opened.entry(*key).or_default();
                    if r.status == ReportStatus::New {
                        if let Some((t, _)) = list.last() {
                            prop_assert!(h.now() - *t >= chrono::Duration::hours(1), "second report inside the window");
                        }
                        list.push((h.now(), r.report_id));
                    } else {
                        prop_assert_eq!(&list.last().unwrap().1, &r.report_id);
                    }
                }
                Ok(())
            })?;
        }
    }
}
