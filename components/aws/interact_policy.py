"""`LambdaInteractPolicy`: the managed policy LSE's own identity needs (`LSE_AllowInteractLambda`)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..facts import AWS_INTERACT_POLICY_NAME, FUNCTION_PREFIX
from ._component import TYPE_PREFIX, child_opts, tags_input
from .policy_documents import interact_policy, to_json


@dataclass
class LambdaInteractPolicyArgs:
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    function_prefix: pulumi.Input[str] = FUNCTION_PREFIX
    policy_name: pulumi.Input[str] = AWS_INTERACT_POLICY_NAME
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None


class LambdaInteractPolicy(pulumi.ComponentResource):
    """Managed policy with exactly the docs' four statements: pass the execution role, manage and call
    `<prefix>*` functions, list functions, manage their log groups and query their logs.

    A managed (not inline) policy because each identity variant attaches the same policy to a user,
    an instance role, the IRSA role or the node role. Child: `<name>-policy` (aws.iam.Policy).
    """

    policy_arn: pulumi.Output[str]
    policy_name: pulumi.Output[str]

    def __init__(self, name: str, args: LambdaInteractPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}LambdaInteractPolicy", name, None, opts)
        document = pulumi.Output.all(args.partition, args.account_id, args.function_prefix,
                                     args.execution_role_arn).apply(
            lambda v: to_json(interact_policy(v[0], v[1], v[2], execution_role_arn=v[3])))
        self.policy = aws.iam.Policy(
            f"{name}-policy",
            name=args.policy_name,
            description="Lets Label Studio Enterprise deploy, invoke and watch its custom agreement metric "
                        "Lambda functions",
            policy=document,
            tags=tags_input(args.tags),
            opts=child_opts(self))
        self.policy_arn = self.policy.arn
        self.policy_name = self.policy.name
        self.register_outputs({"policyArn": self.policy_arn, "policyName": self.policy_name})
