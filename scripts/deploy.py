#!/usr/bin/env python3
"""Deploy AlertResponder to AWS, and the checks around it. Run by the Makefile
with the venv's Python (it needs PyYAML, which cfn-lint brings).

    deploy.py deploy [--config config.json] [--dry-run] [--account ID]
        sam build, check the build, upload the configuration bundle (Config: the
        alertresponder.toml whose plugin sections the functions read, and the files
        it names) to s3://CodeS3Bucket/CodeS3Prefix/config/<sha256>/, aws
        cloudformation package, aws cloudformation deploy, with the parameters of
        config.json and those the bundle implies (ConfigBucket, ConfigPrefix,
        SecretArns, AwsInspector, ConfigInspectors, ConfigEmitters, the functions it
        names). --dry-run prints the commands (one per line, shell-quoted) and runs
        nothing but the configuration's plan (`alertresponder check --runtime aws
        --plan --config FILE`; $ALERTRESPONDER_PLAN_COMMAND replaces the command
        before `--config FILE`). The
        account (for a secret named by its name) comes from `aws sts
        get-caller-identity` unless --account is given.
    deploy.py check-build [--build-dir .aws-sam/build] [--template template.yaml]
        fail unless `sam build` left a bootstrap for every function of the template
        (tester/template.yaml: --build-dir .aws-sam/tester-build).
    deploy.py test-stacks [--config tester/config.json] [--dry-run] [--account ID]
        for the integration tests of tester/: deploy the main stack MainStackName
        with short delays and the tester's functions as its inspector and
        reviewer, then the tester stack TesterStackName (tester/template.yaml).
        The account comes from `aws sts get-caller-identity` unless --account is
        given; a dry run without --account calls nothing and uses 123456789012.
    deploy.py teardown-test-stacks [--config tester/config.json] [--dry-run]
        delete the tester stack, then the main stack; print (not run) the
        commands that delete the main stack's tables, which are retained.
    deploy.py lint-state-machine
        cfn-lint the delay state machine's definition (cfn-lint skips a definition
        inside AWS::Serverless::StateMachine).

Config values never pass through a shell: commands are argument lists.
"""

import argparse
import hashlib
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
DEPLOY_KEYS = {"StackName", "Region", "CodeS3Bucket", "CodeS3Prefix", "Config"}
# Template parameters deploy derives from the configuration bundle: never given in
# config.json.
BUNDLE_PARAMETERS = (
    "ConfigBucket", "ConfigPrefix", "ConfigInspectors", "ConfigEmitters", "SecretArns", "AwsInspector",
)
# Keys of older config.json files, and where their content goes now.
MOVED_KEYS = {
    "Policy": "the policy is the configuration file's [reviewer] policy = \"file.rego\" (Config)",
    "PolicyFile": "the policy is the configuration file's [reviewer] policy = \"file.rego\" (Config)",
    "WebhookUrl": "a webhook is an [[emitter]] of the configuration file (Config), "
                  "its URL a secret: url = { secret = \"name\" }",
}
# The configuration file's name in the bundle (its files keep their paths relative to it).
BUNDLE_CONFIG_NAME = "alertresponder.toml"
# The plan of a configuration: what to upload, which secrets and functions it names.
PLAN_COMMAND = ["cargo", "run", "-q", "-p", "alertresponder", "--features", "aws", "--",
                "check", "--runtime", "aws", "--plan"]
# A Secrets Manager secret's name (an ARN is taken as given).
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
# CloudFormation's rule for a stack name; the main stack's names fit any of them.
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# The tester stack names its functions "<stack>-inspector" and "<stack>-reviewer",
# so that the main stack can be given their ARNs before they exist; Lambda allows
# 64 characters.
TESTER_FUNCTION_SUFFIXES = ("inspector", "reviewer")
TESTER_STACK_MAX = 64 - 1 - max(len(s) for s in TESTER_FUNCTION_SUFFIXES)
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
            '(see README.md, "Deploy to AWS")'
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


def plan(config_path, account=None, dry_run=False):
    """The commands `deploy` runs, as argument lists (CheckBuild: the build check)."""
    config = load_config(config_path)
    return main_stack_commands(
        config, config_path, os.path.dirname(os.path.abspath(config_path)),
        account=account, dry_run=dry_run,
    )


# ---------------------------------------------------------------- configuration bundle


def config_plan(config_file):
    """`alertresponder check --runtime aws --plan --config FILE`: the configuration checked
    (every built-in's keys, every secret reference), and what deploying it needs."""
    command = shlex.split(os.environ["ALERTRESPONDER_PLAN_COMMAND"]) \
        if os.environ.get("ALERTRESPONDER_PLAN_COMMAND") else list(PLAN_COMMAND)
    command += ["--config", config_file]
    print(shlex.join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"the configuration {config_file} does not pass the check:\n{result.stderr.strip()}")
    try:
        planned = json.loads(result.stdout)
        files = planned.get("files", [])
        secrets = planned.get("secrets", [])
        functions = planned.get("functions", {})
        inspectors = int(planned.get("inspectors", 0))
        emitters = int(planned.get("emitters", 0))
        kinds = planned.get("kinds", [])
        ok = (
            all(isinstance(x, str) for x in files + secrets + kinds)
            and isinstance(functions, dict)
            and all(isinstance(f, str) for k in ("inspectors", "reviewers") for f in functions.get(k, []))
        )
    except (ValueError, TypeError, AttributeError) as e:
        raise Failure(f"unexpected output of {shlex.join(command)}: {result.stdout[:300]!r}") from e
    if not ok:
        raise Failure(f"unexpected output of {shlex.join(command)}: {result.stdout[:300]!r}")
    return {
        "files": files, "secrets": secrets, "kinds": kinds,
        "inspector_functions": list(functions.get("inspectors", [])),
        "reviewer_functions": list(functions.get("reviewers", [])),
        "inspectors": inspectors, "emitters": emitters,
    }


def bundle(config_file, files, source):
    """The bundle: [(path in the bundle, local path)], the configuration file first
    (as alertresponder.toml), then each file it names at its path relative to it.
    A file outside the configuration's directory is refused: the functions read
    the bundle as one directory."""
    base = os.path.realpath(os.path.dirname(os.path.abspath(config_file)))
    entries = [(BUNDLE_CONFIG_NAME, os.path.abspath(config_file))]
    for name in files:
        local = os.path.realpath(os.path.join(base, name))
        relative = os.path.relpath(local, base)
        if os.path.isabs(name) or relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise Failure(
                f"{source}: the configuration names {name!r}, outside its directory {base}: "
                "put the files it reads beside it (or below), so that they travel with it"
            )
        relative = relative.replace(os.sep, "/")
        if relative == BUNDLE_CONFIG_NAME:
            raise Failure(f"{source}: the configuration names a file {name!r}, the name the bundle gives the configuration itself")
        if not os.path.isfile(local):
            raise Failure(f"{source}: the configuration names {name!r}, which is not a file")
        if all(relative != r for r, _ in entries):
            entries.append((relative, local))
    return entries


def bundle_digest(entries):
    """The SHA-256 of a bundle: of each path and content, in path order."""
    digest = hashlib.sha256()
    for relative, local in sorted(entries):
        with open(local, "rb") as f:
            content = f.read()
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def secret_arns(secrets, partition, region, account):
    """The ARNs the functions may read: an ARN as given, a name as
    arn:…:secret:NAME-?????? (Secrets Manager appends six characters to a name)."""
    arns = []
    for secret in secrets:
        if secret.startswith("arn:"):
            arn = secret
        elif SECRET_NAME.match(secret):
            arn = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secret}-??????"
        else:
            raise Failure(f"the configuration names the secret {secret!r}, not a Secrets Manager name or ARN")
        if arn not in arns:
            arns.append(arn)
    return arns


def bundle_steps(config, source, base_dir, region, bucket, prefix, account, dry_run):
    """The upload commands and the parameters the configuration file implies."""
    config_file = config.get("Config") or ""
    if not config_file:
        return [], {}
    if not isinstance(config_file, str):
        raise Failure(f"{source}: Config must be a path (to alertresponder.toml)")
    path = os.path.join(base_dir, config_file)
    if not os.path.isfile(path):
        raise Failure(f"{source}: Config {config_file!r}: no such file")
    planned = config_plan(path)
    entries = bundle(path, planned["files"], source)
    key_prefix = f"{prefix.strip('/')}/config/{bundle_digest(entries)}" if prefix.strip("/") \
        else f"config/{bundle_digest(entries)}"
    uploads = [
        ["aws", "s3", "cp", "--region", region, "--only-show-errors", local,
         f"s3://{bucket}/{key_prefix}/{relative}"]
        for relative, local in entries
    ]
    arns = []
    if planned["secrets"]:
        if any(not s.startswith("arn:") for s in planned["secrets"]) and account is None:
            if dry_run:
                account = DRY_RUN_ACCOUNT
            else:
                _, account = caller_account(region)
        arns = secret_arns(planned["secrets"], partition_of_region(region), region, account or DRY_RUN_ACCOUNT)
    parameters = {
        "ConfigBucket": bucket,
        "ConfigPrefix": key_prefix,
        "ConfigInspectors": str(planned["inspectors"]),
        "ConfigEmitters": str(planned["emitters"]),
        "SecretArns": ",".join(arns),
        "AwsInspector": "enabled" if "aws" in planned["kinds"] else "disabled",
    }
    functions = {
        "InspectorFunctions": planned["inspector_functions"],
        "ReviewerFunctions": planned["reviewer_functions"],
    }
    return uploads, (parameters, functions)


def main_stack_commands(config, source, base_dir, account=None, dry_run=False):
    """Validate a config of the main stack (keys of config.example.json; `source`
    names it in messages, Config is relative to base_dir) and return the commands
    that build, check, upload the configuration bundle, package and deploy
    template.yaml with it."""
    template = load_template()
    parameters = template.get("Parameters", {})

    for key, where in MOVED_KEYS.items():
        if key in config:
            raise Failure(f"{source}: {key} is no longer a key of config.json: {where}")
    for key in BUNDLE_PARAMETERS:
        if key in config:
            raise Failure(f"{source}: {key} is set by deploy from the configuration file (Config)")
    known = DEPLOY_KEYS | set(parameters) - set(BUNDLE_PARAMETERS)
    unknown = sorted(set(config) - known)
    if unknown:
        raise Failure(
            f"{source}: unknown key(s) {', '.join(unknown)}; known: " + ", ".join(sorted(known))
        )
    for key in ("StackName", "Region", "CodeS3Bucket"):
        require_string(config, key, source)
    stack, region, bucket = config["StackName"], config["Region"], config["CodeS3Bucket"]
    check_stack_name(stack, "StackName", source)
    check_region(region, source)
    prefix = code_prefix(config, stack, source)

    values = parameter_values(parameters, config)
    arch = values.get("Architecture", "x86_64")
    check_architecture(arch, parameters, source)

    uploads, implied = bundle_steps(config, source, base_dir, region, bucket, prefix, account, dry_run)
    if implied:
        bundle_parameters, functions = implied
        values.update(bundle_parameters)
        # The functions the file names, beside those config.json lists (each once):
        # the stack grants lambda:InvokeFunction on exactly these.
        for key, named in functions.items():
            listed = [f for f in values.get(key, "").split(",") if f]
            values[key] = ",".join(listed + [f for f in named if f not in listed])

    commands = stack_commands(
        template=TEMPLATE, build_dir=BUILD_DIR, packaged=PACKAGED, region=region,
        bucket=bucket, prefix=prefix, stack=stack, arch=arch, values=values,
    )
    # The bundle is uploaded before the stack that reads it is deployed.
    return commands[:2] + uploads + commands[2:]


def require_string(config, key, source):
    if not isinstance(config.get(key), str) or not config[key]:
        raise Failure(f"{source}: {key} is required")


def check_stack_name(stack, key, source, max_length=128, why=""):
    if not STACK_NAME.match(stack) or len(stack) > max_length:
        raise Failure(
            f"{source}: {key} {stack!r}: letters, digits and '-', starting with "
            f"a letter, at most {max_length} characters{why}"
        )


def check_region(region, source):
    if not REGION.match(region):
        raise Failure(f"{source}: Region {region!r} is not a region name like eu-west-1")


def check_architecture(arch, parameters, source):
    if arch not in parameters["Architecture"]["AllowedValues"]:
        raise Failure(f"{source}: Architecture {arch!r}: x86_64 or arm64")


def code_prefix(config, stack, source):
    prefix = config.get("CodeS3Prefix") or stack
    if not isinstance(prefix, str):
        raise Failure(f"{source}: CodeS3Prefix must be a string")
    return prefix


def parameter_values(parameters, config, exclude=()):
    """A value for every template parameter: from config, else the template default.
    Every parameter is given, so the config alone decides (deploy would otherwise
    keep the previous value of a key removed from it)."""
    values = {}
    for name, spec in parameters.items():
        if name in exclude:
            continue
        if name in config:
            values[name] = parameter_value(name, config[name])
        else:
            default = spec.get("Default", "")
            values[name] = default if isinstance(default, str) else str(default)
    return values


class CheckBuild:
    """The step `check-build` of a command list: run in-process, printed in a dry run."""

    def __init__(self, build_dir=BUILD_DIR, template=TEMPLATE):
        self.build_dir, self.template = build_dir, template

    def argv(self):
        argv = [sys.executable, "scripts/deploy.py", "check-build"]
        if self.build_dir != BUILD_DIR:
            argv += ["--build-dir", self.build_dir]
        if self.template != TEMPLATE:
            argv += ["--template", self.template]
        return argv

    def run(self):
        check_build(argparse.Namespace(build_dir=self.build_dir, template=self.template))


def stack_commands(*, template, build_dir, packaged, region, bucket, prefix, stack, arch, values):
    """sam build, the build check, aws cloudformation package and deploy of one stack."""
    built = os.path.join(build_dir, "template.yaml")
    return [
        [
            "sam", "build",
            "--template-file", template,
            "--build-dir", build_dir,
            "--parameter-overrides", f"Architecture={arch}",
        ],
        CheckBuild(build_dir, template),
        [
            "aws", "cloudformation", "package",
            "--region", region,
            "--template-file", built,
            "--s3-bucket", bucket,
            "--s3-prefix", prefix,
            "--output-template-file", packaged,
        ],
        [
            "aws", "cloudformation", "deploy",
            "--region", region,
            "--template-file", packaged,
            "--stack-name", stack,
            "--capabilities", "CAPABILITY_IAM",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            *[f"{name}={value}" for name, value in values.items()],
        ],
    ]


def run_commands(commands, dry_run):
    for command in commands:
        if isinstance(command, CheckBuild):
            if dry_run:
                print(shlex.join(command.argv()), flush=True)
            else:
                command.run()
            continue
        print(shlex.join(command), flush=True)
        if not dry_run:
            subprocess.run(command, cwd=ROOT, check=True)


def deploy(args):
    if args.account is not None and not ACCOUNT.match(args.account):
        raise Failure(f"--account {args.account!r}: expected 12 digits")
    run_commands(plan(args.config, args.account, args.dry_run), args.dry_run)


# ---------------------------------------------------------------- test stacks
# The main stack with short delays and the tester stack (tester/template.yaml),
# whose inspector and reviewer it calls, for the integration tests of tester/.

TESTER_TEMPLATE = os.path.join("tester", "template.yaml")
TESTER_BUILD_DIR = os.path.join(".aws-sam", "tester-build")
TESTER_PACKAGED = os.path.join(".aws-sam", "tester-packaged.yaml")
TEST_KEYS = {"Region", "MainStackName", "TesterStackName", "CodeS3Bucket", "CodeS3Prefix", "Architecture"}
# The main stack's parameters for the tests (the others keep their defaults).
TEST_MAIN_PARAMETERS = {
    "InspectionDelay": 5,
    "ReviewDelay": 30,
    "AggregationWindow": 3600,
    "RecordTtlDays": 1,
    "GuardDutyFindings": "disabled",
    "SecurityHubFindings": "disabled",
}
DRY_RUN_ACCOUNT = "123456789012"
ACCOUNT = re.compile(r"^\d{12}$")


def load_test_config(path):
    """tester/config.json, validated: every key of tester/config.example.json."""
    if not os.path.isfile(path):
        raise Failure(
            f"{path} not found: copy tester/config.example.json to {path} and fill it in"
        )
    config = load_config(path)
    unknown = sorted(set(config) - TEST_KEYS)
    if unknown:
        raise Failure(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: " + ", ".join(sorted(TEST_KEYS))
        )
    for key in ("Region", "MainStackName", "TesterStackName", "CodeS3Bucket"):
        require_string(config, key, path)
    check_region(config["Region"], path)
    check_stack_name(config["MainStackName"], "MainStackName", path)
    check_stack_name(
        config["TesterStackName"], "TesterStackName", path, TESTER_STACK_MAX,
        " (its functions are <stack>-inspector and <stack>-reviewer)",
    )
    if config["MainStackName"] == config["TesterStackName"]:
        raise Failure(f"{path}: MainStackName and TesterStackName must differ")
    arch = config.get("Architecture", "x86_64")
    if arch not in ("x86_64", "arm64"):
        raise Failure(f"{path}: Architecture {arch!r}: x86_64 or arm64")
    code_prefix(config, config["MainStackName"], path)
    return config


def partition_of_region(region):
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def caller_account(region):
    """(partition, account) of the caller's credentials, from aws sts."""
    command = ["aws", "sts", "get-caller-identity", "--region", region, "--output", "json"]
    print(shlex.join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    try:
        identity = json.loads(result.stdout)
        arn, account = identity["Arn"], identity["Account"]
        partition = arn.split(":")[1]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise Failure(f"unexpected output of {shlex.join(command)}: {result.stdout!r}") from e
    if not ACCOUNT.match(account) or not partition.startswith("aws"):
        raise Failure(f"unexpected output of {shlex.join(command)}: {result.stdout!r}")
    return partition, account


def plan_test_stacks(config_path, account=None, dry_run=False):
    """The commands `test-stacks` runs: the main stack, then the tester stack."""
    config = load_test_config(config_path)
    region = config["Region"]
    main_stack, tester_stack = config["MainStackName"], config["TesterStackName"]
    arch = config.get("Architecture", "x86_64")
    if account is not None:
        if not ACCOUNT.match(account):
            raise Failure(f"--account {account!r}: expected 12 digits")
        partition = partition_of_region(region)
    elif dry_run:
        partition, account = "aws", DRY_RUN_ACCOUNT
        print(
            f"dry run: account {account} and partition {partition} stand in for the caller's "
            "(aws sts get-caller-identity is not run; give --account to set it)",
            file=sys.stderr,
        )
    else:
        partition, account = caller_account(region)

    def function_arn(name):
        return f"arn:{partition}:lambda:{region}:{account}:function:{tester_stack}-{name}"

    main_config = {
        "StackName": main_stack,
        "Region": region,
        "CodeS3Bucket": config["CodeS3Bucket"],
        "CodeS3Prefix": config.get("CodeS3Prefix") or main_stack,
        "Architecture": arch,
        **TEST_MAIN_PARAMETERS,
        "InspectorFunctions": [function_arn("inspector")],
        "ReviewerFunctions": [function_arn("reviewer")],
        # No Config: no configuration bundle (the tester's functions are the plugins).
    }
    commands = main_stack_commands(main_config, config_path, os.path.dirname(os.path.abspath(config_path)))

    tester_parameters = load_template(os.path.join(ROOT, TESTER_TEMPLATE)).get("Parameters", {})
    values = parameter_values(
        tester_parameters, {"MainStackName": main_stack, "Architecture": arch}
    )
    commands += stack_commands(
        template=TESTER_TEMPLATE, build_dir=TESTER_BUILD_DIR, packaged=TESTER_PACKAGED,
        region=region, bucket=config["CodeS3Bucket"],
        prefix=config.get("CodeS3Prefix") or tester_stack, stack=tester_stack, arch=arch,
        values=values,
    )
    return commands


def deploy_test_stacks(args):
    run_commands(plan_test_stacks(args.config, args.account, args.dry_run), args.dry_run)


def retained_table_outputs():
    """Names of template.yaml's outputs that are a Ref to a DynamoDB table with
    DeletionPolicy Retain: the tables deleting the stack leaves behind."""
    template = load_template()
    resources = template.get("Resources", {})
    names = []
    for name, output in template.get("Outputs", {}).items():
        value = output.get("Value")
        ref = value.get("Ref") if isinstance(value, dict) else None
        resource = resources.get(ref) if isinstance(ref, str) else None
        if (
            resource
            and resource.get("Type") == "AWS::DynamoDB::Table"
            and resource.get("DeletionPolicy") == "Retain"
        ):
            names.append(name)
    return names


def teardown_test_stacks(args):
    config = load_test_config(args.config)
    region = config["Region"]
    main_stack, tester_stack = config["MainStackName"], config["TesterStackName"]
    retained = retained_table_outputs()

    # The table names are outputs of the main stack: read them before deleting it.
    describe = [
        "aws", "cloudformation", "describe-stacks",
        "--region", region,
        "--stack-name", main_stack,
        "--output", "json",
    ]
    print(shlex.join(describe), flush=True)
    tables = {}
    main_exists = True
    if args.dry_run:
        tables = {name: f"<{name} output of {main_stack}>" for name in retained}
    else:
        result = subprocess.run(describe, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            if "does not exist" not in result.stderr:
                raise Failure(f"{shlex.join(describe)} failed:\n{result.stderr}")
            main_exists = False
            print(f"stack {main_stack} does not exist", file=sys.stderr)
        else:
            try:
                outputs = json.loads(result.stdout)["Stacks"][0].get("Outputs", [])
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise Failure(f"unexpected output of {shlex.join(describe)}") from e
            found = {o.get("OutputKey"): o.get("OutputValue") for o in outputs}
            tables = {name: found[name] for name in retained if found.get(name)}

    # The tester stack first: it imports the main stack's exports.
    for stack in (tester_stack, main_stack):
        if stack == main_stack and not main_exists:
            continue
        run_commands(
            [
                ["aws", "cloudformation", "delete-stack", "--region", region, "--stack-name", stack],
                ["aws", "cloudformation", "wait", "stack-delete-complete",
                 "--region", region, "--stack-name", stack],
            ],
            args.dry_run,
        )

    if tables:
        print(
            f"\n# Not run: the tables of {main_stack} are kept (DeletionPolicy: Retain in "
            f"{TEMPLATE}). To delete them:"
        )
        for name in retained:
            if name in tables:
                print(shlex.join(
                    ["aws", "dynamodb", "delete-table", "--region", region, "--table-name", tables[name]]
                ))


# ---------------------------------------------------------------- checks


def check_build(args):
    build_dir = os.path.join(ROOT, args.build_dir)
    if not os.path.isfile(os.path.join(build_dir, "template.yaml")):
        raise Failure(f"{args.build_dir}/template.yaml is missing: did `sam build` run?")
    template = getattr(args, "template", None) or TEMPLATE
    names = functions(load_template(os.path.join(ROOT, template)))
    missing = [
        name
        for name in names
        if not os.access(os.path.join(build_dir, name, "bootstrap"), os.X_OK)
    ]
    if missing:
        raise Failure(
            "sam build left no executable bootstrap for: "
            + ", ".join(f"{args.build_dir}/{name}/bootstrap" for name in missing)
        )
    print(f"sam build: a bootstrap for each of the {len(names)} functions of {template}")


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
        given = props.get("DefinitionSubstitutions", {})
        # The partition is written into the definition as CloudFormation would in
        # the aws partition: cfn-lint checks a Task's Resource against a pattern
        # before any substitution.
        partitions = [key for key, value in given.items() if value == {"Ref": "AWS::Partition"}]
        definition = json.dumps(props["Definition"])
        for key in partitions:
            definition = definition.replace("${" + key + "}", "aws")
        substitutions = {
            key: f"arn:aws:lambda:us-east-1:123456789012:function:{key}"
            if key.endswith("Arn") and "Topic" not in key
            else f"arn:aws:sns:us-east-1:123456789012:{key}"
            for key in given
            if key not in partitions
        }
        resources[name] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "Definition": json.loads(definition),
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
    p.add_argument("--account", help="the AWS account ID, for secrets named by name (default: aws sts)")
    p.set_defaults(run=deploy)
    p = sub.add_parser("check-build", help="a bootstrap for every function after sam build")
    p.add_argument("--build-dir", default=BUILD_DIR)
    p.add_argument("--template", default=TEMPLATE, help="the template sam build built")
    p.set_defaults(run=check_build)
    p = sub.add_parser(
        "test-stacks", help="deploy the main stack for tests, then the tester stack"
    )
    p.add_argument("--config", default=os.path.join("tester", "config.json"))
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--account", help="the AWS account ID (default: aws sts get-caller-identity)")
    p.set_defaults(run=deploy_test_stacks)
    p = sub.add_parser(
        "teardown-test-stacks", help="delete the tester stack, then the main stack for tests"
    )
    p.add_argument("--config", default=os.path.join("tester", "config.json"))
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.set_defaults(run=teardown_test_stacks)
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
