"""Read a Label Studio JSON export into tasks, annotations and predictions.

Accepts what Label Studio's "JSON" export writes: a list of tasks (or one task object), each with
`annotations` (and optionally `predictions`). `completed_by` is an int (Community) or an object
`{id, email, ...}` (Enterprise); predictions have no `completed_by` and are named by `model_version`.
Relation items (no `from_name`, no `value`) are kept as they are: metrics receive whole annotations.
Anything else fails with an `ExportError` that names the file, the task and what to export instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPORT_HINT = 'export the project as "JSON" in Label Studio (not JSON_MIN, CSV or TSV)'
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


def read_export(path: str | Path) -> Export:
    """Parse a Label Studio JSON export; raise ExportError naming the file and task on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExportError(path, "file not found", hint=None) from None
    except UnicodeDecodeError as exc:
        raise ExportError(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ExportError(path, f"cannot read the file: {exc.strerror}", hint=None) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        looks_csv = "," in text.splitlines()[0] if text.strip() else False
        what = "a CSV/TSV export, not JSON" if looks_csv and not text.lstrip().startswith(("[", "{")) else "not valid JSON"
        raise ExportError(path, f"{what} (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_export(data, path)


def parse_export(data: Any, path: str | Path = "<export>") -> Export:
    if isinstance(data, dict):
        data = [data]  # a single task object
    if not isinstance(data, list):
        raise ExportError(path, f"expected a list of tasks, found a JSON {type(data).__name__}")
    tasks = [_parse_task(item, index, path) for index, item in enumerate(data)]
    return Export(path=str(path), tasks=tasks)


def _where(index: int, task_id: Any) -> str:
    return f"task #{index}" + (f" (id {task_id})" if task_id is not None else "")


def _parse_task(item: Any, index: int, path: str | Path) -> Task:
    if not isinstance(item, dict):
        raise ExportError(path, f"expected a task object, found a JSON {type(item).__name__}", where=f"task #{index}")
    task_id = item.get("id")
    where = _where(index, task_id)
    if "annotations" not in item:
        if _JSON_MIN_KEYS & item.keys():
            raise ExportError(path, "looks like a JSON_MIN export (flat tasks without an `annotations` list)", where=where)
        raise ExportError(path, "task has no `annotations` list", where=where)
    raw_annotations = item["annotations"]
    if not isinstance(raw_annotations, list):
        raise ExportError(path, "`annotations` is not a list", where=where)
    raw_predictions = item.get("predictions") or []
    if not isinstance(raw_predictions, list):
        raise ExportError(path, "`predictions` is not a list", where=where)
    annotations = [_parse_annotation(a, i, task_id, where, path, prediction=False) for i, a in enumerate(raw_annotations)]
    predictions = [_parse_annotation(p, i, task_id, where, path, prediction=True) for i, p in enumerate(raw_predictions)]
    stored = item.get("agreement")
    lse_agreement = float(stored) if isinstance(stored, (int, float)) and not isinstance(stored, bool) else None
    return Task(index=index, id=task_id, project=item.get("project"), annotations=annotations,
                predictions=predictions, lse_agreement=lse_agreement)


def _parse_annotation(obj: Any, index: int, task_id: Any, where: str, path: str | Path, *, prediction: bool) -> Annotation:
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
        return Annotation(id=ann_id, annotator=annotator, raw=obj, is_prediction=True)
    annotator, email = _annotator(obj.get("completed_by"), path, where, label)
    return Annotation(id=ann_id, annotator=annotator, raw=obj, cancelled=bool(obj.get("was_cancelled")), email=email)


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
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ExportError(path, "file not found", hint=None) from None
    except json.JSONDecodeError as exc:
        raise ExportError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                          hint="give one annotation object with a `result` list") from None
    if isinstance(data, list) and all(isinstance(r, dict) for r in data) and not any("annotations" in r for r in data):
        return {"result": data}
    if isinstance(data, dict) and isinstance(data.get("annotations"), list) and data["annotations"]:
        data = data["annotations"][0]
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise ExportError(path, "not an annotation: expected an object with a `result` list",
                          hint="give one annotation object with a `result` list")
    return data
