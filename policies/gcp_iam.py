"""GCP IAM resources as grants: every `*IAMMember` / `*IAMBinding` / `*IAMPolicy` type of pulumi-gcp
(projects, service accounts, organizations, folders, Cloud Run, Cloud Functions, buckets, ...) becomes a list
of (role, member) pairs, read from the camelCase properties the CLI hands a policy. Pure functions."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .props import UNKNOWN, get

# Levels where an authoritative binding wipes grants other teams made, and where a grant reaches every
# resource below it.
HIERARCHY_SCOPES = ("projects", "organizations", "folder")
AUTHORITATIVE_SCOPES = HIERARCHY_SCOPES + ("serviceaccount",)
# Where a Cloud Functions gen2 function can be made invokable (its Cloud Run service, or the function).
FUNCTION_SCOPES = ("cloudrun", "cloudrunv2", "cloudfunctionsv2", "cloudfunctions")
# The property naming the service/function an IAM resource of that module targets.
_TARGET_PROPERTY = {"cloudrun": "service", "cloudrunv2": "name", "cloudfunctionsv2": "cloudFunction",
                    "cloudfunctions": "cloudFunction"}
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers", "principalSet://goog/public:all")
PRIMITIVE_ROLES = ("roles/owner", "roles/editor", "roles/viewer")


@dataclass(frozen=True)
class IamType:
    scope: str  # the pulumi-gcp module: projects, serviceaccount, cloudrunv2, ...
    kind: str  # "member", "binding" or "policy"


@dataclass(frozen=True)
class Grant:
    role: Any  # str or UNKNOWN
    member: Any  # str or UNKNOWN
    where: str  # property path, for messages


def iam_type(resource_type: str) -> IamType | None:
    """`gcp:projects/iAMMember:IAMMember` → IamType("projects", "member"); None for non-IAM types."""
    if not resource_type.startswith("gcp:") or resource_type.count(":") != 2:
        return None
    module_and_resource, class_name = resource_type[4:].split(":")
    scope = module_and_resource.split("/")[0]
    lowered = class_name.lower()
    for kind in ("member", "binding", "policy"):
        if lowered.endswith(f"iam{kind}"):
            return IamType(scope, kind)
    return None


def grants_of(resource_type: str, props: Mapping[str, Any]) -> tuple[IamType | None, list[Grant] | Any]:
    """The grants an IAM resource makes; `UNKNOWN` when its role/member list cannot be known yet."""
    kind = iam_type(resource_type)
    if kind is None:
        return None, []
    if kind.kind == "member":
        return kind, [Grant(get(props, "role"), get(props, "member"), "member")]
    if kind.kind == "binding":
        members = get(props, "members", default=[])
        if members is UNKNOWN:
            return kind, [Grant(get(props, "role"), UNKNOWN, "members")]
        return kind, [Grant(get(props, "role"), m, f"members[{i}]") for i, m in enumerate(members)]
    policy = get(props, "policyData")
    if policy is UNKNOWN:
        return kind, UNKNOWN
    if isinstance(policy, str):
        try:
            policy = json.loads(policy) if policy else {}
        except ValueError:
            return kind, []  # the provider rejects it before anything is granted
    grants = []
    for b, binding in enumerate(get(policy, "bindings", default=[]) if isinstance(policy, dict) else []):
        members = get(binding, "members", default=[])
        if members is UNKNOWN:
            grants.append(Grant(get(binding, "role"), UNKNOWN, f"policyData.bindings[{b}].members"))
            continue
        for i, member in enumerate(members):
            grants.append(Grant(get(binding, "role"), member, f"policyData.bindings[{b}].members[{i}]"))
    return kind, grants


def target_name(kind: IamType, props: Mapping[str, Any]) -> Any:
    """The short name of the Cloud Run service / function an IAM resource targets (`UNKNOWN`, or None)."""
    key = _TARGET_PROPERTY.get(kind.scope)
    if key is None:
        return None
    return short_name(get(props, key))


def short_name(value: Any) -> Any:
    """A Cloud Run service's or function's own name: pulumi-gcp takes it short or as the full resource path
    `projects/<p>/locations/<l>/{services,functions}/<name>`, whose last segment it is (other values as given)."""
    if isinstance(value, str):
        return value.rstrip("/").rsplit("/", 1)[-1]
    return value
