"""handler/main.py: every validation case through both entry points, the real flask request path,
and the stdlib-only import rule (in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handler_cases import CASES, DEFAULT_HANDLER, LAMBDA_ONLY, METRICS, check_case, check_lambda_only, load_handler

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["default-decoder", "stdlib-json"])
def decoder(request, monkeypatch):
    """Run every case with orjson (when this interpreter has it) and with the stdlib json fallback."""
    if request.param == "stdlib-json":
        monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` raise ImportError
    return request.param


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_both_entry_points(name, tmp_path, decoder):
    assert check_case(name, tmp_path) == []


@pytest.mark.parametrize("name", sorted(LAMBDA_ONLY))
def test_lambda_only_events(name, tmp_path):
    assert check_lambda_only(name, tmp_path) == []


def test_handler_source_is_the_installed_one():
    from importlib import resources

    installed = resources.files("lse_custom_metrics.handler").joinpath("main.py").read_bytes()
    assert installed == DEFAULT_HANDLER.read_bytes()


def _bundle_dir(tmp_path: Path, metric: str) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "main.py").write_bytes(DEFAULT_HANDLER.read_bytes())
    (bundle / "metric.py").write_bytes((METRICS / f"{metric}.py").read_bytes())
    return bundle


def test_flask_request_through_functions_framework(tmp_path, capsys):
    """The real Cloud Functions path: functions-framework's app with a flask Request."""
    from functions_framework import create_app

    bundle = _bundle_dir(tmp_path, "choices")
    client = create_app("agreement_handler", str(bundle / "main.py"), "http").test_client()
    P = {"result": [{"value": {"choices": ["Positive"]}}]}
    N = {"result": [{"value": {"choices": ["Negative"]}}]}
    U = {"result": [{"value": {"choices": ["Neutral"]}}]}
    reply = client.post("/", json={"tasks": [{"id": 4, "annotations": [P, P, N, U, U], "pairs": [[0, 1], [0, 2], [3, 4]]}]})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.get_json() == {"tasks": [{"id": 4, "results": [
        {"score": 0.99}, {"score": 0.0},
        {"error": {"type": "KeyError", "message": "'Neutral'", "where": "metric.py:16 in agreement"}}]}]}
    reply = client.post("/", data=b"{not json", content_type="application/json")
    assert reply.status_code == 400
    assert reply.get_json() == {"error": {"type": "BadRequest", "message":
        "request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"}}
    reply = client.get("/")
    assert (reply.status_code, reply.get_json()) == (200, {"status": "ok"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(l["severity"], l.get("entry"), l.get("tasks"), l.get("pairs"), l.get("errors")) for l in lines] == [
        ("ERROR", "metric", None, None, None), ("WARNING", "http", 1, 3, 1), ("ERROR", "http", 0, 0, 0)]
    assert lines[0]["where"] == "metric.py:16 in agreement"


def test_metric_exceptions_log_a_compact_traceback_for_the_first_three(tmp_path, capsys):
    """`lse-metrics logs` shows where the metric failed: the metric's frames only, at most 3 per request."""
    handler = load_handler(tmp_path, "choices")
    U = [{"id": 80 + k, "result": [{"value": {"choices": ["Neutral"]}}]} for k in range(4)]
    pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3]]
    response = handler.lambda_handler({"tasks": [{"id": 8, "annotations": U, "pairs": pairs}]})
    where = "metric.py:16 in agreement"
    assert response == {"tasks": [{"id": 8, "results": [
        {"error": {"type": "KeyError", "message": "'Neutral'", "where": where}}] * 5}]}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    metric_file = str(tmp_path / "metric.py")
    traceback_text = (
        f'  File "{metric_file}", line 16, in agreement\n'
        "    weight = WEIGHTS[choice_1]\n"
        "             ~~~~~~~^^^^^^^^^^\n"
        "KeyError: 'Neutral'"
    )
    assert [(l["severity"], l["message"]) for l in lines[:-1]] == [
        ("ERROR", f"metric raised on task 8, annotations 80 and 81: KeyError: 'Neutral'\n{traceback_text}"),
        ("ERROR", f"metric raised on task 8, annotations 80 and 82: KeyError: 'Neutral'\n{traceback_text}"),
        ("ERROR", f"metric raised on task 8, annotations 80 and 83: KeyError: 'Neutral'\n{traceback_text}"),
        ("ERROR", "metric raised on 2 more pair(s) of this request (tracebacks not logged)"),
    ]
    assert [l["where"] for l in lines[:3]] == [where] * 3
    assert lines[-1]["message"].startswith("agreement: 1 task(s), 5 pair(s), 5 error(s), ")
    # the cap is per request: the next request logs its own first failures again
    handler.lambda_handler({"annotation_1": U[0], "annotation_2": U[1]})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [l["message"].split("\n")[0] for l in lines[:-1]] == [
        "metric raised on the pair, annotations 80 and 81: KeyError: 'Neutral'"]


def test_labels_failure_keeps_the_score_and_is_counted_apart(tmp_path, capsys):
    """per_label=True returning a float: the pair keeps its score, the labels failure is reported apart."""
    handler = load_handler(tmp_path, "returns")
    a1 = {"id": 1, "score": "half", "labels": "float", "result": []}
    a2 = {"id": 2, "result": []}
    response = handler.lambda_handler({"per_label": True, "tasks": [{"id": 3, "annotations": [a1, a2], "pairs": [[0, 1]]}]})
    assert response == {"tasks": [{"id": 3, "results": [{"score": 0.5, "labels_error": {
        "type": "InvalidResult",
        "message": "agreement(per_label=True) returned 0.5 (float); expected a dict {label: number in [0, 1]}"}}]}]}
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (line["severity"], line["errors"], line["label_errors"]) == ("WARNING", 0, 1)
    assert line["message"].startswith("agreement: 1 task(s), 1 pair(s), 0 error(s), 1 label error(s), ")


IMPORT_PROBE = r"""
import json, sys
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
import main
after_import = set(sys.modules) - before
main.lambda_handler({"annotation_1": {"result": []}, "annotation_2": {"result": []}}, None)
after_call = set(sys.modules) - before
outside = lambda names: sorted(n for n in names if n.split(".")[0] not in sys.stdlib_module_names and n != "main")
print(json.dumps({"import": outside(after_import), "call": outside(after_call)}))
"""


def stdlib_probe(python: str, bundle: Path) -> dict:
    """Modules outside the stdlib that importing main.py (and one call) adds, in a fresh interpreter."""
    out = subprocess.run([python, "-I", "-c", IMPORT_PROBE, str(bundle)], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.splitlines()[-1])


def test_import_uses_only_the_stdlib(tmp_path):
    # with orjson installed here, the first call may import it; importing main.py must not, and the
    # metric is loaded only when a request needs it
    bundle = _bundle_dir(tmp_path, "counting")
    probe = stdlib_probe(sys.executable, bundle)
    assert probe["import"] == []
    assert set(probe["call"]) - {"orjson", "orjson.orjson"} == {"metric"}


def test_collector_is_restored_after_every_request(tmp_path):
    """The handler pauses/freezes the garbage collector around a payload; it must always give it back."""
    import gc

    from handler_cases import FakeRequest, load_handler

    handler = load_handler(tmp_path, "choices", tag="gc_restore")
    P = {"result": [{"value": {"choices": ["Positive"]}}]}
    assert gc.isenabled() and gc.get_freeze_count() == 0
    for body in (json.dumps({"annotation_1": P, "annotation_2": P}).encode(), b"not json", b"[]"):
        handler.agreement_handler(FakeRequest(body))
        assert gc.isenabled() and gc.get_freeze_count() == 0
    for event in ({"tasks": [{"id": 1, "annotations": [P, P], "pairs": [[0, 1]]}]}, "{", None):
        try:
            handler.lambda_handler(event, None)
        except handler.BadRequest:
            pass
        assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()  # a caller that runs with the collector off keeps it off
    try:
        handler.lambda_handler({"annotation_1": P, "annotation_2": P}, None)
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_progress_marker_counts_the_pairs_of_a_request(tmp_path, monkeypatch):
    """With the local runtime's marker file, the handler stores the 1-based position of each pair it
    starts (across the request's tasks), so the runtime can tell which pair a timeout interrupted."""
    marker = tmp_path / "progress"
    marker.write_bytes(bytes(8))
    monkeypatch.setenv("LSE_METRICS_PROGRESS", str(marker))
    handler = load_handler(tmp_path / "bundle", "choices")
    seen = []
    metric = handler._get_metric()
    monkeypatch.setattr(handler, "_metric", lambda a, b, per_label=False: seen.append(
        int.from_bytes(marker.read_bytes(), sys.byteorder)) or metric(a, b, per_label=per_label))
    P = {"result": [{"value": {"choices": ["Positive"]}}]}
    handler.lambda_handler({"tasks": [{"id": 1, "annotations": [P, P, P], "pairs": [[0, 1], [0, 2]]},
                                      {"id": 2, "annotations": [P, P], "pairs": [[0, 1]]}]})
    assert seen == [1, 2, 3]
    assert int.from_bytes(marker.read_bytes(), sys.byteorder) == 3
