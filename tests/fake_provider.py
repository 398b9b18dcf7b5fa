"""An in-process MetricProvider for scorer tests: runs the metric file directly, like the handler would.

It answers both payload shapes of DESIGN §3.2, validates results like the handler (number in [0, 1],
dict of label -> number), records every request it received, and can fail whole requests on purpose:
`fail_when` maps an annotation id to an InvokeError kind; a request that carries that annotation in a
pair fails as a whole (as a timeout or a memory kill would).
"""
from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

from lse_custom_metrics.runtime.providers.base import (
    DeployResult, FunctionInfo, FunctionNotDeployed, FunctionStatus, InvokeError, LogEntry, MetricProvider,
    StagedDeploy,
)


def load_agreement(path):
    spec = importlib.util.spec_from_file_location(f"metric_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.agreement


def _unit(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= 1)


class _FakeStaged(StagedDeploy):
    def __init__(self, provider, project_id, function, action):
        self.provider, self.project_id, self._function, self.action = provider, project_id, function, action
        self.function = FunctionInfo(function["name"], project_id, function["sha"], FunctionStatus.PENDING,
                                     provider.name)

    def commit(self):
        if self.provider.staged.get(self.project_id) is self._function:
            del self.provider.staged[self.project_id]
        self.provider.functions[self.project_id] = self._function
        return DeployResult(FunctionInfo(self._function["name"], self.project_id, self._function["sha"],
                                         FunctionStatus.ACTIVE, self.provider.name), self.action)

    def discard(self):
        if self.provider.staged.get(self.project_id) is self._function:
            del self.provider.staged[self.project_id]


class FakeProvider(MetricProvider):
    name = "fake"

    def __init__(self, *, max_request_bytes=None, fail_when=None):
        super().__init__()
        if max_request_bytes:
            self.max_request_bytes = max_request_bytes
        self.fail_when = dict(fail_when or {})
        self.functions = {}
        self.staged = {}  # project -> staged function, not committed yet
        self.requests = []  # (payload, encoded size)

    def deploy(self, project_id, metric_path, *, start=True):
        return self.stage(project_id, metric_path).commit()

    def stage(self, project_id, metric_path, *, start=True):
        """Staged code answers invoke at once; `functions` changes only on commit (like the local provider)."""
        project_id = str(project_id)
        code = Path(metric_path).read_bytes()
        import hashlib
        sha = hashlib.sha256(code).hexdigest()
        old = self.functions.get(project_id)
        action = "created" if old is None else ("unchanged" if old["sha"] == sha else "updated")
        name = old["name"] if old else f"custom-metric-{project_id}-{int(time.time())}"
        function = {"name": name, "sha": sha, "agreement": load_agreement(metric_path)}
        self.staged[project_id] = function
        return _FakeStaged(self, project_id, function, action)

    def status(self, project_id):
        return FunctionStatus.ACTIVE if str(project_id) in self.functions else FunctionStatus.NOT_DEPLOYED

    def _pair(self, agreement, a1, a2, per_label):
        try:
            score = agreement(a1, a2, per_label=False)
        except Exception as exc:  # the metric's own error is the pair's result
            return {"error": {"type": type(exc).__name__, "message": str(exc)}}
        if not _unit(score):
            return {"error": {"type": "InvalidResult", "message": f"agreement() returned {score!r}"}}
        result = {"score": float(score)}
        if per_label:  # like the handler: a failing per_label=True call leaves the score in place
            try:
                labels = agreement(a1, a2, per_label=True)
            except Exception as exc:
                result["labels_error"] = {"type": type(exc).__name__, "message": str(exc)}
                return result
            if not isinstance(labels, dict) or not all(_unit(v) for v in labels.values()):
                result["labels_error"] = {"type": "InvalidResult", "message": f"labels {labels!r}"}
                return result
            result["labels"] = labels
        return result

    def invoke(self, project_id, payload):
        function = self.staged.get(str(project_id)) or self.functions.get(str(project_id))
        if function is None:
            raise FunctionNotDeployed(f"project {project_id} has no function")
        if isinstance(payload, (bytes, str)):  # already-encoded JSON, as the local provider accepts
            size = len(payload.encode() if isinstance(payload, str) else payload)
            payload = json.loads(payload)
        else:
            size = len(json.dumps(payload, separators=(",", ":")).encode())
        self.requests.append((payload, size))
        if size > self.max_request_bytes:
            raise InvokeError(f"request of {size} bytes exceeds {self.max_request_bytes}", kind="RequestTooLarge")
        agreement = function["agreement"]
        if "tasks" not in payload:
            return self._pair(agreement, payload["annotation_1"], payload["annotation_2"], payload.get("per_label"))
        for task in payload["tasks"]:
            for i, j in task["pairs"]:
                for index in (i, j):
                    kind = self.fail_when.get(task["annotations"][index].get("id"))
                    if kind:
                        raise InvokeError(f"the function failed on a request of {len(task['pairs'])} pairs", kind=kind)
        return {"tasks": [
            {"id": task["id"], "results": [self._pair(agreement, task["annotations"][i], task["annotations"][j],
                                                      payload.get("per_label")) for i, j in task["pairs"]]}
            for task in payload["tasks"]]}

    def logs(self, project_id, limit=100):
        return [LogEntry(0.0, f"{len(self.requests)} requests")]

    def delete(self, project_id):
        return self.functions.pop(str(project_id), None) is not None

    def list(self):
        return [FunctionInfo(f["name"], p, f["sha"], FunctionStatus.ACTIVE, self.name) for p, f in self.functions.items()]
