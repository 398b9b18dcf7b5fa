"""The provider interface every backend (local, aws, gcp) implements.

One function per Label Studio project, named ``custom-metric-<project_id>-<unix ts>`` and found again
by name prefix *and* a project tag/label, so project 1 never picks up project 12's function.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any

from lse_custom_metrics.components.facts import FUNCTION_PREFIX  # noqa: E402  (one source of truth)
# Lambda's synchronous request and response limit; every provider accepts batches this size.
MAX_REQUEST_BYTES = 6 * 1024 * 1024


class FunctionStatus(str, enum.Enum):
    """The states LSE's app reports for a project's function."""

    NOT_DEPLOYED = "NotDeployed"
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"
    ERROR = "Error"


@dataclass(frozen=True)
class RuntimeLimits:
    """LSE's fixed runtime configuration for every metric function."""

    memory_mb: int = 256
    timeout_s: float = 60.0
    max_instances: int = 1
    python: str = "3.13"


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    project_id: str
    code_sha256: str
    status: FunctionStatus
    provider: str
    created: float | None = None
    updated: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployResult:
    function: FunctionInfo
    action: str  # "created" | "updated" | "unchanged"


@dataclass(frozen=True)
class LogEntry:
    timestamp: float
    message: str
    severity: str = "INFO"


class StagedDeploy(abc.ABC):
    """A deploy prepared but not made yet (``MetricProvider.stage``): the new code is staged and checked,
    and - on providers that can - already answers the project's requests, while the deployed function
    (or its absence) stays exactly as it was until ``commit``. ``discard`` drops it without a trace.
    """

    action: str  # what commit will do: "created" | "updated" | "unchanged"
    function: FunctionInfo  # the function as commit will leave it (name, code sha256)

    @abc.abstractmethod
    def commit(self) -> DeployResult:
        """Swap the staged code in (create or update the function); the staged servers keep serving."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Stop the staged servers and remove the staged code; the deployed function is untouched."""


class ProviderError(RuntimeError):
    """A provider operation that could not be carried out (names the project and function)."""


class FunctionNotDeployed(ProviderError):
    pass


class MetricLoadError(ProviderError, ValueError):
    """The metric file cannot be loaded by the function (raises at import, no ``agreement``, ...).

    Raised by ``deploy`` before anything deployed changes; the message names the file, the line and
    the exception.
    """


class InvokeError(ProviderError):
    """The function could not answer a whole request (timeout, memory limit, crash, HTTP error).

    The scorer reacts by sending the request's pairs again one per request, to isolate the pair responsible.
    """

    def __init__(self, message: str, *, kind: str = "InvokeError", pair_index: int | None = None):
        super().__init__(message)
        # The 0-based position (in request order) of the pair known to have caused the failure - e.g.
        # the pair that had used nearly all of the time limit by itself - or None when unknown.
        self.pair_index = pair_index
        # "Timeout", "MemoryLimitExceeded", "FunctionCrashed" (the function died or dropped the
        # connection), "BadRequest" (it rejected the payload: HTTP 400 / Lambda BadRequest),
        # "RequestTooLarge" (over max_request_bytes, not sent), "FunctionError" (any other failure)
        self.kind = kind


class MetricProvider(abc.ABC):
    """Deploys, invokes and removes per-project metric functions."""

    name: str = "abstract"
    max_request_bytes: int = MAX_REQUEST_BYTES

    def __init__(self, limits: RuntimeLimits | None = None):
        self.limits = limits or RuntimeLimits()

    @abc.abstractmethod
    def deploy(self, project_id: str, metric_path: str, *, start: bool = True) -> DeployResult:
        """Create the project's function, update it if the code changed, or do nothing if identical.

        ``start``: where the provider runs the function's servers itself (local), also start them; with
        ``start=False`` an identical redeploy is a true no-op (nothing started, probed or logged).
        """

    def stage(self, project_id: str, metric_path: str, *, start: bool = True) -> StagedDeploy | None:
        """Prepare a deploy whose code already answers ``invoke`` for the project before it is committed.

        Lets a caller overlap its own work (reading an export) with the function's, and still change
        nothing when that work fails (``discard``). ``start``: start the staged servers now (without
        waiting for them). None: this provider cannot run code it has not deployed - deploy directly.
        """
        return None

    @abc.abstractmethod
    def status(self, project_id: str) -> FunctionStatus: ...

    @abc.abstractmethod
    def invoke(self, project_id: str, payload: dict | bytes) -> dict:
        """Send one request (single-pair or batch payload, DESIGN §3.2) and return the decoded reply.

        ``payload`` is a dict or the same JSON already encoded (bytes), which is sent as is.
        Raises ``InvokeError`` when the function could not answer the request as a whole, and
        ``FunctionNotDeployed`` when the project has no function.
        """

    @abc.abstractmethod
    def logs(self, project_id: str, limit: int = 100) -> list[LogEntry]: ...

    @abc.abstractmethod
    def delete(self, project_id: str) -> bool:
        """Remove the project's function; False when there was none."""

    @abc.abstractmethod
    def list(self) -> list[FunctionInfo]: ...

    def close(self) -> None:
        """Release local resources (processes, clients). Functions stay deployed."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
