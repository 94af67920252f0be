//! Test support (feature `testing`): a moto server per test on 127.0.0.1, SDK
//! configuration pointing at it, and an SQS queue subscribed to an SNS topic to read
//! exactly what a subscriber gets.
//!
//! moto comes from `.venv` (installed by `make venv`, which `make test` runs); set
//! `MOTO_SERVER` to use another binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sns::config::Credentials;

/// A moto server in server mode, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its port.
    pub port: u16,
    log: PathBuf,
    /// Where its recorder writes (moto's default is `moto_recording` in the working
    /// directory, which concurrent servers would share).
    recording: PathBuf,
}

/// Where `.venv/bin/NAME` is, searching up from this crate.
pub fn venv_bin(name: &str) -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join(".venv/bin").join(name);
        if candidate.exists() {
            return candidate;
        }
        if !dir.pop() {
            panic!(
                ".venv/bin/{name} not found above {}: run `make venv` (make test does) to install the test tools",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// One HTTP/1.1 request to moto; returns the status code and body. Plain std I/O on
/// purpose: it runs before and outside any async runtime (`Moto::start` is sync and is
/// called from async tests, where a blocking HTTP client would panic).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

impl Moto {
    /// Starts moto and waits until it answers. `execute_state_machine`: Step Functions
    /// executions really run (set before anything is created, as moto requires).
    pub fn start(execute_state_machine: bool) -> Moto {
        let bin = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| venv_bin("moto_server"));
        let port = free_port();
        let log = std::env::temp_dir().join(format!("moto-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let recording = std::env::temp_dir().join(format!("moto-{port}-recording.jsonl"));
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("moto log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            log,
            recording,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/moto-api/data.json", "") {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "moto did not answer within 60 s; its log:\n{}",
                    moto.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if execute_state_machine {
            let (status, body) = http(
                port,
                "POST",
                "/moto-api/config",
                r#"{"stepfunctions":{"execute_state_machine":true}}"#,
            )
            .expect("moto config");
            assert!((200..300).contains(&status), "moto config: {status} {body}");
        }
        moto
    }

    /// What moto printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SDK configuration for this server (region us-east-1, test credentials).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// Starts moto's recorder afresh: every request from now on is recorded (requests
    /// only: method, URL, headers and body; moto records no responses).
    pub fn start_recording(&self) {
        for path in [
            "/moto-api/recorder/reset-recording",
            "/moto-api/recorder/start-recording",
        ] {
            let (s, b) = http(self.port, "POST", path, "").expect("moto recorder");
            assert_eq!(s, 200, "moto recorder {path}: {b}");
        }
    }

    /// Stops the recorder and returns one JSON document per recorded request
    /// (`method`, `url`, `headers`, `body`, `body_encoded`: base64 when true).
    pub fn recorded_requests(&self) -> Vec<serde_json::Value> {
        let _ = http(self.port, "POST", "/moto-api/recorder/stop-recording", "");
        let (s, b) = http(
            self.port,
            "GET",
            "/moto-api/recorder/download-recording",
            "",
        )
        .expect("moto recorder");
        assert_eq!(s, 200, "moto recorder: {b}");
        b.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// SDK configuration for a local endpoint.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

/// An SQS queue subscribed to an SNS topic, to read what a subscriber receives.
pub struct Subscriber {
    sqs: aws_sdk_sqs::Client,
    /// The queue.
    pub queue_url: String,
}

/// What an SQS subscriber got from SNS: the message and its attributes.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message body (raw delivery).
    pub body: String,
    /// Message attributes by name (string values).
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl Subscriber {
    /// Creates queue `name` and subscribes it to `topic_arn` with raw delivery and an
    /// optional filter policy (JSON).
    pub async fn create(
        config: &SdkConfig,
        topic_arn: &str,
        name: &str,
        filter_policy: Option<&str>,
    ) -> Subscriber {
        let sqs = aws_sdk_sqs::Client::new(config);
        let sns = aws_sdk_sns::Client::new(config);
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attrs
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        let mut sub = sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true");
        if let Some(policy) = filter_policy {
            sub = sub.attributes("FilterPolicy", policy);
        }
        sub.send().await.expect("subscribe queue");
        Subscriber { sqs, queue_url }
    }

    /// A subscriber reading queue `queue_url`, which exists already (a stack made it).
    pub fn existing(config: &SdkConfig, queue_url: impl Into<String>) -> Subscriber {
        Subscriber {
            sqs: aws_sdk_sqs::Client::new(config),
            queue_url: queue_url.into(),
        }
    }

    /// One receive, waiting up to `wait` (whole seconds) for something to arrive:
    /// what did, deleted from the queue. The error has the SDK's whole chain of causes.
    pub async fn receive(&self, wait: Duration) -> Result<Vec<Delivered>, String> {
        let failed = |doing: &str, e: &dyn std::error::Error| {
            format!(
                "{doing} {}: {}",
                self.queue_url,
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        };
        let got = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(|e| failed("receiving from", &e))?;
        let mut out = Vec::new();
        for m in got.messages.unwrap_or_default() {
            let attributes = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect();
            out.push(Delivered {
                body: m.body.unwrap_or_default(),
                attributes,
            });
            if let Some(h) = m.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .map_err(|e| failed("deleting a message read from", &e))?;
            }
        }
        Ok(out)
    }

    /// Everything delivered until `quiet` passes with nothing new (deleting what it read).
    pub async fn drain(&self, quiet: Duration) -> Vec<Delivered> {
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            let got = self
                .receive(Duration::ZERO)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if got.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            last = Instant::now();
            out.extend(got);
        }
        out
    }
}

/// Creates SNS topic `name`; its ARN.
pub async fn create_topic(config: &SdkConfig, name: &str) -> String {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn")
}

/// A name unique within this test process: resources of concurrent tests never meet.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub mod stack_box;
pub mod walker;
