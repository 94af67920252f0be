//! The top-level keys: the pipeline tunables, bounded by core's [`Settings::validate`]
//! (the AWS stack checks its parameters with the same function, so both runtimes
//! reject the same values with the same message), and the embedded runtime's own
//! keys: `durability`, `retention` and `concurrency`.

use std::time::Duration;

use alertresponder_core::Settings;

use super::{ConfigError, RawConfig};
use alertresponder_plugins::config::Source;

/// Jobs run at once when `concurrency` is not set.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Most jobs run at once.
pub const MAX_CONCURRENCY: usize = 256;

/// What the top-level keys configure.
#[derive(Debug)]
pub(super) struct Tunables {
    /// The pipeline's settings, validated by core.
    pub(super) settings: Settings,
    /// `durability = "full"`.
    pub(super) durable_full: bool,
    /// How long `serve` keeps reports.
    pub(super) retention: Option<Duration>,
    /// Jobs run at once.
    pub(super) concurrency: usize,
}

/// Reads and checks the top-level keys of `raw`.
pub(super) fn tunables(raw: &RawConfig, source: &Source) -> Result<Tunables, ConfigError> {
    let defaults = Settings::default();
    let settings = Settings {
        inspection_delay: source.duration(
            "inspection_delay",
            raw.inspection_delay.as_deref(),
            defaults.inspection_delay,
        )?,
        review_delay: source.duration(
            "review_delay",
            raw.review_delay.as_deref(),
            defaults.review_delay,
        )?,
        aggregation_window: source.duration(
            "aggregation_window",
            raw.aggregation_window.as_deref(),
            defaults.aggregation_window,
        )?,
        max_depth: raw.max_depth.unwrap_or(defaults.max_depth),
        max_attributes_per_report: raw
            .max_attributes_per_report
            .unwrap_or(defaults.max_attributes_per_report),
        ..defaults
    };
    settings
        .validate()
        .map_err(|e| source.invalid(e.key, e.message))?;
    let durable_full = match raw.durability.as_deref() {
        None | Some("normal") => false,
        Some("full") => true,
        Some(other) => {
            return Err(source.invalid(
                "durability",
                format!("{other:?}: expected \"normal\" or \"full\""),
            ));
        }
    };
    let retention = raw
        .retention
        .as_deref()
        .map(|r| source.duration("retention", Some(r), Duration::ZERO))
        .transpose()?;
    // Deleting a report before its review would lose it: retention must outlast the
    // longest a report can stay open and unreviewed. (The sum is bounded: `validate`
    // passed.)
    let open_for = settings
        .aggregation_window
        .saturating_add(settings.review_delay)
        .saturating_add(settings.inspection_delay);
    if retention.is_some_and(|r| r < open_for) {
        return Err(source.invalid(
            "retention",
            "must be longer than aggregation_window + inspection_delay + review_delay",
        ));
    }
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(source.invalid(
            "concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    Ok(Tunables {
        settings,
        durable_full,
        retention,
        concurrency,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use alertresponder_core::settings::{MAX_ATTRIBUTES_PER_REPORT, MAX_DEPTH};

    use super::*;
    use crate::config::{invalid, load, TEST_PATH};

    #[test]
    fn the_tunables_are_read_in_the_documented_units() {
        let c = load(
            r#"
inspection_delay = "1m"
review_delay = "1h 30m"
aggregation_window = "2d"
max_depth = 5
max_attributes_per_report = 1000
"#,
        )
        .unwrap();
        assert_eq!(
            c.settings,
            Settings {
                inspection_delay: Duration::from_secs(60),
                review_delay: Duration::from_secs(5400),
                aggregation_window: Duration::from_secs(2 * 86_400),
                max_depth: 5,
                max_attributes_per_report: 1000,
                ..Settings::default()
            }
        );
    }

    #[test]
    fn a_duration_that_does_not_parse_is_rejected_at_its_key() {
        for key in [
            "inspection_delay",
            "review_delay",
            "aggregation_window",
            "retention",
        ] {
            let (k, message) = invalid(&format!("{key} = \"soon\""));
            assert_eq!(k, key);
            assert!(message.contains("\"soon\" is not a duration"), "{message}");
        }
    }

    #[test]
    fn a_bad_tunable_is_rejected_with_the_message_of_core_settings_validate() {
        let cases = [
            (
                "max_attributes_per_report = 0",
                Settings {
                    max_attributes_per_report: 0,
                    ..Settings::default()
                },
            ),
            (
                &*format!(
                    "max_attributes_per_report = {}",
                    MAX_ATTRIBUTES_PER_REPORT + 1
                ),
                Settings {
                    max_attributes_per_report: MAX_ATTRIBUTES_PER_REPORT + 1,
                    ..Settings::default()
                },
            ),
            (
                &*format!("max_depth = {}", MAX_DEPTH + 1),
                Settings {
                    max_depth: MAX_DEPTH + 1,
                    ..Settings::default()
                },
            ),
            (
                "aggregation_window = \"0s\"",
                Settings {
                    aggregation_window: Duration::ZERO,
                    ..Settings::default()
                },
            ),
            (
                "inspection_delay = \"2d\"",
                Settings {
                    inspection_delay: Duration::from_secs(2 * 86_400),
                    ..Settings::default()
                },
            ),
            (
                "review_delay = \"25h\"",
                Settings {
                    review_delay: Duration::from_secs(25 * 3600),
                    ..Settings::default()
                },
            ),
            (
                "aggregation_window = \"31d\"",
                Settings {
                    aggregation_window: Duration::from_secs(31 * 86_400),
                    ..Settings::default()
                },
            ),
        ];
        for (text, settings) in cases {
            let core = settings.validate().unwrap_err();
            let e = load(text).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("config {}: {core}", Path::new(TEST_PATH).display()),
                "{text}"
            );
            assert_eq!(
                invalid(text),
                (core.key.to_string(), core.message),
                "{text}"
            );
        }
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        let c = load(&format!(
            "max_attributes_per_report = {MAX_ATTRIBUTES_PER_REPORT}\nmax_depth = 0"
        ))
        .unwrap();
        assert_eq!(
            c.settings.max_attributes_per_report,
            MAX_ATTRIBUTES_PER_REPORT
        );
        assert_eq!(c.settings.max_depth, 0);
        let c = load(&format!(
            "max_attributes_per_report = 1\nmax_depth = {MAX_DEPTH}\n\
             inspection_delay = \"1d\"\nreview_delay = \"1d\"\naggregation_window = \"30d\""
        ))
        .unwrap();
        assert_eq!(c.settings.max_attributes_per_report, 1);
        assert_eq!(
            c.settings.aggregation_window,
            Duration::from_secs(30 * 86_400)
        );
    }

    #[test]
    fn durability_is_normal_or_full() {
        assert!(!load("").unwrap().durable_full);
        assert!(!load("durability = \"normal\"").unwrap().durable_full);
        assert!(load("durability = \"full\"").unwrap().durable_full);
        assert_eq!(
            invalid("durability = \"paranoid\""),
            (
                "durability".into(),
                "\"paranoid\": expected \"normal\" or \"full\"".into()
            )
        );
    }

    #[test]
    fn retention_must_outlast_a_report_open_and_unreviewed() {
        assert_eq!(load("").unwrap().retention, None);
        let (key, message) = invalid("retention = \"1h\"");
        assert_eq!(key, "retention");
        assert_eq!(
            message,
            "must be longer than aggregation_window + inspection_delay + review_delay"
        );
        // 3h window + 5m + 10m by default: exactly that much is kept long enough.
        assert_eq!(
            load("retention = \"3h 15m\"").unwrap().retention,
            Some(Duration::from_secs(3 * 3600 + 900))
        );
        assert!(load("retention = \"3h 14m\"").is_err());
        assert!(load("retention = \"2h\"\naggregation_window = \"1h\"").is_ok());
        assert_eq!(
            load("retention = \"90d\"").unwrap().retention,
            Some(Duration::from_secs(90 * 86400))
        );
    }

    #[test]
    fn concurrency_is_between_1_and_256() {
        assert_eq!(load("").unwrap().concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(load("concurrency = 1").unwrap().concurrency, 1);
        assert_eq!(load("concurrency = 256").unwrap().concurrency, 256);
        for bad in ["concurrency = 0", "concurrency = 257"] {
            assert_eq!(
                invalid(bad),
                ("concurrency".into(), "must be between 1 and 256".into())
            );
        }
    }
}
