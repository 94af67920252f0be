//! Step 1, receive: open or join, store once, schedule what the alert needs.

use super::*;
use crate::error::CoreError;
use crate::model::{Job, ReportStatus};
use crate::pipeline::MAX_ERROR_INPUT_BYTES;
use crate::validate::MAX_ALERT_BYTES;

#[tokio::test]
async fn an_alert_opens_a_report_and_schedules_its_dispatch_after_the_inspection_delay() {
    let h = harness(Settings::default());
    let raw = raw_alert("k1", &["192.0.2.1"]);
    let r = h.receive(&raw, "sns-1").await;
    let id = report_of("k1", "sns-1");
    assert_eq!(
        r,
        Receipt {
            report_id: id.clone(),
            alert_id: alert_id("k1"),
            status: ReportStatus::New,
            duplicate: false,
        }
    );
    let meta = h.store().report_meta(&id).await.unwrap().unwrap();
    assert_eq!((meta.opened_by.as_str(), meta.created_at), ("sns-1", t0()));
    let counts = h.store().report_counts(&id).await.unwrap().unwrap();
    assert_eq!((counts.alerts, counts.attributes), (1, 0));
    let stored = h.store().get_alert(&id, "sns-1").await.unwrap().unwrap();
    assert_eq!(stored.attributes, [ip("192.0.2.1")]);
    assert_eq!(
        stored.timestamp,
        t0(),
        "a missing timestamp is the receive time"
    );
    assert_eq!(
        h.pending(),
        [(format!("dispatch:{id}:sns-1"), t0() + minutes(5))]
    );
}

#[tokio::test]
async fn an_alert_with_the_same_key_joins_and_only_an_alert_with_something_new_is_dispatched() {
    let h = harness(Settings::default());
    let first = h
        .receive(&raw_alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    h.clock.advance(Duration::from_secs(60));
    let second = h
        .receive(&raw_alert("k1", &["192.0.2.2", "192.0.2.3"]), "sns-2")
        .await;
    assert_eq!(
        (second.status, second.report_id.as_str(), second.duplicate),
        (ReportStatus::More, first.report_id.as_str(), false)
    );
    // Named by earlier alerts of other messages: their dispatches claim them.
    let third = h
        .receive(&raw_alert("k1", &["192.0.2.3", "192.0.2.1"]), "sns-3")
        .await;
    assert_eq!(third.status, ReportStatus::More);
    let other_key = h.receive(&raw_alert("k2", &["192.0.2.1"]), "sns-4").await;
    assert_eq!(other_key.status, ReportStatus::New);
    assert_ne!(other_key.report_id, first.report_id);
    let id = &first.report_id;
    assert_eq!(
        h.pending(),
        [
            (format!("dispatch:{id}:sns-1"), t0() + minutes(5)),
            (format!("dispatch:{id}:sns-2"), t0() + minutes(6)),
            (
                format!("dispatch:{}:sns-4", other_key.report_id),
                t0() + minutes(6)
            ),
        ],
        "no job for the alert with nothing new"
    );
    assert_eq!(h.state(id).await.alerts.len(), 3);
}

#[tokio::test]
async fn an_alert_after_the_window_opens_a_new_report() {
    let h = harness(Settings {
        aggregation_window: Duration::from_secs(3600),
        ..Settings::default()
    });
    let a = h.receive(&raw_alert("k1", &[]), "sns-1").await;
    h.clock.advance_to(t0() + minutes(59));
    let inside = h.receive(&raw_alert("k1", &[]), "sns-2").await;
    assert_eq!(inside.report_id, a.report_id);
    h.clock.advance_to(t0() + minutes(60));
    let b = h.receive(&raw_alert("k1", &["192.0.2.9"]), "sns-3").await;
    assert_ne!(a.report_id, b.report_id);
    assert_eq!(b.status, ReportStatus::New);
}

#[tokio::test]
async fn a_malformed_alert_is_kept_as_an_error_naming_the_field_and_nothing_is_stored() {
    let h = harness(Settings::default());
    let raw = br#"{"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"ipaddr","value":7}]}"#;
    let err = h.p.receive(raw, Some("m-1")).await.unwrap_err();
    let CoreError::Invalid(e) = &err else {
        panic!("expected a validation error, got {err}");
    };
    assert_eq!(e.field, "attributes[0].value");
    assert!(
        !err.is_retryable(),
        "a malformed alert is not worth a retry"
    );
    let kept = h
        .store()
        .get_error("m-1", "receive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.field.as_deref(), Some("attributes[0].value"));
    assert_eq!(kept.input.as_bytes(), raw);
    assert!(!kept.input_truncated);
    assert_eq!(kept.at, t0());
    assert!(kept.error.contains("attributes[0].value"), "{}", kept.error);
    assert_eq!(h.rt.store.report_count(), 0);
    assert!(h.rt.scheduler.requests().is_empty());

    // Without a message ID the bytes name the message; a retry is kept once.
    for _ in 0..2 {
        h.p.receive(b"[]", None).await.unwrap_err();
    }
    let id = crate::id::content_message_id(b"[]");
    let kept = h.store().get_error(&id, "receive").await.unwrap().unwrap();
    assert_eq!(
        (kept.field.as_deref(), kept.input.as_str()),
        (Some("$"), "[]")
    );
    assert_eq!(h.rt.store.errors().len(), 2);
}

#[tokio::test]
async fn an_oversized_alert_is_kept_cut_to_the_bound() {
    let h = harness(Settings::default());
    let raw = vec![b'x'; MAX_ALERT_BYTES + 10];
    let err = h.p.receive(&raw, Some("big")).await.unwrap_err();
    assert!(
        matches!(&err, CoreError::Invalid(e) if e.field == "$"),
        "{err}"
    );
    let kept = h
        .store()
        .get_error("big", "receive")
        .await
        .unwrap()
        .unwrap();
    assert!(kept.input_truncated);
    assert_eq!(kept.input.len(), MAX_ERROR_INPUT_BYTES);
}

#[tokio::test]
async fn the_error_record_of_a_large_malformed_alert_fits_an_sns_message_and_an_item() {
    let h = harness(Settings::default());
    // 1 MiB of what escaping makes larger: quotes, control characters, bytes that
    // are not UTF-8.
    let mut raw = b"{\"detector\": \"".to_vec();
    while raw.len() < 1024 * 1024 {
        raw.extend_from_slice(b"\"\x01\xff\\x");
    }
    h.p.receive(&raw, Some("big")).await.unwrap_err();
    let kept = h
        .store()
        .get_error("big", "receive")
        .await
        .unwrap()
        .unwrap();
    assert!(kept.input_truncated);
    assert!(kept.input.starts_with("{\"detector\": \""));
    let input = serde_json::to_string(&kept.input).unwrap().len();
    assert!(
        input <= MAX_ERROR_INPUT_BYTES + 2,
        "input {input} bytes serialised"
    );
    // SNS takes 256 KiB with the message attributes, a DynamoDB item 400 KB.
    let record = serde_json::to_string(&kept).unwrap().len();
    assert!(record <= 200 * 1024, "record {record} bytes serialised");

    // An input of many short escapes is cut the same way, by its size serialised.
    let raw = vec![b'\x01'; 1024 * 1024];
    h.p.receive(&raw, Some("controls")).await.unwrap_err();
    let kept = h
        .store()
        .get_error("controls", "receive")
        .await
        .unwrap()
        .unwrap();
    assert!(kept.input_truncated);
    assert_eq!(kept.input.len(), MAX_ERROR_INPUT_BYTES / 6);
}

#[tokio::test]
async fn a_redelivered_message_is_stored_once_and_its_dispatch_scheduled_again() {
    let h = harness(Settings::default());
    let raw = raw_alert("k1", &["192.0.2.1"]);
    let a = h.receive(&raw, "sns-1").await;
    let b = h.receive(&raw, "sns-1").await;
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(
        b.status,
        ReportStatus::New,
        "a retried opener still owns its report"
    );
    let joiner = raw_alert("k1", &["192.0.2.2"]);
    let c = h.receive(&joiner, "sns-2").await;
    let d = h.receive(&joiner, "sns-2").await;
    assert!(!c.duplicate && d.duplicate);
    assert_eq!(d.status, ReportStatus::More);
    // Without a message ID the bytes identify the message.
    let bytes = raw_alert("k1", &["192.0.2.3"]).to_string();
    let e = h.p.receive(bytes.as_bytes(), None).await.unwrap();
    let f = h.p.receive(bytes.as_bytes(), None).await.unwrap();
    assert!(!e.duplicate && f.duplicate);

    let id = &a.report_id;
    assert_eq!(h.state(id).await.alerts.len(), 3);
    // Not trusting that the first try got as far as scheduling: each redelivery
    // schedules its dispatch again, and the scheduler keeps one of each name.
    let requested: Vec<String> =
        h.rt.scheduler
            .requests()
            .iter()
            .map(|(j, _)| j.name())
            .collect();
    let content_id = crate::id::content_message_id(bytes.as_bytes());
    assert_eq!(
        requested,
        [
            format!("dispatch:{id}:sns-1"),
            format!("dispatch:{id}:sns-1"),
            format!("dispatch:{id}:sns-2"),
            format!("dispatch:{id}:sns-2"),
            format!("dispatch:{id}:{content_id}"),
            format!("dispatch:{id}:{content_id}"),
        ]
    );
    assert_eq!(h.pending().len(), 3);
}

#[tokio::test]
async fn a_redelivery_a_publication_already_covered_schedules_nothing() {
    let h = harness(Settings::default());
    let opener = raw_alert("k1", &["192.0.2.1"]);
    let r = h.receive(&opener, "sns-1").await;
    h.until(t0() + minutes(20)).await;
    assert_eq!(h.published().len(), 1);
    let mut late = raw_alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late");
    h.receive(&late, "sns-2").await;
    h.drain().await;
    assert_eq!(h.published().len(), 2, "v1, and v2 for the late alert");
    let requests = h.rt.scheduler.requests().len();
    for (raw, message) in [(&opener, "sns-1"), (&late, "sns-2")] {
        let again = h.receive(raw, message).await;
        assert!(again.duplicate);
        assert_eq!(again.report_id, r.report_id);
    }
    assert_eq!(
        h.rt.scheduler.requests().len(),
        requests,
        "nothing scheduled"
    );
    h.drain().await;
    assert_eq!(h.published().len(), 2);
}

#[tokio::test]
async fn a_redelivery_stored_after_the_last_publication_is_scheduled_again() {
    let h = harness(Settings::default());
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(20)).await;
    let mut late = raw_alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late");
    h.receive(&late, "sns-2").await;
    h.clock.advance(Duration::from_secs(60));
    // v2 is not published yet: the redelivery cannot know its review was scheduled.
    let again = h.receive(&late, "sns-2").await;
    assert!(again.duplicate);
    let v2 = Job::Review {
        report_id: r.report_id.clone(),
        version: 2,
    };
    let requested: Vec<_> =
        h.rt.scheduler
            .requests()
            .into_iter()
            .filter(|(j, _)| *j == v2)
            .map(|(_, due)| due)
            .collect();
    assert_eq!(
        requested,
        [t0() + minutes(30), t0() + minutes(31)],
        "the re-review, scheduled again"
    );
}

#[tokio::test]
async fn an_alert_joining_a_published_report_with_nothing_new_schedules_only_the_re_review() {
    let h = harness(Settings::default());
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(30)).await;
    let mut late = raw_alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late");
    let joined = h.receive(&late, "sns-2").await;
    assert_eq!(
        (joined.status, joined.report_id.as_str()),
        (ReportStatus::More, r.report_id.as_str())
    );
    assert_eq!(
        h.pending(),
        [(format!("review:{}:2", r.report_id), t0() + minutes(40))]
    );
    // Something new to inspect: the dispatch, which plans the re-review itself.
    let new = h.receive(&raw_alert("k1", &["192.0.2.7"]), "sns-3").await;
    assert_eq!(new.report_id, r.report_id);
    assert_eq!(
        h.pending()[1],
        (
            format!("dispatch:{}:sns-3", r.report_id),
            t0() + minutes(35)
        )
    );
}

#[tokio::test]
async fn admit_and_receive_admitted_are_receive_in_two_steps() {
    let h = harness(Settings::default());
    let raw = raw_alert("k1", &["192.0.2.1"]).to_string();
    let (alert, message) = h.p.admit(raw.as_bytes(), Some("sns-1")).await.unwrap();
    assert_eq!(message, "sns-1");
    let r = h.p.receive_admitted(&alert, &message).await.unwrap();
    assert_eq!((r.status, r.duplicate), (ReportStatus::New, false));
    let again = h.p.receive(raw.as_bytes(), Some("sns-1")).await.unwrap();
    assert_eq!((again.report_id, again.duplicate), (r.report_id, true));
    let (_, content) = h.p.admit(raw.as_bytes(), None).await.unwrap();
    assert_eq!(content, crate::id::content_message_id(raw.as_bytes()));
}

#[tokio::test]
async fn a_receive_whose_scheduling_failed_is_healed_by_its_retry() {
    let h = harness(Settings::default());
    let raw = raw_alert("k1", &["192.0.2.1"]);
    h.rt.scheduler.fail_next(1);
    let err =
        h.p.receive(raw.to_string().as_bytes(), Some("sns-1"))
            .await
            .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(h.pending().is_empty());
    // The alert was stored: the retry is a duplicate that schedules what was lost.
    let retry = h.receive(&raw, "sns-1").await;
    assert!(retry.duplicate);
    assert_eq!(
        h.pending(),
        [(
            format!("dispatch:{}:sns-1", retry.report_id),
            t0() + minutes(5)
        )]
    );
    // A store that fails is retryable too, and nothing is half done.
    h.crash.crash_at(1, crate::memory::Crash::Before);
    let err =
        h.p.receive(raw_alert("k2", &[]).to_string().as_bytes(), Some("sns-2"))
            .await
            .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(h.rt.store.report_count(), 1);
}
