"""Pack pair jobs into requests that any provider accepts: at most N pairs and at most B bytes each.

A request carries tasks as `{"id", "annotations": [...], "pairs": [[i, j], ...]}` (DESIGN §3.2): every
annotation travels once per task per request, pairs are index pairs into that task's list. A task that
fits moves into a request whole; a task too big for one request is split across requests pair by pair;
a single pair whose two annotations cannot fit in one request is reported back as unsendable.

Sizes are measured as `json.dumps` with its default (widest) separators and ASCII escaping, so they are
an upper bound of any reasonable encoding the provider picks (compact separators, UTF-8).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

DEFAULT_BATCH_PAIRS = 500
# '{"per_label": false, "tasks": []}' plus slack for extra top-level keys a provider may add.
REQUEST_OVERHEAD = 256
# '{"id": , "annotations": [], "pairs": []}, ' without the id itself.
TASK_OVERHEAD = 48
ITEM_SEPARATOR = 2  # ", " between list items


@dataclass(frozen=True)
class PairJob:
    """One pair to score: objects `i` and `j` of task plan `task`; `key` indexes the run's outcomes."""

    task: int
    i: int
    j: int
    key: int


@dataclass
class TaskPlan:
    """What a task sends: its objects (kept annotations, then predictions) with their encoded sizes."""

    id: Any
    objects: list[dict]
    sizes: list[int]

    @classmethod
    def of(cls, task_id: Any, objects: Sequence[dict]) -> "TaskPlan":
        return cls(task_id, list(objects), [encoded_size(obj) for obj in objects])

    @property
    def overhead(self) -> int:
        return TASK_OVERHEAD + encoded_size(self.id)


def encoded_size(obj: Any) -> int:
    return len(json.dumps(obj))


def pair_size(i: int, j: int) -> int:
    return len(f"[{i}, {j}]") + ITEM_SEPARATOR


def build_payload(plans: Sequence[TaskPlan], jobs: Sequence[PairJob], per_label: bool) -> dict:
    """The batch request for `jobs`: consecutive jobs of one task share one task entry."""
    tasks: list[dict] = []
    current = None
    local: dict[int, int] = {}
    for job in jobs:
        if current is None or current[0] != job.task:
            plan = plans[job.task]
            entry = {"id": plan.id, "annotations": [], "pairs": []}
            tasks.append(entry)
            current, local = (job.task, entry), {}
        entry = current[1]
        for index in (job.i, job.j):
            if index not in local:
                local[index] = len(entry["annotations"])
                entry["annotations"].append(plans[job.task].objects[index])
        entry["pairs"].append([local[job.i], local[job.j]])
    return {"per_label": per_label, "tasks": tasks}


def request_size(plans: Sequence[TaskPlan], jobs: Sequence[PairJob]) -> int:
    """Upper bound of the encoded size of `build_payload(plans, jobs)`."""
    size = REQUEST_OVERHEAD
    current = None
    seen: set[int] = set()
    for job in jobs:
        if job.task != current:
            current, seen = job.task, set()
            size += plans[job.task].overhead
        for index in (job.i, job.j):
            if index not in seen:
                seen.add(index)
                size += plans[job.task].sizes[index] + ITEM_SEPARATOR
        size += pair_size(len(seen), len(seen))
    return size


@dataclass
class Unsendable:
    job: PairJob
    size: int
    limit: int

    @property
    def message(self) -> str:
        return (f"RequestTooLarge: this pair's two annotations need {self.size} bytes in one request, "
                f"more than the provider's request limit of {self.limit} bytes")


class _Builder:
    def __init__(self, max_pairs: int, max_bytes: int):
        self.max_pairs, self.max_bytes = max_pairs, max_bytes
        self.requests: list[list[PairJob]] = []
        self._reset()

    def _reset(self) -> None:
        self.jobs: list[PairJob] = []
        self.size = REQUEST_OVERHEAD
        self.task: int | None = None
        self.seen: set[int] = set()

    def flush(self) -> None:
        if self.jobs:
            self.requests.append(self.jobs)
        self._reset()

    def cost(self, plan: TaskPlan, job: PairJob) -> int:
        same_task = self.task == job.task
        cost = 0 if same_task else plan.overhead
        seen = self.seen if same_task else set()
        new = {job.i, job.j} - seen
        cost += sum(plan.sizes[index] + ITEM_SEPARATOR for index in new)
        width = len(seen) + len(new)
        return cost + pair_size(width, width)

    def fits(self, cost: int, pairs: int = 1) -> bool:
        return len(self.jobs) + pairs <= self.max_pairs and self.size + cost <= self.max_bytes

    def add(self, plan: TaskPlan, job: PairJob, cost: int) -> None:
        if self.task != job.task:
            self.task, self.seen = job.task, set()
        self.seen.update((job.i, job.j))
        self.jobs.append(job)
        self.size += cost


def pack(plans: Sequence[TaskPlan], jobs: Iterable[PairJob], *, max_pairs: int = DEFAULT_BATCH_PAIRS,
         max_bytes: int) -> tuple[list[list[PairJob]], list[Unsendable]]:
    """Group `jobs` (ordered by task) into requests; return them and the pairs no request can carry."""
    if max_pairs < 1:
        raise ValueError("max_pairs must be at least 1")
    builder = _Builder(max_pairs, max_bytes)
    unsendable: list[Unsendable] = []
    for task_jobs in _by_task(jobs):
        plan = plans[task_jobs[0].task]
        whole = request_size(plans, task_jobs) - REQUEST_OVERHEAD
        if len(task_jobs) <= max_pairs and REQUEST_OVERHEAD + whole <= max_bytes:
            # The task fits in one request: never split it, start a new request if needed.
            if not builder.fits(whole, len(task_jobs)):
                builder.flush()
            for job in task_jobs:
                builder.add(plan, job, builder.cost(plan, job))
            continue
        for job in task_jobs:
            cost = builder.cost(plan, job)
            if not builder.fits(cost):
                builder.flush()
                cost = builder.cost(plan, job)
                if not builder.fits(cost):
                    unsendable.append(Unsendable(job, REQUEST_OVERHEAD + cost, max_bytes))
                    continue
            builder.add(plan, job, cost)
    builder.flush()
    return builder.requests, unsendable


def _by_task(jobs: Iterable[PairJob]) -> Iterable[list[PairJob]]:
    group: list[PairJob] = []
    for job in jobs:
        if group and group[0].task != job.task:
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def halves(jobs: Sequence[PairJob]) -> tuple[list[PairJob], list[PairJob]]:
    """Split a failed request in two to isolate the pair that made it fail."""
    middle = len(jobs) // 2
    return list(jobs[:middle]), list(jobs[middle:])
