"""The environment a metric function process gets: nothing of the caller's but a short allow-list.

The function runs user code, so it must not see the caller's cloud credentials or Label Studio
tokens (``AWS_*``, ``GOOGLE_*``, ``GCP_*``, ``LS_*``, ...). It starts from an empty environment and
gets only locale/path basics, a private ``HOME``, and the variables the clouds' function runtimes set.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from lse_custom_metrics.components.facts import GCF_ENTRY_POINT

# Copied from the caller when present: harmless and needed for a sane locale and tool lookup.
ALLOWED_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ")
ALLOWED_PREFIXES = ("LC_",)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def function_environment(
    *,
    home: str,
    function_name: str,
    revision: str,
    port: int,
    caller: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment of one function server process."""
    source = os.environ if caller is None else caller
    env = {key: value for key, value in source.items()
           if key in ALLOWED_VARIABLES or key.startswith(ALLOWED_PREFIXES)}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update({
        "HOME": home,
        # what Cloud Functions gen2 / Cloud Run set for a function
        "K_SERVICE": function_name,
        "K_REVISION": revision,
        "K_CONFIGURATION": function_name,
        "FUNCTION_TARGET": GCF_ENTRY_POINT,
        "FUNCTION_SIGNATURE_TYPE": "http",
        "PORT": str(port),
        # functions-framework's gunicorn: one worker, one thread - requests are handled one at a
        # time, as LSE queues them.
        "WORKERS": "1",
        "THREADS": "1",
    })
    return env
