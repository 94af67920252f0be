//! The github emitter against a local server answering as GitHub's REST API does:
//! [`flow`] (one issue per report, a comment per later version, labels), [`answers`]
//! (GitHub's errors and rate limits, configuration, secrets), and the golden picture.

mod answers;
mod flow;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alertresponder_core::memory::MemoryStore;
use alertresponder_core::model::{ReportResult, Severity};
use alertresponder_core::ports::{DeliveryLog, Emitter, SystemClock};
use alertresponder_core::{PluginError, Report};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::markdown::{self, issue_marker, version_marker};
use super::*;
use crate::inspect::BuildContext;
use crate::test_support::{golden, guardduty_report, report, EnvSecret};

const TOKEN: &str = "tst_s3cretT0ken";
const REPO: &str = "/repos/acme/security-alerts";

fn config(extra: &str) -> Config {
    toml::from_str(&format!(
        "repository = \"acme/security-alerts\"\ntoken = {{ env = \"GH_TOKEN\" }}\n{extra}"
    ))
    .unwrap()
}

async fn build_with(
    url: &str,
    store: Option<Arc<MemoryStore>>,
    config: Config,
) -> Result<GitHubEmitter, PluginConfigError> {
    let secrets = EnvSecret {
        name: "GH_TOKEN",
        value: TOKEN,
    };
    let ctx = EmitContext {
        base: BuildContext {
            name: "issues",
            key: "emitter[1]",
            timeout: Duration::from_secs(5),
            secrets: &secrets,
            base_dir: Path::new("/nonexistent"),
        },
        deliveries: store.map(|s| s as Arc<dyn DeliveryLog>),
        clock: Arc::new(SystemClock),
        filter: crate::config::SeverityFilter::all(),
    };
    let mut config = config;
    config.url = Some(url.to_string());
    GitHubEmitter::build(&ctx, config).await
}

async fn emitter(server: &MockServer, store: &Arc<MemoryStore>) -> GitHubEmitter {
    build_with(&server.uri(), Some(store.clone()), config(""))
        .await
        .unwrap()
}

/// Version `version` of report `rep-1`, `severity`, re-reviewed from `previous`.
fn version(version: u32, severity: Severity, previous: Option<Severity>) -> Report {
    let mut r = report("rep-1", version, "guardduty", "198.51.100.23");
    r.result = ReportResult {
        severity,
        reason: "policy".into(),
    };
    r.previous_result = previous.map(|severity| ReportResult {
        severity,
        reason: "before".into(),
    });
    r
}

/// GitHub's answer for an issue.
fn issue_json(number: u64, body: &str, labels: &[&str]) -> Value {
    json!({
        "id": 1_000 + number,
        "number": number,
        "state": "open",
        "title": "t",
        "body": body,
        "html_url": format!("https://github.com/acme/security-alerts/issues/{number}"),
        "labels": labels.iter().map(|l| json!({"id": 1, "name": l, "color": "d73a4a"})).collect::<Vec<_>>(),
        "user": {"login": "alertresponder-bot"},
    })
}

/// Every request carries the token and GitHub's headers.
fn github(m: wiremock::MockBuilder) -> wiremock::MockBuilder {
    m.and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header(
            "user-agent",
            concat!("alertresponder/", env!("CARGO_PKG_VERSION")),
        ))
}

async fn memo(store: &MemoryStore) -> Option<Value> {
    store.recall("rep-1", "issues").await.unwrap()
}

async fn remember(store: &MemoryStore, memo: Value) {
    store.remember("rep-1", "issues", &memo).await.unwrap();
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// The picture of what the team sees: the issue version 1 opened (unclassified), and
/// the comment of version 2 (re-reviewed: urgent).
#[test]
fn the_rendered_issue_and_comment_match_the_golden_file() {
    let v2 = guardduty_report();
    let mut v1 = v2.clone();
    v1.version = 1;
    v1.result = v2.previous_result.clone().unwrap_or_default();
    v1.previous_result = None;
    v1.alerts.truncate(1);
    v1.sections.clear();
    v1.attributes.truncate(3);
    let link = |r: &Report| {
        crate::emit::digest::report_link(
            "https://alertresponder.example/reports/{id}",
            &r.id,
            r.version,
        )
    };
    let (d1, d2) = (Digest::of(&v1), Digest::of(&v2));
    let picture = format!(
        "<!-- Rendered from test_support::guardduty_report by emit::github's tests; \
         UPDATE_GOLDEN=1 rewrites it. -->\n\
         # What the team sees: the `github` emitter\n\n\
         Version 1 (unclassified) opens the issue; version 2, re-reviewed as urgent, \
         comments on it and moves the severity label.\n\n\
         **Issue title:** {}\n\n\
         **Labels:** `alertresponder`, `severity:unclassified` (then `severity:urgent` \
         instead, after version 2)\n\n\
         ## The issue body\n\n{}\n---\n\n## The comment of version 2\n\n{}",
        markdown::issue_title(&d1),
        markdown::issue_body(&d1, &v1.id, Some(&link(&v1))),
        markdown::version_text(&d2, &v2.id, Some(&link(&v2))),
    );
    golden("docs/emitters/github.md", &picture);
}
