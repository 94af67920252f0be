//! The PagerDuty emitter against a local server answering as the Events API v2
//! documents, its configuration errors, hostile text, and the golden event.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alertresponder_core::model::{Attribute, ReportResult, ReportSection};
use alertresponder_core::ports::SystemClock;
use serde_json::json;
use wiremock::matchers::{body_json, body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::config::EmitterKind;
use crate::inspect::BuildContext;
use crate::secret::SecretResolver;
use crate::test_support::{golden, guardduty_report, report, EnvSecret};

const KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";

fn secrets() -> EnvSecret {
    EnvSecret {
        name: "PD_ROUTING_KEY",
        value: KEY,
    }
}

fn context(secrets: &dyn SecretResolver) -> EmitContext<'_> {
    EmitContext {
        base: BuildContext {
            name: "pager",
            key: "emitter[0]",
            timeout: Duration::from_secs(5),
            secrets,
            base_dir: Path::new("/nonexistent"),
        },
        deliveries: None,
        clock: Arc::new(SystemClock),
        filter: crate::config::SeverityFilter::all(),
    }
}

/// Builds from the table's own keys, as `emit::build` does.
async fn build(table: &str) -> Result<PagerDutyEmitter, PluginConfigError> {
    let secrets = secrets();
    let ctx = context(&secrets);
    let table: toml::Table = toml::from_str(table).unwrap();
    PagerDutyEmitter::build(&ctx, super::super::config(&table, &ctx)?).await
}

async fn emitter(server: &MockServer, extra: &str) -> PagerDutyEmitter {
    build(&format!(
        "routing_key = {{ env = \"PD_ROUTING_KEY\" }}\nurl = \"{}\"\n{extra}",
        server.uri()
    ))
    .await
    .unwrap()
}

fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "status": "success",
        "message": "Event processed",
        "dedup_key": "rep-1"
    }))
}

fn verdict(r: &mut Report, now: Severity, before: Option<Severity>) {
    r.result = ReportResult {
        severity: now,
        reason: format!("policy: {now}"),
    };
    r.previous_result = before.map(|severity| ReportResult {
        severity,
        reason: String::new(),
    });
}

#[tokio::test]
async fn an_urgent_version_triggers_an_alert_keyed_by_the_report_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "rep-1",
            "client": "AlertResponder",
            "payload": {
                "summary": "URGENT: Test rule [test] on key-1",
                "source": "alertresponder",
                "severity": "critical",
                "timestamp": "2026-09-21T14:13:20Z",
                "custom_details": {"report_id": "rep-1", "version": 1, "verdict": "urgent"}
            }
        })))
        .respond_with(accepted())
        .expect(1)
        .mount(&server)
        .await;
    let mut r = report("rep-1", 1, "test", "192.0.2.1");
    verdict(&mut r, Severity::Urgent, None);
    let pd = emitter(&server, "").await;
    assert!(pd.wants(&r));
    pd.emit(&r, 0).await.unwrap();
    let sent = &server.received_requests().await.unwrap()[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    // No link from anywhere but report_url.
    assert!(body.get("links").is_none() && body.get("client_url").is_none());
}

#[tokio::test]
async fn a_re_review_updates_the_same_alert_with_the_configured_severity() {
    let server = MockServer::start().await;
    let link = digest::report_link("https://ar.example/reports/{id}", "rep-1", 2);
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .and(body_partial_json(json!({
            "event_action": "trigger",
            "dedup_key": "rep-1",
            "payload": {
                "summary": "UNCLASSIFIED (was urgent): Test rule [test] on key-1",
                "severity": "error",
                "source": "soc-alertresponder",
                "component": "ec2",
                "group": "prod",
                "class": "intrusion",
                "custom_details": {"version": 2, "previous_verdict": "urgent"}
            },
            "client_url": link,
            "links": [{"href": link, "text": "AlertResponder report"}]
        })))
        .respond_with(accepted())
        .expect(1)
        .mount(&server)
        .await;
    let mut r = report("rep-1", 2, "test", "192.0.2.1");
    verdict(&mut r, Severity::Unclassified, Some(Severity::Urgent));
    let pd = emitter(
        &server,
        r#"
source = "soc-alertresponder"
severity = { unclassified = "error" }
report_url = "https://ar.example/reports/{id}"
component = "ec2"
group = "prod"
class = "intrusion"
"#,
    )
    .await;
    pd.emit(&r, 1).await.unwrap();
}

#[tokio::test]
async fn a_safe_re_review_resolves_the_alert_with_the_same_dedup_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .and(body_json(json!({
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": "rep-1"
        })))
        .respond_with(accepted())
        .expect(1)
        .mount(&server)
        .await;
    let mut r = report("rep-1", 3, "test", "192.0.2.1");
    verdict(&mut r, Severity::Safe, Some(Severity::Unclassified));
    let pd = emitter(&server, "").await;
    assert!(pd.wants(&r));
    pd.emit(&r, 0).await.unwrap();
}

#[tokio::test]
async fn a_safe_version_that_follows_no_paging_verdict_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted())
        .expect(0)
        .mount(&server)
        .await;
    let pd = emitter(&server, "").await;
    for before in [None, Some(Severity::Safe)] {
        let mut r = report("rep-1", 1, "test", "192.0.2.1");
        verdict(&mut r, Severity::Safe, before);
        assert!(!pd.wants(&r), "{before:?}");
        assert_eq!(pd.event(&r), None);
        pd.emit(&r, 0).await.unwrap();
    }
}

async fn answer(template: ResponseTemplate) -> PluginError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    let mut r = report("rep-1", 1, "test", "192.0.2.1");
    verdict(&mut r, Severity::Urgent, None);
    emitter(&server, "").await.emit(&r, 0).await.unwrap_err()
}

#[tokio::test]
async fn an_invalid_event_is_rejected_with_pagerdutys_reason_and_never_the_key() {
    let e = answer(ResponseTemplate::new(400).set_body_json(json!({
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [format!("Length of 'routing_key' is incorrect: {KEY}")]
    })))
    .await;
    let PluginError::Rejected(message) = &e else {
        panic!("{e:?}");
    };
    assert!(!e.is_retryable());
    assert!(
        message.starts_with("PagerDuty http://127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("HTTP 400") && message.contains("invalid event"));
    assert!(!message.contains(KEY), "{message}");
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_a_5xx_is_retried() {
    assert_eq!(
        answer(ResponseTemplate::new(429).insert_header("retry-after", "30")).await,
        PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    for status in [500, 502, 503] {
        let e = answer(ResponseTemplate::new(status).set_body_json(json!({
            "status": "Internal error",
            "message": "try again"
        })))
        .await;
        assert!(
            matches!(e, PluginError::Failed(_)) && e.is_retryable(),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn a_2xx_that_is_not_success_is_not_taken_as_delivered() {
    let e = answer(ResponseTemplate::new(202).set_body_json(json!({"status": "throttled"}))).await;
    assert!(
        matches!(&e, PluginError::InvalidOutput(m) if m.contains("\"throttled\"")),
        "{e:?}"
    );
    let e = answer(ResponseTemplate::new(200).set_body_string("<html>")).await;
    assert!(matches!(e, PluginError::InvalidOutput(_)), "{e:?}");
}

async fn config_error(table: &str) -> (String, String) {
    match build(table).await {
        Ok(_) => panic!("{table}: built"),
        Err(PluginConfigError::Invalid { key, message }) => (key, message),
        Err(PluginConfigError::Secret { key, message, .. }) => (key, message),
        Err(e) => panic!("{table}: {e:?}"),
    }
}

#[tokio::test]
async fn a_bad_configuration_is_named_by_its_key_and_never_shows_the_key() {
    let (key, message) = config_error(&format!("routing_key = \"{KEY}\"")).await;
    assert_eq!(key, "emitter[0].routing_key");
    assert!(
        !message.contains(KEY) && message.contains("never written"),
        "{message}"
    );
    let k = "routing_key = { env = \"PD_ROUTING_KEY\" }\n";
    for (extra, at, says) in [
        (
            "severity = { urgent = \"high\" }",
            "emitter[0].severity.urgent",
            "critical, error, warning, info",
        ),
        (
            "severity = { safe = \"info\" }",
            "emitter[0].severity.safe",
            "never pages",
        ),
        (
            "severity = { hot = \"info\" }",
            "emitter[0].severity",
            "not a verdict",
        ),
        (
            "url = \"http://events.example\"",
            "emitter[0].url",
            "loopback",
        ),
        (
            "report_url = \"https://ar.example/reports\"",
            "emitter[0].report_url",
            "{id}",
        ),
        ("source = \"\"", "emitter[0].source", "empty"),
        ("class = \"a\\nb\"", "emitter[0].class", "control"),
        ("routing = \"x\"", "emitter[0]", "unknown field `routing`"),
    ] {
        let (key, message) = config_error(&format!("{k}{extra}")).await;
        assert_eq!(key, at, "{extra}");
        assert!(message.contains(says), "{extra}: {message}");
    }
    let (key, _) = config_error("routing_key = { env = \"PD_NOT_SET_ANYWHERE\" }").await;
    assert_eq!(key, "emitter[0].routing_key");
}

#[tokio::test]
async fn the_kind_is_built_through_emit_build_and_the_eu_url_is_taken() {
    let secrets = secrets();
    let ctx = context(&secrets);
    let table: toml::Table = toml::from_str(
        "routing_key = { env = \"PD_ROUTING_KEY\" }\nurl = \"https://events.eu.pagerduty.com\"",
    )
    .unwrap();
    let built = crate::emit::build(EmitterKind::PagerDuty, &table, &ctx)
        .await
        .unwrap();
    assert_eq!(built.name(), "pager");
    let pd = build(
        "routing_key = { env = \"PD_ROUTING_KEY\" }\nurl = \"https://events.eu.pagerduty.com\"",
    )
    .await
    .unwrap();
    assert_eq!(
        pd.enqueue.as_str(),
        "https://events.eu.pagerduty.com/v2/enqueue"
    );
    let pd = build("routing_key = { env = \"PD_ROUTING_KEY\" }")
        .await
        .unwrap();
    assert_eq!(
        pd.enqueue.as_str(),
        "https://events.pagerduty.com/v2/enqueue"
    );
    let debug = format!("{pd:?}");
    assert!(!debug.contains(KEY) && debug.contains("***"), "{debug}");
}

#[test]
fn a_dedup_key_is_the_report_id_or_a_hash_within_pagerdutys_bound() {
    let id = "4b8e3a0c-2f7d-4f0e-9a51-6a8d2c1e9f00";
    assert_eq!(dedup_key(id), id);
    let long = "x".repeat(300);
    let k = dedup_key(&long);
    assert!(k.starts_with("sha256:") && k.len() <= MAX_DEDUP_KEY_CHARS);
    assert_eq!(k, dedup_key(&long));
}

/// Every string the event holds, with its JSON path.
fn strings<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                strings(item, format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn hostile_alert_text_stays_plain_bounded_and_never_a_link() {
    let hostile = [
        "<!channel>",
        "<@U123>",
        "<https://evil.example|click>",
        "@here @octocat #1",
        "<img src=x onerror=alert(1)>",
        "![x](https://evil.example/x.png)",
        "javascript:alert(1)",
        "\u{202e}evil\u{200b}\x1b[31m\r\n",
    ]
    .join(" ");
    let huge = format!("{hostile}{}", "𝕏".repeat(100_000));
    let mut r = report("rep-1", 2, "test", "192.0.2.1");
    verdict(&mut r, Severity::Urgent, Some(Severity::Unclassified));
    r.alerts[0].rule_name = huge.clone();
    r.alerts[0].alert_key = huge.clone();
    r.alerts[0].description = huge.clone();
    r.result.reason = huge.clone();
    let attr = r.alerts[0].attributes[0].clone();
    for i in 0..200 {
        r.attributes.push(Attribute {
            value: format!("{i}{huge}"),
            key: huge.clone(),
            ..attr.clone()
        });
        r.sections.push(ReportSection {
            report_id: r.id.clone(),
            author: huge.clone(),
            attribute: attr.clone(),
            section_type: "host".into(),
            content: json!({ "country": [huge.clone()], "note": huge.clone() }),
        });
    }
    let pd = build(
        "routing_key = { env = \"PD_ROUTING_KEY\" }\nreport_url = \"https://ar.example/r/{id}\"",
    )
    .await
    .unwrap();
    let event = pd.event(&r).unwrap();
    let summary = event["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.chars().count() <= MAX_SUMMARY_CHARS,
        "{}",
        summary.len()
    );
    assert!(summary.starts_with("URGENT (was unclassified): <!channel> <@U123>"));
    let details = serde_json::to_vec(&event["payload"]["custom_details"]).unwrap();
    assert!(details.len() <= MAX_DETAILS_BYTES, "{}", details.len());
    assert!(event["payload"]["custom_details"]["findings_omitted"].as_u64() > Some(0));
    assert!(serde_json::to_vec(&event).unwrap().len() < 2 * MAX_DETAILS_BYTES);
    let mut all = Vec::new();
    strings(&event, String::new(), &mut all);
    for (at, s) in &all {
        assert!(
            !s.chars().any(|c| c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}')),
            "{at}"
        );
    }
    // The only links are the configured report's.
    let link = digest::report_link("https://ar.example/r/{id}", "rep-1", 2);
    assert_eq!(
        event["links"],
        json!([{"href": link, "text": "AlertResponder report"}])
    );
    assert_eq!(event["client_url"], json!(link));
}

#[tokio::test]
async fn the_golden_event_is_what_the_team_sees() {
    let pd = build(
        r#"
routing_key = { env = "PD_ROUTING_KEY" }
report_url = "https://alertresponder.example.com/reports/{id}"
component = "ec2"
group = "production"
class = "UnauthorizedAccess"
"#,
    )
    .await
    .unwrap();
    let Some(Value::Object(mut event)) = pd.event(&guardduty_report()) else {
        panic!("no event");
    };
    event.insert("routing_key".into(), json!("<your routing key>"));
    let mut text = serde_json::to_string_pretty(&Value::Object(event)).unwrap();
    text.push('\n');
    golden("docs/emitters/pagerduty.json", &text);
}

#[test]
fn a_verdict_below_the_filter_after_one_that_paged_resolves() {
    use crate::config::SeverityFilter;
    use alertresponder_core::model::{ReportResult, Severity};
    let step = |now: Severity, before: Option<Severity>| {
        let mut r = crate::test_support::report("r", 2, "d", "192.0.2.1");
        r.result.severity = now;
        r.previous_result = before.map(|severity| ReportResult {
            severity,
            reason: String::new(),
        });
        r
    };
    let urgent_only = SeverityFilter::at_least(Severity::Urgent);
    let default = SeverityFilter::at_least(Severity::Unclassified);
    use Severity::{Safe, Unclassified, Urgent};
    // urgent → unclassified → safe, paging on urgent only: the downgrade resolves, and
    // the safe version after it has nothing left to resolve.
    assert_eq!(
        Action::of(&step(Urgent, None), &urgent_only),
        Some(Action::Trigger)
    );
    assert_eq!(
        Action::of(&step(Unclassified, Some(Urgent)), &urgent_only),
        Some(Action::Resolve)
    );
    assert_eq!(
        Action::of(&step(Safe, Some(Unclassified)), &urgent_only),
        None
    );
    // The default pages from unclassified: the same sequence updates, then resolves.
    assert_eq!(
        Action::of(&step(Unclassified, Some(Urgent)), &default),
        Some(Action::Trigger)
    );
    assert_eq!(
        Action::of(&step(Safe, Some(Unclassified)), &default),
        Some(Action::Resolve)
    );
    // A safe verdict never pages, whatever the filter says.
    assert_eq!(Action::of(&step(Safe, None), &SeverityFilter::all()), None);
}
