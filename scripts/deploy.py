#!/usr/bin/env python3
"""Deploy AlertResponder to AWS, and the checks around it. Run by the Makefile
with the venv's Python (it needs PyYAML, which cfn-lint brings).

    deploy.py deploy [--config config.json] [--dry-run]
        sam build, check the build, aws cloudformation package, aws cloudformation
        deploy, with the parameters of config.json. --dry-run prints the commands
        (one per line, shell-quoted) and runs nothing.
    deploy.py check-build [--build-dir .aws-sam/build]
        fail unless `sam build` left a bootstrap for every function of template.yaml.
    deploy.py lint-state-machine
        cfn-lint the delay state machine's definition (cfn-lint skips a definition
        inside AWS::Serverless::StateMachine).

Config values never pass through a shell: commands are argument lists.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "template.yaml"
BUILD_DIR = os.path.join(".aws-sam", "build")
PACKAGED = os.path.join(".aws-sam", "packaged.yaml")

# Keys of config.json that are not template parameters.
DEPLOY_KEYS = {"StackName", "Region", "CodeS3Bucket", "CodeS3Prefix", "PolicyFile"}
# Lambda keeps all of a function's environment in 4 KB; the reviewer invoker
# carries the policy and the reviewer list.
ENV_LIMIT_BYTES = 4096 - 200
# Function names are "<stack>-inspector-harness" and Lambda allows 64 characters.
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,45}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class Failure(Exception):
    """A problem the user can fix; printed without a traceback."""


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short tags (!Ref, !Sub …) become {"Tag": value}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_Loader.add_multi_constructor("!", _tag)


def load_template(path=None):
    with open(path or os.path.join(ROOT, TEMPLATE), encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)


def functions(template):
    """Logical IDs of the template's Lambda functions, in template order."""
    return [
        name
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]


# ---------------------------------------------------------------- deploy


def load_config(path):
    if not os.path.isfile(path):
        raise Failure(
            f"{path} not found: copy config.example.json to {path} and fill it in "
            "(see docs/deploy-aws.md)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise Failure(f"{path}: not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise Failure(f"{path}: expected a JSON object")
    return config


def parameter_value(key, value):
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise Failure(f"config {key}: expected a string, a number or a list of strings")
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise Failure(f"config {key}: expected a list of strings")
        return ",".join(v.strip() for v in value)
    return str(value)


def plan(config_path):
    """The commands `deploy` runs, as argument lists (None: the build check)."""
    config = load_config(config_path)
    template = load_template()
    parameters = template.get("Parameters", {})

    unknown = sorted(set(config) - DEPLOY_KEYS - set(parameters) - {"Policy"})
    if unknown:
        raise Failure(
            f"{config_path}: unknown key(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(DEPLOY_KEYS | set(parameters) - {"Policy"}))
        )
    if "Policy" in config:
        raise Failure(f"{config_path}: give the policy as PolicyFile (a path to a .rego file)")
    for key in ("StackName", "Region", "CodeS3Bucket"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise Failure(f"{config_path}: {key} is required")
    stack, region, bucket = config["StackName"], config["Region"], config["CodeS3Bucket"]
    if not STACK_NAME.match(stack):
        raise Failure(
            f"{config_path}: StackName {stack!r}: letters, digits and '-', starting with "
            "a letter, at most 46 characters (function names are <stack>-<binary>)"
        )
    if not REGION.match(region):
        raise Failure(f"{config_path}: Region {region!r} is not a region name like eu-west-1")
    prefix = config.get("CodeS3Prefix") or stack
    if not isinstance(prefix, str):
        raise Failure(f"{config_path}: CodeS3Prefix must be a string")

    values = {}
    for name, spec in parameters.items():
        if name == "Policy":
            continue
        if name in config:
            values[name] = parameter_value(name, config[name])
        else:
            # Every parameter is given, so config.json alone decides (deploy would
            # otherwise keep the previous value of a key removed from it).
            default = spec.get("Default", "")
            values[name] = default if isinstance(default, str) else str(default)
    arch = values.get("Architecture", "x86_64")
    if arch not in parameters["Architecture"]["AllowedValues"]:
        raise Failure(f"{config_path}: Architecture {arch!r}: x86_64 or arm64")

    policy = ""
    policy_file = config.get("PolicyFile") or ""
    if policy_file:
        base = os.path.dirname(os.path.abspath(config_path))
        path = os.path.join(base, policy_file)
        try:
            with open(path, encoding="utf-8") as f:
                policy = f.read()
        except OSError as e:
            raise Failure(f"{config_path}: PolicyFile {policy_file!r}: {e.strerror}") from e
    env_bytes = len(policy.encode()) + len(values.get("ReviewerFunctions", "").encode())
    if env_bytes > ENV_LIMIT_BYTES:
        raise Failure(
            f"{config_path}: the policy ({len(policy.encode())} bytes) and ReviewerFunctions "
            f"together exceed {ENV_LIMIT_BYTES} bytes; Lambda keeps a function's whole "
            "environment in 4 KB: shorten the policy"
        )
    max_policy = int(parameters["Policy"].get("MaxLength", 4096))
    if len(policy) > max_policy:
        raise Failure(
            f"{config_path}: the policy is {len(policy)} characters; the Policy parameter "
            f"allows {max_policy}"
        )
    values["Policy"] = policy

    built = os.path.join(BUILD_DIR, "template.yaml")
    return [
        [
            "sam", "build",
            "--template-file", TEMPLATE,
            "--build-dir", BUILD_DIR,
            "--parameter-overrides", f"Architecture={arch}",
        ],
        None,
        [
            "aws", "cloudformation", "package",
            "--region", region,
            "--template-file", built,
            "--s3-bucket", bucket,
            "--s3-prefix", prefix,
            "--output-template-file", PACKAGED,
        ],
        [
            "aws", "cloudformation", "deploy",
            "--region", region,
            "--template-file", PACKAGED,
            "--stack-name", stack,
            "--capabilities", "CAPABILITY_IAM",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            *[f"{name}={value}" for name, value in values.items()],
        ],
    ]


def deploy(args):
    commands = plan(args.config)
    for command in commands:
        if command is None:
            if args.dry_run:
                print(shlex.join([sys.executable, "scripts/deploy.py", "check-build"]))
            else:
                check_build(argparse.Namespace(build_dir=BUILD_DIR))
            continue
        print(shlex.join(command), flush=True)
        if not args.dry_run:
            subprocess.run(command, cwd=ROOT, check=True)


# ---------------------------------------------------------------- checks


def check_build(args):
    build_dir = os.path.join(ROOT, args.build_dir)
    if not os.path.isfile(os.path.join(build_dir, "template.yaml")):
        raise Failure(f"{args.build_dir}/template.yaml is missing: did `sam build` run?")
    missing = [
        name
        for name in functions(load_template())
        if not os.access(os.path.join(build_dir, name, "bootstrap"), os.X_OK)
    ]
    if missing:
        raise Failure(
            "sam build left no executable bootstrap for: "
            + ", ".join(f"{args.build_dir}/{name}/bootstrap" for name in missing)
        )
    print(f"sam build: a bootstrap for each of the {len(functions(load_template()))} functions")


def lint_state_machine(_args):
    """cfn-lint validates a definition of AWS::StepFunctions::StateMachine, not
    one inside AWS::Serverless::StateMachine: lint it as the former."""
    template = load_template()
    machines = [
        (name, r)
        for name, r in template["Resources"].items()
        if r.get("Type") == "AWS::Serverless::StateMachine"
    ]
    if not machines:
        raise Failure("template.yaml has no AWS::Serverless::StateMachine")
    resources = {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }],
                }
            },
        }
    }
    for name, machine in machines:
        props = machine["Properties"]
        substitutions = {
            key: f"arn:aws:lambda:us-east-1:123456789012:function:{key}"
            if key.endswith("Arn") and "Topic" not in key
            else f"arn:aws:sns:us-east-1:123456789012:{key}"
            for key in props.get("DefinitionSubstitutions", {})
        }
        resources[name] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "Definition": props["Definition"],
                "DefinitionSubstitutions": substitutions,
            },
        }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, f)
    try:
        result = subprocess.run(["cfn-lint", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if result.returncode != 0:
        raise Failure("the state machine definition fails cfn-lint:\n" + result.stdout + result.stderr)
    print(f"state machine definition(s) {', '.join(n for n, _ in machines)}: cfn-lint clean")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("deploy", help="build, package and deploy the stack")
    p.add_argument("--config", default="config.json")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.set_defaults(run=deploy)
    p = sub.add_parser("check-build", help="a bootstrap for every function after sam build")
    p.add_argument("--build-dir", default=BUILD_DIR)
    p.set_defaults(run=check_build)
    p = sub.add_parser("lint-state-machine", help="cfn-lint the state machine definition")
    p.set_defaults(run=lint_state_machine)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(f"error: {shlex.join(e.cmd)} failed (exit {e.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
