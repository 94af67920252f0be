//! From checked configuration to running plugins, the same for both runtimes:
//! secrets resolved, files opened, clients built — so that every error shows at start-up
//! (`alertresponder check`, a function's cold start), naming the key. A Lambda inspector
//! or reviewer (`function`) is built by the AWS runtime, which has the Lambda client.

use std::path::Path;
use std::sync::Arc;

use alertresponder_core::ports::{
    AnswerCache, Clock, DeliveryLog, Emitter, Inspection, Inspector, RateLimiter, Reviewer,
};
use alertresponder_core::{Attribute, PluginError, Report, Task};
use async_trait::async_trait;

use super::{
    EmitterConfig, EmitterTarget, InspectorConfig, InspectorSource, ReviewerConfig, SeverityFilter,
};
use crate::emit::EmitContext;
use crate::error::PluginConfigError;
use crate::inspect::throttle::Throttled;
use crate::inspect::{self, BuildContext};
use crate::secret::{MaybeSecret, SecretResolver};
use crate::{
    CommandEmitter, CommandInspector, CommandReviewer, JsonLinesEmitter, JsonLinesTarget,
    RegoReviewer, WebhookEmitter,
};

/// What building plugins needs from the runtime.
pub struct BuildEnv<'a> {
    /// Resolves secret references.
    pub secrets: &'a dyn SecretResolver,
    /// The config file's directory (relative paths of built-ins).
    pub base_dir: &'a Path,
    /// Answers kept across reports (`None`: no cache whatever `cache_ttl` says).
    pub cache: Option<Arc<dyn AnswerCache>>,
    /// The shared rate limit (`None`: no limit whatever `rate_limit` says).
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// The pipeline's clock (answer expiry; virtual time in `alertresponder run`).
    pub clock: Arc<dyn Clock>,
    /// The wall clock a vendor's quota counts in.
    pub quota_clock: Arc<dyn Clock>,
    /// The store's delivery log, where an emitter remembers what it did for a report
    /// (the GitHub issue it opened). `None`: such emitters refuse to build.
    pub deliveries: Option<Arc<dyn DeliveryLog>>,
}

/// Builds the `index`th inspector (a built-in or a command), with its type filter, its
/// answer cache and its rate limit in front.
pub async fn inspector(
    config: &InspectorConfig,
    index: usize,
    env: &BuildEnv<'_>,
) -> Result<Arc<dyn Inspector>, PluginConfigError> {
    let key = format!("inspector[{index}]");
    let inner: Arc<dyn Inspector> = match &config.source {
        InspectorSource::Command(argv) => Arc::new(CommandInspector::new(
            config.name.clone(),
            argv.clone(),
            config.types.clone(),
            config.timeout,
        )?),
        InspectorSource::Builtin { kind, table } => {
            let ctx = BuildContext {
                name: &config.name,
                key: &key,
                timeout: config.timeout,
                secrets: env.secrets,
                base_dir: env.base_dir,
            };
            builtin(*kind, table, &ctx).await?
        }
        InspectorSource::Function(_) => {
            return Err(PluginConfigError::Invalid {
                key: format!("{key}.function"),
                message: "a Lambda inspector is built by the AWS runtime".into(),
            })
        }
    };
    Ok(wrap(config, inner, env))
}

/// Puts the table's type filter, cache and rate limit in front of `inner` (also the
/// AWS runtime's Lambda inspectors).
pub fn wrap(
    config: &InspectorConfig,
    inner: Arc<dyn Inspector>,
    env: &BuildEnv<'_>,
) -> Arc<dyn Inspector> {
    let mut inspector = inner;
    if !matches!(config.source, InspectorSource::Command(_)) {
        // A command inspector filters its own types.
        if let Some(types) = &config.types {
            inspector = Arc::new(OnlyTypes {
                inner: inspector,
                types: types.clone(),
            });
        }
    }
    let cache = env.cache.clone().zip(config.cache_ttl);
    let limit = env.limiter.clone().zip(config.rate_limit);
    if cache.is_some() || limit.is_some() {
        inspector = Arc::new(Throttled::new(
            inspector,
            cache,
            limit,
            env.clock.clone(),
            env.quota_clock.clone(),
        ));
    }
    inspector
}

async fn builtin(
    kind: super::BuiltinKind,
    table: &toml::Table,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Inspector>, PluginConfigError> {
    use super::BuiltinKind as K;
    fn config<T: serde::de::DeserializeOwned>(
        table: &toml::Table,
        ctx: &BuildContext<'_>,
    ) -> Result<T, PluginConfigError> {
        T::deserialize(table.clone()).map_err(|e| PluginConfigError::Invalid {
            key: ctx.key.to_string(),
            message: e.message().to_string(),
        })
    }
    Ok(match kind {
        K::VirusTotal => Arc::new(
            inspect::virustotal::VirusTotalInspector::build(ctx, config(table, ctx)?).await?,
        ),
        K::AbuseIpDb => {
            Arc::new(inspect::abuseipdb::AbuseIpDbInspector::build(ctx, config(table, ctx)?).await?)
        }
        K::Dns => Arc::new(inspect::dns::DnsInspector::build(ctx, config(table, ctx)?).await?),
        K::GeoIp => {
            Arc::new(inspect::geoip::GeoIpInspector::build(ctx, config(table, ctx)?).await?)
        }
        #[cfg(feature = "aws")]
        K::Aws => Arc::new(inspect::aws::AwsInspector::build(ctx, config(table, ctx)?).await?),
        #[cfg(not(feature = "aws"))]
        K::Aws => {
            return Err(PluginConfigError::Invalid {
                key: format!("{}.kind", ctx.key),
                message: "this build of alertresponder has no AWS support: build it with \
                          `--features aws`"
                    .into(),
            })
        }
    })
}

/// Only the attribute types the table's `types` lists.
struct OnlyTypes {
    inner: Arc<dyn Inspector>,
    types: Vec<String>,
}

#[async_trait]
impl Inspector for OnlyTypes {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn accepts(&self, attribute: &Attribute) -> bool {
        self.types.contains(&attribute.attr_type) && self.inner.accepts(attribute)
    }
    fn timeout(&self) -> std::time::Duration {
        self.inner.timeout()
    }
    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        self.inner.inspect(task).await
    }
}

/// Builds the policy and command reviewers (a `function` reviewer is the AWS runtime's).
pub fn reviewers(config: &ReviewerConfig) -> Result<Vec<Arc<dyn Reviewer>>, PluginConfigError> {
    let mut reviewers: Vec<Arc<dyn Reviewer>> = Vec::new();
    if let Some(policy) = &config.policy {
        reviewers.push(Arc::new(RegoReviewer::from_file("policy", policy)?));
    }
    if let Some(cmd) = &config.command {
        reviewers.push(Arc::new(CommandReviewer::new(
            "command",
            cmd.clone(),
            config.timeout,
        )?));
    }
    Ok(reviewers)
}

/// Builds the `index`th emitter, resolving a secret URL and secret headers, with its
/// severity filter in front. An error about a URL read from a secret never shows the URL.
pub async fn emitter(
    config: &EmitterConfig,
    index: usize,
    env: &BuildEnv<'_>,
) -> Result<Arc<dyn Emitter>, PluginConfigError> {
    let inner = unfiltered(config, index, env).await?;
    if config.filter.is_all() {
        return Ok(inner);
    }
    Ok(Arc::new(Filtered {
        inner,
        filter: config.filter.clone(),
    }))
}

/// Only the verdicts the table's filter passes (and the downgrade after one it passed).
struct Filtered {
    inner: Arc<dyn Emitter>,
    filter: SeverityFilter,
}

#[async_trait]
impl Emitter for Filtered {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn wants(&self, report: &Report) -> bool {
        self.filter.wants(report) && self.inner.wants(report)
    }
    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        self.inner.emit(report, attempt).await
    }
}

async fn unfiltered(
    config: &EmitterConfig,
    index: usize,
    env: &BuildEnv<'_>,
) -> Result<Arc<dyn Emitter>, PluginConfigError> {
    let key = format!("emitter[{index}]");
    Ok(match &config.target {
        EmitterTarget::Builtin { kind, table } => {
            let ctx = EmitContext {
                base: BuildContext {
                    name: &config.name,
                    key: &key,
                    timeout: config.timeout,
                    secrets: env.secrets,
                    base_dir: env.base_dir,
                },
                deliveries: env.deliveries.clone(),
                clock: env.clock.clone(),
                filter: config.filter.clone(),
            };
            crate::emit::build(*kind, table, &ctx).await?
        }
        EmitterTarget::Command(argv) => Arc::new(CommandEmitter::new(
            config.name.clone(),
            argv.clone(),
            config.timeout,
        )?),
        EmitterTarget::Url {
            url,
            headers,
            signing_secret,
        } => {
            let value = url.resolve(env.secrets, &format!("{key}.url")).await?;
            let mut resolved = Vec::with_capacity(headers.len());
            for (name, v) in headers {
                let h = v
                    .resolve(env.secrets, &format!("{key}.headers.{name}"))
                    .await?;
                resolved.push((name.clone(), h.expose().to_string()));
            }
            let signing_key = format!("{key}.signing_secret");
            let signing = match signing_secret {
                Some(r) => Some(env.secrets.resolve(r, &signing_key).await?),
                None => None,
            };
            let hook = WebhookEmitter::new(
                config.name.clone(),
                value.expose(),
                resolved,
                config.timeout,
            )
            .map_err(|e| match (url, e) {
                (MaybeSecret::Secret(r), PluginConfigError::InvalidUrl { .. }) => {
                    PluginConfigError::Invalid {
                        key: format!("{key}.url"),
                        message: format!("the URL read from {r} is not an http(s) URL"),
                    }
                }
                (_, e) => e,
            })?;
            match signing {
                Some(secret) => Arc::new(hook.with_signing_secret(secret, &signing_key)?),
                None => Arc::new(hook),
            }
        }
        EmitterTarget::File(path) if path.as_os_str() == "-" => Arc::new(JsonLinesEmitter::new(
            config.name.clone(),
            JsonLinesTarget::Stdout,
        )),
        EmitterTarget::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| PluginConfigError::Invalid {
                    key: format!("{key}.file"),
                    message: format!("cannot create {}: {e}", dir.display()),
                })?;
            }
            Arc::new(JsonLinesEmitter::new(
                config.name.clone(),
                JsonLinesTarget::File(path.clone()),
            ))
        }
    })
}
