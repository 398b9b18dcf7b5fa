"""GCP stack configurations the tests run, and the writer of their reviewed inventories.

Regenerate the inventories after an intended change, then read the diff as a reviewer would:
    .venv/bin/python tests/gcp_scenarios.py --write
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from pulumi_harness import GCP_PROJECT, Run, inventory, run_pulumi

NS = "lse-custom-metrics"
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
INVENTORIES = TESTS / "inventories"
NODE_SA = "gke-nodes@acme-labeling.iam.gserviceaccount.com"
EXISTING_VM_SA = "lse-vm@acme-labeling.iam.gserviceaccount.com"
# An app account that lives in a separate identity project: its IAM id must name that project.
SHARED_APP_SA = "lse-app@shared-identities.iam.gserviceaccount.com"

# scenario name -> `lse-custom-metrics:` keys (besides cloud) on top of `gcp:project`.
SCENARIOS: dict[str, dict[str, Any]] = {
    "gce-vm": {"deployment": "gce-vm"},
    "gke-workload-identity": {"deployment": "gke-workload-identity", "namespace": "labeling"},
    "gke-node": {"deployment": "gke-node", "nodeServiceAccountEmail": NODE_SA},
    # option toggles
    "gce-vm-existing-sa": {"deployment": "gce-vm", "appServiceAccountEmail": EXISTING_VM_SA},
    "gce-vm-predefined-roles": {"deployment": "gce-vm", "usePredefinedRoles": True},
    "gce-vm-scoped-act-as": {"deployment": "gce-vm", "scopeActAsToRuntimeServiceAccount": True},
    "gce-vm-predefined-scoped": {"deployment": "gce-vm", "usePredefinedRoles": True,
                                 "scopeActAsToRuntimeServiceAccount": True},
    "gke-node-no-build-grants": {"deployment": "gke-node", "nodeServiceAccountEmail": NODE_SA,
                                 "grantBuildServiceAccountRoles": False},
    "gke-workload-identity-release": {"deployment": "gke-workload-identity", "namespace": "labeling",
                                      "helmRelease": "studio", "labels": {"team": "ml-platform"}},
    "gke-workload-identity-explicit": {
        "deployment": "gke-workload-identity", "namespace": "tools",
        "serviceAccounts": ["label-studio", "label-studio-workers"],
        "appServiceAccountEmail": SHARED_APP_SA},
}
# The three deployment variants; the other scenarios toggle one option each.
VARIANTS = ("gce-vm", "gke-workload-identity", "gke-node")


def stack_config(keys: dict[str, Any], *, project: str = GCP_PROJECT) -> dict[str, Any]:
    config: dict[str, Any] = {f"{NS}:cloud": "gcp", "gcp:project": project}
    config.update({f"{NS}:{k}": v for k, v in keys.items()})
    return config


def run_program(config: dict[str, Any]) -> Run:
    """Run the real entry point (`lse-custom-metrics:cloud` dispatch included) under the mocks."""
    from lse_custom_metrics.components.program import run

    return run_pulumi(run, config=config)


def run_scenario(name: str) -> Run:
    return run_program(stack_config(SCENARIOS[name]))


def inventory_path(name: str) -> Path:
    return INVENTORIES / f"gcp-{name}.yaml"


def load_inventory(name: str) -> list[dict]:
    return yaml.safe_load(inventory_path(name).read_text())


def load_stack_file(path: Path = REPO / "Pulumi.gcp.yaml") -> dict[str, Any]:
    """Stack config as the CLI hands it to the program: objects as JSON, scalars as text."""
    return yaml.safe_load(path.read_text())["config"]


def write_inventories() -> None:
    INVENTORIES.mkdir(exist_ok=True)
    for name, keys in SCENARIOS.items():
        rows = inventory(run_scenario(name))
        header = (f"# Reviewed inventory: every resource of the GCP stack for scenario '{name}'\n"
                  f"# (config: {', '.join(f'{k}={v}' for k, v in keys.items())}).\n"
                  f"# Regenerate with `.venv/bin/python tests/gcp_scenarios.py --write`, then review the\n"
                  f"# diff line by line: a changed grant here is a changed permission in real projects.\n")
        body = yaml.safe_dump(rows, sort_keys=False, default_flow_style=False, width=110)
        inventory_path(name).write_text(header + body)
        print(f"{inventory_path(name).relative_to(REPO)}: {len(rows)} resources")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: gcp_scenarios.py --write")
    write_inventories()
