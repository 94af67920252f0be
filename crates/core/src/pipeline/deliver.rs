//! Delivery: hand one published version to one emitter (a job of its own per
//! emitter, so that one failing target never blocks or repeats the others).

use std::sync::Arc;

use tracing::instrument;

use crate::error::CoreError;
use crate::ports::{Emitter, ReadStore};

/// Hands a published version to one emitter.
#[instrument(skip_all, fields(report_id = %report_id, version, emitter = %emitter), err(level = "debug"))]
pub async fn deliver(
    store: &dyn ReadStore,
    emitters: &[Arc<dyn Emitter>],
    report_id: &str,
    version: u32,
    emitter: &str,
    attempt: u32,
) -> Result<(), CoreError> {
    let (report, _) = store
        .published_report(report_id, version)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: "published report",
            id: format!("{report_id} v{version}"),
        })?;
    let target = emitters
        .iter()
        .find(|e| e.name() == emitter)
        .ok_or_else(|| CoreError::Port {
            stage: format!("emitter {emitter}"),
            message: "no emitter of that name is configured".into(),
            retryable: false,
        })?;
    target
        .emit(&report, attempt)
        .await
        .map_err(|error| CoreError::Emitter {
            name: emitter.to_string(),
            error,
        })
}
