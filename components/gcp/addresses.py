"""How IAM inputs name a service account or custom role this stack creates, by values known before it exists.

An account's `email`/`name` and a custom role's `name` are outputs the provider computes, so an `IAMMember`
built from them is unknown in a first `pulumi preview` — and so is every policy verdict on it. GCP derives
them from inputs: an account `<id>` in project `<p>` is `<id>@<p>.iam.gserviceaccount.com`
(`projects/<p>/serviceAccounts/<email>`), a custom role `<role_id>` is `projects/<p>/roles/<role_id>`. Built
here from the same inputs, they are known at preview; the engine then no longer sees that a grant needs the
account or role, so each address carries the resources (`wait_for`) a grant must explicitly depend on.

Only what is certain is built (`..gcp_resource_names`): otherwise the address falls back to the created
resource's own outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from ..gcp_resource_names import service_account_email
from .naming import service_account_resource_id


def member_of(email: pulumi.Input[str]) -> pulumi.Output[str]:
    """`serviceAccount:<email>`; as known as the email is."""
    return pulumi.Output.concat("serviceAccount:", email)


@dataclass(frozen=True)
class ServiceAccountAddress:
    """One service account as IAM inputs name it, and what a grant naming it must be created after."""

    email: pulumi.Input[str]
    # projects/<project>/serviceAccounts/<email>: what serviceaccount.IAMMember takes
    resource_id: pulumi.Input[str]
    wait_for: tuple[pulumi.Resource, ...] = ()

    @property
    def member(self) -> pulumi.Output[str]:
        return member_of(self.email)


def created_account_address(account: gcp.serviceaccount.Account, account_id: Any,
                            project: Any) -> ServiceAccountAddress:
    """The address of an account this stack creates: built from its id and project when certain."""
    email = service_account_email(account_id, project)
    if email is None:
        return ServiceAccountAddress(account.email, account.name, (account,))
    return ServiceAccountAddress(email, f"projects/{project}/serviceAccounts/{email}", (account,))


def existing_account_address(email: pulumi.Input[str], project: pulumi.Input[str]) -> ServiceAccountAddress:
    """An account that exists already (its email is config): nothing to wait for. A user-managed account
    is addressed in its own project (from its email), which may differ from the functions' project."""
    return ServiceAccountAddress(email, service_account_resource_id(email, project))
