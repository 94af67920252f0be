#!/usr/bin/env python3
"""Tests of scripts/deploy.py: the commands `make deploy-dry` prints for a
sample config, and the config mistakes it refuses. Run: .venv/bin/python scripts/deploy_test.py"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(HERE, "deploy.py")

# Characters a shell would act on: they must arrive in the argument unchanged.
POLICY = 'package alertresponder.review\n# $(touch /tmp/pwned) `id` ; | & "quoted" \'single\'\nresult := {"severity": "urgent", "reason": "x"}\n'


class DryRun(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        with open(os.path.join(self.dir.name, "review.rego"), "w") as f:
            f.write(POLICY)

    def config(self, **overrides):
        with open(os.path.join(ROOT, "config.example.json")) as f:
            config = json.load(f)
        config.update(
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
            PolicyFile="review.rego",  # relative to the config file
            WebhookUrl="https://hooks.example.com/T0/B0?a=1&b=2",
        )
        config.update(overrides)
        path = os.path.join(self.dir.name, "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def run_script(self, config_path):
        return subprocess.run(
            [sys.executable, SCRIPT, "deploy", "--config", config_path, "--dry-run"],
            cwd=ROOT,
            capture_output=True,
            text=True,
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
        self.assertEqual(
            commands[2],
            ["aws", "cloudformation", "package", "--region", "eu-west-1",
             "--template-file", ".aws-sam/build/template.yaml", "--s3-bucket", "my-bucket",
             "--s3-prefix", "builds/ar", "--output-template-file", ".aws-sam/packaged.yaml"],
        )
        deploy = commands[3]
        overrides = deploy.index("--parameter-overrides")
        self.assertEqual(
            deploy[:overrides],
            ["aws", "cloudformation", "deploy", "--region", "eu-west-1",
             "--template-file", ".aws-sam/packaged.yaml", "--stack-name", "ar-test",
             "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset"],
        )
        self.assertEqual(len(commands), 4)

    def test_every_template_parameter_is_given_from_config_or_default(self):
        deploy = self.commands()[3]
        pairs = deploy[deploy.index("--parameter-overrides") + 1:]
        params = dict(p.split("=", 1) for p in pairs)
        self.assertEqual(params["Architecture"], "arm64")
        self.assertEqual(params["InspectionDelay"], "60")
        self.assertEqual(params["ReviewDelay"], "600")
        self.assertEqual(params["MaxDepth"], "3")  # not in the config: the template default
        self.assertEqual(
            params["InspectorFunctions"],
            "arn:aws:lambda:eu-west-1:111122223333:function:intel,"
            "arn:aws:lambda:eu-west-1:111122223333:function:users:live",
        )
        self.assertEqual(params["ReviewerFunctions"], "")
        self.assertEqual(params["WebhookUrl"], "https://hooks.example.com/T0/B0?a=1&b=2")
        self.assertEqual(params["Policy"], POLICY)  # the file's text, byte for byte
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

    def test_refuses_unknown_keys_long_stack_names_and_huge_policies(self):
        cases = [
            (dict(InspectionDelays=5), "unknown key(s) InspectionDelays"),
            (dict(StackName="a" * 47), "at most 46 characters"),
            (dict(Region="Ireland"), "not a region name"),
            (dict(CodeS3Bucket=""), "CodeS3Bucket is required"),
            (dict(Architecture="sparc"), "x86_64 or arm64"),
            (dict(PolicyFile="absent.rego"), "PolicyFile 'absent.rego'"),
            (dict(InspectorFunctions=[1, 2]), "list of strings"),
        ]
        for overrides, message in cases:
            result = self.run_script(self.config(**overrides))
            self.assertNotEqual(result.returncode, 0, overrides)
            self.assertIn(message, result.stderr, overrides)
        with open(os.path.join(self.dir.name, "big.rego"), "w") as f:
            f.write("# padding\n" * 400)
        result = self.run_script(self.config(PolicyFile="big.rego"))
        self.assertIn("4 KB", result.stderr)


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
