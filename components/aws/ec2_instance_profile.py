"""`Ec2InstanceProfileIdentity`: LSE in docker-compose on EC2 using the instance's role (no static keys)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._component import TYPE_PREFIX, child_opts, parsed, tags_input
from .arns import role_arn_if_given, role_name_from
from .policy_documents import ec2_trust_policy, to_json

DEFAULT_INSTANCE_ROLE_NAME = "LSE_CustomMetricsInstanceRole"


@dataclass
class Ec2InstanceProfileIdentityArgs:
    policy_arn: pulumi.Input[str]
    # The instance's existing role, by name or ARN. None: create a role and an instance profile to launch
    # (or associate) the LSE instance with.
    instance_role: pulumi.Input[str] | None = None
    created_role_name: pulumi.Input[str] = DEFAULT_INSTANCE_ROLE_NAME
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None


class Ec2InstanceProfileIdentity(pulumi.ComponentResource):
    """Attach `LSE_AllowInteractLambda` to the EC2 instance role LSE runs under.

    Existing role: one child, `<name>-policy-attachment`. Otherwise `<name>-role` (trusted by
    `ec2.amazonaws.com` only), `<name>-policy-attachment` and `<name>-instance-profile`.
    """

    role_name: pulumi.Output[str]
    role_arn: pulumi.Output[str | None]
    instance_profile_name: pulumi.Output[str | None]
    instance_profile_arn: pulumi.Output[str | None]

    def __init__(self, name: str, args: Ec2InstanceProfileIdentityArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}Ec2InstanceProfileIdentity", name, None, opts)
        self.role: aws.iam.Role | None = None
        self.instance_profile: aws.iam.InstanceProfile | None = None
        if args.instance_role is not None:
            role_name = parsed(args.instance_role, role_name_from)
            role_arn = parsed(args.instance_role, role_arn_if_given)
        else:
            self.role = aws.iam.Role(
                f"{name}-role",
                name=args.created_role_name,
                description="EC2 instance role of Label Studio Enterprise (custom agreement metrics on Lambda)",
                assume_role_policy=to_json(ec2_trust_policy()),
                tags=tags_input(args.tags),
                opts=child_opts(self))
            role_name, role_arn = self.role.name, self.role.arn
        self.policy_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment", role=role_name, policy_arn=args.policy_arn, opts=child_opts(self))
        if self.role is not None:
            self.instance_profile = aws.iam.InstanceProfile(
                f"{name}-instance-profile", name=args.created_role_name, role=self.role.name,
                tags=tags_input(args.tags), opts=child_opts(self))
        self.role_name = pulumi.Output.from_input(role_name)
        self.role_arn = pulumi.Output.from_input(role_arn)
        self.instance_profile_name = (self.instance_profile.name if self.instance_profile
                                      else pulumi.Output.from_input(None))
        self.instance_profile_arn = (self.instance_profile.arn if self.instance_profile
                                     else pulumi.Output.from_input(None))
        self.register_outputs({"roleName": self.role_name, "roleArn": self.role_arn,
                               "instanceProfileName": self.instance_profile_name,
                               "instanceProfileArn": self.instance_profile_arn})
