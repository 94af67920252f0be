//! [`Emulator`]: `cargo lambda watch` serving the workspace's binaries on a local
//! port, each invocation counted and timed (the box's functions, and `aws-cost`'s
//! measured durations).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::venv::CARGO_LAMBDA;

/// `cargo lambda watch` serving every binary of the workspace.
pub struct Emulator {
    child: Child,
    /// Its port.
    pub port: u16,
    log: PathBuf,
    http: reqwest::Client,
    /// Invocations made through [`Emulator::invoke`], by function.
    invocations: std::sync::Mutex<BTreeMap<String, u64>>,
    /// Each invocation made through [`Emulator::invoke`], in order: (function, the
    /// HTTP round trip to the emulator, answer read).
    timings: std::sync::Mutex<Vec<(String, Duration)>>,
}

impl Emulator {
    pub(crate) fn start(root: &Path, env_file: &Path, port: u16) -> Emulator {
        let log = std::env::temp_dir().join(format!("cargo-lambda-watch-{port}.log"));
        let out = std::fs::File::create(&log).expect("emulator log");
        let venv = CARGO_LAMBDA.path();
        let path = format!(
            "{}:{}",
            venv.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(&venv)
            .args([
                "lambda",
                "watch",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
                "--ignore-changes",
                // Generous: the first invocation of a function compiles it (on a
                // clean checkout, with every dependency).
                "--timeout",
                "900",
                "--env-file",
            ])
            .arg(env_file)
            .current_dir(root)
            .env("PATH", path)
            // Its own target dir: cargo-lambda's build environment differs from the
            // test's (build scripts such as ring's rerun), and sharing one dir made
            // each side rebuild the other's dependencies on every run.
            .env("CARGO_TARGET_DIR", root.join("target/emulator"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start cargo lambda watch");
        let emulator = Emulator {
            child,
            port,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(900))
                .build()
                .expect("http client"),
            invocations: Default::default(),
            timings: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                panic!(
                    "cargo lambda watch did not listen within 120 s:\n{}",
                    emulator.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        emulator
    }

    /// What the emulator (and the functions) printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times [`Emulator::invoke`] invoked each function (not the calls the
    /// functions make to the emulator themselves, e.g. the harness's inspectors).
    pub fn invocations(&self) -> BTreeMap<String, u64> {
        self.invocations
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Every invocation [`Emulator::invoke`] made so far, in order: (function, how long
    /// the HTTP round trip to the emulator took, from sending the payload to having read
    /// the answer). Failed invocations included.
    pub fn timings(&self) -> Vec<(String, Duration)> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Invokes `function` synchronously; `Err((errorType, errorMessage))` for a
    /// function error.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, (String, String)> {
        if let Ok(mut m) = self.invocations.lock() {
            *m.entry(function.to_string()).or_default() += 1;
        }
        let started = Instant::now();
        let out = self.invoke_once(function, payload).await;
        if let Ok(mut t) = self.timings.lock() {
            t.push((function.to_string(), started.elapsed()));
        }
        out
    }

    async fn invoke_once(
        &self,
        function: &str,
        payload: &Value,
    ) -> Result<Value, (String, String)> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        let resp = self
            .http
            .post(url)
            .json(payload)
            .send()
            .await
            .map_err(|e| ("Emulator".to_string(), format!("{e}\n{}", self.log_text())))?;
        let failed =
            resp.headers().contains_key("x-amz-function-error") || !resp.status().is_success();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let error_type = body.get("errorType").and_then(Value::as_str);
        if failed || error_type.is_some() {
            return Err((
                error_type.unwrap_or("Unknown").to_string(),
                body.get("errorMessage")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        Ok(body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // cargo-lambda runs the functions as its children: end the whole group.
        let _ = Command::new("pkill")
            .args(["-TERM", "-P", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
