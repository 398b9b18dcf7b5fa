"""The policy pack over every GCP scenario: what `pulumi preview --policy-pack policies` would report."""
from __future__ import annotations

import pytest

from gcp_scenarios import SCENARIOS, run_scenario
from policy_harness import apply_pack


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request):
    return request.param, run_scenario(request.param)


def test_no_mandatory_violation_and_only_the_act_as_advice_when_unscoped(scenario):
    name, run = scenario
    report = apply_pack(run)
    assert report.mandatory == set(), report.explain()
    scoped = SCENARIOS[name].get("scopeActAsToRuntimeServiceAccount", False)
    # The docs' project-wide actAs is what the advisory `actas-scoped` is about; scoping silences it.
    assert report.advisory == (set() if scoped else {"actas-scoped"}), report.explain()
    assert report.undecided == []


def test_first_preview_has_no_mandatory_violation(scenario):
    _, run = scenario
    report = apply_pack(run, preview=True)
    assert report.mandatory == set(), report.explain()
