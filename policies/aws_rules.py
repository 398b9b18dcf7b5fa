"""AWS checks of the pack: pure functions of (resource type, plain properties, policy config) → Findings."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .iam_documents import (
    ACCOUNT_ID,
    ROLE_TYPE,
    Document,
    Statement,
    attached_policy_arns,
    attached_role_names,
    aws_managed_policy_name,
    condition_value,
    documents_of,
    granted_service_actions,
    grants_action,
    has_wildcard,
    is_all_resources,
    parse_arn,
    wildcard_managed_policy_grant,
)
from .props import UNKNOWN, Findings, get

LAMBDA_SERVICE_PRINCIPAL = "lambda.amazonaws.com"
IRSA_AUDIENCE = "sts.amazonaws.com"
WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"
AWS_ACCESS_KEY = "aws:iam/accessKey:AccessKey"
GCP_SERVICE_ACCOUNT_KEY = "gcp:serviceaccount/key:Key"
# EKS cluster issuers (IRSA): their subjects are Kubernetes service accounts. Other OIDC providers (GitHub
# Actions, GitLab, Terraform Cloud, ...) have subjects of their own.
_EKS_ISSUER = re.compile(r"^oidc\.eks\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/id/[A-Za-z0-9]+$", re.IGNORECASE)
# GitHub Actions (and GitHub Enterprise's `/<enterprise>` issuers): aws-actions/configure-aws-credentials
# requests tokens for the audience sts.amazonaws.com.
_GITHUB_ISSUER = re.compile(r"^token\.actions\.githubusercontent\.com(/[^/]+)?$", re.IGNORECASE)
# system:serviceaccount:<namespace>:<name>, both DNS names
_SERVICE_ACCOUNT_SUBJECT = re.compile(
    r"^system:serviceaccount:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _role_trust_allow_statements(resource_type: str, props: Mapping[str, Any], findings: Findings):
    """The Allow statements of a role's readable trust policy (none for other resources)."""
    if resource_type != ROLE_TYPE:
        return
    trust = _trust_document(props)
    if trust is not None and not trust.error:
        yield from _allow_statements(trust, findings)


def _allow_statements(document: Document, findings: Findings):
    """The Allow statements of a known document; unknown parts are noted, Deny statements skipped."""
    if document.statements is UNKNOWN:
        findings.undecided(document.where)
        return
    for statement in document.statements:
        allows = statement.allows
        if allows is UNKNOWN:
            findings.undecided(f"{document.where} {statement.label} Effect")
        elif allows:
            yield statement


def _where(document: Document, statement: Statement) -> str:
    return f"`{document.where}` {statement.label}"


# --- iam-no-wildcard-actions ---------------------------------------------------------------------------

def check_no_wildcard_actions(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                              name: str = "") -> Findings:
    findings = Findings()
    for document in documents_of(resource_type, props):
        if document.error:
            findings.violation(f"{document.error}: IAM will reject it; write a valid policy document.")
            continue
        for statement in _allow_statements(document, findings):
            where = _where(document, statement)
            if statement.uses_not_action:
                findings.violation(
                    f"{where} uses NotAction {json.dumps(statement.raw.get('NotAction'), default=str)}: an Allow "
                    f"with NotAction grants every other action of every service. List the actions instead.")
                continue
            actions = statement.values("Action")
            if actions is UNKNOWN:
                findings.undecided(f"{document.where} {statement.label} Action")
                continue
            for action in actions:
                if action is UNKNOWN:
                    findings.undecided(f"{document.where} {statement.label} Action")
                elif isinstance(action, str) and has_wildcard(action):
                    findings.violation(
                        f"{where} allows the wildcard action `{action}`: name each action the identity needs "
                        f"(LSE needs only the actions of LSE_AllowInteractLambda).")
    _check_aws_managed_attachments(resource_type, props, config, findings)
    return findings


def _check_aws_managed_attachments(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                                   findings: Findings) -> None:
    """AWS-managed policies: the pack cannot read their documents. Those known to grant wildcard actions
    are refused everywhere; on the execution role, which runs users' metric code and needs only its inline
    logs statements, every AWS-managed policy is refused."""
    managed = []
    for path, arn in attached_policy_arns(resource_type, props):
        if not isinstance(arn, str):
            continue  # unknown: a policy created in this stack, whose own document is checked on that resource
        grant = wildcard_managed_policy_grant(arn)
        if grant is not None:
            findings.violation(
                f"`{path}` attaches the AWS-managed policy {arn}, which grants wildcard actions ({grant}): "
                f"attach LSE_AllowInteractLambda (or another least-privilege policy of your own) instead.")
        elif aws_managed_policy_name(arn) is not None:
            managed.append((path, arn))
    if not managed:
        return
    roles = attached_role_names(resource_type, props)
    if roles is UNKNOWN:
        findings.undecided("role")
        return
    role_name = config["executionRoleName"]
    if role_name in roles:
        for path, arn in managed:
            findings.violation(
                f"`{path}` attaches the AWS-managed policy {arn} to the execution role `{role_name}`: the pack "
                f"cannot read AWS-managed documents, and this role runs users' metric code. It needs only the "
                f"logs statements of its own inline policy (CustomMetricsExecutionRole); detach {arn}.")


# --- iam-wildcard-resource-only-listfunctions -------------------------------------------------------------

def check_wildcard_resource_only_listfunctions(resource_type: str, props: Mapping[str, Any],
                                               config: Mapping[str, Any], name: str = "") -> Findings:
    allowed = {a.lower() for a in config["allowedActions"]}
    findings = Findings()
    for document in documents_of(resource_type, props):
        if document.kind != "permissions" or document.error:
            continue
        for statement in _allow_statements(document, findings):
            where = _where(document, statement)
            if statement.uses_not_resource:
                findings.violation(
                    f"{where} uses NotResource: an Allow with NotResource reaches every other resource. "
                    f"Name the resources instead.")
                continue
            resources = statement.values("Resource")
            if resources is UNKNOWN or UNKNOWN in resources:
                findings.undecided(f"{document.where} {statement.label} Resource")
                continue
            star = [r for r in resources if isinstance(r, str) and is_all_resources(r)]
            if not star:
                continue
            shown = "`Resource: \"*\"`" if "*" in star else (
                f"{', '.join(f'`{r}`' for r in star)} (every resource of the service: `Resource: \"*\"` "
                f"for its actions)")
            if statement.uses_not_action:
                findings.violation(f"{where} grants NotAction on {shown}; only "
                                   f"{', '.join(sorted(config['allowedActions']))} may use `*`.")
                continue
            actions = statement.values("Action")
            if actions is UNKNOWN or UNKNOWN in actions:
                findings.undecided(f"{document.where} {statement.label} Action")
                continue
            if config["allowAccountWideCreateLogGroup"] and _only_create_log_group(actions) and \
                    all(_is_account_log_groups(r) for r in star):
                continue  # the docs' execution-role statement (see lambda-actions-scoped-to-prefix)
            extra = [a for a in actions if not isinstance(a, str) or a.lower() not in allowed]
            if extra:
                findings.violation(
                    f"{where} grants {', '.join(f'`{a}`' for a in extra)} on {shown}: only "
                    f"{', '.join(sorted(config['allowedActions']))} needs `*` (it has no resource-level "
                    f"permissions). Scope the others to ARNs (LSE's functions and their log groups), or move them "
                    f"to their own statement.")
    return findings


def _is_exactly(actions: list[Any], action: str) -> bool:
    """Whether a statement's actions are that one action (IAM action names are case-insensitive)."""
    return [a.lower() if isinstance(a, str) else a for a in actions] == [action.lower()]


def _only_create_log_group(actions: list[Any]) -> bool:
    return _is_exactly(actions, "logs:CreateLogGroup")


# --- lambda-actions-scoped-to-prefix -------------------------------------------------------------------

def _is_prefixed_function(resource: str, prefix: str) -> bool:
    arn = parse_arn(resource)
    return (arn is not None and arn.service == "lambda" and bool(ACCOUNT_ID.match(arn.account))
            and arn.resource.startswith(f"function:{prefix}"))


def _is_prefixed_log_group(resource: str, prefix: str) -> bool:
    arn = parse_arn(resource)
    return (arn is not None and arn.service == "logs" and bool(ACCOUNT_ID.match(arn.account))
            and arn.resource.startswith(f"log-group:/aws/lambda/{prefix}"))


def _is_account_log_groups(resource: str) -> bool:
    """`arn:<partition>:logs:<region>:<account>:*` — the docs' execution-role CreateLogGroup resource."""
    arn = parse_arn(resource)
    return (arn is not None and arn.service == "logs" and bool(ACCOUNT_ID.match(arn.account))
            and arn.resource == "*")


def check_lambda_actions_scoped_to_prefix(resource_type: str, props: Mapping[str, Any],
                                          config: Mapping[str, Any], name: str = "") -> Findings:
    prefix = config["prefix"]
    findings = Findings()
    for document in documents_of(resource_type, props):
        if document.kind != "permissions" or document.error:
            continue
        for statement in _allow_statements(document, findings):
            where = _where(document, statement)
            # actions without resource-level permissions (the same `allowedActions` as
            # iam-wildcard-resource-only-listfunctions) can only be granted on "*": not scoped here
            exempt = tuple(config["allowedActions"])
            lambda_actions = granted_service_actions(statement, "lambda", except_actions=exempt)
            logs_actions = granted_service_actions(statement, "logs", except_actions=exempt)
            if lambda_actions is UNKNOWN or logs_actions is UNKNOWN:
                findings.undecided(f"{document.where} {statement.label} Action")
                continue
            if not lambda_actions and not logs_actions:
                continue
            if statement.uses_not_resource:
                findings.violation(f"{where} grants Lambda/Logs actions with NotResource (every other "
                                   f"resource): scope them to `function:{prefix}*` / "
                                   f"`log-group:/aws/lambda/{prefix}*`.")
                continue
            resources = statement.values("Resource")
            if resources is UNKNOWN or UNKNOWN in resources:
                findings.undecided(f"{document.where} {statement.label} Resource")
                continue
            account_wide_create = (
                config["allowAccountWideCreateLogGroup"] and not lambda_actions
                and _only_create_log_group(logs_actions))
            for resource in resources:
                if not isinstance(resource, str):
                    continue
                if lambda_actions and not _is_prefixed_function(resource, prefix) and \
                        not (logs_actions and _is_prefixed_log_group(resource, prefix)):
                    findings.violation(
                        f"{where} grants {', '.join(f'`{a}`' for a in lambda_actions)} on `{resource}`: "
                        f"function-level Lambda actions must be scoped to "
                        f"`arn:<partition>:lambda:<region>:<account>:function:{prefix}*`.")
                if logs_actions and not _is_prefixed_log_group(resource, prefix) and \
                        not (lambda_actions and _is_prefixed_function(resource, prefix)) and \
                        not (account_wide_create and _is_account_log_groups(resource)):
                    findings.violation(
                        f"{where} grants {', '.join(f'`{a}`' for a in logs_actions)} on `{resource}`: "
                        f"CloudWatch Logs actions must be scoped to "
                        f"`arn:<partition>:logs:<region>:<account>:log-group:/aws/lambda/{prefix}*`.")
    return findings


# --- passrole-only-execution-role ------------------------------------------------------------------------

def _is_execution_role_arn(resource: str, role_name: str) -> bool:
    arn = parse_arn(resource)
    if arn is None or arn.service != "iam" or not ACCOUNT_ID.match(arn.account) or has_wildcard(resource):
        return False
    return arn.resource.startswith("role/") and arn.resource.rsplit("/", 1)[-1] == role_name


def check_passrole_only_execution_role(resource_type: str, props: Mapping[str, Any],
                                       config: Mapping[str, Any], name: str = "") -> Findings:
    role_name = config["executionRoleName"]
    findings = Findings()
    for document in documents_of(resource_type, props):
        if document.kind != "permissions" or document.error:
            continue
        for statement in _allow_statements(document, findings):
            granted = grants_action(statement, "iam:PassRole")
            if granted is UNKNOWN:
                findings.undecided(f"{document.where} {statement.label} Action")
                continue
            if not granted:
                continue
            where = _where(document, statement)
            resources = ["*"] if statement.uses_not_resource else statement.values("Resource")
            if resources is UNKNOWN or UNKNOWN in resources:
                findings.undecided(f"{document.where} {statement.label} Resource")
                continue
            for resource in resources:
                if not isinstance(resource, str) or not _is_execution_role_arn(resource, role_name):
                    findings.violation(
                        f"{where} allows iam:PassRole on `{resource}`: LSE only passes the execution role; "
                        f"use exactly `arn:<partition>:iam::<account>:role/{role_name}`.")
    return findings


# --- execution-role-trusts-lambda-only -------------------------------------------------------------------

def _principal_services(statement: Statement) -> list[Any] | Any:
    principal = statement.raw.get("Principal")
    if principal is UNKNOWN:
        return UNKNOWN
    if not isinstance(principal, dict):
        return []
    services = principal.get("Service", [])
    if services is UNKNOWN:
        return UNKNOWN
    return services if isinstance(services, list) else [services]


def _trust_document(props: Mapping[str, Any]) -> Document | None:
    for document in documents_of(ROLE_TYPE, props):
        if document.kind == "trust":
            return document
    return None


def check_execution_role_trusts_lambda_only(resource_type: str, props: Mapping[str, Any],
                                            config: Mapping[str, Any], name: str = "") -> Findings:
    """The execution role is the role named `executionRoleName` (LSE is configured with that role's ARN).
    Other roles that trust Lambda — a Lambda@Edge role trusting lambda and edgelambda, another team's
    function role — are not LSE's execution role and are not judged here."""
    findings = Findings()
    if resource_type != ROLE_TYPE:
        return findings
    name = get(props, "name")  # absent: auto-named `<resource name>-<random>`, never the configured name
    if name is UNKNOWN:
        findings.undecided("name")
        return findings
    if name != config["executionRoleName"]:
        return findings
    trust = _trust_document(props)
    if trust is None:
        findings.violation("the execution role has no trust policy: set `assumeRolePolicy` so that only "
                           f"{LAMBDA_SERVICE_PRINCIPAL} may assume it.")
        return findings
    if trust.error:
        return findings  # iam-no-wildcard-actions reports malformed documents
    if trust.statements is UNKNOWN:
        findings.undecided("assumeRolePolicy")
        return findings
    trusts_lambda = False
    for statement in trust.statements:
        services = _principal_services(statement)
        if statement.allows is True and services is not UNKNOWN and LAMBDA_SERVICE_PRINCIPAL in services:
            trusts_lambda = True
    role = f"role `{name}`" if isinstance(name, str) else "this role"
    if not trusts_lambda:
        findings.violation(f"{role} is the Lambda execution role but its trust policy does not let "
                           f"{LAMBDA_SERVICE_PRINCIPAL} assume it.")
    for statement in _allow_statements(trust, findings):
        where = f"`assumeRolePolicy` {statement.label}"
        if "NotPrincipal" in statement.raw:
            findings.violation(f"{where} uses NotPrincipal: trust {LAMBDA_SERVICE_PRINCIPAL} by name instead.")
            continue
        principal = statement.raw.get("Principal")
        if principal is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Principal")
            continue
        expected = {"Service": LAMBDA_SERVICE_PRINCIPAL}
        normalised = ({k: (v if not isinstance(v, list) or len(v) != 1 else v[0]) for k, v in principal.items()}
                      if isinstance(principal, dict) else principal)
        if normalised != expected:
            findings.violation(
                f"{where} trusts {json.dumps(principal, default=str)}: the execution role of the metric "
                f"functions must be assumable by {LAMBDA_SERVICE_PRINCIPAL} only.")
        if statement.uses_not_action:
            findings.violation(f"{where} uses NotAction: the Lambda service needs exactly `sts:AssumeRole`.")
            continue
        actions = statement.values("Action")
        if actions is UNKNOWN or UNKNOWN in actions:
            findings.undecided(f"assumeRolePolicy {statement.label} Action")
        elif not _is_exactly(actions, "sts:AssumeRole"):
            findings.violation(f"{where} allows {json.dumps(actions, default=str)}: the Lambda service "
                               f"needs exactly `sts:AssumeRole`.")
    return findings


# --- irsa-trust-pinned -----------------------------------------------------------------------------------

def _is_web_identity_statement(statement: Statement) -> bool:
    principal = statement.raw.get("Principal")
    if isinstance(principal, dict) and "Federated" in principal:
        federated = principal["Federated"]
        values = federated if isinstance(federated, list) else [federated]
        if all(isinstance(v, str) and ":saml-provider/" in v for v in values):
            return False  # SAML federation is not web identity
        return True
    actions = statement.values("Action")
    return actions is not UNKNOWN and any(isinstance(a, str) and a.lower() == WEB_IDENTITY_ACTION.lower()
                                          for a in actions)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_irsa_trust_pinned(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                            name: str = "") -> Findings:
    findings = Findings()
    for statement in _role_trust_allow_statements(resource_type, props, findings):
        if statement.raw.get("Principal") is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Principal")
            continue
        if not _is_web_identity_statement(statement):
            continue
        where = f"`assumeRolePolicy` {statement.label}"
        principal = statement.raw.get("Principal")
        federated = _as_list(principal.get("Federated")) if isinstance(principal, dict) else [principal]
        if UNKNOWN in federated:
            findings.undecided(f"assumeRolePolicy {statement.label} Principal")
            continue
        issuers = []
        for value in federated:
            arn = parse_arn(value) if isinstance(value, str) else None
            if arn is None or arn.service != "iam" or not arn.resource.startswith("oidc-provider/"):
                findings.violation(f"{where} trusts web identities from `{value}`: name an IAM OIDC provider "
                                   f"(`arn:<partition>:iam::<account>:oidc-provider/<issuer>`), e.g. the "
                                   f"cluster's.")
            else:
                issuers.append(arn.resource.removeprefix("oidc-provider/"))
        if len(federated) > 1:
            findings.violation(f"{where} trusts {len(federated)} OIDC providers in one statement: conditions "
                               f"are per issuer, so write one statement per provider.")
            continue
        if not issuers:
            continue
        issuer = issuers[0]
        condition = statement.raw.get("Condition", {})
        if condition is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Condition")
            continue
        condition = condition if isinstance(condition, dict) else {}
        for operator, block in condition.items():
            if operator == "StringEquals" or not isinstance(block, dict):
                continue
            for key in block:  # context key names are case-insensitive in IAM
                if isinstance(key, str) and key.lower() in (f"{issuer}:sub".lower(), f"{issuer}:aud".lower()):
                    findings.violation(f"{where} matches `{key}` with {operator}: pin it with StringEquals "
                                       f"(no patterns) so only the named subjects can assume the role.")
        equals = condition.get("StringEquals", {})
        if equals is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Condition")
            continue
        equals = equals if isinstance(equals, dict) else {}
        sub, aud = condition_value(equals, f"{issuer}:sub"), condition_value(equals, f"{issuer}:aud")
        if sub is UNKNOWN or aud is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Condition")
            continue
        subjects = _as_list(sub) if sub is not None else []
        eks = bool(_EKS_ISSUER.match(issuer))
        if not subjects:
            findings.violation(
                f"{where} does not pin `{issuer}:sub` with StringEquals: "
                + ("any pod of the cluster could assume the role. List `system:serviceaccount:<namespace>:<ksa>` "
                   "for LSE's app and rqworker service accounts." if eks else
                   "anyone the provider issues a token to could assume the role. List the exact subjects (GitHub "
                   "Actions: `repo:<owner>/<repo>:ref:refs/heads/<branch>` or "
                   "`repo:<owner>/<repo>:environment:<name>`)."))
        for subject in subjects:
            if subject is UNKNOWN:
                findings.undecided(f"assumeRolePolicy {statement.label} Condition")
            elif not isinstance(subject, str) or has_wildcard(subject) or not subject:
                findings.violation(f"{where} trusts subject `{subject}`: each `{issuer}:sub` must be one exact "
                                   + ("`system:serviceaccount:<namespace>:<ksa>`" if eks else "subject")
                                   + " (no wildcards).")
            elif eks and not _SERVICE_ACCOUNT_SUBJECT.match(subject):
                findings.violation(f"{where} trusts subject `{subject}`: each `{issuer}:sub` of an EKS cluster "
                                   f"must be one exact `system:serviceaccount:<namespace>:<ksa>` (no wildcards).")
        audiences = _as_list(aud) if aud is not None else []
        if UNKNOWN in audiences:
            findings.undecided(f"assumeRolePolicy {statement.label} Condition")
        elif eks or _GITHUB_ISSUER.match(issuer):
            if audiences != [IRSA_AUDIENCE]:
                findings.violation(f"{where} does not pin `{issuer}:aud` to `{IRSA_AUDIENCE}` (found "
                                   f"{json.dumps(aud, default=str)}): add it to the StringEquals block so tokens "
                                   f"minted for other audiences are refused.")
        elif not audiences or any(not isinstance(a, str) or not a or has_wildcard(a) for a in audiences):
            findings.violation(f"{where} does not pin `{issuer}:aud` to exact audiences (found "
                               f"{json.dumps(aud, default=str)}): add the audience (client id) your tokens are "
                               f"minted for to the StringEquals block so tokens for other audiences are refused.")
    return findings


# --- iam-trust-no-wildcard-principal ------------------------------------------------------------------

# Condition keys that pin *who* the caller is when a trust names every principal, with the operators that
# pin them (an `...IfExists` operator matches when the key is absent, so it pins nothing).
_EXACT_STRING_OPERATORS = ("StringEquals", "StringEqualsIgnoreCase")
_PRINCIPAL_ARN_OPERATORS = ("ArnEquals", "ArnLike", "StringEquals", "StringLike")


def _wildcard_principal(principal: Any) -> str | None | Any:
    """How a trust's Principal names every principal (`*`, {"AWS": "*"}, a wildcard AWS or Service
    value), as shown in messages; None if it does not; `UNKNOWN` if that cannot be told yet."""
    if principal is UNKNOWN:
        return UNKNOWN
    if principal == "*":
        return '`"*"`'
    if not isinstance(principal, dict):
        return None
    unknown = False
    for kind in ("AWS", "Service"):
        values = principal.get(kind)
        if values is UNKNOWN:
            unknown = True
            continue
        for value in _as_list(values) if values is not None else []:
            if value is UNKNOWN:
                unknown = True
            elif isinstance(value, str) and has_wildcard(value):
                return f'`{{"{kind}": "{value}"}}`'
    return UNKNOWN if unknown else None


def _pins_the_caller(condition: Any) -> bool | Any:
    """Does this Condition restrict the caller to an account, an organization or exact principal ARNs?"""
    if condition is UNKNOWN:
        return UNKNOWN
    if not isinstance(condition, dict):
        return False
    unknown = False
    for operator, block in condition.items():
        if block is UNKNOWN:
            unknown = True
            continue
        if not isinstance(operator, str) or not isinstance(block, dict) or operator.endswith("IfExists"):
            continue
        qualifier, _, base = operator.rpartition(":")
        for key, value in block.items():
            values = _as_list(value)
            if UNKNOWN in values or value is UNKNOWN:
                unknown = True
                continue
            if not values or not all(isinstance(v, str) and v for v in values):
                continue
            key = key.lower() if isinstance(key, str) else ""
            if key in ("aws:principalaccount", "aws:principalorgid") and not qualifier and \
                    base in _EXACT_STRING_OPERATORS and not any(has_wildcard(v) for v in values):
                return True
            if key == "aws:principalarn" and not qualifier and base in _PRINCIPAL_ARN_OPERATORS and all(
                    (arn := parse_arn(v)) is not None and ACCOUNT_ID.match(arn.account) for v in values):
                return True
            if key == "aws:principalorgpaths" and qualifier == "ForAnyValue" and \
                    base in ("StringEquals", "StringLike") and \
                    all(v.startswith("o-") and not has_wildcard(v.split("/", 1)[0]) for v in values):
                return True
    return UNKNOWN if unknown else False


def check_trust_no_wildcard_principal(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                                      name: str = "") -> Findings:
    findings = Findings()
    for statement in _role_trust_allow_statements(resource_type, props, findings):
        where = f"`assumeRolePolicy` {statement.label}"
        if "NotPrincipal" in statement.raw:
            findings.violation(f"{where} uses NotPrincipal in an Allow: every principal except those listed "
                               f"could assume the role. Name the principals in `Principal` instead.")
            continue
        if _is_web_identity_statement(statement):
            continue  # web-identity trusts: irsa-trust-pinned
        shown = _wildcard_principal(statement.raw.get("Principal"))
        if shown is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Principal")
            continue
        if shown is None:
            continue
        pinned = _pins_the_caller(statement.raw.get("Condition"))
        if pinned is UNKNOWN:
            findings.undecided(f"assumeRolePolicy {statement.label} Condition")
        elif not pinned:
            findings.violation(
                f"{where} lets Principal {shown} assume the role: any principal of any AWS account could. Name "
                f"the account, role or service that needs it (e.g. `{{\"AWS\": \"arn:aws:iam::<account>:root\"}}`), "
                f"or pin the caller with a StringEquals condition on aws:PrincipalAccount or aws:PrincipalOrgID.")
    return findings


# --- no-static-access-keys (advisory) --------------------------------------------------------------------

def check_no_static_access_keys(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any],
                                name: str = "") -> Findings:
    findings = Findings()
    if resource_type == AWS_ACCESS_KEY:
        user = get(props, "user")
        who = f" for IAM user `{user}`" if isinstance(user, str) else ""
        findings.violation(
            f"a long-lived access key is created{who}: it lives in LSE's environment and never rotates. "
            f"Prefer deployment `ec2-instance-profile` (EC2) or `eks-oidc` (IRSA on EKS), which need no keys.")
    elif resource_type == GCP_SERVICE_ACCOUNT_KEY:
        findings.violation(
            "a service-account key is created: prefer the VM's service account (`gce-vm`) or Workload "
            "Identity (`gke-workload-identity`), which need no key file.")
    return findings
