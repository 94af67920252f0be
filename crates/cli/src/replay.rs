//! `alertresponder replay REPORT_ID [--version N] --emitter NAME`: re-sends a stored
//! version to one configured emitter, now, in this process.
//!
//! The version is the stored one, byte for byte (default: the last published); it goes
//! through the core's deliver step as a replay: sent even when recorded as delivered,
//! with attempt 1 (an emitter looks before it creates) and the same idempotency key as
//! its first delivery (`<id>:<version>` for the webhook), so a target that dedups
//! updates rather than duplicates. The emitter's filter still applies: a version it
//! does not want is not sent. One try: a failure is printed with its cause, and the
//! command can be run again.

use std::sync::Arc;

use alertresponder_core::pipeline::{deliver, DeliveryOrder, DeliveryOutcome};
use alertresponder_core::ports::{Clock, ReadStore, SystemClock};
use alertresponder_core::render::sanitize;
use alertresponder_embedded::SqliteStore;
use anyhow::Context;

use crate::app;
use crate::config::Config;

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The report.
    pub report_id: String,
    /// The version (default: the last published).
    pub version: Option<u32>,
    /// The configured emitter to send it to.
    pub emitter: String,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The report.
    pub report_id: String,
    /// The version handed to the emitter.
    pub version: u32,
    /// The emitter.
    pub emitter: String,
    /// Sent, or not wanted by the emitter's filter.
    pub outcome: DeliveryOutcome,
}

impl Replayed {
    /// One line saying what happened, for a person.
    pub fn describe(&self) -> String {
        let (id, emitter) = (sanitize(&self.report_id, 80), sanitize(&self.emitter, 80));
        match self.outcome {
            DeliveryOutcome::Sent => format!(
                "sent version {} of report {id} to emitter {emitter}",
                self.version
            ),
            DeliveryOutcome::NotWanted => format!(
                "not sent: emitter {emitter} does not take version {} of report {id} (its severity filter)",
                self.version
            ),
            DeliveryOutcome::AlreadyDelivered => format!(
                "not sent: version {} of report {id} was delivered to emitter {emitter} before",
                self.version
            ),
        }
    }
}

/// Replays `opts` from `store` through the emitter `config` names. An unknown
/// emitter, report or version is an error naming it.
pub async fn replay(
    config: &Config,
    store: &SqliteStore,
    opts: &ReplayOptions,
) -> anyhow::Result<Replayed> {
    let ReplayOptions {
        report_id,
        version,
        emitter,
    } = opts;
    let shown_id = sanitize(report_id, 80);
    let shown_emitter = sanitize(emitter, 80);
    // Checked before any plugin is built: a typo costs no secret lookup.
    if !config.emitters.iter().any(|e| &e.name == emitter) {
        let names: Vec<&str> = config.emitters.iter().map(|e| e.name.as_str()).collect();
        anyhow::bail!(
            "--emitter: no emitter {shown_emitter} in {} (configured: {})",
            config.source.as_deref().map_or_else(
                || "the built-in defaults".to_string(),
                |p| p.display().to_string()
            ),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let meta = store
        .report_meta(report_id)
        .await
        .context("cannot read the report")?
        .ok_or_else(|| anyhow::anyhow!("REPORT_ID: no report {shown_id} in the database"))?;
    let latest = meta.published_version;
    let version = match *version {
        _ if latest == 0 => {
            anyhow::bail!("REPORT_ID: report {shown_id} has no published version yet")
        }
        None => latest,
        Some(v) if v == 0 || v > latest => anyhow::bail!(
            "--version: report {shown_id} has no published version {v} (versions 1 to {latest})"
        ),
        Some(v) => v,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plugins = app::plugins(config, Some(store), clock.clone()).await?;
    let outcome = deliver(
        store,
        store,
        &plugins.emitters,
        &*clock,
        &DeliveryOrder::replay(report_id, version, emitter),
    )
    .await
    .with_context(|| {
        format!("replay of version {version} of report {shown_id} to emitter {shown_emitter}")
    })?;
    Ok(Replayed {
        report_id: report_id.clone(),
        version,
        emitter: emitter.clone(),
        outcome,
    })
}
