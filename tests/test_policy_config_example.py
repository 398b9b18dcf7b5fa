"""`policies/policy-config.example.json`, the file the README tells users to copy for `--policy-pack-config`.

It must state exactly the pack's defaults (so a copy changes nothing until edited), name every policy,
and — applied the way the CLI applies a `--policy-pack-config` file — let every foundation through with
the same verdicts as the defaults.
"""
from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import test_policy_foundations as foundations  # noqa: E402
from policy_harness import apply_pack, parse_policy_pack_config, reconcile_config  # noqa: E402

from lse_custom_metrics.policies import rules  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "policies" / "policy-config.example.json"
# Foundation runs that use the pack's defaults (the others exist to test a non-default option).
DEFAULT_CONFIG_RUNS = sorted(name for name, (_, config, _) in foundations.RUNS.items() if config is None)


def example_config() -> dict:
    return parse_policy_pack_config(EXAMPLE.read_text())


def test_the_example_names_every_policy_with_its_default_level():
    config = example_config()
    assert list(config) == rules.POLICY_NAMES
    levels = {name: given["enforcementLevel"] for name, given in config.items()}
    assert {name for name, level in levels.items() if level == "advisory"} == {
        "no-static-access-keys", "actas-scoped"}
    assert set(levels.values()) == {"mandatory", "advisory"}


def test_the_example_sets_the_default_prefix_on_every_policy_that_takes_one():
    config = example_config()
    takes_prefix = ["lambda-actions-scoped-to-prefix", "metric-function-runtime-limits", "foundation-complete"]
    assert [p.name for p in rules.POLICIES
            if p.config_schema is not None and "prefix" in p.config_schema.properties] == takes_prefix
    assert {name: config[name]["prefix"] for name in takes_prefix} == dict.fromkeys(takes_prefix, "custom-metric-")


def test_the_example_is_exactly_the_packs_defaults():
    # what the CLI would send to the pack with the file and without it
    assert reconcile_config(example_config()) == reconcile_config(None)


@pytest.mark.parametrize("name", DEFAULT_CONFIG_RUNS)
def test_every_foundation_passes_the_pack_configured_from_the_example(name):
    _, _, advisory = foundations.RUNS[name]
    report = apply_pack(foundations.recorded(name), config=example_config())
    assert report.mandatory == set(), report.explain()
    found = {}
    for diagnostic in report.violations:
        found.setdefault(diagnostic.policy, set()).add(diagnostic.resource.split("::")[0].rsplit("$", 1)[-1])
    assert found == advisory, report.explain()


def test_the_examples_prefix_is_applied():
    # Edited to another prefix, the copy rejects a default-prefix foundation: the file is read, not ignored.
    edited = copy.deepcopy(example_config())
    for name in ("lambda-actions-scoped-to-prefix", "metric-function-runtime-limits", "foundation-complete"):
        edited[name]["prefix"] = "acme-metric-"
    report = apply_pack(foundations.recorded("aws-eks-node-role"), config=edited)
    assert report.mandatory == {"lambda-actions-scoped-to-prefix"}, report.explain()
    # ...and accepts a foundation built with that prefix
    report = apply_pack(foundations.recorded("aws-custom-prefix"), config=edited)
    assert report.mandatory == set(), report.explain()


def test_the_readme_commands_use_the_file_the_readme_tells_you_to_copy():
    section = (REPO / "README.md").read_text().split("<!-- section:policies -->", 1)[1].split("<!-- section:", 1)[0]
    assert "cp policies/policy-config.example.json policy-config.json" in section
    referenced = set(re.findall(r"--policy-pack-config (\S+)", section))
    assert referenced == {"policy-config.json"}
