"""Pair errors as the real handler reports them, through the scorer into agreement.json.

The provider here runs the real ``handler/main.py`` in-process (copied beside the metric, as in a bundle),
so the labels failure and the ``where`` of a metric exception are the handler's own.
"""
from __future__ import annotations

import json
import time

import pytest

from handler_cases import load_handler
from lse_custom_metrics.runtime.export import parse_export
from lse_custom_metrics.runtime.providers.base import DeployResult, FunctionInfo, FunctionStatus, MetricProvider
from lse_custom_metrics.runtime.scorer import score_export

# per_label=True returns a plain float (the mistake the issue reports); a rating of 0 raises in a helper.
METRIC = '''\
def _rating(annotation):
    value = annotation["result"][0]["value"]["number"]
    if value == 0:
        raise ValueError("rating 0 is not allowed")
    return value


def agreement(annotation_1, annotation_2, per_label=False):
    x, y = _rating(annotation_1), _rating(annotation_2)
    return 1 - abs(x - y) / 10
'''


class HandlerProvider(MetricProvider):
    """Invokes the real handler module in this process (the function's answer, without a server)."""

    name = "in-process"

    def __init__(self, handler):
        super().__init__()
        self.handler = handler

    def deploy(self, project_id, metric_path):
        info = FunctionInfo("custom-metric-5-1", str(project_id), "sha", FunctionStatus.ACTIVE, self.name)
        return DeployResult(info, "created")

    def status(self, project_id):
        return FunctionStatus.ACTIVE

    def invoke(self, project_id, payload):
        return json.loads(json.dumps(self.handler.lambda_handler(payload)))

    def logs(self, project_id, limit=100):
        return []

    def delete(self, project_id):
        return False

    def list(self):
        return []


def ann(ann_id, user, value):
    return {"id": ann_id, "completed_by": user,
            "result": [{"from_name": "rating", "to_name": "text", "type": "number", "value": {"number": value}}]}


@pytest.fixture
def provider(tmp_path, monkeypatch):
    (tmp_path / "fixture").mkdir()
    metric = tmp_path / "fixture" / "metric.py"
    metric.write_text(METRIC)
    monkeypatch.setattr("handler_cases.METRICS", tmp_path / "fixture")
    return HandlerProvider(load_handler(tmp_path / "bundle", "metric"))


def score(provider, tasks, **options):
    export = parse_export(tasks, "t.json")
    return score_export(export, provider, "5", metric={"path": "metric.py"}, **options)


TASKS = [{"id": 1, "annotations": [ann(10, 1, 4), ann(11, 2, 6), ann(12, 3, 0)]}]
FLOAT_LABELS = ("InvalidResult: agreement(per_label=True) returned 0.8 (float); "
                "expected a dict {label: number in [0, 1]}")


def test_per_label_failure_keeps_the_score_and_is_counted_apart(provider):
    document = score(provider, TASKS, per_label=True)
    pairs = document["tasks"][0]["pairs"]
    assert pairs[0] == {"a": 10, "b": 11, "score": pytest.approx(0.8), "labels_error": FLOAT_LABELS,
                        "error": None, "annotator_a": "1", "annotator_b": "2"}
    assert "labels" not in pairs[0]
    # (10, 12) and (11, 12): rating 0 raises in _rating, called from agreement line 8
    for pair in pairs[1:]:
        assert (pair["score"], pair["labels"], pair["error"], pair["error_where"]) == (
            None, None, "ValueError: rating 0 is not allowed", "metric.py:4 in _rating")
    assert document["tasks"][0]["agreement"] == pytest.approx(0.8)  # the scored pair counts
    assert document["tasks"][0]["labels"] is None  # no pair has labels
    summary = document["summary"]
    assert (summary["pairs"], summary["errors"], summary["label_errors"], summary["agreement"]) == (
        3, 2, 1, pytest.approx(0.8))
    assert summary["labels"] is None


def test_without_per_label_there_is_no_labels_error(provider):
    document = score(provider, TASKS)
    first = document["tasks"][0]["pairs"][0]
    assert first == {"a": 10, "b": 11, "score": pytest.approx(0.8), "error": None,
                     "annotator_a": "1", "annotator_b": "2"}
    assert document["summary"]["label_errors"] == 0 and document["summary"]["errors"] == 2
