"""Every IAM JSON document of the AWS foundation, built in exactly one place as plain Python dicts.

Inputs are plain strings (partition, account, prefix, ARNs); the components call these inside
`Output.apply`, the tests and the policy pack call them directly. Nothing here asks the provider
(`aws.iam.get_policy_document` is an invoke that mocks cannot answer and that hides the JSON from review).

The two documents of LSE's docs page are the docs' documents exactly, as parsed JSON: statements, order,
Sids (the console's "VisualEditor0".."2" on the interact policy, none elsewhere), actions, resources and
their string-or-list shapes. Only the partition, account, prefix and the execution role's real ARN vary.
Keeping the Sids too means a platform engineer (or LSE support) can diff what we create against the docs
with no explanation needed; what each statement is for is written beside it here and in the README.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..facts import (
    AWS_EXECUTION_ROLE_NAME,
    AWS_INTERACT_LOGS_ACTIONS,
    AWS_LAMBDA_FUNCTION_ACTIONS,
    FUNCTION_PREFIX,
)
from .arns import all_logs_arn, lambda_functions_arn, lambda_log_groups_arn, role_arn

VERSION = "2012-10-17"
# IRSA tokens are minted for this audience by the EKS pod identity webhook.
IRSA_AUDIENCE = "sts.amazonaws.com"
# AWS standardised service principals on `<service>.amazonaws.com` in every partition (the old
# `*.amazonaws.com.cn` forms are legacy aliases), so trust policies do not vary by partition.
LAMBDA_SERVICE_PRINCIPAL = "lambda.amazonaws.com"
EC2_SERVICE_PRINCIPAL = "ec2.amazonaws.com"

# The docs' Sids of LSE_AllowInteractLambda (its fourth statement, and the execution role's three, have none).
INTERACT_SIDS = ("VisualEditor0", "VisualEditor1", "VisualEditor2")


def to_json(document: dict[str, Any]) -> str:
    """The exact text handed to IAM: stable key order as built, compact but readable."""
    return json.dumps(document, indent=2)


def lambda_trust_policy() -> dict[str, Any]:
    """Trust policy of the execution role: only the Lambda service may assume it."""
    return {"Version": VERSION, "Statement": [{
        "Sid": "AssumedByLambdaOnly",
        "Effect": "Allow",
        "Principal": {"Service": LAMBDA_SERVICE_PRINCIPAL},
        "Action": "sts:AssumeRole",
    }]}


def ec2_trust_policy() -> dict[str, Any]:
    """Trust policy of an instance role created for the `ec2-instance-profile` variant."""
    return {"Version": VERSION, "Statement": [{
        "Sid": "AssumedByEc2Only",
        "Effect": "Allow",
        "Principal": {"Service": EC2_SERVICE_PRINCIPAL},
        "Action": "sts:AssumeRole",
    }]}


def execution_role_logs_policy(partition: str, account_id: str, prefix: str = FUNCTION_PREFIX, *,
                               allow_create_log_group: bool = True) -> dict[str, Any]:
    """The docs' CloudWatch Logs policy of `LSE_CustomMetricsExecuteRole`.

    With `allow_create_log_group=False` the function may not create log groups (the caller pre-creates
    `/aws/lambda/<function>`): the account-wide first statement goes, and the third keeps only
    `logs:PutRetentionPolicy`.
    """
    log_groups = lambda_log_groups_arn(partition, account_id, prefix)
    statements: list[dict[str, Any]] = []
    if allow_create_log_group:
        # The Lambda service creates /aws/lambda/<function> on the first invoke when nobody pre-created it.
        statements.append({"Effect": "Allow", "Action": "logs:CreateLogGroup",
                           "Resource": all_logs_arn(partition, account_id)})
    # The function's own output: one stream per execution environment.
    statements.append({"Effect": "Allow",
                       "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [log_groups]})
    manage = ["logs:CreateLogGroup", "logs:PutRetentionPolicy"] if allow_create_log_group \
        else ["logs:PutRetentionPolicy"]
    statements.append({"Effect": "Allow", "Action": manage, "Resource": [log_groups]})
    return {"Version": VERSION, "Statement": statements}


def interact_policy(partition: str, account_id: str, prefix: str = FUNCTION_PREFIX, *,
                    execution_role_arn: str | None = None) -> dict[str, Any]:
    """The docs' `LSE_AllowInteractLambda`: what LSE's identity needs to deploy, call and watch functions.

    `execution_role_arn` defaults to the docs' role in this partition and account; the components pass
    the created role's real ARN.
    """
    passed_role = execution_role_arn or role_arn(partition, account_id, AWS_EXECUTION_ROLE_NAME)
    pass_role, functions, list_functions = INTERACT_SIDS
    return {"Version": VERSION, "Statement": [
        # CreateFunction with Role=<execution role> needs PassRole on exactly that role.
        {"Sid": pass_role, "Effect": "Allow", "Action": "iam:PassRole", "Resource": passed_role},
        # Deploy, update, invoke, inspect, tag and delete the prefix's functions only.
        {"Sid": functions, "Effect": "Allow", "Action": list(AWS_LAMBDA_FUNCTION_ACTIONS),
         "Resource": [lambda_functions_arn(partition, account_id, prefix)]},
        # ListFunctions has no resource-level permissions: IAM accepts only "*" for it.
        {"Sid": list_functions, "Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"},
        # Pre-create, tag and query the prefix's log groups (LSE's metric log view).
        {"Action": list(AWS_INTERACT_LOGS_ACTIONS), "Effect": "Allow",
         "Resource": [lambda_log_groups_arn(partition, account_id, prefix)]},
    ]}


def service_account_subjects(namespace: str, service_accounts: Sequence[str]) -> list[str]:
    return [f"system:serviceaccount:{namespace}:{name}" for name in service_accounts]


def irsa_trust_policy(provider_arn: str, issuer: str, namespace: str,
                      service_accounts: Sequence[str]) -> dict[str, Any]:
    """Trust policy of `LSE_ServiceAccountApp`: the cluster's OIDC provider, for exactly these service accounts.

    One statement per provider; `:sub` lists every service account (LSE's app AND its rqworkers, which
    run the scoring), `:aud` pins the STS audience so tokens minted for other audiences are refused.
    """
    if not service_accounts:
        raise ValueError("at least one Kubernetes service account must be trusted")
    return {"Version": VERSION, "Statement": [{
        "Sid": "AssumedByLseServiceAccounts",
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{issuer}:sub": service_account_subjects(namespace, service_accounts),
            f"{issuer}:aud": IRSA_AUDIENCE,
        }},
    }]}
