//! Builds the embedded pipeline from a [`Config`]: store, queue, plugins, runtime.

use std::path::Path;
use std::sync::Arc;

use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::{
    AnswerCache, Clock, DeliveryLog, Emitter, Inspector, RateLimiter, Reviewer, SystemClock,
};
use alertresponder_embedded::store::Durability;
use alertresponder_embedded::{JobQueue, Runtime, SqliteStore};
use alertresponder_plugins::config::build::{self, BuildEnv};
use alertresponder_plugins::secret::Secrets;
use anyhow::Context;

use crate::config::Config;

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

/// Builds the plugins of `config`: secrets resolved, files opened, clients built, so
/// that a missing secret or a bad value fails here, naming its key. With a `store`, the
/// built-ins keep their answers and share their rate limit in it (across reports, and
/// across `serve` restarts); answers expire in `clock`'s time, quotas count in the wall
/// clock.
pub async fn plugins(
    config: &Config,
    store: Option<&SqliteStore>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Plugins> {
    let base_dir = config
        .source
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let secrets = secrets(&base_dir).await;
    let env = BuildEnv {
        secrets: &secrets,
        base_dir: &base_dir,
        cache: store.map(|s| Arc::new(s.clone()) as Arc<dyn AnswerCache>),
        limiter: store.map(|s| Arc::new(s.clone()) as Arc<dyn RateLimiter>),
        clock,
        quota_clock: Arc::new(SystemClock),
        // The same file keeps what an emitter remembers (the GitHub issue number).
        deliveries: store.map(|s| Arc::new(s.clone()) as Arc<dyn DeliveryLog>),
    };
    let mut inspectors: Vec<Arc<dyn Inspector>> = Vec::new();
    for (i, spec) in config.inspectors.iter().enumerate() {
        inspectors.push(build::inspector(spec, i, &env).await?);
    }
    let reviewers = build::reviewers(&config.reviewer)?;
    let mut emitters: Vec<Arc<dyn Emitter>> = Vec::new();
    for (i, spec) in config.emitters.iter().enumerate() {
        emitters.push(build::emitter(spec, i, &env).await?);
    }
    Ok(Plugins {
        inspectors,
        reviewers,
        emitters,
    })
}

/// The secret resolver of the embedded runtime: the environment and files beside the
/// config, and AWS Secrets Manager when built with the `aws` feature (credentials and
/// region from the usual AWS sources).
async fn secrets(base_dir: &Path) -> Secrets {
    let secrets = Secrets::local(base_dir);
    #[cfg(feature = "aws")]
    let secrets = {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        secrets.with_secrets_manager(Box::new(
            alertresponder_plugins::secrets_manager::AwsSecretsManager::new(&sdk),
        ))
    };
    secrets
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
