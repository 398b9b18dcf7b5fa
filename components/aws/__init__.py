"""AWS foundation for LSE custom metrics: one component per piece of LSE's docs and per deployment variant."""
from .ec2_compose import Ec2ComposeIdentity, Ec2ComposeIdentityArgs
from .ec2_instance_profile import Ec2InstanceProfileIdentity, Ec2InstanceProfileIdentityArgs
from .eks_node_role import EksNodeRoleIdentity, EksNodeRoleIdentityArgs
from .eks_oidc import EksOidcIdentity, EksOidcIdentityArgs
from .execution_role import CustomMetricsExecutionRole, CustomMetricsExecutionRoleArgs
from .foundation import AwsCustomMetricsFoundation, AwsCustomMetricsFoundationArgs
from .interact_policy import LambdaInteractPolicy, LambdaInteractPolicyArgs

__all__ = [
    "AwsCustomMetricsFoundation",
    "AwsCustomMetricsFoundationArgs",
    "CustomMetricsExecutionRole",
    "CustomMetricsExecutionRoleArgs",
    "Ec2ComposeIdentity",
    "Ec2ComposeIdentityArgs",
    "Ec2InstanceProfileIdentity",
    "Ec2InstanceProfileIdentityArgs",
    "EksNodeRoleIdentity",
    "EksNodeRoleIdentityArgs",
    "EksOidcIdentity",
    "EksOidcIdentityArgs",
    "LambdaInteractPolicy",
    "LambdaInteractPolicyArgs",
]
