"""`EksOidcIdentity`: LSE on EKS with IAM Roles for Service Accounts (IRSA)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..facts import AWS_IRSA_ROLE_NAME, HELM_RELEASE_DEFAULT
from ..shared_keys import release_service_accounts
from ._component import TYPE_PREFIX, child_opts, tags_input
from .arns import parse_oidc_provider
from .policy_documents import irsa_trust_policy, service_account_subjects, to_json


@dataclass
class EksOidcIdentityArgs:
    policy_arn: pulumi.Input[str]
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    # The cluster's IAM OIDC provider ARN, or its issuer URL (with or without https://).
    oidc_provider: pulumi.Input[str]
    namespace: pulumi.Input[str]
    helm_release: pulumi.Input[str] = HELM_RELEASE_DEFAULT
    # Overrides the release-derived names when given.
    service_accounts: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    role_name: pulumi.Input[str] = AWS_IRSA_ROLE_NAME
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None


class EksOidcIdentity(pulumi.ComponentResource):
    """Role `LSE_ServiceAccountApp`, assumable through the cluster's OIDC provider by exactly LSE's service
    accounts (the app and the rqworkers, which do the scoring), with `LSE_AllowInteractLambda` attached.

    Children: `<name>-role`, `<name>-policy-attachment`.
    """

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    service_account_subjects: pulumi.Output[list[str]]

    def __init__(self, name: str, args: EksOidcIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}EksOidcIdentity", name, None, opts)
        if all(isinstance(v, str) for v in (args.oidc_provider, args.partition, args.account_id)):
            parse_oidc_provider(args.oidc_provider, args.partition, args.account_id)  # bad input fails now
        accounts = (args.service_accounts if args.service_accounts is not None
                    else pulumi.Output.from_input(args.helm_release).apply(release_service_accounts))
        provider = pulumi.Output.all(args.oidc_provider, args.partition, args.account_id).apply(
            lambda v: parse_oidc_provider(v[0], v[1], v[2]))
        trust = pulumi.Output.all(provider, args.namespace, accounts).apply(
            lambda v: to_json(irsa_trust_policy(v[0][0], v[0][1], v[1], list(v[2]))))
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Label Studio Enterprise app and rqworker service accounts (custom agreement metrics)",
            assume_role_policy=trust,
            tags=tags_input(args.tags),
            opts=child_opts(self))
        self.policy_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment", role=self.role.name, policy_arn=args.policy_arn, opts=child_opts(self))
        self.role_arn = self.role.arn
        self.role_name = self.role.name
        self.oidc_provider_arn = provider.apply(lambda p: p[0])
        self.service_account_subjects = pulumi.Output.all(args.namespace, accounts).apply(
            lambda v: service_account_subjects(v[0], list(v[1])))
        self.register_outputs({"roleArn": self.role_arn, "roleName": self.role_name,
                               "oidcProviderArn": self.oidc_provider_arn,
                               "serviceAccountSubjects": self.service_account_subjects})
