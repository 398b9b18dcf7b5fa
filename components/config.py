"""Stack-config validation shared by the AWS and GCP programs.

Every bad or missing key fails before any resource is registered, with a message that names the key,
the deployment variant and what is allowed.
"""
from __future__ import annotations

import difflib
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


def all_config_keys() -> set[str]:
    """Every key of the stack config, however the engine delivered it (set explicitly or via env)."""
    from pulumi.runtime import config as runtime_config  # the Pulumi SDK only where a program runs

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def reject_unknown_keys(keys: Iterable[str], known: Iterable[str], *, cloud: str, variant: str) -> None:
    """A misspelt or other-cloud key in our namespace must fail, not fall back to a default silently.

    (`functionprefix: acme-` ignored would leave the policies on `custom-metric-*` while LSE deploys
    `acme-*`: every deploy denied, far from the typo.) Other namespaces (`aws:`, `gcp:`, `pulumi:`) are
    the providers' business.
    """
    # Known keys as written in the stack file: ours bare (`functionPrefix`), the providers' namespaced.
    known_keys = {key if ":" in key else f"{NAMESPACE}:{key}" for key in known}
    unknown = sorted(key for key in keys if key.startswith(f"{NAMESPACE}:") and key not in known_keys)
    if not unknown:
        return
    ours = sorted(key.split(":", 1)[1] for key in known_keys if key.startswith(f"{NAMESPACE}:"))
    known_names = ours + sorted(key for key in known_keys if not key.startswith(f"{NAMESPACE}:"))
    name = unknown[0].split(":", 1)[1]
    # `lse-custom-metrics:region` for `gcp:region`: point at the provider's key.
    close = [key for key in known_names if ":" in key and key.split(":", 1)[1] == name] or \
        difflib.get_close_matches(name, ours, n=1) or [k for k in ours if k.lower() == name.lower()]
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(unknown[0], f"unknown key for cloud '{cloud}'{hint}", variant=variant, allowed=known_names)
