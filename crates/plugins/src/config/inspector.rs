//! `[[inspector]]`: what inspects attributes — a built-in (`kind`), an external
//! command (embedded), or a Lambda function (AWS).
//!
//! Every table shares `name`, `types`, `timeout`, `rate_limit` and `cache_ttl`; a
//! built-in's other keys are its own (see [`crate::inspect`]) and are checked against
//! its kind, so that a typo is an error naming the key.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::source::{check_name, Source};
use super::{parse_duration, CommandLine, ConfigError, Runtime, DEFAULT_PLUGIN_TIMEOUT};
use crate::inspect::throttle::RateLimit;

/// The built-in inspectors, by `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinKind {
    /// VirusTotal API v3.
    VirusTotal,
    /// AbuseIPDB API v2.
    AbuseIpDb,
    /// DNS lookups.
    Dns,
    /// MaxMind-format databases.
    GeoIp,
    /// EC2, IAM and CloudTrail.
    Aws,
}

impl BuiltinKind {
    /// Every kind, as written in `kind`.
    pub const ALL: [(&'static str, BuiltinKind); 5] = [
        ("virustotal", BuiltinKind::VirusTotal),
        ("abuseipdb", BuiltinKind::AbuseIpDb),
        ("dns", BuiltinKind::Dns),
        ("geoip", BuiltinKind::GeoIp),
        ("aws", BuiltinKind::Aws),
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

    /// The rate limit when the table sets none: the vendor's free quota, so that a
    /// team on a free key never pays in failed lookups (set your plan's in the table).
    pub fn default_rate_limit(self) -> Option<RateLimit> {
        let (calls, per) = match self {
            BuiltinKind::VirusTotal => (4, 60),
            BuiltinKind::AbuseIpDb => (1000, 86_400),
            // CloudTrail LookupEvents: 2 requests per second per account and region.
            BuiltinKind::Aws => (2, 1),
            BuiltinKind::Dns | BuiltinKind::GeoIp => return None,
        };
        Some(RateLimit {
            calls,
            per: Duration::from_secs(per),
        })
    }

    /// How long an answer is kept when the table sets no `cache_ttl`: a day for the
    /// reputation services (they change slowly, lookups cost quota); nothing for DNS
    /// (the resolver honours record TTLs), local files, or the cloud inventory (an
    /// instance's state must be current).
    pub fn default_cache_ttl(self) -> Option<Duration> {
        match self {
            BuiltinKind::VirusTotal | BuiltinKind::AbuseIpDb => Some(Duration::from_secs(86_400)),
            BuiltinKind::Dns | BuiltinKind::GeoIp | BuiltinKind::Aws => None,
        }
    }

    /// The keys of its table that name files (uploaded beside the config by `make deploy`).
    pub fn path_keys(self) -> &'static [&'static str] {
        match self {
            BuiltinKind::GeoIp => &["city_db", "asn_db"],
            _ => &[],
        }
    }

    /// Checks the kind's own keys (types and unknown keys; values are checked when it is built).
    fn check_keys(self, table: &toml::Table) -> Result<(), String> {
        fn check<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<(), String> {
            T::deserialize(table.clone())
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        match self {
            BuiltinKind::VirusTotal => check::<crate::inspect::virustotal::Config>(table),
            BuiltinKind::AbuseIpDb => check::<crate::inspect::abuseipdb::Config>(table),
            BuiltinKind::Dns => check::<crate::inspect::dns::Config>(table),
            BuiltinKind::GeoIp => check::<crate::inspect::geoip::Config>(table),
            #[cfg(feature = "aws")]
            BuiltinKind::Aws => check::<crate::inspect::aws::Config>(table),
            #[cfg(not(feature = "aws"))]
            BuiltinKind::Aws => Err(
                "this build of alertresponder has no AWS support: build it with `--features aws` \
                 (the AWS functions always have it)"
                    .into(),
            ),
        }
    }
}

/// What runs an inspector.
#[derive(Debug, Clone, PartialEq)]
pub enum InspectorSource {
    /// A built-in, with its own keys (everything but the common ones).
    Builtin {
        /// Which.
        kind: BuiltinKind,
        /// Its own keys, checked against its kind.
        table: toml::Table,
    },
    /// An external command (argv), embedded only.
    Command(Vec<String>),
    /// A Lambda function's ARN, AWS only.
    Function(String),
}

/// One inspector.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectorConfig {
    /// Its name (author of its sections).
    pub name: String,
    /// What runs it.
    pub source: InspectorSource,
    /// Attribute types it takes (all it understands when `None`).
    pub types: Option<Vec<String>>,
    /// How long it may take per attribute (one attempt).
    pub timeout: Duration,
    /// At most this many lookups per window, across reports (and function instances).
    pub rate_limit: Option<RateLimit>,
    /// How long an answer is kept across reports (`None`: not kept).
    pub cache_ttl: Option<Duration>,
}

impl InspectorConfig {
    /// The `kind` of a built-in.
    pub fn kind(&self) -> Option<BuiltinKind> {
        match &self.source {
            InspectorSource::Builtin { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// The keys every `[[inspector]]` table may have besides a built-in's own.
const COMMON_KEYS: [&str; 8] = [
    "name",
    "kind",
    "command",
    "function",
    "types",
    "timeout",
    "rate_limit",
    "cache_ttl",
];

/// Reads and checks the `[[inspector]]` tables, in order. Names are unique among
/// inspectors, since a name authors sections.
pub(super) fn inspectors(
    raw: &[toml::Table],
    source: &Source,
    runtime: Runtime,
) -> Result<Vec<InspectorConfig>, ConfigError> {
    let mut names = HashSet::new();
    let mut inspectors = Vec::with_capacity(raw.len());
    for (i, table) in raw.iter().enumerate() {
        let key = format!("inspector[{i}]");
        let inspector = one(table, &key, source, runtime)?;
        if !names.insert(inspector.name.clone()) {
            return Err(source.invalid(
                format!("{key}.name"),
                format!("{:?} is used by another inspector", inspector.name),
            ));
        }
        inspectors.push(inspector);
    }
    Ok(inspectors)
}

/// The common keys of one table, as written.
#[derive(Deserialize)]
struct Common {
    name: String,
    kind: Option<String>,
    command: Option<CommandLine>,
    function: Option<String>,
    types: Option<Vec<String>>,
    timeout: Option<String>,
    rate_limit: Option<String>,
    cache_ttl: Option<String>,
}

fn one(
    table: &toml::Table,
    key: &str,
    source: &Source,
    runtime: Runtime,
) -> Result<InspectorConfig, ConfigError> {
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
    let field = |f: &str| format!("{key}.{f}");
    let source_of = match (&c.kind, &c.command, &c.function) {
        (Some(kind), None, None) => {
            let Some(k) = BuiltinKind::from_name(kind) else {
                let known: Vec<&str> = BuiltinKind::ALL.iter().map(|(n, _)| *n).collect();
                return Err(source.invalid(
                    field("kind"),
                    format!(
                        "{kind:?} is not a built-in inspector; one of {}",
                        known.join(", ")
                    ),
                ));
            };
            k.check_keys(&own).map_err(|m| source.invalid(key, m))?;
            InspectorSource::Builtin {
                kind: k,
                table: own.clone(),
            }
        }
        (None, Some(command), None) => {
            if runtime == Runtime::Aws {
                return Err(source.invalid(
                    field("command"),
                    "commands do not run on AWS: use a built-in `kind` or `function = \"arn:…\"` (a Lambda inspector)",
                ));
            }
            InspectorSource::Command(source.argv(&field("command"), command)?)
        }
        (None, None, Some(arn)) => {
            if runtime == Runtime::Embedded {
                return Err(source.invalid(
                    field("function"),
                    "Lambda functions are invoked only on AWS: use a built-in `kind` or a `command`",
                ));
            }
            if !arn.starts_with("arn:") || !arn.contains(":lambda:") {
                return Err(source.invalid(
                    field("function"),
                    format!("{arn:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"),
                ));
            }
            InspectorSource::Function(arn.clone())
        }
        _ => {
            return Err(source.invalid(key, "needs exactly one of kind, command, function"));
        }
    };
    if !matches!(source_of, InspectorSource::Builtin { .. }) {
        if let Some(unknown) = own.keys().next() {
            return Err(source.invalid(
                field(unknown),
                "unknown key (only a built-in `kind` takes keys of its own)",
            ));
        }
    }
    let kind = match &source_of {
        InspectorSource::Builtin { kind, .. } => Some(*kind),
        _ => None,
    };
    let rate_limit = match &c.rate_limit {
        Some(s) => Some(
            s.parse::<RateLimit>()
                .map_err(|m| source.invalid(field("rate_limit"), m))?,
        ),
        None => kind.and_then(BuiltinKind::default_rate_limit),
    };
    let cache_ttl = match &c.cache_ttl {
        Some(s) => {
            let d = parse_duration(s).map_err(|m| source.invalid(field("cache_ttl"), m))?;
            if d > MAX_CACHE_TTL {
                return Err(source.invalid(field("cache_ttl"), "must be at most 30 days"));
            }
            (!d.is_zero()).then_some(d)
        }
        None => kind.and_then(BuiltinKind::default_cache_ttl),
    };
    Ok(InspectorConfig {
        name: c.name.clone(),
        source: source_of,
        types: c.types.clone(),
        timeout: source.duration(
            &field("timeout"),
            c.timeout.as_deref(),
            DEFAULT_PLUGIN_TIMEOUT,
        )?,
        rate_limit,
        cache_ttl,
    })
}

/// Longest an answer may be kept.
const MAX_CACHE_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The Secrets Manager ids referenced anywhere in a built-in's keys (`{ secret = "…" }`).
pub(super) fn secret_ids(table: &toml::Table) -> Vec<String> {
    fn walk(v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                let is_reference = t
                    .keys()
                    .all(|k| ["env", "file", "secret"].contains(&k.as_str()));
                if let (true, Some(toml::Value::String(id))) = (is_reference, t.get("secret")) {
                    out.push(id.clone());
                } else {
                    t.values().for_each(|v| walk(v, out));
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    table.values().for_each(|v| walk(v, &mut out));
    out
}

/// The files a built-in's keys name, resolved beside the config.
pub(super) fn files(kind: BuiltinKind, table: &toml::Table, source: &Source) -> Vec<PathBuf> {
    kind.path_keys()
        .iter()
        .filter_map(|k| {
            table
                .get(*k)
                .and_then(toml::Value::as_str)
                .map(|p| source.resolve(std::path::Path::new(p)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{invalid, invalid_for, load, load_for, ConfigError};

    #[test]
    fn inspectors_keep_their_order_types_and_timeouts() {
        let c = load(
            r#"
[[inspector]]
name = "whois"
command = "./whois.sh --fast"
types = ["ipaddr", "domain"]
timeout = "10s"
[[inspector]]
name = "geo"
command = ["/opt/geo", "--json"]
"#,
        )
        .unwrap();
        assert_eq!(
            c.inspectors,
            vec![
                InspectorConfig {
                    name: "whois".into(),
                    source: InspectorSource::Command(vec![
                        "/etc/ar/./whois.sh".into(),
                        "--fast".into()
                    ]),
                    types: Some(vec!["ipaddr".into(), "domain".into()]),
                    timeout: Duration::from_secs(10),
                    rate_limit: None,
                    cache_ttl: None,
                },
                InspectorConfig {
                    name: "geo".into(),
                    source: InspectorSource::Command(vec!["/opt/geo".into(), "--json".into()]),
                    types: None,
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                    rate_limit: None,
                    cache_ttl: None,
                },
            ]
        );
    }

    #[test]
    fn a_built_in_takes_its_own_keys_and_the_vendor_quota_by_default() {
        let c = load(
            r#"
[[inspector]]
name = "vt"
kind = "virustotal"
api_key = { env = "VT_API_KEY" }
[[inspector]]
name = "abuse"
kind = "abuseipdb"
api_key = { env = "ABUSEIPDB_KEY", secret = "alertresponder/abuseipdb" }
rate_limit = "3000/day"
cache_ttl = "0s"
"#,
        )
        .unwrap();
        let vt = &c.inspectors[0];
        assert_eq!(vt.kind(), Some(BuiltinKind::VirusTotal));
        assert_eq!(
            vt.rate_limit,
            Some(RateLimit {
                calls: 4,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(vt.cache_ttl, Some(Duration::from_secs(86_400)));
        let abuse = &c.inspectors[1];
        assert_eq!(
            abuse.rate_limit,
            Some(RateLimit {
                calls: 3000,
                per: Duration::from_secs(86_400)
            })
        );
        assert_eq!(abuse.cache_ttl, None, "0s turns the cache off");
        assert_eq!(
            c.secrets_manager_ids(),
            vec!["alertresponder/abuseipdb".to_string()]
        );
    }

    #[test]
    fn a_typo_in_a_built_ins_keys_is_an_error_naming_the_key() {
        let (key, message) =
            invalid("[[inspector]]\nname = \"vt\"\nkind = \"virustotal\"\napi_key = { env = \"K\" }\napi_kye = 1");
        assert_eq!(key, "inspector[0]");
        assert!(message.contains("api_kye"), "{message}");
        let (key, message) = invalid("[[inspector]]\nname = \"x\"\nkind = \"shodan\"");
        assert_eq!(key, "inspector[0].kind");
        assert!(
            message.contains("virustotal, abuseipdb, dns, geoip, aws"),
            "{message}"
        );
        let (key, _) = invalid("[[inspector]]\nname = \"x\"\ncommand = \"a\"\nnameservers = []");
        assert_eq!(key, "inspector[0].nameservers");
        let (key, message) =
            invalid("[[inspector]]\nname = \"x\"\nkind = \"dns\"\nrate_limit = \"lots\"");
        assert_eq!(key, "inspector[0].rate_limit");
        assert!(!message.is_empty());
    }

    #[test]
    fn each_runtime_rejects_what_it_cannot_run() {
        let (key, message) =
            invalid_for("[[inspector]]\nname = \"x\"\ncommand = \"a\"", Runtime::Aws);
        assert_eq!(key, "inspector[0].command");
        assert!(message.contains("do not run on AWS"), "{message}");
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:whois";
        let text = format!("[[inspector]]\nname = \"x\"\nfunction = \"{arn}\"");
        assert_eq!(
            load_for(&text, Runtime::Aws).unwrap().inspectors[0].source,
            InspectorSource::Function(arn.into())
        );
        let (key, _) = invalid(&text);
        assert_eq!(key, "inspector[0].function");
        let (key, _) = invalid_for(
            "[[inspector]]\nname = \"x\"\nfunction = \"whois\"",
            Runtime::Aws,
        );
        assert_eq!(key, "inspector[0].function");
    }

    #[test]
    fn a_bad_inspector_is_rejected_at_its_key() {
        let (key, message) = invalid("[[inspector]]\nname = \"a b\"\ncommand = \"x\"");
        assert_eq!(key, "inspector[0].name");
        assert!(message.contains("use 1-64 letters"), "{message}");
        assert_eq!(
            invalid(
                "[[inspector]]\nname = \"x\"\ncommand = \"a\"\n\
                 [[inspector]]\nname = \"x\"\ncommand = \"b\""
            ),
            (
                "inspector[1].name".into(),
                "\"x\" is used by another inspector".into()
            )
        );
        assert_eq!(
            invalid("[[inspector]]\nname = \"x\"\ncommand = []"),
            ("inspector[0].command".into(), "must name a program".into())
        );
        let (key, _) = invalid("[[inspector]]\nname = \"x\"\ncommand = \"a\"\ntimeout = \"later\"");
        assert_eq!(key, "inspector[0].timeout");
        assert_eq!(
            invalid("[[inspector]]\nname = \"x\""),
            (
                "inspector[0]".into(),
                "needs exactly one of kind, command, function".into()
            )
        );
        assert_eq!(
            invalid("[[inspector]]\nname = \"x\"\nkind = \"dns\"\ncache_ttl = \"90d\""),
            (
                "inspector[0].cache_ttl".into(),
                "must be at most 30 days".into()
            )
        );
    }

    #[test]
    fn an_inspector_may_share_its_name_with_an_emitter() {
        let c = load(
            "[[inspector]]\nname = \"x\"\ncommand = \"a\"\n\
             [[emitter]]\nname = \"x\"\nfile = \"-\"",
        )
        .unwrap();
        assert_eq!((c.inspectors.len(), c.emitters.len()), (1, 1));
    }

    #[test]
    fn an_inspector_without_a_name_is_rejected() {
        let e = load("[[inspector]]\ncommand = \"x\"").unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("name"), "{e}");
    }
}
