//! Errors of building a plugin from its configuration.

use std::path::PathBuf;

use thiserror::Error;

/// A plugin that cannot be built from its configuration; raised at start-up, never per report.
#[derive(Debug, Error)]
pub enum PluginConfigError {
    /// A command plugin was given no program to run.
    #[error("plugin {name}: the command is empty")]
    EmptyCommand {
        /// The plugin's name.
        name: String,
    },
    /// A policy file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    PolicyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A policy does not parse or does not check.
    #[error("policy {path} is invalid: {message}")]
    Policy {
        /// The file (or label) of the policy.
        path: String,
        /// The policy engine's message.
        message: String,
    },
    /// A webhook URL is not an absolute http(s) URL.
    #[error("plugin {name}: invalid URL {url:?}: {message}")]
    InvalidUrl {
        /// The plugin's name.
        name: String,
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configured HTTP header has an invalid name or value.
    #[error("plugin {name}: invalid header {header:?}: {message}")]
    InvalidHeader {
        /// The plugin's name.
        name: String,
        /// The header name as configured.
        header: String,
        /// What is wrong with it.
        message: String,
    },
    /// The HTTP client could not be built (TLS initialisation).
    #[error("plugin {name}: cannot build the HTTP client: {message}")]
    HttpClient {
        /// The plugin's name.
        name: String,
        /// The client library's message.
        message: String,
    },
    /// A secret reference cannot be resolved. Never carries the value.
    #[error("{key}: cannot read the secret ({reference}): {message}")]
    Secret {
        /// The configuration key holding the reference, e.g. `inspector[0].api_key`.
        key: String,
        /// Where it pointed (`env VT_API_KEY`).
        reference: String,
        /// Why it cannot be read.
        message: String,
    },
    /// A value of a built-in's configuration is invalid.
    #[error("{key}: {message}")]
    Invalid {
        /// The configuration key, e.g. `inspector[1].url`.
        key: String,
        /// What is wrong.
        message: String,
    },
}
