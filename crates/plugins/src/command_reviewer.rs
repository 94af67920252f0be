//! A reviewer that is an external program: the report as JSON on stdin, the decision on stdout.

use std::time::Duration;

use alertresponder_core::ports::Reviewer;
use alertresponder_core::{PluginError, Report, ReportResult};
use async_trait::async_trait;

use crate::command::CommandSpec;
use crate::error::PluginConfigError;
use crate::output::review_from_output;

/// Largest standard output accepted from a reviewer.
pub const MAX_REVIEWER_OUTPUT: usize = 64 * 1024;

/// Runs a program per report; it reads the [`Report`] JSON on stdin and prints
/// `{"severity": "safe|unclassified|urgent", "reason": "..."}`, or nothing for no decision.
#[derive(Debug, Clone)]
pub struct CommandReviewer {
    spec: CommandSpec,
}

impl CommandReviewer {
    /// A reviewer running `argv` (no shell).
    pub fn new(
        name: impl Into<String>,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, PluginConfigError> {
        Ok(Self {
            spec: CommandSpec::new(name, argv, timeout)?,
        })
    }
}

#[async_trait]
impl Reviewer for CommandReviewer {
    fn name(&self) -> &str {
        &self.spec.name
    }

    async fn review(&self, report: &Report) -> Result<Option<ReportResult>, PluginError> {
        let out = self.spec.run_json(report, MAX_REVIEWER_OUTPUT, &[]).await?;
        review_from_output(&out)
    }
}

#[cfg(test)]
mod tests {
    use alertresponder_core::Severity;
    use tempfile::TempDir;

    use super::*;
    use crate::test_support::{report, script};

    async fn review(body: &str) -> Result<Option<ReportResult>, PluginError> {
        let dir = TempDir::new().unwrap();
        let argv = script(dir.path(), "reviewer.sh", body);
        let reviewer =
            CommandReviewer::new("test-reviewer", argv, Duration::from_secs(10)).unwrap();
        reviewer
            .review(&report("rep-1", 1, "test", "192.0.2.1"))
            .await
    }

    #[tokio::test]
    async fn reviewer_decision_is_read_from_its_output() {
        // The script decides on what it reads: the report must be on its stdin.
        let result = review(
            r#"if grep -q '"detector":"test"'; then echo '{"severity":"urgent","reason":"test detector"}'; fi"#,
        )
        .await
        .unwrap();
        assert_eq!(
            result,
            Some(ReportResult {
                severity: Severity::Urgent,
                reason: "test detector".into()
            })
        );
        let result = review(r#"echo '{"severity":"safe"}'"#).await.unwrap();
        assert_eq!(
            result.map(|r| (r.severity, r.reason)),
            Some((Severity::Safe, String::new()))
        );
    }

    #[tokio::test]
    async fn reviewer_with_empty_output_has_no_decision() {
        assert_eq!(review("cat >/dev/null").await.unwrap(), None);
        assert_eq!(review("echo '{}'").await.unwrap(), None);
        assert_eq!(review("echo null").await.unwrap(), None);
    }

    #[tokio::test]
    async fn reviewer_with_unknown_severity_or_wrong_types_is_invalid_naming_the_field() {
        let err = review(r#"echo '{"severity":"critical"}'"#)
            .await
            .unwrap_err();
        let PluginError::InvalidOutput(message) = err else {
            panic!("expected invalid output, got {err:?}");
        };
        assert!(
            message.starts_with("severity: unknown severity \"critical\""),
            "{message}"
        );
        assert_eq!(
            review(r#"echo '{"severity":"safe","reason":["a"]}'"#)
                .await
                .unwrap_err(),
            PluginError::InvalidOutput("reason: expected a string, got an array".into())
        );
        assert_eq!(
            review(r#"echo '{"reason":"x"}'"#).await.unwrap_err(),
            PluginError::InvalidOutput("severity: is required".into())
        );
    }
}
