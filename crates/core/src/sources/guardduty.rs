//! GuardDuty findings as EventBridge delivers them (`detail` in camelCase).
//!
//! Mapping: detector `guardduty`; `rule_id` = the finding type
//! (`UnauthorizedAccess:EC2/SSHBruteForce`); `rule_name` = its title; `alert_key` =
//! the resource (instance ID, else IAM user name, access key ID, S3 bucket, EKS
//! cluster, else the finding ID), so repeated findings on one resource aggregate;
//! `timestamp` = `updatedAt` (else `createdAt`); `body` = the finding.
//!
//! Attributes, with their contexts:
//! - the action's other side, `remote`: `remoteIpDetails` of `networkConnectionAction`,
//!   `awsApiCallAction`, `kubernetesApiCallAction`, `rdsLoginAttemptAction` and each
//!   `portProbeAction.portProbeDetails[]` (`ipaddr`); the queried
//!   `dnsRequestAction.domain` and the API caller's `awsApiCallAction.domainDetails.domain`
//!   (`domain`);
//! - the resource, `local`: `instanceDetails.instanceId` (`instance_id`), each network
//!   interface's private and public addresses and IPv6 addresses (`ipaddr`); the local
//!   address of a connection or probe (`localIpDetails`);
//! - the principal, `subject`: `accessKeyDetails.accessKeyId` (`access_key_id`),
//!   `accessKeyDetails.userName` and the Kubernetes user (`username`);
//! - files, `file`: SHA-256 of the runtime process (`service.runtimeDetails.process`)
//!   and of the files a malware scan named (`service.ebsVolumeScanDetails`) (`filehashvalue`).

use serde_json::Value;

use super::{at, items, text, Attributes};

/// EventBridge `source` of GuardDuty findings.
pub const SOURCE: &str = "aws.guardduty";
/// EventBridge `detail-type` of GuardDuty findings.
pub const DETAIL_TYPE: &str = "GuardDuty Finding";
/// The detector name of the alerts.
pub const DETECTOR: &str = "guardduty";

fn remote_ip(attrs: &mut Attributes, details: Option<&Value>, key: &str) {
    if let Some(d) = details {
        for field in ["ipAddressV4", "ipAddressV6"] {
            attrs.add("ipaddr", key, text(d.get(field)), &["remote"]);
        }
    }
}

/// The alert of a GuardDuty finding (`detail`).
pub fn alert(detail: &Value) -> Value {
    let resource = detail.get("resource").unwrap_or(&Value::Null);
    let action = at(detail, &["service", "action"]).unwrap_or(&Value::Null);
    let mut attrs = Attributes::default();

    remote_ip(
        &mut attrs,
        at(action, &["networkConnectionAction", "remoteIpDetails"]),
        "remote address",
    );
    remote_ip(
        &mut attrs,
        at(action, &["awsApiCallAction", "remoteIpDetails"]),
        "API caller address",
    );
    remote_ip(
        &mut attrs,
        at(action, &["kubernetesApiCallAction", "remoteIpDetails"]),
        "API caller address",
    );
    remote_ip(
        &mut attrs,
        at(action, &["rdsLoginAttemptAction", "remoteIpDetails"]),
        "login attempt address",
    );
    for probe in items(action, &["portProbeAction", "portProbeDetails"], 16) {
        remote_ip(&mut attrs, probe.get("remoteIpDetails"), "probing address");
    }
    attrs.add(
        "domain",
        "queried domain",
        text(at(action, &["dnsRequestAction", "domain"])),
        &["remote"],
    );
    attrs.add(
        "domain",
        "API caller domain",
        text(at(action, &["awsApiCallAction", "domainDetails", "domain"])),
        &["remote"],
    );

    let instance_id = text(at(resource, &["instanceDetails", "instanceId"]));
    attrs.add(
        "instance_id",
        "EC2 instance",
        instance_id.clone(),
        &["local"],
    );
    for nic in items(resource, &["instanceDetails", "networkInterfaces"], 8) {
        attrs.add(
            "ipaddr",
            "instance private address",
            text(nic.get("privateIpAddress")),
            &["local"],
        );
        for ip in items(nic, &["privateIpAddresses"], 8) {
            attrs.add(
                "ipaddr",
                "instance private address",
                text(ip.get("privateIpAddress")),
                &["local"],
            );
        }
        attrs.add(
            "ipaddr",
            "instance public address",
            text(nic.get("publicIp")),
            &["local"],
        );
        for ip in items(nic, &["ipv6Addresses"], 8) {
            attrs.add(
                "ipaddr",
                "instance IPv6 address",
                text(Some(ip)),
                &["local"],
            );
        }
    }
    let local = at(action, &["networkConnectionAction", "localIpDetails"]);
    for field in ["ipAddressV4", "ipAddressV6"] {
        attrs.add(
            "ipaddr",
            "local address",
            text(local.and_then(|l| l.get(field))),
            &["local"],
        );
    }

    let user = text(at(resource, &["accessKeyDetails", "userName"]));
    let access_key = text(at(resource, &["accessKeyDetails", "accessKeyId"]));
    attrs.add(
        "access_key_id",
        "IAM access key",
        access_key.clone(),
        &["subject"],
    );
    attrs.add("username", "IAM user", user.clone(), &["subject"]);
    attrs.add(
        "username",
        "Kubernetes user",
        text(at(
            resource,
            &["kubernetesDetails", "kubernetesUserDetails", "username"],
        )),
        &["subject"],
    );

    attrs.add(
        "filehashvalue",
        "process executable SHA-256",
        text(at(
            detail,
            &["service", "runtimeDetails", "process", "executableSha256"],
        )),
        &["file"],
    );
    for threat in items(
        detail,
        &[
            "service",
            "ebsVolumeScanDetails",
            "scanDetections",
            "threatDetectedByName",
            "threatNames",
        ],
        8,
    ) {
        for file in items(threat, &["filePaths"], 8) {
            attrs.add(
                "filehashvalue",
                "malware file hash",
                text(file.get("hash")),
                &["file"],
            );
        }
    }

    let alert_key = instance_id
        .or(user)
        .or(access_key)
        .or_else(|| {
            items(resource, &["s3BucketDetails"], 1)
                .next()
                .and_then(|b| text(b.get("name")))
        })
        .or_else(|| text(at(resource, &["eksClusterDetails", "name"])))
        .or_else(|| text(detail.get("id")));
    super::alert(
        DETECTOR,
        [
            ("rule_id", text(detail.get("type"))),
            ("rule_name", text(detail.get("title"))),
            ("alert_key", alert_key),
            ("description", text(detail.get("description"))),
            (
                "timestamp",
                text(detail.get("updatedAt")).or_else(|| text(detail.get("createdAt"))),
            ),
        ],
        attrs,
        detail,
    )
}
