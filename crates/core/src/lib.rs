//! AlertResponder core: the domain model (wire-compatible with DeepAlert v1 JSON),
//! alert IDs and attribute hashes, validation of untrusted alerts, the ports
//! (one small trait per capability) and the pipeline handlers written against them.
//!
//! Layout: [`model`] holds the data types, [`id`] the identifiers, [`validate`]
//! turns raw bytes into an [`model::Alert`] or a field-naming error, [`ports`]
//! declares what a runtime must provide (store, scheduler, buses, clock, plugins),
//! and [`pipeline`] holds the handlers: receive, dispatch, inspect, review
//! (compile + review + publish) and deliver. Nothing here knows AWS, SQLite or HTTP:
//! the embedded runtime and the Lambda binaries only plug in adapters.
//!
//! With the feature `fixtures` (and in this crate's tests): `memory`, the in-memory
//! adapters of every port, and `fixtures`, shared test records and the store
//! contract every store adapter runs (`contract_tests!`).

pub mod error;
pub mod fit;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod id;
#[cfg(any(test, feature = "fixtures"))]
pub mod memory;
pub mod model;
pub mod pipeline;
pub mod ports;
pub mod render;
pub mod settings;
pub mod sources;
pub mod validate;

pub use error::{CoreError, PluginError, StoreError, ValidationError};
pub use model::*;
pub use settings::{Settings, SettingsError};
