//! The TOML configuration (`alertresponder.toml`). Keys are stable across versions;
//! unknown keys are rejected so that a typo never silently disables a plugin.
//! Relative paths are relative to the config file.
//!
//! Layout: this module holds the file's shape (the raw TOML tables, deserialized as
//! written) and [`Config`], the checked result. Each section has its parser:
//! [`settings`] the top-level keys (pipeline tunables, validated by core, and the
//! runtime's durability, retention and concurrency), [`inspector`], [`reviewer`] and
//! [`emitter`] the plugin tables. `source` is what they share: errors that name the
//! file and key, durations, paths beside the file, commands split into argv.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alertresponder_core::Settings;
use serde::Deserialize;

pub mod settings;

pub use alertresponder_plugins::config::{
    parse_duration, BuiltinKind, ConfigError, EmitterConfig, EmitterTarget, InspectorConfig,
    InspectorSource, PluginsConfig, ReviewerConfig, Runtime, DEFAULT_PLUGIN_TIMEOUT,
};
use alertresponder_plugins::config::{RawReviewer, Source};

use settings::{Tunables, DEFAULT_CONCURRENCY};

/// The database file when `database` is not set, beside the config.
pub const DEFAULT_DATABASE: &str = "alertresponder.db";

// The file as written. Top-level keys cannot be a flattened table of their own:
// serde's `flatten` does not work with `deny_unknown_fields`.

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: Option<PathBuf>,
    durability: Option<String>,
    inspection_delay: Option<String>,
    review_delay: Option<String>,
    aggregation_window: Option<String>,
    retention: Option<String>,
    max_depth: Option<u32>,
    max_attributes_per_report: Option<u32>,
    concurrency: Option<usize>,
    listen: Option<String>,
    api_token: Option<String>,
    #[serde(default)]
    inspector: Vec<toml::Table>,
    reviewer: Option<RawReviewer>,
    #[serde(default)]
    emitter: Vec<toml::Table>,
}

/// The whole configuration, validated, with paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (`None`: built-in defaults).
    pub source: Option<PathBuf>,
    /// SQLite database file.
    pub database: PathBuf,
    /// `full` fsyncs every commit (survives power loss); `normal` survives a process crash.
    pub durable_full: bool,
    /// Pipeline tunables.
    pub settings: Settings,
    /// Reports older than this are deleted by `serve` (`None`: kept).
    pub retention: Option<Duration>,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Default listen address of `serve`.
    pub listen: Option<String>,
    /// Bearer token of the HTTP API.
    pub api_token: Option<String>,
    /// Inspectors, in order.
    pub inspectors: Vec<InspectorConfig>,
    /// Reviewers.
    pub reviewer: ReviewerConfig,
    /// Emitters, in order.
    pub emitters: Vec<EmitterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: None,
            database: PathBuf::from(DEFAULT_DATABASE),
            durable_full: false,
            settings: Settings::default(),
            retention: None,
            concurrency: DEFAULT_CONCURRENCY,
            listen: None,
            api_token: None,
            inspectors: Vec::new(),
            reviewer: ReviewerConfig::none(),
            emitters: Vec::new(),
        }
    }
}

impl Config {
    /// Loads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses config text as if read from `path` (which anchors relative paths).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let source = Source::new(path);
        let raw: RawConfig = toml::from_str(text).map_err(|e| source.unparsable(e.to_string()))?;
        let Tunables {
            settings,
            durable_full,
            retention,
            concurrency,
        } = settings::tunables(&raw, &source)?;
        let plugins = PluginsConfig::parse(
            &alertresponder_plugins::config::RawPlugins {
                inspector: raw.inspector,
                reviewer: raw.reviewer,
                emitter: raw.emitter,
            },
            &source,
            Runtime::Embedded,
        )?;
        let database = raw
            .database
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_DATABASE));
        Ok(Config {
            source: Some(path.to_path_buf()),
            database: source.resolve(database),
            durable_full,
            settings,
            retention,
            concurrency,
            listen: raw.listen,
            api_token: raw.api_token,
            inspectors: plugins.inspectors,
            reviewer: plugins.reviewer,
            emitters: plugins.emitters,
        })
    }
}

/// Where the tests' config files claim to be.
#[cfg(test)]
const TEST_PATH: &str = "/etc/ar/alertresponder.toml";

/// Parses `text` as if read from [`TEST_PATH`].
#[cfg(test)]
fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new(TEST_PATH))
}

/// The key and message of the invalid value in `text`.
#[cfg(test)]
fn invalid(text: &str) -> (String, String) {
    match load(text) {
        Err(ConfigError::Invalid { key, message, .. }) => (key, message),
        other => panic!("{text:?} is not rejected as an invalid value: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_with_paths_beside_the_config() {
        let c = load(
            r#"
database = "alertresponder.db"
inspection_delay = "300s"
review_delay = "10m"
aggregation_window = "3h"
[[inspector]]
name = "whois"
command = "./whois.sh --fast 'two words'"
types = ["ipaddr", "domain"]
timeout = "10s"
[reviewer]
policy = "policy.rego"
[[emitter]]
name = "ticket"
command = ["./open-ticket.sh"]
[[emitter]]
name = "hook"
url = "https://hooks.example.com/x"
headers = { Authorization = { env = "HOOK_TOKEN" } }
"#,
        )
        .unwrap();
        assert_eq!(c.database, PathBuf::from("/etc/ar/alertresponder.db"));
        assert_eq!(c.settings.review_delay, Duration::from_secs(600));
        assert_eq!(c.settings.aggregation_window, Duration::from_secs(3 * 3600));
        assert_eq!(
            c.inspectors[0].source,
            InspectorSource::Command(vec![
                "/etc/ar/./whois.sh".into(),
                "--fast".into(),
                "two words".into()
            ])
        );
        assert_eq!(c.inspectors[0].timeout, Duration::from_secs(10));
        assert_eq!(
            c.reviewer.policy,
            Some(PathBuf::from("/etc/ar/policy.rego"))
        );
        assert_eq!(
            c.emitters[0].target,
            EmitterTarget::Command(vec!["/etc/ar/./open-ticket.sh".into()])
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = load("inspection_delay = \"soon\"").unwrap_err().to_string();
        assert!(e.contains("inspection_delay"), "{e}");
        let e = load("[[emitter]]\nname = \"x\"\ncommand = \"a\"\nurl = \"http://b\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("emitter[0]") && e.contains("exactly one"), "{e}");
        let e = load("[[inspector]]\nname = \"x\"\ncommand = []")
            .unwrap_err()
            .to_string();
        assert!(e.contains("inspector[0].command"), "{e}");
        let e = load("retention = \"1h\"").unwrap_err().to_string();
        assert!(e.contains("retention") && e.contains("longer than"), "{e}");
        assert_eq!(
            load("retention = \"90d\"").unwrap().retention,
            Some(Duration::from_secs(90 * 86400))
        );
        let e = load("databse = \"x\"").unwrap_err().to_string();
        assert!(e.contains("databse"), "{e}");
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = load("").unwrap();
        assert_eq!(c.settings, Settings::default());
        assert!(c.inspectors.is_empty() && c.emitters.is_empty());
        assert_eq!(
            c,
            Config {
                source: Some(PathBuf::from(TEST_PATH)),
                database: PathBuf::from("/etc/ar/alertresponder.db"),
                ..Config::default()
            }
        );
    }

    #[test]
    fn a_file_that_is_not_toml_of_this_shape_is_a_parse_error_naming_the_key() {
        for (text, named) in [
            ("databse = \"x\"", "databse"),
            ("concurrency = \"many\"", "concurrency"),
            ("database = ", "database"),
        ] {
            match load(text) {
                Err(e @ ConfigError::Parse { .. }) => {
                    assert!(e.to_string().contains(named), "{text}: {e}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let e = Config::load(Path::new("/nonexistent/alertresponder.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(
            e.to_string().contains("/nonexistent/alertresponder.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_database_and_listen_keys_are_taken_as_written() {
        let c = load("database = \"/var/lib/ar.db\"\nlisten = \"0.0.0.0:8080\"\napi_token = \"t\"")
            .unwrap();
        assert_eq!(c.database, PathBuf::from("/var/lib/ar.db"));
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(c.api_token.as_deref(), Some("t"));
    }
}
