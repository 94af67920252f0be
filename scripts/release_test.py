#!/usr/bin/env python3
"""Tests of scripts/release.py (`make release`): the published template is plain
CloudFormation whose functions' code is s3://<bucket>-<region>/<version>/<arch>/
<binary>.zip, and `aws cloudformation deploy` of it on moto's CloudFormation
reaches CREATE_COMPLETE with every resource and output, after the printed upload
command put the zips in moto's S3. The zips are stand-ins (moto runs no code):
`--zips-from`, which the real `make release` never uses.

moto's CloudFormation gaps are filled by scripts/moto_cfn.py (which says what
they are). Run: .venv/bin/python scripts/release_test.py"""

import base64
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import zipfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(HERE, "release.py")
VENV_BIN = os.path.dirname(sys.executable)
AWS = os.path.join(VENV_BIN, "aws")
VERSION = "1.2.3"
BUCKET = "ar-releases"
REGION = "us-east-1"
# What CloudFormation refuses in --template-file without an S3 bucket.
TEMPLATE_BODY_LIMIT = 51200


def stand_in_zips(directory, binaries):
    """DIR/<binary>/bootstrap.zip as cargo lambda lays them out, each a tiny zip."""
    for binary in binaries:
        os.makedirs(os.path.join(directory, binary))
        with zipfile.ZipFile(os.path.join(directory, binary, "bootstrap.zip"), "w") as z:
            z.writestr("bootstrap", f"#!/bin/sh\necho stand-in for {binary}\n")


def binaries_of(template_path):
    sys.path.insert(0, HERE)
    try:
        import release
    finally:
        sys.path.pop(0)
    return sorted(set(release.function_binaries(release.load_template(template_path)).values()))


def run_release(dist, zips, *extra, template=None):
    argv = [sys.executable, SCRIPT, "--version", VERSION, "--bucket", BUCKET,
            "--dist", dist, "--zips-from", zips, *extra]
    if template:
        argv += ["--template", template]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)


class Released:
    """One release into a temporary dist/, shared by the tests of a class."""

    @classmethod
    def release(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        # Class cleanups run even when setUpClass fails (tearDownClass would not).
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.dist = os.path.join(cls.tmp.name, "dist")
        zips = os.path.join(cls.tmp.name, "zips")
        cls.binaries = binaries_of(os.path.join(ROOT, "template.yaml"))
        stand_in_zips(zips, cls.binaries)
        result = run_release(cls.dist, zips)
        if result.returncode != 0:
            raise AssertionError(f"release.py failed:\n{result.stdout}{result.stderr}")
        cls.stdout = result.stdout
        cls.path = os.path.join(cls.dist, "alertresponder.yml")
        with open(cls.path, encoding="utf-8") as f:
            cls.text = f.read()
        cls.template = yaml.safe_load(cls.text)

    @classmethod
    def upload_command(cls):
        lines = [line for line in cls.stdout.splitlines() if "aws s3 sync" in line]
        if len(lines) != 1:
            raise AssertionError(f"expected one upload command in:\n{cls.stdout}")
        return lines[0]


class Template(Released, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.release()

    def test_is_plain_cloudformation_with_the_transform_applied(self):
        self.assertNotIn("Transform", self.template)
        self.assertNotIn("Globals", self.template)
        types = {r["Type"] for r in self.template["Resources"].values()}
        self.assertFalse([t for t in types if t.startswith("AWS::Serverless::")], types)
        self.assertIn("AWS::Lambda::Function", types)
        self.assertIn("AWS::StepFunctions::StateMachine", types)
        self.assertTrue(self.template["Description"].startswith(f"AlertResponder {VERSION}: "))

    def test_every_function_runs_the_versioned_zip_from_its_regions_bucket(self):
        functions = {n: r for n, r in self.template["Resources"].items()
                     if r["Type"] == "AWS::Lambda::Function"}
        self.assertEqual(len(functions), len(self.binaries))
        keys = []
        for name, resource in functions.items():
            code = resource["Properties"]["Code"]
            self.assertEqual(code["S3Bucket"], {"Fn::Sub": f"{BUCKET}-${{AWS::Region}}"}, name)
            key = code["S3Key"]["Fn::Sub"]
            self.assertRegex(key, rf"^{VERSION}/\$\{{Architecture\}}/[a-z-]+\.zip$", name)
            keys.append(key.rsplit("/", 1)[1])
            self.assertEqual(resource["Properties"]["Architectures"], [{"Ref": "Architecture"}])
        self.assertEqual(sorted(keys), [f"{b}.zip" for b in self.binaries])

    def test_offers_only_the_architectures_built(self):
        architecture = self.template["Parameters"]["Architecture"]
        self.assertEqual(architecture["AllowedValues"], ["x86_64"])
        self.assertEqual(architecture["Default"], "x86_64")

    def test_lays_out_the_zips_and_prints_one_upload_command(self):
        laid_out = sorted(os.listdir(os.path.join(self.dist, VERSION, "x86_64")))
        self.assertEqual(laid_out, [f"{b}.zip" for b in self.binaries])
        self.assertEqual(os.listdir(os.path.join(self.dist, VERSION)), ["x86_64"])
        command = self.upload_command()
        self.assertIn(f"aws s3 sync {shlex.quote(os.path.relpath(os.path.join(self.dist, VERSION), ROOT))} ", command)
        self.assertIn(f'"s3://{BUCKET}-$region/{VERSION}"', command)
        self.assertIn(
            "aws cloudformation deploy --template-file alertresponder.yml --stack-name alertresponder "
            "--capabilities CAPABILITY_IAM",
            self.stdout,
        )

    def test_fits_what_deploy_sends_without_a_bucket(self):
        self.assertLess(len(self.text.encode()), TEMPLATE_BODY_LIMIT)

    def test_passes_cfn_lint(self):
        # cfn-lint checks every resource's properties against CloudFormation's
        # schemas, including those moto would not create on its own.
        # E3601 is left out: cfn-lint matches a Task's Resource
        # (arn:${Partition}:states:::lambda:invoke) against a pattern before
        # DefinitionSubstitutions apply; `make lint-template` lints the definitions
        # with the partition substituted (deploy.py lint-state-machine).
        result = subprocess.run(
            [os.path.join(VENV_BIN, "cfn-lint"), "--ignore-checks", "E3601", "--", self.path],
            capture_output=True, text=True,
            env={**os.environ, "AWS_DEFAULT_REGION": REGION},
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class Refusals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.zips = os.path.join(self.tmp.name, "zips")
        stand_in_zips(self.zips, binaries_of(os.path.join(ROOT, "template.yaml")))
        self.dist = os.path.join(self.tmp.name, "dist")

    def refused(self, *argv, template=None):
        result = run_release(self.dist, self.zips, *argv, template=template)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.dist, "alertresponder.yml")))
        return result.stderr

    def test_refuses_a_malformed_version_or_bucket(self):
        for argv, message in [
            (["--version", "v1"], "VERSION 'v1': expected x.y.z"),
            (["--bucket", "My_Bucket"], "BUCKET 'My_Bucket'"),
            (["--bucket", "b" * 47], "at most 46 characters"),
        ]:
            with self.subTest(argv=argv):
                self.assertIn(message, self.refused(*argv))

    def test_two_architectures_give_both_zips_and_both_values(self):
        result = run_release(self.dist, self.zips, "--arch", "x86_64", "--arch", "arm64")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.dist, "alertresponder.yml")) as f:
            template = yaml.safe_load(f)
        self.assertEqual(template["Parameters"]["Architecture"]["AllowedValues"], ["x86_64", "arm64"])
        for arch in ("x86_64", "arm64"):
            self.assertIn("receptor.zip", os.listdir(os.path.join(self.dist, VERSION, arch)))

    def test_a_missing_zip_names_the_binary(self):
        binary = binaries_of(os.path.join(ROOT, "template.yaml"))[-1]
        os.remove(os.path.join(self.zips, binary, "bootstrap.zip"))
        self.assertIn(f"{binary}/bootstrap.zip is missing", self.refused())
        self.assertEqual(os.listdir(self.dist), [], "no partial release is left")

    def test_what_would_need_aws_or_fix_the_partition_is_refused(self):
        # A managed policy by a name samtranslator does not know needs AWS's list
        # (the release calls no AWS API); the role SAM creates for a function
        # without one has ARNs of the partition `aws`, wrong in aws-cn or GovCloud.
        cases = [
            ("AlertResponderNoSuchPolicy", "names a managed policy by its name"),
            ("AWSLambdaBasicExecutionRole",
             "wrote ARNs with a fixed partition: arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"),
        ]
        for policy, message in cases:
            with self.subTest(policy=policy):
                path = os.path.join(self.tmp.name, "template.yaml")
                with open(path, "w") as f:
                    f.write(
                        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
                        "    Type: AWS::Serverless::Function\n"
                        "    Metadata: {BuildProperties: {Binary: receptor}}\n"
                        "    Properties:\n      Runtime: provided.al2023\n      Handler: bootstrap\n"
                        f"      CodeUri: .\n      Policies: [{policy}]\n"
                    )
                self.assertIn(message, self.refused(template=path))


# ---------------------------------------------------------------- on moto


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Condition:
    """CloudFormation's conditions, for the parameters a stack was given: which
    resources and outputs it must have."""

    def __init__(self, template, values):
        self.template = template
        self.values = {"AWS::Region": REGION, "AWS::Partition": "aws", "AWS::AccountId": "123456789012"}
        for name, spec in template.get("Parameters", {}).items():
            value = str(values.get(name, spec.get("Default", "")))
            self.values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value

    def holds(self, name):
        return self.eval(self.template["Conditions"][name])

    def eval(self, node):
        if isinstance(node, (str, int)):
            return str(node)
        if isinstance(node, list):
            return [self.eval(n) for n in node]
        (function, arg), = node.items()
        if function == "Ref":
            return self.values[arg]
        if function == "Condition":
            return self.holds(arg)
        if function == "Fn::Equals":
            return self.eval(arg[0]) == self.eval(arg[1])
        if function == "Fn::Not":
            return not self.eval(arg[0])
        if function == "Fn::And":
            return all(self.eval(a) for a in arg)
        if function == "Fn::Or":
            return any(self.eval(a) for a in arg)
        if function == "Fn::Join":
            return self.eval(arg[0]).join(self.eval(arg[1]))
        raise AssertionError(f"the test's condition evaluator does not know {function}: add it")

    def expected(self, section):
        return sorted(name for name, item in self.template.get(section, {}).items()
                      if "Condition" not in item or self.holds(item["Condition"]))


class DeployOnMoto(Released, unittest.TestCase):
    # {stack: parameter overrides}: the command as the README prints it, and one
    # with every optional part on (the GuardDuty rule, the inspector and reviewer
    # grants, the configuration bundle's and secrets' grants).
    STACKS = {
        "ar-defaults": {},
        "ar-everything": {
            "GuardDutyFindings": "enabled",
            "InspectorFunctions": f"arn:aws:lambda:{REGION}:111122223333:function:intel",
            "ReviewerFunctions": f"arn:aws:lambda:{REGION}:111122223333:function:review",
            # A configuration bundle with inspectors, emitters, secrets and the `aws`
            # inspector's read-only grants.
            "ConfigBucket": "code-bucket",
            "ConfigPrefix": "alertresponder/config/" + "ab" * 32,
            "ConfigInspectors": "3",
            "ConfigEmitters": "1",
            "SecretArns": f"arn:aws:secretsmanager:{REGION}:111122223333:secret:vt-??????",
            "AwsInspector": "enabled",
        },
    }

    @classmethod
    def setUpClass(cls):
        cls.release()
        port = free_port()
        cls.endpoint = f"http://127.0.0.1:{port}"
        log_path = os.path.join(cls.tmp.name, "moto.log")
        with open(log_path, "w") as log:
            cls.moto = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "moto_cfn.py"), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        cls.addClassCleanup(cls.stop_moto)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(cls.endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if cls.moto.poll() is not None or time.monotonic() > deadline:
                    with open(log_path) as log:
                        raise AssertionError(f"moto did not start:\n{log.read()}") from None
                time.sleep(0.1)
        # `aws` on PATH is the venv's, pointed at moto: the printed commands run as printed.
        shim = os.path.join(cls.tmp.name, "bin")
        os.makedirs(shim)
        with open(os.path.join(shim, "aws"), "w") as f:
            f.write(f'#!/bin/sh\nexec {shlex.quote(AWS)} --endpoint-url {cls.endpoint} "$@"\n')
        os.chmod(os.path.join(shim, "aws"), 0o755)
        cls.env = {
            **os.environ,
            "PATH": shim + os.pathsep + os.environ.get("PATH", ""),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        cls.aws("s3", "mb", f"s3://{BUCKET}-{REGION}")
        # The printed command, for this region only (it loops over the regions given).
        cls.sh(cls.upload_command())
        cls.stacks, cls.resources = {}, {}
        for stack, parameters in cls.STACKS.items():
            overrides = ["--parameter-overrides", *[f"{k}={v}" for k, v in parameters.items()]]
            cls.aws(
                "cloudformation", "deploy", "--template-file", cls.path, "--stack-name", stack,
                "--capabilities", "CAPABILITY_IAM", *(overrides if parameters else []),
            )
            cls.stacks[stack] = json.loads(
                cls.aws("cloudformation", "describe-stacks", "--stack-name", stack)
            )["Stacks"][0]
            cls.resources[stack] = json.loads(
                cls.aws("cloudformation", "list-stack-resources", "--stack-name", stack)
            )["StackResourceSummaries"]

    @classmethod
    def stop_moto(cls):
        cls.moto.terminate()
        try:
            cls.moto.wait(10)
        except subprocess.TimeoutExpired:
            cls.moto.kill()
            cls.moto.wait()

    @classmethod
    def sh(cls, command):
        result = subprocess.run(["sh", "-c", command], cwd=ROOT, env=cls.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"{command} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    @classmethod
    def aws(cls, *argv):
        return cls.sh(shlex.join(["aws", *argv, "--output", "json"]))

    def test_reaches_create_complete_with_every_resource(self):
        for stack, parameters in self.STACKS.items():
            with self.subTest(stack=stack):
                self.assertEqual(self.stacks[stack]["StackStatus"], "CREATE_COMPLETE")
                expected = Condition(self.template, parameters).expected("Resources")
                # moto lists a resource whose condition is false as an empty entry.
                skipped = [r for r in self.resources[stack] if not r["LogicalResourceId"]]
                self.assertEqual(len(skipped), len(self.template["Resources"]) - len(expected))
                created = {r["LogicalResourceId"]: r for r in self.resources[stack] if r not in skipped}
                self.assertEqual(sorted(created), expected)
                for name, resource in created.items():
                    self.assertEqual(resource["ResourceStatus"], "CREATE_COMPLETE", name)
                    self.assertEqual(resource["ResourceType"], self.template["Resources"][name]["Type"])

    def test_has_every_output(self):
        for stack, parameters in self.STACKS.items():
            with self.subTest(stack=stack):
                expected = Condition(self.template, parameters).expected("Outputs")
                outputs = {o["OutputKey"]: o["OutputValue"] for o in self.stacks[stack].get("Outputs", [])}
                self.assertEqual(sorted(outputs), expected)
                self.assertTrue(all(outputs.values()), outputs)

    def test_functions_run_the_uploaded_zips(self):
        # moto creates a function whose S3 object is missing, with no code: the
        # hash shows each got the zip the upload command put at its key.
        functions = [r for r in self.resources["ar-defaults"] if r["ResourceType"] == "AWS::Lambda::Function"]
        self.assertEqual(len(functions), len(self.binaries))
        for resource in functions:
            key = self.template["Resources"][resource["LogicalResourceId"]]["Properties"]["Code"]["S3Key"]
            zip_path = os.path.join(self.dist, key["Fn::Sub"].replace("${Architecture}", "x86_64"))
            with open(zip_path, "rb") as f:
                sha256 = base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
            config = json.loads(self.aws(
                "lambda", "get-function-configuration", "--function-name", resource["PhysicalResourceId"]
            ))
            self.assertEqual(config["CodeSha256"], sha256, resource["LogicalResourceId"])
            self.assertEqual(config["Architectures"], ["x86_64"])
            self.assertEqual(config["Runtime"], "provided.al2023")


if __name__ == "__main__":
    unittest.main()
