"""Score a Label Studio export with a deployed metric function, aggregated the way LSE does (DESIGN §3.4).

* Cancelled annotations are dropped. 0 left: the task is not scored (null). 1 left: agreement 1.0.
* Every unordered pair i < j in export order is scored; task agreement = mean of the pair scores that
  succeeded (null when all failed).
* With predictions: every kept annotation vs every prediction, reported apart, never mixed in.
* Per annotator: mean over the pairs involving them. Matrix: mean per annotator pair.
* summary.agreement = mean of the non-null task agreements.

A request the function cannot answer as a whole (`InvokeError`: timeout, memory limit, crash; or a reply
that does not match it) is sent again one pair per request, pipelined like the first attempt, so only
the pair(s) responsible get the error. When the provider names the pair responsible (`pair_index`: the
local runtime does for a pair that alone used up the time limit), that pair gets the error at once and
only the others are sent again: one slow pair costs one timeout plus one quick request per other pair of
its batch. A failing pair never sinks a batch, a failing batch never the run.
"""
from __future__ import annotations

import collections
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from lse_custom_metrics.runtime.batching import (
    DEFAULT_BATCH_PAIRS, PairJob, TaskPlan, Unsendable, build_body, build_payload, iter_requests,
)
from lse_custom_metrics.runtime.export import Annotation, Export, Task
from lse_custom_metrics.runtime.providers.base import InvokeError, MetricProvider

SCHEMA = "lse-custom-metrics/agreement/1"


@dataclass
class PairOutcome:
    score: float | None = None
    labels: dict[str, float] | None = None
    error: str | None = None
    error_where: str | None = None  # "metric.py:12 in agreement" for a metric exception
    labels_error: str | None = None  # scored, but the per_label=True call failed


@dataclass(frozen=True)
class PairRef:
    """Which two objects a pair job compares (b is a prediction for annotation-vs-prediction pairs)."""

    task: int
    a: Annotation
    b: Annotation

    @property
    def is_prediction(self) -> bool:
        return self.b.is_prediction


@dataclass
class ScoringPlan:
    plans: list[TaskPlan] = field(default_factory=list)  # one per task, in export order
    jobs: list[PairJob] = field(default_factory=list)
    refs: list[PairRef] = field(default_factory=list)  # indexed by PairJob.key

    def add_task(self, task: Task, *, predictions: bool = False) -> list[PairJob]:
        """Plan the next task's pairs (annotation pairs i < j in export order, then vs predictions)."""
        position = len(self.plans)
        kept = task.kept
        objects = kept + (task.predictions if predictions else [])
        self.plans.append(TaskPlan.of(task.id, [obj.raw for obj in objects], [obj.raw_json for obj in objects]))
        pairs = [(i, j) for i in range(len(kept)) for j in range(i + 1, len(kept))]
        if predictions and kept:
            pairs += [(i, len(kept) + p) for i in range(len(kept)) for p in range(len(task.predictions))]
        new = []
        for i, j in pairs:
            job = PairJob(position, i, j, len(self.refs))
            new.append(job)
            self.refs.append(PairRef(position, objects[i], objects[j]))
        self.jobs.extend(new)
        return new


def plan_export(export: Export, *, predictions: bool = False) -> ScoringPlan:
    """The pairs to score for every task, in export order."""
    plan = ScoringPlan()
    for task in export.tasks:
        plan.add_task(task, predictions=predictions)
    return plan


class BadReply(Exception):
    """The function answered, but not with one result per pair it was sent."""


def _parse_result(result: Any, per_label: bool) -> PairOutcome:
    if not isinstance(result, dict):
        return PairOutcome(error=f"BadReply: result is {type(result).__name__}, not an object")
    error = result.get("error")
    if error is not None:
        if isinstance(error, dict):
            where = error.get("where")
            return PairOutcome(error=_error_text(error), error_where=where if isinstance(where, str) else None)
        return PairOutcome(error=f"Error: {error}")
    score = result.get("score")
    if not _is_unit(score):
        return PairOutcome(error=f"BadReply: score {score!r} is not a number in [0, 1]")
    labels = None
    if per_label:
        labels_error = result.get("labels_error")
        if labels_error is not None:
            text = _error_text(labels_error) if isinstance(labels_error, dict) else f"Error: {labels_error}"
            return PairOutcome(score=float(score), labels_error=text)
        labels = result.get("labels")
        if not isinstance(labels, dict) or not all(_is_unit(v) for v in labels.values()):
            return PairOutcome(error=f"BadReply: labels {labels!r} is not a dict of numbers in [0, 1]")
        labels = {str(k): float(v) for k, v in labels.items()}
    return PairOutcome(score=float(score), labels=labels)


def _error_text(error: dict) -> str:
    return f"{error.get('type', 'Error')}: {error.get('message', '')}"


def _is_unit(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _sent_tasks(plans: Sequence[TaskPlan], jobs: Sequence[PairJob]) -> list[tuple[Any, int]]:
    """(task id, number of pairs) of every task entry of the request built from `jobs`."""
    sent: list[list] = []
    previous = None
    for job in jobs:
        if job.task != previous:
            sent.append([plans[job.task].id, 0])
            previous = job.task
        sent[-1][1] += 1
    return [(task_id, count) for task_id, count in sent]


def parse_reply(sent: Sequence[tuple[Any, int]], reply: Any, jobs: Sequence[PairJob], per_label: bool) -> list[PairOutcome]:
    """One outcome per job, in order; BadReply when the reply does not match the request."""
    if not isinstance(reply, dict) or not isinstance(reply.get("tasks"), list):
        raise BadReply(f"reply has no `tasks` list: {str(reply)[:200]}")
    if len(reply["tasks"]) != len(sent):
        raise BadReply(f"reply has {len(reply['tasks'])} tasks, the request had {len(sent)}")
    outcomes: list[PairOutcome] = []
    for (task_id, count), reply_task in zip(sent, reply["tasks"]):
        results = reply_task.get("results") if isinstance(reply_task, dict) else None
        if not isinstance(results, list) or len(results) != count:
            raise BadReply(f"task {task_id}: expected {count} results")
        if reply_task.get("id") != task_id:
            raise BadReply(f"reply task id {reply_task.get('id')!r} != request task id {task_id!r}")
        outcomes.extend(_parse_result(result, per_label) for result in results)
    if len(outcomes) != len(jobs):
        raise BadReply(f"{len(outcomes)} results for {len(jobs)} pairs")
    return outcomes


class Scorer:
    """Sends a plan's pairs to the project's function and collects one outcome per pair.

    `concurrency` requests are prepared and sent at once; with `encoded`, requests go to the provider
    as ready JSON bytes (assembled from each annotation's bytes, encoded once), which providers that
    accept encoded payloads (`local`) forward as they are. A worker thus builds its request while
    another one's is being answered.
    """

    def __init__(self, provider: MetricProvider, project_id: str, *, per_label: bool = False,
                 batch_pairs: int = DEFAULT_BATCH_PAIRS, concurrency: int = 1, encoded: bool = False,
                 on_progress: Callable[[int], None] | None = None):
        self.provider, self.project_id = provider, str(project_id)
        self.encoded = encoded
        self.per_label, self.batch_pairs = per_label, batch_pairs
        self.concurrency = max(1, concurrency)
        self.on_progress = on_progress or (lambda n: None)
        self.invocations = 0
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._retries: collections.deque[Future] = collections.deque()  # single-pair retries in flight

    def run(self, plan: ScoringPlan, jobs: Iterable[PairJob] | None = None) -> list[PairOutcome]:
        """Score `jobs` (default: all of the plan's; an iterator may extend the plan as it goes)."""
        outcomes: dict[int, PairOutcome] = {}
        requests = iter_requests(plan.plans, plan.jobs if jobs is None else jobs, max_pairs=self.batch_pairs,
                                 max_bytes=self.provider.max_request_bytes)
        if self.concurrency == 1:
            for item in requests:
                self._dispatch(plan, item, outcomes, None)
        else:
            # Requests are packed (and their annotations encoded) here while the workers send earlier ones.
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="lse-score") as pool:
                self._pool = pool
                futures = []
                for item in requests:
                    if self._failure is not None:
                        break
                    futures.append(self._dispatch(plan, item, outcomes, pool))
                for future in futures:
                    if future is not None:
                        future.result()
                # A failed request queues its retries before its own future completes, so once every
                # first attempt is done the deque holds (or has held) all retries.
                while self._retries:
                    self._retries.popleft().result()
                self._pool = None
            if self._failure is not None:
                raise self._failure  # the provider failed as a whole: the run cannot finish
        missing = PairOutcome(error="NotScored: no result")
        return [outcomes.get(key, missing) for key in range(len(plan.refs))]

    def _dispatch(self, plan: ScoringPlan, item, outcomes: list, pool):
        if isinstance(item, Unsendable):
            outcomes[item.job.key] = PairOutcome(error=item.message)
            self.on_progress(1)
            return None
        if pool is None:
            self._send(plan, item, outcomes)
            return None
        return pool.submit(self._guarded_send, plan, item, outcomes)

    def _guarded_send(self, plan: ScoringPlan, jobs: list[PairJob], outcomes: list) -> None:
        if self._failure is not None:
            return  # another request already found the provider unusable
        try:
            self._send(plan, jobs, outcomes)
        except BaseException as exc:
            self._failure = exc
            raise

    def _send(self, plan: ScoringPlan, jobs: list[PairJob], outcomes: list) -> None:
        if self.encoded:
            payload = build_body(plan.plans, jobs, self.per_label)
        else:
            payload = build_payload(plan.plans, jobs, self.per_label)
        with self._lock:
            self.invocations += 1
        try:
            reply = self.provider.invoke(self.project_id, payload)
            results = parse_reply(_sent_tasks(plan.plans, jobs), reply, jobs, self.per_label)
        except InvokeError as exc:
            error = f"{exc.kind}: {exc}"
            culprit = exc.pair_index
            if len(jobs) > 1 and culprit is not None and 0 <= culprit < len(jobs):
                # The provider knows which pair caused it (e.g. it alone used up the time limit): that
                # pair gets the error without another attempt, the others are sent again.
                outcomes[jobs[culprit].key] = PairOutcome(error=error)
                self.on_progress(1)
                self._retry_alone(plan, jobs[:culprit] + jobs[culprit + 1:], outcomes)
            else:
                self._isolate(plan, jobs, outcomes, error)
            return
        except BadReply as exc:
            self._isolate(plan, jobs, outcomes, f"BadReply: {exc}")
            return
        for job, outcome in zip(jobs, results):
            outcomes[job.key] = outcome
        self.on_progress(len(jobs))

    def _isolate(self, plan: ScoringPlan, jobs: list[PairJob], outcomes: list, error: str) -> None:
        """A request failed as a whole: its only pair gets the error, or each pair is retried alone.

        Retrying one pair per request (rather than halving) costs one failure per offending pair plus one
        quick request per innocent one; halving would cost log2(batch) failures (minutes of timeouts).
        """
        if len(jobs) == 1:
            outcomes[jobs[0].key] = PairOutcome(error=error)
            self.on_progress(1)
            return
        self._retry_alone(plan, jobs, outcomes)

    def _retry_alone(self, plan: ScoringPlan, jobs: list[PairJob], outcomes: list) -> None:
        """Send each job as a request of its own, through the pool when there is one."""
        pool = self._pool
        for job in jobs:
            if pool is None:
                self._send(plan, [job], outcomes)
            else:
                self._retries.append(pool.submit(self._guarded_send, plan, [job], outcomes))


# --- aggregation ---------------------------------------------------------------------------------------

def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _label_means(label_dicts: Sequence[dict[str, float]]) -> dict[str, float] | None:
    """Per label: the mean over the dicts that report it (None when no dict is given)."""
    if not label_dicts:
        return None
    collected: dict[str, list[float]] = {}
    for labels in label_dicts:
        for label, value in labels.items():
            collected.setdefault(label, []).append(value)
    return {label: sum(v) / len(v) for label, v in sorted(collected.items())}


def _pair_entry(ref: PairRef, outcome: PairOutcome, per_label: bool) -> dict:
    entry: dict[str, Any] = {"a": ref.a.id, "b": ref.b.id, "score": outcome.score}
    if per_label:
        if outcome.labels_error is None:
            entry["labels"] = outcome.labels
        else:  # scored; only its per-label result is missing
            entry["labels_error"] = outcome.labels_error
    entry["error"] = outcome.error
    if outcome.error_where is not None:
        entry["error_where"] = outcome.error_where
    entry["annotator_a"] = ref.a.annotator
    entry["annotator_b"] = ref.b.annotator
    return entry


def _annotator_sort_key(name: str):
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


@dataclass
class _TaskTally:
    pairs: list[dict] = field(default_factory=list)
    predictions: list[dict] = field(default_factory=list)


def aggregate(export: Export, plan: ScoringPlan, outcomes: Sequence[PairOutcome], *, project: Any,
              metric: dict, per_label: bool = False, predictions: bool = False) -> dict:
    """Build the `agreement.json` document (schema lse-custom-metrics/agreement/1)."""
    tallies = [_TaskTally() for _ in export.tasks]
    annotator_scores: dict[str, list[float]] = {}
    annotator_pairs: dict[str, int] = {}
    annotator_errors: dict[str, int] = {}
    cell_scores: dict[tuple[str, str], list[float]] = {}
    for ref, outcome in zip(plan.refs, outcomes):
        entry = _pair_entry(ref, outcome, per_label)
        if ref.is_prediction:
            entry["model_version"] = ref.b.raw.get("model_version")
            tallies[ref.task].predictions.append(entry)
            continue
        tallies[ref.task].pairs.append(entry)
        people = (ref.a.annotator, ref.b.annotator)
        for person in set(people):
            annotator_pairs[person] = annotator_pairs.get(person, 0) + 1
            if outcome.error is None:
                annotator_scores.setdefault(person, []).append(outcome.score)
            else:
                annotator_errors[person] = annotator_errors.get(person, 0) + 1
        if outcome.error is None:
            cell_scores.setdefault(tuple(sorted(people, key=_annotator_sort_key)), []).append(outcome.score)

    tasks_out = [_task_entry(task, tally, per_label, predictions) for task, tally in zip(export.tasks, tallies)]
    scored = [t["agreement"] for t in tasks_out if t["agreement"] is not None]
    annotation_pairs = [p for t in tasks_out for p in t["pairs"]]
    prediction_pairs = [p for t in tasks_out for p in t["predictions"]]
    summary: dict[str, Any] = {
        "tasks": len(tasks_out),
        "scored_tasks": len(scored),
        "pairs": len(annotation_pairs),
        "errors": sum(1 for p in annotation_pairs if p["error"] is not None),
        "label_errors": sum(1 for p in annotation_pairs if "labels_error" in p),
        "agreement": _mean(scored),
    }
    if predictions:
        prediction_scores = [p["score"] for p in prediction_pairs if p["error"] is None]
        summary["prediction_pairs"] = len(prediction_pairs)
        summary["prediction_errors"] = len(prediction_pairs) - len(prediction_scores)
        summary["prediction_agreement"] = _mean(prediction_scores)
        summary["prediction_label_errors"] = sum(1 for p in prediction_pairs if "labels_error" in p)
    if per_label:
        summary["labels"] = _label_means([t["labels"] for t in tasks_out if t["labels"]])

    names = sorted(set(annotator_pairs), key=_annotator_sort_key)
    annotators = {
        name: {"pairs": annotator_pairs[name], "errors": annotator_errors.get(name, 0),
               "agreement": _mean(annotator_scores.get(name, []))}
        for name in names
    }
    matrix = [[_mean(cell_scores.get(tuple(sorted((r, c), key=_annotator_sort_key)), [])) for c in names]
              for r in names]
    return {
        "schema": SCHEMA,
        "project": str(project),
        "metric": metric,
        "per_label": per_label,
        "predictions": predictions,
        "summary": summary,
        "tasks": tasks_out,
        "annotators": annotators,
        "matrix": {"annotators": names, "agreement": matrix},
    }


def _task_entry(task: Task, tally: _TaskTally, per_label: bool, predictions: bool) -> dict:
    kept = len(task.kept)
    succeeded = [p for p in tally.pairs if p["error"] is None]
    if kept == 0:
        agreement = None
    elif kept == 1:
        agreement = 1.0  # LSE shows 100 for a task with a single annotation
    else:
        agreement = _mean([p["score"] for p in succeeded])
    entry: dict[str, Any] = {
        "id": task.id,
        "annotations": kept,
        "cancelled": len(task.annotations) - kept,
        "agreement": agreement,
        "pairs": tally.pairs,
        "predictions": tally.predictions,
        "labels": _label_means([p["labels"] for p in succeeded if p.get("labels") is not None]) if per_label else None,
        "errors": len(tally.pairs) - len(succeeded),
    }
    if predictions:
        entry["prediction_agreement"] = _mean([p["score"] for p in tally.predictions if p["error"] is None])
    if task.lse_agreement is not None:
        entry["lse_agreement"] = task.lse_agreement / 100.0
    return entry


def score_export(export: Export, provider: MetricProvider, project_id: Any, *, metric: dict,
                 per_label: bool = False, predictions: bool = False, batch_pairs: int = DEFAULT_BATCH_PAIRS,
                 concurrency: int = 1, encoded: bool = False, on_progress: Callable[[int], None] | None = None,
                 plan: ScoringPlan | None = None, incoming: Iterator[Task] | None = None,
                 on_planned: Callable[[int], None] | None = None) -> dict:
    """Score every pair of the export through `provider` and return the agreement document.

    With `incoming`, tasks still being read are appended to `export.tasks` and scored as they arrive, so
    the function works while the rest of the export is parsed; `on_planned(n)` reports the pairs known.
    """
    scorer = Scorer(provider, str(project_id), per_label=per_label, batch_pairs=batch_pairs,
                    concurrency=concurrency, encoded=encoded, on_progress=on_progress)
    if incoming is None:
        plan = plan or plan_export(export, predictions=predictions)
        outcomes = scorer.run(plan)
    else:
        plan = ScoringPlan()

        def jobs_as_read() -> Iterator[PairJob]:
            for task in incoming:
                export.tasks.append(task)
                new = plan.add_task(task, predictions=predictions)
                if on_planned is not None:
                    on_planned(len(plan.refs))
                yield from new

        outcomes = scorer.run(plan, jobs_as_read())
    document = aggregate(export, plan, outcomes, project=project_id, metric=metric,
                         per_label=per_label, predictions=predictions)
    document["summary"]["invocations"] = scorer.invocations
    return document
