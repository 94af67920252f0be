//! Part 2: alerts per second a real `alertresponder serve` takes over HTTP, beside
//! Prometheus Alertmanager fed the same alerts, in batches of 100 and one per request.
//!
//! Each run gets a fresh server (fresh database or storage) so that runs do not weigh
//! on each other. Default delays keep the worker idle: only ingest is measured.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;

use crate::alerts::{alertmanager_alert, ingest_alert};
use crate::figures::{self, duration, per_second, percentiles};
use crate::process::{self, ServerGuard};
use crate::{alertmanager, BenchOptions};

/// Alerts per request in batch mode.
const BATCH: usize = 100;

/// How alerts are packed into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// [`BATCH`] alerts per request.
    Batch,
    /// One alert per request.
    Single,
}

impl Mode {
    fn tag(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::Single => "single",
        }
    }

    fn label(self) -> String {
        match self {
            Mode::Batch => format!("batches of {BATCH}"),
            Mode::Single => "one per request".into(),
        }
    }
}

/// One request body and the alerts it carries.
struct Body {
    bytes: Bytes,
    alerts: usize,
}

/// What one load run measured.
struct LoadResult {
    alerts_ok: usize,
    requests: usize,
    elapsed: Duration,
    errors: usize,
    first_error: Option<String>,
    latency: hdrhistogram::Histogram<u64>,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        figures::rate(self.alerts_ok, self.elapsed)
    }

    fn print(&self, who: &str, mode: Mode, extra: &str) {
        println!(
            "  {who:<15} {:<16} {} alerts/s  ({} alerts in {}, {} requests, {} HTTP errors; request {}){extra}",
            mode.label(),
            per_second(self.rate()),
            self.alerts_ok,
            duration(self.elapsed),
            self.requests,
            self.errors,
            percentiles(&self.latency)
        );
        if let Some(e) = &self.first_error {
            println!("    first error: {e}");
        }
    }
}

/// Runs part 2 and prints its figures.
pub async fn run(opts: &BenchOptions) -> anyhow::Result<()> {
    let n = opts.ingest;
    let keys = opts.keys.min(n);
    let clients = opts.clients;
    println!("== Part 2: HTTP ingest, alertresponder serve beside Prometheus Alertmanager ==");
    println!(
        "{n} alerts per run over {keys} alert keys; {clients} concurrent clients sharing one \
         keep-alive HTTP client; a fresh server per run; client and server share the machine's cores"
    );
    println!(
        "AlertResponder commits each alert to SQLite (WAL, synchronous=NORMAL) before answering 202; \
         Alertmanager keeps alerts in memory and answers 200"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot build the HTTP client")?;
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let now = Utc::now();

    let serve_bin = serve_binary()?;
    let mut ours = Vec::new();
    for mode in [Mode::Batch, Mode::Single] {
        let run_dir = dir.path().join(format!("alertresponder-{}", mode.tag()));
        std::fs::create_dir_all(&run_dir)?;
        let lines = Arc::new(AtomicU64::new(0));
        let (mut server, base) = start_serve(&serve_bin, &run_dir, &client, lines.clone()).await?;
        let bodies = bodies(mode, n, false, |i| ingest_alert(mode.tag(), i, keys, now));
        let before = lines.load(Ordering::Relaxed);
        let result = load(
            &client,
            &format!("{base}/v1/alerts"),
            bodies,
            StatusCode::ACCEPTED,
            clients,
        )
        .await;
        server.check_running()?;
        let extra = format!(
            "; server RSS {}; {} stderr log lines",
            rss(&server),
            lines.load(Ordering::Relaxed) - before
        );
        drop(server);
        result.print("AlertResponder", mode, &extra);
        ours.push((mode, result.rate()));
    }

    let theirs = match alertmanager::ensure_installed().await {
        Err(why) => {
            println!("  Alertmanager comparison SKIPPED: {why}");
            return Ok(());
        }
        Ok(binary) => {
            println!("  Alertmanager: {}", alertmanager::version(&binary));
            let mut theirs = Vec::new();
            for mode in [Mode::Batch, Mode::Single] {
                let run_dir = dir.path().join(format!("alertmanager-{}", mode.tag()));
                std::fs::create_dir_all(&run_dir)?;
                let (mut server, base) = alertmanager::start(&binary, &run_dir, &client).await?;
                let bodies = bodies(mode, n, true, |i| {
                    alertmanager_alert(mode.tag(), i, keys, now)
                });
                // Alertmanager takes only arrays, so "one per request" is an array of one.
                let result = load(
                    &client,
                    &format!("{base}/api/v2/alerts"),
                    bodies,
                    StatusCode::OK,
                    clients,
                )
                .await;
                server.check_running()?;
                let extra = format!("; server RSS {}", rss(&server));
                drop(server);
                result.print("Alertmanager", mode, &extra);
                theirs.push((mode, result.rate()));
            }
            theirs
        }
    };
    let ratio = |mode: Mode| {
        let a = ours
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0.0, |(_, r)| *r);
        let b = theirs
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0.0, |(_, r)| *r);
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "n/a".into()
        }
    };
    println!(
        "  ratio AlertResponder/Alertmanager (alerts/s): batches of {BATCH} {}, one per request {}",
        ratio(Mode::Batch),
        ratio(Mode::Single)
    );
    println!(
        "  note: Alertmanager merges alerts with equal label sets, so it ends up holding {keys} alerts; \
         AlertResponder stores all {n} (aggregated into {keys} reports)"
    );
    Ok(())
}

fn rss(server: &ServerGuard) -> String {
    server
        .rss_kib()
        .map_or_else(|| "unknown".into(), |k| format!("{} MiB", k / 1024))
}

/// The `alertresponder` binary beside this one (`target/release` for a release bench).
fn serve_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe
        .parent()
        .context("this program's path has no directory")?;
    let bin = dir.join(format!("alertresponder{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        bail!(
            "{} is missing: build it first with `cargo build{profile} -p alertresponder`",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts `alertresponder serve` on an ephemeral loopback port with a minimal config in
/// `dir`; returns it and its base URL once it listens. `lines` counts its stderr lines.
async fn start_serve(
    bin: &Path,
    dir: &Path,
    client: &reqwest::Client,
    lines: Arc<AtomicU64>,
) -> anyhow::Result<(ServerGuard, String)> {
    let database = dir.join("alertresponder.db");
    process::start_serve(
        bin,
        dir,
        &database,
        client,
        Duration::from_secs(30),
        move |_| {
            lines.fetch_add(1, Ordering::Relaxed);
        },
    )
    .await
}

/// The request bodies of a run: `n` alerts made by `alert`, packed by `mode`; one alert
/// goes bare unless `array_of_one`.
fn bodies(
    mode: Mode,
    n: usize,
    array_of_one: bool,
    alert: impl Fn(usize) -> Value,
) -> Arc<Vec<Body>> {
    let per = match mode {
        Mode::Batch => BATCH,
        Mode::Single => 1,
    };
    let bodies = (0..n)
        .step_by(per)
        .map(|start| {
            let end = (start + per).min(n);
            let value = if per == 1 && !array_of_one {
                alert(start)
            } else {
                Value::Array((start..end).map(&alert).collect())
            };
            Body {
                bytes: Bytes::from(value.to_string()),
                alerts: end - start,
            }
        })
        .collect();
    Arc::new(bodies)
}

/// Posts every body from `clients` concurrent tasks; `ok` is the only success status.
async fn load(
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<Vec<Body>>,
    ok: StatusCode,
    clients: usize,
) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, bodies, next) = (
            client.clone(),
            url.to_string(),
            bodies.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latency = figures::latency_histogram();
            let (mut alerts_ok, mut errors, mut first_error) = (0usize, 0usize, None::<String>);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let sent = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.bytes.clone())
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(resp) => {
                        let status = resp.status();
                        // Read the whole answer so the connection is kept alive.
                        let text = resp.text().await.unwrap_or_default();
                        if status == ok {
                            Ok(())
                        } else {
                            Err(format!(
                                "HTTP {status}: {}",
                                text.chars().take(300).collect::<String>()
                            ))
                        }
                    }
                    Err(e) => Err(format!("request failed: {e}")),
                };
                figures::record(&mut latency, t.elapsed());
                match outcome {
                    Ok(()) => alerts_ok += body.alerts,
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latency, alerts_ok, errors, first_error)
        }));
    }
    let mut result = LoadResult {
        alerts_ok: 0,
        requests: bodies.len(),
        elapsed: Duration::ZERO,
        errors: 0,
        first_error: None,
        latency: figures::latency_histogram(),
    };
    for task in tasks {
        match task.await {
            Ok((latency, alerts_ok, errors, first_error)) => {
                let _ = result.latency.add(&latency);
                result.alerts_ok += alerts_ok;
                result.errors += errors;
                if result.first_error.is_none() {
                    result.first_error = first_error;
                }
            }
            Err(e) => {
                result.errors += 1;
                result
                    .first_error
                    .get_or_insert_with(|| format!("a client task panicked: {e}"));
            }
        }
    }
    result.elapsed = start.elapsed();
    result
}
