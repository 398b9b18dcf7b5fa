"""Packing pair jobs into requests bounded by pairs and by bytes."""
import json

import pytest

from lse_custom_metrics.runtime.batching import (
    PairJob, TaskPlan, build_body, build_payload, pack, request_size,
)


def annotation(ann_id, size):
    """An annotation whose JSON encoding is about `size` bytes."""
    return {"id": ann_id, "result": [{"from_name": "t", "type": "textarea", "value": {"text": ["x" * size]}}]}


def make(tasks):
    """tasks: list of (task id, [annotation sizes]) -> plans and all-pairs jobs in order."""
    plans, jobs = [], []
    for position, (task_id, sizes) in enumerate(tasks):
        plans.append(TaskPlan.of(task_id, [annotation(f"{task_id}-{k}", s) for k, s in enumerate(sizes)]))
        for i in range(len(sizes)):
            for j in range(i + 1, len(sizes)):
                jobs.append(PairJob(position, i, j, len(jobs)))
    return plans, jobs




def check(plans, requests, jobs, unsendable, limit, per_label=False):
    sent = [job for request in requests for job in request]
    assert sorted(j.key for j in sent + [u.job for u in unsendable]) == [j.key for j in jobs]
    assert sent == [j for j in jobs if j.key in {s.key for s in sent}]  # export order kept
    for request in requests:
        payload = build_payload(plans, request, per_label)
        body = build_body(plans, request, per_label)
        # the assembled body is exactly the dict encoded compactly, and never over the limit
        assert body == json.dumps(payload, separators=(",", ":")).encode()
        assert json.loads(body) == payload
        assert len(body) <= request_size(plans, request) <= limit
        for entry in payload["tasks"]:  # every annotation travels once per task entry
            ids = [a["id"] for a in entry["annotations"]]
            assert len(ids) == len(set(ids))
        assert len({e["id"] for e in payload["tasks"]}) == len(payload["tasks"])  # a task once per request


def test_pair_limit_and_whole_tasks():
    plans, jobs = make([(1, [10, 10, 10]), (2, [10, 10, 10]), (3, [10, 10])])  # 3 + 3 + 1 pairs
    requests, unsendable = pack(plans, jobs, max_pairs=4, max_bytes=6 * 1024 * 1024)
    assert unsendable == []
    # task 2 does not fit after task 1 (3 + 3 > 4), so it starts a new request, task 3 joins it
    assert [[(plans[j.task].id, j.i, j.j) for j in r] for r in requests] == [
        [(1, 0, 1), (1, 0, 2), (1, 1, 2)],
        [(2, 0, 1), (2, 0, 2), (2, 1, 2), (3, 0, 1)],
    ]
    payload = build_payload(plans, requests[1], per_label=True)
    assert payload["per_label"] is True
    assert [(t["id"], len(t["annotations"]), t["pairs"]) for t in payload["tasks"]] == [
        (2, 3, [[0, 1], [0, 2], [1, 2]]), (3, 2, [[0, 1]])]
    check(plans, requests, jobs, unsendable, 6 * 1024 * 1024)


def test_byte_limit_splits_requests_and_never_exceeds_it():
    limit = 20_000
    plans, jobs = make([(t, [3_000] * 3) for t in range(10)])  # ~9 KB per task
    requests, unsendable = pack(plans, jobs, max_pairs=1000, max_bytes=limit)
    assert unsendable == []
    assert [len(r) for r in requests] == [6] * 5  # two whole tasks (~18 KB) per request, never split
    check(plans, requests, jobs, unsendable, limit)


def test_task_too_big_for_one_request_is_split_across_requests():
    limit = 10_000
    plans, jobs = make([(7, [3_000] * 5)])  # 15 KB of annotations, 10 pairs
    requests, unsendable = pack(plans, jobs, max_pairs=1000, max_bytes=limit)
    assert unsendable == []
    assert len(requests) > 1
    for request in requests:  # each part carries only the annotations its pairs use
        payload = build_payload(plans, request, False)
        needed = {index for job in request for index in (job.i, job.j)}
        assert len(payload["tasks"][0]["annotations"]) == len(needed) <= 3
    check(plans, requests, jobs, unsendable, limit)


def test_task_with_more_pairs_than_batch_is_split():
    plans, jobs = make([(1, [5] * 6)])  # 15 pairs
    requests, unsendable = pack(plans, jobs, max_pairs=4, max_bytes=6 * 1024 * 1024)
    assert [len(r) for r in requests] == [4, 4, 4, 3]
    check(plans, requests, jobs, unsendable, 6 * 1024 * 1024)


def test_pair_that_cannot_fit_any_request_is_unsendable():
    limit = 10_000
    plans, jobs = make([(1, [100, 6_000, 6_000]), (2, [100, 100])])
    requests, unsendable = pack(plans, jobs, max_pairs=100, max_bytes=limit)
    assert [(u.job.task, u.job.i, u.job.j) for u in unsendable] == [(0, 1, 2)]
    assert unsendable[0].size > limit
    assert unsendable[0].message.startswith("RequestTooLarge: this pair's two annotations need ")
    assert unsendable[0].message.endswith(f"more than the provider's request limit of {limit} bytes")
    check(plans, requests, jobs, unsendable, limit)


def test_multibyte_text_stays_under_the_limit():
    plans = [TaskPlan.of(1, [{"id": k, "result": [{"value": {"text": ["é漢🙂" * 400]}}]} for k in range(4)])]
    jobs = [PairJob(0, i, j, n) for n, (i, j) in enumerate((i, j) for i in range(4) for j in range(i + 1, 4))]
    requests, unsendable = pack(plans, jobs, max_pairs=100, max_bytes=12_000)
    check(plans, requests, jobs, unsendable, 12_000)


def test_invalid_batch_size():
    with pytest.raises(ValueError):
        pack([], [], max_pairs=0, max_bytes=100)
