"""The AWS program end to end under mocks: from Pulumi.aws.yaml, for every variant, with bad config.

Each run goes through the lead's entry point (`components.program.run`, dispatching on
`lse-custom-metrics:cloud`) exactly as `__main__.py` does.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pulumi
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

import pulumi_harness  # noqa: E402
from pulumi_harness import run_pulumi  # noqa: E402
from test_aws_variant_configs import ISSUER, NS, PROVIDER_ARN, VARIANT_CONFIGS, plain, stack_config  # noqa: E402

from lse_custom_metrics.components.aws.program import build_aws_stack  # noqa: E402
from lse_custom_metrics.components.config import ConfigError  # noqa: E402
from lse_custom_metrics.components.program import run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_INVOKES = {"aws:index/getCallerIdentity:getCallerIdentity", "aws:index/getPartition:getPartition",
                   "aws:index/getRegion:getRegion"}
COMMON_OUTPUTS = {"deployment", "region", "executionRoleArn", "executionRoleName", "interactPolicyArn",
                  "interactPolicyName", "env", "envList", "dockerComposeEnvironment", "helmValues",
                  "helmValuesYaml"}
VARIANT_OUTPUTS = {
    "ec2-compose": {"iamUserName", "iamUserArn", "accessKeyId"},
    "ec2-instance-profile": {"instanceRoleName", "instanceRoleArn", "instanceProfileName", "instanceProfileArn"},
    "ec2-instance-profile-existing-role": {"instanceRoleName"},  # given by name: no ARN known, no profile
    "eks-oidc": {"serviceAccountRoleArn", "serviceAccountRoleName", "oidcProviderArn", "serviceAccountSubjects"},
    "eks-node-role": {"nodeRoleName"},
}
EXPECTED_IRSA_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Sid": "AssumedByLseServiceAccounts", "Effect": "Allow",
    "Principal": {"Federated": PROVIDER_ARN},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {
        f"{ISSUER}:sub": ["system:serviceaccount:label-studio:lse-ls-app",
                          "system:serviceaccount:label-studio:lse-ls-rqworker"],
        f"{ISSUER}:aud": "sts.amazonaws.com"}},
}]}


def example_stack_config() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.aws.yaml").read_text())["config"]


def policy_input(resource) -> dict:
    return json.loads(resource.inputs["policy"])


def trust_input(resource) -> dict:
    return json.loads(resource.inputs["assumeRolePolicy"])


# --- the example stack ----------------------------------------------------------------------------------

def test_example_stack_runs_end_to_end():
    config = example_stack_config()
    assert config["lse-custom-metrics:cloud"] == "aws"
    assert config["lse-custom-metrics:deployment"] == "eks-oidc"
    result = run_pulumi(run, config=config)
    tags = {"team": "labeling-platform", "managed-by": "pulumi"}

    irsa = result.one("aws:iam/role:Role", "lse-custom-metrics-eks-oidc-role")
    # the example gives the issuer URL, namespace label-studio and release lse: the same trust as the ARN
    assert trust_input(irsa) == EXPECTED_IRSA_TRUST
    assert irsa.inputs["name"] == "LSE_ServiceAccountApp"
    for resource in (irsa, result.one("aws:iam/role:Role", "lse-custom-metrics-execution-role"),
                     result.one("aws:iam/policy:Policy")):
        assert resource.inputs["tags"] == tags
    outputs = plain(result.outputs)
    assert outputs["serviceAccountRoleArn"] == "arn:aws:iam::123456789012:role/LSE_ServiceAccountApp"
    assert outputs["env"] == {
        "LS_LAMBDA_REGION_CUSTOM_METRICS": "us-east-1",
        "LS_LAMBDA_ROLE_CUSTOM_METRICS": "arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole"}
    assert {token for token, _ in result.calls} <= ALLOWED_INVOKES


def test_example_stack_shows_every_variants_keys():
    text = (ROOT / "Pulumi.aws.yaml").read_text()
    for key in ("deployment", "functionPrefix", "tags", "oidcProviderArn", "oidcIssuerUrl", "namespace",
                "helmRelease", "serviceAccounts", "nodeRoleName", "instanceRoleName"):
        assert f"lse-custom-metrics:{key}:" in text, key
    for variant in ("ec2-compose", "ec2-instance-profile", "eks-oidc", "eks-node-role"):
        assert variant in text


# --- every variant ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANT_CONFIGS))
def test_every_variant_runs_and_exports_every_foundation_output(variant):
    built = {}

    def program():
        built["foundation"] = build_aws_stack(pulumi.Config(NS))

    result = run_pulumi(program, config=stack_config(variant))
    assert set(result.outputs) == set(built["foundation"].outputs) == COMMON_OUTPUTS | VARIANT_OUTPUTS[variant]
    assert {token for token, _ in result.calls} <= ALLOWED_INVOKES
    outputs = plain(result.outputs)
    assert outputs["executionRoleArn"] == "arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole"
    assert outputs["interactPolicyArn"] == "arn:aws:iam::123456789012:policy/LSE_AllowInteractLambda"
    assert outputs["deployment"] == VARIANT_CONFIGS[variant][f"{NS}:deployment"]
    # every child is parented inside the foundation's tree (nothing registered at the stack's top level
    # but the foundation itself)
    top = [r for r in result.resources if r.parent == result.monitor.stack_urn]
    assert [(r.type, r.name) for r in top] == [("lse-custom-metrics:aws:Foundation", "lse-custom-metrics")]


@pytest.mark.parametrize("key, value", [
    ("oidcProviderArn", PROVIDER_ARN),
    ("oidcIssuerUrl", f"https://{ISSUER}"),
    ("oidcIssuerUrl", ISSUER),
    ("oidcIssuerUrl", f"https://{ISSUER}/"),
])
def test_irsa_trust_under_mocks_with_arn_or_issuer_url(key, value):
    config = stack_config("eks-oidc", oidcProviderArn=None)
    config[f"{NS}:{key}"] = value
    result = run_pulumi(run, config=config)
    assert trust_input(result.one("aws:iam/role:Role", "lse-custom-metrics-eks-oidc-role")) == EXPECTED_IRSA_TRUST
    assert plain(result.outputs)["oidcProviderArn"] == PROVIDER_ARN


def test_helm_release_and_explicit_service_accounts():
    result = run_pulumi(run, config=stack_config("eks-oidc", helmRelease="prod"))
    subjects = plain(result.outputs)["serviceAccountSubjects"]
    assert subjects == ["system:serviceaccount:label-studio:prod-ls-app",
                        "system:serviceaccount:label-studio:prod-ls-rqworker"]
    result = run_pulumi(run, config=stack_config("eks-oidc", serviceAccounts=["lse-app", "lse-worker", "lse-cron"]))
    trust = trust_input(result.one("aws:iam/role:Role", "lse-custom-metrics-eks-oidc-role"))
    assert trust["Statement"][0]["Condition"]["StringEquals"][f"{ISSUER}:sub"] == [
        "system:serviceaccount:label-studio:lse-app", "system:serviceaccount:label-studio:lse-worker",
        "system:serviceaccount:label-studio:lse-cron"]
    assert len(trust["Statement"]) == 1


@pytest.mark.parametrize("given, attached", [
    ("lse-nodes", "lse-nodes"),
    ("arn:aws:iam::123456789012:role/lse-nodes", "lse-nodes"),
    ("arn:aws:iam::123456789012:role/eks/nodes/lse-node-group-NodeInstanceRole", "lse-node-group-NodeInstanceRole"),
])
def test_node_role_attached_by_name(given, attached):
    result = run_pulumi(run, config=stack_config("eks-node-role", nodeRoleName=given))
    attachment = result.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs == {"role": attached,
                                 "policyArn": "arn:aws:iam::123456789012:policy/LSE_AllowInteractLambda"}
    assert plain(result.outputs)["nodeRoleName"] == attached


def test_instance_role_by_arn_keeps_the_arn_and_creates_nothing_else():
    arn = "arn:aws:iam::123456789012:role/platform/lse-ec2"
    result = run_pulumi(run, config=stack_config("ec2-instance-profile", instanceRoleName=arn))
    assert result.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs["role"] == "lse-ec2"
    assert result.of_type("aws:iam/instanceProfile:InstanceProfile") == []
    assert len(result.of_type("aws:iam/role:Role")) == 1  # only the execution role
    outputs = plain(result.outputs)
    assert (outputs["instanceRoleName"], outputs["instanceRoleArn"]) == ("lse-ec2", arn)
    assert "instanceProfileName" not in outputs and "instanceProfileArn" not in outputs


def test_created_instance_role_is_trusted_by_ec2_only_and_has_a_profile():
    result = run_pulumi(run, config=stack_config("ec2-instance-profile"))
    role = result.one("aws:iam/role:Role", "lse-custom-metrics-ec2-instance-profile-role")
    assert trust_input(role)["Statement"] == [{"Sid": "AssumedByEc2Only", "Effect": "Allow",
                                               "Principal": {"Service": "ec2.amazonaws.com"},
                                               "Action": "sts:AssumeRole"}]
    profile = result.one("aws:iam/instanceProfile:InstanceProfile")
    assert profile.inputs == {"name": "LSE_CustomMetricsInstanceRole", "role": "LSE_CustomMetricsInstanceRole",
                              "tags": {"team": "ml-platform"}}
    assert result.of_type("aws:iam/accessKey:AccessKey") == []
    outputs = plain(result.outputs)
    assert outputs["instanceProfileArn"] == "arn:aws:iam::123456789012:instance-profile/LSE_CustomMetricsInstanceRole"


def test_function_prefix_scopes_every_document():
    result = run_pulumi(run, config=stack_config("ec2-compose", functionPrefix="acme-metric-"))
    interact = policy_input(result.one("aws:iam/policy:Policy"))
    logs = policy_input(result.one("aws:iam/rolePolicy:RolePolicy"))
    text = json.dumps([interact, logs])
    assert "custom-metric-" not in text
    assert interact["Statement"][1]["Resource"] == ["arn:aws:lambda:*:123456789012:function:acme-metric-*"]
    assert logs["Statement"][1]["Resource"] == ["arn:aws:logs:*:123456789012:log-group:/aws/lambda/acme-metric-*"]


@pytest.mark.parametrize("partition, region", [("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")])
def test_partition_and_account_come_from_the_provider(partition, region):
    call_results = {
        "aws:index/getPartition:getPartition": {"partition": partition, "dnsSuffix": "amazonaws.com",
                                                 "id": partition, "reverseDnsPrefix": "com.amazonaws"},
        "aws:index/getCallerIdentity:getCallerIdentity": {"accountId": "210987654321", "id": "210987654321",
                                                           "arn": f"arn:{partition}:iam::210987654321:user/ci",
                                                           "userId": "AIDAEXAMPLE"},
    }
    config = stack_config("eks-oidc", aws_region=region, oidcProviderArn=None,
                          oidcIssuerUrl=f"https://oidc.eks.{region}.amazonaws.com/id/ABC")
    result = run_pulumi(run, config=config, call_results=call_results)
    inputs = json.dumps([r.inputs for r in result.resources])
    assert "arn:aws:" not in inputs and "123456789012" not in inputs
    interact = policy_input(result.one("aws:iam/policy:Policy"))
    assert interact["Statement"][0]["Resource"] == f"arn:{partition}:iam::210987654321:role/LSE_CustomMetricsExecuteRole"
    assert interact["Statement"][1]["Resource"] == [f"arn:{partition}:lambda:*:210987654321:function:custom-metric-*"]
    trust = trust_input(result.one("aws:iam/role:Role", "lse-custom-metrics-eks-oidc-role"))
    assert trust["Statement"][0]["Principal"]["Federated"] == (
        f"arn:{partition}:iam::210987654321:oidc-provider/oidc.eks.{region}.amazonaws.com/id/ABC")
    outputs = plain(result.outputs)
    assert outputs["env"]["LS_LAMBDA_REGION_CUSTOM_METRICS"] == region
    assert outputs["env"]["LS_LAMBDA_ROLE_CUSTOM_METRICS"] == (
        f"arn:{partition}:iam::210987654321:role/LSE_CustomMetricsExecuteRole")


# --- bad config: a named error, and nothing registered --------------------------------------------------

class WatchedMonitor(pulumi_harness.RecordingMonitor):
    instances: list = []

    def __init__(self, mocks):
        super().__init__(mocks)
        WatchedMonitor.instances.append(self)


D = f"{NS}:deployment"
BAD_CONFIGS = [
    # (name, config, key, variant, words the message must contain)
    ("deployment missing", {**stack_config("ec2-compose"), D: None}, "deployment", None,
     ["missing", "ec2-compose, ec2-instance-profile, eks-oidc, eks-node-role"]),
    ("deployment unknown", stack_config("ec2-compose", deployment="ecs-fargate"), "deployment", None,
     ["unknown value 'ecs-fargate'", "eks-node-role"]),
    ("region missing", stack_config("ec2-compose", aws_region=None), "aws:region", "ec2-compose", ["missing"]),
    ("region bad", stack_config("ec2-compose", aws_region="mars-north-1x"), "aws:region", "ec2-compose",
     ["not an AWS region"]),
    ("prefix wildcard", stack_config("ec2-compose", functionPrefix="custom-*"), "functionPrefix", "ec2-compose",
     ["cannot start a Lambda function name", "A-Z a-z 0-9 _ -"]),
    ("prefix too long", stack_config("ec2-compose", functionPrefix="p" * 41), "functionPrefix", "ec2-compose",
     ["1-40 characters"]),
    ("tags not a map", stack_config("ec2-compose", tags=["a", "b"]), "tags", "ec2-compose", ["must be a map"]),
    ("tags reserved key", stack_config("ec2-compose", tags={"aws:owner": "x"}), "tags", "ec2-compose",
     ["bad tag key 'aws:owner'"]),
    ("tags non-string value", stack_config("ec2-compose", tags={"cost": 12}), "tags", "ec2-compose",
     ["tag 'cost' needs a string value"]),
    ("key of another variant", stack_config("ec2-compose", nodeRoleName="lse-nodes"), "nodeRoleName",
     "ec2-compose", ["only used by deployment 'eks-node-role'", "allowed: cloud, deployment"]),
    ("oidc key on node role", stack_config("eks-node-role", namespace="lse"), "namespace", "eks-node-role",
     ["only used by deployment 'eks-oidc'"]),
    ("instance role bad", stack_config("ec2-instance-profile", instanceRoleName="arn:aws:iam::123456789012:user/x"),
     "instanceRoleName", "ec2-instance-profile", ["is not an IAM role ARN"]),
    ("node role missing", stack_config("eks-node-role", nodeRoleName=None), "nodeRoleName", "eks-node-role",
     ["missing", "an IAM role name"]),
    ("node role bad", stack_config("eks-node-role", nodeRoleName="my role"), "nodeRoleName", "eks-node-role",
     ["is not an IAM role name"]),
    ("oidc missing", stack_config("eks-oidc", oidcProviderArn=None), "oidcProviderArn", "eks-oidc",
     ["missing (or set oidcIssuerUrl instead)"]),
    ("oidc both", stack_config("eks-oidc", oidcIssuerUrl=f"https://{ISSUER}"), "oidcIssuerUrl", "eks-oidc",
     ["not both"]),
    ("oidc arn bad", stack_config("eks-oidc", oidcProviderArn="arn:aws:iam::123456789012:role/x"),
     "oidcProviderArn", "eks-oidc", ["is not an IAM OIDC provider ARN"]),
    ("oidc arn is a url", stack_config("eks-oidc", oidcProviderArn=f"https://{ISSUER}"),
     "oidcProviderArn", "eks-oidc", ["is not an ARN"]),
    ("oidc url http", stack_config("eks-oidc", oidcProviderArn=None, oidcIssuerUrl=f"http://{ISSUER}"),
     "oidcIssuerUrl", "eks-oidc", ["must use https://"]),
    ("namespace missing", stack_config("eks-oidc", namespace=None), "namespace", "eks-oidc", ["missing"]),
    ("namespace bad", stack_config("eks-oidc", namespace="Label_Studio"), "namespace", "eks-oidc",
     ["is not a Kubernetes namespace name"]),
    ("release bad", stack_config("eks-oidc", helmRelease="LSE"), "helmRelease", "eks-oidc",
     ["is not a helm release name"]),
    ("service accounts empty", stack_config("eks-oidc", serviceAccounts=[]), "serviceAccounts", "eks-oidc",
     ["must be a list of names"]),
    ("service accounts not a list", stack_config("eks-oidc", serviceAccounts="lse-ls-app"), "serviceAccounts",
     "eks-oidc", ["must be a list of names"]),
    ("service accounts duplicate", stack_config("eks-oidc", serviceAccounts=["a", "a"]), "serviceAccounts",
     "eks-oidc", ["names must be distinct"]),
    ("service account bad name", stack_config("eks-oidc", serviceAccounts=["lse-ls-app", "Worker"]),
     "serviceAccounts", "eks-oidc", ["'Worker' is not a Kubernetes service account name"]),
    # A misspelt key would otherwise fall back to the default silently (policies on custom-metric-* while
    # LSE deploys acme-*); a GCP key on an AWS stack is a copy-paste mistake.
    ("key misspelt", stack_config("ec2-compose", functionprefix="acme-"), "functionprefix", "ec2-compose",
     ["unknown key for cloud 'aws' (did you mean 'functionPrefix'?)", "allowed: cloud, deployment"]),
    ("gcp key on aws", stack_config("eks-oidc", usePredefinedRoles="true"), "usePredefinedRoles", "eks-oidc",
     ["unknown key for cloud 'aws'", "oidcIssuerUrl"]),
    ("region in our namespace", stack_config("ec2-compose", region="eu-west-1"), "region", "ec2-compose",
     ["(did you mean 'aws:region'?)", "tags, aws:region"]),
    ("cloud missing", {**stack_config("ec2-compose"), f"{NS}:cloud": None}, "cloud", None,
     ["missing", "allowed: aws, gcp"]),
    ("cloud unknown", stack_config("ec2-compose", cloud="azure"), "cloud", None,
     ["unknown value 'azure'", "allowed: aws, gcp"]),
]


@pytest.mark.parametrize("name, config, key, variant, words", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_key_variant_and_allowed_values_before_anything_is_registered(
        monkeypatch, name, config, key, variant, words):
    monkeypatch.setattr(pulumi_harness, "RecordingMonitor", WatchedMonitor)
    WatchedMonitor.instances.clear()
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        run_pulumi(run, config=config)
    error = caught.value
    full_key = key if ":" in key else f"{NS}:{key}"
    assert error.key == full_key
    assert error.variant == variant
    assert error.allowed
    message = str(error)
    assert f"config key '{full_key}'" in message
    if variant:
        assert f"(deployment '{variant}')" in message
    for word in words:
        assert word in message
    monitor = WatchedMonitor.instances[-1]
    assert monitor.recorded == {} and monitor.resources == {}
    assert monitor.mocks.calls == []  # not even an invoke: the config is checked first


@pytest.mark.parametrize("variant", sorted(VARIANT_CONFIGS))
def test_every_iam_document_is_known_at_preview(variant):
    # A document that depends on another resource's output is unknown during `pulumi preview`, where CI runs
    # the policy pack; ours depend only on config and the provider's partition/account.
    result = run_pulumi(run, config=stack_config(variant))
    documents = [(r.name, key) for r in result.resources for key in ("policy", "assumeRolePolicy") if key in r.inputs]
    assert len(documents) == {"ec2-compose": 3, "ec2-instance-profile": 4, "eks-oidc": 4}.get(variant, 3)
    for resource in result.resources:
        for key in ("policy", "assumeRolePolicy"):
            if key in resource.inputs:
                assert resource.property_dependencies.get(key, []) == [], (resource.name, key)


def test_example_stack_marks_its_placeholder_issuer_and_the_readme_says_to_replace_it():
    lines = (ROOT / "Pulumi.aws.yaml").read_text().splitlines()
    issuer = next(i for i, line in enumerate(lines) if line.startswith(f"  {NS}:oidcIssuerUrl:"))
    assert "EXAMPLE" in lines[issuer]
    assert lines[issuer - 1].strip() == "# replace with your cluster's issuer"
    section = (ROOT / "README.md").read_text().split("<!-- section:aws -->", 1)[1].split("<!-- section:", 1)[0]
    assert "EXAMPLED539D4633E53DE1B71EXAMPLE" in section and "Replace it with your cluster's issuer" in section
    for key in ("cloud", "deployment", "oidcIssuerUrl", "namespace"):
        assert f"pulumi config set {NS}:{key} " in section, key
