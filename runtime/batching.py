"""Pack pair jobs into requests that any provider accepts: at most N pairs and at most B bytes each.

A request carries tasks as `{"id", "annotations": [...], "pairs": [[i, j], ...]}` (DESIGN §3.2): every
annotation travels once per task per request, pairs are index pairs into that task's list. A task that
fits moves into a request whole; a task too big for one request is split across requests pair by pair;
a single pair whose two annotations cannot fit in one request is reported back as unsendable.

Each annotation is encoded once — its text from the export file as is when the reader kept it, else
compact ASCII JSON (`separators=(",", ":")`) — and a request body is assembled from those bytes
(`build_body`), so sizes are exact and nothing is encoded again per request. `build_payload` gives the
same request as a dict for providers that take dicts (it decodes to the same value as the body).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

DEFAULT_BATCH_PAIRS = 500
# '{"per_label":false,"tasks":[]}' plus slack for extra top-level keys a provider may add.
REQUEST_OVERHEAD = 64
# '{"id":,"annotations":[],"pairs":[]},' without the id itself.
TASK_OVERHEAD = 37
ITEM_SEPARATOR = 1  # "," between list items


@dataclass(frozen=True)
class PairJob:
    """One pair to score: objects `i` and `j` of task plan `task`; `key` indexes the run's outcomes."""

    task: int
    i: int
    j: int
    key: int


@dataclass
class TaskPlan:
    """What a task sends: its objects (kept annotations, then predictions), each encoded once.

    Encoding happens on first use, so requests can go out while later tasks are still being encoded.
    """

    id: Any
    objects: list[dict]
    texts: list[str | None] | None = None  # the objects' JSON as exported, when known: sent as is
    _encoded: list[bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, task_id: Any, objects: Sequence[dict], texts: Sequence[str | None] | None = None) -> "TaskPlan":
        return cls(task_id, list(objects), list(texts) if texts is not None else None)

    @property
    def encoded(self) -> list[bytes]:
        if self._encoded is None:
            texts = self.texts or [None] * len(self.objects)
            self._encoded = [text.encode("utf-8") if text is not None else encode(obj)
                             for obj, text in zip(self.objects, texts)]
        return self._encoded

    @property
    def sizes(self) -> list[int]:
        return [len(data) for data in self.encoded]

    @property
    def overhead(self) -> int:
        return TASK_OVERHEAD + len(encode(self.id))


def encode(obj: Any) -> bytes:
    """Compact ASCII JSON: its length in characters is its length in bytes."""
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


def pair_size(i: int, j: int) -> int:
    return len(f"[{i},{j}]") + ITEM_SEPARATOR


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


def build_body(plans: Sequence[TaskPlan], jobs: Sequence[PairJob], per_label: bool) -> bytes:
    """The encoded request for `jobs`, assembled from the annotations' encoded bytes."""
    entries: list[bytes] = []
    current = None
    for job in jobs:
        if current is None or current[0] != job.task:
            if current is not None:
                entries.append(_entry(plans[current[0]], current[1], current[2]))
            current = (job.task, {}, [])
        local, pairs = current[1], current[2]
        for index in (job.i, job.j):
            if index not in local:
                local[index] = len(local)
        pairs.append(f"[{local[job.i]},{local[job.j]}]")
    if current is not None:
        entries.append(_entry(plans[current[0]], current[1], current[2]))
    flag = b"true" if per_label else b"false"
    return b'{"per_label":' + flag + b',"tasks":[' + b",".join(entries) + b"]}"


def _entry(plan: TaskPlan, local: dict[int, int], pairs: list[str]) -> bytes:
    annotations = b",".join(plan.encoded[index] for index in local)  # dicts keep insertion order
    return (b'{"id":' + encode(plan.id) + b',"annotations":[' + annotations + b'],"pairs":['
            + ",".join(pairs).encode("ascii") + b"]}")


def request_size(plans: Sequence[TaskPlan], jobs: Sequence[PairJob]) -> int:
    """Upper bound of `len(build_body(plans, jobs, per_label))`."""
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
                size += len(plans[job.task].encoded[index]) + ITEM_SEPARATOR
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
        self._reset()

    def _reset(self) -> None:
        self.jobs: list[PairJob] = []
        self.size = REQUEST_OVERHEAD
        self.task: int | None = None
        self.seen: set[int] = set()

    def flush(self) -> Iterator[list[PairJob]]:
        jobs = self.jobs
        self._reset()
        if jobs:
            yield jobs

    def cost(self, plan: TaskPlan, job: PairJob) -> int:
        same_task = self.task == job.task
        cost = 0 if same_task else plan.overhead
        seen = self.seen if same_task else set()
        new = {job.i, job.j} - seen
        cost += sum(len(plan.encoded[index]) + ITEM_SEPARATOR for index in new)
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
    requests: list[list[PairJob]] = []
    unsendable: list[Unsendable] = []
    for item in iter_requests(plans, jobs, max_pairs=max_pairs, max_bytes=max_bytes):
        (unsendable if isinstance(item, Unsendable) else requests).append(item)
    return requests, unsendable


def iter_requests(plans: Sequence[TaskPlan], jobs: Iterable[PairJob], *, max_pairs: int = DEFAULT_BATCH_PAIRS,
                  max_bytes: int) -> Iterator[list[PairJob] | Unsendable]:
    """Like `pack`, yielding each request (or unsendable pair) as soon as it is complete."""
    if max_pairs < 1:
        raise ValueError("max_pairs must be at least 1")
    builder = _Builder(max_pairs, max_bytes)
    for task_jobs in _by_task(jobs):
        plan = plans[task_jobs[0].task]
        whole = request_size(plans, task_jobs) - REQUEST_OVERHEAD
        if len(task_jobs) <= max_pairs and REQUEST_OVERHEAD + whole <= max_bytes:
            # The task fits in one request: never split it, start a new request if needed.
            if not builder.fits(whole, len(task_jobs)):
                yield from builder.flush()
            for job in task_jobs:
                builder.add(plan, job, builder.cost(plan, job))
            continue
        for job in task_jobs:
            cost = builder.cost(plan, job)
            if not builder.fits(cost):
                yield from builder.flush()
                cost = builder.cost(plan, job)
                if not builder.fits(cost):
                    yield Unsendable(job, REQUEST_OVERHEAD + cost, max_bytes)
                    continue
            builder.add(plan, job, cost)
    yield from builder.flush()


def _by_task(jobs: Iterable[PairJob]) -> Iterable[list[PairJob]]:
    group: list[PairJob] = []
    for job in jobs:
        if group and group[0].task != job.task:
            yield group
            group = []
        group.append(job)
    if group:
        yield group
