//! What a person needs from a report, target-neutral: the verdict (and the one before
//! on a re-review), what the alerts are, the key attributes, the inspectors' main
//! findings, what could not be inspected, and a link. Every emitter builds its message
//! from a [`Digest`], so that Slack, PagerDuty and GitHub say the same thing.
//!
//! Strings come from alerts and inspectors, i.e. from attackers: each is passed through
//! [`render::sanitize`] (control and bidi characters escaped, cut to a bound) and the
//! lists are bounded, with counts of what was left out. They are **not** escaped for
//! any markup: each target escapes them for its own (Slack mrkdwn, Markdown …).

use alertresponder_core::model::{InspectionStatus, Report, Severity};
use alertresponder_core::render;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The most attributes listed.
pub const MAX_ATTRIBUTES: usize = 20;
/// The most findings listed.
pub const MAX_FINDINGS: usize = 20;
/// The most characters of one value (an attribute value, a rule name).
pub const MAX_VALUE_CHARS: usize = 200;
/// The most characters of a free text (a description, a reason, a finding's summary).
pub const MAX_TEXT_CHARS: usize = 500;

/// One attribute as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAttribute {
    /// Its type (`ipaddr` …).
    pub attr_type: String,
    /// What it is in the alert (`source address` …), possibly empty.
    pub key: String,
    /// The value.
    pub value: String,
    /// Whether an alert named it (`false`: an inspector discovered it).
    pub from_alert: bool,
}

/// One inspector's finding about one attribute, as a phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestFinding {
    /// The inspector.
    pub inspector: String,
    /// The attribute's type.
    pub attr_type: String,
    /// The attribute's value.
    pub value: String,
    /// The section's content as `key=value` pairs.
    pub summary: String,
}

/// An inspection that gave no answer (failed, timed out, rate limited): unknown, not clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestGap {
    /// The inspector.
    pub inspector: String,
    /// The attribute's value.
    pub value: String,
    /// `failed`, `timed out` or `rate limited`.
    pub outcome: &'static str,
}

/// A report summarised for a person; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The report's ID (a UUID).
    pub report_id: String,
    /// The published version.
    pub version: u32,
    /// The verdict.
    pub severity: Severity,
    /// Why.
    pub reason: String,
    /// The verdict of the version before, on a re-review.
    pub previous: Option<Severity>,
    /// The first alert's rule name (its rule ID when it has none).
    pub title: String,
    /// The first alert's detector.
    pub detector: String,
    /// The first alert's rule ID.
    pub rule_id: String,
    /// The alert key the report aggregates.
    pub alert_key: String,
    /// The first alert's description.
    pub description: String,
    /// How many alerts the report holds.
    pub alert_count: usize,
    /// The attributes, the alerts' own first, each once.
    pub attributes: Vec<DigestAttribute>,
    /// Attributes past [`MAX_ATTRIBUTES`].
    pub attributes_omitted: usize,
    /// The findings, in report order.
    pub findings: Vec<DigestFinding>,
    /// Findings past [`MAX_FINDINGS`].
    pub findings_omitted: usize,
    /// Inspections that gave no answer (bounded like the findings).
    pub gaps: Vec<DigestGap>,
}

fn value(s: &str) -> String {
    render::sanitize(s, MAX_VALUE_CHARS)
}

fn text(s: &str) -> String {
    render::sanitize(s, MAX_TEXT_CHARS)
}

impl Digest {
    /// The digest of `report`.
    pub fn of(report: &Report) -> Digest {
        let first = report.alerts.first();
        let mut seen = std::collections::HashSet::new();
        let alert_attributes = report
            .alerts
            .iter()
            .flat_map(|a| a.attributes.iter().map(|at| (at, true)));
        let discovered = report.attributes.iter().map(|at| (at, false));
        let mut attributes = Vec::new();
        let mut attributes_omitted = 0;
        for (a, from_alert) in alert_attributes.chain(discovered) {
            if !seen.insert((a.attr_type.as_str(), a.value.as_str())) {
                continue;
            }
            if attributes.len() == MAX_ATTRIBUTES {
                attributes_omitted += 1;
                continue;
            }
            attributes.push(DigestAttribute {
                attr_type: value(&a.attr_type),
                key: value(&a.key),
                value: value(&a.value),
                from_alert,
            });
        }
        let meaningful = report.sections.iter().filter(|s| match &s.content {
            serde_json::Value::Object(m) => !m.is_empty(),
            serde_json::Value::Null => false,
            _ => true,
        });
        let mut findings = Vec::new();
        let mut findings_omitted = 0;
        for s in meaningful {
            if findings.len() == MAX_FINDINGS {
                findings_omitted += 1;
                continue;
            }
            findings.push(DigestFinding {
                inspector: value(&s.author),
                attr_type: value(&s.attribute.attr_type),
                value: value(&s.attribute.value),
                summary: text(&render::content_line(&s.content)),
            });
        }
        let gaps = report
            .inspections
            .iter()
            .filter_map(|i| {
                let outcome = match i.status {
                    InspectionStatus::Failed => "failed",
                    InspectionStatus::TimedOut => "timed out",
                    InspectionStatus::RateLimited => "rate limited",
                    _ => return None,
                };
                Some(DigestGap {
                    inspector: value(&i.inspector),
                    value: value(&i.attribute.value),
                    outcome,
                })
            })
            .take(MAX_FINDINGS)
            .collect();
        Digest {
            report_id: value(&report.id),
            version: report.version,
            severity: report.result.severity,
            reason: text(&report.result.reason),
            previous: report.previous_result.as_ref().map(|p| p.severity),
            title: value(first.map(|a| a.rule()).unwrap_or("(no alert)")),
            detector: value(first.map(|a| a.detector.as_str()).unwrap_or_default()),
            rule_id: value(first.map(|a| a.rule_id.as_str()).unwrap_or_default()),
            alert_key: value(first.map(|a| a.alert_key.as_str()).unwrap_or_default()),
            description: text(first.map(|a| a.description.as_str()).unwrap_or_default()),
            alert_count: report.alerts.len(),
            attributes,
            attributes_omitted,
            findings,
            findings_omitted,
            gaps,
        }
    }

    /// Whether this version changed the verdict of the one before.
    pub fn severity_changed(&self) -> bool {
        self.previous.is_some_and(|p| p != self.severity)
    }
}

/// What a report ID keeps as is in a link: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A link to the report from a `report_url` template: `{id}` replaced by the report ID,
/// percent-encoded (an ID is a UUID, but a template must not trust that), `{version}`
/// by the version.
pub fn report_link(template: &str, report_id: &str, version: u32) -> String {
    let id = utf8_percent_encode(report_id, UNRESERVED).to_string();
    template
        .replace("{id}", &id)
        .replace("{version}", &version.to_string())
}

/// Checks a `report_url` template: an http(s) URL with a host that contains `{id}`.
pub fn check_report_url(template: &str) -> Result<(), String> {
    if !template.contains("{id}") {
        return Err("must contain {id}, where the report ID goes".into());
    }
    let sample = report_link(template, "00000000-0000-0000-0000-000000000000", 1);
    match reqwest::Url::parse(&sample) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "expected an http(s) URL with a host, not {}:",
            u.scheme()
        )),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::report;
    use alertresponder_core::model::{InspectionRecord, ReportResult, ReportSection};

    #[test]
    fn a_digest_lists_the_alerts_attributes_first_each_once_and_bounded() {
        let mut r = report("rep-1", 2, "test", "192.0.2.1");
        let alert_attr = r.alerts[0].attributes[0].clone();
        r.attributes = vec![alert_attr.clone()];
        for i in 0..30 {
            let mut a = alert_attr.clone();
            a.value = format!("host-{i}.example");
            a.attr_type = "domain".into();
            r.attributes.push(a);
        }
        let d = Digest::of(&r);
        assert_eq!(d.attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(d.attributes[0].value, "192.0.2.1");
        assert!(d.attributes[0].from_alert);
        assert!(!d.attributes[1].from_alert);
        assert_eq!(d.attributes_omitted, 31 - MAX_ATTRIBUTES);
    }

    #[test]
    fn hostile_text_is_sanitized_and_cut_but_not_escaped() {
        let mut r = report("rep-1", 1, "test", "192.0.2.1");
        r.alerts[0].rule_name = format!("<!channel> \x1b[31m{}", "x".repeat(1000));
        r.result = ReportResult {
            severity: Severity::Urgent,
            reason: "a\u{202e}b".into(),
        };
        let d = Digest::of(&r);
        assert!(d.title.starts_with("<!channel> \\u{1b}[31m"), "{}", d.title);
        assert!(d.title.chars().count() < MAX_VALUE_CHARS + 30);
        assert_eq!(d.reason, "a\\u{202e}b");
    }

    #[test]
    fn findings_and_gaps_are_summarised() {
        let mut r = report("rep-1", 1, "test", "192.0.2.1");
        let attr = r.alerts[0].attributes[0].clone();
        r.sections = vec![
            ReportSection {
                report_id: r.id.clone(),
                author: "geo".into(),
                attribute: attr.clone(),
                section_type: "host".into(),
                content: serde_json::json!({"country": ["KP"]}),
            },
            ReportSection {
                report_id: r.id.clone(),
                author: "empty".into(),
                attribute: attr.clone(),
                section_type: "host".into(),
                content: serde_json::json!({}),
            },
        ];
        r.inspections = vec![InspectionRecord {
            inspector: "vt".into(),
            attribute: attr,
            status: InspectionStatus::RateLimited,
            detail: None,
            at: r.created_at,
        }];
        let d = Digest::of(&r);
        assert_eq!(d.findings.len(), 1);
        assert_eq!(d.findings[0].summary, "country=KP");
        assert_eq!(d.gaps[0].outcome, "rate limited");
    }

    #[test]
    fn a_report_link_encodes_the_id() {
        assert_eq!(
            report_link("https://ar.example/reports/{id}?v={version}", "a/b c-1", 2),
            "https://ar.example/reports/a%2Fb%20c-1?v=2"
        );
        assert!(check_report_url("https://ar.example/reports/{id}").is_ok());
        assert!(check_report_url("https://ar.example/reports/").is_err());
        assert!(check_report_url("javascript:alert(1)//{id}").is_err());
    }
}
