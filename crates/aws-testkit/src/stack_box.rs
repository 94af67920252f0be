//! The stack in a box: moto stands in for DynamoDB, SNS, SQS and Step Functions;
//! the five real binaries run under cargo-lambda's local Lambda emulator
//! (`cargo lambda watch`); the delay state machine is the one `template.yaml`
//! deploys, walked state by state ([`crate::walker`]). What AWS would do between
//! them, the box does the same way, with the template's subscriptions: an SNS event
//! to the receptor for each published alert; when inspectors are configured (else the
//! dispatcher has no task topic, as in the template), an SNS event to the inspector
//! harness for each task on the task topic; when an emitter is configured, an SNS
//! event to the emitter fan-out for each report on the report topic. The plugins'
//! configuration file (and the files it names) is uploaded to a moto S3 bucket and
//! named by `CONFIG_S3_URI`, as `make deploy` does.
//!
//! A test drives it by hand (`publish_alert`, `executions`, `walk`) to look at each
//! state, or lets [`StackInABox::drive`] do what AWS does on its own: every message
//! published to the ingest topic goes to the receptor, every execution started is
//! walked when its Waits are due, every task goes to the harness and every report to
//! the fan-out. Then the box can be tested from outside, as a deployed stack is (the
//! tester's scenarios do).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use chrono::Utc;
use serde_json::{json, Value};

pub use crate::emulator::Emulator;
use crate::venv::CARGO_LAMBDA;
use crate::walker::{self, Definition, TaskRunner, Walk};
use crate::{create_tables, create_topic, unique, Delivered, Moto, Subscriber};

/// The workspace root (where `template.yaml` is).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("template.yaml").exists() {
        if !dir.pop() {
            panic!(
                "template.yaml not found above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
    dir
}

/// A file of the configuration bundle: its path relative to the configuration file,
/// and its bytes.
pub type ConfigFile = (String, Vec<u8>);

/// Settings of a box.
#[derive(Debug, Clone)]
pub struct BoxOptions {
    /// INSPECTION_DELAY_SECONDS.
    pub inspection_delay_secs: u64,
    /// REVIEW_DELAY_SECONDS.
    pub review_delay_secs: u64,
    /// The configuration file's text (`[[inspector]]`, `[reviewer]`, `[[emitter]]`);
    /// [`BoxOptions::policy`] and [`BoxOptions::webhook_url`] are added to it.
    pub config: Option<String>,
    /// Files the configuration names, at their paths relative to it.
    pub config_files: Vec<ConfigFile>,
    /// A Rego policy: uploaded as `policy.rego` beside the configuration, which gets
    /// `[reviewer] policy = "policy.rego"`.
    pub policy: Option<String>,
    /// INSPECTOR_FUNCTIONS: functions the harness invokes (served by the emulator).
    pub inspector_functions: Vec<String>,
    /// REVIEWER_FUNCTIONS: functions the reviewer invoker invokes (served by the emulator).
    pub reviewer_functions: Vec<String>,
    /// A webhook: an `[[emitter]] name = "webhook"` of the configuration. With an
    /// emitter in the configuration, the fan-out is subscribed to the report topic.
    pub webhook_url: Option<String>,
    /// REVIEW_WAIT_SECONDS: how long a review waits past its due time for inspections
    /// still running (the walker retries at [`walker::RETRY_PACE`] times Step
    /// Functions' speed: at most 600 / RETRY_PACE = 12 s is covered).
    pub review_wait_secs: u64,
    /// Tasks are not handed to the harness on their own: a slow or lost delivery. The
    /// test hands them over with [`StackInABox::deliver_tasks`], or never.
    pub hold_tasks: bool,
}

impl Default for BoxOptions {
    fn default() -> Self {
        Self {
            inspection_delay_secs: 1,
            review_delay_secs: 2,
            config: None,
            config_files: vec![],
            policy: None,
            inspector_functions: vec![],
            reviewer_functions: vec![],
            webhook_url: None,
            review_wait_secs: 4,
            hold_tasks: false,
        }
    }
}

/// The resources of the box, named as the template's outputs would be.
#[derive(Debug, Clone)]
pub struct Resources {
    /// ReportTable.
    pub report_table: String,
    /// ErrorTable.
    pub error_table: String,
    /// IngestTopic.
    pub ingest_topic: String,
    /// TaskTopic.
    pub task_topic: String,
    /// ReportTopic.
    pub report_topic: String,
    /// ErrorTopic.
    pub error_topic: String,
    /// DelayStateMachine.
    pub state_machine: String,
}

impl BoxOptions {
    /// The configuration file's text and its files, `None` without plugin sections.
    pub fn config_bundle(&self) -> Option<(String, Vec<ConfigFile>)> {
        let mut text = self.config.clone().unwrap_or_default();
        let mut files = self.config_files.clone();
        if let Some(policy) = &self.policy {
            files.push(("policy.rego".into(), policy.clone().into_bytes()));
            text.push_str("\n[reviewer]\npolicy = \"policy.rego\"\n");
        }
        if let Some(url) = &self.webhook_url {
            // A JSON string is a TOML basic string.
            let quoted = serde_json::to_string(url).expect("a string");
            text.push_str(&format!(
                "\n[[emitter]]\nname = \"webhook\"\nurl = {quoted}\n"
            ));
        }
        (!text.trim().is_empty() || !files.is_empty()).then_some((text, files))
    }

    /// Whether the stack has an inspector (`make deploy` counts them in the file).
    fn has_inspectors(&self) -> bool {
        !self.inspector_functions.is_empty()
            || self
                .config_bundle()
                .is_some_and(|(text, _)| text.contains("[[inspector]]"))
    }

    /// Whether the stack has an emitter.
    fn has_emitters(&self) -> bool {
        self.config_bundle()
            .is_some_and(|(text, _)| text.contains("[[emitter]]"))
    }
}

/// moto + the emulator + the template's state machine.
pub struct StackInABox {
    /// The AWS stand-in.
    pub moto: Moto,
    /// SDK configuration for it.
    pub sdk: SdkConfig,
    /// The resources.
    pub resources: Resources,
    /// The functions.
    pub emulator: Emulator,
    /// Every report message, as a subscriber gets it.
    pub reports: Subscriber,
    /// Report messages with a filter policy `severity = urgent`.
    pub urgent_reports: Subscriber,
    /// Every error message.
    pub errors: Subscriber,
    /// The harness's subscription to the task topic (only with inspectors).
    tasks: Option<Subscriber>,
    /// The emitter fan-out's subscription to the report topic (only with a webhook).
    fanout: Option<Subscriber>,
    hold_tasks: bool,
    /// What is published to the ingest topic, for [`StackInABox::drive`].
    ingest: Subscriber,
    definition: Definition,
    /// DefinitionSubstitutions: name → logical ID.
    substitutions: BTreeMap<String, String>,
    /// Function logical ID → binary.
    binaries: BTreeMap<String, String>,
    /// Topic logical ID → ARN.
    topics: BTreeMap<String, String>,
    _env_dir: tempfile::TempDir,
    sfn: aws_sdk_sfn::Client,
    counter: std::sync::atomic::AtomicU64,
}

/// The background work of [`StackInABox::drive`]; stops when dropped.
pub struct Driver {
    handle: tokio::task::JoinHandle<()>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Driver {
    /// What failed so far: a function's error, a walk that failed or ended in `Fail`.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Function logical ID → `BuildProperties.Binary`, from the template.
pub fn function_binaries(template_yaml: &str) -> BTreeMap<String, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template_yaml).expect("template.yaml parses");
    let mut out = BTreeMap::new();
    if let Some(serde_yaml::Value::Mapping(res)) = doc.get("Resources") {
        for (k, v) in res {
            let binary = v
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(|b| b.as_str());
            if let (Some(id), Some(b)) = (k.as_str(), binary) {
                out.insert(id.to_string(), b.to_string());
            }
        }
    }
    out
}

/// An SNS event as Lambda receives it from a subscription (the shape of
/// `tests/fixtures/sns-event.json`).
pub fn sns_event(
    topic_arn: &str,
    message_id: &str,
    message: &str,
    attributes: &BTreeMap<String, String>,
) -> Value {
    let attrs: serde_json::Map<String, Value> = attributes
        .iter()
        .map(|(k, v)| (k.clone(), json!({"Type": "String", "Value": v})))
        .collect();
    json!({
        "Records": [{
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{topic_arn}:00000000-0000-0000-0000-000000000000"),
            "EventSource": "aws:sns",
            "Sns": {
                "Type": "Notification",
                "MessageId": message_id,
                "TopicArn": topic_arn,
                "Subject": null,
                "Message": message,
                "Timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "SignatureVersion": "1",
                "Signature": "EXAMPLE",
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
                "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": attrs
            }
        }]
    })
}

/// Uploads a configuration bundle to a new bucket of moto, as `make deploy` does to
/// the deployment bucket; its `CONFIG_S3_URI`.
pub async fn upload_config(
    sdk: &SdkConfig,
    stack: &str,
    text: &str,
    files: &[ConfigFile],
) -> String {
    let s3 = alertresponder_aws::config_file::s3_client(sdk);
    let bucket = format!("{stack}-config").to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the configuration bucket");
    let prefix = format!("box/config/{}", "0".repeat(64));
    let mut objects = vec![("alertresponder.toml".to_string(), text.as_bytes().to_vec())];
    objects.extend(files.iter().cloned());
    for (path, bytes) in objects {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("{prefix}/{path}"))
            .body(bytes.into())
            .send()
            .await
            .expect("upload the configuration");
    }
    format!("s3://{bucket}/{prefix}/alertresponder.toml")
}

impl StackInABox {
    /// Starts moto, creates the stack's resources with SDK calls (tables, topics,
    /// subscriber queues, the state machine from `template.yaml`) and starts the
    /// emulator with the functions' environment.
    pub async fn start(options: BoxOptions) -> StackInABox {
        let root = workspace_root();
        let template = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
        let (definition, substitutions) =
            walker::definition_from_template(&template).expect("state machine definition");
        let binaries = function_binaries(&template);
        let moto = Moto::start(false);
        // Before any resource is made: without the emulator, fail at once saying how to
        // get it.
        CARGO_LAMBDA.path();
        let sdk = moto.sdk_config().await;
        let stack = unique("box");
        let report_table = format!("{stack}-reports");
        let error_table = format!("{stack}-errors");
        create_tables(
            &aws_sdk_dynamodb::Client::new(&sdk),
            &report_table,
            &error_table,
        )
        .await
        .expect("create tables");
        let mut topics = BTreeMap::new();
        for logical in ["IngestTopic", "TaskTopic", "ReportTopic", "ErrorTopic"] {
            let arn = create_topic(&sdk, &format!("{stack}-{logical}")).await;
            topics.insert(logical.to_string(), arn);
        }
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let asl = serde_json::to_string(&definition.asl).expect("definition");
        let state_machine = sfn
            .create_state_machine()
            .name(format!("{stack}-delay"))
            .definition(asl)
            .role_arn("arn:aws:iam::123456789012:role/delay-state-machine")
            .send()
            .await
            .expect("create state machine")
            .state_machine_arn;
        let resources = Resources {
            report_table,
            error_table,
            ingest_topic: topics["IngestTopic"].clone(),
            task_topic: topics["TaskTopic"].clone(),
            report_topic: topics["ReportTopic"].clone(),
            error_topic: topics["ErrorTopic"].clone(),
            state_machine,
        };
        let reports = Subscriber::create(
            &sdk,
            &resources.report_topic,
            &format!("{stack}-reports"),
            None,
        )
        .await;
        let urgent_reports = Subscriber::create(
            &sdk,
            &resources.report_topic,
            &format!("{stack}-urgent"),
            Some(r#"{"severity": ["urgent"]}"#),
        )
        .await;
        let errors = Subscriber::create(
            &sdk,
            &resources.error_topic,
            &format!("{stack}-errors"),
            None,
        )
        .await;
        // The template's conditional subscriptions: the harness only when inspectors
        // are configured, the fan-out only when an emitter is.
        let tasks = if !options.has_inspectors() {
            None
        } else {
            Some(
                Subscriber::create(&sdk, &resources.task_topic, &format!("{stack}-tasks"), None)
                    .await,
            )
        };
        let fanout = match options.has_emitters() {
            true => Some(
                Subscriber::create(
                    &sdk,
                    &resources.report_topic,
                    &format!("{stack}-fanout"),
                    None,
                )
                .await,
            ),
            false => None,
        };
        let ingest = Subscriber::create(
            &sdk,
            &resources.ingest_topic,
            &format!("{stack}-ingest"),
            None,
        )
        .await;
        let env_dir = tempfile::TempDir::new().expect("env dir");
        let env_file = env_dir.path().join("lambda.env");
        // The emulator serves the functions' Lambda API too: inspector and reviewer
        // functions are invoked there, everything else goes to moto.
        let mut env = vec![
            ("AWS_ENDPOINT_URL".to_string(), moto.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("RUST_LOG".into(), "info".into()),
            ("REPORT_TABLE".into(), resources.report_table.clone()),
            ("ERROR_TABLE".into(), resources.error_table.clone()),
            ("REPORT_TOPIC_ARN".into(), resources.report_topic.clone()),
            ("ERROR_TOPIC_ARN".into(), resources.error_topic.clone()),
            ("STATE_MACHINE_ARN".into(), resources.state_machine.clone()),
            (
                "INSPECTION_DELAY_SECONDS".into(),
                options.inspection_delay_secs.to_string(),
            ),
            (
                "REVIEW_DELAY_SECONDS".into(),
                options.review_delay_secs.to_string(),
            ),
            (
                "INSPECTOR_FUNCTIONS".into(),
                options.inspector_functions.join(","),
            ),
            ("INSPECTOR_TIMEOUT_SECONDS".into(), "120".into()),
            (
                "REVIEWER_FUNCTIONS".into(),
                options.reviewer_functions.join(","),
            ),
            (
                "REVIEW_WAIT_SECONDS".into(),
                options.review_wait_secs.to_string(),
            ),
        ];
        // As the template: no inspector, no task topic (a claim is inspected at once).
        if options.has_inspectors() {
            env.push(("TASK_TOPIC_ARN".into(), resources.task_topic.clone()));
        }
        if let Some((text, files)) = options.config_bundle() {
            let uri = upload_config(&sdk, &stack, &text, &files).await;
            env.push(("CONFIG_S3_URI".into(), uri));
        }
        // The port is known only once the emulator listens; reserve one first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        env.push((
            "AWS_ENDPOINT_URL_LAMBDA".into(),
            format!("http://127.0.0.1:{port}"),
        ));
        // dotenv format: a value with newlines or quotes goes in double quotes, escaped.
        let text: String = env
            .iter()
            .map(|(k, v)| {
                if v.contains(['\n', '"', '\\', '#', ' ']) {
                    let escaped = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{escaped}\"\n")
                } else {
                    format!("{k}={v}\n")
                }
            })
            .collect();
        std::fs::write(&env_file, text).expect("env file");
        let emulator = Emulator::start(&root, &env_file, port);
        StackInABox {
            moto,
            sdk: sdk.clone(),
            resources,
            emulator,
            reports,
            urgent_reports,
            errors,
            tasks,
            fanout,
            hold_tasks: options.hold_tasks,
            ingest,
            definition,
            substitutions,
            binaries,
            topics,
            _env_dir: env_dir,
            sfn,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A new SQS queue subscribed to the report topic with `filter_policy`.
    pub async fn subscribe_reports(&self, filter_policy: Option<&str>) -> Subscriber {
        Subscriber::create(
            &self.sdk,
            &self.resources.report_topic,
            &unique("box-subscriber"),
            filter_policy,
        )
        .await
    }

    /// A fresh SNS-like message ID.
    pub fn message_id(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("00000000-0000-4000-8000-{:012x}", n + 1)
    }

    /// Publishes an alert as SNS would deliver it to the receptor; returns the receptor's answer.
    pub async fn publish_alert(&self, alert: &str) -> Result<Value, (String, String)> {
        let event = sns_event(
            &self.resources.ingest_topic,
            &self.message_id(),
            alert,
            &BTreeMap::new(),
        );
        self.emulator.invoke("receptor", &event).await
    }

    /// Hands every task on the task topic to the inspector harness, as SNS would, until
    /// no new task appears; returns how many were handed over. Panics if the harness fails.
    pub async fn deliver_tasks(&self) -> usize {
        self.try_deliver_tasks()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.emulator.log_text()))
    }

    /// [`StackInABox::deliver_tasks`], with the harness's failure as an error. Without
    /// inspectors the harness is not subscribed: nothing to hand over.
    pub async fn try_deliver_tasks(&self) -> Result<usize, String> {
        let Some(tasks) = &self.tasks else {
            return Ok(0);
        };
        let mut n = 0;
        loop {
            let got: Vec<Delivered> = tasks.drain(Duration::from_millis(300)).await;
            if got.is_empty() {
                return Ok(n);
            }
            for d in got {
                self.deliver(&self.resources.task_topic, "inspector-harness", &d)
                    .await?;
                n += 1;
            }
        }
    }

    /// Hands every report on the report topic to the emitter fan-out, as SNS would when
    /// it is subscribed (a webhook is configured); returns how many were handed over.
    pub async fn try_deliver_reports(&self) -> Result<usize, String> {
        let Some(fanout) = &self.fanout else {
            return Ok(0);
        };
        let mut n = 0;
        for d in fanout.drain(Duration::from_millis(300)).await {
            self.deliver(&self.resources.report_topic, "emitter-fanout", &d)
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Invokes `function` with `message` as SNS delivers it from `topic`.
    async fn deliver(
        &self,
        topic: &str,
        function: &str,
        message: &Delivered,
    ) -> Result<(), String> {
        let event = sns_event(
            topic,
            &self.message_id(),
            &message.body,
            &message.attributes,
        );
        self.emulator
            .invoke(function, &event)
            .await
            .map(|_| ())
            .map_err(|e| format!("{function} failed: {e:?}"))
    }

    /// Does what AWS does between the functions, in the background, until the returned
    /// [`Driver`] is dropped: messages published to the ingest topic go to the receptor,
    /// tasks to the harness and reports to the fan-out (when subscribed), and each
    /// execution started is walked (concurrently, each sleeping through its Waits).
    /// What fails is kept in [`Driver::failures`].
    pub fn drive(self: &std::sync::Arc<Self>) -> Driver {
        let failures: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let sib = self.clone();
        let failed = failures.clone();
        let fail = move |e: String| {
            tracing::error!(error = %e, "stack in a box");
            failed.lock().map(|mut f| f.push(e)).ok();
        };
        let handle = tokio::spawn(async move {
            let mut walked = std::collections::HashSet::new();
            loop {
                for alert in sib.ingest.drain(Duration::from_millis(100)).await {
                    if let Err(e) = sib
                        .deliver(&sib.resources.ingest_topic, "receptor", &alert)
                        .await
                    {
                        fail(e);
                    }
                }
                if !sib.hold_tasks {
                    if let Err(e) = sib.try_deliver_tasks().await {
                        fail(e);
                    }
                }
                if let Err(e) = sib.try_deliver_reports().await {
                    fail(e);
                }
                let started = sib.new_executions(&mut walked).await.unwrap_or_else(|e| {
                    // Transient (moto busy): the next round lists them again.
                    tracing::warn!(error = %e, "stack in a box");
                    vec![]
                });
                for (name, input) in started {
                    let (sib, fail) = (sib.clone(), fail.clone());
                    tokio::spawn(async move {
                        let walk = walker::walk(
                            &sib.definition,
                            &*sib,
                            &name,
                            input,
                            Duration::from_secs(120),
                        );
                        match walk.await {
                            Ok(w) if w.end == "Fail" => {
                                fail(format!("execution {name} failed: {}", w.output))
                            }
                            Ok(_) => {}
                            Err(e) => fail(format!("walk of {name} failed: {e}")),
                        }
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Driver { handle, failures }
    }

    /// Executions started so far: (name, input), oldest first.
    pub async fn executions(&self) -> Vec<(String, Value)> {
        self.new_executions(&mut Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Executions started that are not in `known` yet (added to it): (name, input),
    /// oldest first.
    async fn new_executions(
        &self,
        known: &mut std::collections::HashSet<String>,
    ) -> Result<Vec<(String, Value)>, String> {
        let list = self
            .sfn
            .list_executions()
            .state_machine_arn(&self.resources.state_machine)
            .send()
            .await
            .map_err(|e| format!("ListExecutions: {e}"))?;
        let mut out = Vec::new();
        for e in list.executions {
            if known.contains(&e.name) {
                continue;
            }
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(&e.execution_arn)
                .send()
                .await
                .map_err(|err| format!("DescribeExecution {}: {err}", e.name))?;
            let input = match d.input.as_deref() {
                Some(i) => serde_json::from_str(i)
                    .map_err(|err| format!("input of {} is not JSON: {err}", e.name))?,
                None => Value::Null,
            };
            known.insert(e.name.clone());
            out.push((e.name, input, e.start_date));
        }
        out.sort_by(|a, b| a.2.secs().cmp(&b.2.secs()).then(a.0.cmp(&b.0)));
        Ok(out.into_iter().map(|(n, i, _)| (n, i)).collect())
    }

    /// Walks execution `name` (its input from Step Functions) through the template's
    /// state machine with the real functions.
    pub async fn walk(&self, name: &str, input: Value) -> Walk {
        walker::walk(&self.definition, self, name, input, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("walk of {name} failed: {e}\n{}", self.emulator.log_text()))
    }

    /// [`StackInABox::walk`] with another runner (one that wraps the box to step in
    /// between states: deliver held tasks, fail a call).
    pub async fn walk_with(&self, runner: &dyn TaskRunner, name: &str, input: Value) -> Walk {
        walker::walk(
            &self.definition,
            runner,
            name,
            input,
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("walk of {name} failed: {e}\n{}", self.emulator.log_text()))
    }

    fn binary_of(&self, substitution: &str) -> Result<&str, (String, String)> {
        let logical = self.substitutions.get(substitution).ok_or_else(|| {
            (
                "Box".to_string(),
                format!("no DefinitionSubstitution {substitution}"),
            )
        })?;
        self.binaries
            .get(logical)
            .map(String::as_str)
            .ok_or_else(|| {
                (
                    "Box".to_string(),
                    format!("{logical} is not a function of the template"),
                )
            })
    }
}

#[async_trait::async_trait]
impl TaskRunner for StackInABox {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, (String, String)> {
        let binary = self.binary_of(function)?.to_string();
        let out = self.emulator.invoke(&binary, &payload).await;
        if binary == "dispatcher" && out.is_ok() && !self.hold_tasks {
            // SNS delivers the dispatched tasks to the harness at once.
            self.try_deliver_tasks()
                .await
                .map_err(|e| ("Box".to_string(), e))?;
        }
        if binary == "reviewer-invoker" && out.is_ok() {
            // SNS delivers the published report to the emitter fan-out at once.
            self.try_deliver_reports()
                .await
                .map_err(|e| ("Box".to_string(), e))?;
        }
        out
    }

    async fn publish(&self, topic: &str, message: Value) -> Result<Value, (String, String)> {
        let logical = self.substitutions.get(topic).ok_or_else(|| {
            (
                "Box".to_string(),
                format!("no DefinitionSubstitution {topic}"),
            )
        })?;
        let arn = self.topics.get(logical).ok_or_else(|| {
            (
                "Box".to_string(),
                format!("{logical} is not a topic of the box"),
            )
        })?;
        let text = match message {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let out = aws_sdk_sns::Client::new(&self.sdk)
            .publish()
            .topic_arn(arn)
            .message(text)
            .send()
            .await
            .map_err(|e| ("SNS.Publish".to_string(), e.to_string()))?;
        Ok(json!({"MessageId": out.message_id}))
    }
}
