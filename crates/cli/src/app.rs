//! Builds the embedded pipeline from a [`Config`]: store, queue, plugins, runtime.

use std::path::Path;
use std::sync::Arc;

use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::{Clock, Emitter, Inspector, Reviewer};
use alertresponder_embedded::store::Durability;
use alertresponder_embedded::{JobQueue, Runtime, SqliteStore};
use alertresponder_plugins::{
    CommandEmitter, CommandInspector, CommandReviewer, JsonLinesEmitter, JsonLinesTarget,
    RegoReviewer, WebhookEmitter,
};
use anyhow::Context;

use crate::config::{Config, EmitterTarget};

/// Opens (creating on first use) the SQLite database at `path`.
pub fn open_store(path: &Path, config: &Config) -> anyhow::Result<SqliteStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let durability = if config.durable_full {
        Durability::Full
    } else {
        Durability::Normal
    };
    SqliteStore::open(path, durability)
        .with_context(|| format!("cannot open database {}", path.display()))
}

/// The plugins a config names, built (policies parsed) so that errors show at start-up.
pub struct Plugins {
    /// Inspectors.
    pub inspectors: Vec<Arc<dyn Inspector>>,
    /// Reviewers.
    pub reviewers: Vec<Arc<dyn Reviewer>>,
    /// Emitters.
    pub emitters: Vec<Arc<dyn Emitter>>,
}

/// Builds the plugins of `config`.
pub fn plugins(config: &Config) -> anyhow::Result<Plugins> {
    let mut inspectors: Vec<Arc<dyn Inspector>> = Vec::new();
    for i in &config.inspectors {
        let ins = CommandInspector::new(
            i.name.clone(),
            i.command.clone(),
            i.types.clone(),
            i.timeout,
        )
        .with_context(|| format!("inspector {}", i.name))?;
        inspectors.push(Arc::new(ins));
    }
    let mut reviewers: Vec<Arc<dyn Reviewer>> = Vec::new();
    if let Some(policy) = &config.reviewer.policy {
        reviewers.push(Arc::new(
            RegoReviewer::from_file("policy", policy).context("reviewer.policy")?,
        ));
    }
    if let Some(cmd) = &config.reviewer.command {
        reviewers.push(Arc::new(
            CommandReviewer::new("command", cmd.clone(), config.reviewer.timeout)
                .context("reviewer.command")?,
        ));
    }
    let mut emitters: Vec<Arc<dyn Emitter>> = Vec::new();
    for e in &config.emitters {
        let em: Arc<dyn Emitter> = match &e.target {
            EmitterTarget::Command(argv) => Arc::new(CommandEmitter::new(
                e.name.clone(),
                argv.clone(),
                e.timeout,
            )?),
            EmitterTarget::Url { url, headers } => Arc::new(WebhookEmitter::new(
                e.name.clone(),
                url,
                headers.clone(),
                e.timeout,
            )?),
            EmitterTarget::File(path) if path.as_os_str() == "-" => Arc::new(
                JsonLinesEmitter::new(e.name.clone(), JsonLinesTarget::Stdout),
            ),
            EmitterTarget::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("emitter {}: cannot create {}", e.name, dir.display())
                    })?;
                }
                Arc::new(JsonLinesEmitter::new(
                    e.name.clone(),
                    JsonLinesTarget::File(path.clone()),
                ))
            }
        };
        emitters.push(em);
    }
    Ok(Plugins {
        inspectors,
        reviewers,
        emitters,
    })
}

/// Wires store, queue, plugins and clock into a runtime.
pub fn runtime(
    config: &Config,
    store: SqliteStore,
    plugins: Plugins,
    clock: Arc<dyn Clock>,
) -> Runtime {
    let names = plugins
        .emitters
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    let queue = JobQueue::new(store.clone(), clock.clone(), names);
    let store = Arc::new(store);
    let pipeline = Pipeline {
        // The database keeps rejected inputs and failed jobs too (`GET /v1/errors`).
        errors: store.clone(),
        store,
        scheduler: Arc::new(queue.clone()),
        tasks: Arc::new(queue.clone()),
        reports: Arc::new(queue.clone()),
        inspectors: plugins.inspectors,
        reviewers: plugins.reviewers,
        emitters: plugins.emitters,
        clock,
        settings: config.settings.clone(),
    };
    Runtime::new(pipeline, queue, config.concurrency).with_retention(config.retention)
}
