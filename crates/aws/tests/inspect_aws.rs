//! The `aws` built-in inspector and the Secrets Manager adapter against their protocol
//! peers: moto for EC2, IAM and Secrets Manager; a local HTTP server speaking
//! CloudTrail's JSON protocol for `LookupEvents` (moto has none), and EC2's query
//! protocol errors (moto enforces no IAM and never throttles).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use alertresponder_aws_testkit::{sdk_config, Moto};
use alertresponder_core::ports::{Inspection, Inspector};
use alertresponder_core::{Attribute, PluginError, Task};
use alertresponder_plugins::inspect::aws::{AwsClients, AwsInspector, Config};
use alertresponder_plugins::inspect::BuildContext;
use alertresponder_plugins::secret::{SecretRef, SecretResolver, Secrets, SecretsManager};
use alertresponder_plugins::secrets_manager::AwsSecretsManager;
use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, InstanceType, ResourceType, Tag, TagSpecification,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LOOKUP_EVENTS: &str = "CloudTrail_20131101.LookupEvents";
const JSON_11: &str = "application/x-amz-json-1.1";

fn task(attr_type: &str, value: &str) -> Task {
    Task {
        report_id: "rep-1".into(),
        attribute: Attribute {
            attr_type: attr_type.into(),
            key: "k".into(),
            value: value.into(),
            context: vec!["remote".into()],
            timestamp: None,
        },
        depth: 0,
        review_at: None,
    }
}

fn config(keys: Value) -> Config {
    serde_json::from_value(keys).unwrap()
}

/// The inspector with EC2 and IAM at `main` and CloudTrail at `cloudtrail`.
async fn aws_inspector(main: &str, cloudtrail: &str, cfg: Config) -> AwsInspector {
    let secrets = Secrets::local(".");
    let ctx = BuildContext {
        name: "aws",
        key: "inspector[0]",
        timeout: Duration::from_secs(10),
        secrets: &secrets,
        base_dir: Path::new("."),
    };
    let clients = AwsClients::from_sdk_config(&sdk_config(main).await)
        .with_cloudtrail(&sdk_config(cloudtrail).await);
    AwsInspector::with_clients(&ctx, cfg, clients).unwrap()
}

/// A LookupEvents request for `key` = `value` (headers, method, path, attribute).
fn lookup(key: &str, value: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", LOOKUP_EVENTS))
        .and(header("content-type", JSON_11))
        .and(body_partial_json(json!({
            "LookupAttributes": [{"AttributeKey": key, "AttributeValue": value}]
        })))
}

/// A CloudTrail event in LookupEvents' documented shape.
fn ct_event(id: &str, name: &str, source_ip: &str, resource: &str) -> Value {
    json!({
        "EventId": id,
        "EventName": name,
        "ReadOnly": "false",
        "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "EventTime": 1_790_000_000,
        "EventSource": "ec2.amazonaws.com",
        "Username": "alice",
        "Resources": [{"ResourceType": "AWS::EC2::Instance", "ResourceName": resource}],
        "CloudTrailEvent": json!({
            "eventVersion": "1.08",
            "eventTime": "2026-09-21T14:13:20Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": name,
            "sourceIPAddress": source_ip,
            "userIdentity": {"type": "IAMUser", "userName": "alice"}
        }).to_string()
    })
}

fn events(events: Vec<Value>, next: Option<&str>) -> ResponseTemplate {
    let mut body = json!({ "Events": events });
    if let Some(t) = next {
        body["NextToken"] = json!(t);
    }
    ResponseTemplate::new(200).set_body_raw(body.to_string(), JSON_11)
}

fn json_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        json!({"__type": code, "message": "test"}).to_string(),
        JSON_11,
    )
}

/// The JSON bodies CloudTrail received.
async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn seconds(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("not epoch seconds: {v}"))
}

fn attrs(i: &Inspection) -> Vec<(String, String, String)> {
    i.new_attributes
        .iter()
        .map(|a| (a.attr_type.clone(), a.value.clone(), a.context.join(",")))
        .collect()
}

/// An instance in moto with tags, a security group and an instance profile; its ID and
/// private address.
async fn run_instance(moto: &Moto) -> (String, String, String) {
    let sdk = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let profile = iam
        .create_instance_profile()
        .instance_profile_name("web-profile")
        .send()
        .await
        .unwrap();
    let profile_arn = profile.instance_profile().unwrap().arn().to_string();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let sg = ec2
        .create_security_group()
        .group_name("web")
        .description("web servers")
        .send()
        .await
        .unwrap();
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .security_group_ids(sg.group_id().unwrap())
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name("web-profile")
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("web-1").build())
                .tags(Tag::builder().key("Owner").value("team-a").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instance = &out.instances()[0];
    (
        instance.instance_id().unwrap().to_string(),
        instance.private_ip_address().unwrap().to_string(),
        profile_arn,
    )
}

#[tokio::test]
async fn an_address_leads_to_its_instance_with_tags_groups_profile_and_what_was_done_to_it() {
    let moto = Moto::start(false);
    let (id, private_ip, profile_arn) = run_instance(&moto).await;
    let cloudtrail = MockServer::start().await;
    lookup("ResourceName", &id)
        .respond_with(events(
            vec![ct_event("e1", "StopInstances", "203.0.113.9", &id)],
            None,
        ))
        .expect(1)
        .mount(&cloudtrail)
        .await;
    let inspector = aws_inspector(&moto.endpoint, &cloudtrail.uri(), config(json!({}))).await;
    let got = inspector
        .inspect(&task("ipaddr", &private_ip))
        .await
        .unwrap();

    assert_eq!(got.sections.len(), 1, "{got:?}");
    let s = &got.sections[0];
    assert_eq!(s.section_type, "host");
    let c = &s.content;
    assert_eq!(c["ipaddr"][0], json!(private_ip));
    assert_eq!(c["owner"], json!(["team-a", "123456789012"]));
    assert!(
        c["hostname"][0].as_str().unwrap().contains("ec2.internal")
            || c["hostname"][0]
                .as_str()
                .unwrap()
                .contains("compute.internal"),
        "{c}"
    );
    let i = &c["instance"];
    assert_eq!(i["id"], json!(id));
    assert_eq!(i["name"], json!("web-1"));
    assert_eq!(i["state"], json!("running"));
    assert_eq!(i["type"], json!("t3.micro"));
    assert!(i["vpc_id"].as_str().unwrap().starts_with("vpc-"), "{i}");
    assert!(
        i["subnet_id"].as_str().unwrap().starts_with("subnet-"),
        "{i}"
    );
    assert_eq!(i["security_groups"][0]["name"], json!("web"));
    assert_eq!(i["iam_instance_profile"], json!(profile_arn));
    assert_eq!(i["image_id"], json!("ami-12c6146b"));
    assert_eq!(i["tags"], json!({"Name": "web-1", "Owner": "team-a"}));
    assert_eq!(
        c["activities"],
        json!([{
            "action": "StopInstances", "target": id, "remote_addr": "203.0.113.9",
            "principal": "alice", "last_seen": "2026-09-21T14:13:20Z",
            "service_name": "ec2.amazonaws.com"
        }])
    );
    let learned = attrs(&got);
    assert!(
        learned.contains(&("instance_id".into(), id.clone(), "local".into())),
        "{learned:?}"
    );
    assert!(
        learned.contains(&("ipaddr".into(), "203.0.113.9".into(), "remote".into())),
        "{learned:?}"
    );
    assert!(
        !learned.iter().any(|(_, v, _)| v == &private_ip),
        "{learned:?}"
    );

    // The same instance by its ID, without CloudTrail.
    let quiet = aws_inspector(
        &moto.endpoint,
        &cloudtrail.uri(),
        config(json!({"activity": false})),
    )
    .await;
    let by_id = quiet.inspect(&task("instance_id", &id)).await.unwrap();
    assert_eq!(
        by_id.sections[0].content["instance"]["name"],
        json!("web-1")
    );
    assert!(by_id.sections[0].content.get("activities").is_none());
}

#[tokio::test]
async fn an_unknown_address_or_instance_is_nothing_found_and_a_malformed_one_is_never_sent() {
    let moto = Moto::start(false);
    let cloudtrail = MockServer::start().await;
    let inspector = aws_inspector(&moto.endpoint, &cloudtrail.uri(), config(json!({}))).await;
    for (t, v) in [
        ("ipaddr", "10.99.99.99"),
        ("instance_id", "i-0123456789abcdef0"),
    ] {
        let got = inspector.inspect(&task(t, v)).await.unwrap();
        assert_eq!(got, Inspection::default(), "{t} {v}");
    }
    moto.start_recording();
    for (t, v) in [
        ("ipaddr", "1.2.3.4?x="),
        ("ipaddr", "../../users/me"),
        ("instance_id", "i-../../x"),
        ("instance_id", "i-0123ABCD"),
        ("access_key_id", "AKIA/../../x"),
        ("username", "a/b#c"),
        ("domain", "example.com"),
    ] {
        match inspector.inspect(&task(t, v)).await {
            Err(PluginError::Skipped(why)) => assert!(why.contains(v) || t == "domain", "{why}"),
            other => panic!("{t} {v}: {other:?}"),
        }
    }
    // One request that is sent, to show the recorder records: it is the only one.
    let none = inspector
        .inspect(&task("username", "nobody"))
        .await
        .unwrap();
    assert_eq!(none, Inspection::default());
    let recorded = moto.recorded_requests();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(
        recorded[0]["headers"]["Authorization"]
            .as_str()
            .unwrap_or_default()
            .contains("/iam/aws4_request"),
        "{recorded:?}"
    );
    assert!(cloudtrail.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_access_key_leads_to_its_user_and_what_cloudtrail_saw_it_do() {
    let moto = Moto::start(false);
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    iam.create_user()
        .user_name("alice")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("a")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let key_id = key.access_key().unwrap().access_key_id().to_string();

    let cloudtrail = MockServer::start().await;
    lookup("AccessKeyId", &key_id)
        .and(body_partial_json(json!({"MaxResults": 50})))
        .respond_with(events(
            vec![
                ct_event("e1", "RunInstances", "203.0.113.9", "i-0aaaaaaaaaaaaaaaa"),
                ct_event("e2", "CreateUser", "iam.amazonaws.com", "bob"),
                ct_event("e3", "RunInstances", "203.0.113.9", "i-0bbbbbbbbbbbbbbbb"),
            ],
            None,
        ))
        .expect(1)
        .mount(&cloudtrail)
        .await;
    let inspector = aws_inspector(&moto.endpoint, &cloudtrail.uri(), config(json!({}))).await;
    let before = chrono::Utc::now().timestamp() as f64;
    let got = inspector
        .inspect(&task("access_key_id", &key_id))
        .await
        .unwrap();
    let after = chrono::Utc::now().timestamp() as f64;

    assert_eq!(got.sections.len(), 1);
    let s = &got.sections[0];
    assert_eq!(s.section_type, "user");
    let u = &s.content["user"];
    assert_eq!(u["name"], json!("alice"));
    assert_eq!(u["arn"], json!("arn:aws:iam::123456789012:user/alice"));
    assert!(u["id"].as_str().is_some_and(|i| !i.is_empty()), "{u}");
    assert!(u["created"].as_str().is_some(), "{u}");
    assert_eq!(u["tags"], json!({"team": "a"}));
    let acts = s.content["activities"].as_array().unwrap();
    assert_eq!(acts.len(), 3);
    assert_eq!(acts[1]["action"], json!("CreateUser"));
    assert_eq!(acts[1]["remote_addr"], json!("iam.amazonaws.com"));
    assert_eq!(acts[1]["target"], json!("bob"));
    // Source addresses that are IP addresses, once each.
    assert_eq!(
        attrs(&got),
        vec![("ipaddr".into(), "203.0.113.9".into(), "remote".into())]
    );
    assert_eq!(
        got.new_attributes[0].timestamp,
        chrono::DateTime::from_timestamp(1_790_000_000, 0)
    );

    // The window: the default hour, ending now.
    let body = &bodies(&cloudtrail).await[0];
    let (start, end) = (seconds(&body["StartTime"]), seconds(&body["EndTime"]));
    assert_eq!(end - start, 3600.0, "{body}");
    assert!(before <= end && end <= after, "{body}");
}

#[tokio::test]
async fn a_user_name_leads_to_the_user_and_an_unknown_one_to_nothing() {
    let moto = Moto::start(false);
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    iam.create_user().user_name("carol").send().await.unwrap();
    let cloudtrail = MockServer::start().await;
    let inspector = aws_inspector(
        &moto.endpoint,
        &cloudtrail.uri(),
        config(json!({"activity": false})),
    )
    .await;
    let got = inspector.inspect(&task("username", "carol")).await.unwrap();
    assert_eq!(got.sections[0].content["user"]["name"], json!("carol"));
    assert!(got.sections[0].content.get("activities").is_none());
    let none = inspector
        .inspect(&task("username", "nobody"))
        .await
        .unwrap();
    assert_eq!(none, Inspection::default());
    let unknown_key = inspector
        .inspect(&task("access_key_id", "AKIAIOSFODNN7EXAMPLE"))
        .await
        .unwrap();
    assert_eq!(unknown_key, Inspection::default());
    assert!(cloudtrail.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn cloudtrail_pages_are_followed_up_to_max_events_in_the_lookback_window() {
    let moto = Moto::start(false);
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    iam.create_user().user_name("alice").send().await.unwrap();
    let cloudtrail = MockServer::start().await;
    let page = |n: usize, offset: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                ct_event(
                    &format!("e{}", i + offset),
                    "GetObject",
                    "198.51.100.1",
                    "b",
                )
            })
            .collect()
    };
    lookup("Username", "alice")
        .and(body_partial_json(
            json!({"NextToken": "page-2", "MaxResults": 10}),
        ))
        .respond_with(events(page(10, 50), Some("page-3")))
        .with_priority(1)
        .expect(1)
        .mount(&cloudtrail)
        .await;
    lookup("Username", "alice")
        .and(body_partial_json(json!({"MaxResults": 50})))
        .respond_with(events(page(50, 0), Some("page-2")))
        .expect(1)
        .mount(&cloudtrail)
        .await;
    let inspector = aws_inspector(
        &moto.endpoint,
        &cloudtrail.uri(),
        config(json!({"lookback": "2h", "max_events": 60})),
    )
    .await;
    let got = inspector.inspect(&task("username", "alice")).await.unwrap();
    assert_eq!(
        got.sections[0].content["activities"]
            .as_array()
            .unwrap()
            .len(),
        60
    );
    let bodies = bodies(&cloudtrail).await;
    assert_eq!(bodies.len(), 2, "a third page is never asked for");
    assert!(bodies[0].get("NextToken").is_none());
    assert_eq!(
        seconds(&bodies[0]["EndTime"]) - seconds(&bodies[0]["StartTime"]),
        7200.0
    );
}

#[tokio::test]
async fn cloudtrail_throttling_is_rate_limited_and_a_denial_names_the_call() {
    let moto = Moto::start(false);
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    iam.create_user().user_name("alice").send().await.unwrap();
    iam.create_user().user_name("bob").send().await.unwrap();
    let cloudtrail = MockServer::start().await;
    lookup("Username", "alice")
        .respond_with(json_error(400, "ThrottlingException"))
        .expect(1)
        .mount(&cloudtrail)
        .await;
    lookup("Username", "bob")
        .respond_with(json_error(400, "AccessDeniedException"))
        .mount(&cloudtrail)
        .await;
    let inspector = aws_inspector(&moto.endpoint, &cloudtrail.uri(), config(json!({}))).await;
    assert_eq!(
        inspector.inspect(&task("username", "alice")).await,
        Err(PluginError::RateLimited { retry_after: None })
    );
    assert_eq!(
        inspector.inspect(&task("username", "bob")).await,
        Err(PluginError::Failed("cloudtrail:LookupEvents denied".into()))
    );
}

fn ec2_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>test</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
        ),
        "text/xml",
    )
}

#[tokio::test]
async fn a_public_address_is_looked_up_by_its_association_and_ec2_errors_become_outcomes() {
    let ec2 = MockServer::start().await;
    let empty = ResponseTemplate::new(200).set_body_raw(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeNetworkInterfacesResponse \
         xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r1</requestId>\
         <networkInterfaceSet/></DescribeNetworkInterfacesResponse>",
        "text/xml",
    );
    for filter in ["addresses.private-ip-address", "association.public-ip"] {
        Mock::given(method("POST"))
            .and(path("/"))
            .and(body_string_contains("Action=DescribeNetworkInterfaces"))
            .and(body_string_contains(
                format!("Filter.1.Name={filter}").as_str(),
            ))
            .and(body_string_contains("Filter.1.Value.1=198.51.100.7"))
            .respond_with(empty.clone())
            .expect(1)
            .mount(&ec2)
            .await;
    }
    Mock::given(body_string_contains("Filter.1.Value.1=198.51.100.8"))
        .respond_with(ec2_error(403, "UnauthorizedOperation"))
        .mount(&ec2)
        .await;
    Mock::given(body_string_contains("Filter.1.Value.1=198.51.100.9"))
        .respond_with(ec2_error(503, "RequestLimitExceeded"))
        .expect(1)
        .mount(&ec2)
        .await;
    let inspector = aws_inspector(&ec2.uri(), &ec2.uri(), config(json!({}))).await;
    assert_eq!(
        inspector.inspect(&task("ipaddr", "198.51.100.7")).await,
        Ok(Inspection::default())
    );
    assert_eq!(
        inspector.inspect(&task("ipaddr", "198.51.100.8")).await,
        Err(PluginError::Failed(
            "ec2:DescribeNetworkInterfaces denied".into()
        ))
    );
    assert_eq!(
        inspector.inspect(&task("ipaddr", "198.51.100.9")).await,
        Err(PluginError::RateLimited { retry_after: None })
    );
}

#[tokio::test]
async fn secrets_manager_reads_a_secret_string_and_refuses_binary_or_missing_ones() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    sm.create_secret()
        .name("alertresponder/vt")
        .secret_string("s3cr3t-value")
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("alertresponder/bin")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            b"b1n4ry-value".to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let manager = AwsSecretsManager::new(&sdk);
    assert_eq!(
        manager.secret_string("alertresponder/vt").await.unwrap(),
        "s3cr3t-value"
    );

    let binary = manager
        .secret_string("alertresponder/bin")
        .await
        .unwrap_err();
    assert!(
        binary.contains("alertresponder/bin") && binary.contains("binary"),
        "{binary}"
    );
    assert!(!binary.contains("b1n4ry"), "{binary}");

    let missing = manager
        .secret_string("alertresponder/none")
        .await
        .unwrap_err();
    assert!(
        missing.contains("alertresponder/none") && missing.contains("ResourceNotFoundException"),
        "{missing}"
    );

    // Through the resolver: the error names the configuration key too.
    let secrets = Secrets::local(".").with_secrets_manager(Box::new(AwsSecretsManager::new(&sdk)));
    let ok = secrets
        .resolve(
            &SecretRef::Secret("alertresponder/vt".into()),
            "inspector[0].api_key",
        )
        .await
        .unwrap();
    assert_eq!(ok.expose(), "s3cr3t-value");
    let e = secrets
        .resolve(
            &SecretRef::Secret("alertresponder/none".into()),
            "inspector[1].api_key",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inspector[1].api_key") && e.contains("alertresponder/none"),
        "{e}"
    );
}
