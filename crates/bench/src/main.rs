//! `alertresponder-bench`: prints how fast AlertResponder is, never asserts on it.
//!
//! Part 1 ([`pipeline_bench`]) runs the whole pipeline in process with zero delays and
//! measures throughput and end-to-end latency, receive to emission. Part 2
//! ([`ingest_bench`]) measures how many alerts per second a real `alertresponder serve`
//! process takes over HTTP, beside Prometheus Alertmanager ([`alertmanager`]) fed the
//! same alerts. [`alerts`] builds the alert bodies, [`process`] starts and stops the
//! servers, [`figures`] formats rates and latency percentiles.

mod alertmanager;
mod alerts;
mod figures;
mod ingest_bench;
mod pipeline_bench;
mod process;

use std::process::ExitCode;

use anyhow::{bail, Context};

const USAGE: &str = "\
usage: alertresponder-bench [--alerts N] [--keys K] [--ingest N] [--clients C] [--part 1|2]

  --alerts N   alerts through the in-process pipeline (part 1, default 10000)
  --keys K     alert keys the alerts are spread over (default 1000)
  --ingest N   alerts posted over HTTP per run (part 2, default 100000)
  --clients C  concurrent HTTP clients (part 2, default 8)
  --part P     run only part 1 (pipeline) or part 2 (HTTP ingest)";

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Alerts through the pipeline in part 1.
    pub alerts: usize,
    /// Alert keys (reports) the alerts are spread over.
    pub keys: usize,
    /// Alerts posted per run in part 2.
    pub ingest: usize,
    /// Concurrent HTTP clients in part 2.
    pub clients: usize,
    /// Only this part (1 or 2), or both.
    pub part: Option<u8>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            alerts: 10_000,
            keys: 1_000,
            ingest: 100_000,
            clients: 8,
            part: None,
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<BenchOptions>> {
    let mut opts = BenchOptions::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .with_context(|| format!("{name} needs a value"))?,
        };
        let number = || -> anyhow::Result<usize> {
            let n: usize = value
                .parse()
                .with_context(|| format!("{name}: {value:?} is not a number"))?;
            if n == 0 {
                bail!("{name} must be at least 1");
            }
            Ok(n)
        };
        match name.as_str() {
            "--alerts" => opts.alerts = number()?,
            "--keys" => opts.keys = number()?,
            "--ingest" => opts.ingest = number()?,
            "--clients" => opts.clients = number()?,
            "--part" => match value.as_str() {
                "1" => opts.part = Some(1),
                "2" => opts.part = Some(2),
                _ => bail!("--part: {value:?} is not 1 or 2"),
            },
            _ => bail!("unknown option {flag:?}"),
        }
    }
    Ok(Some(opts))
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("alertresponder-bench: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alertresponder-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(opts: &BenchOptions) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "AlertResponder benchmark: {cores} core(s), {} build",
        if cfg!(debug_assertions) {
            "DEBUG (figures are not representative)"
        } else {
            "release"
        }
    );
    if opts.part != Some(2) {
        println!();
        pipeline_bench::run(opts).await?;
    }
    if opts.part != Some(1) {
        println!();
        ingest_bench::run(opts).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<BenchOptions>> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_set_sizes_in_both_spellings() {
        let o = parse(&["--alerts", "500", "--keys=50", "--ingest", "2000"])
            .unwrap()
            .unwrap();
        assert_eq!((o.alerts, o.keys, o.ingest, o.clients), (500, 50, 2000, 8));
    }

    #[test]
    fn zero_and_unknown_flags_are_refused() {
        assert!(parse(&["--alerts", "0"]).is_err());
        assert!(parse(&["--fast"]).is_err());
        assert!(parse(&["--keys"]).is_err());
    }
}
