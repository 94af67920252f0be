//! The mappings on real-shaped events (`tests/fixtures/eventbridge/`, built from the
//! sample findings AWS documents): every alert passes validation, with the fields and
//! attributes a responder expects.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::validate::{alert_from_value, parse_alert};
use crate::Alert;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/eventbridge/", $name))
    };
}

const GUARDDUTY: [(&str, &str); 6] = [
    (
        "guardduty-ssh-brute-force.json",
        fixture!("guardduty-ssh-brute-force.json"),
    ),
    (
        "guardduty-port-probe.json",
        fixture!("guardduty-port-probe.json"),
    ),
    ("guardduty-cnc-dns.json", fixture!("guardduty-cnc-dns.json")),
    (
        "guardduty-bitcoin-dns.json",
        fixture!("guardduty-bitcoin-dns.json"),
    ),
    (
        "guardduty-credential-exfiltration.json",
        fixture!("guardduty-credential-exfiltration.json"),
    ),
    (
        "guardduty-malicious-ip-caller.json",
        fixture!("guardduty-malicious-ip-caller.json"),
    ),
];

const SECURITY_HUB: [(&str, &str); 6] = [
    (
        "securityhub-guardduty.json",
        fixture!("securityhub-guardduty.json"),
    ),
    (
        "securityhub-inspector.json",
        fixture!("securityhub-inspector.json"),
    ),
    ("securityhub-macie.json", fixture!("securityhub-macie.json")),
    (
        "securityhub-access-analyzer.json",
        fixture!("securityhub-access-analyzer.json"),
    ),
    (
        "securityhub-third-party.json",
        fixture!("securityhub-third-party.json"),
    ),
    ("securityhub-batch.json", fixture!("securityhub-batch.json")),
];

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn event(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap()
}

/// Maps a fixture and validates every alert (through the bytes path the receptor
/// uses, so the size bound applies too).
fn mapped(raw: &str) -> (Mapped, Vec<Alert>) {
    let e = event(raw);
    assert!(is_eventbridge(&e));
    let m = alerts_from_event(&e).unwrap();
    let alerts = m
        .alerts
        .iter()
        .map(|a| parse_alert(a.alert.to_string().as_bytes(), now()).unwrap())
        .collect();
    (m, alerts)
}

fn one(raw: &str) -> Alert {
    let (m, mut alerts) = mapped(raw);
    assert_eq!(alerts.len(), 1);
    assert!(m.skipped.is_empty());
    alerts.remove(0)
}

/// The (type, value, contexts) of an alert's attributes.
fn attrs(a: &Alert) -> Vec<(String, String, String)> {
    a.attributes
        .iter()
        .map(|x| (x.attr_type.clone(), x.value.clone(), x.context.join(",")))
        .collect()
}

fn has(a: &Alert, attr_type: &str, value: &str, context: &str) -> bool {
    attrs(a).contains(&(attr_type.into(), value.into(), context.into()))
}

#[test]
fn every_fixture_event_maps_to_alerts_that_pass_validation_and_keep_the_finding() {
    for (name, raw) in GUARDDUTY.iter().chain(SECURITY_HUB.iter()) {
        let e = event(raw);
        let m = alerts_from_event(&e).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(!m.alerts.is_empty(), "{name}");
        for a in &m.alerts {
            let alert =
                alert_from_value(&a.alert, now()).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert!(!alert.attributes.is_empty(), "{name}: no attributes");
            assert!(alert.body.is_some(), "{name}");
            assert!(
                alert.timestamp < now(),
                "{name}: timestamp from the finding"
            );
            assert!(
                a.message_id
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("eventbridge:"),
                "{name}"
            );
        }
    }
}

#[test]
fn guardduty_findings_give_their_type_resource_and_both_sides() {
    let a = one(GUARDDUTY[0].1);
    assert_eq!(a.detector, "guardduty");
    assert_eq!(a.rule_id, "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(a.alert_key, "i-0123456789abcdef0");
    assert_eq!(
        a.timestamp,
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
    );
    assert!(has(&a, "ipaddr", "198.51.100.7", "remote"));
    assert!(has(&a, "instance_id", "i-0123456789abcdef0", "local"));
    assert!(has(&a, "ipaddr", "10.0.1.23", "local"));
    assert!(has(&a, "ipaddr", "203.0.113.10", "local"));
}

#[test]
fn a_port_probe_names_every_probing_address() {
    let a = one(GUARDDUTY[1].1);
    assert_eq!(a.rule_id, "Recon:EC2/PortProbeUnprotectedPort");
    assert!(has(&a, "ipaddr", "198.51.100.23", "remote"));
    assert!(has(&a, "ipaddr", "198.51.100.24", "remote"));
    assert_eq!(a.alert_key, "i-0a1b2c3d4e5f60718");
}

#[test]
fn dns_findings_name_the_queried_domain() {
    let cnc = one(GUARDDUTY[2].1);
    assert_eq!(cnc.rule_id, "Backdoor:EC2/C&CActivity.B!DNS");
    assert!(has(&cnc, "domain", "cnc.example.net", "remote"));
    assert!(has(&cnc, "instance_id", "i-0fedcba9876543210", "local"));
    let btc = one(GUARDDUTY[3].1);
    assert_eq!(btc.rule_id, "CryptoCurrency:EC2/BitcoinTool.B!DNS");
    assert!(has(&btc, "domain", "pool.mining.example.org", "remote"));
}

#[test]
fn access_key_findings_are_keyed_by_the_user_and_name_key_and_caller() {
    let exfil = one(GUARDDUTY[4].1);
    assert_eq!(
        exfil.rule_id,
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    );
    assert_eq!(exfil.alert_key, "web");
    assert!(has(
        &exfil,
        "access_key_id",
        "ASIAEXAMPLETEMPKEY01",
        "subject"
    ));
    assert!(has(&exfil, "ipaddr", "198.51.100.99", "remote"));
    let recon = one(GUARDDUTY[5].1);
    assert_eq!(recon.alert_key, "deploy-bot");
    assert!(has(&recon, "username", "deploy-bot", "subject"));
    assert!(has(
        &recon,
        "access_key_id",
        "AKIAIOSFODNN7EXAMPLE",
        "subject"
    ));
    assert!(has(&recon, "ipaddr", "192.0.2.66", "remote"));
}

#[test]
fn an_access_key_finding_is_keyed_by_its_user_and_names_the_caller() {
    let detail = json!({
        "id": "f1", "type": "Recon:IAMUser/MaliciousIPCaller", "title": "API call from a known malicious IP",
        "updatedAt": "2026-11-20T10:00:00Z",
        "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": "AKIAEXAMPLE", "userName": "deploy-bot"}},
        "service": {"action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets", "remoteIpDetails": {"ipAddressV4": "192.0.2.66"}}}}
    });
    let a = guardduty::alert(&detail);
    assert_eq!(a["alert_key"], "deploy-bot");
    assert_eq!(a["attributes"][0]["value"], "192.0.2.66");
    let types: Vec<_> = a["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ipaddr", "access_key_id", "username"]);
}

#[test]
fn a_finding_without_type_leaves_rule_id_out_for_validation_to_name() {
    let a = guardduty::alert(&json!({"id": "f2"}));
    assert!(a.get("rule_id").is_none());
    let err = parse_alert(a.to_string().as_bytes(), now()).unwrap_err();
    assert_eq!(err.field, "rule_id");
}

#[test]
fn other_sources_are_an_error_naming_detail_type() {
    let e = json!({"source": "aws.inspector2", "detail-type": "Inspector2 Finding", "detail": {}});
    assert!(is_eventbridge(&e));
    let err = alerts_from_event(&e).unwrap_err();
    assert_eq!(err.field, "detail-type");
    assert!(err.message.contains("aws.inspector2"), "{}", err.message);
    assert!(!is_eventbridge(&json!({"Records": []})));
    assert!(!is_eventbridge(&json!({"detector": "d", "rule_id": "r"})));
}

#[test]
fn a_known_event_without_its_detail_or_findings_names_the_field() {
    let gd = json!({"source": "aws.guardduty", "detail-type": "GuardDuty Finding"});
    assert_eq!(alerts_from_event(&gd).unwrap_err().field, "detail");
    let sh = json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported", "detail": {}});
    assert_eq!(alerts_from_event(&sh).unwrap_err().field, "detail.findings");
    let many = json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
        "detail": {"findings": vec![json!({}); MAX_FINDINGS + 1]}});
    assert_eq!(
        alerts_from_event(&many).unwrap_err().field,
        "detail.findings"
    );
}

#[test]
fn a_guardduty_finding_from_security_hub_is_mapped_with_the_instance_and_domain() {
    let a = one(SECURITY_HUB[0].1);
    assert_eq!(a.detector, "securityhub");
    assert_eq!(
        a.rule_id,
        "arn:aws:guardduty:us-east-1:123456789012:detector/123456abcd"
    );
    assert_eq!(
        a.alert_key,
        "arn:aws:ec2:us-east-1:123456789012:instance/i-0fedcba9876543210"
    );
    assert!(has(&a, "instance_id", "i-0fedcba9876543210", "local"));
    assert!(has(&a, "ipaddr", "10.0.3.44", "local"));
    assert!(has(&a, "domain", "cnc.example.net", "remote"));
    assert_eq!(
        a.timestamp,
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 4, 0).unwrap()
    );
}

#[test]
fn an_inspector_vulnerability_is_keyed_by_its_instance() {
    let a = one(SECURITY_HUB[1].1);
    assert_eq!(a.rule_id, "AWSInspector");
    assert_eq!(a.rule_name, "CVE-2026-12345 - openssl");
    assert!(has(&a, "instance_id", "i-0a1b2c3d4e5f60718", "local"));
    assert_eq!(
        a.body.as_ref().unwrap()["Vulnerabilities"][0]["Id"],
        "CVE-2026-12345"
    );
}

#[test]
fn other_resources_are_named_by_their_arn() {
    let macie = one(SECURITY_HUB[2].1);
    assert_eq!(macie.alert_key, "arn:aws:s3:::example-customer-exports");
    assert!(has(
        &macie,
        "arn",
        "arn:aws:s3:::example-customer-exports",
        "local"
    ));
    assert!(has(
        &macie,
        "arn",
        "arn:aws:s3:::example-customer-exports/2026/11/customers.csv",
        "local"
    ));
    let analyzer = one(SECURITY_HUB[3].1);
    assert_eq!(analyzer.rule_id, "aws/access-analyzer");
    assert_eq!(analyzer.attributes[0].key, "AwsIamRole resource");
}

#[test]
fn a_third_party_finding_gives_network_process_malware_threats_and_indicators() {
    let a = one(SECURITY_HUB[4].1);
    assert_eq!(a.rule_id, "edr-rule-4711");
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    // Direction OUT: the source is the instance, the destination the other side.
    assert!(has(&a, "ipaddr", "10.0.2.15", "local"));
    assert!(has(&a, "ipaddr", "198.51.100.77", "remote"));
    assert!(has(&a, "domain", "c2.example.com", "remote"));
    assert!(has(&a, "process", "kworkerd", "local"));
    assert!(has(&a, "filepath", "/tmp/.x/kworkerd", "local"));
    assert!(has(&a, "malware", "Linux.Trojan.Example", "file"));
    assert!(has(&a, "filehashvalue", hash, "file"));
    assert!(has(&a, "filehashvalue", hash, "remote"));
    assert!(has(&a, "url", "https://c2.example.com/gate.php", "remote"));
    // A mutex indicator has no attribute type: it stays in the body.
    assert!(!attrs(&a)
        .iter()
        .any(|(_, v, _)| v.contains("example") && v.starts_with("Global")));
}

#[test]
fn suppressed_and_archived_findings_are_skipped_and_counted_with_why() {
    let (m, alerts) = mapped(SECURITY_HUB[5].1);
    assert_eq!(alerts.len(), 2);
    assert_eq!(m.skipped.len(), 2);
    assert!(m.skipped[0]
        .0
        .ends_with("EC2.19/finding/6e7f8091-a2b3-44c5-d6e7-f8091a2b3c4d"));
    assert_eq!(m.skipped[0].1, "Workflow.Status is SUPPRESSED");
    assert_eq!(m.skipped[1].1, "RecordState is ARCHIVED");
    // Message IDs keep each finding's place in the event: a redelivery maps alike.
    let ids: Vec<_> = m
        .alerts
        .iter()
        .map(|a| a.message_id.clone().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "eventbridge:6e7f8091-a2b3-44c5-d6e7-f8091a2b3c4d#1",
            "eventbridge:6e7f8091-a2b3-44c5-d6e7-f8091a2b3c4d#3"
        ]
    );
    let key = &alerts[0];
    assert!(has(key, "access_key_id", "AKIAIOSFODNN7EXAMPLE", "subject"));
    assert!(has(key, "username", "deploy-bot", "subject"));
    assert!(has(key, "ipaddr", "192.0.2.66", "remote"));
    assert!(has(&alerts[1], "username", "break-glass", "subject"));
}

#[test]
fn a_guardduty_event_keeps_the_message_id_the_receptor_always_gave_it() {
    let m = alerts_from_event(&event(GUARDDUTY[0].1)).unwrap();
    assert_eq!(
        m.alerts[0].message_id.as_deref(),
        Some("eventbridge:c8c4daa7-a20c-2f03-0070-b7393dd542ad")
    );
    let mut no_id = event(GUARDDUTY[0].1);
    no_id.as_object_mut().unwrap().remove("id");
    assert_eq!(
        alerts_from_event(&no_id).unwrap().alerts[0].message_id,
        None
    );
}

#[test]
fn hostile_findings_stay_bounded() {
    let long = "x".repeat(100_000);
    let probes: Vec<Value> = (0..500)
        .map(|i| json!({"remoteIpDetails": {"ipAddressV4": format!("192.0.2.{i}")}}))
        .collect();
    let detail = json!({"id": "f", "type": "t", "title": long, "resource": {},
        "service": {"action": {"portProbeAction": {"portProbeDetails": probes}}}});
    let a = guardduty::alert(&detail);
    assert_eq!(a["rule_name"].as_str().unwrap().len(), MAX_FIELD_CHARS);
    assert!(a["attributes"].as_array().unwrap().len() <= MAX_SOURCE_ATTRIBUTES);
    let finding = json!({"Id": "x", "GeneratorId": "g", "Resources": [{"Type": "AwsEc2Instance", "Id": 7}],
        "ThreatIntelIndicators": [{"Type": "IPV4_ADDRESS", "Value": ["not", "a", "string"]}], "Network": "weird"});
    let alert = alert_from_value(&securityhub::alert(&finding), now()).unwrap();
    assert_eq!(alert.alert_key, "x");
    assert!(alert.attributes.is_empty());
}
