//! Step 4, inspect: findings kept, discoveries fed back within depth and cap, every
//! inspector's outcome recorded.

use super::*;
use crate::model::{InspectionRecord, InspectionStatus};
use crate::pipeline::inspect;

impl Harness {
    /// A report of one alert naming `ips`, its attributes claimed by its dispatch;
    /// returns the report and the dispatch's tasks.
    async fn dispatched(&self, ips: &[&str]) -> (String, Vec<Task>) {
        let r = self.receive(&raw_alert("k1", ips), "sns-1").await;
        let job = Job::Dispatch {
            report_id: r.report_id.clone(),
            message_id: "sns-1".into(),
        };
        self.p.run_job(&job, 0).await.unwrap();
        (r.report_id, self.rt.tasks.take())
    }

    async fn inspect(&self, task: &Task) {
        inspect(
            self.store(),
            &*self.p.tasks,
            &self.p.inspectors,
            &*self.p.clock,
            &self.p.settings,
            task,
        )
        .await
        .unwrap();
    }

    /// The inspection records of a report, by inspector name.
    async fn outcome(&self, report_id: &str, inspector: &str) -> InspectionRecord {
        self.state(report_id)
            .await
            .inspections
            .into_iter()
            .find(|i| i.inspector == inspector)
            .unwrap()
    }
}

fn discovers(name: &str, found: &'static [&'static str]) -> TestInspector {
    TestInspector::new(name, move |_| {
        Ok(Inspection {
            sections: vec![],
            new_attributes: found.iter().map(|v| domain(v)).collect(),
        })
    })
}

#[tokio::test]
async fn sections_are_kept_per_inspector_and_an_empty_answer_is_nothing_found() {
    let good = Arc::new(TestInspector::new("good", |t| Ok(host_section(t))));
    let empty = Arc::new(TestInspector::new("empty", |_| Ok(Inspection::default())));
    let h = harness(Settings::default()).with_inspectors(vec![good.clone(), empty.clone()]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.clock.advance(Duration::from_secs(1));
    h.inspect(&tasks[0]).await;
    let state = h.state(&id).await;
    assert_eq!(state.sections.len(), 1);
    let s = &state.sections[0];
    assert_eq!(
        (
            s.report_id.as_str(),
            s.author.as_str(),
            s.section_type.as_str()
        ),
        (id.as_str(), "good", "host")
    );
    assert_eq!(s.attribute, ip("192.0.2.1"));
    assert_eq!(s.content, json!({"ipaddr": ["192.0.2.1"]}));
    let good = h.outcome(&id, "good").await;
    assert_eq!(
        (good.status, good.detail, good.at),
        (
            InspectionStatus::Ok,
            None,
            t0() + chrono::Duration::seconds(1)
        )
    );
    assert_eq!(
        h.outcome(&id, "empty").await.status,
        InspectionStatus::NothingFound
    );
}

#[tokio::test]
async fn discovered_attributes_are_claimed_and_fed_back_one_level_deeper() {
    let h = harness(Settings::default()).with_inspectors(vec![Arc::new(resolver())]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    // The task carries when its review is due, and what it finds carries it on.
    assert!(tasks[0].review_at.is_some());
    h.inspect(&tasks[0]).await;
    let fed_back = h.rt.tasks.take();
    assert_eq!(
        fed_back,
        [Task {
            report_id: id.clone(),
            attribute: domain("192.0.2.1.example"),
            depth: 1,
            review_at: tasks[0].review_at,
        }]
    );
    assert_eq!(
        h.state(&id).await.attributes,
        [ip("192.0.2.1"), domain("192.0.2.1.example")]
    );
    // The domain's own inspection finds nothing more; an attribute the report has
    // already is not fed back again.
    h.inspect(&fed_back[0]).await;
    assert!(h.rt.tasks.take().is_empty());
    let again = discovers("again", &["192.0.2.1.example"]);
    let h2 =
        harness(Settings::default()).with_inspectors(vec![Arc::new(resolver()), Arc::new(again)]);
    let (_, tasks) = h2.dispatched(&["192.0.2.1"]).await;
    h2.inspect(&tasks[0]).await;
    assert_eq!(
        h2.rt.tasks.take().len(),
        1,
        "found by two inspectors, one task"
    );
}

#[tokio::test]
async fn discoveries_beyond_the_maximum_depth_are_recorded_as_skipped() {
    let h = harness(Settings {
        max_depth: 1,
        ..Settings::default()
    })
    .with_inspectors(vec![Arc::new(discovers("chain", &["deep.example"]))]);
    let (id, mut tasks) = h.dispatched(&["192.0.2.1"]).await;
    tasks[0].depth = 1;
    h.inspect(&tasks[0]).await;
    assert!(h.rt.tasks.take().is_empty());
    let state = h.state(&id).await;
    assert_eq!(state.attributes, [ip("192.0.2.1")], "not claimed");
    let skipped = h.outcome(&id, "alertresponder").await;
    assert_eq!(skipped.status, InspectionStatus::Skipped);
    assert_eq!(skipped.attribute, domain("deep.example"));
    assert_eq!(
        skipped.detail.as_deref(),
        Some("found by chain at depth 2, beyond the maximum depth 1")
    );
    assert_eq!(h.outcome(&id, "chain").await.status, InspectionStatus::Ok);
}

#[tokio::test]
async fn discoveries_past_the_report_cap_are_recorded_as_skipped() {
    let h = harness(Settings {
        max_attributes_per_report: 1,
        ..Settings::default()
    })
    .with_inspectors(vec![Arc::new(discovers("finder", &["more.example"]))]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;
    assert!(h.rt.tasks.take().is_empty());
    let skipped = h.outcome(&id, "alertresponder").await;
    assert_eq!(
        (skipped.status, skipped.attribute.value.as_str()),
        (InspectionStatus::Skipped, "more.example")
    );
    assert!(
        skipped.detail.as_deref().unwrap().contains("cap of 1"),
        "{skipped:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_inspector_that_does_not_answer_in_time_is_recorded_and_the_others_kept() {
    let good = Arc::new(TestInspector::new("good", |t| Ok(host_section(t))));
    let slow = TestInspector::new("slow", |t| Ok(host_section(t)))
        .slow(Duration::from_secs(3600), Duration::from_secs(1));
    let h = harness(Settings::default()).with_inspectors(vec![good, Arc::new(slow)]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    let started = tokio::time::Instant::now();
    h.inspect(&tasks[0]).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "waited for the timeout only"
    );
    let slow = h.outcome(&id, "slow").await;
    assert_eq!(
        (slow.status, slow.detail.as_deref()),
        (InspectionStatus::TimedOut, Some("no answer within 1s"))
    );
    let state = h.state(&id).await;
    let authors: Vec<&str> = state.sections.iter().map(|s| s.author.as_str()).collect();
    assert_eq!(authors, ["good"]);
}

#[tokio::test]
async fn a_failing_inspector_is_recorded_and_the_others_kept() {
    let good = Arc::new(TestInspector::new("good", |t| Ok(host_section(t))));
    let bad = Arc::new(TestInspector::new("bad", |_| {
        Err(PluginError::Failed("exit status 3: boom".into()))
    }));
    let garbled = Arc::new(TestInspector::new("garbled", |_| {
        Err(PluginError::InvalidOutput("expected an object".into()))
    }));
    let h = harness(Settings::default()).with_inspectors(vec![bad, good, garbled]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;
    let bad = h.outcome(&id, "bad").await;
    assert_eq!(
        (bad.status, bad.detail.as_deref()),
        (InspectionStatus::Failed, Some("exit status 3: boom"))
    );
    let garbled = h.outcome(&id, "garbled").await;
    assert_eq!(garbled.status, InspectionStatus::Failed);
    assert!(garbled.detail.unwrap().contains("invalid output"));
    assert_eq!(h.outcome(&id, "good").await.status, InspectionStatus::Ok);
    assert_eq!(h.state(&id).await.sections.len(), 1);
}

#[tokio::test]
async fn inspectors_only_get_the_attributes_they_accept() {
    let dns = Arc::new(TestInspector::new("dns", |t| Ok(host_section(t))).accepting(&["domain"]));
    let h = harness(Settings::default()).with_inspectors(vec![dns.clone()]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;
    assert!(dns.calls().is_empty());
    assert!(h.state(&id).await.inspections.is_empty(), "nothing ran");
    let task = Task {
        report_id: id.clone(),
        attribute: domain("x.example"),
        depth: 1,
        review_at: None,
    };
    h.inspect(&task).await;
    assert_eq!(dns.calls(), ["x.example"]);
}

#[tokio::test]
async fn answers_over_the_bounds_are_cut_and_the_cut_noted() {
    let big = TestInspector::new("big", |t| {
        Ok(Inspection {
            sections: (0..3)
                .map(|_| host_section(t).sections[0].clone())
                .collect(),
            new_attributes: vec![domain("a.example"), domain("b.example")],
        })
    });
    let h = harness(Settings {
        max_sections_per_inspection: 2,
        max_new_attributes_per_inspection: 1,
        ..Settings::default()
    })
    .with_inspectors(vec![Arc::new(big)]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;
    assert_eq!(h.state(&id).await.sections.len(), 2);
    let fed: Vec<String> =
        h.rt.tasks
            .take()
            .into_iter()
            .map(|t| t.attribute.value)
            .collect();
    assert_eq!(fed, ["a.example"]);
    let outcome = h.outcome(&id, "big").await;
    assert_eq!(
        (outcome.status, outcome.detail.as_deref()),
        (
            InspectionStatus::Ok,
            Some("3 sections, kept 2; 2 new attributes, kept 1")
        )
    );
}

#[tokio::test]
async fn a_retried_inspection_replaces_its_findings_in_place() {
    let h = harness(Settings::default()).with_inspectors(vec![Arc::new(resolver())]);
    let (id, tasks) = h.dispatched(&["192.0.2.1", "192.0.2.2"]).await;
    for task in &tasks {
        h.inspect(task).await;
    }
    let first = h.state(&id).await;
    let fed = h.rt.tasks.take();
    h.inspect(&tasks[0]).await;
    assert_eq!(
        h.state(&id).await,
        first,
        "the same findings, in the same places"
    );
    assert_eq!(
        h.rt.tasks.take(),
        fed[..1],
        "the discovery fed back again: its first try may have lost it"
    );
}

/// Section content whose JSON is `bytes` long or a little more.
fn huge_content(bytes: usize) -> Value {
    json!({ "blob": "é".repeat(bytes / 2) })
}

#[tokio::test]
async fn a_section_over_the_bound_is_stored_cut_with_a_note_and_the_rest_written() {
    use crate::fit::{MAX_SECTION_BYTES, SECTION_PREVIEW_BYTES};
    let big = Arc::new(TestInspector::new("big", |t| {
        let mut sections = host_section(t).sections;
        sections.insert(
            0,
            SectionDraft {
                section_type: "binary".into(),
                content: huge_content(1024 * 1024),
            },
        );
        Ok(Inspection {
            sections,
            new_attributes: vec![domain("found.example")],
        })
    }));
    let good = Arc::new(TestInspector::new("good", |t| Ok(host_section(t))));
    let h = harness(Settings::default()).with_inspectors(vec![big, good]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;

    let state = h.state(&id).await;
    let by: Vec<(&str, &str)> = state
        .sections
        .iter()
        .map(|s| (s.author.as_str(), s.section_type.as_str()))
        .collect();
    assert_eq!(by, [("big", "binary"), ("big", "host"), ("good", "host")]);
    let cut = &state.sections[0].content;
    let original = serde_json::to_string(&huge_content(1024 * 1024))
        .unwrap()
        .len();
    assert_eq!(
        cut["cut"],
        format!("section content of {original} bytes exceeded the {MAX_SECTION_BYTES}-byte bound")
    );
    let preview = cut["preview"].as_str().unwrap();
    assert!(preview.starts_with(r#"{"blob":"éé"#) && preview.len() <= SECTION_PREVIEW_BYTES);
    assert!(serde_json::to_string(cut).unwrap().len() <= MAX_SECTION_BYTES);
    assert_eq!(
        state.sections[1].content,
        json!({"ipaddr": ["192.0.2.1"]}),
        "the sections after it are kept whole"
    );
    let big = h.outcome(&id, "big").await;
    assert_eq!(big.status, InspectionStatus::Ok);
    assert_eq!(
        big.detail.as_deref(),
        Some(
            format!(
                "section 0 cut: its content was {original} bytes, over the {MAX_SECTION_BYTES}-byte bound"
            )
            .as_str()
        )
    );
    assert_eq!(h.outcome(&id, "good").await.status, InspectionStatus::Ok);
    assert_eq!(
        h.rt.tasks.take().len(),
        1,
        "its discovery is fed back all the same"
    );
}

#[tokio::test]
async fn a_discovered_attribute_too_large_or_invalid_is_recorded_skipped_with_why() {
    use crate::fit::MAX_NEW_ATTRIBUTE_VALUE_BYTES;
    let finder = Arc::new(TestInspector::new("finder", |_| {
        let mut long_type = domain("typed.example");
        long_type.attr_type = "t".repeat(5000);
        Ok(Inspection {
            sections: vec![],
            new_attributes: vec![
                domain(&"a".repeat(1024 * 1024)),
                long_type,
                domain("fine.example"),
            ],
        })
    }));
    let h = harness(Settings::default()).with_inspectors(vec![finder]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;

    let fed: Vec<String> =
        h.rt.tasks
            .take()
            .into_iter()
            .map(|t| t.attribute.value)
            .collect();
    assert_eq!(fed, ["fine.example"], "only the valid one is claimed");
    let state = h.state(&id).await;
    assert_eq!(state.attributes, [ip("192.0.2.1"), domain("fine.example")]);
    let skipped: Vec<&InspectionRecord> = state
        .inspections
        .iter()
        .filter(|r| r.status == InspectionStatus::Skipped)
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:#?}");
    let long_value = skipped
        .iter()
        .find(|r| r.attribute.value.starts_with("aaa"))
        .unwrap();
    assert!(
        long_value.attribute.value.len() < MAX_NEW_ATTRIBUTE_VALUE_BYTES + 64,
        "the record carries a cut copy"
    );
    assert_eq!(
        long_value.detail.as_deref(),
        Some(
            format!(
                "found by finder, not inspected: value: {} bytes, over the limit of {MAX_NEW_ATTRIBUTE_VALUE_BYTES}",
                1024 * 1024
            )
            .as_str()
        )
    );
    let long_type = skipped
        .iter()
        .find(|r| r.attribute.value == "typed.example")
        .unwrap();
    let why = long_type.detail.as_deref().unwrap();
    assert!(
        why.contains("attribute.type") && why.contains("over the limit of 1024"),
        "{why}"
    );
    let finder = h.outcome(&id, "finder").await;
    assert_eq!(
        finder.detail.as_deref(),
        Some("2 new attributes skipped as invalid (see their records)")
    );
}

#[tokio::test]
async fn an_attribute_is_pending_until_its_inspection_is_marked_and_a_crash_before_the_mark_leaves_it_pending(
) {
    let first = Arc::new(TestInspector::new("first", |_| Ok(Inspection::default())));
    let last = Arc::new(TestInspector::new("last", |_| Ok(Inspection::default())));
    let h = harness(Settings::default()).with_inspectors(vec![first, last]);
    let (id, tasks) = h.dispatched(&["192.0.2.1", "192.0.2.2"]).await;
    assert_eq!(
        h.state(&id).await.pending,
        [ip("192.0.2.1"), ip("192.0.2.2")]
    );
    h.inspect(&tasks[0]).await;
    assert_eq!(h.state(&id).await.pending, [ip("192.0.2.2")]);
    // Store calls of this inspection: the first outcome, then the last, which also
    // marks the attribute inspected. A crash at the last leaves the first kept and
    // the attribute still pending.
    h.crash.crash_at(2, crate::memory::Crash::Before);
    let err = inspect(
        h.store(),
        &*h.p.tasks,
        &h.p.inspectors,
        &*h.p.clock,
        &h.p.settings,
        &tasks[1],
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let state = h.state(&id).await;
    assert_eq!(state.pending, [ip("192.0.2.2")]);
    assert_eq!(state.inspections.len(), 3, "its first outcome was kept");
    // The retry marks it.
    h.inspect(&tasks[1]).await;
    let state = h.state(&id).await;
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert_eq!(state.inspections.len(), 4, "replaced in place");
    let counts = h.store().report_counts(&id).await.unwrap().unwrap();
    assert_eq!((counts.alerts, counts.attributes), (1, 2));
}

/// An inspector rate limited for its first `limited` calls, asking to wait `wait`.
fn limited_then_ok(name: &str, limited: usize, wait: Duration) -> TestInspector {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    TestInspector::new(name, move |t| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < limited {
            Err(PluginError::RateLimited {
                retry_after: Some(wait),
            })
        } else {
            Ok(host_section(t))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_inspector_is_asked_again_after_the_wait_while_the_review_is_ahead() {
    // Review due 600 s after the opening: two waits of 60 s fit.
    let vt = Arc::new(limited_then_ok("vt", 2, Duration::from_secs(60)));
    let h = harness(Settings::default()).with_inspectors(vec![vt.clone()]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    let started = tokio::time::Instant::now();
    h.inspect(&tasks[0]).await;
    assert_eq!(vt.calls().len(), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(120));
    assert_eq!(h.outcome(&id, "vt").await.status, InspectionStatus::Ok);
    assert_eq!(h.state(&id).await.sections.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_inspector_rate_limited_until_the_review_is_recorded_as_rate_limited_never_clean() {
    // The quota reopens in an hour; the review is due in ten minutes.
    let vt = Arc::new(limited_then_ok("vt", usize::MAX, Duration::from_secs(3600)));
    let other = Arc::new(TestInspector::new("geo", |t| Ok(host_section(t))));
    let h = harness(Settings::default()).with_inspectors(vec![vt.clone(), other]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;
    assert_eq!(vt.calls().len(), 1, "no wait fits: asked once");
    let record = h.outcome(&id, "vt").await;
    assert_eq!(record.status, InspectionStatus::RateLimited);
    assert!(
        record.detail.as_deref().unwrap_or("").contains("3600s"),
        "{record:?}"
    );
    // The other inspector's findings are kept, and the attribute is no longer pending.
    assert_eq!(h.outcome(&id, "geo").await.status, InspectionStatus::Ok);
    assert!(h.state(&id).await.pending.is_empty());
}

#[tokio::test(start_paused = true)]
async fn waits_are_bounded_by_max_rate_limit_wait_and_counted_not_read_from_the_clock() {
    // Virtual time does not move while the job runs: the waits are counted, so a
    // limiter asking for a second again and again ends after the budget.
    let settings = Settings {
        max_rate_limit_wait: Duration::from_secs(5),
        ..Settings::default()
    };
    let vt = Arc::new(limited_then_ok("vt", usize::MAX, Duration::from_secs(1)));
    let h = harness(settings).with_inspectors(vec![vt.clone()]);
    let (id, tasks) = h.dispatched(&["192.0.2.1"]).await;
    h.inspect(&tasks[0]).await;
    assert_eq!(
        vt.calls().len(),
        6,
        "the first call and five one-second waits"
    );
    assert_eq!(
        h.outcome(&id, "vt").await.status,
        InspectionStatus::RateLimited
    );
}

#[tokio::test]
async fn a_task_that_names_no_review_is_not_retried() {
    let vt = Arc::new(limited_then_ok("vt", 1, Duration::from_millis(1)));
    let h = harness(Settings::default()).with_inspectors(vec![vt.clone()]);
    let (id, mut tasks) = h.dispatched(&["192.0.2.1"]).await;
    tasks[0].review_at = None;
    h.inspect(&tasks[0]).await;
    assert_eq!(vt.calls().len(), 1);
    assert_eq!(
        h.outcome(&id, "vt").await.status,
        InspectionStatus::RateLimited
    );
}

#[tokio::test]
async fn a_value_an_inspector_does_not_look_up_is_skipped_with_why() {
    let vt = Arc::new(TestInspector::new("vt", |t| {
        Err(PluginError::Skipped(format!(
            "{:?} is not an IP address",
            t.attribute.value
        )))
    }));
    let h = harness(Settings::default()).with_inspectors(vec![vt]);
    let (id, tasks) = h.dispatched(&["not-an-ip"]).await;
    h.inspect(&tasks[0]).await;
    let record = h.outcome(&id, "vt").await;
    assert_eq!(record.status, InspectionStatus::Skipped);
    assert_eq!(
        record.detail.as_deref(),
        Some("\"not-an-ip\" is not an IP address")
    );
}
