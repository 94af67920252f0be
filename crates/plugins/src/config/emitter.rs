//! `[[emitter]]`: where published reports go — a built-in (`kind = "slack"`,
//! `"pagerduty"`, `"github"`), an HTTP endpoint (`url`, also `kind = "webhook"`), a
//! command (embedded) or a JSON-lines file (embedded).
//!
//! Every table shares `name`, `kind`, `timeout`, `min_severity` and `severities`; a
//! built-in's other keys are its own (see [`crate::emit`]) and are checked against its
//! kind when it is built, so that a typo is an error naming the key.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use alertresponder_core::model::{Report, Severity};
use serde::Deserialize;

use super::source::{check_name, Source};
use super::{ConfigError, RawTarget, Runtime, DEFAULT_PLUGIN_TIMEOUT};
use crate::secret::{MaybeSecret, SecretRef};

/// The built-in emitters, by `kind` (`webhook` is the `url` target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitterKind {
    /// A Slack incoming webhook, Block Kit message.
    Slack,
    /// PagerDuty Events API v2.
    PagerDuty,
    /// GitHub (or GitHub Enterprise) issues.
    GitHub,
}

impl EmitterKind {
    /// Every kind, as written in `kind`.
    pub const ALL: [(&'static str, EmitterKind); 3] = [
        ("slack", EmitterKind::Slack),
        ("pagerduty", EmitterKind::PagerDuty),
        ("github", EmitterKind::GitHub),
    ];

    /// The kind written as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// Its name in `kind`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The severities sent when the table sets no filter: every one, except to
    /// PagerDuty, which pages from `unclassified` up (a safe version resolves the
    /// incident an earlier one opened, see [`SeverityFilter::wants`]).
    pub fn default_filter(self) -> SeverityFilter {
        match self {
            EmitterKind::PagerDuty => SeverityFilter::at_least(Severity::Unclassified),
            EmitterKind::Slack | EmitterKind::GitHub => SeverityFilter::all(),
        }
    }
}

/// Which verdicts an emitter is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityFilter {
    severities: BTreeSet<Severity>,
}

impl SeverityFilter {
    /// Every verdict.
    pub fn all() -> Self {
        Self {
            severities: [Severity::Safe, Severity::Unclassified, Severity::Urgent].into(),
        }
    }

    /// `min` and the verdicts above it.
    pub fn at_least(min: Severity) -> Self {
        Self {
            severities: Self::all()
                .severities
                .into_iter()
                .filter(|s| *s >= min)
                .collect(),
        }
    }

    /// Whether every verdict passes.
    pub fn is_all(&self) -> bool {
        self.severities.len() == 3
    }

    /// Whether `severity` passes.
    pub fn admits(&self, severity: Severity) -> bool {
        self.severities.contains(&severity)
    }

    /// Whether `report` is sent: its verdict passes, or the previous version's did — a
    /// target told about a report hears that it was downgraded (PagerDuty resolves).
    pub fn wants(&self, report: &Report) -> bool {
        self.admits(report.result.severity)
            || report
                .previous_result
                .as_ref()
                .is_some_and(|p| self.admits(p.severity))
    }

    /// The verdicts that pass, least severe first.
    pub fn severities(&self) -> impl Iterator<Item = Severity> + '_ {
        self.severities.iter().copied()
    }
}

/// Where an emitter sends reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EmitterTarget {
    /// A command that reads the report on stdin.
    Command(Vec<String>),
    /// An HTTP endpoint that receives a POST (`url`, or `kind = "webhook"`).
    Url {
        /// The URL, or a reference to it (a webhook URL is often its own secret).
        url: MaybeSecret,
        /// Extra headers (e.g. authorization, which must be a secret reference).
        headers: Vec<(String, MaybeSecret)>,
        /// The key of the `X-AlertResponder-Signature` HMAC, always a reference.
        signing_secret: Option<SecretRef>,
    },
    /// A JSON-lines file (`-` for stdout).
    File(PathBuf),
    /// A built-in emitter and its own keys (checked when it is built).
    Builtin {
        /// Which.
        kind: EmitterKind,
        /// Its keys besides the common ones.
        table: toml::Table,
    },
}

/// One emitter.
#[derive(Debug, Clone, PartialEq)]
pub struct EmitterConfig {
    /// Its name.
    pub name: String,
    /// Where it sends.
    pub target: EmitterTarget,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// Which verdicts it is sent.
    pub filter: SeverityFilter,
}

/// Keys every emitter table may have.
const COMMON_KEYS: [&str; 5] = ["name", "kind", "timeout", "min_severity", "severities"];

/// The common keys of one table, as written.
#[derive(Deserialize)]
struct Common {
    name: String,
    kind: Option<String>,
    timeout: Option<String>,
    min_severity: Option<String>,
    severities: Option<Vec<String>>,
}

/// Reads and checks the `[[emitter]]` tables, in order. Names are unique among
/// emitters, since deliveries are keyed by them.
pub(super) fn emitters(
    raw: &[toml::Table],
    source: &Source,
    runtime: Runtime,
) -> Result<Vec<EmitterConfig>, ConfigError> {
    let mut names = HashSet::new();
    let mut emitters = Vec::with_capacity(raw.len());
    for (i, table) in raw.iter().enumerate() {
        let key = format!("emitter[{i}]");
        let emitter = one(table, &key, source, runtime)?;
        if !names.insert(emitter.name.clone()) {
            return Err(source.invalid(
                format!("{key}.name"),
                format!("{:?} is used by another emitter", emitter.name),
            ));
        }
        emitters.push(emitter);
    }
    Ok(emitters)
}

fn one(
    table: &toml::Table,
    key: &str,
    source: &Source,
    runtime: Runtime,
) -> Result<EmitterConfig, ConfigError> {
    let mut common = toml::Table::new();
    let mut own = toml::Table::new();
    for (k, v) in table {
        if COMMON_KEYS.contains(&k.as_str()) {
            common.insert(k.clone(), v.clone());
        } else {
            own.insert(k.clone(), v.clone());
        }
    }
    let c =
        Common::deserialize(common).map_err(|e| source.invalid(key, e.message().to_string()))?;
    check_name(&c.name).map_err(|m| source.invalid(format!("{key}.name"), m))?;
    let builtin = match c.kind.as_deref() {
        None | Some("webhook") => None,
        Some(kind) => Some(EmitterKind::from_name(kind).ok_or_else(|| {
            let known: Vec<&str> = EmitterKind::ALL.iter().map(|(n, _)| *n).collect();
            source.invalid(
                format!("{key}.kind"),
                format!(
                    "{kind:?} is not a built-in emitter; one of {}, webhook (or no kind with                      command, url or file)",
                    known.join(", ")
                ),
            )
        })?),
    };
    let target = match builtin {
        Some(kind) => EmitterTarget::Builtin { kind, table: own },
        None => {
            let raw = RawTarget::deserialize(own)
                .map_err(|e| source.invalid(key, e.message().to_string()))?;
            if c.kind.is_some() && raw.url.is_none() {
                return Err(source.invalid(format!("{key}.url"), "a webhook needs its url"));
            }
            target(&raw, key, source)?
        }
    };
    if runtime == Runtime::Aws {
        match &target {
            EmitterTarget::Command(_) => {
                return Err(source.invalid(
                    format!("{key}.command"),
                    "commands do not run on AWS: use `url` or a built-in `kind`",
                ))
            }
            EmitterTarget::File(_) => {
                return Err(source.invalid(
                    format!("{key}.file"),
                    "the AWS functions keep no files: use `url` or a built-in `kind` \
                     (published reports stay in the report table)",
                ))
            }
            EmitterTarget::Url { .. } | EmitterTarget::Builtin { .. } => {}
        }
    }
    Ok(EmitterConfig {
        name: c.name.clone(),
        timeout: source.duration(
            &format!("{key}.timeout"),
            c.timeout.as_deref(),
            DEFAULT_PLUGIN_TIMEOUT,
        )?,
        filter: filter(&c, builtin, key, source)?,
        target,
    })
}

/// The table's severity filter: `min_severity` and `severities` (both: the verdicts in
/// the list at or above the minimum), else the kind's default.
fn filter(
    c: &Common,
    kind: Option<EmitterKind>,
    key: &str,
    source: &Source,
) -> Result<SeverityFilter, ConfigError> {
    let mut filter = match (&c.min_severity, &c.severities) {
        (None, None) => {
            return Ok(kind.map_or_else(SeverityFilter::all, EmitterKind::default_filter))
        }
        _ => SeverityFilter::all(),
    };
    if let Some(min) = &c.min_severity {
        let min: Severity = min
            .parse()
            .map_err(|m: String| source.invalid(format!("{key}.min_severity"), m))?;
        filter = SeverityFilter::at_least(min);
    }
    if let Some(list) = &c.severities {
        let mut listed = BTreeSet::new();
        for (i, s) in list.iter().enumerate() {
            let s: Severity = s
                .parse()
                .map_err(|m: String| source.invalid(format!("{key}.severities[{i}]"), m))?;
            listed.insert(s);
        }
        filter.severities.retain(|s| listed.contains(s));
    }
    if filter.severities.is_empty() {
        return Err(source.invalid(
            format!("{key}.severities"),
            "no verdict passes this filter: the emitter would never be sent anything",
        ));
    }
    Ok(filter)
}

/// The one target a table without a built-in kind names.
fn target(raw: &RawTarget, key: &str, source: &Source) -> Result<EmitterTarget, ConfigError> {
    if raw.signing_secret.is_some() && raw.url.is_none() {
        return Err(source.invalid(
            format!("{key}.signing_secret"),
            "only an url emitter signs its requests",
        ));
    }
    if !raw.headers.is_empty() && raw.url.is_none() {
        return Err(source.invalid(
            format!("{key}.headers"),
            "only an url emitter takes headers",
        ));
    }
    match (&raw.command, &raw.url, &raw.file) {
        (Some(command), None, None) => Ok(EmitterTarget::Command(
            source.argv(&format!("{key}.command"), command)?,
        )),
        (None, Some(url), None) => {
            if let MaybeSecret::Plain(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(source.invalid(
                        format!("{key}.url"),
                        format!("{url:?} is not an http(s) URL"),
                    ));
                }
            }
            for (name, value) in &raw.headers {
                if matches!(value, MaybeSecret::Plain(_)) && is_credential_header(name) {
                    return Err(source.invalid(
                        format!("{key}.headers.{name}"),
                        "a credential is never written in the file: use { env = \"…\" }, \
                         { secret = \"…\" } or { file = \"…\" }",
                    ));
                }
            }
            Ok(EmitterTarget::Url {
                url: url.clone(),
                headers: raw
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                signing_secret: raw.signing_secret.clone(),
            })
        }
        // `-` is stdout, not a file named `-` beside the config.
        (None, None, Some(file)) if file.as_os_str() == "-" => {
            Ok(EmitterTarget::File(file.clone()))
        }
        (None, None, Some(file)) => Ok(EmitterTarget::File(source.resolve(file))),
        _ => Err(source.invalid(
            key,
            "needs exactly one of command, url, file (or a built-in kind)",
        )),
    }
}

/// Whether a header named `name` carries a credential.
fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || ["token", "key", "secret", "signature", "password", "auth"]
            .iter()
            .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{invalid, invalid_for, load, load_for};
    use crate::secret::SecretRef;

    #[test]
    fn each_kind_of_target_is_read() {
        let c = load(
            r#"
[[emitter]]
name = "ticket"
command = ["./open-ticket.sh", "--queue", "soc"]
timeout = "1m"
[[emitter]]
name = "hook"
url = "https://hooks.example.com/x"
headers = { Authorization = { env = "HOOK_TOKEN" }, X-Team = "soc" }
[[emitter]]
name = "log"
file = "out/reports.jsonl"
[[emitter]]
name = "stdout"
file = "-"
"#,
        )
        .unwrap();
        assert_eq!(
            c.emitters,
            vec![
                EmitterConfig {
                    name: "ticket".into(),
                    target: EmitterTarget::Command(vec![
                        "/etc/ar/./open-ticket.sh".into(),
                        "--queue".into(),
                        "soc".into()
                    ]),
                    timeout: Duration::from_secs(60),
                    filter: SeverityFilter::all(),
                },
                EmitterConfig {
                    name: "hook".into(),
                    target: EmitterTarget::Url {
                        url: MaybeSecret::Plain("https://hooks.example.com/x".into()),
                        headers: vec![
                            (
                                "Authorization".into(),
                                MaybeSecret::Secret(SecretRef::Env("HOOK_TOKEN".into()))
                            ),
                            ("X-Team".into(), MaybeSecret::Plain("soc".into()))
                        ],
                        signing_secret: None,
                    },
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                    filter: SeverityFilter::all(),
                },
                EmitterConfig {
                    name: "log".into(),
                    target: EmitterTarget::File(PathBuf::from("/etc/ar/out/reports.jsonl")),
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                    filter: SeverityFilter::all(),
                },
                EmitterConfig {
                    name: "stdout".into(),
                    target: EmitterTarget::File(PathBuf::from("-")),
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                    filter: SeverityFilter::all(),
                },
            ]
        );
    }

    #[test]
    fn an_emitter_names_exactly_one_target() {
        for targets in [
            "",
            "command = \"a\"\nurl = \"http://b\"",
            "url = \"http://b\"\nfile = \"-\"",
        ] {
            assert_eq!(
                invalid(&format!("[[emitter]]\nname = \"x\"\n{targets}")),
                (
                    "emitter[0]".into(),
                    "needs exactly one of command, url, file (or a built-in kind)".into()
                ),
                "{targets}"
            );
        }
    }

    #[test]
    fn a_bad_emitter_is_rejected_at_its_key() {
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nurl = \"ftp://b\""),
            (
                "emitter[0].url".into(),
                "\"ftp://b\" is not an http(s) URL".into()
            )
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\nheaders = { A = \"b\" }"),
            (
                "emitter[0].headers".into(),
                "only an url emitter takes headers".into()
            )
        );
        assert_eq!(
            invalid(
                "[[emitter]]\nname = \"x\"\nfile = \"-\"\n[[emitter]]\nname = \"x\"\nfile = \"-\""
            ),
            (
                "emitter[1].name".into(),
                "\"x\" is used by another emitter".into()
            )
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\ncommand = \"\""),
            ("emitter[0].command".into(), "must name a program".into())
        );
        let (key, _) = invalid("[[emitter]]\nname = \"\"\nfile = \"-\"");
        assert_eq!(key, "emitter[0].name");
        let (key, _) = invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\ntimeout = \"x\"");
        assert_eq!(key, "emitter[0].timeout");
    }

    #[test]
    fn a_credential_header_written_in_the_file_is_rejected() {
        let (key, message) = invalid(
            "[[emitter]]\nname = \"x\"\nurl = \"https://h.example\"\nheaders = { Authorization = \"Bearer t\" }",
        );
        assert_eq!(key, "emitter[0].headers.Authorization");
        assert!(message.contains("never written in the file") && !message.contains("Bearer t"));
        let (key, _) = invalid(
            "[[emitter]]\nname = \"x\"\nurl = \"https://h.example\"\nheaders = { X-Api-Key = \"k\" }",
        );
        assert_eq!(key, "emitter[0].headers.X-Api-Key");
    }

    #[test]
    fn a_webhook_url_may_be_a_secret_and_aws_takes_only_urls() {
        let c = load("[[emitter]]\nname = \"hook\"\nurl = { secret = \"ar/hook\" }").unwrap();
        assert_eq!(c.secrets_manager_ids(), vec!["ar/hook".to_string()]);
        assert_eq!(
            invalid_for("[[emitter]]\nname = \"x\"\nfile = \"-\"", Runtime::Aws).0,
            "emitter[0].file"
        );
        assert_eq!(
            invalid_for("[[emitter]]\nname = \"x\"\ncommand = \"a\"", Runtime::Aws).0,
            "emitter[0].command"
        );
    }

    #[test]
    fn a_builtin_kind_keeps_its_own_keys_and_its_default_filter() {
        let c = load(
            r#"
[[emitter]]
name = "pager"
kind = "pagerduty"
routing_key = { secret = "ar/pagerduty" }
timeout = "10s"
[[emitter]]
name = "chat"
kind = "slack"
webhook_url = { env = "SLACK_WEBHOOK_URL" }
severities = ["urgent", "safe"]
[[emitter]]
name = "hook"
kind = "webhook"
url = "https://h.example/x"
signing_secret = { env = "HOOK_SIGNING_KEY" }
min_severity = "unclassified"
"#,
        )
        .unwrap();
        let EmitterTarget::Builtin { kind, table } = &c.emitters[0].target else {
            panic!("{:?}", c.emitters[0].target);
        };
        assert_eq!(*kind, EmitterKind::PagerDuty);
        assert_eq!(table.keys().collect::<Vec<_>>(), ["routing_key"]);
        assert_eq!(c.emitters[0].timeout, Duration::from_secs(10));
        assert_eq!(
            c.emitters[0].filter,
            SeverityFilter::at_least(Severity::Unclassified)
        );
        assert_eq!(
            c.emitters[1].filter.severities().collect::<Vec<_>>(),
            [Severity::Safe, Severity::Urgent]
        );
        assert!(matches!(
            &c.emitters[2].target,
            EmitterTarget::Url { signing_secret: Some(SecretRef::Env(v)), .. } if v == "HOOK_SIGNING_KEY"
        ));
        assert_eq!(
            c.emitters[2].filter,
            SeverityFilter::at_least(Severity::Unclassified)
        );
        assert_eq!(c.secrets_manager_ids(), vec!["ar/pagerduty".to_string()]);
        // Built-ins run on AWS too.
        assert!(load_for("[[emitter]]\nname = \"p\"\nkind = \"github\"", Runtime::Aws).is_ok());
    }

    #[test]
    fn a_bad_kind_or_filter_is_named() {
        let (key, message) = invalid("[[emitter]]\nname = \"x\"\nkind = \"teams\"");
        assert_eq!(key, "emitter[0].kind");
        assert!(message.contains("slack, pagerduty, github"), "{message}");
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\nmin_severity = \"high\"").0,
            "emitter[0].min_severity"
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\nseverities = [\"urgent\", \"hot\"]")
                .0,
            "emitter[0].severities[1]"
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\nmin_severity = \"urgent\"\nseverities = [\"safe\"]").0,
            "emitter[0].severities"
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nkind = \"webhook\"").0,
            "emitter[0].url"
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\nsigning_secret = { env = \"K\" }").0,
            "emitter[0].signing_secret"
        );
        // A signing secret is a reference, never a value in the file.
        assert_eq!(
            invalid(
                "[[emitter]]\nname = \"x\"\nurl = \"https://h.example\"\nsigning_secret = \"k\""
            )
            .0,
            "emitter[0]"
        );
    }

    #[test]
    fn a_filter_passes_a_downgrade_after_a_version_it_passed() {
        use crate::test_support::report;
        use alertresponder_core::model::ReportResult;
        let f = SeverityFilter::at_least(Severity::Urgent);
        let mut r = report("r", 1, "d", "192.0.2.1");
        r.result.severity = Severity::Safe;
        assert!(!f.wants(&r));
        r.previous_result = Some(ReportResult {
            severity: Severity::Urgent,
            reason: String::new(),
        });
        assert!(f.wants(&r));
        r.result.severity = Severity::Urgent;
        assert!(f.wants(&r));
    }
}
