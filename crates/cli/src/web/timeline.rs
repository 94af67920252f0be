//! A report's timeline: its opening, each alert's arrival, each inspection's outcome,
//! each published version (the review's decision) and each emitter's delivery, in
//! time order, bounded to [`MAX_EVENTS`].

use alertresponder_core::model::{InspectionRecord, Report};
use alertresponder_core::ports::{AlertArrival, DeliveryRecord, VersionRecord};
use chrono::{DateTime, Utc};

use super::view::{cut, outcome, time, Badge, SHORT};

/// Most events listed; the count of the others is shown.
pub const MAX_EVENTS: usize = 500;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// `when` as shown.
    pub when: String,
    /// `opened`, `arrival`, `inspection`, `publication` or `delivery` (a CSS class and
    /// the e2e tests' handle).
    pub kind: &'static str,
    /// What happened, bounded.
    pub text: String,
    /// A status shown as a badge (an inspection's outcome, a version's severity).
    pub badge: Option<Badge>,
}

/// What the timeline is made of.
pub struct Sources<'a> {
    /// The report (opening time, its inspections).
    pub report: &'a Report,
    /// Its alerts' arrivals.
    pub arrivals: &'a [AlertArrival],
    /// Its published versions.
    pub versions: &'a [VersionRecord],
    /// Its deliveries.
    pub deliveries: &'a [DeliveryRecord],
}

fn inspection_text(i: &InspectionRecord) -> String {
    format!(
        "{} on {} {}",
        cut(&i.inspector, 60),
        cut(&i.attribute.attr_type, 30),
        cut(&i.attribute.value, SHORT)
    )
}

/// The events, oldest first, and how many were left out.
pub fn events(src: &Sources<'_>) -> (Vec<Event>, usize) {
    let mut out: Vec<Event> = Vec::new();
    let mut push = |at: DateTime<Utc>, kind, text: String, badge| {
        out.push(Event {
            at,
            when: time(at),
            kind,
            text,
            badge,
        })
    };
    push(
        src.report.created_at,
        "opened",
        "report opened".into(),
        None,
    );
    for (n, a) in src.arrivals.iter().enumerate() {
        push(
            a.received_at,
            "arrival",
            format!(
                "alert {} arrived (message {})",
                n + 1,
                cut(&a.message_id, 60)
            ),
            None,
        );
    }
    for i in &src.report.inspections {
        let (label, class) = outcome(i.status);
        push(
            i.at,
            "inspection",
            inspection_text(i),
            Some(Badge { label, class }),
        );
    }
    for v in src.versions {
        if let Some(at) = v.published_at {
            push(
                at,
                "publication",
                format!("version {} reviewed and published", v.version),
                Some(Badge::of(Some(v.result.severity))),
            );
        }
    }
    for d in src.deliveries {
        push(
            d.delivered_at,
            "delivery",
            format!("version {} delivered to {}", d.version, cut(&d.emitter, 60)),
            None,
        );
    }
    // Stable: at one instant, the order above (arrival before its inspection …).
    out.sort_by_key(|e| e.at);
    let left_out = out.len().saturating_sub(MAX_EVENTS);
    out.truncate(MAX_EVENTS);
    (out, left_out)
}

#[cfg(test)]
mod tests {
    use alertresponder_core::fixtures::{inspection, report, t};
    use alertresponder_core::model::{InspectionStatus, ReportResult, Severity};

    use super::*;

    #[test]
    fn events_come_in_time_order_with_their_kind() {
        let mut r = report("r1", 1, Severity::Urgent);
        r.inspections = vec![inspection(
            "10.0.0.1",
            "intel",
            InspectionStatus::RateLimited,
        )];
        let arrivals = [AlertArrival {
            message_id: "m1".into(),
            received_at: t(1),
        }];
        let versions = [VersionRecord {
            version: 1,
            result: ReportResult {
                severity: Severity::Urgent,
                reason: "x".into(),
            },
            published_at: Some(t(601)),
        }];
        let deliveries = [DeliveryRecord {
            report_id: "r1".into(),
            version: 1,
            emitter: "slack".into(),
            delivered_at: t(602),
        }];
        let (events, left_out) = events(&Sources {
            report: &r,
            arrivals: &arrivals,
            versions: &versions,
            deliveries: &deliveries,
        });
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec!["opened", "arrival", "inspection", "publication", "delivery"]
        );
        assert_eq!(
            events[2].badge,
            Some(Badge {
                label: "rate limited",
                class: "st-unknown"
            })
        );
        assert_eq!(left_out, 0);
    }
}
