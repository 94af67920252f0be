//! SNS adapters: the task bus, the report bus (with message attributes that
//! subscribers filter on) and the error topic.

use alertresponder_core::fit::{fit_error_record, fit_report};
use alertresponder_core::ports::{ReportBus, TaskBus};
use alertresponder_core::{CoreError, ErrorRecord, Report, Task};
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use tracing::debug;

use crate::error::AwsError;

/// Largest SNS message (256 KiB) less room for the message attributes.
pub const MAX_MESSAGE_BYTES: usize = 250 * 1024;

fn string_attribute(value: &str) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| AwsError::Malformed {
            what: "SNS message attribute".into(),
            message: e.to_string(),
        })
}

fn number_attribute(value: u32) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value.to_string())
        .build()
        .map_err(|e| AwsError::Malformed {
            what: "SNS message attribute".into(),
            message: e.to_string(),
        })
}

/// SNS allows message attribute values of printable text only; attacker-written rule
/// IDs are cut and stripped of control characters.
fn attribute_text(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(256).collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

async fn publish(
    client: &aws_sdk_sns::Client,
    topic_arn: &str,
    message: String,
    attributes: Vec<(&str, MessageAttributeValue)>,
) -> Result<String, AwsError> {
    let mut req = client.publish().topic_arn(topic_arn).message(message);
    for (k, v) in attributes {
        req = req.message_attributes(k, v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| AwsError::sdk("sns", "Publish", e))?;
    Ok(out.message_id.unwrap_or_default())
}

/// Publishes inspection tasks to the task topic (message attribute `attribute_type`,
/// so that an inspector function can subscribe to the types it knows).
#[derive(Debug, Clone)]
pub struct SnsTaskBus {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTaskBus {
    /// A bus on `topic_arn`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl TaskBus for SnsTaskBus {
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError> {
        let body = serde_json::to_string(task).map_err(|e| CoreError::Port {
            stage: "task bus".into(),
            message: e.to_string(),
            retryable: false,
        })?;
        let attrs = vec![(
            "attribute_type",
            string_attribute(&attribute_text(&task.attribute.attr_type))
                .map_err(|e| e.into_core("task bus"))?,
        )];
        let id = publish(&self.client, &self.topic_arn, body, attrs)
            .await
            .map_err(|e| e.into_core("task bus"))?;
        debug!(message_id = %id, report_id = %task.report_id, "task published");
        Ok(())
    }
}

/// Message attributes of a published report: `severity`, `detector`, `rule_id`
/// (of its first alert) and `version`.
pub fn report_attributes(report: &Report) -> Vec<(&'static str, String)> {
    let first = report.alerts.first();
    vec![
        ("severity", report.result.severity.to_string()),
        (
            "detector",
            attribute_text(first.map(|a| a.detector.as_str()).unwrap_or("")),
        ),
        (
            "rule_id",
            attribute_text(first.map(|a| a.rule_id.as_str()).unwrap_or("")),
        ),
        ("version", report.version.to_string()),
    ]
}

/// Publishes reports to the report topic, cut to fit an SNS message if needed.
#[derive(Debug, Clone)]
pub struct SnsReportBus {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsReportBus {
    /// A bus on `topic_arn`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl ReportBus for SnsReportBus {
    async fn publish_report(&self, report: &Report) -> Result<(), CoreError> {
        let fitted = fit_report(report, MAX_MESSAGE_BYTES);
        let body = serde_json::to_string(&fitted).map_err(|e| CoreError::Port {
            stage: "report bus".into(),
            message: e.to_string(),
            retryable: false,
        })?;
        let mut attrs = Vec::new();
        for (k, v) in report_attributes(report) {
            let value = if k == "version" {
                number_attribute(report.version)
            } else {
                string_attribute(&v)
            };
            attrs.push((k, value.map_err(|e| e.into_core("report bus"))?));
        }
        publish(&self.client, &self.topic_arn, body, attrs)
            .await
            .map_err(|e| e.into_core("report bus"))?;
        Ok(())
    }
}

/// Publishes error records (with their input) to the error topic.
#[derive(Debug, Clone)]
pub struct SnsErrorTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsErrorTopic {
    /// The topic `topic_arn`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// Publishes one error record, with message attribute `stage`. The pipeline's
    /// records fit already (`pipeline::MAX_ERROR_INPUT_BYTES`); one that would not is
    /// published with its input cut further and `input_truncated` set, never refused.
    pub async fn publish_error(&self, record: &ErrorRecord) -> Result<(), AwsError> {
        let fitted = fit_error_record(record, MAX_MESSAGE_BYTES);
        let body = serde_json::to_string(&fitted).map_err(|e| AwsError::Malformed {
            what: "error record".into(),
            message: e.to_string(),
        })?;
        publish(
            &self.client,
            &self.topic_arn,
            body,
            vec![("stage", string_attribute(&attribute_text(&record.stage))?)],
        )
        .await
        .map(|_| ())
    }
}
