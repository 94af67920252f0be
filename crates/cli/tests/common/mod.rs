//! Shared helpers of the end-to-end tests: the real `alertresponder` binary, the
//! example plugins, and a `serve` process that is killed when dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_alertresponder")
}

/// The repository's `examples/` directory.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .canonicalize()
        .unwrap()
}

/// A config using the example inspectors and policy, short delays, and a file emitter
/// `reports.jsonl` in `dir`; `extra` is appended.
pub fn write_config(dir: &Path, delays: (&str, &str), extra: &str) -> PathBuf {
    let ex = examples();
    let text = format!(
        r#"
database = "{db}"
inspection_delay = "{inspect}"
review_delay = "{review}"
aggregation_window = "3h"
[[inspector]]
name = "threat-intel"
command = ["{ex}/inspectors/threat-intel.py"]
types = ["ipaddr", "domain", "filehashvalue"]
timeout = "10s"
[[inspector]]
name = "user-directory"
command = ["{ex}/inspectors/user-directory.py"]
types = ["username"]
[reviewer]
policy = "{ex}/policy.rego"
[[emitter]]
name = "file"
file = "{out}"
{extra}
"#,
        db = dir.join("ar.db").display(),
        inspect = delays.0,
        review = delays.1,
        ex = ex.display(),
        out = dir.join("reports.jsonl").display(),
    );
    let path = dir.join("alertresponder.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads a JSON-lines file (missing file: no lines).
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls `f` until it is true or `deadline` passes, then panics saying what it waited for.
pub fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > deadline {
            panic!("gave up after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GETs `url` and decodes its JSON body.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// A running `alertresponder serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `serve` with `config` on an ephemeral loopback port and waits until it listens.
    pub fn start(config: &Path, extra_args: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                log2.lock().unwrap().push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start; its log: {:?}", log.lock().unwrap());
            }
        };
        Server { child, base, log }
    }

    /// Kills the process at once (SIGKILL): no graceful shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
