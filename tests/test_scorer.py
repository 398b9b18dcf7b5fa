"""LSE's aggregation rules (DESIGN §3.4) and error isolation, through an in-process fake provider."""
import time
from pathlib import Path

import pytest

from fake_provider import FakeProvider
from lse_custom_metrics.runtime.export import parse_export
from lse_custom_metrics.runtime.scorer import plan_export, score_export

# Score = 1 - |x - y| / 10 of the `rating` numbers; a negative rating raises; relation items are skipped.
# per_label reports the pair score under both rating values' names.
RATING_METRIC = '''
def _rating(annotation):
    values = [r["value"]["number"] for r in annotation["result"] if r.get("from_name") == "rating"]
    if values and values[0] < 0:
        raise ValueError(f"negative rating {values[0]}")
    return values[0] if values else None

def agreement(annotation_1, annotation_2, per_label=False):
    x, y = _rating(annotation_1), _rating(annotation_2)
    if x is None or y is None:
        return 1.0 if x is None and y is None else 0.0
    score = 1 - abs(x - y) / 10
    return {f"r{x}": score, f"r{y}": score} if per_label else score
'''


def rating(value, relation=False):
    result = [{"id": "r1", "from_name": "rating", "to_name": "text", "type": "number", "value": {"number": value}}]
    if relation:
        result.append({"type": "relation", "from_id": "r1", "to_id": "r1", "direction": "right"})
    return result


def ann(ann_id, user, value, cancelled=False, relation=False):
    return {"id": ann_id, "completed_by": user, "was_cancelled": cancelled, "result": rating(value, relation)}


def pred(pred_id, value, version="m1"):
    return {"id": pred_id, "model_version": version, "result": rating(value)}


@pytest.fixture
def metric(tmp_path):
    path = tmp_path / "rating_metric.py"
    path.write_text(RATING_METRIC)
    return path


def run(tasks, metric, provider=None, **options):
    provider = provider or FakeProvider()
    provider.deploy("5", metric)
    export = parse_export(tasks, "t.json")
    document = score_export(export, provider, "5", metric={"path": str(metric)}, **options)
    return document, provider


def by_id(document):
    return {t["id"]: t for t in document["tasks"]}


def test_cancelled_zero_and_one_annotation(metric):
    tasks = [
        {"id": 1, "annotations": []},                                           # 0 -> not scored
        {"id": 2, "annotations": [ann(20, 1, 3, cancelled=True)]},              # 0 kept -> not scored
        {"id": 3, "annotations": [ann(30, 1, 3), ann(31, 2, 9, cancelled=True)]},  # 1 kept -> 1.0
        {"id": 4, "annotations": [ann(40, 1, 2), ann(41, 2, 4, cancelled=True), ann(42, 3, 6)]},
    ]
    document, provider = run(tasks, metric)
    tasks_out = by_id(document)
    assert [tasks_out[i]["agreement"] for i in (1, 2, 3)] == [None, None, 1.0]
    assert [tasks_out[i]["annotations"] for i in (1, 2, 3, 4)] == [0, 0, 1, 2]
    assert tasks_out[3]["pairs"] == [] and tasks_out[4]["cancelled"] == 1
    # cancelled 41 never travels; the one pair is 40 vs 42: 1 - 4/10
    assert [(p["a"], p["b"], p["score"], p["error"]) for p in tasks_out[4]["pairs"]] == [(40, 42, pytest.approx(0.6), None)]
    assert tasks_out[4]["agreement"] == pytest.approx(0.6)
    sent = [a["id"] for payload, _ in provider.requests for t in payload["tasks"] for a in t["annotations"]]
    assert sent == [40, 42]
    summary = document["summary"]
    assert (summary["tasks"], summary["scored_tasks"], summary["pairs"], summary["errors"]) == (4, 2, 1, 0)
    assert summary["agreement"] == pytest.approx((1.0 + 0.6) / 2)  # the single-annotation task counts 1.0


def test_pairs_in_export_order_mean_of_succeeded_and_all_failed(metric):
    tasks = [
        # pairs (a,b), (a,c), (b,c): 1-1/10, error, error -> agreement 0.9
        {"id": 1, "annotations": [ann(10, 1, 5), ann(11, 2, 4), ann(12, 3, -1)]},
        # every pair fails -> null, not scored
        {"id": 2, "annotations": [ann(20, 1, -2), ann(21, 2, -3)]},
    ]
    document, _ = run(tasks, metric)
    t1, t2 = by_id(document)[1], by_id(document)[2]
    assert [(p["a"], p["b"]) for p in t1["pairs"]] == [(10, 11), (10, 12), (11, 12)]
    assert [p["score"] for p in t1["pairs"]] == [pytest.approx(0.9), None, None]
    assert [p["error"] for p in t1["pairs"]] == [None, "ValueError: negative rating -1", "ValueError: negative rating -1"]
    assert t1["agreement"] == pytest.approx(0.9)
    assert t2["agreement"] is None and t2["errors"] == 1
    assert t2["pairs"][0]["error"] == "ValueError: negative rating -2"
    summary = document["summary"]
    assert (summary["scored_tasks"], summary["pairs"], summary["errors"]) == (1, 4, 3)
    assert summary["agreement"] == pytest.approx(0.9)


def test_annotators_and_matrix(metric):
    tasks = [
        {"id": 1, "annotations": [ann(10, 7, 2), ann(11, 8, 4), ann(12, 9, 8)]},  # 7-8 .8, 7-9 .4, 8-9 .6
        {"id": 2, "annotations": [ann(20, 8, 5), ann(21, 7, 5)]},                 # 8-7 1.0
        {"id": 3, "annotations": [ann(30, 9, 1), ann(31, 7, -1)]},                # 9-7 error
    ]
    document, _ = run(tasks, metric)
    assert document["annotators"] == {
        "7": {"pairs": 4, "errors": 1, "agreement": pytest.approx((0.8 + 0.4 + 1.0) / 3)},
        "8": {"pairs": 3, "errors": 0, "agreement": pytest.approx((0.8 + 0.6 + 1.0) / 3)},
        "9": {"pairs": 3, "errors": 1, "agreement": pytest.approx((0.4 + 0.6) / 2)},
    }
    assert document["matrix"]["annotators"] == ["7", "8", "9"]
    assert document["matrix"]["agreement"] == [
        [None, pytest.approx(0.9), pytest.approx(0.4)],
        [pytest.approx(0.9), None, pytest.approx(0.6)],
        [pytest.approx(0.4), pytest.approx(0.6), None],
    ]


def test_int_and_object_completed_by_are_the_same_annotator(metric):
    tasks = [
        {"id": 1, "annotations": [ann(10, 3, 5), ann(11, {"id": 4, "email": "x@example.invalid"}, 5)]},
        {"id": 2, "annotations": [ann(20, {"id": 3, "email": "y@example.invalid"}, 5), ann(21, 4, 0)]},
    ]
    document, _ = run(tasks, metric)
    assert document["matrix"]["annotators"] == ["3", "4"]
    assert document["matrix"]["agreement"][0][1] == pytest.approx((1.0 + 0.5) / 2)
    assert [p["annotator_a"] for t in document["tasks"] for p in t["pairs"]] == ["3", "3"]


def test_relations_travel_unchanged_and_are_ignored_by_the_metric(metric):
    tasks = [{"id": 1, "annotations": [ann(10, 1, 4, relation=True), ann(11, 2, 6)]}]
    document, provider = run(tasks, metric)
    assert document["tasks"][0]["agreement"] == pytest.approx(0.8)
    sent = provider.requests[0][0]["tasks"][0]["annotations"][0]["result"]
    assert sent[1] == {"type": "relation", "from_id": "r1", "to_id": "r1", "direction": "right"}


def test_predictions_are_reported_separately(metric):
    tasks = [
        {"id": 1, "annotations": [ann(10, 1, 4), ann(11, 2, 6)], "predictions": [pred(90, 5), pred(91, 0, "m2")]},
        {"id": 2, "annotations": [ann(20, 1, 2)], "predictions": [pred(92, 2)]},
        {"id": 3, "annotations": [], "predictions": [pred(93, 2)]},  # nothing to compare the prediction with
    ]
    document, _ = run(tasks, metric, predictions=True)
    t1 = by_id(document)[1]
    assert t1["agreement"] == pytest.approx(0.8)  # predictions never mixed in
    assert [(p["a"], p["b"], p["model_version"], p["score"]) for p in t1["predictions"]] == [
        (10, 90, "m1", pytest.approx(0.9)), (10, 91, "m2", pytest.approx(0.6)),
        (11, 90, "m1", pytest.approx(0.9)), (11, 91, "m2", pytest.approx(0.4)),
    ]
    assert t1["prediction_agreement"] == pytest.approx((0.9 + 0.6 + 0.9 + 0.4) / 4)
    assert by_id(document)[2]["agreement"] == 1.0
    assert by_id(document)[2]["predictions"][0]["score"] == 1.0
    assert by_id(document)[3]["predictions"] == []
    summary = document["summary"]
    assert (summary["pairs"], summary["prediction_pairs"], summary["prediction_errors"]) == (1, 5, 0)
    assert summary["prediction_agreement"] == pytest.approx((0.9 + 0.6 + 0.9 + 0.4 + 1.0) / 5)
    assert "model:m1" not in document["annotators"]  # the annotator matrix is people only
    # without --predictions nothing about predictions is scored or sent
    plain, provider = run(tasks, metric)
    assert all(t["predictions"] == [] for t in plain["tasks"])
    assert "prediction_pairs" not in plain["summary"]


def test_per_label_means(metric):
    tasks = [
        {"id": 1, "annotations": [ann(10, 1, 4), ann(11, 2, 6), ann(12, 3, 4)]},  # .8 {r4,r6}; 1.0 {r4}; .8 {r6,r4}
        {"id": 2, "annotations": [ann(20, 1, 4), ann(21, 2, 9)]},                 # .5 {r4, r9}
    ]
    document, _ = run(tasks, metric, per_label=True)
    t1, t2 = by_id(document)[1], by_id(document)[2]
    assert t1["pairs"][0]["labels"] == {"r4": pytest.approx(0.8), "r6": pytest.approx(0.8)}
    assert t1["labels"] == {"r4": pytest.approx((0.8 + 1.0 + 0.8) / 3), "r6": pytest.approx(0.8)}
    assert t2["labels"] == {"r4": 0.5, "r9": 0.5}
    assert document["summary"]["labels"] == {
        "r4": pytest.approx(((0.8 + 1.0 + 0.8) / 3 + 0.5) / 2), "r6": pytest.approx(0.8), "r9": 0.5}
    assert document["per_label"] is True
    plain, _ = run(tasks, metric)
    assert "labels" not in plain["tasks"][0]["pairs"][0] and plain["tasks"][0]["labels"] is None


def test_invoke_error_is_isolated_to_the_offending_pairs(metric):
    tasks = [{"id": t, "annotations": [ann(t * 10 + k, k, k) for k in range(4)]} for t in range(1, 6)]
    provider = FakeProvider(fail_when={32: "Timeout"})  # annotation 32 makes any request carrying it time out
    document, provider = run(tasks, metric, provider=provider, batch_pairs=12)
    errors = [(t["id"], p["a"], p["b"], p["error"]) for t in document["tasks"] for p in t["pairs"] if p["error"]]
    assert errors == [(3, 30, 32, "Timeout: the function failed on a request of 1 pairs"),
                      (3, 31, 32, "Timeout: the function failed on a request of 1 pairs"),
                      (3, 32, 33, "Timeout: the function failed on a request of 1 pairs")]
    t3 = by_id(document)[3]
    # the other three pairs of task 3 are scored: (30,31) .9, (30,33) .7, (31,33) .8
    assert t3["agreement"] == pytest.approx((0.9 + 0.7 + 0.8) / 3)
    assert all(by_id(document)[t]["agreement"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.9 + 0.8 + 0.9) / 6)
               for t in (1, 2, 4, 5))
    assert document["summary"]["errors"] == 3 and document["summary"]["scored_tasks"] == 5
    # requests of 12 pairs: tasks 1+2, 3+4, 5. The second fails as a whole and is retried pair by pair
    # (3 first attempts + 12 single-pair retries, sent at once); no request is split in halves.
    assert document["summary"]["invocations"] == 15
    assert [len([p for t in payload["tasks"] for p in t["pairs"]]) for payload, _ in provider.requests] == [
        12, 12] + [1] * 12 + [6]


def test_unsendable_pair_gets_its_own_error(metric):
    big = "x" * 5000
    tasks = [{"id": 1, "annotations": [ann(10, 1, 4), ann(11, 2, 6), ann(12, 3, 5)]}]
    for a in tasks[0]["annotations"][1:]:
        a["result"].append({"from_name": "note", "type": "textarea", "value": {"text": [big]}})
    provider = FakeProvider(max_request_bytes=9000)
    document, provider = run(tasks, metric, provider=provider)
    pairs = document["tasks"][0]["pairs"]
    assert [p["score"] for p in pairs] == [pytest.approx(0.8), pytest.approx(0.9), None]
    assert pairs[2]["error"].startswith("RequestTooLarge: this pair's two annotations need ")
    assert all(size <= 9000 for _, size in provider.requests)


def test_plan_order():
    export = parse_export([{"id": 1, "annotations": [ann(1, 1, 1), ann(2, 2, 2), ann(3, 3, 3)],
                            "predictions": [pred(9, 1)]}])
    plan = plan_export(export, predictions=True)
    assert [(r.a.id, r.b.id) for r in plan.refs] == [(1, 2), (1, 3), (2, 3), (1, 9), (2, 9), (3, 9)]


def test_concurrent_requests_give_the_same_document(metric):
    tasks = [{"id": t, "annotations": [ann(t * 10 + k, k, (t + k) % 10) for k in range(3)]} for t in range(40)]
    serial, _ = run(tasks, metric, batch_pairs=5)
    parallel, _ = run(tasks, metric, batch_pairs=5, concurrency=3)
    serial["summary"].pop("invocations"), parallel["summary"].pop("invocations")
    assert serial == parallel


def test_encoded_requests_give_the_same_document_and_bytes(metric):
    tasks = [{"id": t, "annotations": [ann(t * 10 + k, k, (t + k) % 10) for k in range(3)],
              "predictions": [pred(900 + t, t % 10)]} for t in range(12)]
    as_dicts, dict_provider = run(tasks, metric, batch_pairs=7, predictions=True, per_label=True)
    as_bytes, byte_provider = run(tasks, metric, batch_pairs=7, predictions=True, per_label=True, encoded=True)
    assert as_dicts == as_bytes
    assert [r for r in dict_provider.requests] == [r for r in byte_provider.requests]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_provider_failure_stops_the_run(metric, concurrency):
    from lse_custom_metrics.runtime.providers.base import ProviderError

    tasks = [{"id": t, "annotations": [ann(t * 10 + k, k, 1) for k in range(3)]} for t in range(30)]
    provider = FakeProvider()
    provider.deploy("5", metric)
    calls = []

    def failing(project_id, payload):
        calls.append(1)
        raise ProviderError("function server could not be started")

    provider.invoke = failing
    with pytest.raises(ProviderError, match="could not be started"):
        score_export(parse_export(tasks), provider, "5", metric={}, batch_pairs=3, concurrency=concurrency)
    assert len(calls) <= concurrency  # the remaining 30 requests are not attempted


SLOW_FOR_ONE = '''
import time

def agreement(annotation_1, annotation_2, per_label=False):
    if 91012 in (annotation_1["id"], annotation_2["id"]):
        time.sleep(5)  # longer than the function's time limit in this test
    return 1.0
'''


def test_timeouts_through_the_local_provider_cost_only_the_offending_pairs(tmp_path):
    from lse_custom_metrics.runtime.export import read_export
    from lse_custom_metrics.runtime.providers.base import RuntimeLimits
    from lse_custom_metrics.runtime.providers.local import LocalProvider

    metric = tmp_path / "slow_for_one.py"
    metric.write_text(SLOW_FOR_ONE)
    export = read_export("examples/exports/sentiment_3annotators.json")
    with LocalProvider(RuntimeLimits(timeout_s=1.0), home=tmp_path / "home") as provider:
        provider.deploy("4242", metric)
        document = score_export(export, provider, "4242", metric={}, encoded=True)
    errors = {(p["a"], p["b"]): p["error"] for t in document["tasks"] for p in t["pairs"] if p["error"]}
    assert set(errors) == {(91010, 91012), (91011, 91012)}  # task 504: the two pairs with annotation 91012
    # The batch times out on the first slow pair (91010, 91012), which alone used up the limit: it gets
    # the Timeout at once; the other 18 pairs go one per request, and (91011, 91012) times out alone.
    assert document["summary"]["invocations"] == 1 + 18
    assert all(e.startswith("Timeout: ") for e in errors.values())
    assert document["summary"]["pairs"] == 19 and document["summary"]["errors"] == 2
    by_task = {t["id"]: t["agreement"] for t in document["tasks"]}
    assert by_task[504] == 1.0 and by_task[507] == 1.0 and by_task[503] == 1.0


SLOW_PAIR = '''
import time

def agreement(annotation_1, annotation_2, per_label=False):
    if {annotation_1["id"], annotation_2["id"]} == {22, 23}:
        time.sleep(30)  # far beyond the function's 2 s limit in this test
    x = annotation_1["result"][0]["value"]["number"]
    y = annotation_2["result"][0]["value"]["number"]
    return 1 - abs(x - y) / 10
'''


@pytest.mark.parametrize("concurrency", [1, 2])
def test_one_slow_pair_costs_exactly_one_timeout(tmp_path, concurrency):
    """The local runtime knows which pair used up the time limit: that pair gets the Timeout, every other
    pair of the batch is sent again alone (quick requests) - one timeout in all, no cascade of them."""
    from lse_custom_metrics.runtime.providers.base import RuntimeLimits
    from lse_custom_metrics.runtime.providers.local import LocalProvider

    metric = tmp_path / "slow_pair.py"
    metric.write_text(SLOW_PAIR)
    values = {10: 1, 11: 3, 12: 4, 13: 8, 20: 2, 21: 2, 22: 5, 23: 9}
    tasks = [{"id": t, "annotations": [ann(a, a % 10, values[a]) for a in range(t * 10, t * 10 + 4)]} for t in (1, 2)]
    with LocalProvider(RuntimeLimits(timeout_s=2.0), home=tmp_path / "home") as provider:
        provider.deploy("77", metric)
        started = time.monotonic()
        document = score_export(parse_export(tasks), provider, "77", metric={}, encoded=True, concurrency=concurrency)
        elapsed = time.monotonic() - started
        function = provider.describe("77")
        log = Path(function.extra["log"]).read_text()
    pairs = {(p["a"], p["b"]): (p["score"], p["error"]) for t in document["tasks"] for p in t["pairs"]}
    assert pairs.pop((22, 23)) == (None, f"Timeout: function {function.name} (project 77): request exceeded "
                                         "the 2 s timeout; the function was restarted")
    expected = {(a, b): 1 - abs(values[a] - values[b]) / 10 for t in (1, 2)
                for a in range(t * 10, t * 10 + 4) for b in range(a + 1, t * 10 + 4) if (a, b) != (22, 23)}
    assert pairs == {key: (pytest.approx(score), None) for key, score in expected.items()}
    assert document["summary"]["invocations"] == 1 + 11  # the batch of 12 pairs, then each other pair alone
    assert log.count("request exceeded the 2 s timeout") == 1
    assert 2.0 <= elapsed < 2.0 + 10.0  # one timeout plus quick requests (and one server restart)


EVERY_PAIR_SLOWISH = '''
import time

def agreement(annotation_1, annotation_2, per_label=False):
    time.sleep(0.5)
    return 0.25
'''


def test_a_batch_too_slow_only_as_a_whole_is_scored_pair_by_pair(tmp_path):
    """5 pairs of 0.5 s each exceed a 1.5 s limit together, none alone: the pair running at the timeout
    had not used the limit by itself, so nobody is blamed and every pair is scored on its own."""
    from lse_custom_metrics.runtime.providers.base import RuntimeLimits
    from lse_custom_metrics.runtime.providers.local import LocalProvider

    metric = tmp_path / "slowish.py"
    metric.write_text(EVERY_PAIR_SLOWISH)
    tasks = [{"id": 1, "annotations": [ann(10, 1, 1), ann(11, 2, 2)]},
             {"id": 2, "annotations": [ann(20, 1, 1), ann(21, 2, 2), ann(22, 3, 3)]},
             {"id": 3, "annotations": [ann(30, 1, 1), ann(31, 2, 2)]}]
    with LocalProvider(RuntimeLimits(timeout_s=1.5), home=tmp_path / "home") as provider:
        provider.deploy("78", metric)
        document = score_export(parse_export(tasks), provider, "78", metric={}, encoded=True)
        log = Path(provider.describe("78").extra["log"]).read_text()
    assert [(p["a"], p["b"], p["score"], p["error"]) for t in document["tasks"] for p in t["pairs"]] == [
        (10, 11, 0.25, None), (20, 21, 0.25, None), (20, 22, 0.25, None), (21, 22, 0.25, None),
        (30, 31, 0.25, None)]
    assert document["summary"]["invocations"] == 1 + 5
    assert log.count("request exceeded the 1.5 s timeout") == 1
