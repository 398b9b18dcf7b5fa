"""Broken stacks — the real foundation program plus what goes wrong in real life — each caught by exactly
the expected policies, on exactly the resources that broke it.

Each stack is a small Pulumi program run under mocks (`tests/pulumi_harness.py: run_pulumi`); the whole pack
is then applied to every recorded resource and to the stack (`tests/policy_harness.py: apply_pack`), after
the deployment (`preview=False`) and as a first `pulumi preview` would see it (`preview=True`).
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import test_policy_foundations as foundations  # noqa: E402
from cloudsplaining.command.scan_policy_file import scan_policy  # noqa: E402
from cloudsplaining.scan.assume_role_policy_document import AssumeRolePolicyDocument  # noqa: E402
from cloudsplaining.shared.constants import ISSUE_SEVERITY  # noqa: E402
from policy_harness import apply_pack, emitted_aws_documents  # noqa: E402
from pulumi_harness import run_pulumi  # noqa: E402

from lse_custom_metrics.components.aws import (  # noqa: E402
    CustomMetricsExecutionRole,
    CustomMetricsExecutionRoleArgs,
    Ec2InstanceProfileIdentity,
    Ec2InstanceProfileIdentityArgs,
    LambdaInteractPolicy,
    LambdaInteractPolicyArgs,
)
from lse_custom_metrics.components.gcp import (  # noqa: E402
    CustomMetricsDeployerRole,
    CustomMetricsDeployerRoleArgs,
    CustomMetricsProjectServices,
    CustomMetricsProjectServicesArgs,
    CustomMetricsRuntimeServiceAccount,
    CustomMetricsRuntimeServiceAccountArgs,
)
from lse_custom_metrics.components.program import run as foundation_program  # noqa: E402

NS = "lse-custom-metrics"
ACCOUNT = "123456789012"
PROJECT = "acme-labeling"
AWS_STACK = {f"{NS}:cloud": "aws", "aws:region": "us-east-1", f"{NS}:deployment": "ec2-instance-profile",
             f"{NS}:instanceRoleName": "lse-ec2-instance-role"}
GCP_STACK = {f"{NS}:cloud": "gcp", "gcp:project": PROJECT, f"{NS}:deployment": "gce-vm",
             f"{NS}:scopeActAsToRuntimeServiceAccount": True}
EXECUTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/LSE_CustomMetricsExecuteRole"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
APP = f"serviceAccount:lse-app@{PROJECT}.iam.gserviceaccount.com"
CODE = pulumi.AssetArchive({"main.py": pulumi.StringAsset("def lambda_handler(event, context):\n    return {}\n")})


def user_wildcard_policy(action: str) -> Callable[[], None]:
    def add():
        extra = aws.iam.Policy("team-debug-access", policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "Debug", "Effect": "Allow", "Action": action, "Resource": "*"}]}))
        aws.iam.RolePolicyAttachment("team-debug-access", role="lse-ec2-instance-role", policy_arn=extra.arn)
    return add


def irsa_role_without_aud():
    role = aws.iam.Role("lse-irsa-handmade", name="LSE_ServiceAccountApp_v2", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:label-studio:lse-ls-app"}}}]}))
    aws.iam.RolePolicyAttachment("lse-irsa-handmade", role=role.name,
                                 policy_arn=f"arn:aws:iam::{ACCOUNT}:policy/LSE_AllowInteractLambda")


def role_any_account_can_assume():
    """A "shared" debugging role whose trust names every AWS principal, with no condition."""
    aws.iam.Role("lse-debug-shared", name="lse-debug-shared", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                "Action": "sts:AssumeRole"}]}))
    aws.iam.RolePolicyAttachment("lse-debug-shared", role="lse-debug-shared",
                                 policy_arn=f"arn:aws:iam::{ACCOUNT}:policy/LSE_AllowInteractLambda")


def admin_attached_to_instance_role():
    aws.iam.RolePolicyAttachment("lse-admin", role="lse-ec2-instance-role",
                                 policy_arn="arn:aws:iam::aws:policy/AdministratorAccess")


def aws_managed_policy_attached(role: str, policy: str) -> Callable[[], None]:
    def add():
        aws.iam.RolePolicyAttachment("extra-managed-policy", role=role,
                                     policy_arn=f"arn:aws:iam::aws:policy/{policy}")
    return add


def hand_made_execution_role_trusting_ec2():
    """The components wired by hand, with the execution role written inline — and EC2 added to its trust
    "to debug the metric on an instance"."""
    role = aws.iam.Role("metrics-exec", name="LSE_CustomMetricsExecuteRole", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}))
    interact = LambdaInteractPolicy("interact", LambdaInteractPolicyArgs(
        partition="aws", account_id=ACCOUNT, execution_role_arn=role.arn))
    Ec2InstanceProfileIdentity("lse-ec2", Ec2InstanceProfileIdentityArgs(
        policy_arn=interact.policy_arn, instance_role="lse-ec2-instance-role"))


def lambda_metric_function(memory: int, timeout: int) -> Callable[[], None]:
    def add():
        aws.lambda_.Function("custom-metric-7", name="custom-metric-7-1764790000", runtime="python3.13",
                             handler="main.lambda_handler", role=EXECUTION_ROLE_ARN, code=CODE,
                             memory_size=memory, timeout=timeout, reserved_concurrent_executions=1)
    return add


def public_lambda_permission():
    lambda_metric_function(256, 60)()
    aws.lambda_.Permission("custom-metric-7-public", function="custom-metric-7-1764790000",
                           action="lambda:InvokeFunction", principal="*")


def gcf_metric_function(memory: str, timeout: int, name: str = "custom-metric-7-1764790000"
                        ) -> Callable[[], None]:
    def add():
        gcp.cloudfunctionsv2.Function(
            "custom-metric-7", name=name, location="us-central1", project=PROJECT,
            build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(
                runtime="python313", entry_point="agreement_handler"),
            service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
                available_memory=memory, timeout_seconds=timeout, max_instance_count=1,
                ingress_settings="ALLOW_INTERNAL_ONLY",
                service_account_email=f"lse-custom-metrics-runtime@{PROJECT}.iam.gserviceaccount.com"))
    return add


def public_run_invoker():
    gcf_metric_function("256M", 60)()
    gcp.cloudrunv2.ServiceIamMember("custom-metric-7-public", name="custom-metric-7-1764790000",
                                    location="us-central1", project=PROJECT, role="roles/run.invoker",
                                    member="allUsers")


def iam_binding():
    gcp.projects.IAMBinding("log-viewers", project=PROJECT, role="roles/logging.viewer", members=[APP])


def editor_for_lse():
    gcp.projects.IAMMember("lse-editor", project=PROJECT, role="roles/editor", member=APP)


def api_disabled_on_destroy():
    gcp.projects.Service("extra-secretmanager", project=PROJECT, service="secretmanager.googleapis.com",
                         disable_on_destroy=True)


def wildcard_workload_identity():
    gcp.serviceaccount.IAMMember(
        "lse-wi-everyone", service_account_id=f"projects/{PROJECT}/serviceAccounts/lse-app@{PROJECT}.iam."
                                              f"gserviceaccount.com",
        role="roles/iam.workloadIdentityUser", member=f"serviceAccount:{PROJECT}.svc.id.goog[labeling/*]")


def fatter_deployer_role():
    gcp.projects.IAMCustomRole("metrics-deployer-plus", project=PROJECT, role_id="MetricsDeployerPlus",
                               title="Metrics deployer plus", permissions=[
                                   "cloudfunctions.functions.create", "cloudfunctions.functions.setIamPolicy"])


def deployer_role_granted_on_a_service_account():
    """GCP components wired by hand, the deployer role granted on the app's service account (which lets the
    app's identity do nothing in the project) instead of on the project."""
    services = CustomMetricsProjectServices("apis", CustomMetricsProjectServicesArgs(project=PROJECT))
    CustomMetricsRuntimeServiceAccount("fn", CustomMetricsRuntimeServiceAccountArgs(
        project=PROJECT, depends_on=services.resources))
    role = CustomMetricsDeployerRole("role", CustomMetricsDeployerRoleArgs(
        project=PROJECT, scope_act_as_to_runtime_service_account=True))
    gcp.serviceaccount.IAMMember(
        "deployer-on-app-sa", service_account_id=f"projects/{PROJECT}/serviceAccounts/lse-app@{PROJECT}.iam."
                                                 f"gserviceaccount.com",
        role=f"projects/{PROJECT}/roles/LSE_CustomMetricsDeployer", member=APP,
        opts=pulumi.ResourceOptions(depends_on=[role]))


def only_an_execution_role():
    aws.iam.Role("exec", name="LSE_CustomMetricsExecuteRole", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))


# name: (base stack config or None for a bare program, addition, expected mandatory, resources they're on)
BROKEN = {
    "user-service-wildcard-policy": (
        AWS_STACK, user_wildcard_policy("s3:*"),
        {"iam-no-wildcard-actions", "iam-wildcard-resource-only-listfunctions"}, {"team-debug-access"}),
    "user-star-policy": (
        AWS_STACK, user_wildcard_policy("*"),
        {"iam-no-wildcard-actions", "iam-wildcard-resource-only-listfunctions", "lambda-actions-scoped-to-prefix",
         "passrole-only-execution-role"}, {"team-debug-access"}),
    "admin-attached": (AWS_STACK, admin_attached_to_instance_role, {"iam-no-wildcard-actions"}, {"lse-admin"}),
    "lambda-execute-on-instance-role": (
        AWS_STACK, aws_managed_policy_attached("lse-ec2-instance-role", "AWSLambdaExecute"),
        {"iam-no-wildcard-actions"}, {"extra-managed-policy"}),
    "aws-managed-policy-on-execution-role": (
        AWS_STACK, aws_managed_policy_attached("LSE_CustomMetricsExecuteRole",
                                               "service-role/AWSLambdaBasicExecutionRole"),
        {"iam-no-wildcard-actions"}, {"extra-managed-policy"}),
    "irsa-role-without-aud": (AWS_STACK, irsa_role_without_aud, {"irsa-trust-pinned"}, {"lse-irsa-handmade"}),
    "role-any-account-can-assume": (
        AWS_STACK, role_any_account_can_assume, {"iam-trust-no-wildcard-principal"}, {"lse-debug-shared"}),
    "execution-role-trusting-ec2": (
        None, hand_made_execution_role_trusting_ec2, {"execution-role-trusts-lambda-only"}, {"metrics-exec"}),
    "lambda-1gb-300s": (
        AWS_STACK, lambda_metric_function(1024, 300), {"metric-function-runtime-limits"}, {"custom-metric-7"}),
    "lambda-public-invoke": (
        AWS_STACK, public_lambda_permission, {"metric-function-runtime-limits"}, {"custom-metric-7-public"}),
    "aws-foundation-missing": (None, only_an_execution_role, {"foundation-complete"}, set()),
    "gcp-deployer-role-on-a-service-account": (
        None, deployer_role_granted_on_a_service_account, {"foundation-complete"}, set()),
    "gcp-iam-binding": (GCP_STACK, iam_binding, {"gcp-iam-non-authoritative"}, {"log-viewers"}),
    "gcf-1gb-300s": (
        GCP_STACK, gcf_metric_function("1Gi", 300), {"metric-function-runtime-limits"}, {"custom-metric-7"}),
    "gcf-full-name-1gb-300s": (
        GCP_STACK, gcf_metric_function("1Gi", 300, f"projects/{PROJECT}/locations/us-central1/functions/custom-metric-7"),
        {"metric-function-runtime-limits"}, {"custom-metric-7"}),
    "gcf-public-invoker": (
        GCP_STACK, public_run_invoker, {"gcp-no-public-members", "metric-function-runtime-limits"},
        {"custom-metric-7-public"}),
    "gcp-editor": (GCP_STACK, editor_for_lse, {"gcp-no-primitive-roles"}, {"lse-editor"}),
    "gcp-api-disabled-on-destroy": (
        GCP_STACK, api_disabled_on_destroy, {"gcp-services-kept-on-destroy"}, {"extra-secretmanager"}),
    "gcp-wildcard-workload-identity": (
        GCP_STACK, wildcard_workload_identity, {"gcp-workload-identity-member-format"}, {"lse-wi-everyone"}),
    "gcp-fatter-deployer-role": (
        GCP_STACK, fatter_deployer_role, {"gcp-deployer-role-allowlist"}, {"metrics-deployer-plus"}),
}


def run_stack(base, add):
    """The foundation program for stack config `base` (None: no foundation), plus the resources `add` makes."""

    def program():
        if base is not None:
            foundation_program()
        add()

    return run_pulumi(program, config=base or {})


def run_broken(name: str):
    base, add, _, _ = BROKEN[name]
    return run_stack(base, add)


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_broken_stack_is_caught_by_exactly_the_expected_policies(name, preview):
    _, _, expected, culprits = BROKEN[name]
    report = apply_pack(run_broken(name), preview=preview)
    assert report.mandatory == expected, report.explain()
    assert report.advisory == set(), report.explain()
    flagged = {d.resource.rsplit("::", 1)[-1] for d in report.violations if d.policy != "foundation-complete"}
    assert flagged == culprits, report.explain()


# --- and what real stacks legitimately add next to the foundation: no violation ----------------------------

def lambda_edge_role():
    """A CloudFront Lambda@Edge function's role: Lambda@Edge requires trusting lambda and edgelambda."""
    aws.iam.Role("cdn-edge-rewrite", name="cdn-edge-rewrite", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}))


def github_actions_preview_role():
    """The role the README's CI job assumes (aws-actions/configure-aws-credentials), pinned to one branch."""
    github = "token.actions.githubusercontent.com"
    aws.iam.Role("lse-ci-preview", name="lse-ci-preview", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{github}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{github}:sub": "repo:acme/infra:ref:refs/heads/main",
                                           f"{github}:aud": "sts.amazonaws.com"}}}]}))


def interact_policy_in_managed_policy_arns():
    """The components wired by hand; the instance role lists the interact policy in `managed_policy_arns`."""
    execution = CustomMetricsExecutionRole("exec", CustomMetricsExecutionRoleArgs(partition="aws",
                                                                                  account_id=ACCOUNT))
    interact = LambdaInteractPolicy("interact", LambdaInteractPolicyArgs(
        partition="aws", account_id=ACCOUNT, execution_role_arn=execution.role_arn))
    aws.iam.Role("lse-ec2", name="lse-ec2", managed_policy_arns=[interact.policy_arn],
                 assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                     "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))


def gcf_metric_function_by_full_name_in_bytes():
    """A metric function named by its full resource path, with 256 Mi written as plain bytes."""
    gcp.cloudfunctionsv2.Function(
        "custom-metric-7", name=f"projects/{PROJECT}/locations/us-central1/functions/custom-metric-7-1764790000",
        location="us-central1", project=PROJECT,
        build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(runtime="python313", entry_point="agreement_handler"),
        service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
            available_memory="268435456", timeout_seconds=60, max_instance_count=1,
            ingress_settings="ALLOW_INTERNAL_ONLY",
            service_account_email=f"lse-custom-metrics-runtime@{PROJECT}.iam.gserviceaccount.com"))


def account_settings_reader():
    """A policy that also reads the account's Lambda settings (no resource-level permissions: "*")."""
    extra = aws.iam.Policy("lambda-account-settings", policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:GetAccountSettings", "Resource": "*"}]}))
    aws.iam.RolePolicyAttachment("lambda-account-settings", role="lse-ec2-instance-role", policy_arn=extra.arn)


ALLOWED_ACTIONS = ["lambda:ListFunctions", "lambda:GetAccountSettings"]

# name: (base stack config or None for a bare program, addition, pack config or None)
LEGITIMATE = {
    "gcf-metric-function-full-name-bytes": (GCP_STACK, gcf_metric_function_by_full_name_in_bytes, None),
    # an action added to allowedActions, on both policies that judge Resource "*", passes both
    "allowed-action-on-star": (AWS_STACK, account_settings_reader, {
        "iam-wildcard-resource-only-listfunctions": {"allowedActions": ALLOWED_ACTIONS},
        "lambda-actions-scoped-to-prefix": {"allowedActions": ALLOWED_ACTIONS}}),
    "interact-policy-in-managed-policy-arns": (None, interact_policy_in_managed_policy_arns, None),
    "ssm-core-on-instance-role": (
        AWS_STACK, aws_managed_policy_attached("lse-ec2-instance-role", "AmazonSSMManagedInstanceCore"), None),
    "lambda-edge-role": (AWS_STACK, lambda_edge_role, None),
    "github-actions-preview-role": (AWS_STACK, github_actions_preview_role, None),
}


def run_legitimate(name: str):
    base, add, _ = LEGITIMATE[name]
    return run_stack(base, add)


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_legitimate_additions_pass_the_whole_pack(name, preview):
    _, _, config = LEGITIMATE[name]
    report = apply_pack(run_legitimate(name), config=config, preview=preview)
    assert report.mandatory == set() and report.advisory == set(), report.explain()
    if not preview:
        assert report.undecided == [], report.explain()


# --- parliament and cloudsplaining over the documents the broken stacks add -------------------------------

def lint(document: dict, kind: str) -> dict:
    """What each linter reports on one document: parliament's (issue, severity) findings, and cloudsplaining's
    risks with findings, by severity (identity-policy scan, or its trust-policy checks for a trust)."""
    if kind == "policy":
        results = scan_policy(document)
        risks = {risk: result["severity"] for risk, result in results.items()
                 if isinstance(result, dict) and result["findings"]}
    else:
        trust = AssumeRolePolicyDocument(document)
        risks = {risk: ISSUE_SEVERITY[risk] for risk, found in (
            ("AssumableByAnyPrincipal", trust.role_assumable_by_any_principal),
            ("AssumableByAnyPrincipalWithConditions", trust.role_assumable_by_any_principal_with_conditions),
            ("AssumableByCrossAccountPrincipal", trust.role_assumable_by_cross_account_principals),
            ("AssumableByComputeService", trust.role_assumable_by_compute_services)) if found}
    return {"parliament": foundations.parliament_findings(document), "cloudsplaining": risks}


# parliament lints identity policies only: every trust policy gets its MALFORMED (no Resource) finding, and
# a federated one UNKNOWN_FEDERATION_SOURCE (its list predates IAM OIDC providers) — see the README.
TRUST_BLIND_SPOT = [("MALFORMED", "HIGH")]
FEDERATED_BLIND_SPOT = sorted(TRUST_BLIND_SPOT + [("UNKNOWN_FEDERATION_SOURCE", "MEDIUM")])
ALL_RISKS = {"ServiceWildcard": "medium", "PrivilegeEscalation": "high", "DataExfiltration": "medium",
             "ResourceExposure": "high", "CredentialsExposure": "high", "InfrastructureModification": "low"}
# broken stack -> "resource/property" -> what the linters say about each document it adds to the foundation's
BROKEN_DOCUMENT_LINTS = {
    "user-service-wildcard-policy": {"team-debug-access/policy": {
        "parliament": [("RESOURCE_STAR", "LOW")],
        "cloudsplaining": {k: ALL_RISKS[k] for k in ("ServiceWildcard", "DataExfiltration", "ResourceExposure",
                                                      "InfrastructureModification")}}},
    # parliament reports nothing at all on Action "*" / Resource "*": the pack and cloudsplaining do
    "user-star-policy": {"team-debug-access/policy": {"parliament": [], "cloudsplaining": ALL_RISKS}},
    "role-any-account-can-assume": {"lse-debug-shared/assumeRolePolicy": {
        "parliament": TRUST_BLIND_SPOT, "cloudsplaining": {"AssumableByAnyPrincipal": "critical"}}},
    # neither linter reads the conditions of a web-identity trust: only the pack catches the missing aud
    "irsa-role-without-aud": {"lse-irsa-handmade/assumeRolePolicy": {
        "parliament": FEDERATED_BLIND_SPOT, "cloudsplaining": {}}},
    "execution-role-trusting-ec2": {"metrics-exec/assumeRolePolicy": {
        "parliament": TRUST_BLIND_SPOT, "cloudsplaining": {"AssumableByComputeService": "low"}}},
    "aws-foundation-missing": {"exec/assumeRolePolicy": {
        "parliament": TRUST_BLIND_SPOT, "cloudsplaining": {"AssumableByComputeService": "low"}}},
}


def added_documents(run) -> dict[str, tuple[str, dict]]:
    known = foundations.every_emitted_document()
    return {f"{resource}/{prop}": (prop, document) for resource, prop, document in emitted_aws_documents(run)
            if json.dumps(document, sort_keys=True) not in known}


@pytest.mark.parametrize("name", sorted(n for n in BROKEN if BROKEN[n][0] is not GCP_STACK))
def test_parliament_and_cloudsplaining_over_the_broken_stacks_documents(name):
    # Stacks not listed add no IAM document (an attachment of an AWS-managed policy, a function, ...): the
    # linters have nothing of theirs to read, and the pack is what catches them.
    found = {where: lint(document, "policy" if prop == "policy" else "trust")
             for where, (prop, document) in added_documents(run_broken(name)).items()}
    assert found == BROKEN_DOCUMENT_LINTS.get(name, {})


def test_the_linters_agree_on_the_worst_trust_and_the_compute_services():
    trust = AssumeRolePolicyDocument(added_documents(run_broken("execution-role-trusting-ec2"))[
        "metrics-exec/assumeRolePolicy"][1])
    assert sorted(trust.role_assumable_by_compute_services) == ["ec2", "lambda"]
    anyone = AssumeRolePolicyDocument(added_documents(run_broken("role-any-account-can-assume"))[
        "lse-debug-shared/assumeRolePolicy"][1])
    assert anyone.role_assumable_by_any_principal == ["*"]
