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

/// A store whose error records also go to the error topic, so that subscribers learn
/// of every rejected alert and failed step, with its input.
pub struct ErrorPublishingStore {
    inner: Arc<dyn Store>,
    topic: SnsErrorTopic,
}

impl ErrorPublishingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, topic: SnsErrorTopic) -> Self {
        Self { inner, topic }
    }
}

#[async_trait]
impl Store for ErrorPublishingStore {
    async fn open_or_join(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<ReportMeta, StoreError> {
        self.inner
            .open_or_join(alert_id, message_id, candidate_id, now, window)
            .await
    }

    async fn open_join_and_put(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        alert: &alertresponder_core::Alert,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<Admission, StoreError> {
        self.inner
            .open_join_and_put(alert_id, message_id, candidate_id, alert, now, window)
            .await
    }

    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        self.inner.report_meta(report_id).await
    }

    async fn put_alert(
        &self,
        report_id: &str,
        message_id: &str,
        alert: &alertresponder_core::Alert,
        received_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner
            .put_alert(report_id, message_id, alert, received_at)
            .await
    }

    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<alertresponder_core::Alert>, StoreError> {
        self.inner.get_alert(report_id, message_id).await
    }

    async fn knows_attributes(
        &self,
        report_id: &str,
        message_id: &str,
        attribute_hashes: &[String],
    ) -> Result<bool, StoreError> {
        self.inner
            .knows_attributes(report_id, message_id, attribute_hashes)
            .await
    }

    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &alertresponder_core::Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError> {
        self.inner
            .claim_attribute(report_id, attribute, claimer, cap)
            .await
    }

    async fn put_section(
        &self,
        section: &alertresponder_core::ReportSection,
        index: usize,
    ) -> Result<(), StoreError> {
        self.inner.put_section(section, index).await
    }

    async fn put_inspection(
        &self,
        report_id: &str,
        record: &alertresponder_core::InspectionRecord,
    ) -> Result<(), StoreError> {
        self.inner.put_inspection(report_id, record).await
    }

    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError> {
        self.inner.load_report(report_id).await
    }

    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError> {
        self.inner.mark_published(report, publisher).await
    }

    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError> {
        self.inner.published_report(report_id, version).await
    }

    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        // Table first: if the topic publish fails, the retry rewrites the same item.
        self.inner.put_error(record).await?;
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
    let dynamo: Arc<dyn Store> = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        report_table,
        error_table,
        config.record_ttl,
    ));
    let sns = aws_sdk_sns::Client::new(sdk);
    let store: Arc<dyn Store> = match &config.error_topic_arn {
        Some(arn) => Arc::new(ErrorPublishingStore::new(
            dynamo,
            SnsErrorTopic::new(sns.clone(), arn),
        )),
        None => dynamo,
    };
    let scheduler: Arc<dyn Scheduler> = match &config.state_machine_arn {
        Some(arn) => Arc::new(SfnScheduler::new(aws_sdk_sfn::Client::new(sdk), arn)),
        None => Arc::new(Unconfigured(config::STATE_MACHINE_ARN)),
    };
    let tasks: Arc<dyn TaskBus> = match &config.task_topic_arn {
        Some(arn) => Arc::new(SnsTaskBus::new(sns.clone(), arn)),
        None => Arc::new(Unconfigured(config::TASK_TOPIC_ARN)),
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
        scheduler,
        tasks,
        reports,
        inspectors,
        reviewers: Vec::new(),
        emitters,
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    })
}
