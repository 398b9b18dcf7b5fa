"""`lse-metrics`: score a Label Studio export with a custom metric, and manage the metric functions.

Exit codes: 0 the command ran (pair errors are results, reported in the outputs and the summary);
2 bad input (export, metric file, annotation file, options, an unusable --out folder, a project with no
function); 3 the provider is unavailable or failed; 4 the outputs could not be written at the end;
128 + the signal when interrupted: 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
"""
from __future__ import annotations

import gc
import hashlib
import itertools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lse_custom_metrics.runtime.batching import DEFAULT_BATCH_PAIRS
from lse_custom_metrics.runtime.export import Export, ExportError, iter_export, read_annotation_file
from lse_custom_metrics.runtime.providers.base import (
    FunctionNotDeployed, InvokeError, MetricLoadError, ProviderError, RuntimeLimits,
)
from lse_custom_metrics.runtime.providers.naming import InvalidProjectId, check_project_id

EXIT_BAD_INPUT = 2
EXIT_PROVIDER = 3
EXIT_OUTPUT = 4
PROVIDERS = ("local", "aws", "gcp")


def _console(stderr: bool = False) -> Console:
    """Messages are never wrapped (the terminal wraps them; piped, a log line or path stays one line to
    grep); piped output also gets room for tables as wide as their content instead of rich's 80 columns."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, soft_wrap=True, width=240)
    return console


out = _console()
err = _console(stderr=True)


class CliError(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _open_provider(name: str | None, **options):
    """The provider named (or CUSTOM_METRIC_PROVIDER, else local), with a clear message if unavailable."""
    if name is None:
        _check_provider_variable()
    try:
        from lse_custom_metrics.runtime.providers import get_provider
    except ImportError as exc:
        raise CliError(f"the provider registry is not available in this installation: {exc}", EXIT_PROVIDER)
    try:
        return get_provider(name, **options)
    except (ProviderError, ValueError, NotImplementedError, ImportError, KeyError) as exc:
        raise CliError(f"{_provider_source(name)} is not available: {exc}", EXIT_PROVIDER) from None


def _provider_source(name: str | None) -> str:
    """The provider chosen and where the choice came from, as the messages name it."""
    if name:
        return f"provider {name!r} (--provider)"
    value = os.environ.get("CUSTOM_METRIC_PROVIDER", "").strip()
    if value:
        return f"provider {value.lower()!r} (from the CUSTOM_METRIC_PROVIDER environment variable)"
    return "provider 'local' (the default: no --provider, CUSTOM_METRIC_PROVIDER unset)"


def _check_provider_variable() -> None:
    """An unknown CUSTOM_METRIC_PROVIDER is a bad option (exit 2), said in the variable's own terms."""
    value = os.environ.get("CUSTOM_METRIC_PROVIDER", "").strip()
    if value and value.lower() not in PROVIDERS:
        raise CliError(f"CUSTOM_METRIC_PROVIDER={value!r} is not a provider: allowed values are "
                       f"{', '.join(PROVIDERS)} (unset it to use local)", EXIT_BAD_INPUT)


def _check_metric(path: str) -> str:
    """Validate the metric file (exit 2 if it cannot be deployed), warn about imports LSE will lack."""
    from lse_custom_metrics.runtime.bundle import MetricValidationError, import_warnings, validate_metric

    try:
        source = validate_metric(path)
    except MetricValidationError as exc:
        raise CliError(f"bad metric file: {exc}", EXIT_BAD_INPUT) from None
    for warning in import_warnings(path, source=source):
        err.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _deploy(provider, project: str, metric: str, **options):
    return _deploying(provider.deploy, provider, project, metric, **options)


def _deploying(operation, provider, project: str, metric: str, **options):
    """`operation(project, metric)` (a provider's deploy or stage), its failures as the CLI reports them."""
    try:
        return operation(project, metric, **options)
    except MetricLoadError as exc:  # a bad metric file; the deployed function (if any) is unchanged
        raise CliError(f"bad metric file: the function cannot load it: {exc}", EXIT_BAD_INPUT) from None
    except ProviderError as exc:
        raise CliError(f"could not deploy {metric} for project {project} on {provider.name}: {exc}",
                       EXIT_PROVIDER) from None


def _project_of(export, project: str | None) -> str:
    if project is not None:
        return str(project)
    projects = export.projects
    if not projects:
        raise CliError(f"{export.path}: the export has no `project` field; pass --project ID", EXIT_BAD_INPUT)
    return _export_project(projects[0], export.path)


def _usable_project(value) -> bool:
    try:
        check_project_id(value)
    except InvalidProjectId:
        return False
    return True


def _export_project(value, path) -> str:
    """The export's own `project` field as a project id, or a bad-input error naming the file and the rule."""
    try:
        return check_project_id(value)
    except InvalidProjectId as exc:
        raise CliError(f"{path}: the export's `project` field {value!r} is not a usable project id: {exc.rule}; "
                       "pass --project ID", EXIT_BAD_INPUT) from None


def _check_project_option(ctx, param, value):
    """--project must name a function: custom-metric-<project>-<unix ts>, at most 63 characters."""
    if value is None:
        return None
    try:
        return check_project_id(value)
    except InvalidProjectId as exc:
        raise CliError(f"--project {value!r} is not a usable project id: {exc.rule}", EXIT_BAD_INPUT) from None


provider_option = click.option(
    "--provider", type=click.Choice(PROVIDERS), default=None,
    help="Where the function runs (default: $CUSTOM_METRIC_PROVIDER, else local).")
project_option = click.option("--project", "project", required=True, callback=_check_project_option,
                              help="Label Studio project id.")


def limits_options(command):
    """--timeout-s and --memory-mb: the local provider's per-request limits (RuntimeLimits)."""
    defaults = RuntimeLimits()
    command = click.option(
        "--memory-mb", type=click.IntRange(min=32), default=defaults.memory_mb, show_default=True,
        help="local provider only: memory limit of the function process, in MB. LSE's value is fixed in "
             "the cloud; change it only for local experiments.")(command)
    return click.option(
        "--timeout-s", type=click.FloatRange(min=0.1), default=defaults.timeout_s, show_default=True,
        help="local provider only: seconds a request may take. LSE's value is fixed in the cloud; change "
             "it only for local experiments.")(command)


def _limits(timeout_s: float, memory_mb: int) -> RuntimeLimits:
    return replace(RuntimeLimits(), timeout_s=float(timeout_s), memory_mb=int(memory_mb))


class _Group(click.Group):
    """Ctrl-C or SIGTERM in any command: the command's clean-up runs, one line is printed, exit 128+signal."""

    def invoke(self, ctx: click.Context):
        _Shutdown.last_signal = None
        previous = _install(signal.SIGTERM, _raise_interrupt)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            signum = _Shutdown.last_signal or signal.SIGINT
            err.print(f"interrupted by {signal.Signals(signum).name}", highlight=False)
            raise click.exceptions.Exit(128 + signum) from None
        finally:
            _install(signal.SIGTERM, previous)


def _install(signum: int, handler):
    """Set a signal handler (only possible in the main thread); returns the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signum, handler)


def _raise_interrupt(signum, frame):
    _Shutdown.last_signal = signum
    raise KeyboardInterrupt


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lse-custom-metrics")
def main() -> None:
    """Deploy, run and score Label Studio Enterprise custom agreement metrics."""


@main.command()
@click.argument("export_path", metavar="EXPORT", type=click.Path(dir_okay=False))
@click.option("--metric", "metric_path", required=True, type=click.Path(dir_okay=False),
              help="Python file defining agreement(annotation_1, annotation_2, per_label=False).")
@provider_option
@click.option("--project", default=None, callback=_check_project_option,
              help="Project id (default: the export's `project` field).")
@click.option("--predictions", is_flag=True, help="Also score every annotation against every prediction.")
@click.option("--per-label", is_flag=True, help="Also ask the metric for per-label scores.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: ./agreement-<project>).")
@click.option("--batch-pairs", type=click.IntRange(min=1), default=DEFAULT_BATCH_PAIRS, show_default=True,
              help="Most pairs per request (requests also stay under the provider's byte limit).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Requests prepared and sent at once (default: one per function instance; local: +1 "
                   "being prepared while the function works).")
@click.option("--instances", type=click.IntRange(min=1), default=None,
              help="local provider only: function servers to run (default 1, as LSE).")
@limits_options
def score(export_path, metric_path, provider, project, predictions, per_label, out_dir, batch_pairs,
          concurrency, instances, timeout_s, memory_mb):
    """Score every task of a Label Studio JSON EXPORT with a custom metric."""
    from lse_custom_metrics.runtime.report import preload_plotting, summary_warnings
    from lse_custom_metrics.runtime.scorer import score_export

    sha256 = _check_metric(metric_path)
    # Before anything is deployed or scored: a bad folder must not cost a whole run.
    if out_dir:
        _check_out(out_dir)
    else:  # ./agreement-<project>: the project is known later, the current folder must be writable now
        _check_default_out_parent()
    backend = _open_provider(provider, limits=_limits(timeout_s, memory_mb),
                             **({"instances": instances} if instances else {}))
    shutdown = _Shutdown(backend).install()
    # A scoring run builds one large acyclic tree (the export) and then only short-lived objects: the
    # cyclic garbage collector would re-scan that tree again and again for nothing.
    gc.disable()
    stager = _EarlyStage(backend, metric_path)
    export = document = None
    try:
        # The project's function is staged as soon as the first task is read (locally its server boots
        # while the rest is parsed, and answers requests meanwhile), but swapped in only once the whole
        # export has been read: a refused export deploys and changes nothing.
        export = Export(path=str(export_path), tasks=[])
        try:
            tasks = iter_export(export_path, on_first_task=lambda task: stager(project or task.project))
            first = next(tasks, None)
            project_id = str(project) if project is not None else None
            if project_id is None and first is not None and first.project is not None:
                project_id = _export_project(first.project, export_path)
            if project_id is None:  # no project on the first task: the whole export decides (or fails)
                export.tasks = ([first] if first else []) + list(tasks)
                project_id = _project_of(export, None)
                incoming = None
            else:
                incoming = itertools.chain([first] if first else [], tasks)
        except ExportError as exc:
            raise CliError(str(exc), EXIT_BAD_INPUT) from None
        out_path = Path(out_dir) if out_dir else _check_out(f"agreement-{project_id}")
        staged = stager.for_project(project_id) or stager.stage(project_id)
        if staged is None:  # the provider cannot run code it has not deployed: read everything first
            if incoming is not None:
                try:
                    export.tasks = list(incoming)
                except ExportError as exc:
                    raise CliError(str(exc), EXIT_BAD_INPUT) from None
                incoming = None
            stager.deployed = _deploy(backend, project_id, metric_path)
        function = staged.function if staged is not None else stager.deployed.function
        metric = {"path": str(metric_path), "sha256": sha256, "function": function.name,
                  "provider": backend.name}
        workers = concurrency or _default_concurrency(backend)
        encoded = backend.name == "local"  # the local provider forwards ready JSON bytes as they are
        # matplotlib's import is slow: do it once the export is read, while this process mostly waits
        # for the function's last answers (earlier, it would slow down reading the export).
        plotting = threading.Thread(target=preload_plotting, name="lse-preload-plotting", daemon=True)

        def export_read() -> None:  # the whole export is in: the staged function can be swapped in
            stager.commit()
            plotting.start()

        if incoming is None:
            export_read()
        else:
            incoming = _then(incoming, export_read)
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("pairs"),
                      TimeElapsedColumn(), console=err, transient=False) as progress:
            bar = progress.add_task("pairs", total=None)
            try:
                document = score_export(
                    export, _Refusing(backend, shutdown.stopping), project_id, metric=metric, per_label=per_label, predictions=predictions,
                    batch_pairs=batch_pairs, concurrency=workers, encoded=encoded, incoming=incoming,
                    on_progress=lambda n: progress.advance(bar, n),
                    on_planned=lambda n: progress.update(bar, total=n))
            except ExportError as exc:
                raise CliError(str(exc), EXIT_BAD_INPUT) from None
            except ProviderError as exc:
                if shutdown.stopping.is_set():  # our own stop made the last requests fail
                    raise KeyboardInterrupt from None
                raise CliError(f"scoring stopped, the provider failed: {exc}", EXIT_PROVIDER) from None
            progress.update(bar, total=len(document["tasks"]) and sum(
                len(t["pairs"]) + len(t["predictions"]) for t in document["tasks"]))
        err.print(_staged_line(stager.deployed, backend), highlight=False)
        _refuse_unloadable_metric(document, metric_path)
        if len(export.projects) > 1 and project is None:
            err.print(f"note: the export mixes projects {', '.join(map(str, export.projects))}; scored as "
                      f"project {project_id} (the first task's). Pass --project to choose.", highlight=False)
        document["export"] = {"path": str(export_path), "tasks": len(export.tasks),
                              "projects": [str(p) for p in export.projects]}
        document["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        document["summary"]["warnings"] = summary_warnings(document)
        if plotting.ident:  # started: let the import finish before rendering
            plotting.join()
        with shutdown.deferred():  # all three files or none: a signal now waits for the writing to end
            paths = _write(document, out_path)
        _print_summary(document, paths)
        if shutdown.signum:
            shutdown.stop_servers()
            err.print(f"interrupted by {shutdown.signal_name} while writing; the outputs were completed",
                      highlight=False)
            raise click.exceptions.Exit(128 + shutdown.signum)
    except KeyboardInterrupt:
        if not shutdown.signum:  # a KeyboardInterrupt not from our handler (e.g. raised in a thread)
            shutdown.signum = signal.SIGINT
        shutdown.stop_servers()
        name = "function server" if backend.name == "local" else "run"
        err.print(f"interrupted by {shutdown.signal_name}: stopped the {name}, no outputs written", highlight=False)
        if stager.deployed is not None:  # the whole export was read before the signal: the swap stands
            err.print(_staged_line(stager.deployed, backend) + " (the export had been read entirely; the "
                      "function stays deployed)", highlight=False)
        raise click.exceptions.Exit(128 + shutdown.signum) from None
    finally:
        shutdown.uninstall()
        try:
            stager.discard()  # not committed (the export or the run failed): nothing is deployed or changed
        finally:
            backend.close()
            _PARKED[:] = [export, document]
            # Millions of objects were allocated with the collector off: re-enabled as they are, its next
            # young-generation pass would scan all of them (~0.3 s). Frozen, it never looks at them again;
            # they are still freed as soon as nothing refers to them.
            gc.freeze()
            gc.enable()


class _Refusing:
    """The provider, refusing new requests once a shutdown began (queued requests then end at once)."""

    def __init__(self, provider, stopping: threading.Event):
        self._provider, self._stopping = provider, stopping

    def invoke(self, project_id, payload):
        if self._stopping.is_set():
            raise ProviderError("interrupted: no more requests are sent")
        return self._provider.invoke(project_id, payload)

    def __getattr__(self, name):
        return getattr(self._provider, name)


class _Shutdown:
    """Turns SIGINT and SIGTERM during `score` into a prompt, orderly stop.

    The handler marks the run as stopping (no new requests), raises KeyboardInterrupt in the main
    thread and, from a helper thread, keeps stopping the function servers until the run has wound down:
    requests in flight then fail at once instead of running the metric to its end, and a server that a
    late request restarted is stopped again. A run that still has not wound down after GRACE_S seconds
    is ended hard (servers stopped first).
    """

    GRACE_S = 10.0
    last_signal: int | None = None  # for commands that only turn SIGTERM into KeyboardInterrupt

    def __init__(self, backend):
        self.backend = backend
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.signum: int | None = None
        self._defer = False
        self._previous: dict[int, Any] = {}

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def install(self) -> "_Shutdown":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = _install(signum, self._handle)
        return self

    def uninstall(self) -> None:
        self.finished.set()
        for signum, handler in self._previous.items():
            _install(signum, handler)

    def _handle(self, signum, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = _Shutdown.last_signal = signum
        if self._defer:
            return  # writing the outputs: finish them, then stop
        if first:
            self.stopping.set()
            threading.Thread(target=self._wind_down, name="lse-shutdown", daemon=True).start()
        raise KeyboardInterrupt

    def deferred(self):
        shutdown = self

        class _Deferred:
            def __enter__(self):
                shutdown._defer = True

            def __exit__(self, *exc):
                shutdown._defer = False

        return _Deferred()

    def stop_servers(self) -> None:
        """Stop every function server this process runs (the provider's and any restarted since)."""
        from lse_custom_metrics.runtime.supervisor import stop_all_servers

        try:
            self.backend.close()
        except Exception:  # noqa: BLE001 - stopping must go on: the steps below are the backstop
            pass
        stop_all_servers()
        _kill_child_process_groups()

    def _wind_down(self) -> None:
        deadline = time.monotonic() + self.GRACE_S
        while not self.finished.wait(0.1):
            self.stop_servers()
            if time.monotonic() > deadline:
                err.print(f"interrupted by {self.signal_name}: the run did not stop within {self.GRACE_S:g} s; "
                          "stopped the function servers and quit", highlight=False)
                os._exit(128 + (self.signum or signal.SIGINT))


def _kill_child_process_groups() -> None:
    """SIGKILL every process group led by a child of this process: the function servers (each runs in
    its own session) and anything a metric started, including one a late request restarted while the
    provider was being closed."""
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for child in children:
        try:
            if os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, signal.SIGKILL)
            else:
                child.kill()
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    psutil.wait_procs(children, timeout=2)


def _check_out(out_dir: str) -> Path:
    from lse_custom_metrics.runtime.report import OutputError, check_out_dir

    try:
        check_out_dir(out_dir)
    except OutputError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    return Path(out_dir)


def _check_default_out_parent() -> None:
    from lse_custom_metrics.runtime.report import OutputError, check_out_dir

    try:
        check_out_dir(Path.cwd())
    except OutputError as exc:
        problem = str(exc).split(": ", 1)[1]  # drop check_out_dir's "cannot use --out <dir>" prefix
        raise CliError(f"cannot write the default output folder ./agreement-<project> here: {problem}; "
                       "pass --out DIR", EXIT_BAD_INPUT) from None


def _write(document: dict, out_path: Path) -> dict:
    """Write the outputs; if that fails now, keep the results in a temp folder and say where."""
    from lse_custom_metrics.runtime.report import OutputError, rescue_json, write_outputs

    try:
        return write_outputs(document, out_path)
    except OutputError as exc:
        rescued = rescue_json(document)
        kept = f"; the results were saved to {rescued} instead" if rescued else ""
        raise CliError(f"{exc}{kept}", EXIT_OUTPUT) from None


def _refuse_unloadable_metric(document: dict, metric_path: str) -> None:
    """A metric the function cannot even import is a bad metric file, not a run with pair errors."""
    errors = [p["error"] for t in document["tasks"] for p in t["pairs"] + t["predictions"]]
    if errors and all(e is not None and e.startswith("MetricLoadError:") for e in errors):
        detail = errors[0].removeprefix("MetricLoadError: ")
        raise CliError(f"bad metric file: the function could not load {metric_path}: {detail}", EXIT_BAD_INPUT)


def _then(items, callback):
    """Yield from `items`, then call `callback` (when the iterator is exhausted)."""
    yield from items
    callback()


class _EarlyStage:
    """Stages the project's function as soon as the first task is read, and swaps it in at the end.

    Locally the staged server boots in its own process while the rest of the export is parsed, and
    answers the requests sent meanwhile; ``commit`` (once the export has been read entirely) makes it
    the project's function, ``discard`` (any failure before) leaves the function - or its absence - as it
    was. Providers that cannot run staged code return None from ``stage``: the caller then reads the
    whole export before it deploys.
    """

    def __init__(self, backend, metric_path: str):
        self.backend, self.metric_path = backend, metric_path
        self.project: str | None = None
        self.staged = None
        self.deployed = None  # the DeployResult, once committed (or deployed directly)

    def __call__(self, project) -> None:
        if self.project is not None or project is None or not _usable_project(project):
            return  # an unusable project field is reported once the first task is in
        self.project = str(project)
        try:
            self.staged = self.backend.stage(self.project, self.metric_path, start=True)
        except ProviderError:
            self.staged = None  # stage() at the usual point reports the problem

    def for_project(self, project_id: str):
        return self.staged if self.project == project_id else None

    def stage(self, project_id: str):
        """Stage at the usual point (the first task's project was not the one scored, or staging failed)."""
        self.discard()
        self.project = project_id
        self.staged = _deploying(self.backend.stage, self.backend, project_id, self.metric_path, start=True)
        return self.staged

    def commit(self) -> None:
        if self.staged is not None and self.deployed is None:
            self.deployed = self.staged.commit()

    def discard(self) -> None:
        staged, self.staged = self.staged, None
        if staged is not None and self.deployed is None:
            staged.discard()


def _staged_line(deployed, backend) -> str:
    """What `score` did to the project's function: `created|updated|unchanged <name> on <provider>`."""
    return f"{deployed.action} {deployed.function.name} on {backend.name}"


def _default_concurrency(provider) -> int:
    # One request per function instance keeps LSE's queueing. The local provider queues requests for a
    # free instance on our side, so one more request can be prepared while the function works.
    instances = max(1, int(getattr(provider, "instances", None) or provider.limits.max_instances))
    return instances + 1 if provider.name == "local" else instances


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"


def _print_summary(document: dict, paths: dict) -> None:
    summary = document["summary"]
    table = Table(title=f"Agreement — project {document['project']} ({document['metric']['function']})")
    for column in ("tasks", "scored tasks", "pairs", "errors", "agreement"):
        table.add_column(column, justify="right")
    table.add_row(str(summary["tasks"]), str(summary["scored_tasks"]), str(summary["pairs"]),
                  str(summary["errors"]), _num(summary["agreement"]))
    out.print(table)
    for warning in summary.get("warnings", []):
        out.print(f"[bold red]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if "prediction_pairs" in summary:
        out.print(f"predictions: {summary['prediction_pairs']} pairs, {summary['prediction_errors']} errors, "
                  f"agreement {_num(summary['prediction_agreement'])}", highlight=False)
    if summary.get("label_errors"):
        out.print(f"label errors: {summary['label_errors']} scored pair(s) have no per-label result "
                  "(see labels_error in agreement.json)", highlight=False)
    if document["annotators"]:
        people = Table(title="Annotators")
        for column in ("annotator", "pairs", "errors", "agreement"):
            people.add_column(column, justify="right")
        for name, info in document["annotators"].items():
            people.add_row(name, str(info["pairs"]), str(info["errors"]), _num(info["agreement"]))
        out.print(people)
    if summary.get("labels"):
        labels = Table(title="Per label")
        labels.add_column("label")
        labels.add_column("agreement", justify="right")
        for label, value in summary["labels"].items():
            labels.add_row(label, _num(value))
        out.print(labels)
    errors = [(t["id"], p) for t in document["tasks"] for p in t["pairs"] + t["predictions"] if p["error"]]
    if errors:
        shown = Table(title=f"Pair errors ({len(errors)})")
        for column in ("task", "a", "b", "error"):
            shown.add_column(column)
        for task_id, pair in errors[:20]:
            shown.add_row(str(task_id), str(pair["a"]), str(pair["b"]), pair["error"])
        out.print(shown)
        if len(errors) > 20:
            out.print(f"... and {len(errors) - 20} more in agreement.json", highlight=False)
    out.print(f"wrote {paths['json']}, {paths['csv']}, {paths['png']}", highlight=False)


@main.command()
@project_option
@click.option("--metric", "metric_path", required=True, type=click.Path(dir_okay=False))
@provider_option
@limits_options
def deploy(project, metric_path, provider, timeout_s, memory_mb):
    """Create or update the project's metric function (identical code: nothing to do)."""
    _check_metric(metric_path)
    backend = _open_provider(provider, limits=_limits(timeout_s, memory_mb))
    try:
        # No server is started: a new or changed metric was already loaded by the deploy's own probe, and
        # unchanged code is left alone entirely (no probe, no server, no log line).
        result = _deploy(backend, project, metric_path, start=False)
    finally:
        backend.close()
    out.print(_deployed_line(backend, project, result), highlight=False, soft_wrap=True)


# What each state means for a function this command just deployed (shown after the state).
_STATE_NOTES = {
    "Inactive": "starts on the next request",
    "Pending": "its server is starting",
    "Failed": "see lse-metrics logs --project {project}",
}


def _deployed_line(backend, project: str, result) -> str:
    """The deploy outcome with the state the function is in now that this command ends.

    The local provider stops the servers this process started when it exits, so the function the
    command reports is Inactive (it starts again on the next request), not the Active it was meanwhile.
    """
    try:
        state = backend.status(project)
    except ProviderError:
        state = result.function.status
    state = getattr(state, "value", str(state))
    note = _STATE_NOTES.get(state)
    shown = f"{state}: {note.format(project=project)}" if note else state
    return (f"{result.action} {result.function.name} on {backend.name} ({shown}), "
            f"code sha256 {result.function.code_sha256}")


def _local_python() -> str:
    """What the local provider runs functions on, next to what LSE runs them on."""
    version = ".".join(map(str, sys.version_info[:3]))
    return (f"local functions run on this machine's Python {version} ({sys.executable}) with every package "
            f"installed there; LSE runs them on Python {RuntimeLimits().python} (its docs offer no way to add packages)")


# States in which a deployed function cannot answer (`status --strict` exits 1 on them).
_BROKEN_STATES = {"Failed", "NotFound", "Error"}


@main.command()
@project_option
@provider_option
@click.option("--strict", is_flag=True,
              help="Exit 2 when the project has no function, 1 when it is Failed, NotFound or Error.")
def status(project, provider, strict):
    """Show the state of the project's function (NotDeployed, Pending, Active, ...)."""
    backend = _open_provider(provider)
    try:
        state = _call(backend, "status", project)
    finally:
        backend.close()
    shown = getattr(state, "value", str(state))
    if strict and shown == "NotDeployed":
        raise _no_function(project)
    out.print(shown, highlight=False)
    if backend.name == "local":  # on stderr: stdout stays the state alone, for scripts
        err.print(f"runtime: {_local_python()}", highlight=False, soft_wrap=True)
    if strict and shown in _BROKEN_STATES:
        sys.exit(1)


@main.command()
@project_option
@click.argument("annotation_1", type=click.Path(dir_okay=False))
@click.argument("annotation_2", type=click.Path(dir_okay=False))
@click.option("--per-label", is_flag=True)
@provider_option
@limits_options
def invoke(project, annotation_1, annotation_2, per_label, provider, timeout_s, memory_mb):
    """Score one pair: two files each holding an annotation (or prediction) in Label Studio JSON.

    Prints the function's reply; exits 1 when the metric reported an error for the pair.
    """
    try:
        first, second = read_annotation_file(annotation_1), read_annotation_file(annotation_2)
    except ExportError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    payload = {"annotation_1": first, "annotation_2": second, "per_label": per_label}
    backend = _open_provider(provider, limits=_limits(timeout_s, memory_mb))
    try:
        reply = _call(backend, "invoke", project, payload)
    except InvokeError as exc:
        raise CliError(f"{exc.kind}: {exc}", EXIT_PROVIDER) from None
    finally:
        backend.close()
    out.print_json(json.dumps(reply))
    if isinstance(reply, dict) and reply.get("error"):
        sys.exit(1)


@main.command()
@project_option
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@provider_option
def logs(project, limit, provider):
    """Print the project's function log, oldest first."""
    backend = _open_provider(provider)
    try:
        entries = _call(backend, "logs", project, limit)
    finally:
        backend.close()
    for entry in entries:
        stamp = datetime.fromtimestamp(entry.timestamp, timezone.utc).isoformat(timespec="seconds")
        out.print(f"{stamp} {entry.severity:<7} {entry.message}", highlight=False, markup=False)


@main.command()
@project_option
@provider_option
def delete(project, provider):
    """Delete the project's function."""
    backend = _open_provider(provider)
    try:
        deleted = _call(backend, "delete", project)
    finally:
        backend.close()
    out.print(f"deleted the function of project {project}" if deleted else f"project {project} has no function",
              highlight=False)


@main.command(name="list")
@provider_option
def list_functions(provider):
    """List the metric functions this provider manages."""
    backend = _open_provider(provider)
    try:
        functions = _call(backend, "list")
    finally:
        backend.close()
    if not functions:
        out.print(f"no functions on {backend.name}", highlight=False)
        return
    table = Table(title=f"custom metric functions ({backend.name})")
    for column in ("project", "function", "status", "code sha256", "updated"):
        table.add_column(column, overflow="fold")
    for info in functions:
        updated = info.updated or info.created
        when = datetime.fromtimestamp(updated, timezone.utc).isoformat(timespec="seconds") if updated else ""
        table.add_row(str(info.project_id), info.name, info.status.value, info.code_sha256[:12], when)
    out.print(table)


def _call(backend, operation: str, *args):
    try:
        return getattr(backend, operation)(*args)
    except FunctionNotDeployed:
        raise _no_function(args[0]) from None
    except InvokeError:
        raise
    except ProviderError as exc:
        raise CliError(f"{operation} failed on {backend.name}: {exc}", EXIT_PROVIDER) from None
    except InvalidProjectId as exc:  # the CLI checks --project first; a provider's own check says the same
        raise CliError(str(exc), EXIT_BAD_INPUT) from None


def _no_function(project) -> CliError:
    return CliError(f"no function deployed for project {project} (deploy it with: lse-metrics deploy "
                    f"--project {project} --metric FILE)", EXIT_BAD_INPUT)


# What a finished `score` lets go of (the parsed export, the report): freeing a tree of millions of small
# objects costs ~0.3 s per 30 MB of export, for nothing when the process ends next. `score` parks them
# here; `run` (the console script) ends the process without freeing them, in-process callers drop them
# on their next `score`.
_PARKED: list = []


def run() -> None:
    """The `lse-metrics` console script: `main`, then an exit that skips freeing the parked heap.

    Everything a normal exit does that matters still happens, in the same order: non-daemon threads are
    joined, atexit handlers run (function servers are stopped there), the standard streams are flushed.
    """
    import atexit

    try:
        main()  # standalone: always ends with SystemExit
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1, as the interpreter does
        print(code, file=sys.stderr)
        code = 1
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)


if __name__ == "__main__":
    run()
