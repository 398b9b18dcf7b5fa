"""The GCP half of the Pulumi program: stack config -> `GcpCustomMetricsFoundation` -> stack outputs.

Every key is read and checked before the first resource is registered; a bad or missing key raises
`ConfigError` naming the key, the deployment variant and what is allowed.
"""
from __future__ import annotations

import json
from typing import Any

import pulumi

from ..config import NAMESPACE, ConfigError, all_config_keys, reject_unknown_keys
from ..facts import GCP_DEFAULT_REGION, GCP_DEPLOYMENTS
from ..shared_keys import (
    other_variant_key_error,
    read_deployment,
    read_helm_release,
    read_namespace,
    read_service_accounts,
)
from .foundation import (
    VARIANT_FIELDS,
    GcpCustomMetricsFoundation,
    GcpCustomMetricsFoundationArgs,
    GcpFoundationArgsError,
)

RESOURCE_NAME = "lse-custom-metrics"

# Stack config key -> foundation args field. Exactly the keys of issue 4, item 2.
FIELD_OF_KEY = {
    "gcp:project": "project",
    "gcp:region": "region",
    f"{NAMESPACE}:deployment": "deployment",
    f"{NAMESPACE}:appServiceAccountEmail": "app_service_account_email",
    f"{NAMESPACE}:nodeServiceAccountEmail": "node_service_account_email",
    f"{NAMESPACE}:namespace": "namespace",
    f"{NAMESPACE}:helmRelease": "helm_release",
    f"{NAMESPACE}:serviceAccounts": "kubernetes_service_accounts",
    f"{NAMESPACE}:usePredefinedRoles": "use_predefined_roles",
    f"{NAMESPACE}:scopeActAsToRuntimeServiceAccount": "scope_act_as_to_runtime_service_account",
    f"{NAMESPACE}:grantBuildServiceAccountRoles": "grant_build_service_account_roles",
    f"{NAMESPACE}:labels": "labels",
}
KEY_OF_FIELD = {field: key for key, field in FIELD_OF_KEY.items()}
# `cloud` is read by the dispatcher (components/program.py).
KNOWN_KEYS = (f"{NAMESPACE}:cloud", *FIELD_OF_KEY)
BOOLEAN_KEYS = ("usePredefinedRoles", "scopeActAsToRuntimeServiceAccount", "grantBuildServiceAccountRoles")
# `lse-custom-metrics:` keys every variant reads.
COMMON_KEYS = ("cloud", "deployment", *BOOLEAN_KEYS, "labels")


def _variant_keys(variant: str | None) -> list[str]:
    fields = VARIANT_FIELDS.get(variant, ())
    return [KEY_OF_FIELD[f].split(":", 1)[1] for f in fields]


def _read_bool(config: pulumi.Config, key: str, default: bool, variant: str | None) -> bool:
    raw = config.get(key)
    if raw is None:
        return default
    if raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ConfigError(key, f"must be true or false, got {raw!r}", variant=variant, allowed=("true", "false"))


def _read_object(config: pulumi.Config, key: str, variant: str | None) -> Any:
    raw = config.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigError(key, f"must be a YAML/JSON object, got {raw!r}", variant=variant) from None


def _reject_other_variant_keys(config: pulumi.Config, variant: str) -> None:
    """A key copied from another variant's example fails by name instead of being silently ignored."""
    own = VARIANT_FIELDS[variant]
    for field_name in dict.fromkeys(f for fields in VARIANT_FIELDS.values() for f in fields):
        key = KEY_OF_FIELD[field_name].split(":", 1)[1]
        if field_name not in own and config.get(key) is not None:
            used_by = [v for v, fields in VARIANT_FIELDS.items() if field_name in fields]
            raise other_variant_key_error(key, variant, used_by,
                                          allowed_keys=COMMON_KEYS + tuple(_variant_keys(variant)))


def read_gcp_args(config: pulumi.Config) -> GcpCustomMetricsFoundationArgs:
    """Stack config -> validated foundation args, or ConfigError. Registers nothing."""
    variant = read_deployment(config, GCP_DEPLOYMENTS)
    reject_unknown_keys(all_config_keys(), KNOWN_KEYS, cloud="gcp", variant=variant)
    _reject_other_variant_keys(config, variant)
    gcp_config = pulumi.Config("gcp")
    project = gcp_config.get("project")
    if not project:
        raise ConfigError("gcp:project", "missing: the project the functions and grants live in",
                          variant=variant)
    labels = _read_object(config, "labels", variant)
    # The Kubernetes keys read (and fail) exactly as on AWS's eks-oidc.
    kubernetes = variant == "gke-workload-identity"
    args = GcpCustomMetricsFoundationArgs(
        project=project,
        deployment=variant,
        region=gcp_config.get("region") or GCP_DEFAULT_REGION,
        app_service_account_email=config.get("appServiceAccountEmail"),
        node_service_account_email=config.get("nodeServiceAccountEmail"),
        namespace=read_namespace(config, variant) if kubernetes else None,
        helm_release=read_helm_release(config, variant) if kubernetes else None,
        kubernetes_service_accounts=read_service_accounts(config, variant) if kubernetes else None,
        use_predefined_roles=_read_bool(config, "usePredefinedRoles", False, variant),
        scope_act_as_to_runtime_service_account=_read_bool(
            config, "scopeActAsToRuntimeServiceAccount", False, variant),
        grant_build_service_account_roles=_read_bool(config, "grantBuildServiceAccountRoles", True, variant),
        labels={} if labels is None else labels,
    )
    try:
        args.validate()
    except GcpFoundationArgsError as err:
        raise ConfigError(KEY_OF_FIELD.get(err.field, err.field), err.problem, variant=variant,
                          allowed=err.allowed) from None
    return args


def build_gcp_stack(config: pulumi.Config) -> GcpCustomMetricsFoundation:
    """Build the foundation from stack config and export every output."""
    args = read_gcp_args(config)
    foundation = GcpCustomMetricsFoundation(RESOURCE_NAME, args)
    for key, value in foundation.outputs().items():
        pulumi.export(key, value)
    return foundation
