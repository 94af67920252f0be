//! `[reviewer]`: a Rego policy and/or a command that reviews compiled reports.

use std::path::PathBuf;
use std::time::Duration;

use super::source::Source;
use super::{ConfigError, RawReviewer, DEFAULT_PLUGIN_TIMEOUT};

/// The reviewers: a Rego policy and/or a command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReviewerConfig {
    /// Rego policy file.
    pub policy: Option<PathBuf>,
    /// argv of a reviewer command.
    pub command: Option<Vec<String>>,
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
) -> Result<ReviewerConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(ReviewerConfig::none());
    };
    if raw.policy.is_none() && raw.command.is_none() {
        return Err(source.invalid("reviewer", "needs policy and/or command"));
    }
    Ok(ReviewerConfig {
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
    use crate::config::{invalid, load};

    #[test]
    fn without_a_reviewer_table_there_is_no_reviewer() {
        assert_eq!(load("").unwrap().reviewer, ReviewerConfig::none());
        assert_eq!(
            ReviewerConfig::none(),
            ReviewerConfig {
                policy: None,
                command: None,
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
}
