"""Variant `gke-workload-identity`: LSE's helm release on GKE, its pods impersonating `lse-app`."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from ..facts import HELM_RELEASE_DEFAULT, KSA_SUFFIXES
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
    check_kubernetes_service_account,
    check_namespace,
)

TYPE_TOKEN = "lse-custom-metrics:gcp:GkeWorkloadIdentity"
WORKLOAD_IDENTITY_USER_ROLE = "roles/iam.workloadIdentityUser"


@dataclass(frozen=True)
class KubernetesServiceAccounts:
    """The chart's two Kubernetes service accounts: the app's and the rqworkers' (where scoring runs)."""

    app: str
    rqworker: str

    @classmethod
    def for_release(cls, release: str) -> "KubernetesServiceAccounts":
        app_suffix, rqworker_suffix = KSA_SUFFIXES
        return cls(app=f"{release}{app_suffix}", rqworker=f"{release}{rqworker_suffix}")

    def items(self) -> list[tuple[str, str]]:
        return [("app", self.app), ("rqworker", self.rqworker)]


def workload_identity_member(project: pulumi.Input[str], namespace: pulumi.Input[str],
                             ksa: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", project, ".svc.id.goog[", namespace, "/", ksa, "]")


@dataclass(kw_only=True)
class GkeWorkloadIdentityArgs(IdentityArgs):
    namespace: pulumi.Input[str]
    helm_release: str = HELM_RELEASE_DEFAULT
    # Explicit KSA names; None derives `<release>-ls-app` and `<release>-ls-rqworker`.
    kubernetes_service_accounts: KubernetesServiceAccounts | None = None
    # An existing Google service account for LSE; None creates `lse-app`.
    app_service_account_email: pulumi.Input[str] | None = None
    app_service_account_id: pulumi.Input[str] = GCP_APP_SA_ID
    app_service_account_display_name: pulumi.Input[str] = APP_DISPLAY_NAME

    def resolved_service_accounts(self) -> KubernetesServiceAccounts:
        return self.kubernetes_service_accounts or KubernetesServiceAccounts.for_release(self.helm_release)


class GkeWorkloadIdentity(pulumi.ComponentResource):
    """`lse-app` with the deployer role, impersonable by both of the chart's Kubernetes accounts.

    Scoring runs in the rqworkers, so binding only the app's KSA (as LSE's docs show) leaves every
    scoring job without credentials: both get `roles/iam.workloadIdentityUser`.
    """

    def __init__(self, name: str, args: GkeWorkloadIdentityArgs,
                 opts: pulumi.ResourceOptions | None = None):
        what = "GkeWorkloadIdentityArgs"
        check_app_account(what, args.app_service_account_email, args.app_service_account_id)
        check_namespace(f"{what}.namespace", args.namespace)
        check_helm_release(f"{what}.helm_release", args.helm_release)
        ksas = args.resolved_service_accounts()
        for component, ksa in ksas.items():
            check_kubernetes_service_account(f"{what}.kubernetes_service_accounts.{component}", ksa)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.account, self.email, self.address = app_account_or_existing(
            self, name, args, args.app_service_account_email, args.app_service_account_id,
            args.app_service_account_display_name)
        self.member = member_of(self.email)
        self.binding = bind_deployer(self, name, args, self.address)
        self.kubernetes_service_accounts = ksas
        self.workload_identity_members = {
            component: workload_identity_member(args.project, args.namespace, ksa)
            for component, ksa in ksas.items()
        }
        child = pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *self.address.wait_for])
        self.workload_identity_grants = [
            gcp.serviceaccount.IAMMember(f"{name}-ksa-{component}",
                                         service_account_id=self.address.resource_id,
                                         role=WORKLOAD_IDENTITY_USER_ROLE, member=wi_member, opts=child)
            for component, wi_member in self.workload_identity_members.items()
        ]
        self.register_outputs({"email": self.email, "member": self.member,
                               "workload_identity_members": self.workload_identity_members})
