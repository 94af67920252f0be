//! `kind = "slack"`: each published version as a Block Kit message to a Slack
//! [incoming webhook](https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks).
//!
//! ```toml
//! [[emitter]]
//! name = "soc-channel"
//! kind = "slack"
//! webhook_url = { env = "SLACK_WEBHOOK_URL" }   # AWS: { secret = "alertresponder/slack" }
//! report_url = "https://alertresponder.example/reports/{id}"   # optional
//! ```
//!
//! `webhook_url` is a secret reference, never a value in the file: the URL is its own
//! credential (whoever has it posts to the channel). Read at start-up, it must be
//! `https://` (or `http://` to a loopback host, for tests); no error, log line or
//! `Debug` output shows it.
//!
//! # The message
//! A header (severity and title), the verdict (and the one before on a re-review, the
//! version, the number of alerts, the link to the report), the rule, detector and alert
//! key, the reviewer's reason, the alert's description, the key attributes, the
//! inspectors' findings and the inspections that gave no answer; see
//! `docs/emitters/slack.json`. The top-level `text` is the notification's fallback.
//!
//! # Attacker-written text
//! Every value that comes from an alert, an inspector or a reviewer is a `plain_text`
//! object (`emoji: false`): Slack parses nothing in plain text — no mrkdwn, no
//! `<!channel>`, `<!here>`, `<@U…>` or `<url|label>` — so a hostile value can neither
//! ping nor disguise a link, and it is shown exactly as written (an IOC stays copyable,
//! no look-alike characters substituted). `mrkdwn` objects (`verbatim: true`) carry
//! only our own labels, counts and the report link. The one place where a value meets
//! mrkdwn is the fallback `text`, which Slack always parses: it goes through
//! [`escape_mrkdwn`], the module's one escaping function. Values were already sanitized
//! by [`Digest`] (control and bidi characters shown as `\u{…}`, cut).
//!
//! # Slack's limits
//! At most [`MAX_BLOCKS`] blocks, a header of [`MAX_HEADER`] characters, a section text
//! of [`MAX_SECTION_TEXT`], [`MAX_FIELDS`] fields of [`MAX_FIELD_TEXT`] each, counted
//! as Slack counts (UTF-16 units); and the whole message's text within
//! [`MESSAGE_BUDGET`], since Slack refuses a message whose blocks are long together
//! (`msg_blocks_too_long`) even when each block is within its own limit. A big report
//! is summarised: lists stop where the budget ends and the last block says how many
//! attributes, findings and gaps were left out (the report has them all).
//!
//! # Answers
//! `200 ok` is delivered. `429` waits for its `Retry-After`; `500` (`rollup_error`) and
//! other 5xx are retried by the runtime. `400` (`invalid_payload`, `invalid_blocks`),
//! `403` (`invalid_token`, `action_prohibited`), `404` (`no_service`,
//! `channel_not_found`) and `410` (`channel_is_archived`) are rejected: the delivery is
//! kept as failed, since no retry helps until the webhook is fixed. Slack's webhooks
//! take no idempotency key: a retry after an answer lost in transit may post twice.

use std::time::Duration;

use alertresponder_core::model::Severity;
use alertresponder_core::ports::Emitter;
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::{json, Value};

use super::digest::{self, Digest, DigestAttribute, DigestFinding, DigestGap};
use super::{http, EmitContext};
use crate::error::PluginConfigError;
use crate::secret::{MaybeSecret, Secret, SecretRef};

/// The most blocks in one message (Slack's limit).
pub const MAX_BLOCKS: usize = 50;
/// The most characters of a header block's text (Slack's limit).
pub const MAX_HEADER: usize = 150;
/// The most characters of a section's text (Slack's limit).
pub const MAX_SECTION_TEXT: usize = 3000;
/// The most fields in a section (Slack's limit).
pub const MAX_FIELDS: usize = 10;
/// The most characters of one field (Slack's limit).
pub const MAX_FIELD_TEXT: usize = 2000;
/// The most characters of all the blocks' texts together: below the ~12–13 thousand at
/// which Slack answers `msg_blocks_too_long`.
pub const MESSAGE_BUDGET: usize = 10_000;
/// The most characters of the fallback `text` before escaping.
pub const MAX_FALLBACK: usize = 300;
/// The most characters of one list line (an attribute, a finding).
const MAX_LINE: usize = 1000;
/// What the closing context block may take of the budget.
const FOOTER_RESERVE: usize = 600;
/// The most characters of a `report_url` template.
const MAX_REPORT_URL: usize = 1000;
/// How errors name the target: never the URL, which is the credential.
const SHOWN: &str = "Slack webhook";

/// The keys of a `slack` emitter besides the common ones.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The incoming webhook's URL, a secret reference (a value in the file is refused).
    pub webhook_url: MaybeSecret,
    /// A link to the report: a URL template with `{id}` (and optionally `{version}`).
    pub report_url: Option<String>,
}

/// Posts each version to a Slack incoming webhook; see the module doc.
#[derive(Debug)]
pub struct SlackEmitter {
    name: String,
    /// The webhook URL: the credential, sent only by [`Emitter::emit`].
    webhook: Secret,
    client: Client,
    timeout: Duration,
    report_url: Option<String>,
}

impl SlackEmitter {
    /// Checks `config`, resolves the webhook URL and builds the client; errors name
    /// `ctx.field(..)` and never show the URL.
    pub async fn build(ctx: &EmitContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let reference = match &config.webhook_url {
            MaybeSecret::Secret(r) => r,
            MaybeSecret::Plain(_) => {
                return Err(ctx.invalid(
                    "webhook_url",
                    "a Slack webhook URL is its own credential and is never written in the \
                     file: use { env = \"SLACK_WEBHOOK_URL\" }, { secret = \"…\" } or \
                     { file = \"…\" }",
                ))
            }
        };
        if let Some(template) = &config.report_url {
            if template.chars().count() > MAX_REPORT_URL {
                return Err(
                    ctx.invalid("report_url", format!("at most {MAX_REPORT_URL} characters"))
                );
            }
            digest::check_report_url(template).map_err(|m| ctx.invalid("report_url", m))?;
        }
        let value = ctx
            .secrets()
            .resolve(reference, &ctx.field("webhook_url"))
            .await?;
        let webhook = Secret::new(value.expose().trim());
        check_webhook(ctx, reference, webhook.expose())?;
        Ok(Self {
            name: ctx.name().to_string(),
            webhook,
            client: crate::inspect::http::client(&ctx.base)?,
            timeout: ctx.timeout(),
            report_url: config.report_url,
        })
    }

    /// The message this emitter posts for `report`.
    pub fn message(&self, report: &Report) -> Value {
        let link = self
            .report_url
            .as_deref()
            .map(|t| digest::report_link(t, &report.id, report.version));
        message(&Digest::of(report), link.as_deref())
    }

    /// `error` with every trace of the webhook URL removed (in case a library or the
    /// network stack quotes it).
    fn scrub(&self, error: PluginError) -> PluginError {
        let url = self.webhook.expose();
        let path = Url::parse(url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        let clean = |m: String| {
            let m = m.replace(url, "***");
            if path.len() > 1 {
                m.replace(&path, "/***")
            } else {
                m
            }
        };
        match error {
            PluginError::Failed(m) => PluginError::Failed(clean(m)),
            PluginError::Rejected(m) => PluginError::Rejected(hint(clean(m))),
            PluginError::InvalidOutput(m) => PluginError::InvalidOutput(clean(m)),
            PluginError::Skipped(m) => PluginError::Skipped(clean(m)),
            other => other,
        }
    }
}

/// The resolved URL: https, or http to a loopback host. Errors say where it was read
/// from, never what it is.
fn check_webhook(
    ctx: &EmitContext<'_>,
    reference: &SecretRef,
    url: &str,
) -> Result<(), PluginConfigError> {
    let bad = |why: &str| {
        ctx.invalid(
            "webhook_url",
            format!("the value read from {reference} {why}"),
        )
    };
    let parsed = Url::parse(url).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let Some(host) = parsed.host_str() else {
        return Err(bad("has no host"));
    };
    let loopback = {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        }
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(bad(
            "is plain http: a webhook URL must be https (http only to a loopback host)",
        )),
        _ => Err(bad("is not an https URL")),
    }
}

/// What to do about a refusal Slack documents, appended to its error.
fn hint(message: String) -> String {
    let advice = [
        (
            "no_service",
            "the webhook was removed or the URL is wrong: create a new one",
        ),
        (
            "invalid_token",
            "the webhook's token is no longer valid: create a new one",
        ),
        (
            "channel_not_found",
            "the webhook's channel no longer exists",
        ),
        ("channel_is_archived", "the webhook's channel is archived"),
        ("action_prohibited", "the workspace restricts this webhook"),
        (
            "invalid_blocks",
            "Slack refused the message's blocks: please report this bug",
        ),
        (
            "invalid_payload",
            "Slack could not read the message: please report this bug",
        ),
    ];
    match advice.iter().find(|(code, _)| message.contains(code)) {
        Some((_, why)) => format!("{message} ({why})"),
        None => message,
    }
}

#[async_trait]
impl Emitter for SlackEmitter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn emit(&self, report: &Report, _attempt: u32) -> Result<(), PluginError> {
        let body = serde_json::to_vec(&self.message(report))
            .map_err(|e| PluginError::Failed(format!("cannot encode the Slack message: {e}")))?;
        let request = self
            .client
            .post(self.webhook.expose())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .build()
            .map_err(|e| {
                PluginError::Failed(format!(
                    "{SHOWN}: cannot build the request: {}",
                    crate::webhook::error_chain(&e.without_url())
                ))
            })
            .map_err(|e| self.scrub(e))?;
        http::send(&self.client, request, SHOWN, self.timeout)
            .await
            .map(|_| ())
            .map_err(|e| self.scrub(e))
    }
}

// ---------------------------------------------------------------------------------
// Escaping and bounding: every string enters the message through one of these.

/// Escapes `s` for Slack mrkdwn: `&`, `<` and `>` become the entities Slack decodes, so
/// no control sequence (`<!channel>`, `<!here>`, `<@U…>`, `<#C…>`, `<!subteam^…>`,
/// `<url|label>`) can be formed; and a word joiner (U+2060, invisible) follows each `@`,
/// so that Slack's automatic parsing of a bare `@here`, `@channel` or `@name` never
/// matches.
pub fn escape_mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{2060}"),
            c => out.push(c),
        }
    }
    out
}

/// A URL as the target of a mrkdwn link `<url|label>`: `&` as its entity, and `<`, `>`
/// and `|` (which would end the target) percent-encoded.
fn link_target(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

/// How long Slack counts `s`: UTF-16 code units (an emoji counts two).
fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// At most `max` UTF-16 units of `s`, ending in `…` when cut (never inside a character).
fn cut(s: &str, max: usize) -> String {
    if units(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + c.len_utf16() + 1 > max {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// A `plain_text` object: how every attacker-written value is shown (see the module
/// doc), bounded to `max` and never empty (Slack refuses an empty text).
fn plain(s: &str, max: usize) -> Value {
    let s = if s.trim().is_empty() { "—" } else { s };
    json!({"type": "plain_text", "text": cut(s, max), "emoji": false})
}

/// A `mrkdwn` object of our own text (labels, counts, the link; values escaped).
fn mrkdwn(s: String) -> Value {
    json!({"type": "mrkdwn", "text": s, "verbatim": true})
}

/// The UTF-16 units of every `text` in `block`: what it takes of the budget.
fn cost(block: &Value) -> usize {
    match block {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) if k == "text" => units(s),
                other => cost(other),
            })
            .sum(),
        Value::Array(items) => items.iter().map(cost).sum(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------
// The message.

fn icon(s: Severity) -> &'static str {
    match s {
        Severity::Urgent => "🔴",
        Severity::Unclassified => "🟡",
        Severity::Safe => "🟢",
    }
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Urgent => "Urgent",
        Severity::Unclassified => "Unclassified",
        Severity::Safe => "Safe",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The blocks so far and the budget they used.
#[derive(Default)]
struct Blocks {
    blocks: Vec<Value>,
    used: usize,
}

impl Blocks {
    fn push(&mut self, block: Value) {
        self.used += cost(&block);
        self.blocks.push(block);
    }

    /// Whether `units` more in `blocks` more blocks leave room for the footer.
    fn fits(&self, units: usize, blocks: usize) -> bool {
        self.used + units + FOOTER_RESERVE <= MESSAGE_BUDGET
            && self.blocks.len() + blocks < MAX_BLOCKS
    }

    /// A bold heading and `body` as plain text, when `body` is not empty.
    fn labelled(&mut self, heading: &str, body: &str) {
        if body.trim().is_empty() {
            return;
        }
        self.push(json!({"type": "section", "text": mrkdwn(format!("*{heading}*"))}));
        self.push(json!({"type": "section", "text": plain(body, MAX_SECTION_TEXT)}));
    }

    /// A heading and `lines` as plain-text sections, as many lines as the budget
    /// allows; returns how many were left out.
    fn list(&mut self, heading: String, lines: &[String]) -> usize {
        let Some(first) = lines.first() else {
            return 0;
        };
        let heading = json!({"type": "section", "text": mrkdwn(heading)});
        if !self.fits(cost(&heading) + units(&cut(first, MAX_LINE)), 2) {
            return lines.len();
        }
        self.push(heading);
        let mut chunk = String::new();
        let mut shown = 0;
        for line in lines {
            let line = cut(line, MAX_LINE);
            let n = units(&line) + 1;
            if !chunk.is_empty() && units(&chunk) + n > MAX_SECTION_TEXT {
                let full = std::mem::take(&mut chunk);
                self.push(json!({"type": "section", "text": plain(&full, MAX_SECTION_TEXT)}));
            }
            if !self.fits(units(&chunk) + n, 1) {
                break;
            }
            if !chunk.is_empty() {
                chunk.push('\n');
            }
            chunk.push_str(&line);
            shown += 1;
        }
        if !chunk.is_empty() {
            self.push(json!({"type": "section", "text": plain(&chunk, MAX_SECTION_TEXT)}));
        }
        lines.len() - shown
    }
}

fn attribute_line(a: &DigestAttribute) -> String {
    let mut line = format!("• {} {}", a.attr_type, a.value);
    if !a.key.is_empty() {
        line.push_str(&format!(" ({})", a.key));
    }
    if !a.from_alert {
        line.push_str(" — discovered");
    }
    line
}

fn finding_line(f: &DigestFinding) -> String {
    format!(
        "• {} on {} {}: {}",
        f.inspector, f.attr_type, f.value, f.summary
    )
}

fn gap_line(g: &DigestGap) -> String {
    format!("• {} on {}: {}", g.inspector, g.value, g.outcome)
}

/// The verdict line: ours only (severities, counts, the link).
fn verdict(d: &Digest, link: Option<&str>) -> String {
    let mut line = format!("*Verdict:* {} *{}*", icon(d.severity), label(d.severity));
    match d.previous {
        Some(p) if p != d.severity => line.push_str(&format!(", was *{}*", label(p))),
        Some(_) => line.push_str(" (unchanged on re-review)"),
        None => {}
    }
    line.push_str(&format!(
        "  ·  version {}  ·  {}",
        d.version,
        plural(d.alert_count, "alert", "alerts")
    ));
    if let Some(url) = link {
        line.push_str(&format!("  ·  <{}|Open the report>", link_target(url)));
    }
    line
}

/// The rule, detector and alert key as label/value field pairs, and the whole title
/// when the header had to cut it.
fn facts(d: &Digest, title_cut: bool) -> Value {
    let mut pairs = Vec::new();
    if title_cut {
        pairs.push(("Title", d.title.as_str()));
    }
    pairs.push(("Rule", &d.rule_id));
    pairs.push(("Detector", &d.detector));
    pairs.push(("Alert key", &d.alert_key));
    let fields: Vec<Value> = pairs
        .into_iter()
        .take(MAX_FIELDS / 2)
        .flat_map(|(l, v)| [mrkdwn(format!("*{l}*")), plain(v, MAX_FIELD_TEXT)])
        .collect();
    json!({"type": "section", "fields": fields})
}

/// The notification text: severity and title, escaped for mrkdwn.
fn fallback(d: &Digest) -> String {
    let was = match d.previous {
        Some(p) if p != d.severity => format!(" (was {})", p.as_str()),
        _ => String::new(),
    };
    let raw = format!("{}{was} security report: {}", label(d.severity), d.title);
    escape_mrkdwn(&cut(&raw, MAX_FALLBACK))
}

/// The Block Kit message for `d`, with a link to the report when `link` is given; within
/// Slack's limits whatever the report's size (see the module doc).
pub fn message(d: &Digest, link: Option<&str>) -> Value {
    let mut m = Blocks::default();
    let title = format!(
        "{} {}: {}",
        icon(d.severity),
        label(d.severity).to_uppercase(),
        d.title
    );
    m.push(json!({"type": "header", "text": plain(&title, MAX_HEADER)}));
    m.push(json!({"type": "section", "text": mrkdwn(verdict(d, link))}));
    m.push(facts(d, units(&title) > MAX_HEADER));
    m.labelled("Reviewer's reason", &d.reason);
    m.labelled("Alert description", &d.description);
    m.push(json!({"type": "divider"}));

    let attributes: Vec<String> = d.attributes.iter().map(attribute_line).collect();
    let total = attributes.len() + d.attributes_omitted;
    let attributes_left =
        m.list(format!("*Key attributes* ({total})"), &attributes) + d.attributes_omitted;
    let findings: Vec<String> = d.findings.iter().map(finding_line).collect();
    let findings_left = if findings.is_empty() {
        m.push(json!({"type": "section", "text": mrkdwn("*Findings:* none".into())}));
        0
    } else {
        let total = findings.len() + d.findings_omitted;
        m.list(format!("*Findings* ({total})"), &findings) + d.findings_omitted
    };
    let gaps: Vec<String> = d.gaps.iter().map(gap_line).collect();
    let gaps_left = m.list("*No answer* (unknown, not clean)".to_string(), &gaps);

    let mut footer = vec![mrkdwn(format!(
        "AlertResponder report `{}`, version {}",
        escape_mrkdwn(&cut(&d.report_id, 100)),
        d.version
    ))];
    let left: Vec<String> = [
        (attributes_left, "attribute", "attributes"),
        (findings_left, "finding", "findings"),
        (gaps_left, "unanswered inspection", "unanswered inspections"),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| plural(n, one, many))
    .collect();
    if !left.is_empty() {
        footer.push(mrkdwn(format!(
            "Not shown here: {} (the report has them all)",
            left.join(", ")
        )));
    }
    m.blocks
        .push(json!({"type": "context", "elements": footer}));
    json!({"text": fallback(d), "blocks": m.blocks})
}

#[cfg(test)]
mod tests;
