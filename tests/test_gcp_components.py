"""The GCP components used on their own, as another stack would import them."""
from __future__ import annotations

import pulumi
import pytest

from lse_custom_metrics.components import gcp as gcp_components
from lse_custom_metrics.components.gcp import (
    CustomMetricsDeployerRole,
    CustomMetricsDeployerRoleArgs,
    CustomMetricsProjectServices,
    CustomMetricsProjectServicesArgs,
    CustomMetricsRuntimeServiceAccount,
    CustomMetricsRuntimeServiceAccountArgs,
    GcpCustomMetricsFoundation,
    GcpCustomMetricsFoundationArgs,
    GcpFoundationArgsError,
    GcpNameError,
    GkeNodeIdentity,
    GkeNodeIdentityArgs,
    GkeWorkloadIdentity,
    GkeWorkloadIdentityArgs,
)
from pack_check import pack_check  # noqa: F401  (the whole pack on every run)
from pulumi_harness import run_pulumi

PROJECT = "other-team-proj"


def test_public_names_resolve_from_the_components_package():
    import lse_custom_metrics.components as components

    for name in gcp_components.__all__:
        assert getattr(components, name) is getattr(gcp_components, name)


NO_APIS, NO_RUNTIME_SA = "APIs not enabled by this stack", "no runtime service account"
NO_DEPLOYER = "LSE's identity gets no deployer permissions"
ACT_AS = {"actas-scoped"}  # the docs' custom role grants actAs project-wide: advisory


def test_node_identity_with_its_own_role_and_runtime_account(pack_check):
    """A stack that enables APIs elsewhere: no services component, components wired by hand."""
    # only iam.googleapis.com is enabled here; the pack is configured with this stack's own names
    pack_check.expect(missing=[NO_APIS], config={
        "foundation-complete": {"runtimeServiceAccountId": "metrics-fn", "deployerRoleId": "teamMetricsDeployer"},
        "gcp-deployer-role-allowlist": {"deployerRoleId": "teamMetricsDeployer"}})
    built = {}

    def program():
        services = CustomMetricsProjectServices("apis", CustomMetricsProjectServicesArgs(
            project=PROJECT, services=["iam.googleapis.com"]))
        runtime = CustomMetricsRuntimeServiceAccount("fn", CustomMetricsRuntimeServiceAccountArgs(
            project=PROJECT, account_id="metrics-fn", depends_on=services.resources))
        role = CustomMetricsDeployerRole("role", CustomMetricsDeployerRoleArgs(
            project=PROJECT, role_id="teamMetricsDeployer", scope_act_as_to_runtime_service_account=True))
        built["node"] = GkeNodeIdentity("nodes", GkeNodeIdentityArgs(
            project=PROJECT, deployer_role=role, runtime_service_account_name=runtime.account_name,
            node_service_account_email="pool@other-team-proj.iam.gserviceaccount.com"))
        pulumi.export("role", role.role_name)

    run = run_pulumi(program)
    assert run.outputs == {"role": f"projects/{PROJECT}/roles/teamMetricsDeployer"}
    grants = {(r.type, r.name): r.inputs for r in run.resources if "iAMMember" in r.type}
    member = "serviceAccount:pool@other-team-proj.iam.gserviceaccount.com"
    runtime_id = f"projects/{PROJECT}/serviceAccounts/metrics-fn@{PROJECT}.iam.gserviceaccount.com"
    assert grants == {
        ("gcp:projects/iAMMember:IAMMember", "fn-logging-logWriter"): {
            "member": f"serviceAccount:metrics-fn@{PROJECT}.iam.gserviceaccount.com",
            "project": PROJECT, "role": "roles/logging.logWriter"},
        ("gcp:projects/iAMMember:IAMMember", "nodes-grant-deployer-role"): {
            "member": member, "project": PROJECT, "role": f"projects/{PROJECT}/roles/teamMetricsDeployer"},
        ("gcp:serviceaccount/iAMMember:IAMMember", "nodes-grant-runtime-sa-iam-serviceAccountUser"): {
            "member": member, "role": "roles/iam.serviceAccountUser", "serviceAccountId": runtime_id},
    }
    assert len(run.one("gcp:projects/iAMCustomRole:IAMCustomRole").inputs["permissions"]) == 11
    types = {r.type for r in run.resources if not r.custom}
    assert types == {"lse-custom-metrics:gcp:ProjectServices", "lse-custom-metrics:gcp:RuntimeServiceAccount",
                     "lse-custom-metrics:gcp:DeployerRole", "lse-custom-metrics:gcp:GkeNodeIdentity",
                     "lse-custom-metrics:gcp:DeployerBinding"}


def test_workload_identity_release_derives_both_ksa_names_and_a_list_overrides_them():
    def args(**kwargs):
        return GkeWorkloadIdentityArgs(project=PROJECT, deployer_role=None, runtime_service_account_name="x",
                                       namespace="ns", **kwargs)

    assert args().resolved_service_accounts() == ["lse-ls-app", "lse-ls-rqworker"]
    assert args(helm_release="prod").resolved_service_accounts() == ["prod-ls-app", "prod-ls-rqworker"]
    # as on AWS, an explicit list replaces the release-derived names, whatever the release
    assert args(helm_release="prod", kubernetes_service_accounts=["ls", "ls-workers", "ls-cron"]
                ).resolved_service_accounts() == ["ls", "ls-workers", "ls-cron"]


def test_workload_identity_grants_one_member_per_listed_kubernetes_account(pack_check):
    pack_check.expect(advisory=ACT_AS, missing=[NO_APIS, NO_RUNTIME_SA])

    def program():
        role = CustomMetricsDeployerRole("role", CustomMetricsDeployerRoleArgs(project=PROJECT))
        GkeWorkloadIdentity("wi", GkeWorkloadIdentityArgs(
            project=PROJECT, deployer_role=role, runtime_service_account_name="x", namespace="tools",
            helm_release="ignored", kubernetes_service_accounts=["ls", "ls-workers", "ls-cron"]))

    run = run_pulumi(program)
    grants = {r.name: r.inputs["member"] for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
              if r.inputs["role"] == "roles/iam.workloadIdentityUser"}
    assert grants == {f"wi-ksa-{ksa}": f"serviceAccount:{PROJECT}.svc.id.goog[tools/{ksa}]"
                      for ksa in ("ls", "ls-workers", "ls-cron")}


def test_component_input_errors_name_the_args_field(pack_check):
    pack_check.expect(advisory=ACT_AS, missing=[NO_APIS, NO_RUNTIME_SA, NO_DEPLOYER])  # the role alone
    errors = []

    def program():
        role = CustomMetricsDeployerRole("role", CustomMetricsDeployerRoleArgs(project=PROJECT))
        for build in (
            lambda: CustomMetricsDeployerRole("bad", CustomMetricsDeployerRoleArgs(
                project=PROJECT, role_id="LSE-Deployer")),
            lambda: CustomMetricsRuntimeServiceAccount("bad", CustomMetricsRuntimeServiceAccountArgs(
                project=PROJECT, account_id="fn")),
            lambda: GkeWorkloadIdentity("bad", GkeWorkloadIdentityArgs(
                project=PROJECT, deployer_role=role, runtime_service_account_name="x", namespace="NS")),
            lambda: GkeNodeIdentity("bad", GkeNodeIdentityArgs(
                project=PROJECT, deployer_role=role, runtime_service_account_name="x",
                node_service_account_email="nodes")),
        ):
            try:
                build()
            except GcpNameError as err:
                errors.append(err.what)

    run = run_pulumi(program)
    assert errors == ["CustomMetricsDeployerRoleArgs.role_id", "CustomMetricsRuntimeServiceAccountArgs.account_id",
                      "GkeWorkloadIdentityArgs.namespace", "GkeNodeIdentityArgs.node_service_account_email"]
    assert {r.name for r in run.resources} == {"role", "role-role"}  # the bad ones registered nothing


@pytest.mark.parametrize("kwargs,field,fragment", [
    ({"deployment": "cloud-run"}, "deployment", "allowed: gce-vm, gke-workload-identity, gke-node"),
    ({"deployment": "gke-node"}, "node_service_account_email", "is required"),
    ({"deployment": "gce-vm", "namespace": "x"}, "namespace", "is not used by this deployment"),
    ({"deployment": "gce-vm", "use_predefined_roles": "true"}, "use_predefined_roles", "must be true or false"),
    ({"deployment": "gce-vm", "deployer_role_id": "a-b"}, "deployer_role_id", "no '-'"),
    ({"deployment": "gce-vm", "runtime_service_account_id": "Runtime"}, "runtime_service_account_id", "6-30"),
    ({"deployment": "gke-workload-identity", "namespace": "ns", "kubernetes_service_accounts": []},
     "kubernetes_service_accounts", "must be a non-empty list"),
    ({"deployment": "gke-workload-identity", "namespace": "ns", "kubernetes_service_accounts": "lse-ls-app"},
     "kubernetes_service_accounts", "must be a non-empty list"),
    ({"deployment": "gke-workload-identity", "namespace": "ns", "kubernetes_service_accounts": ["a", "Worker"]},
     "kubernetes_service_accounts", "kubernetes_service_accounts[1]: 'Worker' is not valid"),
    ({"deployment": "gke-workload-identity", "namespace": "ns", "kubernetes_service_accounts": ["a", "a"]},
     "kubernetes_service_accounts", "names must be distinct"),
])
def test_foundation_args_errors(kwargs, field, fragment):
    with pytest.raises(GcpFoundationArgsError) as info:
        GcpCustomMetricsFoundationArgs(project="acme-labeling", **kwargs).validate()
    assert info.value.field == field
    assert str(info.value).startswith(f"GcpCustomMetricsFoundationArgs.{field}: ")
    assert fragment in str(info.value)


def test_foundation_accepts_outputs_and_registers_nothing_on_bad_args(pack_check):
    pack_check.expect(advisory=ACT_AS)

    def good():
        foundation = GcpCustomMetricsFoundation("f", GcpCustomMetricsFoundationArgs(
            project=pulumi.Output.from_input("acme-labeling"), deployment="gce-vm",
            region=pulumi.Output.from_input("asia-northeast1"), grant_build_service_account_roles=False))
        pulumi.export("env", foundation.env)

    run = run_pulumi(good)
    assert run.outputs["env"]["GCP_REGION_CUSTOM_METRICS"] == "asia-northeast1"
    assert run.outputs["env"]["GCP_SERVICE_ACCOUNT_CUSTOM_METRICS"] == (
        "lse-custom-metrics-runtime@acme-labeling.iam.gserviceaccount.com")

    raised = []
    pack_check.expect()  # registers nothing: nothing for the pack to report

    def bad():
        try:
            GcpCustomMetricsFoundation("f", GcpCustomMetricsFoundationArgs(project="acme-labeling",
                                                                           deployment="gke-node"))
        except GcpFoundationArgsError as err:
            raised.append(err.field)

    run = run_pulumi(bad)
    assert raised == ["node_service_account_email"] and run.resources == []


ACCOUNT = "gcp:serviceaccount/account:Account"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"


@pytest.mark.parametrize("project", ["example.com:acme-labeling", "output"])
def test_grants_fall_back_to_the_accounts_outputs_when_their_names_are_not_certain(project, pack_check):
    """A domain-scoped project, or a project that is an Output: grants take the account's and role's own
    outputs (unknown in a first preview, but never a guessed name)."""
    pack_check.expect(advisory=ACT_AS)
    def program():
        given = pulumi.Output.from_input("acme-labeling") if project == "output" else project
        GcpCustomMetricsFoundation("f", GcpCustomMetricsFoundationArgs(
            project=given, deployment="gce-vm", grant_build_service_account_roles=False))

    run = run_pulumi(program)
    runtime = run.one(ACCOUNT, "f-runtime-account")
    app = run.one(ACCOUNT, "f-gce-vm-account")
    role = run.one("gcp:projects/iAMCustomRole:IAMCustomRole")
    log_writer = run.one(PROJECT_MEMBER, "f-runtime-logging-logWriter")
    assert log_writer.property_dependencies["member"] == [runtime.urn]
    assert log_writer.inputs["member"] == runtime.outputs["member"]
    deployer = run.one(PROJECT_MEMBER, "f-gce-vm-grant-deployer-role")
    assert deployer.property_dependencies["member"] == [app.urn]
    assert deployer.property_dependencies["role"] == [role.urn]
    assert (deployer.inputs["member"], deployer.inputs["role"]) == (app.outputs["member"], role.outputs["name"])


def test_readme_components_snippet_runs_and_grants_each_listed_kubernetes_account():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("<!-- section:gcp -->", 1)[1].split("<!-- section:", 1)[0]
    snippet = section.split("### Using the components in your own stack", 1)[1].split("```python\n", 1)[1]
    snippet = snippet.split("```", 1)[0]
    run = run_pulumi(lambda: exec(compile(snippet, "README.md (GCP components)", "exec"), {}))
    assert "iam.gke.io/gcp-service-account: lse-app@acme-labeling.iam.gserviceaccount.com" in (
        run.outputs["lseHelmValues"])
    members = sorted(r.inputs["member"] for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
                     if r.inputs["role"] == "roles/iam.workloadIdentityUser")
    assert members == ["serviceAccount:acme-labeling.svc.id.goog[labeling/lse-ls-app]",
                       "serviceAccount:acme-labeling.svc.id.goog[labeling/lse-ls-rqworker]"]
