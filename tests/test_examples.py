"""The example metrics on the synthetic sentiment export, through the CLI and the local provider.

Expected values are worked out by hand from the choices listed in SAMPLES-PROVENANCE.md, not by calling
the metrics: SCALE Negative 0 / Neutral 0.5 / Positive 1 (near miss = 1 - distance), match weights
Positive 1.0, Negative 1.0, Neutral 0.9; an empty answer against a choice scores 0.
"""
import ast
import re
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lse_custom_metrics.runtime.cli import main

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "examples" / "exports" / "sentiment_3annotators.json"
METRICS = ROOT / "examples" / "metrics"
PYTHON_313 = "/root/.pyenv/versions/3.13.0/bin/python"
NONE_ERROR = "InvalidResult: agreement() returned None (NoneType); expected a real number in [0, 1]"
KEY_ERROR = "KeyError: 'Neutral'"

# task -> [(a, b, score)] for choices_weighted.py, pairs in export order (annotation ids 91001...)
WEIGHTED = {
    501: [(91001, 91002, 1.0), (91001, 91003, 1.0), (91002, 91003, 1.0)],      # P P P
    502: [(91004, 91005, 1.0), (91004, 91006, 0.5), (91005, 91006, 0.5)],      # N N Neu
    503: [(91007, 91008, 0.9), (91007, 91009, 0.9), (91008, 91009, 0.9)],      # Neu Neu Neu
    504: [(91010, 91011, 0.0), (91010, 91012, 0.5), (91011, 91012, 0.5)],      # P N Neu
    505: [(91013, 91014, 0.5), (91013, 91015, 0.9), (91014, 91015, 0.5)],      # Neu P Neu
    506: [(91016, 91018, 0.0)],                                                # P (cancelled) N
    507: [],                                                                   # one annotation
    508: [(91020, 91021, 0.0), (91020, 91022, 1.0), (91021, 91022, 0.0)],      # N (empty) N
}


def score(tmp_path, metric, *options):
    out = tmp_path / "out"
    env = {"LSE_METRICS_HOME": str(tmp_path / "home"), "CUSTOM_METRIC_PROVIDER": "local"}
    result = CliRunner().invoke(main, ["score", str(SENTIMENT), "--metric", str(METRICS / metric), "--out", str(out),
                                       *options], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "agreement.json").read_text()), " ".join(result.output.split())


def pairs_of(document):
    return {t["id"]: [(p["a"], p["b"], p["score"], p["error"]) for p in t["pairs"]] for t in document["tasks"]}


def agreements(document):
    return {t["id"]: t["agreement"] for t in document["tasks"]}


def test_choices_weighted(tmp_path):
    document, output = score(tmp_path, "choices_weighted.py", "--predictions")
    got = pairs_of(document)
    for task, pairs in WEIGHTED.items():
        assert [(a, b, pytest.approx(s), None) for a, b, s in pairs] == got[task]
    expected = {501: 1.0, 502: 2 / 3, 503: 0.9, 504: 1 / 3, 505: 1.9 / 3, 506: 0.0, 507: 1.0, 508: 1 / 3}
    assert agreements(document) == pytest.approx(expected)
    summary = document["summary"]
    assert (summary["tasks"], summary["scored_tasks"], summary["pairs"], summary["errors"]) == (8, 8, 19, 0)
    assert summary["agreement"] == pytest.approx(sum(expected.values()) / 8)
    # annotators 11, 12, 13: pairs 11-12 in 501..505, 508; 11-13 in 501..506, 508; 12-13 in 501..505, 508
    assert document["matrix"] == {"annotators": ["11", "12", "13"], "agreement": [
        [None, pytest.approx(3.4 / 6), pytest.approx(4.8 / 7)],
        [pytest.approx(3.4 / 6), None, pytest.approx(3.4 / 6)],
        [pytest.approx(4.8 / 7), pytest.approx(3.4 / 6), None]]}
    assert document["annotators"]["11"] == {"pairs": 13, "errors": 0, "agreement": pytest.approx((3.4 + 4.8) / 13)}
    # the model predicted P (501), N (504), Neu (505): scored against each kept annotation, apart
    predictions = {t["id"]: [(p["a"], p["b"], p["score"]) for p in t["predictions"]] for t in document["tasks"]}
    assert predictions[501] == [(91001, 701, 1.0), (91002, 701, 1.0), (91003, 701, 1.0)]
    assert predictions[504] == [(91010, 702, 0.0), (91011, 702, 1.0), (91012, 702, 0.5)]
    assert predictions[505] == [(91013, 703, pytest.approx(0.9)), (91014, 703, 0.5), (91015, 703, pytest.approx(0.9))]
    assert summary["prediction_agreement"] == pytest.approx((3 + 1.5 + 2.3) / 9)
    assert "Agreement — project 4242" in output


def test_falls_off_the_end_reports_exactly_the_neutral_matches(tmp_path):
    document, output = score(tmp_path, "choices_weighted_falls_off_end.py")
    errors = [(t, a, b, e) for t, pairs in pairs_of(document).items() for a, b, s, e in pairs if e]
    assert errors == [(503, 91007, 91008, NONE_ERROR), (503, 91007, 91009, NONE_ERROR),
                      (503, 91008, 91009, NONE_ERROR), (505, 91013, 91015, NONE_ERROR)]
    # this copy has no match weights: P-P and N-N score 1.0; Neutral matches are the errors
    expected = {501: 1.0, 502: 2 / 3, 503: None, 504: 1 / 3, 505: 0.5, 506: 0.0, 507: 1.0, 508: 1 / 3}
    assert agreements(document) == pytest.approx(expected)
    summary = document["summary"]
    assert (summary["scored_tasks"], summary["pairs"], summary["errors"]) == (7, 19, 4)
    assert summary["agreement"] == pytest.approx((1 + 2 / 3 + 1 / 3 + 0.5 + 0 + 1 + 1 / 3) / 7)
    assert "Pair errors (4)" in output and "returned None" in output


def test_keyerror_reports_exactly_the_neutral_near_misses(tmp_path):
    document, output = score(tmp_path, "choices_weighted_keyerror.py")
    errors = [(t, a, b, e) for t, pairs in pairs_of(document).items() for a, b, s, e in pairs if e]
    assert errors == [(502, 91004, 91006, KEY_ERROR), (502, 91005, 91006, KEY_ERROR),
                      (504, 91010, 91012, KEY_ERROR), (504, 91011, 91012, KEY_ERROR),
                      (505, 91013, 91014, KEY_ERROR), (505, 91014, 91015, KEY_ERROR)]
    expected = {501: 1.0, 502: 1.0, 503: 0.9, 504: 0.0, 505: 0.9, 506: 0.0, 507: 1.0, 508: 1 / 3}
    assert agreements(document) == pytest.approx(expected)
    assert document["summary"]["errors"] == 6 and document["summary"]["scored_tasks"] == 8
    # 11 is in (502: 11-13), (504: 11-13), (505: 11-12); 12 in (502: 12-13), (504: 12-13), (505: 11-12, 12-13)
    assert [document["annotators"][a]["errors"] for a in ("11", "12", "13")] == [3, 4, 5]
    assert "Pair errors (6)" in output and "KeyError: 'Neutral'" in output


# task -> [(a, b, score, labels)] for choices_weighted_per_label.py: each choice scored from its own point
# of view (both picked: its match weight; only one: CREDIT, Positive/Negative <- Neutral 0.25, Neutral <-
# a polar choice 0.5, opposite polarities 0.0), overall = the mean of the labels' scores
PER_LABEL = {
    501: [(91001, 91002, 1.0, {"Positive": 1.0}), (91001, 91003, 1.0, {"Positive": 1.0}),
          (91002, 91003, 1.0, {"Positive": 1.0})],                                             # P P P
    502: [(91004, 91005, 1.0, {"Negative": 1.0}), (91004, 91006, 0.375, {"Negative": 0.25, "Neutral": 0.5}),
          (91005, 91006, 0.375, {"Negative": 0.25, "Neutral": 0.5})],                          # N N Neu
    503: [(91007, 91008, 0.9, {"Neutral": 0.9}), (91007, 91009, 0.9, {"Neutral": 0.9}),
          (91008, 91009, 0.9, {"Neutral": 0.9})],                                              # Neu Neu Neu
    504: [(91010, 91011, 0.0, {"Positive": 0.0, "Negative": 0.0}),
          (91010, 91012, 0.375, {"Positive": 0.25, "Neutral": 0.5}),
          (91011, 91012, 0.375, {"Negative": 0.25, "Neutral": 0.5})],                          # P N Neu
    505: [(91013, 91014, 0.375, {"Neutral": 0.5, "Positive": 0.25}), (91013, 91015, 0.9, {"Neutral": 0.9}),
          (91014, 91015, 0.375, {"Positive": 0.25, "Neutral": 0.5})],                          # Neu P Neu
    506: [(91016, 91018, 0.0, {"Positive": 0.0, "Negative": 0.0})],                            # P (cancelled) N
    507: [],                                                                                   # one annotation
    508: [(91020, 91021, 0.0, {"Negative": 0.0}), (91020, 91022, 1.0, {"Negative": 1.0}),
          (91021, 91022, 0.0, {"Negative": 0.0})],                                             # N (empty) N
}


def test_per_label_variant(tmp_path):
    document, _ = score(tmp_path, "choices_weighted_per_label.py", "--per-label")
    got = {t["id"]: [(p["a"], p["b"], p["score"], p["labels"]) for p in t["pairs"]] for t in document["tasks"]}
    assert got == {task: [(a, b, pytest.approx(s), pytest.approx(labels)) for a, b, s, labels in pairs]
                   for task, pairs in PER_LABEL.items()}
    assert all(p["error"] is None for t in document["tasks"] for p in t["pairs"])
    expected = {501: 1.0, 502: 1.75 / 3, 503: 0.9, 504: 0.25, 505: 1.65 / 3, 506: 0.0, 507: 1.0, 508: 1 / 3}
    assert agreements(document) == pytest.approx(expected)
    labels = {t["id"]: t["labels"] for t in document["tasks"]}
    assert labels == {
        501: {"Positive": 1.0},
        502: {"Negative": pytest.approx((1.0 + 0.25 + 0.25) / 3), "Neutral": 0.5},
        503: {"Neutral": pytest.approx(0.9)},
        504: {"Negative": 0.125, "Neutral": 0.5, "Positive": 0.125},
        505: {"Neutral": pytest.approx((0.5 + 0.9 + 0.5) / 3), "Positive": 0.25},
        506: {"Negative": 0.0, "Positive": 0.0},
        507: None,
        508: {"Negative": pytest.approx(1 / 3)},
    }
    assert document["summary"]["labels"] == {
        "Negative": pytest.approx((0.5 + 0.125 + 0.0 + 1 / 3) / 4),
        "Neutral": pytest.approx((0.5 + 0.9 + 0.5 + 1.9 / 3) / 4),
        "Positive": pytest.approx((1.0 + 0.125 + 0.25 + 0.0) / 4),
    }
    assert document["summary"]["agreement"] == pytest.approx(sum(expected.values()) / 8)


def test_per_label_variant_differs_from_crediting_the_pair_score():
    """choices_weighted.py credits the pair's one score to every label; the per-label variant does not."""
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(name, METRICS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.agreement

    weighted, per_label = load("choices_weighted"), load("choices_weighted_per_label")

    def pick(*choices):
        return {"result": [{"type": "choices", "value": {"choices": list(choices)}}]}

    p, neu = pick("Positive"), pick("Neutral")
    assert (weighted(p, neu), weighted(p, neu, per_label=True)) == (0.5, {"Positive": 0.5, "Neutral": 0.5})
    assert (per_label(p, neu), per_label(p, neu, per_label=True)) == (0.375, {"Positive": 0.25, "Neutral": 0.5})
    # several choices: choices_weighted.py looks at the first only, the per-label variant at each
    both, one = pick("Positive", "Neutral"), pick("Neutral")
    assert weighted(both, one, per_label=True) == {"Positive": 0.5, "Neutral": 0.5}
    assert per_label(both, one, per_label=True) == {"Positive": 0.25, "Neutral": 0.9}
    assert per_label({"result": []}, {"result": []}, per_label=True) == {}
    assert per_label({"result": []}, {"result": []}) == 1.0


@pytest.mark.parametrize("metric", sorted(p.name for p in METRICS.glob("*.py")))
def test_metrics_are_stdlib_only_and_run_on_python_313(metric):
    tree = ast.parse((METRICS / metric).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"math", "json", "collections", "itertools", "functools", "re"}
    task = json.loads(SENTIMENT.read_text())[0]
    code = (f"import importlib.util, json; s = importlib.util.spec_from_file_location('m', {str(METRICS / metric)!r}); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            f"t = json.loads({json.dumps(json.dumps(task))}); "
            "print(m.agreement(t['annotations'][0], t['annotations'][1]))")
    result = subprocess.run([PYTHON_313, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == 1.0  # both annotators chose Positive


GROWS_ON_91012 = '''

import time as _time


def agreement(annotation_1, annotation_2, per_label=False):
    if 91012 in (annotation_1["id"], annotation_2["id"]):
        held = []
        while True:  # 8 MB every 10 ms, kept: the memory watchdog sees it grow past the limit
            held.append(b"\\x01" * (8 * 1024 * 1024))
            _time.sleep(0.01)
    return _weighted(annotation_1, annotation_2, per_label)
'''


def test_memory_limit_in_a_scoring_run_costs_only_the_allocating_pairs(tmp_path):
    """choices_weighted.py, except that a pair with annotation 91012 (task 504) allocates without end:
    through `score` and the local provider, those two pairs get the memory error, every other pair its
    exact score, and the run finishes."""
    metric = tmp_path / "grows.py"
    metric.write_text((METRICS / "choices_weighted.py").read_text().replace("def agreement(", "def _weighted(")
                      + GROWS_ON_91012)
    document, output = score(tmp_path, metric, "--memory-mb", "128")
    name = document["metric"]["function"]
    log = (tmp_path / "home" / "functions" / name / "function.log").read_text()
    killed = re.findall(r"killed instance pid \d+: memory limit exceeded: (\d+) MB > 128 MB", log)
    errors = {(p["a"], p["b"]): p["error"] for t in document["tasks"] for p in t["pairs"] if p["error"]}
    assert set(errors) == {(91010, 91012), (91011, 91012)}
    for error in errors.values():
        used = re.fullmatch(rf"MemoryLimitExceeded: function {name} \(project 4242\): memory limit exceeded: "
                            r"(\d+) MB > 128 MB; the function was restarted", error).group(1)
        assert used in killed and int(used) > 128
    # the whole batch first (killed), then every pair alone: 2 of those 19 killed too
    assert len(killed) == 3 and document["summary"]["invocations"] == 1 + 19
    expected = {task: [(a, b, pytest.approx(s), None) for a, b, s in pairs if 91012 not in (a, b)]
                for task, pairs in WEIGHTED.items()}
    assert {t: [p for p in pairs if p[3] is None] for t, pairs in pairs_of(document).items()} == expected
    agreements_expected = {501: 1.0, 502: 2 / 3, 503: 0.9, 504: 0.0, 505: 1.9 / 3, 506: 0.0, 507: 1.0, 508: 1 / 3}
    assert agreements(document) == pytest.approx(agreements_expected)  # 504: only 91010-91011 (P vs N) scored
    summary = document["summary"]
    assert (summary["pairs"], summary["errors"], summary["scored_tasks"]) == (19, 2, 8)
    assert "Pair errors (2)" in output
