"""foundation-complete: a stack that provisions LSE custom metrics contains every piece LSE needs.

Stack policies see each resource's *outputs* (the final state), its parent and its dependencies. Pieces are
recognised by what they are, not only by name, so renamed resources still count: the execution role is the
role Lambda may assume; the interact policy is the managed policy that names iam:PassRole, lambda:CreateFunction and
lambda:InvokeFunction.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lse_custom_metrics.components.facts import (
    GCP_PREDEFINED_DEPLOYER_ROLES,
    GCP_REQUIRED_SERVICES,
    GCP_RUNTIME_SA_ROLES,
)
from lse_custom_metrics.components.gcp_resource_names import service_account_email

from .aws_rules import LAMBDA_SERVICE_PRINCIPAL, _principal_services
from .gcp_iam import grants_of, iam_type
from .iam_documents import (
    ACCOUNT_ID,
    ROLE_TYPE,
    attached_policy_arns,
    attachment_property,
    documents_of,
    has_wildcard,
    parse_arn,
)
from .props import UNKNOWN, Findings, get

INTERACT_ACTIONS = ("iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction")
GCP_ACT_AS_ROLE = "roles/iam.serviceAccountUser"


@dataclass
class StackResource:
    """What a stack policy knows of one resource: type, name, URN, plain outputs, dependencies."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


def _trusts_lambda(resource: StackResource, findings: Findings) -> bool:
    for document in documents_of(ROLE_TYPE, resource.props):
        if document.kind != "trust" or document.error:
            continue
        if document.statements is UNKNOWN:
            findings.undecided(f"{resource.name}.assumeRolePolicy")
            return False
        return any(LAMBDA_SERVICE_PRINCIPAL in (_principal_services(s) if _principal_services(s) is not UNKNOWN
                                                else []) for s in document.statements)
    return False


def _grants_interact(resource: StackResource, findings: Findings) -> bool:
    for document in documents_of(resource.type, resource.props):
        if document.statements is UNKNOWN:
            findings.undecided(f"{resource.name}.policy")
            return False
        granted = {action: False for action in INTERACT_ACTIONS}
        for statement in document.statements:
            if statement.allows is not True:
                continue
            named = statement.values("Action")
            for action in INTERACT_ACTIONS:
                # named explicitly: a wildcard policy is not LSE's interact policy (other rules catch it)
                if named is not UNKNOWN and action.lower() in {a.lower() for a in named if isinstance(a, str)}:
                    granted[action] = True
        return all(granted.values())
    return False


def _pass_role_targets(resource: StackResource) -> list[Any]:
    targets = []
    for document in documents_of(resource.type, resource.props):
        if document.statements is UNKNOWN:
            return [UNKNOWN]
        for statement in document.statements:
            named = statement.values("Action")
            if statement.allows is True and named is not UNKNOWN and \
                    "iam:passrole" in {a.lower() for a in named if isinstance(a, str)}:
                resources = statement.values("Resource")
                targets.extend([UNKNOWN] if resources is UNKNOWN else resources)
    return targets


def _function_accounts(resource: StackResource) -> set[tuple[str, str]] | Any:
    """(partition, account) of every Lambda function ARN the policy's Allow statements name."""
    found = set()
    for document in documents_of(resource.type, resource.props):
        if document.statements is UNKNOWN:
            return UNKNOWN
        for statement in document.statements:
            resources = statement.values("Resource")
            if resources is UNKNOWN:
                return UNKNOWN
            for value in resources:
                arn = parse_arn(value) if isinstance(value, str) else None
                if arn and arn.service == "lambda" and arn.resource.startswith("function:") \
                        and ACCOUNT_ID.match(arn.account):
                    found.add((arn.partition, arn.account))
    return found


def _names_role(target: Any, role: StackResource, function_accounts: Any) -> bool | Any:
    """Is PassRole target `target` this execution role's ARN? True, False or `UNKNOWN`.

    After deployment the role's `arn` is known and compared as is. In a first preview it is computed, but
    it is `arn:<partition>:iam::<account>:role<path><name>` with `name` and `path` inputs: a target with
    another name or path is certainly not it. With the same name and path, the partition and account
    decide; a stack policy cannot see the provider's, so they are taken from the Lambda functions the same
    policy lets LSE create — Lambda refuses an execution role from another account ("Cross-account pass
    role is not allowed"), so the role LSE passes must live where its functions do.
    """
    arn = get(role.props, "arn")
    if isinstance(arn, str):
        return target == arn
    name, path = get(role.props, "name"), get(role.props, "path", default="/")
    if not isinstance(target, str) or not isinstance(name, str) or not isinstance(path, str):
        return UNKNOWN
    parsed = parse_arn(target)
    if parsed is None or parsed.service != "iam" or has_wildcard(target) or \
            parsed.resource != f"role{path}{name}":
        return False  # not `role<path><name>`, so never equal to the role's ARN
    if function_accounts is UNKNOWN or function_accounts != {(parsed.partition, parsed.account)}:
        return UNKNOWN
    return True


def _role_label(role: StackResource) -> Any:
    arn, name = get(role.props, "arn"), get(role.props, "name")
    if isinstance(arn, str) or not isinstance(name, str):
        return arn
    return f"role{get(role.props, 'path', default='/')}{name}"


def _label(resource: StackResource) -> str:
    name = get(resource.props, "name")
    return name if isinstance(name, str) else resource.name


def _attaches(resource: StackResource, policy: StackResource) -> bool | Any:
    """Does `resource` attach `policy` (a policy attachment, an exclusive attachment, or a role's
    `managedPolicyArns`)? By the policy's known ARN or a dependency the engine recorded; `UNKNOWN` when
    an attached ARN is not known yet."""
    key = attachment_property(resource.type)
    if key is None:
        return False
    if policy.urn in resource.property_dependencies.get(key, []):
        return True
    arn = get(policy.props, "arn")
    attached = [value for _, value in attached_policy_arns(resource.type, resource.props)]
    if isinstance(arn, str) and arn in attached:
        return True
    return UNKNOWN if UNKNOWN in attached else False


def _check_aws(resources: Sequence[StackResource], config: Mapping[str, Any], findings: Findings) -> None:
    undecided_before = len(findings.unknown)
    roles = [r for r in resources if r.type == ROLE_TYPE and _trusts_lambda(r, findings)]
    policies = [r for r in resources if r.type == "aws:iam/policy:Policy" and _grants_interact(r, findings)]
    if len(findings.unknown) > undecided_before and not (roles and policies):
        return  # a candidate's document is unknown (preview): whether a piece is missing cannot be told
    if not roles:
        findings.violation(
            f"no Lambda execution role: the stack must create the role the metric functions run as "
            f"(`{config['executionRoleName']}`, trusted by {LAMBDA_SERVICE_PRINCIPAL}); use "
            f"CustomMetricsExecutionRole / AwsCustomMetricsFoundation.")
    if not policies:
        findings.violation(
            f"no interact policy: the stack must create `{config['interactPolicyName']}` (iam:PassRole on the "
            f"execution role, the Lambda and Logs actions on `{config['prefix']}*`); use LambdaInteractPolicy.")
        return
    for policy in policies:
        verdicts = [_attaches(r, policy) for r in resources]
        if not any(v is True for v in verdicts):
            if any(v is UNKNOWN for v in verdicts):
                findings.undecided(f"{policy.name} attachment")
                continue
            findings.violation(
                f"policy `{_label(policy)}` is not attached to any identity: attach it to "
                f"the IAM user, instance role, IRSA role or node role LSE runs as.", policy.urn)
        targets = _pass_role_targets(policy)
        if not roles:
            continue
        if UNKNOWN in targets:
            findings.undecided(f"{policy.name} iam:PassRole resource")
            continue
        accounts = _function_accounts(policy)
        verdicts = [_names_role(t, role, accounts) for t in targets for role in roles]
        if any(v is True for v in verdicts):
            continue
        if any(v is UNKNOWN for v in verdicts):
            findings.undecided(f"{policy.name} iam:PassRole resource")
        else:
            findings.violation(
                f"policy `{_label(policy)}` passes {targets} but this stack's execution "
                f"role is {[_role_label(role) for role in roles]}: iam:PassRole must name the role the functions "
                f"run as.", policy.urn)


def _account_member(account: StackResource) -> str | None:
    """`serviceAccount:<email>` of an account: its computed `member`/`email` when known, else the email GCP
    derives from its `accountId` and `project` inputs (known in a first preview); None if neither is known."""
    member, email = get(account.props, "member"), get(account.props, "email")
    if isinstance(member, str):
        return member
    if not isinstance(email, str):
        email = service_account_email(get(account.props, "accountId"), get(account.props, "project"))
    return f"serviceAccount:{email}" if isinstance(email, str) else None


def _check_gcp(resources: Sequence[StackResource], config: Mapping[str, Any], findings: Findings) -> None:
    """Each missing piece is reported only when nothing unknown (preview) could be that piece."""
    services = [get(r.props, "service") for r in resources if r.type == "gcp:projects/service:Service"]
    missing = [s for s in GCP_REQUIRED_SERVICES if s not in services]
    if UNKNOWN in services:
        findings.undecided("service")
    elif missing:
        findings.violation(f"APIs not enabled by this stack: {', '.join(missing)}; enable them with "
                           f"`projects.Service` (disable_on_destroy=False) — CustomMetricsProjectServices.")

    grants, grants_unknown = [], False
    for r in resources:
        kind, found = grants_of(r.type, r.props)
        if kind is None:
            continue
        if found is UNKNOWN or any(g.role is UNKNOWN or g.member is UNKNOWN for g in found):
            grants_unknown = True
        if found is not UNKNOWN:
            grants.extend((r, g) for g in found)

    account_ids = [get(r.props, "accountId") for r in resources if r.type == "gcp:serviceaccount/account:Account"]
    accounts = [r for r in resources if r.type == "gcp:serviceaccount/account:Account"
                and get(r.props, "accountId") == config["runtimeServiceAccountId"]]
    if not accounts:
        if UNKNOWN in account_ids:
            findings.undecided("accountId")
        else:
            findings.violation(f"no runtime service account `{config['runtimeServiceAccountId']}`: the metric "
                               f"functions need their own identity (CustomMetricsRuntimeServiceAccount).")
    for account in accounts:
        expected = _account_member(account)
        for role in GCP_RUNTIME_SA_ROLES:
            if any(g.role == role and ((expected is not None and g.member == expected)
                                       or account.urn in r.property_dependencies.get("member", []))
                   for r, g in grants):
                continue
            if grants_unknown or expected is None:
                findings.undecided(f"{account.name} {role} grant")
            else:
                findings.violation(f"runtime service account `{config['runtimeServiceAccountId']}` lacks `{role}` "
                                   f"(its functions could not write logs).", account.urn)

    role_types = ("gcp:projects/iAMCustomRole:IAMCustomRole", "gcp:organizations/iAMCustomRole:IAMCustomRole")
    role_ids = [get(r.props, "roleId") for r in resources if r.type in role_types]
    roles = [r for r in resources if r.type in role_types and get(r.props, "roleId") == config["deployerRoleId"]]
    # LSE deploys into the project: the deployer permissions must be granted on the project itself. A grant on
    # a service account (or on any other resource) does not let LSE create functions.
    project_grants = [(r, g) for r, g in grants if iam_type(r.type).scope == "projects"]
    custom_granted = any(
        (isinstance(g.role, str) and g.role.endswith(f"/roles/{config['deployerRoleId']}"))
        or any(role.urn in r.property_dependencies.get("role", []) for role in roles)
        for r, g in project_grants)
    if (roles and custom_granted) or _one_member_holds_the_predefined_roles(grants, accounts):
        return
    if grants_unknown or UNKNOWN in role_ids:
        findings.undecided("deployer role grant")
    else:
        findings.violation(
            f"LSE's identity gets no deployer permissions on the project: create the custom role "
            f"`{config['deployerRoleId']}` (CustomMetricsDeployerRole) and grant it with a project-level IAMMember, "
            f"or grant all of {', '.join(GCP_PREDEFINED_DEPLOYER_ROLES)} on the project to one member "
            f"(roles/iam.serviceAccountUser may be on the runtime service account instead). A grant on a service "
            f"account, or roles split between members, does not let LSE deploy.")


def _one_member_holds_the_predefined_roles(grants, runtime_accounts: Sequence[StackResource]) -> bool:
    """Does one member hold every documented predefined role on the project (actAs — roles/iam.
    serviceAccountUser — also counts on the runtime service account, the scoped option)?"""
    held: dict[str, set[str]] = {}
    for resource, grant in grants:
        if not isinstance(grant.member, str) or not isinstance(grant.role, str):
            continue
        scope = iam_type(resource.type).scope
        if scope == "projects" or (scope == "serviceaccount" and grant.role == GCP_ACT_AS_ROLE and any(
                _targets_account(resource, account) for account in runtime_accounts)):
            held.setdefault(grant.member, set()).add(grant.role)
    return any(all(role in roles for role in GCP_PREDEFINED_DEPLOYER_ROLES) for roles in held.values())


def _targets_account(resource: StackResource, account: StackResource) -> bool:
    """Is this service-account IAM resource on `account` (its known id/email, or a recorded dependency)?"""
    if account.urn in resource.property_dependencies.get("serviceAccountId", []):
        return True
    target, member = get(resource.props, "serviceAccountId"), _account_member(account)
    if not isinstance(target, str) or member is None:
        return False
    email = member.removeprefix("serviceAccount:")
    return target == email or target.endswith(f"/serviceAccounts/{email}")


def check_foundation_complete(resources: Sequence[StackResource], config: Mapping[str, Any]) -> Findings:
    findings = Findings()
    aws = [r for r in resources if r.type.startswith("aws:")]
    gcp = [r for r in resources if r.type.startswith("gcp:")]
    if aws:
        _check_aws(aws, config, findings)
    if gcp:
        _check_gcp(gcp, config, findings)
    return findings
