//! The scheduler and the two buses in memory: they record what the pipeline hands
//! them, for a test to look at or to run. Each can be told to fail its next call, to
//! show that a step retried after such a failure ends where a clean run ends.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::CoreError;
use crate::model::{Job, Report, Task};
use crate::ports::{ReportBus, Scheduler, TaskBus};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test cannot leave a half-written Vec behind: the data stays readable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Failures armed by a test: each armed failure fails one call, then is spent.
#[derive(Debug, Default)]
struct Faults(AtomicU32);

impl Faults {
    fn arm(&self, calls: u32) {
        self.0.store(calls, Ordering::SeqCst);
    }

    /// Fails this call if a failure is armed (a retryable port error, as a throttled
    /// or unreachable queue gives).
    fn check(&self, port: &str) -> Result<(), CoreError> {
        let armed = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match armed {
            Ok(_) => Err(CoreError::Port {
                stage: port.to_string(),
                message: "failure injected by the test".into(),
                retryable: true,
            }),
            Err(_) => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
struct Schedule {
    /// Jobs waiting to be taken, in the order scheduled.
    pending: Vec<(Job, DateTime<Utc>)>,
    /// Every name ever scheduled: a name is scheduled once, even after it was taken,
    /// as the SQLite queue keeps finished rows and Step Functions execution names.
    names: HashSet<String>,
    /// Every call, repeats included.
    requests: Vec<(Job, DateTime<Utc>)>,
}

/// The [`Scheduler`] port in memory: scheduling a [`Job::name`] twice keeps the first.
#[derive(Debug, Default)]
pub struct MemoryScheduler {
    schedule: Mutex<Schedule>,
    faults: Faults,
}

impl MemoryScheduler {
    /// A scheduler with nothing scheduled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `calls` calls fail (retryable), scheduling nothing.
    pub fn fail_next(&self, calls: u32) {
        self.faults.arm(calls);
    }

    /// The jobs waiting, in the order scheduled.
    pub fn pending(&self) -> Vec<(Job, DateTime<Utc>)> {
        lock(&self.schedule).pending.clone()
    }

    /// Every schedule call so far, repeats of a name included.
    pub fn requests(&self) -> Vec<(Job, DateTime<Utc>)> {
        lock(&self.schedule).requests.clone()
    }

    /// When the earliest waiting job falls due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        lock(&self.schedule).pending.iter().map(|(_, d)| *d).min()
    }

    /// Takes the jobs due at or before `until`, in the order [`Self::take_next`] takes them.
    pub fn take_due(&self, until: DateTime<Utc>) -> Vec<(Job, DateTime<Utc>)> {
        std::iter::from_fn(|| self.take_next(until)).collect()
    }

    /// Takes the earliest job due at or before `until`, if any. Of jobs due at one
    /// time, dispatches and inspections come before reviews and deliveries (the
    /// embedded runtime postpones a review while work it would miss is due), then
    /// the order scheduled.
    pub fn take_next(&self, until: DateTime<Utc>) -> Option<(Job, DateTime<Utc>)> {
        let mut s = lock(&self.schedule);
        let i = (0..s.pending.len())
            .filter(|&i| s.pending[i].1 <= until)
            .min_by_key(|&i| (s.pending[i].1, uses_findings(&s.pending[i].0), i))?;
        Some(s.pending.remove(i))
    }
}

/// Whether the job only uses what others found (`false` sorts first).
fn uses_findings(job: &Job) -> bool {
    !matches!(job, Job::Dispatch { .. } | Job::Inspect(_))
}

#[async_trait]
impl Scheduler for MemoryScheduler {
    async fn schedule(&self, job: &Job, due: DateTime<Utc>) -> Result<(), CoreError> {
        self.faults.check("scheduler")?;
        let mut s = lock(&self.schedule);
        s.requests.push((job.clone(), due));
        if s.names.insert(job.name()) {
            s.pending.push((job.clone(), due));
        }
        Ok(())
    }
}

/// The [`TaskBus`] port in memory: keeps every task published, repeats included
/// (a bus delivers at least once; inspection is idempotent).
#[derive(Debug, Default)]
pub struct MemoryTaskBus {
    tasks: Mutex<Vec<Task>>,
    faults: Faults,
}

impl MemoryTaskBus {
    /// A bus that carried nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `calls` calls fail (retryable), publishing nothing.
    pub fn fail_next(&self, calls: u32) {
        self.faults.arm(calls);
    }

    /// The tasks published and not taken yet, in order.
    pub fn published(&self) -> Vec<Task> {
        lock(&self.tasks).clone()
    }

    /// Takes the tasks published so far, in order.
    pub fn take(&self) -> Vec<Task> {
        std::mem::take(&mut *lock(&self.tasks))
    }
}

#[async_trait]
impl TaskBus for MemoryTaskBus {
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError> {
        self.faults.check("task bus")?;
        lock(&self.tasks).push(task.clone());
        Ok(())
    }
}

/// The [`ReportBus`] port in memory: keeps every report published, repeats included.
#[derive(Debug, Default)]
pub struct MemoryReportBus {
    reports: Mutex<Vec<Report>>,
    faults: Faults,
}

impl MemoryReportBus {
    /// A bus that carried nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `calls` calls fail (retryable), publishing nothing.
    pub fn fail_next(&self, calls: u32) {
        self.faults.arm(calls);
    }

    /// The reports published and not taken yet, in order.
    pub fn published(&self) -> Vec<Report> {
        lock(&self.reports).clone()
    }

    /// Takes the reports published so far, in order.
    pub fn take(&self) -> Vec<Report> {
        std::mem::take(&mut *lock(&self.reports))
    }
}

#[async_trait]
impl ReportBus for MemoryReportBus {
    async fn publish_report(&self, report: &Report) -> Result<(), CoreError> {
        self.faults.check("report bus")?;
        lock(&self.reports).push(report.clone());
        Ok(())
    }
}
