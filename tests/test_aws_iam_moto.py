"""Every IAM document the foundation emits is accepted by IAM's API (moto) and stored exactly as sent.

moto accepts unknown actions and any trust policy, so this proves the documents are well-formed IAM
requests (JSON, size, shape), not that they are right; the exact-JSON tests do that.
"""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from lse_custom_metrics.components.aws import arns
from lse_custom_metrics.components.aws import policy_documents as docs

ACCOUNT = "123456789012"  # moto's default account
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


@pytest.fixture
def iam(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


@pytest.mark.parametrize("allow_create_log_group", [True, False])
def test_execution_role_and_its_logs_policy_are_accepted(iam, allow_create_log_group):
    trust = docs.lambda_trust_policy()
    logs = docs.execution_role_logs_policy("aws", ACCOUNT, allow_create_log_group=allow_create_log_group)
    role = iam.create_role(RoleName="LSE_CustomMetricsExecuteRole", AssumeRolePolicyDocument=docs.to_json(trust))
    assert role["Role"]["Arn"] == "arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole"
    iam.put_role_policy(RoleName="LSE_CustomMetricsExecuteRole", PolicyName="LSE_CustomMetricsLogs",
                        PolicyDocument=docs.to_json(logs))
    stored = iam.get_role_policy(RoleName="LSE_CustomMetricsExecuteRole", PolicyName="LSE_CustomMetricsLogs")
    assert stored["PolicyDocument"] == logs
    assert iam.get_role(RoleName="LSE_CustomMetricsExecuteRole")["Role"]["AssumeRolePolicyDocument"] == trust


def test_interact_policy_is_accepted_and_attachable_to_every_identity(iam):
    document = docs.interact_policy("aws", ACCOUNT)
    policy = iam.create_policy(PolicyName="LSE_AllowInteractLambda", PolicyDocument=docs.to_json(document))
    arn = policy["Policy"]["Arn"]
    assert arn == "arn:aws:iam::123456789012:policy/LSE_AllowInteractLambda"
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["Policy"]["DefaultVersionId"])
    assert version["PolicyVersion"]["Document"] == document

    # ec2-compose: user + attachment + key
    iam.create_user(UserName="LSE_CustomMetricsUser")
    iam.attach_user_policy(UserName="LSE_CustomMetricsUser", PolicyArn=arn)
    assert iam.create_access_key(UserName="LSE_CustomMetricsUser")["AccessKey"]["SecretAccessKey"]
    # ec2-instance-profile: role trusted by EC2 + instance profile
    iam.create_role(RoleName="LSE_CustomMetricsInstanceRole",
                    AssumeRolePolicyDocument=docs.to_json(docs.ec2_trust_policy()))
    iam.attach_role_policy(RoleName="LSE_CustomMetricsInstanceRole", PolicyArn=arn)
    iam.create_instance_profile(InstanceProfileName="LSE_CustomMetricsInstanceRole")
    iam.add_role_to_instance_profile(InstanceProfileName="LSE_CustomMetricsInstanceRole",
                                     RoleName="LSE_CustomMetricsInstanceRole")
    # eks-oidc: the IRSA role, trusted through the cluster's OIDC provider
    provider = iam.create_open_id_connect_provider(Url=f"https://{ISSUER}", ClientIDList=["sts.amazonaws.com"],
                                                   ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
    provider_arn, issuer = arns.parse_oidc_provider(provider["OpenIDConnectProviderArn"], "aws", ACCOUNT)
    assert provider_arn == f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"
    trust = docs.irsa_trust_policy(provider_arn, issuer, "label-studio", ["lse-ls-app", "lse-ls-rqworker"])
    iam.create_role(RoleName="LSE_ServiceAccountApp", AssumeRolePolicyDocument=docs.to_json(trust))
    iam.attach_role_policy(RoleName="LSE_ServiceAccountApp", PolicyArn=arn)
    assert iam.get_role(RoleName="LSE_ServiceAccountApp")["Role"]["AssumeRolePolicyDocument"] == trust
    # eks-node-role: attach by the name parsed out of the node role's ARN
    node = iam.create_role(RoleName="lse-node-group-NodeInstanceRole", Path="/eks/nodes/",
                           AssumeRolePolicyDocument=docs.to_json(docs.ec2_trust_policy()))["Role"]
    iam.attach_role_policy(RoleName=arns.role_name_from(node["Arn"]), PolicyArn=arn)

    attached = {name: [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
                for name in ("LSE_CustomMetricsInstanceRole", "LSE_ServiceAccountApp",
                             "lse-node-group-NodeInstanceRole")}
    assert attached == {name: [arn] for name in attached}
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(
        UserName="LSE_CustomMetricsUser")["AttachedPolicies"]] == [arn]


@pytest.mark.parametrize("region, partition", [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_other_partitions_documents_are_accepted_there(monkeypatch, region, partition):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        iam = boto3.client("iam", region_name=region)
        role = iam.create_role(RoleName="LSE_CustomMetricsExecuteRole",
                               AssumeRolePolicyDocument=docs.to_json(docs.lambda_trust_policy()))["Role"]
        # (moto names IAM ARNs in aws-cn for China regions but in aws for GovCloud: only acceptance is tested)
        iam.put_role_policy(RoleName="LSE_CustomMetricsExecuteRole", PolicyName="LSE_CustomMetricsLogs",
                            PolicyDocument=docs.to_json(docs.execution_role_logs_policy(partition, ACCOUNT)))
        document = docs.interact_policy(partition, ACCOUNT)
        policy = iam.create_policy(PolicyName="LSE_AllowInteractLambda", PolicyDocument=docs.to_json(document))
        stored = iam.get_policy_version(PolicyArn=policy["Policy"]["Arn"], VersionId="v1")["PolicyVersion"]
        assert stored["Document"] == document
        assert role["RoleName"] == "LSE_CustomMetricsExecuteRole"


def test_iam_refuses_a_broken_document_so_acceptance_means_something(iam):
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_policy(PolicyName="broken", PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                          "Statement": [{"Effect": "Allow"}]}))
