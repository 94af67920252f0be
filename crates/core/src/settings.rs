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
    /// Longest an inspection waits in all for a rate-limited inspector before it records
    /// it as rate limited; never past the review's due time (the task's `review_at`).
    /// The AWS harness lowers it to what its function timeout leaves.
    pub max_rate_limit_wait: Duration,
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
            max_rate_limit_wait: Duration::from_secs(600),
        }
    }
}

/// A setting out of its bounds, naming the key as `alertresponder.toml` spells it
/// (the AWS stack names its parameter beside it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingsError {
    /// The setting, e.g. `max_attributes_per_report`.
    pub key: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

/// Longest inspection or review delay: a day (the stack's parameters allow as much).
pub const MAX_DELAY: Duration = Duration::from_secs(86_400);
/// Longest aggregation window: 30 days.
pub const MAX_AGGREGATION_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// Deepest feedback of discovered attributes.
pub const MAX_DEPTH: u32 = 10;
/// Most attributes inspected for one report.
pub const MAX_ATTRIBUTES_PER_REPORT: u32 = 10_000;

impl Settings {
    /// Checks every bound; both runtimes call this, so that they reject the same values
    /// with the same message.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let delays = [
            ("inspection_delay", self.inspection_delay, MAX_DELAY),
            ("review_delay", self.review_delay, MAX_DELAY),
            (
                "aggregation_window",
                self.aggregation_window,
                MAX_AGGREGATION_WINDOW,
            ),
            ("max_rate_limit_wait", self.max_rate_limit_wait, MAX_DELAY),
        ];
        for (key, d, max) in delays {
            if d > max {
                return Err(SettingsError {
                    key,
                    message: format!("must be at most {}", humanize(max)),
                });
            }
        }
        if self.aggregation_window.is_zero() {
            return Err(SettingsError {
                key: "aggregation_window",
                message: "must be longer than zero (a report must accept its first alert)".into(),
            });
        }
        if self.max_depth > MAX_DEPTH {
            return Err(SettingsError {
                key: "max_depth",
                message: format!("must be at most {MAX_DEPTH}"),
            });
        }
        if self.max_attributes_per_report == 0
            || self.max_attributes_per_report > MAX_ATTRIBUTES_PER_REPORT
        {
            return Err(SettingsError {
                key: "max_attributes_per_report",
                message: format!("must be between 1 and {MAX_ATTRIBUTES_PER_REPORT}"),
            });
        }
        if self.max_new_attributes_per_inspection == 0 {
            return Err(SettingsError {
                key: "max_new_attributes_per_inspection",
                message: "must be at least 1".into(),
            });
        }
        if self.max_sections_per_inspection == 0 {
            return Err(SettingsError {
                key: "max_sections_per_inspection",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A bound in days, as the error message shows it.
fn humanize(d: Duration) -> String {
    let days = d.as_secs() / 86_400;
    if days == 1 {
        "1 day".into()
    } else {
        format!("{days} days")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
    }

    #[test]
    fn a_zero_attribute_cap_is_rejected_naming_the_key() {
        let s = Settings {
            max_attributes_per_report: 0,
            ..Settings::default()
        };
        let e = s.validate().unwrap_err();
        assert_eq!(e.key, "max_attributes_per_report");
        assert_eq!(
            e.to_string(),
            "max_attributes_per_report: must be between 1 and 10000"
        );
    }

    #[test]
    fn a_zero_window_and_too_deep_feedback_are_rejected() {
        let zero = Settings {
            aggregation_window: Duration::ZERO,
            ..Settings::default()
        };
        assert_eq!(zero.validate().unwrap_err().key, "aggregation_window");
        let deep = Settings {
            max_depth: MAX_DEPTH + 1,
            ..Settings::default()
        };
        assert_eq!(deep.validate().unwrap_err().key, "max_depth");
    }
}
