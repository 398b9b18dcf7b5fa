"""GCP naming rules (DESIGN §5): accepted and rejected examples at each boundary."""
from __future__ import annotations

import pytest

from lse_custom_metrics.components.gcp import naming
from lse_custom_metrics.components.gcp.naming import GcpNameError

CASES = [
    # (checker, valid values, invalid values)
    (naming.check_service_account_id,
     ["lse-app", "lse-custom-metrics-runtime", "a" * 6, "a" + "b" * 29, "a1-2-3"],
     ["lse", "a" * 5, "a" * 31, "1lse-app", "lse-app-", "LSE-app", "lse_app", "", 42]),
    (naming.check_custom_role_id,
     ["LSE_CustomMetricsDeployer", "abc", "a.b_c", "x" * 64],
     ["ab", "x" * 65, "LSE-CustomMetricsDeployer", "role id", ""]),
    (naming.check_project_id,
     ["acme-labeling", "a12345", "example.com:acme-labeling"],
     ["acme", "Acme-labeling", "acme_labeling", "acme-labeling-", "1acme-labeling", "a" * 31]),
    (naming.check_region,
     ["us-central1", "europe-west1", "northamerica-northeast2", "me-central2"],
     ["us central1", "us-central", "US-CENTRAL1", "uscentral1"]),
    (naming.check_service_account_email,
     ["lse-app@acme-labeling.iam.gserviceaccount.com",
      "123456789012-compute@developer.gserviceaccount.com",
      "acme-labeling@appspot.gserviceaccount.com"],
     ["lse-app@gmail.com", "lse-app", "@acme.iam.gserviceaccount.com", "LSE@acme.iam.gserviceaccount.com"]),
    (naming.check_namespace, ["labeling", "default", "a", "a" * 63], ["Labeling", "lab_eling", "-a", "a" * 64]),
    (naming.check_kubernetes_service_account,
     ["lse-ls-app", "label.studio", "a" * 253], ["Label_Studio", "a" * 254, "-app"]),
    (naming.check_helm_release, ["lse", "prod-1", "a" * 53], ["LSE", "a" * 54, "lse_prod", "lse-"]),
]


@pytest.mark.parametrize("check,valid,invalid", CASES, ids=[c[0].__name__ for c in CASES])
def test_names(check, valid, invalid):
    for value in valid:
        check("thing", value)
    for value in invalid:
        with pytest.raises(GcpNameError) as info:
            check("thing", value)
        assert info.value.what == "thing"
        assert str(info.value).startswith("thing: ")


def test_labels():
    naming.check_labels("labels", {})
    naming.check_labels("labels", {"team": "labeling", "cost_center": "", "k" + "e" * 62: "v" * 63})
    naming.check_labels("labels", {f"k{i}": "v" for i in range(64)})
    bad = [
        ({"Team": "x"}, "labels.Team", "label key 'Team'"),
        ({"1team": "x"}, "labels.1team", "starting with a letter"),
        ({"k" * 64: "x"}, "labels." + "k" * 64, "1-63 characters"),
        ({"team": "X"}, "labels.team", "label value 'X'"),
        ({"team": "v" * 64}, "labels.team", "at most 63"),
        ({"team": 3}, "labels.team", "label value 3"),
        ({"goog-x": "y"}, "labels.goog-x", "reserves"),
        ({f"k{i}": "v" for i in range(65)}, "labels", "at most 64"),
        (["team"], "labels", "must be a mapping"),
    ]
    for labels, what, fragment in bad:
        with pytest.raises(GcpNameError) as info:
            naming.check_labels("labels", labels)
        assert info.value.what == what and fragment in str(info.value), (labels, str(info.value))


def test_outputs_are_left_to_the_provider():
    import pulumi

    naming.check_service_account_id("thing", pulumi.Output.from_input("NOT VALID"))


def test_role_key_and_service_account_resource_id():
    assert naming.role_key("roles/logging.logWriter") == "logging-logWriter"
    assert naming.role_key("roles/iam.serviceAccountUser") == "iam-serviceAccountUser"
    assert (naming.service_account_resource_id("lse-app@shared-ids.iam.gserviceaccount.com", "acme-labeling")
            == "projects/shared-ids/serviceAccounts/lse-app@shared-ids.iam.gserviceaccount.com")


# --- names GCP derives from inputs (grants use them so that a first preview knows them) -----------------

def test_service_account_email_and_custom_role_name_from_their_inputs():
    from lse_custom_metrics.components.gcp_resource_names import custom_role_name, service_account_email

    assert service_account_email("lse-app", "acme-labeling") == "lse-app@acme-labeling.iam.gserviceaccount.com"
    assert custom_role_name("acme-labeling", "LSE_CustomMetricsDeployer") == (
        "projects/acme-labeling/roles/LSE_CustomMetricsDeployer")
    # not certain now: a domain-scoped project's accounts follow another pattern; unknown inputs
    for project, value in (("example.com:acme-labeling", "lse-app"), (None, "lse-app"), ("acme-labeling", None),
                           (object(), "lse-app"), ("", "lse-app")):
        assert service_account_email(value, project) is None
        assert custom_role_name(project, value) is None
