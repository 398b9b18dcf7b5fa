"""Roles for the account that builds gen2 functions (the Compute Engine default service account)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from ..facts import GCP_BUILD_SA_ROLES
from .naming import role_key

TYPE_TOKEN = "lse-custom-metrics:gcp:BuildServiceAccountGrants"


def compute_default_service_account_email(project_number: str) -> str:
    return f"{project_number}-compute@developer.gserviceaccount.com"


@dataclass
class CustomMetricsBuildServiceAccountGrantsArgs:
    project: pulumi.Input[str]
    roles: Sequence[str] = GCP_BUILD_SA_ROLES
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class CustomMetricsBuildServiceAccountGrants(pulumi.ComponentResource):
    """Since 2024, Cloud Build runs gen2 function builds as `<number>-compute@developer...` unless a
    build service account is given (LSE gives none). In projects created since then, or where the org
    policy `iam.automaticIamGrantsForDefaultServiceAccounts` is enforced, that account has no roles and
    every deploy fails with "missing permission on the build service account". It needs to write build
    logs, read the uploaded source and push the image: exactly the three roles granted here.

    The project number comes from `gcp.organizations.get_project`, the only invoke this package makes.
    """

    email: pulumi.Output[str]

    def __init__(self, name: str, args: CustomMetricsBuildServiceAccountGrantsArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        project = gcp.organizations.get_project_output(project_id=args.project,
                                                       opts=pulumi.InvokeOptions(parent=self))
        self.email = project.number.apply(compute_default_service_account_email)
        self.member = pulumi.Output.concat("serviceAccount:", self.email)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.role_members = [
            gcp.projects.IAMMember(f"{name}-{role_key(role)}", project=args.project, role=role,
                                   member=self.member, opts=child)
            for role in args.roles
        ]
        self.register_outputs({"email": self.email, "member": self.member, "roles": list(args.roles)})
