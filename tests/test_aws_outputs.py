"""What the stack hands the platform engineer to paste into LSE, exactly; and the access key stays secret.

Expected texts are written out here by hand (not rendered by the code under test).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pytest
import yaml
from pulumi.runtime.sync_await import _sync_await

sys.path.insert(0, str(Path(__file__).parent))

from pulumi_harness import run_pulumi  # noqa: E402
from test_aws_variant_configs import NS, plain, stack_config  # noqa: E402

from lse_custom_metrics.components.aws.program import build_aws_stack  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole"
IRSA_ROLE = "arn:aws:iam::123456789012:role/LSE_ServiceAccountApp"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # what the harness's mock returns for an access key
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RENDERED = ("env", "envList", "dockerComposeEnvironment", "helmValues", "helmValuesYaml")

EXPECTED = {
    "ec2-compose": {
        "env": {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                "LS_LAMBDA_REGION_CUSTOM_METRICS": "us-east-1", "LS_LAMBDA_ROLE_CUSTOM_METRICS": ROLE},
        "envList": (f"AWS_ACCESS_KEY_ID={KEY_ID}\n"
                    f"AWS_SECRET_ACCESS_KEY={SECRET}\n"
                    "LS_LAMBDA_REGION_CUSTOM_METRICS=us-east-1\n"
                    f"LS_LAMBDA_ROLE_CUSTOM_METRICS={ROLE}\n"),
        "dockerComposeEnvironment": ("environment:\n"
                                     f'  AWS_ACCESS_KEY_ID: "{KEY_ID}"\n'
                                     f'  AWS_SECRET_ACCESS_KEY: "{SECRET}"\n'
                                     '  LS_LAMBDA_REGION_CUSTOM_METRICS: "us-east-1"\n'
                                     f'  LS_LAMBDA_ROLE_CUSTOM_METRICS: "{ROLE}"\n'),
        "helmValuesYaml": ("app:\n"
                           "  extraEnvironmentVars:\n"
                           f"    AWS_ACCESS_KEY_ID: {KEY_ID}\n"
                           f"    AWS_SECRET_ACCESS_KEY: {SECRET}\n"
                           "    LS_LAMBDA_REGION_CUSTOM_METRICS: us-east-1\n"
                           f"    LS_LAMBDA_ROLE_CUSTOM_METRICS: {ROLE}\n"
                           "rqworker:\n"
                           "  extraEnvironmentVars:\n"
                           f"    AWS_ACCESS_KEY_ID: {KEY_ID}\n"
                           f"    AWS_SECRET_ACCESS_KEY: {SECRET}\n"
                           "    LS_LAMBDA_REGION_CUSTOM_METRICS: us-east-1\n"
                           f"    LS_LAMBDA_ROLE_CUSTOM_METRICS: {ROLE}\n"),
    },
    "eks-oidc": {
        "env": {"LS_LAMBDA_REGION_CUSTOM_METRICS": "us-east-1", "LS_LAMBDA_ROLE_CUSTOM_METRICS": ROLE},
        "envList": f"LS_LAMBDA_REGION_CUSTOM_METRICS=us-east-1\nLS_LAMBDA_ROLE_CUSTOM_METRICS={ROLE}\n",
        "dockerComposeEnvironment": ("environment:\n"
                                     '  LS_LAMBDA_REGION_CUSTOM_METRICS: "us-east-1"\n'
                                     f'  LS_LAMBDA_ROLE_CUSTOM_METRICS: "{ROLE}"\n'),
        "helmValues": {
            "app": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": IRSA_ROLE}},
                    "extraEnvironmentVars": {"LS_LAMBDA_REGION_CUSTOM_METRICS": "us-east-1",
                                             "LS_LAMBDA_ROLE_CUSTOM_METRICS": ROLE}},
            "rqworker": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": IRSA_ROLE}},
                         "extraEnvironmentVars": {"LS_LAMBDA_REGION_CUSTOM_METRICS": "us-east-1",
                                                  "LS_LAMBDA_ROLE_CUSTOM_METRICS": ROLE}}},
        "helmValuesYaml": ("app:\n"
                           "  serviceAccount:\n"
                           "    annotations:\n"
                           f"      eks.amazonaws.com/role-arn: {IRSA_ROLE}\n"
                           "  extraEnvironmentVars:\n"
                           "    LS_LAMBDA_REGION_CUSTOM_METRICS: us-east-1\n"
                           f"    LS_LAMBDA_ROLE_CUSTOM_METRICS: {ROLE}\n"
                           "rqworker:\n"
                           "  serviceAccount:\n"
                           "    annotations:\n"
                           f"      eks.amazonaws.com/role-arn: {IRSA_ROLE}\n"
                           "  extraEnvironmentVars:\n"
                           "    LS_LAMBDA_REGION_CUSTOM_METRICS: us-east-1\n"
                           f"    LS_LAMBDA_ROLE_CUSTOM_METRICS: {ROLE}\n"),
    },
}
# Without static keys and without IRSA every variant renders the same two variables, no annotations.
PLAIN_ENV_HELM_YAML = ("app:\n"
                       "  extraEnvironmentVars:\n"
                       "    LS_LAMBDA_REGION_CUSTOM_METRICS: us-east-1\n"
                       f"    LS_LAMBDA_ROLE_CUSTOM_METRICS: {ROLE}\n"
                       "rqworker:\n"
                       "  extraEnvironmentVars:\n"
                       "    LS_LAMBDA_REGION_CUSTOM_METRICS: us-east-1\n"
                       f"    LS_LAMBDA_ROLE_CUSTOM_METRICS: {ROLE}\n")
for _variant in ("ec2-instance-profile", "ec2-instance-profile-existing-role", "eks-node-role"):
    EXPECTED[_variant] = {key: value for key, value in EXPECTED["eks-oidc"].items() if key != "helmValues"}
    EXPECTED[_variant]["helmValuesYaml"] = PLAIN_ENV_HELM_YAML


def run_variant(variant: str):
    built = {}

    def program():
        built["foundation"] = build_aws_stack(pulumi.Config(NS))

    result = run_pulumi(program, config=stack_config(variant))
    return result, built["foundation"]


def unwrap(value):
    return value["__secret__"] if isinstance(value, dict) and "__secret__" in value else value


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_rendered_outputs_exact(variant):
    result, _ = run_variant(variant)
    outputs = plain(result.outputs)
    for key, expected in EXPECTED[variant].items():
        assert unwrap(outputs[key]) == expected, key
    # each rendering is the same variables: what LSE reads back equals env
    env = unwrap(outputs["env"])
    env_list = dict(line.split("=", 1) for line in unwrap(outputs["envList"]).splitlines())
    assert env_list == env
    assert yaml.safe_load(unwrap(outputs["dockerComposeEnvironment"])) == {"environment": env}
    helm = yaml.safe_load(unwrap(outputs["helmValuesYaml"]))
    assert helm == unwrap(outputs["helmValues"])
    assert helm["app"]["extraEnvironmentVars"] == helm["rqworker"]["extraEnvironmentVars"] == env


def test_env_list_keeps_the_docs_variable_order():
    result, _ = run_variant("ec2-compose")
    lines = unwrap(plain(result.outputs)["envList"]).splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "LS_LAMBDA_REGION_CUSTOM_METRICS",
        "LS_LAMBDA_ROLE_CUSTOM_METRICS"]


def test_compose_key_is_secret_in_the_sdk_and_in_the_stack_outputs():
    result, foundation = run_variant("ec2-compose")
    identity = foundation.identity
    # The mock does not apply the provider's additional_secret_outputs, so the raw attribute is NOT secret
    # here; the component's own Output.secret is what guarantees it, whatever hands the value over.
    assert _sync_await(identity.access_key.secret.is_secret()) is False
    assert _sync_await(identity.secret_access_key.is_secret()) is True
    assert _sync_await(identity.secret_access_key.future()) == SECRET
    for name in RENDERED:
        assert _sync_await(foundation.outputs[name].is_secret()) is True, name
    # and in what the engine records as stack outputs: wrapped whole, not field by field
    outputs = plain(result.outputs)
    assert {name for name, value in outputs.items() if isinstance(value, dict) and "__secret__" in value} \
        == set(RENDERED)
    assert outputs["accessKeyId"] == KEY_ID


@pytest.mark.parametrize("variant", ["ec2-compose", "ec2-instance-profile", "eks-oidc", "eks-node-role"])
def test_no_output_carries_the_secret_unless_secret_as_a_whole(variant):
    result, foundation = run_variant(variant)
    for name, value in plain(result.outputs).items():
        if isinstance(value, dict) and "__secret__" in value:
            continue
        assert SECRET not in repr(value), name
    secret_outputs = {n for n in foundation.outputs if _sync_await(foundation.outputs[n].is_secret())}
    assert secret_outputs == (set(RENDERED) if variant == "ec2-compose" else set())
