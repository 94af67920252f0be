//! The scenarios of the deployed-stack test, on the stack in a box: moto stands in for
//! AWS, the real binaries (the five of the stack and the tester's inspector and
//! reviewer) run under cargo-lambda's emulator, the box drives itself as AWS would
//! (ingest topic → receptor, executions walked, tasks → harness; no webhook, so the
//! emitter fan-out is not subscribed, as in a stack deployed without one). The tester stack's
//! queues are made here, and both stacks are registered in moto's CloudFormation with
//! the outputs and parameters the real ones have, so the target is resolved exactly
//! as for a deployed stack.

use std::sync::Arc;
use std::time::Duration;

use alertresponder_aws_testkit::stack_box::{BoxOptions, StackInABox};
use alertresponder_aws_testkit::{unique, Subscriber};
use alertresponder_tester::config::Config;
use alertresponder_tester::scenarios::{run_all, verdict, Harness};
use alertresponder_tester::target::Target;
use aws_sdk_cloudformation::types::Parameter;
use serde_json::{json, Map};

/// The tester stack's name here: its functions are then `tester-inspector` and
/// `tester-reviewer`, the binaries' own names, which is what the emulator serves.
const TESTER_STACK: &str = "tester";

/// Registers stack `name` in moto's CloudFormation with `parameters` and literal
/// `outputs` (one placeholder resource: moto needs one).
async fn register_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    parameters: &[(&str, String)],
    outputs: &[(&str, String)],
) {
    let mut declared = Map::new();
    for (k, _) in parameters {
        declared.insert(k.to_string(), json!({"Type": "String"}));
    }
    let mut out = Map::new();
    for (k, v) in outputs {
        out.insert(k.to_string(), json!({"Value": v}));
    }
    let template = json!({
        "Parameters": declared,
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": out,
    });
    let mut create = cfn
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string());
    for (k, v) in parameters {
        create = create.parameters(
            Parameter::builder()
                .parameter_key(*k)
                .parameter_value(v)
                .build(),
        );
    }
    create.send().await.unwrap_or_else(|e| {
        panic!(
            "moto CreateStack {name}: {}",
            aws_sdk_cloudformation::error::DisplayErrorContext(e)
        )
    });
}

fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_pass_on_the_stack_in_a_box() {
    let options = BoxOptions {
        inspection_delay_secs: 1,
        review_delay_secs: 5,
        inspector_functions: vec![format!("{TESTER_STACK}-inspector")],
        reviewer_functions: vec![format!("{TESTER_STACK}-reviewer")],
        ..BoxOptions::default()
    };
    let sib = Arc::new(StackInABox::start(options.clone()).await);
    let sdk = sib.sdk.clone();

    // The tester stack: its two queues, subscribed to the report and error topics.
    let reports = Subscriber::create(
        &sdk,
        &sib.resources.report_topic,
        &unique("tester-reports"),
        None,
    )
    .await;
    let errors = Subscriber::create(
        &sdk,
        &sib.resources.error_topic,
        &unique("tester-errors"),
        None,
    )
    .await;

    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let main = unique("box-main");
    register_stack(
        &cfn,
        &main,
        &[
            ("InspectionDelay", options.inspection_delay_secs.to_string()),
            ("ReviewDelay", options.review_delay_secs.to_string()),
            (
                "InspectorFunctions",
                function_arn(&options.inspector_functions[0]),
            ),
            (
                "ReviewerFunctions",
                function_arn(&options.reviewer_functions[0]),
            ),
        ],
        &[("IngestTopicArn", sib.resources.ingest_topic.clone())],
    )
    .await;
    register_stack(
        &cfn,
        TESTER_STACK,
        &[("MainStackName", main.clone())],
        &[
            ("ReportQueueUrl", reports.queue_url.clone()),
            ("ErrorQueueUrl", errors.queue_url.clone()),
        ],
    )
    .await;
    let config = Config {
        region: "us-east-1".into(),
        main_stack_name: main,
        tester_stack_name: TESTER_STACK.into(),
    };
    let target = Target::resolve(&cfn, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The emulator builds a function when it is first invoked: do it before the clock
    // of any scenario runs. (Empty events: each answers with an error or nothing.)
    for function in [
        "receptor",
        "dispatcher",
        "inspector-harness",
        "reviewer-invoker",
        "tester-inspector",
        "tester-reviewer",
    ] {
        eprintln!("warming up {function} (the first run of the box builds it)");
        let _ = sib.emulator.invoke(function, &json!({"Records": []})).await;
    }

    let driver = sib.drive();
    let harness = Harness::new(&sdk, target, Duration::from_secs(60));
    let outcomes = run_all(&harness).await;
    let failures = driver.failures();
    drop(driver);
    let verdict = verdict(&outcomes);
    if let Ok(lines) = &verdict {
        eprintln!("{lines}");
    }
    assert!(
        verdict.is_ok() && failures.is_empty(),
        "run {}:\n{}\nwhat failed in the box: {failures:#?}\n{}",
        harness.run,
        verdict.unwrap_or_else(|e| e),
        sib.emulator.log_text()
    );
}
