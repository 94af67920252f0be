//! AlertResponder plugins: the inspectors, reviewers and emitters that the embedded
//! runtime (and the Lambda binaries) plug into the core pipeline's ports.
//!
//! Layout: [`CommandInspector`], [`CommandReviewer`] and [`CommandEmitter`] run an
//! external program (never through a shell) with JSON on stdin and a bounded answer on
//! stdout, through the private `command` module; `output` validates what a plugin
//! answers so that an error names the field. [`RegoReviewer`] evaluates a Rego policy
//! in-process, [`WebhookEmitter`] POSTs reports over HTTP, and [`JsonLinesEmitter`]
//! appends them to a file or stdout. Constructors check the configuration and return a
//! [`PluginConfigError`]; at run time every plugin fails with the core's `PluginError`.
//! Alert content is written by attackers: every output read from a plugin is bounded.

mod command;
mod command_emitter;
mod command_inspector;
mod command_reviewer;
pub mod config;
pub mod emit;
pub mod error;
pub mod inspect;
mod json_lines;
mod output;
mod rego;
pub mod secret;
#[cfg(feature = "aws")]
pub mod secrets_manager;
mod webhook;

#[cfg(test)]
mod test_support;

pub use command_emitter::{CommandEmitter, MAX_EMITTER_OUTPUT};
pub use command_inspector::{CommandInspector, MAX_INSPECTOR_OUTPUT};
pub use command_reviewer::{CommandReviewer, MAX_REVIEWER_OUTPUT};
pub use error::PluginConfigError;
pub use json_lines::{JsonLinesEmitter, JsonLinesTarget};
pub use output::{inspection_from_output, review_from_output};
pub use rego::{RegoReviewer, DEFAULT_REGO_TIMEOUT, RESULT_RULE};
pub use webhook::WebhookEmitter;
