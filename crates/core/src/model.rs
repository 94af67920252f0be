//! The domain model. Field names and shapes follow DeepAlert v1 JSON so that
//! existing inspectors, reviewers and emitters keep working; fields we add are
//! ones a DeepAlert consumer ignores.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Well-known attribute types (the set is open: any string is accepted).
pub mod attr_type {
    /// An IPv4 or IPv6 address.
    pub const IPADDR: &str = "ipaddr";
    /// A DNS name.
    pub const DOMAIN: &str = "domain";
    /// A user or account name.
    pub const USERNAME: &str = "username";
    /// A file hash (MD5, SHA-1, SHA-256).
    pub const FILE_HASH: &str = "filehashvalue";
    /// A JSON document.
    pub const JSON: &str = "json";
    /// A URL.
    pub const URL: &str = "url";
}

/// Something of interest to security, as a detector reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The system that raised it (`guardduty`, `suricata` …).
    pub detector: String,
    /// Human-readable name of the rule.
    #[serde(default)]
    pub rule_name: String,
    /// Stable identifier of the rule.
    pub rule_id: String,
    /// Aggregation key: alerts with the same detector, rule and key join one report.
    pub alert_key: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// When the detector saw it.
    pub timestamp: DateTime<Utc>,
    /// Entities named by the alert.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// The detector's own payload, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Alert {
    /// The DeepAlert alert ID of this alert.
    pub fn alert_id(&self) -> String {
        crate::id::alert_id(&self.detector, &self.rule_id, &self.alert_key)
    }

    /// The rule's name, or its ID when the detector gave no name.
    pub fn rule(&self) -> &str {
        if self.rule_name.is_empty() {
            &self.rule_id
        } else {
            &self.rule_name
        }
    }

    /// A report's title, from its first alert: `detector: rule`.
    pub fn title(&self) -> String {
        format!("{}: {}", self.detector, self.rule())
    }
}

/// An entity named by an alert or found by an inspector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// `ipaddr`, `domain`, `username`, `filehashvalue`, `json`, `url` or another type.
    #[serde(rename = "type")]
    pub attr_type: String,
    /// What the value is in the alert (`source address`, `login user` …).
    #[serde(default)]
    pub key: String,
    /// The entity itself.
    pub value: String,
    /// Its role: `remote`, `local`, `subject`, `object`, `client`, `server`, `file`, `additional` or another.
    #[serde(default)]
    pub context: Vec<String>,
    /// When it was seen, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
}

impl Attribute {
    /// Stable hash of this attribute, independent of the order of its contexts.
    pub fn hash(&self) -> String {
        crate::id::attribute_hash(self)
    }
}

/// One attribute to run through the inspectors, for one report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The report the attribute belongs to.
    pub report_id: String,
    /// The attribute to inspect.
    pub attribute: Attribute,
    /// Rounds of discovery behind it: 0 for an attribute of an alert.
    #[serde(default)]
    pub depth: u32,
    /// When the report's review is due: an inspector that is rate limited is retried
    /// until then, not beyond (`None`: no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_at: Option<DateTime<Utc>>,
}

/// What one inspector learned about one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSection {
    /// The report it belongs to.
    pub report_id: String,
    /// The inspector that wrote it.
    pub author: String,
    /// The attribute it is about.
    pub attribute: Attribute,
    /// `host`, `user` or `binary`.
    #[serde(rename = "type")]
    pub section_type: String,
    /// The findings; see the plugin contract for the fields of each type.
    pub content: Value,
}

/// A severity decided by the reviewers, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to do.
    Safe,
    /// Not decided: a person should look.
    #[default]
    Unclassified,
    /// Act now.
    Urgent,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Safe => "safe",
            Severity::Unclassified => "unclassified",
            Severity::Urgent => "urgent",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "safe" => Ok(Severity::Safe),
            "unclassified" => Ok(Severity::Unclassified),
            "urgent" => Ok(Severity::Urgent),
            other => Err(format!(
                "unknown severity {other:?} (expected safe, unclassified or urgent)"
            )),
        }
    }
}

/// The decision of the reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReportResult {
    /// How severe.
    pub severity: Severity,
    /// Why, in words a person reads.
    #[serde(default)]
    pub reason: String,
}

/// Where a report is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// Opened by one alert, not yet published.
    #[default]
    New,
    /// Joined by further alerts, not yet published.
    More,
    /// Reviewed and handed to the emitters.
    Published,
}

/// How an inspector fared on one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionStatus {
    /// Answered with sections or new attributes.
    Ok,
    /// Answered with nothing.
    NothingFound,
    /// Failed (non-zero exit, error, bad output).
    Failed,
    /// Did not answer in time.
    TimedOut,
    /// Not run: the report's attribute cap or the discovery depth was reached, or the
    /// inspector does not look up such a value (the detail says why).
    Skipped,
    /// The service's quota or the inspector's rate limit was spent until the review
    /// deadline: nothing is known, which is not the same as nothing found.
    RateLimited,
}

/// The outcome of one inspector on one attribute of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionRecord {
    /// The inspector's name (`alertresponder` for the pipeline's own notes).
    pub inspector: String,
    /// The attribute inspected.
    pub attribute: Attribute,
    /// How it went.
    pub status: InspectionStatus,
    /// Error text or a short note, bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// A compiled report: everything known about the alerts that belong together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Report ID (UUID form).
    pub id: String,
    /// The alerts, in the order received.
    pub alerts: Vec<Alert>,
    /// Every attribute inspected for it (of the alerts and discovered).
    pub attributes: Vec<Attribute>,
    /// What the inspectors learned.
    pub sections: Vec<ReportSection>,
    /// The reviewers' decision.
    pub result: ReportResult,
    /// `new`, `more` or `published`.
    pub status: ReportStatus,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Publication number: 1 for the first review, 2 for the re-review after a late alert …
    #[serde(default)]
    pub version: u32,
    /// The result of the version before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_result: Option<ReportResult>,
    /// Which inspector ran on which attribute, and how it went.
    #[serde(default)]
    pub inspections: Vec<InspectionRecord>,
    /// The alert ID the report aggregates.
    #[serde(default)]
    pub alert_id: String,
    /// When this version was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// What was cut to fit a size bound (AWS messages and items); absent when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<Cut>,
}

/// What [`crate::fit::fit_report`] cut from a report to fit a size bound. The full
/// alerts stay in the store; only the published copy is cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// Size of the report before cutting, in bytes of JSON.
    pub original_bytes: usize,
    /// Alert bodies replaced by a note.
    pub bodies_removed: usize,
    /// Section contents replaced by a note.
    pub contents_removed: usize,
    /// Sections left out (the last ones).
    pub sections_omitted: usize,
    /// Alerts left out (the last ones; the first is always kept).
    pub alerts_omitted: usize,
    /// Inspection records left out.
    pub inspections_omitted: usize,
}

/// An input or a step that failed, kept with the input so nothing is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// Stable identifier (message ID for ingest, job name otherwise).
    pub id: String,
    /// Pipeline step: `receive`, `dispatch`, `inspect`, `review`, `deliver`.
    pub stage: String,
    /// The error, naming the field for a validation error.
    pub error: String,
    /// The field at fault, for a validation error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The original input (bounded; `input_truncated` says if it was cut).
    pub input: String,
    /// Whether `input` was cut to the size bound.
    #[serde(default)]
    pub input_truncated: bool,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// Work that a runtime carries out later (durable delays, task and report queues).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Dispatch the attributes of one received alert.
    Dispatch {
        /// The report the alert joined.
        report_id: String,
        /// The message that carried the alert.
        message_id: String,
    },
    /// Run one task through the inspectors.
    Inspect(Task),
    /// Compile, review and publish a version of a report.
    Review {
        /// The report.
        report_id: String,
        /// The version to publish.
        version: u32,
    },
    /// Hand a published report version to one emitter.
    Deliver {
        /// The report.
        report_id: String,
        /// Its version.
        version: u32,
        /// The emitter's name.
        emitter: String,
    },
}

impl Job {
    /// A name unique to this piece of work: scheduling the same name twice does it once.
    pub fn name(&self) -> String {
        match self {
            Job::Dispatch {
                report_id,
                message_id,
            } => format!("dispatch:{report_id}:{message_id}"),
            Job::Inspect(task) => format!("inspect:{}:{}", task.report_id, task.attribute.hash()),
            Job::Review { report_id, version } => format!("review:{report_id}:{version}"),
            Job::Deliver {
                report_id,
                version,
                emitter,
            } => format!("deliver:{report_id}:{version}:{emitter}"),
        }
    }

    /// The pipeline step this job runs.
    pub fn stage(&self) -> &'static str {
        match self {
            Job::Dispatch { .. } => "dispatch",
            Job::Inspect(_) => "inspect",
            Job::Review { .. } => "review",
            Job::Deliver { .. } => "deliver",
        }
    }

    /// The report the job works on.
    pub fn report_id(&self) -> &str {
        match self {
            Job::Dispatch { report_id, .. }
            | Job::Review { report_id, .. }
            | Job::Deliver { report_id, .. } => report_id,
            Job::Inspect(task) => &task.report_id,
        }
    }
}
