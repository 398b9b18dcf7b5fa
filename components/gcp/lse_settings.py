"""What to paste into LSE: env vars, `env.list` lines, a compose `environment:` block, helm values.

Pure functions of plain values, applied by the foundation once its outputs resolve.
"""
from __future__ import annotations

import json

import yaml

WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
# The LSE helm chart's two workloads; scoring runs in the rqworker.
HELM_COMPONENTS = ("app", "rqworker")


def lse_env(project: str, region: str, runtime_service_account_email: str) -> dict[str, str]:
    """The four variables LSE's app and rqworkers read (names from LSE's docs)."""
    return {
        "CUSTOM_METRIC_PROVIDER": "gcp",
        "GCP_PROJECT_CUSTOM_METRICS": project,
        "GCP_REGION_CUSTOM_METRICS": region,
        "GCP_SERVICE_ACCOUNT_CUSTOM_METRICS": runtime_service_account_email,
    }


def env_list(env: dict[str, str]) -> str:
    """Lines for LSE's `env.list` (docker `--env-file` syntax: KEY=value, no quoting)."""
    return "".join(f"{key}={value}\n" for key, value in env.items())


def docker_compose_environment(env: dict[str, str]) -> str:
    """An `environment:` block for the `app` service and every `rqworkers*` service.

    Values are JSON strings, which YAML reads as double-quoted scalars, so the block stays valid and
    every value stays a string whatever it contains.
    """
    lines = ["environment:"] + [f"  {key}: {json.dumps(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def helm_values(env: dict[str, str], workload_identity_email: str | None) -> dict:
    """`app`/`rqworker` values: env for both; the Workload Identity annotation on both KSAs if used."""
    values: dict = {}
    for component in HELM_COMPONENTS:
        block: dict = {}
        if workload_identity_email is not None:
            block["serviceAccount"] = {
                "annotations": {WORKLOAD_IDENTITY_ANNOTATION: workload_identity_email}}
        block["extraEnvironmentVars"] = dict(env)
        values[component] = block
    return values


def helm_values_yaml(values: dict) -> str:
    return yaml.safe_dump(values, sort_keys=False, default_flow_style=False)
