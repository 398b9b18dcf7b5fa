"""Ctrl-C (SIGINT) and SIGTERM during `lse-metrics score`: a prompt, orderly stop through the real local provider.

Each test runs the console script in a subprocess with a private LSE_METRICS_HOME and a metric that takes
30 s per pair, waits until a pair is being computed, sends the signal and checks: exit 128+signal within
a generous bound, one message line, no function server left (found by the home path in its command
line), no agreement.json written and previous outputs untouched.
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "examples" / "exports" / "sentiment_3annotators.json"
LSE_METRICS = Path(sys.executable).parent / "lse-metrics"

VERY_SLOW_METRIC = """\
import time


def agreement(annotation_1, annotation_2, per_label=False):
    with open({marker!r}, "a") as marker:  # tells the test that a pair is being computed
        marker.write("started\\n")
    time.sleep(30)
    return 1.0
"""


def processes_using(home: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions the state folder (the function servers' bundle path)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(home) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for_a_pair_in_flight(process: subprocess.Popen, marker: Path) -> None:
    """Until the metric has been called (it writes the marker file, then sleeps 30 s)."""
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()[0].decode()
        if time.monotonic() > deadline:
            pytest.fail("the metric was not called within 60 s")
        time.sleep(0.05)


def interrupt_a_run(tmp_path: Path, signum: int) -> tuple[int, float, str, list[int], Path]:
    home, out_dir = tmp_path / "home", tmp_path / "out"
    metric = tmp_path / "very_slow.py"
    marker = tmp_path / "metric-called"
    metric.write_text(VERY_SLOW_METRIC.format(marker=str(marker)))
    env = {**os.environ, "LSE_METRICS_HOME": str(home)}
    env.pop("CUSTOM_METRIC_PROVIDER", None)
    process = subprocess.Popen(
        [str(LSE_METRICS), "score", str(SENTIMENT), "--metric", str(metric), "--out", str(out_dir),
         "--batch-pairs", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_a_pair_in_flight(process, marker)
        time.sleep(0.5)  # well inside the 30 s pair
        sent = time.monotonic()
        process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
        elapsed = time.monotonic() - sent
        left = [p.pid for p in processes_using(home)]  # before the clean-up below could hide one
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        for leftover in processes_using(home):  # never leave servers behind, even when the test fails
            leftover.kill()
    return process.returncode, elapsed, output.decode(), left, out_dir


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_signal_stops_the_run_promptly_and_cleanly(tmp_path, signum, name):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = b'{"schema": "lse-custom-metrics/agreement/1", "summary": {"agreement": 0.5}}\n'
    (out_dir / "agreement.json").write_bytes(previous)
    code, elapsed, output, left, out_dir = interrupt_a_run(tmp_path, signum)
    assert code == 128 + signum, output
    assert elapsed < 20, f"took {elapsed:.1f} s to stop"
    *_, stopped, kept = output.rstrip().splitlines()
    assert stopped == f"interrupted by {name}: stopped the function server, no outputs written"
    # the (small) export had been read entirely when the pair ran: the new function was swapped in, and
    # the user is told it stays
    assert re.fullmatch(r"created custom-metric-4242-\d{10} on local \(the export had been read entirely; the "
                        r"function stays deployed\)", kept), kept
    assert len(list((tmp_path / "home" / "functions").glob("custom-metric-4242-*"))) == 1
    assert "Traceback" not in output and "Aborted!" not in output
    assert left == []
    assert (out_dir / "agreement.json").read_bytes() == previous
    assert sorted(p.name for p in out_dir.iterdir()) == ["agreement.json"]


def test_sigint_with_no_previous_outputs_writes_nothing(tmp_path):
    code, elapsed, output, left, out_dir = interrupt_a_run(tmp_path, signal.SIGINT)
    assert code == 130 and elapsed < 20
    assert not (out_dir / "agreement.json").exists()
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
    assert left == []
