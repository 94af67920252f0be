//! `page-bench`: how fast the pages of `alertresponder serve` answer over 100,000
//! stored reports (`make bench-pages`). Prints, never asserts.
//!
//! 1. Fills a fresh SQLite file through the store ports (`AdmitStore::admit`, then
//!    `PublishStore::mark_published` for three reports in four), from 64 concurrent
//!    tasks so that the writer's group commit batches them: what the ingest path's
//!    store work costs, without HTTP, validation and the job queue. Each report has
//!    one alert with three attributes (an IP shared by 50 reports, a domain by 20, a
//!    user by 100), one of five detectors; the published version carries two
//!    sections and three inspection records.
//! 2. Starts the real `alertresponder serve` (release, beside this program) on that
//!    file and times sequential GETs over one keep-alive connection: the list (newest,
//!    a deep page, each filter, searches) and report pages. p50 and p99 per case.

#[allow(dead_code)]
#[path = "../figures.rs"]
mod figures;
#[allow(dead_code)]
#[path = "../process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alertresponder_core::model::{
    Alert, Attribute, ErrorRecord, InspectionRecord, InspectionStatus, Report, ReportResult,
    ReportSection, ReportStatus, Severity,
};
use alertresponder_core::ports::{AdmitStore, Arrival, ErrorSink, PublishStore};
use alertresponder_embedded::store::Durability;
use alertresponder_embedded::SqliteStore;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde_json::json;

use figures::{duration, latency_histogram, per_second, percentiles, rate, record};
use process::ServerGuard;

const USAGE: &str = "usage: page-bench [--reports N] [--requests R] [--serve PATH]

  --reports N   reports stored before timing (default 100000)
  --requests R  timed requests per case (default 200)
  --serve PATH  the alertresponder binary to serve with (default: beside this program)";

const DETECTORS: [&str; 5] = ["guardduty", "suricata", "falco", "securityhub", "wazuh"];
const WORKERS: usize = 64;

struct Options {
    reports: usize,
    requests: usize,
    serve: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Option<Options>> {
    let mut opts = Options {
        reports: 100_000,
        requests: 200,
        serve: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number = || -> anyhow::Result<usize> {
            let n: usize = value
                .parse()
                .with_context(|| format!("{flag}: {value:?} is not a number"))?;
            if n == 0 {
                bail!("{flag} must be at least 1");
            }
            Ok(n)
        };
        match flag.as_str() {
            "--reports" => opts.reports = number()?,
            "--requests" => opts.requests = number()?,
            "--serve" => opts.serve = Some(PathBuf::from(&value)),
            other => bail!("unknown option {other:?}"),
        }
    }
    Ok(Some(opts))
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("page-bench: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("page-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn attribute(kind: &str, key: &str, value: String) -> Attribute {
    Attribute {
        attr_type: kind.into(),
        key: key.into(),
        value,
        context: vec!["remote".into()],
        timestamp: None,
    }
}

/// The IP address report `i` names (shared by 50 reports).
fn ip_of(i: usize) -> String {
    let k = i / 50;
    format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255)
}

fn alert_of(i: usize, at: DateTime<Utc>) -> Alert {
    Alert {
        detector: DETECTORS[i % DETECTORS.len()].into(),
        rule_name: format!("rule {}", i % 40),
        rule_id: format!("rule-{}", i % 40),
        alert_key: format!("host-{i}"),
        description: format!("benchmark alert {i}"),
        timestamp: at,
        attributes: vec![
            attribute("ipaddr", "source address", ip_of(i)),
            attribute(
                "domain",
                "queried domain",
                format!("host{}.example.net", i % 5000),
            ),
            attribute("username", "login user", format!("user{}", i % 1000)),
        ],
        body: Some(json!({"n": i})),
    }
}

fn severity_of(i: usize) -> Severity {
    match (i % 13, i % 2) {
        (0, _) => Severity::Urgent,
        (_, 0) => Severity::Safe,
        _ => Severity::Unclassified,
    }
}

/// The published first version of report `id`, opened at `at` for `alert`.
fn published(id: &str, alert: &Alert, i: usize, at: DateTime<Utc>) -> Report {
    let ip = alert.attributes[0].clone();
    let inspection = |inspector: &str, a: &Attribute, status| InspectionRecord {
        inspector: inspector.into(),
        attribute: a.clone(),
        status,
        detail: None,
        at: at + chrono::Duration::seconds(60),
    };
    Report {
        id: id.into(),
        alerts: vec![alert.clone()],
        attributes: alert.attributes.clone(),
        sections: vec![
            ReportSection {
                report_id: id.into(),
                author: "threat-intel".into(),
                attribute: ip.clone(),
                section_type: "host".into(),
                content: json!({"ipaddr": [ip.value], "country": ["NL"], "as_owner": ["Example AS"]}),
            },
            ReportSection {
                report_id: id.into(),
                author: "geoip".into(),
                attribute: ip.clone(),
                section_type: "host".into(),
                content: json!({"country": ["NL"], "city": ["Amsterdam"]}),
            },
        ],
        result: ReportResult {
            severity: severity_of(i),
            reason: format!("policy decided for report {i}"),
        },
        status: ReportStatus::Published,
        created_at: at,
        version: 1,
        previous_result: None,
        inspections: vec![
            inspection("threat-intel", &ip, InspectionStatus::Ok),
            inspection("geoip", &ip, InspectionStatus::Ok),
            inspection(
                "user-directory",
                &alert.attributes[2],
                InspectionStatus::NothingFound,
            ),
        ],
        alert_id: alert.alert_id(),
        published_at: Some(at + chrono::Duration::seconds(300)),
        cut: None,
    }
}

/// What the fill left: each report's ID and opening time, by index.
struct Filled {
    ids: Vec<(String, DateTime<Utc>)>,
}

async fn fill(store: &SqliteStore, n: usize) -> anyhow::Result<Filled> {
    let start = Utc::now() - chrono::Duration::seconds(n as i64 + 3600);
    let store = Arc::new(store.clone());
    let began = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in (w..n).step_by(WORKERS) {
                let at = start + chrono::Duration::seconds(i as i64);
                let alert = alert_of(i, at);
                let alert_id = alert.alert_id();
                let message_id = format!("bench-{i}");
                let candidate = alertresponder_core::id::report_id(&alert_id, &message_id);
                let admission = store
                    .admit(&Arrival {
                        alert_id: &alert_id,
                        message_id: &message_id,
                        candidate_id: &candidate,
                        alert: &alert,
                        now: at,
                        window: Duration::from_secs(3600),
                    })
                    .await?;
                mine.push((i, admission.meta.id, at, alert));
            }
            anyhow::Ok(mine)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_by_key(|x| x.0);
    let admitted = began.elapsed();
    println!(
        "  admitted {n} alerts (one report each) in {} ({} alerts/s, browse triggers included)",
        duration(admitted),
        per_second(rate(n, admitted))
    );
    let began = Instant::now();
    let chunk = all.len().div_ceil(WORKERS).max(1);
    let mut tasks = Vec::new();
    for part in all.chunks(chunk) {
        let store = store.clone();
        let part: Vec<_> = part
            .iter()
            .filter(|(i, ..)| i % 4 > 0)
            .map(|(i, id, at, alert)| published(id, alert, *i, *at))
            .collect();
        tasks.push(tokio::spawn(async move {
            for report in part {
                store.mark_published(&report, "page-bench").await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    for k in 0..1000i64 {
        store
            .put_error(&ErrorRecord {
                id: format!("bench-error-{k}"),
                stage: "receive".into(),
                error: "invalid alert: detector: missing".into(),
                field: Some("detector".into()),
                input: format!("{{\"n\": {k}}}"),
                input_truncated: false,
                at: start + chrono::Duration::seconds(k * 60),
            })
            .await?;
    }
    let published_n = n - n.div_ceil(4);
    println!(
        "  published {published_n} versions in {} ({}/s)",
        duration(began.elapsed()),
        per_second(rate(published_n, began.elapsed()))
    );
    Ok(Filled {
        ids: all.into_iter().map(|(_, id, at, _)| (id, at)).collect(),
    })
}

/// The `alertresponder` binary beside this one.
fn serve_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let bin = exe
        .parent()
        .context("this program's path has no directory")?
        .join(format!("alertresponder{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} is missing: build it first with `cargo build --release -p alertresponder`",
            bin.display()
        );
    }
    Ok(bin)
}

async fn start_serve(
    bin: &Path,
    dir: &Path,
    database: &Path,
) -> anyhow::Result<(ServerGuard, String)> {
    let client = reqwest::Client::new();
    process::start_serve(bin, dir, database, &client, Duration::from_secs(60), |_| {}).await
}

/// Times `paths` (cycled) `requests` times after a short warm-up; prints one line.
async fn time_case(
    client: &reqwest::Client,
    base: &str,
    label: &str,
    paths: &[String],
    requests: usize,
) -> anyhow::Result<()> {
    let mut h = latency_histogram();
    let mut rows = 0usize;
    for n in 0..requests + 5 {
        let path = &paths[n % paths.len()];
        let began = Instant::now();
        let r = client.get(format!("{base}{path}")).send().await?;
        let status = r.status();
        let body = r.text().await?;
        let took = began.elapsed();
        if !status.is_success() {
            bail!(
                "GET {path}: {status}: {}",
                body.chars().take(300).collect::<String>()
            );
        }
        if n >= 5 {
            record(&mut h, took);
            rows += body.matches("data-testid=\"report-row\"").count();
        }
    }
    let shown = if rows > 0 {
        format!("  ({} rows/page)", rows / requests)
    } else {
        String::new()
    };
    println!("  {label:<38} {}{shown}", percentiles(&h));
    Ok(())
}

async fn run(opts: &Options) -> anyhow::Result<()> {
    let bin = match &opts.serve {
        Some(path) => path.clone(),
        None => serve_binary()?,
    };
    println!(
        "AlertResponder page benchmark: {} reports, {} requests per case; pages served by {}, \
         filled and timed by a {} build of this program",
        opts.reports,
        opts.requests,
        bin.display(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    let database = dir.path().join("pages.db");
    println!("\nFilling {} through the store ports", database.display());
    let filled = {
        let store = SqliteStore::open(&database, Durability::Normal)?;
        fill(&store, opts.reports).await?
    };
    let size: u64 = ["pages.db", "pages.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!("  file: {} MiB", size / (1024 * 1024));

    let (mut server, base) = start_serve(&bin, dir.path(), &database).await?;
    println!("\nServing at {base}: GET latency, sequential, one connection");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let n = filled.ids.len();
    let (mid_id, mid_at) = &filled.ids[n / 2];
    let hour = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let deep = format!("/?after={}:{}", mid_at.timestamp_millis(), mid_id);
    let single = |p: &str| vec![p.to_string()];
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("list: newest", single("/")),
        ("list: a page halfway down (keyset)", vec![deep]),
        ("list: severity=urgent", single("/?severity=urgent")),
        ("list: detector=falco", single("/?detector=falco")),
        (
            "list: detector + severity",
            single("/?detector=falco&severity=urgent"),
        ),
        (
            "list: opened within one hour",
            vec![format!(
                "/?since={}&until={}",
                hour(*mid_at),
                hour(*mid_at + chrono::Duration::hours(1))
            )],
        ),
        ("list: by publication time", single("/?time=published")),
        (
            "list: published, urgent",
            single("/?time=published&severity=urgent"),
        ),
        (
            "search: an IP (in 50 reports)",
            (0..20).map(|k| format!("/?q={}", ip_of(k * 997))).collect(),
        ),
        (
            "search: an alert key",
            (0..20).map(|k| format!("/?q=host-{}", k * 4999)).collect(),
        ),
        ("search: a user (in 100 reports)", single("/?q=user77")),
        (
            "search: prefix 10.0.1 (12,800 reports)",
            single("/?q=10.0.1&prefix=1"),
        ),
        (
            "report page",
            (0..50)
                .map(|k| format!("/reports/{}", filled.ids[(k * 1999 + 1) % n].0))
                .collect(),
        ),
        ("errors page", single("/errors")),
    ];
    for (label, paths) in &cases {
        server.check_running()?;
        time_case(&client, &base, label, paths, opts.requests).await?;
    }
    Ok(())
}
