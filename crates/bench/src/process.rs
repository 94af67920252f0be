//! Server processes under test: started with a fixed argv, their stderr drained (the
//! last lines kept for error messages), killed when the guard is dropped — on every
//! path out of the benchmark, errors included.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Lines of a server's stderr kept for error messages.
const TAIL_LINES: usize = 20;

/// A running server process, killed on drop.
pub struct ServerGuard {
    name: String,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl ServerGuard {
    /// Starts `command` with stderr piped; `watch` sees every stderr line as it comes.
    pub fn start(
        name: &str,
        mut command: Command,
        watch: impl FnMut(&str) + Send + 'static,
    ) -> anyhow::Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = tail.clone();
            let mut watch = watch;
            // Drained to the end so that a chatty server never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    watch(&line);
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
        Ok(Self {
            name: name.to_string(),
            child,
            tail,
        })
    }

    /// Fails if the process has exited, with its last stderr lines.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.tail());
        }
        Ok(())
    }

    /// The last lines it wrote on stderr.
    pub fn tail(&self) -> String {
        let t = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        t.iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Its resident memory in KiB, from /proc (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 free a moment ago (for servers that cannot be told port 0).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `url` until it answers 200, `server` dies, or `timeout` passes.
pub async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    server: &mut ServerGuard,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        server.check_running()?;
        if let Ok(resp) = client.get(url).send().await {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            bail!(
                "{} not ready at {url} after {timeout:?}:\n{}",
                server.name,
                server.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `alertresponder serve` on a port of its choosing with a config of only
/// `database` (written in `dir`), calls `on_line` with each line it prints, and waits
/// until it says where it listens and `/healthz` answers (at most `timeout` each).
/// Returns the server and its base URL.
pub async fn start_serve(
    bin: &std::path::Path,
    dir: &std::path::Path,
    database: &std::path::Path,
    client: &reqwest::Client,
    timeout: Duration,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> anyhow::Result<(ServerGuard, String)> {
    let config = dir.join("alertresponder.toml");
    // Default delays: the worker stays idle while alerts come in.
    let text = format!(
        "database = {}\n",
        serde_json::Value::String(database.display().to_string())
    );
    std::fs::write(&config, text).context("cannot write the serve config")?;
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env_remove("ALERTRESPONDER_API_TOKEN")
        .env_remove("ALERTRESPONDER_CONFIG");
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let mut tx = Some(tx);
    let mut server = ServerGuard::start("alertresponder serve", command, move |line| {
        on_line(line);
        if let Some(rest) = line.split("alertresponder listening on http://").nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            if let Some(tx) = tx.take() {
                let _ = tx.send(addr);
            }
        }
    })?;
    let addr = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(addr)) => addr,
        _ => {
            server.check_running()?;
            bail!(
                "alertresponder serve did not say where it listens:\n{}",
                server.tail()
            );
        }
    };
    let base = format!("http://{addr}");
    wait_ready(client, &format!("{base}/healthz"), &mut server, timeout).await?;
    Ok((server, base))
}
