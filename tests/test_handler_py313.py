"""The handler under CPython 3.13 - the version LSE's functions run on.

The handler is stdlib only, so the bare pyenv interpreter needs no install: the shared cases run there
through tests/handler_cases.py, and a bundle zip built by runtime.bundle is unpacked and called the way
Lambda calls it. No interpreter found is a failure, not a skip: CI machines have it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from handler_cases import CASES, DEFAULT_HANDLER, LAMBDA_ONLY, METRICS
from test_handler import stdlib_probe

HERE = Path(__file__).resolve().parent


def python313() -> str:
    """``$LSE_PYTHON313``, else ``$(pyenv root)/versions/3.13.0/bin/python``, else ~/.pyenv's."""
    candidates = []
    if os.environ.get("LSE_PYTHON313"):
        candidates.append(Path(os.environ["LSE_PYTHON313"]))
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        if root:
            candidates.append(Path(root) / "versions" / "3.13.0" / "bin" / "python")
    candidates.append(Path.home() / ".pyenv" / "versions" / "3.13.0" / "bin" / "python")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail("CPython 3.13 not found: set LSE_PYTHON313 to its interpreter or install it with "
                "`pyenv install 3.13.0`; looked at " + ", ".join(map(str, candidates)))


@pytest.fixture(scope="module")
def py313() -> str:
    python = python313()
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "(3, 13)"
    return python


def test_every_handler_case_passes_on_313(py313):
    run = subprocess.run([py313, "-I", str(HERE / "handler_cases.py"), str(DEFAULT_HANDLER)],
                         capture_output=True, text=True, timeout=120)
    report = json.loads(run.stdout)
    assert report["failures"] == {}, json.dumps(report["failures"], indent=1)
    assert report["python"].startswith("3.13.")
    assert report["cases"] == len(CASES) + len(LAMBDA_ONLY)
    assert run.returncode == 0


def test_import_uses_only_the_stdlib_on_313(py313, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(DEFAULT_HANDLER, bundle / "main.py")
    shutil.copy(METRICS / "counting.py", bundle / "metric.py")
    assert stdlib_probe(py313, bundle) == {"import": [], "call": ["metric"]}


LAMBDA_CALL = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import main
event = json.loads(sys.stdin.read())
try:
    print(json.dumps({"result": main.lambda_handler(event, None)}))
except Exception as exc:
    print(json.dumps({"raised": type(exc).__name__, "message": str(exc)}))
"""


def test_built_zip_runs_as_lambda_on_313(py313, tmp_path):
    """The zip runtime.bundle builds, unpacked and called as Lambda would (moto cannot run code)."""
    from lse_custom_metrics.runtime.bundle import build_bundle

    archive = tmp_path / "function.zip"
    archive.write_bytes(build_bundle(METRICS / "choices.py").zip_bytes())
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.namelist() == ["main.py", "metric.py"]
        zipped.extractall(tmp_path / "task")
    ann = lambda c: {"result": [{"value": {"choices": [c]}}]}  # noqa: E731
    event = {"per_label": True, "tasks": [{"id": 1, "annotations": [ann("Negative"), ann("Negative"), ann("Neutral")],
                                           "pairs": [[0, 1], [1, 2]]}]}

    def call(payload):
        run = subprocess.run([py313, "-I", "-c", LAMBDA_CALL, str(tmp_path / "task")], input=json.dumps(payload),
                             capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
        return json.loads(run.stdout.splitlines()[-1])

    assert call(event) == {"result": {"tasks": [{"id": 1, "results": [
        {"score": 0.7, "labels": {"Negative": 0.7}},
        {"score": 0.0, "labels": {"Negative": 0.0, "Neutral": 0.0}}]}]}}
    assert call({"tasks": [{"id": 1, "annotations": [], "pairs": [[0, 1]]}]}) == {
        "raised": "BadRequest", "message": "tasks[0] (id 1).pairs[0] index 0 is out of range for 0 annotation(s)"}


def test_handler_compiles_without_warnings_on_313(py313):
    """A SyntaxWarning (e.g. an invalid escape in a docstring) would be printed by every cold start."""
    run = subprocess.run([py313, "-I", "-W", "error", "-c",
                          "import pathlib, sys; compile(pathlib.Path(sys.argv[1]).read_text(), 'main.py', 'exec')", str(DEFAULT_HANDLER)],
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")
