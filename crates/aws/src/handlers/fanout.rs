//! The emitter fan-out: each published version, as stored, to every built-in emitter,
//! each (report, version, emitter) its own unit; and a replay to one emitter.
//!
//! Delivery, from the report topic ([`deliver_sns`]):
//!
//! - every emitter is tried at once, concurrently: one slow or failing target never
//!   holds the others;
//! - a version recorded as delivered to an emitter is skipped: when Lambda invokes
//!   the function again for the same message (its async retry after an error, an SNS
//!   duplicate), only the targets that did not get it are tried, so Slack is never
//!   sent a version again because GitHub failed;
//! - a retryable failure (5xx, timeout, 429) is tried again inside the invocation,
//!   after the longer of a doubling backoff and the target's `Retry-After`, as long as
//!   the wait and one more try fit the invocation's time (see [`TRY_RESERVE`]);
//! - a delivery still failing at the end is kept as an error record (a `deliver` job
//!   naming the emitter, with the replay to run); if any failure was retryable the
//!   invocation fails `Retryable`, and Lambda's async retry (twice, a minute and two
//!   minutes later) tries the undelivered targets again. A rejection (HTTP 4xx but
//!   408 and 429) is not retried.
//!
//! Replay, invoked directly with `{"replay": {"report_id": …, "version": …, "emitter":
//! …}}` ([`replay`]): sends the version (default: the last published) to that one
//! emitter again, even when recorded as delivered, and answers what it did.

use std::time::Duration;

use alertresponder_core::pipeline::{self, error_record, DeliveryOrder, DeliveryOutcome, Pipeline};
use alertresponder_core::{CoreError, Job};
use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{EdgeError, EdgeErrorKind};

/// The emitter fan-out's timeout, as `template.yaml` gives it (the `Globals` function
/// timeout; a test checks they agree). An invocation's own deadline comes from its
/// Lambda context; this bounds how old a message can be on its first invocation.
pub const FANOUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Time kept free before the invocation's deadline: a retry starts only if its wait
/// plus this still fits. It is the default emitter `timeout` (30 s: one more try that
/// hangs to its end) plus 5 s to record the outcome. With the 60 s of
/// [`FANOUT_TIMEOUT`], a target that fails fast is tried a few times with backoff
/// inside one invocation, one that hangs is tried once; an emitter configured with a
/// longer timeout can be cut by the deadline (then Lambda's retry tries it again).
pub const TRY_RESERVE: Duration = Duration::from_secs(35);

/// How one invocation retries a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutRetry {
    /// Tries of one delivery in one invocation, at most.
    pub max_attempts: u32,
    /// Wait before the second try; doubled after each.
    pub base: Duration,
    /// Longest backoff (a longer `Retry-After` is still honoured if it fits).
    pub max_backoff: Duration,
    /// Time kept free before the deadline (see [`TRY_RESERVE`]).
    pub reserve: Duration,
}

impl Default for FanoutRetry {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            reserve: TRY_RESERVE,
        }
    }
}

impl FanoutRetry {
    /// The wait before the try after `tries` failed ones: the backoff, or the target's
    /// `Retry-After` when longer.
    pub fn delay(&self, tries: u32, error: &CoreError) -> Duration {
        let factor = 1u32
            .checked_shl(tries.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        let backoff = self.base.saturating_mul(factor).min(self.max_backoff);
        backoff.max(error.retry_after().unwrap_or_default())
    }
}

/// The time an invocation has, and how it retries within it.
#[derive(Debug, Clone)]
pub struct DeliveryBudget {
    /// When the function will be stopped.
    pub deadline: Instant,
    /// How a delivery is retried before that.
    pub retry: FanoutRetry,
}

impl DeliveryBudget {
    /// The budget of an invocation whose Lambda context says it ends at `deadline_ms`
    /// (epoch milliseconds), with the default retries.
    pub fn from_deadline_ms(deadline_ms: u64) -> Self {
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Self {
            deadline: Instant::now() + left,
            retry: FanoutRetry::default(),
        }
    }

    /// Whether a wait of `wait` and one more try still fit before the deadline.
    fn fits(&self, wait: Duration) -> bool {
        Instant::now() + wait + self.retry.reserve <= self.deadline
    }
}

/// What the emitter fan-out did with a batch of report messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliverOutput {
    /// Deliveries that succeeded now (one per report version and emitter).
    pub delivered: usize,
    /// Deliveries recorded before (an earlier invocation got them through): skipped.
    #[serde(default)]
    pub already_delivered: usize,
    /// Versions an emitter's filter does not want: neither sent nor recorded.
    #[serde(default)]
    pub not_wanted: usize,
    /// Deliveries that failed, kept in the error table and on the error topic.
    pub failed: usize,
}

/// The identifiers a report message carries (the message is the report, maybe cut
/// to fit SNS; the emitters get the stored version, whole).
#[derive(Debug, Clone, Deserialize)]
struct PublishedRef {
    id: String,
    version: u32,
}

/// How one (report, version, emitter) ended in this invocation.
struct Settled {
    emitter: String,
    outcome: Result<DeliveryOutcome, CoreError>,
    tries: u32,
}

/// Emitter-fanout, subscribed to the report topic: hands each published version, as
/// stored, to every built-in emitter (see the module documentation).
pub async fn deliver_sns(
    p: &Pipeline,
    event: SnsEvent,
    budget: &DeliveryBudget,
) -> Result<DeliverOutput, EdgeError> {
    let mut out = DeliverOutput::default();
    let mut retrying: Vec<String> = Vec::new();
    for record in event.records {
        let published: PublishedRef = match serde_json::from_str(&record.sns.message) {
            Ok(r) => r,
            Err(e) => {
                p.errors
                    .put_error(&error_record(
                        record.sns.message_id.clone(),
                        "deliver",
                        format!("not a report message: {e}"),
                        None,
                        record.sns.message.as_bytes(),
                        p.clock.now(),
                    ))
                    .await
                    .map_err(CoreError::from)?;
                out.failed += 1;
                continue;
            }
        };
        let first = first_attempt(p.clock.now(), record.sns.timestamp);
        let published = &published;
        let settled = futures::future::join_all(p.emitters.iter().map(|e| {
            let name = e.name().to_string();
            async move {
                let order = DeliveryOrder::job(&published.id, published.version, &name, first);
                let (outcome, tries) = with_retries(p, order, budget).await;
                Settled {
                    emitter: name,
                    outcome,
                    tries,
                }
            }
        }))
        .await;
        for s in settled {
            match s.outcome {
                Ok(DeliveryOutcome::Sent) => out.delivered += 1,
                Ok(DeliveryOutcome::AlreadyDelivered) => out.already_delivered += 1,
                Ok(DeliveryOutcome::NotWanted) => out.not_wanted += 1,
                Err(e) => {
                    let job = Job::Deliver {
                        report_id: published.id.clone(),
                        version: published.version,
                        emitter: s.emitter,
                    };
                    keep_failure(p, &job, &e, s.tries).await?;
                    if e.is_retryable() {
                        retrying.push(job.name());
                    }
                    out.failed += 1;
                }
            }
        }
    }
    if !retrying.is_empty() {
        return Err(EdgeError {
            kind: EdgeErrorKind::Retryable,
            message: format!(
                "{} deliveries failed and are left to Lambda's retry ({}); {} delivered now, {} before",
                retrying.len(),
                retrying.join(", "),
                out.delivered,
                out.already_delivered
            ),
        });
    }
    Ok(out)
}

/// The attempt a delivery's first try in this invocation counts as. A message
/// published longer ago than the function's timeout may have been tried by an earlier
/// invocation (Lambda's async retries come a minute or more after a failure): its
/// tries count from 1, so that an emitter looks before it creates (the GitHub issue).
fn first_attempt(now: DateTime<Utc>, published_at: DateTime<Utc>) -> u32 {
    let age = (now - published_at).to_std().unwrap_or_default();
    u32::from(age > FANOUT_TIMEOUT)
}

/// Delivers one (report, version, emitter), retrying a retryable failure while the
/// budget allows; answers how it ended and how many tries it took.
async fn with_retries(
    p: &Pipeline,
    mut order: DeliveryOrder<'_>,
    budget: &DeliveryBudget,
) -> (Result<DeliveryOutcome, CoreError>, u32) {
    let mut tries = 0;
    loop {
        let result = pipeline::deliver(&*p.store, &*p.store, &p.emitters, &*p.clock, &order).await;
        tries += 1;
        let error = match result {
            Ok(outcome) => return (Ok(outcome), tries),
            Err(e) => e,
        };
        if !error.is_retryable() || tries >= budget.retry.max_attempts {
            return (Err(error), tries);
        }
        let wait = budget.retry.delay(tries, &error);
        if !budget.fits(wait) {
            info!(emitter = %order.emitter, ?wait, "no time left in this invocation to retry");
            return (Err(error), tries);
        }
        warn!(emitter = %order.emitter, tries, ?wait, error = %error, "delivery failed, retrying");
        tokio::time::sleep(wait).await;
        order.attempt += 1;
    }
}

/// Keeps a delivery that failed in this invocation as an error record (the `deliver`
/// job, its input), saying whether Lambda's retry tries it again and how to replay it.
async fn keep_failure(p: &Pipeline, job: &Job, e: &CoreError, tries: u32) -> Result<(), EdgeError> {
    let Job::Deliver {
        report_id,
        version,
        emitter,
    } = job
    else {
        return Ok(());
    };
    warn!(%emitter, %report_id, version, tries, error = %e, "delivery failed");
    let next = if e.is_retryable() {
        "Lambda's retry of the invocation tries it again; if that fails too, replay it"
    } else {
        "not retried; once the cause is fixed, replay it"
    };
    let payload = serde_json::json!({
        "replay": {"report_id": report_id, "version": version, "emitter": emitter}
    });
    let error = format!(
        "{e} ({tries} tries; {next}: invoke the emitter fan-out with {payload}, see the README's Delivery)"
    );
    let input = serde_json::to_string(job).unwrap_or_default();
    p.errors
        .put_error(&error_record(
            job.name(),
            job.stage(),
            error,
            None,
            input.as_bytes(),
            p.clock.now(),
        ))
        .await
        .map_err(CoreError::from)?;
    Ok(())
}

/// A replay asked for by direct invocation: `{"replay": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The report.
    pub report_id: String,
    /// The version to send (default: the last published).
    #[serde(default)]
    pub version: Option<u32>,
    /// The emitter to send it to.
    pub emitter: String,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayOutput {
    /// The report.
    pub report_id: String,
    /// The version sent.
    pub version: u32,
    /// The emitter.
    pub emitter: String,
    /// `sent`, or `not_wanted` when the emitter's filter does not take this version.
    pub outcome: DeliveryOutcome,
    /// Tries it took.
    pub tries: u32,
}

/// Sends a stored version to one emitter again, even when recorded as delivered
/// (with the same idempotency key as its first delivery: the target updates rather
/// than duplicates where it can), retrying within the budget. An unknown emitter,
/// report or version is an error naming it; a failure is answered to the caller.
pub async fn replay(
    p: &Pipeline,
    request: &ReplayRequest,
    budget: &DeliveryBudget,
) -> Result<ReplayOutput, EdgeError> {
    let ReplayRequest {
        report_id,
        version,
        emitter,
    } = request;
    if !p.emitters.iter().any(|e| e.name() == emitter) {
        let names: Vec<&str> = p.emitters.iter().map(|e| e.name()).collect();
        return Err(EdgeError::invalid(format!(
            "replay.emitter: no emitter {emitter:?} is configured (configured: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let not_found = |message: String| EdgeError {
        kind: EdgeErrorKind::NotFound,
        message,
    };
    let version = match version {
        Some(v) => *v,
        None => {
            let meta = p
                .store
                .report_meta(report_id)
                .await
                .map_err(CoreError::from)?
                .ok_or_else(|| not_found(format!("replay.report_id: no report {report_id}")))?;
            if meta.published_version == 0 {
                return Err(not_found(format!(
                    "replay.report_id: report {report_id} has no published version yet"
                )));
            }
            meta.published_version
        }
    };
    let order = DeliveryOrder::replay(report_id, version, emitter);
    let (outcome, tries) = with_retries(p, order, budget).await;
    let outcome = outcome.map_err(|e| match e {
        CoreError::NotFound { .. } => not_found(format!(
            "replay.version: report {report_id} has no published version {version}"
        )),
        other => EdgeError::from(other),
    })?;
    info!(%report_id, version, %emitter, %outcome, tries, "replayed");
    Ok(ReplayOutput {
        report_id: report_id.clone(),
        version,
        emitter: emitter.clone(),
        outcome,
        tries,
    })
}

/// What the fan-out answers: a delivery batch's counts, or a replay's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FanoutOutput {
    /// The report topic's event was delivered.
    Delivered(DeliverOutput),
    /// A replay was made.
    Replayed(ReplayOutput),
}

/// The fan-out's event, whoever sent it: a replay (`{"replay": {…}}`, a direct
/// invocation) or the report topic's SNS event.
pub async fn fanout_event(
    p: &Pipeline,
    event: Value,
    budget: &DeliveryBudget,
) -> Result<FanoutOutput, EdgeError> {
    if let Some(request) = event.get("replay") {
        let request: ReplayRequest = serde_json::from_value(request.clone())
            .map_err(|e| EdgeError::invalid(format!("replay: {e}")))?;
        return replay(p, &request, budget)
            .await
            .map(FanoutOutput::Replayed);
    }
    let sns: SnsEvent = serde_json::from_value(event).map_err(|e| {
        EdgeError::invalid(format!(
            "event: neither an SNS event nor {{\"replay\": {{…}}}}: {e}"
        ))
    })?;
    deliver_sns(p, sns, budget)
        .await
        .map(FanoutOutput::Delivered)
}
