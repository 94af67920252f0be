//! Assembling a function's pipeline from its [`StackConfig`]: clients built once per
//! cold start, adapters for what the function's environment names, and a port that
//! fails clearly (naming the variable) for what it does not. The plugins come from the
//! configuration file of `CONFIG_S3_URI` ([`plugins`], [`crate::config_file`]): each
//! function builds only its own (the harness its inspectors, the reviewer invoker its
//! reviewers, the fan-out its emitters), resolving every secret from Secrets Manager
//! at cold start, so that a missing one fails it naming the key.

use std::sync::Arc;

use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::*;
use alertresponder_core::{CoreError, ErrorRecord, Job, Report, StoreError, Task};
use alertresponder_plugins::config::build::{self, BuildEnv};
use alertresponder_plugins::config::{InspectorSource, PluginsConfig};
use alertresponder_plugins::secret::Secrets;
use alertresponder_plugins::secrets_manager::AwsSecretsManager;
use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};

use crate::config::{self, StackConfig};
use crate::dynamo::DynamoStore;
use crate::error::AwsError;
use crate::lambda::{LambdaInspector, LambdaReviewer};
use crate::sfn::SfnScheduler;
use crate::sns::{SnsErrorTopic, SnsReportBus, SnsTaskBus};

/// A port this function's environment does not configure: using it is a bug of the
/// template, reported with the variable that is missing.
#[derive(Debug, Clone, Copy)]
pub struct Unconfigured(pub &'static str);

impl Unconfigured {
    fn error(&self, port: &str) -> CoreError {
        CoreError::Port {
            stage: port.into(),
            message: format!("{} is not set for this function", self.0),
            retryable: false,
        }
    }
}

#[async_trait]
impl Scheduler for Unconfigured {
    async fn schedule(&self, _job: &Job, _due: DateTime<Utc>) -> Result<(), CoreError> {
        Err(self.error("scheduler"))
    }
}

#[async_trait]
impl TaskBus for Unconfigured {
    async fn publish_task(&self, _task: &Task) -> Result<(), CoreError> {
        Err(self.error("task bus"))
    }
}

#[async_trait]
impl ReportBus for Unconfigured {
    async fn publish_report(&self, _report: &Report) -> Result<(), CoreError> {
        Err(self.error("report bus"))
    }
}

/// The task bus of a stack with no inspector: nothing would take a task, so a claimed
/// attribute is marked inspected at once and the review never waits for it (and the
/// harness is never invoked: it costs nothing).
pub struct NoInspection(pub Arc<dyn FindingStore>);

#[async_trait]
impl TaskBus for NoInspection {
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError> {
        self.0
            .mark_inspected(&task.report_id, &task.attribute)
            .await
            .map_err(CoreError::from)
    }
}

/// Where a function keeps rejected inputs and failed steps: the error table, then
/// the error topic, so that subscribers learn of every one, with its input.
///
/// Table first: a record the topic announces is always there to be read back, and a
/// failed publish fails the call, whose retry rewrites the same item (keyed by ID
/// and stage) before publishing again. Topic first, a failed table write would leave
/// subscribers told of a record nobody can find.
pub struct TableThenTopic {
    /// The error table (the function's [`DynamoStore`]).
    pub table: Arc<dyn ErrorSink>,
    /// The error topic.
    pub topic: SnsErrorTopic,
}

#[async_trait]
impl ErrorSink for TableThenTopic {
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        self.table.put_error(record).await?;
        self.topic
            .publish_error(record)
            .await
            .map_err(StoreError::from)
    }
}

/// A function's plugins: what its configuration file and its environment name.
#[derive(Default)]
pub struct Plugins {
    /// Inspectors (the harness).
    pub inspectors: Vec<Arc<dyn Inspector>>,
    /// Reviewers (the reviewer invoker).
    pub reviewers: Vec<Arc<dyn Reviewer>>,
    /// Emitters (the emitter fan-out).
    pub emitters: Vec<Arc<dyn Emitter>>,
}

fn plugin_error(config: &StackConfig, e: alertresponder_plugins::PluginConfigError) -> AwsError {
    AwsError::Config {
        name: config::CONFIG_S3_URI.into(),
        message: format!(
            "{}: {e}",
            config.config_s3_uri.as_deref().unwrap_or("(no file)")
        ),
    }
}

/// Builds the plugins of `config.binary` from the loaded configuration file (if any)
/// and the functions of `INSPECTOR_FUNCTIONS` / `REVIEWER_FUNCTIONS` (a function the
/// file names too runs once). Inspectors get `store` as their answer cache and rate
/// limiter; secrets are read from Secrets Manager (never files, never the template).
pub async fn build_plugins(
    config: &StackConfig,
    sdk: &SdkConfig,
    file: Option<&crate::config_file::LoadedConfig>,
    store: Arc<DynamoStore>,
) -> Result<Plugins, AwsError> {
    let empty = PluginsConfig::default();
    let plugins = file.map_or(&empty, |f| &f.plugins);
    let base_dir = file.map_or_else(std::env::temp_dir, |f| f.dir.clone());
    let secrets = Secrets::local(base_dir.clone())
        .without_files()
        .without_env()
        .with_secrets_manager(Box::new(AwsSecretsManager::new(sdk)));
    let env = BuildEnv {
        secrets: &secrets,
        base_dir: &base_dir,
        cache: Some(store.clone()),
        limiter: Some(store.clone()),
        clock: Arc::new(SystemClock),
        quota_clock: Arc::new(SystemClock),
        // The report table keeps what an emitter remembers (the GitHub issue number).
        deliveries: Some(store),
    };
    let lambda = || aws_sdk_lambda::Client::new(sdk);
    let mut out = Plugins::default();
    match config.binary {
        "inspector-harness" => {
            let mut functions: Vec<&str> = Vec::new();
            for (index, inspector) in plugins.inspectors.iter().enumerate() {
                let built = match &inspector.source {
                    InspectorSource::Function(arn) => {
                        functions.push(arn);
                        let inner: Arc<dyn Inspector> =
                            Arc::new(LambdaInspector::new(lambda(), arn, inspector.timeout));
                        build::wrap(inspector, inner, &env)
                    }
                    _ => build::inspector(inspector, index, &env)
                        .await
                        .map_err(|e| plugin_error(config, e))?,
                };
                out.inspectors.push(built);
            }
            for f in &config.inspector_functions {
                if !functions.contains(&f.as_str()) {
                    out.inspectors.push(Arc::new(LambdaInspector::new(
                        lambda(),
                        f,
                        config.inspector_timeout,
                    )));
                }
            }
        }
        "reviewer-invoker" => {
            out.reviewers =
                build::reviewers(&plugins.reviewer).map_err(|e| plugin_error(config, e))?;
            let mut functions: Vec<&str> = Vec::new();
            if let Some(arn) = &plugins.reviewer.function {
                functions.push(arn);
                out.reviewers
                    .push(Arc::new(LambdaReviewer::new(lambda(), arn.as_str())));
            }
            for f in &config.reviewer_functions {
                if !functions.contains(&f.as_str()) {
                    out.reviewers
                        .push(Arc::new(LambdaReviewer::new(lambda(), f)));
                }
            }
        }
        "emitter-fanout" => {
            for (index, emitter) in plugins.emitters.iter().enumerate() {
                out.emitters.push(
                    build::emitter(emitter, index, &env)
                        .await
                        .map_err(|e| plugin_error(config, e))?,
                );
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Builds the pipeline of a function with its plugins: reads `CONFIG_S3_URI` (when
/// set) and builds what the function runs; `extra_inspectors` run beside them (the
/// harness library's users pass their own here). A missing secret, an unreadable
/// file or an invalid value fails here, at cold start, naming the key.
pub async fn configured_pipeline(
    config: &StackConfig,
    sdk: &SdkConfig,
    extra_inspectors: Vec<Arc<dyn Inspector>>,
) -> Result<Pipeline, AwsError> {
    let (mut pipeline, store) = base(config, sdk)?;
    let file = match &config.config_s3_uri {
        Some(uri) => Some(crate::config_file::load(sdk, uri).await?),
        None => None,
    };
    let plugins = build_plugins(config, sdk, file.as_ref(), store).await?;
    pipeline.inspectors = extra_inspectors;
    pipeline.inspectors.extend(plugins.inspectors);
    pipeline.reviewers = plugins.reviewers;
    pipeline.emitters = plugins.emitters;
    Ok(pipeline)
}

/// Builds the pipeline of a function that runs no plugin (the receptor, the
/// dispatcher): stores, buses and scheduler from its configuration; `extra_inspectors`
/// as its inspectors.
pub fn pipeline(
    config: &StackConfig,
    sdk: &SdkConfig,
    extra_inspectors: Vec<Arc<dyn Inspector>>,
) -> Result<Pipeline, AwsError> {
    let (mut pipeline, _) = base(config, sdk)?;
    pipeline.inspectors = extra_inspectors;
    Ok(pipeline)
}

/// The pipeline without plugins, and its store.
fn base(config: &StackConfig, sdk: &SdkConfig) -> Result<(Pipeline, Arc<DynamoStore>), AwsError> {
    let report_table = StackConfig::require(&config.report_table, config::REPORT_TABLE)?;
    let error_table = StackConfig::require(&config.error_table, config::ERROR_TABLE)?;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        report_table,
        error_table,
        config.record_ttl,
    ));
    let sns = aws_sdk_sns::Client::new(sdk);
    let errors: Arc<dyn ErrorSink> = match &config.error_topic_arn {
        Some(arn) => Arc::new(TableThenTopic {
            table: store.clone(),
            topic: SnsErrorTopic::new(sns.clone(), arn),
        }),
        None => store.clone(),
    };
    let scheduler: Arc<dyn Scheduler> = match &config.state_machine_arn {
        Some(arn) => Arc::new(SfnScheduler::new(aws_sdk_sfn::Client::new(sdk), arn)),
        None => Arc::new(Unconfigured(config::STATE_MACHINE_ARN)),
    };
    let tasks: Arc<dyn TaskBus> = match &config.task_topic_arn {
        Some(arn) => Arc::new(SnsTaskBus::new(sns.clone(), arn)),
        // The stack names no inspector (the template leaves the task topic out): an
        // attribute's inspection is over as soon as it is claimed.
        None => Arc::new(NoInspection(store.clone())),
    };
    let reports: Arc<dyn ReportBus> = match &config.report_topic_arn {
        Some(arn) => Arc::new(SnsReportBus::new(sns.clone(), arn)),
        None => Arc::new(Unconfigured(config::REPORT_TOPIC_ARN)),
    };
    let pipeline = Pipeline {
        store: store.clone(),
        errors,
        scheduler,
        tasks,
        reports,
        inspectors: Vec::new(),
        reviewers: Vec::new(),
        emitters: Vec::new(),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    };
    Ok((pipeline, store))
}
