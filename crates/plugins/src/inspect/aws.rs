//! `kind = "aws"`: the associated cloud instance and identity.
//!
//! | attribute type | calls | writes |
//! |----------------|-------|--------|
//! | `ipaddr` | `ec2:DescribeNetworkInterfaces` (private address, then the public association when nothing is found and the address is not private), `ec2:DescribeInstances` | a `host` section per instance |
//! | `instance_id` | `ec2:DescribeInstances` | a `host` section |
//! | `access_key_id` | `iam:GetAccessKeyLastUsed`, `iam:GetUser` | a `user` section |
//! | `username` | `iam:GetUser` | a `user` section |
//!
//! With `activity` (the default), `cloudtrail:LookupEvents` adds what the principal did
//! (LookupAttribute `Username`, or `AccessKeyId` for a key) or what was done to the
//! instance (`ResourceName` = its ID) in the `lookback` window ending now: the
//! sections' `activities`. The instance's other addresses and its ID, and the source
//! addresses CloudTrail saw, come back as new attributes (at most 32).
//!
//! Read-only calls only. An access denial fails naming the call
//! (`ec2:DescribeNetworkInterfaces denied`); AWS throttling is `RateLimited` at once
//! (the SDK's own retries are off: the pipeline retries within the review's deadline).
//! The clock is the system's: the CloudTrail window ends at `Utc::now()` when the
//! attribute is inspected.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use alertresponder_core::ports::{Inspection, Inspector, SectionDraft};
use alertresponder_core::{Attribute, PluginError, Task};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudtrail::types::{Event, LookupAttribute, LookupAttributeKey};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::primitives::DateTime as AwsDateTime;
use aws_sdk_ec2::types::{Filter, Instance};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::content::{section, Activity, Host, User};
use super::BuildContext;
use crate::PluginConfigError;

/// The attribute types this inspector looks up.
pub const TYPES: [&str; 4] = ["ipaddr", "instance_id", "access_key_id", "username"];
/// The default CloudTrail window.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
/// The longest CloudTrail window.
pub const MAX_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// The default number of CloudTrail events per lookup.
pub const DEFAULT_MAX_EVENTS: u32 = 50;
/// The most CloudTrail events per lookup (4 pages of 50).
pub const MAX_EVENTS: u32 = 200;
/// The most instances one address leads to.
const MAX_INSTANCES: usize = 5;
/// The most new attributes per answer.
const MAX_NEW_ATTRIBUTES: usize = 32;
/// The most tags copied into a section.
const MAX_TAGS: usize = 50;
/// Longest tag value, error message, CloudTrail event document read.
const MAX_TAG_VALUE: usize = 256;
const MAX_MESSAGE: usize = 300;
const MAX_EVENT_DOCUMENT: usize = 64 * 1024;
/// CloudTrail's page size.
const CLOUDTRAIL_PAGE: u32 = 50;

/// The keys of an `aws` inspector table beside the common ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The region (default: the SDK's, from `AWS_REGION` or the profile).
    pub region: Option<String>,
    /// The CloudTrail window before now (humantime, default `1h`, at most `7d`).
    pub lookback: Option<String>,
    /// CloudTrail events per lookup (default 50, at most 200).
    pub max_events: Option<u32>,
    /// Whether to look up CloudTrail activity (default true).
    pub activity: Option<bool>,
}

/// The SDK clients the inspector calls.
#[derive(Debug, Clone)]
pub struct AwsClients {
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    cloudtrail: aws_sdk_cloudtrail::Client,
}

impl AwsClients {
    /// All three from one configuration, the SDK's retries off (a throttled call is
    /// reported at once).
    pub fn from_sdk_config(sdk: &SdkConfig) -> Self {
        let sdk = no_retries(sdk);
        Self {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            cloudtrail: aws_sdk_cloudtrail::Client::new(&sdk),
        }
    }

    /// CloudTrail from another configuration (a test's local endpoint).
    pub fn with_cloudtrail(mut self, sdk: &SdkConfig) -> Self {
        self.cloudtrail = aws_sdk_cloudtrail::Client::new(&no_retries(sdk));
        self
    }
}

fn no_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}

/// The checked configuration.
#[derive(Debug, Clone)]
struct Settings {
    lookback: chrono::Duration,
    max_events: u32,
    activity: bool,
}

/// Looks up EC2 instances, IAM users and their CloudTrail activity.
pub struct AwsInspector {
    name: String,
    timeout: Duration,
    settings: Settings,
    clients: AwsClients,
}

impl AwsInspector {
    /// Loads the SDK's default configuration (credentials, `AWS_ENDPOINT_URL*`), in
    /// `region` when set.
    pub async fn build(ctx: &BuildContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let settings = settings(ctx, &config)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        Ok(Self::new(ctx, settings, AwsClients::from_sdk_config(&sdk)))
    }

    /// With a given SDK configuration (its region wins over `region`).
    pub fn with_sdk_config(
        ctx: &BuildContext<'_>,
        config: Config,
        sdk: &SdkConfig,
    ) -> Result<Self, PluginConfigError> {
        Self::with_clients(ctx, config, AwsClients::from_sdk_config(sdk))
    }

    /// With given clients.
    pub fn with_clients(
        ctx: &BuildContext<'_>,
        config: Config,
        clients: AwsClients,
    ) -> Result<Self, PluginConfigError> {
        let settings = settings(ctx, &config)?;
        Ok(Self::new(ctx, settings, clients))
    }

    fn new(ctx: &BuildContext<'_>, settings: Settings, clients: AwsClients) -> Self {
        Self {
            name: ctx.name.to_string(),
            timeout: ctx.timeout,
            settings,
            clients,
        }
    }
}

fn settings(ctx: &BuildContext<'_>, config: &Config) -> Result<Settings, PluginConfigError> {
    if let Some(region) = &config.region {
        let ok = !region.is_empty()
            && region.len() <= 32
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(ctx.invalid("region", format!("{region:?} is not an AWS region name")));
        }
    }
    let lookback = match &config.lookback {
        None => DEFAULT_LOOKBACK,
        Some(s) => humantime::parse_duration(s.trim())
            .map_err(|e| ctx.invalid("lookback", format!("{s:?}: {e}")))?,
    };
    if lookback.is_zero() || lookback > MAX_LOOKBACK {
        return Err(ctx.invalid("lookback", "must be more than 0 and at most 7d"));
    }
    let max_events = config.max_events.unwrap_or(DEFAULT_MAX_EVENTS);
    if max_events == 0 || max_events > MAX_EVENTS {
        return Err(ctx.invalid("max_events", format!("must be 1 to {MAX_EVENTS}")));
    }
    Ok(Settings {
        lookback: chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::hours(1)),
        max_events,
        activity: config.activity.unwrap_or(true),
    })
}

#[async_trait]
impl Inspector for AwsInspector {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, attribute: &Attribute) -> bool {
        TYPES.contains(&attribute.attr_type.as_str())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let now = Utc::now();
        let value = task.attribute.value.trim();
        let found = match task.attribute.attr_type.as_str() {
            "ipaddr" => {
                let ip: IpAddr = value.parse().map_err(|_| {
                    PluginError::Skipped(format!("{} is not an IP address", bounded(value)))
                })?;
                let ids = self.instance_ids_for(ip).await?;
                self.instances(&ids, value, now).await?
            }
            "instance_id" => {
                if !valid_instance_id(value) {
                    return Err(PluginError::Skipped(format!(
                        "{} is not an EC2 instance ID (i- and 8 to 17 hex digits)",
                        bounded(value)
                    )));
                }
                self.instances(&[value.to_string()], value, now).await?
            }
            "access_key_id" => {
                if !valid_access_key_id(value) {
                    return Err(PluginError::Skipped(format!(
                        "{} is not an AWS access key ID (AKIA or ASIA and 12+ capitals or digits)",
                        bounded(value)
                    )));
                }
                self.access_key(value, now).await?
            }
            "username" => {
                if !valid_user_name(value) {
                    return Err(PluginError::Skipped(format!(
                        "{} is not an IAM user name",
                        bounded(value)
                    )));
                }
                self.user(value, LookupAttributeKey::Username, value, now)
                    .await?
            }
            other => {
                return Err(PluginError::Skipped(format!(
                    "the aws inspector does not look up {} attributes",
                    bounded(other)
                )))
            }
        };
        Ok(found)
    }
}

/// Why a call gave nothing.
enum Miss {
    /// The entity does not exist (not an error).
    NotFound,
    /// An outcome for the pipeline.
    Error(PluginError),
}

impl From<Miss> for PluginError {
    fn from(m: Miss) -> Self {
        match m {
            Miss::NotFound => PluginError::Failed("not found".into()),
            Miss::Error(e) => e,
        }
    }
}

impl AwsInspector {
    /// The instances whose interfaces hold `ip`.
    async fn instance_ids_for(&self, ip: IpAddr) -> Result<Vec<String>, PluginError> {
        let filters: &[&str] = match ip {
            IpAddr::V4(v4) if v4.is_private() || v4.is_loopback() || v4.is_link_local() => {
                &["addresses.private-ip-address"]
            }
            IpAddr::V4(_) => &["addresses.private-ip-address", "association.public-ip"],
            IpAddr::V6(_) => &["ipv6-addresses.ipv6-address"],
        };
        for filter in filters {
            let out = self
                .clients
                .ec2
                .describe_network_interfaces()
                .filters(
                    Filter::builder()
                        .name(*filter)
                        .values(ip.to_string())
                        .build(),
                )
                .send()
                .await
                .map_err(|e| aws_error("ec2:DescribeNetworkInterfaces", &e))
                .map(Some)
                .or_else(nothing)?;
            let mut ids: Vec<String> = Vec::new();
            for eni in out.iter().flat_map(|o| o.network_interfaces()) {
                if let Some(id) = eni.attachment().and_then(|a| a.instance_id()) {
                    if !ids.iter().any(|i| i == id) && ids.len() < MAX_INSTANCES {
                        ids.push(id.to_string());
                    }
                }
            }
            if !ids.is_empty() {
                return Ok(ids);
            }
        }
        Ok(Vec::new())
    }

    /// `host` sections of the instances `ids` (none: nothing found).
    async fn instances(
        &self,
        ids: &[String],
        seen: &str,
        now: DateTime<Utc>,
    ) -> Result<Inspection, PluginError> {
        if ids.is_empty() {
            return Ok(Inspection::default());
        }
        let out = self
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("ec2:DescribeInstances", &e))
            .map(Some)
            .or_else(nothing)?;
        let mut inspection = Inspection::default();
        let mut learned = Learned::new(seen);
        for reservation in out.iter().flat_map(|o| o.reservations()) {
            for instance in reservation.instances().iter().take(MAX_INSTANCES) {
                let id = instance.instance_id().unwrap_or_default();
                let mut activities = Vec::new();
                if self.settings.activity && !id.is_empty() {
                    let events = self
                        .lookup_events(LookupAttributeKey::ResourceName, id, now)
                        .await?;
                    for event in &events {
                        learned.source_address(event);
                    }
                    activities = events.iter().map(activity).collect();
                }
                inspection.sections.push(host_section(
                    instance,
                    reservation.owner_id(),
                    activities,
                ));
                learned.instance(instance);
            }
        }
        inspection.new_attributes = learned.into_attributes();
        Ok(inspection)
    }

    /// The user an access key belongs to, and what the key did.
    async fn access_key(&self, key: &str, now: DateTime<Utc>) -> Result<Inspection, PluginError> {
        let owner = self
            .clients
            .iam
            .get_access_key_last_used()
            .access_key_id(key)
            .send()
            .await
            .map_err(|e| aws_error("iam:GetAccessKeyLastUsed", &e))
            .map(Some)
            .or_else(nothing)?;
        match owner.as_ref().and_then(|o| o.user_name()) {
            Some(user) => {
                self.user(user, LookupAttributeKey::AccessKeyId, key, now)
                    .await
            }
            // Not an IAM user's key (a temporary ASIA key, another account's): what
            // CloudTrail saw it do is still worth a section.
            None => {
                if !self.settings.activity {
                    return Ok(Inspection::default());
                }
                let events = self
                    .lookup_events(LookupAttributeKey::AccessKeyId, key, now)
                    .await?;
                if events.is_empty() {
                    return Ok(Inspection::default());
                }
                let mut learned = Learned::new(key);
                events.iter().for_each(|e| learned.source_address(e));
                let content = User {
                    activities: events.iter().map(activity).collect(),
                };
                let mut extra = Map::new();
                extra.insert("access_key_id".into(), json!(key));
                Ok(Inspection {
                    sections: vec![section("user", &content, extra)],
                    new_attributes: learned.into_attributes(),
                })
            }
        }
    }

    /// The IAM user `name`, and what CloudTrail saw under `key` = `value`.
    async fn user(
        &self,
        name: &str,
        key: LookupAttributeKey,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<Inspection, PluginError> {
        let out = self
            .clients
            .iam
            .get_user()
            .user_name(name)
            .send()
            .await
            .map_err(|e| aws_error("iam:GetUser", &e))
            .map(Some)
            .or_else(nothing)?;
        let Some(user) = out.as_ref().and_then(|o| o.user()) else {
            return Ok(Inspection::default());
        };
        let mut learned = Learned::new(value);
        let mut activities = Vec::new();
        if self.settings.activity {
            let events = self.lookup_events(key, value, now).await?;
            events.iter().for_each(|e| learned.source_address(e));
            activities = events.iter().map(activity).collect();
        }
        Ok(Inspection {
            sections: vec![user_section(user, activities)],
            new_attributes: learned.into_attributes(),
        })
    }

    /// CloudTrail events with `key` = `value` in the lookback window ending `now`, at
    /// most `max_events` (pages of 50).
    async fn lookup_events(
        &self,
        key: LookupAttributeKey,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, PluginError> {
        let attribute = LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .map_err(|e| PluginError::Failed(format!("cloudtrail:LookupEvents: {e}")))?;
        let start = now - self.settings.lookback;
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        let pages = self.settings.max_events.div_ceil(CLOUDTRAIL_PAGE);
        for _ in 0..pages {
            let want = (self.settings.max_events as usize).saturating_sub(events.len());
            if want == 0 {
                break;
            }
            let out = self
                .clients
                .cloudtrail
                .lookup_events()
                .lookup_attributes(attribute.clone())
                .start_time(AwsDateTime::from_secs(start.timestamp()))
                .end_time(AwsDateTime::from_secs(now.timestamp()))
                .max_results(want.min(CLOUDTRAIL_PAGE as usize) as i32)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error("cloudtrail:LookupEvents", &e))
                .map_err(PluginError::from)?;
            events.extend(out.events().iter().take(want).cloned());
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(events)
    }
}

/// `Ok(None)` for a missing entity, the error otherwise.
fn nothing<T>(miss: Miss) -> Result<Option<T>, PluginError> {
    match miss {
        Miss::NotFound => Ok(None),
        Miss::Error(e) => Err(e),
    }
}

/// Turns an SDK error of `call` into an outcome: throttling is `RateLimited`, a
/// denial names the call, a missing entity is `NotFound`.
fn aws_error<E>(call: &str, err: &E) -> Miss
where
    E: ProvideErrorMetadata + std::error::Error,
{
    classify(
        call,
        err.code(),
        err.message(),
        &DisplayErrorContext(err).to_string(),
    )
}

fn classify(call: &str, code: Option<&str>, message: Option<&str>, detail: &str) -> Miss {
    match code {
        Some(
            "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException",
        ) => Miss::Error(PluginError::RateLimited { retry_after: None }),
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
            Miss::Error(PluginError::Failed(format!("{call} denied")))
        }
        Some("NoSuchEntity" | "InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed") => {
            Miss::NotFound
        }
        Some(code) => Miss::Error(PluginError::Failed(bounded(&format!(
            "{call}: {code}: {}",
            message.unwrap_or_default()
        )))),
        None => Miss::Error(PluginError::Failed(bounded(&format!("{call}: {detail}")))),
    }
}

/// At most [`MAX_MESSAGE`] characters.
fn bounded(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_MESSAGE).collect();
        t.push('…');
        t
    }
}

/// `^i-[0-9a-f]{8,17}$`.
pub fn valid_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `^(AKIA|ASIA)[A-Z0-9]{12,}$`, at most 128 characters (IAM's bound).
pub fn valid_access_key_id(s: &str) -> bool {
    let rest = s.strip_prefix("AKIA").or_else(|| s.strip_prefix("ASIA"));
    rest.is_some_and(|r| {
        r.len() >= 12
            && s.len() <= 128
            && r.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// IAM user names: 1 to 64 of letters, digits and `+=,.@_-`.
pub fn valid_user_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn chrono_time(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The instance's addresses: private, then public, then IPv6, each once.
fn instance_addresses(instance: &Instance) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |a: Option<&str>| {
        if let Some(a) = a.filter(|a| !a.is_empty()) {
            if !out.iter().any(|o| o == a) {
                out.push(a.to_string());
            }
        }
    };
    add(instance.private_ip_address());
    add(instance.public_ip_address());
    for eni in instance.network_interfaces() {
        for p in eni.private_ip_addresses() {
            add(p.private_ip_address());
            add(p.association().and_then(|a| a.public_ip()));
        }
        for v6 in eni.ipv6_addresses() {
            add(v6.ipv6_address());
        }
    }
    out.truncate(MAX_NEW_ATTRIBUTES);
    out
}

fn tag<'a>(instance: &'a Instance, keys: &[&str]) -> Vec<&'a str> {
    instance
        .tags()
        .iter()
        .filter(|t| t.key().is_some_and(|k| keys.contains(&k)))
        .filter_map(|t| t.value())
        .collect()
}

/// An instance as a DeepAlert `host` section; its own fields under `instance`.
pub fn host_section(
    instance: &Instance,
    account: Option<&str>,
    activities: Vec<Activity>,
) -> SectionDraft {
    let mut owner: Vec<String> = tag(instance, &["Owner", "owner"])
        .into_iter()
        .map(|v| truncate(v, MAX_TAG_VALUE))
        .collect();
    if let Some(account) = account.filter(|a| !a.is_empty()) {
        owner.push(account.to_string());
    }
    let host = Host {
        ipaddr: instance_addresses(instance),
        hostname: instance
            .private_dns_name()
            .filter(|n| !n.is_empty())
            .map(|n| vec![n.to_string()])
            .unwrap_or_default(),
        owner,
        activities,
        ..Host::default()
    };
    let tags: Map<String, Value> = instance
        .tags()
        .iter()
        .take(MAX_TAGS)
        .filter_map(|t| {
            Some((
                truncate(t.key()?, 128),
                Value::String(truncate(t.value().unwrap_or_default(), MAX_TAG_VALUE)),
            ))
        })
        .collect();
    let groups: Vec<Value> = instance
        .security_groups()
        .iter()
        .map(|g| json!({"id": g.group_id(), "name": g.group_name()}))
        .collect();
    let mut fields = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            fields.insert(k.to_string(), v);
        }
    };
    let text = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(|s| json!(s));
    put("id", text(instance.instance_id()));
    put(
        "name",
        tag(instance, &["Name"])
            .first()
            .map(|n| json!(truncate(n, MAX_TAG_VALUE))),
    );
    put(
        "state",
        text(instance.state().and_then(|s| s.name()).map(|n| n.as_str())),
    );
    put("type", text(instance.instance_type().map(|t| t.as_str())));
    put("vpc_id", text(instance.vpc_id()));
    put("subnet_id", text(instance.subnet_id()));
    put("account_id", text(account));
    put("security_groups", Some(json!(groups)));
    put(
        "iam_instance_profile",
        text(instance.iam_instance_profile().and_then(|p| p.arn())),
    );
    put(
        "launch_time",
        instance
            .launch_time()
            .and_then(chrono_time)
            .map(|t| json!(t)),
    );
    put("image_id", text(instance.image_id()));
    put("tags", Some(Value::Object(tags)));
    let mut extra = Map::new();
    extra.insert("instance".into(), Value::Object(fields));
    section("host", &host, extra)
}

/// An IAM user as a DeepAlert `user` section; its own fields under `user`.
pub fn user_section(user: &aws_sdk_iam::types::User, activities: Vec<Activity>) -> SectionDraft {
    let tags: Map<String, Value> = user
        .tags()
        .iter()
        .take(MAX_TAGS)
        .map(|t| {
            (
                truncate(t.key(), 128),
                json!(truncate(t.value(), MAX_TAG_VALUE)),
            )
        })
        .collect();
    let mut fields = Map::new();
    fields.insert("name".into(), json!(user.user_name()));
    fields.insert("arn".into(), json!(user.arn()));
    fields.insert("id".into(), json!(user.user_id()));
    if let Some(t) = chrono_time(user.create_date()) {
        fields.insert("created".into(), json!(t));
    }
    if let Some(t) = user.password_last_used().and_then(chrono_time) {
        fields.insert("password_last_used".into(), json!(t));
    }
    fields.insert("tags".into(), Value::Object(tags));
    let mut extra = Map::new();
    extra.insert("user".into(), Value::Object(fields));
    section("user", &User { activities }, extra)
}

/// The `sourceIPAddress` of a CloudTrail event document (a service name such as
/// `ec2.amazonaws.com` or `AWS Internal` as written).
fn source_address(event: &Event) -> Option<String> {
    let doc = event.cloud_trail_event()?;
    if doc.len() > MAX_EVENT_DOCUMENT {
        return None;
    }
    let v: Value = serde_json::from_str(doc).ok()?;
    v.get("sourceIPAddress")?
        .as_str()
        .map(|s| truncate(s, MAX_TAG_VALUE))
}

/// A CloudTrail event as an activity.
pub fn activity(event: &Event) -> Activity {
    let s = |v: Option<&str>| truncate(v.unwrap_or_default(), MAX_TAG_VALUE);
    Activity {
        action: s(event.event_name()),
        target: s(event.resources().first().and_then(|r| r.resource_name())),
        remote_addr: source_address(event).unwrap_or_default(),
        principal: s(event.username()),
        last_seen: event.event_time().and_then(chrono_time),
        service_name: s(event.event_source()),
    }
}

/// New attributes gathered from an answer: deduplicated, never the inspected value,
/// at most [`MAX_NEW_ATTRIBUTES`].
struct Learned {
    seen: BTreeSet<(String, String)>,
    attributes: Vec<Attribute>,
}

impl Learned {
    fn new(inspected: &str) -> Self {
        let mut seen = BTreeSet::new();
        for t in TYPES {
            seen.insert((t.to_string(), inspected.to_string()));
        }
        Self {
            seen,
            attributes: Vec::new(),
        }
    }

    fn add(
        &mut self,
        attr_type: &str,
        key: &str,
        value: &str,
        context: &str,
        when: Option<DateTime<Utc>>,
    ) {
        if self.attributes.len() >= MAX_NEW_ATTRIBUTES
            || !self.seen.insert((attr_type.to_string(), value.to_string()))
        {
            return;
        }
        self.attributes.push(Attribute {
            attr_type: attr_type.into(),
            key: key.into(),
            value: value.into(),
            context: vec![context.into()],
            timestamp: when,
        });
    }

    fn instance(&mut self, instance: &Instance) {
        if let Some(id) = instance.instance_id().filter(|i| valid_instance_id(i)) {
            self.add("instance_id", "EC2 instance", id, "local", None);
        }
        for ip in instance_addresses(instance) {
            self.add("ipaddr", "EC2 instance address", &ip, "local", None);
        }
    }

    /// CloudTrail's source address when it is an IP address (not a service name).
    fn source_address(&mut self, event: &Event) {
        if let Some(ip) = source_address(event).and_then(|s| s.parse::<IpAddr>().ok()) {
            let when = event.event_time().and_then(chrono_time);
            self.add(
                "ipaddr",
                "CloudTrail source address",
                &ip.to_string(),
                "remote",
                when,
            );
        }
    }

    fn into_attributes(self) -> Vec<Attribute> {
        self.attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudtrail::types::Resource;
    use aws_sdk_ec2::types::{
        GroupIdentifier, IamInstanceProfile, InstanceNetworkInterface, InstancePrivateIpAddress,
        InstanceState, InstanceStateName, InstanceType, Tag,
    };

    fn instance() -> Instance {
        Instance::builder()
            .instance_id("i-0123456789abcdef0")
            .private_ip_address("10.0.0.5")
            .public_ip_address("198.51.100.7")
            .private_dns_name("ip-10-0-0-5.ec2.internal")
            .state(
                InstanceState::builder()
                    .name(InstanceStateName::Running)
                    .build(),
            )
            .instance_type(InstanceType::T3Micro)
            .vpc_id("vpc-1")
            .subnet_id("subnet-1")
            .image_id("ami-1")
            .launch_time(AwsDateTime::from_secs(1_790_000_000))
            .security_groups(
                GroupIdentifier::builder()
                    .group_id("sg-1")
                    .group_name("web")
                    .build(),
            )
            .iam_instance_profile(
                IamInstanceProfile::builder()
                    .arn("arn:aws:iam::123456789012:instance-profile/web")
                    .build(),
            )
            .tags(Tag::builder().key("Name").value("web-1").build())
            .tags(Tag::builder().key("Owner").value("team-a").build())
            .network_interfaces(
                InstanceNetworkInterface::builder()
                    .private_ip_addresses(
                        InstancePrivateIpAddress::builder()
                            .private_ip_address("10.0.0.5")
                            .build(),
                    )
                    .private_ip_addresses(
                        InstancePrivateIpAddress::builder()
                            .private_ip_address("10.0.0.6")
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn an_instance_becomes_a_host_section_with_its_own_fields_under_instance() {
        let s = host_section(&instance(), Some("123456789012"), vec![]);
        assert_eq!(s.section_type, "host");
        assert_eq!(
            s.content,
            json!({
                "ipaddr": ["10.0.0.5", "198.51.100.7", "10.0.0.6"],
                "hostname": ["ip-10-0-0-5.ec2.internal"],
                "owner": ["team-a", "123456789012"],
                "instance": {
                    "id": "i-0123456789abcdef0", "name": "web-1", "state": "running", "type": "t3.micro",
                    "vpc_id": "vpc-1", "subnet_id": "subnet-1", "account_id": "123456789012",
                    "security_groups": [{"id": "sg-1", "name": "web"}],
                    "iam_instance_profile": "arn:aws:iam::123456789012:instance-profile/web",
                    "launch_time": "2026-09-21T14:13:20Z", "image_id": "ami-1",
                    "tags": {"Name": "web-1", "Owner": "team-a"}
                }
            })
        );
    }

    #[test]
    fn an_instance_teaches_its_other_addresses_and_its_id_never_the_inspected_value() {
        let mut learned = Learned::new("10.0.0.5");
        learned.instance(&instance());
        learned.instance(&instance());
        let got: Vec<(String, String)> = learned
            .into_attributes()
            .into_iter()
            .map(|a| (a.attr_type, a.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("instance_id".into(), "i-0123456789abcdef0".into()),
                ("ipaddr".into(), "198.51.100.7".into()),
                ("ipaddr".into(), "10.0.0.6".into()),
            ]
        );
    }

    fn event(source: &str) -> Event {
        Event::builder()
            .event_id("e1")
            .event_name("RunInstances")
            .event_time(AwsDateTime::from_secs(1_790_000_000))
            .event_source("ec2.amazonaws.com")
            .username("alice")
            .resources(
                Resource::builder()
                    .resource_type("AWS::EC2::Instance")
                    .resource_name("i-1")
                    .build(),
            )
            .cloud_trail_event(
                json!({"eventVersion": "1.08", "sourceIPAddress": source}).to_string(),
            )
            .build()
    }

    #[test]
    fn a_cloudtrail_event_becomes_an_activity() {
        let a = activity(&event("203.0.113.9"));
        assert_eq!(
            a,
            Activity {
                action: "RunInstances".into(),
                target: "i-1".into(),
                remote_addr: "203.0.113.9".into(),
                principal: "alice".into(),
                last_seen: DateTime::from_timestamp(1_790_000_000, 0),
                service_name: "ec2.amazonaws.com".into(),
            }
        );
        let bare = activity(
            &Event::builder()
                .event_name("X")
                .cloud_trail_event("not json")
                .build(),
        );
        assert_eq!(bare.remote_addr, "");
    }

    #[test]
    fn only_source_addresses_that_are_ip_addresses_become_attributes() {
        let mut learned = Learned::new("alice");
        learned.source_address(&event("203.0.113.9"));
        learned.source_address(&event("203.0.113.9"));
        learned.source_address(&event("ec2.amazonaws.com"));
        learned.source_address(&event("AWS Internal"));
        let got = learned.into_attributes();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].attr_type.as_str(), got[0].value.as_str()),
            ("ipaddr", "203.0.113.9")
        );
        assert_eq!(got[0].context, vec!["remote".to_string()]);
    }

    #[test]
    fn ids_are_validated_before_any_call() {
        assert!(valid_instance_id("i-0123abcd"));
        assert!(valid_instance_id("i-0123456789abcdef0"));
        assert!(!valid_instance_id("i-0123abc"));
        assert!(!valid_instance_id("i-0123456789abcdef01"));
        assert!(!valid_instance_id("i-0123ABCD"));
        assert!(!valid_instance_id("i-../../x"));
        assert!(valid_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(valid_access_key_id("ASIAIOSFODNN7EXAMPLE"));
        assert!(!valid_access_key_id("AKIAshort"));
        assert!(!valid_access_key_id("AKIAIOSFODNN7EXAMPLe"));
        assert!(!valid_access_key_id("ABIAIOSFODNN7EXAMPLE"));
        assert!(valid_user_name("alice.o+ps@corp"));
        assert!(!valid_user_name("a/b"));
        assert!(!valid_user_name(""));
    }

    #[test]
    fn throttling_is_rate_limited_and_a_denial_names_the_call() {
        let m = classify(
            "ec2:DescribeNetworkInterfaces",
            Some("UnauthorizedOperation"),
            Some("no"),
            "",
        );
        assert!(
            matches!(m, Miss::Error(PluginError::Failed(ref s)) if s == "ec2:DescribeNetworkInterfaces denied")
        );
        for code in ["RequestLimitExceeded", "Throttling", "ThrottlingException"] {
            let m = classify("x", Some(code), None, "");
            assert!(
                matches!(
                    m,
                    Miss::Error(PluginError::RateLimited { retry_after: None })
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify("iam:GetUser", Some("NoSuchEntity"), None, ""),
            Miss::NotFound
        ));
        let long = "x".repeat(5000);
        match classify("iam:GetUser", None, None, &long) {
            Miss::Error(PluginError::Failed(s)) => assert!(s.chars().count() <= MAX_MESSAGE + 1),
            _ => panic!("not failed"),
        }
    }

    #[test]
    fn the_configuration_is_checked_naming_the_key() {
        let secrets = crate::secret::Secrets::local(".");
        let ctx = BuildContext {
            name: "aws",
            key: "inspector[3]",
            timeout: Duration::from_secs(10),
            secrets: &secrets,
            base_dir: std::path::Path::new("."),
        };
        let ok = settings(&ctx, &Config::default()).unwrap();
        assert_eq!(
            (ok.lookback, ok.max_events, ok.activity),
            (chrono::Duration::hours(1), 50, true)
        );
        for (config, key) in [
            (
                Config {
                    lookback: Some("8d".into()),
                    ..Config::default()
                },
                "inspector[3].lookback",
            ),
            (
                Config {
                    lookback: Some("soon".into()),
                    ..Config::default()
                },
                "inspector[3].lookback",
            ),
            (
                Config {
                    max_events: Some(201),
                    ..Config::default()
                },
                "inspector[3].max_events",
            ),
            (
                Config {
                    max_events: Some(0),
                    ..Config::default()
                },
                "inspector[3].max_events",
            ),
            (
                Config {
                    region: Some("us east".into()),
                    ..Config::default()
                },
                "inspector[3].region",
            ),
        ] {
            let e = settings(&ctx, &config).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        let t: Config =
            toml::from_str("region = \"eu-west-1\"\nlookback = \"7d\"\nmax_events = 200").unwrap();
        assert!(settings(&ctx, &t).is_ok());
        assert!(toml::from_str::<Config>("regions = \"x\"").is_err());
    }
}
