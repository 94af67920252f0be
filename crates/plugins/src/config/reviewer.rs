//! `[reviewer]`: a Rego policy, and/or a command (embedded) or a Lambda function (AWS),
//! that review compiled reports.

use std::path::PathBuf;
use std::time::Duration;

use super::source::Source;
use super::{ConfigError, RawReviewer, Runtime, DEFAULT_PLUGIN_TIMEOUT};

/// The reviewers: a Rego policy and/or a command or function.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReviewerConfig {
    /// Rego policy file.
    pub policy: Option<PathBuf>,
    /// argv of a reviewer command (embedded).
    pub command: Option<Vec<String>>,
    /// ARN of a reviewer Lambda function (AWS).
    pub function: Option<String>,
    /// How long the command may take.
    pub timeout: Duration,
}

impl ReviewerConfig {
    /// The reviewers of a config without a `[reviewer]` table: none.
    pub fn none() -> Self {
        Self {
            timeout: DEFAULT_PLUGIN_TIMEOUT,
            ..Self::default()
        }
    }
}

/// Reads and checks the `[reviewer]` table; a table that names no reviewer is a mistake.
pub(super) fn reviewer(
    raw: Option<&RawReviewer>,
    source: &Source,
    runtime: Runtime,
) -> Result<ReviewerConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(ReviewerConfig::none());
    };
    if raw.policy.is_none() && raw.command.is_none() && raw.function.is_none() {
        return Err(source.invalid("reviewer", "needs policy and/or command"));
    }
    if raw.command.is_some() && runtime == Runtime::Aws {
        return Err(source.invalid(
            "reviewer.command",
            "commands do not run on AWS: use `policy` or `function = \"arn:…\"` (a Lambda reviewer)",
        ));
    }
    if let Some(arn) = &raw.function {
        if runtime == Runtime::Embedded {
            return Err(source.invalid(
                "reviewer.function",
                "Lambda functions are invoked only on AWS: use `policy` or `command`",
            ));
        }
        if !arn.starts_with("arn:") || !arn.contains(":lambda:") {
            return Err(source.invalid(
                "reviewer.function",
                format!("{arn:?} is not a Lambda function ARN"),
            ));
        }
    }
    Ok(ReviewerConfig {
        function: raw.function.clone(),
        policy: raw.policy.as_deref().map(|p| source.resolve(p)),
        command: raw
            .command
            .as_ref()
            .map(|c| source.argv("reviewer.command", c))
            .transpose()?,
        timeout: source.duration(
            "reviewer.timeout",
            raw.timeout.as_deref(),
            DEFAULT_PLUGIN_TIMEOUT,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{invalid, invalid_for, load, load_for};

    #[test]
    fn without_a_reviewer_table_there_is_no_reviewer() {
        assert_eq!(load("").unwrap().reviewer, ReviewerConfig::none());
        assert_eq!(
            ReviewerConfig::none(),
            ReviewerConfig {
                policy: None,
                command: None,
                function: None,
                timeout: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn a_policy_and_a_command_are_found_beside_the_config() {
        let c = load(
            "[reviewer]\npolicy = \"policy.rego\"\ncommand = \"./review.py --strict\"\ntimeout = \"5s\"",
        )
        .unwrap();
        assert_eq!(
            c.reviewer,
            ReviewerConfig {
                policy: Some(PathBuf::from("/etc/ar/policy.rego")),
                command: Some(vec!["/etc/ar/./review.py".into(), "--strict".into()]),
                function: None,
                timeout: Duration::from_secs(5),
            }
        );
    }

    #[test]
    fn a_bad_reviewer_is_rejected_at_its_key() {
        assert_eq!(
            invalid("[reviewer]\ntimeout = \"5s\""),
            ("reviewer".into(), "needs policy and/or command".into())
        );
        assert_eq!(
            invalid("[reviewer]\ncommand = []"),
            ("reviewer.command".into(), "must name a program".into())
        );
        let (key, _) = invalid("[reviewer]\npolicy = \"p.rego\"\ntimeout = \"never\"");
        assert_eq!(key, "reviewer.timeout");
    }

    #[test]
    fn on_aws_a_reviewer_is_a_policy_or_a_function() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:review";
        let c = load_for(
            &format!("[reviewer]\npolicy = \"p.rego\"\nfunction = \"{arn}\""),
            Runtime::Aws,
        )
        .unwrap();
        assert_eq!(c.reviewer.function.as_deref(), Some(arn));
        assert_eq!(
            invalid_for("[reviewer]\ncommand = \"./r\"", Runtime::Aws).0,
            "reviewer.command"
        );
        assert_eq!(
            invalid(&format!("[reviewer]\nfunction = \"{arn}\"")).0,
            "reviewer.function"
        );
    }
}
