"""AWS IAM policy documents as the CLI hands them to a policy: find them on each resource type, parse them,
and answer "does this statement grant that action / on which resources" (pure functions, no Pulumi).

IAM accepts `Action`/`Resource`/`Principal` values as a string or a list, and documents arrive as JSON
strings (what pulumi-aws takes) or, from hand-written programs, as objects. `NotAction`/`NotResource` in an
Allow statement grant everything *except* what they list, so the rules treat them as wildcards.
Deny statements only ever take permissions away and are not checked.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .props import UNKNOWN, get

# Resource types whose properties hold identity (permission) policy documents, and where.
PERMISSION_DOCUMENT_TYPES = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE_TYPE = "aws:iam/role:Role"
# Attachments name a managed policy by ARN; the document itself is elsewhere (or AWS-managed).
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
# ...and the exclusive attachment resources, which name a list of policy ARNs for one identity.
EXCLUSIVE_ATTACHMENT_TYPES = {
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "roleName",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "userName",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "groupName",
}

# AWS-managed policies (`arn:<partition>:iam::aws:policy/<path><name>`) live in AWS, not in the stack: the
# pack cannot read their documents. It refuses, by name, the widely attached ones whose published documents
# grant `*`, `service:*` or action-prefix wildcards — each listed with a wildcard it grants, for a reviewer to
# check against AWS's managed-policy reference — and the `<Service>FullAccess` family, named by AWS for
# policies granting a service's every action (AWSLambda_FullAccess: `lambda:*`, AmazonS3FullAccess: `s3:*`).
# Any other AWS-managed policy passes this check: the README states that limit, and the execution role
# accepts none (see aws_rules.check_no_wildcard_actions).
AWS_MANAGED_WILDCARD_POLICIES = {
    "AdministratorAccess": "`*`",
    "PowerUserAccess": "NotAction `iam:*`, `organizations:*`, `account:*` (every other action)",
    "ReadOnlyAccess": "`<service>:Get*`/`List*`/`Describe*` for nearly every service (e.g. `acm:Get*`)",
    "job-function/ViewOnlyAccess": "`lambda:List*`, `iam:List*`, `logs:Describe*`, ...",
    "job-function/SystemAdministrator": "`logs:*`, `s3:*`, `cloudwatch:*`, `lambda:Update*`, ...",
    "job-function/DatabaseAdministrator": "`dynamodb:*`, `rds:*`, `redshift:*`, ...",
    "job-function/NetworkAdministrator": "`route53:*`, `elasticloadbalancing:*`, `directconnect:*`, ...",
    "SecretsManagerReadWrite": "`secretsmanager:*`",
    "AWSLambdaExecute": "`logs:*`",
    "AWSLambda_ReadOnlyAccess": "`lambda:Get*`, `lambda:List*`",
    "AmazonS3ReadOnlyAccess": "`s3:Get*`, `s3:List*`",
    "AmazonEC2ReadOnlyAccess": "`ec2:Describe*`, `ec2:Get*`",
}
_FULL_ACCESS_FAMILY = re.compile(r"^[A-Za-z0-9_]*FullAccess[A-Za-z0-9_]*$")


@dataclass
class Statement:
    index: int
    raw: dict[str, Any]

    @property
    def label(self) -> str:
        sid = self.raw.get("Sid")
        return f"statement {self.index}" + (f" (Sid {sid})" if isinstance(sid, str) and sid else "")

    @property
    def allows(self) -> bool | Any:
        effect = self.raw.get("Effect")
        if effect is UNKNOWN:
            return UNKNOWN
        return effect == "Allow"

    def values(self, key: str) -> list[Any] | Any:
        """A string-or-list element as a list (`UNKNOWN` if the element itself is unknown)."""
        value = self.raw.get(key)
        if value is UNKNOWN:
            return UNKNOWN
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    @property
    def uses_not_action(self) -> bool:
        return "NotAction" in self.raw

    @property
    def uses_not_resource(self) -> bool:
        return "NotResource" in self.raw


@dataclass
class Document:
    """One policy document found on a resource: `kind` is "permissions" or "trust"."""

    kind: str
    where: str  # the property path, e.g. "policy", "inlinePolicies[0].policy", "assumeRolePolicy"
    statements: list[Statement] | Any = field(default_factory=list)  # UNKNOWN while unknown
    error: str | None = None  # set when the document is not a valid IAM JSON document


def parse_document(value: Any, kind: str, where: str) -> Document:
    if value is UNKNOWN:
        return Document(kind, where, UNKNOWN)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            return Document(kind, where, [], error=f"`{where}` is not valid JSON ({exc.msg} at line "
                                                   f"{exc.lineno} column {exc.colno})")
    if not isinstance(value, dict):
        return Document(kind, where, [], error=f"`{where}` is not a JSON object")
    raw_statements = value.get("Statement")
    if raw_statements is UNKNOWN:
        return Document(kind, where, UNKNOWN)
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        return Document(kind, where, [], error=f"`{where}` has no `Statement` list")
    statements = []
    for index, raw in enumerate(raw_statements):
        if raw is UNKNOWN:
            return Document(kind, where, UNKNOWN)
        if not isinstance(raw, dict):
            return Document(kind, where, [], error=f"`{where}` statement {index} is not an object")
        statements.append(Statement(index, raw))
    return Document(kind, where, statements)


def documents_of(resource_type: str, props: dict[str, Any]) -> list[Document]:
    """Every IAM document a resource carries (identity policies and, for roles, the trust policy)."""
    if resource_type in PERMISSION_DOCUMENT_TYPES:
        key = PERMISSION_DOCUMENT_TYPES[resource_type]
        if get(props, key) is None:
            return []
        return [parse_document(get(props, key), "permissions", key)]
    if resource_type != ROLE_TYPE:
        return []
    documents = []
    trust = get(props, "assumeRolePolicy")
    if trust is not None:
        documents.append(parse_document(trust, "trust", "assumeRolePolicy"))
    inline = get(props, "inlinePolicies", default=[])
    if inline is UNKNOWN:
        documents.append(Document("permissions", "inlinePolicies", UNKNOWN))
    else:
        for index, item in enumerate(inline):
            policy = get(item, "policy")
            if policy is None or policy == "":  # an empty inline entry is how pulumi-aws clears them
                continue
            documents.append(parse_document(policy, "permissions", f"inlinePolicies[{index}].policy"))
    return documents


def attached_policy_arns(resource_type: str, props: dict[str, Any]) -> list[tuple[str, Any]]:
    """(property path, policy ARN) for every managed policy a resource attaches."""
    key = attachment_property(resource_type)
    if key is None:
        return []
    if resource_type in ATTACHMENT_TYPES:
        return [(key, get(props, key))]
    arns = get(props, key, default=[])
    if arns is UNKNOWN:
        return [(key, UNKNOWN)]
    return [(f"{key}[{i}]", arn) for i, arn in enumerate(arns)]


def attachment_property(resource_type: str) -> str | None:
    """The property in which a resource names the managed policies it attaches (None: it attaches none)."""
    if resource_type in ATTACHMENT_TYPES:
        return "policyArn"
    if resource_type == ROLE_TYPE:
        return "managedPolicyArns"
    return "policyArns" if resource_type in EXCLUSIVE_ATTACHMENT_TYPES else None


def attached_role_names(resource_type: str, props: dict[str, Any]) -> list[Any] | Any:
    """The names of the roles a resource attaches managed policies to (`UNKNOWN` if not known yet).
    Role references given as ARNs are reduced to the name (the last path segment)."""
    if resource_type == ROLE_TYPE:
        names = [get(props, "name")]
    elif resource_type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        names = [get(props, "role")]
    elif resource_type == "aws:iam/policyAttachment:PolicyAttachment":
        names = get(props, "roles", default=[])
        if names is UNKNOWN:
            return UNKNOWN
    elif resource_type == "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive":
        names = [get(props, "roleName")]
    else:
        return []
    if UNKNOWN in names:
        return UNKNOWN
    return [n.rsplit("/", 1)[-1] if isinstance(n, str) else n for n in names if n is not None]


def aws_managed_policy_name(arn: str) -> str | None:
    """`job-function/SystemAdministrator` for `arn:aws:iam::aws:policy/job-function/SystemAdministrator`;
    None when the ARN is not an AWS-managed policy (a customer policy has an account id, not `aws`)."""
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "iam" or parsed.account != "aws" or \
            not parsed.resource.startswith("policy/"):
        return None
    return parsed.resource.removeprefix("policy/")


def wildcard_managed_policy_grant(arn: str) -> str | None:
    """What an AWS-managed policy known to grant wildcard actions grants (for messages), else None."""
    name = aws_managed_policy_name(arn)
    if name is None:
        return None
    if name in AWS_MANAGED_WILDCARD_POLICIES:
        return AWS_MANAGED_WILDCARD_POLICIES[name]
    if _FULL_ACCESS_FAMILY.match(name.rsplit("/", 1)[-1]):
        return "every action of its service (`service:*`, the `FullAccess` family)"
    return None


# --- actions ------------------------------------------------------------------------------------------

def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, `*` and `?` wildcards."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def grants_action(statement: Statement, action: str) -> bool | Any:
    """Does this Allow statement grant `action`? (`UNKNOWN` if its actions are unknown.)"""
    if statement.uses_not_action:
        excluded = statement.values("NotAction")
        if excluded is UNKNOWN or UNKNOWN in excluded:
            return UNKNOWN
        return not any(action_matches(p, action) for p in excluded if isinstance(p, str))
    patterns = statement.values("Action")
    if patterns is UNKNOWN:
        return UNKNOWN
    if any(isinstance(p, str) and action_matches(p, action) for p in patterns):
        return True
    return UNKNOWN if UNKNOWN in patterns else False


def granted_service_actions(statement: Statement, service: str, *, except_actions: tuple[str, ...] = ()
                            ) -> list[str] | Any:
    """The action patterns of this statement that reach any `service:` action other than `except_actions`.

    `NotAction` reaches every action of the service unless it excludes the whole service.
    """
    if statement.uses_not_action:
        excluded = statement.values("NotAction")
        if excluded is UNKNOWN or UNKNOWN in excluded:
            return UNKNOWN
        if any(isinstance(p, str) and action_matches(p, f"{service}:*") and p.split(":", 1)[-1] == "*"
               for p in excluded) or "*" in excluded:
            return []
        return [f"NotAction {json.dumps(excluded)}"]
    patterns = statement.values("Action")
    if patterns is UNKNOWN:
        return UNKNOWN
    reached = []
    for pattern in patterns:
        if pattern is UNKNOWN:
            return UNKNOWN
        if not isinstance(pattern, str):
            continue
        pattern_service, _, name = pattern.partition(":")
        if pattern == "*" or (name and fnmatch.fnmatchcase(service, pattern_service.lower())):
            if pattern.lower() in {a.lower() for a in except_actions}:
                continue
            reached.append(pattern)
    return reached


# --- conditions ---------------------------------------------------------------------------------------

def condition_value(block: Any, key: str) -> Any:
    """The value(s) a condition operator's block gives `key`, matched case-insensitively (IAM context key
    names are not case-sensitive); several spellings of one key are merged into one list. None when absent,
    `UNKNOWN` when unknown."""
    if block is UNKNOWN:
        return UNKNOWN
    if not isinstance(block, dict):
        return None
    found = [value for name, value in block.items() if isinstance(name, str) and name.lower() == key.lower()]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    if UNKNOWN in found:
        return UNKNOWN
    merged = []
    for value in found:
        merged.extend(value if isinstance(value, list) else [value])
    return merged


# --- resources ----------------------------------------------------------------------------------------

_WILDCARD_ONLY = re.compile(r"^[*?/:]*\*[*?/:]*$")


def is_all_resources(resource: str) -> bool:
    """`*`, or an ARN whose resource part is only wildcards: every resource of a service (in the ARN's
    region and account, themselves often wildcards) — `arn:aws:s3:::*`, `arn:aws:s3:::*/*`,
    `arn:aws:lambda:*:*:*`, `arn:aws:logs:us-east-1:123456789012:*`, `arn:aws:*:*:*:*`. For the actions of
    that service it grants what `Resource: "*"` grants. (`function:*`, `role/*` name a resource type, and
    are left to the rules that scope those types.)"""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if parts[0] != "arn" or len(parts) < 3:
        return False
    if len(parts) == 6:
        return bool(_WILDCARD_ONLY.match(parts[5]))
    # a truncated ARN (`arn:aws:*`): only when everything after the partition is a wildcard
    return all(part in ("", "*") for part in parts[2:]) and "*" in parts[2:]


def statement_resources(statement: Statement) -> list[Any] | Any:
    """The resources an Allow statement reaches; `NotResource` reaches everything (`*`)."""
    if statement.uses_not_resource:
        return ["*"]
    return statement.values("Resource")


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(value: str) -> Arn | None:
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return Arn(*parts[1:])


ACCOUNT_ID = re.compile(r"^\d{12}$")
