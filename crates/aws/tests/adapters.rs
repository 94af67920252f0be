//! The SNS, Step Functions and Lambda adapters against their protocol peers: moto
//! for SNS/SQS/Step Functions/DynamoDB, a local HTTP server speaking the Lambda
//! Invoke API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alertresponder_aws::lambda::{LambdaInspector, LambdaReviewer};
use alertresponder_aws::sfn::{
    execution_name, execution_name_at, SfnScheduler, MAX_EXECUTIONS_PER_JOB,
};
use alertresponder_aws::sns::{SnsErrorTopic, SnsReportBus, SnsTaskBus};
use alertresponder_aws::stack::TableThenTopic;
use alertresponder_aws_testkit::{
    create_topic, dynamo_store, sdk_config, unique, Moto, Subscriber,
};
use alertresponder_core::fixtures::error_record;
use alertresponder_core::ports::{
    ErrorLog, ErrorSink, Inspector, ReportBus, Reviewer, Scheduler, TaskBus,
};
use alertresponder_core::*;
use chrono::Utc;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn task() -> Task {
    serde_json::from_value(json!({
        "report_id": "r1",
        "attribute": {"type": "ipaddr", "key": "src", "value": "192.0.2.9", "context": ["remote"]}
    }))
    .unwrap()
}

fn report(severity: Severity, version: u32) -> Report {
    let alert: Alert = serde_json::from_value(json!({
        "detector": "suricata", "rule_id": "ET SCAN 1\u{7}", "alert_key": "k",
        "timestamp": "2026-11-20T10:00:00Z", "attributes": []
    }))
    .unwrap();
    Report {
        id: "r1".into(),
        alerts: vec![alert],
        attributes: vec![],
        sections: vec![],
        result: ReportResult {
            severity,
            reason: "test".into(),
        },
        status: ReportStatus::Published,
        created_at: Utc::now(),
        version,
        previous_result: None,
        inspections: vec![],
        alert_id: "alert:x".into(),
        published_at: Some(Utc::now()),
        cut: None,
    }
}

#[tokio::test]
async fn report_messages_carry_attributes_that_filter_policies_select_on() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = create_topic(&sdk, &unique("reports")).await;
    let all = Subscriber::create(&sdk, &topic, &unique("all"), None).await;
    let urgent = Subscriber::create(
        &sdk,
        &topic,
        &unique("urgent"),
        Some(r#"{"severity": ["urgent"]}"#),
    )
    .await;
    let bus = SnsReportBus::new(sns.clone(), &topic);
    bus.publish_report(&report(Severity::Safe, 1))
        .await
        .unwrap();
    bus.publish_report(&report(Severity::Urgent, 2))
        .await
        .unwrap();
    let got = all.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 2);
    let first: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(first["result"]["severity"], "safe");
    assert_eq!(got[0].attributes["severity"], "safe");
    assert_eq!(got[0].attributes["detector"], "suricata");
    // Control characters of an attacker-written rule ID stay out of the attribute.
    assert_eq!(got[0].attributes["rule_id"], "ET SCAN 1");
    assert_eq!(got[0].attributes["version"], "1");
    let only_urgent = urgent.drain(Duration::from_millis(500)).await;
    assert_eq!(only_urgent.len(), 1);
    assert_eq!(only_urgent[0].attributes["version"], "2");
}

#[tokio::test]
async fn a_report_too_large_for_sns_is_published_cut_and_says_so() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = create_topic(&sdk, &unique("reports")).await;
    let all = Subscriber::create(&sdk, &topic, &unique("all"), None).await;
    let mut big = report(Severity::Urgent, 1);
    big.alerts[0].body = Some(json!({"blob": "x".repeat(200_000)}));
    big.alerts.push(big.alerts[0].clone());
    SnsReportBus::new(sns, &topic)
        .publish_report(&big)
        .await
        .unwrap();
    let got = all.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].body.len() <= alertresponder_aws::sns::MAX_MESSAGE_BYTES);
    let r: Value = serde_json::from_str(&got[0].body).unwrap();
    assert!(
        r["cut"]["bodies_removed"].as_u64().unwrap() >= 1,
        "{}",
        r["cut"]
    );
    assert_eq!(r["alerts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn tasks_carry_their_attribute_type() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = create_topic(&sdk, &unique("tasks")).await;
    let sub = Subscriber::create(
        &sdk,
        &topic,
        &unique("ip"),
        Some(r#"{"attribute_type": ["ipaddr"]}"#),
    )
    .await;
    SnsTaskBus::new(sns, &topic)
        .publish_task(&task())
        .await
        .unwrap();
    let got = sub.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    let t: Task = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(t, task());
}

/// A state machine of the template's first state, then an end (moto runs it for
/// real when started with execution): its ARN.
async fn delay_machine(sfn: &aws_sdk_sfn::Client) -> String {
    let definition = json!({
        "StartAt": "WaitInspectionDelay",
        "States": {
            "WaitInspectionDelay": {"Type": "Wait", "TimestampPath": "$.dispatch_at", "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    });
    sfn.create_state_machine()
        .name(unique("delay"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/delay")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

#[tokio::test]
async fn scheduling_a_job_twice_starts_one_execution_that_really_runs_with_its_input() {
    let moto = Moto::start(true);
    let sdk = moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let arn = delay_machine(&sfn).await;
    let scheduler = SfnScheduler::new(sfn.clone(), &arn);
    let job = Job::Dispatch {
        report_id: "r1".into(),
        message_id: "m1".into(),
    };
    let due = Utc::now() + chrono::Duration::seconds(1);
    scheduler.schedule(&job, due).await.unwrap();
    scheduler.schedule(&job, due).await.unwrap();
    let review = Job::Review {
        report_id: "r1".into(),
        version: 2,
    };
    scheduler.schedule(&review, due).await.unwrap();
    let list = sfn
        .list_executions()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(list.executions.len(), 2, "{:?}", list.executions);
    let dispatch = list
        .executions
        .iter()
        .find(|e| e.name == execution_name(&job))
        .expect("dispatch execution");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let described = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&dispatch.execution_arn)
            .send()
            .await
            .unwrap();
        if d.status != aws_sdk_sfn::types::ExecutionStatus::Running
            || std::time::Instant::now() > deadline
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        described.status,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{described:?}"
    );
    let input: Value = serde_json::from_str(described.input.as_deref().unwrap()).unwrap();
    assert_eq!(
        input["job"],
        json!({"job": "dispatch", "report_id": "r1", "message_id": "m1"})
    );
    assert_eq!(
        input["dispatch_at"],
        alertresponder_aws::sfn::sfn_time::format(&due)
    );
    // Inspect and deliver jobs are not the state machine's: a clear error, not a retry.
    let err = scheduler
        .schedule(&Job::Inspect(task()), due)
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

/// The executions of `arn`, by name, with their status and input.
async fn executions(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> BTreeMap<String, (aws_sdk_sfn::types::ExecutionStatus, Value)> {
    let list = sfn
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for e in list.executions {
        let d = sfn
            .describe_execution()
            .execution_arn(&e.execution_arn)
            .send()
            .await
            .unwrap();
        let input = serde_json::from_str(d.input.as_deref().unwrap()).unwrap();
        out.insert(e.name, (d.status, input));
    }
    out
}

#[tokio::test]
async fn a_review_whose_execution_closed_without_success_gets_a_successor_not_a_block() {
    use aws_sdk_sfn::types::ExecutionStatus;
    // Executions are not run: they stay RUNNING until stopped.
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let arn = delay_machine(&sfn).await;
    let scheduler = SfnScheduler::new(sfn.clone(), &arn);
    let review = Job::Review {
        report_id: "r1".into(),
        version: 2,
    };
    let due = Utc::now() + chrono::Duration::seconds(300);
    scheduler.schedule(&review, due).await.unwrap();
    let first = execution_name(&review);
    let before = executions(&sfn, &arn).await;
    assert_eq!(before.keys().collect::<Vec<_>>(), vec![&first]);
    let stop = |name: String| {
        let sfn = sfn.clone();
        let arn = arn.replace(":stateMachine:", ":execution:");
        async move {
            sfn.stop_execution()
                .execution_arn(format!("{arn}:{name}"))
                .send()
                .await
                .unwrap();
        }
    };
    stop(first.clone()).await;

    // The name is taken by an ABORTED execution: the review starts again, as the
    // successor, with the same job.
    scheduler.schedule(&review, due).await.unwrap();
    let after = executions(&sfn, &arn).await;
    let second = execution_name_at(&review, 2);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[&first].0, ExecutionStatus::Aborted);
    let (status, input) = &after[&second];
    assert_eq!(*status, ExecutionStatus::Running);
    assert_eq!(input["job"], before[&first].1["job"]);
    assert_eq!(
        input["job"],
        json!({"job": "review", "report_id": "r1", "version": 2})
    );
    assert_eq!(input["review_at"], before[&first].1["review_at"]);

    // While the successor runs, scheduling again (a later alert, a concurrent
    // scheduler) starts nothing more.
    scheduler.schedule(&review, due).await.unwrap();
    scheduler.schedule(&review, due).await.unwrap();
    assert_eq!(executions(&sfn, &arn).await.len(), 2);

    // Each execution that closes without success has one successor, up to the bound;
    // past it, a clear error that a retry would not cure.
    for attempt in 2..=MAX_EXECUTIONS_PER_JOB {
        stop(execution_name_at(&review, attempt)).await;
        let scheduled = scheduler.schedule(&review, due).await;
        if attempt < MAX_EXECUTIONS_PER_JOB {
            scheduled.unwrap();
            assert_eq!(executions(&sfn, &arn).await.len() as u32, attempt + 1);
        } else {
            let err = scheduled.unwrap_err();
            assert!(!err.is_retryable(), "{err}");
            let text = err.to_string();
            assert!(text.contains("report r1 version 2"), "{text}");
            assert_eq!(
                executions(&sfn, &arn).await.len() as u32,
                MAX_EXECUTIONS_PER_JOB
            );
        }
    }
}

#[tokio::test]
async fn an_inspector_function_is_invoked_with_the_task_and_its_failure_is_named() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        // The SDK puts the whole ARN, escaped, in the path.
        .and(path_regex(r"^/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aintel/invocations$"))
        .and(body_json(serde_json::to_value(task()).unwrap()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sections": [{"type": "host", "content": {"country": ["NL"]}}],
            "new_attributes": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2015-03-31/functions/broken/invocations"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Amz-Function-Error", "Unhandled")
                .set_body_json(json!({"errorType": "Boom", "errorMessage": "lookup failed"})),
        )
        .mount(&server)
        .await;
    let sdk = sdk_config(&server.uri()).await;
    let client = aws_sdk_lambda::Client::new(&sdk);
    let intel = LambdaInspector::new(
        client.clone(),
        "arn:aws:lambda:us-east-1:123456789012:function:intel",
        Duration::from_secs(5),
    );
    assert_eq!(intel.name(), "intel");
    let found = intel.inspect(&task()).await.unwrap();
    assert_eq!(found.sections[0].content["country"][0], "NL");
    let broken = LambdaInspector::new(client, "broken", Duration::from_secs(5));
    let err = broken.inspect(&task()).await.unwrap_err();
    assert!(
        err.to_string().contains("broken failed (Unhandled)"),
        "{err}"
    );
    assert!(err.to_string().contains("lookup failed"), "{err}");
}

#[tokio::test]
async fn a_reviewer_function_decides_or_answers_null_for_no_decision() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2015-03-31/functions/policy/invocations"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"severity": "urgent", "reason": "known bad"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2015-03-31/functions/undecided/invocations"))
        .respond_with(ResponseTemplate::new(200).set_body_string("null"))
        .mount(&server)
        .await;
    let sdk = sdk_config(&server.uri()).await;
    let client = aws_sdk_lambda::Client::new(&sdk);
    let decided = LambdaReviewer::new(client.clone(), "policy")
        .review(&report(Severity::Unclassified, 1))
        .await
        .unwrap();
    assert_eq!(decided.unwrap().severity, Severity::Urgent);
    let reviewers: Vec<Arc<dyn Reviewer>> =
        vec![Arc::new(LambdaReviewer::new(client, "undecided"))];
    let result = alertresponder_core::pipeline::review_report(
        &reviewers,
        &report(Severity::Unclassified, 1),
    )
    .await;
    assert_eq!(result.severity, Severity::Unclassified);
    assert_eq!(result.reason, "no reviewer reached a decision");
}

#[tokio::test]
async fn an_error_is_kept_in_the_table_then_published_on_the_topic() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let table = Arc::new(dynamo_store(&sdk).await);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = create_topic(&sdk, &unique("errors")).await;
    let subscriber = Subscriber::create(&sdk, &topic, &unique("all"), None).await;
    let sink = TableThenTopic {
        table: table.clone(),
        topic: SnsErrorTopic::new(sns.clone(), &topic),
    };
    let record = error_record("m1", 0);
    sink.put_error(&record).await.unwrap();
    assert_eq!(
        table.get_error("m1", "receive").await.unwrap(),
        Some(record.clone())
    );
    let got = subscriber.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        serde_json::from_str::<ErrorRecord>(&got[0].body).unwrap(),
        record
    );
    assert_eq!(got[0].attributes["stage"], "receive");

    // The topic fails: the call fails (so that it is retried), and the record is in
    // the table already, for the retry to rewrite and anyone to read meanwhile.
    let no_topic = TableThenTopic {
        table: table.clone(),
        topic: SnsErrorTopic::new(sns, format!("{topic}-deleted")),
    };
    let second = error_record("m2", 1);
    let err = no_topic.put_error(&second).await.unwrap_err();
    assert!(err.to_string().contains("Publish"), "{err}");
    assert_eq!(
        table.get_error("m2", "receive").await.unwrap(),
        Some(second)
    );
}
