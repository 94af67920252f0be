#!/usr/bin/env python3
"""Tests of scripts/deploy.py: the commands `make deploy-dry` prints for a
sample config, and the config mistakes it refuses; the same for the test stacks
(test-stacks, teardown-test-stacks). Run: .venv/bin/python scripts/deploy_test.py"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(HERE, "deploy.py")

# Characters a shell would act on: they must arrive in the argument unchanged.
POLICY = 'package alertresponder.review\n# $(touch /tmp/pwned) `id` ; | & "quoted" \'single\'\nresult := {"severity": "urgent", "reason": "x"}\n'

# Stands in for `alertresponder check --runtime aws --plan --config FILE`: records its argv in
# $FAKE_PLAN_LOG and prints $FAKE_PLAN (or fails with $FAKE_PLAN_ERROR).
FAKE_PLAN = """import json, os, sys
with open(os.environ["FAKE_PLAN_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_PLAN_ERROR"):
    sys.stderr.write(os.environ["FAKE_PLAN_ERROR"])
    sys.exit(1)
sys.stdout.write(os.environ["FAKE_PLAN"])
"""

# The plan of the sample configuration.
PLAN = {
    "files": ["review.rego", "geo/asn.mmdb"],
    "secrets": ["vt-api-key", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:hook-AbCdEf"],
    "functions": {
        "inspectors": ["arn:aws:lambda:eu-west-1:111122223333:function:whois"],
        "reviewers": ["arn:aws:lambda:eu-west-1:111122223333:function:review"],
    },
    "kinds": ["virustotal", "aws"],
    "inspectors": 3,
    "emitters": 1,
}


def write_config(directory, example, values, drop=()):
    """The example config (a path below the repository) with `values` set and the
    keys in `drop` removed, written to directory/config.json; its path."""
    with open(os.path.join(ROOT, example)) as f:
        config = json.load(f)
    config.update(values)
    for key in drop:
        del config[key]
    path = os.path.join(directory, "config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


class DryRun(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        with open(os.path.join(self.dir.name, "review.rego"), "w") as f:
            f.write(POLICY)
        os.mkdir(os.path.join(self.dir.name, "geo"))
        with open(os.path.join(self.dir.name, "geo", "asn.mmdb"), "wb") as f:
            f.write(b"\x00mmdb")
        with open(os.path.join(self.dir.name, "ar.toml"), "w") as f:
            f.write('[reviewer]\npolicy = "review.rego"\n')
        fake = os.path.join(self.dir.name, "fake_plan.py")
        with open(fake, "w") as f:
            f.write(FAKE_PLAN)
        self.plan_log = os.path.join(self.dir.name, "plan.log")
        self.plan = dict(PLAN)
        self.env = dict(
            os.environ,
            ALERTRESPONDER_PLAN_COMMAND=shlex.join([sys.executable, fake]),
            FAKE_PLAN_LOG=self.plan_log,
        )

    def config(self, **overrides):
        values = dict(
            StackName="ar-test",
            Region="eu-west-1",
            CodeS3Bucket="my-bucket",
            CodeS3Prefix="builds/ar",
            Architecture="arm64",
            InspectionDelay=60,
            InspectorFunctions=[
                "arn:aws:lambda:eu-west-1:111122223333:function:intel",
                "arn:aws:lambda:eu-west-1:111122223333:function:users:live",
            ],
            Config="ar.toml",  # relative to the config file
        )
        values.update(overrides)
        return write_config(self.dir.name, "config.example.json", values)

    def run_script(self, config_path, *extra):
        env = dict(self.env, FAKE_PLAN=json.dumps(self.plan))
        return subprocess.run(
            [sys.executable, SCRIPT, "deploy", "--config", config_path, "--dry-run", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
        )

    def commands(self, **overrides):
        result = self.run_script(self.config(**overrides))
        self.assertEqual(result.returncode, 0, result.stderr)
        return [shlex.split(line) for line in split_commands(result.stdout)]

    def test_prints_build_check_package_and_deploy_in_order(self):
        commands = self.commands()
        self.assertEqual(
            commands[0],
            ["sam", "build", "--template-file", "template.yaml", "--build-dir", ".aws-sam/build",
             "--parameter-overrides", "Architecture=arm64"],
        )
        self.assertEqual(commands[1][1:], ["scripts/deploy.py", "check-build"])
        self.assertEqual([c[:3] for c in commands[2:5]], [["aws", "s3", "cp"]] * 3)
        self.assertEqual(
            commands[5],
            ["aws", "cloudformation", "package", "--region", "eu-west-1",
             "--template-file", ".aws-sam/build/template.yaml", "--s3-bucket", "my-bucket",
             "--s3-prefix", "builds/ar", "--output-template-file", ".aws-sam/packaged.yaml"],
        )
        deploy = commands[6]
        overrides = deploy.index("--parameter-overrides")
        self.assertEqual(
            deploy[:overrides],
            ["aws", "cloudformation", "deploy", "--region", "eu-west-1",
             "--template-file", ".aws-sam/packaged.yaml", "--stack-name", "ar-test",
             "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset"],
        )
        self.assertEqual(len(commands), 7)
        # The plan was asked of the configuration file.
        with open(self.plan_log) as f:
            self.assertEqual(json.loads(f.readline()), ["--config", os.path.join(self.dir.name, "ar.toml")])

    def parameters(self, *extra, **overrides):
        result = self.run_script(self.config(**overrides), *extra)
        self.assertEqual(result.returncode, 0, result.stderr)
        deploy = [shlex.split(line) for line in split_commands(result.stdout)][-1]
        return dict(p.split("=", 1) for p in deploy[deploy.index("--parameter-overrides") + 1:])

    def digest(self):
        return deploy_module().bundle_digest([
            ("alertresponder.toml", os.path.join(self.dir.name, "ar.toml")),
            ("review.rego", os.path.join(self.dir.name, "review.rego")),
            ("geo/asn.mmdb", os.path.join(self.dir.name, "geo", "asn.mmdb")),
        ])

    def test_the_bundle_is_uploaded_at_its_paths_under_a_prefix_named_by_its_content(self):
        uploads = self.commands()[2:5]
        prefix = f"s3://my-bucket/builds/ar/config/{self.digest()}"
        self.assertEqual(
            uploads,
            [["aws", "s3", "cp", "--region", "eu-west-1", "--only-show-errors", local, f"{prefix}/{key}"]
             for local, key in [
                 (os.path.join(self.dir.name, "ar.toml"), "alertresponder.toml"),
                 (os.path.join(self.dir.name, "review.rego"), "review.rego"),
                 (os.path.join(self.dir.name, "geo", "asn.mmdb"), "geo/asn.mmdb"),
             ]],
        )
        params = self.parameters()
        self.assertEqual(params["ConfigBucket"], "my-bucket")
        self.assertEqual(params["ConfigPrefix"], f"builds/ar/config/{self.digest()}")
        self.assertRegex(params["ConfigPrefix"], r"^([A-Za-z0-9!_.()-]+/)*config/[0-9a-f]{64}$")
        # A changed file is a new prefix: the stack's parameter changes, the functions
        # read the new configuration at their next cold start.
        before = params["ConfigPrefix"]
        with open(os.path.join(self.dir.name, "review.rego"), "a") as f:
            f.write("# changed\n")
        self.assertNotEqual(self.parameters()["ConfigPrefix"], before)

    def test_the_plan_sets_the_bundle_parameters_and_adds_its_functions(self):
        params = self.parameters("--account", "444455556666")
        self.assertEqual(params["ConfigInspectors"], "3")
        self.assertEqual(params["ConfigEmitters"], "1")
        self.assertEqual(params["AwsInspector"], "enabled")
        self.assertEqual(
            params["InspectorFunctions"],
            "arn:aws:lambda:eu-west-1:111122223333:function:intel,"
            "arn:aws:lambda:eu-west-1:111122223333:function:users:live,"
            "arn:aws:lambda:eu-west-1:111122223333:function:whois",
        )
        self.assertEqual(params["ReviewerFunctions"], "arn:aws:lambda:eu-west-1:111122223333:function:review")
        # A secret's name becomes the ARN pattern of its versions; an ARN stays.
        self.assertEqual(
            params["SecretArns"],
            "arn:aws:secretsmanager:eu-west-1:444455556666:secret:vt-api-key-??????,"
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:hook-AbCdEf",
        )
        self.plan = dict(PLAN, kinds=["dns"], secrets=[], emitters=0)
        params = self.parameters()
        self.assertEqual(params["AwsInspector"], "disabled")
        self.assertEqual(params["SecretArns"], "")
        self.assertEqual(params["ConfigEmitters"], "0")

    def test_secret_names_take_the_partition_of_the_region(self):
        self.plan = dict(PLAN, secrets=["team/vt"])
        params = self.parameters("--account", "444455556666", Region="cn-north-1")
        self.assertEqual(
            params["SecretArns"], "arn:aws-cn:secretsmanager:cn-north-1:444455556666:secret:team/vt-??????"
        )

    def test_files_outside_the_configurations_directory_are_refused(self):
        with open(os.path.join(os.path.dirname(self.dir.name), "outside.rego"), "w"):
            pass
        self.addCleanup(os.unlink, os.path.join(os.path.dirname(self.dir.name), "outside.rego"))
        os.symlink(os.path.join(os.path.dirname(self.dir.name), "outside.rego"),
                   os.path.join(self.dir.name, "link.rego"))
        for named in ["../outside.rego", "/etc/passwd", "geo/../../outside.rego", "link.rego"]:
            self.plan = dict(PLAN, files=[named])
            result = self.run_script(self.config())
            self.assertNotEqual(result.returncode, 0, named)
            self.assertIn("outside its directory", result.stderr, named)
            self.assertNotIn("aws s3 cp", result.stdout, named)
        self.plan = dict(PLAN, files=["absent.mmdb"])
        result = self.run_script(self.config())
        self.assertIn("'absent.mmdb', which is not a file", result.stderr)

    def test_a_configuration_that_fails_its_check_deploys_nothing(self):
        self.env["FAKE_PLAN_ERROR"] = "config ar.toml: inspector[0].api_key: secret vt not found"
        result = self.run_script(self.config())
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("inspector[0].api_key", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_without_a_configuration_file_no_bundle_and_no_plugins(self):
        result = self.run_script(self.config(Config=""))
        self.assertEqual(result.returncode, 0, result.stderr)
        commands = [shlex.split(line) for line in split_commands(result.stdout)]
        self.assertEqual(len(commands), 4)
        self.assertFalse(os.path.exists(self.plan_log))
        params = self.parameters(Config="")
        for key in ("ConfigBucket", "ConfigPrefix", "SecretArns"):
            self.assertEqual(params[key], "", key)
        self.assertEqual(params["ConfigInspectors"], "0")

    def test_every_template_parameter_is_given_from_config_or_default(self):
        deploy = self.commands()[6]
        pairs = deploy[deploy.index("--parameter-overrides") + 1:]
        params = dict(p.split("=", 1) for p in pairs)
        self.assertEqual(params["Architecture"], "arm64")
        self.assertEqual(params["InspectionDelay"], "60")
        self.assertEqual(params["ReviewDelay"], "600")
        self.assertEqual(params["MaxDepth"], "3")  # not in the config: the template default
        self.assertNotIn("Policy", params)
        self.assertNotIn("WebhookUrl", params)
        with open(os.path.join(ROOT, "template.yaml")) as f:
            text = f.read()
        section = text.split("\nParameters:\n", 1)[1].split("\nConditions:\n", 1)[0]
        names = {line.strip().rstrip(":") for line in section.splitlines()
                 if line.startswith("  ") and not line.startswith("    ") and line.strip().endswith(":")}
        self.assertEqual(set(params), names)

    def test_missing_config_says_to_copy_the_example(self):
        result = self.run_script(os.path.join(self.dir.name, "absent.json"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("copy config.example.json", result.stderr)
        self.assertIn('README.md, "Deploy to AWS"', result.stderr)

    def test_a_stack_name_of_128_characters_deploys(self):
        # The template names nothing after the stack that could outgrow its limit
        # (crates/aws/tests/template.rs checks each name for 128 characters).
        stack = "a" + "-b" * 63 + "c"
        self.assertEqual(len(stack), 128)
        deploy = self.commands(StackName=stack)[6]
        self.assertEqual(deploy[deploy.index("--stack-name") + 1], stack)

    def test_refuses_unknown_and_moved_keys_and_long_stack_names(self):
        cases = [
            (dict(InspectionDelays=5), "unknown key(s) InspectionDelays"),
            (dict(StackName="a" * 129), "at most 128 characters"),
            (dict(StackName="1ar"), "starting with a letter"),
            (dict(Region="Ireland"), "not a region name"),
            (dict(CodeS3Bucket=""), "CodeS3Bucket is required"),
            (dict(Architecture="sparc"), "x86_64 or arm64"),
            (dict(InspectorFunctions=[1, 2]), "list of strings"),
            (dict(Config="absent.toml"), "Config 'absent.toml': no such file"),
            (dict(PolicyFile="review.rego"), "[reviewer] policy"),
            (dict(Policy=POLICY), "[reviewer] policy"),
            (dict(WebhookUrl="https://hooks.example.com/x"), "url = { secret"),
            (dict(SecretArns=["arn:aws:secretsmanager:eu-west-1:1:secret:x"]), "set by deploy"),
            (dict(ConfigBucket="other"), "set by deploy"),
        ]
        for overrides, message in cases:
            result = self.run_script(self.config(**overrides))
            self.assertNotEqual(result.returncode, 0, overrides)
            self.assertIn(message, result.stderr, overrides)


ACCOUNT = "111122223333"

# Stands in for `aws` and `sam` on PATH: appends its argv (one JSON list a line)
# to $FAKE_LOG; `aws cloudformation describe-stacks` answers $FAKE_DESCRIBE.
FAKE_TOOL = """#!{python}
import json, os, sys
argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\\n")
if argv[:3] == ["aws", "cloudformation", "describe-stacks"]:
    sys.stdout.write(os.environ.get("FAKE_DESCRIBE", "{{}}"))
"""


class DocsNamed(unittest.TestCase):
    """The documents the Makefile and the scripts send a reader to exist: every
    `*.md` they name, and every README section named as `README.md, "Section"`."""

    def test_every_document_and_readme_section_named_exists(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            headings = {line.lstrip("#").strip() for line in f if line.startswith("#")}
        for name in ("Makefile", "scripts/deploy.py"):
            with open(os.path.join(ROOT, name), encoding="utf-8") as f:
                text = f.read()
            for doc in re.findall(r"[\w./-]+\.md\b", text):
                self.assertTrue(os.path.isfile(os.path.join(ROOT, doc)), f"{name} names {doc}")
            for section in re.findall(r'README\.md, \\?"([^"\\]+)\\?"', text):
                self.assertIn(section, headings, f"{name} names README section {section!r}")


class TestStacks(unittest.TestCase):
    """test-stacks and teardown-test-stacks with tester/config.json."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.log = os.path.join(self.dir.name, "calls.log")
        bin_dir = os.path.join(self.dir.name, "bin")
        os.mkdir(bin_dir)
        for tool in ("aws", "sam"):
            path = os.path.join(bin_dir, tool)
            with open(path, "w") as f:
                f.write(FAKE_TOOL.format(python=sys.executable))
            os.chmod(path, 0o755)
        self.env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], FAKE_LOG=self.log)

    def config(self, drop=(), **overrides):
        values = dict(
            Region="eu-west-1",
            MainStackName="ar-main",
            TesterStackName="ar-tester",
            CodeS3Bucket="my-bucket",
            CodeS3Prefix="builds/ar",
            Architecture="arm64",
        )
        values.update(overrides)
        return write_config(self.dir.name, os.path.join("tester", "config.example.json"), values, drop)

    def run_script(self, *args, env=None):
        return subprocess.run(
            [sys.executable, SCRIPT, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env or self.env,
        )

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def deploy_commands(self, *extra, **overrides):
        result = self.run_script("test-stacks", "--config", self.config(**overrides), "--dry-run", *extra)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [shlex.split(line) for line in split_commands(result.stdout)]

    def test_deploys_the_main_stack_with_short_delays_then_the_tester_stack(self):
        commands = self.deploy_commands("--account", ACCOUNT)
        self.assertEqual(len(commands), 8)
        main, tester = commands[:4], commands[4:]

        self.assertEqual(
            main[0],
            ["sam", "build", "--template-file", "template.yaml", "--build-dir", ".aws-sam/build",
             "--parameter-overrides", "Architecture=arm64"],
        )
        self.assertEqual(main[1][1:], ["scripts/deploy.py", "check-build"])
        self.assertEqual(main[2][:3], ["aws", "cloudformation", "package"])
        self.assertIn(".aws-sam/build/template.yaml", main[2])
        deploy = main[3]
        overrides = deploy.index("--parameter-overrides")
        self.assertEqual(
            deploy[:overrides],
            ["aws", "cloudformation", "deploy", "--region", "eu-west-1",
             "--template-file", ".aws-sam/packaged.yaml", "--stack-name", "ar-main",
             "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset"],
        )
        params = dict(p.split("=", 1) for p in deploy[overrides + 1:])
        self.assertEqual(
            {k: params[k] for k in (
                "InspectionDelay", "ReviewDelay", "AggregationWindow", "RecordTtlDays",
                "InspectorFunctions", "ReviewerFunctions", "ConfigBucket", "GuardDutyFindings",
                "Architecture", "SecretArns")},
            {
                "InspectionDelay": "5",
                "ReviewDelay": "30",
                "AggregationWindow": "3600",
                "RecordTtlDays": "1",
                "InspectorFunctions": "arn:aws:lambda:eu-west-1:111122223333:function:ar-tester-inspector",
                "ReviewerFunctions": "arn:aws:lambda:eu-west-1:111122223333:function:ar-tester-reviewer",
                "ConfigBucket": "",
                "GuardDutyFindings": "disabled",
                "Architecture": "arm64",
                "SecretArns": "",
            },
        )
        self.assertEqual(params["MaxDepth"], "3")  # the template default
        self.assertEqual(set(params), set(template_parameters("template.yaml")))

        self.assertEqual(
            tester[0],
            ["sam", "build", "--template-file", "tester/template.yaml",
             "--build-dir", ".aws-sam/tester-build", "--parameter-overrides", "Architecture=arm64"],
        )
        self.assertEqual(
            tester[1][1:],
            ["scripts/deploy.py", "check-build", "--build-dir", ".aws-sam/tester-build",
             "--template", "tester/template.yaml"],
        )
        self.assertEqual(
            tester[2],
            ["aws", "cloudformation", "package", "--region", "eu-west-1",
             "--template-file", ".aws-sam/tester-build/template.yaml", "--s3-bucket", "my-bucket",
             "--s3-prefix", "builds/ar", "--output-template-file", ".aws-sam/tester-packaged.yaml"],
        )
        self.assertEqual(
            tester[3],
            ["aws", "cloudformation", "deploy", "--region", "eu-west-1",
             "--template-file", ".aws-sam/tester-packaged.yaml", "--stack-name", "ar-tester",
             "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset",
             "--parameter-overrides", "MainStackName=ar-main", "Architecture=arm64",
             "LogRetentionDays=7"],
        )
        self.assertEqual(
            {"MainStackName", "Architecture", "LogRetentionDays"},
            set(template_parameters("tester/template.yaml")),
        )
        self.assertEqual(self.calls(), [])

    def test_function_arns_take_the_partition_of_the_region_with_account(self):
        deploy = self.deploy_commands("--account", ACCOUNT, Region="cn-north-1")[3]
        self.assertIn(
            "InspectorFunctions=arn:aws-cn:lambda:cn-north-1:111122223333:function:ar-tester-inspector",
            deploy,
        )

    def test_dry_run_without_account_calls_nothing(self):
        result = self.run_script("test-stacks", "--config", self.config(), "--dry-run")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.calls(), [])  # no aws sts, no sam
        self.assertIn("123456789012", result.stderr)
        self.assertIn("dry run", result.stderr)
        self.assertIn(
            "InspectorFunctions=arn:aws:lambda:eu-west-1:123456789012:function:ar-tester-inspector",
            result.stdout,
        )
        deploy = deploy_module()
        with mock.patch.object(deploy.subprocess, "run") as run, mock.patch("sys.stderr"):
            deploy.plan_test_stacks(self.config(), account=None, dry_run=True)
        run.assert_not_called()

    def test_account_and_partition_come_from_sts_when_not_a_dry_run(self):
        identity = json.dumps({
            "UserId": "AIDA", "Account": "444455556666",
            "Arn": "arn:aws-us-gov:iam::444455556666:user/ci",
        })
        deploy = deploy_module()
        with mock.patch.object(
            deploy.subprocess, "run",
            return_value=subprocess.CompletedProcess([], 0, stdout=identity, stderr=""),
        ) as run, mock.patch("sys.stderr"):
            commands = deploy.plan_test_stacks(self.config(Region="us-gov-west-1"))
        self.assertEqual(
            run.call_args.args[0],
            ["aws", "sts", "get-caller-identity", "--region", "us-gov-west-1", "--output", "json"],
        )
        self.assertIn(
            "ReviewerFunctions=arn:aws-us-gov:lambda:us-gov-west-1:444455556666:function:ar-tester-reviewer",
            commands[3],
        )

    def test_teardown_deletes_the_tester_stack_then_the_main_stack(self):
        result = self.run_script("teardown-test-stacks", "--config", self.config(), "--dry-run")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.calls(), [])
        commands_part, note = result.stdout.split("\n#", 1)
        self.assertEqual(
            [shlex.split(line) for line in split_commands(commands_part)],
            [
                ["aws", "cloudformation", "describe-stacks", "--region", "eu-west-1",
                 "--stack-name", "ar-main", "--output", "json"],
                ["aws", "cloudformation", "delete-stack", "--region", "eu-west-1", "--stack-name", "ar-tester"],
                ["aws", "cloudformation", "wait", "stack-delete-complete", "--region", "eu-west-1",
                 "--stack-name", "ar-tester"],
                ["aws", "cloudformation", "delete-stack", "--region", "eu-west-1", "--stack-name", "ar-main"],
                ["aws", "cloudformation", "wait", "stack-delete-complete", "--region", "eu-west-1",
                 "--stack-name", "ar-main"],
            ],
        )
        self.assertIn("Retain", note)
        self.assertIn("aws dynamodb delete-table --region eu-west-1 --table-name '<ReportTableName", note)
        self.assertIn("aws dynamodb delete-table --region eu-west-1 --table-name '<ErrorTableName", note)

    def test_teardown_reads_the_table_names_first_and_only_prints_their_deletion(self):
        # Against the fake aws: the commands run in order, delete-table never runs.
        describe = json.dumps({"Stacks": [{"Outputs": [
            {"OutputKey": "ReportTableName", "OutputValue": "ar-main-ReportTable-ABC"},
            {"OutputKey": "ErrorTableName", "OutputValue": "ar-main-ErrorTable-DEF"},
            {"OutputKey": "IngestTopicArn", "OutputValue": "arn:aws:sns:eu-west-1:111122223333:x"},
        ]}]})
        result = self.run_script(
            "teardown-test-stacks", "--config", self.config(),
            env=dict(self.env, FAKE_DESCRIBE=describe),
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            [call[1:3] + call[-1:] for call in self.calls()],
            [
                ["cloudformation", "describe-stacks", "json"],
                ["cloudformation", "delete-stack", "ar-tester"],
                ["cloudformation", "wait", "ar-tester"],
                ["cloudformation", "delete-stack", "ar-main"],
                ["cloudformation", "wait", "ar-main"],
            ],
        )
        self.assertIn(
            "aws dynamodb delete-table --region eu-west-1 --table-name ar-main-ReportTable-ABC",
            result.stdout,
        )
        self.assertIn(
            "aws dynamodb delete-table --region eu-west-1 --table-name ar-main-ErrorTable-DEF",
            result.stdout,
        )

    def test_the_main_stacks_tables_are_retained(self):
        # What teardown's note says; it lists exactly these outputs.
        self.assertEqual(deploy_module().retained_table_outputs(), ["ReportTableName", "ErrorTableName"])

    def test_refuses_unknown_keys_and_missing_names(self):
        cases = [
            (dict(config=dict(StackName="ar")), "unknown key(s) StackName"),
            (dict(config=dict(InspectionDelay=5)), "unknown key(s) InspectionDelay"),
            (dict(drop=("TesterStackName",)), "TesterStackName is required"),
            (dict(drop=("MainStackName",)), "MainStackName is required"),
            (dict(drop=("CodeS3Bucket",)), "CodeS3Bucket is required"),
            (dict(config=dict(TesterStackName="t" * 55)), "at most 54 characters"),
            (dict(config=dict(MainStackName="m" * 129)), "at most 128 characters"),
            (dict(config=dict(Region="Ireland")), "not a region name"),
            (dict(config=dict(Architecture="sparc")), "x86_64 or arm64"),
        ]
        for case, message in cases:
            path = self.config(drop=case.get("drop", ()), **case.get("config", {}))
            for args in (
                ["test-stacks", "--config", path, "--dry-run", "--account", ACCOUNT],
                ["teardown-test-stacks", "--config", path, "--dry-run"],
            ):
                result = self.run_script(*args)
                self.assertNotEqual(result.returncode, 0, (case, args))
                self.assertIn(message, result.stderr, (case, args))
                self.assertEqual(result.stdout, "", (case, args))
        self.assertEqual(self.calls(), [])

    def test_missing_config_says_to_copy_the_example(self):
        result = self.run_script("test-stacks", "--config", os.path.join(self.dir.name, "absent.json"), "--dry-run")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("copy tester/config.example.json", result.stderr)

    def test_refuses_a_malformed_account(self):
        result = self.run_script("test-stacks", "--config", self.config(), "--dry-run", "--account", "1234")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--account '1234'", result.stderr)

    def test_check_build_takes_the_template(self):
        build = os.path.join(self.dir.name, "tester-build")
        os.makedirs(os.path.join(build, "InspectorFunction"))
        open(os.path.join(build, "template.yaml"), "w").close()
        bootstrap = os.path.join(build, "InspectorFunction", "bootstrap")
        open(bootstrap, "w").close()
        os.chmod(bootstrap, 0o755)
        args = ["check-build", "--build-dir", build, "--template", "tester/template.yaml"]
        result = self.run_script(*args)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ReviewerFunction/bootstrap", result.stderr)
        self.assertNotIn("InspectorFunction", result.stderr)
        os.makedirs(os.path.join(build, "ReviewerFunction"))
        os.link(bootstrap, os.path.join(build, "ReviewerFunction", "bootstrap"))
        result = self.run_script(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("2 functions of tester/template.yaml", result.stdout)


def deploy_module():
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import deploy

    return deploy


def template_parameters(path):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    section = text.split("\nParameters:\n", 1)[1]
    names = []
    for line in section.splitlines():
        if line and not line.startswith(" ") and not line.startswith("#"):
            break  # the next section
        if line.startswith("  ") and not line.startswith("    ") and line.strip().endswith(":"):
            names.append(line.strip().rstrip(":"))
    return names


def split_commands(stdout):
    """One command per line, except where a quoted argument spans lines."""
    commands, current = [], ""
    for line in stdout.splitlines(keepends=True):
        current += line
        try:
            shlex.split(current)
        except ValueError:  # an open quote: the argument goes on
            continue
        if current.strip():
            commands.append(current)
        current = ""
    return commands


if __name__ == "__main__":
    unittest.main()
