//! The automatic quarantine against moto's EC2: reports published by the pipeline on
//! the memory adapters, the quarantine emitter on moto, and its release. The failures:
//! an instance EC2 does not know (moto), a denial (EC2's query-protocol error from a
//! local server), each an error record on the error table and the error topic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alertresponder_aws::quarantine::ec2::{self as q_ec2, GROUP_NAME};
use alertresponder_aws::quarantine::tags::{GROUPS_PREFIX, GROUP_TAG, MARKER};
use alertresponder_aws::quarantine::{
    Mode, QuarantineConfig, QuarantineEmitter, QuarantinePorts, NAME,
};
use alertresponder_aws::sns::SnsErrorTopic;
use alertresponder_aws::stack::TableThenTopic;
use alertresponder_aws_testkit::{create_topic, dynamo_store, unique, Moto, Subscriber};
use alertresponder_core::fixtures::plugins::decides;
use alertresponder_core::memory::{self, MemoryRuntime};
use alertresponder_core::ports::{Emitter, ErrorLog, ManualClock, ReadStore};
use alertresponder_core::{Job, PluginError, Report, Settings, Severity};
use aws_sdk_ec2::types::{
    Filter, InstanceNetworkInterfaceSpecification, InstanceType, ResourceType, Tag,
    TagSpecification,
};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// ------------------------------------------------------------------ EC2 on moto

/// An instance in its own VPC with two network interfaces: the primary in groups
/// `web` and `db`, the second in `admin`; tagged `Name`.
struct Setup {
    ec2: aws_sdk_ec2::Client,
    vpc: String,
    instance: String,
    /// (interface, its groups) by device index.
    before: Vec<(String, Vec<String>)>,
}

async fn group(ec2: &aws_sdk_ec2::Client, vpc: &str, name: &str) -> String {
    ec2.create_security_group()
        .group_name(name)
        .description(name)
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string()
}

async fn setup(moto: &Moto) -> Setup {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.7.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.7.1.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let (web, db, admin) = (
        group(&ec2, &vpc, "web").await,
        group(&ec2, &vpc, "db").await,
        group(&ec2, &vpc, "admin").await,
    );
    // Both interfaces given at launch, the instance naming no group of its own: moto
    // adds an instance's groups to each of its interfaces (EC2 has an instance's
    // groups be its primary interface's).
    let nic = |index: i32, groups: &[&String]| {
        groups
            .iter()
            .fold(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(index)
                    .subnet_id(&subnet),
                |b, g| b.groups(*g),
            )
            .build()
    };
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .network_interfaces(nic(0, &[&web, &db]))
        .network_interfaces(nic(1, &[&admin]))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("web-1").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instance = out.instances()[0].instance_id().unwrap().to_string();
    let before = interfaces(&ec2, &instance).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(sorted(&before[0].1), sorted(&[web, db]));
    assert_eq!(before[1].1, vec![admin]);
    Setup {
        ec2,
        vpc,
        instance,
        before,
    }
}

fn sorted(groups: &[String]) -> Vec<String> {
    let mut g = groups.to_vec();
    g.sort();
    g
}

/// The instance's interfaces and their groups (sorted: EC2 keeps no order), by
/// device index.
async fn interfaces(ec2: &aws_sdk_ec2::Client, instance: &str) -> Vec<(String, Vec<String>)> {
    q_ec2::describe_instance(ec2, instance)
        .await
        .unwrap()
        .interfaces
        .into_iter()
        .map(|i| (i.id, sorted(&i.groups)))
        .collect()
}

async fn tags(ec2: &aws_sdk_ec2::Client, instance: &str) -> BTreeMap<String, String> {
    q_ec2::describe_instance(ec2, instance)
        .await
        .unwrap()
        .tags
        .into_iter()
        .map(|(k, v)| {
            if k.starts_with(GROUPS_PREFIX) {
                let groups: Vec<String> = v.split(' ').map(str::to_string).collect();
                (k, sorted(&groups).join(" "))
            } else {
                (k, v)
            }
        })
        .collect()
}

/// A section's `interfaces`, as (interface, sorted previous groups).
fn recorded(q: &Value) -> Vec<(String, Vec<String>)> {
    q["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let groups: Vec<String> = serde_json::from_value(i["previous_groups"].clone()).unwrap();
            (i["id"].as_str().unwrap().to_string(), sorted(&groups))
        })
        .collect()
}

/// The groups named `alertresponder-quarantine` in `vpc`.
async fn quarantine_groups(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    ec2.describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values(GROUP_NAME)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()
        .to_vec()
}

/// The EC2 requests moto received since `start_recording` (their `Action`s; a request
/// to another service, or whose action cannot be read, is `?`).
fn ec2_actions(moto: &Moto) -> Vec<String> {
    moto.recorded_requests()
        .iter()
        .map(|r| {
            let raw = r["body"].as_str().unwrap_or_default();
            let body = if r["body_encoded"] == json!(true) {
                String::from_utf8(aws_smithy_types::base64::decode(raw).unwrap()).unwrap()
            } else {
                raw.to_string()
            };
            let ec2 = r["headers"]["Authorization"]
                .as_str()
                .unwrap_or_default()
                .contains("/ec2/aws4_request");
            body.split('&')
                .find_map(|p| p.strip_prefix("Action="))
                .filter(|_| ec2)
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

// ------------------------------------------------------------------ reports

/// A report published by the pipeline on the memory adapters, reviewed `severity`.
struct Published {
    p: alertresponder_core::pipeline::Pipeline,
    rt: MemoryRuntime,
    clock: Arc<ManualClock>,
}

impl Published {
    async fn new(severity: Severity, key: &str, instances: &[&str]) -> Self {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        ));
        let (mut p, rt) = memory::pipeline(Settings::default(), clock.clone());
        p.reviewers = vec![Arc::new(decides("policy", severity, "test"))];
        let attributes: Vec<Value> = instances
            .iter()
            .map(|id| json!({"type": "instance_id", "key": "EC2 instance", "value": id, "context": ["local"]}))
            .collect();
        let alert = json!({
            "detector": "guardduty",
            "rule_id": "Backdoor:EC2/C&CActivity.B",
            "rule_name": "EC2 instance talks to a command and control server",
            "alert_key": key,
            "timestamp": "2026-03-01T11:59:00Z",
            "attributes": attributes,
        });
        p.receive(alert.to_string().as_bytes(), Some("m1"))
            .await
            .unwrap();
        let published = Published { p, rt, clock };
        published.run().await;
        published
    }

    /// Runs every job due (the re-reviews included).
    async fn run(&self) {
        self.rt.run_until(&self.p, &self.clock, None).await.unwrap();
    }

    fn last(&self) -> Report {
        self.rt
            .reports
            .published()
            .last()
            .cloned()
            .expect("a published version")
    }

    fn emitter(&self, ec2: &aws_sdk_ec2::Client, mode: Mode) -> QuarantineEmitter {
        self.emitter_with(ec2, mode, QuarantinePorts::of(&self.p))
    }

    fn emitter_with(
        &self,
        ec2: &aws_sdk_ec2::Client,
        mode: Mode,
        ports: QuarantinePorts,
    ) -> QuarantineEmitter {
        let config = QuarantineConfig {
            mode,
            min_severity: Severity::Urgent,
            groups: vec![],
        };
        QuarantineEmitter::new(ec2.clone(), config, ports)
    }

    fn reviews_requested(&self) -> Vec<u32> {
        self.rt
            .scheduler
            .requests()
            .into_iter()
            .filter_map(|(job, _)| match job {
                Job::Review { version, .. } => Some(version),
                _ => None,
            })
            .collect()
    }

    async fn sections_by_us(&self, report_id: &str) -> Vec<Value> {
        self.rt
            .store
            .load_report(report_id)
            .await
            .unwrap()
            .unwrap()
            .sections
            .into_iter()
            .filter(|s| s.author == NAME)
            .map(|s| {
                assert_eq!(s.attribute.attr_type, "instance_id");
                assert_eq!(s.section_type, "host");
                s.content
            })
            .collect()
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn an_urgent_report_isolates_every_interface_records_the_groups_and_shows_it_once() {
    let moto = Moto::start(false);
    let s = setup(&moto).await;
    let run = Published::new(Severity::Urgent, &s.instance, &[&s.instance]).await;
    let v1 = run.last();
    assert_eq!((v1.version, v1.result.severity), (1, Severity::Urgent));
    let reviews_before = run.reviews_requested();
    let emitter = run.emitter(&s.ec2, Mode::On);
    assert!(emitter.wants(&v1));

    moto.start_recording();
    emitter.emit(&v1, 0).await.unwrap();
    // In this order: the previous groups are recorded before any interface moves, the
    // marker last.
    assert_eq!(
        ec2_actions(&moto),
        [
            "DescribeInstances",
            "DescribeSecurityGroups",
            "CreateSecurityGroup",
            "DescribeSecurityGroups",
            "RevokeSecurityGroupEgress",
            "CreateTags",
            "ModifyNetworkInterfaceAttribute",
            "ModifyNetworkInterfaceAttribute",
            "CreateTags",
        ]
    );

    // One quarantine group in the VPC, ours, allowing nothing.
    let groups = quarantine_groups(&s.ec2, &s.vpc).await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    let qg = groups[0].group_id().unwrap().to_string();
    assert!(groups[0].ip_permissions().is_empty(), "{groups:?}");
    assert!(groups[0].ip_permissions_egress().is_empty(), "{groups:?}");
    assert!(groups[0]
        .tags()
        .iter()
        .any(|t| t.key() == Some(GROUP_TAG) && t.value() == Some("true")));
    // Every interface is in it alone.
    let now = interfaces(&s.ec2, &s.instance).await;
    for (i, (eni, groups)) in now.iter().enumerate() {
        assert_eq!(eni, &s.before[i].0);
        assert_eq!(groups, &vec![qg.clone()], "{eni}");
    }
    // Tagged with the report and each interface's previous groups, the user's tag kept.
    let t = tags(&s.ec2, &s.instance).await;
    let mut expected = BTreeMap::from([
        ("Name".to_string(), "web-1".to_string()),
        (MARKER.to_string(), v1.id.clone()),
    ]);
    for (eni, groups) in &s.before {
        expected.insert(format!("{GROUPS_PREFIX}{eni}"), groups.join(" "));
    }
    assert_eq!(t, expected);
    // Recorded: one section on the instance, and a review of version 2.
    let sections = run.sections_by_us(&v1.id).await;
    assert_eq!(sections.len(), 1);
    let q = &sections[0]["quarantine"];
    assert_eq!(q["instance_id"], json!(s.instance));
    assert_eq!(q["dry_run"], json!(false));
    assert_eq!(q["group_id"], json!(qg));
    assert_eq!(q["group"], json!("created"));
    assert_eq!(q["vpc_id"], json!(s.vpc));
    assert_eq!(q["version"], json!(1));
    assert_eq!(recorded(q), s.before);
    assert_eq!(
        q["release"],
        json!(format!("alertresponder release-quarantine {}", s.instance))
    );
    assert_eq!(sections[0]["activities"][0]["action"], json!("quarantined"));
    let mut expected_reviews = reviews_before.clone();
    expected_reviews.push(2);
    assert_eq!(run.reviews_requested(), expected_reviews);

    // Version 2 shows it; delivering it (or version 1 again) changes nothing on EC2
    // and records nothing more: no loop.
    run.run().await;
    let v2 = run.last();
    assert_eq!(v2.version, 2);
    assert!(
        v2.sections.iter().any(|x| x.author == NAME),
        "{:?}",
        v2.sections
    );
    moto.start_recording();
    emitter.emit(&v2, 0).await.unwrap();
    assert_eq!(
        ec2_actions(&moto),
        Vec::<String>::new(),
        "version 2 calls EC2"
    );
    assert_eq!(
        run.reviews_requested(),
        expected_reviews,
        "version 2 schedules a review"
    );
    run.run().await;
    assert_eq!(run.last().version, 2, "a third version");
    // A later version cut to its size bound without the section: the store has it,
    // recorded for version 1, so nothing either.
    let mut cut = v2.clone();
    cut.sections.clear();
    moto.start_recording();
    emitter.emit(&cut, 0).await.unwrap();
    assert_eq!(ec2_actions(&moto), Vec::<String>::new());
    assert_eq!(run.reviews_requested(), expected_reviews);
    moto.start_recording();
    emitter.emit(&v1, 1).await.unwrap();
    assert_eq!(
        ec2_actions(&moto),
        Vec::<String>::new(),
        "a retry of version 1 calls EC2"
    );
    assert_eq!(tags(&s.ec2, &s.instance).await, expected);
    assert_eq!(run.sections_by_us(&v1.id).await.len(), 1);

    // Another report naming the instance finds it quarantined: nothing more, the
    // recorded groups untouched.
    let other = Published::new(Severity::Urgent, "another key", &[&s.instance]).await;
    let o1 = other.last();
    let reviews = other.reviews_requested();
    other.emitter(&s.ec2, Mode::On).emit(&o1, 0).await.unwrap();
    assert_eq!(tags(&s.ec2, &s.instance).await, expected);
    assert!(other.sections_by_us(&o1.id).await.is_empty());
    assert_eq!(other.reviews_requested(), reviews);
    assert_eq!(quarantine_groups(&s.ec2, &s.vpc).await.len(), 1);

    // Released: exactly the groups before, our tags gone, the user's kept.
    let plan = q_ec2::release(&s.ec2, &s.instance, true).await.unwrap();
    assert!(plan.dry_run && plan.was_quarantined());
    assert_eq!(plan.report_id.as_deref(), Some(v1.id.as_str()));
    assert_eq!(
        interfaces(&s.ec2, &s.instance).await[0].1,
        vec![qg.clone()],
        "a dry run changed groups"
    );
    let done = q_ec2::release(&s.ec2, &s.instance, false).await.unwrap();
    assert_eq!(
        done.restored
            .iter()
            .map(|i| (i.id.clone(), sorted(&i.groups)))
            .collect::<Vec<_>>(),
        s.before
    );
    assert!(done.unrecorded.is_empty() && done.not_attached.is_empty());
    assert_eq!(interfaces(&s.ec2, &s.instance).await, s.before);
    assert_eq!(
        tags(&s.ec2, &s.instance).await,
        BTreeMap::from([("Name".to_string(), "web-1".to_string())])
    );
    let again = q_ec2::release(&s.ec2, &s.instance, false).await.unwrap();
    assert!(!again.was_quarantined() && again.restored.is_empty());
}

#[tokio::test]
async fn a_dry_run_changes_nothing_but_records_what_it_would_do_once() {
    let moto = Moto::start(false);
    let s = setup(&moto).await;
    let run = Published::new(Severity::Urgent, &s.instance, &[&s.instance]).await;
    let v1 = run.last();
    let emitter = run.emitter(&s.ec2, Mode::DryRun);
    moto.start_recording();
    emitter.emit(&v1, 0).await.unwrap();
    let mut called = ec2_actions(&moto);
    called.sort();
    called.dedup();
    assert_eq!(called, ["DescribeInstances", "DescribeSecurityGroups"]);
    assert_eq!(interfaces(&s.ec2, &s.instance).await, s.before);
    assert_eq!(
        tags(&s.ec2, &s.instance).await,
        BTreeMap::from([("Name".to_string(), "web-1".to_string())])
    );
    assert!(quarantine_groups(&s.ec2, &s.vpc).await.is_empty());
    let sections = run.sections_by_us(&v1.id).await;
    assert_eq!(sections.len(), 1);
    let q = &sections[0]["quarantine"];
    assert_eq!(q["dry_run"], json!(true));
    assert_eq!(q["group"], json!("would be created"));
    assert_eq!(q["group_id"], Value::Null);
    assert_eq!(q["release"], Value::Null);
    assert_eq!(recorded(q), s.before);
    assert_eq!(
        sections[0]["activities"][0]["action"],
        json!("quarantine (dry run: nothing changed)")
    );
    assert_eq!(run.reviews_requested().last(), Some(&2));
    let reviews = run.reviews_requested();

    run.run().await;
    let v2 = run.last();
    assert_eq!(v2.version, 2);
    moto.start_recording();
    emitter.emit(&v2, 0).await.unwrap();
    assert_eq!(ec2_actions(&moto), Vec::<String>::new());
    assert_eq!(run.reviews_requested(), reviews);
    run.run().await;
    assert_eq!(run.last().version, 2);
}

#[tokio::test]
async fn a_report_below_the_severity_does_not_call_ec2() {
    let moto = Moto::start(false);
    let s = setup(&moto).await;
    for severity in [Severity::Safe, Severity::Unclassified] {
        let run = Published::new(severity, &s.instance, &[&s.instance]).await;
        let v1 = run.last();
        let emitter = run.emitter(&s.ec2, Mode::On);
        assert!(!emitter.wants(&v1));
        let reviews = run.reviews_requested();
        moto.start_recording();
        emitter.emit(&v1, 0).await.unwrap();
        assert_eq!(ec2_actions(&moto), Vec::<String>::new(), "{severity}");
        assert!(run.sections_by_us(&v1.id).await.is_empty());
        assert_eq!(run.reviews_requested(), reviews);
    }
    assert_eq!(interfaces(&s.ec2, &s.instance).await, s.before);
    // Unclassified is enough when configured so; a value that is no instance ID is
    // never sent to EC2.
    let run = Published::new(
        Severity::Unclassified,
        "k",
        &["i-12345678; reboot", "I-0123456789ABCDEF0"],
    )
    .await;
    let emitter = QuarantineEmitter::new(
        s.ec2.clone(),
        QuarantineConfig {
            mode: Mode::On,
            min_severity: Severity::Unclassified,
            groups: vec![],
        },
        QuarantinePorts::of(&run.p),
    );
    assert!(emitter.wants(&run.last()));
    moto.start_recording();
    emitter.emit(&run.last(), 0).await.unwrap();
    assert_eq!(ec2_actions(&moto), Vec::<String>::new());
}

#[tokio::test]
async fn a_named_group_is_used_as_it_is() {
    let moto = Moto::start(false);
    let s = setup(&moto).await;
    let named = group(&s.ec2, &s.vpc, "isolation").await;
    let run = Published::new(Severity::Urgent, &s.instance, &[&s.instance]).await;
    let emitter = QuarantineEmitter::new(
        s.ec2.clone(),
        QuarantineConfig {
            mode: Mode::On,
            min_severity: Severity::Urgent,
            groups: vec!["sg-0000000000000000f".into(), named.clone()],
        },
        QuarantinePorts::of(&run.p),
    );
    emitter.emit(&run.last(), 0).await.unwrap();
    for (_, groups) in interfaces(&s.ec2, &s.instance).await {
        assert_eq!(groups, vec![named.clone()]);
    }
    assert!(quarantine_groups(&s.ec2, &s.vpc).await.is_empty());
    let sections = run.sections_by_us(&run.last().id).await;
    assert_eq!(sections[0]["quarantine"]["group"], json!("named"));
}

/// The fan-out's error sink on moto: the error table, then the error topic, and a
/// queue subscribed to the topic.
async fn error_sink(
    moto: &Moto,
) -> (
    Arc<TableThenTopic>,
    Arc<alertresponder_aws::dynamo::DynamoStore>,
    Subscriber,
) {
    let sdk = moto.sdk_config().await;
    let table = Arc::new(dynamo_store(&sdk).await);
    let topic = create_topic(&sdk, &unique("errors")).await;
    let subscriber = Subscriber::create(&sdk, &topic, &unique("errors"), None).await;
    let sink = Arc::new(TableThenTopic {
        table: table.clone(),
        topic: SnsErrorTopic::new(aws_sdk_sns::Client::new(&sdk), topic),
    });
    (sink, table, subscriber)
}

#[tokio::test]
async fn an_instance_ec2_does_not_know_is_an_error_record_on_the_table_and_the_topic() {
    let moto = Moto::start(false);
    let s = setup(&moto).await;
    let missing = "i-0123456789abcdef0";
    let run = Published::new(Severity::Urgent, missing, &[missing, &s.instance]).await;
    let v1 = run.last();
    let (sink, table, subscriber) = error_sink(&moto).await;
    let mut ports = QuarantinePorts::of(&run.p);
    ports.errors = sink;
    let reviews = run.reviews_requested();
    let err = run
        .emitter_with(&s.ec2, Mode::On, ports)
        .emit(&v1, 0)
        .await
        .unwrap_err();
    // Not worth a retry; the other instance is quarantined all the same.
    let PluginError::Rejected(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains(missing) && message.contains("not found"),
        "{message}"
    );
    assert_eq!(tags(&s.ec2, &s.instance).await.get(MARKER), Some(&v1.id));
    assert_eq!(run.sections_by_us(&v1.id).await.len(), 1);
    assert_eq!(run.reviews_requested().len(), reviews.len() + 1);

    let id = format!("{NAME}:{}:1:{missing}", v1.id);
    let record = table
        .get_error(&id, NAME)
        .await
        .unwrap()
        .expect("the error record");
    assert!(record.error.contains("not found"), "{record:?}");
    let input: Value = serde_json::from_str(&record.input).unwrap();
    assert_eq!(input["instance_id"], json!(missing));
    assert_eq!(input["report_id"], json!(v1.id));
    let got = subscriber.receive(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].attributes.get("stage").map(String::as_str),
        Some(NAME)
    );
    let published: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(published["id"], json!(id));
}

#[tokio::test]
async fn a_denied_describe_is_an_error_record_naming_the_call_and_changes_nothing() {
    let moto = Moto::start(false);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(body_string_contains("Action=DescribeInstances"))
        .and(body_string_contains("InstanceId.1=i-0123456789abcdef0"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID></Response>",
            "text/xml",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let ec2 =
        aws_sdk_ec2::Client::new(&alertresponder_aws_testkit::sdk_config(&server.uri()).await);
    let run = Published::new(Severity::Urgent, "k", &["i-0123456789abcdef0"]).await;
    let v1 = run.last();
    let (sink, table, _subscriber) = error_sink(&moto).await;
    let mut ports = QuarantinePorts::of(&run.p);
    ports.errors = sink;
    let reviews = run.reviews_requested();
    let err = run
        .emitter_with(&ec2, Mode::On, ports)
        .emit(&v1, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Rejected(_)), "{err:?}");
    let record = table
        .get_error(&format!("{NAME}:{}:1:i-0123456789abcdef0", v1.id), NAME)
        .await
        .unwrap()
        .expect("the error record");
    assert!(
        record.error.contains("DescribeInstances"),
        "{}",
        record.error
    );
    assert!(
        record.error.contains("UnauthorizedOperation"),
        "{}",
        record.error
    );
    assert!(run.sections_by_us(&v1.id).await.is_empty());
    assert_eq!(run.reviews_requested(), reviews);
}

#[tokio::test]
async fn an_isolation_cut_short_is_finished_by_the_retry_keeping_the_recorded_groups() {
    let moto = Moto::start(false);
    let s = setup(&moto).await;
    let run = Published::new(Severity::Urgent, &s.instance, &[&s.instance]).await;
    let v1 = run.last();
    // A first attempt recorded the groups and moved the first interface, then died.
    let q = q_ec2::quarantine_group(&s.ec2, &s.instance, &s.vpc, &[], true)
        .await
        .unwrap()
        .id
        .unwrap();
    let mut request = s.ec2.create_tags().resources(&s.instance);
    for (eni, groups) in &s.before {
        for (k, v) in alertresponder_aws::quarantine::tags::encode_groups(eni, groups) {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
    }
    request.send().await.unwrap();
    s.ec2
        .modify_network_interface_attribute()
        .network_interface_id(&s.before[0].0)
        .groups(&q)
        .send()
        .await
        .unwrap();
    let recorded_before = tags(&s.ec2, &s.instance).await;

    moto.start_recording();
    run.emitter(&s.ec2, Mode::On).emit(&v1, 1).await.unwrap();
    // Only the interface left is moved; the groups recorded first are kept.
    assert_eq!(
        ec2_actions(&moto),
        [
            "DescribeInstances",
            "DescribeSecurityGroups",
            "ModifyNetworkInterfaceAttribute",
            "CreateTags",
        ]
    );
    for (_, groups) in interfaces(&s.ec2, &s.instance).await {
        assert_eq!(groups, vec![q.clone()]);
    }
    let mut expected = recorded_before;
    expected.insert(MARKER.into(), v1.id.clone());
    assert_eq!(tags(&s.ec2, &s.instance).await, expected);
    let sections = run.sections_by_us(&v1.id).await;
    assert_eq!(recorded(&sections[0]["quarantine"]), s.before);
    assert_eq!(sections[0]["quarantine"]["group"], json!("found"));
    q_ec2::release(&s.ec2, &s.instance, false).await.unwrap();
    assert_eq!(interfaces(&s.ec2, &s.instance).await, s.before);
}
