//! The Slack emitter against a local server of Slack's documented answers, its
//! escaping and bounds with hostile and huge reports, and its golden message.

use std::path::Path;
use std::sync::Arc;

use alertresponder_core::model::{InspectionRecord, InspectionStatus, ReportResult, ReportSection};
use alertresponder_core::ports::SystemClock;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::config::EmitterKind;
use crate::inspect::BuildContext;
use crate::secret::SecretResolver;
use crate::test_support::{golden, guardduty_report, report, EnvSecret};

const HOOK: &str = "/services/T0001/B0002/s3cr3tT0ken";
const LINK: &str = "https://ar.example/reports/{id}?v={version}";

fn ctx(secrets: &dyn SecretResolver) -> EmitContext<'_> {
    EmitContext {
        base: BuildContext {
            name: "soc",
            key: "emitter[1]",
            timeout: Duration::from_secs(5),
            secrets,
            base_dir: Path::new("/nonexistent"),
        },
        deliveries: None,
        clock: Arc::new(SystemClock),
        filter: crate::config::SeverityFilter::all(),
    }
}

fn env(value: String) -> EnvSecret {
    EnvSecret {
        name: "SLACK_URL",
        value: Box::leak(value.into_boxed_str()),
    }
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

async fn emitter(url: String) -> SlackEmitter {
    let secrets = env(url);
    let config = Config {
        webhook_url: MaybeSecret::Secret(SecretRef::Env("SLACK_URL".into())),
        report_url: Some(LINK.into()),
    };
    SlackEmitter::build(&ctx(&secrets), config).await.unwrap()
}

/// Slack's documented limits, checked on a message we would send.
fn check_limits(m: &Value) {
    let blocks = m["blocks"].as_array().unwrap();
    assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
    let text_ok = |t: &Value, max: usize| {
        let s = t["text"].as_str().unwrap();
        assert!((1..=max).contains(&units(s)), "{} units: {s}", units(s));
        assert!(matches!(t["type"].as_str(), Some("plain_text" | "mrkdwn")));
    };
    for b in blocks {
        match b["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(b["text"]["type"], "plain_text");
                text_ok(&b["text"], MAX_HEADER);
            }
            "section" => {
                assert!(b.get("text").is_some() || b.get("fields").is_some());
                if let Some(t) = b.get("text") {
                    text_ok(t, MAX_SECTION_TEXT);
                }
                if let Some(fields) = b.get("fields") {
                    let fields = fields.as_array().unwrap();
                    assert!((1..=MAX_FIELDS).contains(&fields.len()));
                    fields.iter().for_each(|f| text_ok(f, MAX_FIELD_TEXT));
                }
            }
            "context" => {
                let elements = b["elements"].as_array().unwrap();
                assert!((1..=10).contains(&elements.len()));
                elements.iter().for_each(|e| text_ok(e, MAX_SECTION_TEXT));
            }
            "divider" => {}
            other => panic!("unexpected block {other}"),
        }
    }
    let total: usize = blocks.iter().map(cost).sum();
    assert!(total <= MESSAGE_BUDGET, "{total} units in the blocks");
    assert!(!m["text"].as_str().unwrap().is_empty());
}

/// Every text object of the message, as (type, text).
fn texts(m: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(o) => {
                if let (Some(Value::String(t)), Some(Value::String(s))) =
                    (o.get("type"), o.get("text"))
                {
                    out.push((t.clone(), s.clone()));
                }
                o.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&m["blocks"], &mut out);
    out
}

#[tokio::test]
async fn a_version_is_posted_as_block_kit_to_the_webhook() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(HOOK))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "text": "Urgent (was unclassified) security report: 198.51.100.23 is \
                     performing SSH brute force attacks against i-0abc12345def67890."
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let e = emitter(format!("{}{HOOK}", server.uri())).await;
    let r = guardduty_report();
    e.emit(&r, 0).await.unwrap();
    let sent = &server.received_requests().await.unwrap()[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body, e.message(&r));
    assert_eq!(body["blocks"][0]["type"], "header");
    let verdict = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        verdict.contains("*Urgent*, was *Unclassified*")
            && verdict.ends_with(
                "  ·  <https://ar.example/reports/7d1f5c2e-3b9a-4c8e-9f10-2a6b8c4d0e51\
                 ?v=2|Open the report>"
            ),
        "{verdict}"
    );
}

async fn answer(status: u16, body: &str, retry_after: Option<&str>) -> PluginError {
    let server = MockServer::start().await;
    let mut reply = ResponseTemplate::new(status).set_body_string(body);
    if let Some(s) = retry_after {
        reply = reply.insert_header("retry-after", s);
    }
    Mock::given(method("POST"))
        .and(path(HOOK))
        .respond_with(reply)
        .expect(1)
        .mount(&server)
        .await;
    let e = emitter(format!("{}{HOOK}", server.uri())).await;
    e.emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn slacks_documented_refusals_are_rejected_with_what_to_do() {
    for (status, code, why) in [
        (400, "invalid_payload", "could not read"),
        (400, "invalid_blocks", "refused the message's blocks"),
        (403, "invalid_token", "no longer valid"),
        (403, "action_prohibited", "restricts"),
        (404, "no_service", "removed or the URL is wrong"),
        (404, "channel_not_found", "no longer exists"),
        (410, "channel_is_archived", "archived"),
    ] {
        let e = answer(status, code, None).await;
        let PluginError::Rejected(m) = &e else {
            panic!("{status} {code}: {e:?}");
        };
        assert!(
            m.starts_with(&format!("Slack webhook: HTTP {status}: {code} (")) && m.contains(why),
            "{m}"
        );
        assert!(!m.contains("s3cr3tT0ken") && !m.contains("T0001"), "{m}");
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_a_5xx_is_retried() {
    assert_eq!(
        answer(429, r#"{"ok":false,"error":"rate_limited"}"#, Some("30")).await,
        PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    for status in [500, 503] {
        let e = answer(status, "rollup_error", None).await;
        assert!(
            matches!(&e, PluginError::Failed(m) if m == &format!("Slack webhook: HTTP {status}: rollup_error")),
            "{e:?}"
        );
        assert!(e.is_retryable());
    }
}

#[tokio::test]
async fn a_network_failure_never_shows_the_webhook_url() {
    // Nothing listens on port 1.
    let e = emitter(format!("http://127.0.0.1:1{HOOK}")).await;
    let err = e
        .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Failed(_)), "{err:?}");
    let shown = format!("{err} {err:?} {e:?}");
    assert!(
        !shown.contains("s3cr3tT0ken") && !shown.contains(HOOK),
        "{shown}"
    );
    assert!(shown.contains("Secret(***)"), "{shown}");
}

#[tokio::test]
async fn the_webhook_url_is_a_secret_reference_checked_without_being_shown() {
    let secrets = env(String::new());
    let plain = table(r#"webhook_url = "https://hooks.slack.com/services/T/B/s3cr3tT0ken""#);
    let e = build_err(&secrets, &plain).await;
    assert!(
        e.starts_with("emitter[1].webhook_url: a Slack webhook URL is its own credential"),
        "{e}"
    );
    assert!(!e.contains("s3cr3tT0ken"), "{e}");

    let reference = table(r#"webhook_url = { env = "SLACK_URL" }"#);
    for bad in [
        "http://hooks.slack.com/services/T/B/s3cr3tT0ken",
        "ftp://127.0.0.1/services/T/B/s3cr3tT0ken",
        "hooks.slack.com/services/T/B/s3cr3tT0ken",
        "file:///s3cr3tT0ken",
        "http://127.0.0.1.nip.io/s3cr3tT0ken",
    ] {
        let e = build_err(&env(bad.into()), &reference).await;
        assert!(
            e.starts_with("emitter[1].webhook_url: the value read from env SLACK_URL "),
            "{bad}: {e}"
        );
        assert!(!e.contains("s3cr3tT0ken"), "{e}");
    }
    for good in [
        "https://hooks.slack.com/services/T/B/s3cr3tT0ken",
        " https://hooks.slack-gov.com/services/T/B/x\n",
        "http://127.0.0.1:8080/services/T/B/x",
        "http://localhost/x",
    ] {
        let secrets = env(good.into());
        assert!(
            crate::emit::build(EmitterKind::Slack, &reference, &ctx(&secrets))
                .await
                .is_ok(),
            "{good}"
        );
    }
    let missing = build_err(
        &EnvSecret {
            name: "OTHER",
            value: "",
        },
        &reference,
    )
    .await;
    assert!(
        missing.starts_with("emitter[1].webhook_url: cannot read the secret (env SLACK_URL)"),
        "{missing}"
    );
}

async fn build_err(secrets: &dyn SecretResolver, t: &toml::Table) -> String {
    match crate::emit::build(EmitterKind::Slack, t, &ctx(secrets)).await {
        Ok(_) => panic!("built"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn unknown_keys_and_bad_report_urls_are_refused() {
    let secrets = env("https://hooks.slack.com/services/T/B/x".into());
    let e = build_err(
        &secrets,
        &table("webhook_url = { env = \"SLACK_URL\" }\nchannel = \"#soc\""),
    )
    .await;
    assert!(e.starts_with("emitter[1]: unknown field `channel`"), "{e}");
    for bad in [
        "https://ar.example/reports/",
        "javascript:alert(1)//{id}",
        &format!("https://ar.example/{}/{{id}}", "x".repeat(1000)),
    ] {
        let t = table(&format!(
            "webhook_url = {{ env = \"SLACK_URL\" }}\nreport_url = {bad:?}"
        ));
        let e = build_err(&secrets, &t).await;
        assert!(e.starts_with("emitter[1].report_url: "), "{e}");
    }
}

#[test]
fn escape_mrkdwn_defuses_every_control_sequence() {
    for (raw, escaped) in [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here|here>", "&lt;!here|here&gt;"),
        ("<@U123>", "&lt;@\u{2060}U123&gt;"),
        (
            "<https://evil.example|click>",
            "&lt;https://evil.example|click&gt;",
        ),
        ("@here @channel", "@\u{2060}here @\u{2060}channel"),
        ("a &amp; b & c", "a &amp;amp; b &amp; c"),
        ("*bold* _it_", "*bold* _it_"),
    ] {
        assert_eq!(escape_mrkdwn(raw), escaped, "{raw}");
    }
    assert_eq!(
        link_target("https://x.example/r?a=1&b=<2>|3"),
        "https://x.example/r?a=1&amp;b=%3C2%3E%7C3"
    );
}

#[test]
fn cut_counts_as_slack_does_and_never_splits_a_character() {
    assert_eq!(cut("abc", 3), "abc");
    assert_eq!(cut("abcd", 3), "ab…");
    assert_eq!(units("🔴"), 2);
    assert_eq!(cut("🔴🔴🔴", 5), "🔴🔴…");
    let long = cut(&"é🔴".repeat(2000), MAX_HEADER);
    assert!(
        (MAX_HEADER - 1..=MAX_HEADER).contains(&units(&long)),
        "{long}"
    );
}

const HOSTILE: [&str; 9] = [
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<https://evil.example|click here>",
    "@here",
    "<img src=x onerror=alert(1)>",
    "![x](https://evil.example/x.png)",
    "javascript:alert(1)",
    "\u{1b}[31m\u{202e}txt.exe\u{2066}",
];

fn hostile_report(big: &str) -> Report {
    let all = HOSTILE.join(" ");
    let mut r = report("rep-1", 2, &all, &all);
    let attr = r.alerts[0].attributes[0].clone();
    r.alerts[0].rule_name = format!("{all} {big}");
    r.alerts[0].rule_id = all.clone();
    r.alerts[0].alert_key = format!("{all} {big}");
    r.alerts[0].description = format!("{all}\n{big}");
    r.alerts[0].attributes[0].key = all.clone();
    r.result = ReportResult {
        severity: Severity::Safe,
        reason: format!("{all} {big}"),
    };
    r.previous_result = Some(ReportResult::default());
    r.sections = vec![ReportSection {
        report_id: r.id.clone(),
        author: all.clone(),
        attribute: attr.clone(),
        section_type: "host".into(),
        content: json!({"country": [all.clone()], "owner": [big]}),
    }];
    r.inspections = vec![InspectionRecord {
        inspector: all.clone(),
        attribute: attr,
        status: InspectionStatus::Failed,
        detail: None,
        at: r.created_at,
    }];
    r
}

#[test]
fn hostile_alert_text_is_shown_as_plain_text_and_can_neither_ping_nor_link() {
    let big = "A".repeat(100 * 1024);
    let r = hostile_report(&big);
    let m = message(&Digest::of(&r), Some("https://ar.example/reports/rep-1"));
    check_limits(&m);
    let our_link = "<https://ar.example/reports/rep-1|Open the report>";
    for (kind, text) in texts(&m) {
        if kind == "mrkdwn" {
            let rest = text.replace(our_link, "");
            assert!(!rest.contains(['<', '>', '@']), "{rest}");
            assert!(!rest.contains("evil") && !rest.contains("U123"), "{rest}");
        }
    }
    let plain: Vec<String> = texts(&m)
        .into_iter()
        .filter(|(k, _)| k == "plain_text")
        .map(|(_, t)| t)
        .collect();
    assert!(
        plain
            .iter()
            .any(|t| t.contains("<!channel> <!here> <@U123> <https://evil.example|click here>")),
        "shown as written: {plain:?}"
    );
    // The header cut the title: the facts show it whole (as far as the digest kept it).
    assert!(texts(&m)
        .iter()
        .any(|(k, t)| k == "mrkdwn" && t == "*Title*"));
    let fallback = m["text"].as_str().unwrap();
    assert!(
        !fallback.contains('<') && !fallback.contains('>'),
        "{fallback}"
    );
    assert!(fallback.contains("&lt;!channel&gt; &lt;!here&gt; &lt;@\u{2060}U123&gt;"));
    assert!(!fallback.contains("@here"), "{fallback}");
    let json = m.to_string();
    assert!(json.len() < 40_000, "{} bytes", json.len());
    let strings = texts(&m)
        .into_iter()
        .map(|(_, t)| t)
        .chain([fallback.to_string()]);
    for s in strings {
        assert!(
            !s.chars().any(|c| (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
            "{s:?}"
        );
    }
}

#[test]
fn a_big_report_is_summarised_within_slacks_limits() {
    let mut r = report("rep-1", 1, "test", "192.0.2.1");
    let attr = r.alerts[0].attributes[0].clone();
    for i in 0..60 {
        let mut a = attr.clone();
        a.value = format!("{i}-{}", "v".repeat(300));
        r.attributes.push(a.clone());
        r.sections.push(ReportSection {
            report_id: r.id.clone(),
            author: format!("inspector-{i}"),
            attribute: a,
            section_type: "host".into(),
            content: json!({"owner": ["o".repeat(5000)]}),
        });
    }
    let m = message(&Digest::of(&r), None);
    check_limits(&m);
    let footer = m["blocks"].as_array().unwrap().last().unwrap();
    let note = footer["elements"][1]["text"].as_str().unwrap();
    assert!(
        note.starts_with("Not shown here: ") && note.contains("findings"),
        "{note}"
    );
    let texts = texts(&m);
    assert!(texts.iter().any(|(_, t)| t == "*Key attributes* (61)"));
    assert!(texts.iter().any(|(_, t)| t == "*Findings* (60)"));
}

#[test]
fn the_verdict_tells_a_re_review() {
    let mut d = Digest::of(&report("rep-1", 1, "test", "192.0.2.1"));
    assert_eq!(
        verdict(&d, None),
        "*Verdict:* 🟡 *Unclassified*  ·  version 1  ·  1 alert"
    );
    d.version = 2;
    d.previous = Some(Severity::Unclassified);
    assert!(verdict(&d, None).contains("*Unclassified* (unchanged on re-review)"));
    d.severity = Severity::Safe;
    assert!(verdict(&d, None).starts_with("*Verdict:* 🟢 *Safe*, was *Unclassified*"));
}

#[tokio::test]
async fn the_golden_message_is_what_the_team_sees() {
    let e = emitter("https://hooks.slack.com/services/T/B/x".into()).await;
    let m = e.message(&guardduty_report());
    check_limits(&m);
    golden(
        "docs/emitters/slack.json",
        &format!("{}\n", serde_json::to_string_pretty(&m).unwrap()),
    );
}
