//! The tester stack's two Lambda functions: what they decide, as plain functions (the
//! binaries in `src/bin` serve them; unit tests here pin them; the scenarios of
//! `alertresponder-tester` rely on them).
//!
//! - The **inspector** answers an `ipaddr` with a host section and one discovered
//!   `domain` (`host-<address>.tester.example`), which the harness feeds back as a new
//!   task; that domain gets a host section of its own, so a report proves the
//!   feedback loop went all the way round. A `username` gets a user section.
//! - The **reviewer** decides `urgent` when an address has a host section, `safe` when
//!   the report names no address, `unclassified` when an address went uninspected.

use alertresponder_core::{Report, ReportResult, Severity};
use inspector_harness::{Attribute, Inspection, SectionDraft, Task};
use serde_json::json;

/// The suffix of the domains the inspector makes up.
pub const DOMAIN_SUFFIX: &str = ".tester.example";

/// The reviewer's name in its reasons.
pub const REVIEWER: &str = "tester-reviewer";

/// The domain the inspector reports for `ip`.
pub fn domain_of(ip: &str) -> String {
    format!("host-{}{DOMAIN_SUFFIX}", ip.replace(['.', ':'], "-"))
}

/// The inspector's findings on one task.
pub fn inspect(task: &Task) -> Inspection {
    let value = task.attribute.value.clone();
    let mut found = Inspection::default();
    match task.attribute.attr_type.as_str() {
        "ipaddr" => {
            let name = domain_of(&value);
            found.sections.push(SectionDraft {
                section_type: "host".into(),
                content: json!({ "ipaddr": [value], "hostname": [name] }),
            });
            found.new_attributes.push(Attribute {
                attr_type: "domain".into(),
                key: "reverse name".into(),
                value: name,
                context: vec!["remote".into()],
                timestamp: None,
            });
        }
        "domain" if value.ends_with(DOMAIN_SUFFIX) => found.sections.push(SectionDraft {
            section_type: "host".into(),
            content: json!({ "hostname": [value], "owner": ["tester"] }),
        }),
        "username" => found.sections.push(SectionDraft {
            section_type: "user".into(),
            content: json!({ "userid": [value] }),
        }),
        _ => {}
    }
    found
}

/// The reviewer's decision on a compiled report.
pub fn review(report: &Report) -> ReportResult {
    let addresses: Vec<&str> = report
        .attributes
        .iter()
        .filter(|a| a.attr_type == "ipaddr")
        .map(|a| a.value.as_str())
        .collect();
    let inspected: Vec<&str> = addresses
        .iter()
        .copied()
        .filter(|ip| {
            report.sections.iter().any(|s| {
                s.section_type == "host"
                    && s.content["ipaddr"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(ip)))
            })
        })
        .collect();
    let alerts = report.alerts.len();
    let (severity, why) = if !inspected.is_empty() {
        (
            Severity::Urgent,
            format!("host section for {}", inspected.join(", ")),
        )
    } else if addresses.is_empty() {
        (Severity::Safe, "no address in the report".to_string())
    } else {
        (
            Severity::Unclassified,
            format!("address {} not inspected", addresses.join(", ")),
        )
    };
    ReportResult {
        severity,
        reason: format!("{REVIEWER}: {why} ({alerts} alert(s))"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alertresponder_core::fixtures::{attr, report, section};

    fn task(t: &str, v: &str) -> Task {
        serde_json::from_value(json!({
            "report_id": "r1",
            "attribute": {"type": t, "key": "k", "value": v, "context": ["remote"]}
        }))
        .unwrap()
    }

    #[test]
    fn an_address_gets_a_host_section_and_a_domain_that_is_inspected_in_turn() {
        let first = inspect(&task("ipaddr", "198.51.100.7"));
        assert_eq!(first.sections[0].section_type, "host");
        assert_eq!(first.sections[0].content["ipaddr"][0], "198.51.100.7");
        let domain = &first.new_attributes[0];
        assert_eq!(domain.value, "host-198-51-100-7.tester.example");
        let second = inspect(&task("domain", &domain.value));
        assert_eq!(second.sections[0].content["hostname"][0], domain.value);
        assert!(second.new_attributes.is_empty(), "the loop ends there");
        assert!(inspect(&task("domain", "example.org")).sections.is_empty());
        assert_eq!(
            inspect(&task("username", "root")).sections[0].section_type,
            "user"
        );
    }

    #[test]
    fn the_reviewer_is_urgent_on_an_inspected_address_safe_without_one() {
        let mut r = report("r1", 1, Severity::Unclassified);
        let mut user = attr("root");
        user.attr_type = "username".into();
        r.attributes = vec![user];
        assert_eq!(review(&r).severity, Severity::Safe);
        r.attributes.push(attr("198.51.100.7"));
        let unseen = review(&r);
        assert_eq!(unseen.severity, Severity::Unclassified);
        assert!(unseen.reason.contains("198.51.100.7"), "{}", unseen.reason);
        let mut s = section("r1", "198.51.100.7", "tester-inspector", "ZZ");
        s.content = json!({"ipaddr": ["198.51.100.7"]});
        r.sections.push(s);
        let urgent = review(&r);
        assert_eq!(urgent.severity, Severity::Urgent);
        assert!(urgent
            .reason
            .starts_with("tester-reviewer: host section for 198.51.100.7"));
    }
}
