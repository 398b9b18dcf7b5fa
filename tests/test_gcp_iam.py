"""IAM facts of the GCP foundation, checked against LSE's docs (hand-typed fixtures) and least privilege."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcp_scenarios import EXISTING_VM_SA, NODE_SA, SCENARIOS, SHARED_APP_SA, run_scenario
from pulumi_harness import GCP_PROJECT, GCP_PROJECT_NUMBER

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DOCS_ROLE = json.loads((FIXTURES / "gcp_docs_deployer_permissions.json").read_text())
DOCS_PREDEFINED = json.loads((FIXTURES / "gcp_docs_predefined_roles.json").read_text())["roles"]
DOCS_APIS = json.loads((FIXTURES / "gcp_docs_apis.json").read_text())["services"]

SERVICE = "gcp:projects/service:Service"
ACCOUNT = "gcp:serviceaccount/account:Account"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"

RUNTIME_EMAIL = f"lse-custom-metrics-runtime@{GCP_PROJECT}.iam.gserviceaccount.com"
RUNTIME_SA_ID = f"projects/{GCP_PROJECT}/serviceAccounts/{RUNTIME_EMAIL}"
LSE_APP_EMAIL = f"lse-app@{GCP_PROJECT}.iam.gserviceaccount.com"
BUILD_EMAIL = f"{GCP_PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
CUSTOM_ROLE_NAME = f"projects/{GCP_PROJECT}/roles/LSE_CustomMetricsDeployer"


@pytest.fixture(scope="module")
def runs():
    return {name: run_scenario(name) for name in SCENARIOS}


def project_grants(run) -> set[tuple[str, str]]:
    return {(r.inputs["member"], r.inputs["role"]) for r in run.of_type(PROJECT_MEMBER)}


def sa_grants(run) -> set[tuple[str, str, str]]:
    return {(r.inputs["serviceAccountId"], r.inputs["member"], r.inputs["role"])
            for r in run.of_type(SA_MEMBER)}


# --- the docs' facts --------------------------------------------------------------------------------

def test_custom_role_is_exactly_the_docs_role(runs):
    role = runs["gce-vm"].one(CUSTOM_ROLE)
    assert role.inputs["permissions"] == DOCS_ROLE["permissions"]
    assert len(role.inputs["permissions"]) == 12
    assert role.inputs["roleId"] == DOCS_ROLE["role_id"]
    assert role.inputs["title"] == DOCS_ROLE["title"]
    assert role.inputs["description"] == DOCS_ROLE["description"]
    assert role.inputs["stage"] == DOCS_ROLE["stage"]
    assert role.inputs["project"] == GCP_PROJECT
    assert role.outputs["name"] == CUSTOM_ROLE_NAME


def test_predefined_roles_are_exactly_the_docs_five(runs):
    run = runs["gce-vm-predefined-roles"]
    assert run.of_type(CUSTOM_ROLE) == []
    lse_roles = {role for member, role in project_grants(run) if member == f"serviceAccount:{LSE_APP_EMAIL}"}
    assert lse_roles == set(DOCS_PREDEFINED)
    assert sa_grants(run) == set()


def test_scoped_act_as_leaves_eleven_permissions_and_grants_act_as_on_the_runtime_account_only(runs):
    run = runs["gce-vm-scoped-act-as"]
    permissions = run.one(CUSTOM_ROLE).inputs["permissions"]
    assert permissions == [p for p in DOCS_ROLE["permissions"] if p != "iam.serviceAccounts.actAs"]
    assert len(permissions) == 11
    assert sa_grants(run) == {(RUNTIME_SA_ID, f"serviceAccount:{LSE_APP_EMAIL}", "roles/iam.serviceAccountUser")}
    assert (f"serviceAccount:{LSE_APP_EMAIL}", "roles/iam.serviceAccountUser") not in project_grants(run)


def test_scoped_act_as_with_predefined_roles_moves_service_account_user_onto_the_runtime_account(runs):
    run = runs["gce-vm-predefined-scoped"]
    lse_roles = {role for member, role in project_grants(run) if member == f"serviceAccount:{LSE_APP_EMAIL}"}
    assert lse_roles == set(DOCS_PREDEFINED) - {"roles/iam.serviceAccountUser"}
    assert sa_grants(run) == {(RUNTIME_SA_ID, f"serviceAccount:{LSE_APP_EMAIL}", "roles/iam.serviceAccountUser")}


def test_services_are_the_docs_six_plus_iam_and_never_disabled_on_destroy(runs):
    for name, run in runs.items():
        services = run.of_type(SERVICE)
        assert sorted(s.inputs["service"] for s in services) == sorted(DOCS_APIS + ["iam.googleapis.com"]), name
        for s in services:
            # explicitly false, not merely absent (absent would also mean "leave enabled", but the
            # intent must survive provider default changes and be visible in review)
            assert "disableOnDestroy" in s.inputs and s.inputs["disableOnDestroy"] is False
            assert s.inputs["project"] == GCP_PROJECT


def test_runtime_account_and_its_only_grant(runs):
    for name, run in runs.items():
        runtime = run.one(ACCOUNT, "lse-custom-metrics-runtime-account")
        assert runtime.inputs == {"accountId": "lse-custom-metrics-runtime",
                                  "displayName": "LSE Custom Metrics Runtime", "project": GCP_PROJECT}
        assert runtime.outputs["email"] == RUNTIME_EMAIL
        runtime_grants = {g for g in project_grants(run) if g[0] == f"serviceAccount:{RUNTIME_EMAIL}"}
        assert runtime_grants == {(f"serviceAccount:{RUNTIME_EMAIL}", "roles/logging.logWriter")}, name


def test_workload_identity_members_exact_for_both_kubernetes_accounts(runs):
    wi_role = "roles/iam.workloadIdentityUser"
    assert sa_grants(runs["gke-workload-identity"]) == {
        (f"projects/{GCP_PROJECT}/serviceAccounts/{LSE_APP_EMAIL}",
         f"serviceAccount:{GCP_PROJECT}.svc.id.goog[labeling/lse-ls-app]", wi_role),
        (f"projects/{GCP_PROJECT}/serviceAccounts/{LSE_APP_EMAIL}",
         f"serviceAccount:{GCP_PROJECT}.svc.id.goog[labeling/lse-ls-rqworker]", wi_role),
    }
    # explicit KSA names and an app account that lives in another project
    shared_id = f"projects/shared-identities/serviceAccounts/{SHARED_APP_SA}"
    assert sa_grants(runs["gke-workload-identity-explicit"]) == {
        (shared_id, f"serviceAccount:{GCP_PROJECT}.svc.id.goog[tools/label-studio]", wi_role),
        (shared_id, f"serviceAccount:{GCP_PROJECT}.svc.id.goog[tools/label-studio-workers]", wi_role),
    }


def test_build_account_is_the_compute_default_account_from_get_project(runs):
    run = runs["gce-vm"]
    build = {role for member, role in project_grants(run) if member == f"serviceAccount:{BUILD_EMAIL}"}
    assert build == {"roles/logging.logWriter", "roles/storage.objectViewer", "roles/artifactregistry.writer"}
    assert run.calls == [("gcp:organizations/getProject:getProject", {"projectId": GCP_PROJECT})]
    off = runs["gke-node-no-build-grants"]
    assert not any(member == f"serviceAccount:{BUILD_EMAIL}" for member, _ in project_grants(off))
    assert off.calls == []


def test_identity_per_variant(runs):
    def lse_members(run):
        return {m for m, role in project_grants(run) if role == CUSTOM_ROLE_NAME}

    assert lse_members(runs["gce-vm"]) == {f"serviceAccount:{LSE_APP_EMAIL}"}
    assert runs["gce-vm"].one(ACCOUNT, "lse-custom-metrics-gce-vm-account").inputs == {
        "accountId": "lse-app", "displayName": "LSE Application", "project": GCP_PROJECT}
    assert lse_members(runs["gce-vm-existing-sa"]) == {f"serviceAccount:{EXISTING_VM_SA}"}
    assert lse_members(runs["gke-node"]) == {f"serviceAccount:{NODE_SA}"}
    assert lse_members(runs["gke-workload-identity"]) == {f"serviceAccount:{LSE_APP_EMAIL}"}
    # only the runtime account is created when LSE's identity already exists
    for name in ("gce-vm-existing-sa", "gke-node", "gke-workload-identity-explicit"):
        assert [a.inputs["accountId"] for a in runs[name].of_type(ACCOUNT)] == ["lse-custom-metrics-runtime"]


# --- graph and safety -----------------------------------------------------------------------------------

def _custom_dependencies(run, resource) -> set[str]:
    """URNs of the custom resources `resource` waits for, as the engine sees them.

    A dependency on a component means "all of its descendants", so components are expanded through the
    parent links the harness recorded.
    """
    children: dict[str, list] = {}
    for r in run.resources:
        children.setdefault(r.parent, []).append(r)
    out: set[str] = set()
    stack = list(resource.dependencies)
    while stack:
        urn = stack.pop()
        dep = run.monitor.recorded.get(urn)
        if dep is None:
            continue
        if dep.custom:
            out.add(urn)
        else:
            stack.extend(c.urn for c in children.get(urn, []))
    return out


def test_every_account_role_and_grant_depends_on_every_enabled_api(runs):
    for name, run in runs.items():
        services = {s.urn for s in run.of_type(SERVICE)}
        assert len(services) == 7
        dependent = [r for r in run.resources if r.custom and r.type != SERVICE]
        assert dependent, name
        for r in dependent:
            missing = services - _custom_dependencies(run, r)
            assert not missing, f"{name}: {r.type} {r.name} does not wait for {sorted(missing)}"


def test_grants_wait_for_the_role_and_account_they_name(runs):
    run = runs["gke-workload-identity"]
    role = run.one(CUSTOM_ROLE)
    app = run.one(ACCOUNT, "lse-custom-metrics-gke-wi-account")
    grant = run.one(PROJECT_MEMBER, "lse-custom-metrics-gke-wi-grant-deployer-role")
    assert {role.urn, app.urn} <= set(grant.dependencies)
    for ksa in ("lse-ls-app", "lse-ls-rqworker"):
        assert app.urn in run.one(SA_MEMBER, f"lse-custom-metrics-gke-wi-ksa-{ksa}").dependencies


def _created_in(run, grant) -> set[str]:
    """URNs of the accounts and custom roles of `run` that `grant` names (by their deployed values)."""
    named = set()
    for account in run.of_type(ACCOUNT):
        if grant.inputs.get("member") == account.outputs["member"] or \
                grant.inputs.get("serviceAccountId") == account.outputs["name"]:
            named.add(account.urn)
    for role in run.of_type(CUSTOM_ROLE):
        if grant.inputs["role"] == role.outputs["name"]:
            named.add(role.urn)
    return named


def test_every_grant_is_created_after_each_account_and_role_it_names(runs):
    # Grants name accounts and roles by text built from config (so that a first preview knows them); the
    # engine learns the order only from explicit depends_on. Counted by hand: per scenario, the grants
    # naming something this stack creates, and how many such references they make.
    expected = {
        # logWriter -> runtime SA; deployer grant -> lse-app + custom role
        "gce-vm": (2, 3), "gke-node": (2, 2), "gke-node-no-build-grants": (2, 2), "gce-vm-existing-sa": (2, 2),
        # + the two KSA grants on lse-app
        "gke-workload-identity": (4, 5), "gke-workload-identity-release": (4, 5),
        "gke-workload-identity-explicit": (2, 2),
        # five predefined roles to lse-app
        "gce-vm-predefined-roles": (6, 6),
        # + actAs on the runtime SA (-> lse-app and the runtime SA)
        "gce-vm-scoped-act-as": (3, 5), "gce-vm-predefined-scoped": (6, 7),
    }
    assert set(expected) == set(runs)
    for name, run in runs.items():
        grants = [(g, _created_in(run, g)) for g in run.of_type(PROJECT_MEMBER) + run.of_type(SA_MEMBER)]
        naming = [(g, named) for g, named in grants if named]
        assert (len(naming), sum(len(named) for _, named in naming)) == expected[name], name
        for grant, named in naming:
            assert named <= set(grant.dependencies), (name, grant.name)


def test_every_grant_is_known_in_a_first_preview(runs):
    # An input that comes from another resource's output is unknown in a first `pulumi preview`, where CI
    # runs the policy pack; every IAM input here comes from config, facts or the project-number invoke.
    for name, run in runs.items():
        for r in run.of_type(PROJECT_MEMBER) + run.of_type(SA_MEMBER) + run.of_type(CUSTOM_ROLE):
            assert {k: v for k, v in r.property_dependencies.items() if v} == {}, (name, r.name)


def test_no_authoritative_iam_resource_anywhere(runs):
    for name, run in runs.items():
        for r in run.resources:
            assert "IAMBinding" not in r.type and "IAMPolicy" not in r.type, (name, r.type)
            if "IAM" in r.type and r.custom and r.type != CUSTOM_ROLE:
                assert r.type in (PROJECT_MEMBER, SA_MEMBER)


# --- least privilege ------------------------------------------------------------------------------------
# Every permission or role this package grants, who uses it, and for what. "LSE" is the identity LSE
# runs as (and the `gcp` provider of our runtime, which does the same calls as that identity).
WHO_NEEDS_PERMISSION = {
    "cloudfunctions.functions.create": ("LSE", "deploy a project's function the first time"),
    "cloudfunctions.functions.update": ("LSE", "redeploy a project's function when its metric changes"),
    "cloudfunctions.functions.delete": ("LSE", "delete the function when the metric/provider changes"),
    "cloudfunctions.functions.get": ("LSE", "read state (Pending/Active/Failed) and the function URL"),
    "cloudfunctions.functions.list": ("LSE", "find the project's function by name prefix and label"),
    "cloudfunctions.functions.generateUploadUrl": ("LSE", "get the signed URL to upload the source zip"),
    "storage.objects.get": ("LSE", "read back the uploaded source in the staging bucket"),
    "storage.objects.create": ("LSE", "write the source zip to the staging bucket"),
    "run.routes.invoke": ("LSE", "call the gen2 function's Cloud Run URL while scoring"),
    "logging.logEntries.list": ("LSE", "read the function's log entries"),
    "logging.logs.list": ("LSE", "list the function's logs"),
    "iam.serviceAccounts.actAs": ("LSE", "deploy a function that runs as the runtime account"),
}
WHO_NEEDS_ROLE = {
    # (grantee kind, role): (who, why)
    ("lse", CUSTOM_ROLE_NAME): ("LSE", "the twelve permissions above"),
    ("lse", "roles/cloudfunctions.developer"): ("LSE", "create/update/delete/get/list functions, upload URL"),
    ("lse", "roles/run.invoker"): ("LSE", "invoke the function's Cloud Run service"),
    ("lse", "roles/storage.objectAdmin"): ("LSE", "source objects in the staging bucket"),
    ("lse", "roles/logging.viewer"): ("LSE", "read function logs"),
    ("lse", "roles/iam.serviceAccountUser"): ("LSE", "actAs the runtime account when deploying"),
    ("runtime", "roles/logging.logWriter"): ("our functions", "write their own logs"),
    ("build", "roles/logging.logWriter"): ("Cloud Build", "write gen2 build logs"),
    ("build", "roles/storage.objectViewer"): ("Cloud Build", "read the uploaded function source"),
    ("build", "roles/artifactregistry.writer"): ("Cloud Build", "push the built function image"),
    ("ksa", "roles/iam.workloadIdentityUser"): ("LSE pods", "app and rqworker KSAs impersonate LSE's account"),
}


def _grantee_kind(member: str, lse_member: str) -> str:
    if member == lse_member:
        return "lse"
    if member == f"serviceAccount:{RUNTIME_EMAIL}":
        return "runtime"
    if member == f"serviceAccount:{BUILD_EMAIL}":
        return "build"
    if ".svc.id.goog[" in member:
        return "ksa"
    raise AssertionError(f"grant to an unexpected member {member}")


def _expected_grants(keys: dict) -> set[tuple[str, str]]:
    """The grants a scenario needs, derived from its options alone."""
    scoped = keys.get("scopeActAsToRuntimeServiceAccount", False)
    if keys.get("usePredefinedRoles"):
        lse = {("lse", r) for r in DOCS_PREDEFINED}
    else:
        lse = {("lse", CUSTOM_ROLE_NAME)}
    if scoped:
        lse |= {("lse", "roles/iam.serviceAccountUser")}  # on the runtime account, not the project
    grants = lse | {("runtime", "roles/logging.logWriter")}
    if keys.get("grantBuildServiceAccountRoles", True):
        grants |= {("build", r) for r in ("roles/logging.logWriter", "roles/storage.objectViewer",
                                           "roles/artifactregistry.writer")}
    if keys["deployment"] == "gke-workload-identity":
        grants |= {("ksa", "roles/iam.workloadIdentityUser")}
    return grants


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_least_privilege_every_grant_is_needed_and_justified(runs, name):
    run = runs[name]
    lse_member = run.outputs["lseIdentityMember"]
    granted = {(_grantee_kind(m, lse_member), role) for m, role in project_grants(run)}
    granted |= {(_grantee_kind(m, lse_member), role) for _, m, role in sa_grants(run)}
    assert granted == _expected_grants(SCENARIOS[name])
    for grant in granted:
        assert grant in WHO_NEEDS_ROLE, f"no one is documented as needing {grant}"
    for role in run.of_type(CUSTOM_ROLE):
        for permission in role.inputs["permissions"]:
            assert permission in WHO_NEEDS_PERMISSION, permission
    # SA-level grants only ever target the runtime account (actAs) or LSE's own account (WI)
    for sa_id, member, role in sa_grants(run):
        if role == "roles/iam.serviceAccountUser":
            assert sa_id == RUNTIME_SA_ID and member == lse_member
        else:
            assert role == "roles/iam.workloadIdentityUser" and ".svc.id.goog[" in member
