//! Automatic quarantine (AWS): an emitter of the fan-out that isolates the EC2
//! instances a serious report's alerts name.
//!
//! For a published version whose severity is at least `QUARANTINE_MIN_SEVERITY`
//! (default `urgent`), each distinct `instance_id` attribute of its alerts that is an
//! instance ID (`^i-[0-9a-f]{8,17}$`; at most [`MAX_INSTANCES_PER_REPORT`]) is:
//!
//! 1. described (VPC, network interfaces and their groups, tags);
//! 2. left alone if a quarantine already marked it (tag `alertresponder:quarantine`):
//!    a retry or a later version never isolates twice nor overwrites the recorded
//!    groups;
//! 3. isolated in its VPC's quarantine group (named by the user, else created once per
//!    VPC with every rule revoked: it allows nothing): previous groups recorded as tags,
//!    every interface's groups replaced, the marker written last ([`ec2::isolate`],
//!    [`tags`] for the encoding);
//! 4. recorded: a `host` section authored `quarantine` on the instance's attribute
//!    (what was done, each interface's previous groups, how to release), and a review
//!    of the report's next version, so that the version after shows it.
//!
//! `DryRun` describes and records what it would do, and changes nothing. A failure is
//! an error record (stage `quarantine`, one per instance) through the fan-out's error
//! sink (the error table, then the error topic), and the delivery fails (retryable or
//! not, as the EC2 error is).
//!
//! No loop: a version that carries the section (or whose triggering version is an
//! earlier one: the section says which) records nothing and schedules nothing; only the
//! delivery of the version that triggered it (or its retry) schedules the re-review,
//! which is idempotent by job name.
//!
//! `release` ([`ec2::release`]) gives the recorded groups back and removes the tags: the
//! `alertresponder release-quarantine` command.

pub mod ec2;
pub mod tags;

use std::sync::Arc;

use alertresponder_core::pipeline::{error_record, Pipeline};
use alertresponder_core::ports::{Clock, Emitter, ErrorSink, FindingStore, ReadStore, Scheduler};
use alertresponder_core::{Attribute, Job, PluginError, Report, ReportSection, Severity};
use async_trait::async_trait;
use aws_config::SdkConfig;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::config::{
    self, StackConfig, QUARANTINE, QUARANTINE_MIN_SEVERITY, QUARANTINE_SECURITY_GROUPS,
};
use crate::error::AwsError;
use ec2::{GroupSource, InstanceView, Interface, QuarantineGroup};

/// The emitter's name, the author of its sections and the stage of its error records.
pub const NAME: &str = "quarantine";
/// Most instances one report quarantines (the rest are an error record).
pub const MAX_INSTANCES_PER_REPORT: usize = 8;
/// Most user-named quarantine groups.
pub const MAX_NAMED_GROUPS: usize = 64;
/// The attribute type of an EC2 instance (`core::sources` maps GuardDuty's and
/// Security Hub's resource to it).
pub const INSTANCE_ID: &str = "instance_id";

/// What the quarantine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (the default).
    Off,
    /// Describes and records what it would do; changes nothing.
    DryRun,
    /// Isolates.
    On,
}

/// The quarantine's configuration (the fan-out's environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineConfig {
    /// Off, dry run or on.
    pub mode: Mode,
    /// The least severity quarantined.
    pub min_severity: Severity,
    /// User-named quarantine groups (one per VPC).
    pub groups: Vec<String>,
}

impl QuarantineConfig {
    /// Reads [`QUARANTINE`], [`QUARANTINE_MIN_SEVERITY`] and
    /// [`QUARANTINE_SECURITY_GROUPS`] through `lookup`; an invalid value fails naming
    /// its variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AwsError> {
        let bad = |name: &str, message: String| AwsError::Config {
            name: name.into(),
            message,
        };
        let mode = match lookup(QUARANTINE).as_deref().map(str::trim) {
            None | Some("") => Mode::Off,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "off" => Mode::Off,
                "dryrun" | "dry-run" => Mode::DryRun,
                "on" => Mode::On,
                _ => {
                    return Err(bad(
                        QUARANTINE,
                        format!(
                            "expected Off, DryRun or On, got {:?}",
                            v.chars().take(40).collect::<String>()
                        ),
                    ))
                }
            },
        };
        let min_severity = match lookup(QUARANTINE_MIN_SEVERITY).as_deref().map(str::trim) {
            None | Some("") => Severity::Urgent,
            Some(v) => v.parse().map_err(|e| bad(QUARANTINE_MIN_SEVERITY, e))?,
        };
        let groups: Vec<String> = lookup(QUARANTINE_SECURITY_GROUPS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(g) = groups.iter().find(|g| !tags::valid_group_id(g)) {
            return Err(bad(
                QUARANTINE_SECURITY_GROUPS,
                format!(
                    "{:?} is not a security group ID (sg- and 8 to 17 hex digits)",
                    g.chars().take(40).collect::<String>()
                ),
            ));
        }
        if groups.len() > MAX_NAMED_GROUPS {
            return Err(bad(
                QUARANTINE_SECURITY_GROUPS,
                format!("{} groups, more than {MAX_NAMED_GROUPS}", groups.len()),
            ));
        }
        Ok(Self {
            mode,
            min_severity,
            groups,
        })
    }
}

/// A quarantine that failed for one instance.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// Not an EC2 instance ID.
    #[error("{value:?} is not an EC2 instance ID (i- and 8 to 17 hex digits)")]
    InvalidInstance {
        /// The value (cut).
        value: String,
    },
    /// EC2 does not know the instance.
    #[error("instance {instance}: not found")]
    NotFound {
        /// The instance.
        instance: String,
    },
    /// The instance cannot be quarantined as it is.
    #[error("instance {instance}: cannot be quarantined: {reason}")]
    Unsupported {
        /// The instance.
        instance: String,
        /// Why.
        reason: String,
    },
    /// A group named `alertresponder-quarantine` that we did not create allows traffic.
    #[error("instance {instance}: security group {group} is named {name} but was not created by AlertResponder and allows traffic: remove its rules or name a group in QuarantineSecurityGroups", name = ec2::GROUP_NAME)]
    NotOurs {
        /// The instance.
        instance: String,
        /// The group.
        group: String,
    },
    /// The recorded previous groups are not what a quarantine writes.
    #[error("instance {instance}: {error}")]
    Tags {
        /// The instance.
        instance: String,
        /// Which tag, and what is wrong.
        error: tags::TagError,
    },
    /// Reading the report or recording the section failed.
    #[error("instance {instance}: {error}")]
    Store {
        /// The instance.
        instance: String,
        /// The store's error.
        error: alertresponder_core::StoreError,
    },
    /// An EC2 call failed.
    #[error("instance {instance}: {error}")]
    Ec2 {
        /// The instance.
        instance: String,
        /// The call and the error.
        error: AwsError,
    },
}

impl QuarantineError {
    /// Whether the same call may succeed later (throttling, a timeout, a 5xx).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            QuarantineError::Ec2 {
                error: AwsError::Service {
                    retryable: true,
                    ..
                },
                ..
            } | QuarantineError::Store {
                error: alertresponder_core::StoreError::Transient(_),
                ..
            }
        )
    }
}

/// The ports a quarantine records through.
#[derive(Clone)]
pub struct QuarantinePorts {
    /// Where its section goes.
    pub findings: Arc<dyn FindingStore>,
    /// The report's stored sections and last published version.
    pub reports: Arc<dyn ReadStore>,
    /// The re-review.
    pub scheduler: Arc<dyn Scheduler>,
    /// Failures (on AWS: the error table, then the error topic).
    pub errors: Arc<dyn ErrorSink>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

impl QuarantinePorts {
    /// The ports of a function's pipeline.
    pub fn of(p: &Pipeline) -> Self {
        Self {
            findings: p.store.clone(),
            reports: p.store.clone(),
            scheduler: p.scheduler.clone(),
            errors: p.errors.clone(),
            clock: p.clock.clone(),
        }
    }
}

/// The quarantine, as an emitter of the fan-out.
pub struct QuarantineEmitter {
    ec2: aws_sdk_ec2::Client,
    config: QuarantineConfig,
    ports: QuarantinePorts,
}

/// The quarantine emitter of the fan-out, from its environment: `None` when
/// [`QUARANTINE`] is off. On or dry run, it needs `STATE_MACHINE_ARN` (the re-review)
/// and the name [`NAME`] for itself.
pub fn from_env(
    stack: &StackConfig,
    sdk: &SdkConfig,
    pipeline: &Pipeline,
) -> Result<Option<QuarantineEmitter>, AwsError> {
    let config = QuarantineConfig::from_lookup(|name| std::env::var(name).ok())?;
    if config.mode == Mode::Off {
        return Ok(None);
    }
    StackConfig::require(&stack.state_machine_arn, config::STATE_MACHINE_ARN)?;
    if pipeline.emitters.iter().any(|e| e.name() == NAME) {
        return Err(AwsError::Config {
            name: config::CONFIG_S3_URI.into(),
            message: format!("an [[emitter]] is named {NAME:?}, the automatic quarantine's name"),
        });
    }
    Ok(Some(QuarantineEmitter::new(
        aws_sdk_ec2::Client::new(sdk),
        config,
        QuarantinePorts::of(pipeline),
    )))
}

/// The distinct instance IDs the alerts of `report` name, in order, at most
/// [`MAX_INSTANCES_PER_REPORT`], with the attribute that first named each; and how many
/// more there were. A value that is no instance ID is ignored.
pub fn instances(report: &Report) -> (Vec<&Attribute>, usize) {
    let mut seen: Vec<&Attribute> = Vec::new();
    let mut more = 0;
    let named = report
        .alerts
        .iter()
        .flat_map(|a| &a.attributes)
        .filter(|a| a.attr_type == INSTANCE_ID && tags::valid_instance_id(&a.value));
    for attribute in named {
        if seen.iter().any(|s| s.value == attribute.value) {
            continue;
        }
        if seen.len() < MAX_INSTANCES_PER_REPORT {
            seen.push(attribute);
        } else {
            more += 1;
        }
    }
    (seen, more)
}

/// What happened to one instance.
enum Outcome {
    /// Recorded now (a new section): the next version must show it.
    Recorded,
    /// Recorded by an earlier delivery of this same version: schedule its re-review
    /// again (idempotent), in case that delivery stopped before it.
    RecordedBefore,
    /// Nothing to do.
    Nothing,
}

impl QuarantineEmitter {
    /// An emitter on `ec2`, recording through `ports`.
    pub fn new(ec2: aws_sdk_ec2::Client, config: QuarantineConfig, ports: QuarantinePorts) -> Self {
        Self { ec2, config, ports }
    }

    /// The section this emitter stored for `instance`, if any, and the version it was
    /// recorded for.
    fn recorded_version(sections: &[ReportSection], instance: &str) -> Option<Option<u64>> {
        sections
            .iter()
            .find(|s| {
                s.author == NAME
                    && s.attribute.attr_type == INSTANCE_ID
                    && s.attribute.value == instance
            })
            .map(|s| s.content["quarantine"]["version"].as_u64())
    }

    async fn one(
        &self,
        report: &Report,
        attribute: &Attribute,
        stored: &mut Option<Vec<ReportSection>>,
    ) -> Result<Outcome, QuarantineError> {
        let id = attribute.value.as_str();
        // This version shows it: done.
        if Self::recorded_version(&report.sections, id).is_some() {
            return Ok(Outcome::Nothing);
        }
        // The store may have it (a retry; or the published copy was cut to its size
        // bound): read it once per delivery.
        if stored.is_none() {
            let state = self
                .ports
                .reports
                .load_report(&report.id)
                .await
                .map_err(|e| store_error(id, e))?;
            *stored = Some(state.map(|s| s.sections).unwrap_or_default());
        }
        match Self::recorded_version(stored.as_deref().unwrap_or_default(), id) {
            Some(Some(v)) if v == u64::from(report.version) => return Ok(Outcome::RecordedBefore),
            Some(_) => return Ok(Outcome::Nothing),
            None => {}
        }
        let view = ec2::describe_instance(&self.ec2, id).await?;
        if let Some(by) = tags::marker(&view.tags) {
            if by != report.id {
                info!(instance = %id, report_id = %report.id, "already quarantined by another report");
                return Ok(Outcome::Nothing);
            }
            // Isolated by this report, but its section was never written (a crash
            // between the two): record what the tags say, change nothing.
            let recorded =
                tags::decode_groups(&view.tags).map_err(|error| QuarantineError::Tags {
                    instance: id.into(),
                    error,
                })?;
            let previous = recorded
                .into_iter()
                .map(|(id, groups)| Interface { id, groups })
                .collect::<Vec<_>>();
            let group = view
                .interfaces
                .first()
                .and_then(|i| i.groups.first())
                .cloned();
            let group = QuarantineGroup {
                id: group,
                source: GroupSource::Found,
            };
            self.record(report, attribute, &view, &group, &previous)
                .await?;
            return Ok(Outcome::Recorded);
        }
        let vpc = view.quarantinable_vpc()?;
        let act = self.config.mode == Mode::On;
        let group = ec2::quarantine_group(&self.ec2, id, vpc, &self.config.groups, act).await?;
        let previous = match (&group.id, act) {
            (Some(group_id), true) => {
                let previous = ec2::isolate(&self.ec2, &view, group_id, &report.id).await?;
                info!(instance = %id, report_id = %report.id, group = %group_id, "instance quarantined");
                previous
            }
            _ => view.interfaces.clone(),
        };
        self.record(report, attribute, &view, &group, &previous)
            .await?;
        Ok(Outcome::Recorded)
    }

    async fn record(
        &self,
        report: &Report,
        attribute: &Attribute,
        view: &InstanceView,
        group: &QuarantineGroup,
        previous: &[Interface],
    ) -> Result<(), QuarantineError> {
        let section = ReportSection {
            report_id: report.id.clone(),
            author: NAME.into(),
            attribute: attribute.clone(),
            section_type: "host".into(),
            content: self.content(report, view, group, previous),
        };
        self.ports
            .findings
            .put_section(&section, 0)
            .await
            .map_err(|e| store_error(&view.id, e))
    }

    /// The section's content: an activity a renderer shows, and the details.
    fn content(
        &self,
        report: &Report,
        view: &InstanceView,
        group: &QuarantineGroup,
        previous: &[Interface],
    ) -> Value {
        let dry_run = self.config.mode != Mode::On;
        let action = if dry_run {
            "quarantine (dry run: nothing changed)"
        } else {
            "quarantined"
        };
        json!({
            "activities": [{
                "action": action,
                "target": view.id,
                "principal": "alertresponder",
                "service_name": "ec2.amazonaws.com",
                "last_seen": self.ports.clock.now(),
            }],
            "quarantine": {
                "instance_id": view.id,
                "dry_run": dry_run,
                "vpc_id": view.vpc_id,
                "group_id": group.id,
                "group": group.source.as_str(),
                "interfaces": previous.iter().map(|i| json!({
                    "id": i.id,
                    "previous_groups": i.groups,
                })).collect::<Vec<_>>(),
                "report_id": report.id,
                "version": report.version,
                "release": if dry_run {
                    Value::Null
                } else {
                    Value::String(format!("alertresponder release-quarantine {}", view.id))
                },
            }
        })
    }

    async fn put_error(&self, report: &Report, what: &str, error: String) {
        let id = format!("{NAME}:{}:{}:{what}", report.id, report.version);
        let input = json!({
            "report_id": report.id,
            "version": report.version,
            "instance_id": what,
            "mode": format!("{:?}", self.config.mode),
        })
        .to_string();
        let record = error_record(
            id,
            NAME,
            error,
            None,
            input.as_bytes(),
            self.ports.clock.now(),
        );
        if let Err(e) = self.ports.errors.put_error(&record).await {
            warn!(error = %e, "the quarantine's error record was not kept");
        }
    }

    /// Schedules the review of the version after the last published one, so that the
    /// report's next version shows what was recorded.
    async fn schedule_review(&self, report: &Report, fresh: bool) -> Result<(), PluginError> {
        let mut version = report.version + 1;
        if fresh {
            // A later version may have been published meanwhile (a late alert),
            // compiled before the section: the one after it shows it.
            let meta = self
                .ports
                .reports
                .report_meta(&report.id)
                .await
                .map_err(|e| PluginError::Failed(format!("report_meta: {e}")))?;
            if let Some(meta) = meta {
                version = version.max(meta.published_version + 1);
            }
        }
        let job = Job::Review {
            report_id: report.id.clone(),
            version,
        };
        self.ports
            .scheduler
            .schedule(&job, self.ports.clock.now())
            .await
            .map_err(|e| PluginError::Failed(format!("scheduling the re-review: {e}")))
    }
}

fn store_error(instance: &str, error: alertresponder_core::StoreError) -> QuarantineError {
    QuarantineError::Store {
        instance: instance.into(),
        error,
    }
}

#[async_trait]
impl Emitter for QuarantineEmitter {
    fn name(&self) -> &str {
        NAME
    }

    fn wants(&self, report: &Report) -> bool {
        self.config.mode != Mode::Off && report.result.severity >= self.config.min_severity
    }

    async fn emit(&self, report: &Report, _attempt: u32) -> Result<(), PluginError> {
        if !self.wants(report) {
            return Ok(());
        }
        let (instances, more) = instances(report);
        if more > 0 {
            self.put_error(
                report,
                "more",
                format!(
                    "{more} more instance(s) named, not quarantined: at most {MAX_INSTANCES_PER_REPORT} per report"
                ),
            )
            .await;
        }
        let mut stored = None;
        let (mut fresh, mut again) = (false, false);
        let mut failures: Vec<QuarantineError> = Vec::new();
        for attribute in instances {
            match self.one(report, attribute, &mut stored).await {
                Ok(Outcome::Recorded) => fresh = true,
                Ok(Outcome::RecordedBefore) => again = true,
                Ok(Outcome::Nothing) => {}
                Err(e) => {
                    warn!(instance = %attribute.value, report_id = %report.id, error = %e, "quarantine failed");
                    self.put_error(report, &attribute.value, e.to_string())
                        .await;
                    failures.push(e);
                }
            }
        }
        if fresh || again {
            self.schedule_review(report, fresh).await?;
        }
        if failures.is_empty() {
            return Ok(());
        }
        let message = failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let message = alertresponder_core::pipeline::bound(&message);
        Err(if failures.iter().any(QuarantineError::is_retryable) {
            PluginError::Failed(message)
        } else {
            PluginError::Rejected(message)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use alertresponder_core::fixtures::{alert, report};

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_quarantine_is_off_unless_asked_and_a_bad_value_names_its_variable() {
        let c = QuarantineConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(
            c,
            QuarantineConfig {
                mode: Mode::Off,
                min_severity: Severity::Urgent,
                groups: vec![],
            }
        );
        let c = QuarantineConfig::from_lookup(lookup(&[
            (QUARANTINE, "DryRun"),
            (QUARANTINE_MIN_SEVERITY, "unclassified"),
            (
                QUARANTINE_SECURITY_GROUPS,
                " sg-0123456789abcdef0, sg-12345678 ,",
            ),
        ]))
        .unwrap();
        assert_eq!(c.mode, Mode::DryRun);
        assert_eq!(c.min_severity, Severity::Unclassified);
        assert_eq!(c.groups, ["sg-0123456789abcdef0", "sg-12345678"]);
        for (variable, value) in [
            (QUARANTINE, "yes"),
            (QUARANTINE_MIN_SEVERITY, "high"),
            (QUARANTINE_SECURITY_GROUPS, "sg-1234,default"),
        ] {
            let err = QuarantineConfig::from_lookup(lookup(&[(variable, value)])).unwrap_err();
            let AwsError::Config { name, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(name, variable, "{err}");
        }
    }

    fn instance(value: &str) -> Attribute {
        Attribute {
            attr_type: INSTANCE_ID.into(),
            key: "EC2 instance".into(),
            value: value.into(),
            context: vec!["local".into()],
            timestamp: None,
        }
    }

    #[test]
    fn only_distinct_instance_ids_of_the_alerts_are_taken_up_to_the_bound() {
        let mut r = report("r", 1, Severity::Urgent);
        let mut a = alert("r", &["10.0.0.1"]);
        a.attributes.push(instance("i-0123456789abcdef0"));
        a.attributes.push(instance("i-0123456789abcdef0"));
        a.attributes.push(instance("i-12345678 i-87654321"));
        a.attributes.push(instance("--dry-run"));
        let mut b = alert("r", &[]);
        for n in 0..10 {
            b.attributes.push(instance(&format!("i-{n:08x}")));
        }
        r.alerts = vec![a, b];
        // Discovered by an inspector, not named by an alert: not taken.
        r.attributes.push(instance("i-aaaaaaaa"));
        let (taken, more) = instances(&r);
        let values: Vec<&str> = taken.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(values.len(), MAX_INSTANCES_PER_REPORT);
        assert_eq!(values[0], "i-0123456789abcdef0");
        assert_eq!(values[1], "i-00000000");
        assert_eq!(more, 11 - MAX_INSTANCES_PER_REPORT);
    }
}
