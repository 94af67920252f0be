//! `aws-cost`: what AlertResponder costs on AWS per million reports, measured on the
//! stack in a box (moto, the five real Lambda binaries under cargo-lambda's emulator,
//! the state machine of `template.yaml` walked state by state), beside DeepAlert v1.
//!
//! For a report of 1 and of 10 alerts it counts, per report: the state transitions of
//! the walks, every Lambda invocation (the box's, and the harness's of the inspector),
//! and from moto's recorder every AWS API call the functions make, turned into
//! DynamoDB request units ([`usage`]) and SNS publishes; it times every invocation
//! the box makes (the emulator's HTTP round trip) and bills each function its median
//! at its own `MemorySize`; then prices it all at public us-east-1 prices
//! ([`prices`]). It prints figures; it asserts only that a report came out, since a
//! cost figure for a broken pipeline is worthless.

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

use prices::{dollars, Cost, FunctionUsage, Usage};

/// The inspector the stack is given (`tester/functions/src/bin/tester-inspector.rs`).
const INSPECTOR: &str = "tester-inspector";

/// The stack's functions: the binaries the box invokes.
const FUNCTIONS: [&str; 5] = [
    "receptor",
    "dispatcher",
    "inspector-harness",
    "reviewer-invoker",
    "emitter-fanout",
];

/// Times each inspected attribute is handed to the inspector directly to time it (the
/// harness invokes it through the Lambda API, past the box's clock).
const INSPECTOR_TIMING_ROUNDS: usize = 3;

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

/// `MemorySize` of each function, by binary: the stack's from `template.yaml`, the
/// inspector's from the tester's template (`tester/template.yaml`), which deploys it.
fn template_memory_mb() -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for path in [
        workspace_root().join("template.yaml"),
        workspace_root().join("tester/template.yaml"),
    ] {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        out.extend(
            prices::function_memory_mb(&text).with_context(|| format!("{}", path.display()))?,
        );
    }
    for f in FUNCTIONS.iter().chain([&INSPECTOR]) {
        if !out.contains_key(*f) {
            bail!("no function with Binary {f} in the templates ({out:?})");
        }
    }
    Ok(out)
}

/// Where a function's billed duration comes from.
#[derive(Debug, Clone)]
enum Timing {
    /// Timed in the box: count, median, maximum.
    Measured(usize, Duration, Duration),
    /// Not timed: the old assumption.
    Assumed,
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
    durations: BTreeMap<String, Timing>,
    webhook_posts: u64,
    report_bytes: usize,
    errors: usize,
    elapsed: Duration,
}

async fn measure(alerts: usize, memory_mb: &BTreeMap<String, u64>) -> anyhow::Result<Measured> {
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
    // The emulator compiles a function on its first invocation (and the harness gives
    // an inspector only INSPECTOR_TIMEOUT_SECONDS): have every function compiled and
    // started before the run, so that the timings are of warm invocations. Payloads
    // that do nothing: no record (an empty SNS event) or refused by the runtime
    // before the handler (an input of the wrong shape).
    for f in FUNCTIONS.iter().chain([&INSPECTOR]) {
        let nothing = match *f {
            "receptor" | "inspector-harness" | "emitter-fanout" => json!({"Records": []}),
            _ => json!({}),
        };
        let _ = sib.emulator.invoke(f, &nothing).await;
    }
    let warm_up_errors = sib.errors.drain(Duration::from_millis(300)).await;
    if !warm_up_errors.is_empty() {
        bail!(
            "the warm-up invocations made error records: {:?}",
            warm_up_errors.iter().map(|e| &e.body).collect::<Vec<_>>()
        );
    }
    let before = sib.emulator.invocations();
    let timed_from = sib.emulator.timings().len();
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
    let timed: Vec<(String, Duration)> = sib
        .emulator
        .timings()
        .into_iter()
        .skip(timed_from)
        .collect();

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
    let mut inspected_attributes = Vec::new();
    for r in message["inspections"].as_array().into_iter().flatten() {
        if r["inspector"] == INSPECTOR {
            let status = r["status"].as_str().unwrap_or("?").to_string();
            if status != "skipped" {
                inspected_attributes.push(r["attribute"].clone());
            }
            *inspections.entry(status).or_default() += 1;
        }
    }
    // The harness invokes the inspector through the Lambda API, past the box's clock:
    // hand it the same tasks directly to time it (after the counts are taken).
    let timed_inspector_from = sib.emulator.timings().len();
    for _ in 0..INSPECTOR_TIMING_ROUNDS {
        for attribute in &inspected_attributes {
            let task = json!({"report_id": message["id"], "attribute": attribute, "depth": 0});
            if let Err(e) = sib.emulator.invoke(INSPECTOR, &task).await {
                bail!("{INSPECTOR} failed on a task of the report, {task}: {e:?}");
            }
        }
    }
    let mut timings: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for (f, d) in timed.into_iter().chain(
        sib.emulator
            .timings()
            .into_iter()
            .skip(timed_inspector_from),
    ) {
        timings.entry(f).or_default().push(d);
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
    let mut durations = BTreeMap::new();
    let mut functions = BTreeMap::new();
    for (f, n) in invocations {
        let measured = timings.get(&f).and_then(|t| prices::stats(t));
        let billed_ms = match measured {
            Some((_, p50, _)) => prices::billed_ms(p50),
            None => prices::assumed_billed_ms(&f),
        };
        let memory_mb = *memory_mb
            .get(&f)
            .with_context(|| format!("no MemorySize for {f}"))?;
        durations.insert(
            f.clone(),
            match measured {
                Some((count, p50, max)) => Timing::Measured(count, p50, max),
                None => Timing::Assumed,
            },
        );
        functions.insert(
            f,
            FunctionUsage {
                invocations: n,
                memory_mb,
                billed_ms,
            },
        );
    }
    Ok(Measured {
        alerts,
        calls: usage::by_operation(pipeline.iter()),
        excluded: usage::by_operation(own.iter()),
        walks: walks.len(),
        walk_paths: walks.iter().map(|w| w.path().join(" → ")).collect(),
        publishes_by_topic,
        usage: Usage {
            transitions,
            functions,
            write_units: units.write,
            read_units: units.read,
            // Alerts reach the receptor through the ingest topic on AWS; the box
            // hands them over directly, so that publish is added here.
            publishes: billed_publishes + alerts as u64,
        },
        units,
        inspections,
        durations,
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
    println!("DynamoDB writes by item (partition/sort key up to their first #)");
    println!(
        "  {:<32} {:<22} {:>5} {:>11}",
        "operation", "item", "items", "write units"
    );
    for ((op, kind), (n, w)) in &m.units.writes_by_item {
        println!("  {op:<32} {kind:<22} {n:>5} {w:>11}");
    }
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
        "Lambda invocations, timed in the box: the emulator's HTTP round trip per \
         invocation, warm (each function was started before the run)"
    );
    println!(
        "  {:<18} {:>5} {:>6} {:>8} {:>10} {:>10} {:>7} {:>9}",
        "function", "calls", "MB", "timed", "p50 ms", "max ms", "billed", "assumed"
    );
    for (f, u) in &m.usage.functions {
        let (timed, p50, max) = match m.durations.get(f) {
            Some(Timing::Measured(n, p50, max)) => (
                n.to_string(),
                format!("{:.1}", p50.as_secs_f64() * 1e3),
                format!("{:.1}", max.as_secs_f64() * 1e3),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "  {f:<18} {:>5} {:>6} {timed:>8} {p50:>10} {max:>10} {:>4} ms {:>6} ms",
            u.invocations,
            u.memory_mb,
            u.billed_ms,
            prices::assumed_billed_ms(f)
        );
    }
    println!(
        "  {:<18} {:>5}",
        "total",
        m.usage
            .functions
            .values()
            .map(|u| u.invocations)
            .sum::<u64>()
    );
    println!(
        "  billed: the measured p50 rounded up to the next ms (Lambda bills per 1 ms); \
         assumed: the figure used before, for comparison."
    );
    println!(
        "  These are debug builds under cargo-lambda's emulator against moto (a Python \
         server): they over-state what a release build on Lambda takes."
    );
    if m.durations.values().any(|d| matches!(d, Timing::Assumed)) {
        println!("  A function with no timing (\"-\") is billed at the assumed figure.");
    }
    println!(
        "  {INSPECTOR}: timed on {INSPECTOR_TIMING_ROUNDS} direct invocations per task \
         of the report (the harness invokes it past the box's clock)."
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
    line("Lambda compute", cost.lambda_compute);
    line("DynamoDB write", cost.dynamo_write);
    line("DynamoDB read", cost.dynamo_read);
    line("SNS", cost.sns);
    line("total", cost.total());
    let mut assumed = m.usage.clone();
    for (f, u) in assumed.functions.iter_mut() {
        u.billed_ms = prices::assumed_billed_ms(f);
    }
    let assumed = Cost::of(&assumed);
    println!(
        "  (Lambda compute at the assumed durations: {}; total {})",
        dollars(assumed.lambda_compute * 1e6),
        dollars(assumed.total() * 1e6)
    );
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
  measured  Lambda billed duration: the median of the box's invocations of each
            function (the emulator's HTTP round trip, warm), rounded up to the next
            ms; the inspector timed on direct invocations with the report's tasks.
            Debug builds under an emulator against moto (Python): an over-statement
            of a release build on Lambda. Cold starts (init) are left out. Printed
            beside the figure assumed before (100 ms, 200 ms for the harness), which
            a function with no timing is still billed at.
  read      memory: each function's MemorySize (its own, else Globals) in
            template.yaml; the inspector's in tester/template.yaml.
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
        "(moto + the five Lambda binaries under cargo-lambda's emulator + the state machine \
         of template.yaml; one inspector, {INSPECTOR}; one emitter, the webhook)"
    );
    println!("The first run compiles the functions inside the emulator: minutes.");
    println!();
    let mut totals = Vec::new();
    for case in &CASES {
        let m = measure(case.alerts, &memory_mb).await?;
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
