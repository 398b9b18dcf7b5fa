"""Build and parse the IAM identifiers the AWS foundation deals in (pure functions, no Pulumi).

Every ARN is built from the partition and account (`aws`, `aws-cn`, `aws-us-gov`), never hard-coded,
and every identifier a user types into stack config is parsed here, so the program and the components
reject the same bad input with the same message.
"""
from __future__ import annotations

import re

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")

_ACCOUNT = re.compile(r"^\d{12}$")
# IAM's own rule for role names: 1-64 of [\w+=,.@-].
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):role/"
    r"(?P<path>(?:[\x21-\x7e]+/)*)(?P<name>[\w+=,.@-]{1,64})$", re.ASCII)
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):oidc-provider/(?P<issuer>.+)$")
# An issuer is a host name with an optional path, e.g. oidc.eks.us-east-1.amazonaws.com/id/ABC123.
_ISSUER = re.compile(
    r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)"
    r"(?P<path>(?:/[A-Za-z0-9._~-]+)*)$")


def check_partition(partition: str) -> str:
    if partition not in PARTITIONS:
        raise ValueError(f"unknown AWS partition '{partition}' (expected one of {', '.join(PARTITIONS)})")
    return partition


def check_account(account_id: str) -> str:
    if not _ACCOUNT.match(account_id or ""):
        raise ValueError(f"AWS account id must be 12 digits, got '{account_id}'")
    return account_id


def iam_arn(partition: str, account_id: str, resource: str) -> str:
    """`arn:<partition>:iam::<account>:<resource>` (IAM is global: no region)."""
    return f"arn:{check_partition(partition)}:iam::{check_account(account_id)}:{resource}"


def role_arn(partition: str, account_id: str, role_name: str, path: str = "/") -> str:
    return iam_arn(partition, account_id, f"role{path}{role_name}")


def lambda_functions_arn(partition: str, account_id: str, prefix: str) -> str:
    """Every function whose name starts with `prefix`, in any region of the account."""
    return f"arn:{check_partition(partition)}:lambda:*:{check_account(account_id)}:function:{prefix}*"


def lambda_log_groups_arn(partition: str, account_id: str, prefix: str) -> str:
    """The log groups Lambda writes for functions named `prefix...`, in any region of the account."""
    return (f"arn:{check_partition(partition)}:logs:*:{check_account(account_id)}:"
            f"log-group:/aws/lambda/{prefix}*")


def all_logs_arn(partition: str, account_id: str) -> str:
    return f"arn:{check_partition(partition)}:logs:*:{check_account(account_id)}:*"


def role_name_from(name_or_arn: str) -> str:
    """A role's NAME from either its name or its ARN (`RolePolicyAttachment.role` takes a name).

    A role ARN may carry a path (`role/eks/nodes/NodeRole`); the name is the last segment.
    """
    value = (name_or_arn or "").strip()
    if value.startswith("arn:"):
        match = _ROLE_ARN.match(value)
        if not match:
            raise ValueError(f"'{value}' is not an IAM role ARN "
                             "(expected arn:<partition>:iam::<12-digit account>:role/[<path>/]<name>)")
        return match.group("name")
    if not _ROLE_NAME.match(value):
        raise ValueError(f"'{value}' is not an IAM role name (1-64 characters of letters, digits and +=,.@_-) "
                         "nor a role ARN")
    return value


def role_arn_if_given(name_or_arn: str) -> str | None:
    """The ARN when the user gave one (the name alone does not say which path the role lives under)."""
    value = (name_or_arn or "").strip()
    return value if value.startswith("arn:") and _ROLE_ARN.match(value) else None


def normalise_issuer(issuer_url: str) -> str:
    """An OIDC issuer as IAM keys it: no scheme, no trailing slash (`oidc.eks.<region>.amazonaws.com/id/X`).

    Accepts the URL with or without `https://`; any other scheme is refused (IAM only trusts https).
    """
    value = (issuer_url or "").strip()
    if "://" in value:
        scheme, _, rest = value.partition("://")
        if scheme.lower() != "https":
            raise ValueError(f"OIDC issuer '{value}' must use https:// (or give it without a scheme)")
        value = rest
    value = value.rstrip("/")
    if not _ISSUER.match(value):
        raise ValueError(f"'{issuer_url}' is not an OIDC issuer URL "
                         "(expected e.g. https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE)")
    return value


def oidc_provider_arn(partition: str, account_id: str, issuer: str) -> str:
    return iam_arn(partition, account_id, f"oidc-provider/{normalise_issuer(issuer)}")


def parse_oidc_provider(provider: str, partition: str, account_id: str) -> tuple[str, str]:
    """(provider ARN, issuer without scheme) from either an IAM OIDC provider ARN or an issuer URL.

    The ARN's own partition and account win over the caller's (the provider may live in another account
    only if the user says so by giving its ARN).
    """
    value = (provider or "").strip()
    if value.startswith("arn:"):
        match = _OIDC_PROVIDER_ARN.match(value)
        if not match:
            raise ValueError(f"'{value}' is not an IAM OIDC provider ARN "
                             "(expected arn:<partition>:iam::<12-digit account>:oidc-provider/<issuer host/path>)")
        issuer = normalise_issuer(match.group("issuer"))
        return iam_arn(match.group("partition"), match.group("account"), f"oidc-provider/{issuer}"), issuer
    issuer = normalise_issuer(value)
    return oidc_provider_arn(partition, account_id, issuer), issuer
