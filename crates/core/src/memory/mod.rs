//! In-memory adapters (feature `fixtures`): the store ports ([`MemoryStore`], also the
//! answer cache and the rate limiter), the
//! scheduler and the buses ([`MemoryScheduler`], [`MemoryTaskBus`],
//! [`MemoryReportBus`]), a store that crashes on cue ([`CrashingStore`]), and
//! [`pipeline`], a [`Pipeline`] on them with [`MemoryRuntime::run_until`] to run
//! its jobs in virtual time. They pass the same contract suite as the SQLite and
//! DynamoDB stores, so that the pipeline's own tests run in milliseconds.

mod browse;
mod bus;
mod cache;
mod crash;
mod delivery;
mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use bus::{MemoryReportBus, MemoryScheduler, MemoryTaskBus};
pub use crash::{Crash, CrashingStore};
pub use store::MemoryStore;

use crate::error::CoreError;
use crate::model::Job;
use crate::pipeline::Pipeline;
use crate::ports::{Clock, ManualClock};
use crate::settings::Settings;

/// The memory adapters behind a [`pipeline`], for a test to look into.
#[derive(Debug, Clone)]
pub struct MemoryRuntime {
    /// The store (also the pipeline's error sink).
    pub store: Arc<MemoryStore>,
    /// Scheduled jobs.
    pub scheduler: Arc<MemoryScheduler>,
    /// Published tasks.
    pub tasks: Arc<MemoryTaskBus>,
    /// Published reports.
    pub reports: Arc<MemoryReportBus>,
}

/// A pipeline on fresh memory adapters, without plugins (set its `inspectors`,
/// `reviewers` and `emitters` as the test needs), and the adapters.
pub fn pipeline(settings: Settings, clock: Arc<dyn Clock>) -> (Pipeline, MemoryRuntime) {
    let runtime = MemoryRuntime {
        store: Arc::new(MemoryStore::new()),
        scheduler: Arc::new(MemoryScheduler::new()),
        tasks: Arc::new(MemoryTaskBus::new()),
        reports: Arc::new(MemoryReportBus::new()),
    };
    let pipeline = Pipeline {
        store: runtime.store.clone(),
        errors: runtime.store.clone(),
        scheduler: runtime.scheduler.clone(),
        tasks: runtime.tasks.clone(),
        reports: runtime.reports.clone(),
        inspectors: vec![],
        reviewers: vec![],
        emitters: vec![],
        clock,
        settings,
    };
    (pipeline, runtime)
}

impl MemoryRuntime {
    /// Runs the work of `p` in virtual time: published tasks at once, then scheduled
    /// jobs due by `until` (all of them if `None`) earliest first, moving `clock` to
    /// each one's due time; finally moves `clock` to `until`. Returns the jobs run, in
    /// order. The first job that fails stops the run with its error.
    pub async fn run_until(
        &self,
        p: &Pipeline,
        clock: &ManualClock,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Job>, CoreError> {
        let limit = until.unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut ran = Vec::new();
        loop {
            let tasks = self.tasks.take();
            if !tasks.is_empty() {
                for task in tasks {
                    let job = Job::Inspect(task);
                    p.run_job(&job, 0).await?;
                    ran.push(job);
                }
                continue;
            }
            let Some((job, due)) = self.scheduler.take_next(limit) else {
                break;
            };
            clock.advance_to(due);
            p.run_job(&job, 0).await?;
            ran.push(job);
        }
        if let Some(until) = until {
            clock.advance_to(until);
        }
        Ok(ran)
    }
}

#[cfg(test)]
mod tests {
    crate::contract_tests!(crate::memory::MemoryStore::new());
    crate::cache_contract_tests!(crate::memory::MemoryStore::new());
    crate::delivery_contract_tests!(crate::memory::MemoryStore::new());
    crate::browse_contract_tests!(crate::memory::MemoryStore::new());
}
