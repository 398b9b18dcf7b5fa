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

``stage()`` splits a deploy in two: the staged code (``functions/.staging-<pid>-<name>/`` for a first
deploy, ``<function>/.bundle-staged-<pid>-<n>/`` for an update) gets its server at once and answers this
provider's invokes for the project, while the function on disk - or its absence - stays as it was until
``commit()`` swaps it in (the warm server carries on; a symlink keeps the paths it started with valid)
or ``discard()`` removes it. ``score`` uses this to send requests while the export is still being read,
and deploys nothing when the export is refused. ``deploy()`` is ``stage()`` + ``commit()``.
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

import psutil

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
    StagedDeploy,
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


def _code_on_disk(directory: Path) -> bool:
    """Whether the function in ``directory`` still has the two files a server needs (else: NotFound)."""
    bundle = directory / BUNDLE_DIR
    return (bundle / "main.py").is_file() and (bundle / METRIC_FILE).is_file()


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


class _LocalStaged(StagedDeploy):
    """A deploy staged by ``LocalProvider.stage`` (see there)."""

    def __init__(self, provider: "LocalProvider", key: str, action: str, bundle: Bundle, directory: Path,
                 record: dict, bundle_dir: Path | None):
        self.provider, self.key, self.action, self.bundle = provider, key, action, bundle
        self.directory = directory  # created: the staging folder; otherwise the function's folder
        self.record = record  # the function's record as the commit will write it (name, code sha256)
        self.bundle_dir = bundle_dir  # where the staged code is (None: unchanged, nothing staged)
        self.pool: _Pool | None = None
        self.function = FunctionInfo(
            name=record.get("name") or directory.name, project_id=key, code_sha256=bundle.code_sha256,
            status=FunctionStatus.PENDING if action != "unchanged" else FunctionStatus.INACTIVE,
            provider=provider.name, created=record.get("created"), updated=record.get("updated"),
            extra={"path": str(directory), "staged": action != "unchanged"})

    def start(self) -> None:
        """Start the staged servers (without waiting: the first request waits for them)."""
        provider = self.provider
        with provider._lock:
            if self.pool is None:
                self.pool = _Pool([provider._new_server(self.directory, self.record, self.bundle_dir)
                                   for _ in range(provider.instances)], self.bundle.code_sha256)
        for server in self.pool.servers:
            if not server.alive:
                server.start()

    def commit(self) -> DeployResult:
        if self.action == "unchanged":
            return DeployResult(function=self.provider._info(self.directory, self.provider._read_record(self.directory)),
                                action="unchanged")
        return self.provider._commit(self)

    def discard(self) -> None:
        if self.action != "unchanged":
            self.provider._discard(self)


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
        self._staged: dict[str, _LocalStaged] = {}  # project key -> a deploy staged, not yet committed
        self._links: list[Path] = []  # symlinks that keep committed staged servers' old paths valid
        self._lock = threading.RLock()
        try:
            self.functions_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderError(f"cannot use the state folder {self.home}: cannot create {self.functions_dir}: "
                                f"{exc.strerror or exc} (set {HOME_ENV} to a folder you can write)") from None
        for directory in self._function_dirs():  # servers whose owner was killed without cleanup
            reap_orphans(directory / "run")
        self._remove_stale_staging()

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
        if not _code_on_disk(directory):
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

    def _new_server(self, directory: Path, record: dict, bundle_dir: Path | None = None) -> FunctionServer:
        """A server for the function in ``directory`` (its home, log and run records), serving
        ``bundle_dir`` (default: the function's bundle; a staged one before a deploy is committed)."""
        home = directory / "home"
        home.mkdir(exist_ok=True)
        name = record.get("name") or directory.name
        return FunctionServer(
            bundle_dir=bundle_dir or directory / BUNDLE_DIR,
            log_path=directory / LOG_FILE,
            run_dir=directory / "run",
            environment=self._environment(home, name, record["code_sha256"]),
            limits=self.limits,
            label=f"function {name} (project {record.get('project_id')})",
        )

    @staticmethod
    def _environment(home: Path, name: str, sha: str):
        return lambda port: function_environment(
            home=str(home), function_name=name, revision=f"{name}-{sha[:12]}", port=port)

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
            pools += [staged.pool for staged in self._staged.values() if staged.pool is not None]
            links, self._links = self._links, []
        for pool in pools:
            pool.stop("provider closed")
        for link in links:  # the old paths of committed staged servers, now that those servers are gone
            with contextlib.suppress(OSError):
                link.unlink()

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
        while they start (Pending); the first invoke waits. ``start=False``: an identical redeploy is a
        true no-op (nothing probed, started or logged).
        """
        result = self.stage(project_id, metric_path, requirements=requirements, start=False).commit()
        directory = Path(result.function.extra["path"])
        record = self._read_record(directory)
        if start:
            try:
                self._start_pool(directory, record, wait=wait)
            except ServerStartError:
                pass  # recorded as Failed in function.json; reported through the status below
            record = self._read_record(directory)
        return DeployResult(function=self._info(directory, record), action=result.action)

    def stage(
        self,
        project_id,
        metric_path: str | os.PathLike,
        *,
        requirements: str | os.PathLike | None = None,
        start: bool = True,
    ) -> "_LocalStaged":
        """Stage a deploy: the new code is written beside the function and its metric probed, and (with
        ``start``) its server starts - answering this provider's invokes for the project - while the
        deployed function stays as it was until ``commit()``; ``discard()`` leaves no trace.

        A first deploy is staged in ``functions/.staging-<pid>-<name>/`` (a complete function folder,
        renamed into place on commit); an update in ``<function>/.bundle-staged-<pid>-<n>/`` (swapped for
        ``bundle/`` on commit). Unchanged code stages nothing: its regular servers start.
        """
        key = project_key(project_id)
        bundle = build_bundle(metric_path, requirements)
        shown = str(metric_path)
        with self._state_lock():
            if key in self._staged:
                raise ProviderError(f"a deploy of project {key} is already staged by this provider")
            found = self._find(key)
            if found is not None and found[1] is None:
                raise ProviderError(
                    f"{found[0] / RECORD_FILE} is unreadable; run `lse-metrics delete --project {key}` "
                    "(or remove the folder) and deploy again")
            if found is None:
                staged = self._stage_new(key, bundle, shown)
            else:
                directory, record = found
                if record.get("code_sha256") == bundle.code_sha256 and _bundle_on_disk(directory / BUNDLE_DIR, bundle):
                    staged = _LocalStaged(self, key, "unchanged", bundle, directory, record, None)
                else:
                    staged = self._stage_update(key, directory, record, bundle, shown)
        if staged.action == "unchanged":
            if start:
                self._start_pool(staged.directory, staged.record, wait=False)
            return staged
        with self._lock:
            self._staged[key] = staged
        if start:
            staged.start()
        return staged

    def _stage_new(self, key: str, bundle: Bundle, shown: str) -> "_LocalStaged":
        ts = int(time.time())
        while (self.functions_dir / function_name(key, ts)).exists() or any(
                self.functions_dir.glob(f".staging-*-{function_name(key, ts)}")):
            ts += 1  # a name is never reused, even for a function deleted within the same second
        name = function_name(key, ts)
        staging = self.functions_dir / f".staging-{os.getpid()}-{name}"
        shutil.rmtree(staging, ignore_errors=True)
        bundle.write_dir(staging / BUNDLE_DIR)
        (staging / "home").mkdir()
        (staging / LOG_FILE).touch()
        try:
            self._probe(staging / BUNDLE_DIR, staging / "home", name, bundle, shown, "nothing was deployed")
        except MetricLoadError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        record = self._record(key, name, bundle, time.time())
        return _LocalStaged(self, key, "created", bundle, staging, record, staging / BUNDLE_DIR)

    def _stage_update(self, key: str, directory: Path, record: dict, bundle: Bundle, shown: str) -> "_LocalStaged":
        fresh = directory / f".bundle-staged-{os.getpid()}-{time.monotonic_ns()}"
        bundle.write_dir(fresh)
        (directory / "home").mkdir(exist_ok=True)
        try:
            self._probe(fresh, directory / "home", directory.name, bundle, shown,
                        f"function {directory.name} keeps its previous code")
        except MetricLoadError as exc:
            shutil.rmtree(fresh, ignore_errors=True)
            log_event(directory / LOG_FILE, "ERROR", f"deploy refused: {exc}")
            raise
        staged_record = dict(record, code_sha256=bundle.code_sha256, name=directory.name)
        return _LocalStaged(self, key, "updated", bundle, directory, staged_record, fresh)

    def _remove_stale_staging(self) -> None:
        """Staged deploys of processes that died before committing or discarding them."""
        leftovers = list(self.functions_dir.glob(".staging-*"))
        for directory in self._function_dirs():
            leftovers += [*directory.glob(".bundle-staged-*"), *directory.glob(".bundle-old-*")]
        for path in leftovers:
            # .staging-<pid>-<name>, .bundle-staged-<pid>-<n>, .bundle-old-<pid>-<n>
            pid = path.name.split("-")[1 if path.name.startswith(".staging-") else 2]
            if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
                if path.is_symlink():
                    with contextlib.suppress(OSError):
                        path.unlink()
                else:
                    reap_orphans(path / "run")
                    shutil.rmtree(path, ignore_errors=True)

    def _commit(self, staged: "_LocalStaged") -> DeployResult:
        """Swap a staged deploy in; its servers keep serving from the final folder."""
        now = time.time()
        with self._state_lock():
            with self._lock:
                if self._staged.get(staged.key) is not staged:
                    raise ProviderError(f"the staged deploy of project {staged.key} was already committed or discarded")
            if staged.action == "created":
                found = self._find(staged.key)
                if found is not None and found[1] is not None:
                    # another process created the project's function meanwhile: update that one instead
                    fresh = found[0] / f".bundle-staged-{os.getpid()}-{time.monotonic_ns()}"
                    shutil.copytree(staged.directory / BUNDLE_DIR, fresh)
                    self._stop_staged(staged)
                    shutil.rmtree(staged.directory, ignore_errors=True)
                    self._swap_bundle(found[0], fresh, staged.bundle, now)
                    with self._lock:
                        self._staged.pop(staged.key, None)
                    return DeployResult(function=self._info(found[0], self._read_record(found[0])), action="updated")
                final = self.functions_dir / staged.record["name"]
                record = dict(staged.record, created=now, updated=now)
                if staged.pool is not None:
                    record.update(self._start_outcome(staged.pool.servers))
                _write_json(staged.directory / RECORD_FILE, record)
                os.replace(staged.directory, final)  # the function appears complete or not at all
                old, directory = staged.directory, final
            else:
                directory = staged.directory
                old = staged.bundle_dir
                self._swap_bundle(directory, staged.bundle_dir, staged.bundle, now)
                if staged.pool is not None:
                    self._update_record(directory, **self._start_outcome(staged.pool.servers))
            with self._lock:
                self._staged.pop(staged.key, None)
                if staged.pool is not None:
                    # the staged servers become the function's: they keep running, now from the final
                    # folder (a symlink keeps the paths they were started with valid until they stop)
                    with contextlib.suppress(OSError):
                        os.symlink(directory.name if staged.action == "created" else BUNDLE_DIR, old)
                        self._links.append(old)
                    record = self._read_record(directory) or staged.record
                    for server in staged.pool.servers:
                        server.bundle_dir = directory / BUNDLE_DIR
                        server.log_path = directory / LOG_FILE
                        server.run_dir = directory / "run"
                        server.environment = self._environment(directory / "home", directory.name,
                                                               staged.bundle.code_sha256)
                    previous = self._pools.pop(directory.name, None)
                    self._pools[directory.name] = staged.pool
                else:
                    previous = None
        if previous is not None and previous is not staged.pool:
            previous.stop("code updated")
        return DeployResult(function=self._info(directory, self._read_record(directory)), action=staged.action)

    @staticmethod
    def _start_outcome(servers: list[FunctionServer]) -> dict:
        """The record's state after these servers started: Failed with the first start error, else Deployed."""
        failed = [s.error for s in servers if s.state == "failed"]
        return {"state": "Failed", "error": failed[0]} if failed else {"state": "Deployed", "error": None}

    def _discard(self, staged: "_LocalStaged") -> None:
        with self._lock:
            if self._staged.get(staged.key) is not staged:
                return
            self._staged.pop(staged.key, None)
        self._stop_staged(staged)
        shutil.rmtree(staged.directory if staged.action == "created" else staged.bundle_dir, ignore_errors=True)

    @staticmethod
    def _stop_staged(staged: "_LocalStaged") -> None:
        if staged.pool is not None:
            staged.pool.stop("staged deploy discarded")

    def _swap_bundle(self, directory: Path, fresh: Path, bundle: Bundle, now: float) -> None:
        """Put the probed bundle in ``fresh`` in place of the function's; stop this provider's servers of
        the old code."""
        old = directory / f".bundle-old-{os.getpid()}-{time.monotonic_ns()}"
        with self._lock:
            pool = self._pools.get(directory.name)
            if pool is not None and pool.code_sha256 != bundle.code_sha256:
                self._pools.pop(directory.name, None)
            else:
                pool = None
        if pool:
            pool.stop("code updated")
        if (directory / BUNDLE_DIR).exists():
            os.replace(directory / BUNDLE_DIR, old)
        os.replace(fresh, directory / BUNDLE_DIR)
        shutil.rmtree(old, ignore_errors=True)
        self._update_record(directory, code_sha256=bundle.code_sha256, metric_path=bundle.metric_path,
                            files=bundle.names, updated=now, state="Deployed", error=None)

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
        staged = self._staged.get(project_key(project_id))
        if staged is not None and staged.pool is not None:
            # code staged for a deploy: it answers, but the deployed function's record is not touched
            directory, pool = None, staged.pool
        else:
            directory, record = self._require(project_id)
            if not _code_on_disk(directory):  # what status calls NotFound
                name = record.get("name") or directory.name
                raise ProviderError(
                    f"function {name} (project {project_key(project_id)}) is NotFound: its code in "
                    f"{directory / BUNDLE_DIR} is missing or incomplete; deploy the metric again "
                    f"(lse-metrics deploy --project {project_key(project_id)} --metric FILE)")
            pool = self._pool(directory, record)
        server = pool.idle.get()
        try:
            starts_now = server.state not in ("ready", "failed") or not server.alive
            try:
                answer = server.request(body)
            except ServerStartError as exc:
                if directory is not None:
                    self._update_record(directory, state="Failed", error=str(exc))
                raise
            finally:
                if directory is not None and starts_now and server.state in ("ready", "failed"):
                    self._update_record(directory, **self._start_outcome([server]))
        finally:
            pool.idle.put(server)
        return json.loads(answer)

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
