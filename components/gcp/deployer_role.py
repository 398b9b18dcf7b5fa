"""What LSE's identity may do: the deployer role (custom or predefined) and its non-authoritative grants."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from ..facts import (
    GCP_ACT_AS_PERMISSION,
    GCP_DEPLOYER_PERMISSIONS,
    GCP_DEPLOYER_ROLE_DESCRIPTION,
    GCP_DEPLOYER_ROLE_ID,
    GCP_DEPLOYER_ROLE_TITLE,
    GCP_PREDEFINED_DEPLOYER_ROLES,
)
from ..gcp_resource_names import custom_role_name
from .naming import check_custom_role_id, role_key

ROLE_TYPE_TOKEN = "lse-custom-metrics:gcp:DeployerRole"
BINDING_TYPE_TOKEN = "lse-custom-metrics:gcp:DeployerBinding"
SERVICE_ACCOUNT_USER_ROLE = "roles/iam.serviceAccountUser"
CUSTOM_ROLE_GRANT_KEY = "deployer-role"


@dataclass(frozen=True)
class RoleGrant:
    """One role to grant; `key` names the IAMMember child so names stay stable across runs.

    `wait_for`: what creates the role (a custom role named by known text carries no dependency).
    """

    key: str
    role: pulumi.Input[str]
    wait_for: tuple[pulumi.Resource, ...] = ()


@dataclass
class CustomMetricsDeployerRoleArgs:
    project: pulumi.Input[str]
    # Plain booleans, not Inputs: they decide which resources exist.
    use_predefined_roles: bool = False
    scope_act_as_to_runtime_service_account: bool = False
    role_id: pulumi.Input[str] = GCP_DEPLOYER_ROLE_ID
    title: pulumi.Input[str] = GCP_DEPLOYER_ROLE_TITLE
    description: pulumi.Input[str] = GCP_DEPLOYER_ROLE_DESCRIPTION
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


def deployer_permissions(scope_act_as: bool) -> list[str]:
    """The docs' twelve permissions; eleven when actAs moves onto the runtime service account."""
    return [p for p in GCP_DEPLOYER_PERMISSIONS if not (scope_act_as and p == GCP_ACT_AS_PERMISSION)]


def predefined_project_roles(scope_act_as: bool) -> list[str]:
    """The docs' five predefined roles; without `roles/iam.serviceAccountUser` when actAs is scoped.

    `roles/iam.serviceAccountUser` is the only one of the five that carries
    `iam.serviceAccounts.actAs`; at project level it would let LSE act as *every* service account in
    the project, so with scoping it is granted on the runtime service account alone.
    """
    return [r for r in GCP_PREDEFINED_DEPLOYER_ROLES
            if not (scope_act_as and r == SERVICE_ACCOUNT_USER_ROLE)]


class CustomMetricsDeployerRole(pulumi.ComponentResource):
    """The role(s) LSE's identity needs to deploy, invoke and read logs of its functions.

    Default: the custom role `LSE_CustomMetricsDeployer` with exactly the docs' twelve permissions.
    `use_predefined_roles`: no custom role; the docs' five predefined roles instead.
    `scope_act_as_to_runtime_service_account`: actAs leaves the project-level grant and is granted as
    `roles/iam.serviceAccountUser` on the runtime service account only.

    This component only defines the roles (`project_grants`, `runtime_service_account_grants`);
    `CustomMetricsDeployerBinding` grants them to a member.
    """

    custom_role: gcp.projects.IAMCustomRole | None
    role_name: pulumi.Output[str] | None
    permissions: list[str] | None
    project_grants: list[RoleGrant]
    runtime_service_account_grants: list[RoleGrant]

    def __init__(self, name: str, args: CustomMetricsDeployerRoleArgs,
                 opts: pulumi.ResourceOptions | None = None):
        check_custom_role_id("CustomMetricsDeployerRoleArgs.role_id", args.role_id)
        super().__init__(ROLE_TYPE_TOKEN, name, None, opts)
        scoped = bool(args.scope_act_as_to_runtime_service_account)
        if args.use_predefined_roles:
            self.custom_role = None
            self.role_name = None
            self.permissions = None
            self.project_grants = [RoleGrant(role_key(r), r) for r in predefined_project_roles(scoped)]
        else:
            self.permissions = deployer_permissions(scoped)
            self.custom_role = gcp.projects.IAMCustomRole(
                f"{name}-role", project=args.project, role_id=args.role_id, title=args.title,
                description=args.description, stage="GA", permissions=self.permissions,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
            # The role's own output, for consumers (they wait for the role without being told).
            self.role_name = self.custom_role.name
            # Grants name it by known text, so that they are known in a first preview.
            granted_name = custom_role_name(args.project, args.role_id) or self.role_name
            self.project_grants = [RoleGrant(CUSTOM_ROLE_GRANT_KEY, granted_name, (self.custom_role,))]
        self.runtime_service_account_grants = (
            [RoleGrant(role_key(SERVICE_ACCOUNT_USER_ROLE), SERVICE_ACCOUNT_USER_ROLE)] if scoped else [])
        self.project_roles = pulumi.Output.all(*[g.role for g in self.project_grants])
        self.runtime_service_account_roles = [g.role for g in self.runtime_service_account_grants]
        self.register_outputs({
            "role_name": self.role_name,
            "project_roles": self.project_roles,
            "runtime_service_account_roles": self.runtime_service_account_roles,
        })


@dataclass
class CustomMetricsDeployerBindingArgs:
    project: pulumi.Input[str]
    member: pulumi.Input[str]  # e.g. serviceAccount:lse-app@<project>.iam.gserviceaccount.com
    deployer_role: CustomMetricsDeployerRole
    # `projects/<p>/serviceAccounts/<email>` of the runtime account (for the scoped actAs grant).
    runtime_service_account_name: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # What creates `member`'s account and the runtime account, when this stack does: the grants wait for
    # them (needed when those names are given as known text, which carries no dependency).
    member_depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    runtime_service_account_depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class CustomMetricsDeployerBinding(pulumi.ComponentResource):
    """Grants the deployer role(s) to one member with `IAMMember` only.

    `IAMBinding`/`IAMPolicy` are authoritative: in a shared project they would strip every other
    member's grant of the same role (or the whole policy). `IAMMember` adds one member and nothing else.
    """

    def __init__(self, name: str, args: CustomMetricsDeployerBindingArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(BINDING_TYPE_TOKEN, name, None, opts)

        def after(*resources) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *args.member_depends_on,
                                                                   *resources])

        self.project_members = [
            gcp.projects.IAMMember(f"{name}-{grant.key}", project=args.project, role=grant.role,
                                   member=args.member, opts=after(*grant.wait_for))
            for grant in args.deployer_role.project_grants
        ]
        self.runtime_service_account_members = [
            gcp.serviceaccount.IAMMember(
                f"{name}-runtime-sa-{grant.key}", service_account_id=args.runtime_service_account_name,
                role=grant.role, member=args.member,
                opts=after(*grant.wait_for, *args.runtime_service_account_depends_on))
            for grant in args.deployer_role.runtime_service_account_grants
        ]
        self.register_outputs({
            "member": args.member,
            "project_roles": args.deployer_role.project_roles,
            "runtime_service_account_roles": args.deployer_role.runtime_service_account_roles,
        })
