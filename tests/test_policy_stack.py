"""foundation-complete (the stack policy) through its own `validate`, with `StackValidationArgs` built the way
`AnalyzeStack` builds them: each resource's outputs behind the unknown-checking proxy, property
dependencies as resources."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from policy_harness import UNKNOWN, StackItem, validate_stack  # noqa: E402

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/LSE_CustomMetricsExecuteRole"
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/LSE_AllowInteractLambda"
PROJECT = "acme-labeling"
RUNTIME_EMAIL = f"lse-custom-metrics-runtime@{PROJECT}.iam.gserviceaccount.com"
APP = f"serviceAccount:lse-app@{PROJECT}.iam.gserviceaccount.com"
SERVICES = ["cloudfunctions.googleapis.com", "cloudbuild.googleapis.com", "storage.googleapis.com",
            "logging.googleapis.com", "artifactregistry.googleapis.com", "run.googleapis.com",
            "iam.googleapis.com"]
PREDEFINED = ["roles/cloudfunctions.developer", "roles/run.invoker", "roles/storage.objectAdmin",
              "roles/logging.viewer", "roles/iam.serviceAccountUser"]


def execution_role() -> StackItem:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    return StackItem("aws:iam/role:Role", "exec", {"name": "LSE_CustomMetricsExecuteRole", "arn": ROLE_ARN,
                                                   "assumeRolePolicy": json.dumps(trust)})


def interact_policy(pass_role=ROLE_ARN, document=None) -> StackItem:
    document = document if document is not None else json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": pass_role},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"],
         "Resource": f"arn:aws:lambda:*:{ACCOUNT}:function:custom-metric-*"}]})
    return StackItem("aws:iam/policy:Policy", "interact",
                     {"name": "LSE_AllowInteractLambda", "arn": POLICY_ARN, "policy": document})


def attachment(policy_arn=POLICY_ARN, depends_on=()) -> StackItem:
    return StackItem("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "attach",
                     {"role": "lse-node-role", "policyArn": policy_arn}, {"policyArn": list(depends_on)})


def test_complete_aws_stack_passes():
    assert validate_stack([execution_role(), interact_policy(), attachment()]).passed


def test_attachment_recognised_through_its_dependency_while_the_arn_is_unknown():
    assert validate_stack([execution_role(), interact_policy(), attachment(UNKNOWN, ["interact"])]).passed


def test_aws_stack_without_execution_role_is_caught():
    outcome = validate_stack([interact_policy(), attachment()])
    assert outcome.violations == [
        "no Lambda execution role: the stack must create the role the metric functions run as "
        "(`LSE_CustomMetricsExecuteRole`, trusted by lambda.amazonaws.com); use CustomMetricsExecutionRole / "
        "AwsCustomMetricsFoundation."]


def test_aws_stack_without_interact_policy_or_attachment_is_caught():
    missing = validate_stack([execution_role()])
    assert len(missing.violations) == 1 and missing.violations[0].startswith("no interact policy")
    unattached = validate_stack([execution_role(), interact_policy()])
    assert unattached.violations == [
        "policy `LSE_AllowInteractLambda` is not attached to any identity: attach it to the IAM user, instance "
        "role, IRSA role or node role LSE runs as."]


def test_interact_policy_passing_another_role_is_caught():
    other = f"arn:aws:iam::{ACCOUNT}:role/SomeOtherRole"
    outcome = validate_stack([execution_role(), interact_policy(pass_role=other), attachment()])
    assert outcome.violations == [
        f"policy `LSE_AllowInteractLambda` passes ['{other}'] but this stack's execution role is ['{ROLE_ARN}']: "
        f"iam:PassRole must name the role the functions run as."]


def test_unknown_interact_document_is_undecided():
    outcome = validate_stack([execution_role(), interact_policy(document=UNKNOWN), attachment()])
    assert outcome.violations == [] and outcome.undecided == (
        "string value at .interact.policy can't be known during preview")


def gcp_stack(services=SERVICES, *, custom_role=True, predefined=(), runtime_grant=True) -> list[StackItem]:
    items = [StackItem("gcp:projects/service:Service", f"svc-{s}", {"service": s, "project": PROJECT,
                                                                     "disableOnDestroy": False})
             for s in services]
    items.append(StackItem("gcp:serviceaccount/account:Account", "runtime", {
        "accountId": "lse-custom-metrics-runtime", "email": RUNTIME_EMAIL,
        "member": f"serviceAccount:{RUNTIME_EMAIL}"}))
    if runtime_grant:
        items.append(StackItem("gcp:projects/iAMMember:IAMMember", "runtime-logs", {
            "project": PROJECT, "role": "roles/logging.logWriter", "member": f"serviceAccount:{RUNTIME_EMAIL}"}))
    if custom_role:
        items.append(StackItem("gcp:projects/iAMCustomRole:IAMCustomRole", "deployer", {
            "roleId": "LSE_CustomMetricsDeployer", "name": f"projects/{PROJECT}/roles/LSE_CustomMetricsDeployer",
            "permissions": ["cloudfunctions.functions.create"]}))
        items.append(StackItem("gcp:projects/iAMMember:IAMMember", "deployer-grant", {
            "project": PROJECT, "role": f"projects/{PROJECT}/roles/LSE_CustomMetricsDeployer", "member": APP}))
    for role in predefined:
        items.append(StackItem("gcp:projects/iAMMember:IAMMember", f"grant-{role}",
                               {"project": PROJECT, "role": role, "member": APP}))
    return items


def test_complete_gcp_stacks_pass():
    assert validate_stack(gcp_stack()).passed
    assert validate_stack(gcp_stack(custom_role=False, predefined=PREDEFINED)).passed


def test_gcp_stack_missing_apis_is_caught():
    outcome = validate_stack(gcp_stack(services=SERVICES[:-2]))
    assert outcome.violations == [
        "APIs not enabled by this stack: run.googleapis.com, iam.googleapis.com; enable them with "
        "`projects.Service` (disable_on_destroy=False) — CustomMetricsProjectServices."]


def test_gcp_stack_without_deployer_permissions_is_caught():
    outcome = validate_stack(gcp_stack(custom_role=False, predefined=PREDEFINED[:-1]))
    assert len(outcome.violations) == 1
    assert outcome.violations[0].startswith("LSE's identity gets no deployer permissions")


def test_runtime_account_without_log_writer_is_caught():
    outcome = validate_stack(gcp_stack(runtime_grant=False))
    assert outcome.violations == ["runtime service account `lse-custom-metrics-runtime` lacks "
                                  "`roles/logging.logWriter` (its functions could not write logs)."]


def test_a_stack_without_cloud_resources_is_not_applicable():
    outcome = validate_stack([StackItem("random:index/randomId:RandomId", "id", {"byteLength": 4})])
    assert outcome.violations == [] and outcome.undecided == "not applicable: the stack has no AWS or GCP resources"
