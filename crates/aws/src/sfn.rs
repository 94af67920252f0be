//! Step Functions adapter: the scheduler starts one execution of the delay state
//! machine per job, named after the job so that scheduling twice starts it once.
//!
//! Execution input ([`DelayInput`]): the job, `dispatch_at` (the first Wait's
//! TimestampPath) and, for a re-review, `review_at`.
//!
//! A name stays taken for 90 days after its execution closes, successful or not, so
//! "the name exists" does not mean "the job is scheduled": a review that FAILED would
//! otherwise block its (report, version) for good. On `ExecutionAlreadyExists` the
//! scheduler looks at that execution; running or succeeded, the job is scheduled;
//! closed without success, it starts the job's next execution, named
//! `<name>-2`, `<name>-3` … ([`execution_name_at`]) up to [`MAX_EXECUTIONS_PER_JOB`].
//! The names are deterministic, so two schedulers that both find the same failed
//! execution race for the same successor: one starts it, the other is told it exists
//! and finds it running.

use alertresponder_core::ports::Scheduler;
use alertresponder_core::{CoreError, Job};
use async_trait::async_trait;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

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

/// How many executions one job may have: the first and the successors of those that
/// closed without success. Past it the job fails for good, naming itself: a job whose
/// executions keep failing needs a person, not another execution.
pub const MAX_EXECUTIONS_PER_JOB: u32 = 10;

/// The name of a job's `attempt`th execution (from 1): [`execution_name`] for the
/// first, `<execution_name>-<attempt>` for its successors. The hash has a fixed length,
/// so no first name ends like a successor's; the longest (`dispatch-<64>-10`) is 76
/// characters.
pub fn execution_name_at(job: &Job, attempt: u32) -> String {
    let first = execution_name(job);
    if attempt <= 1 {
        first
    } else {
        format!("{first}-{attempt}")
    }
}

/// The name every execution of one job shares as its publisher: a successor's name
/// less its `-<n>`, a first execution's name as it is. A successor that finds the
/// version marked published by a failed predecessor then re-publishes it (the same
/// publisher), instead of leaving it marked but never sent.
pub fn job_execution_name(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((head, n))
            if !n.is_empty()
                && n.len() <= 2
                && n.bytes().all(|b| b.is_ascii_digit())
                && head
                    .rsplit_once('-')
                    .is_some_and(|(_, hash)| hash.len() == 64) =>
        {
            head
        }
        _ => name,
    }
}

/// The ARN of execution `name` of `state_machine_arn`
/// (`arn:P:states:R:A:stateMachine:M` → `arn:P:states:R:A:execution:M:name`).
fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let (head, machine) = state_machine_arn.split_once(":stateMachine:")?;
    Some(format!("{head}:execution:{machine}:{name}"))
}

/// What a job is, in a person's terms, for the error that gives up on it.
fn describe(job: &Job) -> String {
    match job {
        Job::Review { report_id, version } => {
            format!("the review of report {report_id} version {version}")
        }
        Job::Dispatch {
            report_id,
            message_id,
        } => format!("the dispatch of report {report_id} (message {message_id})"),
        other => format!("job {}", other.name()),
    }
}

fn scheduler_error(message: String, retryable: bool) -> CoreError {
    CoreError::Port {
        stage: "scheduler".into(),
        message,
        retryable,
    }
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
        for attempt in 1..=MAX_EXECUTIONS_PER_JOB {
            let name = execution_name_at(job, attempt);
            if self.start(&name, &body).await? {
                info!(execution = %name, job = %job.name(), due = %sfn_time::format(&due), "execution started");
                return Ok(());
            }
            // Started before (a retry, a duplicate, or a scheduler racing this one), or
            // closed: only a running or succeeded execution has the job in hand.
            match self.status(&name).await? {
                ExecutionStatus::Running
                | ExecutionStatus::Succeeded
                | ExecutionStatus::PendingRedrive => {
                    debug!(execution = %name, "execution exists already");
                    return Ok(());
                }
                status @ (ExecutionStatus::Failed
                | ExecutionStatus::TimedOut
                | ExecutionStatus::Aborted) => {
                    warn!(execution = %name, job = %job.name(), status = %status.as_str(), "execution closed without success: starting its successor");
                }
                other => {
                    return Err(scheduler_error(
                        format!(
                            "execution {name} of {} has status {}, unknown to the scheduler",
                            describe(job),
                            other.as_str()
                        ),
                        true,
                    ))
                }
            }
        }
        Err(scheduler_error(
            format!(
                "{}: its {MAX_EXECUTIONS_PER_JOB} executions (the last {}) all ended without \
                 success; not starting another",
                describe(job),
                execution_name_at(job, MAX_EXECUTIONS_PER_JOB)
            ),
            false,
        ))
    }
}

impl SfnScheduler {
    /// Starts execution `name`: `true` if this call started it (or Step Functions took
    /// it as a repeat of the same running start), `false` if the name is taken.
    async fn start(&self, name: &str, input: &str) -> Result<bool, CoreError> {
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::sdk("sfn", "StartExecution", e).into_core("scheduler")),
        }
    }

    /// The status of execution `name` of the state machine.
    async fn status(&self, name: &str) -> Result<ExecutionStatus, CoreError> {
        let arn = execution_arn(&self.state_machine_arn, name).ok_or_else(|| {
            scheduler_error(
                format!(
                    "state machine ARN {} has no :stateMachine: part to name executions by",
                    self.state_machine_arn
                ),
                false,
            )
        })?;
        let described = self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::sdk("sfn", "DescribeExecution", e).into_core("scheduler"))?;
        Ok(described.status)
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
    fn successor_names_are_distinct_short_allowed_and_start_from_the_first() {
        let job = Job::Dispatch {
            report_id: "r".into(),
            message_id: "m".into(),
        };
        assert_eq!(execution_name_at(&job, 1), execution_name(&job));
        let names: Vec<String> = (1..=MAX_EXECUTIONS_PER_JOB)
            .map(|n| execution_name_at(&job, n))
            .collect();
        assert_eq!(names[1], format!("{}-2", execution_name(&job)));
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
        for n in &names {
            assert!(n.len() <= 80, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{n}"
            );
        }
    }

    #[test]
    fn an_execution_arn_is_its_state_machine_arn_with_the_name() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:stack-delay",
                "review-ab"
            )
            .as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:stack-delay:review-ab")
        );
        assert_eq!(execution_arn("not-an-arn", "x"), None);
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

    #[test]
    fn every_execution_of_a_job_publishes_under_the_first_ones_name() {
        let job = Job::Review {
            report_id: "r1".into(),
            version: 2,
        };
        let first = execution_name_at(&job, 1);
        for n in 1..=MAX_EXECUTIONS_PER_JOB {
            assert_eq!(job_execution_name(&execution_name_at(&job, n)), first);
        }
        assert_eq!(job_execution_name("someone-else"), "someone-else");
        assert_eq!(job_execution_name("manual-run-2"), "manual-run-2");
    }
}
