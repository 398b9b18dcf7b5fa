"""Read a Label Studio JSON export into tasks, annotations and predictions.

Accepts what Label Studio's "JSON" export writes: a list of tasks (or one task object), each with
`annotations` (and optionally `predictions`). `completed_by` is an int (Community) or an object
`{id, email, ...}` (Enterprise); predictions have no `completed_by` and are named by `model_version`.
Relation items (no `from_name`, no `value`) are kept as they are: metrics receive whole annotations.
Anything else fails with an `ExportError` that names the file, the task and what to export instead.
"""
from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from json.decoder import WHITESPACE, scanstring
from json.scanner import make_scanner
from pathlib import Path
from typing import Any, Callable, Iterator

EXPORT_HINT = 'export the project as "JSON" in Label Studio (not JSON_MIN, CSV or TSV)'
# A JSON document cut off at its end, or broken inside: the format was right, the file is not.
TRUNCATED_HINT = "the file is incomplete: download or copy the export again"
BROKEN_JSON_HINT = "the file was changed after the export: export it again, or fix it at that position"
ANNOTATION_FILE_HINT = "give one annotation object with a `result` list"
ANNOTATION_HINT = 'export the project as "JSON" in Label Studio to score it'
# Keys JSON_MIN writes at the top level of each flattened task, instead of an `annotations` list.
_JSON_MIN_KEYS = {"annotator", "annotation_id", "lead_time"}
UNKNOWN_ANNOTATOR = "unknown"


class ExportError(ValueError):
    """The file is not a Label Studio JSON export we can score."""

    def __init__(self, path: str | Path, problem: str, *, where: str | None = None, hint: str | None = EXPORT_HINT):
        self.path, self.problem, self.where, self.hint = str(path), problem, where, hint
        text = f"{self.path}: {where + ': ' if where else ''}{problem}"
        super().__init__(f"{text} ({hint})" if hint else text)


@dataclass(frozen=True)
class Annotation:
    """One annotation or prediction, kept whole (`raw`) because the metric receives it as exported."""

    id: Any
    annotator: str  # completed_by id for annotations, "model:<model_version>" for predictions
    raw: dict
    cancelled: bool = False
    is_prediction: bool = False
    email: str | None = None
    # The object's JSON text exactly as it appears in the export (None when not read from a file): the
    # scorer sends it as is, so the metric gets what LSE would, without encoding it again.
    raw_json: str | None = field(default=None, repr=False, compare=False)


@dataclass
class Task:
    index: int  # position in the export file
    id: Any
    project: Any
    annotations: list[Annotation]  # every annotation, cancelled ones included, in export order
    predictions: list[Annotation] = field(default_factory=list)
    lse_agreement: float | None = None  # the agreement LSE stored (0-100), when the export has it

    @property
    def kept(self) -> list[Annotation]:
        """The annotations LSE scores: cancelled (skipped) ones are dropped."""
        return [a for a in self.annotations if not a.cancelled]


@dataclass
class Export:
    path: str
    tasks: list[Task]

    @property
    def projects(self) -> list[Any]:
        """Distinct `project` values in task order (an export can mix projects)."""
        seen: list[Any] = []
        for task in self.tasks:
            if task.project is not None and task.project not in seen:
                seen.append(task.project)
        return seen

    @property
    def project(self) -> Any:
        """The first task's project (None when the export has no `project` field)."""
        projects = self.projects
        return projects[0] if projects else None


def read_export(path: str | Path, on_first_task: Callable[["Task"], None] | None = None) -> Export:
    """Parse a Label Studio JSON export; raise ExportError naming the file and task on bad input."""
    # The export is one big acyclic tree: collecting garbage while it is built only re-scans it,
    # which costs more than the parsing itself on a large export.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return Export(path=str(path), tasks=list(iter_export(path, on_first_task)))
    finally:
        if enabled:
            gc.enable()


def iter_export(path: str | Path, on_first_task: Callable[["Task"], None] | None = None) -> Iterator["Task"]:
    """The export's tasks one by one, as they are decoded (the scorer starts sending before the end).

    `on_first_task(task)` is called once the first task has been read and checked. An ExportError can
    come at any task; callers that stream must be ready to abandon what they started.
    """
    path = Path(path)
    text = _read_text(path)
    count = 0
    last: Task | None = None
    try:
        for index, item, raw in _scan_export(text):
            task = _parse_task(item, index, path, raw)
            if count == 0 and on_first_task is not None:
                on_first_task(task)
            count += 1
            last = task
            yield task
        return
    except _NotScannable:
        pass
    # Not the layout the scanner follows: json.loads decides, and words the error if there is one.
    data = _loads(text, path, last_read=last)
    if isinstance(data, dict):
        data = [data]  # a single task object
    if not isinstance(data, list):
        raise ExportError(path, f"expected a list of tasks, found a JSON {type(data).__name__}")
    for index in range(count, len(data)):
        task = _parse_task(data[index], index, path, {})
        if index == 0 and on_first_task is not None:
            on_first_task(task)
        yield task


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExportError(path, "file not found", hint=None) from None
    except UnicodeDecodeError as exc:
        raise ExportError(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ExportError(path, f"cannot read the file: {exc.strerror}", hint=None) from None


def _loads(text: str, path: Path, last_read: "Task | None" = None) -> Any:
    """json.loads, with every way it can fail turned into an ExportError naming the file and position."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if _looks_delimited(text):
            # The parser's complaint about a CSV line is noise: say what the file is instead.
            raise ExportError(path, "this is a CSV/TSV export, not JSON") from None
        problem, hint = json_problem_and_hint(text, exc, EXPORT_HINT)
        if text.lstrip().startswith(("[", "{")):
            problem += _last_read(last_read)
        raise ExportError(path, problem, hint=hint) from None
    except RecursionError:
        raise ExportError(path, "not a Label Studio export: JSON nested too deeply to read"
                          + _last_read(last_read)) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits: Python refuses to convert it
        raise ExportError(path, f"not a Label Studio export: {exc}" + _last_read(last_read)) from None


# What a value cut off at the end of the file can still look like: the start of a literal or a number.
_LITERALS = ("true", "false", "null")
_NUMBER_FRAGMENT = set("0123456789+-.eE")


def _json_failure(text: str, exc: json.JSONDecodeError) -> tuple[str, str]:
    """What is wrong with `text` as one JSON document: (kind, problem), kind one of "not-json",
    "truncated", "json-lines" or "broken".

    A document that opens a list or an object and fails where the text ends (an unterminated string, a
    missing value, delimiter or closing bracket at the end, a cut-off literal or number) was cut off:
    "it looks truncated". Text that opens no list or object is not JSON at all: say what it looks like.
    Anything else is broken in the middle: the decoder's line, column and complaint.
    """
    stripped = text.strip()
    if not stripped:
        return "not-json", "not JSON: the file is empty"
    if not stripped.startswith(("[", "{")):
        if stripped.startswith("<"):
            return "not-json", "not JSON: the file looks like HTML or XML"
        first_line = stripped.splitlines()[0]
        shown = first_line if len(first_line) <= 40 else first_line[:40] + "..."
        return "not-json", f"not JSON: the file starts with {shown!r}"
    # "Unterminated string starting at" names its position last; the other complaints come after it.
    position = (f"{exc.msg} line {exc.lineno}, column {exc.colno}" if exc.msg.endswith(" at")
                else f"line {exc.lineno}, column {exc.colno}: {exc.msg}")
    rest = text[exc.pos:].strip()
    if (exc.msg.startswith("Unterminated string") or not rest
            or (len(rest) <= 24 and (any(word.startswith(rest) for word in _LITERALS)
                                     or set(rest) <= _NUMBER_FRAGMENT))):
        return "truncated", f"not valid JSON ({position}); the file ends early, it looks truncated"
    if exc.msg == "Extra data" and stripped.startswith("{") and exc.colno == 1:
        return "json-lines", (f"not valid JSON ({position}); it looks like JSON Lines (one object per line), "
                              "not one JSON document")
    return "broken", f"not valid JSON ({position})"


def json_problem_and_hint(text: str, exc: json.JSONDecodeError, default_hint: str) -> tuple[str, str]:
    """Why `text` is not a JSON document, and what to do: a cut-off or hand-broken document needs a new
    copy (not another format); anything else gets ``default_hint``."""
    kind, problem = _json_failure(text, exc)
    return problem, {"truncated": TRUNCATED_HINT, "broken": BROKEN_JSON_HINT}.get(kind, default_hint)


def _last_read(task: "Task | None") -> str:
    if task is None:
        return "; no task could be read"
    return f"; last task read successfully: {_where(task.index, task.id)}"


def _looks_delimited(text: str) -> bool:
    """A CSV or TSV export: a first line with commas or tabs, and no JSON opening bracket."""
    stripped = text.lstrip()
    if not stripped or stripped.startswith(("[", "{")):
        return False
    first_line = stripped.splitlines()[0]
    return "\t" in first_line or "," in first_line


class _NotScannable(Exception):
    """The text is not the usual export layout (or not JSON): json.loads decides and explains."""


_scan_value = make_scanner(json.JSONDecoder())  # the C scanner json.loads itself uses
_skip = WHITESPACE.match
_RAW_KEYS = ("annotations", "predictions")


def _value(text: str, index: int) -> tuple[Any, int]:
    try:
        return _scan_value(text, index)
    except (StopIteration, ValueError, RecursionError):
        # StopIteration: no value here; JSONDecodeError (a ValueError): a broken string or number;
        # RecursionError: absurd nesting. json.loads then finds the same place and words the error.
        raise _NotScannable from None


def _scan_export(text: str) -> Iterator[tuple[int, Any, dict[str, list[str]]]]:
    """Decode an export like json.loads, task by task, with each annotation's and prediction's JSON text.

    Walks the task list and each task's keys itself and lets the C scanner decode every value, so it is
    about as fast as json.loads. Yields (index, task, {"annotations": [text, ...], "predictions": [...]}).
    Raises _NotScannable when the text is not JSON (possibly after some tasks: json.loads then explains).
    """
    index = _skip(text, 0).end()
    if text.startswith("{", index):  # a single task object
        task, raw, index = _scan_task(text, index)
        if _skip(text, index).end() != len(text):
            raise _NotScannable
        yield 0, task, raw
        return
    if not text.startswith("[", index):
        raise _NotScannable
    index = _skip(text, index + 1).end()
    if text.startswith("]", index):
        if _skip(text, index + 1).end() != len(text):
            raise _NotScannable
        return
    position = 0
    while True:
        if text.startswith("{", index):
            task, raw, index = _scan_task(text, index)
        else:
            (task, index), raw = _value(text, index), {}
        index = _skip(text, index).end()
        if text.startswith(",", index):
            index = _skip(text, index + 1).end()
            yield position, task, raw
        elif text.startswith("]", index):
            if _skip(text, index + 1).end() != len(text):
                raise _NotScannable
            yield position, task, raw
            return
        else:
            raise _NotScannable
        position += 1


def _scan_task(text: str, index: int) -> tuple[dict, dict[str, list[str]], int]:
    task: dict = {}
    raw: dict[str, list[str]] = {}
    index = _skip(text, index + 1).end()
    if text.startswith("}", index):
        return task, raw, index + 1
    while True:
        if not text.startswith('"', index):
            raise _NotScannable
        try:
            key, index = scanstring(text, index + 1)
        except ValueError:
            raise _NotScannable from None
        index = _skip(text, index).end()
        if not text.startswith(":", index):
            raise _NotScannable
        index = _skip(text, index + 1).end()
        if key in _RAW_KEYS and text.startswith("[", index):
            task[key], raw[key], index = _scan_array(text, index)
        else:
            task[key], index = _value(text, index)
            raw.pop(key, None)
        index = _skip(text, index).end()
        if text.startswith(",", index):
            index = _skip(text, index + 1).end()
        elif text.startswith("}", index):
            return task, raw, index + 1
        else:
            raise _NotScannable


def _scan_array(text: str, index: int) -> tuple[list, list[str], int]:
    items: list[Any] = []
    slices: list[str] = []
    index = _skip(text, index + 1).end()
    if text.startswith("]", index):
        return items, slices, index + 1
    while True:
        item, end = _value(text, index)
        items.append(item)
        slices.append(text[index:end])
        index = _skip(text, end).end()
        if text.startswith(",", index):
            index = _skip(text, index + 1).end()
        elif text.startswith("]", index):
            return items, slices, index + 1
        else:
            raise _NotScannable


def parse_export(data: Any, path: str | Path = "<export>", raw: list[dict[str, list[str]]] | None = None) -> Export:
    """Build an Export from decoded JSON; `raw` gives each task's annotation/prediction JSON texts."""
    if isinstance(data, dict):
        data = [data]  # a single task object
    if not isinstance(data, list):
        raise ExportError(path, f"expected a list of tasks, found a JSON {type(data).__name__}")
    raw = raw if raw is not None and len(raw) == len(data) else [{}] * len(data)
    tasks = [_parse_task(item, index, path, texts) for index, (item, texts) in enumerate(zip(data, raw))]
    return Export(path=str(path), tasks=tasks)


def _where(index: int, task_id: Any) -> str:
    return f"task #{index}" + (f" (id {task_id})" if task_id is not None else "")


def _parse_task(item: Any, index: int, path: str | Path, texts: dict[str, list[str]]) -> Task:
    if not isinstance(item, dict):
        raise ExportError(path, f"expected a task object, found a JSON {type(item).__name__}", where=f"task #{index}")
    task_id = item.get("id")
    where = _where(index, task_id)
    if "annotations" not in item:
        if isinstance(item.get("result"), list):
            raise ExportError(path, "this is one annotation, not an export (an object with a `result` list and "
                              "no `annotations`)", where=f"item #{index}", hint=ANNOTATION_HINT)
        if _JSON_MIN_KEYS & item.keys():
            raise ExportError(path, "looks like a JSON_MIN export (flat tasks without an `annotations` list)", where=where)
        raise ExportError(path, "task has no `annotations` list", where=where)
    raw_annotations = item["annotations"]
    if not isinstance(raw_annotations, list):
        raise ExportError(path, "`annotations` is not a list", where=where)
    raw_predictions = item.get("predictions") or []
    if not isinstance(raw_predictions, list):
        raise ExportError(path, "`predictions` is not a list", where=where)
    annotation_texts = texts.get("annotations") or [None] * len(raw_annotations)
    prediction_texts = texts.get("predictions") or [None] * len(raw_predictions)
    annotations = [_parse_annotation(a, i, task_id, where, path, prediction=False, raw_json=t)
                   for i, (a, t) in enumerate(zip(raw_annotations, annotation_texts))]
    predictions = [_parse_annotation(p, i, task_id, where, path, prediction=True, raw_json=t)
                   for i, (p, t) in enumerate(zip(raw_predictions, prediction_texts))]
    stored = item.get("agreement")
    lse_agreement = float(stored) if isinstance(stored, (int, float)) and not isinstance(stored, bool) else None
    return Task(index=index, id=task_id, project=item.get("project"), annotations=annotations,
                predictions=predictions, lse_agreement=lse_agreement)


def _parse_annotation(obj: Any, index: int, task_id: Any, where: str, path: str | Path, *, prediction: bool,
                      raw_json: str | None = None) -> Annotation:
    kind = "prediction" if prediction else "annotation"
    if not isinstance(obj, dict):
        raise ExportError(path, f"{kind} #{index} is a JSON {type(obj).__name__}, not an object", where=where)
    ann_id = obj.get("id", f"{task_id}:{kind[0]}{index}")
    label = f"{kind} #{index} (id {obj['id']})" if "id" in obj else f"{kind} #{index}"
    if "result" not in obj:
        raise ExportError(path, f"{label} has no `result`", where=where)
    if not isinstance(obj["result"], list):
        raise ExportError(path, f"{label}: `result` is not a list", where=where)
    for position, region in enumerate(obj["result"]):
        if not isinstance(region, dict):
            raise ExportError(path, f"{label}: result item #{position} is not an object", where=where)
    if prediction:
        version = obj.get("model_version")
        annotator = f"model:{version}" if version not in (None, "") else "model"
        return Annotation(id=ann_id, annotator=annotator, raw=obj, is_prediction=True, raw_json=raw_json)
    annotator, email = _annotator(obj.get("completed_by"), path, where, label)
    return Annotation(id=ann_id, annotator=annotator, raw=obj, cancelled=bool(obj.get("was_cancelled")), email=email,
                      raw_json=raw_json)


def _annotator(completed_by: Any, path: str | Path, where: str, label: str) -> tuple[str, str | None]:
    if completed_by is None:
        return UNKNOWN_ANNOTATOR, None
    if isinstance(completed_by, dict):
        if completed_by.get("id") is None:
            raise ExportError(path, f"{label}: `completed_by` object has no `id`", where=where)
        return str(completed_by["id"]), completed_by.get("email")
    if isinstance(completed_by, (int, str)) and not isinstance(completed_by, bool):
        return str(completed_by), None
    raise ExportError(path, f"{label}: `completed_by` must be a user id or a user object, found {completed_by!r}", where=where)


def read_annotation_file(path: str | Path) -> dict:
    """One annotation for `lse-metrics invoke`: an annotation object, a task (first annotation), or a bare result list."""
    path = Path(path)
    text = _read_text(path)  # its ExportError names the file once
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        hint = ANNOTATION_FILE_HINT
        if isinstance(exc, json.JSONDecodeError):
            problem, hint = json_problem_and_hint(text, exc, ANNOTATION_FILE_HINT)
        elif isinstance(exc, RecursionError):
            problem = "JSON nested too deeply to read"
        else:
            problem = f"cannot read the JSON: {exc}"
        raise ExportError(path, problem, hint=hint) from None
    if isinstance(data, list) and all(isinstance(r, dict) for r in data) and not any("annotations" in r for r in data):
        return {"result": data}
    if isinstance(data, dict) and isinstance(data.get("annotations"), list) and data["annotations"]:
        data = data["annotations"][0]
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise ExportError(path, "not an annotation: expected an object with a `result` list",
                          hint=ANNOTATION_FILE_HINT)
    return data
