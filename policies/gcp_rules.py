"""GCP checks of the pack: pure functions of (resource type, plain properties, policy config) → Findings."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lse_custom_metrics.components.facts import GCP_ACT_AS_PERMISSION, GCP_DEPLOYER_PERMISSIONS

from .gcp_iam import AUTHORITATIVE_SCOPES, HIERARCHY_SCOPES, PRIMITIVE_ROLES, PUBLIC_MEMBERS, grants_of
from .props import UNKNOWN, Findings, get

CUSTOM_ROLE_TYPES = ("gcp:projects/iAMCustomRole:IAMCustomRole", "gcp:organizations/iAMCustomRole:IAMCustomRole")
SERVICE_TYPE = "gcp:projects/service:Service"
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
SERVICE_ACCOUNT_USER = "roles/iam.serviceAccountUser"

_PROJECT = r"(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"  # optional domain: prefix
_NAMESPACE = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_KSA = r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?"
WORKLOAD_IDENTITY_MEMBER = re.compile(
    rf"^serviceAccount:(?P<pool>{_PROJECT})\.svc\.id\.goog\[(?P<ns>{_NAMESPACE})/(?P<ksa>{_KSA})\]$")
# GKE's newer principal identifier for one Kubernetes service account (also exact, no wildcard).
WORKLOAD_IDENTITY_PRINCIPAL = re.compile(
    rf"^principal://iam\.googleapis\.com/projects/\d+/locations/global/workloadIdentityPools/"
    rf"(?P<pool>{_PROJECT})\.svc\.id\.goog/subject/ns/(?P<ns>{_NAMESPACE})/sa/(?P<ksa>{_KSA})$")


def _grants(resource_type: str, props: Mapping[str, Any], findings: Findings):
    kind, grants = grants_of(resource_type, props)
    if kind is None:
        return None, []
    if grants is UNKNOWN:
        findings.undecided("policyData")
        return kind, []
    return kind, grants


# --- gcp-deployer-role-allowlist -------------------------------------------------------------------------

def check_gcp_deployer_role_allowlist(resource_type: str, props: Mapping[str, Any],
                                      config: Mapping[str, Any], name: str = "") -> Findings:
    findings = Findings()
    if resource_type not in CUSTOM_ROLE_TYPES:
        return findings
    role_id, permissions = get(props, "roleId"), get(props, "permissions", default=[])
    if permissions is UNKNOWN or UNKNOWN in permissions:
        findings.undecided("permissions")
        return findings
    deploys_functions = any(isinstance(p, str) and p.startswith("cloudfunctions.") for p in permissions)
    if role_id != config["deployerRoleId"] and not deploys_functions:
        if role_id is UNKNOWN:
            findings.undecided("roleId")
        return findings
    extra = [p for p in permissions if p not in GCP_DEPLOYER_PERMISSIONS]
    if extra:
        findings.violation(
            f"custom role `{role_id}` holds {', '.join(f'`{p}`' for p in extra)}, beyond the twelve permissions "
            f"LSE documents for deploying and invoking metric functions: remove them "
            f"(allowed: {', '.join(GCP_DEPLOYER_PERMISSIONS)}).")
    return findings


# --- gcp-no-primitive-roles ------------------------------------------------------------------------------

def check_gcp_no_primitive_roles(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                                 name: str = "") -> Findings:
    findings = Findings()
    _, grants = _grants(resource_type, props, findings)
    for grant in grants:
        if grant.role is UNKNOWN:
            findings.undecided("role")
        elif grant.role in PRIMITIVE_ROLES:
            findings.violation(
                f"`{grant.where}` {grant.member if isinstance(grant.member, str) else ''} is granted the primitive "
                f"role `{grant.role}`, which spans every service of the project: grant "
                f"`LSE_CustomMetricsDeployer` (or the documented predefined roles) instead.")
    return findings


# --- gcp-no-public-members -------------------------------------------------------------------------------

def check_gcp_no_public_members(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                                name: str = "") -> Findings:
    findings = Findings()
    _, grants = _grants(resource_type, props, findings)
    for grant in grants:
        if grant.member is UNKNOWN:
            findings.undecided(grant.where)
        elif grant.member in PUBLIC_MEMBERS:
            findings.violation(
                f"`{grant.where}` grants `{grant.role if isinstance(grant.role, str) else 'a role'}` to the "
                f"public member `{grant.member}`: grant it to the LSE service account only.")
    return findings


# --- gcp-iam-non-authoritative ---------------------------------------------------------------------------

def check_gcp_iam_non_authoritative(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                                    name: str = "") -> Findings:
    findings = Findings()
    kind, _ = grants_of(resource_type, props)
    if kind is not None and kind.kind in ("binding", "policy") and kind.scope in AUTHORITATIVE_SCOPES:
        findings.violation(
            f"`{resource_type}` is authoritative: it removes every {'member of the role' if kind.kind == 'binding' else 'grant'} "
            f"that this stack does not list, wiping other teams' access in a shared "
            f"{'project' if kind.scope != 'serviceaccount' else 'service account'}. Use the matching `IAMMember` "
            f"resource (one per member and role) instead.")
    return findings


# --- gcp-services-kept-on-destroy ------------------------------------------------------------------------

def check_gcp_services_kept_on_destroy(resource_type: str, props: Mapping[str, Any],
                                       config: Mapping[str, Any], name: str = "") -> Findings:
    findings = Findings()
    if resource_type != SERVICE_TYPE:
        return findings
    value = get(props, "disableOnDestroy")
    service = get(props, "service")
    name = f"`{service}`" if isinstance(service, str) else "the API"
    if value is UNKNOWN:
        findings.undecided("disableOnDestroy")
    elif value is not False:
        findings.violation(
            f"{name} does not set `disable_on_destroy=False` (found {value!r}): destroying this stack would "
            f"switch the API off for every workload of the project. Set it to False explicitly.")
    return findings


# --- gcp-workload-identity-member-format ----------------------------------------------------------------

def check_gcp_workload_identity_member_format(resource_type: str, props: Mapping[str, Any],
                                              config: Mapping[str, Any], name: str = "") -> Findings:
    findings = Findings()
    kind, grants = _grants(resource_type, props, findings)
    for grant in grants:
        if grant.role is UNKNOWN:
            findings.undecided("role")
            continue
        is_wi_grant = grant.role == WORKLOAD_IDENTITY_USER
        member = grant.member
        if member is UNKNOWN:
            if is_wi_grant:
                findings.undecided(grant.where)
            continue
        looks_like_wi = isinstance(member, str) and ".svc.id.goog" in member
        if not (is_wi_grant or looks_like_wi):
            continue
        if is_wi_grant and kind.scope != "serviceaccount":
            findings.violation(
                f"`{WORKLOAD_IDENTITY_USER}` is granted on `{kind.scope}`: at that level the Kubernetes "
                f"service account may impersonate every service account below it. Grant it on the LSE app "
                f"service account only (`serviceaccount.IAMMember`).")
        if not (WORKLOAD_IDENTITY_MEMBER.match(member) or WORKLOAD_IDENTITY_PRINCIPAL.match(member)):
            findings.violation(
                f"`{grant.where}` is `{member}`: a Workload Identity member must name one Kubernetes service "
                f"account exactly, `serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]` (no wildcards, "
                f"no principalSet), once for LSE's app and once for its rqworker service account.")
    return findings


# --- actas-scoped (advisory) -----------------------------------------------------------------------------

def check_actas_scoped(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                       name: str = "") -> Findings:
    findings = Findings()
    fix = ("set `scopeActAsToRuntimeServiceAccount: true` so that only the runtime service account can be "
           "acted as (roles/iam.serviceAccountUser on that account)")
    if resource_type in CUSTOM_ROLE_TYPES:
        permissions = get(props, "permissions", default=[])
        if permissions is UNKNOWN or UNKNOWN in permissions:
            findings.undecided("permissions")
        elif GCP_ACT_AS_PERMISSION in permissions:
            findings.violation(
                f"custom role `{get(props, 'roleId')}` includes `{GCP_ACT_AS_PERMISSION}`; granted on the project "
                f"it lets LSE deploy functions as ANY service account of the project: {fix}.")
        return findings
    kind, grants = _grants(resource_type, props, findings)
    if kind is None or kind.scope not in HIERARCHY_SCOPES:
        return findings
    for grant in grants:
        if grant.role is UNKNOWN:
            findings.undecided("role")
        elif grant.role == SERVICE_ACCOUNT_USER:
            findings.violation(
                f"`{SERVICE_ACCOUNT_USER}` is granted on `{kind.scope}` to "
                f"{grant.member if isinstance(grant.member, str) else 'a member'}: it may act as every service "
                f"account there; {fix}.")
    return findings
