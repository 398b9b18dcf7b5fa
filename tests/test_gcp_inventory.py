"""Each GCP scenario's complete resource set equals its reviewed inventory (tests/inventories/gcp-*.yaml)."""
from __future__ import annotations

from collections import Counter

import pytest

from gcp_scenarios import SCENARIOS, inventory_path, load_inventory, run_scenario
from pulumi_harness import inventory

# Counted by hand from the design, independently of the inventories:
# 7 APIs; runtime SA + its logWriter grant; custom role (or none); deployer grants; build-SA grants (3);
# identity account if created; WI grants (2); plus the component resources.
EXPECTED_CUSTOM_RESOURCES = {
    "gce-vm": 7 + 2 + 1 + 1 + 3 + 1,                    # 15
    "gke-workload-identity": 7 + 2 + 1 + 1 + 3 + 1 + 2,  # 17
    "gke-node": 7 + 2 + 1 + 1 + 3,                       # 14
    "gce-vm-existing-sa": 7 + 2 + 1 + 1 + 3,             # 14
    "gce-vm-predefined-roles": 7 + 2 + 0 + 5 + 3 + 1,    # 18
    "gce-vm-scoped-act-as": 7 + 2 + 1 + 1 + 1 + 3 + 1,   # 16 (SA-level actAs grant)
    "gce-vm-predefined-scoped": 7 + 2 + 0 + 4 + 1 + 3 + 1,  # 18
    "gke-node-no-build-grants": 7 + 2 + 1 + 1,           # 11
    "gke-workload-identity-explicit": 7 + 2 + 1 + 1 + 3 + 0 + 2,  # 16
    "gke-workload-identity-release": 7 + 2 + 1 + 1 + 3 + 1 + 2,  # 17 (as gke-workload-identity, KSAs renamed)
}
# Foundation, services, runtime SA, deployer role, identity variant, deployer binding, build grants.
EXPECTED_COMPONENTS = {name: 7 for name in SCENARIOS} | {"gke-node-no-build-grants": 6}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request):
    return request.param, run_scenario(request.param)


def test_inventory_file_exists_for_every_scenario():
    missing = [name for name in SCENARIOS if not inventory_path(name).exists()]
    assert missing == []


def test_resources_equal_reviewed_inventory(scenario):
    name, run = scenario
    assert inventory(run) == load_inventory(name), (
        f"{inventory_path(name).name} differs: review the change, then regenerate with "
        f"`.venv/bin/python tests/gcp_scenarios.py --write`")


def test_resource_counts(scenario):
    name, run = scenario
    custom = [r for r in run.resources if r.custom]
    components = [r for r in run.resources if not r.custom]
    assert len(custom) == EXPECTED_CUSTOM_RESOURCES[name]
    assert len(components) == EXPECTED_COMPONENTS[name]


def test_resource_names_are_unique_and_derived_from_their_parent(scenario):
    _, run = scenario
    assert len({(r.type, r.name) for r in run.resources}) == len(run.resources)
    recorded = {r.urn: r for r in run.resources}
    for r in run.resources:
        if r.parent in recorded:  # the foundation's parent is the stack, which is not recorded
            parent = recorded[r.parent]
            assert r.name.startswith(parent.name + "-"), (r.name, parent.name)


def test_every_type_is_one_of_the_expected(scenario):
    _, run = scenario
    types = Counter(r.type for r in run.resources)
    allowed = {
        "gcp:projects/service:Service", "gcp:serviceaccount/account:Account",
        "gcp:projects/iAMCustomRole:IAMCustomRole", "gcp:projects/iAMMember:IAMMember",
        "gcp:serviceaccount/iAMMember:IAMMember",
        "lse-custom-metrics:gcp:Foundation", "lse-custom-metrics:gcp:ProjectServices",
        "lse-custom-metrics:gcp:RuntimeServiceAccount", "lse-custom-metrics:gcp:DeployerRole",
        "lse-custom-metrics:gcp:DeployerBinding", "lse-custom-metrics:gcp:BuildServiceAccountGrants",
        "lse-custom-metrics:gcp:GceVmIdentity", "lse-custom-metrics:gcp:GkeWorkloadIdentity",
        "lse-custom-metrics:gcp:GkeNodeIdentity",
    }
    assert set(types) <= allowed
