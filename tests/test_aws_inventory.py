"""Each AWS deployment variant's complete resource set equals its reviewed inventory file.

The program runs under the mock harness (preview=False) exactly as `pulumi up -s aws` would run it;
`tests/inventories/aws-<variant>.yaml` holds every resource's type, name, parent and inputs (policy
documents as data). A change to what the stack creates shows up as a diff of that file, to be reviewed.

Regenerate after an intended change (then read the diff!):
    .venv/bin/python tests/test_aws_inventory.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from pulumi_harness import inventory, run_pulumi  # noqa: E402
from test_aws_variant_configs import VARIANT_CONFIGS, stack_config  # noqa: E402

from lse_custom_metrics.components.program import run  # noqa: E402

INVENTORIES = Path(__file__).parent / "inventories"
HEADER = """\
# Reviewed inventory: every resource the AWS stack registers for `{variant}`
# (type, name, parent, inputs; IAM documents parsed), from the program run under tests/pulumi_harness.py
# with the stack config in tests/test_aws_variant_configs.py. tests/test_aws_inventory.py compares
# against it. Regenerate after an intended change, then review the diff:
#     .venv/bin/python tests/test_aws_inventory.py
"""


def inventory_path(variant: str) -> Path:
    return INVENTORIES / f"aws-{variant}.yaml"


def current_inventory(variant: str) -> list[dict]:
    return inventory(run_pulumi(run, config=stack_config(variant)))


@pytest.mark.parametrize("variant", sorted(VARIANT_CONFIGS))
def test_resource_set_equals_reviewed_inventory(variant):
    expected = yaml.safe_load(inventory_path(variant).read_text())
    assert current_inventory(variant) == expected


EXPECTED_COUNTS = {
    # components: Foundation, ExecutionRole, LambdaInteractPolicy, the variant's identity component
    # shared IAM: execution Role + its RolePolicy + the LSE_AllowInteractLambda Policy
    "ec2-compose": 4 + 3 + 3,                        # User, UserPolicyAttachment, AccessKey
    "ec2-instance-profile": 4 + 3 + 3,               # Role, RolePolicyAttachment, InstanceProfile
    "ec2-instance-profile-existing-role": 4 + 3 + 1,  # RolePolicyAttachment
    "eks-oidc": 4 + 3 + 2,                           # Role, RolePolicyAttachment
    "eks-node-role": 4 + 3 + 1,                      # RolePolicyAttachment
}


@pytest.mark.parametrize("variant", sorted(VARIANT_CONFIGS))
def test_inventory_counts(variant):
    rows = yaml.safe_load(inventory_path(variant).read_text())
    assert len(rows) == EXPECTED_COUNTS[variant]
    assert sum(1 for row in rows if not row["type"].startswith("lse-custom-metrics:")) == EXPECTED_COUNTS[variant] - 4


def test_inventory_files_carry_their_header():
    for variant in VARIANT_CONFIGS:
        assert inventory_path(variant).read_text().startswith(HEADER.format(variant=variant))


def write_inventories() -> None:
    INVENTORIES.mkdir(exist_ok=True)
    for variant in sorted(VARIANT_CONFIGS):
        body = yaml.safe_dump(current_inventory(variant), sort_keys=False, width=110)
        inventory_path(variant).write_text(HEADER.format(variant=variant) + body)
        print(f"wrote {inventory_path(variant)}")


if __name__ == "__main__":
    write_inventories()
