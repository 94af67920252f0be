#!/usr/bin/env python3
"""Build a release of AlertResponder: a plain CloudFormation template that anyone
deploys with `aws cloudformation deploy`, and the function zips it points to.
Run by `make release` with the venv's Python (it needs samtranslator, which
aws-sam-cli brings, and PyYAML).

    release.py --version 1.2.3 --bucket NAME [--arch x86_64 ...] [--region us-east-1 ...]

writes

    dist/alertresponder.yml               the template: SAM transform applied (no
                                          Transform, no CAPABILITY_AUTO_EXPAND), the
                                          Architecture parameter narrowed to the
                                          architectures built
    dist/<version>/<arch>/<binary>.zip    one zip per function and architecture

and prints the one command that uploads the zips. Each function's code is
s3://<bucket>-<region>/<version>/<arch>/<binary>.zip: the template composes the
bucket name with ${AWS::Region} (Lambda reads code only from a bucket in the
function's region), so the publisher keeps one bucket per region it serves.

The build is `make build ARCH=<arch>` per architecture (cargo lambda; its zips
are target/lambda/<binary>/bootstrap.zip). `--zips-from DIR` takes
DIR/<binary>/bootstrap.zip instead and builds nothing: for the tests, which
deploy the template on moto and need no real code.

The transform runs offline (samtranslator, no AWS call). The functions, their
binaries and the outputs come from template.yaml as it is at release time.
"""

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "template.yaml"
DIST = "dist"
RELEASED = "alertresponder.yml"
ARCHITECTURES = ("x86_64", "arm64")
# `aws cloudformation deploy --template-file` sends the template in the request;
# CloudFormation takes at most 51,200 bytes that way (more needs an S3 bucket,
# which the two-command path has not).
TEMPLATE_BODY_LIMIT = 51200
VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
# S3 bucket names: 3 to 63 lowercase letters, digits, '-' and '.'. The release
# bucket is "<bucket>-<region>"; the longest region names have 14 characters
# (ap-southeast-1, …) and room is left for a longer one.
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
BUCKET_MAX = 63 - 1 - 16
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# Stand-ins the transform is given for the pseudo parameters: a value that could
# be written into the template would show in it, and the release refuses it.
SENTINEL_REGION = "zz-release-9"
SENTINEL_PARTITION = "aws-release-sentinel"


class Failure(Exception):
    """A problem the user can fix; printed without a traceback."""


# ---------------------------------------------------------------- template I/O


class _CfnLoader(yaml.SafeLoader):
    """CloudFormation YAML: short tags become the long form (!GetAtt A.B →
    {"Fn::GetAtt": ["A", "B"]}, !Ref X → {"Ref": X}); dates stay strings."""


# "2012-10-17" unquoted must stay a string: CloudFormation reads it as one.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _intrinsic(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node).split(".", 1)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_CfnLoader)


class _Dumper(yaml.SafeDumper):
    """Block YAML, a list or map of plain values on one line ([Role, Arn]), a
    multi-line string as a literal block."""


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_template(template):
    return yaml.dump(
        template, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True, default_flow_style=None
    )


# ---------------------------------------------------------------- the release


def check_arguments(version, bucket, archs, regions):
    if not VERSION.match(version):
        raise Failure(f"VERSION {version!r}: expected x.y.z (e.g. 1.2.0, 1.2.0-rc.1)")
    if not BUCKET.match(bucket) or len(bucket) > BUCKET_MAX or ".." in bucket:
        raise Failure(
            f"BUCKET {bucket!r}: lowercase letters, digits, '-' and '.', at most {BUCKET_MAX} "
            "characters (the code buckets are <bucket>-<region>, at most 63)"
        )
    if not archs:
        raise Failure("no architecture to build")
    for arch in archs:
        if arch not in ARCHITECTURES:
            raise Failure(f"architecture {arch!r}: x86_64 or arm64")
    for region in regions:
        if not REGION.match(region):
            raise Failure(f"region {region!r} is not a region name like eu-west-1")


def function_binaries(template):
    """{logical ID: binary} of every AWS::Serverless::Function, from its
    Metadata.BuildProperties.Binary (what `sam build` and `make build` build)."""
    binaries = {}
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if not isinstance(binary, str) or not binary:
            raise Failure(f"{TEMPLATE}: function {name} has no Metadata.BuildProperties.Binary")
        binaries[name] = binary
    if not binaries:
        raise Failure(f"{TEMPLATE} has no AWS::Serverless::Function")
    return binaries


def code_key_arch(template, binaries, archs):
    """What the code key says for the architecture: "${Architecture}" when the
    functions take the Architecture parameter, else the one architecture built.
    Narrows the parameter in `template` to the architectures built."""
    parameters = template.get("Parameters", {})
    globals_arch = template.get("Globals", {}).get("Function", {}).get("Architectures")
    resources = template["Resources"]
    if "Architecture" in parameters:
        spec = parameters["Architecture"]
        allowed = spec.get("AllowedValues")
        if allowed is not None:
            unknown = [a for a in archs if a not in allowed]
            if unknown:
                raise Failure(f"{TEMPLATE}: Architecture does not allow {', '.join(unknown)}")
        # The template offers exactly what was built.
        spec["AllowedValues"] = list(archs)
        if spec.get("Default") not in archs:
            spec["Default"] = archs[0]
        spec["Description"] = (
            f"CPU architecture of the Lambda functions ({', '.join(archs)}: what this release was built for)."
        )
        for name in binaries:
            own = resources[name].get("Properties", {}).get("Architectures", globals_arch)
            if own != [{"Ref": "Architecture"}]:
                raise Failure(
                    f"{TEMPLATE}: function {name} does not take its Architectures from the "
                    "Architecture parameter, so its code key could not follow it"
                )
        return "${Architecture}"
    if len(archs) != 1:
        raise Failure(f"{TEMPLATE} has no Architecture parameter: build one architecture")
    for name in binaries:
        own = resources[name].get("Properties", {}).get("Architectures", globals_arch)
        if own not in (None, [archs[0]]):
            raise Failure(f"{TEMPLATE}: function {name} is not built for {archs[0]}")
    return archs[0]


class _NoManagedPolicies:
    """The transform asks for AWS's managed policy list only when a template names
    a managed policy by its name; template.yaml gives ARNs or none, and the
    release calls no AWS API."""

    def load(self):
        raise Failure(
            f"{TEMPLATE} names a managed policy by its name: give its ARN "
            "(arn:${AWS::Partition}:iam::aws:policy/...) so the release can run offline"
        )


def apply_transform(template):
    """The SAM transform, offline. Pseudo parameters get stand-ins that must not
    show in the result (the template is for every region and partition)."""
    from samtranslator.translator.transform import transform

    given_arns = _arns_with_partition(template)  # the transform changes its input
    # samtranslator asks boto3 for a region before it looks at the stand-ins.
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        out = transform(
            template,
            {"AWS::Region": SENTINEL_REGION, "AWS::Partition": SENTINEL_PARTITION},
            _NoManagedPolicies(),
        )
    except Failure:
        raise
    except Exception as e:  # samtranslator's InvalidDocumentException and kin
        causes = getattr(e, "causes", None)
        detail = "; ".join(str(c) for c in causes) if causes else str(e)
        raise Failure(f"the SAM transform of {TEMPLATE} failed: {detail}") from e
    finally:
        if saved is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved
    text = json.dumps(out)
    for sentinel in (SENTINEL_REGION, SENTINEL_PARTITION):
        if sentinel in text:
            raise Failure(
                f"the SAM transform wrote a region or partition into the template ({sentinel}); "
                "it must stay ${AWS::Region} / ${AWS::Partition}"
            )
    # Some ARNs the transform writes itself, with the partition of the region it
    # runs in (the role it creates for a function without one, and that role's
    # managed policies).
    written = sorted(_arns_with_partition(out) - given_arns)
    if written:
        raise Failure(
            f"the SAM transform wrote ARNs with a fixed partition: {', '.join(written)}; "
            f"give them in {TEMPLATE} with ${{AWS::Partition}} (e.g. a Role for each function)"
        )
    return out


def _arns_with_partition(node):
    """The strings in a template that hold an ARN of the partition `aws`."""
    if isinstance(node, dict):
        return set().union(*(_arns_with_partition(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_arns_with_partition(v) for v in node))
    return {node} if isinstance(node, str) and "arn:aws:" in node else set()


def compact_definitions(template):
    """SAM writes a state machine's definition as an Fn::Join of pretty-printed
    lines; when every line is literal, one compact JSON string says the same in a
    third of the bytes (the template must stay under TEMPLATE_BODY_LIMIT)."""
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties", {})
        join = props.get("DefinitionString", {})
        if not isinstance(join, dict) or list(join) != ["Fn::Join"]:
            continue
        separator, parts = join["Fn::Join"]
        if not all(isinstance(p, str) for p in parts):
            continue
        definition = json.loads(separator.join(parts))
        props["DefinitionString"] = json.dumps(definition, separators=(",", ":"))


def release_template(template, bucket, version, binaries, key_arch):
    """template.yaml (parsed) → the published template (a dict)."""
    template = copy.deepcopy(template)
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for name, binary in binaries.items():
        resource = template["Resources"][name]
        # Build metadata for sam build; meaningless in the release.
        resource.pop("Metadata", None)
        key = f"{version}/{key_arch}/{binary}.zip"
        resource["Properties"]["CodeUri"] = {
            "Bucket": {"Fn::Sub": f"{bucket}-${{AWS::Region}}"},
            "Key": {"Fn::Sub": key} if "${" in key else key,
        }
    description = template.get("Description", "AlertResponder")
    template["Description"] = f"AlertResponder {version}: " + description.removeprefix("AlertResponder: ")
    out = apply_transform(template)
    compact_definitions(out)
    left = [n for n, r in out["Resources"].items() if r.get("Type", "").startswith("AWS::Serverless::")]
    if "Transform" in out or left:
        raise Failure(f"the transform left SAM in the template: {', '.join(left) or 'Transform'}")
    return out


def build(archs, binaries, zips_from, dist):
    """The zips, laid out as dist/<version>/<arch>/<binary>.zip (dist is the
    version's directory, replaced whole once every zip is there)."""
    staging = dist + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for arch in archs:
            if zips_from is None:
                command = [os.environ.get("MAKE", "make"), "--no-print-directory", "build", f"ARCH={arch}"]
                print(shlex.join(command), flush=True)
                subprocess.run(command, cwd=ROOT, check=True)
                source = os.path.join(ROOT, "target", "lambda")
            else:
                source = zips_from
            os.makedirs(os.path.join(staging, arch))
            for binary in sorted(set(binaries.values())):
                zip_path = os.path.join(source, binary, "bootstrap.zip")
                if not os.path.isfile(zip_path):
                    raise Failure(f"{zip_path} is missing: is {binary} in LAMBDA_BINARIES of the Makefile?")
                shutil.copyfile(zip_path, os.path.join(staging, arch, f"{binary}.zip"))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(dist, ignore_errors=True)
    os.rename(staging, dist)


def upload_command(dist_rel, bucket, version, regions):
    """One shell command that uploads the zips to every region's bucket."""
    regions = " ".join(regions)
    return (
        f"for region in {regions}; do aws s3 sync {shlex.quote(dist_rel)} "
        f'"s3://{bucket}-$region/{version}" --region "$region"; done'
    )


def release(args):
    check_arguments(args.version, args.bucket, args.arch, args.region)
    template_path = os.path.join(ROOT, args.template)
    template = load_template(template_path)
    binaries = function_binaries(template)
    key_arch = code_key_arch(template, binaries, args.arch)
    published = release_template(template, args.bucket, args.version, binaries, key_arch)
    text = dump_template(published)
    size = len(text.encode())
    if size > TEMPLATE_BODY_LIMIT:
        raise Failure(
            f"the released template has {size} bytes; `aws cloudformation deploy "
            f"--template-file` takes at most {TEMPLATE_BODY_LIMIT} without an S3 bucket"
        )

    dist = os.path.join(ROOT, args.dist)
    build(args.arch, binaries, args.zips_from, os.path.join(dist, args.version))
    os.makedirs(dist, exist_ok=True)
    with open(os.path.join(dist, RELEASED), "w", encoding="utf-8") as f:
        f.write(text)

    rel = os.path.relpath(dist, os.getcwd())
    print(f"\n{rel}/{RELEASED}: {len(binaries)} functions, {', '.join(args.arch)}, {size} bytes")
    print(f"{rel}/{args.version}/: {len(args.arch) * len(set(binaries.values()))} zips")
    print(
        f"\nUpload the code to each region's bucket {args.bucket}-<region> (readable by the "
        "accounts that deploy), then publish the template:"
    )
    print(upload_command(os.path.join(rel, args.version), args.bucket, args.version, args.region))
    print("\nDeploy (in one of those regions):")
    print(
        f"aws cloudformation deploy --template-file {RELEASED} --stack-name alertresponder "
        "--capabilities CAPABILITY_IAM"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="x.y.z")
    parser.add_argument("--bucket", required=True, help="code buckets are <bucket>-<region>")
    parser.add_argument(
        "--arch", action="append", choices=ARCHITECTURES,
        help="an architecture to build (repeat for more; default x86_64)",
    )
    parser.add_argument(
        "--region", action="append",
        help="a region the upload command serves (repeat for more; default us-east-1)",
    )
    parser.add_argument("--template", default=TEMPLATE)
    parser.add_argument("--dist", default=DIST, help="output directory, relative to the repository")
    parser.add_argument(
        "--zips-from", metavar="DIR",
        help="take DIR/<binary>/bootstrap.zip instead of building (tests only)",
    )
    args = parser.parse_args(argv)
    # Order kept, duplicates dropped.
    args.arch = list(dict.fromkeys(args.arch or ["x86_64"]))
    args.region = list(dict.fromkeys(args.region or ["us-east-1"]))
    try:
        release(args)
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(f"error: {shlex.join(e.cmd)} failed (exit {e.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
