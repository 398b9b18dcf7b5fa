"""The ``local`` provider: the very same function bundle, served by functions-framework on 127.0.0.1.

State lives under ``$LSE_METRICS_HOME`` (default ``~/.lse-custom-metrics``), one folder per function::

    functions/custom-metric-<project>-<unix ts>/
        function.json   project, name, code sha256, created/updated, state and last error
        bundle/         main.py, metric.py [, requirements.txt] - exactly what the clouds get
        function.log    the handler's per-invocation JSON lines, server output, runtime events
        home/           HOME of the function process (the caller's HOME is not exposed)
        run/<pid>.json  one record per running server (lets other processes see its status)

Servers start on deploy (or on the first invoke) and stay warm; each is one functions-framework
process group with LSE's limits (``RuntimeLimits``: 256 MB, 60 s per request) enforced by
``runtime.supervisor``. ``instances=1`` (the default) matches LSE, which runs one instance and queues
requests one at a time; ``instances=N`` keeps N servers and hands each request to a free one.

Statuses reachable locally: ``NotDeployed`` (no function), ``Pending`` (a server is starting),
``Active`` (a server answers its health probe), ``Inactive`` (deployed, no server running - e.g. after
the process that started it exited), ``Failed`` (the last start failed, or its server could not load
``metric.py`` and answers every pair with a ``MetricLoadError`` - possible only when the bundle broke
after it was deployed), ``NotFound`` (the folder is there but its bundle was removed), ``Error``
(``function.json`` is unreadable). ``requirements.txt`` is shipped in the bundle but not installed
locally: the function runs with this interpreter's packages.

Deploys never replace working code with code that cannot load: new code is written to a staging
folder and its ``metric.py`` imported there by the handler's own loader, in a process with the
function's scrubbed environment and limits. If that fails, ``deploy`` raises ``MetricLoadError``
(naming the metric file, line and exception) and changes nothing: an update leaves the deployed
function, its code and its running servers as they were; a first deploy leaves nothing behind (the
status stays ``NotDeployed``, as if the deploy had not happened - no half-made function to delete).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import queue
import shutil
import threading
import time
from pathlib import Path

from lse_custom_metrics.components.facts import FUNCTION_PREFIX

from ..bundle import METRIC_FILE, Bundle, build_bundle
from ..function_env import function_environment
from ..supervisor import (
    STARTUP_TIMEOUT_S,
    FunctionServer,
    ServerStartError,
    log_event,
    probe_metric_load,
    read_run_record,
    reap_orphans,
)
from .base import (
    DeployResult,
    FunctionInfo,
    FunctionNotDeployed,
    FunctionStatus,
    InvokeError,
    LogEntry,
    MetricLoadError,
    MetricProvider,
    ProviderError,
    RuntimeLimits,
)
from .naming import (
    function_name, is_project_function, name_matches_project, name_timestamp, project_from_name, project_key,
)

HOME_ENV = "LSE_METRICS_HOME"
DEFAULT_HOME = "~/.lse-custom-metrics"
RECORD_FILE = "function.json"
LOG_FILE = "function.log"
BUNDLE_DIR = "bundle"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _parse_time(value) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc).timestamp()
        except ValueError:
            return None
    return None


def _bundle_on_disk(directory: Path, bundle: Bundle) -> bool:
    """Whether ``directory`` still holds exactly ``bundle``'s files (not removed or edited by hand)."""
    try:
        return all((directory / name).read_bytes() == data for name, data in bundle.files)
    except OSError:
        return False


class _Pool:
    """The warm servers of one function; a request takes a free one and gives it back."""

    def __init__(self, servers: list[FunctionServer], code_sha256: str):
        self.servers = servers
        self.code_sha256 = code_sha256
        self.idle: queue.Queue[FunctionServer] = queue.Queue()
        for server in servers:
            self.idle.put(server)

    def stop(self, reason: str) -> None:
        for server in self.servers:
            server.stop(reason)


class LocalProvider(MetricProvider):
    """Metric functions on this machine (see the module docstring for the state layout)."""

    name = "local"

    def __init__(
        self,
        limits: RuntimeLimits | None = None,
        *,
        home: str | os.PathLike | None = None,
        instances: int = 1,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ):
        super().__init__(limits)
        if not isinstance(instances, int) or instances < 1:
            raise ProviderError(f"instances must be a positive integer, got {instances!r}")
        self.home = Path(home).expanduser() if home else default_home()
        self.functions_dir = self.home / "functions"
        self.instances = instances
        self.startup_timeout_s = startup_timeout_s
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.RLock()
        try:
            self.functions_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderError(f"cannot use the state folder {self.home}: cannot create {self.functions_dir}: "
                                f"{exc.strerror or exc} (set {HOME_ENV} to a folder you can write)") from None
        for directory in self._function_dirs():  # servers whose owner was killed without cleanup
            reap_orphans(directory / "run")

    # --- state on disk ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _state_lock(self):
        """Serialize deploy/delete across processes sharing the state directory."""
        with self._lock, open(self.home / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _function_dirs(self) -> list[Path]:
        try:
            return sorted(p for p in self.functions_dir.iterdir() if p.is_dir() and p.name.startswith(FUNCTION_PREFIX))
        except FileNotFoundError:
            return []

    @staticmethod
    def _read_record(directory: Path) -> dict | None:
        try:
            record = json.loads((directory / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _find(self, project_id) -> tuple[Path, dict | None] | None:
        """The project's function folder and record (None record: unreadable); newest first."""
        key = project_key(project_id)
        candidates = []
        for directory in self._function_dirs():
            if not name_matches_project(directory.name, key):
                continue
            record = self._read_record(directory)
            if record is not None and not is_project_function(directory.name, record.get("project_id"), key):
                continue  # e.g. a folder renamed by hand: its recorded project is someone else's
            candidates.append((name_timestamp(directory.name), directory, record))
        if not candidates:
            return None
        _, directory, record = max(candidates, key=lambda c: (c[0], c[1].name))
        return directory, record

    def _require(self, project_id) -> tuple[Path, dict]:
        found = self._find(project_id)
        if found is None:
            raise FunctionNotDeployed(
                f"project {project_key(project_id)} has no metric function on the local provider "
                f"(state in {self.home}); deploy one first"
            )
        directory, record = found
        if record is None:
            raise ProviderError(f"{directory / RECORD_FILE} is unreadable; delete the function and deploy again")
        return directory, record

    def _update_record(self, directory: Path, **changes) -> dict:
        with self._lock:
            record = self._read_record(directory) or {}
            record.update(changes)
            _write_json(directory / RECORD_FILE, record)
            return record

    def _info(self, directory: Path, record: dict | None, status: FunctionStatus | None = None) -> FunctionInfo:
        status = status or self._status_of(directory, record)  # an unreadable record (None) is Error
        unreadable = record is None
        record = record or {}
        live = self._live_servers(directory)
        project = record.get("project_id")
        return FunctionInfo(
            name=directory.name,
            # without a readable record, the folder's name still says whose function it is
            project_id=str(project) if project is not None else project_from_name(directory.name),
            code_sha256=record.get("code_sha256", ""),
            status=status,
            provider=self.name,
            created=record.get("created"),
            updated=record.get("updated"),
            extra={
                "path": str(directory),
                "log": str(directory / LOG_FILE),
                "files": record.get("files", []),
                "error": f"{directory / RECORD_FILE} is unreadable" if unreadable else record.get("error"),
                "project_from": "name" if project is None else "record",
                "instances": len([r for r in live if r["state"] in ("ready", "failed")]),
                "endpoints": [f"http://127.0.0.1:{r['port']}/" for r in live],
            },
        )

    @staticmethod
    def _live_servers(directory: Path) -> list[dict]:
        records = []
        run_dir = directory / "run"
        if run_dir.is_dir():
            for record_file in sorted(run_dir.glob("*.json")):
                record = read_run_record(record_file)
                if record is None:
                    continue
                if record["live"]:
                    records.append(record)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        record_file.unlink()
        return records

    def _status_of(self, directory: Path, record: dict | None) -> FunctionStatus:
        if record is None:
            return FunctionStatus.ERROR
        bundle = directory / BUNDLE_DIR
        if not ((bundle / "main.py").is_file() and (bundle / METRIC_FILE).is_file()):
            return FunctionStatus.NOT_FOUND
        states = {r["state"] for r in self._live_servers(directory)}
        if "ready" in states:
            return FunctionStatus.ACTIVE
        if "starting" in states:
            return FunctionStatus.PENDING
        if "failed" in states or record.get("state") == "Failed":
            return FunctionStatus.FAILED
        return FunctionStatus.INACTIVE

    # --- servers -----------------------------------------------------------------------------------------

    def _new_server(self, directory: Path, record: dict) -> FunctionServer:
        home = directory / "home"
        home.mkdir(exist_ok=True)
        name, sha = directory.name, record["code_sha256"]
        return FunctionServer(
            bundle_dir=directory / BUNDLE_DIR,
            log_path=directory / LOG_FILE,
            run_dir=directory / "run",
            environment=lambda port: function_environment(
                home=str(home), function_name=name, revision=f"{name}-{sha[:12]}", port=port),
            limits=self.limits,
            label=f"function {name} (project {record.get('project_id')})",
        )

    def _pool(self, directory: Path, record: dict) -> _Pool:
        """The function's servers, (re)created when the deployed code changed under them."""
        with self._lock:
            pool = self._pools.get(directory.name)
            if pool is not None and pool.code_sha256 != record.get("code_sha256"):
                pool.stop("code updated")
                pool = None
            if pool is None:
                pool = _Pool([self._new_server(directory, record) for _ in range(self.instances)],
                             record["code_sha256"])
                self._pools[directory.name] = pool
            return pool

    def _start_pool(self, directory: Path, record: dict, wait: bool = True) -> None:
        pool = self._pool(directory, record)
        for server in pool.servers:
            if not server.alive:
                server.start()
        if wait:
            self._wait_pool(directory, pool)

    def _wait_pool(self, directory: Path, pool: _Pool) -> None:
        try:
            for server in pool.servers:
                if server.state == "starting":
                    server.wait_ready(self.startup_timeout_s)
        except ServerStartError as exc:
            self._update_record(directory, state="Failed", error=str(exc))
            raise
        failed = [s.error for s in pool.servers if s.state == "failed"]
        if failed:
            self._update_record(directory, state="Failed", error=failed[0])
        else:
            self._update_record(directory, state="Deployed", error=None)

    def start(self, project_id, wait: bool = True) -> FunctionStatus:
        """Start the function's servers (``wait=False`` returns while they are still Pending)."""
        directory, record = self._require(project_id)
        self._start_pool(directory, record, wait=wait)
        return self.status(project_id)

    def wait_ready(self, project_id) -> FunctionStatus:
        directory, record = self._require(project_id)
        self._wait_pool(directory, self._pool(directory, record))
        return self.status(project_id)

    def stop(self, project_id) -> None:
        """Stop this provider's servers for the project's function (the function stays deployed)."""
        found = self._find(project_id)
        if found is None:
            return
        with self._lock:
            pool = self._pools.pop(found[0].name, None)
        if pool:
            pool.stop("stopped")

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.stop("provider closed")

    def memory_peak_mb(self, project_id) -> float:
        """Highest memory use this provider's servers of the function have reached (MB, PSS-based)."""
        found = self._find(project_id)
        pool = self._pools.get(found[0].name) if found else None
        if not pool:
            return 0.0
        return max(server.peak_bytes for server in pool.servers) / (1024 * 1024)

    # --- the provider interface ---------------------------------------------------------------------------

    def deploy(
        self,
        project_id,
        metric_path: str | os.PathLike,
        *,
        requirements: str | os.PathLike | None = None,
        start: bool = True,
        wait: bool = True,
    ) -> DeployResult:
        """Create the function, update it in place if the code changed, or do nothing if identical.

        ``start``: also start its server(s); with ``wait`` (default) wait for the health probe, so the
        result's status is Active (or Failed when metric.py cannot be imported). ``wait=False`` returns
        while they start (Pending), so the caller can read its export meanwhile; the first invoke waits.
        """
        key = project_key(project_id)
        bundle = build_bundle(metric_path, requirements)
        with self._state_lock():
            found = self._find(key)
            if found is not None and found[1] is None:
                raise ProviderError(
                    f"{found[0] / RECORD_FILE} is unreadable; run `lse-metrics delete --project {key}` "
                    "(or remove the folder) and deploy again")
            now = time.time()
            if found is None:
                action, directory = "created", self._create(key, bundle, now, str(metric_path))
            else:
                directory, record = found
                if record.get("code_sha256") == bundle.code_sha256 and _bundle_on_disk(directory / BUNDLE_DIR, bundle):
                    action = "unchanged"
                else:
                    action = "updated"
                    self._replace_bundle(directory, bundle, now, str(metric_path))
        record = self._read_record(directory)
        if start:
            try:
                self._start_pool(directory, record, wait=wait)
            except ServerStartError:
                pass  # recorded as Failed in function.json; reported through the status below
            record = self._read_record(directory)
        return DeployResult(function=self._info(directory, record), action=action)

    def _record(self, key: str, name: str, bundle: Bundle, now: float) -> dict:
        return {
            "name": name,
            "project_id": key,
            "provider": self.name,
            "code_sha256": bundle.code_sha256,
            "metric_path": bundle.metric_path,
            "files": bundle.names,
            "created": now,
            "updated": now,
            "state": "Deployed",
            "error": None,
            "limits": {"memory_mb": self.limits.memory_mb, "timeout_s": self.limits.timeout_s},
        }

    def _create(self, key: str, bundle: Bundle, now: float, shown: str) -> Path:
        ts = int(now)
        while (self.functions_dir / function_name(key, ts)).exists():
            ts += 1  # a name is never reused, even for a function deleted within the same second
        name = function_name(key, ts)
        staging = self.functions_dir / f".staging-{name}"
        shutil.rmtree(staging, ignore_errors=True)
        bundle.write_dir(staging / BUNDLE_DIR)
        (staging / "home").mkdir()
        (staging / LOG_FILE).touch()
        try:
            self._probe(staging / BUNDLE_DIR, staging / "home", name, bundle, shown, "nothing was deployed")
        except MetricLoadError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _write_json(staging / RECORD_FILE, self._record(key, name, bundle, now))
        directory = self.functions_dir / name
        os.replace(staging, directory)  # the function appears complete or not at all
        return directory

    def _replace_bundle(self, directory: Path, bundle: Bundle, now: float, shown: str) -> None:
        fresh, old = directory / ".bundle.new", directory / ".bundle.old"
        for leftover in (fresh, old):
            shutil.rmtree(leftover, ignore_errors=True)
        bundle.write_dir(fresh)
        (directory / "home").mkdir(exist_ok=True)
        try:
            self._probe(fresh, directory / "home", directory.name, bundle, shown,
                        f"function {directory.name} keeps its previous code")
        except MetricLoadError as exc:
            shutil.rmtree(fresh, ignore_errors=True)
            log_event(directory / LOG_FILE, "ERROR", f"deploy refused: {exc}")
            raise
        with self._lock:
            pool = self._pools.pop(directory.name, None)
        if pool:
            pool.stop("code updated")
        if (directory / BUNDLE_DIR).exists():
            os.replace(directory / BUNDLE_DIR, old)
        os.replace(fresh, directory / BUNDLE_DIR)
        shutil.rmtree(old, ignore_errors=True)
        self._update_record(directory, code_sha256=bundle.code_sha256, metric_path=bundle.metric_path,
                            files=bundle.names, updated=now, state="Deployed", error=None)

    def _probe(self, bundle_dir: Path, home: Path, name: str, bundle: Bundle, shown: str, outcome: str) -> None:
        """Raise MetricLoadError unless the staged bundle's metric loads in a function-like process."""
        environment = function_environment(home=str(home), function_name=name,
                                           revision=f"{name}-{bundle.code_sha256[:12]}", port=0)
        problem = probe_metric_load(bundle_dir, environment, self.limits, self.startup_timeout_s)
        if problem is None:
            return
        if problem.startswith(METRIC_FILE):  # the handler names the bundle's copy; name the user's file
            problem = shown + problem[len(METRIC_FILE):]
        raise MetricLoadError(f"{problem} ({outcome})")

    def status(self, project_id) -> FunctionStatus:
        found = self._find(project_id)
        if found is None:
            return FunctionStatus.NOT_DEPLOYED
        return self._status_of(*found)

    def describe(self, project_id) -> FunctionInfo | None:
        """The project's function with its current status, or None."""
        found = self._find(project_id)
        return self._info(*found) if found else None

    def invoke(self, project_id, payload: dict | bytes | str) -> dict:
        """Send one request; ``payload`` may be a dict or already-encoded JSON (bytes/str)."""
        if isinstance(payload, dict):
            body = json.dumps(payload, separators=(",", ":")).encode()
        elif isinstance(payload, str):
            body = payload.encode()
        elif isinstance(payload, (bytes, bytearray)):
            body = bytes(payload)
        else:
            raise TypeError(f"payload must be a dict or encoded JSON, got {type(payload).__name__}")
        if len(body) > self.max_request_bytes:
            raise InvokeError(
                f"request of {len(body)} bytes exceeds the {self.max_request_bytes}-byte limit every "
                "provider enforces (AWS Lambda's synchronous payload limit)", kind="RequestTooLarge")
        directory, record = self._require(project_id)
        pool = self._pool(directory, record)
        server = pool.idle.get()
        try:
            starts_now = server.state not in ("ready", "failed") or not server.alive
            try:
                answer = server.request(body)
            except ServerStartError as exc:
                self._update_record(directory, state="Failed", error=str(exc))
                raise
            finally:
                if starts_now and server.state in ("ready", "failed"):
                    self._record_start_outcome(directory, server)
        finally:
            pool.idle.put(server)
        return json.loads(answer)

    def _record_start_outcome(self, directory: Path, server: FunctionServer) -> None:
        if server.state == "failed":
            self._update_record(directory, state="Failed", error=server.error)
        else:
            self._update_record(directory, state="Deployed", error=None)

    def logs(self, project_id, limit: int = 100) -> list[LogEntry]:
        """The function's last ``limit`` log lines (handler JSON lines, server output, runtime events)."""
        directory, _ = self._require(project_id)
        try:
            text = (directory / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        fallback = (directory / LOG_FILE).stat().st_mtime
        entries: list[LogEntry] = []
        last_time = None
        for line in text.splitlines():
            if not line.strip():
                continue
            entry = None
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    data = json.loads(line)
                    if isinstance(data, dict) and "message" in data:
                        when = _parse_time(data.get("time"))
                        last_time = when or last_time
                        entry = LogEntry(timestamp=when or last_time or fallback, message=str(data["message"]),
                                         severity=str(data.get("severity", "INFO")))
            if entry is None:  # plain server output (gunicorn, tracebacks): keep the text as is
                entry = LogEntry(timestamp=last_time or fallback, message=line, severity="DEFAULT")
            entries.append(entry)
        return entries[-limit:] if limit else entries

    def delete(self, project_id) -> bool:
        """Stop every server of the project's function (any owner) and remove its folder."""
        with self._state_lock():
            found = self._find(project_id)
            if found is None:
                return False
            directory = found[0]
            with self._lock:
                pool = self._pools.pop(directory.name, None)
            if pool:
                pool.stop("deleted")
            for record in self._live_servers(directory):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(record["pid"], 9)
            graveyard = self.functions_dir / f".deleted-{directory.name}-{os.getpid()}"
            os.replace(directory, graveyard)
            shutil.rmtree(graveyard, ignore_errors=True)
            return True

    def list(self) -> list[FunctionInfo]:
        return [self._info(directory, self._read_record(directory)) for directory in self._function_dirs()]
