"""Every mocked run of a component test also passes the whole policy pack (DESIGN §4).

A test module opts in with `from pack_check import pack_check  # noqa: F401`: the autouse fixture wraps the
module's `run_pulumi`, so each run the module makes is handed, as soon as it returns, to every policy of the
pack (`policy_harness.apply_pack`: each resource through `Analyze`, the stack through `AnalyzeStack`, after
deployment — every value known). The run must pass with zero violations and zero undecided rules, unless the
test states otherwise on the fixture before it runs:

    def test_x(pack_check):
        pack_check.expect(advisory={"no-static-access-keys"}, missing=["no interact policy"])

- `advisory`: the advisory policies the run legitimately carries (e.g. the access key of `ec2-compose`).
- `missing`: for a run that builds only some of the foundation (one component on its own), the
  `foundation-complete` messages it must report, by prefix — every other policy still has to pass.
- `config`: the `--policy-pack-config` a stack built with these options would use (e.g. its prefix).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from policy_harness import apply_pack
from pulumi_harness import Run


@dataclass
class PackExpectation:
    advisory: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    config: Mapping[str, Any] | None = None
    checked: int = 0

    def expect(self, *, advisory: Iterable[str] = (), missing: Iterable[str] = (),
               config: Mapping[str, Any] | None = None) -> None:
        self.advisory, self.missing, self.config = set(advisory), list(missing), config

    def check(self, run: Run) -> None:
        report = apply_pack(run, config=self.config)
        assert report.undecided == [], report.explain()
        # a diagnostic's message is the policy's description, a newline, then what the policy reported
        stack = sorted(d.message.split("\n", 1)[-1] for d in report.violations if d.policy == "foundation-complete")
        others = [d for d in report.violations if d.policy != "foundation-complete"]
        assert {d.policy for d in others if d.level == "mandatory"} == set(), report.explain()
        assert {d.policy for d in others if d.level == "advisory"} == self.advisory, report.explain()
        assert len(stack) == len(self.missing) and all(
            any(message.startswith(prefix) for message in stack) for prefix in self.missing), report.explain()
        self.checked += 1


@pytest.fixture(autouse=True)
def pack_check(request, monkeypatch):
    expectation = PackExpectation()
    original = request.module.run_pulumi

    def run_and_apply_the_pack(*args, **kwargs):
        run = original(*args, **kwargs)
        expectation.check(run)
        return run

    monkeypatch.setattr(request.module, "run_pulumi", run_and_apply_the_pack)
    yield expectation
