//! [`JobQueue`]: the durable job queue, in the same SQLite file as the store.
//!
//! Every delay, task and delivery is a row of `jobs` keyed by [`Job::name`], with its
//! due time and state (`pending`, `running`, `done`, `failed`). Finished rows are
//! kept, so scheduling a name again stays a no-op; a job left `running` by a crash
//! goes back to `pending` on [`JobQueue::recover`]. The queue is also the embedded
//! [`Scheduler`], [`TaskBus`] and [`ReportBus`].

use std::collections::BTreeMap;
use std::sync::Arc;

use alertresponder_core::error::CoreError;
use alertresponder_core::model::{Job, Report, Task};
use alertresponder_core::ports::{Clock, ReportBus, Scheduler, TaskBus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tokio::sync::Notify;
use tracing::warn;

use crate::error::EmbeddedError;
use crate::store::sql::{exec, from_millis, millis, next_seq, row1, to_i64};
use crate::store::SqliteStore;

const PENDING: &str = "pending";
const RUNNING: &str = "running";
const DONE: &str = "done";
const FAILED: &str = "failed";

/// The durable queue of jobs.
#[derive(Clone)]
pub struct JobQueue {
    store: SqliteStore,
    clock: Arc<dyn Clock>,
    emitters: Arc<Vec<String>>,
    notify: Arc<Notify>,
}

/// A job taken from the queue to run; it stays `running` until completed, retried or failed.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    /// Its [`Job::name`].
    pub name: String,
    /// The job.
    pub job: Job,
    /// Tries before this one (failures and crashes).
    pub attempt: u32,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct QueueStats {
    /// Waiting for their due time or a worker.
    pub pending: u64,
    /// Taken by a worker.
    pub running: u64,
    /// Finished.
    pub done: u64,
    /// Given up on.
    pub failed: u64,
    /// Pending jobs by kind (`dispatch`, `inspect`, `review`, `deliver`).
    pub pending_by_kind: BTreeMap<String, u64>,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("emitters", &self.emitters)
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    /// A queue in `store`'s file; `emitters` are the names each published report goes to.
    pub fn new(store: SqliteStore, clock: Arc<dyn Clock>, emitters: Vec<String>) -> Self {
        Self {
            store,
            clock,
            emitters: Arc::new(emitters),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Adds `job`, due at `due`, unless a job of the same name was ever added; `true` if new.
    pub async fn enqueue(&self, job: &Job, due: DateTime<Utc>) -> Result<bool, EmbeddedError> {
        let name = job.name();
        let kind = job.stage();
        let report_id = job.report_id().to_string();
        let json = serde_json::to_string(job)?;
        let (due, now) = (millis(due), millis(self.clock.now()));
        let inserted = self
            .store
            .write(move |tx| {
                let known = row1(
                    tx,
                    "SELECT 1 FROM jobs WHERE name = ?1",
                    params![name],
                    |_| Ok(()),
                )
                .optional()?;
                if known.is_some() {
                    return Ok(false);
                }
                let seq = next_seq(tx)?;
                exec(
                    tx,
                    "INSERT INTO jobs (name, kind, job, report_id, due_at, state, attempts,
                                       last_error, seq, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7, ?8)",
                    params![name, kind, json, report_id, due, PENDING, seq, now],
                )?;
                Ok(true)
            })
            .await?;
        if inserted {
            self.wake();
        }
        Ok(inserted)
    }

    /// Wakes whoever waits on [`JobQueue::notify`]; with nobody waiting, the next wait
    /// returns at once, so a worker about to sleep does not miss the job.
    fn wake(&self) {
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Takes up to `limit` pending jobs due at `now`, earliest first, and marks them running.
    ///
    /// A job whose stored JSON no longer parses is marked failed rather than blocking the queue.
    pub async fn take_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LeasedJob>, EmbeddedError> {
        let (due, stamp) = (millis(now), millis(self.clock.now()));
        self.store
            .write(move |tx| {
                let rows = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT name, job, attempts FROM jobs
                          WHERE state = ?1 AND due_at <= ?2
                          ORDER BY due_at, seq LIMIT ?3",
                    )?;
                    let rows = stmt
                        .query_map(params![PENDING, due, to_i64(limit)], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    rows
                };
                let mut leased = Vec::with_capacity(rows.len());
                for (name, json, attempts) in rows {
                    match serde_json::from_str::<Job>(&json) {
                        Ok(job) => {
                            exec(tx,
                                "UPDATE jobs SET state = ?2, updated_at = ?3 WHERE name = ?1",
                                params![name, RUNNING, stamp],
                            )?;
                            leased.push(LeasedJob {
                                name,
                                job,
                                attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
                            });
                        }
                        Err(e) => {
                            warn!(job = %name, error = %e, "stored job does not parse; marked failed");
                            exec(tx,
                                "UPDATE jobs SET state = ?2, last_error = ?3, updated_at = ?4
                                  WHERE name = ?1",
                                params![name, FAILED, format!("stored job does not parse: {e}"), stamp],
                            )?;
                        }
                    }
                }
                Ok(leased)
            })
            .await
    }

    /// Marks a job done; its row stays, so scheduling the same name again is a no-op.
    pub async fn complete(&self, name: &str) -> Result<(), EmbeddedError> {
        let name = name.to_string();
        let now = millis(self.clock.now());
        self.store
            .write(move |tx| {
                exec(
                    tx,
                    "UPDATE jobs SET state = ?2, updated_at = ?3 WHERE name = ?1",
                    params![name, DONE, now],
                )?;
                Ok(())
            })
            .await
    }

    /// Puts a job back, due at `due`, counting the failed try and keeping its error.
    pub async fn retry(
        &self,
        name: &str,
        due: DateTime<Utc>,
        error: &str,
    ) -> Result<(), EmbeddedError> {
        let (name, error) = (name.to_string(), error.to_string());
        let (due, now) = (millis(due), millis(self.clock.now()));
        let changed = self
            .store
            .write(move |tx| {
                Ok(exec(
                    tx,
                    "UPDATE jobs SET state = ?2, attempts = attempts + 1, due_at = ?3,
                                     last_error = ?4, updated_at = ?5
                      WHERE name = ?1",
                    params![name, PENDING, due, error, now],
                )?)
            })
            .await?;
        if changed > 0 {
            self.wake();
        }
        Ok(())
    }

    /// Gives up on a job, counting the failed try and keeping its error.
    pub async fn fail(&self, name: &str, error: &str) -> Result<(), EmbeddedError> {
        let (name, error) = (name.to_string(), error.to_string());
        let now = millis(self.clock.now());
        self.store
            .write(move |tx| {
                exec(
                    tx,
                    "UPDATE jobs SET state = ?2, attempts = attempts + 1, last_error = ?3,
                                     updated_at = ?4
                      WHERE name = ?1",
                    params![name, FAILED, error, now],
                )?;
                Ok(())
            })
            .await
    }

    /// When the earliest pending job is due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, EmbeddedError> {
        self.store
            .read(|tx| {
                let due: Option<i64> = row1(
                    tx,
                    "SELECT min(due_at) FROM jobs WHERE state = ?1",
                    params![PENDING],
                    |r| r.get(0),
                )?;
                due.map(from_millis).transpose()
            })
            .await
    }

    /// Puts the jobs a crash left running back to pending (the interrupted try counts as
    /// an attempt); returns how many.
    pub async fn recover(&self) -> Result<u64, EmbeddedError> {
        let now = millis(self.clock.now());
        let n = self
            .store
            .write(move |tx| {
                Ok(exec(
                    tx,
                    "UPDATE jobs SET state = ?1, attempts = attempts + 1,
                                     last_error = 'interrupted: the runtime stopped while it ran',
                                     updated_at = ?3
                      WHERE state = ?2",
                    params![PENDING, RUNNING, now],
                )?)
            })
            .await?;
        if n > 0 {
            self.wake();
        }
        Ok(n as u64)
    }

    /// How many jobs are in each state.
    pub async fn stats(&self) -> Result<QueueStats, EmbeddedError> {
        self.store
            .read(|tx| {
                let mut stats = QueueStats::default();
                let mut stmt =
                    tx.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                for (state, n) in rows {
                    let n = u64::try_from(n).unwrap_or(0);
                    match state.as_str() {
                        PENDING => stats.pending = n,
                        RUNNING => stats.running = n,
                        DONE => stats.done = n,
                        FAILED => stats.failed = n,
                        other => {
                            return Err(EmbeddedError::Corrupt(format!(
                                "job state {other:?} is unknown"
                            )))
                        }
                    }
                }
                let mut stmt = tx.prepare_cached(
                    "SELECT kind, count(*) FROM jobs WHERE state = ?1 GROUP BY kind ORDER BY kind",
                )?;
                let rows = stmt
                    .query_map(params![PENDING], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                stats.pending_by_kind = rows
                    .into_iter()
                    .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                    .collect();
                Ok(stats)
            })
            .await
    }

    /// Dispatch and inspect jobs of a report that are running or already due at `now`:
    /// work whose findings a review starting now would miss.
    pub async fn due_work_for_report(
        &self,
        report_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, EmbeddedError> {
        let report_id = report_id.to_string();
        let now = millis(now);
        self.store
            .read(move |tx| {
                let n: i64 = row1(
                    tx,
                    "SELECT count(*) FROM jobs
                      WHERE report_id = ?1 AND kind IN ('dispatch', 'inspect')
                        AND (state = ?2 OR (state = ?3 AND due_at <= ?4))",
                    params![report_id, RUNNING, PENDING, now],
                    |r| r.get(0),
                )?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    /// Puts a leased job back to wait until `due`, without counting a try.
    pub async fn postpone(&self, name: &str, due: DateTime<Utc>) -> Result<(), EmbeddedError> {
        let name = name.to_string();
        let (due, now) = (millis(due), millis(self.clock.now()));
        self.store
            .write(move |tx| {
                Ok(exec(
                    tx,
                    "UPDATE jobs SET state = ?2, due_at = ?3, updated_at = ?4 WHERE name = ?1",
                    params![name, PENDING, due, now],
                )?)
            })
            .await?;
        self.wake();
        Ok(())
    }

    /// Notified whenever a job becomes pending (enqueued, retried, recovered).
    pub fn notify(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// Deletes done jobs last updated before `before`; returns how many. Their names
    /// can be scheduled again afterwards.
    pub async fn prune_done(&self, before: DateTime<Utc>) -> Result<u64, EmbeddedError> {
        let before = millis(before);
        let n = self
            .store
            .write(move |tx| {
                Ok(exec(
                    tx,
                    "DELETE FROM jobs WHERE state = ?1 AND updated_at < ?2",
                    params![DONE, before],
                )?)
            })
            .await?;
        Ok(n as u64)
    }

    /// The store whose file holds the queue.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }
}

#[async_trait]
impl Scheduler for JobQueue {
    async fn schedule(&self, job: &Job, due: DateTime<Utc>) -> Result<(), CoreError> {
        self.enqueue(job, due).await?;
        Ok(())
    }
}

#[async_trait]
impl TaskBus for JobQueue {
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError> {
        self.enqueue(&Job::Inspect(task.clone()), self.clock.now())
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ReportBus for JobQueue {
    async fn publish_report(&self, report: &Report) -> Result<(), CoreError> {
        let now = self.clock.now();
        for emitter in self.emitters.iter() {
            let job = Job::Deliver {
                report_id: report.id.clone(),
                version: report.version,
                emitter: emitter.clone(),
            };
            self.enqueue(&job, now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alertresponder_core::model::{Attribute, ReportResult, ReportStatus};
    use alertresponder_core::ports::ManualClock;
    use std::time::Duration;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn review(report: &str, version: u32) -> Job {
        Job::Review {
            report_id: report.into(),
            version,
        }
    }

    fn task(report: &str, value: &str) -> Task {
        Task {
            report_id: report.into(),
            attribute: Attribute {
                attr_type: "domain".into(),
                key: "query".into(),
                value: value.into(),
                context: vec![],
                timestamp: None,
            },
            depth: 1,
            review_at: None,
        }
    }

    fn queue_with(emitters: &[&str]) -> (JobQueue, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(t(0)));
        let store = SqliteStore::open_in_memory().unwrap();
        let queue = JobQueue::new(
            store,
            clock.clone(),
            emitters.iter().map(|e| e.to_string()).collect(),
        );
        (queue, clock)
    }

    fn names(leased: &[LeasedJob]) -> Vec<&str> {
        leased.iter().map(|l| l.name.as_str()).collect()
    }

    #[tokio::test]
    async fn enqueueing_a_job_twice_keeps_one_and_after_completion_it_stays_a_no_op() {
        let (queue, _) = queue_with(&[]);
        assert!(queue.enqueue(&review("r", 1), t(10)).await.unwrap());
        assert!(!queue.enqueue(&review("r", 1), t(5)).await.unwrap());
        let leased = queue.take_due(t(10), 10).await.unwrap();
        assert_eq!(names(&leased), ["review:r:1"]);
        queue.complete("review:r:1").await.unwrap();
        assert!(!queue.enqueue(&review("r", 1), t(20)).await.unwrap());
        assert_eq!(queue.next_due().await.unwrap(), None);
        assert!(queue.take_due(t(100), 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn take_due_returns_due_jobs_earliest_first_and_leases_them() {
        let (queue, _) = queue_with(&[]);
        queue.enqueue(&review("late", 1), t(30)).await.unwrap();
        queue.enqueue(&review("b", 1), t(10)).await.unwrap();
        queue.enqueue(&review("a", 1), t(10)).await.unwrap();
        queue.enqueue(&review("first", 1), t(5)).await.unwrap();
        assert_eq!(queue.next_due().await.unwrap(), Some(t(5)));
        assert!(queue.take_due(t(4), 10).await.unwrap().is_empty());

        let leased = queue.take_due(t(10), 2).await.unwrap();
        assert_eq!(names(&leased), ["review:first:1", "review:b:1"]);
        assert_eq!(leased[0].job, review("first", 1));
        assert_eq!(leased[0].attempt, 0);
        let leased = queue.take_due(t(10), 10).await.unwrap();
        assert_eq!(names(&leased), ["review:a:1"]);
        // Running jobs are not handed out twice.
        assert!(queue.take_due(t(10), 10).await.unwrap().is_empty());
        assert_eq!(queue.next_due().await.unwrap(), Some(t(30)));
    }

    #[tokio::test]
    async fn a_retried_job_is_due_again_later_with_one_more_attempt() {
        let (queue, _) = queue_with(&[]);
        queue.enqueue(&review("r", 1), t(0)).await.unwrap();
        queue.take_due(t(0), 1).await.unwrap();
        queue
            .retry("review:r:1", t(60), "store busy")
            .await
            .unwrap();
        assert!(queue.take_due(t(59), 1).await.unwrap().is_empty());
        let leased = queue.take_due(t(60), 1).await.unwrap();
        assert_eq!(names(&leased), ["review:r:1"]);
        assert_eq!(leased[0].attempt, 1);
    }

    #[tokio::test]
    async fn a_failed_job_is_never_due_again_nor_scheduled_again() {
        let (queue, _) = queue_with(&[]);
        queue.enqueue(&review("r", 1), t(0)).await.unwrap();
        queue.take_due(t(0), 1).await.unwrap();
        queue.fail("review:r:1", "no such report").await.unwrap();
        assert!(queue.take_due(t(1000), 10).await.unwrap().is_empty());
        assert!(!queue.enqueue(&review("r", 1), t(0)).await.unwrap());
        let stats = queue.stats().await.unwrap();
        assert_eq!((stats.failed, stats.pending), (1, 0));
    }

    #[tokio::test]
    async fn recovery_after_reopening_the_file_puts_running_jobs_back() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("ar.db");
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(t(0)));
        {
            let store = SqliteStore::open(&path, crate::store::Durability::Normal).unwrap();
            let queue = JobQueue::new(store, clock.clone(), vec![]);
            queue.enqueue(&review("a", 1), t(0)).await.unwrap();
            queue.enqueue(&review("b", 1), t(0)).await.unwrap();
            queue.enqueue(&review("later", 1), t(100)).await.unwrap();
            assert_eq!(queue.take_due(t(0), 10).await.unwrap().len(), 2);
            // The process dies here, with both jobs running.
        }
        let store = SqliteStore::open(&path, crate::store::Durability::Normal).unwrap();
        let queue = JobQueue::new(store, clock, vec![]);
        assert_eq!(queue.stats().await.unwrap().running, 2);
        assert_eq!(queue.recover().await.unwrap(), 2);
        let leased = queue.take_due(t(0), 10).await.unwrap();
        assert_eq!(names(&leased), ["review:a:1", "review:b:1"]);
        // The interrupted try counts, so an emitter knows it may have run before.
        assert!(leased.iter().all(|l| l.attempt == 1));
        assert_eq!(queue.recover().await.unwrap(), 2);
        assert_eq!(queue.recover().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn stats_count_jobs_by_state_and_pending_jobs_by_kind() {
        let (queue, _) = queue_with(&[]);
        queue.publish_task(&task("r", "a.example")).await.unwrap();
        queue.publish_task(&task("r", "b.example")).await.unwrap();
        queue.enqueue(&review("r", 1), t(0)).await.unwrap();
        queue.enqueue(&review("s", 1), t(0)).await.unwrap();
        queue.enqueue(&review("done", 1), t(0)).await.unwrap();
        queue.complete("review:done:1").await.unwrap();
        let first = queue.take_due(t(0), 1).await.unwrap();
        assert_eq!(first[0].job, Job::Inspect(task("r", "a.example")));
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            stats,
            QueueStats {
                pending: 3,
                running: 1,
                done: 1,
                failed: 0,
                pending_by_kind: [("inspect".to_string(), 1), ("review".to_string(), 2)]
                    .into_iter()
                    .collect(),
            }
        );
        // Work a review of "r" must wait for: the running inspection, and the pending
        // one once it is due; never reviews, nor work due later.
        assert_eq!(queue.due_work_for_report("r", t(0)).await.unwrap(), 2);
        assert_eq!(queue.due_work_for_report("r", t(-1)).await.unwrap(), 1);
        assert_eq!(queue.due_work_for_report("done", t(0)).await.unwrap(), 0);
        let later = Job::Dispatch {
            report_id: "s".into(),
            message_id: "m".into(),
        };
        queue.enqueue(&later, t(100)).await.unwrap();
        assert_eq!(queue.due_work_for_report("s", t(0)).await.unwrap(), 0);
        assert_eq!(queue.due_work_for_report("s", t(100)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_report_bus_enqueues_one_delivery_per_emitter_due_now() {
        let (queue, clock) = queue_with(&["slack", "webhook"]);
        clock.advance(Duration::from_secs(42));
        let report = Report {
            id: "r".into(),
            alerts: vec![],
            attributes: vec![],
            sections: vec![],
            result: ReportResult::default(),
            status: ReportStatus::Published,
            created_at: t(0),
            version: 2,
            previous_result: None,
            inspections: vec![],
            alert_id: "alert:a".into(),
            published_at: Some(t(42)),
            cut: None,
        };
        queue.publish_report(&report).await.unwrap();
        queue.publish_report(&report).await.unwrap();
        assert_eq!(queue.next_due().await.unwrap(), Some(t(42)));
        let leased = queue.take_due(t(42), 10).await.unwrap();
        assert_eq!(names(&leased), ["deliver:r:2:slack", "deliver:r:2:webhook"]);

        let (silent, _) = queue_with(&[]);
        silent.publish_report(&report).await.unwrap();
        assert_eq!(silent.stats().await.unwrap(), QueueStats::default());
    }

    #[tokio::test]
    async fn the_scheduler_enqueues_at_the_due_time() {
        let (queue, _) = queue_with(&[]);
        queue.schedule(&review("r", 1), t(600)).await.unwrap();
        queue.schedule(&review("r", 1), t(700)).await.unwrap();
        assert_eq!(queue.next_due().await.unwrap(), Some(t(600)));
        assert_eq!(queue.stats().await.unwrap().pending, 1);
    }

    #[tokio::test]
    async fn enqueueing_wakes_a_waiting_worker() {
        let (queue, _) = queue_with(&[]);
        let notify = queue.notify();
        let waiting = notify.notified();
        queue.enqueue(&review("r", 1), t(0)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap();
        // With nobody waiting at that moment, the next wait still sees the job.
        queue.enqueue(&review("r", 2), t(0)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn pruning_forgets_done_jobs_finished_before_the_cutoff() {
        let (queue, clock) = queue_with(&[]);
        queue.enqueue(&review("old", 1), t(0)).await.unwrap();
        queue.enqueue(&review("new", 1), t(0)).await.unwrap();
        queue.enqueue(&review("open", 1), t(0)).await.unwrap();
        queue.complete("review:old:1").await.unwrap();
        clock.advance(Duration::from_secs(100));
        queue.complete("review:new:1").await.unwrap();
        assert_eq!(queue.prune_done(t(50)).await.unwrap(), 1);
        let stats = queue.stats().await.unwrap();
        assert_eq!((stats.done, stats.pending), (1, 1));
        assert!(queue.enqueue(&review("old", 1), t(0)).await.unwrap());
    }

    #[tokio::test]
    async fn a_job_whose_json_no_longer_parses_is_failed_instead_of_blocking_the_queue() {
        let (queue, _) = queue_with(&[]);
        queue.enqueue(&review("bad", 1), t(0)).await.unwrap();
        queue.enqueue(&review("good", 1), t(1)).await.unwrap();
        queue
            .store()
            .write(|tx| {
                exec(
                    tx,
                    "UPDATE jobs SET job = '{' WHERE name = 'review:bad:1'",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let leased = queue.take_due(t(1), 10).await.unwrap();
        assert_eq!(names(&leased), ["review:good:1"]);
        assert_eq!(queue.stats().await.unwrap().failed, 1);
    }
}
