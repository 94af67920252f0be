//! `alertresponder run`: alerts in, reports out, on one machine, in virtual time.
//!
//! Delays are collapsed: the clock jumps to the next due job whenever nothing else
//! can run, and each alert arrives at its own timestamp (or right after the alert
//! before it), so aggregation and re-review behave as they would live.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alertresponder_core::ports::{Clock, Emitter, ManualClock};
use alertresponder_core::{CoreError, Job};
use alertresponder_embedded::runtime::JobEvent;
use alertresponder_plugins::{JsonLinesEmitter, JsonLinesTarget};
use anyhow::Context;
use serde::Serialize;

use crate::app;
use crate::config::Config;
use crate::input::{expand, peek_timestamp, reject_event, split_alerts, Incoming, InputFormat};

/// Options of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Alert files (`-` for stdin).
    pub files: Vec<PathBuf>,
    /// Keep the run's database here (default: a scratch database removed at the end).
    pub database: Option<PathBuf>,
    /// Do not print published reports on stdout (configured emitters still run).
    pub quiet: bool,
    /// What the documents are: alerts, EventBridge events, or either (`auto`).
    pub format: InputFormat,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Alerts read (each finding of an EventBridge event counts one; an event that is
    /// not a supported one counts one, rejected).
    pub alerts: u64,
    /// EventBridge events read.
    pub events: u64,
    /// Findings of those events not taken (suppressed or archived).
    pub skipped: u64,
    /// Alerts accepted.
    pub accepted: u64,
    /// Accepted alerts that were exact repeats of an earlier message.
    pub duplicates: u64,
    /// Alerts rejected (and kept as error records).
    pub rejected: u64,
    /// Distinct reports.
    pub reports: u64,
    /// Report versions published.
    pub published: u64,
    /// Latest version of each report by severity.
    pub by_severity: BTreeMap<String, u64>,
    /// Jobs that failed for good.
    pub failed_jobs: u64,
}

/// One input of a run, in order.
enum Input {
    /// An alert (as sent, or mapped from an event).
    Alert(Incoming),
    /// An event that is not a supported one: rejected and kept as an error.
    BadEvent(crate::input::RawAlert, alertresponder_core::ValidationError),
}

#[derive(Default)]
struct Counters {
    jobs: AtomicU64,
    published: AtomicU64,
    failed: AtomicU64,
}

/// Runs the pipeline over the alerts of `opts.files`.
pub async fn run(config: &Config, opts: &RunOptions) -> anyhow::Result<RunSummary> {
    let mut inputs: Vec<Input> = Vec::new();
    let (mut events, mut skipped) = (0u64, 0u64);
    for f in &opts.files {
        let (name, text) = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("cannot read stdin")?;
            ("stdin".to_string(), s)
        } else {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            (f.display().to_string(), text)
        };
        for raw in split_alerts(&name, &text) {
            let expanded = expand(&raw, opts.format);
            events += expanded.event as u64;
            skipped += expanded.skipped.len() as u64;
            for (id, why) in &expanded.skipped {
                eprintln!("skipped {}: finding {id}: {why}", raw.origin);
            }
            match expanded.error {
                Some(e) => inputs.push(Input::BadEvent(raw, e)),
                None => inputs.extend(expanded.alerts.into_iter().map(Input::Alert)),
            }
        }
    }

    let scratch;
    let db_path = match &opts.database {
        Some(p) => p.clone(),
        None => {
            scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
            scratch.path().join("run.db")
        }
    };
    let store = app::open_store(&db_path, config)?;
    let start = inputs
        .iter()
        .find_map(|i| match i {
            Input::Alert(a) => peek_timestamp(&a.bytes),
            Input::BadEvent(..) => None,
        })
        .unwrap_or_else(chrono::Utc::now);
    let clock = Arc::new(ManualClock::new(start));
    let mut plugins = app::plugins(config, Some(&store), clock.clone()).await?;
    if !opts.quiet {
        let stdout: Arc<dyn Emitter> =
            Arc::new(JsonLinesEmitter::new("stdout", JsonLinesTarget::Stdout));
        plugins.emitters.push(stdout);
    }
    let counters = Arc::new(Counters::default());
    let observer_counters = counters.clone();
    let runtime = app::runtime(config, store.clone(), plugins, clock.clone()).with_observer(
        Arc::new(move |ev| {
            observer_counters.jobs.fetch_add(1, Ordering::Relaxed);
            match ev {
                JobEvent::Done {
                    job: Job::Review { .. },
                } => {
                    observer_counters.published.fetch_add(1, Ordering::Relaxed);
                }
                JobEvent::Failed { job, error } => {
                    observer_counters.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("job {} failed for good: {error}", job.name());
                }
                _ => {}
            }
        }),
    );
    runtime.recover().await?;

    let total = inputs.len() as u64;
    let mut summary = RunSummary {
        alerts: total,
        events,
        skipped,
        ..Default::default()
    };
    let mut reports = std::collections::HashSet::new();
    let progress = Progress::new(total);
    let wall = Instant::now();
    for (n, input) in inputs.iter().enumerate() {
        let raw = match input {
            Input::Alert(a) => a,
            Input::BadEvent(raw, e) => {
                summary.rejected += 1;
                eprintln!("rejected {}: {}: {}", raw.origin, e.field, e.message);
                reject_event(runtime.pipeline(), &raw.bytes, e)
                    .await
                    .with_context(|| format!("cannot keep the error of {}", raw.origin))?;
                progress.tick(n as u64 + 1, &counters, reports.len());
                continue;
            }
        };
        if let Some(t) = peek_timestamp(&raw.bytes) {
            if t > clock.now() {
                runtime.drain_virtual(&clock, Some(t)).await?;
            }
        }
        match runtime
            .pipeline()
            .receive(&raw.bytes, raw.message_id.as_deref())
            .await
        {
            Ok(receipt) => {
                summary.accepted += 1;
                summary.duplicates += receipt.duplicate as u64;
                reports.insert(receipt.report_id);
            }
            Err(CoreError::Invalid(e)) => {
                summary.rejected += 1;
                eprintln!("rejected {}: {}: {}", raw.origin, e.field, e.message);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot receive {}", raw.origin)),
        }
        progress.tick(n as u64 + 1, &counters, reports.len());
    }
    runtime.drain_virtual(&clock, None).await?;
    progress.finish();

    summary.reports = reports.len() as u64;
    summary.failed_jobs = counters.failed.load(Ordering::Relaxed);
    for r in store.list_reports(u32::MAX as usize, 0).await? {
        summary.published += u64::from(r.published_version);
        let sev = r
            .severity
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unpublished".into());
        *summary.by_severity.entry(sev).or_default() += 1;
    }
    let sev: Vec<String> = summary
        .by_severity
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    if summary.events > 0 {
        eprintln!(
            "{} EventBridge events read, {} findings skipped (suppressed or archived)",
            summary.events, summary.skipped
        );
    }
    eprintln!(
        "done: {} alerts read, {} accepted ({} duplicates), {} rejected; {} reports, {} versions published ({}); {} jobs failed; {:.1?} wall, {} virtual",
        summary.alerts,
        summary.accepted,
        summary.duplicates,
        summary.rejected,
        summary.reports,
        summary.published,
        if sev.is_empty() { "none".into() } else { sev.join(", ") },
        summary.failed_jobs,
        wall.elapsed(),
        humantime::format_duration((clock.now() - start).to_std().unwrap_or_default()),
    );
    if opts.database.is_some() {
        eprintln!(
            "database kept: {} (alertresponder report list --database {0})",
            db_path.display()
        );
    }
    Ok(summary)
}

/// A progress line on stderr, redrawn in place on a terminal, every 10% otherwise.
struct Progress {
    total: u64,
    tty: bool,
    last: std::sync::Mutex<(Instant, u64)>,
}

impl Progress {
    fn new(total: u64) -> Self {
        Self {
            total,
            tty: std::io::stderr().is_terminal(),
            last: std::sync::Mutex::new((Instant::now(), 0)),
        }
    }

    fn tick(&self, received: u64, c: &Counters, reports: usize) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let step = (self.total / 10).max(1);
        let due = if self.tty {
            last.0.elapsed().as_millis() >= 200 || received == self.total
        } else {
            received / step > last.1 / step || (received == self.total && last.1 != received)
        };
        if !due {
            return;
        }
        *last = (Instant::now(), received);
        let line = format!(
            "received {received}/{} alerts, {reports} reports, {} reviews run, {} jobs run",
            self.total,
            c.published.load(Ordering::Relaxed),
            c.jobs.load(Ordering::Relaxed)
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
