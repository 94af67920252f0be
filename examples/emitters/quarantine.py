#!/usr/bin/env python3
"""Example AlertResponder command emitter: quarantine the EC2 instances of a serious report.

The embedded runtime's counterpart of the AWS runtime's automatic quarantine (README,
"Automatic quarantine"), with the same tags, so that `alertresponder release-quarantine
INSTANCE` (built with `--features aws`) or the README's AWS CLI lines release either.

Contract: the Report JSON on stdin; exit 0 means done (a failure exits 1 and the delivery
job retries it: every step is safe to repeat). It takes the distinct `instance_id`
attributes of the report's alerts that are instance IDs (^i-[0-9a-f]{8,17}$), at most 8,
and, for a report at least QUARANTINE_MIN_SEVERITY (default urgent):

  1. `aws ec2 describe-instances` (VPC, network interfaces and their groups, tags); an
     instance already tagged `alertresponder:quarantine` is left alone;
  2. the VPC's quarantine group: QUARANTINE_GROUP_ID if set, else the group named
     `alertresponder-quarantine` in the VPC, else one created with its default egress
     rule revoked (it allows nothing);
  3. tags `alertresponder:quarantine-groups:<eni>` (each interface's previous groups),
     then each interface's groups replaced by the quarantine group, then the marker
     `alertresponder:quarantine` = the report ID.

DRY RUN BY DEFAULT: it only describes, and prints on stderr the commands it would run.
Set QUARANTINE_MODE=on to act. AWS_CLI names the `aws` program (default: `aws` on PATH);
credentials and region come from the environment as for any AWS CLI call.

The AWS CLI is always run with a list of arguments (never through a shell), and an
instance ID reaches it only after matching the pattern above.
"""
import json
import os
import re
import subprocess
import sys

INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
MAX_INSTANCES = 8
GROUPS_PER_TAG = 12
MARKER = "alertresponder:quarantine"
GROUPS_PREFIX = "alertresponder:quarantine-groups:"
GROUP_TAG = "alertresponder:quarantine-group"
GROUP_NAME = "alertresponder-quarantine"
SEVERITIES = {"safe": 0, "unclassified": 1, "urgent": 2}

AWS = os.environ.get("AWS_CLI", "aws")
ACT = os.environ.get("QUARANTINE_MODE", "dry-run").lower() == "on"
MIN_SEVERITY = os.environ.get("QUARANTINE_MIN_SEVERITY", "urgent")
NAMED_GROUP = os.environ.get("QUARANTINE_GROUP_ID", "")


def aws(*args, change=False):
    """Runs `aws ec2 ARGS --output json` (arguments as a list) and returns its JSON; a
    call that changes something only prints itself in a dry run."""
    argv = [AWS, "ec2", *args, "--output", "json"]
    if change and not ACT:
        print("dry run, would run:", json.dumps(argv), file=sys.stderr)
        return {}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"aws ec2 {args[0]} failed: {done.stderr.strip()[:500]}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def instances(report):
    seen = []
    for alert in report.get("alerts", []):
        for attribute in alert.get("attributes", []):
            value = attribute.get("value")
            if attribute.get("type") == "instance_id" and isinstance(value, str) \
                    and INSTANCE_ID.match(value) and value not in seen:
                seen.append(value)
    if len(seen) > MAX_INSTANCES:
        print(f"{len(seen) - MAX_INSTANCES} more instance(s) not quarantined", file=sys.stderr)
    return seen[:MAX_INSTANCES]


def quarantine_group(vpc):
    if NAMED_GROUP:
        return NAMED_GROUP
    found = aws("describe-security-groups", "--filters",
                json.dumps([{"Name": "vpc-id", "Values": [vpc]},
                            {"Name": "group-name", "Values": [GROUP_NAME]}]))
    groups = found.get("SecurityGroups", [])
    if groups:
        return groups[0]["GroupId"]
    if not ACT:
        aws("create-security-group", "--group-name", GROUP_NAME, "--vpc-id", vpc, change=True)
        return "(the new " + GROUP_NAME + ")"
    created = aws("create-security-group", "--group-name", GROUP_NAME, "--vpc-id", vpc,
                  "--description", "AlertResponder quarantine: allows no traffic in or out",
                  "--tag-specifications",
                  json.dumps([{"ResourceType": "security-group",
                               "Tags": [{"Key": GROUP_TAG, "Value": "true"}]}]),
                  change=True)
    group_id = created["GroupId"]
    group = aws("describe-security-groups", "--group-ids", group_id)["SecurityGroups"][0]
    if group.get("IpPermissionsEgress"):
        aws("revoke-security-group-egress", "--group-id", group_id, "--ip-permissions",
            json.dumps(group["IpPermissionsEgress"]), change=True)
    return group_id


def group_tags(eni, groups):
    chunks = [groups[i:i + GROUPS_PER_TAG] for i in range(0, len(groups), GROUPS_PER_TAG)] or [[]]
    return [{"Key": GROUPS_PREFIX + eni + ("" if n == 0 else f":{n + 1}"), "Value": " ".join(c)}
            for n, c in enumerate(chunks)]


def quarantine(instance_id, report_id):
    described = aws("describe-instances", "--instance-ids", instance_id)
    found = [i for r in described.get("Reservations", []) for i in r.get("Instances", [])
             if i.get("InstanceId") == instance_id]
    if not found:
        raise RuntimeError(f"{instance_id}: not found")
    instance = found[0]
    tags = {t["Key"]: t.get("Value", "") for t in instance.get("Tags", [])}
    if MARKER in tags:
        return f"{instance_id}: already quarantined by report {tags[MARKER][:80]}"
    vpc = instance.get("VpcId")
    nics = sorted(instance.get("NetworkInterfaces", []),
                  key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0))
    if not vpc or not nics or len(nics) > 16:
        raise RuntimeError(f"{instance_id}: not in a VPC, or no (or too many) network interfaces")
    group = quarantine_group(vpc)
    new_tags = []
    for nic in nics:
        eni = nic["NetworkInterfaceId"]
        if GROUPS_PREFIX + eni not in tags:  # kept from an attempt cut short
            new_tags += group_tags(eni, [g["GroupId"] for g in nic.get("Groups", [])])
    if new_tags:
        aws("create-tags", "--resources", instance_id, "--tags", json.dumps(new_tags), change=True)
    for nic in nics:
        if [g["GroupId"] for g in nic.get("Groups", [])] != [group]:
            aws("modify-network-interface-attribute", "--network-interface-id",
                nic["NetworkInterfaceId"], "--groups", group, change=True)
    aws("create-tags", "--resources", instance_id, "--tags",
        json.dumps([{"Key": MARKER, "Value": report_id}]), change=True)
    if not ACT:
        return f"{instance_id}: would be quarantined in {group} (dry run: nothing changed)"
    return f"{instance_id}: quarantined in {group}, previous groups recorded as tags"


def main():
    if NAMED_GROUP and not GROUP_ID.match(NAMED_GROUP):
        print("QUARANTINE_GROUP_ID is not a security group ID (sg-…)", file=sys.stderr)
        return 1
    report = json.load(sys.stdin)
    severity = report.get("result", {}).get("severity", "unclassified")
    if SEVERITIES.get(severity, 0) < SEVERITIES.get(MIN_SEVERITY, 2):
        return 0
    failed = 0
    for instance_id in instances(report):
        try:
            print(quarantine(instance_id, str(report.get("id", ""))[:64]))
        except (RuntimeError, KeyError, ValueError, subprocess.TimeoutExpired) as e:
            print(f"quarantine of {instance_id} failed: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
