"""Variant `gke-workload-identity`: LSE's helm release on GKE, its pods impersonating `lse-app`."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from ..facts import HELM_RELEASE_DEFAULT
from ..shared_keys import kubernetes_service_accounts
from .identity_common import (
    APP_DISPLAY_NAME,
    GCP_APP_SA_ID,
    IdentityArgs,
    app_account_or_existing,
    bind_deployer,
    check_app_account,
    member_of,
)
from .naming import (
    check_helm_release,
    check_kubernetes_service_accounts,
    check_namespace,
)

TYPE_TOKEN = "lse-custom-metrics:gcp:GkeWorkloadIdentity"
WORKLOAD_IDENTITY_USER_ROLE = "roles/iam.workloadIdentityUser"


def workload_identity_member(project: pulumi.Input[str], namespace: pulumi.Input[str],
                             ksa: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", project, ".svc.id.goog[", namespace, "/", ksa, "]")


@dataclass(kw_only=True)
class GkeWorkloadIdentityArgs(IdentityArgs):
    namespace: pulumi.Input[str]
    helm_release: str = HELM_RELEASE_DEFAULT
    # Kubernetes service-account names; given, they replace `<release>-ls-app` and `<release>-ls-rqworker`.
    kubernetes_service_accounts: Sequence[str] | None = None
    # An existing Google service account for LSE; None creates `lse-app`.
    app_service_account_email: pulumi.Input[str] | None = None
    app_service_account_id: pulumi.Input[str] = GCP_APP_SA_ID
    app_service_account_display_name: pulumi.Input[str] = APP_DISPLAY_NAME

    def resolved_service_accounts(self) -> list[str]:
        return kubernetes_service_accounts(self.helm_release, self.kubernetes_service_accounts)


class GkeWorkloadIdentity(pulumi.ComponentResource):
    """`lse-app` with the deployer role, impersonable by each listed Kubernetes account.

    Scoring runs in the rqworkers, so binding only the app's KSA (as LSE's docs show) leaves every
    scoring job without credentials: by default both of the chart's KSAs get
    `roles/iam.workloadIdentityUser`, one grant per KSA (children `<name>-ksa-<ksa name>`).
    """

    def __init__(self, name: str, args: GkeWorkloadIdentityArgs,
                 opts: pulumi.ResourceOptions | None = None):
        what = "GkeWorkloadIdentityArgs"
        check_app_account(what, args.app_service_account_email, args.app_service_account_id)
        check_namespace(f"{what}.namespace", args.namespace)
        check_helm_release(f"{what}.helm_release", args.helm_release)
        ksas = args.resolved_service_accounts()
        check_kubernetes_service_accounts(f"{what}.kubernetes_service_accounts", ksas)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.account, self.email, self.address = app_account_or_existing(
            self, name, args, args.app_service_account_email, args.app_service_account_id,
            args.app_service_account_display_name)
        self.member = member_of(self.email)
        self.binding = bind_deployer(self, name, args, self.address)
        self.kubernetes_service_accounts = ksas
        self.workload_identity_members = [workload_identity_member(args.project, args.namespace, ksa)
                                          for ksa in ksas]
        child = pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *self.address.wait_for])
        # Named by KSA, not position: reordering the list in config changes no grant.
        self.workload_identity_grants = [
            gcp.serviceaccount.IAMMember(f"{name}-ksa-{ksa}",
                                         service_account_id=self.address.resource_id,
                                         role=WORKLOAD_IDENTITY_USER_ROLE, member=wi_member, opts=child)
            for ksa, wi_member in zip(ksas, self.workload_identity_members)
        ]
        self.register_outputs({"email": self.email, "member": self.member,
                               "workload_identity_members": self.workload_identity_members})
