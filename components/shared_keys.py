"""Readers for the stack-config keys both clouds share, so that their meaning and errors are identical.

`deployment`, a key given to the wrong variant, and the Kubernetes keys (`namespace`, `helmRelease`,
`serviceAccounts`) mean the same on AWS (eks-oidc) and GCP (gke-workload-identity); both programs read
them here, so a user moving between clouds sees the same rules in the same words.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .config import ConfigError
from .facts import HELM_RELEASE_DEFAULT, KSA_SUFFIXES

# Kubernetes: a namespace is a DNS-1123 label, a service-account name a DNS-1123 subdomain.
KUBERNETES_NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
KUBERNETES_SERVICE_ACCOUNT_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$")
# Helm release names: a DNS-1123 label of at most 53 characters (helm's own limit).
HELM_RELEASE_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,51}[a-z0-9])?$")

NAMESPACE_ALLOWED = ["the Kubernetes namespace of the LSE helm release (DNS label: a-z 0-9 -, at most 63)"]
HELM_RELEASE_ALLOWED = [f"a-z 0-9 -, at most 53 characters (default '{HELM_RELEASE_DEFAULT}')"]
SERVICE_ACCOUNTS_ALLOWED = ["a non-empty list of distinct Kubernetes service account names "
                            "(overrides <helmRelease>-ls-app and <helmRelease>-ls-rqworker)"]


class ConfigSource(Protocol):
    def get(self, key: str) -> str | None: ...


def release_service_accounts(release: str) -> list[str]:
    """The LSE helm chart's two service accounts: `<release>-ls-app` and `<release>-ls-rqworker`."""
    return [f"{release}{suffix}" for suffix in KSA_SUFFIXES]


def kubernetes_service_accounts(helm_release: str | None, service_accounts: Sequence[str] | None) -> list[str]:
    """The service accounts to trust: the explicit list when given, else the release's two."""
    if service_accounts is not None:
        return list(service_accounts)
    return release_service_accounts(helm_release or HELM_RELEASE_DEFAULT)


def read_deployment(config: ConfigSource, deployments: Sequence[str]) -> str:
    deployment = config.get("deployment")
    if deployment is None:
        raise ConfigError("deployment", "missing", allowed=deployments)
    if deployment not in deployments:
        raise ConfigError("deployment", f"unknown value '{deployment}'", allowed=deployments)
    return deployment


def other_variant_key_error(key: str, deployment: str, used_by: Iterable[str],
                            allowed_keys: Iterable[str]) -> ConfigError:
    """A key that only other deployment variants read: named, with the keys this variant does read."""
    users = list(used_by)
    which = "deployment" if len(users) == 1 else "deployments"
    return ConfigError(key, f"is only used by {which} " + ", ".join(f"'{u}'" for u in users),
                       variant=deployment, allowed=allowed_keys)


def read_namespace(config: ConfigSource, deployment: str) -> str:
    namespace = config.get("namespace")
    if namespace is None:
        raise ConfigError("namespace", "missing", variant=deployment, allowed=NAMESPACE_ALLOWED)
    if not KUBERNETES_NAMESPACE_RE.match(namespace):
        raise ConfigError("namespace", f"'{namespace}' is not a Kubernetes namespace name", variant=deployment,
                          allowed=NAMESPACE_ALLOWED)
    return namespace


def read_helm_release(config: ConfigSource, deployment: str) -> str | None:
    release = config.get("helmRelease")
    if release is not None and not HELM_RELEASE_RE.match(release):
        raise ConfigError("helmRelease", f"'{release}' is not a helm release name", variant=deployment,
                          allowed=HELM_RELEASE_ALLOWED)
    return release


def read_service_accounts(config: ConfigSource, deployment: str) -> list[str] | None:
    """`serviceAccounts`: a list of Kubernetes service-account names that replaces the release-derived two.

    Given together with `helmRelease`, the list wins: it is the more specific statement of which accounts
    LSE's pods run as (a chart installed with `serviceAccount.name` overrides, or extra workers).
    """
    raw = config.get("serviceAccounts")
    if raw is None:
        return None
    try:
        accounts: Any = json.loads(raw)
    except ValueError:
        accounts = None
    if not (isinstance(accounts, list) and accounts and all(isinstance(a, str) for a in accounts)):
        raise ConfigError("serviceAccounts", f"must be a list of names, got {raw!r}", variant=deployment,
                          allowed=SERVICE_ACCOUNTS_ALLOWED)
    bad = [a for a in accounts if not KUBERNETES_SERVICE_ACCOUNT_RE.match(a)]
    if bad:
        raise ConfigError("serviceAccounts", f"'{bad[0]}' is not a Kubernetes service account name",
                          variant=deployment, allowed=SERVICE_ACCOUNTS_ALLOWED)
    if len(set(accounts)) != len(accounts):
        raise ConfigError("serviceAccounts", "names must be distinct", variant=deployment,
                          allowed=SERVICE_ACCOUNTS_ALLOWED)
    return accounts
