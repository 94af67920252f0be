//! Ports that carry work: the scheduler of delayed jobs and the two buses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::CoreError;
use crate::model::{Job, Report, Task};

/// Runs a job later, durably; scheduling the same [`Job::name`] twice runs it once.
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Runs `job` at `due` or soon after.
    async fn schedule(&self, job: &Job, due: DateTime<Utc>) -> Result<(), CoreError>;
}

/// Carries tasks to the inspectors.
#[async_trait]
pub trait TaskBus: Send + Sync {
    /// Queues a task.
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError>;
}

/// Carries published reports to the emitters and subscribers.
#[async_trait]
pub trait ReportBus: Send + Sync {
    /// Publishes a report version.
    async fn publish_report(&self, report: &Report) -> Result<(), CoreError>;
}
