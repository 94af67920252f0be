//! The TOML configuration (`alertresponder.toml`). Keys are stable across versions;
//! unknown keys are rejected so that a typo never silently disables a plugin.
//! Relative paths are relative to the config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alertresponder_core::Settings;
use serde::Deserialize;

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has the wrong shape.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, which names the key and line.
        message: String,
    },
    /// A value is invalid.
    #[error("config {path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, e.g. `inspector[1].timeout`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A command: argv as a list, or a plain string split like a shell would (no shell runs it).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// `"./whois.sh --fast"`.
    Line(String),
    /// `["./whois.sh", "--fast"]`.
    Argv(Vec<String>),
}

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
    inspector: Vec<RawInspector>,
    reviewer: Option<RawReviewer>,
    #[serde(default)]
    emitter: Vec<RawEmitter>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInspector {
    name: String,
    command: CommandLine,
    types: Option<Vec<String>>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReviewer {
    policy: Option<PathBuf>,
    command: Option<CommandLine>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmitter {
    name: String,
    command: Option<CommandLine>,
    url: Option<String>,
    file: Option<PathBuf>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout: Option<String>,
}

/// An external-command inspector.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectorConfig {
    /// Its name (author of its sections).
    pub name: String,
    /// argv.
    pub command: Vec<String>,
    /// Attribute types it takes (all when `None`).
    pub types: Option<Vec<String>>,
    /// How long it may take per attribute.
    pub timeout: Duration,
}

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

/// Where an emitter sends reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EmitterTarget {
    /// A command that reads the report on stdin.
    Command(Vec<String>),
    /// An HTTP endpoint that receives a POST.
    Url {
        /// The URL.
        url: String,
        /// Extra headers (e.g. authorization).
        headers: Vec<(String, String)>,
    },
    /// A JSON-lines file (`-` for stdout).
    File(PathBuf),
}

/// One emitter.
#[derive(Debug, Clone, PartialEq)]
pub struct EmitterConfig {
    /// Its name.
    pub name: String,
    /// Where it sends.
    pub target: EmitterTarget,
    /// How long one delivery may take.
    pub timeout: Duration,
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
            database: PathBuf::from("alertresponder.db"),
            durable_full: false,
            settings: Settings::default(),
            retention: None,
            concurrency: 8,
            listen: None,
            api_token: None,
            inspectors: Vec::new(),
            reviewer: ReviewerConfig {
                timeout: Duration::from_secs(30),
                ..Default::default()
            },
            emitters: Vec::new(),
        }
    }
}

/// Parses a duration written as `300s`, `10m`, `3h`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"300s\", \"10m\" or \"3h\": {e}"))
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let dur =
            |key: &str, v: &Option<String>, default: Duration| -> Result<Duration, ConfigError> {
                match v {
                    None => Ok(default),
                    Some(s) => parse_duration(s).map_err(|m| invalid(key.to_string(), m)),
                }
            };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let argv = |key: String, c: &CommandLine| -> Result<Vec<String>, ConfigError> {
            let mut v = match c {
                CommandLine::Argv(v) => v.clone(),
                CommandLine::Line(s) => shell_words::split(s)
                    .map_err(|e| invalid(key.clone(), format!("cannot split {s:?}: {e}")))?,
            };
            if v.is_empty() || v[0].is_empty() {
                return Err(invalid(key, "must name a program".into()));
            }
            // A program named by a relative path is found beside the config file.
            if v[0].contains('/') && !Path::new(&v[0]).is_absolute() {
                v[0] = resolve(Path::new(&v[0])).to_string_lossy().into_owned();
            }
            Ok(v)
        };

        let defaults = Config::default();
        let mut settings = Settings {
            inspection_delay: dur(
                "inspection_delay",
                &raw.inspection_delay,
                defaults.settings.inspection_delay,
            )?,
            review_delay: dur(
                "review_delay",
                &raw.review_delay,
                defaults.settings.review_delay,
            )?,
            aggregation_window: dur(
                "aggregation_window",
                &raw.aggregation_window,
                defaults.settings.aggregation_window,
            )?,
            ..defaults.settings.clone()
        };
        if let Some(d) = raw.max_depth {
            settings.max_depth = d;
        }
        if let Some(c) = raw.max_attributes_per_report {
            if c == 0 {
                return Err(invalid(
                    "max_attributes_per_report".into(),
                    "must be at least 1".into(),
                ));
            }
            settings.max_attributes_per_report = c;
        }
        let durable_full = match raw.durability.as_deref() {
            None | Some("normal") => false,
            Some("full") => true,
            Some(other) => {
                return Err(invalid(
                    "durability".into(),
                    format!("{other:?}: expected \"normal\" or \"full\""),
                ));
            }
        };
        let retention = raw
            .retention
            .as_deref()
            .map(|r| parse_duration(r).map_err(|m| invalid("retention".into(), m)))
            .transpose()?;
        if retention.is_some_and(|r| {
            r < settings.aggregation_window + settings.review_delay + settings.inspection_delay
        }) {
            return Err(invalid(
                "retention".into(),
                "must be longer than aggregation_window + inspection_delay + review_delay".into(),
            ));
        }
        let concurrency = raw.concurrency.unwrap_or(defaults.concurrency);
        if concurrency == 0 || concurrency > 256 {
            return Err(invalid(
                "concurrency".into(),
                "must be between 1 and 256".into(),
            ));
        }

        let mut names = std::collections::HashSet::new();
        let mut inspectors = Vec::new();
        for (i, ins) in raw.inspector.iter().enumerate() {
            let key = format!("inspector[{i}]");
            check_name(&ins.name).map_err(|m| invalid(format!("{key}.name"), m))?;
            if !names.insert(format!("i:{}", ins.name)) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("{:?} is used by another inspector", ins.name),
                ));
            }
            inspectors.push(InspectorConfig {
                name: ins.name.clone(),
                command: argv(format!("{key}.command"), &ins.command)?,
                types: ins.types.clone(),
                timeout: dur(
                    &format!("{key}.timeout"),
                    &ins.timeout,
                    Duration::from_secs(30),
                )?,
            });
        }
        let reviewer = match &raw.reviewer {
            None => defaults.reviewer.clone(),
            Some(r) => {
                if r.policy.is_none() && r.command.is_none() {
                    return Err(invalid(
                        "reviewer".into(),
                        "needs policy and/or command".into(),
                    ));
                }
                ReviewerConfig {
                    policy: r.policy.as_deref().map(resolve),
                    command: r
                        .command
                        .as_ref()
                        .map(|c| argv("reviewer.command".into(), c))
                        .transpose()?,
                    timeout: dur("reviewer.timeout", &r.timeout, Duration::from_secs(30))?,
                }
            }
        };
        let mut emitters = Vec::new();
        for (i, e) in raw.emitter.iter().enumerate() {
            let key = format!("emitter[{i}]");
            check_name(&e.name).map_err(|m| invalid(format!("{key}.name"), m))?;
            if !names.insert(format!("e:{}", e.name)) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("{:?} is used by another emitter", e.name),
                ));
            }
            let target = match (&e.command, &e.url, &e.file) {
                (Some(c), None, None) => EmitterTarget::Command(argv(format!("{key}.command"), c)?),
                (None, Some(u), None) => {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(invalid(
                            format!("{key}.url"),
                            format!("{u:?} is not an http(s) URL"),
                        ));
                    }
                    EmitterTarget::Url {
                        url: u.clone(),
                        headers: e
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    }
                }
                (None, None, Some(f)) => EmitterTarget::File(if f.as_os_str() == "-" {
                    f.clone()
                } else {
                    resolve(f)
                }),
                _ => {
                    return Err(invalid(
                        key,
                        "needs exactly one of command, url, file".into(),
                    ))
                }
            };
            if !e.headers.is_empty() && !matches!(target, EmitterTarget::Url { .. }) {
                return Err(invalid(
                    format!("{key}.headers"),
                    "only an url emitter takes headers".into(),
                ));
            }
            emitters.push(EmitterConfig {
                name: e.name.clone(),
                target,
                timeout: dur(
                    &format!("{key}.timeout"),
                    &e.timeout,
                    Duration::from_secs(30),
                )?,
            });
        }
        Ok(Config {
            source: Some(path.to_path_buf()),
            database: resolve(raw.database.as_deref().unwrap_or(&defaults.database)),
            durable_full,
            settings,
            retention,
            concurrency,
            listen: raw.listen,
            api_token: raw.api_token,
            inspectors,
            reviewer,
            emitters,
        })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/ar/alertresponder.toml"))
    }

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
headers = { Authorization = "Bearer t" }
"#,
        )
        .unwrap();
        assert_eq!(c.database, PathBuf::from("/etc/ar/alertresponder.db"));
        assert_eq!(c.settings.review_delay, Duration::from_secs(600));
        assert_eq!(c.settings.aggregation_window, Duration::from_secs(3 * 3600));
        assert_eq!(
            c.inspectors[0].command,
            vec!["/etc/ar/./whois.sh", "--fast", "two words"]
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
    }
}
