"""Each GCP policy of the pack, called through its own `validate` with CLI-faithful (camelCase) properties,
unknowns as the engine's sentinels, secrets as signature objects."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from policy_harness import UNKNOWN, secret, validate  # noqa: E402

PROJECT = "acme-labeling"
APP = f"serviceAccount:lse-app@{PROJECT}.iam.gserviceaccount.com"
APP_SA_ID = f"projects/{PROJECT}/serviceAccounts/lse-app@{PROJECT}.iam.gserviceaccount.com"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
WI_APP = f"serviceAccount:{PROJECT}.svc.id.goog[labeling/lse-ls-app]"
WI_WORKER = f"serviceAccount:{PROJECT}.svc.id.goog[labeling/lse-ls-rqworker]"
# The docs' twelve permissions, typed from the docs page.
TWELVE = ["cloudfunctions.functions.create", "cloudfunctions.functions.update", "cloudfunctions.functions.delete",
          "cloudfunctions.functions.get", "cloudfunctions.functions.list",
          "cloudfunctions.functions.generateUploadUrl", "storage.objects.get", "storage.objects.create",
          "run.routes.invoke", "logging.logEntries.list", "logging.logs.list", "iam.serviceAccounts.actAs"]


def deployer_role(permissions, role_id="LSE_CustomMetricsDeployer") -> dict:
    return {"project": PROJECT, "roleId": role_id, "title": "LSE Custom Metrics Deployer", "stage": "GA",
            "permissions": permissions}


# --- gcp-deployer-role-allowlist -------------------------------------------------------------------------

def test_deployer_role_with_the_twelve_or_fewer_passes():
    assert validate("gcp-deployer-role-allowlist", CUSTOM_ROLE, deployer_role(TWELVE)).passed
    assert validate("gcp-deployer-role-allowlist", CUSTOM_ROLE, deployer_role(TWELVE[:-1])).passed
    # an unrelated custom role is not the deployer
    assert validate("gcp-deployer-role-allowlist", CUSTOM_ROLE,
                    deployer_role(["storage.buckets.list"], role_id="BucketLister")).passed


def test_deployer_role_with_extra_permissions_is_caught():
    outcome = validate("gcp-deployer-role-allowlist", CUSTOM_ROLE,
                       deployer_role(TWELVE + ["iam.serviceAccountKeys.create", "run.services.setIamPolicy"]))
    assert len(outcome.violations) == 1
    assert outcome.violations[0].startswith(
        "custom role `LSE_CustomMetricsDeployer` holds `iam.serviceAccountKeys.create`, "
        "`run.services.setIamPolicy`, beyond the twelve permissions")


def test_a_renamed_role_with_cloudfunctions_permissions_is_still_the_deployer():
    outcome = validate("gcp-deployer-role-allowlist", "gcp:organizations/iAMCustomRole:IAMCustomRole",
                       {"orgId": "1234", **deployer_role(TWELVE + ["cloudfunctions.functions.setIamPolicy"],
                                                         role_id="MetricsDeployer")})
    assert len(outcome.violations) == 1 and "`cloudfunctions.functions.setIamPolicy`" in outcome.violations[0]
    assert validate("gcp-deployer-role-allowlist", CUSTOM_ROLE,
                    deployer_role(TWELVE + ["x.y.z"], role_id="Other"), config={"deployerRoleId": "Other"}
                    ).violations != []


def test_deployer_role_with_unknown_permissions_is_undecided():
    outcome = validate("gcp-deployer-role-allowlist", CUSTOM_ROLE, deployer_role(UNKNOWN))
    assert outcome.violations == [] and outcome.undecided == (
        "string value at .permissions can't be known during preview")


# --- gcp-no-primitive-roles ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["roles/owner", "roles/editor", "roles/viewer"])
def test_primitive_roles_are_caught_on_members_bindings_and_policies(role):
    member = validate("gcp-no-primitive-roles", PROJECT_MEMBER, {"project": PROJECT, "role": role, "member": APP})
    assert len(member.violations) == 1 and f"primitive role `{role}`" in member.violations[0]
    binding = validate("gcp-no-primitive-roles", "gcp:projects/iAMBinding:IAMBinding",
                       {"project": PROJECT, "role": role, "members": [APP, "user:a@example.com"]})
    assert len(binding.violations) == 2
    policy = validate("gcp-no-primitive-roles", "gcp:projects/iAMPolicy:IAMPolicy", {
        "project": PROJECT, "policyData": json.dumps({"bindings": [{"role": role, "members": [APP]}]})})
    assert len(policy.violations) == 1 and "`policyData.bindings[0].members[0]`" in policy.violations[0]


def test_predefined_and_custom_roles_pass():
    for role in ("roles/cloudfunctions.developer", f"projects/{PROJECT}/roles/LSE_CustomMetricsDeployer"):
        assert validate("gcp-no-primitive-roles", PROJECT_MEMBER,
                        {"project": PROJECT, "role": role, "member": APP}).passed


def test_primitive_role_check_with_unknown_role_is_undecided():
    outcome = validate("gcp-no-primitive-roles", PROJECT_MEMBER, {"project": PROJECT, "role": UNKNOWN,
                                                                 "member": APP})
    assert outcome.undecided is not None and outcome.violations == []


# --- gcp-no-public-members -------------------------------------------------------------------------------

@pytest.mark.parametrize("resource_type,props", [
    (PROJECT_MEMBER, {"project": PROJECT, "role": "roles/logging.viewer", "member": "allUsers"}),
    ("gcp:storage/bucketIAMMember:BucketIAMMember", {"bucket": "b", "role": "roles/storage.objectViewer",
                                                     "member": "allAuthenticatedUsers"}),
    ("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
     {"name": "custom-metric-1-1700000000", "location": "us-central1", "role": "roles/run.invoker",
      "members": [APP, "allUsers"]}),
])
def test_public_members_are_caught_on_any_resource(resource_type, props):
    outcome = validate("gcp-no-public-members", resource_type, props)
    assert len(outcome.violations) == 1
    assert "to the public member `all" in outcome.violations[0]


def test_private_members_pass_and_unknown_members_are_undecided():
    assert validate("gcp-no-public-members", PROJECT_MEMBER,
                    {"project": PROJECT, "role": "roles/logging.viewer", "member": APP}).passed
    assert validate("gcp-no-public-members", PROJECT_MEMBER,
                    {"project": PROJECT, "role": "roles/logging.viewer", "member": UNKNOWN}).undecided == (
        "string value at .member can't be known during preview")


def test_a_secret_member_is_unwrapped():
    outcome = validate("gcp-no-public-members", PROJECT_MEMBER,
                       {"project": PROJECT, "role": "roles/viewer", "member": secret("allUsers")})
    assert len(outcome.violations) == 1


# --- gcp-iam-non-authoritative ---------------------------------------------------------------------------

@pytest.mark.parametrize("resource_type", [
    "gcp:projects/iAMBinding:IAMBinding", "gcp:projects/iAMPolicy:IAMPolicy",
    "gcp:serviceaccount/iAMBinding:IAMBinding", "gcp:serviceaccount/iAMPolicy:IAMPolicy",
    "gcp:organizations/iAMBinding:IAMBinding", "gcp:folder/iAMPolicy:IAMPolicy",
])
def test_authoritative_iam_is_caught(resource_type):
    outcome = validate("gcp-iam-non-authoritative", resource_type,
                       {"project": PROJECT, "role": "roles/logging.logWriter", "members": [APP],
                        "policyData": UNKNOWN})
    assert len(outcome.violations) == 1
    assert outcome.violations[0].startswith(f"`{resource_type}` is authoritative")


@pytest.mark.parametrize("resource_type", [PROJECT_MEMBER, SA_MEMBER,
                                           "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding"])
def test_members_and_resource_level_bindings_pass(resource_type):
    assert validate("gcp-iam-non-authoritative", resource_type,
                    {"project": PROJECT, "role": "roles/logging.logWriter", "member": APP}).passed


# --- gcp-services-kept-on-destroy ------------------------------------------------------------------------

def test_services_must_set_disable_on_destroy_false_explicitly():
    service = "gcp:projects/service:Service"
    assert validate("gcp-services-kept-on-destroy", service,
                    {"project": PROJECT, "service": "run.googleapis.com", "disableOnDestroy": False}).passed
    unset = validate("gcp-services-kept-on-destroy", service, {"project": PROJECT, "service": "run.googleapis.com"})
    assert unset.violations == [
        "`run.googleapis.com` does not set `disable_on_destroy=False` (found None): destroying this stack would "
        "switch the API off for every workload of the project. Set it to False explicitly."]
    true = validate("gcp-services-kept-on-destroy", service,
                    {"project": PROJECT, "service": "iam.googleapis.com", "disableOnDestroy": True})
    assert "(found True)" in true.violations[0]
    assert validate("gcp-services-kept-on-destroy", service,
                    {"service": "iam.googleapis.com", "disableOnDestroy": UNKNOWN}).undecided is not None


# --- gcp-workload-identity-member-format ----------------------------------------------------------------

def wi_member(member, resource_type=SA_MEMBER) -> dict:
    return {"serviceAccountId": APP_SA_ID, "project": PROJECT, "role": "roles/iam.workloadIdentityUser",
            "member": member}


@pytest.mark.parametrize("member", [
    WI_APP, WI_WORKER, "serviceAccount:example.com:acme-labeling.svc.id.goog[labeling/lse-ls-app]",
    "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
    "acme-labeling.svc.id.goog/subject/ns/labeling/sa/lse-ls-app",
])
def test_exact_workload_identity_members_pass(member):
    assert validate("gcp-workload-identity-member-format", SA_MEMBER, wi_member(member)).passed


@pytest.mark.parametrize("member", [
    f"serviceAccount:{PROJECT}.svc.id.goog[labeling/*]",
    f"serviceAccount:{PROJECT}.svc.id.goog[labeling/lse-ls-app",
    f"serviceAccount:{PROJECT}.svc.id.goog/labeling/lse-ls-app",
    f"{PROJECT}.svc.id.goog[labeling/lse-ls-app]",
    APP,
    "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/"
    "acme-labeling.svc.id.goog/namespace/labeling",
])
def test_malformed_or_wildcard_workload_identity_members_are_caught(member):
    outcome = validate("gcp-workload-identity-member-format", SA_MEMBER, wi_member(member))
    assert outcome.violations == [
        f"`member` is `{member}`: a Workload Identity member must name one Kubernetes service account exactly, "
        f"`serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]` (no wildcards, no principalSet), once for "
        f"LSE's app and once for its rqworker service account."]


def test_workload_identity_user_on_the_project_is_caught():
    outcome = validate("gcp-workload-identity-member-format", PROJECT_MEMBER,
                       {"project": PROJECT, "role": "roles/iam.workloadIdentityUser", "member": WI_APP})
    assert len(outcome.violations) == 1
    assert outcome.violations[0].startswith("`roles/iam.workloadIdentityUser` is granted on `projects`")


def test_a_mistyped_kubernetes_member_under_another_role_is_caught_too():
    outcome = validate("gcp-workload-identity-member-format", PROJECT_MEMBER,
                       {"project": PROJECT, "role": "roles/logging.viewer",
                        "member": f"serviceAccount:{PROJECT}.svc.id.goog[labeling]"})
    assert len(outcome.violations) == 1
    assert validate("gcp-workload-identity-member-format", PROJECT_MEMBER,
                    {"project": PROJECT, "role": "roles/logging.viewer", "member": APP}).passed


def test_workload_identity_binding_with_unknown_members_is_undecided():
    outcome = validate("gcp-workload-identity-member-format", "gcp:serviceaccount/iAMBinding:IAMBinding",
                       {"serviceAccountId": APP_SA_ID, "role": "roles/iam.workloadIdentityUser",
                        "members": UNKNOWN})
    assert outcome.violations == [] and outcome.undecided == (
        "string value at .members can't be known during preview")


# --- actas-scoped (advisory) -----------------------------------------------------------------------------

def test_project_wide_act_as_is_reported_and_scoped_act_as_passes():
    role = validate("actas-scoped", CUSTOM_ROLE, deployer_role(TWELVE))
    assert role.violations[0].startswith("custom role `LSE_CustomMetricsDeployer` includes "
                                         "`iam.serviceAccounts.actAs`; granted on the project")
    assert validate("actas-scoped", CUSTOM_ROLE, deployer_role(TWELVE[:-1])).passed
    project_grant = validate("actas-scoped", PROJECT_MEMBER,
                             {"project": PROJECT, "role": "roles/iam.serviceAccountUser", "member": APP})
    assert len(project_grant.violations) == 1 and "is granted on `projects`" in project_grant.violations[0]
    assert validate("actas-scoped", SA_MEMBER, {
        "serviceAccountId": f"projects/{PROJECT}/serviceAccounts/lse-custom-metrics-runtime@{PROJECT}.iam."
                            f"gserviceaccount.com", "role": "roles/iam.serviceAccountUser", "member": APP}).passed
