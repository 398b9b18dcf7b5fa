"""GCP naming rules (DESIGN §5) checked before anything is registered, with errors that name the thing.

Only plain strings are checked: a value that is still a `pulumi.Output` is left to the provider, because
its content is unknown when the program builds the resource graph.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi

from ..shared_keys import HELM_RELEASE_RE, KUBERNETES_NAMESPACE_RE, KUBERNETES_SERVICE_ACCOUNT_RE

# DESIGN §5: service-account account id and custom-role id.
SERVICE_ACCOUNT_ID_RE = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
CUSTOM_ROLE_ID_RE = re.compile(r"^[a-zA-Z0-9_.]{3,64}$")
# Project ids are 6-30 chars; legacy domain-scoped ids look like `example.com:my-project`.
PROJECT_ID_RE = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# Cloud Functions gen2 regions: us-central1, europe-west1, northamerica-northeast2, me-central2 ...
REGION_RE = re.compile(r"^[a-z]+(?:-[a-z]+)+[0-9]+$")
# Any Google service-account email: user-managed (`x@p.iam.gserviceaccount.com`) and the default
# accounts GKE nodes and VMs often run as (`123-compute@developer.gserviceaccount.com`).
SERVICE_ACCOUNT_EMAIL_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}@(?:[a-z0-9-]+\.)*gserviceaccount\.com$")
USER_MANAGED_EMAIL_RE = re.compile(r"^[a-z0-9-]+@(?P<project>[a-z0-9-]+)\.iam\.gserviceaccount\.com$")
# Kubernetes namespace / service-account and helm release names: the rules shared with AWS.
K8S_NAMESPACE_RE = KUBERNETES_NAMESPACE_RE
K8S_SUBDOMAIN_RE = KUBERNETES_SERVICE_ACCOUNT_RE
# Labels (DESIGN §5): lowercase [a-z0-9_-], <= 63 chars, key starts with a letter; <= 64 per resource.
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
MAX_LABELS = 64
# Cloud Run (which hosts gen2 functions) reserves these key prefixes for Google.
RESERVED_LABEL_PREFIXES = ("goog", "run.googleapis.com")


class GcpNameError(ValueError):
    """A name or label that GCP would reject; `what` says which input it was."""

    def __init__(self, what: str, problem: str):
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


def is_plain(value: Any) -> bool:
    """True when the value is known now (not a pulumi Output still to resolve)."""
    return isinstance(value, (str, int, float, bool, dict, list, tuple)) or value is None


def _check(what: str, value: Any, pattern: re.Pattern, rule: str) -> None:
    if not is_plain(value):
        return
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise GcpNameError(what, f"{value!r} is not valid: {rule}")


def check_service_account_id(what: str, value: Any) -> None:
    _check(what, value, SERVICE_ACCOUNT_ID_RE,
           "6-30 characters, lowercase letters, digits and '-', starting with a letter, "
           "not ending with '-'")


def check_custom_role_id(what: str, value: Any) -> None:
    _check(what, value, CUSTOM_ROLE_ID_RE, "3-64 characters from [a-zA-Z0-9_.] (no '-')")


def check_project_id(what: str, value: Any) -> None:
    _check(what, value, PROJECT_ID_RE,
           "a GCP project id: 6-30 characters, lowercase letters, digits and '-', starting with a "
           "letter, not ending with '-'")


def check_region(what: str, value: Any) -> None:
    _check(what, value, REGION_RE, "a GCP region such as us-central1 or europe-west1")


def check_service_account_email(what: str, value: Any) -> None:
    _check(what, value, SERVICE_ACCOUNT_EMAIL_RE,
           "a service-account email such as name@project.iam.gserviceaccount.com or "
           "123456789012-compute@developer.gserviceaccount.com")


def check_namespace(what: str, value: Any) -> None:
    _check(what, value, K8S_NAMESPACE_RE,
           "a Kubernetes namespace: at most 63 lowercase letters, digits and '-', "
           "starting and ending with a letter or digit")


def check_kubernetes_service_account(what: str, value: Any) -> None:
    _check(what, value, K8S_SUBDOMAIN_RE,
           "a Kubernetes service-account name: at most 253 lowercase letters, digits, '-' and '.', "
           "starting and ending with a letter or digit")


def check_kubernetes_service_accounts(what: str, value: Any) -> None:
    """A non-empty list of distinct Kubernetes service-account names."""
    if not is_plain(value):
        return
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise GcpNameError(what, f"must be a non-empty list of Kubernetes service-account names, got {value!r}")
    for index, ksa in enumerate(value):
        check_kubernetes_service_account(f"{what}[{index}]", ksa)
    if len(set(value)) != len(value):
        raise GcpNameError(what, f"names must be distinct, got {list(value)!r}")


def check_helm_release(what: str, value: Any) -> None:
    _check(what, value, HELM_RELEASE_RE,
           "a helm release name: at most 53 lowercase letters, digits and '-', "
           "starting and ending with a letter or digit")


def check_labels(what: str, labels: Any) -> None:
    if not is_plain(labels):
        return
    if not isinstance(labels, Mapping):
        raise GcpNameError(what, f"must be a mapping of label key to value, got {type(labels).__name__}")
    if len(labels) > MAX_LABELS:
        raise GcpNameError(what, f"{len(labels)} labels; GCP allows at most {MAX_LABELS}")
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.fullmatch(key):
            raise GcpNameError(f"{what}.{key}", f"label key {key!r} is not valid: 1-63 characters from "
                                                f"lowercase [a-z0-9_-], starting with a letter")
        if key.startswith(RESERVED_LABEL_PREFIXES):
            raise GcpNameError(f"{what}.{key}", f"label key {key!r} uses a prefix Google reserves "
                                                f"({', '.join(RESERVED_LABEL_PREFIXES)})")
        if not isinstance(value, str) or not LABEL_VALUE_RE.fullmatch(value):
            raise GcpNameError(f"{what}.{key}", f"label value {value!r} is not valid: a string of at most "
                                                f"63 characters from lowercase [a-z0-9_-]")


def service_account_resource_id(email: Any, default_project: Any) -> Any:
    """The `projects/<project>/serviceAccounts/<email>` id that serviceaccount.IAMMember needs.

    A user-managed account's own project comes from its email, so an app account that lives in another
    project than the functions is addressed correctly; other emails use the configured project.
    """
    match = USER_MANAGED_EMAIL_RE.fullmatch(email) if isinstance(email, str) else None
    if match:
        return f"projects/{match['project']}/serviceAccounts/{email}"
    return pulumi.Output.concat("projects/", default_project, "/serviceAccounts/", email)


def role_key(role: str) -> str:
    """A child-name suffix for a role: `roles/logging.logWriter` -> `logging-logWriter`."""
    return role.rsplit("/", 1)[-1].replace(".", "-")
