"""One warm functions-framework server for a function bundle, with LSE's limits enforced.

The server runs functions-framework's own CLI (``--target agreement_handler``; see ``_LAUNCHER``) on
127.0.0.1 in its own session (so the gunicorn master and its worker are one process group that can be
killed together), with a scrubbed environment, its output appended to the function's log file. Requests
are serialized per server, as LSE queues them one at a time. While waiting for an answer the caller
samples the process tree's memory and the elapsed time (every 10 ms, no extra thread); exceeding either
kills the process group and the request fails with ``InvokeError(kind="MemoryLimitExceeded" |
"Timeout")``; a connection dropped without an answer is ``FunctionCrashed``. The next request starts a
fresh server, so callers can retry at once. A server never outlives the process that started it: it
watches its parent and kills its own process group once the parent is gone (even after SIGKILL);
``reap_orphans`` remains as a second line for servers left over anyway.

Memory is measured the way a container's limit sees it: the proportional set size (PSS, shared pages
counted once) of the whole tree when the server became ready, plus the growth of the tree's resident
memory since then; after each request the worker's resident high-water mark (``VmHWM``) catches spikes
shorter than the sampling interval.
"""
from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import mmap
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from lse_custom_metrics.components.facts import GCF_ENTRY_POINT

from .providers.base import InvokeError, ProviderError, RuntimeLimits

STARTUP_TIMEOUT_S = 60.0
SAMPLE_INTERVAL_S = 0.01
# The handler's progress marker (handler/main.py): the position of the pair it is computing.
PROGRESS_ENV = "LSE_METRICS_PROGRESS"
# A request that times out blames the pair it was computing when that pair alone had been running for
# at least this share of the time limit (it would time out alone too: not worth a second timeout).
BLAME_SHARE = 0.9
_MB = 1024 * 1024


def _over_mb(used_bytes: float) -> int:
    """Bytes over a limit, in whole MB rounded up: 128.3 MB over a 128 MB limit reads "129 MB > 128 MB"."""
    return int(-(-used_bytes // _MB))


# `python -m functions_framework`, except for two things. functions-framework and the google-cloud-functions
# client (our `gcp` extra) both install google/cloud/functions{,_v1}/__init__.py; when the client's win,
# the framework's `from google.cloud.functions.context import Context` drags in the whole client library
# (~200 ms and ~20 MB per server, plus version warnings). In Cloud Functions only the framework is
# installed and those packages are bare: recreate that, then start the framework's own CLI.
# And the server must not outlive the process that started it (its first argument), even one killed
# with SIGKILL: a watchdog thread kills the server's whole process group once the parent is gone.
# (prctl(PR_SET_PDEATHSIG) would fire when the *thread* that started the server exits - servers are
# started from scoring worker threads - and a preexec_fn would make every Popen fork instead of vfork.)
_LAUNCHER = """
import os, signal, threading, time
parent = int(__import__("sys").argv.pop(1))


def watch_parent():
    while os.getppid() == parent:
        time.sleep(0.2)
    os.killpg(0, signal.SIGKILL)


threading.Thread(target=watch_parent, name="lse-parent-watch", daemon=True).start()
master = os.getpid()


def reported_waitpid(pid, options, _waitpid=os.waitpid):
    # gunicorn's master reaps its worker with os.waitpid and logs only some endings: say how every
    # worker ended, as one log line (the runtime quotes it when a request was dropped).
    reaped, status = _waitpid(pid, options)
    if reaped and os.getpid() == master:
        import json
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            how, fields = f"was killed by {name}", {"signal": name}
        else:
            code = os.waitstatus_to_exitcode(status)
            how, fields = f"exited with code {code}", {"exit_code": code}
        now = time.time()
        entry = {"severity": "INFO" if fields.get("exit_code") == 0 else "ERROR",
                 "message": f"worker process {reaped} {how}",
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
                 "logger": "lse-custom-metrics.local", "worker_pid": reaped, **fields}
        os.write(2, (json.dumps(entry) + "\\n").encode())
    return reaped, status


os.waitpid = reported_waitpid
# gunicorn >= 25 opens a control socket for `gunicornc` (under $HOME or $XDG_RUNTIME_DIR): nothing here
# uses it, and in a deep state folder its path exceeds AF_UNIX's 108 bytes, an ERROR line in every log.
import gunicorn.config
for setting in gunicorn.config.KNOWN_SETTINGS:
    if setting.name == "control_socket_disable":
        setting.default = True
import importlib.util, sys, types
for name in ("google.cloud.functions", "google.cloud.functions_v1"):
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.submodule_search_locations:
        bare = types.ModuleType(name)
        bare.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = bare
from functions_framework._cli import _cli
_cli(prog_name="functions-framework")
"""


# Loads a bundle's metric.py the way its server would (the handler's own loader) and prints why it
# cannot, as JSON (null: it loads). Run with the function's scrubbed environment and limits.
_LOAD_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import main
metric = main._get_metric()
sys.stdout.write("\\n" + json.dumps(None if callable(metric) else metric.error) + "\\n")
"""


def probe_metric_load(bundle_dir: Path, environment: dict[str, str], limits: RuntimeLimits,
                      timeout_s: float) -> str | None:
    """Import ``bundle_dir``'s metric in a fresh function-like process: None if it loads, else why not.

    The process gets the function's environment, its memory limit (sampled, as for a server) and
    ``timeout_s``; the answer is the handler's own load error message ("metric.py line 3: ...").
    """
    proc = subprocess.Popen(
        [sys.executable, "-I", "-B", "-c", _LOAD_PROBE, str(bundle_dir)], cwd=bundle_dir, env=environment,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    limit = int(limits.memory_mb * _MB)
    breach = None
    try:
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                if watched.memory_info().rss > limit:
                    breach = f"loading it used more than the {limits.memory_mb} MB memory limit"
            except psutil.Error:
                pass
            if breach is None and time.monotonic() > deadline:
                breach = f"loading it took longer than {timeout_s:g} s"
            if breach is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(SAMPLE_INTERVAL_S)
    except psutil.Error:
        pass  # exited before it could be watched
    proc.wait()
    reader.join(timeout=5)
    proc.stdout.close()
    if breach is not None:
        return f"metric.py: {breach}"
    lines = b"".join(output).decode("utf-8", errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if proc.returncode == 0 and lines else False
    except ValueError:
        answer = False
    if answer is None:
        return None
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        return answer["message"]
    detail = lines[-1] if lines else f"exit code {proc.returncode}"
    return f"the function could not load metric.py ({detail})"


class ServerStartError(ProviderError):
    """The function server process exited before it could serve (the message quotes its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_event(log_path: Path, severity: str, message: str, **fields) -> None:
    """Append one structured line from the runtime itself to the function's log."""
    now = time.time()
    entry = {
        "severity": severity,
        "message": message,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
        "logger": "lse-custom-metrics.local",
    }
    entry.update(fields)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# The launcher's line for a worker its master reaped (see _LAUNCHER): how that worker ended.
_WORKER_END = re.compile(r'^\{.*"worker_pid": \d+')
_GUNICORN_LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(\w+)\] (.*)$")
_NOTEWORTHY = {"WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
CRASH_LINES = 3  # output lines quoted in a crash message
CRASH_WAIT_S = 1.0  # how long to wait for the master to report how its worker ended


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def noteworthy_output(text: str, limit: int = CRASH_LINES) -> list[str]:
    """The lines of a function's log worth quoting about a failure: warnings, errors, tracebacks, anything
    the process printed itself - not the routine INFO lines, the runtime's own events, nor gunicorn's
    lines about its workers (the message says how the worker ended in its own words). The last
    ``limit`` lines, each shortened to 200 characters."""
    kept = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line.strip():
            continue
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and "message" in entry:
                if (str(entry.get("severity", "")).upper() not in _NOTEWORTHY
                        or entry.get("logger") == "lse-custom-metrics.local"):
                    continue
                line = str(entry["message"]).splitlines()[0] if str(entry["message"]) else ""
        elif _GUNICORN_LINE.match(line):
            continue  # the server's own life cycle ("Worker exited", "Shutting down: Master", ...)
        if line:
            kept.append(line if len(line) <= 200 else line[:197] + "...")
    return kept[-limit:] if limit else kept


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _hwm_bytes(pid: int) -> int:
    """The resident high-water mark of ``pid`` (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _exiting(pid: int) -> bool:
    """Whether ``pid`` is a zombie or dying (its exit not yet collected by the parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split(None, 1)[0]
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")


# Servers started by this interpreter; stopped at exit so no orphan processes remain.
_RUNNING: set["FunctionServer"] = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def stop_all_servers() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        server.stop(reason="interpreter exit")


class FunctionServer:
    """One functions-framework process group serving a bundle folder."""

    def __init__(
        self,
        *,
        bundle_dir: Path,
        log_path: Path,
        run_dir: Path,
        environment: Callable[[int], dict[str, str]],
        limits: RuntimeLimits,
        label: str,
    ):
        self.bundle_dir = Path(bundle_dir)
        self.log_path = Path(log_path)
        self.run_dir = Path(run_dir)
        self.environment = environment
        self.limits = limits
        self.label = label
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.state = "stopped"  # stopped | starting | ready | failed (serving, but metric.py won't load)
        self.error: str | None = None
        self.peak_bytes = 0
        self._lock = threading.Lock()  # one request at a time
        self._baseline_pss = 0
        self._baseline_rss = 0
        self._baseline_hwm: dict[int, int] = {}
        self._procs: list[psutil.Process] = []  # the tree at readiness, refreshed during long requests
        self._progress: memoryview | None = None  # the handler's progress marker, shared with the server
        self._progress_map: mmap.mmap | None = None

    # --- lifecycle -------------------------------------------------------------------------------------

    @property
    def limit_bytes(self) -> int:
        return int(self.limits.memory_mb * _MB)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Spawn the server process (does not wait for it to serve)."""
        if self.alive:
            return
        self.port = free_port()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-I", "-u", "-B", "-c", _LAUNCHER, str(os.getpid()),
            "--target", GCF_ENTRY_POINT, "--source", str(self.bundle_dir / "main.py"),
            "--host", "127.0.0.1", "--port", str(self.port),
        ]
        environment = self.environment(self.port)
        marker = self._open_progress()
        if marker is not None:
            environment[PROGRESS_ENV] = str(marker)
        try:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    command, cwd=self.bundle_dir, env=environment,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: gunicorn forks, kill them together
                )
        except OSError as exc:  # the bundle or state folder vanished under us
            self.state, self.error = "failed", f"cannot start the function server in {self.bundle_dir}: {exc}"
            raise ServerStartError(f"{self.label}: {self.error}") from None
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        self.state, self.error, self.peak_bytes = "starting", None, 0
        self._write_run_file()
        log_event(self.log_path, "INFO", f"started instance pid {self.proc.pid} on 127.0.0.1:{self.port}",
                  pid=self.proc.pid, port=self.port)

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until the server answers its health probe; ``state`` becomes ``ready`` or ``failed``.

        Raises ServerStartError if the process exits or never answers.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive:
                code = self.proc.returncode if self.proc else None
                self._forget()
                self.state, self.error = "stopped", f"function server exited with code {code} while starting"
                raise ServerStartError(f"{self.label}: {self.error}; log tail:\n{_tail(self.log_path)}")
            try:
                status, body = self._http("GET", b"", timeout=5)
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    self.kill("did not answer its health probe in time")
                    self.state, self.error = "stopped", f"function server did not start within {timeout_s:g} s"
                    raise ServerStartError(f"{self.label}: {self.error}") from None
                time.sleep(0.03)
                continue
            break
        if status == 200:
            self.state, self.error = "ready", None
        else:
            self.state = "failed"
            try:
                self.error = json.loads(body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                self.error = f"health probe answered HTTP {status}: {body[:200]!r}"
        self._take_baseline()
        self._write_run_file()

    def ensure_running(self) -> None:
        if self.proc is not None and _exiting(self.proc.pid):
            # Killed from outside and still being torn down (its threads exiting): not reaped yet, so
            # poll() would call it alive. Wait for the end, then start afresh.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if not self.alive:
            if self.proc is not None:
                self._forget()
            self.start()
        if self.state == "starting":
            self.wait_ready()

    def kill(self, why: str = "") -> None:
        """SIGKILL the whole process group (gunicorn master + worker + anything the metric started)."""
        proc = self.proc
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if why:
            log_event(self.log_path, "ERROR", f"killed instance pid {proc.pid}: {why}", pid=proc.pid)

    def stop(self, reason: str = "stopped") -> None:
        """Stop the server. The function is stateless and logs unbuffered, so SIGKILL loses nothing and
        spares gunicorn's graceful shutdown (~0.3 s)."""
        if self.proc is None:
            return
        if self.alive:
            log_event(self.log_path, "INFO", f"stopped instance pid {self.proc.pid} ({reason})", pid=self.proc.pid)
        self.kill()
        self._forget()
        self.state = "stopped"

    def _open_progress(self) -> Path | None:
        """Create this server's progress marker (8 zero bytes, mapped here and in the handler)."""
        self._close_progress()
        path = self.run_dir / f"progress-{self.port}"
        try:
            path.write_bytes(bytes(8))
            with open(path, "r+b") as handle:
                self._progress_map = mmap.mmap(handle.fileno(), 8)
            self._progress = memoryview(self._progress_map).cast("q")
        except (OSError, ValueError):
            self._close_progress()
            return None
        return path

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.release()
        if self._progress_map is not None:
            self._progress_map.close()
        self._progress = self._progress_map = None
        if self.port:
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / f"progress-{self.port}").unlink()

    def _forget(self) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        self._close_progress()
        if self.proc is not None:
            try:
                (self.run_dir / f"{self.proc.pid}.json").unlink()
            except FileNotFoundError:
                pass
        self.proc = None

    def _write_run_file(self) -> None:
        """Record this server for other processes' ``status`` (and for reaping orphans)."""
        assert self.proc is not None
        record = {
            "pid": self.proc.pid,
            "owner_pid": os.getpid(),
            "port": self.port,
            "state": self.state,
            "error": self.error,
            "started": psutil.Process(self.proc.pid).create_time() if self.alive else None,
        }
        target = self.run_dir / f"{self.proc.pid}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, target)

    # --- memory ----------------------------------------------------------------------------------------

    def tree(self) -> list[psutil.Process]:
        if not self.alive:
            return []
        try:
            master = psutil.Process(self.proc.pid)
            return [master, *master.children(recursive=True)]
        except psutil.Error:
            return []

    @staticmethod
    def _sum(procs, measure) -> int:
        total = 0
        for proc in procs:
            try:
                total += measure(proc)
            except psutil.Error:
                pass
        return total

    def _take_baseline(self) -> None:
        procs = self._procs = self.tree()
        self._baseline_pss = self._sum(procs, lambda p: p.memory_full_info().pss)
        self._baseline_rss = self._sum(procs, lambda p: p.memory_info().rss)
        self._baseline_hwm = {p.pid: p.memory_info().rss for p in procs if p.is_running()}
        self.note_peak(self._baseline_pss)

    def estimate_bytes(self, procs) -> int:
        """Memory in use now: PSS at readiness + growth of the tree's RSS since."""
        return self._baseline_pss + max(0, self._sum(procs, lambda p: p.memory_info().rss) - self._baseline_rss)

    def peak_since_ready(self) -> int:
        """Worst case implied by each process's resident high-water mark since readiness."""
        growth = 0
        for proc in self._procs:
            start = self._baseline_hwm.get(proc.pid, 0)
            growth += max(0, _hwm_bytes(proc.pid) - start)
        return self._baseline_pss + growth

    def note_peak(self, used: int) -> None:
        if used > self.peak_bytes:
            self.peak_bytes = used

    def memory_bytes(self) -> int:
        return self.estimate_bytes(self.tree()) if self.alive else 0

    # --- requests --------------------------------------------------------------------------------------

    def _http(self, method: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if method == "POST" else {}
            connection.request(method, "/", body=body if method == "POST" else None, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _how_it_ended(self, log_start: int) -> str:
        """How the process that dropped a request ended: its exit code or signal, when it can be known.

        The worker is gunicorn's child, not ours: the launcher in its master logs how it ended as soon as
        it is reaped. Wait a moment for that line (or for the whole server to exit) before the group is
        killed.
        """
        master = self.proc
        workers = [p.pid for p in self._procs if master is None or p.pid != master.pid]
        deadline = time.monotonic() + CRASH_WAIT_S
        while True:
            master_ended = master is not None and master.poll() is not None
            for line in _read_from(self.log_path, log_start).splitlines():
                if _WORKER_END.match(line):
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        entry = json.loads(line)
                        if entry.get("signal"):
                            return f"its worker process (pid {entry['worker_pid']}) was killed by {entry['signal']}"
                        return f"its worker process (pid {entry['worker_pid']}) exited with code {entry['exit_code']}"
            if master_ended:
                code = master.returncode
                return (f"the server process was killed by {_signal_name(-code)}" if code < 0
                        else f"the server process exited with code {code}")
            if time.monotonic() > deadline:
                alive = [pid for pid in workers if psutil.pid_exists(pid) and not _exiting(pid)]
                if alive:
                    return "it closed the connection without an answer (its worker process was still running)"
                return "it closed the connection without an answer"
            time.sleep(0.02)

    def _watch_until_answer(self, sock: socket.socket, deadline: float) -> tuple[str, str, int | None] | None:
        """Wait for the answer to start arriving, sampling memory, time and the handler's progress.

        Returns ``(kind, detail, pair)`` of a breach (the process group is then killed; ``pair``: the
        0-based position of the pair to blame for a timeout, or None), or None once the answer is
        readable. Short requests never sample: their peak is checked afterwards.
        """
        samples = 0
        progress = self._progress
        running, since = 0, time.monotonic()  # the pair being computed (1-based, 0: none) and since when
        while not select.select([sock], [], [], SAMPLE_INTERVAL_S)[0]:
            samples += 1
            if progress is not None and progress[0] != running:
                running, since = progress[0], time.monotonic()
            if samples % 25 == 0:  # a metric may start subprocesses: refresh the tree now and then
                self._procs = self.tree() or self._procs
            used = self.estimate_bytes(self._procs)
            self.note_peak(used)
            if used > self.limit_bytes:
                detail = f"memory limit exceeded: {_over_mb(used)} MB > {self.limits.memory_mb} MB"
                self.kill(detail)
                return "MemoryLimitExceeded", detail, None
            now = time.monotonic()
            if now > deadline:
                detail = f"request exceeded the {self.limits.timeout_s:g} s timeout"
                self.kill(detail)
                slow = running > 0 and now - since >= BLAME_SHARE * self.limits.timeout_s
                return "Timeout", detail, running - 1 if slow else None
        return None

    def request(self, body: bytes) -> bytes:
        """POST one payload; return the 200 answer's body or raise InvokeError."""
        with self._lock:
            self.ensure_running()
            timeout_s = float(self.limits.timeout_s)
            deadline = time.monotonic() + timeout_s
            log_start = self._log_size()
            if self._progress is not None:
                self._progress[0] = 0  # no pair started yet (the handler counts from 1)
            # the socket timeout is only a backstop: the loop below enforces the limit
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s + 30)
            breach = failure = None
            try:
                connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                breach = self._watch_until_answer(connection.sock, deadline)
                if breach is None:
                    response = connection.getresponse()
                    status, answer = response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                failure = exc
            finally:
                connection.close()
            if breach is not None:
                self._forget()
                raise InvokeError(f"{self.label}: {breach[1]}; the function was restarted", kind=breach[0],
                                  pair_index=breach[2])
            if failure is not None:
                how = self._how_it_ended(log_start)
                self.kill(f"the function process crashed while handling a request: {how}")
                self._forget()
                output = noteworthy_output(_read_from(self.log_path, log_start))
                shown = f"; its output: {' | '.join(output)}" if output else ""
                raise InvokeError(
                    f"{self.label}: the function process crashed while handling the request: {how}; the "
                    f"function was restarted{shown}", kind="FunctionCrashed") from None
            peak = self.peak_since_ready()
            self.note_peak(peak)
            if peak > self.limit_bytes:
                detail = f"memory limit exceeded: peak {_over_mb(peak)} MB > {self.limits.memory_mb} MB"
                self.kill(detail)
                self._forget()
                raise InvokeError(f"{self.label}: {detail}; the function was restarted", kind="MemoryLimitExceeded")
        if status == 200:
            return answer
        try:
            message = json.loads(answer)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer[:500].decode("utf-8", errors="replace")
        if status == 400:
            raise InvokeError(f"{self.label}: the function rejected the request: {message}", kind="BadRequest")
        raise InvokeError(f"{self.label}: the function answered HTTP {status}: {message}", kind="FunctionError")


def reap_orphans(run_dir: Path) -> int:
    """Kill servers recorded in ``run_dir`` whose owning process is gone; drop stale records."""
    reaped = 0
    if not run_dir.is_dir():
        return 0
    for record_file in run_dir.glob("*.json"):
        record = read_run_record(record_file)
        if record is None:
            continue
        owner = record.get("owner_pid")
        owner_alive = isinstance(owner, int) and owner > 0 and psutil.pid_exists(owner)
        if record["live"] and not owner_alive:
            try:
                os.killpg(record["pid"], signal.SIGKILL)
                reaped += 1
            except (ProcessLookupError, PermissionError):
                pass
            record["live"] = False
        if not record["live"]:
            for leftover in (record_file, run_dir / f"progress-{record.get('port')}"):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    return reaped


def read_run_record(record_file: Path) -> dict | None:
    """A run record plus ``live``: whether its server process (same pid *and* start time) still runs."""
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    live = False
    try:
        process = psutil.Process(int(record["pid"]))
        started = record.get("started")
        live = process.is_running() and process.status() != psutil.STATUS_ZOMBIE and (
            started is None or abs(process.create_time() - float(started)) < 1.0)
    except (psutil.Error, KeyError, TypeError, ValueError):
        live = False
    record["live"] = live
    return record
