"""Read and check the AWS stack's config (namespace `lse-custom-metrics`, plus `aws:region`).

Runs before anything is registered: every missing or bad key raises `ConfigError` naming the key, the
deployment variant and what is allowed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from collections.abc import Iterable

from ..config import ConfigError, reject_unknown_keys
from ..facts import AWS_DEPLOYMENTS, FUNCTION_PREFIX
from ..shared_keys import (
    ConfigSource,
    other_variant_key_error,
    read_deployment,
    read_helm_release,
    read_namespace,
    read_service_accounts,
)
from .arns import normalise_issuer, parse_oidc_provider, role_name_from

# Lambda names are 1-64 of [A-Za-z0-9_-]; LSE appends "<project id>-<10-digit unix time>", so a prefix of
# at most 40 characters leaves room for project ids up to 13 digits.
FUNCTION_PREFIX_MAX = 40
_FUNCTION_PREFIX = re.compile(r"^[A-Za-z0-9_-]+$")
_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")

# Keys that only make sense for one variant: given with another one, they are a mistake worth naming.
VARIANT_KEYS = {
    "ec2-compose": (),
    "ec2-instance-profile": ("instanceRoleName",),
    "eks-oidc": ("oidcProviderArn", "oidcIssuerUrl", "namespace", "helmRelease", "serviceAccounts"),
    "eks-node-role": ("nodeRoleName",),
}
COMMON_KEYS = ("cloud", "deployment", "functionPrefix", "tags")
KNOWN_KEYS = COMMON_KEYS + tuple(key for keys in VARIANT_KEYS.values() for key in keys)
# A syntactically valid partition/account, only to check an issuer URL early (the real ones come later).
_PLACEHOLDER_PARTITION, _PLACEHOLDER_ACCOUNT = "aws", "000000000000"


@dataclass
class AwsStackSettings:
    deployment: str
    region: str
    function_prefix: str = FUNCTION_PREFIX
    tags: dict[str, str] = field(default_factory=dict)
    instance_role: str | None = None
    oidc_provider: str | None = None  # an ARN or an issuer URL, as given
    namespace: str | None = None
    helm_release: str | None = None
    service_accounts: list[str] | None = None
    node_role: str | None = None


def read_settings(config: ConfigSource, aws_config: ConfigSource,
                  all_keys: Iterable[str] = ()) -> AwsStackSettings:
    """`all_keys`: every key of the stack config, so a misspelt `lse-custom-metrics:` key is refused."""
    deployment = read_deployment(config, AWS_DEPLOYMENTS)
    reject_unknown_keys(all_keys, KNOWN_KEYS + ("aws:region",), cloud="aws", variant=deployment)
    for variant, keys in VARIANT_KEYS.items():
        for key in keys:
            if variant != deployment and key not in VARIANT_KEYS[deployment] and config.get(key) is not None:
                raise other_variant_key_error(key, deployment, [variant],
                                              allowed_keys=COMMON_KEYS + VARIANT_KEYS[deployment])

    region = aws_config.get("region")
    if not region:
        raise ConfigError("aws:region", "missing (the region LSE's functions run in)", variant=deployment,
                          allowed=["an AWS region such as us-east-1"])
    if not _REGION.match(region):
        raise ConfigError("aws:region", f"'{region}' is not an AWS region name", variant=deployment,
                          allowed=["an AWS region such as us-east-1, cn-north-1, us-gov-west-1"])

    settings = AwsStackSettings(deployment=deployment, region=region,
                                function_prefix=_function_prefix(config, deployment),
                                tags=_tags(config, deployment))
    if deployment == "ec2-instance-profile":
        settings.instance_role = _role(config, "instanceRoleName", deployment, required=False)
    elif deployment == "eks-oidc":
        _read_eks_oidc(config, settings)
    elif deployment == "eks-node-role":
        settings.node_role = _role(config, "nodeRoleName", deployment, required=True)
    return settings


def _function_prefix(config: ConfigSource, deployment: str) -> str:
    prefix = config.get("functionPrefix")
    if prefix is None:
        return FUNCTION_PREFIX
    if not (_FUNCTION_PREFIX.match(prefix) and len(prefix) <= FUNCTION_PREFIX_MAX):
        raise ConfigError("functionPrefix", f"'{prefix}' cannot start a Lambda function name",
                          variant=deployment,
                          allowed=[f"1-{FUNCTION_PREFIX_MAX} characters of A-Z a-z 0-9 _ - "
                                   f"(default '{FUNCTION_PREFIX}')"])
    return prefix


def _tags(config: ConfigSource, deployment: str) -> dict[str, str]:
    raw = config.get("tags")
    if raw is None:
        return {}
    allowed = ["a map of tag key (1-128 characters, not starting with 'aws:') to string value "
               "(at most 256 characters)"]
    try:
        tags = json.loads(raw)
    except ValueError:
        tags = None
    if not isinstance(tags, dict):
        raise ConfigError("tags", f"must be a map, got {raw!r}", variant=deployment, allowed=allowed)
    for key, value in tags.items():
        if not (1 <= len(key) <= 128) or key.lower().startswith("aws:"):
            raise ConfigError("tags", f"bad tag key {key!r}", variant=deployment, allowed=allowed)
        if not isinstance(value, str) or len(value) > 256:
            raise ConfigError("tags", f"tag {key!r} needs a string value of at most 256 characters, "
                              f"got {value!r}", variant=deployment, allowed=allowed)
    return tags


def _role(config: ConfigSource, key: str, deployment: str, *, required: bool) -> str | None:
    value = config.get(key)
    allowed = ["an IAM role name", "an IAM role ARN arn:<partition>:iam::<account>:role/[<path>/]<name>"]
    if value is None:
        if required:
            raise ConfigError(key, "missing", variant=deployment, allowed=allowed)
        return None
    try:
        role_name_from(value)
    except ValueError as error:
        raise ConfigError(key, str(error), variant=deployment, allowed=allowed) from None
    return value.strip()


def _read_eks_oidc(config: ConfigSource, settings: AwsStackSettings) -> None:
    deployment = settings.deployment
    arn, url = config.get("oidcProviderArn"), config.get("oidcIssuerUrl")
    provider_allowed = ["oidcProviderArn: arn:<partition>:iam::<account>:oidc-provider/<issuer host/path>",
                        "oidcIssuerUrl: https://oidc.eks.<region>.amazonaws.com/id/<ID> (https:// optional)"]
    if arn is None and url is None:
        raise ConfigError("oidcProviderArn", "missing (or set oidcIssuerUrl instead)", variant=deployment,
                          allowed=provider_allowed)
    if arn is not None and url is not None:
        raise ConfigError("oidcIssuerUrl", "set either oidcProviderArn or oidcIssuerUrl, not both",
                          variant=deployment, allowed=provider_allowed)
    try:
        if arn is not None:
            if not arn.strip().startswith("arn:"):
                raise ValueError(f"'{arn}' is not an ARN")
            parse_oidc_provider(arn, _PLACEHOLDER_PARTITION, _PLACEHOLDER_ACCOUNT)
        else:
            normalise_issuer(url)
    except ValueError as error:
        raise ConfigError("oidcProviderArn" if arn is not None else "oidcIssuerUrl", str(error),
                          variant=deployment, allowed=provider_allowed) from None
    settings.oidc_provider = (arn if arn is not None else url).strip()

    settings.namespace = read_namespace(config, deployment)
    settings.helm_release = read_helm_release(config, deployment)
    settings.service_accounts = read_service_accounts(config, deployment)
