"""The APIs custom metrics need, enabled in the functions' project."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from ..facts import GCP_REQUIRED_SERVICES

TYPE_TOKEN = "lse-custom-metrics:gcp:ProjectServices"


@dataclass
class CustomMetricsProjectServicesArgs:
    project: pulumi.Input[str]
    # LSE's six APIs plus iam (service-account and custom-role creation need it).
    services: Sequence[str] = GCP_REQUIRED_SERVICES


class CustomMetricsProjectServices(pulumi.ComponentResource):
    """Enables each API with `disable_on_destroy=False`.

    Destroying this stack must never switch an API off: other workloads in a shared project use the
    same APIs, and disabling e.g. `iam` or `storage` would break them. Resources that need an API take
    `resources` as explicit dependencies, because enabling an API is eventually consistent and the
    provider does not order anything by itself.
    """

    resources: list[gcp.projects.Service]
    by_service: dict[str, gcp.projects.Service]

    def __init__(self, name: str, args: CustomMetricsProjectServicesArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.by_service = {
            service: gcp.projects.Service(
                f"{name}-{service.removesuffix('.googleapis.com')}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                opts=child,
            )
            for service in args.services
        }
        self.resources = list(self.by_service.values())
        self.services = pulumi.Output.all(*[s.service for s in self.resources])
        self.register_outputs({"services": self.services})
