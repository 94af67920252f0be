//! Across the steps, in virtual time: one alert's way through every handler with the
//! feedback loop and a late alert, checked at each hand-over. The behaviours a user
//! relies on across steps are proven in `crates/embedded/tests/pipeline.rs`, through
//! SQLite and the job queue; this run is what they do not cover (a retried opener
//! owning its report after a join, discovered attributes, the stored published copy).

use super::*;
use crate::model::ReportStatus;

#[tokio::test]
async fn the_handlers_run_end_to_end_with_feedback_and_a_late_alert() {
    let h = harness(Settings::default()).with_inspectors(vec![Arc::new(resolver())]);
    let first = h
        .receive(&raw_alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    assert_eq!(first.status, ReportStatus::New);
    h.clock.advance(Duration::from_secs(60));
    let second = h
        .receive(&raw_alert("k1", &["192.0.2.2", "192.0.2.3"]), "sns-2")
        .await;
    assert_eq!(
        (second.status, second.report_id.as_str()),
        (ReportStatus::More, first.report_id.as_str())
    );
    let again = h
        .receive(&raw_alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
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
    let late = h.receive(&raw_alert("k1", &["192.0.2.9"]), "sns-3").await;
    assert_eq!(late.report_id, first.report_id);
    h.drain().await;
    let published = h.published();
    assert_eq!(published.len(), 2);
    assert_eq!((published[1].version, published[1].alerts.len()), (2, 3));
    assert_eq!(published[1].previous_result, Some(r.result.clone()));
    assert_eq!(published[1].attributes.len(), 8);
}
