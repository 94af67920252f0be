//! Part 1: the whole pipeline in process, zero delays, real clock.
//!
//! Alerts go in through [`Pipeline::receive`] from a few concurrent tasks while
//! [`Runtime::work`] runs the jobs; a built-in inspector answers at once and a
//! recording emitter notes when each alert first leaves in a published report, so
//! the figures are those of the pipeline, store and queue, not of plugin processes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertresponder::app::{self, Plugins};
use alertresponder::config::Config;
use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::{Emitter, Inspection, Inspector, SectionDraft, SystemClock};
use alertresponder_core::{PluginError, Report, ReportStatus, Task};
use alertresponder_embedded::runtime::{JobEvent, JobObserver};
use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;

use crate::alerts::{pipeline_alert, pipeline_description};
use crate::figures::{self, duration, per_second, percentiles};
use crate::BenchOptions;

/// How long the run may take before the missing alerts are reported.
const DEADLINE: Duration = Duration::from_secs(600);
/// Tasks calling `receive` at once.
const SENDERS: usize = 4;
/// Jobs the runtime runs at once.
const CONCURRENCY: usize = 8;

/// An inspector that answers at once with one small host section.
struct HostInspector;

#[async_trait]
impl Inspector for HostInspector {
    fn name(&self) -> &str {
        "bench-host"
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        Ok(Inspection {
            sections: vec![SectionDraft {
                section_type: "host".into(),
                content: json!({
                    "value": task.attribute.value,
                    "owner": "benchmark",
                    "country": "ZZ",
                    "os": ["linux"],
                }),
            }],
            new_attributes: Vec::new(),
        })
    }
}

/// What the recording emitter saw.
#[derive(Default)]
struct Emissions {
    /// Alert description → when a report holding it was first emitted.
    first: HashMap<String, Instant>,
    /// Reports emitted.
    reports: HashSet<String>,
    /// (report, version) pairs emitted.
    versions: HashSet<(String, u32)>,
    /// Calls to `emit`, retries included.
    calls: u64,
}

/// An emitter that notes the first emission of every alert.
#[derive(Default)]
struct RecordingEmitter {
    seen: Mutex<Emissions>,
}

impl RecordingEmitter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Emissions> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters to a benchmark: keep counting.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emitted_alerts(&self) -> usize {
        self.lock().first.len()
    }
}

#[async_trait]
impl Emitter for RecordingEmitter {
    fn name(&self) -> &str {
        "bench-recorder"
    }

    async fn emit(&self, report: &Report, _attempt: u32) -> Result<(), PluginError> {
        let now = Instant::now();
        let mut seen = self.lock();
        for alert in &report.alerts {
            if !seen.first.contains_key(&alert.description) {
                seen.first.insert(alert.description.clone(), now);
            }
        }
        seen.reports.insert(report.id.clone());
        seen.versions.insert((report.id.clone(), report.version));
        seen.calls += 1;
        Ok(())
    }
}

/// Jobs finished, by stage, as the runtime's observer reports them.
#[derive(Default)]
struct JobTally {
    done: BTreeMap<&'static str, u64>,
    retried: u64,
    failed: u64,
    first_error: Option<String>,
}

/// What the senders did.
struct Sent {
    /// When each alert's `receive` call began (`None`: it failed).
    started: Vec<Option<Instant>>,
    /// Duration of each `receive` call.
    receive: hdrhistogram::Histogram<u64>,
    /// Alerts that opened a report.
    opened: usize,
    /// Failed calls, with the first error.
    errors: usize,
    first_error: Option<String>,
}

/// Runs part 1 and prints its figures.
pub async fn run(opts: &BenchOptions) -> anyhow::Result<()> {
    let n = opts.alerts;
    let keys = opts.keys.min(n);
    println!("== Part 1: pipeline in process (zero delays, real clock) ==");
    println!(
        "{n} alerts over {keys} alert keys (~{} per key), 5 attributes each; built-in inspector \
         and recording emitter; SQLite store (WAL, synchronous=NORMAL) in a temp dir; \
         concurrency {CONCURRENCY}; {SENDERS} concurrent senders",
        n.div_ceil(keys)
    );

    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let mut config = Config {
        database: dir.path().join("pipeline.db"),
        concurrency: CONCURRENCY,
        ..Config::default()
    };
    config.settings.inspection_delay = Duration::ZERO;
    config.settings.review_delay = Duration::ZERO;
    config.settings.aggregation_window = Duration::from_secs(3 * 3600);
    let store = app::open_store(&config.database, &config)?;

    let emitter = Arc::new(RecordingEmitter::default());
    let plugins = Plugins {
        inspectors: vec![Arc::new(HostInspector)],
        reviewers: Vec::new(),
        emitters: vec![emitter.clone()],
    };
    let tally = Arc::new(Mutex::new(JobTally::default()));
    let observer: JobObserver = {
        let tally = tally.clone();
        Arc::new(move |event: &JobEvent| {
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                JobEvent::Done { job } => *t.done.entry(job.stage()).or_default() += 1,
                JobEvent::Retrying { error, .. } => {
                    t.retried += 1;
                    t.first_error.get_or_insert_with(|| error.clone());
                }
                JobEvent::Failed { error, .. } => {
                    t.failed += 1;
                    t.first_error.get_or_insert_with(|| error.clone());
                }
            }
        })
    };
    let runtime =
        app::runtime(&config, store, plugins, Arc::new(SystemClock)).with_observer(observer);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            runtime
                .work(async move {
                    let _ = stop_rx.await;
                })
                .await
        })
    };

    let now = Utc::now();
    let bodies: Arc<Vec<Vec<u8>>> =
        Arc::new((0..n).map(|i| pipeline_alert(i, keys, now)).collect());
    let first_receive = Instant::now();
    let sent = send_all(runtime.pipeline().clone(), bodies).await?;
    let ingest_time = first_receive.elapsed();
    let expected = n - sent.errors;

    let waited = wait_for_emissions(&emitter, &runtime, expected, first_receive).await;
    let _ = stop_tx.send(());
    match worker.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("  job loop ended with an error: {e}"),
        Err(e) => println!("  job loop panicked: {e}"),
    }

    let seen = emitter.lock();
    let mut latency = figures::latency_histogram();
    let mut last_emission = first_receive;
    let mut missing = 0usize;
    for (i, started) in sent.started.iter().enumerate() {
        let Some(started) = started else { continue };
        match seen.first.get(&pipeline_description(i)) {
            Some(at) => {
                figures::record(&mut latency, at.saturating_duration_since(*started));
                last_emission = last_emission.max(*at);
            }
            None => missing += 1,
        }
    }
    let wall = last_emission.saturating_duration_since(first_receive);
    let first_emission = seen
        .first
        .values()
        .min()
        .map(|at| at.saturating_duration_since(first_receive));
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());

    println!(
        "  alerts               {n} sent, {} accepted ({} opened a report), {} receive errors",
        n - sent.errors,
        sent.opened,
        sent.errors
    );
    if let Some(e) = &sent.first_error {
        println!("    first receive error: {e}");
    }
    println!(
        "  reports              {} emitted; {} versions published ({:.2} per report), {} emit calls",
        seen.reports.len(),
        seen.versions.len(),
        seen.versions.len() as f64 / seen.reports.len().max(1) as f64,
        seen.calls
    );
    let jobs: Vec<String> = t.done.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "  jobs run             {} ({}); retried {}, failed {}",
        t.done.values().sum::<u64>(),
        jobs.join(", "),
        t.retried,
        t.failed
    );
    if let Some(e) = &t.first_error {
        println!("    first job error: {e}");
    }
    println!(
        "  receive phase        {} for {} alerts = {} alerts/s (worker running meanwhile); \
         receive call {}",
        duration(ingest_time),
        n,
        per_second(figures::rate(n, ingest_time)),
        percentiles(&sent.receive)
    );
    println!(
        "  wall time            {} (first receive to last emission); first emission after {}",
        duration(wall),
        first_emission.map_or_else(|| "none".into(), duration)
    );
    println!(
        "  throughput           {} alerts/s end to end",
        per_second(figures::rate(expected - missing, wall))
    );
    println!(
        "  latency              receive -> first emission containing the alert: {}",
        percentiles(&latency)
    );
    match waited {
        Wait::AllEmitted => {}
        Wait::Deadline => println!(
            "  MISSING              {missing} alerts not emitted within {}",
            duration(DEADLINE)
        ),
        Wait::Stalled => {
            println!("  MISSING              {missing} alerts not emitted and no job left to run")
        }
    }
    Ok(())
}

/// Receives every body from [`SENDERS`] tasks as fast as they go.
async fn send_all(pipeline: Pipeline, bodies: Arc<Vec<Vec<u8>>>) -> anyhow::Result<Sent> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (pipeline, bodies, next) = (pipeline.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut started = Vec::new();
            let mut receive = figures::latency_histogram();
            let (mut opened, mut errors, mut first_error) = (0usize, 0usize, None);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                match pipeline.receive(body, None).await {
                    Ok(receipt) => {
                        figures::record(&mut receive, t.elapsed());
                        started.push((i, t));
                        opened += usize::from(receipt.status == ReportStatus::New);
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (started, receive, opened, errors, first_error)
        }));
    }
    let mut sent = Sent {
        started: vec![None; bodies.len()],
        receive: figures::latency_histogram(),
        opened: 0,
        errors: 0,
        first_error: None,
    };
    for task in tasks {
        let (started, receive, opened, errors, first_error) =
            task.await.context("a sender panicked")?;
        for (i, t) in started {
            sent.started[i] = Some(t);
        }
        sent.receive.add(&receive).context("merging histograms")?;
        sent.opened += opened;
        sent.errors += errors;
        if sent.first_error.is_none() {
            sent.first_error = first_error;
        }
    }
    Ok(sent)
}

/// How waiting for the emissions ended.
enum Wait {
    AllEmitted,
    Deadline,
    Stalled,
}

/// Waits until `expected` alerts were emitted, the deadline passes, or nothing is
/// left to run (a lost alert would otherwise cost the whole deadline).
async fn wait_for_emissions(
    emitter: &RecordingEmitter,
    runtime: &alertresponder_embedded::Runtime,
    expected: usize,
    start: Instant,
) -> Wait {
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    loop {
        let count = emitter.emitted_alerts();
        if count >= expected {
            return Wait::AllEmitted;
        }
        if start.elapsed() > DEADLINE {
            return Wait::Deadline;
        }
        if count != last_count {
            last_count = count;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(5) {
            if let Ok(stats) = runtime.queue().stats().await {
                if stats.pending == 0 && stats.running == 0 {
                    return Wait::Stalled;
                }
            }
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
