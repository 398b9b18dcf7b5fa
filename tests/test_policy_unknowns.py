"""No policy crashes, passes or fails on values the engine cannot know yet.

Every resource of every foundation and broken stack is replayed with its properties unknown — each top-level
property, then every leaf inside objects and lists — through the SDK's analyzer, and the stack with every
output unknown. A policy may then only say "can't run during preview" (the CLI's advisory diagnostic), except
the two whose verdict depends on the resource type alone.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import gcp_scenarios  # noqa: E402
import test_aws_variant_configs as aws_variants  # noqa: E402
from policy_harness import UNKNOWN, apply_pack  # noqa: E402
from pulumi_harness import Run, run_pulumi  # noqa: E402
from test_policy_broken_stacks import BROKEN, run_broken  # noqa: E402

from lse_custom_metrics.components.program import run as program  # noqa: E402

# Their verdict is the resource type itself (an access key exists; an IAMBinding is authoritative).
TYPE_ONLY = {"no-static-access-keys", "gcp-iam-non-authoritative"}


def runs() -> dict[str, Run]:
    found = {f"aws-{v}": run_pulumi(program, config=aws_variants.stack_config(v)) for v in aws_variants.VARIANT_CONFIGS}
    found.update({f"gcp-{s}": gcp_scenarios.run_scenario(s) for s in ("gce-vm", "gke-workload-identity",
                                                                        "gce-vm-predefined-roles")})
    found.update({f"broken-{name}": run_broken(name) for name in BROKEN})
    return found


def top_level_unknown(props: dict[str, Any]) -> dict[str, Any]:
    return {k: UNKNOWN for k in props}


def leaves_unknown(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return {"__secret__": UNKNOWN}
        return {k: leaves_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [leaves_unknown(v) for v in value]
    return UNKNOWN if isinstance(value, (str, int, float, bool)) else value


def replaced(run: Run, make_unknown) -> Run:
    resources = [dataclasses.replace(r, inputs=make_unknown(r.inputs), outputs=make_unknown(r.outputs))
                 for r in run.resources]
    return Run(resources=resources, outputs=run.outputs, calls=run.calls, monitor=run.monitor)


ALL_RUNS = runs()


@pytest.mark.parametrize("how", [top_level_unknown, leaves_unknown], ids=["top-level", "every-leaf"])
@pytest.mark.parametrize("name", sorted(ALL_RUNS))
def test_unknown_values_are_never_a_verdict(name, how):
    report = apply_pack(replaced(ALL_RUNS[name], how))  # raises if any policy crashed
    assert {d.policy for d in report.violations} <= TYPE_ONLY, report.explain()
    assert all(d.level == "advisory" for d in report.undecided)
    types = {r.type for r in ALL_RUNS[name].resources}
    if "aws:iam/accessKey:AccessKey" in types:
        assert "no-static-access-keys" in report.names()
    assert "foundation-complete" in {d.policy for d in report.undecided}
