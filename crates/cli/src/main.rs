//! `alertresponder`: run the AlertResponder pipeline on one machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alertresponder::check::CheckRuntime;
use alertresponder::config::Config;
use alertresponder::input::InputFormat;
use alertresponder::run::RunOptions;
use alertresponder::serve::{current_report, ServeOptions};
use alertresponder::{app, errors, replay, review, run, serve};
use alertresponder_core::pipeline::DeliveryOutcome;
use alertresponder_core::render::{render_text, sanitize};
use alertresponder_core::Severity;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[cfg(feature = "aws")]
mod quarantine;

#[derive(Parser)]
#[command(
    name = "alertresponder",
    version,
    about = "Responds to security alerts: aggregate, inspect, review, emit"
)]
struct Cli {
    /// Config file (default: ./alertresponder.toml if present, else built-in defaults).
    #[arg(long, short, global = true, env = "ALERTRESPONDER_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run alerts from files through the whole pipeline with delays collapsed in virtual
    /// time; print each published report as a JSON line on stdout.
    Run {
        /// Alert or EventBridge event files: one JSON object per line, a JSON array, or JSON
        /// documents one after another; `-` for stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Keep the run's database here (default: a scratch database, removed at the end).
        #[arg(long)]
        database: Option<PathBuf>,
        /// Do not print reports on stdout (configured emitters still run).
        #[arg(long)]
        quiet: bool,
        /// What each JSON document is: `auto` takes one with `detail-type` and `source`
        /// as an EventBridge event (GuardDuty or Security Hub findings, one alert per
        /// finding) and anything else as an alert; `alert` and `eventbridge` force one.
        #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
        format: InputFormat,
    },
    /// Serve the HTTP API and process alerts in real time.
    Serve {
        /// Address to listen on (default: config `listen`, else 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Bearer token required on /v1 (required beyond loopback).
        #[arg(long, env = "ALERTRESPONDER_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Read reports from the database.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// List inputs and jobs that failed, with their original input.
    Errors {
        /// Database file (default: the config's).
        #[arg(long)]
        database: Option<PathBuf>,
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-send a stored report version to one configured emitter, now (same idempotency
    /// key as its first delivery; the emitter's severity filter still applies).
    Replay {
        /// Report ID.
        report_id: String,
        /// Version to send (default: the last published).
        #[arg(long)]
        version: Option<u32>,
        /// The emitter's name, as configured.
        #[arg(long)]
        emitter: String,
        /// Database file (default: the config's).
        #[arg(long)]
        database: Option<PathBuf>,
    },
    /// Run the configured reviewers over saved reports (JSON, JSON lines or arrays, as
    /// `run` prints them or `report show --json` shows them) and print each decision.
    Review {
        /// Report files; `-` for stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Exit 1 unless every decision has this severity (to test a policy in CI).
        #[arg(long, value_parser = ["safe", "unclassified", "urgent"])]
        expect: Option<String>,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the config and build every plugin (secrets resolved, policy parsed, files
    /// opened), then exit; with `--runtime aws`, as the stack's functions will read it.
    Check {
        /// The runtime to check for.
        #[arg(long, value_enum, default_value = "embedded")]
        runtime: CheckRuntime,
        /// With `--runtime aws`: print what `make deploy` needs (files to upload, secrets
        /// to grant, functions, built-in kinds) as JSON, resolving no secret.
        #[arg(long)]
        plan: bool,
    },
    /// Give an EC2 instance that the AWS runtime's automatic quarantine isolated its
    /// recorded security groups back and remove the quarantine's tags (AWS credentials
    /// from the environment: ec2:DescribeInstances, ec2:ModifyNetworkInterfaceAttribute,
    /// ec2:DeleteTags).
    #[cfg(feature = "aws")]
    ReleaseQuarantine {
        /// The instance ID (`i-…`).
        instance: String,
        /// Print what it would do; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// List reports, newest first.
    List {
        /// Database file (default: the config's).
        #[arg(long)]
        database: Option<PathBuf>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one report for a person to read (or as JSON).
    Show {
        /// Report ID.
        id: String,
        /// Database file (default: the config's).
        #[arg(long)]
        database: Option<PathBuf>,
        /// Print the report JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None if Path::new("alertresponder.toml").exists() => {
            Ok(Config::load(Path::new("alertresponder.toml"))?)
        }
        None => Ok(Config::default()),
    }
}

fn init_tracing(format: &str, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    init_tracing(&cli.log_format, default_level);
    match real_main(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("alertresponder: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    // Reads no configuration file: it acts on EC2 only.
    #[cfg(feature = "aws")]
    if let Command::ReleaseQuarantine { instance, dry_run } = &cli.command {
        return quarantine::release(instance, *dry_run).await;
    }
    if let Command::Check {
        runtime: CheckRuntime::Aws,
        plan,
    } = cli.command
    {
        // The file as the stack reads it: not as the embedded runtime would (which
        // rejects Lambda functions).
        let path = match cli.config {
            Some(p) => p,
            None if Path::new("alertresponder.toml").exists() => "alertresponder.toml".into(),
            None => anyhow::bail!("--runtime aws checks a config file: give --config FILE"),
        };
        alertresponder::check::check_aws(&path, plan).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(cli.config.as_deref())?;
    if config.source.is_none()
        && !matches!(cli.command, Command::Report { .. } | Command::Errors { .. })
    {
        eprintln!("no config file: built-in defaults (no inspectors, no reviewer, no emitters); see config.example.json / examples/alertresponder.toml");
    }
    match cli.command {
        Command::Run {
            files,
            database,
            quiet,
            format,
        } => {
            let summary = run::run(
                &config,
                &RunOptions {
                    files,
                    database,
                    quiet,
                    format,
                },
            )
            .await?;
            Ok(if summary.rejected > 0 || summary.failed_jobs > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Serve { listen, token } => {
            let listen = match listen {
                Some(l) => l,
                None => config
                    .listen
                    .as_deref()
                    .unwrap_or("127.0.0.1:8080")
                    .parse()
                    .context("config listen: not an address like 127.0.0.1:8080")?,
            };
            let token = token.or_else(|| config.api_token.clone());
            serve::serve(&config, ServeOptions { listen, token }).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { command } => report(&config, command).await,
        Command::Errors {
            database,
            limit,
            json,
        } => {
            let store = open_existing(&config, database.clone())?;
            for e in errors::list(&store, limit, database.as_deref()).await? {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!("{}", errors::describe(&e));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            report_id,
            version,
            emitter,
            database,
        } => {
            let store = open_existing(&config, database)?;
            let opts = replay::ReplayOptions {
                report_id,
                version,
                emitter,
            };
            let done = replay::replay(&config, &store, &opts).await?;
            println!("{}", done.describe());
            Ok(match done.outcome {
                DeliveryOutcome::Sent => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            })
        }
        Command::Review {
            files,
            expect,
            json,
        } => {
            let expect: Option<Severity> = expect
                .map(|e| e.parse())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let decisions = review::review(&config, &files).await?;
            let mut mismatches = 0;
            for d in &decisions {
                mismatches += usize::from(expect.is_some_and(|e| e != d.result.severity));
                if json {
                    println!("{}", serde_json::to_string(d)?);
                } else {
                    println!("{}", review::describe(d, expect));
                }
            }
            if mismatches > 0 {
                eprintln!(
                    "{mismatches} of {} report(s) did not get the expected severity",
                    decisions.len()
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { plan: true, .. } => anyhow::bail!("--plan is for --runtime aws"),
        Command::Check { .. } => {
            alertresponder::check::check_embedded(&config).await?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "aws")]
        Command::ReleaseQuarantine { instance, dry_run } => {
            quarantine::release(&instance, dry_run).await
        }
    }
}

fn open_existing(
    config: &Config,
    database: Option<PathBuf>,
) -> anyhow::Result<alertresponder_embedded::SqliteStore> {
    let path = database.unwrap_or_else(|| config.database.clone());
    if !path.exists() {
        anyhow::bail!(
            "no database at {} (give --database or --config)",
            path.display()
        );
    }
    app::open_store(&path, config)
}

async fn report(config: &Config, command: ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::List {
            database,
            limit,
            json,
        } => {
            let store = open_existing(config, database)?;
            let list = store.list_reports(limit, 0).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    println!(
                        "{}  {:<12}  v{}  {} alert(s)  {}  {}",
                        r.id,
                        r.severity
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "pending".into()),
                        r.published_version,
                        r.alert_count,
                        r.created_at.to_rfc3339(),
                        sanitize(&r.title, 80)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Show { id, database, json } => {
            let store = open_existing(config, database)?;
            match current_report(&store, &id).await? {
                Some(r) if json => println!("{}", serde_json::to_string_pretty(&r)?),
                Some(r) => print!("{}", render_text(&r)),
                None => {
                    eprintln!("no report {}", sanitize(&id, 80));
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
