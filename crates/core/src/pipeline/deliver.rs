//! Delivery: hand one published version to one emitter (a job of its own per
//! emitter, so that one failing target never blocks or repeats the others).
//!
//! Each (report, version, emitter) is its own unit, recorded in the [`DeliveryLog`]
//! once the emitter took it. A runtime that runs the same delivery again (a job
//! retried after a crash between the send and its completion, the AWS fan-out
//! re-invoked because another target failed) asks to skip what is recorded
//! ([`DeliveryOrder::skip_delivered`]), so a target is not sent a version twice
//! because another failed; a replay asks to send again. Between the send and its
//! record a crash can still repeat a send: emitters make that an update on the target
//! where it allows (the webhook's `Idempotency-Key` `<id>:<version>`, PagerDuty's
//! dedup key, the GitHub issue remembered in the log).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};

use crate::error::CoreError;
use crate::ports::{Clock, DeliveryLog, Emitter, ReadStore};

/// Which delivery to make, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOrder<'a> {
    /// The report.
    pub report_id: &'a str,
    /// The published version.
    pub version: u32,
    /// The emitter's name.
    pub emitter: &'a str,
    /// Tries before this one (0 the first time): an emitter that may have sent before
    /// looks before it creates (the GitHub issue).
    pub attempt: u32,
    /// Skip a version recorded as delivered to this emitter (a retry); `false` sends
    /// it again whatever the log says (a replay).
    pub skip_delivered: bool,
}

impl<'a> DeliveryOrder<'a> {
    /// The delivery a deliver job (or the AWS fan-out) makes: skipped when recorded.
    pub fn job(report_id: &'a str, version: u32, emitter: &'a str, attempt: u32) -> Self {
        Self {
            report_id,
            version,
            emitter,
            attempt,
            skip_delivered: true,
        }
    }

    /// A replay asked for by a person: sent again even when recorded. Its attempt is 1,
    /// never 0: the version may have reached the target before (or partly, before a
    /// failure), so an emitter must look before it creates.
    pub fn replay(report_id: &'a str, version: u32, emitter: &'a str) -> Self {
        Self {
            report_id,
            version,
            emitter,
            attempt: 1,
            skip_delivered: false,
        }
    }
}

/// What [`deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The emitter took the version; the delivery is recorded.
    Sent,
    /// The emitter does not want this version (its severity filter): neither sent
    /// nor recorded.
    NotWanted,
    /// The version was recorded as delivered to this emitter before (and the order
    /// asked to skip such): not sent again.
    AlreadyDelivered,
}

impl std::fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::NotWanted => "not wanted",
            DeliveryOutcome::AlreadyDelivered => "already delivered",
        })
    }
}

/// Hands a published version to one emitter, unless the emitter does not want it (or
/// it is recorded as delivered and `order` asks to skip such), and records the
/// delivery once the emitter took it.
///
/// An unknown emitter and a version never published are not worth a retry; an
/// emitter's failure is [`CoreError::Emitter`] (retryable unless the target rejected
/// it, with the target's `Retry-After` when it gave one). A failure to record after a
/// successful send is a store error: the retry sends again, which the target's
/// idempotency turns into an update.
#[instrument(skip_all, fields(report_id = %order.report_id, version = order.version, emitter = %order.emitter), err(level = "debug"))]
pub async fn deliver(
    store: &dyn ReadStore,
    log: &dyn DeliveryLog,
    emitters: &[Arc<dyn Emitter>],
    clock: &dyn Clock,
    order: &DeliveryOrder<'_>,
) -> Result<DeliveryOutcome, CoreError> {
    let DeliveryOrder {
        report_id,
        version,
        emitter,
        attempt,
        skip_delivered,
    } = *order;
    let target = emitters
        .iter()
        .find(|e| e.name() == emitter)
        .ok_or_else(|| CoreError::Port {
            stage: format!("emitter {emitter}"),
            message: "no emitter of that name is configured".into(),
            retryable: false,
        })?;
    if skip_delivered && log.delivered(report_id, version, emitter).await? {
        debug!("recorded as delivered before: not sent again");
        return Ok(DeliveryOutcome::AlreadyDelivered);
    }
    let (report, _) = store
        .published_report(report_id, version)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: "published report",
            id: format!("{report_id} v{version}"),
        })?;
    if !target.wants(&report) {
        debug!(severity = %report.result.severity, "not wanted by the emitter's filter");
        return Ok(DeliveryOutcome::NotWanted);
    }
    target
        .emit(&report, attempt)
        .await
        .map_err(|error| CoreError::Emitter {
            name: emitter.to_string(),
            error,
        })?;
    log.record_delivery(report_id, version, emitter, clock.now())
        .await?;
    Ok(DeliveryOutcome::Sent)
}
