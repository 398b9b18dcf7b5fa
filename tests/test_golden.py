"""Golden: LSE's own stored agreement for a real Enterprise export, reproduced through CLI + local provider."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lse_custom_metrics.runtime.cli import main

ROOT = Path(__file__).resolve().parents[1]
LEOKA = ROOT / "examples" / "exports" / "leoka_lse_ner_taxonomy_agreement_excerpt.json"
METRIC = ROOT / "examples" / "metrics" / "lse_ner_taxonomy.py"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("golden")
    env = {"LSE_METRICS_HOME": str(tmp / "home"), "CUSTOM_METRIC_PROVIDER": "local"}
    result = CliRunner().invoke(main, ["score", str(LEOKA), "--metric", str(METRIC), "--out", str(tmp / "out")],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((tmp / "out" / "agreement.json").read_text())


def test_every_task_reproduces_lse_stored_agreement(scored):
    stored = {task["id"]: task["agreement"] for task in json.loads(LEOKA.read_text())}
    ours = {task["id"]: task["agreement"] for task in scored["tasks"]}
    assert list(ours) == list(stored) and len(stored) == 10
    for task_id, value in stored.items():
        assert ours[task_id] == pytest.approx(value / 100, abs=1e-6), task_id


def test_golden_run_shape(scored):
    assert scored["schema"] == "lse-custom-metrics/agreement/1"
    assert scored["project"] == "58506" and scored["metric"]["provider"] == "local"
    summary = scored["summary"]
    assert (summary["tasks"], summary["scored_tasks"], summary["pairs"], summary["errors"]) == (10, 10, 22, 0)
    stored = [task["agreement"] / 100 for task in json.loads(LEOKA.read_text())]
    assert summary["agreement"] == pytest.approx(sum(stored) / len(stored), abs=1e-9)
    cancelled = next(t for t in scored["tasks"] if t["id"] == 97057261)
    assert (cancelled["annotations"], cancelled["cancelled"], cancelled["agreement"], cancelled["pairs"]) == (1, 2, 1.0, [])
