//! Fitting a report into a size bound. AWS carries reports in Step Functions state
//! (256 KiB), SNS messages (256 KiB) and DynamoDB items (400 KB); a report of many
//! large alerts would not fit. The full alerts stay in the store: only the carried
//! copy is cut, in this order, until it fits: alert bodies and large section contents
//! are replaced by a note, then the last sections, inspection records and alerts are
//! left out (the first alert is always kept). [`Report::cut`] says what was cut.

use serde_json::{json, Value};

use crate::model::{Cut, Report};

/// Contents (alert body, section content) larger than this are the first to go.
const LARGE_CONTENT_BYTES: usize = 2048;

fn size<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

fn note(bytes: usize) -> Value {
    json!({ "cut": format!("{bytes} bytes left out to fit the message size; the full alert is in the store") })
}

/// `report` as it is if its JSON fits in `max_bytes`, else a cut copy (see the module doc).
/// The result may still exceed `max_bytes` when the first alert alone does.
pub fn fit_report(report: &Report, max_bytes: usize) -> Report {
    let original = size(report);
    if original <= max_bytes {
        return report.clone();
    }
    let mut r = report.clone();
    let mut cut = Cut {
        original_bytes: original,
        ..Cut::default()
    };
    // Margin for the `cut` field itself.
    let budget = max_bytes.saturating_sub(256);
    let mut total = original;
    // 1. Large bodies and contents, largest first.
    let mut large: Vec<(usize, bool, usize)> = Vec::new(); // (bytes, is_alert, index)
    for (i, a) in r.alerts.iter().enumerate() {
        if let Some(b) = &a.body {
            let n = size(b);
            if n > LARGE_CONTENT_BYTES {
                large.push((n, true, i));
            }
        }
    }
    for (i, s) in r.sections.iter().enumerate() {
        let n = size(&s.content);
        if n > LARGE_CONTENT_BYTES {
            large.push((n, false, i));
        }
    }
    large.sort_by_key(|l| std::cmp::Reverse(l.0));
    for (n, is_alert, i) in large {
        if total <= budget {
            break;
        }
        let replacement = note(n);
        total = total + size(&replacement) - n;
        if is_alert {
            r.alerts[i].body = Some(replacement);
            cut.bodies_removed += 1;
        } else {
            r.sections[i].content = replacement;
            cut.contents_removed += 1;
        }
    }
    // 2. Whole elements from the end: sections, inspections, then alerts (keep one).
    while total > budget && !r.sections.is_empty() {
        let s = r.sections.pop().map(|s| size(&s) + 1).unwrap_or(0);
        total = total.saturating_sub(s);
        cut.sections_omitted += 1;
    }
    while total > budget && !r.inspections.is_empty() {
        let s = r.inspections.pop().map(|s| size(&s) + 1).unwrap_or(0);
        total = total.saturating_sub(s);
        cut.inspections_omitted += 1;
    }
    while total > budget && r.alerts.len() > 1 {
        let s = r.alerts.pop().map(|s| size(&s) + 1).unwrap_or(0);
        total = total.saturating_sub(s);
        cut.alerts_omitted += 1;
    }
    r.cut = Some(cut);
    r
}

/// How many alerts a (possibly cut) report stands for.
pub fn alert_count(report: &Report) -> usize {
    report.alerts.len() + report.cut.as_ref().map_or(0, |c| c.alerts_omitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use chrono::TimeZone;

    fn report(alerts: usize, body_bytes: usize) -> Report {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let alert = Alert {
            detector: "d".into(),
            rule_name: "r".into(),
            rule_id: "r".into(),
            alert_key: "k".into(),
            description: String::new(),
            timestamp: t,
            attributes: vec![],
            body: Some(json!({ "blob": "x".repeat(body_bytes) })),
        };
        Report {
            id: "r1".into(),
            alerts: vec![alert; alerts],
            attributes: vec![],
            sections: vec![],
            result: ReportResult::default(),
            status: ReportStatus::New,
            created_at: t,
            version: 1,
            previous_result: None,
            inspections: vec![],
            alert_id: "alert:x".into(),
            published_at: None,
            cut: None,
        }
    }

    #[test]
    fn a_report_that_fits_is_left_alone() {
        let r = report(2, 100);
        assert_eq!(fit_report(&r, 10_000), r);
    }

    #[test]
    fn large_bodies_go_first_and_the_cut_is_recorded() {
        let r = report(3, 100_000);
        let f = fit_report(&r, 200_000);
        assert!(size(&f) <= 200_000, "{}", size(&f));
        assert_eq!(
            f.alerts.len(),
            3,
            "alerts are kept when cutting bodies suffices"
        );
        let cut = f.cut.unwrap();
        assert!(cut.bodies_removed >= 1);
        assert_eq!(cut.alerts_omitted, 0);
        assert!(cut.original_bytes > 300_000);
    }

    #[test]
    fn many_alerts_are_left_out_from_the_end_but_counted() {
        let r = report(2_000, 1_000);
        let f = fit_report(&r, 100_000);
        assert!(size(&f) <= 100_000, "{}", size(&f));
        assert!(f.alerts.len() < 2_000 && !f.alerts.is_empty());
        assert_eq!(alert_count(&f), 2_000);
    }
}
