//! Runs due jobs through the core handlers: in real time (`serve`) or in virtual
//! time (`run`, tests), where the clock jumps to the next due job whenever nothing
//! else is runnable, so delays cost nothing and the order of events is kept.

use std::sync::Arc;
use std::time::Duration;

use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::ManualClock;
use alertresponder_core::{CoreError, Job};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::{debug, error, warn};

use crate::error::EmbeddedError;
use crate::queue::{JobQueue, LeasedJob};

/// How long a review waits for inspections of its report that are due or running.
pub const REVIEW_POSTPONE: Duration = Duration::from_secs(1);

/// How long finished jobs are kept: while kept, scheduling the same job again is a
/// no-op; far longer than any delay or retry can reach back.
pub const KEEP_DONE_JOBS: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the real-time loop prunes finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The longest `Retry-After` a retry honours. A target asking for more (a day-long
/// rate limit, a misconfigured proxy) is tried again after an hour, and keeps its
/// tries: a job is never parked for longer than this on one answer's say-so.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How failed jobs are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all before a job is failed for good.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub base: Duration,
    /// Longest wait between tries.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long to wait before retrying a job whose try `attempt` failed with `error`:
    /// the backoff, or longer when the target asked for longer (an HTTP 429's
    /// `Retry-After`, honoured up to [`MAX_RETRY_AFTER`]).
    pub fn delay(&self, attempt: u32, error: &CoreError) -> Duration {
        let asked = error
            .retry_after()
            .map_or(Duration::ZERO, |d| d.min(MAX_RETRY_AFTER));
        self.backoff(attempt).max(asked)
    }
}

/// What happened to one job, for progress displays.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// It ran to its end.
    Done {
        /// The job.
        job: Job,
    },
    /// It failed and will be tried again.
    Retrying {
        /// The job.
        job: Job,
        /// Why it failed.
        error: String,
        /// When it is tried again.
        at: DateTime<Utc>,
    },
    /// It failed for good and was kept as an error record.
    Failed {
        /// The job.
        job: Job,
        /// Why.
        error: String,
    },
}

/// Callback told of every finished job.
pub type JobObserver = Arc<dyn Fn(&JobEvent) + Send + Sync>;

/// The embedded runtime: the pipeline plus the durable queue that feeds it.
#[derive(Clone)]
pub struct Runtime {
    pipeline: Pipeline,
    queue: JobQueue,
    concurrency: usize,
    retry: RetryPolicy,
    observer: Option<JobObserver>,
    retention: Option<Duration>,
}

impl Runtime {
    /// A runtime running at most `concurrency` jobs at once.
    pub fn new(pipeline: Pipeline, queue: JobQueue, concurrency: usize) -> Self {
        Self {
            pipeline,
            queue,
            concurrency: concurrency.max(1),
            retry: RetryPolicy::default(),
            observer: None,
            retention: None,
        }
    }

    /// Deletes reports (and error records) older than `retention` as it works in real time.
    pub fn with_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Retries failed jobs by `retry` instead of [`RetryPolicy::default`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Tells `observer` of every finished job.
    pub fn with_observer(mut self, observer: JobObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The pipeline it runs.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The queue it takes jobs from.
    pub fn queue(&self) -> &JobQueue {
        &self.queue
    }

    /// Puts jobs that were running when the process stopped back in the queue.
    pub async fn recover(&self) -> Result<u64, EmbeddedError> {
        self.queue.recover().await
    }

    /// Runs one batch of the jobs due now; returns how many ran.
    pub async fn run_due(&self) -> Result<usize, EmbeddedError> {
        let now = self.pipeline.clock.now();
        let batch = self.queue.take_due(now, self.concurrency * 4).await?;
        let n = batch.len();
        let results: Vec<Result<(), EmbeddedError>> = stream::iter(batch)
            .map(|leased| self.execute(leased))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(n)
    }

    /// Runs one leased job and settles it: done, retried later, or failed for good.
    pub async fn execute(&self, leased: LeasedJob) -> Result<(), EmbeddedError> {
        let LeasedJob { name, job, attempt } = leased;
        if let Job::Review { report_id, .. } = &job {
            // Inspections of this report already due or running would be missed by a
            // review compiled now: let them finish first. They are bounded (timeouts,
            // depth, cap), so this wait ends.
            let now = self.pipeline.clock.now();
            if self.queue.due_work_for_report(report_id, now).await? > 0 {
                self.queue.postpone(&name, now + REVIEW_POSTPONE).await?;
                return Ok(());
            }
        }
        let result = self.pipeline.run_job(&job, attempt).await;
        match result {
            Ok(()) => {
                self.queue.complete(&name).await?;
                debug!(job = %name, "job done");
                self.emit(JobEvent::Done { job });
            }
            // A target that refused for good (`Rejected`) is not retryable: it fails
            // at once, below.
            Err(e) if e.is_retryable() && attempt + 1 < self.retry.max_attempts => {
                let at = self.pipeline.clock.now() + self.retry.delay(attempt, &e);
                warn!(job = %name, attempt, error = %e, "job failed, will retry");
                self.queue.retry(&name, at, &e.to_string()).await?;
                self.emit(JobEvent::Retrying {
                    job,
                    error: e.to_string(),
                    at,
                });
            }
            Err(e) => {
                error!(job = %name, attempt, error = %e, "job failed for good");
                self.fail(&name, &job, &e).await?;
            }
        }
        Ok(())
    }

    async fn fail(&self, name: &str, job: &Job, e: &CoreError) -> Result<(), EmbeddedError> {
        self.queue.fail(name, &e.to_string()).await?;
        self.pipeline.record_failure(job, e).await?;
        self.emit(JobEvent::Failed {
            job: job.clone(),
            error: e.to_string(),
        });
        Ok(())
    }

    fn emit(&self, event: JobEvent) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// Virtual time: runs every job due up to `until` (all jobs when `None`), moving
    /// `clock` to the next due job whenever nothing is due now.
    pub async fn drain_virtual(
        &self,
        clock: &ManualClock,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), EmbeddedError> {
        loop {
            if self.run_due().await? > 0 {
                continue;
            }
            match self.queue.next_due().await? {
                Some(due) if until.is_none_or(|u| due <= u) => clock.advance_to(due),
                _ => break,
            }
        }
        if let Some(u) = until {
            clock.advance_to(u);
        }
        Ok(())
    }

    /// Deletes reports opened longer than `retention` ago, a batch at a time so that
    /// alerts arriving meanwhile wait at most one batch.
    async fn apply_retention(&self, retention: Duration) {
        const BATCH: usize = 500;
        let cutoff = self.pipeline.clock.now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let mut total = 0;
        loop {
            match self.queue.store().prune_before(cutoff, BATCH).await {
                Ok(n) => {
                    total += n;
                    if (n as usize) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot apply retention");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(reports = total, "reports past retention deleted");
        }
    }

    /// Real time: runs jobs as they fall due until `shutdown` resolves.
    pub async fn work(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), EmbeddedError> {
        tokio::pin!(shutdown);
        let notify = self.queue.notify();
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                let before = self.pipeline.clock.now()
                    - chrono::Duration::from_std(KEEP_DONE_JOBS).unwrap_or_default();
                match self.queue.prune_done(before).await {
                    Ok(0) => {}
                    Ok(n) => debug!(pruned = n, "finished jobs pruned"),
                    Err(e) => warn!(error = %e, "cannot prune finished jobs"),
                }
                if let Some(retention) = self.retention {
                    self.apply_retention(retention).await;
                }
                // Expired inspector answers and rate windows older than a day.
                let now = self.pipeline.clock.now();
                match self
                    .queue
                    .store()
                    .prune_answers(now, Duration::from_secs(86_400))
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => debug!(pruned = n, "expired answers and rate windows pruned"),
                    Err(e) => warn!(error = %e, "cannot prune the answer cache"),
                }
            }
            let ran = match self.run_due().await {
                Ok(n) => n,
                Err(e) => {
                    // The store is unwell (disk full, locked): keep the loop alive, retry soon.
                    error!(error = %e, "job loop error");
                    0
                }
            };
            if ran > 0 {
                continue;
            }
            let wait = match self.queue.next_due().await {
                Ok(Some(due)) => (due - self.pipeline.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(1)),
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_secs(2));
        assert_eq!(p.backoff(1), Duration::from_secs(4));
        assert_eq!(p.backoff(30), Duration::from_secs(300));
    }

    fn emitter_error(error: alertresponder_core::PluginError) -> CoreError {
        CoreError::Emitter {
            name: "slack".into(),
            error,
        }
    }

    #[test]
    fn a_retry_waits_the_longer_of_its_backoff_and_the_targets_retry_after_up_to_an_hour() {
        let p = RetryPolicy::default();
        let limited = |secs| {
            emitter_error(alertresponder_core::PluginError::RateLimited {
                retry_after: Some(Duration::from_secs(secs)),
            })
        };
        assert_eq!(p.delay(1, &limited(1)), Duration::from_secs(4));
        assert_eq!(p.delay(1, &limited(90)), Duration::from_secs(90));
        assert_eq!(p.delay(1, &limited(86_400)), MAX_RETRY_AFTER);
        let unsaid =
            emitter_error(alertresponder_core::PluginError::RateLimited { retry_after: None });
        assert_eq!(p.delay(2, &unsaid), Duration::from_secs(8));
        let failed = emitter_error(alertresponder_core::PluginError::Failed("503".into()));
        assert_eq!(p.delay(0, &failed), Duration::from_secs(2));
    }
}
