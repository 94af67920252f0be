//! The scenarios: alerts published to a stack's ingest topic, reports and errors read
//! from the tester's queues. One code path for a deployed stack and for the stack in a
//! box; only the [`Target`] and the SDK endpoint differ.
//!
//! Every alert of a run carries the run's mark in its key, so runs and scenarios never
//! mistake each other's reports; scenarios run concurrently and share what the queues
//! deliver. Each wait has a deadline (the stack's delays plus a margin) and, when it
//! gives up, says what it waited for and what came instead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use alertresponder_aws_testkit::{Delivered, Subscriber};
use alertresponder_core::{Report, Severity};
use anyhow::{bail, ensure, Context};
use aws_config::SdkConfig;
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::target::Target;
use tester_functions::{domain_of, REVIEWER};

/// The detector of every alert the scenarios publish.
pub const DETECTOR: &str = "alertresponder-tester";

/// The body of a message as a report (`None` for an error record or anything else).
pub fn report_of(m: &Delivered) -> Option<Report> {
    serde_json::from_str(&m.body).ok()
}

/// One line on a message, for a wait that gave up.
fn summary(m: &Delivered) -> String {
    match report_of(m) {
        Some(r) => format!(
            "report {} v{} key {} ({} alert(s), {})",
            r.id,
            r.version,
            r.alerts
                .first()
                .map(|a| a.alert_key.as_str())
                .unwrap_or("-"),
            r.alerts.len(),
            r.result.severity
        ),
        None => {
            let v: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
            format!("error record stage {} field {}", v["stage"], v["field"])
        }
    }
}

/// An SDK error with its whole chain of causes (the SDK's own Display says only
/// "service error").
fn sdk_error(doing: String, e: impl std::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{doing}: {}", aws_sdk_sns::error::DisplayErrorContext(e))
}

/// A queue and everything it delivered so far (concurrent scenarios share it).
struct Inbox {
    name: &'static str,
    queue: Subscriber,
    seen: tokio::sync::Mutex<Vec<Delivered>>,
}

/// Publishes the scenarios' alerts and waits for what comes out.
pub struct Harness {
    target: Target,
    sns: aws_sdk_sns::Client,
    /// The mark of this run (in every alert key).
    pub run: String,
    margin: Duration,
    started: Instant,
    reports: Inbox,
    errors: Inbox,
    keys: std::sync::Mutex<BTreeSet<String>>,
}

/// One scenario: its name and what it does.
pub type Scenario = (
    &'static str,
    for<'a> fn(&'a Harness) -> BoxFuture<'a, anyhow::Result<()>>,
);

/// How a scenario went.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario.
    pub name: &'static str,
    /// `Err` says what failed or what was awaited in vain.
    pub result: Result<(), String>,
    /// How long it took.
    pub took: Duration,
}

impl Harness {
    /// A harness on `target`; `margin` is added to the stack's delays for each wait
    /// (Lambda cold starts, SNS and SQS delivery).
    pub fn new(sdk: &SdkConfig, target: Target, margin: Duration) -> Harness {
        let run = format!(
            "tester-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        );
        Harness {
            sns: aws_sdk_sns::Client::new(sdk),
            run,
            margin,
            started: Instant::now(),
            reports: Inbox {
                name: "report queue",
                queue: Subscriber::existing(sdk, &target.report_queue_url),
                seen: Default::default(),
            },
            errors: Inbox {
                name: "error queue",
                queue: Subscriber::existing(sdk, &target.error_queue_url),
                seen: Default::default(),
            },
            target,
            keys: Default::default(),
        }
    }

    /// The stack under test.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn progress(&self, scenario: &str, what: &str) {
        eprintln!(
            "[{:>5.1}s] {scenario}: {what}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// The alert key of `scenario` in this run.
    pub fn key(&self, scenario: &str) -> String {
        format!("{}-{scenario}", self.run)
    }

    /// An alert of `scenario` (key [`Harness::key`], rule `tester/<scenario>`) naming
    /// `attributes` (`(type, value)`).
    pub fn alert(&self, scenario: &str, attributes: &[(&str, &str)]) -> Value {
        let attributes: Vec<Value> = attributes
            .iter()
            .map(|(t, v)| json!({"type": t, "key": format!("{t} seen"), "value": v, "context": ["remote"]}))
            .collect();
        json!({
            "detector": DETECTOR,
            "rule_id": format!("tester/{scenario}"),
            "rule_name": format!("AlertResponder tester: {scenario}"),
            "alert_key": self.key(scenario),
            "description": format!("published by the tester, run {}", self.run),
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "attributes": attributes,
        })
    }

    /// Publishes `message` to the ingest topic as a detector would; its message ID.
    pub async fn publish(&self, scenario: &str, message: &str) -> anyhow::Result<String> {
        let out = self
            .sns
            .publish()
            .topic_arn(&self.target.ingest_topic_arn)
            .message(message)
            .send()
            .await
            .map_err(|e| sdk_error(format!("publishing to {}", self.target.ingest_topic_arn), e))?;
        self.progress(scenario, "published an alert");
        Ok(out.message_id.unwrap_or_default())
    }

    /// Publishes an alert (see [`Harness::alert`]).
    pub async fn publish_alert(
        &self,
        scenario: &str,
        attributes: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let alert = self.alert(scenario, attributes).to_string();
        self.publish(scenario, &alert).await?;
        self.keys_made().insert(self.key(scenario));
        Ok(())
    }

    /// The alert keys published so far. A scenario that panicked while holding the lock
    /// left the set whole (one insert is all it does), so a poisoned lock is read as is.
    fn keys_made(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long one wait may take: the stack's delays and the margin.
    pub fn budget(&self) -> Duration {
        self.target.inspection_delay + self.target.review_delay + self.margin
    }

    async fn await_message(
        &self,
        inbox: &Inbox,
        scenario: &str,
        what: &str,
        matches: impl Fn(&Delivered) -> bool,
    ) -> anyhow::Result<Delivered> {
        self.progress(scenario, &format!("waiting for {what}"));
        let budget = self.budget();
        let deadline = Instant::now() + budget;
        loop {
            let mut seen = inbox.seen.lock().await;
            if let Some(m) = seen.iter().find(|m| matches(m)) {
                self.progress(scenario, &format!("got {what}"));
                return Ok(m.clone());
            }
            if Instant::now() > deadline {
                let mine: Vec<String> = seen
                    .iter()
                    .filter(|m| m.body.contains(&self.run))
                    .map(summary)
                    .collect();
                bail!(
                    "gave up after {} s waiting for {what}; the {} brought {} message(s) meanwhile, \
                     {} of this run: [{}]",
                    budget.as_secs(),
                    inbox.name,
                    seen.len(),
                    mine.len(),
                    mine.join("; ")
                );
            }
            let new = inbox
                .queue
                .receive(Duration::from_secs(1))
                .await
                .map_err(|e| anyhow::anyhow!("reading the {}: {e}", inbox.name))?;
            seen.extend(new);
        }
    }

    /// Waits for report `version` of `scenario`'s key.
    pub async fn await_report(
        &self,
        scenario: &str,
        version: u32,
    ) -> anyhow::Result<(Report, Delivered)> {
        let key = self.key(scenario);
        let what = format!("report v{version} of alert key {key}");
        let m = self
            .await_message(&self.reports, scenario, &what, |m| {
                report_of(m).is_some_and(|r| {
                    r.version == version && r.alerts.iter().any(|a| a.alert_key == key)
                })
            })
            .await?;
        let report = report_of(&m).context("the report parses")?;
        Ok((report, m))
    }

    /// Waits for an error record whose kept input contains `marker`.
    pub async fn await_error(&self, scenario: &str, marker: &str) -> anyhow::Result<Value> {
        let what = format!("an error record keeping the input marked {marker}");
        let m = self
            .await_message(&self.errors, scenario, &what, |m| {
                serde_json::from_str::<Value>(&m.body)
                    .is_ok_and(|v| v["input"].as_str().is_some_and(|i| i.contains(marker)))
            })
            .await?;
        Ok(serde_json::from_str(&m.body)?)
    }

    /// Every published alert key that came out in more than one report (checked once
    /// the scenarios are done).
    pub async fn keys_in_several_reports(&self) -> Vec<String> {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in self.reports.seen.lock().await.iter() {
            if let Some(r) = report_of(m) {
                for a in &r.alerts {
                    ids.entry(a.alert_key.clone())
                        .or_default()
                        .insert(r.id.clone());
                }
            }
        }
        let keys = self.keys_made().clone();
        keys.into_iter()
            .filter(|k| ids.get(k).is_some_and(|s| s.len() > 1))
            .collect()
    }
}

// ---------------------------------------------------------------- the scenarios

/// Every scenario, in the order the issue lists them.
pub const SCENARIOS: &[Scenario] = &[
    ("one report per alert key", one_report_per_alert_key),
    ("aggregation into one report", aggregation),
    (
        "inspector section and fed-back attribute",
        inspection_and_feedback,
    ),
    ("reviewer severity", reviewer_severity),
    ("report message attributes", message_attributes),
    ("malformed alert on the error topic", malformed_alert),
    ("re-review publishes version 2", re_review),
];

const IP: &str = "198.51.100.7";

fn keys_of(report: &Report) -> BTreeSet<&str> {
    report.alerts.iter().map(|a| a.alert_key.as_str()).collect()
}

fn one_report_per_alert_key(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        // Same rule, same address, two keys: two reports.
        let (a, b) = ("per-key-a", "per-key-b");
        h.publish_alert(a, &[("ipaddr", IP)]).await?;
        h.publish_alert(b, &[("ipaddr", IP)]).await?;
        let (ra, _) = h.await_report(a, 1).await?;
        let (rb, _) = h.await_report(b, 1).await?;
        ensure!(ra.id != rb.id, "keys {a} and {b} share report {}", ra.id);
        for (r, s) in [(&ra, a), (&rb, b)] {
            let key = h.key(s);
            ensure!(
                keys_of(r) == BTreeSet::from([key.as_str()]),
                "report {} of key {key} holds alerts of keys {:?}",
                r.id,
                keys_of(r)
            );
            ensure!(
                r.alerts.len() == 1,
                "report {} has {} alerts, 1 published",
                r.id,
                r.alerts.len()
            );
        }
        Ok(())
    })
}

fn aggregation(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let s = "aggregation";
        h.publish_alert(
            s,
            &[
                ("ipaddr", "198.51.100.20"),
                ("username", "first-alert-user"),
            ],
        )
        .await?;
        h.publish_alert(
            s,
            &[
                ("ipaddr", "198.51.100.20"),
                ("username", "second-alert-user"),
            ],
        )
        .await?;
        let (r, _) = h.await_report(s, 1).await?;
        ensure!(
            r.alerts.len() == 2,
            "report {} v1 holds {} alert(s); both alerts of key {} were published before its review",
            r.id,
            r.alerts.len(),
            h.key(s)
        );
        let users: BTreeSet<&str> = r
            .attributes
            .iter()
            .filter(|a| a.attr_type == "username")
            .map(|a| a.value.as_str())
            .collect();
        ensure!(
            users == BTreeSet::from(["first-alert-user", "second-alert-user"]),
            "the attributes of both alerts are in the report: usernames {users:?}"
        );
        Ok(())
    })
}

fn inspection_and_feedback(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let s = "inspection";
        let ip = "198.51.100.30";
        h.publish_alert(s, &[("ipaddr", ip)]).await?;
        let (r, _) = h.await_report(s, 1).await?;
        let inspector = &h.target().inspector;
        let host = r.sections.iter().find(|x| {
            &x.author == inspector && x.section_type == "host" && x.attribute.value == ip
        });
        let host = host.with_context(|| {
            format!(
                "no host section by {inspector} for {ip} in report {}; sections: {:?}",
                r.id,
                r.sections
                    .iter()
                    .map(|x| (&x.author, &x.section_type, &x.attribute.value))
                    .collect::<Vec<_>>()
            )
        })?;
        let domain = domain_of(ip);
        ensure!(
            host.content["hostname"][0] == domain.as_str(),
            "host section content {}",
            host.content
        );
        ensure!(
            r.attributes
                .iter()
                .any(|a| a.attr_type == "domain" && a.value == domain),
            "the fed-back attribute {domain} is not among the report's attributes: {:?}",
            r.attributes.iter().map(|a| &a.value).collect::<Vec<_>>()
        );
        ensure!(
            r.sections.iter().any(|x| &x.author == inspector && x.attribute.value == domain),
            "the fed-back attribute {domain} was not inspected in turn (no section of {inspector} for it)"
        );
        Ok(())
    })
}

fn reviewer_severity(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let (hot, calm) = ("review-urgent", "review-safe");
        h.publish_alert(hot, &[("ipaddr", "198.51.100.40")]).await?;
        h.publish_alert(calm, &[("username", "calm-user")]).await?;
        for (s, severity) in [(hot, Severity::Urgent), (calm, Severity::Safe)] {
            let (r, _) = h.await_report(s, 1).await?;
            ensure!(
                r.result.severity == severity && r.result.reason.contains(REVIEWER),
                "report {} of key {}: expected {severity} from {REVIEWER}, got {} ({})",
                r.id,
                h.key(s),
                r.result.severity,
                r.result.reason
            );
        }
        Ok(())
    })
}

fn message_attributes(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let s = "attributes";
        h.publish_alert(s, &[("ipaddr", "198.51.100.50")]).await?;
        let (r, m) = h.await_report(s, 1).await?;
        let expected = BTreeMap::from([
            ("severity", r.result.severity.to_string()),
            ("detector", DETECTOR.to_string()),
            ("rule_id", format!("tester/{s}")),
            ("version", "1".to_string()),
        ]);
        for (name, value) in &expected {
            ensure!(
                m.attributes.get(*name) == Some(value),
                "message attribute {name}: expected {value:?}, got {:?} (all: {:?})",
                m.attributes.get(*name),
                m.attributes
            );
        }
        ensure!(
            r.result.severity == Severity::Urgent,
            "report {} of an inspected address: expected severity urgent, got {} ({})",
            r.id,
            r.result.severity,
            r.result.reason
        );
        Ok(())
    })
}

fn malformed_alert(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let s = "malformed";
        let marker = h.key(s);
        // alert_key must be a string; the rule ID marks it as this run's.
        let bad = json!({"detector": DETECTOR, "rule_id": marker, "alert_key": 5}).to_string();
        h.publish(s, &bad).await?;
        let record = h.await_error(s, &marker).await?;
        ensure!(record["stage"] == "receive", "stage {}", record["stage"]);
        ensure!(
            record["field"] == "alert_key",
            "the error names field {} (expected alert_key): {}",
            record["field"],
            record["error"]
        );
        ensure!(
            record["input"] == bad.as_str(),
            "the input is kept whole: {}",
            record["input"]
        );
        Ok(())
    })
}

fn re_review(h: &Harness) -> BoxFuture<'_, anyhow::Result<()>> {
    Box::pin(async move {
        let s = "re-review";
        h.publish_alert(s, &[("ipaddr", "198.51.100.60")]).await?;
        let (v1, _) = h.await_report(s, 1).await?;
        h.publish_alert(s, &[("ipaddr", "198.51.100.60"), ("username", "late-user")])
            .await?;
        let (v2, m) = h.await_report(s, 2).await?;
        ensure!(
            v2.id == v1.id,
            "version 2 is report {}, version 1 was {}",
            v2.id,
            v1.id
        );
        ensure!(
            v2.alerts.len() == 2,
            "version 2 holds {} alert(s), 2 published",
            v2.alerts.len()
        );
        ensure!(
            v2.previous_result.as_ref() == Some(&v1.result),
            "previous_result {:?}, version 1 decided {:?}",
            v2.previous_result,
            v1.result
        );
        ensure!(
            m.attributes.get("version").map(String::as_str) == Some("2"),
            "message attribute version {:?}",
            m.attributes.get("version")
        );
        Ok(())
    })
}

/// Runs every scenario concurrently, then checks that no alert key of the run came
/// out in two reports; one outcome per scenario.
pub async fn run_all(h: &Harness) -> Vec<Outcome> {
    let mut outcomes =
        futures::future::join_all(SCENARIOS.iter().map(|(name, scenario)| async move {
            let started = Instant::now();
            let result = scenario(h).await.map_err(|e| format!("{e:#}"));
            h.progress(name, if result.is_ok() { "ok" } else { "FAILED" });
            Outcome {
                name,
                result,
                took: started.elapsed(),
            }
        }))
        .await;
    let split = h.keys_in_several_reports().await;
    outcomes.push(Outcome {
        name: "every alert key in one report",
        result: if split.is_empty() {
            Ok(())
        } else {
            Err(format!("keys in more than one report: {split:?}"))
        },
        took: Duration::ZERO,
    });
    outcomes
}

/// The outcomes, a line each; `Err` with the failures when any failed.
pub fn verdict(outcomes: &[Outcome]) -> Result<String, String> {
    let lines: Vec<String> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(()) => format!("ok      {} ({:.1} s)", o.name, o.took.as_secs_f64()),
            Err(e) => format!("FAILED  {} ({:.1} s): {e}", o.name, o.took.as_secs_f64()),
        })
        .collect();
    let text = lines.join("\n");
    if outcomes.iter().any(|o| o.result.is_err()) {
        Err(text)
    } else {
        Ok(text)
    }
}
