//! The plugin ports: inspectors learn about attributes, reviewers decide a severity,
//! emitters hand published reports to the outside world.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::PluginError;
use crate::model::{Attribute, Report, ReportResult, Task};

/// A section an inspector produced, before the pipeline attaches report and attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionDraft {
    /// `host`, `user` or `binary`.
    #[serde(rename = "type")]
    pub section_type: String,
    /// The findings.
    pub content: Value,
}

/// What an inspector answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inspection {
    /// What it learned.
    #[serde(default)]
    pub sections: Vec<SectionDraft>,
    /// Entities it discovered, to inspect in turn.
    #[serde(default)]
    pub new_attributes: Vec<Attribute>,
}

/// Learns about one attribute.
#[async_trait]
pub trait Inspector: Send + Sync {
    /// Its name, the `author` of its sections.
    fn name(&self) -> &str;
    /// Whether it takes this attribute (by default: every attribute).
    fn accepts(&self, _attribute: &Attribute) -> bool {
        true
    }
    /// How long the pipeline waits for it.
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    /// Inspects the task's attribute.
    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError>;
}

/// Decides a severity for a compiled report.
#[async_trait]
pub trait Reviewer: Send + Sync {
    /// Its name, kept beside its reason.
    fn name(&self) -> &str;
    /// The decision, or `None` when it has none (undefined policy result).
    async fn review(&self, report: &Report) -> Result<Option<ReportResult>, PluginError>;
}

/// Hands a published report to the outside world.
#[async_trait]
pub trait Emitter: Send + Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// Whether it wants this version at all (its severity filter). A version it does
    /// not want is not sent and not recorded as delivered.
    fn wants(&self, _report: &Report) -> bool {
        true
    }
    /// Emits one version; `attempt` is 0 the first time, more when retried after a failure or crash.
    /// [`PluginError::Rejected`] when the target refused it for good (no retry helps),
    /// [`PluginError::RateLimited`] with the wait the target asked for.
    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError>;
}
