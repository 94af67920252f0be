//! A reviewer that is a Rego policy, evaluated in-process with `regorus`.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use alertresponder_core::ports::Reviewer;
use alertresponder_core::{PluginError, Report, ReportResult};
use async_trait::async_trait;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, LimitError, Value};

use crate::error::PluginConfigError;
use crate::output::review_from_value;

/// The rule a policy defines: `{"severity": ..., "reason": ...}`, or undefined for no decision.
pub const RESULT_RULE: &str = "data.alertresponder.review.result";
/// How long one evaluation may run unless told otherwise.
pub const DEFAULT_REGO_TIMEOUT: Duration = Duration::from_secs(5);

/// Work units between two looks at the clock during an evaluation.
const TIMER_CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(64) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Evaluates [`RESULT_RULE`] of a policy with the report as `input`.
#[derive(Debug, Clone)]
pub struct RegoReviewer {
    name: String,
    label: String,
    /// Parsed and analysed once; cloned per evaluation so that reviews run in parallel.
    engine: Engine,
    timeout: Duration,
}

impl RegoReviewer {
    /// Loads and checks the policy in `path`.
    pub fn from_file(
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, PluginConfigError> {
        let path = path.as_ref();
        let source =
            std::fs::read_to_string(path).map_err(|source| PluginConfigError::PolicyRead {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_source(name, path.display().to_string(), source)
    }

    /// Checks the policy `source`; `file_label` names it in errors.
    pub fn from_source(
        name: impl Into<String>,
        file_label: impl Into<String>,
        source: impl Into<String>,
    ) -> Result<Self, PluginConfigError> {
        let label = file_label.into();
        let mut engine = Engine::new();
        engine
            .add_policy(label.clone(), source.into())
            .map_err(|e| policy_error(&label, e))?;
        set_timer(&mut engine, DEFAULT_REGO_TIMEOUT);
        // A first evaluation runs the analysis that `add_policy` leaves for later (unsafe
        // variables, unknown functions, a missing result rule): fail at start-up, not per
        // report. The prepared engine is what every evaluation then clones.
        engine.set_input(Value::new_object());
        engine
            .eval_rule(RESULT_RULE.to_string())
            .map_err(|e| policy_error(&label, e))?;
        Ok(Self {
            name: name.into(),
            label,
            engine,
            timeout: DEFAULT_REGO_TIMEOUT,
        })
    }

    /// The same reviewer with another time limit per evaluation.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        set_timer(&mut self.engine, timeout);
        self
    }
}

fn policy_error(label: &str, e: impl std::fmt::Display) -> PluginConfigError {
    PluginConfigError::Policy {
        path: label.to_string(),
        message: format!("{e:#}"),
    }
}

fn set_timer(engine: &mut Engine, limit: Duration) {
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit,
        check_interval: TIMER_CHECK_INTERVAL,
    });
}

#[async_trait]
impl Reviewer for RegoReviewer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn review(&self, report: &Report) -> Result<Option<ReportResult>, PluginError> {
        let input = serde_json::to_string(report)
            .map_err(|e| PluginError::Failed(format!("cannot encode the report: {e}")))?;
        let mut engine = self.engine.clone();
        let evaluation = tokio::task::spawn_blocking(move || {
            engine
                .set_input_json(&input)
                .and_then(|()| engine.eval_rule(RESULT_RULE.to_string()))
        });
        // The engine's own timer stops a runaway evaluation; this bounds the wait regardless.
        let value = match tokio::time::timeout(self.timeout, evaluation).await {
            Err(_) => return Err(PluginError::TimedOut(self.timeout)),
            Ok(Err(e)) => {
                return Err(PluginError::Failed(format!(
                    "policy {} evaluation aborted: {e}",
                    self.label
                )))
            }
            Ok(Ok(Err(e))) => {
                if let Some(LimitError::TimeLimitExceeded { .. }) = e.downcast_ref::<LimitError>() {
                    return Err(PluginError::TimedOut(self.timeout));
                }
                return Err(PluginError::Failed(format!("policy {}: {e:#}", self.label)));
            }
            Ok(Ok(Ok(value))) => value,
        };
        if value == Value::Undefined {
            return Ok(None);
        }
        let json = serde_json::to_value(&value)
            .map_err(|e| PluginError::InvalidOutput(format!("{RESULT_RULE}: {e}")))?;
        review_from_value(&json).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use alertresponder_core::Severity;
    use tempfile::TempDir;

    use super::*;
    use crate::test_support::report;

    const POLICY: &str = r#"
package alertresponder.review

known_bad if {
    some attribute in input.attributes
    attribute.value == "198.51.100.7"
}

result := {"severity": "urgent", "reason": "known bad address"} if known_bad

result := {"severity": "safe", "reason": "test detector"} if {
    not known_bad
    input.alerts[0].detector == "test"
}
"#;

    fn reviewer() -> RegoReviewer {
        RegoReviewer::from_source("policy", "review.rego", POLICY).unwrap()
    }

    #[tokio::test]
    async fn policy_finds_a_known_bad_address_urgent() {
        let result = reviewer()
            .review(&report("rep-1", 1, "test", "198.51.100.7"))
            .await
            .unwrap();
        assert_eq!(
            result,
            Some(ReportResult {
                severity: Severity::Urgent,
                reason: "known bad address".into()
            })
        );
    }

    #[tokio::test]
    async fn policy_finds_the_test_detector_safe_otherwise() {
        let result = reviewer()
            .review(&report("rep-1", 1, "test", "192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(result.map(|r| r.severity), Some(Severity::Safe));
    }

    #[tokio::test]
    async fn undefined_policy_result_is_no_decision() {
        let result = reviewer()
            .review(&report("rep-1", 1, "guardduty", "192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(result, None);
    }

    #[tokio::test]
    async fn policy_from_a_file_is_loaded_and_evaluated() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("review.rego");
        std::fs::write(&path, POLICY).unwrap();
        let reviewer = RegoReviewer::from_file("policy", &path).unwrap();
        assert_eq!(reviewer.name(), "policy");
        let result = reviewer
            .review(&report("rep-1", 1, "test", "198.51.100.7"))
            .await
            .unwrap();
        assert_eq!(result.map(|r| r.severity), Some(Severity::Urgent));
    }

    #[test]
    fn policy_that_does_not_parse_is_a_configuration_error_naming_the_file() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("broken.rego");
        std::fs::write(
            &path,
            "package alertresponder.review\n\nresult := {\"severity\": ",
        )
        .unwrap();
        let err = RegoReviewer::from_file("policy", &path).unwrap_err();
        assert!(matches!(err, PluginConfigError::Policy { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn policy_without_the_result_rule_is_a_configuration_error() {
        let err = RegoReviewer::from_source("policy", "other.rego", "package other\n\nx := 1\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy other.rego is invalid: "),
            "{err}"
        );
    }

    #[test]
    fn missing_policy_file_is_a_configuration_error_naming_the_path() {
        let err = RegoReviewer::from_file("policy", "/nonexistent/review.rego").unwrap_err();
        assert!(
            matches!(err, PluginConfigError::PolicyRead { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("/nonexistent/review.rego"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn policy_result_with_an_unknown_severity_is_invalid_output() {
        let policy = "package alertresponder.review\n\nresult := {\"severity\": \"bogus\"}\n";
        let reviewer = RegoReviewer::from_source("policy", "bogus.rego", policy).unwrap();
        let err = reviewer
            .review(&report("rep-1", 1, "test", "192.0.2.1"))
            .await
            .unwrap_err();
        let PluginError::InvalidOutput(message) = err else {
            panic!("expected invalid output, got {err:?}");
        };
        assert!(
            message.starts_with("severity: unknown severity \"bogus\""),
            "{message}"
        );
    }

    #[tokio::test]
    async fn policy_result_that_is_not_an_object_is_invalid_output() {
        let policy = "package alertresponder.review\n\nresult := \"urgent\"\n";
        let reviewer = RegoReviewer::from_source("policy", "string.rego", policy).unwrap();
        let err = reviewer
            .review(&report("rep-1", 1, "test", "192.0.2.1"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PluginError::InvalidOutput("$: expected an object, got a string".into())
        );
    }

    #[tokio::test]
    async fn runaway_policy_times_out() {
        let policy = r#"
package alertresponder.review

result := {"severity": "safe", "reason": sprintf("%d", [n])} if {
    input.alerts[0].detector == "test"
    n := count([x | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000); x := i * j])
}
"#;
        let timeout = Duration::from_millis(200);
        // The start-up check runs on an empty input, where the rule is undefined at once.
        let reviewer = RegoReviewer::from_source("policy", "slow.rego", policy);
        let reviewer = match reviewer {
            Ok(r) => r.with_timeout(timeout),
            Err(e) => panic!("{e}"),
        };
        let started = std::time::Instant::now();
        let err = reviewer
            .review(&report("rep-1", 1, "test", "192.0.2.1"))
            .await
            .unwrap_err();
        assert_eq!(err, PluginError::TimedOut(timeout));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
