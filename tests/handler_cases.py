"""Handler test cases and a stdlib-only runner, shared by the 3.11 tests and the 3.13 subprocess.

Every case names a metric from ``tests/fixtures/metrics`` and a sequence of requests with the exact
expected HTTP status and JSON body. Each request goes through **both** entry points of a freshly
imported ``main.py`` (copied beside the metric, as in a bundle): ``agreement_handler`` with a request
object (status, body and the one JSON log line are checked) and ``lambda_handler`` (same body, or
``BadRequest`` with the same message). Run directly (``python handler_cases.py [main.py]``) it prints a
JSON report and exits 1 on any mismatch - no pytest needed, so it runs on a bare Python 3.13.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
METRICS = HERE / "fixtures" / "metrics"
DEFAULT_HANDLER = HERE.parent / "handler" / "main.py"

LOAD_MESSAGE_NO_AGREEMENT = "metric.py defines no function `agreement(annotation_1, annotation_2, per_label=False)`"


def ann(choice: str, **extra) -> dict:
    """An annotation with one choice, as Label Studio exports it."""
    return {"id": abs(hash(choice)) % 1000, "result": [
        {"type": "choices", "from_name": "sentiment", "to_name": "text", "value": {"choices": [choice]}}
    ], **extra}


P, N, U = ann("Positive"), ann("Negative"), ann("Neutral")


def err(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}


def raised(kind: str, message: str, line: int, function: str = "agreement") -> dict:
    """A metric exception: the innermost frame inside metric.py is named as ``where``."""
    return {"error": {"type": kind, "message": message, "where": f"metric.py:{line} in {function}"}}


def scored_without_labels(score: float, error: dict) -> dict:
    """The per_label=False call succeeded, the per_label=True call did not: the score stands."""
    return {"score": score, "labels_error": error["error"]}


NEUTRAL = raised("KeyError", "'Neutral'", 16)  # choices.py: WEIGHTS has no "Neutral"


def invalid(message: str) -> dict:
    return err("InvalidResult", message)


def score_invalid(shown: str) -> dict:
    return invalid(f"agreement() returned {shown}; expected a real number in [0, 1]")


def labels_invalid(shown: str, label: str | None = None) -> dict:
    if label is None:
        return invalid(f"agreement(per_label=True) returned {shown}; expected a dict {{label: number in [0, 1]}}")
    return invalid(f"agreement(per_label=True) returned {shown} for label {label!r}; expected a real number in [0, 1]")


def bad(message: str) -> dict:
    return {"error": {"type": "BadRequest", "message": message}}


def returns(code: str, **extra) -> dict:
    return {"id": 1, "score": code, "result": [], **extra}


X = {"id": 2, "result": []}

# score codes of fixtures/metrics/returns.py and what the handler must make of them
SCORE_CODES = [
    ("half", {"score": 0.5}), ("one_int", {"score": 1.0}), ("zero_int", {"score": 0.0}),
    ("fraction", {"score": 0.75}), ("none", score_invalid("None (NoneType)")),
    ("nan", score_invalid("nan (float)")), ("inf", score_invalid("inf (float)")),
    ("true", score_invalid("True (bool)")), ("false", score_invalid("False (bool)")),
    ("string", score_invalid("'0.5' (str)")), ("above", score_invalid("1.5 (float)")),
    ("below", score_invalid("-0.25 (float)")), ("decimal", score_invalid("Decimal('0.5') (Decimal)")),
    ("list", score_invalid("[0.5] (list)")), ("dict", score_invalid("{'A': 0.5} (dict)")),
    # too big for a float: float() would raise OverflowError out of the validation
    ("huge", score_invalid(f"{str(10**400)[:77]}... (int)")),
    ("huge_fraction", score_invalid(f"Fraction({str(10**400)[:68]}... (Fraction)")),
    ("huge_negative", score_invalid("<int of 16610 bits> (int)")),  # repr refuses more than 4300 digits
    ("tiny_fraction", {"score": 0.0}),
]
LABEL_CODES = [
    ("ok", {"score": 0.5, "labels": {"A": 0.25, "B": 1.0}}), ("empty", {"score": 0.5, "labels": {}}),
    ("float", labels_invalid("0.5 (float)")), ("none", labels_invalid("None (NoneType)")),
    ("above", labels_invalid("1.5 (float)", "A")),
    ("int_key", invalid("agreement(per_label=True) returned label 1 (int); labels must be strings")),
    ("none_value", labels_invalid("None (NoneType)", "A")), ("bool_value", labels_invalid("True (bool)", "A")),
    ("nan_value", labels_invalid("nan (float)", "A")),
    ("missing", raised("KeyError", "'missing'", 22)),
    ("huge_value", labels_invalid(f"{str(10**400)[:77]}... (int)", "A")),
    ("huge_fraction_value", labels_invalid(f"Fraction({str(10**400)[:68]}... (Fraction)", "B")),
]
# every invalid per-label answer leaves the pair's score (0.5) in place
LABEL_CODES = [(code, expected if "labels" in expected else scored_without_labels(0.5, expected))
               for code, expected in LABEL_CODES]


def _batch(*tasks, per_label=False) -> dict:
    return {"per_label": per_label, "tasks": list(tasks)}


def _load_failure_case(metric: str, message: str) -> dict:
    failure = err("MetricLoadError", message)
    return {"metric": metric, "requests": [
        (_batch({"id": 1, "annotations": [P, N, U], "pairs": [[0, 1], [1, 2]]}), 200,
         {"tasks": [{"id": 1, "results": [failure, failure]}]}),
        ({"annotation_1": P, "annotation_2": P}, 200, failure),
        ("GET", 500, {"status": "failed", "error": failure["error"]}),
    ]}


TASK3 = {"id": 3, "annotations": [P, N], "pairs": [[0, 1]]}


def _bad_task(**changes) -> dict:
    task = dict(TASK3)
    task.update(changes)
    return {"tasks": [{k: v for k, v in task.items() if v is not None}]}


CASES: dict[str, dict] = {
    # --- single pair -----------------------------------------------------------------------------------
    "single_same_choice": {"metric": "choices", "requests": [
        ({"annotation_1": P, "annotation_2": P}, 200, {"score": 0.99}),
        ({"annotation_1": N, "annotation_2": N, "per_label": False}, 200, {"score": 0.7})]},
    "single_different_choice_int_zero_becomes_float": {"metric": "choices", "requests": [
        ({"annotation_1": P, "annotation_2": N}, 200, {"score": 0.0})]},
    "single_metric_exception": {"metric": "choices", "requests": [
        ({"annotation_1": U, "annotation_2": U}, 200, NEUTRAL)]},
    "single_per_label": {"metric": "choices", "requests": [
        ({"annotation_1": P, "annotation_2": P, "per_label": True}, 200, {"score": 0.99, "labels": {"Positive": 0.99}}),
        ({"annotation_1": P, "annotation_2": N, "per_label": True}, 200,
         {"score": 0.0, "labels": {"Positive": 0.0, "Negative": 0.0}})]},
    "single_json_string_event": {"metric": "choices", "requests": [
        (json.dumps({"annotation_1": N, "annotation_2": N}).encode(), 200, {"score": 0.7})]},
    # --- batch -----------------------------------------------------------------------------------------
    "batch_scores_errors_and_ids": {"metric": "choices", "requests": [
        (_batch({"id": 17, "annotations": [P, P, N, U], "pairs": [[0, 1], [0, 2], [1, 2], [2, 3]]},
                {"id": "task-18", "annotations": [U, U], "pairs": [[0, 1]]},
                {"annotations": [P], "pairs": []}), 200,
         {"tasks": [{"id": 17, "results": [{"score": 0.99}, {"score": 0.0}, {"score": 0.0}, {"score": 0.0}]},
                    {"id": "task-18", "results": [NEUTRAL]},
                    {"id": None, "results": []}]})]},
    "batch_empty": {"metric": "choices", "requests": [(_batch(), 200, {"tasks": []})]},
    "batch_per_label": {"metric": "choices", "requests": [
        (_batch({"id": 5, "annotations": [P, P, U], "pairs": [[0, 1], [0, 2], [2, 2]]}, per_label=True), 200,
         {"tasks": [{"id": 5, "results": [
             {"score": 0.99, "labels": {"Positive": 0.99}},
             {"score": 0.0, "labels": {"Positive": 0.0, "Neutral": 0.0}},
             NEUTRAL]}]})]},
    "batch_result_validation": {"metric": "returns", "requests": [
        (_batch({"id": 1, "annotations": [returns(code) for code, _ in SCORE_CODES] + [X],
                 "pairs": [[i, len(SCORE_CODES)] for i in range(len(SCORE_CODES))]}), 200,
         {"tasks": [{"id": 1, "results": [expected for _, expected in SCORE_CODES]}]})]},
    "batch_label_validation": {"metric": "returns", "requests": [
        (_batch({"id": 1, "annotations": [returns("half", labels=code) for code, _ in LABEL_CODES] + [X],
                 "pairs": [[i, len(LABEL_CODES)] for i in range(len(LABEL_CODES))]}, per_label=True), 200,
         {"tasks": [{"id": 1, "results": [expected for _, expected in LABEL_CODES]}]})]},
    "per_label_score_error_wins": {"metric": "returns", "requests": [
        ({"annotation_1": returns("none", labels="ok"), "annotation_2": X, "per_label": True}, 200,
         score_invalid("None (NoneType)"))]},
    "metric_raises_in_both_modes": {"metric": "returns", "requests": [
        ({"annotation_1": returns("half", **{"raise": "metric gave up"}), "annotation_2": X}, 200,
         raised("RuntimeError", "metric gave up", 20)),
        (_batch({"id": 9, "annotations": [returns("half", **{"raise": "no regions"}), X], "pairs": [[0, 1], [1, 1]]},
                per_label=True), 200,
         {"tasks": [{"id": 9, "results": [raised("RuntimeError", "no regions", 20),
                                          raised("KeyError", "'score'", 23)]}]}),
    ]},
    "single_per_label_labels_fail_score_kept": {"metric": "returns", "requests": [
        ({"annotation_1": returns("half", labels="float"), "annotation_2": X, "per_label": True}, 200,
         {"score": 0.5, "labels_error": {"type": "InvalidResult", "message":
          "agreement(per_label=True) returned 0.5 (float); expected a dict {label: number in [0, 1]}"}}),
        ({"annotation_1": returns("fraction", labels="missing"), "annotation_2": X, "per_label": True}, 200,
         {"score": 0.75, "labels_error": {"type": "KeyError", "message": "'missing'",
                                          "where": "metric.py:22 in agreement"}})]},
    # sys.exit(), KeyboardInterrupt and other BaseExceptions are not Exceptions: still only that pair's error
    "metric_leaves_with_a_base_exception": {"metric": "escapes", "requests": [
        ({"annotation_1": {"leave": "exit", "result": []}, "annotation_2": X}, 200,
         raised("SystemExit", "the metric called sys.exit()", 12)),
        (_batch({"id": 4, "annotations": [{"leave": leave, "result": []} for leave in
                                          ("exit", "exit_code", "exit_message", "interrupt", "base")] + [X],
                 "pairs": [[0, 5], [1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]}), 200,
         {"tasks": [{"id": 4, "results": [
             raised("SystemExit", "the metric called sys.exit()", 12),
             raised("SystemExit", "the metric called sys.exit(3)", 14),
             raised("SystemExit", "the metric called sys.exit('no weights for this project')", 16),
             raised("KeyboardInterrupt", "KeyboardInterrupt raised inside the metric", 18),
             raised("Stop", "stopped early", 20),
             {"score": 0.5}]}]}),
        ({"annotation_1": {"labels_leave": "exit", "result": []}, "annotation_2": X, "per_label": True}, 200,
         scored_without_labels(0.5, raised("SystemExit", "the metric called sys.exit(4)", 23))),
    ]},
    "helper_frame_is_not_the_metric_frame": {"metric": "choices", "requests": [
        # the KeyError is raised in _choice (line 10), called from agreement (line 14): both in metric.py,
        # the innermost one is named
        ({"annotation_1": {"result": []}, "annotation_2": P}, 200,
         raised("IndexError", "list index out of range", 10, "_choice"))]},
    "metric_loaded_once_per_process": {"metric": "counting", "requests": [
        (_batch({"id": 1, "annotations": [P, N, U], "pairs": [[0, 1], [0, 2], [1, 2]]}), 200,
         {"tasks": [{"id": 1, "results": [{"score": 1.0}] * 3}]}),
        ("GET", 200, {"status": "ok"}),
        ({"annotation_1": P, "annotation_2": N}, 200, {"score": 1.0})]},
    "health_probe_ok": {"metric": "choices", "requests": [("GET", 200, {"status": "ok"})]},
    # --- metric.py that cannot be loaded: every pair says why, naming file and line ---------------------
    "load_syntax_error": _load_failure_case("syntax_error", "metric.py line 3: SyntaxError: expected ':'"),
    "load_no_agreement": _load_failure_case("no_agreement", LOAD_MESSAGE_NO_AGREEMENT),
    "load_not_callable": _load_failure_case("not_callable", LOAD_MESSAGE_NO_AGREEMENT),
    "load_import_error": _load_failure_case(
        "import_error", "metric.py line 2: ModuleNotFoundError: No module named 'lse_package_that_does_not_exist'"),
    "load_raises_on_import": _load_failure_case("raises_on_import", "metric.py line 4: KeyError: 'Positive'"),
    # --- malformed requests: HTTP 400 / Lambda BadRequest, nothing scored --------------------------------
    "bad_not_json": {"metric": "choices", "requests": [
        (b"not json", 400, bad("request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"))]},
    "bad_empty_body": {"metric": "choices", "requests": [(b"", 400, bad("empty request body; expected a JSON object"))]},
    "bad_array": {"metric": "choices", "requests": [(b"[1, 2]", 400, bad("request must be a JSON object, got array"))]},
    "bad_number": {"metric": "choices", "requests": [(b"42", 400, bad("request must be a JSON object, got number"))]},
    "bad_empty_object": {"metric": "choices", "requests": [({}, 400, bad(
        "request must hold either 'tasks' (batch) or 'annotation_1' and 'annotation_2' (single pair); "
        "missing 'annotation_1', 'annotation_2'"))]},
    "bad_missing_annotation_2": {"metric": "choices", "requests": [({"annotation_1": P}, 400, bad(
        "request must hold either 'tasks' (batch) or 'annotation_1' and 'annotation_2' (single pair); "
        "missing 'annotation_2'"))]},
    "bad_annotation_type": {"metric": "choices", "requests": [
        ({"annotation_1": [], "annotation_2": P}, 400, bad("annotation_1 must be an object, got array"))]},
    "bad_per_label_type": {"metric": "choices", "requests": [
        ({"annotation_1": P, "annotation_2": P, "per_label": "yes"}, 400, bad("per_label must be true or false, got string")),
        (_batch(TASK3) | {"per_label": 1}, 400, bad("per_label must be true or false, got number"))]},
    "bad_tasks_type": {"metric": "choices", "requests": [({"tasks": {}}, 400, bad("tasks must be an array, got object"))]},
    "bad_task_type": {"metric": "choices", "requests": [({"tasks": [5]}, 400, bad("tasks[0] must be an object, got number"))]},
    "bad_task_missing_pairs": {"metric": "choices", "requests": [
        (_bad_task(pairs=None), 400, bad("tasks[0] (id 3) has no 'pairs'"))]},
    "bad_task_missing_annotations": {"metric": "choices", "requests": [
        (_bad_task(annotations=None), 400, bad("tasks[0] (id 3) has no 'annotations'"))]},
    "bad_annotations_type": {"metric": "choices", "requests": [
        (_bad_task(annotations="x"), 400, bad("tasks[0] (id 3).annotations must be an array, got string"))]},
    "bad_annotation_item": {"metric": "choices", "requests": [
        (_bad_task(annotations=[P, 7]), 400, bad("tasks[0] (id 3).annotations[1] must be an object, got number"))]},
    "bad_pairs_type": {"metric": "choices", "requests": [
        (_bad_task(pairs={}), 400, bad("tasks[0] (id 3).pairs must be an array, got object"))]},
    "bad_pair_shape": {"metric": "choices", "requests": [
        (_bad_task(pairs=[[0]]), 400, bad("tasks[0] (id 3).pairs[0] must be [i, j], got [0]")),
        (_bad_task(pairs=[[0, 1, 1]]), 400, bad("tasks[0] (id 3).pairs[0] must be [i, j], got [0, 1, 1]"))]},
    "bad_pair_out_of_range": {"metric": "choices", "requests": [
        (_bad_task(pairs=[[0, 1], [0, 2]]), 400, bad("tasks[0] (id 3).pairs[1] index 2 is out of range for 2 annotation(s)")),
        (_bad_task(pairs=[[-1, 0]]), 400, bad("tasks[0] (id 3).pairs[0] index -1 is out of range for 2 annotation(s)"))]},
    "bad_pair_index_types": {"metric": "choices", "requests": [
        (_bad_task(pairs=[[0, True]]), 400, bad("tasks[0] (id 3).pairs[0] must hold annotation indices, got [0, true]")),
        (_bad_task(pairs=[[0, 1.0]]), 400, bad("tasks[0] (id 3).pairs[0] must hold annotation indices, got [0, 1.0]"))]},
    "bad_second_task_nothing_scored": {"metric": "counting", "requests": [
        (_batch(TASK3, {"id": "b", "annotations": [P], "pairs": [[0, 1]]}), 400,
         bad("tasks[1] (id 'b').pairs[0] index 1 is out of range for 1 annotation(s)")),
        (_batch(TASK3), 200, {"tasks": [{"id": 3, "results": [{"score": 1.0}]}]})]},
}

# Lambda-only events that no HTTP body can express
LAMBDA_ONLY = {
    "lambda_event_none": (None, "request must be a JSON object, got null"),
    "lambda_event_list": ([P], "request must be a JSON object, got array"),
    "lambda_event_number": (3, "request must be a JSON object, got number"),
}


class FakeRequest:
    """The two things the handler uses of a flask Request."""

    def __init__(self, body: bytes, method: str = "POST"):
        self.method = method
        self._body = body

    def get_data(self) -> bytes:
        return self._body


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def load_handler(workdir: Path, metric: str, handler: Path = DEFAULT_HANDLER, tag: str = ""):
    """A fresh module of ``handler`` copied beside fixture ``metric`` (as ``metric.py``) in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(handler, workdir / "main.py")
    shutil.copy(METRICS / f"{metric}.py", workdir / "metric.py")
    spec = importlib.util.spec_from_file_location(f"lse_case_handler_{tag or workdir.name}", workdir / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call(function, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            return function(*args), None, out.getvalue()
        except Exception as exc:  # noqa: BLE001 - compared below
            return None, exc, out.getvalue()


def _raised_count(results: list) -> int:
    """How many metric exceptions a request's results record (score and per-label calls)."""
    return sum(1 for r in results for key in ("error", "labels_error") if "where" in r.get(key, {}))


def _check_log(where: str, log: str, status: int, body) -> list[str]:
    """One invocation line last; before it a traceback line for each of the first 3 metric exceptions
    (plus one line counting the rest)."""
    lines = [line for line in log.splitlines() if line.strip()]
    if not lines:
        return [f"{where}: no log line"]
    entry = json.loads(lines[-1])
    problems = []
    if status != 400:
        results = [r for t in body["tasks"] for r in t["results"]] if "tasks" in body else [body]
        raised_count = _raised_count(results)
        expected_lines = min(raised_count, 3) + (1 if raised_count > 3 else 0)
        metric_lines = [json.loads(line) for line in lines[:-1]]
        if len(metric_lines) != expected_lines or any(e.get("entry") != "metric" for e in metric_lines):
            return [f"{where}: expected {expected_lines} metric line(s) before the invocation line: {log!r}"]
    elif len(lines) != 1:
        return [f"{where}: expected one log line, got {len(lines)}: {log!r}"]
    if status == 400:
        if entry.get("severity") != "ERROR" or not entry["message"].startswith("bad request: "):
            problems.append(f"{where}: bad-request log line wrong: {entry}")
        return problems
    results = [r for t in body["tasks"] for r in t["results"]] if "tasks" in body else [body]
    expected = {"tasks": len(body.get("tasks", [])), "pairs": len(results),
                "errors": sum("error" in r for r in results),
                "label_errors": sum("labels_error" in r for r in results) or None}
    got = {key: entry.get(key) for key in expected}
    if got != expected:
        problems.append(f"{where}: log counts {got} != {expected}")
    if entry.get("severity") != ("WARNING" if expected["errors"] or expected["label_errors"] else "INFO"):
        problems.append(f"{where}: log severity {entry.get('severity')}")
    if not isinstance(entry.get("ms"), (int, float)):
        problems.append(f"{where}: log line has no ms")
    return problems


def check_case(name: str, workdir: Path, handler: Path = DEFAULT_HANDLER) -> list[str]:
    """Run one case through both entry points; return the mismatches (empty = pass)."""
    case = CASES[name]
    http = load_handler(workdir / "http", case["metric"], handler, tag=f"{name}_http")
    lam = load_handler(workdir / "lambda", case["metric"], handler, tag=f"{name}_lambda")
    problems = []
    for number, (payload, status, expected) in enumerate(case["requests"]):
        where = f"{name}[{number}]"
        if payload == "GET":
            answer, exc, log = _call(http.agreement_handler, FakeRequest(b"", "GET"))
        else:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            answer, exc, log = _call(http.agreement_handler, FakeRequest(body))
            if exc is None:
                problems += _check_log(f"{where} http", log, status, expected)
        if exc is not None:
            problems.append(f"{where} http raised {exc!r}")
        else:
            text, got_status, headers = answer
            if got_status != status:
                problems.append(f"{where} http status {got_status} != {status}: {text}")
            if headers.get("Content-Type") != "application/json":
                problems.append(f"{where} http headers {headers}")
            if canonical(json.loads(text)) != canonical(expected):
                problems.append(f"{where} http body\n  got      {canonical(json.loads(text))}\n  expected {canonical(expected)}")
        if payload == "GET":
            continue
        event = payload.decode() if isinstance(payload, bytes) else payload
        answer, exc, log = _call(lam.lambda_handler, event, None)
        problems += _check_log(f"{where} lambda", log, status, expected)
        if status == 400:
            if exc is None or type(exc).__name__ != "BadRequest" or not isinstance(exc, ValueError):
                problems.append(f"{where} lambda: expected BadRequest, got {exc!r} / {answer!r}")
            elif str(exc) != expected["error"]["message"]:
                problems.append(f"{where} lambda message {str(exc)!r} != {expected['error']['message']!r}")
        elif exc is not None:
            problems.append(f"{where} lambda raised {exc!r}")
        elif canonical(answer) != canonical(expected):
            problems.append(f"{where} lambda result\n  got      {canonical(answer)}\n  expected {canonical(expected)}")
    return problems


def check_lambda_only(name: str, workdir: Path, handler: Path = DEFAULT_HANDLER) -> list[str]:
    event, message = LAMBDA_ONLY[name]
    lam = load_handler(workdir, "choices", handler, tag=name)
    answer, exc, _ = _call(lam.lambda_handler, event, None)
    if exc is None or type(exc).__name__ != "BadRequest" or str(exc) != message:
        return [f"{name}: expected BadRequest({message!r}), got {exc!r} / {answer!r}"]
    return []


def run_all(handler: Path = DEFAULT_HANDLER) -> dict:
    failures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in CASES:
            problems = check_case(name, Path(scratch) / name, handler)
            if problems:
                failures[name] = problems
        for name in LAMBDA_ONLY:
            problems = check_lambda_only(name, Path(scratch) / name, handler)
            if problems:
                failures[name] = problems
    return {"python": sys.version.split()[0], "cases": len(CASES) + len(LAMBDA_ONLY), "failures": failures}


if __name__ == "__main__":
    report = run_all(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_HANDLER)
    print(json.dumps(report, indent=1))
    sys.exit(1 if report["failures"] else 0)
