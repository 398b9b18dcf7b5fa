"""Pulumi components for the LSE custom-metrics foundation.

`from lse_custom_metrics.components import AwsCustomMetricsFoundation` works without importing the
other cloud's provider SDK: each name is resolved from its cloud's subpackage on first access.
"""
from __future__ import annotations

import importlib

_CLOUD_MODULES = ("lse_custom_metrics.components.aws", "lse_custom_metrics.components.gcp")


def __getattr__(name: str):
    if name.startswith("_"):
        raise AttributeError(name)
    for module_name in _CLOUD_MODULES:
        module = importlib.import_module(module_name)
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'lse_custom_metrics.components' has no attribute '{name}'")
