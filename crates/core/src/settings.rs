//! Pipeline settings shared by every runtime.

use std::time::Duration;

/// Tunables of the pipeline; defaults follow DeepAlert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Wait between receiving an alert and dispatching its attributes.
    pub inspection_delay: Duration,
    /// Wait between a report's opening (or a late alert) and its review.
    pub review_delay: Duration,
    /// How long an opened report accepts alerts with the same alert ID.
    pub aggregation_window: Duration,
    /// How many rounds of attributes discovered by inspectors are inspected in turn.
    pub max_depth: u32,
    /// Most attributes inspected for one report; the rest are recorded as skipped.
    pub max_attributes_per_report: u32,
    /// Most new attributes taken from one inspector answer.
    pub max_new_attributes_per_inspection: usize,
    /// Most sections taken from one inspector answer.
    pub max_sections_per_inspection: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            inspection_delay: Duration::from_secs(300),
            review_delay: Duration::from_secs(600),
            aggregation_window: Duration::from_secs(3 * 3600),
            max_depth: 3,
            max_attributes_per_report: 256,
            max_new_attributes_per_inspection: 64,
            max_sections_per_inspection: 32,
        }
    }
}
