"""Throughput of scoring through the local provider, against the limit of calling the metric directly.

Generates a synthetic but realistic NER export (seeded: the same file every run) in a temporary folder,
then scores it with examples/metrics/lse_ner_taxonomy.py three ways:
  (a) direct   - one process reads the export and calls `agreement` on every pair (the limit);
  (b) local    - `lse-metrics score` end to end through the local provider (deploy included);
  (c) per pair - the same command with one pair per request (how LSE calls its function).
It also measures the handler's cold start (import + first call, Python 3.13 when available) and the
function process's peak RSS during (b).

(b) and (c) run the command as a user does, in a fresh process each time (interpreter start, imports and
exit included) with a fresh state folder (the function is created each time). This machine is noisy (2
shared cores): (a) and (b) run --repeat times (default 3), alternating, and the ratio is of their medians;
one small `score` runs first so the first measured run does not pay for cold disk caches. The last line is:
  RESULT local/direct=<t(a)/t(b)> per_pair/local=<t(c)/t(b)> invocations=<n(b)>/<n(c)> cold_start_ms=<ms> peak_rss_mb=<mb>

Usage: python bench/score_throughput.py [--tasks 2000] [--seed 7] [--repeat 3] [--instances 1] [--skip-per-pair]
                                       [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import json
import os
import pstats
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
METRIC = ROOT / "examples" / "metrics" / "lse_ner_taxonomy.py"
PYTHON_313 = Path("/root/.pyenv/versions/3.13.0/bin/python")
PROJECT = 90210

LABELS = ["Date", "Time", "Person", "Age", "Experience", "Department", "Firearm", "Drugs", "Other_weapon", "Location"]
TAXONOMY = [["Killed", "Feloniously Killed"], ["Killed", "Accidentally Killed"], ["Assignment", "Traffic stop"],
            ["Assignment", "Citizen call"], ["Situation", "Ambush"], ["Situation", "Encounter"], ["Suspect", "Arrested"],
            ["Suspect"], ["Assaulted", "Injured"], ["Assaulted"]]
WORDS = ("officer responded call residence suspect vehicle fired shots department county sheriff deputy "
         "weapon handgun rifle arrested wounded hospital scene investigation evening morning street highway "
         "patrol backup dispatcher witness reported approached fled pursuit struck killed injured years "
         "service veteran").split()


# --- the synthetic export ------------------------------------------------------------------------------

def _region_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))


def _text(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def _annotation(rng, task_id, ann_id, user, text, gold, gold_taxonomy, created):
    """One annotator's version of the gold spans: shifted boundaries, a few misses, extras, relabels."""
    result = []
    for start, end, label in gold:
        if rng.random() < 0.08:
            continue  # missed span
        if rng.random() < 0.25:
            start = max(0, start + rng.randint(-4, 4))
            end = max(start + 1, min(len(text), end + rng.randint(-4, 4)))
        if rng.random() < 0.05:
            label = rng.choice(LABELS)
        result.append(_span(rng, text, start, end, label))
    for _ in range(rng.randint(0, 1)):  # extra spans
        start = rng.randrange(0, len(text) - 20)
        result.append(_span(rng, text, start, start + rng.randint(3, 18), rng.choice(LABELS)))
    taxonomy = [p for p in gold_taxonomy if rng.random() > 0.1] or gold_taxonomy[:1]
    result.append({"id": _region_id(rng), "type": "taxonomy", "value": {"taxonomy": taxonomy}, "origin": "manual",
                   "to_name": "text", "from_name": "Category"})
    return {
        "id": ann_id, "completed_by": {"id": user, "email": f"annotator{user}@example.invalid", "first_name": "",
                                        "last_name": ""},
        "result": result, "was_cancelled": False, "ground_truth": False, "created_at": created, "updated_at": created,
        "draft_created_at": created, "lead_time": round(rng.uniform(30, 900), 3), "prediction": {},
        "result_count": 0, "unique_id": "%032x" % rng.getrandbits(128), "import_id": None,
        "last_action": "submitted", "task": task_id, "project": PROJECT, "updated_by": user,
        "parent_prediction": None, "parent_annotation": None, "last_created_by": user,
    }


def _span(rng, text, start, end, label):
    return {"id": _region_id(rng), "type": "labels",
            "value": {"end": end, "text": text[start:end], "start": start, "labels": [label]},
            "origin": "manual", "to_name": "text", "from_name": "label"}


def generate_export(path: Path, tasks: int, seed: int) -> dict:
    rng = random.Random(seed)
    annotators = list(range(3001, 3009))
    out, ann_id, pairs = [], 5_000_000, 0
    for n in range(tasks):
        task_id = 800_000 + n
        text = _text(rng, rng.randint(500, 800))
        gold = []
        for _ in range(20):
            start = rng.randrange(0, len(text) - 30)
            gold.append((start, start + rng.randint(4, 24), rng.choice(LABELS)))
        gold.sort()
        gold_taxonomy = rng.sample(TAXONOMY, rng.randint(2, 4))
        created = f"2025-0{1 + n % 9}-{1 + n % 28:02d}T12:{n % 60:02d}:00.000000Z"
        people = rng.sample(annotators, rng.randint(3, 5))
        annotations = []
        for user in people:
            ann_id += 1
            annotations.append(_annotation(rng, task_id, ann_id, user, text, gold, gold_taxonomy, created))
        pairs += len(people) * (len(people) - 1) // 2
        out.append({
            "id": task_id, "annotations": annotations, "file_upload": None, "drafts": [], "predictions": [],
            "data": {"text": text}, "meta": {}, "created_at": created, "updated_at": created, "inner_id": n + 1,
            "total_annotations": len(annotations), "cancelled_annotations": 0, "total_predictions": 0,
            "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None,
            "project": PROJECT, "updated_by": people[-1], "comment_authors": [],
        })
    path.write_text(json.dumps(out))
    return {"tasks": tasks, "pairs": pairs, "bytes": path.stat().st_size,
            "annotations": sum(len(t["annotations"]) for t in out)}


# --- (a) the limit ---------------------------------------------------------------------------------------

def direct(export: Path) -> tuple[float, int]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_metric", METRIC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    gc.disable()  # the same tuning the scorer's reader uses: the limit gets it too
    try:
        tasks = json.loads(export.read_text())
    finally:
        gc.enable()
    pairs, means = 0, []
    for task in tasks:
        kept = [a for a in task["annotations"] if not a.get("was_cancelled")]
        scores = [module.agreement(a, b) for a, b in itertools.combinations(kept, 2)]
        pairs += len(scores)
        means.append(sum(scores) / len(scores) if scores else 1.0)
    return time.perf_counter() - started, pairs


# --- (b), (c) the score command -----------------------------------------------------------------------

class PeakRss(threading.Thread):
    """Polls the peak RSS (VmHWM) of the function processes: everything the `score` command started."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._halt.is_set():
            commands = {child.pid for child in me.children()}  # the `score` commands themselves
            for child in me.children(recursive=True):
                if child.pid in commands:
                    continue
                try:
                    with open(f"/proc/{child.pid}/status") as status:
                        for line in status:
                            if line.startswith("VmHWM:"):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    pass
            self._halt.wait(0.02)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_kb / 1024


def score_command(export: Path, out: Path, home: Path, *options: str) -> tuple[float, dict]:
    """`lse-metrics score` as a user runs it: a fresh process (interpreter start and imports included) with
    its own state folder ``home``, so the function is created anew."""
    command = [sys.executable, "-m", "lse_custom_metrics.runtime.cli", "score", str(export), "--metric", str(METRIC),
               "--out", str(out), "--provider", "local", *options]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LSE_METRICS_HOME": str(home)})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:  # a failed run is a benchmark failure
        raise RuntimeError(f"exit {done.returncode}: {done.stderr}")
    return elapsed, json.loads((out / "agreement.json").read_text())


# --- cold start -------------------------------------------------------------------------------------------

COLD_START = r"""
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import main
event = json.loads(sys.argv[2])
reply = main.lambda_handler(event, None)
elapsed = (time.perf_counter() - started) * 1000
print(json.dumps({"ms": elapsed, "reply": reply}))
"""


def cold_start_ms(export: Path, workdir: Path, runs: int = 5) -> tuple[float, str]:
    from lse_custom_metrics.runtime.bundle import build_bundle

    bundle_dir = build_bundle(METRIC).write_dir(workdir / "bundle")
    task = json.loads(export.read_text())[0]
    event = json.dumps({"annotation_1": task["annotations"][0], "annotation_2": task["annotations"][1], "per_label": False})
    python = str(PYTHON_313) if PYTHON_313.exists() else sys.executable
    timings = []
    for _ in range(runs):
        result = subprocess.run([python, "-I", "-c", COLD_START, str(bundle_dir), event], capture_output=True,
                                text=True, timeout=60, cwd=workdir)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        if "score" not in json.dumps(answer["reply"]):
            raise RuntimeError(f"cold start call failed: {answer}")
        timings.append(answer["ms"])
    timings.sort()
    return timings[len(timings) // 2], python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and of (b), alternating; medians")
    parser.add_argument("--instances", type=int, default=1, help="local function instances for (b) (LSE: 1)")
    parser.add_argument("--batch-pairs", type=int, default=None)
    parser.add_argument("--skip-per-pair", action="store_true", help="skip (c) (it takes a while)")
    parser.add_argument("--profile", action="store_true",
                        help="also run (b) once in this process under cProfile (untimed) and print the top")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lse-bench-"))
    os.environ["LSE_METRICS_HOME"] = str(workdir / "home")
    os.environ.pop("CUSTOM_METRIC_PROVIDER", None)
    try:
        export = workdir / "synthetic_ner_export.json"
        facts = generate_export(export, args.tasks, args.seed)
        print(f"export: {facts['tasks']} tasks, {facts['annotations']} annotations, {facts['pairs']} pairs, "
              f"{facts['bytes'] / 1e6:.1f} MB ({export})")

        options = ["--instances", str(args.instances)]
        if args.batch_pairs:
            options += ["--batch-pairs", str(args.batch_pairs)]
        warm_up = workdir / "warm_up_export.json"
        generate_export(warm_up, 50, args.seed + 1)
        started = time.perf_counter()
        score_command(warm_up, workdir / "out-warm-up", workdir / "home-warm-up", *options)
        print(f"warm-up: `score` of a 50-task export: {time.perf_counter() - started:.2f} s")

        times_a, times_b, peaks = [], [], []
        for run in range(1, args.repeat + 1):
            time_a, pairs_a = direct(export)
            times_a.append(time_a)
            watch = PeakRss()
            watch.start()
            # a fresh state folder each run: every (b) creates the project's function, as a first run does
            time_b, document_b = score_command(export, workdir / "out-local", workdir / f"home-{run}", *options)
            peaks.append(watch.stop())
            times_b.append(time_b)
            summary = document_b["summary"]
            n_local = summary["invocations"]
            assert summary["pairs"] == pairs_a and summary["errors"] == 0, summary
            print(f"run {run}: (a) direct {time_a:5.2f} s  (b) local {time_b:5.2f} s  ratio {time_a / time_b:.2f}")
        time_a, time_b, peak_mb = statistics.median(times_a), statistics.median(times_b), max(peaks)
        print(f"(a) direct:   {time_a:6.2f} s  {pairs_a / time_a:8.0f} pairs/s  (median of {args.repeat})")
        print(f"(b) local:    {time_b:6.2f} s  {pairs_a / time_b:8.0f} pairs/s  {n_local} requests, "
              f"function peak RSS {peak_mb:.0f} MB  (median of {args.repeat})")
        if args.profile:  # one more (b), untimed, in this process so that cProfile sees the command's side
            from lse_custom_metrics.runtime.cli import main as cli_main

            os.environ["LSE_METRICS_HOME"] = str(workdir / "home-profile")
            profiler = cProfile.Profile()
            sink = io.StringIO()
            with redirect_stdout(sink), redirect_stderr(sink):
                profiler.enable()
                cli_main(["score", str(export), "--metric", str(METRIC), "--out", str(workdir / "out-profile"),
                          "--provider", "local", *options], standalone_mode=False)
                profiler.disable()
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)

        if args.skip_per_pair:
            time_c, n_pair = float("nan"), pairs_a
            print("(c) per pair: skipped")
        else:
            time_c, document_c = score_command(export, workdir / "out-per-pair", workdir / "home-per-pair",
                                               "--batch-pairs", "1")
            n_pair = document_c["summary"]["invocations"]
            assert document_c["summary"]["agreement"] == summary["agreement"]
            print(f"(c) per pair: {time_c:6.2f} s  {pairs_a / time_c:8.0f} pairs/s  {n_pair} requests")

        cold_ms, python = cold_start_ms(export, workdir)
        print(f"cold start (import + first call, {python}): {cold_ms:.0f} ms (median of 5)")
        print(f"RESULT local/direct={time_a / time_b:.2f} per_pair/local={time_c / time_b:.2f} "
              f"invocations={n_local}/{n_pair} cold_start_ms={cold_ms:.0f} peak_rss_mb={peak_mb:.0f}")
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
