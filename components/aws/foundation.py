"""`AwsCustomMetricsFoundation`: everything LSE needs on AWS for one deployment variant, and what to paste."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ..facts import (
    AWS_DEPLOYMENTS,
    AWS_EXECUTION_ROLE_NAME,
    AWS_INTERACT_POLICY_NAME,
    AWS_IRSA_ROLE_NAME,
    FUNCTION_PREFIX,
    HELM_RELEASE_DEFAULT,
)
from ._component import TYPE_PREFIX, child_opts
from .arns import role_arn, role_arn_if_given
from .ec2_compose import DEFAULT_USER_NAME, Ec2ComposeIdentity, Ec2ComposeIdentityArgs
from .ec2_instance_profile import (
    DEFAULT_INSTANCE_ROLE_NAME,
    Ec2InstanceProfileIdentity,
    Ec2InstanceProfileIdentityArgs,
)
from .eks_node_role import EksNodeRoleIdentity, EksNodeRoleIdentityArgs
from .eks_oidc import EksOidcIdentity, EksOidcIdentityArgs
from .execution_role import CustomMetricsExecutionRole, CustomMetricsExecutionRoleArgs
from .interact_policy import LambdaInteractPolicy, LambdaInteractPolicyArgs
from .outputs import compose_environment_text, env_list_text, helm_values, helm_values_yaml, lse_env

# Which optional args belong to which variant (anything else given is a mistake worth reporting).
VARIANT_FIELDS = {
    "ec2-compose": ("iam_user_name",),
    "ec2-instance-profile": ("instance_role", "instance_role_name"),
    "eks-oidc": ("oidc_provider", "namespace", "helm_release", "service_accounts", "irsa_role_name"),
    "eks-node-role": ("node_role",),
}
REQUIRED_FIELDS = {"eks-oidc": ("oidc_provider", "namespace"), "eks-node-role": ("node_role",)}


@dataclass
class AwsCustomMetricsFoundationArgs:
    deployment: str  # one of facts.AWS_DEPLOYMENTS; decides the resource set, so a plain string
    # None: asked of the provider (aws.get_region / get_partition / get_caller_identity).
    region: pulumi.Input[str] | None = None
    partition: pulumi.Input[str] | None = None
    account_id: pulumi.Input[str] | None = None
    function_prefix: pulumi.Input[str] = FUNCTION_PREFIX
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None
    allow_create_log_group: bool = True
    execution_role_name: pulumi.Input[str] = AWS_EXECUTION_ROLE_NAME
    interact_policy_name: pulumi.Input[str] = AWS_INTERACT_POLICY_NAME
    # ec2-compose
    iam_user_name: pulumi.Input[str] | None = None
    # ec2-instance-profile: an existing instance role (name or ARN); None creates role + instance profile
    instance_role: pulumi.Input[str] | None = None
    instance_role_name: pulumi.Input[str] | None = None
    # eks-oidc: the cluster's OIDC provider ARN or issuer URL; namespace; release or explicit accounts
    oidc_provider: pulumi.Input[str] | None = None
    namespace: pulumi.Input[str] | None = None
    helm_release: pulumi.Input[str] | None = None
    service_accounts: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    irsa_role_name: pulumi.Input[str] | None = None
    # eks-node-role: the node group's role (name or ARN)
    node_role: pulumi.Input[str] | None = None

    def check(self) -> None:
        if self.deployment not in AWS_DEPLOYMENTS:
            raise ValueError(f"deployment '{self.deployment}' is not one of {', '.join(AWS_DEPLOYMENTS)}")
        for field in REQUIRED_FIELDS.get(self.deployment, ()):
            if getattr(self, field) is None:
                raise ValueError(f"deployment '{self.deployment}' needs '{field}'")
        for variant, fields in VARIANT_FIELDS.items():
            if variant == self.deployment:
                continue
            for field in fields:
                if getattr(self, field) is not None and field not in VARIANT_FIELDS[self.deployment]:
                    raise ValueError(f"'{field}' belongs to deployment '{variant}', "
                                     f"not '{self.deployment}'")


class AwsCustomMetricsFoundation(pulumi.ComponentResource):
    """Execution role + `LSE_AllowInteractLambda` + the identity of the chosen deployment variant.

    Children: `<name>-execution` (CustomMetricsExecutionRole), `<name>-interact` (LambdaInteractPolicy)
    and `<name>-<deployment>` (the variant's identity component). `outputs` holds every output by its
    stack-export name; any output that contains the access key's secret is a secret as a whole.
    """

    outputs: dict[str, pulumi.Output[Any]]

    def __init__(self, name: str, args: AwsCustomMetricsFoundationArgs,
                 opts: pulumi.ResourceOptions | None = None):
        args.check()
        super().__init__(f"{TYPE_PREFIX}Foundation", name, None, opts)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        partition = args.partition if args.partition is not None else \
            aws.get_partition_output(opts=invoke_opts).partition
        account_id = args.account_id if args.account_id is not None else \
            aws.get_caller_identity_output(opts=invoke_opts).account_id
        region = args.region if args.region is not None else aws.get_region_output(opts=invoke_opts).region

        self.execution_role = CustomMetricsExecutionRole(f"{name}-execution", CustomMetricsExecutionRoleArgs(
            partition=partition, account_id=account_id, function_prefix=args.function_prefix,
            role_name=args.execution_role_name, allow_create_log_group=args.allow_create_log_group,
            tags=args.tags), opts=child_opts(self))
        # The PassRole ARN is built from partition, account and name (the role has no path), not taken from
        # the role's computed `arn`: so the whole document is known at `pulumi preview`, where the policy
        # pack must see it, instead of becoming unknown until the role exists.
        passable_role_arn = pulumi.Output.all(partition, account_id, args.execution_role_name).apply(
            lambda v: role_arn(v[0], v[1], v[2]))
        self.interact_policy = LambdaInteractPolicy(f"{name}-interact", LambdaInteractPolicyArgs(
            partition=partition, account_id=account_id, execution_role_arn=passable_role_arn,
            function_prefix=args.function_prefix, policy_name=args.interact_policy_name, tags=args.tags),
            opts=child_opts(self))
        policy_arn = self.interact_policy.policy_arn

        outputs: dict[str, pulumi.Output[Any]] = {
            "deployment": pulumi.Output.from_input(args.deployment),
            "region": pulumi.Output.from_input(region),
            "executionRoleArn": self.execution_role.role_arn,
            "executionRoleName": self.execution_role.role_name,
            "interactPolicyArn": policy_arn,
            "interactPolicyName": self.interact_policy.policy_name,
        }
        key_id: pulumi.Input[str | None] = None
        key_secret: pulumi.Input[str | None] = None
        irsa_role_arn: pulumi.Input[str | None] = None
        identity_name = f"{name}-{args.deployment}"
        if args.deployment == "ec2-compose":
            identity = Ec2ComposeIdentity(identity_name, Ec2ComposeIdentityArgs(
                policy_arn=policy_arn, user_name=args.iam_user_name or DEFAULT_USER_NAME, tags=args.tags),
                opts=child_opts(self))
            key_id, key_secret = identity.access_key_id, identity.secret_access_key
            outputs.update(iamUserName=identity.user_name, iamUserArn=identity.user_arn,
                           accessKeyId=identity.access_key_id)
        elif args.deployment == "ec2-instance-profile":
            identity = Ec2InstanceProfileIdentity(identity_name, Ec2InstanceProfileIdentityArgs(
                policy_arn=policy_arn, instance_role=args.instance_role,
                created_role_name=args.instance_role_name or DEFAULT_INSTANCE_ROLE_NAME, tags=args.tags),
                opts=child_opts(self))
            outputs["instanceRoleName"] = identity.role_name
            # An existing role given by name alone has no known ARN (its path is not known): no output.
            if identity.role is not None or not isinstance(args.instance_role, str) \
                    or role_arn_if_given(args.instance_role):
                outputs["instanceRoleArn"] = identity.role_arn
            if identity.instance_profile is not None:
                outputs.update(instanceProfileName=identity.instance_profile_name,
                               instanceProfileArn=identity.instance_profile_arn)
        elif args.deployment == "eks-oidc":
            identity = EksOidcIdentity(identity_name, EksOidcIdentityArgs(
                policy_arn=policy_arn, partition=partition, account_id=account_id,
                oidc_provider=args.oidc_provider, namespace=args.namespace,
                helm_release=args.helm_release or HELM_RELEASE_DEFAULT, service_accounts=args.service_accounts,
                role_name=args.irsa_role_name or AWS_IRSA_ROLE_NAME, tags=args.tags), opts=child_opts(self))
            irsa_role_arn = identity.role_arn
            outputs.update(serviceAccountRoleArn=identity.role_arn, serviceAccountRoleName=identity.role_name,
                           oidcProviderArn=identity.oidc_provider_arn,
                           serviceAccountSubjects=identity.service_account_subjects)
        else:
            identity = EksNodeRoleIdentity(identity_name, EksNodeRoleIdentityArgs(
                policy_arn=policy_arn, node_role=args.node_role), opts=child_opts(self))
            outputs.update(nodeRoleName=identity.role_name)
        self.identity = identity

        env = pulumi.Output.all(region, self.execution_role.role_arn, key_id, key_secret).apply(
            lambda v: lse_env(v[0], v[1], v[2], v[3]))
        helm = pulumi.Output.all(env, irsa_role_arn).apply(lambda v: helm_values(v[0], v[1]))
        rendered = {
            "env": env,
            "envList": env.apply(env_list_text),
            "dockerComposeEnvironment": env.apply(compose_environment_text),
            "helmValues": helm,
            "helmValuesYaml": helm.apply(helm_values_yaml),
        }
        if key_secret is not None:
            # Each of these carries the secret key: the whole value is secret, never just the one field.
            rendered = {k: pulumi.Output.secret(v) for k, v in rendered.items()}
        outputs.update(rendered)

        self.outputs = outputs
        self.env = rendered["env"]
        self.env_list = rendered["envList"]
        self.docker_compose_environment = rendered["dockerComposeEnvironment"]
        self.helm_values = rendered["helmValues"]
        self.helm_values_yaml = rendered["helmValuesYaml"]
        self.execution_role_arn = self.execution_role.role_arn
        self.interact_policy_arn = policy_arn
        self.register_outputs(outputs)
