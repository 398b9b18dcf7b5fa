"""Stack-config validation shared by the AWS and GCP programs.

Every bad or missing key fails before any resource is registered, with a message that names the key,
the deployment variant and what is allowed.
"""
from __future__ import annotations

from collections.abc import Iterable

NAMESPACE = "lse-custom-metrics"


class ConfigError(ValueError):
    def __init__(self, key: str, problem: str, *, variant: str | None = None,
                 allowed: Iterable[str] | None = None):
        self.key = key if ":" in key else f"{NAMESPACE}:{key}"
        self.variant = variant
        self.allowed = list(allowed) if allowed is not None else None
        parts = [f"config key '{self.key}': {problem}"]
        if variant:
            parts.append(f"(deployment '{variant}')")
        if self.allowed:
            parts.append("allowed: " + ", ".join(self.allowed))
        super().__init__(" ".join(parts))
