"""The pack as a whole: its entry point, its config, and the analyzer the Pulumi CLI talks to.

- Importing the rules never constructs a `PolicyPack` (its constructor serves gRPC forever).
- `policies/__main__.py` builds exactly one pack from the rules, also from a checkout where the package is
  not installed (the CLI's own virtualenv has only `policies/requirements.txt`).
- Enforcement levels and options follow the CLI's config rules (`--policy-pack-config`, "all").
- End to end: the pack started the way the CLI starts it (`python -u -m pulumi.policy <engine> policies`)
  answers real gRPC requests on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi.runtime.proto import analyzer_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))

from policy_harness import UNKNOWN, analyze_resource, analyzer, parse_policy_pack_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
POLICIES_DIR = REPO / "policies"
PYTHON = sys.executable
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
EXPECTED_POLICIES = [
    "iam-no-wildcard-actions", "iam-wildcard-resource-only-listfunctions", "lambda-actions-scoped-to-prefix",
    "passrole-only-execution-role", "execution-role-trusts-lambda-only", "irsa-trust-pinned",
    "iam-trust-no-wildcard-principal", "no-static-access-keys", "gcp-deployer-role-allowlist", "gcp-no-primitive-roles", "gcp-no-public-members",
    "gcp-iam-non-authoritative", "gcp-services-kept-on-destroy", "gcp-workload-identity-member-format",
    "metric-function-runtime-limits", "actas-scoped", "foundation-complete"]
ADVISORY = {"no-static-access-keys", "actas-scoped"}
WILDCARD_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]})

# A stand-in for PolicyPack that records its arguments instead of serving forever.
RECORDING_PACK = """
import json, runpy, sys
import pulumi_policy
calls = []
class RecordingPack:
    def __init__(self, name, policies, enforcement_level=None, initial_config=None, **kw):
        calls.append({"name": name, "policies": [p.name for p in policies],
                      "enforcement_level": enforcement_level.value, "initial_config": initial_config,
                      "rules_file": sys.modules["lse_custom_metrics.policies.rules"].__file__,
                      "provider_sdks": sorted(m for m in sys.modules if m.startswith(("pulumi_aws", "pulumi_gcp")))})
pulumi_policy.PolicyPack = RecordingPack
runpy.run_path(sys.argv[1], run_name="__main__")
print(json.dumps(calls))
"""


def run_python(code: str, *args: str, isolated_from_install: bool = False, cwd: Path = POLICIES_DIR):
    command = [PYTHON]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if isolated_from_install:
        # -S: no site processing, so the editable install's .pth finder never runs; the dependencies stay
        # importable from site-packages, like the pack's own virtualenv with only requirements.txt.
        command.append("-S")
        env["PYTHONPATH"] = SITE_PACKAGES
    return subprocess.run(command + ["-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_importing_the_rules_never_constructs_a_policy_pack():
    code = """
import grpc, pulumi_policy, pulumi_policy.policy
def refuse(*a, **k):
    raise SystemExit("PolicyPack or a gRPC server was constructed on import")
pulumi_policy.PolicyPack = pulumi_policy.policy.PolicyPack = refuse
grpc.server = refuse
import lse_custom_metrics.policies.rules as rules
import lse_custom_metrics.policies as package
print(",".join(rules.POLICY_NAMES))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == EXPECTED_POLICIES


def test_main_builds_exactly_one_pack_from_the_rules():
    result = run_python(RECORDING_PACK, str(POLICIES_DIR))
    assert result.returncode == 0, result.stderr
    (call,) = json.loads(result.stdout)
    assert call["name"] == "lse-custom-metrics"
    assert call["policies"] == EXPECTED_POLICIES
    assert call["enforcement_level"] == "mandatory"
    assert call["initial_config"]["lambda-actions-scoped-to-prefix"] == {
        "prefix": "custom-metric-", "allowAccountWideCreateLogGroup": True, "allowedActions": ["lambda:ListFunctions"]}
    assert call["initial_config"]["metric-function-runtime-limits"] == {"prefix": "custom-metric-"}
    assert call["initial_config"]["passrole-only-execution-role"] == {
        "executionRoleName": "LSE_CustomMetricsExecuteRole"}


def test_main_runs_from_a_checkout_without_the_package_installed():
    probe = run_python("import lse_custom_metrics", isolated_from_install=True)
    assert probe.returncode != 0 and "No module named 'lse_custom_metrics'" in probe.stderr
    result = run_python(RECORDING_PACK, str(POLICIES_DIR), isolated_from_install=True)
    assert result.returncode == 0, result.stderr
    (call,) = json.loads(result.stdout)
    assert call["policies"] == EXPECTED_POLICIES
    assert call["rules_file"] == str(POLICIES_DIR / "rules.py")
    assert call["provider_sdks"] == []  # the pack's venv has no provider SDK, and needs none


def test_the_pack_virtualenv_pins_the_same_policy_sdk_as_the_package():
    pyproject = (REPO / "pyproject.toml").read_text()
    requirements = [line for line in (POLICIES_DIR / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert requirements == ["pulumi-policy==1.21.0", "pulumi==3.272.0"]
    assert all(f'"{req}"' in pyproject for req in requirements)


# --- config, the CLI's way ------------------------------------------------------------------------------

def levels(servicer, resource_type, props):
    return sorted((d.policy, d.level) for d in analyze_resource(
        servicer, resource_type, props, f"urn:pulumi:test::p::{resource_type}::r", "r"))


def test_default_levels_mandatory_except_the_two_advisory_policies():
    info = analyzer().GetAnalyzerInfo(empty_pb2.Empty(), None)
    assert [p.name for p in info.policies] == EXPECTED_POLICIES
    assert {p.name for p in info.policies if p.enforcementLevel == proto.ADVISORY} == ADVISORY
    assert {p.name for p in info.policies if p.enforcementLevel == proto.MANDATORY} == \
        set(EXPECTED_POLICIES) - ADVISORY
    assert all(p.description for p in info.policies)
    schema = {p.name: p.configSchema for p in info.policies}["metric-function-runtime-limits"]
    assert dict(schema.properties["prefix"])["default"] == "custom-metric-"
    assert dict(info.initialConfig["lambda-actions-scoped-to-prefix"].properties)["prefix"] == "custom-metric-"


def test_a_wildcard_policy_is_mandatory_by_default():
    assert levels(analyzer(), "aws:iam/policy:Policy", {"policy": WILDCARD_POLICY}) == [
        ("iam-no-wildcard-actions", "mandatory"), ("iam-wildcard-resource-only-listfunctions", "mandatory"),
        ("lambda-actions-scoped-to-prefix", "mandatory")]


def test_policy_pack_config_overrides_levels_and_the_prefix():
    config = parse_policy_pack_config(json.dumps({
        "iam-no-wildcard-actions": "advisory",
        "iam-wildcard-resource-only-listfunctions": {"enforcementLevel": "disabled"},
        "no-static-access-keys": "mandatory",
        "metric-function-runtime-limits": {"prefix": "lse-fn-"},
    }))
    servicer = analyzer(config)
    assert levels(servicer, "aws:iam/policy:Policy", {"policy": WILDCARD_POLICY}) == [
        ("iam-no-wildcard-actions", "advisory"), ("lambda-actions-scoped-to-prefix", "mandatory")]
    assert levels(servicer, "aws:iam/accessKey:AccessKey", {"user": "u"}) == [("no-static-access-keys", "mandatory")]
    big = {"runtime": "python3.13", "memorySize": 1024, "timeout": 60, "reservedConcurrentExecutions": 1}
    assert levels(servicer, "aws:lambda/function:Function", {**big, "name": "lse-fn-1"}) == [
        ("metric-function-runtime-limits", "mandatory")]
    assert levels(servicer, "aws:lambda/function:Function", {**big, "name": "custom-metric-1"}) == []


def test_all_sets_every_level_and_a_policy_entry_wins_over_all():
    servicer = analyzer(parse_policy_pack_config(json.dumps({
        "all": "advisory", "lambda-actions-scoped-to-prefix": "mandatory"})))
    assert levels(servicer, "aws:iam/policy:Policy", {"policy": WILDCARD_POLICY}) == [
        ("iam-no-wildcard-actions", "advisory"), ("iam-wildcard-resource-only-listfunctions", "advisory"),
        ("lambda-actions-scoped-to-prefix", "mandatory")]


def test_unknown_values_become_the_clis_advisory_cant_run_diagnostic():
    diagnostics = analyze_resource(analyzer(), "aws:iam/policy:Policy", {"policy": UNKNOWN},
                                   "urn:pulumi:test::p::aws:iam/policy:Policy::r", "r")
    assert {d.policy for d in diagnostics} == {
        "iam-no-wildcard-actions", "iam-wildcard-resource-only-listfunctions", "lambda-actions-scoped-to-prefix",
        "passrole-only-execution-role"}
    assert all(d.level == "advisory" and d.message.startswith("can't run policy '") and
               d.message.endswith("during preview: string value at .policy can't be known during preview")
               for d in diagnostics)


# --- end to end over gRPC, started as the CLI starts a Python pack ------------------------------------

@pytest.fixture
def served_pack():
    process = subprocess.Popen(
        [PYTHON, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICIES_DIR)], cwd=POLICIES_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def struct(value: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def test_the_pack_serves_the_analyzer_protocol_like_under_the_cli(served_pack):
    info = served_pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "lse-custom-metrics" and [p.name for p in info.policies] == EXPECTED_POLICIES
    request = proto.ConfigureAnalyzerRequest()
    for policy in info.policies:
        request.policyConfig[policy.name].enforcementLevel = policy.enforcementLevel
    request.policyConfig["metric-function-runtime-limits"].properties.update({"prefix": "custom-metric-"})
    served_pack.Configure(request)
    start = time.monotonic()
    response = served_pack.Analyze(proto.AnalyzeRequest(
        type="aws:lambda/function:Function", urn="urn:pulumi:ci::p::aws:lambda/function:Function::fn",
        name="fn", properties=struct({"name": "custom-metric-9-1", "runtime": "python3.13", "memorySize": 1024,
                                      "timeout": 300, "reservedConcurrentExecutions": 1})))
    assert time.monotonic() - start < 10
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("metric-function-runtime-limits", proto.MANDATORY), ("metric-function-runtime-limits", proto.MANDATORY)]
    assert "memorySize=1024.0" in response.diagnostics[0].message
    stack = served_pack.AnalyzeStack(proto.AnalyzeStackRequest(resources=[proto.AnalyzerResource(
        type="aws:iam/user:User", urn="urn:pulumi:ci::p::aws:iam/user:User::u", name="u",
        properties=struct({"name": "someone"}))]))
    assert [d.policyName for d in stack.diagnostics] == ["foundation-complete", "foundation-complete"]


# --- the README's example config is real -----------------------------------------------------------------

def readme_policy_config() -> str:
    section = (REPO / "README.md").read_text().split("<!-- section:policies -->", 1)[1]
    return section.split("### Configure it", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]


def test_the_readme_policy_config_does_what_the_readme_says():
    config = parse_policy_pack_config(readme_policy_config())
    info = {p.name: p for p in analyzer(config).GetAnalyzerInfo(empty_pb2.Empty(), None).policies}
    assert set(info) == set(EXPECTED_POLICIES)
    servicer = analyzer(config)
    # actas-scoped is disabled, the static-key policy stays advisory, everything else is mandatory
    assert levels(servicer, "gcp:projects/iAMCustomRole:IAMCustomRole",
                  {"roleId": "LSE_CustomMetricsDeployer", "permissions": ["iam.serviceAccounts.actAs"]}) == []
    assert levels(servicer, "aws:iam/accessKey:AccessKey", {"user": "u"}) == [("no-static-access-keys", "advisory")]
    big = {"runtime": "python3.13", "memorySize": 1024, "timeout": 60, "reservedConcurrentExecutions": 1}
    assert levels(servicer, "aws:lambda/function:Function", {**big, "name": "acme-metric-1"}) == [
        ("metric-function-runtime-limits", "mandatory")]
    scoped = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:*:123456789012:function:acme-metric-*"}]})
    assert levels(servicer, "aws:iam/policy:Policy", {"policy": scoped}) == []


# --- the README's policy table is the pack's, and names tests that exist ----------------------------------

def test_the_policy_table_names_every_policy_and_real_tests():
    import fnmatch
    import re

    import test_policy_broken_stacks as broken
    import test_policy_foundations as foundations

    section = (REPO / "README.md").read_text().split("<!-- section:policies -->", 1)[1]
    table = section.split("### What each policy catches", 1)[1].split("\n### ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    names = [re.match(r"\| `([a-z0-9-]+)`", row[0]).group(1) for row in rows]
    assert names == EXPECTED_POLICIES
    tests = {name: path.name for path in (REPO / "tests").glob("test_*.py")
             for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)}
    files = {path.name for path in (REPO / "tests").glob("test_*.py")}
    stacks = {"broken": set(broken.BROKEN), "legit": set(broken.LEGITIMATE), "foundations": set(foundations.RUNS)}
    for name, row in zip(names, rows):
        cell = row[-1]
        for part in cell.split(";"):
            kind = part.strip().split(":", 1)[0]
            for token in re.findall(r"`([^`]+)`", part):
                if kind in stacks and part.strip().startswith(f"{kind}:"):
                    assert token in stacks[kind], (name, kind, token)
                elif token.endswith(".py"):
                    assert token in files, (name, token)
                else:
                    file, _, pattern = token.rpartition("::")
                    matched = [t for t, f in tests.items() if fnmatch.fnmatchcase(t, pattern) and (not file or f == file)]
                    assert matched, (name, token)
