//! `kind = "github"`: one GitHub (or GitHub Enterprise) issue per report, and each later
//! version a comment on it, as GheReporter did.
//!
//! ```toml
//! [[emitter]]
//! name = "security-issues"
//! kind = "github"
//! repository = "acme/security-alerts"
//! token = { env = "GITHUB_TOKEN" }                 # or { secret = "alertresponder/github" }
//! # url = "https://github.example.com/api/v3"     # GitHub Enterprise Server
//! # labels = ["alertresponder"]                    # on every issue (the default)
//! # severity_labels = { urgent = "severity:urgent", unclassified = "severity:unclassified", safe = "severity:safe" }
//! # assignees = ["oncall-login"]
//! # report_url = "https://alertresponder.example/reports/{id}"
//! ```
//!
//! # One issue per report
//!
//! The issue's number is remembered in the store's delivery log (a memo per report and
//! emitter: repository, number, the version that opened it, the severity its labels show).
//! A version of a report with no memo first **looks for the issue** before opening one,
//! so that a crash between GitHub's answer and the memo (or a memo lost with the store)
//! never opens a second issue: every issue body starts with the line
//! `<!-- alertresponder:report=<id> -->`, and the lookup lists the repository's issues
//! with the first base label, most recently created first
//! (`GET /repos/{o}/{r}/issues?labels=alertresponder&state=all&sort=created&direction=desc`,
//! [`api::LOOKUP_PAGES`] pages of [`api::LOOKUP_PER_PAGE`]), and matches that first line.
//! The listing is chosen over the search API (`/search/issues?q=… in:body`) because
//! search is eventually consistent — an issue opened seconds before the crash, the very
//! case the lookup is for, may not be indexed yet — and has its own, much lower rate
//! limit (30 requests a minute). The price: an issue is found only while it is among the
//! 100 most recently created with the label (a crash is retried within minutes), and
//! only if GitHub kept the label (labels on a new issue need push access; without it
//! GitHub drops them silently and the lookup scans unlabelled issues only if `labels` is
//! empty). Two versions of one report delivered at the same instant, both without a memo,
//! can still both open an issue: the log has no compare-and-set.
//!
//! # Every later version a comment
//!
//! A version other than the one that opened the issue is a comment starting with
//! `<!-- alertresponder:report=<id> version=<n> -->`. A retry (`attempt > 0`, also every
//! replay) first reads the issue's last comments (the last page of 100, and the one
//! before when the last is not full) and does not comment again when that version's
//! comment is there: a version is commented once as long as its comment is among the
//! issue's last 100, and never twice after a crash between GitHub's answer and the
//! runtime's delivery record. A first attempt never reads them (nothing can be there).
//!
//! # Labels
//!
//! The issue gets the base `labels` and the label of its severity. A later version with
//! another severity adds the new severity label and removes the other severity labels
//! (never the labels people added), so that a filter on `severity:urgent` shows what is
//! urgent now — but only a version newer than the one the labels show (versions may be
//! delivered out of order). A label change GitHub refuses (the token may comment but not
//! label) is logged and does not fail the delivery, which the comment made; a label
//! change that may succeed later (5xx, rate limit) fails it, and the retry comments no
//! second time. A safe verdict does not close the issue: a person does.
//!
//! What the team sees: `docs/emitters/github.md`. Markdown and its escaping: [`markdown`];
//! the REST calls and how answers become outcomes: [`api`].

use std::sync::Arc;

use alertresponder_core::model::Severity;
use alertresponder_core::ports::{DeliveryLog, Emitter};
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use super::digest::{self, Digest};
use super::EmitContext;
use crate::error::PluginConfigError;
use crate::inspect::http as inspect_http;
use crate::secret::SecretRef;

pub mod api;
pub mod markdown;
#[cfg(test)]
mod tests;

use api::{Api, Issue};

/// The REST API when `url` is not set (GitHub Enterprise Server: `https://HOST/api/v3`).
pub const DEFAULT_URL: &str = "https://api.github.com";
/// The base labels when `labels` is not set.
pub const DEFAULT_LABEL: &str = "alertresponder";
/// GitHub's longest label name, in characters.
pub const MAX_LABEL_CHARS: usize = 50;
/// GitHub's most assignees of one issue.
pub const MAX_ASSIGNEES: usize = 10;

/// The keys of a `github` emitter besides the common ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `owner/name` of the repository the issues are opened in.
    pub repository: String,
    /// A token that may read and write the repository's issues: a secret reference only.
    pub token: SecretRef,
    /// The REST API base (default [`DEFAULT_URL`]).
    pub url: Option<String>,
    /// The labels of every issue (default `["alertresponder"]`); the first is also how
    /// the emitter finds its issues again.
    pub labels: Option<Vec<String>>,
    /// The label of each severity (default `severity:<severity>`).
    #[serde(default)]
    pub severity_labels: SeverityLabels,
    /// Logins the new issues are assigned to.
    #[serde(default)]
    pub assignees: Vec<String>,
    /// A link to the report (`https://…/reports/{id}`), shown in each version's text.
    pub report_url: Option<String>,
}

/// `severity_labels`: the label of each severity; one not set is `severity:<severity>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityLabels {
    /// The label of an urgent report.
    pub urgent: Option<String>,
    /// The label of an unclassified report.
    pub unclassified: Option<String>,
    /// The label of a safe report.
    pub safe: Option<String>,
}

/// What the emitter remembers about a report in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Memo {
    /// `owner/name`: a memo of another repository (the table changed) is not this one's.
    repository: String,
    /// The issue's number.
    issue: u64,
    /// Its page, for people reading the log.
    #[serde(default)]
    url: String,
    /// The version whose text is the issue's body (0: unknown).
    #[serde(default)]
    opened_by: u32,
    /// The severity the issue's labels show, and the version that set it.
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    severity_version: u32,
}

/// Opens an issue per report and comments each later version; see the module doc.
pub struct GitHubEmitter {
    name: String,
    api: Api,
    deliveries: Arc<dyn DeliveryLog>,
    labels: Vec<String>,
    /// Indexed by [`severity_index`].
    severity_labels: [String; 3],
    assignees: Vec<String>,
    report_url: Option<String>,
}

impl std::fmt::Debug for GitHubEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubEmitter")
            .field("name", &self.name)
            .field("api", &self.api)
            .field("labels", &self.labels)
            .field("severity_labels", &self.severity_labels)
            .finish_non_exhaustive()
    }
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Safe => 0,
        Severity::Unclassified => 1,
        Severity::Urgent => 2,
    }
}

const SEVERITIES: [Severity; 3] = [Severity::Safe, Severity::Unclassified, Severity::Urgent];

impl GitHubEmitter {
    /// Checks `config`, resolves the token and builds the client; errors name
    /// `ctx.field(..)`, never the token.
    pub async fn build(ctx: &EmitContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let deliveries = ctx
            .deliveries
            .clone()
            .ok_or_else(|| PluginConfigError::Invalid {
                key: ctx.base.key.to_string(),
                message: "the github emitter remembers each report's issue in the store's \
                      delivery log, which this runtime does not keep"
                    .into(),
            })?;
        let (owner, repo) = repository(ctx, &config.repository)?;
        let base = inspect_http::api_base(&ctx.base, config.url.as_deref(), DEFAULT_URL)?;
        let labels = config
            .labels
            .unwrap_or_else(|| vec![DEFAULT_LABEL.to_string()]);
        let mut base_labels: Vec<String> = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            check_label(ctx, &format!("labels[{i}]"), label)?;
            if !base_labels.contains(label) {
                base_labels.push(label.clone());
            }
        }
        let given = &config.severity_labels;
        let mut severity_labels: [String; 3] = Default::default();
        for (severity, value) in [
            (Severity::Safe, &given.safe),
            (Severity::Unclassified, &given.unclassified),
            (Severity::Urgent, &given.urgent),
        ] {
            let label = value
                .clone()
                .unwrap_or_else(|| format!("severity:{}", severity.as_str()));
            check_label(
                ctx,
                &format!("severity_labels.{}", severity.as_str()),
                &label,
            )?;
            severity_labels[severity_index(severity)] = label;
        }
        if config.assignees.len() > MAX_ASSIGNEES {
            return Err(ctx.invalid(
                "assignees",
                format!("GitHub assigns at most {MAX_ASSIGNEES} people to an issue"),
            ));
        }
        for (i, login) in config.assignees.iter().enumerate() {
            if !is_login(login) {
                return Err(ctx.invalid(
                    &format!("assignees[{i}]"),
                    "expected a GitHub login (letters, digits and -, at most 39)",
                ));
            }
        }
        if let Some(template) = &config.report_url {
            digest::check_report_url(template).map_err(|m| ctx.invalid("report_url", m))?;
        }
        let token = ctx
            .secrets()
            .resolve(&config.token, &ctx.field("token"))
            .await?;
        let authorization =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                ctx.invalid("token", "the token holds characters a header cannot carry")
            })?;
        let client = inspect_http::client(&ctx.base)?;
        Ok(Self {
            name: ctx.name().to_string(),
            api: Api::new(client, base, owner, repo, authorization, ctx.timeout()),
            deliveries,
            labels: base_labels,
            severity_labels,
            assignees: config.assignees,
            report_url: config.report_url,
        })
    }

    fn severity_label(&self, s: Severity) -> &str {
        &self.severity_labels[severity_index(s)]
    }

    /// The memo of `report_id`, if it is about this repository and readable.
    async fn recall(&self, report_id: &str) -> Result<Option<Memo>, PluginError> {
        let value = self
            .deliveries
            .recall(report_id, &self.name)
            .await
            .map_err(|e| PluginError::Failed(format!("reading the delivery log: {e}")))?;
        let Some(value) = value else { return Ok(None) };
        match serde_json::from_value::<Memo>(value) {
            Ok(m) if m.repository == self.api.repository() => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) => {
                warn!(emitter = %self.name, report_id, error = %e, "unreadable memo: looking the issue up");
                Ok(None)
            }
        }
    }

    async fn remember(&self, report_id: &str, memo: &Memo) -> Result<(), PluginError> {
        let value = serde_json::to_value(memo).unwrap_or(Value::Null);
        self.deliveries
            .remember(report_id, &self.name, &value)
            .await
            .map_err(|e| PluginError::Failed(format!("writing the delivery log: {e}")))
    }

    /// The memo of an issue found by its marker: its severity is the one label of a
    /// severity it has, if exactly one.
    fn memo_of_found(&self, issue: &Issue, report_id: &str) -> Memo {
        let shown: Vec<Severity> = SEVERITIES
            .into_iter()
            .filter(|s| issue.labels.iter().any(|l| l == self.severity_label(*s)))
            .collect();
        Memo {
            repository: self.api.repository(),
            issue: issue.number,
            url: issue.html_url.clone(),
            opened_by: markdown::opened_by(&issue.body, report_id).unwrap_or(0),
            severity: (shown.len() == 1).then(|| shown[0]),
            severity_version: 0,
        }
    }

    /// Opens the issue of `report` with this version's text and remembers it.
    async fn open(&self, report: &Report, digest: &Digest) -> Result<(), PluginError> {
        let link = self.link(report);
        let mut labels = self.labels.clone();
        let severity = self.severity_label(report.result.severity).to_string();
        if !labels.contains(&severity) {
            labels.push(severity);
        }
        let issue = self
            .api
            .create_issue(
                &markdown::issue_title(digest),
                &markdown::issue_body(digest, &report.id, link.as_deref()),
                &labels,
                &self.assignees,
            )
            .await?;
        if let Some(first) = self.labels.first() {
            if !issue.labels.contains(first) {
                warn!(emitter = %self.name, issue = issue.number,
                      "GitHub dropped the labels of the new issue (the token has no push access): \
                       after a crash it could not be found again by its label");
            }
        }
        let memo = Memo {
            repository: self.api.repository(),
            issue: issue.number,
            url: issue.html_url,
            opened_by: report.version,
            severity: Some(report.result.severity),
            severity_version: report.version,
        };
        self.remember(&report.id, &memo).await
    }

    /// Brings the severity label of the issue to this version's, when it is newer than
    /// the one the labels show; `true` when the memo changed.
    async fn relabel(&self, report: &Report, memo: &mut Memo) -> Result<bool, PluginError> {
        let severity = report.result.severity;
        if report.version <= memo.severity_version || memo.severity == Some(severity) {
            return Ok(false);
        }
        let new = self.severity_label(severity);
        let change = async {
            self.api.add_labels(memo.issue, &[new]).await?;
            for old in SEVERITIES.into_iter().filter(|s| *s != severity) {
                let old = self.severity_label(old);
                if old != new {
                    self.api.remove_label(memo.issue, old).await?;
                }
            }
            Ok::<(), PluginError>(())
        };
        match change.await {
            Ok(()) => {
                memo.severity = Some(severity);
                memo.severity_version = report.version;
                Ok(true)
            }
            Err(PluginError::Rejected(why)) => {
                warn!(emitter = %self.name, issue = memo.issue, %why, "the severity label was not changed");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn link(&self, report: &Report) -> Option<String> {
        self.report_url
            .as_deref()
            .map(|t| digest::report_link(t, &report.id, report.version))
    }
}

#[async_trait]
impl Emitter for GitHubEmitter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        let digest = Digest::of(report);
        let mut memo = match self.recall(&report.id).await? {
            Some(memo) => memo,
            None => {
                let found = self
                    .api
                    .find_issue(self.labels.first().map(String::as_str), |body| {
                        markdown::is_issue_of(body, &report.id)
                    })
                    .await?;
                let Some(issue) = found else {
                    return self.open(report, &digest).await;
                };
                let memo = self.memo_of_found(&issue, &report.id);
                self.remember(&report.id, &memo).await?;
                memo
            }
        };
        if memo.opened_by != report.version {
            let posted = attempt > 0
                && self
                    .api
                    .has_comment(memo.issue, |body| {
                        markdown::is_version_of(body, &report.id, report.version)
                    })
                    .await?;
            if !posted {
                let text =
                    markdown::version_text(&digest, &report.id, self.link(report).as_deref());
                self.api.comment(memo.issue, &text).await?;
            }
        }
        if self.relabel(report, &mut memo).await? {
            self.remember(&report.id, &memo).await?;
        }
        Ok(())
    }
}

/// `owner/name`, checked: GitHub's characters, one `/`.
fn repository<'a>(
    ctx: &EmitContext<'_>,
    value: &'a str,
) -> Result<(&'a str, &'a str), PluginConfigError> {
    let invalid = || {
        ctx.invalid(
            "repository",
            "expected owner/name (letters, digits, -, and also _ and . in the name)",
        )
    };
    let (owner, repo) = value.split_once('/').ok_or_else(invalid)?;
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let repo_ok = !repo.is_empty()
        && repo.len() <= 100
        && !matches!(repo, "." | "..")
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if owner_ok && repo_ok {
        Ok((owner, repo))
    } else {
        Err(invalid())
    }
}

/// A label GitHub takes and the lookup can filter on: 1 to 50 characters, no comma (the
/// filter's separator), no control character.
fn check_label(ctx: &EmitContext<'_>, field: &str, label: &str) -> Result<(), PluginConfigError> {
    if label.trim().is_empty() {
        return Err(ctx.invalid(field, "a label cannot be empty"));
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(ctx.invalid(
            field,
            format!("GitHub labels have at most {MAX_LABEL_CHARS} characters"),
        ));
    }
    if label.contains(',') || label.chars().any(char::is_control) {
        return Err(ctx.invalid(field, "a label cannot hold a comma or a control character"));
    }
    Ok(())
}

/// A GitHub login: letters, digits and `-` (`_` on some Enterprise servers), at most 39.
fn is_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
