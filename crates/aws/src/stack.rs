//! Assembling a function's pipeline from its [`StackConfig`]: clients built once per
//! cold start, adapters for what the function's environment names, and a port that
//! fails clearly (naming the variable) for what it does not.

use std::sync::Arc;

use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::*;
use alertresponder_core::{CoreError, ErrorRecord, Job, Report, StoreError, Task};
use alertresponder_plugins::{RegoReviewer, WebhookEmitter};
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

/// The reviewers a function's environment names: the Rego policy, then the reviewer
/// functions.
pub fn reviewers(
    config: &StackConfig,
    sdk: &SdkConfig,
) -> Result<Vec<Arc<dyn Reviewer>>, AwsError> {
    let mut out: Vec<Arc<dyn Reviewer>> = Vec::new();
    if let Some(policy) = &config.policy {
        let rego =
            RegoReviewer::from_source("policy", config::POLICY, policy.clone()).map_err(|e| {
                AwsError::Config {
                    name: config::POLICY.into(),
                    message: e.to_string(),
                }
            })?;
        out.push(Arc::new(rego));
    }
    if !config.reviewer_functions.is_empty() {
        let client = aws_sdk_lambda::Client::new(sdk);
        for f in &config.reviewer_functions {
            out.push(Arc::new(LambdaReviewer::new(client.clone(), f)));
        }
    }
    Ok(out)
}

/// Builds the pipeline of a function from its configuration; `extra_inspectors` run
/// beside the inspector functions the environment names (the harness library's users
/// pass their own here).
pub fn pipeline(
    config: &StackConfig,
    sdk: &SdkConfig,
    extra_inspectors: Vec<Arc<dyn Inspector>>,
) -> Result<Pipeline, AwsError> {
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
    let mut inspectors = extra_inspectors;
    if !config.inspector_functions.is_empty() {
        let client = aws_sdk_lambda::Client::new(sdk);
        for f in &config.inspector_functions {
            inspectors.push(Arc::new(LambdaInspector::new(
                client.clone(),
                f,
                config.inspector_timeout,
            )));
        }
    }
    let mut emitters: Vec<Arc<dyn Emitter>> = Vec::new();
    if let Some(url) = &config.webhook_url {
        let webhook =
            WebhookEmitter::new("webhook", url, vec![], std::time::Duration::from_secs(10))
                .map_err(|e| AwsError::Config {
                    name: config::WEBHOOK_URL.into(),
                    message: e.to_string(),
                })?;
        emitters.push(Arc::new(webhook));
    }
    Ok(Pipeline {
        store,
        errors,
        scheduler,
        tasks,
        reports,
        inspectors,
        reviewers: reviewers(config, sdk)?,
        emitters,
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    })
}
