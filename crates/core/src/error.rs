//! Errors of the core crate, in the user's terms.

use thiserror::Error;

/// An alert that cannot be accepted, naming the offending field.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid alert: {field}: {message}")]
pub struct ValidationError {
    /// JSON path of the field at fault, e.g. `attributes[2].value` (`$` for the whole input).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A failure of a store adapter.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Worth retrying: contention, throttling, a timeout.
    #[error("store temporarily unavailable: {0}")]
    Transient(String),
    /// Not worth retrying: corrupt record, schema mismatch, I/O failure.
    #[error("store failure: {0}")]
    Permanent(String),
}

/// A failure of an inspector, reviewer or emitter.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PluginError {
    /// The plugin ran and reported failure (non-zero exit, HTTP error, policy error).
    #[error("{0}")]
    Failed(String),
    /// The plugin answered something that is not the documented JSON.
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    /// The plugin did not answer within its timeout.
    #[error("timed out after {0:?}")]
    TimedOut(std::time::Duration),
    /// The service answered 429 or a quota answer, or the inspector's own rate limit
    /// is spent: worth another try after `retry_after` (when known). The pipeline
    /// retries within the report's review deadline and otherwise records the
    /// inspection as rate limited, never as clean.
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// How long the service asked to wait.
        retry_after: Option<std::time::Duration>,
    },
    /// The plugin did not look the attribute up, and says why (a value of the right
    /// type that is not valid for its API, e.g. an `ipaddr` that is no IP address).
    #[error("skipped: {0}")]
    Skipped(String),
    /// The target refused the request for good (an HTTP 4xx other than 408 and 429,
    /// a repository that does not exist, a revoked token): no retry helps.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl PluginError {
    /// Whether another try of the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, PluginError::Rejected(_) | PluginError::Skipped(_))
    }
}

/// A failure of a pipeline step.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The input alert is malformed: never worth a retry.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A job or task refers to something the store does not have.
    #[error("{what} not found: {id}")]
    NotFound {
        /// Kind of record (report, alert).
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// A review found inspections of the report still running before its deadline:
    /// worth a retry later (on AWS the state machine retries it without a transition
    /// on the common path).
    #[error("report {report_id}: {pending} inspection(s) still pending, waiting until {until}")]
    InspectionsPending {
        /// The report.
        report_id: String,
        /// How many claimed attributes are not inspected yet.
        pending: usize,
        /// Until when the review waits for them; past it, it reviews without them.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// An emitter failed to deliver a version.
    #[error("emitter {name} failed: {error}")]
    Emitter {
        /// The emitter's name.
        name: String,
        /// How it failed: retryable unless rejected; a rate limit says how long to wait.
        error: PluginError,
    },
    /// Scheduling, a bus or an emitter's configuration failed.
    #[error("{stage} failed: {message}")]
    Port {
        /// Which port (scheduler, task bus, report bus, emitter NAME).
        stage: String,
        /// What went wrong.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
}

impl CoreError {
    /// Whether retrying the same input may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CoreError::Invalid(_) | CoreError::NotFound { .. } => false,
            CoreError::Store(StoreError::Transient(_)) => true,
            CoreError::Store(StoreError::Permanent(_)) => false,
            CoreError::Port { retryable, .. } => *retryable,
            CoreError::InspectionsPending { .. } => true,
            CoreError::Emitter { error, .. } => error.is_retryable(),
        }
    }

    /// How long the failed call asked to be left alone (an HTTP 429's `Retry-After`),
    /// when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            CoreError::Emitter {
                error: PluginError::RateLimited { retry_after },
                ..
            } => *retry_after,
            _ => None,
        }
    }
}
