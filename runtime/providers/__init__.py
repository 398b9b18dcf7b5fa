"""Providers that deploy and run a project's metric function: ``local`` (this machine), ``aws``, ``gcp``.

``get_provider()`` chooses like LSE does: the ``CUSTOM_METRIC_PROVIDER`` environment variable, else
``local`` (this package's embedded default; LSE's own default is ``aws``).
"""
from __future__ import annotations

import os

from .base import (
    MAX_REQUEST_BYTES,
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
    InvalidProjectId, check_project_id, function_name, is_project_function, name_matches_project, project_key,
)

PROVIDER_ENV = "CUSTOM_METRIC_PROVIDER"
PROVIDER_NAMES = ("local", "aws", "gcp")
DEFAULT_PROVIDER = "local"
# Providers that exist in LSE but arrive in later versions of this package.
_NOT_YET = {"aws": "AWS Lambda", "gcp": "Google Cloud Functions"}

__all__ = [
    "MAX_REQUEST_BYTES", "DeployResult", "FunctionInfo", "FunctionNotDeployed", "FunctionStatus",
    "InvokeError", "LogEntry", "MetricLoadError", "MetricProvider", "ProviderError", "RuntimeLimits", "StagedDeploy",
    "InvalidProjectId", "check_project_id", "function_name", "is_project_function", "name_matches_project",
    "project_key",
    "get_provider", "provider_name", "PROVIDER_ENV", "PROVIDER_NAMES", "DEFAULT_PROVIDER",
]


def provider_name(name: str | None = None) -> str:
    """The provider to use: ``name``, else ``$CUSTOM_METRIC_PROVIDER``, else ``local``; validated."""
    chosen = name if name else os.environ.get(PROVIDER_ENV, "").strip() or DEFAULT_PROVIDER
    chosen = chosen.strip().lower()
    if chosen not in PROVIDER_NAMES:
        source = "provider" if name else PROVIDER_ENV
        raise ProviderError(
            f"unknown {source} {chosen!r}: allowed values are {', '.join(PROVIDER_NAMES)}"
        )
    return chosen


def get_provider(name: str | None = None, **options) -> MetricProvider:
    """An instance of the chosen provider; ``options`` go to its constructor (e.g. ``limits``, ``instances``)."""
    chosen = provider_name(name)
    if chosen in _NOT_YET:
        raise ProviderError(
            f"the {chosen!r} provider ({_NOT_YET[chosen]}) is not implemented in this version of "
            "lse-custom-metrics yet; use --provider local (or CUSTOM_METRIC_PROVIDER=local) to run the "
            "same function on this machine"
        )
    from .local import LocalProvider

    return LocalProvider(**options)
