//! The built-in emitters (`[[emitter]]` tables with a `kind`): each module holds its
//! `Config` (its own keys, checked against its kind), a `build` that checks them and
//! resolves its secrets, and the mapping of a report to the target's message, with
//! tests against a local server of the vendor's documented shapes.
//!
//! Shared: [`digest`] (what a person needs from a report, target-neutral, bounded —
//! each target escapes it for its own markup), [`http`] (one request sent, the
//! answer's status read as an outcome: 429 waits, 5xx retries, other 4xx is rejected).

use std::sync::Arc;
use std::time::Duration;

use alertresponder_core::ports::{Clock, DeliveryLog, Emitter};

use crate::config::{EmitterKind, SeverityFilter};
use crate::inspect::BuildContext;
use crate::secret::SecretResolver;
use crate::PluginConfigError;

pub mod digest;
pub mod github;
pub mod http;
pub mod pagerduty;
pub mod slack;

/// What a built-in emitter needs to build itself besides its own keys.
pub struct EmitContext<'a> {
    /// The emitter's name, its table's key (`emitter[2]`), its timeout, the secret
    /// resolver and the config file's directory: what the built-in inspectors get too,
    /// so that [`crate::inspect::http`]'s helpers serve both.
    pub base: BuildContext<'a>,
    /// The store's delivery log: what an emitter remembers about a report between
    /// versions (the GitHub issue it opened). `None` where the runtime keeps none.
    pub deliveries: Option<Arc<dyn DeliveryLog>>,
    /// The pipeline's clock.
    pub clock: Arc<dyn Clock>,
    /// The table's severity filter (`min_severity`, `severities`): the wrapper in
    /// `config::build` applies it; an emitter that acts on a downgrade (PagerDuty
    /// resolves) reads it to tell a version below it from one it passes.
    pub filter: SeverityFilter,
}

impl EmitContext<'_> {
    /// The emitter's name.
    pub fn name(&self) -> &str {
        self.base.name
    }

    /// The full key of one of this emitter's fields.
    pub fn field(&self, field: &str) -> String {
        self.base.field(field)
    }

    /// An invalid value of `field`.
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> PluginConfigError {
        self.base.invalid(field, message)
    }

    /// How long one delivery may take.
    pub fn timeout(&self) -> Duration {
        self.base.timeout
    }

    /// The secret resolver.
    pub fn secrets(&self) -> &dyn SecretResolver {
        self.base.secrets
    }
}

/// Builds the built-in emitter of `kind` from its own keys (`table`, without the
/// common ones), checked against the kind: an unknown key is an error naming it.
pub async fn build(
    kind: EmitterKind,
    table: &toml::Table,
    ctx: &EmitContext<'_>,
) -> Result<Arc<dyn Emitter>, PluginConfigError> {
    // Each built-in's arm: `Arc::new(<module>::<Type>::build(ctx, config(table, ctx)?).await?)`.
    match kind {
        EmitterKind::Slack => Ok(Arc::new(
            slack::SlackEmitter::build(ctx, config(table, ctx)?).await?,
        )),
        EmitterKind::PagerDuty => Ok(Arc::new(
            pagerduty::PagerDutyEmitter::build(ctx, config(table, ctx)?).await?,
        )),
        EmitterKind::GitHub => Ok(Arc::new(
            github::GitHubEmitter::build(ctx, config(table, ctx)?).await?,
        )),
    }
}

/// Reads a built-in's own keys into its `Config` (`deny_unknown_fields`): a typo is an
/// error naming the table.
fn config<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
    ctx: &EmitContext<'_>,
) -> Result<T, PluginConfigError> {
    T::deserialize(table.clone()).map_err(|e| PluginConfigError::Invalid {
        key: ctx.base.key.to_string(),
        message: e.message().to_string(),
    })
}
