"""Variant `gce-vm`: LSE in Docker Compose on a Compute Engine VM, authenticating as the VM's account."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .identity_common import (
    APP_DISPLAY_NAME,
    GCP_APP_SA_ID,
    IdentityArgs,
    app_account_or_existing,
    bind_deployer,
    check_app_account,
    member_of,
)

TYPE_TOKEN = "lse-custom-metrics:gcp:GceVmIdentity"


@dataclass(kw_only=True)
class GceVmIdentityArgs(IdentityArgs):
    # The VM's existing service account; None creates `lse-app` (assign it to the VM yourself).
    app_service_account_email: pulumi.Input[str] | None = None
    app_service_account_id: pulumi.Input[str] = GCP_APP_SA_ID
    app_service_account_display_name: pulumi.Input[str] = APP_DISPLAY_NAME


class GceVmIdentity(pulumi.ComponentResource):
    """The VM's service account, with the deployer role bound at project level.

    The VM must also have the `cloud-platform` access scope: with the legacy default scopes, Application
    Default Credentials get tokens that Cloud Functions and Cloud Run reject whatever IAM allows.
    """

    def __init__(self, name: str, args: GceVmIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        check_app_account("GceVmIdentityArgs", args.app_service_account_email, args.app_service_account_id)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.account, self.email, self.address = app_account_or_existing(
            self, name, args, args.app_service_account_email, args.app_service_account_id,
            args.app_service_account_display_name)
        self.member = member_of(self.email)
        self.binding = bind_deployer(self, name, args, self.address)
        self.register_outputs({"email": self.email, "member": self.member})
