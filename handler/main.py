"""The function that wraps a Label Studio Enterprise custom agreement metric.

Shipped as ``main.py`` next to the user's ``metric.py`` in every bundle (AWS Lambda, Google Cloud
Functions gen2, and the ``local`` provider, which serves it with functions-framework). Entry points:

* ``agreement_handler(request)`` - Cloud Functions HTTP (the name LSE fixes); returns
  ``(body, status, headers)``. ``GET`` is a health probe: it loads the metric and answers 200 or 500.
* ``lambda_handler(event, context)`` - Lambda; ``event`` is the decoded JSON object (a JSON string is
  accepted too). A malformed request raises ``BadRequest``.

Payloads (DESIGN §3.2):

* single pair ``{"annotation_1": {...}, "annotation_2": {...}, "per_label": false}``
  -> ``{"score": 0.7}`` | ``{"error": {"type": ..., "message": ...}}``
* batch ``{"per_label": false, "tasks": [{"id": 17, "annotations": [a0, a1], "pairs": [[0, 1]]}]}``
  -> ``{"tasks": [{"id": 17, "results": [{"score": 1.0}]}]}``

With ``"per_label": true`` each result carries ``score`` (metric called with ``per_label=False``) and
``labels`` (``per_label=True``). If the ``per_label=False`` call fails the pair is an ``error``; if only
the ``per_label=True`` call fails, the pair keeps its score and says why it has no labels:
``{"score": 0.5, "labels_error": {"type": "InvalidResult", "message": ...}}``. Whatever the metric raises,
``sys.exit()``, ``KeyboardInterrupt`` and any other ``BaseException`` included, is that pair's error
(``{"type": "SystemExit", "message": "the metric called sys.exit(3)"}``); a number too big for a float
(``10**400``) is an ``InvalidResult`` like any other out-of-range value. A metric exception's
error object also says where it happened: ``"where": "metric.py:12 in agreement"`` (the innermost
frame inside ``metric.py``), and the first ``TRACEBACKS_PER_INVOCATION`` failing pairs of a request
get a compact traceback in the function log. A metric that cannot be loaded (syntax error, import
error, no ``agreement``) gives every pair
``{"error": {"type": "MetricLoadError", "message": "<file> line N: ..."}}`` so a scoring run still
finishes and reports why.

Only the standard library is imported at load time, so the bundle needs no dependencies and cold
start stays small; it runs unchanged on Python 3.11 and 3.13. ``orjson`` is used to decode requests
when (and only when) the metric's own requirements make it importable.
"""
from __future__ import annotations

import gc
import json
import math
import numbers
import os
import sys
import threading
import time

__all__ = ["agreement_handler", "lambda_handler", "BadRequest", "handle_payload"]

METRIC_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metric.py")
# Failing pairs per request whose traceback goes to the log; the rest are only counted there.
TRACEBACKS_PER_INVOCATION = 3
_JSON_HEADERS = {"Content-Type": "application/json"}


class BadRequest(ValueError):
    """The request is not a payload this function understands; the message names what is wrong."""


# --- the user's metric, loaded once per process ----------------------------------------------------

class _MetricLoadFailure:
    """Why metric.py could not be loaded; reported as every pair's error."""

    def __init__(self, message: str):
        self.error = {"type": "MetricLoadError", "message": message}


_metric = None  # the agreement callable or a _MetricLoadFailure
_metric_lock = threading.Lock()


def _where(exc: BaseException, path: str) -> str:
    """``metric.py line N`` for the deepest frame of ``exc`` inside ``path`` (or just the file)."""
    name = os.path.basename(path)
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{name} line {exc.lineno}"
    import traceback  # only on this error path

    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    return f"{name} line {lines[-1]}" if lines else name


def _load_metric(path: str = METRIC_FILE):
    """Import ``metric.py`` and return its ``agreement``, or a _MetricLoadFailure saying why not."""
    import importlib.util  # already imported by the interpreter; kept local to stay off the hot path

    if not os.path.isfile(path):
        return _MetricLoadFailure(f"{os.path.basename(path)} is missing from the function bundle")
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # so a metric may import helper modules shipped beside it
    spec = importlib.util.spec_from_file_location("metric", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["metric"] = module  # dataclasses/pickle inside the metric look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - whatever the user's module raises is reported
        sys.modules.pop("metric", None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return _MetricLoadFailure(f"{_where(exc, path)}: {type(exc).__name__}: {detail}")
    agreement = getattr(module, "agreement", None)
    if not callable(agreement):
        return _MetricLoadFailure(
            f"{os.path.basename(path)} defines no function "
            "`agreement(annotation_1, annotation_2, per_label=False)`"
        )
    return agreement


def _get_metric():
    global _metric
    if _metric is None:
        with _metric_lock:
            if _metric is None:
                _metric = _load_metric()
    return _metric


# --- progress marker for the local runtime -------------------------------------------------------------

PROGRESS_ENV = "LSE_METRICS_PROGRESS"


def _open_progress():
    """A shared 8-byte counter the local runtime reads while a request runs (None elsewhere).

    Before each pair of a batch the handler stores its 1-based position in the request, so when a
    request hits the time limit the runtime knows which pair was running and for how long: a pair that
    used (nearly) the whole limit alone gets the timeout, the others are retried without it.
    """
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return None
    try:
        import mmap  # stdlib; only with the local runtime

        with open(path, "r+b") as handle:
            return memoryview(mmap.mmap(handle.fileno(), 8)).cast("q")
    except (OSError, ValueError, TypeError):
        return None  # no marker: the runtime falls back to retrying every pair


_progress = _open_progress()


# --- result validation -------------------------------------------------------------------------------

def _describe(value) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - e.g. an int of more than 4300 digits, a __repr__ that raises
        text = f"<{type(value).__name__} that cannot be shown>"
        if isinstance(value, int):
            text = f"<int of {value.bit_length()} bits>"
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _as_unit_number(value):
    """``float(value)`` if it is a real number in [0, 1], else None."""
    if value.__class__ is float:  # the common case, checked without the ABC machinery
        return value if 0.0 <= value <= 1.0 else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, int):  # compared exactly: float() of a huge int raises OverflowError
        return float(value) if 0 <= value <= 1 else None
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError, ArithmeticError):  # e.g. Fraction(10**400)
        return None
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        return None
    return number


def _invalid(message: str) -> dict:
    return {"error": {"type": "InvalidResult", "message": message}}


def _metric_frame(exc: BaseException):
    """The innermost traceback entry of ``exc`` that runs code of ``metric.py`` (None if none does)."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == METRIC_FILE:
            found = tb
        tb = tb.tb_next
    return found


class _Failures:
    """The metric exceptions of one request: where each happened, and a log line for the first few."""

    def __init__(self):
        self.count = 0

    def error(self, exc: BaseException, task, a1, a2, call: str = "") -> dict:
        error = {"type": type(exc).__name__, "message": _message(exc)}
        frame = _metric_frame(exc)
        if frame is not None:
            error["where"] = f"{os.path.basename(METRIC_FILE)}:{frame.tb_lineno} in {frame.tb_frame.f_code.co_name}"
        self.count += 1
        if self.count <= TRACEBACKS_PER_INVOCATION:
            _log("ERROR", f"metric raised on {_pair_name(task, a1, a2)}{call}: {error['type']}: {error['message']}\n"
                 f"{_compact_traceback(exc)}",
                 entry="metric", where=error.get("where"))
        return error

    def log_rest(self) -> None:
        rest = self.count - TRACEBACKS_PER_INVOCATION
        if rest > 0:
            _log("ERROR", f"metric raised on {rest} more pair(s) of this request (tracebacks not logged)",
                 entry="metric", more=rest)


def _message(exc: BaseException) -> str:
    """The exception's message; for what is not an Exception (sys.exit(), KeyboardInterrupt, ...) what happened."""
    if isinstance(exc, SystemExit):
        return f"the metric called sys.exit({'' if exc.code is None else repr(exc.code)})"
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a __str__ that raises
        text = ""
    if not text and not isinstance(exc, Exception):
        text = f"{type(exc).__name__} raised inside the metric"
    return text


def _pair_name(task, a1, a2) -> str:
    """``task 17, annotations 5 and 8`` (built only for a failing pair, off the hot path)."""
    where = "the pair" if task is _SINGLE else f"task {task!r}"
    return f"{where}, annotations {a1.get('id')!r} and {a2.get('id')!r}"


_SINGLE = object()  # the task of a single-pair request


def _compact_traceback(exc: BaseException) -> str:
    """The traceback from the first frame of the metric on (the handler's own frames say nothing)."""
    import traceback  # only on this error path

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != METRIC_FILE:
        tb = tb.tb_next
    lines = traceback.format_list(traceback.extract_tb(tb if tb is not None else exc.__traceback__))
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip("\n")


def _score(agreement, a1, a2, failures: _Failures, task) -> dict:
    try:
        value = agreement(a1, a2, per_label=False)
    except BaseException as exc:  # noqa: BLE001 - the metric's own error (even sys.exit()) is the pair's result
        return {"error": failures.error(exc, task, a1, a2)}
    number = _as_unit_number(value)
    if number is None:
        return _invalid(f"agreement() returned {_describe(value)}; expected a real number in [0, 1]")
    return {"score": number}


def _labels(agreement, a1, a2, failures: _Failures, task) -> dict:
    try:
        value = agreement(a1, a2, per_label=True)
    except BaseException as exc:  # noqa: BLE001
        return {"error": failures.error(exc, task, a1, a2, " (per_label=True)")}
    if not isinstance(value, dict):
        return _invalid(
            f"agreement(per_label=True) returned {_describe(value)}; "
            "expected a dict {label: number in [0, 1]}"
        )
    labels = {}
    for label, score in value.items():
        if not isinstance(label, str):
            return _invalid(f"agreement(per_label=True) returned label {_describe(label)}; labels must be strings")
        number = _as_unit_number(score)
        if number is None:
            return _invalid(
                f"agreement(per_label=True) returned {_describe(score)} for label {label!r}; "
                "expected a real number in [0, 1]"
            )
        labels[label] = number
    return {"labels": labels}


def _pair_result(agreement, a1, a2, per_label: bool, failures: _Failures, task) -> dict:
    if not callable(agreement):
        return {"error": dict(agreement.error)}
    result = _score(agreement, a1, a2, failures, task)
    if per_label and "score" in result:
        labels = _labels(agreement, a1, a2, failures, task)
        if "error" in labels:
            result["labels_error"] = labels["error"]  # the score stands; only the labels are missing
        else:
            result["labels"] = labels["labels"]
    return result


# --- request parsing ---------------------------------------------------------------------------------

_loads = None


def _decoder():
    """orjson.loads when importable (several times faster on large payloads), else json.loads."""
    global _loads
    if _loads is None:
        try:
            import orjson  # optional: only if the bundle's requirements bring it

            _loads = orjson.loads
        except ImportError:
            _loads = json.loads
    return _loads


class _QuietCollector:
    """Keep the cyclic garbage collector off a request's decoded payload.

    Decoding a multi-megabyte payload allocates ~10^5-10^6 containers; each allocation burst triggers
    collections that traverse them (and, in a functions-framework worker, the whole framework heap),
    which cost more than the decoding itself. The payload is plain JSON, so it holds no cycles: decode
    with the collector paused, then ``freeze`` it (and everything older) out of the collector's sight
    for the rest of the request. ``unfreeze`` afterwards hands any older garbage back to the collector.
    """

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()
        return self

    def payload_ready(self) -> None:
        gc.freeze()
        if self.enabled:
            gc.enable()

    def __exit__(self, *exc):
        gc.unfreeze()
        if self.enabled:
            gc.enable()
        return False


def _decode(body) -> dict:
    if isinstance(body, (bytes, bytearray, memoryview)):
        if not body:
            raise BadRequest("empty request body; expected a JSON object")
    elif isinstance(body, str):
        if not body.strip():
            raise BadRequest("empty request body; expected a JSON object")
    else:
        raise BadRequest(f"request must be a JSON object, got {type(body).__name__}")
    try:
        payload = _decoder()(body)
    except ValueError:  # json.JSONDecodeError and orjson.JSONDecodeError are ValueErrors
        # The stdlib decides, so orjson's stricter corners (NaN, huge ints) behave exactly like json
        # and the error message is the same whichever decoder ran first.
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"request must be a JSON object, got {_json_type(payload)}")
    return payload


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _per_label(payload: dict) -> bool:
    value = payload.get("per_label", False)
    if not isinstance(value, bool):
        raise BadRequest(f"per_label must be true or false, got {_json_type(value)}")
    return value


def _check_task(position: int, task) -> tuple:
    where = f"tasks[{position}]"
    if not isinstance(task, dict):
        raise BadRequest(f"{where} must be an object, got {_json_type(task)}")
    if "id" in task:
        where = f"{where} (id {task['id']!r})"
    for key in ("annotations", "pairs"):
        if key not in task:
            raise BadRequest(f"{where} has no {key!r}")
    annotations, pairs = task["annotations"], task["pairs"]
    if not isinstance(annotations, list):
        raise BadRequest(f"{where}.annotations must be an array, got {_json_type(annotations)}")
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise BadRequest(f"{where}.annotations[{index}] must be an object, got {_json_type(annotation)}")
    if not isinstance(pairs, list):
        raise BadRequest(f"{where}.pairs must be an array, got {_json_type(pairs)}")
    count = len(annotations)
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise BadRequest(f"{where}.pairs[{index}] must be [i, j], got {json.dumps(pair)[:60]}")
        for value in pair:
            if value.__class__ is not int:  # bool is an int subclass and is rejected here
                raise BadRequest(f"{where}.pairs[{index}] must hold annotation indices, got {json.dumps(pair)[:60]}")
            if not 0 <= value < count:
                raise BadRequest(
                    f"{where}.pairs[{index}] index {value} is out of range for {count} annotation(s)"
                )
    return task.get("id"), annotations, pairs


def handle_payload(payload: dict) -> tuple[dict, dict]:
    """Answer one decoded request; returns (response, counts). Raises BadRequest for a bad shape."""
    if not isinstance(payload, dict):
        raise BadRequest(f"request must be a JSON object, got {_json_type(payload)}")
    per_label = _per_label(payload)
    if "tasks" in payload:
        tasks = payload["tasks"]
        if not isinstance(tasks, list):
            raise BadRequest(f"tasks must be an array, got {_json_type(tasks)}")
        checked = [_check_task(position, task) for position, task in enumerate(tasks)]
        agreement = _get_metric()
        failures = _Failures()
        progress = _progress
        out, pairs_done, errors, label_errors = [], 0, 0, 0
        for task_id, annotations, pairs in checked:
            results = []
            for i, j in pairs:
                if progress is not None:
                    progress[0] = pairs_done + len(results) + 1
                result = _pair_result(agreement, annotations[i], annotations[j], per_label, failures, task_id)
                if len(result) != 1 or "score" not in result:  # the rare case: an error of some kind
                    if "error" in result:
                        errors += 1
                    elif "labels_error" in result:
                        label_errors += 1
                results.append(result)
            pairs_done += len(pairs)
            out.append({"id": task_id, "results": results})
        failures.log_rest()
        counts = {"tasks": len(tasks), "pairs": pairs_done, "errors": errors, "per_label": per_label}
        if label_errors:
            counts["label_errors"] = label_errors
        return {"tasks": out}, counts
    missing = [key for key in ("annotation_1", "annotation_2") if key not in payload]
    if missing:
        raise BadRequest(
            "request must hold either 'tasks' (batch) or 'annotation_1' and 'annotation_2' (single pair); "
            f"missing {', '.join(repr(key) for key in missing)}"
        )
    for key in ("annotation_1", "annotation_2"):
        if not isinstance(payload[key], dict):
            raise BadRequest(f"{key} must be an object, got {_json_type(payload[key])}")
    result = _pair_result(_get_metric(), payload["annotation_1"], payload["annotation_2"], per_label, _Failures(),
                          _SINGLE)
    counts = {"tasks": 0, "pairs": 1, "errors": int("error" in result), "per_label": per_label}
    if "labels_error" in result:
        counts["label_errors"] = 1
    return result, counts


# --- logging -----------------------------------------------------------------------------------------

def _log(severity: str, message: str, **fields) -> None:
    """One JSON line on stdout: Cloud Logging and CloudWatch both parse ``severity`` and ``message``."""
    now = time.time()
    entry = {
        "severity": severity,
        "message": message,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
        "logger": "lse-custom-metrics",
    }
    entry.update(fields)
    sys.stdout.write(json.dumps(entry) + "\n")
    sys.stdout.flush()


def _log_invocation(entry: str, counts: dict, started: float) -> None:
    ms = round((time.perf_counter() - started) * 1000, 1)
    label_errors = f", {counts['label_errors']} label error(s)" if counts.get("label_errors") else ""
    _log(
        "WARNING" if counts["errors"] or label_errors else "INFO",
        f"agreement: {counts['tasks']} task(s), {counts['pairs']} pair(s), {counts['errors']} error(s)"
        f"{label_errors}, {ms} ms",
        entry=entry, ms=ms, **counts,
    )


def _log_bad_request(entry: str, exc: BadRequest, started: float) -> None:
    ms = round((time.perf_counter() - started) * 1000, 1)
    _log("ERROR", f"bad request: {exc}", entry=entry, ms=ms, tasks=0, pairs=0, errors=0)


# --- entry points --------------------------------------------------------------------------------------

def _health() -> tuple[str, int, dict]:
    metric = _get_metric()
    if callable(metric):
        return json.dumps({"status": "ok"}), 200, dict(_JSON_HEADERS)
    _log("ERROR", f"metric load failed: {metric.error['message']}", entry="health")
    return json.dumps({"status": "failed", "error": metric.error}), 500, dict(_JSON_HEADERS)


def agreement_handler(request):
    """Cloud Functions (gen2) HTTP entry point. ``request`` is a flask Request."""
    started = time.perf_counter()
    if getattr(request, "method", "POST") == "GET":
        return _health()
    try:
        with _QuietCollector() as collector:
            payload = _decode(request.get_data())
            collector.payload_ready()
            response, counts = handle_payload(payload)
            del payload
    except BadRequest as exc:
        _log_bad_request("http", exc, started)
        return json.dumps({"error": {"type": "BadRequest", "message": str(exc)}}), 400, dict(_JSON_HEADERS)
    body = json.dumps(response)
    _log_invocation("http", counts, started)
    return body, 200, dict(_JSON_HEADERS)


def lambda_handler(event, context=None):
    """AWS Lambda entry point. ``event`` is the decoded JSON payload (a JSON string is accepted)."""
    started = time.perf_counter()
    try:
        with _QuietCollector() as collector:
            payload = _decode(event) if isinstance(event, (str, bytes, bytearray)) else event
            collector.payload_ready()
            response, counts = handle_payload(payload)
            del payload
    except BadRequest as exc:
        _log_bad_request("lambda", exc, started)
        raise
    _log_invocation("lambda", counts, started)
    return response
