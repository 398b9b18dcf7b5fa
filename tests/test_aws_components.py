"""The AWS components used directly, as another stack would import them (awsx style)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

sys.path.insert(0, str(Path(__file__).parent))

from pack_check import pack_check  # noqa: E402,F401  (the whole pack on every run)
from pulumi_harness import run_pulumi  # noqa: E402

from lse_custom_metrics.components import AwsCustomMetricsFoundation as LazyFoundation  # noqa: E402
from lse_custom_metrics.components.aws import (  # noqa: E402
    AwsCustomMetricsFoundation,
    AwsCustomMetricsFoundationArgs,
    CustomMetricsExecutionRole,
    CustomMetricsExecutionRoleArgs,
    Ec2ComposeIdentity,
    Ec2ComposeIdentityArgs,
    Ec2InstanceProfileIdentity,
    Ec2InstanceProfileIdentityArgs,
    EksNodeRoleIdentity,
    EksNodeRoleIdentityArgs,
    EksOidcIdentity,
    EksOidcIdentityArgs,
    LambdaInteractPolicy,
    LambdaInteractPolicyArgs,
)

POLICY_ARN = "arn:aws:iam::123456789012:policy/LSE_AllowInteractLambda"
ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"


def test_public_names_resolve_through_the_lazy_components_package():
    assert LazyFoundation is AwsCustomMetricsFoundation


NO_ROLE, NO_POLICY = "no Lambda execution role", "no interact policy"
NOT_ATTACHED = "policy `LSE_AllowInteractLambda` is not attached"


# Each component on its own: every policy of the pack passes; foundation-complete names exactly the pieces
# the other components would add.
@pytest.mark.parametrize("build, token, children, advisory, missing", [
    (lambda: CustomMetricsExecutionRole("x", CustomMetricsExecutionRoleArgs(partition="aws", account_id="123456789012")),
     "lse-custom-metrics:aws:ExecutionRole", {("aws:iam/role:Role", "x-role"), ("aws:iam/rolePolicy:RolePolicy", "x-logs")},
     set(), [NO_POLICY]),
    (lambda: LambdaInteractPolicy("x", LambdaInteractPolicyArgs(
        partition="aws", account_id="123456789012",
        execution_role_arn="arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole")),
     "lse-custom-metrics:aws:LambdaInteractPolicy", {("aws:iam/policy:Policy", "x-policy")}, set(),
     [NO_ROLE, NOT_ATTACHED]),
    (lambda: Ec2ComposeIdentity("x", Ec2ComposeIdentityArgs(policy_arn=POLICY_ARN)),
     "lse-custom-metrics:aws:Ec2ComposeIdentity",
     {("aws:iam/user:User", "x-user"), ("aws:iam/userPolicyAttachment:UserPolicyAttachment", "x-policy-attachment"),
      ("aws:iam/accessKey:AccessKey", "x-access-key")}, {"no-static-access-keys"}, [NO_ROLE, NO_POLICY]),
    (lambda: Ec2InstanceProfileIdentity("x", Ec2InstanceProfileIdentityArgs(policy_arn=POLICY_ARN)),
     "lse-custom-metrics:aws:Ec2InstanceProfileIdentity",
     {("aws:iam/role:Role", "x-role"), ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "x-policy-attachment"),
      ("aws:iam/instanceProfile:InstanceProfile", "x-instance-profile")}, set(), [NO_ROLE, NO_POLICY]),
    (lambda: Ec2InstanceProfileIdentity("x", Ec2InstanceProfileIdentityArgs(policy_arn=POLICY_ARN,
                                                                            instance_role="lse-ec2")),
     "lse-custom-metrics:aws:Ec2InstanceProfileIdentity",
     {("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "x-policy-attachment")}, set(), [NO_ROLE, NO_POLICY]),
    (lambda: EksOidcIdentity("x", EksOidcIdentityArgs(policy_arn=POLICY_ARN, partition="aws",
                                                      account_id="123456789012", oidc_provider=ISSUER,
                                                      namespace="lse")),
     "lse-custom-metrics:aws:EksOidcIdentity",
     {("aws:iam/role:Role", "x-role"), ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "x-policy-attachment")},
     set(), [NO_ROLE, NO_POLICY]),
    (lambda: EksNodeRoleIdentity("x", EksNodeRoleIdentityArgs(policy_arn=POLICY_ARN, node_role="nodes")),
     "lse-custom-metrics:aws:EksNodeRoleIdentity",
     {("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "x-policy-attachment")}, set(), [NO_ROLE, NO_POLICY]),
])
def test_each_component_has_its_token_and_named_children_under_it(build, token, children, advisory, missing,
                                                                  pack_check):
    pack_check.expect(advisory=advisory, missing=missing)
    result = run_pulumi(build)
    component = result.one(token, "x")
    assert not component.custom
    assert {(r.type, r.name) for r in result.resources if r.parent == component.urn} == children
    assert {(r.type, r.name) for r in result.resources if r.custom} == children
    assert result.calls == []  # plain partition/account given: no invoke


def test_execution_role_option_without_create_log_group(pack_check):
    # the pack configured as such a stack would configure it (its prefix, no account-wide CreateLogGroup)
    pack_check.expect(missing=[NO_POLICY], config={
        "lambda-actions-scoped-to-prefix": {"prefix": "acme-", "allowAccountWideCreateLogGroup": False},
        "iam-wildcard-resource-only-listfunctions": {"allowAccountWideCreateLogGroup": False},
        "foundation-complete": {"prefix": "acme-"}})

    def program():
        CustomMetricsExecutionRole("x", CustomMetricsExecutionRoleArgs(
            partition="aws-us-gov", account_id="123456789012", function_prefix="acme-",
            allow_create_log_group=False, tags={"team": "ml"}))

    result = run_pulumi(program)
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy["Statement"] == [
        {"Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": ["arn:aws-us-gov:logs:*:123456789012:log-group:/aws/lambda/acme-*"]},
        {"Effect": "Allow", "Action": ["logs:PutRetentionPolicy"],
         "Resource": ["arn:aws-us-gov:logs:*:123456789012:log-group:/aws/lambda/acme-*"]}]
    assert result.one("aws:iam/role:Role").inputs["tags"] == {"team": "ml"}


def test_foundation_documents_are_known_at_preview_and_attachments_follow_the_arns():
    def program():
        AwsCustomMetricsFoundation("lse", AwsCustomMetricsFoundationArgs(
            deployment="eks-node-role", node_role="nodes", region="eu-west-1", partition="aws",
            account_id="123456789012"))

    result = run_pulumi(program)
    role = result.one("aws:iam/role:Role", "lse-execution-role")
    policy = result.one("aws:iam/policy:Policy", "lse-interact-policy")
    attachment = result.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    role_policy = result.one("aws:iam/rolePolicy:RolePolicy")
    # PassRole names the execution role by an ARN built from partition, account and name, so the document
    # depends on no resource: `pulumi preview` (and the policy pack there) sees it whole.
    assert policy.property_dependencies.get("policy", []) == [] and policy.dependencies == []
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Resource"] == role.outputs["arn"]
    assert policy.urn in attachment.property_dependencies["policyArn"]
    assert role.urn in role_policy.property_dependencies["role"]
    assert result.calls == []  # region, partition and account given: no invoke at all


def test_foundation_asks_the_provider_for_what_it_is_not_given():
    holder = {}

    def program():
        holder["f"] = AwsCustomMetricsFoundation("lse", AwsCustomMetricsFoundationArgs(deployment="ec2-instance-profile"))

    result = run_pulumi(program)
    assert sorted(token for token, _ in result.calls) == [
        "aws:index/getCallerIdentity:getCallerIdentity", "aws:index/getPartition:getPartition",
        "aws:index/getRegion:getRegion"]
    env = _sync_await(holder["f"].env.future())
    assert env == {"LS_LAMBDA_REGION_CUSTOM_METRICS": "us-east-1",
                   "LS_LAMBDA_ROLE_CUSTOM_METRICS": "arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole"}


def test_inputs_known_only_later_are_parsed_in_apply(pack_check):
    pack_check.expect(missing=[NO_ROLE, NO_POLICY])

    def program():
        later = pulumi.Output.from_input("arn:aws:iam::123456789012:role/eks/nodes/NodeRole")
        EksNodeRoleIdentity("x", EksNodeRoleIdentityArgs(policy_arn=POLICY_ARN, node_role=later))
        EksOidcIdentity("y", EksOidcIdentityArgs(
            policy_arn=POLICY_ARN, partition=pulumi.Output.from_input("aws"),
            account_id=pulumi.Output.from_input("123456789012"),
            oidc_provider=pulumi.Output.from_input(f"https://{ISSUER}"), namespace="lse",
            service_accounts=pulumi.Output.from_input(["a", "b"])))

    result = run_pulumi(program)
    assert result.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "x-policy-attachment").inputs["role"] == "NodeRole"
    trust = json.loads(result.one("aws:iam/role:Role", "y-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"}
    assert trust["Statement"][0]["Condition"]["StringEquals"][f"{ISSUER}:sub"] == [
        "system:serviceaccount:lse:a", "system:serviceaccount:lse:b"]


def test_a_plain_bad_role_fails_at_construction():
    def program():
        EksNodeRoleIdentity("x", EksNodeRoleIdentityArgs(policy_arn=POLICY_ARN,
                                                         node_role="arn:aws:iam::123456789012:user/bob"))

    with pytest.raises(ValueError, match="is not an IAM role ARN"):
        run_pulumi(program)


@pytest.mark.parametrize("args, message", [
    (dict(deployment="lambda"), "deployment 'lambda' is not one of ec2-compose, ec2-instance-profile, eks-oidc, eks-node-role"),
    (dict(deployment="eks-oidc", namespace="lse"), "deployment 'eks-oidc' needs 'oidc_provider'"),
    (dict(deployment="eks-oidc", oidc_provider=ISSUER), "deployment 'eks-oidc' needs 'namespace'"),
    (dict(deployment="eks-node-role"), "deployment 'eks-node-role' needs 'node_role'"),
    (dict(deployment="ec2-compose", node_role="nodes"), "'node_role' belongs to deployment 'eks-node-role', not 'ec2-compose'"),
    (dict(deployment="eks-node-role", node_role="n", instance_role="i"),
     "'instance_role' belongs to deployment 'ec2-instance-profile', not 'eks-node-role'"),
])
def test_foundation_args_are_checked(args, message):
    with pytest.raises(ValueError) as caught:
        AwsCustomMetricsFoundationArgs(**args).check()
    assert str(caught.value) == message


def test_a_plain_bad_oidc_issuer_fails_at_construction():
    def program():
        EksOidcIdentity("x", EksOidcIdentityArgs(policy_arn=POLICY_ARN, partition="aws", account_id="123456789012",
                                                 oidc_provider=f"http://{ISSUER}", namespace="lse"))

    with pytest.raises(ValueError, match="must use https://"):
        run_pulumi(program)


def test_every_run_here_goes_through_the_whole_pack(pack_check):
    # the fixture is not a formality: a run the pack rejects fails the test that made it
    pack_check.expect(missing=[NO_POLICY])
    with pytest.raises(AssertionError, match=r"\[mandatory\] lambda-actions-scoped-to-prefix on .*x-logs"):
        run_pulumi(lambda: CustomMetricsExecutionRole("x", CustomMetricsExecutionRoleArgs(
            partition="aws", account_id="123456789012", function_prefix="acme-")))  # the pack expects custom-metric-
    assert pack_check.checked == 0
    run_pulumi(lambda: CustomMetricsExecutionRole("y", CustomMetricsExecutionRoleArgs(
        partition="aws", account_id="123456789012")))
    assert pack_check.checked == 1


def test_readme_components_snippet_runs_with_a_clusters_oidc_provider_output():
    from types import SimpleNamespace

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("<!-- section:aws -->", 1)[1].split("<!-- section:", 1)[0]
    snippet = section.split("### Using the components in your own stack", 1)[1].split("```python\n", 1)[1]
    snippet = snippet.split("```", 1)[0]
    issuer = "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"

    def program():
        # what pulumi_eks gives: cluster.core.oidc_provider.arn, an Output known only after the cluster exists
        arn = pulumi.Output.from_input(f"arn:aws:iam::123456789012:oidc-provider/{issuer}")
        cluster = SimpleNamespace(core=SimpleNamespace(oidc_provider=SimpleNamespace(arn=arn)))
        exec(compile(snippet, "README.md (AWS components)", "exec"), {"cluster": cluster})

    run = run_pulumi(program)
    assert "eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/LSE_ServiceAccountApp" in (
        run.outputs["lseHelmValues"])
    trust = json.loads(run.one("aws:iam/role:Role", "lse-custom-metrics-eks-oidc-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"][f"{issuer}:sub"] == [
        "system:serviceaccount:label-studio:lse-ls-app", "system:serviceaccount:label-studio:lse-ls-rqworker"]
