"""`GcpCustomMetricsFoundation`: everything LSE needs on GCP for one deployment variant, and what to paste."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from ..facts import (
    GCP_APP_SA_ID,
    GCP_DEFAULT_REGION,
    GCP_DEPLOYER_ROLE_ID,
    GCP_DEPLOYMENTS,
    GCP_RUNTIME_SA_ID,
    HELM_RELEASE_DEFAULT,
)
from . import lse_settings
from .build_service_account import (
    CustomMetricsBuildServiceAccountGrants,
    CustomMetricsBuildServiceAccountGrantsArgs,
)
from .deployer_role import CustomMetricsDeployerRole, CustomMetricsDeployerRoleArgs
from .gce_vm import GceVmIdentity, GceVmIdentityArgs
from .gke_node import GkeNodeIdentity, GkeNodeIdentityArgs
from .gke_workload_identity import GkeWorkloadIdentity, GkeWorkloadIdentityArgs
from .naming import (
    GcpNameError,
    check_custom_role_id,
    check_helm_release,
    check_kubernetes_service_accounts,
    check_labels,
    check_namespace,
    check_project_id,
    check_region,
    check_service_account_email,
    check_service_account_id,
)
from .runtime_service_account import (
    CustomMetricsRuntimeServiceAccount,
    CustomMetricsRuntimeServiceAccountArgs,
)
from .services import CustomMetricsProjectServices, CustomMetricsProjectServicesArgs

TYPE_TOKEN = "lse-custom-metrics:gcp:Foundation"

# Inputs that belong to one or more variants only; any other variant rejects them, so a key copied
# from another variant's example fails loudly instead of being silently ignored.
VARIANT_FIELDS: dict[str, tuple[str, ...]] = {
    "gce-vm": ("app_service_account_email",),
    "gke-workload-identity": ("app_service_account_email", "namespace", "helm_release",
                              "kubernetes_service_accounts"),
    "gke-node": ("node_service_account_email",),
}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "gce-vm": (),
    "gke-workload-identity": ("namespace",),
    "gke-node": ("node_service_account_email",),
}
BOOLEAN_FIELDS = ("use_predefined_roles", "scope_act_as_to_runtime_service_account",
                  "grant_build_service_account_roles")


class GcpFoundationArgsError(ValueError):
    """A bad foundation input; `field` is the args field (the program maps it to its config key)."""

    def __init__(self, field_name: str, problem: str, *, variant: str | None = None,
                 allowed: Iterable[str] | None = None):
        self.field = field_name
        self.problem = problem
        self.variant = variant
        self.allowed = list(allowed) if allowed is not None else None
        text = f"GcpCustomMetricsFoundationArgs.{field_name}: {problem}"
        if variant:
            text += f" (deployment '{variant}')"
        if self.allowed:
            text += "; allowed: " + ", ".join(self.allowed)
        super().__init__(text)


@dataclass(kw_only=True)
class GcpCustomMetricsFoundationArgs:
    project: pulumi.Input[str]
    deployment: str  # one of GCP_DEPLOYMENTS
    region: pulumi.Input[str] = GCP_DEFAULT_REGION
    # gce-vm / gke-workload-identity: an existing account for LSE instead of creating `lse-app`.
    app_service_account_email: pulumi.Input[str] | None = None
    # gke-node: the node pool's service account (required).
    node_service_account_email: pulumi.Input[str] | None = None
    # gke-workload-identity: where the chart runs and what its KSAs are called.
    namespace: pulumi.Input[str] | None = None
    helm_release: str | None = None
    # Kubernetes service-account names; given, they replace the release-derived `<release>-ls-app` and
    # `<release>-ls-rqworker` (as `service_accounts` does on AWS).
    kubernetes_service_accounts: Sequence[str] | None = None
    use_predefined_roles: bool = False
    scope_act_as_to_runtime_service_account: bool = False
    grant_build_service_account_roles: bool = True
    # No foundation resource accepts labels (services, accounts, custom roles and IAM members have no
    # labels field); they are validated here and exposed for the functions the runtime deploys.
    labels: Mapping[str, str] = field(default_factory=dict)
    runtime_service_account_id: pulumi.Input[str] = GCP_RUNTIME_SA_ID
    app_service_account_id: pulumi.Input[str] = GCP_APP_SA_ID
    deployer_role_id: pulumi.Input[str] = GCP_DEPLOYER_ROLE_ID

    def validate(self) -> None:
        """Raise GcpFoundationArgsError for the first bad input; registers nothing."""
        variant = self.deployment
        if variant not in GCP_DEPLOYMENTS:
            raise GcpFoundationArgsError(
                "deployment", "missing" if variant is None else f"unknown deployment {variant!r}",
                allowed=GCP_DEPLOYMENTS)
        allowed_here = VARIANT_FIELDS[variant]
        for name in sorted({f for fields in VARIANT_FIELDS.values() for f in fields}):
            if getattr(self, name) is not None and name not in allowed_here:
                raise GcpFoundationArgsError(
                    name, "is not used by this deployment", variant=variant,
                    allowed=[v for v, fields in VARIANT_FIELDS.items() if name in fields])
        for name in REQUIRED_FIELDS[variant]:
            if getattr(self, name) is None:
                raise GcpFoundationArgsError(name, "is required", variant=variant)
        for name in BOOLEAN_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise GcpFoundationArgsError(name, f"must be true or false, got {getattr(self, name)!r}",
                                             variant=variant)
        checks = [
            ("project", check_project_id),
            ("region", check_region),
            ("app_service_account_email", check_service_account_email),
            ("node_service_account_email", check_service_account_email),
            ("namespace", check_namespace),
            ("helm_release", check_helm_release),
            ("kubernetes_service_accounts", check_kubernetes_service_accounts),
            ("labels", check_labels),
            ("runtime_service_account_id", check_service_account_id),
            ("app_service_account_id", check_service_account_id),
            ("deployer_role_id", check_custom_role_id),
        ]
        for name, check in checks:
            value = getattr(self, name)
            if value is None:
                continue
            try:
                check(name, value)
            except GcpNameError as err:
                raise GcpFoundationArgsError(name, err.problem if err.what == name else str(err),
                                             variant=variant) from None


class GcpCustomMetricsFoundation(pulumi.ComponentResource):
    """APIs, runtime account, deployer role, build-account grants and LSE's identity for one variant.

    Outputs: `env`, `env_list`, `docker_compose_environment`, `helm_values` (+ `helm_values_yaml`),
    the service-account emails, the deployer role name and the grants LSE's identity received.
    """

    def __init__(self, name: str, args: GcpCustomMetricsFoundationArgs,
                 opts: pulumi.ResourceOptions | None = None):
        args.validate()  # before super(): a bad input registers nothing, not even this component
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.services = CustomMetricsProjectServices(
            f"{name}-services", CustomMetricsProjectServicesArgs(project=args.project), opts=child)
        needs_apis = self.services.resources

        self.runtime_service_account = CustomMetricsRuntimeServiceAccount(
            f"{name}-runtime", CustomMetricsRuntimeServiceAccountArgs(
                project=args.project, account_id=args.runtime_service_account_id, depends_on=needs_apis),
            opts=child)
        self.deployer_role = CustomMetricsDeployerRole(
            f"{name}-deployer", CustomMetricsDeployerRoleArgs(
                project=args.project, use_predefined_roles=args.use_predefined_roles,
                scope_act_as_to_runtime_service_account=args.scope_act_as_to_runtime_service_account,
                role_id=args.deployer_role_id, depends_on=needs_apis),
            opts=child)
        self.build_service_account_grants = None
        if args.grant_build_service_account_roles:
            self.build_service_account_grants = CustomMetricsBuildServiceAccountGrants(
                f"{name}-build-sa", CustomMetricsBuildServiceAccountGrantsArgs(
                    project=args.project, depends_on=needs_apis), opts=child)

        self.identity = self._identity(name, args, needs_apis, child)
        self.deployment = args.deployment
        self.project = pulumi.Output.from_input(args.project)
        self.region = pulumi.Output.from_input(args.region)
        self.labels = dict(args.labels)
        self.runtime_service_account_email = self.runtime_service_account.email
        self.lse_service_account_email = pulumi.Output.from_input(self.identity.email)
        self.lse_identity_member = self.identity.member
        self.deployer_role_name = self.deployer_role.role_name
        self.deployer_project_roles = self.deployer_role.project_roles
        self.deployer_runtime_service_account_roles = self.deployer_role.runtime_service_account_roles
        self.build_service_account_email = (self.build_service_account_grants.email
                                            if self.build_service_account_grants else None)
        wi = isinstance(self.identity, GkeWorkloadIdentity)
        self.workload_identity_members = self.identity.workload_identity_members if wi else None

        self.env = pulumi.Output.all(self.project, self.region, self.runtime_service_account_email).apply(
            lambda values: lse_settings.lse_env(*values))
        self.env_list = self.env.apply(lse_settings.env_list)
        self.docker_compose_environment = self.env.apply(lse_settings.docker_compose_environment)
        annotated_email = self.lse_service_account_email if wi else None
        self.helm_values = pulumi.Output.all(self.env, annotated_email).apply(
            lambda values: lse_settings.helm_values(*values))
        self.helm_values_yaml = self.helm_values.apply(lse_settings.helm_values_yaml)
        self.register_outputs(self.outputs())

    def outputs(self) -> dict:
        """Every output, keyed as the program exports them (None where the variant has no such thing)."""
        return {
            "deployment": self.deployment,
            "project": self.project,
            "region": self.region,
            "env": self.env,
            "envList": self.env_list,
            "dockerComposeEnvironment": self.docker_compose_environment,
            "helmValues": self.helm_values,
            "helmValuesYaml": self.helm_values_yaml,
            "runtimeServiceAccountEmail": self.runtime_service_account_email,
            "lseServiceAccountEmail": self.lse_service_account_email,
            "lseIdentityMember": self.lse_identity_member,
            "deployerRoleName": self.deployer_role_name,
            "deployerProjectRoles": self.deployer_project_roles,
            "deployerRuntimeServiceAccountRoles": self.deployer_runtime_service_account_roles,
            "buildServiceAccountEmail": self.build_service_account_email,
            "workloadIdentityMembers": self.workload_identity_members,
            "labels": self.labels,
        }

    def _identity(self, name: str, args: GcpCustomMetricsFoundationArgs, needs_apis: list,
                  child: pulumi.ResourceOptions):
        runtime = self.runtime_service_account.address
        common = dict(project=args.project, deployer_role=self.deployer_role,
                      runtime_service_account_name=runtime.resource_id,
                      runtime_service_account_depends_on=list(runtime.wait_for), depends_on=needs_apis)
        if args.deployment == "gce-vm":
            return GceVmIdentity(f"{name}-gce-vm", GceVmIdentityArgs(
                **common, app_service_account_email=args.app_service_account_email,
                app_service_account_id=args.app_service_account_id), opts=child)
        if args.deployment == "gke-workload-identity":
            release = args.helm_release or HELM_RELEASE_DEFAULT
            return GkeWorkloadIdentity(f"{name}-gke-wi", GkeWorkloadIdentityArgs(
                **common, namespace=args.namespace, helm_release=release,
                kubernetes_service_accounts=args.kubernetes_service_accounts,
                app_service_account_email=args.app_service_account_email,
                app_service_account_id=args.app_service_account_id), opts=child)
        return GkeNodeIdentity(f"{name}-gke-node", GkeNodeIdentityArgs(
            **common, node_service_account_email=args.node_service_account_email), opts=child)
