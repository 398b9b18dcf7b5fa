"""`CustomMetricsExecutionRole`: the role every custom-metric Lambda function runs as."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..facts import AWS_EXECUTION_ROLE_NAME, FUNCTION_PREFIX
from ._component import TYPE_PREFIX, child_opts, json_document, tags_input
from .policy_documents import execution_role_logs_policy, lambda_trust_policy, to_json


@dataclass
class CustomMetricsExecutionRoleArgs:
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    function_prefix: pulumi.Input[str] = FUNCTION_PREFIX
    role_name: pulumi.Input[str] = AWS_EXECUTION_ROLE_NAME
    # False: the function may not create log groups; whoever deploys it pre-creates /aws/lambda/<fn>.
    allow_create_log_group: bool = True
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None


class CustomMetricsExecutionRole(pulumi.ComponentResource):
    """IAM role `LSE_CustomMetricsExecuteRole`, trusted by `lambda.amazonaws.com` only, with the docs'
    CloudWatch Logs statements as an inline policy (its lifetime is the role's: nothing else uses it).

    Children: `<name>-role` (aws.iam.Role), `<name>-logs` (aws.iam.RolePolicy).
    """

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: CustomMetricsExecutionRoleArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}ExecutionRole", name, None, opts)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Runs Label Studio Enterprise custom agreement metric Lambda functions",
            assume_role_policy=to_json(lambda_trust_policy()),
            tags=tags_input(args.tags),
            opts=child_opts(self))
        self.logs_policy = aws.iam.RolePolicy(
            f"{name}-logs",
            name="LSE_CustomMetricsLogs",
            role=self.role.name,
            policy=json_document(execution_role_logs_policy, args.partition, args.account_id,
                                 args.function_prefix,
                                 allow_create_log_group=args.allow_create_log_group),
            opts=child_opts(self))
        self.role_arn = self.role.arn
        self.role_name = self.role.name
        self.register_outputs({"roleArn": self.role_arn, "roleName": self.role_name})
