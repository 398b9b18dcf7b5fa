"""metric-function-runtime-limits: metric functions declared in a stack must look like the ones LSE deploys.

LSE deploys every custom-metric function with a fixed runtime (Python 3.13, 256 MB, 60 s, one instance,
internal-only ingress on GCP) and calls it from inside the cloud; a function outside those limits behaves
differently from what LSE runs, and a public invoke permission exposes user code to the internet.

On Lambda, "one instance" is `reservedConcurrentExecutions = 1`: unset (-1) means unbounded concurrency,
and 0 throttles every invocation (the function can never run).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from lse_custom_metrics.components.facts import (
    GCF_INGRESS,
    GCF_RUNTIME,
    LAMBDA_RUNTIME,
    MAX_INSTANCES,
    MEMORY_MB,
    TIMEOUT_S,
)

from .gcp_iam import FUNCTION_SCOPES, HIERARCHY_SCOPES, PUBLIC_MEMBERS, grants_of, short_name, target_name
from .props import UNKNOWN, Findings, get

LAMBDA_FUNCTION = "aws:lambda/function:Function"
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
LAMBDA_FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
GCF_FUNCTION = "gcp:cloudfunctionsv2/function:Function"
INVOKER_ROLES = ("roles/run.invoker", "roles/cloudfunctions.invoker")
# LSE's 256 MB as a gen2 `availableMemory` quantity, in bytes: the API's default "256M" (decimal) and the
# "256Mi" gcloud and the console write (binary) both count; and the API's own default when unset.
GCF_MEMORY_BYTES = (MEMORY_MB * 1000 ** 2, MEMORY_MB * 1024 ** 2)
GCF_DEFAULT_MEMORY = f"{MEMORY_MB}M"
# `availableMemory` is a Kubernetes resource quantity (the provider documents the units k, M, G, Mi, Gi
# and "no unit = bytes"): a plain or decimal number, an optional decimal exponent, then a binary or
# decimal SI suffix. "m" (milli) is a valid quantity suffix but never a memory size.
_QUANTITY = re.compile(r"^(?P<number>\d+(?:\.\d*)?|\.\d+)(?:[eE](?P<exponent>[+-]?\d+))?"
                       r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_QUANTITY_FACTORS = {None: 1, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4, "P": 1000 ** 5,
                     "E": 1000 ** 6, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4,
                     "Pi": 1024 ** 5, "Ei": 1024 ** 6}
GCF_DEFAULT_TIMEOUT_S = 60


def _physical_name(props: Mapping[str, Any], key: str, resource_name: str) -> Any:
    """The cloud name: the explicit property, else Pulumi's auto-name (resource name + random suffix)."""
    value = get(props, key)
    return resource_name if value is None else value


def _lambda_name(reference: Any) -> Any:
    """A Lambda function name from a name, a (qualified) ARN or a partial ARN."""
    if not isinstance(reference, str):
        return reference
    if ":function:" in reference:
        return reference.split(":function:", 1)[1].split(":", 1)[0]
    return reference.split(":", 1)[0]


def memory_bytes(quantity: Any) -> Decimal | None:
    """A gen2 `availableMemory` quantity ("256M", "256Mi", "0.25Gi", "268435456", "2.56e8") in bytes;
    None when it is not a quantity (the API refuses it)."""
    if not isinstance(quantity, str):
        return None
    match = _QUANTITY.match(quantity.strip())
    if match is None or (match["exponent"] is not None and match["suffix"] is not None):
        return None
    try:
        number = Decimal(match["number"]).scaleb(int(match["exponent"] or 0))
    except (InvalidOperation, ValueError):
        return None
    return number * _QUANTITY_FACTORS[match["suffix"]]


def _is_lse_memory(quantity: Any) -> bool:
    return memory_bytes(quantity) in GCF_MEMORY_BYTES


def _is_number(value: Any, expected: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == expected


def _applies(name: Any, prefix: str, findings: Findings, where: str) -> bool:
    if name is UNKNOWN:
        findings.undecided(where)
        return False
    return isinstance(name, str) and name.startswith(prefix)


def _check_lambda(props, prefix, resource_name, findings):
    name = _physical_name(props, "name", resource_name)
    if not _applies(name, prefix, findings, "name"):
        return
    expected = {
        "runtime": (LAMBDA_RUNTIME, lambda v: v == LAMBDA_RUNTIME, f"Python {LAMBDA_RUNTIME}"),
        "memorySize": (MEMORY_MB, lambda v: _is_number(v, MEMORY_MB), f"{MEMORY_MB} MB"),
        "timeout": (TIMEOUT_S, lambda v: _is_number(v, TIMEOUT_S), f"{TIMEOUT_S} s"),
        "reservedConcurrentExecutions": (MAX_INSTANCES, lambda v: _is_number(v, MAX_INSTANCES),
                                         f"{MAX_INSTANCES} instance (0 would throttle every call, unset is "
                                         f"unbounded)"),
    }
    for key, (value, ok, meaning) in expected.items():
        found = get(props, key)
        if found is UNKNOWN:
            findings.undecided(key)
        elif not ok(found):
            findings.violation(f"Lambda function `{name}` has {key}={found!r}; LSE runs metric functions with "
                               f"{key}={value!r} ({meaning}). Set it to {value!r}.")


def _check_lambda_permission(resource_type, props, prefix, findings):
    function = _lambda_name(get(props, "functionName") if resource_type == LAMBDA_FUNCTION_URL
                            else get(props, "function"))
    if not _applies(function, prefix, findings, "function"):
        return
    if resource_type == LAMBDA_FUNCTION_URL:
        auth = get(props, "authorizationType")
        if auth is UNKNOWN:
            findings.undecided("authorizationType")
        elif auth == "NONE":
            findings.violation(f"function URL of `{function}` has authorizationType NONE: anyone on the internet "
                               f"can run the metric. LSE invokes through the Lambda API; remove the URL "
                               f"(or use AWS_IAM).")
        return
    principal = get(props, "principal")
    if principal is UNKNOWN:
        findings.undecided("principal")
    elif principal == "*":
        findings.violation(f"lambda.Permission lets principal `*` invoke `{function}`: LSE calls the function "
                           f"with its own IAM identity; remove the public permission.")


def _check_gcf(props, prefix, resource_name, findings):
    name = short_name(_physical_name(props, "name", resource_name))
    if not _applies(name, prefix, findings, "name"):
        return
    runtime = get(props, "buildConfig", "runtime")
    if runtime is UNKNOWN:
        findings.undecided("buildConfig.runtime")
    elif runtime != GCF_RUNTIME:
        findings.violation(f"Cloud Function `{name}` has buildConfig.runtime={runtime!r}; LSE runs metric "
                           f"functions on {GCF_RUNTIME!r}.")
    service = get(props, "serviceConfig", default={})
    if service is UNKNOWN:
        findings.undecided("serviceConfig")
        return
    checks = (
        ("availableMemory", GCF_DEFAULT_MEMORY, _is_lse_memory,
         f"{GCF_DEFAULT_MEMORY!r} (256 MB: '256M' or '256Mi', in any unit)"),
        ("timeoutSeconds", GCF_DEFAULT_TIMEOUT_S, lambda v: _is_number(v, TIMEOUT_S), f"{TIMEOUT_S}"),
        ("maxInstanceCount", None, lambda v: _is_number(v, MAX_INSTANCES),
         f"{MAX_INSTANCES} (unset or 0 means the API default of 100)"),
        ("ingressSettings", None, lambda v: v == GCF_INGRESS, f"{GCF_INGRESS!r} (unset means ALLOW_ALL)"),
    )
    for key, default, ok, meaning in checks:
        found = get(service, key)
        if found is UNKNOWN:
            findings.undecided(f"serviceConfig.{key}")
            continue
        effective = default if found is None else found
        if effective is None or not ok(effective):
            findings.violation(f"Cloud Function `{name}` has serviceConfig.{key}={found!r}; LSE runs metric "
                               f"functions with {key}={meaning}.")


def _check_public_invoker(resource_type, props, prefix, findings):
    kind, grants = grants_of(resource_type, props)
    if kind is None or kind.scope not in FUNCTION_SCOPES + HIERARCHY_SCOPES:
        return
    if grants is UNKNOWN:
        findings.undecided("policyData")
        return
    public_invokers = []
    for grant in grants:
        if grant.role is UNKNOWN or grant.member is UNKNOWN:
            findings.undecided(grant.where)
        elif grant.role in INVOKER_ROLES and grant.member in PUBLIC_MEMBERS:
            public_invokers.append(grant)
    if not public_invokers:
        return
    if kind.scope in FUNCTION_SCOPES:
        target = target_name(kind, props)
        if not _applies(target, prefix, findings, "service"):
            return
        scope = f"`{target}`"
    else:
        scope = f"every Cloud Run service of the {kind.scope.rstrip('s')} (metric functions included)"
    for grant in public_invokers:
        findings.violation(f"`{grant.where}` grants `{grant.role}` on {scope} to `{grant.member}`: metric "
                           f"functions are internal-only and LSE invokes them with its own service account; "
                           f"remove the public grant.")


def check_metric_function_runtime_limits(resource_type: str, props: Mapping[str, Any],
                                         config: Mapping[str, Any], name: str = "") -> Findings:
    findings = Findings()
    prefix = config["prefix"]
    if resource_type == LAMBDA_FUNCTION:
        _check_lambda(props, prefix, name, findings)
    elif resource_type in (LAMBDA_PERMISSION, LAMBDA_FUNCTION_URL):
        _check_lambda_permission(resource_type, props, prefix, findings)
    elif resource_type == GCF_FUNCTION:
        _check_gcf(props, prefix, name, findings)
    else:
        _check_public_invoker(resource_type, props, prefix, findings)
    return findings
