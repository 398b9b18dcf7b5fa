"""Variant `gke-node`: GKE without Workload Identity; pods authenticate as the node pool's account."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .addresses import existing_account_address
from .identity_common import IdentityArgs, bind_deployer, member_of
from .naming import check_service_account_email

TYPE_TOKEN = "lse-custom-metrics:gcp:GkeNodeIdentity"


@dataclass(kw_only=True)
class GkeNodeIdentityArgs(IdentityArgs):
    node_service_account_email: pulumi.Input[str]


class GkeNodeIdentity(pulumi.ComponentResource):
    """Binds the deployer role to the node pool's existing service account; creates no account.

    Every pod on those nodes gets the grant, not only LSE's: prefer `gke-workload-identity` where the
    cluster allows it.
    """

    def __init__(self, name: str, args: GkeNodeIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        check_service_account_email("GkeNodeIdentityArgs.node_service_account_email",
                                    args.node_service_account_email)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.account = None
        self.email = args.node_service_account_email
        self.member = member_of(self.email)
        self.address = existing_account_address(self.email, args.project)
        self.binding = bind_deployer(self, name, args, self.address)
        self.register_outputs({"email": self.email, "member": self.member})
