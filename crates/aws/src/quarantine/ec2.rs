//! The EC2 calls of a quarantine and of its release, and nothing else: what the
//! template grants the fan-out is exactly [`READ_ACTIONS`] and [`ISOLATE_ACTIONS`]
//! (a test reads this file's calls), and a person releasing needs [`RELEASE_ACTIONS`].
//!
//! Order of an isolation, so that a crash anywhere is finished by a retry and never
//! loses the previous groups: record the previous groups (tags), replace each
//! interface's groups, then write the marker. A retry finds the groups recorded and
//! keeps them (an interface already moved would otherwise be recorded as quarantined).

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, ResourceType, SecurityGroup, Tag, TagSpecification};
use aws_sdk_ec2::Client;

use super::tags::{self, GROUP_TAG, MARKER, MAX_GROUPS_PER_INTERFACE};
use super::QuarantineError;
use crate::error::AwsError;

/// The name of the quarantine group the fan-out creates in a VPC.
pub const GROUP_NAME: &str = "alertresponder-quarantine";
/// Most network interfaces of an instance a quarantine records (their previous groups
/// take at most two tags each, of the 50 an instance may have).
pub const MAX_INTERFACES: usize = 16;
/// The read-only calls, in dry run too. Neither takes a resource-level permission
/// (IAM `Resource: "*"`).
pub const READ_ACTIONS: &[&str] = &["ec2:DescribeInstances", "ec2:DescribeSecurityGroups"];
/// The calls that change something, when the quarantine is on.
pub const ISOLATE_ACTIONS: &[&str] = &[
    "ec2:CreateSecurityGroup",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:CreateTags",
];
/// What `alertresponder release-quarantine` calls (with the user's credentials).
pub const RELEASE_ACTIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:DeleteTags",
];

/// A network interface of an instance and its security groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `eni-…`.
    pub id: String,
    /// Its groups' IDs, as EC2 lists them.
    pub groups: Vec<String>,
}

/// An instance as a quarantine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// `i-…`.
    pub id: String,
    /// Its VPC.
    pub vpc_id: Option<String>,
    /// Every network interface, by device index.
    pub interfaces: Vec<Interface>,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// Where the quarantine group of a VPC came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    /// Named by the user (`QUARANTINE_SECURITY_GROUPS`).
    Named,
    /// Found: created by an earlier quarantine in the VPC.
    Found,
    /// Created now.
    Created,
    /// None yet: a dry run does not create one.
    WouldCreate,
}

impl GroupSource {
    /// How a section says it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupSource::Named => "named",
            GroupSource::Found => "found",
            GroupSource::Created => "created",
            GroupSource::WouldCreate => "would be created",
        }
    }
}

/// The quarantine group of a VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineGroup {
    /// Its ID (`None` in a dry run that would create it).
    pub id: Option<String>,
    /// Where it came from.
    pub source: GroupSource,
}

fn ec2_error<E>(operation: &'static str, instance: &str, err: E) -> QuarantineError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    QuarantineError::Ec2 {
        instance: instance.to_string(),
        error: AwsError::sdk("ec2", operation, err),
    }
}

fn filter(name: &str, values: &[&str]) -> Filter {
    values
        .iter()
        .fold(Filter::builder().name(name), |f, v| f.values(*v))
        .build()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Describes one instance: its VPC, interfaces (with their groups) and tags.
pub async fn describe_instance(ec2: &Client, id: &str) -> Result<InstanceView, QuarantineError> {
    if !tags::valid_instance_id(id) {
        return Err(QuarantineError::InvalidInstance {
            value: id.chars().take(40).collect(),
        });
    }
    let out = match ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => out,
        Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
            return Err(QuarantineError::NotFound {
                instance: id.to_string(),
            })
        }
        Err(e) => return Err(ec2_error("DescribeInstances", id, e)),
    };
    let instance = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .ok_or_else(|| QuarantineError::NotFound {
            instance: id.to_string(),
        })?;
    let mut nics: Vec<_> = instance.network_interfaces().iter().collect();
    nics.sort_by_key(|n| n.attachment().and_then(|a| a.device_index()));
    let interfaces: Vec<Interface> = nics
        .into_iter()
        .filter_map(|n| {
            Some(Interface {
                id: n.network_interface_id()?.to_string(),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect(),
            })
        })
        .collect();
    Ok(InstanceView {
        id: id.to_string(),
        vpc_id: instance.vpc_id().map(str::to_string),
        interfaces,
        tags: instance
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    })
}

impl InstanceView {
    /// The VPC, when the instance can be quarantined: in a VPC, with at least one and
    /// at most [`MAX_INTERFACES`] interfaces of at most [`MAX_GROUPS_PER_INTERFACE`]
    /// groups each.
    pub fn quarantinable_vpc(&self) -> Result<&str, QuarantineError> {
        let unsupported = |reason: String| QuarantineError::Unsupported {
            instance: self.id.clone(),
            reason,
        };
        let vpc = self
            .vpc_id
            .as_deref()
            .ok_or_else(|| unsupported("it is in no VPC".into()))?;
        if self.interfaces.is_empty() {
            return Err(unsupported(
                "it has no network interface (terminated?)".into(),
            ));
        }
        if self.interfaces.len() > MAX_INTERFACES {
            return Err(unsupported(format!(
                "it has {} network interfaces, more than the {MAX_INTERFACES} a quarantine records",
                self.interfaces.len()
            )));
        }
        if let Some(i) = self
            .interfaces
            .iter()
            .find(|i| i.groups.len() > MAX_GROUPS_PER_INTERFACE)
        {
            return Err(unsupported(format!(
                "{} has {} security groups, more than EC2's {MAX_GROUPS_PER_INTERFACE}",
                i.id,
                i.groups.len()
            )));
        }
        Ok(vpc)
    }
}

/// The quarantine group of `vpc`: the one the user named for it, else the one an
/// earlier quarantine created there (its rules revoked if someone added any), else,
/// when `create`, a new one that allows nothing (every rule revoked, the default
/// egress rule included). Without `create` (a dry run), nothing is changed.
pub async fn quarantine_group(
    ec2: &Client,
    instance: &str,
    vpc: &str,
    named: &[String],
    create: bool,
) -> Result<QuarantineGroup, QuarantineError> {
    if !named.is_empty() {
        let ids: Vec<&str> = named.iter().map(String::as_str).collect();
        let out = ec2
            .describe_security_groups()
            .filters(filter("vpc-id", &[vpc]))
            .filters(filter("group-id", &ids))
            .send()
            .await
            .map_err(|e| ec2_error("DescribeSecurityGroups", instance, e))?;
        if let Some(id) = out.security_groups().iter().find_map(|g| g.group_id()) {
            return Ok(QuarantineGroup {
                id: Some(id.to_string()),
                source: GroupSource::Named,
            });
        }
    }
    // Twice at most: a concurrent quarantine in the same VPC may create it between our
    // look and our create (`InvalidGroup.Duplicate`), and then we find it.
    for _ in 0..2 {
        if let Some(group) = find_group(ec2, instance, vpc, None).await? {
            let id = group.group_id().unwrap_or_default().to_string();
            if create {
                close_group(ec2, instance, &group).await?;
            }
            return Ok(QuarantineGroup {
                id: Some(id),
                source: GroupSource::Found,
            });
        }
        if !create {
            return Ok(QuarantineGroup {
                id: None,
                source: GroupSource::WouldCreate,
            });
        }
        let created = ec2
            .create_security_group()
            .group_name(GROUP_NAME)
            .description("AlertResponder quarantine: allows no traffic in or out")
            .vpc_id(vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(tag(GROUP_TAG, "true"))
                    .build(),
            )
            .send()
            .await;
        let id = match created {
            Ok(out) => out.group_id().unwrap_or_default().to_string(),
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => continue,
            Err(e) => return Err(ec2_error("CreateSecurityGroup", instance, e)),
        };
        // A new group allows all egress: read its rules back and revoke them.
        if let Some(group) = find_group(ec2, instance, vpc, Some(&id)).await? {
            close_group(ec2, instance, &group).await?;
        }
        return Ok(QuarantineGroup {
            id: Some(id),
            source: GroupSource::Created,
        });
    }
    Err(QuarantineError::Unsupported {
        instance: instance.to_string(),
        reason: format!("{GROUP_NAME} in {vpc} was reported both existing and missing"),
    })
}

/// The group named [`GROUP_NAME`] in `vpc` (or the group `id`).
async fn find_group(
    ec2: &Client,
    instance: &str,
    vpc: &str,
    id: Option<&str>,
) -> Result<Option<SecurityGroup>, QuarantineError> {
    let request = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", &[vpc]));
    let request = match id {
        Some(id) => request.filters(filter("group-id", &[id])),
        None => request.filters(filter("group-name", &[GROUP_NAME])),
    };
    let out = request
        .send()
        .await
        .map_err(|e| ec2_error("DescribeSecurityGroups", instance, e))?;
    Ok(out.security_groups().first().cloned())
}

/// Revokes every rule of a quarantine group we created; a group of that name that we
/// did not create (no [`GROUP_TAG`]) and that allows traffic is refused, not changed.
async fn close_group(
    ec2: &Client,
    instance: &str,
    group: &SecurityGroup,
) -> Result<(), QuarantineError> {
    let id = group.group_id().unwrap_or_default();
    let ingress = group.ip_permissions();
    let egress = group.ip_permissions_egress();
    if ingress.is_empty() && egress.is_empty() {
        return Ok(());
    }
    let ours = group
        .tags()
        .iter()
        .any(|t| t.key() == Some(GROUP_TAG) && t.value() == Some("true"));
    if !ours {
        return Err(QuarantineError::NotOurs {
            instance: instance.to_string(),
            group: id.to_string(),
        });
    }
    if !ingress.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(ingress.to_vec()))
            .send()
            .await
            .map_err(|e| ec2_error("RevokeSecurityGroupIngress", instance, e))?;
    }
    if !egress.is_empty() {
        ec2.revoke_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(egress.to_vec()))
            .send()
            .await
            .map_err(|e| ec2_error("RevokeSecurityGroupEgress", instance, e))?;
    }
    Ok(())
}

async fn set_groups(
    ec2: &Client,
    instance: &str,
    interface: &str,
    groups: &[String],
) -> Result<(), QuarantineError> {
    ec2.modify_network_interface_attribute()
        .network_interface_id(interface)
        .set_groups(Some(groups.to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ec2_error("ModifyNetworkInterfaceAttribute", instance, e))
}

async fn create_tags(
    ec2: &Client,
    instance: &str,
    tags: &[(String, String)],
) -> Result<(), QuarantineError> {
    let request = tags
        .iter()
        .fold(ec2.create_tags().resources(instance), |r, (k, v)| {
            r.tags(tag(k, v))
        });
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ec2_error("CreateTags", instance, e))
}

/// Isolates `view` in `group`: records each interface's previous groups (keeping those
/// a crashed attempt recorded), replaces them with `group`, then writes the marker
/// with `report_id`. Returns the previous groups by interface.
pub async fn isolate(
    ec2: &Client,
    view: &InstanceView,
    group: &str,
    report_id: &str,
) -> Result<Vec<Interface>, QuarantineError> {
    let recorded = tags::decode_groups(&view.tags).map_err(|e| QuarantineError::Tags {
        instance: view.id.clone(),
        error: e,
    })?;
    let mut new_tags = Vec::new();
    let mut previous = Vec::new();
    for interface in &view.interfaces {
        let groups = match recorded.get(&interface.id) {
            Some(groups) => groups.clone(),
            None => {
                new_tags.extend(tags::encode_groups(&interface.id, &interface.groups));
                interface.groups.clone()
            }
        };
        previous.push(Interface {
            id: interface.id.clone(),
            groups,
        });
    }
    if !new_tags.is_empty() {
        create_tags(ec2, &view.id, &new_tags).await?;
    }
    let target = vec![group.to_string()];
    for interface in &view.interfaces {
        if interface.groups != target {
            set_groups(ec2, &view.id, &interface.id, &target).await?;
        }
    }
    create_tags(
        ec2,
        &view.id,
        &[(MARKER.to_string(), report_id.to_string())],
    )
    .await?;
    Ok(previous)
}

/// What [`release`] did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The instance.
    pub instance_id: String,
    /// The report that isolated it (the marker), if any.
    pub report_id: Option<String>,
    /// Interfaces given back their recorded groups.
    pub restored: Vec<Interface>,
    /// Interfaces recorded but no longer attached (their record is removed).
    pub not_attached: Vec<String>,
    /// Attached interfaces without a record (left as they are).
    pub unrecorded: Vec<String>,
    /// Our tags removed from the instance.
    pub removed_tags: Vec<String>,
    /// Nothing was changed.
    pub dry_run: bool,
}

impl Release {
    /// Whether the instance carried any quarantine tag of ours.
    pub fn was_quarantined(&self) -> bool {
        !self.removed_tags.is_empty()
    }
}

/// Restores the groups a quarantine recorded on `instance` and removes its tags (the
/// tags last, so that a failed restore can be retried). `dry_run`: only describes.
pub async fn release(
    ec2: &Client,
    instance: &str,
    dry_run: bool,
) -> Result<Release, QuarantineError> {
    let view = describe_instance(ec2, instance).await?;
    let recorded: BTreeMap<String, Vec<String>> =
        tags::decode_groups(&view.tags).map_err(|e| QuarantineError::Tags {
            instance: view.id.clone(),
            error: e,
        })?;
    let mut out = Release {
        instance_id: view.id.clone(),
        report_id: tags::marker(&view.tags).map(str::to_string),
        restored: Vec::new(),
        not_attached: Vec::new(),
        unrecorded: Vec::new(),
        removed_tags: tags::our_keys(&view.tags),
        dry_run,
    };
    for interface in &view.interfaces {
        match recorded.get(&interface.id) {
            Some(groups) if groups.is_empty() => {
                return Err(QuarantineError::Tags {
                    instance: view.id.clone(),
                    error: tags::TagError {
                        key: format!("{}{}", tags::GROUPS_PREFIX, interface.id),
                        message: "records no group: an interface needs at least one".into(),
                    },
                })
            }
            Some(groups) => out.restored.push(Interface {
                id: interface.id.clone(),
                groups: groups.clone(),
            }),
            None => out.unrecorded.push(interface.id.clone()),
        }
    }
    out.not_attached = recorded
        .keys()
        .filter(|k| !view.interfaces.iter().any(|i| &i.id == *k))
        .cloned()
        .collect();
    if dry_run || out.removed_tags.is_empty() {
        return Ok(out);
    }
    for interface in &out.restored {
        set_groups(ec2, &view.id, &interface.id, &interface.groups).await?;
    }
    let request = out
        .removed_tags
        .iter()
        .fold(ec2.delete_tags().resources(&view.id), |r, key| {
            r.tags(Tag::builder().key(key).build())
        });
    request
        .send()
        .await
        .map_err(|e| ec2_error("DeleteTags", &view.id, e))?;
    Ok(out)
}
