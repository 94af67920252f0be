//! Step Functions adapter: the scheduler starts one execution of the delay state
//! machine per job, named after the job so that scheduling twice starts it once.
//!
//! Execution input ([`DelayInput`]): the job, `dispatch_at` (the first Wait's
//! TimestampPath) and, for a re-review, `review_at`.

use alertresponder_core::ports::Scheduler;
use alertresponder_core::{CoreError, Job};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use crate::error::AwsError;

/// Input of the delay state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayInput {
    /// A dispatch or a review job.
    pub job: Job,
    /// When to dispatch (for a review job: at once).
    #[serde(with = "sfn_time")]
    pub dispatch_at: DateTime<Utc>,
    /// When to review, for a review job.
    #[serde(
        default,
        with = "sfn_time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub review_at: Option<DateTime<Utc>>,
}

/// Timestamps as Step Functions' Wait state takes them: whole seconds, `Z`, rounded up
/// so that a wait never ends before its due time.
pub mod sfn_time {
    use super::*;

    /// `t` rounded up to the second, as `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn format(t: &DateTime<Utc>) -> String {
        let up = if t.timestamp_subsec_nanos() > 0 {
            DateTime::from_timestamp(t.timestamp() + 1, 0).unwrap_or(*t)
        } else {
            *t
        };
        up.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Serializes with [`format()`].
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// [`sfn_time`] for optional timestamps.
pub mod sfn_time_opt {
    use super::*;

    /// Serializes with [`sfn_time::format`].
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&sfn_time::format(t)),
            None => s.serialize_none(),
        }
    }

    /// Any RFC 3339 timestamp or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

/// The execution name of a job: `<stage>-<hash of the job name>`, within the 80
/// characters `[A-Za-z0-9_-]` that Step Functions allows. Equal jobs, equal names.
pub fn execution_name(job: &Job) -> String {
    let digest = Sha256::digest(job.name().as_bytes());
    format!("{}-{}", job.stage(), &hex::encode(digest)[..64])
}

/// Starts executions of the delay state machine.
#[derive(Debug, Clone)]
pub struct SfnScheduler {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl SfnScheduler {
    /// A scheduler on `state_machine_arn`.
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }
}

#[async_trait]
impl Scheduler for SfnScheduler {
    async fn schedule(&self, job: &Job, due: DateTime<Utc>) -> Result<(), CoreError> {
        let input = match job {
            Job::Dispatch { .. } => DelayInput {
                job: job.clone(),
                dispatch_at: due,
                review_at: None,
            },
            Job::Review { .. } => DelayInput {
                job: job.clone(),
                dispatch_at: Utc::now().min(due),
                review_at: Some(due),
            },
            Job::Inspect(_) | Job::Deliver { .. } => {
                return Err(CoreError::Port {
                    stage: "scheduler".into(),
                    message: format!(
                        "the delay state machine runs dispatch and review jobs, not {}",
                        job.stage()
                    ),
                    retryable: false,
                })
            }
        };
        let body = serde_json::to_string(&input).map_err(|e| CoreError::Port {
            stage: "scheduler".into(),
            message: e.to_string(),
            retryable: false,
        })?;
        let name = execution_name(job);
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(&name)
            .input(body)
            .send()
            .await
        {
            Ok(_) => {
                info!(execution = %name, job = %job.name(), due = %sfn_time::format(&due), "execution started");
                Ok(())
            }
            // Started before (a retry or a duplicate): the job is scheduled, which is
            // all the caller asks. Step Functions answers so for a closed execution of
            // the same name or a different input.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                debug!(execution = %name, "execution exists already");
                Ok(())
            }
            Err(e) => Err(AwsError::sdk("sfn", "StartExecution", e).into_core("scheduler")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn execution_names_are_stable_short_and_allowed() {
        let job = Job::Dispatch {
            report_id: "0f6ba0d2-7a4e-4b8e-a1b1-1234567890ab".into(),
            message_id: "x".repeat(200),
        };
        let n = execution_name(&job);
        assert_eq!(n, execution_name(&job.clone()));
        assert!(n.len() <= 80, "{n}");
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(n.starts_with("dispatch-"));
        let review = Job::Review {
            report_id: "r".into(),
            version: 2,
        };
        assert_ne!(
            execution_name(&review),
            execution_name(&Job::Review {
                report_id: "r".into(),
                version: 3
            })
        );
    }

    #[test]
    fn wait_timestamps_are_whole_seconds_rounded_up() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        assert_eq!(sfn_time::format(&t), "2026-11-23T10:00:00Z");
        let later = t + chrono::Duration::milliseconds(1);
        assert_eq!(sfn_time::format(&later), "2026-11-23T10:00:01Z");
        let input = DelayInput {
            job: Job::Review {
                report_id: "r".into(),
                version: 1,
            },
            dispatch_at: t,
            review_at: Some(later),
        };
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(json["dispatch_at"], "2026-11-23T10:00:00Z");
        assert_eq!(json["review_at"], "2026-11-23T10:00:01Z");
        assert_eq!(json["job"]["job"], "review");
        let back: DelayInput = serde_json::from_value(json).unwrap();
        assert_eq!(back.job, input.job);
    }
}
