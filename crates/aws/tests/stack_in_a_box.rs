//! The stack in a box: the state machine of `template.yaml` walked state by state
//! with the real Lambda binaries (under cargo-lambda's emulator) against moto, from
//! an alert on the ingest topic down to the report message on the report topic.
//! What a user sees from outside (aggregation, sections, severity, errors, version 2)
//! is checked by the tester's scenarios, which run on this box too
//! (`tester/tests/stack_in_a_box.rs`); here: the states, executions and retries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use alertresponder_aws_testkit::stack_box::{BoxOptions, StackInABox};
use alertresponder_aws_testkit::walker::{TaskRunner, Walk};
use alertresponder_aws_testkit::Subscriber;
use aws_lambda_events::event::sns::SnsEvent;
use serde_json::{json, Value};

const POLICY: &str = r#"package alertresponder.review
import rego.v1
result := {"severity": "urgent", "reason": "host section for a brute-forcing address"} if {
	some s in input.sections
	s.type == "host"
}
"#;

fn alert(key: &str, ip: &str) -> String {
    json!({
        "detector": "guardduty",
        "rule_id": "UnauthorizedAccess:EC2/SSHBruteForce",
        "rule_name": "SSH brute force against EC2 instance",
        "alert_key": key,
        "description": format!("{ip} is performing SSH brute force attacks"),
        "timestamp": "2026-11-20T10:00:00Z",
        "attributes": [
            {"type": "ipaddr", "key": "remote address", "value": ip, "context": ["remote", "client"]},
            {"type": "username", "key": "target user", "value": "ec2-user", "context": ["local"]}
        ]
    })
    .to_string()
}

/// Every path: four billed transitions (compile, review and publish are one state).
const FULL_PATH: [&str; 4] = [
    "WaitInspectionDelay",
    "Dispatch",
    "WaitReviewDelay",
    "Review",
];

/// How long a subscriber must stay quiet before its queue counts as drained.
const QUIET: std::time::Duration = std::time::Duration::from_millis(500);

/// The one message `subscriber` got: its JSON body, its message attributes and the
/// body as sent.
async fn only_message(subscriber: &Subscriber) -> (Value, BTreeMap<String, String>, String) {
    let got = subscriber.drain(QUIET).await;
    assert_eq!(got.len(), 1, "exactly one message expected: {got:?}");
    let body = serde_json::from_str(&got[0].body).unwrap();
    (body, got[0].attributes.clone(), got[0].body.clone())
}

/// `field` of every element of the list `report[list]`.
fn list_of<'a>(report: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap())
        .collect()
}

fn assert_path(walk: &Walk, expected: &[&str]) {
    assert_eq!(
        walk.path(),
        expected,
        "states entered; output {}",
        walk.output
    );
}

#[test]
fn the_real_sns_event_fixture_parses_as_the_receptor_takes_it() {
    let event: SnsEvent = serde_json::from_str(include_str!("fixtures/sns-event.json")).unwrap();
    assert_eq!(event.records.len(), 1);
    let alert = alertresponder_core::validate::parse_alert(
        event.records[0].sns.message.as_bytes(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(alert.detector, "guardduty");
    let back = serde_json::to_value(&event).unwrap();
    assert_eq!(
        back["Records"][0]["Sns"]["MessageId"],
        "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_walks_every_state_down_to_the_report_topic() {
    // The policy travels in the configuration bundle (S3), as `make deploy` puts it.
    let sib = StackInABox::start(BoxOptions {
        config: Some("[reviewer]\npolicy = \"policies/review.rego\"\n".into()),
        config_files: vec![("policies/review.rego".into(), POLICY.as_bytes().to_vec())],
        inspector_functions: vec!["tester-inspector".into()],
        ..BoxOptions::default()
    })
    .await;

    let safe_only = sib
        .subscribe_reports(Some(r#"{"severity": ["safe"]}"#))
        .await;

    // 1. Receptor: SNS event in, report opened, one execution started.
    let out = sib
        .publish_alert(&alert("i-0abc", "198.51.100.7"))
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    assert_eq!(out["received"], 1, "{out}");
    let executions = sib.executions().await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = executions[0].clone();
    assert!(name.starts_with("dispatch-"), "{name}");
    assert_eq!(input["job"]["job"], "dispatch");
    assert!(input["dispatch_at"].as_str().unwrap().ends_with('Z'));

    // 2. A second alert of the same key with the same attributes, before the review:
    //    it joins the report and starts no execution (DeepAlert v1 started one per alert).
    let out = sib
        .publish_alert(&alert("i-0abc", "198.51.100.7"))
        .await
        .unwrap();
    assert_eq!(out["received"], 1, "{out}");
    assert_eq!(
        sib.executions().await.len(),
        1,
        "a follow-up with known attributes starts no execution"
    );

    // 3. Walk the execution through the template's states.
    let walk = sib.walk(&name, input).await;
    assert_path(&walk, &FULL_PATH);
    assert_eq!(walk.output["result"]["published"], true, "{}", walk.output);
    assert_eq!(walk.output["result"]["version"], 1, "{}", walk.output);
    assert_eq!(
        walk.output["result"]["severity"], "urgent",
        "{}",
        walk.output
    );

    // 4. The report message, as a subscriber gets it.
    let (report, attrs, sent) = only_message(&sib.reports).await;
    assert_eq!(report["version"], 1);
    assert_eq!(report["status"], "published");
    assert_eq!(
        report["alerts"].as_array().unwrap().len(),
        2,
        "both alerts are in the report"
    );
    assert_eq!(
        report["result"]["severity"], "urgent",
        "{}",
        report["result"]
    );
    let values = list_of(&report, "attributes", "value");
    assert!(
        values.contains(&"host-198-51-100-7.tester.example"),
        "fed-back attribute: {values:?}"
    );
    let authors = list_of(&report, "sections", "author");
    assert!(authors.contains(&"tester-inspector"), "{authors:?}");
    assert_eq!(attrs.get("severity").map(String::as_str), Some("urgent"));
    assert_eq!(attrs.get("detector").map(String::as_str), Some("guardduty"));
    assert_eq!(
        attrs.get("rule_id").map(String::as_str),
        Some("UnauthorizedAccess:EC2/SSHBruteForce")
    );
    assert_eq!(attrs.get("version").map(String::as_str), Some("1"));
    let urgent = sib
        .urgent_reports
        .drain(std::time::Duration::from_millis(300))
        .await;
    assert_eq!(
        urgent.len(),
        1,
        "the severity filter lets the urgent report through"
    );
    assert!(
        safe_only
            .drain(std::time::Duration::from_millis(300))
            .await
            .is_empty(),
        "a subscriber filtering on safe gets nothing"
    );

    // 5. The Review state retried: by the same execution it re-publishes the version
    //    it marked (a crash between marking and publishing loses nothing); by another
    //    execution, nothing.
    let review_input = &walk
        .steps
        .iter()
        .find(|s| s.state == "Review")
        .unwrap()
        .input;
    let plan = &review_input["review"];
    let retry = |publisher: &str| {
        json!({
            "report_id": plan["report_id"],
            "version": plan["version"],
            "review_at": plan["review_at"],
            "publisher": publisher,
        })
    };
    let same = sib
        .emulator
        .invoke("reviewer-invoker", &retry(&name))
        .await
        .unwrap();
    assert_eq!(same["published"], false, "{same}");
    assert_eq!(same["version"], 1, "{same}");
    let (_, _, again) = only_message(&sib.reports).await;
    assert_eq!(
        again, sent,
        "the same publisher re-publishes the stored version byte for byte"
    );
    let other = sib
        .emulator
        .invoke("reviewer-invoker", &retry("review-someone-else"))
        .await
        .unwrap();
    assert_eq!(other["published"], false, "{other}");
    assert!(sib.reports.drain(QUIET).await.is_empty());

    // 6. An alert after publication: a re-review execution publishes version 2.
    let out = sib
        .publish_alert(&alert("i-0abc", "198.51.100.7"))
        .await
        .unwrap();
    assert_eq!(out["received"], 1, "{out}");
    let executions = sib.executions().await;
    assert_eq!(executions.len(), 2, "{executions:?}");
    let (name, input) = executions
        .iter()
        .find(|(n, _)| n.starts_with("review-"))
        .cloned()
        .unwrap_or_else(|| panic!("no review execution: {executions:?}"));
    assert_eq!(input["job"]["version"], 2);
    let walk = sib.walk(&name, input).await;
    assert_path(&walk, &FULL_PATH);
    let (v2, _, _) = only_message(&sib.reports).await;
    assert_eq!(v2["version"], 2);
    assert!(sib
        .errors
        .drain(std::time::Duration::from_millis(300))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardduty_findings_from_eventbridge_become_reports_and_other_events_are_kept() {
    let sib = StackInABox::start(BoxOptions::default()).await;
    let finding: Value = serde_json::from_str(include_str!(
        "fixtures/eventbridge-guardduty-ssh-brute-force.json"
    ))
    .unwrap();
    let out = sib
        .emulator
        .invoke("receptor", &finding)
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    assert_eq!(out["received"], 1, "{out}");
    // EventBridge delivers at least once: the same event ID is stored once.
    let again = sib.emulator.invoke("receptor", &finding).await.unwrap();
    assert_eq!(again["duplicates"], 1, "{again}");

    let other = json!({
        "version": "0", "id": "5e1f0ad5-0000-0000-0000-000000000000",
        "detail-type": "Inspector2 Finding", "source": "aws.inspector2",
        "account": "123456789012", "time": "2026-11-20T10:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"findingArn": "arn:aws:inspector2:us-east-1:123456789012:finding/x"}
    });
    let out = sib.emulator.invoke("receptor", &other).await.unwrap();
    assert_eq!(out["rejected"], 1, "{out}");
    let (record, _, _) = only_message(&sib.errors).await;
    assert!(
        record["error"].as_str().unwrap().contains("aws.inspector2"),
        "{record}"
    );
    assert!(
        record["input"]
            .as_str()
            .unwrap()
            .contains("Inspector2 Finding"),
        "the event is kept"
    );

    let executions = sib.executions().await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = executions[0].clone();
    let walk = sib.walk(&name, input).await;
    assert_path(&walk, &FULL_PATH);
    let (report, attributes, _) = only_message(&sib.reports).await;
    let alert = &report["alerts"][0];
    assert_eq!(alert["detector"], "guardduty");
    assert_eq!(alert["rule_id"], "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(alert["alert_key"], "i-0123456789abcdef0");
    assert_eq!(
        list_of(&report, "attributes", "value"),
        // The remote address, the instance, its private and public addresses.
        vec![
            "198.51.100.7",
            "i-0123456789abcdef0",
            "10.0.1.23",
            "203.0.113.10"
        ]
    );
    assert_eq!(attributes["detector"], "guardduty");
}

/// The event EventBridge delivers to the receptor when execution `name` of the box's
/// delay state machine closes: the fixture's shape ("Step Functions Execution Status
/// Change", as AWS documents it) with what Step Functions (moto) says of the execution.
async fn execution_status_change(
    sib: &StackInABox,
    sfn: &aws_sdk_sfn::Client,
    name: &str,
) -> Value {
    let arn = format!(
        "{}:{name}",
        sib.resources
            .state_machine
            .replace(":stateMachine:", ":execution:")
    );
    let d = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let mut event: Value = serde_json::from_str(include_str!(
        "fixtures/eventbridge-sfn-execution-failed.json"
    ))
    .unwrap();
    event["id"] = json!(format!("event-of-{name}"));
    event["resources"] = json!([arn]);
    let detail = &mut event["detail"];
    detail["executionArn"] = json!(arn);
    detail["stateMachineArn"] = json!(sib.resources.state_machine);
    detail["name"] = json!(name);
    detail["status"] = json!(d.status.as_str());
    detail["input"] = json!(d.input);
    detail["error"] = json!(d.error);
    detail["cause"] = json!(d.cause);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_execution_that_ends_without_success_is_kept_and_its_job_started_again() {
    let sib = StackInABox::start(BoxOptions::default()).await;
    let out = sib
        .publish_alert(&alert("i-0aborted", "198.51.100.9"))
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    assert_eq!(out["received"], 1, "{out}");
    let executions = sib.executions().await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = executions[0].clone();

    // The execution ends without success (moto does not run executions: it is stopped).
    let sfn = aws_sdk_sfn::Client::new(&sib.sdk);
    let arn = sib
        .resources
        .state_machine
        .replace(":stateMachine:", ":execution:");
    sfn.stop_execution()
        .execution_arn(format!("{arn}:{name}"))
        .send()
        .await
        .unwrap();
    let event = execution_status_change(&sib, &sfn, &name).await;
    assert_eq!(event["detail"]["status"], "ABORTED");
    let out = sib
        .emulator
        .invoke("receptor", &event)
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    assert_eq!(out["failed_executions"], 1, "{out}");

    // Kept: an error record with the execution's input, on the error topic with its stage.
    let (record, attributes, _) = only_message(&sib.errors).await;
    assert_eq!(attributes["stage"], "execution");
    assert_eq!(record["id"], json!(name));
    let kept: Value = serde_json::from_str(record["input"].as_str().unwrap()).unwrap();
    assert_eq!(kept, input);
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("ended ABORTED"), "{error}");
    assert!(error.contains("scheduled again"), "{error}");

    // Started again: the job's successor, which walks down to the report.
    let successor = format!("{name}-2");
    let started = sib.executions().await;
    assert_eq!(started.len(), 2, "{started:?}");
    let (_, successor_input) = started
        .iter()
        .find(|(n, _)| *n == successor)
        .unwrap_or_else(|| panic!("no execution {successor}: {started:?}"))
        .clone();
    assert_eq!(successor_input["job"], input["job"]);

    // EventBridge delivers at least once: a redelivery starts nothing more, and its
    // record is the same (id, stage), replaced in place.
    let again = sib.emulator.invoke("receptor", &event).await.unwrap();
    assert_eq!(again["failed_executions"], 1, "{again}");
    assert_eq!(sib.executions().await.len(), 2);
    let (again_record, _, _) = only_message(&sib.errors).await;
    assert_eq!(
        (&again_record["id"], &again_record["stage"]),
        (&record["id"], &record["stage"])
    );

    let walk = sib.walk(&successor, successor_input).await;
    assert_ne!(walk.end, "Fail", "{:?}: {}", walk.path(), walk.output);
    let (report, _, _) = only_message(&sib.reports).await;
    assert_eq!(report["alerts"][0]["alert_key"], "i-0aborted");
}

/// The box, with tasks the harness gets only when the Review state first finds the
/// report's inspections pending: a slow inspector (its task delivered late).
struct SlowInspection<'a> {
    sib: &'a StackInABox,
    delivered: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl TaskRunner for SlowInspection<'_> {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, (String, String)> {
        let out = self.sib.invoke(function, payload).await;
        if matches!(&out, Err((kind, _)) if kind == "InspectionsPending") {
            let n = self.sib.deliver_tasks().await;
            self.delivered
                .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        }
        out
    }

    async fn publish(&self, topic: &str, message: Value) -> Result<Value, (String, String)> {
        self.sib.publish(topic, message).await
    }
}

/// The inspection records of `report` with `status`, as (inspector, attribute value).
fn inspections_with<'a>(report: &'a Value, status: &str) -> Vec<(&'a str, &'a str)> {
    report["inspections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| {
            (
                r["inspector"].as_str().unwrap(),
                r["attribute"]["value"].as_str().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_waits_for_its_inspections_and_past_the_review_wait_shows_them_timed_out() {
    let webhook = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&webhook)
        .await;
    // Two boxes: the first waits as long as the stack allows, so that however slow
    // this machine is, the review finds the inspection pending and waits for it; the
    // second waits 3 s, so that a lost task is given up on quickly.
    let boxed = |review_wait_secs| {
        StackInABox::start(BoxOptions {
            inspector_functions: vec!["tester-inspector".into()],
            review_wait_secs,
            hold_tasks: true,
            // Plain http is allowed to a loopback address.
            config: Some(format!(
                "[[emitter]]\nname = \"webhook\"\nurl = \"{}/hook\"\ntimeout = \"10s\"\n",
                webhook.uri()
            )),
            ..BoxOptions::default()
        })
    };
    let sib = boxed(600).await;

    // 1. A slow inspector: when the review is due, the task has not run. The Review
    //    state fails with InspectionsPending and its retrier waits; the task runs
    //    meanwhile, and the retry reviews the report with its sections.
    sib.publish_alert(&alert("i-0slow", "198.51.100.20"))
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    let (name, input) = sib.executions().await[0].clone();
    let slow = SlowInspection {
        sib: &sib,
        delivered: Default::default(),
    };
    let walk = sib.walk_with(&slow, &name, input).await;
    assert!(
        slow.delivered.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the review never found the inspections pending: {:?}",
        walk.path()
    );
    let mut path = FULL_PATH.to_vec();
    path.push("Review (retry 1)");
    assert_path(&walk, &path);
    assert_eq!(walk.output["result"]["published"], true, "{}", walk.output);
    let (report, _, _) = only_message(&sib.reports).await;
    assert!(
        inspections_with(&report, "timed_out").is_empty(),
        "{}",
        report["inspections"]
    );
    let authors = list_of(&report, "sections", "author");
    assert!(authors.contains(&"tester-inspector"), "{authors:?}");

    assert!(sib.errors.drain(QUIET).await.is_empty());
    drop(sib);

    // 2. A lost task: nobody inspects the report. The Review retries until the review
    //    wait has passed (how many times depends on how fast this machine is), then
    //    reviews it with the inspections shown as timed out.
    let review_wait = 3;
    let sib = boxed(review_wait).await;
    sib.publish_alert(&alert("i-0lost", "198.51.100.21"))
        .await
        .unwrap();
    let (name, input) = sib.executions().await[0].clone();
    let walk = sib.walk(&name, input).await;
    assert_eq!(&walk.path()[..4], FULL_PATH);
    assert!(
        walk.path()[4..]
            .iter()
            .all(|s| s.starts_with("Review (retry")),
        "{:?}",
        walk.path()
    );
    assert_eq!(walk.output["result"]["published"], true, "{}", walk.output);
    let (report, _, _) = only_message(&sib.reports).await;
    assert_eq!(report["alerts"][0]["alert_key"], "i-0lost");
    let timed_out = inspections_with(&report, "timed_out");
    assert!(
        timed_out.contains(&("alertresponder", "198.51.100.21")),
        "the pending inspection is shown: {}",
        report["inspections"]
    );
    let review_at = walk.output["review"]["review_at"].as_str().unwrap();
    let review_at = chrono::DateTime::parse_from_rfc3339(review_at).unwrap();
    for r in report["inspections"].as_array().unwrap() {
        if r["status"] == "timed_out" {
            let at = chrono::DateTime::parse_from_rfc3339(r["at"].as_str().unwrap()).unwrap();
            assert!(
                at >= review_at + chrono::Duration::seconds(review_wait as i64),
                "reviewed at {at}, before the review wait past {review_at} ended"
            );
        }
    }
    assert!(
        !list_of(&report, "sections", "author").contains(&"tester-inspector"),
        "{}",
        report["sections"]
    );
    assert!(sib.errors.drain(QUIET).await.is_empty());

    // 3. The emitter fan-out, subscribed to the report topic because the configuration
    //    file has an emitter, delivered each published version.
    let posts = webhook.received_requests().await.unwrap_or_default();
    let keys: Vec<&str> = posts
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        })
        .collect();
    assert_eq!(posts.len(), 2, "webhook POSTs: {keys:?}");
    assert!(keys.iter().all(|k| k.ends_with(":1")), "{keys:?}");
}

// ------------------------------------------------------------------ configuration file

mod configuration_file {
    use std::collections::HashMap;

    use alertresponder_aws::config::{self, StackConfig};
    use alertresponder_aws::config_file;
    use alertresponder_aws::stack;
    use alertresponder_aws_testkit::stack_box::upload_config;
    use alertresponder_aws_testkit::{create_tables, unique, Moto};

    fn env(binary: &str, uri: &str, tables: (&str, &str)) -> StackConfig {
        let map: HashMap<&str, String> = [
            (config::REPORT_TABLE, tables.0.to_string()),
            (config::ERROR_TABLE, tables.1.to_string()),
            (
                config::ERROR_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:e".into(),
            ),
            (
                config::TASK_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:t".into(),
            ),
            (
                config::REPORT_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:r".into(),
            ),
            (
                config::STATE_MACHINE_ARN,
                "arn:aws:states:us-east-1:123456789012:stateMachine:s".into(),
            ),
            (config::CONFIG_S3_URI, uri.to_string()),
        ]
        .into_iter()
        .collect();
        StackConfig::from_lookup(binary, |k| map.get(k).cloned()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bundle_is_read_from_s3_with_its_files_at_their_paths() {
        let moto = Moto::start(false);
        let sdk = moto.sdk_config().await;
        let text = "[[inspector]]\nname = \"intel\"\nfunction = \"arn:aws:lambda:us-east-1:123456789012:function:intel\"\n\n[reviewer]\npolicy = \"p/review.rego\"\n\n[other]\nignored = true\n";
        let policy = "package alertresponder.review\nimport rego.v1\nresult := {\"severity\": \"safe\", \"reason\": \"ok\"}\n";
        let uri = upload_config(
            &sdk,
            &unique("cfg"),
            text,
            &[("p/review.rego".into(), policy.as_bytes().to_vec())],
        )
        .await;
        let loaded = config_file::load(&sdk, &uri).await.unwrap();
        assert!(loaded.dir.starts_with(std::env::temp_dir()));
        assert_eq!(
            std::fs::read_to_string(loaded.dir.join("p/review.rego")).unwrap(),
            policy
        );
        assert_eq!(loaded.plugins.inspectors.len(), 1);
        assert_eq!(
            loaded.plugins.reviewer.policy,
            Some(loaded.dir.join("p/review.rego"))
        );

        // The reviewer invoker builds the policy from the downloaded file.
        let (reports, errors) = (unique("r"), unique("e"));
        create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &reports, &errors)
            .await
            .unwrap();
        let pipeline = stack::configured_pipeline(
            &env("reviewer-invoker", &uri, (&reports, &errors)),
            &sdk,
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(pipeline.reviewers.len(), 1);
        assert!(pipeline.inspectors.is_empty() && pipeline.emitters.is_empty());
        let harness = stack::configured_pipeline(
            &env("inspector-harness", &uri, (&reports, &errors)),
            &sdk,
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(harness.inspectors.len(), 1);
        assert!(harness.reviewers.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_object_a_bad_config_or_a_missing_secret_fails_the_cold_start_naming_the_key()
    {
        let moto = Moto::start(false);
        let sdk = moto.sdk_config().await;
        // No such file in the bucket.
        let uri = upload_config(&sdk, &unique("cfg"), "", &[]).await;
        let absent = uri.replace("alertresponder.toml", "other.toml");
        let err = config_file::load(&sdk, &absent)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CONFIG_S3_URI") && err.contains("other.toml"),
            "{err}"
        );
        // A key the configuration does not know.
        let uri = upload_config(
            &sdk,
            &unique("cfg"),
            "[[emitter]]\nname = \"x\"\nurll = \"y\"\n",
            &[],
        )
        .await;
        let err = config_file::load(&sdk, &uri).await.unwrap_err().to_string();
        assert!(err.contains(&uri) && err.contains("urll"), "{err}");
        // A secret that Secrets Manager does not have: the emitter fan-out fails at
        // cold start naming the key, never a value.
        let text = "[[emitter]]\nname = \"hook\"\nurl = { secret = \"absent-hook\" }\n";
        let uri = upload_config(&sdk, &unique("cfg"), text, &[]).await;
        let (reports, errors) = (unique("r"), unique("e"));
        create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &reports, &errors)
            .await
            .unwrap();
        let err = stack::configured_pipeline(
            &env("emitter-fanout", &uri, (&reports, &errors)),
            &sdk,
            vec![],
        )
        .await
        .err()
        .expect("a missing secret fails the cold start")
        .to_string();
        assert!(
            err.contains("emitter[0].url") && err.contains("absent-hook"),
            "{err}"
        );
        // The harness does not build emitters: their secrets are not its concern.
        stack::configured_pipeline(
            &env("inspector-harness", &uri, (&reports, &errors)),
            &sdk,
            vec![],
        )
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_built_in_inspector_on_aws_reads_its_key_from_secrets_manager_and_its_cache_from_the_table(
    ) {
        use alertresponder_core::{Attribute, Task};
        use wiremock::matchers::{header, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let moto = Moto::start(false);
        let sdk = moto.sdk_config().await;
        let secret = unique("ar-vt");
        aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(&secret)
            .secret_string("key-from-secrets-manager")
            .send()
            .await
            .unwrap();
        let vt = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v3/ip_addresses/192.0.2.7"))
            .and(header("x-apikey", "key-from-secrets-manager"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "data": {"id": "192.0.2.7", "type": "ip_address", "attributes": {
                    "last_analysis_stats": {"malicious": 2, "suspicious": 0, "harmless": 70, "undetected": 10, "timeout": 0},
                    "as_owner": "Example Transit", "country": "NL"}}
            })))
            .expect(1)
            .mount(&vt)
            .await;
        // The env alternative is never read on AWS: the function's environment is
        // the stack's.
        let text = format!(
            "[[inspector]]\nname = \"virustotal\"\nkind = \"virustotal\"\nurl = \"{}\"\n\
             api_key = {{ env = \"PATH\", secret = \"{secret}\" }}\n",
            vt.uri()
        );
        let uri = upload_config(&sdk, &unique("cfg"), &text, &[]).await;
        let (reports, errors) = (unique("r"), unique("e"));
        create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &reports, &errors)
            .await
            .unwrap();
        let harness = stack::configured_pipeline(
            &env("inspector-harness", &uri, (&reports, &errors)),
            &sdk,
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(harness.inspectors.len(), 1);
        // Two reports naming one address: one request, the second answer from the
        // report table's cache.
        for report in ["rep-1", "rep-2"] {
            let task = Task {
                report_id: report.into(),
                attribute: Attribute {
                    attr_type: "ipaddr".into(),
                    key: "src".into(),
                    value: "192.0.2.7".into(),
                    context: vec!["remote".into()],
                    timestamp: None,
                },
                depth: 0,
                review_at: None,
            };
            let answer = harness.inspectors[0].inspect(&task).await.unwrap();
            assert_eq!(
                answer.sections[0].content["detections"]["malicious"], 2,
                "{answer:?}"
            );
        }
        // `expect(1)` is checked when the server drops.
    }
}
