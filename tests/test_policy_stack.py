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


def instance_role(managed_policy_arns, depends_on=()) -> StackItem:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    return StackItem("aws:iam/role:Role", "lse-ec2", {
        "name": "lse-ec2", "arn": f"arn:aws:iam::{ACCOUNT}:role/lse-ec2", "assumeRolePolicy": json.dumps(trust),
        "managedPolicyArns": managed_policy_arns}, {"managedPolicyArns": list(depends_on)})


def test_interact_policy_attached_through_a_roles_managed_policy_arns_counts():
    assert validate_stack([execution_role(), interact_policy(), instance_role([POLICY_ARN])]).passed
    # while the ARN is unknown (preview), through the dependency the engine recorded
    assert validate_stack([execution_role(), interact_policy(), instance_role([UNKNOWN], ["interact"])]).passed
    # ...and undecided when neither tells
    undecided = validate_stack([execution_role(), interact_policy(), instance_role([UNKNOWN])])
    assert undecided.violations == [] and undecided.undecided is not None
    # another policy in the list is not an attachment of the interact policy
    other = validate_stack([execution_role(), interact_policy(),
                            instance_role([f"arn:aws:iam::{ACCOUNT}:policy/something-else"])])
    assert len(other.violations) == 1 and "is not attached to any identity" in other.violations[0]


def test_interact_policy_attached_through_an_exclusive_attachment_counts():
    exclusive = StackItem("aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive", "exclusive",
                          {"roleName": "lse-node-role", "policyArns": [POLICY_ARN]})
    assert validate_stack([execution_role(), interact_policy(), exclusive]).passed


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


OTHER = f"serviceAccount:lse-worker@{PROJECT}.iam.gserviceaccount.com"
RUNTIME_SA_ID = f"projects/{PROJECT}/serviceAccounts/{RUNTIME_EMAIL}"


def grant(name, role, member=APP, *, on_account=None) -> StackItem:
    """A project-level IAMMember, or (on_account=<serviceAccountId>) one on a service account."""
    if on_account is None:
        return StackItem("gcp:projects/iAMMember:IAMMember", name, {"project": PROJECT, "role": role, "member": member})
    return StackItem("gcp:serviceaccount/iAMMember:IAMMember", name,
                     {"serviceAccountId": on_account, "role": role, "member": member})


def test_the_custom_role_granted_on_a_service_account_instead_of_the_project_is_caught():
    stack = [i for i in gcp_stack() if i.name != "deployer-grant"]
    stack.append(grant("deployer-grant", f"projects/{PROJECT}/roles/LSE_CustomMetricsDeployer",
                       on_account=f"projects/{PROJECT}/serviceAccounts/lse-app@{PROJECT}.iam.gserviceaccount.com"))
    outcome = validate_stack(stack)
    assert len(outcome.violations) == 1
    assert outcome.violations[0].startswith("LSE's identity gets no deployer permissions on the project")
    # granted through the role's recorded dependency on the project: passes
    by_dependency = [i for i in gcp_stack() if i.name != "deployer-grant"]
    by_dependency.append(StackItem("gcp:projects/iAMMember:IAMMember", "deployer-grant",
                                   {"project": PROJECT, "role": UNKNOWN, "member": APP}, {"role": ["deployer"]}))
    assert validate_stack(by_dependency).passed


def test_predefined_roles_split_between_members_are_caught():
    split = gcp_stack(custom_role=False) + [grant(f"g-{r}", r, APP if i % 2 else OTHER)
                                             for i, r in enumerate(PREDEFINED)]
    outcome = validate_stack(split)
    assert len(outcome.violations) == 1 and "roles split between members" in outcome.violations[0]


def test_predefined_roles_on_a_service_account_are_caught_but_act_as_on_the_runtime_account_counts():
    on_account = gcp_stack(custom_role=False) + [grant(f"g-{r}", r, on_account=RUNTIME_SA_ID) for r in PREDEFINED]
    assert len(validate_stack(on_account).violations) == 1
    # the scoped option: roles/iam.serviceAccountUser on the runtime account only, the rest on the project
    scoped = gcp_stack(custom_role=False) + [grant(f"g-{r}", r) for r in PREDEFINED[:-1]] + [
        grant("act-as", "roles/iam.serviceAccountUser", on_account=RUNTIME_SA_ID)]
    assert validate_stack(scoped).passed
    # by email alone, and by a recorded dependency on the runtime account while the id is unknown
    by_email = gcp_stack(custom_role=False) + [grant(f"g-{r}", r) for r in PREDEFINED[:-1]] + [
        grant("act-as", "roles/iam.serviceAccountUser", on_account=RUNTIME_EMAIL)]
    assert validate_stack(by_email).passed
    by_dependency = gcp_stack(custom_role=False) + [grant(f"g-{r}", r) for r in PREDEFINED[:-1]] + [
        StackItem("gcp:serviceaccount/iAMMember:IAMMember", "act-as", {
            "serviceAccountId": UNKNOWN, "role": "roles/iam.serviceAccountUser", "member": APP},
            {"serviceAccountId": ["runtime"]})]
    assert validate_stack(by_dependency).passed
    # actAs on another service account is not the scoped option
    elsewhere = gcp_stack(custom_role=False) + [grant(f"g-{r}", r) for r in PREDEFINED[:-1]] + [
        grant("act-as", "roles/iam.serviceAccountUser",
              on_account=f"projects/{PROJECT}/serviceAccounts/lse-app@{PROJECT}.iam.gserviceaccount.com")]
    assert len(validate_stack(elsewhere).violations) == 1


def test_runtime_account_without_log_writer_is_caught():
    outcome = validate_stack(gcp_stack(runtime_grant=False))
    assert outcome.violations == ["runtime service account `lse-custom-metrics-runtime` lacks "
                                  "`roles/logging.logWriter` (its functions could not write logs)."]


def test_a_stack_without_cloud_resources_is_not_applicable():
    outcome = validate_stack([StackItem("random:index/randomId:RandomId", "id", {"byteLength": 4})])
    assert outcome.violations == [] and outcome.undecided == "not applicable: the stack has no AWS or GCP resources"


# --- a first preview: the execution role's ARN and the runtime account's email are computed -------------

def execution_role_in_preview(name="LSE_CustomMetricsExecuteRole", **extra) -> StackItem:
    item = execution_role()
    item.outputs.update(arn=UNKNOWN, name=name, **extra)
    return item


def test_pass_role_recognised_by_the_roles_name_and_its_functions_account_in_preview():
    # The interact policy's functions are in 123456789012 (aws): Lambda only accepts an execution role from
    # the functions' own account, so `role/LSE_CustomMetricsExecuteRole` there is this stack's role.
    assert validate_stack([execution_role_in_preview(), interact_policy(), attachment(UNKNOWN, ["interact"])]).passed
    pathed = f"arn:aws:iam::{ACCOUNT}:role/lse/LSE_CustomMetricsExecuteRole"
    assert validate_stack([execution_role_in_preview(path="/lse/"), interact_policy(pass_role=pathed),
                           attachment()]).passed


def test_pass_role_naming_another_role_is_caught_in_preview():
    other = f"arn:aws:iam::{ACCOUNT}:role/SomeOtherRole"
    outcome = validate_stack([execution_role_in_preview(), interact_policy(pass_role=other), attachment()])
    assert outcome.violations == [
        f"policy `LSE_AllowInteractLambda` passes ['{other}'] but this stack's execution role is "
        f"['role/LSE_CustomMetricsExecuteRole']: iam:PassRole must name the role the functions run as."]
    wrong_path = validate_stack([execution_role_in_preview(path="/lse/"), interact_policy(), attachment()])
    assert len(wrong_path.violations) == 1 and "['role/lse/LSE_CustomMetricsExecuteRole']" in wrong_path.violations[0]
    wildcard = validate_stack([execution_role_in_preview(), interact_policy(pass_role=f"arn:aws:iam::{ACCOUNT}:role/*"),
                               attachment()])
    assert len(wildcard.violations) == 1


def test_pass_role_whose_account_preview_cannot_tell_is_undecided():
    # Same name, but another account or partition than the functions': the role's own account is the
    # provider's, which a stack policy cannot see before it exists.
    for target in ("arn:aws:iam::999999999999:role/LSE_CustomMetricsExecuteRole",
                   f"arn:aws-cn:iam::{ACCOUNT}:role/LSE_CustomMetricsExecuteRole"):
        outcome = validate_stack([execution_role_in_preview(), interact_policy(pass_role=target), attachment()])
        assert outcome.violations == [] and outcome.undecided == (
            "string value at .interact iam:PassRole resource can't be known during preview"), target
    # no function ARN in the policy to take the account from
    bare = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE_ARN},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}]})
    outcome = validate_stack([execution_role_in_preview(), interact_policy(document=bare), attachment()])
    assert outcome.violations == [] and outcome.undecided is not None
    # after deployment the ARN itself decides
    known = validate_stack([execution_role(), interact_policy(document=bare), attachment()])
    assert known.passed


def runtime_account_in_preview(stack: list[StackItem], **inputs) -> list[StackItem]:
    account = next(i for i in stack if i.name == "runtime")
    account.outputs = {"accountId": "lse-custom-metrics-runtime", "project": PROJECT, "email": UNKNOWN,
                       "member": UNKNOWN, "name": UNKNOWN, **inputs}
    return stack


def test_runtime_log_writer_grant_recognised_by_the_accounts_id_and_project_in_preview():
    assert validate_stack(runtime_account_in_preview(gcp_stack())).passed


def test_runtime_account_without_log_writer_is_caught_in_preview():
    outcome = validate_stack(runtime_account_in_preview(gcp_stack(runtime_grant=False)))
    assert outcome.violations == ["runtime service account `lse-custom-metrics-runtime` lacks "
                                  "`roles/logging.logWriter` (its functions could not write logs)."]
    # the grant exists, but for the same account id in another project: not this account
    elsewhere = runtime_account_in_preview(gcp_stack(), project="other-project")
    assert validate_stack(elsewhere).violations == outcome.violations


def test_runtime_account_whose_email_preview_cannot_tell_is_undecided():
    for inputs in ({"project": UNKNOWN}, {"project": "example.com:acme-labeling"}):
        outcome = validate_stack(runtime_account_in_preview(gcp_stack(), **inputs))
        assert outcome.violations == [] and outcome.undecided == (
            "string value at .runtime roles/logging.logWriter grant can't be known during preview"), inputs
