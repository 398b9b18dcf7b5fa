"""GCP foundation for LSE custom metrics: one ComponentResource per thing, and the foundation that
combines them for a deployment variant (`gce-vm`, `gke-workload-identity`, `gke-node`)."""
from .build_service_account import (
    CustomMetricsBuildServiceAccountGrants,
    CustomMetricsBuildServiceAccountGrantsArgs,
)
from .deployer_role import (
    CustomMetricsDeployerBinding,
    CustomMetricsDeployerBindingArgs,
    CustomMetricsDeployerRole,
    CustomMetricsDeployerRoleArgs,
)
from .foundation import GcpCustomMetricsFoundation, GcpCustomMetricsFoundationArgs, GcpFoundationArgsError
from .gce_vm import GceVmIdentity, GceVmIdentityArgs
from .gke_node import GkeNodeIdentity, GkeNodeIdentityArgs
from .gke_workload_identity import GkeWorkloadIdentity, GkeWorkloadIdentityArgs
from .naming import GcpNameError
from .runtime_service_account import CustomMetricsRuntimeServiceAccount, CustomMetricsRuntimeServiceAccountArgs
from .services import CustomMetricsProjectServices, CustomMetricsProjectServicesArgs

__all__ = [
    "CustomMetricsBuildServiceAccountGrants",
    "CustomMetricsBuildServiceAccountGrantsArgs",
    "CustomMetricsDeployerBinding",
    "CustomMetricsDeployerBindingArgs",
    "CustomMetricsDeployerRole",
    "CustomMetricsDeployerRoleArgs",
    "CustomMetricsProjectServices",
    "CustomMetricsProjectServicesArgs",
    "CustomMetricsRuntimeServiceAccount",
    "CustomMetricsRuntimeServiceAccountArgs",
    "GceVmIdentity",
    "GceVmIdentityArgs",
    "GcpCustomMetricsFoundation",
    "GcpCustomMetricsFoundationArgs",
    "GcpFoundationArgsError",
    "GcpNameError",
    "GkeNodeIdentity",
    "GkeNodeIdentityArgs",
    "GkeWorkloadIdentity",
    "GkeWorkloadIdentityArgs",
]
