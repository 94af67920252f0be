//! Configuration of the Lambda functions, from environment variables set by
//! `template.yaml`. Each binary declares what it reads ([`EnvSpec`]); a missing
//! required variable fails the cold start with the variable's name.

use std::time::Duration;

use alertresponder_core::Settings;

use crate::error::AwsError;

/// DynamoDB table of reports, alerts, attributes, sections and published versions.
pub const REPORT_TABLE: &str = "REPORT_TABLE";
/// DynamoDB table of rejected inputs and failed steps.
pub const ERROR_TABLE: &str = "ERROR_TABLE";
/// SNS topic of inspection tasks.
pub const TASK_TOPIC_ARN: &str = "TASK_TOPIC_ARN";
/// SNS topic of published reports.
pub const REPORT_TOPIC_ARN: &str = "REPORT_TOPIC_ARN";
/// SNS topic of failures (with the failed input).
pub const ERROR_TOPIC_ARN: &str = "ERROR_TOPIC_ARN";
/// The delay state machine.
pub const STATE_MACHINE_ARN: &str = "STATE_MACHINE_ARN";
/// Seconds between receiving an alert and dispatching it (default 300).
pub const INSPECTION_DELAY_SECONDS: &str = "INSPECTION_DELAY_SECONDS";
/// Seconds between a report's opening (or a late alert) and its review (default 600).
pub const REVIEW_DELAY_SECONDS: &str = "REVIEW_DELAY_SECONDS";
/// Seconds a report accepts alerts with its alert ID (default 10800).
pub const AGGREGATION_WINDOW_SECONDS: &str = "AGGREGATION_WINDOW_SECONDS";
/// Rounds of attributes discovered by inspectors (default 3).
pub const MAX_DEPTH: &str = "MAX_DEPTH";
/// Most attributes inspected per report (default 256).
pub const MAX_ATTRIBUTES_PER_REPORT: &str = "MAX_ATTRIBUTES_PER_REPORT";
/// Days every record is kept before DynamoDB's TTL removes it (default 30).
pub const RECORD_TTL_DAYS: &str = "RECORD_TTL_DAYS";
/// Comma-separated names or ARNs of inspector Lambda functions.
pub const INSPECTOR_FUNCTIONS: &str = "INSPECTOR_FUNCTIONS";
/// Seconds the harness waits for one inspector (default 30).
pub const INSPECTOR_TIMEOUT_SECONDS: &str = "INSPECTOR_TIMEOUT_SECONDS";
/// Comma-separated names or ARNs of reviewer Lambda functions.
pub const REVIEWER_FUNCTIONS: &str = "REVIEWER_FUNCTIONS";
/// `s3://bucket/prefix/alertresponder.toml`: the plugin sections of the configuration
/// file (`[[inspector]]`, `[reviewer]`, `[[emitter]]`), with the files it names under the
/// same prefix, read at cold start (see [`crate::config_file`]). Unset: no plugins but
/// the functions of `INSPECTOR_FUNCTIONS` / `REVIEWER_FUNCTIONS`.
pub const CONFIG_S3_URI: &str = "CONFIG_S3_URI";
/// Seconds a review waits past its due time for the report's pending inspections
/// (default 300; the state machine's retries of `InspectionsPending` cover 600).
pub const REVIEW_WAIT_SECONDS: &str = "REVIEW_WAIT_SECONDS";
/// The emitter fan-out's automatic quarantine of EC2 instances: `Off` (default),
/// `DryRun` (records what it would do) or `On` (see [`crate::quarantine`]).
pub const QUARANTINE: &str = "QUARANTINE";
/// The least severity a report needs to be quarantined (`urgent`, the default, or
/// `unclassified`).
pub const QUARANTINE_MIN_SEVERITY: &str = "QUARANTINE_MIN_SEVERITY";
/// Comma-separated security group IDs to isolate with, one per VPC (a VPC without one
/// gets the group the fan-out creates).
pub const QUARANTINE_SECURITY_GROUPS: &str = "QUARANTINE_SECURITY_GROUPS";
/// Longest review wait the state machine's retries cover.
pub const MAX_REVIEW_WAIT: Duration = Duration::from_secs(600);
/// The inspector harness's function timeout (`Timeout` in `template.yaml`).
pub const HARNESS_TIMEOUT: Duration = Duration::from_secs(300);
/// What the harness keeps of its timeout past the last inspector attempt: storing the
/// sections and publishing the new attributes' tasks.
pub const HARNESS_MARGIN: Duration = Duration::from_secs(30);

/// The environment one binary reads.
#[derive(Debug, Clone, Copy)]
pub struct EnvSpec {
    /// The binary (and Lambda function) name.
    pub binary: &'static str,
    /// Variables it cannot start without.
    pub required: &'static [&'static str],
    /// Variables with a default.
    pub optional: &'static [&'static str],
}

/// Every Lambda binary and what it reads; `template.yaml` is tested against this.
pub const BINARIES: &[EnvSpec] = &[
    EnvSpec {
        binary: "receptor",
        required: &[
            REPORT_TABLE,
            ERROR_TABLE,
            ERROR_TOPIC_ARN,
            STATE_MACHINE_ARN,
        ],
        optional: &[
            INSPECTION_DELAY_SECONDS,
            REVIEW_DELAY_SECONDS,
            AGGREGATION_WINDOW_SECONDS,
            RECORD_TTL_DAYS,
        ],
    },
    EnvSpec {
        binary: "dispatcher",
        required: &[REPORT_TABLE, ERROR_TABLE, ERROR_TOPIC_ARN],
        // Without TASK_TOPIC_ARN (a stack with no inspector) claims need no task.
        optional: &[
            TASK_TOPIC_ARN,
            REVIEW_DELAY_SECONDS,
            MAX_ATTRIBUTES_PER_REPORT,
            RECORD_TTL_DAYS,
        ],
    },
    EnvSpec {
        binary: "inspector-harness",
        required: &[REPORT_TABLE, ERROR_TABLE, ERROR_TOPIC_ARN, TASK_TOPIC_ARN],
        optional: &[
            CONFIG_S3_URI,
            INSPECTOR_FUNCTIONS,
            INSPECTOR_TIMEOUT_SECONDS,
            MAX_DEPTH,
            MAX_ATTRIBUTES_PER_REPORT,
            RECORD_TTL_DAYS,
        ],
    },
    EnvSpec {
        binary: "reviewer-invoker",
        required: &[
            REPORT_TABLE,
            ERROR_TABLE,
            ERROR_TOPIC_ARN,
            REPORT_TOPIC_ARN,
            STATE_MACHINE_ARN,
        ],
        optional: &[
            CONFIG_S3_URI,
            REVIEWER_FUNCTIONS,
            REVIEW_DELAY_SECONDS,
            REVIEW_WAIT_SECONDS,
            RECORD_TTL_DAYS,
        ],
    },
    EnvSpec {
        binary: "emitter-fanout",
        required: &[REPORT_TABLE, ERROR_TABLE, ERROR_TOPIC_ARN],
        // The quarantine's variables, and the state machine for the re-review that
        // shows its action in the report's next version.
        optional: &[
            CONFIG_S3_URI,
            RECORD_TTL_DAYS,
            STATE_MACHINE_ARN,
            QUARANTINE,
            QUARANTINE_MIN_SEVERITY,
            QUARANTINE_SECURITY_GROUPS,
        ],
    },
];

/// The spec of `binary`.
pub fn spec(binary: &str) -> Option<&'static EnvSpec> {
    BINARIES.iter().find(|s| s.binary == binary)
}

/// The variable that sets a [`Settings`] key (as `SettingsError::key` names it).
pub fn variable_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "inspection_delay" => INSPECTION_DELAY_SECONDS,
        "review_delay" => REVIEW_DELAY_SECONDS,
        "aggregation_window" => AGGREGATION_WINDOW_SECONDS,
        "max_depth" => MAX_DEPTH,
        "max_attributes_per_report" => MAX_ATTRIBUTES_PER_REPORT,
        _ => return None,
    })
}

/// Configuration of one function: what its [`EnvSpec`] names, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// The binary (function) this configuration is for.
    pub binary: &'static str,
    /// Report table name.
    pub report_table: Option<String>,
    /// Error table name.
    pub error_table: Option<String>,
    /// Task topic.
    pub task_topic_arn: Option<String>,
    /// Report topic.
    pub report_topic_arn: Option<String>,
    /// Error topic.
    pub error_topic_arn: Option<String>,
    /// Delay state machine.
    pub state_machine_arn: Option<String>,
    /// Pipeline tunables.
    pub settings: Settings,
    /// How long records live.
    pub record_ttl: Duration,
    /// Inspector functions.
    pub inspector_functions: Vec<String>,
    /// Timeout of one inspector.
    pub inspector_timeout: Duration,
    /// Reviewer functions.
    pub reviewer_functions: Vec<String>,
    /// Where the plugin configuration file is (`s3://bucket/key`).
    pub config_s3_uri: Option<String>,
    /// How long a review waits past its due time for pending inspections.
    pub review_wait: Duration,
}

impl StackConfig {
    /// Reads the process environment for `binary`.
    pub fn from_env(binary: &str) -> Result<Self, AwsError> {
        Self::from_lookup(binary, |name| std::env::var(name).ok())
    }

    /// Reads configuration for `binary` through `lookup` (tests pass a map).
    pub fn from_lookup(
        binary: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AwsError> {
        let spec = spec(binary).ok_or_else(|| AwsError::Config {
            name: "(binary)".into(),
            message: format!("no environment spec for binary {binary}"),
        })?;
        let reads = |name: &str| spec.required.contains(&name) || spec.optional.contains(&name);
        let get = |name: &str| -> Result<Option<String>, AwsError> {
            if !reads(name) {
                return Ok(None);
            }
            let value = lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            if value.is_none() && spec.required.contains(&name) {
                return Err(AwsError::Config {
                    name: name.into(),
                    message: format!("required by {binary} but not set"),
                });
            }
            Ok(value)
        };
        let number = |name: &str, default: u64| -> Result<u64, AwsError> {
            match get(name)? {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| AwsError::Config {
                    name: name.into(),
                    message: format!("expected a whole number, got {v:?}"),
                }),
            }
        };
        let list = |name: &str| -> Result<Vec<String>, AwsError> {
            Ok(get(name)?
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default())
        };
        let d = Settings::default();
        let settings = Settings {
            inspection_delay: Duration::from_secs(number(
                INSPECTION_DELAY_SECONDS,
                d.inspection_delay.as_secs(),
            )?),
            review_delay: Duration::from_secs(number(
                REVIEW_DELAY_SECONDS,
                d.review_delay.as_secs(),
            )?),
            aggregation_window: Duration::from_secs(number(
                AGGREGATION_WINDOW_SECONDS,
                d.aggregation_window.as_secs(),
            )?),
            // Past u32, a count is out of its bounds anyway: `validate` says which.
            max_depth: u32::try_from(number(MAX_DEPTH, d.max_depth.into())?).unwrap_or(u32::MAX),
            max_attributes_per_report: u32::try_from(number(
                MAX_ATTRIBUTES_PER_REPORT,
                d.max_attributes_per_report.into(),
            )?)
            .unwrap_or(u32::MAX),
            ..d
        };
        settings.validate().map_err(|e| AwsError::Config {
            name: variable_of(e.key).unwrap_or(e.key).to_string(),
            message: e.to_string(),
        })?;
        let ttl_days = number(RECORD_TTL_DAYS, 30)?;
        if ttl_days == 0 {
            return Err(AwsError::Config {
                name: RECORD_TTL_DAYS.into(),
                message: "must be at least 1".into(),
            });
        }
        let config_s3_uri = get(CONFIG_S3_URI)?;
        if let Some(uri) = &config_s3_uri {
            crate::config_file::S3Location::parse(uri).map_err(|message| AwsError::Config {
                name: CONFIG_S3_URI.into(),
                message,
            })?;
        }
        let review_wait = Duration::from_secs(number(REVIEW_WAIT_SECONDS, 300)?);
        if review_wait > MAX_REVIEW_WAIT {
            return Err(AwsError::Config {
                name: REVIEW_WAIT_SECONDS.into(),
                message: format!(
                    "must be at most {} (the state machine's retries wait no longer)",
                    MAX_REVIEW_WAIT.as_secs()
                ),
            });
        }
        let inspector_timeout = Duration::from_secs(number(INSPECTOR_TIMEOUT_SECONDS, 30)?);
        let mut settings = settings;
        if spec.optional.contains(&INSPECTOR_TIMEOUT_SECONDS) {
            // The harness waits for a rate-limited inspector within its own invocation:
            // never longer than its timeout leaves after one more attempt.
            let left = HARNESS_TIMEOUT
                .saturating_sub(inspector_timeout)
                .saturating_sub(HARNESS_MARGIN);
            settings.max_rate_limit_wait = settings.max_rate_limit_wait.min(left);
        }
        Ok(StackConfig {
            binary: spec.binary,
            report_table: get(REPORT_TABLE)?,
            error_table: get(ERROR_TABLE)?,
            task_topic_arn: get(TASK_TOPIC_ARN)?,
            report_topic_arn: get(REPORT_TOPIC_ARN)?,
            error_topic_arn: get(ERROR_TOPIC_ARN)?,
            state_machine_arn: get(STATE_MACHINE_ARN)?,
            settings,
            record_ttl: Duration::from_secs(ttl_days * 86_400),
            inspector_functions: list(INSPECTOR_FUNCTIONS)?,
            inspector_timeout,
            reviewer_functions: list(REVIEWER_FUNCTIONS)?,
            config_s3_uri,
            review_wait,
        })
    }

    /// A variable this binary requires; an error naming it if absent.
    pub fn require<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, AwsError> {
        value.as_deref().ok_or_else(|| AwsError::Config {
            name: name.into(),
            message: "not set".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = StackConfig::from_lookup("receptor", lookup(&[(REPORT_TABLE, "t")])).unwrap_err();
        assert!(err.to_string().contains("ERROR_TABLE"), "{err}");
    }

    #[test]
    fn malformed_number_is_named() {
        let err = StackConfig::from_lookup(
            "emitter-fanout",
            lookup(&[
                (REPORT_TABLE, "t"),
                (ERROR_TABLE, "e"),
                (ERROR_TOPIC_ARN, "arn"),
                (RECORD_TTL_DAYS, "ten"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("RECORD_TTL_DAYS"), "{err}");
    }

    #[test]
    fn a_review_wait_longer_than_the_state_machine_retries_is_refused() {
        let env = |wait: &'static str| {
            lookup(&[
                (REPORT_TABLE, "t"),
                (ERROR_TABLE, "e"),
                (ERROR_TOPIC_ARN, "arn"),
                (REPORT_TOPIC_ARN, "arn"),
                (STATE_MACHINE_ARN, "arn"),
                (REVIEW_WAIT_SECONDS, wait),
            ])
        };
        let ok = StackConfig::from_lookup("reviewer-invoker", env("600")).unwrap();
        assert_eq!(ok.review_wait, Duration::from_secs(600));
        let err = StackConfig::from_lookup("reviewer-invoker", env("601")).unwrap_err();
        assert!(err.to_string().contains(REVIEW_WAIT_SECONDS), "{err}");
    }

    #[test]
    fn delays_and_lists_are_parsed_and_unread_variables_ignored() {
        let c = StackConfig::from_lookup(
            "receptor",
            lookup(&[
                (REPORT_TABLE, "t"),
                (ERROR_TABLE, "e"),
                (ERROR_TOPIC_ARN, "arn:e"),
                (STATE_MACHINE_ARN, "arn:sm"),
                (INSPECTION_DELAY_SECONDS, "5"),
                (REVIEW_DELAY_SECONDS, "7"),
                (TASK_TOPIC_ARN, "not read by the receptor"),
            ]),
        )
        .unwrap();
        assert_eq!(c.settings.inspection_delay, Duration::from_secs(5));
        assert_eq!(c.settings.review_delay, Duration::from_secs(7));
        assert_eq!(c.task_topic_arn, None);
        let r = StackConfig::from_lookup(
            "reviewer-invoker",
            lookup(&[
                (REPORT_TABLE, "t"),
                (ERROR_TABLE, "e"),
                (ERROR_TOPIC_ARN, "arn"),
                (REPORT_TOPIC_ARN, "arn"),
                (STATE_MACHINE_ARN, "arn"),
                (REVIEWER_FUNCTIONS, " a, arn:b ,,"),
            ]),
        )
        .unwrap();
        assert_eq!(r.reviewer_functions, vec!["a", "arn:b"]);
    }

    /// The receptor's required variables, plus `extra`.
    fn receptor_with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs = vec![
            (REPORT_TABLE, "t"),
            (ERROR_TABLE, "e"),
            (ERROR_TOPIC_ARN, "arn:e"),
            (STATE_MACHINE_ARN, "arn:sm"),
        ];
        pairs.extend_from_slice(extra);
        pairs
    }

    #[test]
    fn a_setting_out_of_core_bounds_is_rejected_naming_its_variable_and_key() {
        let err = StackConfig::from_lookup(
            "receptor",
            lookup(&receptor_with(&[(AGGREGATION_WINDOW_SECONDS, "0")])),
        )
        .unwrap_err();
        let AwsError::Config { name, message } = &err else {
            panic!("{err}");
        };
        assert_eq!(name, AGGREGATION_WINDOW_SECONDS);
        assert!(message.starts_with("aggregation_window: "), "{message}");
        let err = StackConfig::from_lookup(
            "inspector-harness",
            lookup(&[
                (REPORT_TABLE, "t"),
                (ERROR_TABLE, "e"),
                (ERROR_TOPIC_ARN, "arn:e"),
                (TASK_TOPIC_ARN, "arn:t"),
                (MAX_ATTRIBUTES_PER_REPORT, "0"),
            ]),
        )
        .unwrap_err();
        // The same message as the CLI's, from the same check in core.
        assert_eq!(
            err.to_string(),
            "environment variable MAX_ATTRIBUTES_PER_REPORT: max_attributes_per_report: must be between 1 and 10000"
        );
        let err = StackConfig::from_lookup(
            "inspector-harness",
            lookup(&[
                (REPORT_TABLE, "t"),
                (ERROR_TABLE, "e"),
                (ERROR_TOPIC_ARN, "arn:e"),
                (TASK_TOPIC_ARN, "arn:t"),
                (MAX_DEPTH, "99999999999"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable MAX_DEPTH: max_depth: must be at most"),
            "{err}"
        );
    }

    fn harness_with(extra: &[(&'static str, &'static str)]) -> Result<StackConfig, AwsError> {
        let mut pairs = vec![
            (REPORT_TABLE, "t"),
            (ERROR_TABLE, "e"),
            (ERROR_TOPIC_ARN, "arn:e"),
            (TASK_TOPIC_ARN, "arn:t"),
        ];
        pairs.extend_from_slice(extra);
        StackConfig::from_lookup("inspector-harness", lookup(&pairs))
    }

    #[test]
    fn the_harness_waits_for_a_rate_limited_inspector_only_what_its_timeout_leaves() {
        let c = harness_with(&[(INSPECTOR_TIMEOUT_SECONDS, "60")]).unwrap();
        assert_eq!(
            c.settings.max_rate_limit_wait,
            Duration::from_secs(300 - 60 - 30)
        );
        let c = harness_with(&[(INSPECTOR_TIMEOUT_SECONDS, "240")]).unwrap();
        assert_eq!(c.settings.max_rate_limit_wait, Duration::from_secs(30));
        // Functions that run no inspector keep core's default.
        let r = StackConfig::from_lookup("receptor", lookup(&receptor_with(&[]))).unwrap();
        assert_eq!(
            r.settings.max_rate_limit_wait,
            Settings::default().max_rate_limit_wait
        );
    }

    #[test]
    fn the_configuration_uri_is_checked_and_read_only_by_the_plugin_functions() {
        let c =
            harness_with(&[(CONFIG_S3_URI, "s3://b/p/config/abc/alertresponder.toml")]).unwrap();
        assert_eq!(
            c.config_s3_uri.as_deref(),
            Some("s3://b/p/config/abc/alertresponder.toml")
        );
        assert_eq!(c.binary, "inspector-harness");
        let err = harness_with(&[(CONFIG_S3_URI, "https://b/p.toml")]).unwrap_err();
        assert!(err.to_string().contains(CONFIG_S3_URI), "{err}");
        let r = StackConfig::from_lookup(
            "receptor",
            lookup(&receptor_with(&[(CONFIG_S3_URI, "s3://b/c.toml")])),
        )
        .unwrap();
        assert_eq!(r.config_s3_uri, None);
    }

    #[test]
    fn every_settings_key_from_the_environment_has_its_variable() {
        for (key, variable) in [
            ("inspection_delay", INSPECTION_DELAY_SECONDS),
            ("review_delay", REVIEW_DELAY_SECONDS),
            ("aggregation_window", AGGREGATION_WINDOW_SECONDS),
            ("max_depth", MAX_DEPTH),
            ("max_attributes_per_report", MAX_ATTRIBUTES_PER_REPORT),
        ] {
            assert_eq!(variable_of(key), Some(variable));
        }
        assert_eq!(variable_of("max_sections_per_inspection"), None);
    }

    /// The template's parameters (with their `MinValue` / `MaxValue`) and the variable
    /// each sets.
    const BOUNDED_PARAMETERS: &[(&str, &str)] = &[
        ("InspectionDelay", INSPECTION_DELAY_SECONDS),
        ("ReviewDelay", REVIEW_DELAY_SECONDS),
        ("AggregationWindow", AGGREGATION_WINDOW_SECONDS),
        ("MaxDepth", MAX_DEPTH),
        ("MaxAttributesPerReport", MAX_ATTRIBUTES_PER_REPORT),
        ("ReviewWait", REVIEW_WAIT_SECONDS),
    ];

    #[test]
    fn the_template_accepts_only_settings_that_core_accepts() {
        let template: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../../../template.yaml")).unwrap();
        for (parameter, variable) in BOUNDED_PARAMETERS {
            let declared = &template["Parameters"][*parameter];
            let binary = BINARIES
                .iter()
                .find(|b| b.optional.contains(variable))
                .unwrap_or_else(|| panic!("no binary reads {variable}"));
            for bound in ["MinValue", "MaxValue"] {
                let value = declared[bound]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{parameter} has no numeric {bound}"));
                let mut pairs: Vec<(&str, String)> =
                    binary.required.iter().map(|r| (*r, "x".into())).collect();
                pairs.push((variable, value.to_string()));
                let result = StackConfig::from_lookup(binary.binary, |name| {
                    pairs
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone())
                });
                assert!(
                    result.is_ok(),
                    "template.yaml lets {parameter} be {value} ({bound}), which core rejects: {:?}",
                    result.err()
                );
            }
        }
    }

    #[test]
    fn every_binary_has_a_spec_and_no_variable_is_both_required_and_optional() {
        for s in BINARIES {
            for r in s.required {
                assert!(!s.optional.contains(r), "{} {r}", s.binary);
            }
        }
        // Compile, review and publish are one state (one function): five functions.
        assert_eq!(BINARIES.len(), 5);
    }
}
