"""What every identity variant shares: the deployer role it binds and the runtime account it may act as."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from ..facts import GCP_APP_SA_ID
from .addresses import (
    ServiceAccountAddress,
    created_account_address,
    existing_account_address,
    member_of,
)
from .deployer_role import (
    CustomMetricsDeployerBinding,
    CustomMetricsDeployerBindingArgs,
    CustomMetricsDeployerRole,
)
from .naming import check_service_account_email, check_service_account_id

APP_DISPLAY_NAME = "LSE Application"


@dataclass
class IdentityArgs:
    project: pulumi.Input[str]
    deployer_role: CustomMetricsDeployerRole
    # `projects/<p>/serviceAccounts/<email>` of the runtime account (target of a scoped actAs grant).
    runtime_service_account_name: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # What creates the runtime account, when this stack does and its name above is known text (which
    # carries no dependency): the scoped actAs grant on it waits for these.
    runtime_service_account_depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


def app_account_or_existing(component: pulumi.ComponentResource, name: str, args: IdentityArgs,
                            existing_email: pulumi.Input[str] | None, account_id: pulumi.Input[str],
                            display_name: pulumi.Input[str]
                            ) -> tuple[gcp.serviceaccount.Account | None, pulumi.Input[str],
                                       ServiceAccountAddress]:
    """Create LSE's app account (`lse-app`), or use one that already exists.

    Returns the account (None if existing), its email as an output for consumers (the account's own
    output when created, so that users of it wait for it), and its address for this stack's grants.
    """
    if existing_email is not None:
        return None, existing_email, existing_account_address(existing_email, args.project)
    account = gcp.serviceaccount.Account(
        f"{name}-account", project=args.project, account_id=account_id, display_name=display_name,
        opts=pulumi.ResourceOptions(parent=component, depends_on=list(args.depends_on)))
    return account, account.email, created_account_address(account, account_id, args.project)


def bind_deployer(component: pulumi.ComponentResource, name: str, args: IdentityArgs,
                  identity: ServiceAccountAddress) -> CustomMetricsDeployerBinding:
    return CustomMetricsDeployerBinding(
        f"{name}-grant",
        CustomMetricsDeployerBindingArgs(
            project=args.project, member=identity.member, deployer_role=args.deployer_role,
            runtime_service_account_name=args.runtime_service_account_name,
            depends_on=list(args.depends_on), member_depends_on=list(identity.wait_for),
            runtime_service_account_depends_on=list(args.runtime_service_account_depends_on)),
        opts=pulumi.ResourceOptions(parent=component))


def check_app_account(what: str, existing_email, account_id) -> None:
    if existing_email is not None:
        check_service_account_email(f"{what}.app_service_account_email", existing_email)
    else:
        check_service_account_id(f"{what}.app_service_account_id", account_id)


__all__ = ["APP_DISPLAY_NAME", "GCP_APP_SA_ID", "IdentityArgs", "app_account_or_existing",
           "bind_deployer", "check_app_account", "member_of"]
