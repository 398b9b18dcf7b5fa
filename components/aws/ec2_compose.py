"""`Ec2ComposeIdentity`: an IAM user with a static access key, for LSE in docker-compose on EC2 as the docs do it.

Static keys are the weakest option (long-lived, copied into files); prefer `Ec2InstanceProfileIdentity`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._component import TYPE_PREFIX, child_opts, tags_input

DEFAULT_USER_NAME = "LSE_CustomMetricsUser"


@dataclass
class Ec2ComposeIdentityArgs:
    policy_arn: pulumi.Input[str]
    user_name: pulumi.Input[str] = DEFAULT_USER_NAME
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None


class Ec2ComposeIdentity(pulumi.ComponentResource):
    """IAM user + `LSE_AllowInteractLambda` attached + one access key.

    Children: `<name>-user`, `<name>-policy-attachment`, `<name>-access-key`. `secret_access_key` is a
    Pulumi secret (encrypted in state and in stack outputs).
    """

    user_name: pulumi.Output[str]
    user_arn: pulumi.Output[str]
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]

    def __init__(self, name: str, args: Ec2ComposeIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}Ec2ComposeIdentity", name, None, opts)
        self.user = aws.iam.User(f"{name}-user", name=args.user_name, tags=tags_input(args.tags),
                                 opts=child_opts(self))
        self.policy_attachment = aws.iam.UserPolicyAttachment(
            f"{name}-policy-attachment", user=self.user.name, policy_arn=args.policy_arn, opts=child_opts(self))
        self.access_key = aws.iam.AccessKey(f"{name}-access-key", user=self.user.name, opts=child_opts(self))
        self.user_name = self.user.name
        self.user_arn = self.user.arn
        self.access_key_id = self.access_key.id
        # The provider marks `secret` as a secret output itself; saying it here as well keeps it secret
        # whatever provider or mock hands it over, and everything derived from it inherits secrecy.
        self.secret_access_key = pulumi.Output.secret(self.access_key.secret)
        self.register_outputs({"userName": self.user_name, "userArn": self.user_arn,
                               "accessKeyId": self.access_key_id, "secretAccessKey": self.secret_access_key})
