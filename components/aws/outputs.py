"""What a platform engineer pastes into LSE, rendered from plain values (pure functions, no Pulumi).

LSE's docker-compose file gives the `app` service and every `rqworkers*` service the same
`env_file: env.list`, so one `env.list` fragment reaches all of them; compose files that list variables
inline get the same variables as an `environment:` block; the helm chart takes `extraEnvironmentVars`
and `serviceAccount.annotations` per workload (`app` and `rqworker`).
"""
from __future__ import annotations

import json
from typing import Any

import yaml  # PyYAML: a requirement of the pulumi SDK itself, so present wherever the components run

from ..facts import (
    AWS_ENV_ACCESS_KEY_ID,
    AWS_ENV_LAMBDA_REGION,
    AWS_ENV_LAMBDA_ROLE,
    AWS_ENV_SECRET_ACCESS_KEY,
    AWS_IRSA_ANNOTATION,
)

HELM_WORKLOADS = ("app", "rqworker")


def lse_env(region: str, execution_role_arn: str, access_key_id: str | None = None,
            secret_access_key: str | None = None) -> dict[str, str]:
    """LSE's variables, in the docs' order; the static key pair only when the variant has one."""
    env: dict[str, str] = {}
    if access_key_id is not None or secret_access_key is not None:
        if not (access_key_id and secret_access_key):
            raise ValueError("an access key needs both its id and its secret")
        env[AWS_ENV_ACCESS_KEY_ID] = access_key_id
        env[AWS_ENV_SECRET_ACCESS_KEY] = secret_access_key
    env[AWS_ENV_LAMBDA_REGION] = region
    env[AWS_ENV_LAMBDA_ROLE] = execution_role_arn
    return env


def env_list_text(env: dict[str, str]) -> str:
    """`KEY=value` lines for LSE's `env.list` (compose env files take values literally: no quoting)."""
    for key, value in env.items():
        if "\n" in value:
            raise ValueError(f"{key}: a value for an env file cannot contain a newline")
    return "".join(f"{key}={value}\n" for key, value in env.items())


def compose_environment_text(env: dict[str, str]) -> str:
    """An `environment:` block to paste under `app` and each `rqworkers*` service.

    Values are double-quoted (JSON strings are valid YAML), and `$` is doubled because compose would
    otherwise interpolate it.
    """
    lines = ["environment:"]
    lines += [f"  {key}: {json.dumps(value.replace('$', '$$'))}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def helm_values(env: dict[str, str], irsa_role_arn: str | None = None) -> dict[str, Any]:
    """Values for LSE's helm chart: both workloads get the variables; with IRSA, both service accounts
    are annotated with the role (scoring runs in the rqworkers, so the app alone is not enough)."""
    values: dict[str, Any] = {}
    for workload in HELM_WORKLOADS:
        block: dict[str, Any] = {}
        if irsa_role_arn:
            block["serviceAccount"] = {"annotations": {AWS_IRSA_ANNOTATION: irsa_role_arn}}
        block["extraEnvironmentVars"] = dict(env)
        values[workload] = block
    return values


def helm_values_yaml(values: dict[str, Any]) -> str:
    return yaml.safe_dump(values, sort_keys=False, default_flow_style=False)
