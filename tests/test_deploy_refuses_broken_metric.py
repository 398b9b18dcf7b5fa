"""A metric that cannot load never replaces a working function: `deploy` and `score` exit 2 at once.

Runs the real CLI against the local provider (real servers), in a state directory of its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lse_custom_metrics.runtime.providers.local import LocalProvider

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "examples" / "exports" / "sentiment_3annotators.json"  # project 4242
GOOD = ROOT / "examples" / "metrics" / "choices_weighted.py"
LOADERR = '''"""Raises while it is imported."""
RATIO = 1 / 0


def agreement(annotation_1, annotation_2, per_label=False):
    return 1.0
'''


def lse_metrics(home: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "LSE_METRICS_HOME": str(home), "COLUMNS": "200"}
    env.pop("CUSTOM_METRIC_PROVIDER", None)
    return subprocess.run([sys.executable, "-m", "lse_custom_metrics.runtime.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=180, cwd=home.parent)


@pytest.fixture
def setup(tmp_path):
    home = tmp_path / "state"
    broken = tmp_path / "loaderr.py"
    broken.write_text(LOADERR)
    yield home, broken
    with LocalProvider(home=home) as provider:  # whatever a failed test left running
        provider.delete(4242)


def test_deploy_and_score_refuse_a_metric_that_cannot_load(setup, tmp_path):
    home, broken = setup
    first = lse_metrics(home, "deploy", "--project", 4242, "--metric", GOOD)
    assert first.returncode == 0, first.stderr
    with LocalProvider(home=home) as provider:
        deployed = provider.describe(4242)
    expected = ("Error: bad metric file: the function cannot load it: "
                f"{broken} line 2: ZeroDivisionError: division by zero "
                f"(function {deployed.name} keeps its previous code)")

    refused = lse_metrics(home, "deploy", "--project", 4242, "--metric", broken)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert " ".join(refused.stderr.split()) == expected

    out_dir = tmp_path / "out"
    scored = lse_metrics(home, "score", SENTIMENT, "--metric", broken, "--out", out_dir)
    assert (scored.returncode, scored.stdout) == (2, "")
    assert " ".join(scored.stderr.split()) == expected  # no "updated", no progress bar: nothing was scored
    assert not out_dir.exists()

    with LocalProvider(home=home) as provider:
        after = provider.describe(4242)
        assert (after.name, after.code_sha256) == (deployed.name, deployed.code_sha256)
        positive, neutral = ({"result": [{"type": "choices", "value": {"choices": [c]}}]} for c in ("Positive", "Neutral"))
        # choices_weighted: Positive vs Neutral is 1 - |1.0 - 0.5|
        assert provider.invoke(4242, {"annotation_1": positive, "annotation_2": neutral}) == {"score": 0.5}
    assert (Path(after.extra["path"]) / "bundle" / "metric.py").read_bytes() == GOOD.read_bytes()


def test_first_deploy_of_a_metric_that_cannot_load_leaves_nothing(setup):
    home, broken = setup
    refused = lse_metrics(home, "deploy", "--project", 4242, "--metric", broken)
    assert refused.returncode == 2
    assert " ".join(refused.stderr.split()) == (
        "Error: bad metric file: the function cannot load it: "
        f"{broken} line 2: ZeroDivisionError: division by zero (nothing was deployed)")
    status = lse_metrics(home, "status", "--project", 4242)
    assert (status.returncode, status.stdout.strip()) == (0, "NotDeployed")
    listed = lse_metrics(home, "list")
    assert listed.returncode == 0 and "custom-metric-4242" not in listed.stdout
