"""The GCP program: runs from `Pulumi.gcp.yaml` and for every variant; bad config fails by name, early."""
from __future__ import annotations

import json

import pytest
import yaml

from gcp_scenarios import NODE_SA, NS, load_stack_file, run_program, stack_config
from lse_custom_metrics.components.config import ConfigError
from pulumi_harness import GCP_PROJECT, GCP_PROJECT_NUMBER, run_pulumi

RUNTIME_EMAIL = f"lse-custom-metrics-runtime@{GCP_PROJECT}.iam.gserviceaccount.com"
LSE_APP_EMAIL = f"lse-app@{GCP_PROJECT}.iam.gserviceaccount.com"
ENV = {
    "CUSTOM_METRIC_PROVIDER": "gcp",
    "GCP_PROJECT_CUSTOM_METRICS": GCP_PROJECT,
    "GCP_REGION_CUSTOM_METRICS": "us-central1",
    "GCP_SERVICE_ACCOUNT_CUSTOM_METRICS": RUNTIME_EMAIL,
}
ENV_LIST = (
    "CUSTOM_METRIC_PROVIDER=gcp\n"
    f"GCP_PROJECT_CUSTOM_METRICS={GCP_PROJECT}\n"
    "GCP_REGION_CUSTOM_METRICS=us-central1\n"
    f"GCP_SERVICE_ACCOUNT_CUSTOM_METRICS={RUNTIME_EMAIL}\n"
)
COMPOSE = (
    "environment:\n"
    '  CUSTOM_METRIC_PROVIDER: "gcp"\n'
    f'  GCP_PROJECT_CUSTOM_METRICS: "{GCP_PROJECT}"\n'
    '  GCP_REGION_CUSTOM_METRICS: "us-central1"\n'
    f'  GCP_SERVICE_ACCOUNT_CUSTOM_METRICS: "{RUNTIME_EMAIL}"\n'
)
ROLE_NAME = f"projects/{GCP_PROJECT}/roles/LSE_CustomMetricsDeployer"
BUILD_EMAIL = f"{GCP_PROJECT_NUMBER}-compute@developer.gserviceaccount.com"


def _common_outputs(deployment: str, identity_email: str) -> dict:
    return {
        "deployment": deployment,
        "project": GCP_PROJECT,
        "region": "us-central1",
        "env": ENV,
        "envList": ENV_LIST,
        "dockerComposeEnvironment": COMPOSE,
        "runtimeServiceAccountEmail": RUNTIME_EMAIL,
        "lseServiceAccountEmail": identity_email,
        "lseIdentityMember": f"serviceAccount:{identity_email}",
        "deployerRoleName": ROLE_NAME,
        "deployerProjectRoles": [ROLE_NAME],
        "deployerRuntimeServiceAccountRoles": [],
        "buildServiceAccountEmail": BUILD_EMAIL,
        "labels": {},
    }


def _plain_helm(env: dict) -> dict:
    return {"app": {"extraEnvironmentVars": env}, "rqworker": {"extraEnvironmentVars": env}}


PLAIN_HELM_YAML = (
    "app:\n"
    "  extraEnvironmentVars:\n"
    "    CUSTOM_METRIC_PROVIDER: gcp\n"
    f"    GCP_PROJECT_CUSTOM_METRICS: {GCP_PROJECT}\n"
    "    GCP_REGION_CUSTOM_METRICS: us-central1\n"
    f"    GCP_SERVICE_ACCOUNT_CUSTOM_METRICS: {RUNTIME_EMAIL}\n"
    "rqworker:\n"
    "  extraEnvironmentVars:\n"
    "    CUSTOM_METRIC_PROVIDER: gcp\n"
    f"    GCP_PROJECT_CUSTOM_METRICS: {GCP_PROJECT}\n"
    "    GCP_REGION_CUSTOM_METRICS: us-central1\n"
    f"    GCP_SERVICE_ACCOUNT_CUSTOM_METRICS: {RUNTIME_EMAIL}\n"
)


def test_gce_vm_outputs_exact():
    run = run_program(stack_config({"deployment": "gce-vm"}))
    helm = _plain_helm(ENV)
    assert run.outputs == _common_outputs("gce-vm", LSE_APP_EMAIL) | {
        "helmValues": helm, "helmValuesYaml": PLAIN_HELM_YAML}


def test_gke_node_outputs_exact():
    run = run_program(stack_config({"deployment": "gke-node", "nodeServiceAccountEmail": NODE_SA}))
    helm = _plain_helm(ENV)
    assert run.outputs == _common_outputs("gke-node", NODE_SA) | {
        "helmValues": helm, "helmValuesYaml": PLAIN_HELM_YAML}


def test_gke_workload_identity_outputs_exact():
    run = run_program(stack_config({"deployment": "gke-workload-identity", "namespace": "labeling",
                                    "helmRelease": "prod"}))
    annotated = {"serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": LSE_APP_EMAIL}},
                 "extraEnvironmentVars": ENV}
    expected_yaml = (
        "app:\n"
        "  serviceAccount:\n"
        "    annotations:\n"
        f"      iam.gke.io/gcp-service-account: {LSE_APP_EMAIL}\n"
        "  extraEnvironmentVars:\n"
        "    CUSTOM_METRIC_PROVIDER: gcp\n"
        f"    GCP_PROJECT_CUSTOM_METRICS: {GCP_PROJECT}\n"
        "    GCP_REGION_CUSTOM_METRICS: us-central1\n"
        f"    GCP_SERVICE_ACCOUNT_CUSTOM_METRICS: {RUNTIME_EMAIL}\n"
        "rqworker:\n"
        "  serviceAccount:\n"
        "    annotations:\n"
        f"      iam.gke.io/gcp-service-account: {LSE_APP_EMAIL}\n"
        "  extraEnvironmentVars:\n"
        "    CUSTOM_METRIC_PROVIDER: gcp\n"
        f"    GCP_PROJECT_CUSTOM_METRICS: {GCP_PROJECT}\n"
        "    GCP_REGION_CUSTOM_METRICS: us-central1\n"
        f"    GCP_SERVICE_ACCOUNT_CUSTOM_METRICS: {RUNTIME_EMAIL}\n"
    )
    assert run.outputs == _common_outputs("gke-workload-identity", LSE_APP_EMAIL) | {
        "helmValues": {"app": annotated, "rqworker": annotated},
        "helmValuesYaml": expected_yaml,
        "workloadIdentityMembers": [
            f"serviceAccount:{GCP_PROJECT}.svc.id.goog[labeling/prod-ls-app]",
            f"serviceAccount:{GCP_PROJECT}.svc.id.goog[labeling/prod-ls-rqworker]"],
    }


def test_service_accounts_list_overrides_helm_release_as_on_aws():
    run = run_program(stack_config({"deployment": "gke-workload-identity", "namespace": "labeling",
                                    "helmRelease": "prod", "serviceAccounts": ["ls", "ls-workers", "ls-cron"]}))
    assert run.outputs["workloadIdentityMembers"] == [
        f"serviceAccount:{GCP_PROJECT}.svc.id.goog[labeling/{ksa}]" for ksa in ("ls", "ls-workers", "ls-cron")]
    grants = {r.name: r.inputs["member"] for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")}
    assert grants == {f"lse-custom-metrics-gke-wi-ksa-{ksa}": f"serviceAccount:{GCP_PROJECT}.svc.id.goog[labeling/{ksa}]"
                      for ksa in ("ls", "ls-workers", "ls-cron")}
    # the chart's keys stay `app` and `rqworker`, whatever the accounts are called
    assert set(run.outputs["helmValues"]) == {"app", "rqworker"}
    for component in ("app", "rqworker"):
        assert run.outputs["helmValues"][component]["serviceAccount"] == {
            "annotations": {"iam.gke.io/gcp-service-account": LSE_APP_EMAIL}}


def test_options_change_the_role_outputs():
    scoped = run_program(stack_config({"deployment": "gce-vm", "scopeActAsToRuntimeServiceAccount": True}))
    assert scoped.outputs["deployerProjectRoles"] == [ROLE_NAME]
    assert scoped.outputs["deployerRuntimeServiceAccountRoles"] == ["roles/iam.serviceAccountUser"]
    predefined = run_program(stack_config({"deployment": "gce-vm", "usePredefinedRoles": True}))
    assert "deployerRoleName" not in predefined.outputs  # no custom role exists
    assert predefined.outputs["deployerProjectRoles"] == [
        "roles/cloudfunctions.developer", "roles/run.invoker", "roles/storage.objectAdmin",
        "roles/logging.viewer", "roles/iam.serviceAccountUser"]
    no_build = run_program(stack_config({"deployment": "gce-vm", "grantBuildServiceAccountRoles": False}))
    assert "buildServiceAccountEmail" not in no_build.outputs


def test_region_and_labels_flow_into_outputs():
    config = stack_config({"deployment": "gce-vm", "labels": {"team": "labeling", "cost-center": "ml_1"}})
    config["gcp:region"] = "europe-west1"
    run = run_program(config)
    assert run.outputs["env"]["GCP_REGION_CUSTOM_METRICS"] == "europe-west1"
    assert "GCP_REGION_CUSTOM_METRICS=europe-west1\n" in run.outputs["envList"]
    assert run.outputs["labels"] == {"team": "labeling", "cost-center": "ml_1"}
    # none of the foundation's resource types has a labels field: nothing may carry them
    assert all("labels" not in r.inputs for r in run.resources)


def test_compose_block_is_valid_yaml_with_string_values():
    run = run_program(stack_config({"deployment": "gce-vm"}))
    assert yaml.safe_load(run.outputs["dockerComposeEnvironment"]) == {"environment": ENV}
    lines = run.outputs["envList"].splitlines()
    assert dict(line.split("=", 1) for line in lines) == ENV


def test_program_runs_from_the_example_stack_file():
    stack = load_stack_file()
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in stack.items()}
    assert config[f"{NS}:deployment"] == "gke-workload-identity"
    run = run_program(config)
    custom = [r for r in run.resources if r.custom]
    # gke-workload-identity (17) + the SA-level actAs grant the example enables
    assert len(custom) == 18
    assert run.outputs["labels"] == {"team": "labeling", "cost-center": "ml-platform"}
    assert run.outputs["workloadIdentityMembers"] == [
        "serviceAccount:acme-labeling.svc.id.goog[labeling/lse-ls-app]",
        "serviceAccount:acme-labeling.svc.id.goog[labeling/lse-ls-rqworker]"]
    assert run.outputs["deployerRuntimeServiceAccountRoles"] == ["roles/iam.serviceAccountUser"]


def test_example_stack_file_shows_every_key_of_every_variant():
    text = (load_stack_file.__defaults__[0]).read_text()
    from lse_custom_metrics.components.gcp.program import FIELD_OF_KEY

    for key in FIELD_OF_KEY:
        assert f"{key}:" in text, key
    for variant in ("gce-vm", "gke-workload-identity", "gke-node"):
        assert variant in text


@pytest.mark.parametrize("variant_keys", [
    {"deployment": "gce-vm"},
    {"deployment": "gce-vm", "appServiceAccountEmail": "vm@acme-labeling.iam.gserviceaccount.com"},
    {"deployment": "gke-workload-identity", "namespace": "default"},
    {"deployment": "gke-workload-identity", "namespace": "default",
     "serviceAccounts": ["a", "b"]},
    {"deployment": "gke-node", "nodeServiceAccountEmail": f"{GCP_PROJECT_NUMBER}-compute@developer.gserviceaccount.com"},
])
def test_program_runs_for_every_variant_and_only_invokes_get_project(variant_keys):
    run = run_program(stack_config(variant_keys))
    assert run.outputs["deployment"] == variant_keys["deployment"]
    assert {token for token, _ in run.calls} == {"gcp:organizations/getProject:getProject"}


# --- bad config: named error, before any resource ----------------------------------------------------

BAD_CONFIGS = [
    # (id, config changes (None deletes a key), key named, message fragment, variant named)
    ("deployment-missing", {f"{NS}:deployment": None}, f"{NS}:deployment",
     "missing", None),
    ("deployment-unknown", {f"{NS}:deployment": "gke"}, f"{NS}:deployment",
     "allowed: gce-vm, gke-workload-identity, gke-node", None),
    ("project-missing", {"gcp:project": None}, "gcp:project", "missing", "gce-vm"),
    ("project-invalid", {"gcp:project": "Acme_Labeling"}, "gcp:project", "'Acme_Labeling' is not valid", "gce-vm"),
    ("region-invalid", {"gcp:region": "us central"}, "gcp:region", "a GCP region", "gce-vm"),
    ("unknown-key", {f"{NS}:namepsace": "labeling"}, f"{NS}:namepsace", "unknown key", "gce-vm"),
    ("aws-key-on-gcp", {f"{NS}:irsaRoleName": "x"}, f"{NS}:irsaRoleName", "unknown key", "gce-vm"),
    # the provider's keys under our namespace would be ignored: the functions' region silently us-central1
    ("region-in-our-namespace", {f"{NS}:region": "europe-west1"}, f"{NS}:region",
     "unknown key for cloud 'gcp' (did you mean 'gcp:region'?)", "gce-vm"),
    ("project-in-our-namespace", {f"{NS}:project": "acme"}, f"{NS}:project",
     "(did you mean 'gcp:project'?) (deployment 'gce-vm') allowed: appServiceAccountEmail, cloud, deployment",
     "gce-vm"),
    ("node-email-on-gce-vm", {f"{NS}:nodeServiceAccountEmail": NODE_SA}, f"{NS}:nodeServiceAccountEmail",
     "is only used by deployment 'gke-node' (deployment 'gce-vm') allowed: cloud, deployment, "
     "usePredefinedRoles, scopeActAsToRuntimeServiceAccount, grantBuildServiceAccountRoles, labels, "
     "appServiceAccountEmail",
     "gce-vm"),
    ("app-email-invalid", {f"{NS}:appServiceAccountEmail": "lse-app@gmail.com"},
     f"{NS}:appServiceAccountEmail", "a service-account email", "gce-vm"),
    ("predefined-not-bool", {f"{NS}:usePredefinedRoles": "yes"}, f"{NS}:usePredefinedRoles",
     "must be true or false, got 'yes'", "gce-vm"),
    ("scope-not-bool", {f"{NS}:scopeActAsToRuntimeServiceAccount": "1"},
     f"{NS}:scopeActAsToRuntimeServiceAccount", "must be true or false", "gce-vm"),
    ("build-not-bool", {f"{NS}:grantBuildServiceAccountRoles": "off"},
     f"{NS}:grantBuildServiceAccountRoles", "must be true or false", "gce-vm"),
    ("labels-not-object", {f"{NS}:labels": "team"}, f"{NS}:labels", "must be a YAML/JSON object", "gce-vm"),
    ("labels-list", {f"{NS}:labels": ["team"]}, f"{NS}:labels", "must be a mapping", "gce-vm"),
    ("label-key-upper", {f"{NS}:labels": {"Team": "a"}}, f"{NS}:labels", "label key 'Team' is not valid", "gce-vm"),
    ("label-key-digit", {f"{NS}:labels": {"1team": "a"}}, f"{NS}:labels", "starting with a letter", "gce-vm"),
    ("label-value-space", {f"{NS}:labels": {"team": "ML Platform"}}, f"{NS}:labels",
     "label value 'ML Platform' is not valid", "gce-vm"),
    ("label-value-long", {f"{NS}:labels": {"team": "a" * 64}}, f"{NS}:labels", "at most 63", "gce-vm"),
    ("label-reserved", {f"{NS}:labels": {"goog-owner": "x"}}, f"{NS}:labels", "reserves", "gce-vm"),
]
WI = {f"{NS}:deployment": "gke-workload-identity", f"{NS}:namespace": "labeling"}
BAD_CONFIGS += [
    ("namespace-missing", {**WI, f"{NS}:namespace": None}, f"{NS}:namespace", "missing",
     "gke-workload-identity"),
    ("namespace-invalid", {**WI, f"{NS}:namespace": "Labeling!"}, f"{NS}:namespace",
     "'Labeling!' is not a Kubernetes namespace name", "gke-workload-identity"),
    ("release-invalid", {**WI, f"{NS}:helmRelease": "LSE"}, f"{NS}:helmRelease", "'LSE' is not a helm release name",
     "gke-workload-identity"),
    ("release-too-long", {**WI, f"{NS}:helmRelease": "a" * 54}, f"{NS}:helmRelease", "at most 53",
     "gke-workload-identity"),
    ("service-accounts-map", {**WI, f"{NS}:serviceAccounts": {"app": "a", "rqworker": "b"}},
     f"{NS}:serviceAccounts", "must be a list of names", "gke-workload-identity"),
    ("service-accounts-empty", {**WI, f"{NS}:serviceAccounts": []}, f"{NS}:serviceAccounts",
     "must be a list of names", "gke-workload-identity"),
    ("service-accounts-not-a-list", {**WI, f"{NS}:serviceAccounts": "lse-ls-app"}, f"{NS}:serviceAccounts",
     "must be a list of names", "gke-workload-identity"),
    ("service-accounts-duplicate", {**WI, f"{NS}:serviceAccounts": ["a", "a"]}, f"{NS}:serviceAccounts",
     "names must be distinct", "gke-workload-identity"),
    ("service-account-name-invalid", {**WI, f"{NS}:serviceAccounts": ["lse-ls-app", "Label_Studio"]},
     f"{NS}:serviceAccounts", "'Label_Studio' is not a Kubernetes service account name", "gke-workload-identity"),
    ("node-email-on-wi", {**WI, f"{NS}:nodeServiceAccountEmail": NODE_SA}, f"{NS}:nodeServiceAccountEmail",
     "is only used by deployment 'gke-node'", "gke-workload-identity"),
]
NODE = {f"{NS}:deployment": "gke-node", f"{NS}:nodeServiceAccountEmail": NODE_SA}
BAD_CONFIGS += [
    ("node-email-missing", {**NODE, f"{NS}:nodeServiceAccountEmail": None}, f"{NS}:nodeServiceAccountEmail",
     "is required", "gke-node"),
    ("node-email-invalid", {**NODE, f"{NS}:nodeServiceAccountEmail": "gke-nodes"},
     f"{NS}:nodeServiceAccountEmail", "'gke-nodes' is not valid", "gke-node"),
    ("namespace-on-node", {**NODE, f"{NS}:namespace": "labeling"}, f"{NS}:namespace",
     "is only used by deployment 'gke-workload-identity' (deployment 'gke-node') "
     "allowed: cloud, deployment, usePredefinedRoles, scopeActAsToRuntimeServiceAccount, "
     "grantBuildServiceAccountRoles, labels, nodeServiceAccountEmail",
     "gke-node"),
    ("app-email-on-node", {**NODE, f"{NS}:appServiceAccountEmail": "a@b.iam.gserviceaccount.com"},
     f"{NS}:appServiceAccountEmail", "is only used by deployments 'gce-vm', 'gke-workload-identity'", "gke-node"),
    ("release-on-node", {**NODE, f"{NS}:helmRelease": "lse"}, f"{NS}:helmRelease",
     "is only used by deployment 'gke-workload-identity'", "gke-node"),
    ("service-accounts-on-node", {**NODE, f"{NS}:serviceAccounts": ["a"]}, f"{NS}:serviceAccounts",
     "is only used by deployment 'gke-workload-identity'", "gke-node"),
]


@pytest.mark.parametrize("changes,key,fragment,variant", [c[1:] for c in BAD_CONFIGS],
                         ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_the_key_and_registers_nothing(changes, key, fragment, variant):
    config = stack_config({"deployment": "gce-vm"})
    for k, v in changes.items():
        if v is None:
            config.pop(k, None)
        else:
            config[k] = v
    errors: list[ConfigError] = []

    def program():
        from lse_custom_metrics.components.program import run

        try:
            run()
        except ConfigError as err:
            errors.append(err)

    run = run_pulumi(program, config=config)
    assert len(errors) == 1, "expected a ConfigError"
    err = errors[0]
    assert err.key == key
    assert f"config key '{key}'" in str(err)
    assert fragment in str(err)
    assert err.variant == variant
    if variant:
        assert f"(deployment '{variant}')" in str(err)
    assert run.resources == [] and run.calls == [] and run.outputs == {}


# --- the keys both clouds share read the same ------------------------------------------------------------

SHARED_KEY_MISTAKES = [
    # (id, changes to the Kubernetes variant's config: None deletes the key)
    ("namespace-missing", {"namespace": None}),
    ("namespace-invalid", {"namespace": "Label_Studio"}),
    ("release-invalid", {"helmRelease": "LSE"}),
    ("service-accounts-empty", {"serviceAccounts": []}),
    ("service-accounts-map", {"serviceAccounts": {"app": "a", "rqworker": "b"}}),
    ("service-accounts-duplicate", {"serviceAccounts": ["a", "a"]}),
    ("service-account-name-invalid", {"serviceAccounts": ["lse-ls-app", "Worker"]}),
    ("deployment-missing", {"deployment": None}),
]


def _config_error(config: dict) -> ConfigError:
    errors: list[ConfigError] = []

    def program():
        from lse_custom_metrics.components.program import run

        try:
            run()
        except ConfigError as err:
            errors.append(err)

    run_pulumi(program, config=config)
    assert len(errors) == 1, "expected a ConfigError"
    return errors[0]


@pytest.mark.parametrize("changes", [c[1] for c in SHARED_KEY_MISTAKES], ids=[c[0] for c in SHARED_KEY_MISTAKES])
def test_shared_keys_fail_with_the_same_words_on_aws_and_gcp(changes):
    from test_aws_variant_configs import stack_config as aws_stack_config

    gcp_config = stack_config({"deployment": "gke-workload-identity", "namespace": "labeling"})
    for key, value in changes.items():
        if value is None:
            gcp_config.pop(f"{NS}:{key}", None)
        else:
            gcp_config[f"{NS}:{key}"] = value
    aws_error = _config_error(aws_stack_config("eks-oidc", **changes))
    gcp_error = _config_error(gcp_config)
    assert aws_error.key == gcp_error.key
    if "deployment" in changes:  # only the allowed variants differ
        assert str(aws_error).split(" allowed: ")[0] == str(gcp_error).split(" allowed: ")[0] == (
            "config key 'lse-custom-metrics:deployment': missing")
        return
    assert (aws_error.variant, gcp_error.variant) == ("eks-oidc", "gke-workload-identity")
    assert str(aws_error).replace("'eks-oidc'", "'<k8s>'") == str(gcp_error).replace(
        "'gke-workload-identity'", "'<k8s>'")


def test_a_kubernetes_key_on_a_non_kubernetes_variant_reads_the_same_on_both_clouds():
    from test_aws_variant_configs import stack_config as aws_stack_config

    aws_error = _config_error(aws_stack_config("eks-node-role", serviceAccounts=["a"]))
    gcp_error = _config_error(stack_config({"deployment": "gke-node", "nodeServiceAccountEmail": NODE_SA,
                                            "serviceAccounts": ["a"]}))
    assert str(aws_error).startswith("config key 'lse-custom-metrics:serviceAccounts': "
                                     "is only used by deployment 'eks-oidc' (deployment 'eks-node-role')")
    assert str(gcp_error).startswith("config key 'lse-custom-metrics:serviceAccounts': "
                                     "is only used by deployment 'gke-workload-identity' (deployment 'gke-node')")


def test_readme_gcp_section_documents_every_key_and_sets_the_required_ones():
    from gcp_scenarios import REPO
    from lse_custom_metrics.components.gcp.program import KNOWN_KEYS

    section = (REPO / "README.md").read_text().split("<!-- section:gcp -->", 1)[1].split("<!-- section:", 1)[0]
    table_keys = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    assert set(KNOWN_KEYS) <= table_keys
    for key in ("gcp:project", f"{NS}:cloud", f"{NS}:deployment"):
        assert f"pulumi config set {key} " in section, key


def test_example_stack_marks_its_placeholders():
    from gcp_scenarios import REPO

    lines = (REPO / "Pulumi.gcp.yaml").read_text().splitlines()
    for key in ("gcp:project", f"{NS}:namespace", f"{NS}:helmRelease", f"{NS}:labels",
                f"{NS}:appServiceAccountEmail", f"{NS}:nodeServiceAccountEmail"):
        marked = [line for line in lines if line.lstrip("# ").startswith(f"{key}:")]
        assert marked and all("replace" in line for line in marked), key
