"""An in-process MetricProvider for scorer and CLI tests: the real handler answers, without a server.

Each deploy builds the real function bundle (``runtime.bundle``) in a temporary folder and imports its
``main.py`` as a fresh module, so every answer - scores, result validation, per-label results, the
errors and their ``where`` - comes from ``handler/main.py`` itself: there is one validation
implementation. The fake records every request it received, and can fail whole requests on purpose:
`fail_when` maps an annotation id to an InvokeError kind; a request that carries that annotation in a
pair fails as a whole (as a timeout or a memory kill would). Handler log lines go to `log`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import shutil
import tempfile
import time
import weakref
from pathlib import Path

from lse_custom_metrics.runtime.bundle import build_bundle
from lse_custom_metrics.runtime.providers.base import (
    DeployResult, FunctionInfo, FunctionNotDeployed, FunctionStatus, InvokeError, LogEntry, MetricProvider,
    StagedDeploy,
)

_loaded = itertools.count()


def load_handler(metric_path, log: list | None = None, folders: list | None = None):
    """The real handler module of a bundle built from ``metric_path`` (its metric loads on first use).

    The bundle is written to a temporary folder, appended to ``folders`` for the caller to remove."""
    folder = Path(tempfile.mkdtemp(prefix="lse-fake-function-"))
    if folders is not None:
        folders.append(folder)
    build_bundle(metric_path).write_dir(folder)
    spec = importlib.util.spec_from_file_location(f"lse_fake_handler_{next(_loaded)}", folder / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if log is not None:  # the handler's JSON log lines, kept instead of printed
        module._log = lambda severity, message, **fields: log.append((severity, message))
    return module


def _remove_folders(folders: list) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


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
        self.log = []  # (severity, message) lines of the handler
        self._folders = []  # the bundles' temporary folders, removed with the provider
        weakref.finalize(self, _remove_folders, self._folders)

    def deploy(self, project_id, metric_path, *, start=True):
        return self.stage(project_id, metric_path).commit()

    def stage(self, project_id, metric_path, *, start=True):
        """Staged code answers invoke at once; `functions` changes only on commit (like the local provider)."""
        project_id = str(project_id)
        sha = hashlib.sha256(Path(metric_path).read_bytes()).hexdigest()
        old = self.functions.get(project_id)
        action = "created" if old is None else ("unchanged" if old["sha"] == sha else "updated")
        name = old["name"] if old else f"custom-metric-{project_id}-{int(time.time())}"
        function = {"name": name, "sha": sha, "handler": load_handler(metric_path, self.log, self._folders)}
        self.staged[project_id] = function
        return _FakeStaged(self, project_id, function, action)

    def status(self, project_id):
        return FunctionStatus.ACTIVE if str(project_id) in self.functions else FunctionStatus.NOT_DEPLOYED

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
        for task in payload.get("tasks", []):
            for i, j in task["pairs"]:
                for index in (i, j):
                    kind = self.fail_when.get(task["annotations"][index].get("id"))
                    if kind:
                        raise InvokeError(f"the function failed on a request of {len(task['pairs'])} pairs", kind=kind)
        handler = function["handler"]
        try:
            response, _ = handler.handle_payload(payload)
        except handler.BadRequest as exc:
            raise InvokeError(f"the function rejected the request: {exc}", kind="BadRequest") from None
        return json.loads(json.dumps(response))  # what comes back over the wire

    def logs(self, project_id, limit=100):
        return [LogEntry(0.0, f"{len(self.requests)} requests")]

    def delete(self, project_id):
        return self.functions.pop(str(project_id), None) is not None

    def list(self):
        return [FunctionInfo(f["name"], p, f["sha"], FunctionStatus.ACTIVE, self.name) for p, f in self.functions.items()]
