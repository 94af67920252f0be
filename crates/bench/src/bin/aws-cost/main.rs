//! `aws-cost`: what AlertResponder costs on AWS per million reports, measured on the
//! stack in a box (moto, the six real Lambda binaries under cargo-lambda's emulator,
//! the state machine of `template.yaml` walked state by state), beside DeepAlert v1.
//!
//! For a report of 1 and of 10 alerts it counts, per report: the state transitions of
//! the walks, every Lambda invocation (the box's, and the harness's of the inspector),
//! and from moto's recorder every AWS API call the functions make, turned into
//! DynamoDB request units ([`usage`]) and SNS publishes; then prices them at public
//! us-east-1 prices ([`prices`]). It prints figures; it asserts only that a report
//! came out, since a cost figure for a broken pipeline is worthless.

mod prices;
mod usage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alertresponder_aws_testkit::stack_box::{workspace_root, BoxOptions, StackInABox};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use prices::{dollars, Cost, Usage};

/// The inspector the stack is given (`tester/functions/src/bin/tester-inspector.rs`).
const INSPECTOR: &str = "tester-inspector";

/// The attributes every alert carries: the same three in each alert, as the repeated
/// alerts of one incident do.
const ATTRIBUTES: [(&str, &str, &str); 3] = [
    ("ipaddr", "remote address", "198.51.100.7"),
    ("username", "target user", "ec2-user"),
    (
        "filehashvalue",
        "dropped file",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ),
];

/// A case: alerts per report, and DeepAlert v1's published figure for it.
struct Case {
    alerts: usize,
    deepalert_per_million: f64,
}

const CASES: [Case; 2] = [
    Case {
        alerts: 1,
        deepalert_per_million: 165.74,
    },
    Case {
        alerts: 10,
        deepalert_per_million: 740.84,
    },
];

fn alert() -> String {
    let attributes: Vec<Value> = ATTRIBUTES
        .iter()
        .map(|(t, k, v)| json!({"type": t, "key": k, "value": v, "context": ["remote"]}))
        .collect();
    json!({
        "detector": "guardduty",
        "rule_id": "UnauthorizedAccess:EC2/SSHBruteForce",
        "rule_name": "SSH brute force against EC2 instance",
        "alert_key": "i-0abc",
        "description": "198.51.100.7 is performing SSH brute force attacks",
        "timestamp": "2026-11-20T10:00:00Z",
        "attributes": attributes
    })
    .to_string()
}

/// The one emitter's peer: answers 200 to every request and counts the POSTs.
struct Webhook {
    url: String,
    posts: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Webhook {
    async fn start() -> anyhow::Result<Webhook> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let posts = Arc::new(AtomicU64::new(0));
        let counter = posts.clone();
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = answer(socket, &counter).await;
                });
            }
        });
        Ok(Webhook { url, posts, server })
    }

    fn posts(&self) -> u64 {
        self.posts.load(Ordering::SeqCst)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Answers the requests of one (keep-alive) connection.
async fn answer(socket: TcpStream, posts: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        if request_line.starts_with("POST ") {
            posts.fetch_add(1, Ordering::SeqCst);
        }
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await?;
    }
}

/// `MemorySize` of the template's functions (Globals).
fn template_memory_mb() -> anyhow::Result<u64> {
    let path = workspace_root().join("template.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let sizes: BTreeSet<u64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("MemorySize:"))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    match sizes.len() {
        1 => Ok(sizes.into_iter().next().unwrap_or_default()),
        0 => bail!("no MemorySize in {}", path.display()),
        _ => bail!(
            "functions of {} differ in MemorySize ({sizes:?}): price them one by one",
            path.display()
        ),
    }
}

/// What one case measured.
struct Measured {
    alerts: usize,
    calls: BTreeMap<(String, String), u64>,
    excluded: BTreeMap<(String, String), u64>,
    walks: usize,
    walk_paths: Vec<String>,
    units: usage::DynamoUnits,
    publishes_by_topic: BTreeMap<String, u64>,
    usage: Usage,
    inspections: BTreeMap<String, u64>,
    webhook_posts: u64,
    report_bytes: usize,
    errors: usize,
    elapsed: Duration,
}

async fn measure(alerts: usize, memory_mb: u64) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let webhook = Webhook::start().await?;
    let sib = StackInABox::start(BoxOptions {
        inspection_delay_secs: 1,
        review_delay_secs: 2,
        inspector_functions: vec![INSPECTOR.into()],
        webhook_url: Some(webhook.url.clone()),
        ..BoxOptions::default()
    })
    .await;
    // The harness gives an inspector INSPECTOR_TIMEOUT_SECONDS, and the emulator
    // compiles a function on its first invocation: have it compiled before the run.
    let _ = sib.emulator.invoke(INSPECTOR, &json!({})).await;
    let before = sib.emulator.invocations();
    sib.moto.start_recording();

    for i in 0..alerts {
        let out = sib
            .publish_alert(&alert())
            .await
            .map_err(|e| anyhow::anyhow!("receptor failed on alert {}: {e:?}", i + 1))?;
        if out["received"] != 1 {
            bail!("receptor did not take alert {}: {out}", i + 1);
        }
    }
    // Walk every execution started, including any a walk starts.
    let mut walked = BTreeSet::new();
    let mut walks = Vec::new();
    loop {
        let new: Vec<(String, Value)> = sib
            .executions()
            .await
            .into_iter()
            .filter(|(name, _)| !walked.contains(name))
            .collect();
        if new.is_empty() {
            break;
        }
        for (name, input) in new {
            walks.push(sib.walk(&name, input).await);
            walked.insert(name);
        }
    }
    let reports = sib.reports.drain(Duration::from_millis(500)).await;
    let errors = sib.errors.drain(Duration::from_millis(300)).await;
    let recorded = sib.moto.recorded_requests();
    let after = sib.emulator.invocations();

    let Some(report) = reports.last() else {
        panic!(
            "no report came out of the box for {alerts} alert(s) ({} execution(s) walked, \
             ends {:?}, errors {:?}): a cost figure for a broken pipeline is worthless",
            walks.len(),
            walks.iter().map(|w| w.end.as_str()).collect::<Vec<_>>(),
            errors.iter().map(|e| e.body.as_str()).collect::<Vec<_>>()
        );
    };
    let message: Value = serde_json::from_str(&report.body).context("report message is JSON")?;
    let in_report = message["alerts"].as_array().map_or(0, Vec::len);
    if message["status"] != "published" || in_report != alerts {
        panic!(
            "the report that came out is not the one expected (status {}, {in_report} of \
             {alerts} alerts): a cost figure for a broken pipeline is worthless",
            message["status"]
        );
    }
    let mut inspections: BTreeMap<String, u64> = BTreeMap::new();
    for r in message["inspections"].as_array().into_iter().flatten() {
        if r["inspector"] == INSPECTOR {
            let status = r["status"].as_str().unwrap_or("?").to_string();
            *inspections.entry(status).or_default() += 1;
        }
    }

    let calls = usage::calls(&recorded)?;
    let (own, pipeline): (Vec<_>, Vec<_>) = calls.into_iter().partition(|c| c.is_the_boxs_own());
    let mut tables = HashMap::new();
    for table in [&sib.resources.report_table, &sib.resources.error_table] {
        tables.insert(
            table.clone(),
            usage::scan_sizes(&sib.moto.endpoint, table).await?,
        );
    }
    let units = usage::dynamo_units(&pipeline, &tables);
    let (publishes_by_topic, billed_publishes) = usage::sns_publishes(&pipeline);

    let mut invocations: BTreeMap<String, u64> = after
        .iter()
        .map(|(f, n)| (f.clone(), n - before.get(f).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    // The harness invokes the inspector through the Lambda API, past the box's
    // counter: one inspection record per invocation (skipped ones were not run).
    let inspected: u64 = inspections
        .iter()
        .filter(|(s, _)| s.as_str() != "skipped")
        .map(|(_, n)| n)
        .sum();
    invocations.insert(INSPECTOR.into(), inspected);

    let transitions: u64 = walks.iter().map(|w| w.transitions() as u64).sum();
    Ok(Measured {
        alerts,
        calls: usage::by_operation(pipeline.iter()),
        excluded: usage::by_operation(own.iter()),
        walks: walks.len(),
        walk_paths: walks.iter().map(|w| w.path().join(" → ")).collect(),
        publishes_by_topic,
        usage: Usage {
            transitions,
            invocations,
            memory_mb,
            write_units: units.write,
            read_units: units.read,
            // Alerts reach the receptor through the ingest topic on AWS; the box
            // hands them over directly, so that publish is added here.
            publishes: billed_publishes + alerts as u64,
        },
        units,
        inspections,
        webhook_posts: webhook.posts(),
        report_bytes: report.body.len(),
        errors: errors.len(),
        elapsed: started.elapsed(),
    })
}

fn print_case(m: &Measured, deepalert: f64) -> f64 {
    let cost = Cost::of(&m.usage);
    let plural = if m.alerts == 1 { "" } else { "s" };
    println!(
        "== A report of {} alert{plural} (one alert key; attributes {}) ==",
        m.alerts,
        ATTRIBUTES
            .iter()
            .map(|(t, _, _)| *t)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "report published: {} alert{plural}, {} bytes; {INSPECTOR} inspections {:?}; \
         webhook POSTs {}; error messages {}; measured in {:.0} s",
        m.alerts,
        m.report_bytes,
        m.inspections,
        m.webhook_posts,
        m.errors,
        m.elapsed.as_secs_f64()
    );
    println!();
    println!("AWS API calls by the pipeline (moto's recorder)");
    println!(
        "  {:<10} {:<22} {:>5} {:>11} {:>10}",
        "service", "operation", "calls", "write units", "read units"
    );
    for ((service, op), n) in &m.calls {
        match m
            .units
            .by_operation
            .get(op)
            .filter(|_| service == "dynamodb")
        {
            Some((w, r)) => println!("  {service:<10} {op:<22} {n:>5} {w:>11} {r:>10}"),
            None => println!("  {service:<10} {op:<22} {n:>5}"),
        }
    }
    let excluded: Vec<String> = m
        .excluded
        .iter()
        .map(|((s, o), n)| format!("{s} {o} {n}"))
        .collect();
    println!("  not counted, the box's own: {}", excluded.join(", "));
    println!();
    println!(
        "Step Functions executions walked: {}; state transitions: {}",
        m.walks, m.usage.transitions
    );
    for p in &m.walk_paths {
        println!("  {p}");
    }
    println!();
    println!(
        "Lambda requests ({} MB; billed duration assumed)",
        m.usage.memory_mb
    );
    for (f, n) in &m.usage.invocations {
        println!("  {f:<18} {n:>4} × {} ms", prices::assumed_billed_ms(f));
    }
    println!(
        "  {:<18} {:>4}",
        "total",
        m.usage.invocations.values().sum::<u64>()
    );
    println!();
    println!(
        "DynamoDB request units: {} write, {} read ({} item reads found no item, \
         billed at the minimum)",
        m.units.write, m.units.read, m.units.missing_reads
    );
    let topics: Vec<String> = m
        .publishes_by_topic
        .iter()
        .map(|(t, n)| format!("{} {n}", t.rsplit('-').next().unwrap_or(t)))
        .collect();
    println!(
        "SNS publishes: {} billed ({}, + {} to IngestTopic, one per alert)",
        m.usage.publishes,
        topics.join(", "),
        m.alerts
    );
    println!();
    println!("Cost per million reports (us-east-1, on demand)");
    let line = |name: &str, x: f64| println!("  {name:<22} {:>12}", dollars(x * 1e6));
    line("Step Functions", cost.step_functions);
    line("Lambda requests", cost.lambda_requests);
    line("Lambda GB-s", cost.lambda_compute);
    line("DynamoDB", cost.dynamo);
    line("SNS", cost.sns);
    line("total", cost.total());
    println!(
        "  {:<22} {:>12}   ours / DeepAlert's: {:.2}",
        "DeepAlert v1",
        dollars(deepalert),
        cost.total() * 1e6 / deepalert
    );
    println!();
    cost.total() * 1e6
}

const SOURCES: &str = "\
Where the numbers come from
  measured  API calls: moto's recorder, from the first alert until the report is out;
            the SQS reads of the box's subscribers and its ListExecutions /
            DescribeExecution are left out (the box's, not the pipeline's).
  measured  state transitions: the walks of every started execution through the
            state machine of template.yaml (one per state entered, retries included).
  measured  Lambda requests: every invocation the box makes (receptor per alert, the
            harness per task, the Task states' functions), plus the harness's
            invocations of the inspector (its inspection records in the report).
  measured  SNS publishes: Publish calls recorded (task, report, error topics; each
            started 64 KB of message is one request).
  derived   DynamoDB units: from the recorded requests. Writes: 1 per started KB of
            the item, 2 per started KB per item of a transaction (condition checks
            too). Reads (consistent): 1 per started 4 KB per item for GetItem and
            BatchGetItem, minimum 1; a Query 1 per started 4 KB of the partition's
            items. moto records no responses: items read are those written before the
            read, at their size at the end (an upper estimate); updated items at
            their final size.
  assumed   Lambda billed duration: 100 ms per invocation, 200 ms for the harness
            (it waits for its inspector); memory: template.yaml's MemorySize.
  assumed   one SNS publish per alert to IngestTopic (the box hands alerts to the
            receptor directly).
  left out  free tiers, storage ($0.25 per GB-month, records expire by TTL), KMS
            for the encrypted topics (data keys are cached), data transfer, logs.
  prices    Step Functions $0.025 per 1,000 transitions; Lambda $0.20 per million
            requests + $0.0000166667 per GB-s (x86_64); DynamoDB on demand $0.625 /
            $0.125 per million write / read units; SNS $0.50 per million publishes.";

async fn run() -> anyhow::Result<()> {
    let memory_mb = template_memory_mb()?;
    println!("AlertResponder on AWS: cost per million reports, measured on the stack in a box");
    println!(
        "(moto + the six Lambda binaries under cargo-lambda's emulator + the state machine \
         of template.yaml; one inspector, {INSPECTOR}; one emitter, the webhook)"
    );
    println!("The first run compiles the functions inside the emulator: minutes.");
    println!();
    let mut totals = Vec::new();
    for case in &CASES {
        let m = measure(case.alerts, memory_mb).await?;
        let total = print_case(&m, case.deepalert_per_million);
        totals.push((case.alerts, total, case.deepalert_per_million));
    }
    println!("== Summary: cost per million reports ==");
    println!(
        "  {:<10} {:>12} {:>14} {:>16}",
        "report", "ours", "DeepAlert v1", "ours / theirs"
    );
    for (alerts, ours, theirs) in totals {
        let name = format!("{alerts} alert{}", if alerts == 1 { "" } else { "s" });
        println!(
            "  {name:<10} {:>12} {:>14} {:>16.2}",
            dollars(ours),
            dollars(theirs),
            ours / theirs
        );
    }
    println!();
    println!("{SOURCES}");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("usage: aws-cost\n\n{SOURCES}");
        return ExitCode::SUCCESS;
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aws-cost: {e:#}");
            ExitCode::from(1)
        }
    }
}
