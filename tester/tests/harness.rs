//! The scenarios' waiting, on moto alone: a wait that finds its message, and one that
//! gives up at its deadline saying what it waited for and what came instead (so a
//! scenario can fail, and says why).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alertresponder_aws_testkit::{create_topic, unique, Moto, Subscriber};
use alertresponder_core::fixtures::report;
use alertresponder_core::Severity;
use alertresponder_tester::scenarios::Harness;
use alertresponder_tester::target::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_finds_its_report_or_gives_up_naming_what_it_awaited() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let ingest = create_topic(&sdk, &unique("ingest")).await;
    let report_topic = create_topic(&sdk, &unique("reports")).await;
    let error_topic = create_topic(&sdk, &unique("errors")).await;
    let reports = Subscriber::create(&sdk, &report_topic, &unique("reports"), None).await;
    let errors = Subscriber::create(&sdk, &error_topic, &unique("errors"), None).await;
    let target = Target {
        ingest_topic_arn: ingest,
        report_queue_url: reports.queue_url.clone(),
        error_queue_url: errors.queue_url.clone(),
        inspector: "tester-inspector".into(),
        inspection_delay: Duration::ZERO,
        review_delay: Duration::from_secs(1),
    };
    let h = Harness::new(&sdk, target, Duration::from_secs(1));

    // A report of another key of this run, then the awaited one.
    let sns = aws_sdk_sns::Client::new(&sdk);
    let publish = |key: String, version: u32| {
        let mut r = report("r-1", version, Severity::Safe);
        r.alerts[0].alert_key = key;
        let sns = sns.clone();
        let topic = report_topic.clone();
        async move {
            sns.publish()
                .topic_arn(topic)
                .message(serde_json::to_string(&r).unwrap())
                .send()
                .await
                .unwrap();
        }
    };
    publish(h.key("other"), 1).await;
    publish(h.key("wanted"), 1).await;
    let (found, _) = h.await_report("wanted", 1).await.unwrap();
    assert_eq!(found.alerts[0].alert_key, h.key("wanted"));

    let err = h.await_report("wanted", 2).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "gave up after 2 s waiting for report v2 of alert key {}",
            h.key("wanted")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("report r-1 v1 key {}", h.key("other"))),
        "what came instead is named: {err}"
    );
    let err = h
        .await_error("malformed", "no-such-marker")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("waiting for an error record keeping the input marked no-such-marker"),
        "{err}"
    );
}
