"""The local provider: real functions-framework servers on 127.0.0.1, LSE's limits, scrubbed env.

Every test gets its own LSE_METRICS_HOME; every server started is stopped (and checked gone).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from lse_custom_metrics.runtime.providers import (
    FunctionNotDeployed,
    FunctionStatus,
    InvokeError,
    MetricLoadError,
    ProviderError,
    RuntimeLimits,
    function_name,
    get_provider,
    is_project_function,
    name_matches_project,
)
from lse_custom_metrics.runtime.providers.local import LocalProvider

METRICS = Path(__file__).resolve().parent / "fixtures" / "metrics"
REPO = Path(__file__).resolve().parent.parent
S = FunctionStatus


def choice(c: str, **extra) -> dict:
    return {"result": [{"type": "choices", "value": {"choices": [c]}}], **extra}


P, N, U = choice("Positive"), choice("Negative"), choice("Neutral")
PLAIN = {"result": []}


@pytest.fixture
def home(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("LSE_METRICS_HOME", str(state))
    return state


@pytest.fixture
def providers(home):
    """Factory of providers on the test's home; all closed afterwards and their servers verified gone."""
    made: list[LocalProvider] = []

    def make(**options) -> LocalProvider:
        provider = LocalProvider(**options)
        made.append(provider)
        return provider

    yield make
    pids = [s.proc.pid for p in made for pool in p._pools.values() for s in pool.servers if s.proc]
    for provider in made:
        provider.close()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def metric_copy(tmp_path: Path, fixture: str, name: str = "metric.py") -> Path:
    target = tmp_path / "src" / name
    target.parent.mkdir(exist_ok=True)
    shutil.copy(METRICS / f"{fixture}.py", target)
    return target


def server_pids(provider: LocalProvider) -> list[int]:
    return [s.proc.pid for pool in provider._pools.values() for s in pool.servers if s.alive]


def batch(*tasks, per_label=False) -> dict:
    return {"per_label": per_label, "tasks": list(tasks)}


# --- names and choosing a provider ------------------------------------------------------------------------

def test_function_names_and_project_matching():
    assert function_name(1, 1764700000.9) == "custom-metric-1-1764700000"
    assert function_name("abc_2", 5) == "custom-metric-abc_2-5"
    assert name_matches_project("custom-metric-1-1764700000", 1)
    assert not name_matches_project("custom-metric-12-1764700000", 1)
    assert not name_matches_project("custom-metric-1-2-1764700000", 1)  # project "1-2"'s function
    assert name_matches_project("custom-metric-1-2-1764700000", "1-2")
    assert not name_matches_project("custom-metric-1-", 1)
    assert is_project_function("custom-metric-1-1764700000", "1", 1)
    assert not is_project_function("custom-metric-1-1764700000", "12", 1)  # name says 1, record says 12
    assert not is_project_function("custom-metric-1-1764700000", None, 1)
    with pytest.raises(ValueError, match=r"project id 'a b' cannot be used in a function name"):
        function_name("a b")
    with pytest.raises(ValueError, match=r"longer than 63 characters"):
        function_name("x" * 50, 1764700000)


def test_get_provider_choice(monkeypatch, home):
    monkeypatch.delenv("CUSTOM_METRIC_PROVIDER", raising=False)
    provider = get_provider()
    assert isinstance(provider, LocalProvider) and provider.home == home
    monkeypatch.setenv("CUSTOM_METRIC_PROVIDER", "gcp")
    with pytest.raises(ProviderError) as caught:
        get_provider()
    assert str(caught.value) == (
        "the 'gcp' provider (Google Cloud Functions) is not implemented in this version of lse-custom-metrics "
        "yet; use --provider local (or CUSTOM_METRIC_PROVIDER=local) to run the same function on this machine")
    assert isinstance(get_provider("local"), LocalProvider)  # an explicit name wins over the variable
    with pytest.raises(ProviderError, match=r"the 'aws' provider \(AWS Lambda\) is not implemented"):
        get_provider("aws")
    with pytest.raises(ProviderError) as caught:
        get_provider("azure")
    assert str(caught.value) == "unknown provider 'azure': allowed values are local, aws, gcp"
    monkeypatch.setenv("CUSTOM_METRIC_PROVIDER", "lambda")
    with pytest.raises(ProviderError) as caught:
        get_provider()
    assert str(caught.value) == "unknown CUSTOM_METRIC_PROVIDER 'lambda': allowed values are local, aws, gcp"
    with pytest.raises(ProviderError, match="instances must be a positive integer, got 0"):
        get_provider("local", instances=0)


# --- lifecycle ----------------------------------------------------------------------------------------------

def test_deploy_invoke_redeploy_same_and_changed(providers, home, tmp_path):
    metric = metric_copy(tmp_path, "choices")
    provider = providers()
    before = time.time()
    created = provider.deploy(7, metric)
    info = created.function
    assert created.action == "created"
    assert re.fullmatch(r"custom-metric-7-(\d+)", info.name)
    assert int(before) <= int(info.name.rsplit("-", 1)[1]) <= time.time()
    assert (info.status, info.project_id, info.provider) == (S.ACTIVE, "7", "local")
    folder = home / "functions" / info.name
    record = json.loads((folder / "function.json").read_text())
    assert record["project_id"] == "7" and record["name"] == info.name
    assert record["code_sha256"] == info.code_sha256 and record["files"] == ["main.py", "metric.py"]
    assert record["state"] == "Deployed" and record["created"] == record["updated"]
    assert (folder / "bundle" / "metric.py").read_bytes() == metric.read_bytes()

    payload = batch({"id": 1, "annotations": [P, P, N, U, U], "pairs": [[0, 1], [0, 2], [3, 4]]})
    assert provider.invoke(7, payload) == {"tasks": [{"id": 1, "results": [
        {"score": 0.99}, {"score": 0.0},
        {"error": {"type": "KeyError", "message": "'Neutral'", "where": "metric.py:16 in agreement"}}]}]}
    pids = server_pids(provider)
    assert len(pids) == 1

    same = provider.deploy(7, metric)
    assert same.action == "unchanged"
    assert (same.function.name, same.function.code_sha256) == (info.name, info.code_sha256)
    assert server_pids(provider) == pids  # kept warm
    assert json.loads((folder / "function.json").read_text())["updated"] == record["updated"]

    metric.write_text(metric.read_text().replace('"Negative": 0.7', '"Negative": 0.7, "Neutral": 0.5'))
    changed = provider.deploy(7, metric)
    assert changed.action == "updated"
    assert changed.function.name == info.name and changed.function.code_sha256 != info.code_sha256
    assert changed.function.status == S.ACTIVE
    assert server_pids(provider) != pids  # restarted on the new code
    assert provider.invoke(7, payload) == {"tasks": [{"id": 1, "results": [
        {"score": 0.99}, {"score": 0.0}, {"score": 0.5}]}]}
    record = json.loads((folder / "function.json").read_text())
    assert record["updated"] > record["created"] and record["code_sha256"] == changed.function.code_sha256
    assert [f.name for f in provider.list()] == [info.name]


def test_status_through_every_local_state(providers, home, tmp_path):
    metric = metric_copy(tmp_path, "choices")
    provider = providers()
    assert provider.status(3) == S.NOT_DEPLOYED
    deployed = provider.deploy(3, metric, start=False)
    assert (deployed.action, deployed.function.status) == ("created", S.INACTIVE)
    assert provider.start(3, wait=False) == S.PENDING
    assert provider.wait_ready(3) == S.ACTIVE
    # another provider (e.g. another CLI process) sees the running server through its run record
    assert providers().status(3) == S.ACTIVE
    provider.stop(3)
    assert provider.status(3) == S.INACTIVE
    # the first invoke starts the server again
    assert provider.invoke(3, {"annotation_1": P, "annotation_2": P}) == {"score": 0.99}
    assert provider.status(3) == S.ACTIVE

    # a metric that cannot be imported: deploy refuses it, the working function stays exactly as it was
    name = provider.describe(3).name
    before = (provider.describe(3).code_sha256, server_pids(provider))
    broken = metric_copy(tmp_path, "import_error", "broken.py")
    message = "line 2: ModuleNotFoundError: No module named 'lse_package_that_does_not_exist'"
    with pytest.raises(MetricLoadError) as refused:
        provider.deploy(3, broken)
    assert str(refused.value) == f"{broken} {message} (function {name} keeps its previous code)"
    assert isinstance(refused.value, ProviderError) and isinstance(refused.value, ValueError)
    assert (provider.describe(3).code_sha256, server_pids(provider)) == before
    assert provider.status(3) == S.ACTIVE
    assert provider.invoke(3, {"annotation_1": N, "annotation_2": N}) == {"score": 0.7}
    folder = home / "functions" / name
    assert (folder / "bundle" / "metric.py").read_bytes() == metric.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["bundle", "function.json", "function.log", "home", "run"]
    assert f"deploy refused: {broken} {message}" in (folder / "function.log").read_text()
    # deploy without waiting: Pending, and the first invoke waits for the server
    provider.stop(3)
    pending = provider.deploy(3, metric, wait=False)
    assert (pending.action, pending.function.status) == ("unchanged", S.PENDING)
    assert provider.invoke(3, {"annotation_1": P, "annotation_2": N}) == {"score": 0.0}
    provider.stop(3)
    # Failed: the bundle broke after its deploy (edited in place); its server answers every pair why
    (folder / "bundle" / "metric.py").write_bytes(broken.read_bytes())
    assert provider.start(3) == S.FAILED
    assert provider.describe(3).extra["error"] == f"metric.py {message}"
    assert provider.invoke(3, batch({"id": 1, "annotations": [P, N], "pairs": [[0, 1]]})) == {
        "tasks": [{"id": 1, "results": [{"error": {"type": "MetricLoadError", "message": f"metric.py {message}"}}]}]}
    provider.stop(3)
    assert provider.status(3) == S.FAILED  # remembered in function.json while nothing runs
    fixed = provider.deploy(3, metric)
    assert (fixed.action, fixed.function.status, fixed.function.extra["error"]) == ("updated", S.ACTIVE, None)
    provider.stop(3)

    folder = home / "functions" / fixed.function.name
    record = (folder / "function.json").read_text()
    (folder / "function.json").write_text("{ truncated")
    assert provider.status(3) == S.ERROR
    with pytest.raises(ProviderError, match=r"function\.json is unreadable; run `lse-metrics delete --project 3`"):
        provider.deploy(3, metric)
    (folder / "function.json").write_text(record)
    shutil.rmtree(folder / "bundle")
    assert provider.status(3) == S.NOT_FOUND
    with pytest.raises(ProviderError) as caught:  # not a traceback from starting a server in no folder
        provider.invoke(3, {"annotation_1": P, "annotation_2": P})
    assert str(caught.value) == (
        f"function {fixed.function.name} (project 3) is NotFound: its code in {folder / 'bundle'} is missing "
        "or incomplete; deploy the metric again (lse-metrics deploy --project 3 --metric FILE)")
    assert provider.deploy(3, metric).action == "updated"  # a redeploy restores the bundle
    assert provider.status(3) == S.ACTIVE
    assert provider.delete(3) is True
    assert provider.status(3) == S.NOT_DEPLOYED


@pytest.mark.parametrize("fixture, message", [
    ("raises_on_import", "line 4: KeyError: 'Positive'"),
    ("not_callable", "defines no function `agreement(annotation_1, annotation_2, per_label=False)`"),
])
def test_first_deploy_of_a_broken_metric_deploys_nothing(providers, home, tmp_path, fixture, message):
    provider = providers()
    broken = metric_copy(tmp_path, fixture, "loaderr.py")
    with pytest.raises(MetricLoadError) as refused:
        provider.deploy(4242, broken)
    assert str(refused.value) == f"{broken} {message} (nothing was deployed)"
    assert provider.status(4242) == S.NOT_DEPLOYED and provider.list() == []
    assert list((home / "functions").iterdir()) == []  # no staging folder left behind
    assert provider._pools == {}


def test_load_probe_enforces_the_memory_limit(providers, home, tmp_path):
    hog = tmp_path / "hog.py"
    hog.write_text("BLOCK = bytearray(200 * 1024 * 1024)\n\ndef agreement(a, b, per_label=False):\n    return 1.0\n")
    provider = providers(limits=RuntimeLimits(memory_mb=128))
    with pytest.raises(MetricLoadError) as refused:
        provider.deploy(5, hog)
    assert str(refused.value) == f"{hog}: loading it used more than the 128 MB memory limit (nothing was deployed)"


def test_project_1_never_sees_project_12(providers, home, tmp_path):
    metric = metric_copy(tmp_path, "choices")
    provider = providers()
    twelve = provider.deploy(12, metric, start=False).function
    assert provider.status(1) == S.NOT_DEPLOYED
    with pytest.raises(FunctionNotDeployed, match="project 1 has no metric function on the local provider"):
        provider.invoke(1, {"annotation_1": P, "annotation_2": P})
    with pytest.raises(FunctionNotDeployed):
        provider.logs(1)
    assert provider.delete(1) is False
    # a folder named like project 1's whose record says project 12 is not project 1's either
    impostor = home / "functions" / "custom-metric-1-1000000000"
    shutil.copytree(home / "functions" / twelve.name, impostor)
    assert provider.status(1) == S.NOT_DEPLOYED
    one = provider.deploy(1, metric, start=False)
    assert one.action == "created" and one.function.name.startswith("custom-metric-1-")
    assert one.function.name != impostor.name
    assert {(f.name, f.project_id) for f in provider.list()} == {
        (twelve.name, "12"), (one.function.name, "1"), (impostor.name, "12")}
    assert provider.delete(1) is True
    assert (home / "functions" / twelve.name).is_dir() and impostor.is_dir()
    assert provider.status(12) == S.INACTIVE


def test_delete_stops_server_and_removes_folder(providers, home, tmp_path):
    provider = providers()
    info = provider.deploy(5, metric_copy(tmp_path, "choices")).function
    pid = server_pids(provider)[0]
    assert provider.delete(5) is True
    assert not (home / "functions" / info.name).exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert provider.delete(5) is False
    assert provider.list() == []
    with pytest.raises(FunctionNotDeployed):
        provider.invoke(5, {"annotation_1": P, "annotation_2": P})


# --- staged deploys: the new code answers before it is deployed; discard leaves no trace -----------------

def folder_state(folder: Path) -> dict:
    """Every file of a function folder (runtime records and the log aside) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.parts[len(folder.parts)] not in ("run", "function.log")}


def test_staged_first_deploy_serves_before_it_exists_and_discard_leaves_nothing(providers, home, tmp_path):
    provider = providers()
    staged = provider.stage(7, metric_copy(tmp_path, "choices"))
    assert (staged.action, staged.function.status) == ("created", S.PENDING)
    assert provider.invoke(7, {"annotation_1": P, "annotation_2": P}) == {"score": 0.99}  # the staged code
    assert provider.status(7) == S.NOT_DEPLOYED and provider.list() == []  # ... of no function yet
    assert providers().status(7) == S.NOT_DEPLOYED  # nor for another process
    (pid,) = [s.proc.pid for s in staged.pool.servers]
    staged.discard()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert list((home / "functions").iterdir()) == []
    with pytest.raises(FunctionNotDeployed):
        provider.invoke(7, {"annotation_1": P, "annotation_2": P})
    staged.discard()  # twice: nothing more to do


def test_staged_first_deploy_commit_keeps_its_warm_server(providers, home, tmp_path):
    provider = providers()
    staged = provider.stage(7, metric_copy(tmp_path, "choices"))
    assert provider.invoke(7, {"annotation_1": N, "annotation_2": N}) == {"score": 0.7}
    (pid,) = [s.proc.pid for s in staged.pool.servers]
    result = staged.commit()
    assert (result.action, result.function.name, result.function.status) == ("created", staged.function.name,
                                                                              S.ACTIVE)
    folder = home / "functions" / result.function.name
    record = json.loads((folder / "function.json").read_text())
    assert (record["project_id"], record["code_sha256"], record["state"]) == ("7", staged.function.code_sha256,
                                                                              "Deployed")
    assert server_pids(provider) == [pid]  # the staged server is now the function's: no restart
    assert provider.invoke(7, {"annotation_1": P, "annotation_2": P}) == {"score": 0.99}
    # the server was started in the staging folder: that path now leads to the function's folder
    staging = home / "functions" / f".staging-{os.getpid()}-{result.function.name}"
    assert staging.is_symlink() and staging.resolve() == folder.resolve()
    assert "agreement: 0 task(s), 1 pair(s)" in (folder / "function.log").read_text()
    provider.close()
    assert sorted(p.name for p in (home / "functions").iterdir()) == [result.function.name]  # link removed
    with pytest.raises(ProviderError, match="already committed or discarded"):
        staged.commit()


@pytest.mark.parametrize("depth", ["short", "deep"])
def test_servers_open_no_gunicorn_control_socket(providers, tmp_path, monkeypatch, depth):
    # gunicorn >= 25 opens a control socket under the function's HOME a moment after it starts serving.
    # Nothing uses it; in a deep state folder its path is over AF_UNIX's limit and it logs an ERROR line
    # ("Control server error: AF_UNIX path too long") into every function's log.
    home = tmp_path / ("s" if depth == "short" else "state-" + "d" * 60)
    monkeypatch.setenv("LSE_METRICS_HOME", str(home))
    provider = providers()
    provider.stage(7, metric_copy(tmp_path, "choices"))
    assert provider.invoke(7, {"annotation_1": N, "annotation_2": N}) == {"score": 0.7}
    (log,) = home.glob("functions/*/function.log")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        sockets = list(home.glob("functions/*/home/.gunicorn"))
        assert sockets == [] and "Control server" not in log.read_text()
        time.sleep(0.05)


def test_staged_update_serves_the_new_code_and_discard_keeps_the_old(providers, home, tmp_path):
    metric = metric_copy(tmp_path, "choices")
    provider = providers()
    info = provider.deploy(7, metric, start=False).function
    folder = home / "functions" / info.name
    before = folder_state(folder)
    metric.write_text(metric.read_text().replace('"Negative": 0.7', '"Negative": 0.7, "Neutral": 0.5'))
    staged = provider.stage(7, metric)
    assert staged.action == "updated" and staged.function.name == info.name
    assert provider.invoke(7, {"annotation_1": U, "annotation_2": U}) == {"score": 0.5}  # the staged code
    assert provider.describe(7).code_sha256 == info.code_sha256  # the function still has the old
    staged.discard()
    assert folder_state(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["bundle", "function.json", "function.log", "home", "run"]
    assert provider.invoke(7, {"annotation_1": U, "annotation_2": U})["error"]["type"] == "KeyError"

    staged = provider.stage(7, metric)
    assert provider.invoke(7, {"annotation_1": U, "annotation_2": U}) == {"score": 0.5}
    (pid,) = [s.proc.pid for s in staged.pool.servers]
    result = staged.commit()
    assert (result.action, result.function.code_sha256) == ("updated", staged.function.code_sha256)
    assert (folder / "bundle" / "metric.py").read_bytes() == metric.read_bytes()
    assert server_pids(provider) == [pid]
    assert provider.invoke(7, {"annotation_1": U, "annotation_2": U}) == {"score": 0.5}
    provider.close()
    assert sorted(p.name for p in folder.iterdir()) == ["bundle", "function.json", "function.log", "home", "run"]


def test_staging_left_by_a_dead_process_is_removed(providers, home, tmp_path):
    provider = providers()
    info = provider.deploy(7, metric_copy(tmp_path, "choices"), start=False).function
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    leftovers = [home / "functions" / f".staging-{dead}-custom-metric-8-1700000000",
                 home / "functions" / info.name / f".bundle-staged-{dead}-1",
                 home / "functions" / info.name / f".bundle-old-{dead}-2"]
    for leftover in leftovers:
        (leftover / "bundle").mkdir(parents=True)
    mine = home / "functions" / f".staging-{os.getpid()}-custom-metric-9-1700000000"
    mine.mkdir()
    providers()
    assert [leftover.exists() for leftover in leftovers] == [False, False, False]
    assert mine.is_dir()  # a live process's staging is left alone


def test_logs_hold_invocation_lines(providers, home, tmp_path):
    provider = providers()
    provider.deploy(2, metric_copy(tmp_path, "choices"))
    provider.invoke(2, batch({"id": 1, "annotations": [P, N, U], "pairs": [[0, 1], [1, 2]]}))
    provider.invoke(2, batch({"id": 1, "annotations": [U, U], "pairs": [[0, 1]]}))
    entries = provider.logs(2)
    invocations = [(e.severity, e.message) for e in entries if e.message.startswith("agreement:")]
    assert [(sev, re.sub(r"[\d.]+ ms$", "ms", msg)) for sev, msg in invocations] == [
        ("INFO", "agreement: 1 task(s), 2 pair(s), 0 error(s), ms"),
        ("WARNING", "agreement: 1 task(s), 1 pair(s), 1 error(s), ms")]
    assert entries[0].message.startswith("started instance pid ")
    # The only error is the metric's own (KeyError for 'Neutral'): not gunicorn's control socket failing
    # in a deep state folder, nor anything else of the server's.
    errors = [e.message for e in entries if e.severity not in ("INFO", "WARNING")]
    assert len(errors) == 1 and errors[0].endswith("KeyError: 'Neutral'"), errors
    assert "Control server" not in next(home.glob("functions/*/function.log")).read_text()
    assert all(abs(e.timestamp - time.time()) < 120 for e in entries)
    assert [e.message for e in provider.logs(2, limit=1)] == [entries[-1].message]


def test_bad_and_oversized_requests(providers, tmp_path):
    provider = providers()
    provider.deploy(4, metric_copy(tmp_path, "choices"))
    with pytest.raises(InvokeError) as caught:
        provider.invoke(4, {"tasks": [{"id": 1, "annotations": [P], "pairs": [[0, 1]]}]})
    assert caught.value.kind == "BadRequest"
    assert str(caught.value).endswith(
        "the function rejected the request: tasks[0] (id 1).pairs[0] index 1 is out of range for 1 annotation(s)")
    with pytest.raises(InvokeError) as caught:
        provider.invoke(4, b"x" * (6 * 1024 * 1024 + 1))
    assert caught.value.kind == "RequestTooLarge"
    # already-encoded JSON is sent as is
    assert provider.invoke(4, json.dumps({"annotation_1": N, "annotation_2": N}).encode()) == {"score": 0.7}


# --- limits: only the offending request fails, the next one is served ------------------------------------

def test_timeout_kills_restarts_and_next_invoke_works(providers, tmp_path):
    provider = providers(limits=RuntimeLimits(timeout_s=2))
    provider.deploy(8, metric_copy(tmp_path, "behaviours"))
    first_pid = server_pids(provider)[0]
    started = time.monotonic()
    with pytest.raises(InvokeError) as caught:
        provider.invoke(8, batch({"id": 1, "annotations": [{"sleep_s": 30, "result": []}, PLAIN], "pairs": [[0, 1]]}))
    elapsed = time.monotonic() - started
    assert caught.value.kind == "Timeout"
    assert "request exceeded the 2 s timeout" in str(caught.value)
    assert 2.0 <= elapsed < 6.0
    assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE
    assert provider.invoke(8, batch({"id": 1, "annotations": [PLAIN, PLAIN], "pairs": [[0, 1]]})) == {
        "tasks": [{"id": 1, "results": [{"score": 1.0}]}]}
    assert any("killed instance pid" in e.message and "timeout" in e.message for e in provider.logs(8))


def test_memory_limit_growth_and_spike(providers, tmp_path):
    provider = providers(limits=RuntimeLimits(memory_mb=160))
    provider.deploy(9, metric_copy(tmp_path, "behaviours"))
    baseline = provider.memory_peak_mb(9)
    assert 20 < baseline < 140, baseline  # the framework's own share of the limit
    ok = batch({"id": 1, "annotations": [PLAIN, PLAIN], "pairs": [[0, 1]]})
    # well under the limit: served
    assert provider.invoke(9, batch({"id": 1, "annotations": [{"spike_mb": 8, "result": []}, PLAIN], "pairs": [[0, 1]]})) \
        == {"tasks": [{"id": 1, "results": [{"score": 1.0}]}]}
    # growing allocation: the watchdog kills it mid-request
    started = time.monotonic()
    with pytest.raises(InvokeError) as caught:
        provider.invoke(9, batch({"id": 1, "annotations": [{"grow_mb": 2000, "result": []}, PLAIN], "pairs": [[0, 1]]}))
    assert caught.value.kind == "MemoryLimitExceeded"
    assert re.search(r"memory limit exceeded: \d+ MB > 160 MB", str(caught.value))
    assert time.monotonic() - started < 10
    assert provider.invoke(9, ok) == {"tasks": [{"id": 1, "results": [{"score": 1.0}]}]}
    # a spike freed before returning: the resident high-water mark still gives it away
    with pytest.raises(InvokeError) as caught:
        provider.invoke(9, batch({"id": 1, "annotations": [{"spike_mb": 300, "result": []}, PLAIN], "pairs": [[0, 1]]}))
    assert caught.value.kind == "MemoryLimitExceeded"
    assert provider.invoke(9, ok) == {"tasks": [{"id": 1, "results": [{"score": 1.0}]}]}


def test_crash_is_reported_and_next_invoke_works(providers, tmp_path):
    provider = providers()
    provider.deploy(10, metric_copy(tmp_path, "behaviours"))
    with pytest.raises(InvokeError) as caught:
        provider.invoke(10, {"annotation_1": {"exit": 3, "result": []}, "annotation_2": PLAIN})
    assert caught.value.kind == "FunctionCrashed"
    assert provider.invoke(10, {"annotation_1": PLAIN, "annotation_2": PLAIN}) == {"score": 1.0}


CRASHING = """
import os, signal, sys


def agreement(annotation_1, annotation_2, per_label=False):
    how = annotation_1.get("crash")
    if how == "warn":
        print('{"severity": "WARNING", "message": "weights table is stale"}', flush=True)
        print("about to give up", file=sys.stderr, flush=True)
        os._exit(7)
    if how == "exit":
        os._exit(1)
    if how == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    return 1.0
"""


def test_crash_message_gives_the_exit_code_or_signal_and_only_noteworthy_output(providers, tmp_path):
    metric = tmp_path / "crashing.py"
    metric.write_text(CRASHING)
    provider = providers()
    name = provider.deploy(10, metric).function.name
    label = f"function {name} (project 10)"
    for _ in range(5):  # routine INFO lines in the log before the crash: none of them is quoted
        assert provider.invoke(10, {"annotation_1": PLAIN, "annotation_2": PLAIN}) == {"score": 1.0}

    def crash(how):
        provider.start(10)  # the last crash stopped the server: the next request would start it
        pid = provider._pools[name].servers[0].tree()[1].pid  # the gunicorn worker that runs the metric
        with pytest.raises(InvokeError) as caught:
            provider.invoke(10, {"annotation_1": {"crash": how, "result": []}, "annotation_2": PLAIN})
        assert caught.value.kind == "FunctionCrashed"
        return str(caught.value), pid

    message, pid = crash("exit")
    assert message == (f"{label}: the function process crashed while handling the request: its worker process "
                       f"(pid {pid}) exited with code 1; the function was restarted")
    message, pid = crash("warn")
    assert message == (f"{label}: the function process crashed while handling the request: its worker process "
                       f"(pid {pid}) exited with code 7; the function was restarted; its output: weights table "
                       "is stale | about to give up")
    message, pid = crash("segv")
    assert message == (f"{label}: the function process crashed while handling the request: its worker process "
                       f"(pid {pid}) was killed by SIGSEGV; the function was restarted")
    assert provider.invoke(10, {"annotation_1": PLAIN, "annotation_2": PLAIN}) == {"score": 1.0}
    log = provider.logs(10, limit=0)
    assert any(e.message.endswith(f"crashed while handling a request: its worker process (pid {pid}) was killed "
                                  "by SIGSEGV") for e in log)


def test_dead_server_is_restarted_and_broken_bundle_fails(providers, home, tmp_path):
    provider = providers()
    info = provider.deploy(16, metric_copy(tmp_path, "choices")).function
    (pid,) = server_pids(provider)
    os.killpg(pid, 9)  # killed behind the provider's back
    deadline = time.monotonic() + 5
    while provider.status(16) != S.INACTIVE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.status(16) == S.INACTIVE
    assert provider.invoke(16, {"annotation_1": N, "annotation_2": N}) == {"score": 0.7}
    assert server_pids(provider) != [pid] and provider.status(16) == S.ACTIVE
    # a bundle whose main.py cannot even be imported: the server exits while starting
    provider.stop(16)
    (home / "functions" / info.name / "bundle" / "main.py").write_text("def agreement_handler(:\n")
    with pytest.raises(ProviderError, match=r"function server exited with code \d+ while starting; log tail:"):
        provider.start(16)
    assert provider.status(16) == S.FAILED
    assert "exited with code" in provider.describe(16).extra["error"]


# --- the function sees none of the caller's secrets -----------------------------------------------------------

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-0123",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE",
    "GOOGLE_APPLICATION_CREDENTIALS": "/tmp/fake-sa-key-0123.json",
    "GCP_PROJECT_CUSTOM_METRICS": "fake-gcp-project-0123",
    "LS_API_TOKEN": "fake-ls-token-0123",
    "DATABASE_PASSWORD": "fake-db-password-0123",
    "VIRTUAL_ENV": "/fake/venv/0123",
}


def test_scrubbed_environment(providers, home, tmp_path, monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    provider = providers()
    info = provider.deploy(11, metric_copy(tmp_path, "behaviours")).function
    reply = provider.invoke(11, {"annotation_1": {"environ": True, "result": []}, "annotation_2": PLAIN})
    assert reply["error"]["type"] == "RuntimeError"
    seen = json.loads(reply["error"]["message"])
    for value in SECRETS.values():
        assert value not in json.dumps(reply)
    assert sorted(seen) == sorted([
        "PATH", "LANG", "LC_ALL", "HOME", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET",
        "FUNCTION_SIGNATURE_TYPE", "PORT", "WORKERS", "THREADS",
        "SERVER_SOFTWARE",  # set by gunicorn itself
        "LSE_METRICS_PROGRESS",  # the handler's progress marker, a file of the local runtime
    ])
    assert seen["HOME"] == str(home / "functions" / info.name / "home")
    assert re.fullmatch(re.escape(str(home / "functions" / info.name / "run" / "progress-")) + r"\d+",
                        seen["LSE_METRICS_PROGRESS"])
    assert (seen["K_SERVICE"], seen["FUNCTION_TARGET"], seen["LANG"]) == (info.name, "agreement_handler", "C.UTF-8")


def test_server_imports_only_the_framework(providers, tmp_path):
    """Like Cloud Functions: the framework without the google-cloud-functions client library."""
    provider = providers()
    provider.deploy(15, metric_copy(tmp_path, "behaviours"))
    reply = provider.invoke(15, {"annotation_1": {"modules": True, "result": []}, "annotation_2": PLAIN})
    modules = set(json.loads(reply["error"]["message"]))
    assert {"functions_framework", "flask", "gunicorn", "google.cloud.functions.context", "metric"} <= modules
    assert not {m for m in modules if m.startswith(("grpc", "google.api_core", "google.cloud.functions_v1.services",
                                                     "lse_custom_metrics"))}
    assert provider.memory_peak_mb(15) < 60  # master + worker, PSS


# --- several warm instances ------------------------------------------------------------------------------------

def test_instances_serve_in_parallel(providers, tmp_path):
    provider = providers(instances=2)
    provider.deploy(13, metric_copy(tmp_path, "behaviours"))
    assert provider.describe(13).extra["instances"] == 2
    payload = {"annotation_1": {"sleep_s": 1.0, "whoami": True, "result": []}, "annotation_2": PLAIN, "per_label": True}
    replies = []

    def call():
        replies.append(provider.invoke(13, payload))

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # each request sleeps 1 s twice (score and per_label calls): 2 s in parallel, 4 s one after the other
    assert elapsed < 3.5, elapsed
    pids = {label for reply in replies for label in reply["labels"]}
    assert len(pids) == 2 and all(re.fullmatch(r"pid=\d+", p) for p in pids)
    assert all(reply["score"] == 1.0 for reply in replies)


def test_one_instance_serializes_requests(providers, tmp_path):
    provider = providers()
    provider.deploy(14, metric_copy(tmp_path, "behaviours"))
    payload = {"annotation_1": {"sleep_s": 0.5, "result": []}, "annotation_2": PLAIN}
    started = time.monotonic()
    threads = [threading.Thread(target=provider.invoke, args=(14, payload)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 1.5  # queued one at a time, as LSE does


# --- no orphans ------------------------------------------------------------------------------------------------

def test_servers_stop_at_interpreter_exit(home, tmp_path):
    metric = metric_copy(tmp_path, "choices")
    script = textwrap.dedent(f"""
        from lse_custom_metrics.runtime.providers.local import LocalProvider
        provider = LocalProvider()
        provider.deploy(21, {str(metric)!r})
        print([s.proc.pid for pool in provider._pools.values() for s in pool.servers])
    """)  # no close(): the atexit hook must stop the server
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LSE_METRICS_HOME": str(home)}, check=True)
    (pid,) = json.loads(run.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(pid)
    assert LocalProvider().status(21) == S.INACTIVE


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_servers_die_with_a_killed_caller(home, tmp_path, how):
    """A caller killed without any cleanup (SIGKILL, or SIGTERM with no handler) takes its servers along:
    each server watches its parent and kills its own process group once the parent is gone."""
    metric = metric_copy(tmp_path, "choices")
    script = textwrap.dedent(f"""
        import json, threading, time
        from lse_custom_metrics.runtime.providers.local import LocalProvider
        provider = LocalProvider(instances=2)
        provider.deploy(22, {str(metric)!r}, start=False)
        # started from a worker thread that then exits, as the scorer's threads do
        worker = threading.Thread(target=provider.start, args=(22,))
        worker.start(); worker.join()
        pids = [p.pid for pool in provider._pools.values() for s in pool.servers for p in s.tree()]
        print(json.dumps(pids), flush=True)
        time.sleep(120)
    """)
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "LSE_METRICS_HOME": str(home)})
    try:
        pids = json.loads(caller.stdout.readline())
        assert len(pids) >= 4  # two servers: gunicorn master + worker each
        assert all(psutil.pid_exists(pid) for pid in pids)
        caller.send_signal(getattr(signal, how))
        caller.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in pids if _running(pid)] == []
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
        caller.stdout.close()
        status = LocalProvider().status(22)  # reaps whatever a failure above left running
    assert status == S.INACTIVE


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_orphaned_server_is_reaped(home, tmp_path):
    """A server whose owner is gone but which is still running (e.g. its watchdog could not act) is
    killed by the next provider on that home; stale run records are dropped."""
    metric = metric_copy(tmp_path, "choices")
    with LocalProvider() as provider:
        name = provider.deploy(23, metric, start=False).function.name
    run_dir = home / "functions" / name / "run"
    run_dir.mkdir(exist_ok=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the owner of the orphan
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        record = {"pid": orphan.pid, "owner_pid": gone.pid, "port": 1, "state": "ready", "error": None,
                  "started": psutil.Process(orphan.pid).create_time()}
        (run_dir / f"{orphan.pid}.json").write_text(json.dumps(record))
        (run_dir / "999999999.json").write_text(json.dumps({**record, "pid": 999999999}))  # stale record
        assert LocalProvider().status(23) == S.INACTIVE  # reaped on construction
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert list(run_dir.iterdir()) == []
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_memory_messages_never_read_as_equal_to_the_limit():
    from lse_custom_metrics.runtime.supervisor import _over_mb

    mb = 1024 * 1024
    assert [_over_mb(128 * mb + 1), _over_mb(128.3 * mb), _over_mb(129 * mb), _over_mb(300 * mb - 1)] == [
        129, 129, 129, 300]


def test_a_server_whose_bundle_vanished_fails_to_start_with_a_message(tmp_path):
    from lse_custom_metrics.runtime.supervisor import FunctionServer, ServerStartError

    from lse_custom_metrics.runtime.providers.base import RuntimeLimits

    server = FunctionServer(bundle_dir=tmp_path / "gone", log_path=tmp_path / "function.log",
                            run_dir=tmp_path / "run", environment=lambda port: {}, limits=RuntimeLimits(),
                            label="function f (project 1)")
    with pytest.raises(ServerStartError, match=r"^function f \(project 1\): cannot start the function server in "
                                               r".*/gone: \[Errno 2\] No such file or directory"):
        server.start()
    assert server.state == "failed" and not server.alive
