"""The service account every custom-metric function runs as (LSE's GCP_SERVICE_ACCOUNT_CUSTOM_METRICS)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from ..facts import GCP_RUNTIME_SA_ID, GCP_RUNTIME_SA_ROLES
from .addresses import ServiceAccountAddress, created_account_address
from .naming import check_service_account_id, role_key

TYPE_TOKEN = "lse-custom-metrics:gcp:RuntimeServiceAccount"
DISPLAY_NAME = "LSE Custom Metrics Runtime"


@dataclass
class CustomMetricsRuntimeServiceAccountArgs:
    project: pulumi.Input[str]
    account_id: pulumi.Input[str] = GCP_RUNTIME_SA_ID
    display_name: pulumi.Input[str] = DISPLAY_NAME
    # Functions only write their own logs; nothing else (DESIGN §3.5, LSE's docs step 2).
    roles: Sequence[str] = GCP_RUNTIME_SA_ROLES
    # Resources (normally the enabled APIs) every child waits for.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class CustomMetricsRuntimeServiceAccount(pulumi.ComponentResource):
    """`lse-custom-metrics-runtime` with `roles/logging.logWriter`, granted non-authoritatively."""

    account: gcp.serviceaccount.Account
    # For grants on or to this account: known in a first preview; depend on `address.wait_for`.
    address: ServiceAccountAddress
    email: pulumi.Output[str]
    account_name: pulumi.Output[str]
    member: pulumi.Output[str]

    def __init__(self, name: str, args: CustomMetricsRuntimeServiceAccountArgs,
                 opts: pulumi.ResourceOptions | None = None):
        check_service_account_id("CustomMetricsRuntimeServiceAccountArgs.account_id", args.account_id)
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.account = gcp.serviceaccount.Account(
            f"{name}-account", project=args.project, account_id=args.account_id,
            display_name=args.display_name, opts=child)
        self.address = created_account_address(self.account, args.account_id, args.project)
        # The account's own outputs: a consumer that uses them waits for the account without being told.
        self.email = self.account.email
        # projects/<p>/serviceAccounts/<email>: the id that service-account-level IAM grants take
        self.account_name = self.account.name
        self.member = pulumi.Output.concat("serviceAccount:", self.account.email)
        grant = pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *self.address.wait_for])
        self.role_members = [
            gcp.projects.IAMMember(f"{name}-{role_key(role)}", project=args.project, role=role,
                                   member=self.address.member, opts=grant)
            for role in args.roles
        ]
        self.register_outputs({"email": self.email, "account_name": self.account_name,
                               "member": self.member})
