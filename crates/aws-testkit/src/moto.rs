//! A moto server per test on 127.0.0.1, and SDK configuration pointing at it.
//!
//! moto comes from `.venv` ([`crate::venv::MOTO`]); set `MOTO_SERVER` to use another
//! `moto_server` binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sns::config::Credentials;

use crate::venv::{fail, MOTO};

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

/// moto's server with its requests handled one at a time (see [`Moto::start_serialized`]).
const SERIALIZED_MOTO: &str = r#"
import sys, threading
from moto.moto_server import werkzeug_app
from moto import server
lock = threading.Lock()
call = werkzeug_app.DomainDispatcherApplication.__call__
def serialized(self, environ, start_response):
    with lock:
        return call(self, environ, start_response)
werkzeug_app.DomainDispatcherApplication.__call__ = serialized
server.main(sys.argv[1:])
"#;

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
    /// Without moto installed, fails the test saying how to install it.
    pub fn start(execute_state_machine: bool) -> Moto {
        let bin = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| MOTO.path());
        Moto::launch(&bin, &[], execute_state_machine)
    }

    /// Starts moto with its requests handled one at a time, for the tests of concurrent
    /// callers.
    ///
    /// moto's server is threaded and not linearizable: TransactWriteItems snapshots a
    /// table, checks and writes, and on a failed condition puts the snapshot back,
    /// undoing whatever another thread committed meanwhile (a winner told `Published`
    /// whose write is then gone). DynamoDB applies each request atomically; one request
    /// at a time is the closest moto gets, and the callers still interleave request by
    /// request.
    pub fn start_serialized() -> Moto {
        // The venv's Python has moto; `MOTO_SERVER` does not say which Python would.
        let python = MOTO.path().with_file_name("python3");
        Moto::launch(&python, &["-c", SERIALIZED_MOTO], false)
    }

    /// Runs `program ARGS -H 127.0.0.1 -p PORT` and waits until it answers.
    fn launch(program: &Path, args: &[&str], execute_state_machine: bool) -> Moto {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("moto-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let recording = std::env::temp_dir().join(format!("moto-{port}-recording.jsonl"));
        let child = Command::new(program)
            .args(args)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("moto log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                fail(&format!(
                    "cannot start moto ({}): {e}; run `make venv` to install it, or set MOTO_SERVER",
                    program.display()
                ))
            });
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
