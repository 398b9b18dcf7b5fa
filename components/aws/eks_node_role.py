"""`EksNodeRoleIdentity`: LSE on EKS without IRSA; pods act as the node group's role."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._component import TYPE_PREFIX, child_opts, parsed
from .arns import role_name_from


@dataclass
class EksNodeRoleIdentityArgs:
    policy_arn: pulumi.Input[str]
    # The node group's IAM role, by name or ARN (the ARN is parsed: attachments take a role NAME).
    node_role: pulumi.Input[str]


class EksNodeRoleIdentity(pulumi.ComponentResource):
    """Attach `LSE_AllowInteractLambda` to the node role. Child: `<name>-policy-attachment`.

    Every pod on those nodes gets the permissions, and pods reach the node's credentials through the
    instance metadata service only if its hop limit is at least 2.
    """

    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: EksNodeRoleIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}EksNodeRoleIdentity", name, None, opts)
        role_name = parsed(args.node_role, role_name_from)
        self.policy_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment", role=role_name, policy_arn=args.policy_arn, opts=child_opts(self))
        self.role_name = pulumi.Output.from_input(role_name)
        self.register_outputs({"roleName": self.role_name})
