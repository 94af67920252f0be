//! The emitter fan-out on the DynamoDB store (moto): each (report, version, emitter)
//! on its own, retried within the invocation's time, skipped once recorded when
//! Lambda invokes again, kept when it fails; replays; and the scenario of the issue
//! (three webhook targets, one failing twice, two versions) against local servers.

use std::collections::VecDeque;
use std::time::Instant as StdInstant;

use alertresponder_aws_testkit::{create_tables, unique, Moto};
use alertresponder_core::ports::{DeliveryLog, ErrorLog};
use alertresponder_plugins::WebhookEmitter;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::dynamo::DynamoStore;
use crate::handlers::fanout::{FanoutOutput, ReplayOutput, FANOUT_TIMEOUT};
use alertresponder_core::pipeline::DeliveryOutcome;

/// The review wait the tests give the Review state.
const WAIT: Duration = Duration::from_secs(300);

/// A pipeline on memory buses whose store (and error sink) is a DynamoDB store on moto.
struct OnMoto {
    _moto: Moto,
    store: DynamoStore,
    p: Pipeline,
    rt: MemoryRuntime,
    clock: Arc<ManualClock>,
}

async fn on_moto() -> OnMoto {
    let moto = Moto::start(false);
    // This crate's store on the test kit's tables (the kit's own `dynamo_store` is of
    // the crate as the kit links it: another type in a unit test).
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let (reports, errors) = (unique("reports"), unique("errors"));
    if let Err(e) = create_tables(&client, &reports, &errors).await {
        panic!("creating the tables: {e}");
    }
    let store = DynamoStore::new(client, reports, errors, Duration::from_secs(86_400));
    let (mut p, rt, clock) = edge();
    p.store = Arc::new(store.clone());
    p.errors = Arc::new(store.clone());
    OnMoto {
        _moto: moto,
        store,
        p,
        rt,
        clock,
    }
}

impl OnMoto {
    /// Receives an alert naming `ips` as message `message_id`, dispatches, inspects and
    /// reviews it; answers the report message the report topic carries.
    async fn publish(&self, message_id: &str, ips: &[&str]) -> (String, String) {
        receive_sns(&self.p, sns_event(&[(message_id, &alert_json(ips))]))
            .await
            .unwrap();
        let plan = dispatch_and_inspect(&self.p, &self.rt).await;
        self.clock.advance_to(plan.review_at);
        let input = ReviewInput {
            report_id: plan.report_id.clone(),
            version: plan.version,
            review_at: plan.review_at,
            publisher: format!("exec-{message_id}"),
        };
        assert!(review(&self.p, input, WAIT).await.unwrap().published);
        let published = self.rt.reports.take();
        assert_eq!(published.len(), 1);
        (
            plan.report_id,
            serde_json::to_string(&published[0]).unwrap(),
        )
    }

    /// The report topic's event carrying `message`, published now.
    fn report_event(&self, message: &str) -> SnsEvent {
        report_event_at(message, self.clock.now())
    }
}

/// The report topic's event carrying `message`, published at `at`.
fn report_event_at(message: &str, at: DateTime<Utc>) -> SnsEvent {
    let mut event = serde_json::to_value(sns_event(&[("report-msg", message)])).unwrap();
    event["Records"][0]["Sns"]["Timestamp"] = json!(at.to_rfc3339());
    serde_json::from_value(event).unwrap()
}

/// An emitter that answers its scripted failures first, then succeeds; it keeps every
/// call's (version, attempt, when).
struct Scripted {
    name: String,
    failures: Mutex<VecDeque<PluginError>>,
    calls: Mutex<Vec<(u32, u32, StdInstant)>>,
    sent: Mutex<Vec<u32>>,
}

impl Scripted {
    fn new(name: &str, failures: Vec<PluginError>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            failures: Mutex::new(failures.into()),
            calls: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        })
    }

    fn sent(&self) -> Vec<u32> {
        self.sent.lock().unwrap().clone()
    }

    /// Every call's (version, attempt).
    fn calls(&self) -> Vec<(u32, u32)> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(v, a, _)| (*v, *a)).collect()
    }

    /// The time between each call and the one before.
    fn gaps(&self) -> Vec<Duration> {
        let calls = self.calls.lock().unwrap();
        calls.windows(2).map(|w| w[1].2 - w[0].2).collect()
    }
}

#[async_trait]
impl Emitter for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        self.calls
            .lock()
            .unwrap()
            .push((report.version, attempt, StdInstant::now()));
        if let Some(e) = self.failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.sent.lock().unwrap().push(report.version);
        Ok(())
    }
}

fn failed(message: &str) -> PluginError {
    PluginError::Failed(message.into())
}

/// Who recorded which version, as (version, emitter).
async fn recorded(store: &DynamoStore, report_id: &str) -> Vec<(u32, String)> {
    store
        .deliveries(report_id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.version, d.emitter))
        .collect()
}

#[tokio::test]
async fn lambdas_retry_after_one_target_failed_sends_only_to_the_targets_not_reached() {
    let mut m = on_moto().await;
    let (id, message) = m.publish("m1", &["192.0.2.1"]).await;
    let slack = Scripted::new("slack", vec![]);
    // Down for the whole first invocation (three tries), up for the next.
    let github = Scripted::new("github", vec![failed("HTTP 502"); 3]);
    let webhook = Scripted::new("webhook", vec![]);
    m.p.emitters = vec![slack.clone(), github.clone(), webhook.clone()];

    let err = deliver_sns(&m.p, m.report_event(&message), &quick_budget())
        .await
        .unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::Retryable, "{err}");
    assert!(
        err.message.contains(&format!("deliver:{id}:1:github")),
        "{err}"
    );
    assert_eq!(
        recorded(&m.store, &id).await,
        [(1, "slack".to_string()), (1, "webhook".to_string())]
    );
    let kept = m
        .store
        .get_error(&format!("deliver:{id}:1:github"), "deliver")
        .await
        .unwrap()
        .expect("the failure is kept");
    assert!(kept.error.contains("HTTP 502 (3 tries;"), "{}", kept.error);
    assert!(kept.error.contains("Lambda's retry"), "{}", kept.error);
    assert!(
        kept.error.contains(&format!(
            r#"{{"replay":{{"emitter":"github","report_id":"{id}","version":1}}}}"#
        )),
        "{}",
        kept.error
    );

    // Lambda invokes again with the same event: only GitHub is tried.
    let out = deliver_sns(&m.p, m.report_event(&message), &quick_budget())
        .await
        .unwrap();
    assert_eq!(
        out,
        DeliverOutput {
            delivered: 1,
            already_delivered: 2,
            not_wanted: 0,
            failed: 0
        }
    );
    assert_eq!((slack.sent(), webhook.sent()), (vec![1], vec![1]));
    assert_eq!(github.sent(), [1]);
    assert_eq!(slack.calls().len(), 1, "Slack was never sent it again");
    assert_eq!(recorded(&m.store, &id).await.len(), 3);
}

#[tokio::test]
async fn a_retryable_failure_is_retried_in_the_invocation_after_the_targets_retry_after() {
    let mut m = on_moto().await;
    let (id, message) = m.publish("m1", &["192.0.2.1"]).await;
    let limited = Scripted::new(
        "pagerduty",
        vec![
            failed("HTTP 503"),
            PluginError::RateLimited {
                retry_after: Some(Duration::from_millis(400)),
            },
        ],
    );
    m.p.emitters = vec![limited.clone()];
    let out = deliver_sns(&m.p, m.report_event(&message), &quick_budget())
        .await
        .unwrap();
    assert_eq!((out.delivered, out.failed), (1, 0));
    // A fresh message: tries count 0, 1, 2 in this invocation.
    assert_eq!(limited.calls(), [(1, 0), (1, 1), (1, 2)]);
    let gaps = limited.gaps();
    assert!(gaps[0] < Duration::from_millis(300), "backoff: {gaps:?}");
    assert!(
        gaps[1] >= Duration::from_millis(400),
        "Retry-After: {gaps:?}"
    );
    assert_eq!(
        recorded(&m.store, &id).await,
        [(1, "pagerduty".to_string())]
    );
}

#[tokio::test]
async fn no_retry_starts_that_would_not_fit_the_invocations_time() {
    let mut m = on_moto().await;
    let (id, message) = m.publish("m1", &["192.0.2.1"]).await;
    let limited = Scripted::new(
        "slack",
        vec![PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        }],
    );
    m.p.emitters = vec![limited.clone()];
    // Two seconds left, and a target asking for thirty.
    let mut budget = quick_budget();
    budget.retry.max_attempts = 10;
    budget.deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let started = StdInstant::now();
    let err = deliver_sns(&m.p, m.report_event(&message), &budget)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it did not wait"
    );
    assert_eq!(err.kind, EdgeErrorKind::Retryable);
    assert_eq!(limited.calls().len(), 1);
    let kept = m
        .store
        .get_error(&format!("deliver:{id}:1:slack"), "deliver")
        .await
        .unwrap()
        .unwrap();
    assert!(kept.error.contains("rate limited"), "{}", kept.error);
    assert!(recorded(&m.store, &id).await.is_empty());
}

#[tokio::test]
async fn a_rejected_delivery_is_kept_once_and_not_left_to_lambdas_retry() {
    let mut m = on_moto().await;
    let (id, message) = m.publish("m1", &["192.0.2.1"]).await;
    let github = Scripted::new(
        "github",
        vec![PluginError::Rejected("HTTP 404: Not Found".into())],
    );
    let slack = Scripted::new("slack", vec![]);
    m.p.emitters = vec![github.clone(), slack.clone()];
    let out = deliver_sns(&m.p, m.report_event(&message), &quick_budget())
        .await
        .unwrap();
    assert_eq!((out.delivered, out.failed), (1, 1));
    assert_eq!(github.calls().len(), 1, "no retry helps a rejection");
    let kept = m
        .store
        .get_error(&format!("deliver:{id}:1:github"), "deliver")
        .await
        .unwrap()
        .unwrap();
    assert!(kept.error.contains("not retried"), "{}", kept.error);
    let job: Job = serde_json::from_str(&kept.input).unwrap();
    assert_eq!(
        job,
        Job::Deliver {
            report_id: id,
            version: 1,
            emitter: "github".into()
        }
    );
}

#[tokio::test]
async fn a_message_older_than_the_functions_timeout_counts_its_first_try_as_a_retry() {
    let mut m = on_moto().await;
    let (_, message) = m.publish("m1", &["192.0.2.1"]).await;
    let slack = Scripted::new("slack", vec![]);
    m.p.emitters = vec![slack.clone()];
    // Published before a whole invocation could have run: an earlier one may have
    // sent it (and failed to record it), so the emitter must look before it creates.
    let old = m.clock.now()
        - chrono::Duration::from_std(FANOUT_TIMEOUT).unwrap()
        - chrono::Duration::seconds(1);
    deliver_sns(&m.p, report_event_at(&message, old), &quick_budget())
        .await
        .unwrap();
    assert_eq!(slack.calls(), [(1, 1)]);
}

#[tokio::test]
async fn a_replay_resends_a_delivered_version_to_one_emitter_and_names_what_is_unknown() {
    let mut m = on_moto().await;
    let (id, message) = m.publish("m1", &["192.0.2.1"]).await;
    let slack = Scripted::new("slack", vec![]);
    let github = Scripted::new("github", vec![]);
    m.p.emitters = vec![slack.clone(), github.clone()];
    deliver_sns(&m.p, m.report_event(&message), &quick_budget())
        .await
        .unwrap();
    let first = m.store.deliveries(&id).await.unwrap();

    // No version: the last published.
    let out = fanout_event(
        &m.p,
        json!({"replay": {"report_id": id, "emitter": "slack"}}),
        &quick_budget(),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        FanoutOutput::Replayed(ReplayOutput {
            report_id: id.clone(),
            version: 1,
            emitter: "slack".into(),
            outcome: DeliveryOutcome::Sent,
            tries: 1,
        })
    );
    assert_eq!(
        serde_json::to_value(&out).unwrap()["outcome"],
        json!("sent"),
        "what `aws lambda invoke` writes to its output file"
    );
    assert_eq!(slack.calls(), [(1, 0), (1, 1)], "sent again, as a retry");
    assert_eq!(github.calls().len(), 1, "the other emitter is left alone");
    assert_eq!(
        m.store.deliveries(&id).await.unwrap(),
        first,
        "the first delivery's record is kept"
    );

    let cases = [
        (
            json!({"replay": {"report_id": id, "emitter": "pager"}}),
            EdgeErrorKind::Invalid,
            "replay.emitter: no emitter \"pager\" is configured (configured: slack, github)",
        ),
        (
            json!({"replay": {"report_id": "nope", "emitter": "slack"}}),
            EdgeErrorKind::NotFound,
            "replay.report_id: no report nope",
        ),
        (
            json!({"replay": {"report_id": id, "version": 7, "emitter": "slack"}}),
            EdgeErrorKind::NotFound,
            "replay.version: report",
        ),
        (
            json!({"replay": {"report_id": id, "emiter": "slack"}}),
            EdgeErrorKind::Invalid,
            "replay: unknown field `emiter`",
        ),
        (
            json!({"hello": 1}),
            EdgeErrorKind::Invalid,
            "event: neither an SNS event nor",
        ),
    ];
    for (event, kind, says) in cases {
        let err = fanout_event(&m.p, event.clone(), &quick_budget())
            .await
            .unwrap_err();
        assert_eq!(err.kind, kind, "{event}: {err}");
        assert!(err.message.starts_with(says), "{event}: {err}");
    }
    assert_eq!(slack.calls().len(), 2, "no failed replay sent anything");
}

/// A webhook target of the scenario: a local server that takes every version once,
/// counted by its `Idempotency-Key`; `failing` 503s answered first.
async fn target(report_id: &str, failing: u64) -> MockServer {
    let server = MockServer::start().await;
    if failing > 0 {
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(503).set_body_string("try later"))
            .up_to_n_times(failing)
            .with_priority(1)
            .expect(failing)
            .mount(&server)
            .await;
    }
    for version in [1, 2] {
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("idempotency-key", format!("{report_id}:{version}")))
            .and(header("content-type", "application/json"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .named(format!("version {version}"))
            .mount(&server)
            .await;
    }
    server
}

#[tokio::test]
async fn three_targets_one_failing_twice_each_receive_each_version_exactly_once() {
    let mut m = on_moto().await;
    let (id, v1) = m.publish("m1", &["192.0.2.1"]).await;
    let servers = [
        ("slack", target(&id, 0).await),
        ("github", target(&id, 2).await),
        ("webhook", target(&id, 0).await),
    ];
    m.p.emitters = servers
        .iter()
        .map(|(name, server)| {
            let url = format!("{}/hook", server.uri());
            Arc::new(WebhookEmitter::new(*name, &url, vec![], Duration::from_secs(5)).unwrap())
                as Arc<dyn Emitter>
        })
        .collect();

    let out = deliver_sns(&m.p, m.report_event(&v1), &quick_budget())
        .await
        .unwrap();
    assert_eq!((out.delivered, out.failed), (3, 0));
    // SNS delivers the message twice: nothing is sent again.
    let again = deliver_sns(&m.p, m.report_event(&v1), &quick_budget())
        .await
        .unwrap();
    assert_eq!((again.delivered, again.already_delivered), (0, 3));

    // A late alert joins: version 2, to every target once.
    m.clock.advance(Duration::from_secs(1800));
    let (late_id, v2) = m.publish("m2", &["192.0.2.9"]).await;
    assert_eq!(late_id, id);
    let out = deliver_sns(&m.p, m.report_event(&v2), &quick_budget())
        .await
        .unwrap();
    assert_eq!((out.delivered, out.failed), (3, 0));

    let attempts: Vec<String> = servers[1]
        .1
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let key = r.headers["idempotency-key"].to_str().unwrap();
            let attempt = r.headers["x-alertresponder-attempt"].to_str().unwrap();
            format!("{}#{attempt}", key.rsplit(':').next().unwrap())
        })
        .collect();
    assert_eq!(attempts, ["1#0", "1#1", "1#2", "2#0"], "GitHub's requests");
    assert_eq!(recorded(&m.store, &id).await.len(), 6);
    for (_, server) in &servers {
        server.verify().await;
    }
}

#[test]
fn the_fanout_timeout_is_the_one_template_yaml_gives_the_function() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .unwrap();
    let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let function = &template["Resources"]["EmitterFanoutFunction"]["Properties"];
    let timeout = function
        .get("Timeout")
        .unwrap_or(&template["Globals"]["Function"]["Timeout"])
        .as_u64()
        .unwrap();
    assert_eq!(Duration::from_secs(timeout), FANOUT_TIMEOUT);
}
