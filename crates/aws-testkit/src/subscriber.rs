//! An SQS queue subscribed to an SNS topic, to read exactly what a subscriber gets:
//! the tests' view of the report and error topics, of moto's and of a deployed stack.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;

/// An SQS queue subscribed to an SNS topic, to read what a subscriber receives.
pub struct Subscriber {
    sqs: aws_sdk_sqs::Client,
    /// The queue.
    pub queue_url: String,
}

/// What an SQS subscriber got from SNS: the message and its attributes.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message body (raw delivery).
    pub body: String,
    /// Message attributes by name (string values).
    pub attributes: std::collections::BTreeMap<String, String>,
}

impl Subscriber {
    /// Creates queue `name` and subscribes it to `topic_arn` with raw delivery and an
    /// optional filter policy (JSON).
    pub async fn create(
        config: &SdkConfig,
        topic_arn: &str,
        name: &str,
        filter_policy: Option<&str>,
    ) -> Subscriber {
        let sqs = aws_sdk_sqs::Client::new(config);
        let sns = aws_sdk_sns::Client::new(config);
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attrs
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        let mut sub = sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true");
        if let Some(policy) = filter_policy {
            sub = sub.attributes("FilterPolicy", policy);
        }
        sub.send().await.expect("subscribe queue");
        Subscriber { sqs, queue_url }
    }

    /// A subscriber reading queue `queue_url`, which exists already (a stack made it).
    pub fn existing(config: &SdkConfig, queue_url: impl Into<String>) -> Subscriber {
        Subscriber {
            sqs: aws_sdk_sqs::Client::new(config),
            queue_url: queue_url.into(),
        }
    }

    /// One receive, waiting up to `wait` (whole seconds) for something to arrive:
    /// what did, deleted from the queue. The error has the SDK's whole chain of causes.
    pub async fn receive(&self, wait: Duration) -> Result<Vec<Delivered>, String> {
        let failed = |doing: &str, e: &dyn std::error::Error| {
            format!(
                "{doing} {}: {}",
                self.queue_url,
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        };
        let got = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(|e| failed("receiving from", &e))?;
        let mut out = Vec::new();
        for m in got.messages.unwrap_or_default() {
            let attributes = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect();
            out.push(Delivered {
                body: m.body.unwrap_or_default(),
                attributes,
            });
            if let Some(h) = m.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .map_err(|e| failed("deleting a message read from", &e))?;
            }
        }
        Ok(out)
    }

    /// Everything delivered until `quiet` passes with nothing new (deleting what it read).
    pub async fn drain(&self, quiet: Duration) -> Vec<Delivered> {
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            let got = self
                .receive(Duration::ZERO)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if got.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            last = Instant::now();
            out.extend(got);
        }
        out
    }
}

/// Creates SNS topic `name`; its ARN.
pub async fn create_topic(config: &SdkConfig, name: &str) -> String {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .expect("topic arn")
}
