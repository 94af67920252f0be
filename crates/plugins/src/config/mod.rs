//! The plugin sections of `alertresponder.toml` — `[[inspector]]`, `[reviewer]`,
//! `[[emitter]]` — read the same way by both runtimes: the embedded command reads the
//! whole file, the AWS functions read these sections of the same file from the
//! stack's configuration bucket at cold start.
//!
//! Layout: [`source`] is what every section's parser shares (errors that name the
//! file and key, durations, paths beside the file, commands split into argv, plugin
//! names); [`inspector`], [`reviewer`] and [`emitter`] read their tables into checked
//! configs; [`build`] turns them into plugins (resolving secrets, opening files,
//! building clients), the answer cache and rate limit in front of each inspector.
//! A table's keys are stable across versions; unknown keys are rejected, so that a typo
//! never silently disables a plugin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub mod build;
pub mod emitter;
pub mod inspector;
pub mod reviewer;
pub mod source;

pub use emitter::{EmitterConfig, EmitterKind, EmitterTarget, SeverityFilter};
pub use inspector::{BuiltinKind, InspectorConfig, InspectorSource};
pub use reviewer::ReviewerConfig;
pub use source::{check_name, Source};

use crate::secret::MaybeSecret;

/// How long a plugin may take when its table sets no `timeout`.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Which runtime reads the configuration: each has plugins the other cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `alertresponder`: commands and files, no Lambda functions.
    Embedded,
    /// The AWS stack: Lambda functions, no commands and no local files.
    Aws,
}

impl Runtime {
    /// How the runtime is named in an error.
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Embedded => "the embedded runtime (alertresponder)",
            Runtime::Aws => "AWS",
        }
    }
}

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

/// The `[reviewer]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReviewer {
    policy: Option<PathBuf>,
    command: Option<CommandLine>,
    function: Option<String>,
    timeout: Option<String>,
}

/// The target keys of an `[[emitter]]` table without a `kind` (or `kind = "webhook"`),
/// as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    command: Option<CommandLine>,
    url: Option<MaybeSecret>,
    file: Option<PathBuf>,
    #[serde(default)]
    headers: BTreeMap<String, MaybeSecret>,
    signing_secret: Option<crate::secret::SecretRef>,
}

/// The three plugin sections as written; a runtime's own file shape embeds them.
#[derive(Debug, Default, Deserialize)]
pub struct RawPlugins {
    /// `[[inspector]]` tables: read key by key, since a built-in's keys depend on its `kind`.
    #[serde(default)]
    pub inspector: Vec<toml::Table>,
    /// `[reviewer]`.
    pub reviewer: Option<RawReviewer>,
    /// `[[emitter]]` tables: read key by key, since a built-in's keys depend on its `kind`.
    #[serde(default)]
    pub emitter: Vec<toml::Table>,
}

/// The plugin sections, checked, with paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    /// Inspectors, in order.
    pub inspectors: Vec<InspectorConfig>,
    /// Reviewers.
    pub reviewer: ReviewerConfig,
    /// Emitters, in order.
    pub emitters: Vec<EmitterConfig>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            inspectors: Vec::new(),
            reviewer: ReviewerConfig::none(),
            emitters: Vec::new(),
        }
    }
}

impl PluginsConfig {
    /// Checks the sections of `raw` for `runtime`.
    pub fn parse(raw: &RawPlugins, source: &Source, runtime: Runtime) -> Result<Self, ConfigError> {
        Ok(Self {
            inspectors: inspector::inspectors(&raw.inspector, source, runtime)?,
            reviewer: reviewer::reviewer(raw.reviewer.as_ref(), source, runtime)?,
            emitters: emitter::emitters(&raw.emitter, source, runtime)?,
        })
    }

    /// Reads the plugin sections of the file `text`, ignoring its other keys (the
    /// embedded runtime's own): what the AWS functions do with the file `make deploy`
    /// uploads.
    pub fn from_toml(text: &str, source: &Source, runtime: Runtime) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| source.unparsable(e.to_string()))?;
        let mut sections = toml::Table::new();
        for key in ["inspector", "reviewer", "emitter"] {
            if let Some(v) = table.remove(key) {
                sections.insert(key.to_string(), v);
            }
        }
        let raw =
            RawPlugins::deserialize(sections).map_err(|e| source.unparsable(e.to_string()))?;
        Self::parse(&raw, source, runtime)
    }

    /// Every Secrets Manager secret the configuration references (name or ARN), in
    /// order, once each: what `make deploy` grants the functions, and nothing more.
    pub fn secrets_manager_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        let mut add = |id: &str| {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        };
        for i in &self.inspectors {
            if let InspectorSource::Builtin { table, .. } = &i.source {
                for id in inspector::secret_ids(table) {
                    add(&id);
                }
            }
        }
        for e in &self.emitters {
            match &e.target {
                EmitterTarget::Url {
                    url,
                    headers,
                    signing_secret,
                } => {
                    let references = std::iter::once(url)
                        .chain(headers.iter().map(|(_, v)| v))
                        .filter_map(|v| match v {
                            MaybeSecret::Secret(r) => Some(r),
                            MaybeSecret::Plain(_) => None,
                        })
                        .chain(signing_secret);
                    for r in references {
                        if let Some(id) = r.secrets_manager_id() {
                            add(id);
                        }
                    }
                }
                EmitterTarget::Builtin { table, .. } => {
                    for id in inspector::secret_ids(table) {
                        add(&id);
                    }
                }
                EmitterTarget::Command(_) | EmitterTarget::File(_) => {}
            }
        }
        ids
    }
}

impl PluginsConfig {
    /// The files the configuration reads besides itself — the policy, a built-in's
    /// databases — resolved beside it: what `make deploy` uploads with it.
    pub fn files(&self, source: &Source) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(policy) = &self.reviewer.policy {
            files.push(policy.clone());
        }
        for i in &self.inspectors {
            if let InspectorSource::Builtin { kind, table } = &i.source {
                files.extend(inspector::files(*kind, table, source));
            }
        }
        files
    }
}

/// Parses a duration written as `300s`, `10m`, `3h`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"300s\", \"10m\" or \"3h\": {e}"))
}

/// Where the tests' config files claim to be.
#[cfg(test)]
const TEST_PATH: &str = "/etc/ar/alertresponder.toml";

/// Parses the plugin sections of `text` as if read from [`TEST_PATH`], for `runtime`.
#[cfg(test)]
fn load_for(text: &str, runtime: Runtime) -> Result<PluginsConfig, ConfigError> {
    PluginsConfig::from_toml(text, &Source::new(std::path::Path::new(TEST_PATH)), runtime)
}

/// Parses the plugin sections of `text` for the embedded runtime.
#[cfg(test)]
fn load(text: &str) -> Result<PluginsConfig, ConfigError> {
    load_for(text, Runtime::Embedded)
}

/// The key and message of the invalid value in `text`.
#[cfg(test)]
fn invalid(text: &str) -> (String, String) {
    invalid_for(text, Runtime::Embedded)
}

/// The key and message of the invalid value in `text`, for `runtime`.
#[cfg(test)]
fn invalid_for(text: &str, runtime: Runtime) -> (String, String) {
    match load_for(text, runtime) {
        Err(ConfigError::Invalid { key, message, .. }) => (key, message),
        other => panic!("{text:?} is not rejected as an invalid value: {other:?}"),
    }
}
