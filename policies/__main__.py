"""The policy pack's entry point: the Pulumi CLI runs this file (`pulumi preview --policy-pack policies`).

Only here is `PolicyPack` constructed: its constructor starts the analyzer's gRPC server and never returns.
The CLI runs the pack from its own virtualenv (`requirements.txt`: pulumi-policy only) with this folder on
`sys.path`; when this folder sits in a checkout of the repo, the checkout's folders are mapped to the
`lse_custom_metrics` package the same way pyproject.toml maps them, so the rules import as they do installed.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _register_package(name: str, folder: Path) -> None:
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def map_checkout(repo: Path) -> None:
    """Import `lse_custom_metrics.{components,policies}` from a checkout, as pyproject.toml maps them."""
    if "lse_custom_metrics" in sys.modules:
        return
    _register_package("lse_custom_metrics", repo / "lse_custom_metrics")
    _register_package("lse_custom_metrics.components", repo / "components")
    _register_package("lse_custom_metrics.policies", repo / "policies")


def load_rules():
    repo = HERE.parent
    if (repo / "pyproject.toml").is_file() and (repo / "components" / "facts.py").is_file():
        map_checkout(repo)
    return importlib.import_module("lse_custom_metrics.policies.rules")


if __name__ == "__main__":
    from pulumi_policy import PolicyPack

    rules = load_rules()
    PolicyPack(rules.PACK_NAME, policies=rules.POLICIES, enforcement_level=rules.ENFORCEMENT_LEVEL,
               initial_config=rules.INITIAL_CONFIG)
