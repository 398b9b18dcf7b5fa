"""Each AWS policy of the pack, called through its own `validate` with CLI-faithful arguments.

Properties are camelCase, policy documents are JSON strings (as pulumi-aws takes them) or objects, values go
through the protobuf Struct the CLI sends (numbers become floats, secrets arrive as signature objects and
are unwrapped), and unknown values are the engine's sentinels behind `pulumi_policy`'s unknown-checking proxy.
The documents below are typed by hand from LSE's docs page (account 123456789012, prefix custom-metric-).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from policy_harness import UNKNOWN, secret, validate  # noqa: E402

ACCOUNT = "123456789012"
POLICY = "aws:iam/policy:Policy"
ROLE = "aws:iam/role:Role"
EXECUTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/LSE_CustomMetricsExecuteRole"
FUNCTIONS = f"arn:aws:lambda:*:{ACCOUNT}:function:custom-metric-*"
LOG_GROUPS = f"arn:aws:logs:*:{ACCOUNT}:log-group:/aws/lambda/custom-metric-*"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"

# LSE_AllowInteractLambda exactly as the docs give it.
INTERACT = {"Version": "2012-10-17", "Statement": [
    {"Sid": "VisualEditor0", "Effect": "Allow", "Action": "iam:PassRole", "Resource": EXECUTION_ROLE_ARN},
    {"Sid": "VisualEditor1", "Effect": "Allow",
     "Action": ["lambda:CreateFunction", "lambda:UpdateFunctionCode", "lambda:InvokeFunction",
                "lambda:GetFunction", "lambda:DeleteFunction", "lambda:TagResource", "lambda:ListTags"],
     "Resource": [FUNCTIONS]},
    {"Sid": "VisualEditor2", "Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"},
    {"Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource", "logs:StartQuery",
                "logs:GetQueryResults"], "Effect": "Allow", "Resource": [LOG_GROUPS]},
]}
# The execution role's logs policy exactly as the docs give it.
EXECUTION_LOGS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": f"arn:aws:logs:*:{ACCOUNT}:*"},
    {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [LOG_GROUPS]},
    {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy"], "Resource": [LOG_GROUPS]},
]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
IRSA_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": PROVIDER_ARN}, "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {
        f"{ISSUER}:sub": ["system:serviceaccount:label-studio:lse-ls-app",
                          "system:serviceaccount:label-studio:lse-ls-rqworker"],
        f"{ISSUER}:aud": "sts.amazonaws.com"}}}]}


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def policy(document) -> dict:
    return {"name": "LSE_AllowInteractLambda", "policy": document}


def role(trust, name="LSE_CustomMetricsExecuteRole", **extra) -> dict:
    return {"name": name, "assumeRolePolicy": trust if isinstance(trust, str) else json.dumps(trust), **extra}


# --- iam-no-wildcard-actions ---------------------------------------------------------------------------

def test_wildcard_actions_pass_for_the_docs_policies_and_trusts():
    assert validate("iam-no-wildcard-actions", POLICY, policy(json.dumps(INTERACT))).passed
    assert validate("iam-no-wildcard-actions", POLICY, policy(json.dumps(EXECUTION_LOGS))).passed
    assert validate("iam-no-wildcard-actions", ROLE, role(LAMBDA_TRUST)).passed
    assert validate("iam-no-wildcard-actions", ROLE, role(IRSA_TRUST, name="LSE_ServiceAccountApp")).passed


@pytest.mark.parametrize("action,shown", [
    ("*", "`*`"), ("s3:*", "`s3:*`"), (["lambda:InvokeFunction", "lambda:Get*"], "`lambda:Get*`"),
    (["iam:Pass?ole"], "`iam:Pass?ole`"),
])
def test_wildcard_actions_are_caught_in_string_and_list_form(action, shown):
    outcome = validate("iam-no-wildcard-actions", POLICY, policy(doc(allow(action, FUNCTIONS, Sid="Extra"))))
    assert len(outcome.violations) == 1
    assert f"`policy` statement 0 (Sid Extra) allows the wildcard action {shown}" in outcome.violations[0]


def test_not_action_in_an_allow_is_a_wildcard_but_deny_statements_never_grant():
    outcome = validate("iam-no-wildcard-actions", POLICY,
                       policy(doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})))
    assert len(outcome.violations) == 1 and 'uses NotAction "iam:*"' in outcome.violations[0]
    deny = doc({"Effect": "Deny", "Action": "*", "Resource": "*"}, allow("lambda:GetFunction", FUNCTIONS))
    assert validate("iam-no-wildcard-actions", POLICY, policy(deny)).passed


@pytest.mark.parametrize("resource_type", ["aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy",
                                           "aws:iam/groupPolicy:GroupPolicy"])
def test_every_inline_policy_type_is_checked(resource_type):
    outcome = validate("iam-no-wildcard-actions", resource_type,
                       {"role": "r", "user": "u", "group": "g", "policy": doc(allow("dynamodb:*"))})
    assert len(outcome.violations) == 1 and "`dynamodb:*`" in outcome.violations[0]


def test_role_trust_and_inline_policies_are_checked():
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:*"}]}
    outcome = validate("iam-no-wildcard-actions", ROLE, role(trust, inlinePolicies=[
        {"name": "logs", "policy": json.dumps(EXECUTION_LOGS)},
        {"name": "extra", "policy": doc(allow(["ec2:*"]))}]))
    assert sorted(v.split(" allows")[0] for v in outcome.violations) == [
        "`assumeRolePolicy` statement 0", "`inlinePolicies[1].policy` statement 0"]


def test_a_policy_given_as_an_object_is_checked_like_a_json_string():
    outcome = validate("iam-no-wildcard-actions", POLICY,
                       policy({"Version": "2012-10-17", "Statement": allow("kms:*")}))
    assert len(outcome.violations) == 1 and "`kms:*`" in outcome.violations[0]


@pytest.mark.parametrize("arn,grant", [
    ("arn:aws:iam::aws:policy/AdministratorAccess", "`*`"),
    ("arn:aws:iam::aws:policy/AWSLambda_FullAccess", "every action of its service"),
    ("arn:aws:iam::aws:policy/AmazonS3FullAccess", "every action of its service"),
    ("arn:aws-us-gov:iam::aws:policy/PowerUserAccess", "NotAction `iam:*`"),
    ("arn:aws:iam::aws:policy/AWSLambdaExecute", "`logs:*`"),
    ("arn:aws:iam::aws:policy/SecretsManagerReadWrite", "`secretsmanager:*`"),
    ("arn:aws:iam::aws:policy/job-function/SystemAdministrator", "`logs:*`, `s3:*`"),
    ("arn:aws:iam::aws:policy/job-function/DatabaseAdministrator", "`dynamodb:*`"),
    ("arn:aws:iam::aws:policy/job-function/NetworkAdministrator", "`route53:*`"),
    ("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess", "`lambda:List*`"),
    ("arn:aws:iam::aws:policy/ReadOnlyAccess", "`<service>:Get*`"),
    ("arn:aws-cn:iam::aws:policy/AmazonS3ReadOnlyAccess", "`s3:Get*`"),
    ("arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess", "`ec2:Describe*`"),
    ("arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess", "`lambda:Get*`"),
])
def test_attaching_an_aws_managed_wildcard_policy_is_caught(arn, grant):
    outcome = validate("iam-no-wildcard-actions", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                       {"role": "lse-node-role", "policyArn": arn})
    assert len(outcome.violations) == 1
    assert f"`policyArn` attaches the AWS-managed policy {arn}, which grants wildcard actions ({grant}" \
        in outcome.violations[0]


@pytest.mark.parametrize("arn", [
    f"arn:aws:iam::{ACCOUNT}:policy/LSE_AllowInteractLambda",
    f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess",  # a customer policy of that name: its document is checked
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
])
def test_customer_policies_and_aws_managed_policies_without_wildcards_pass_on_other_roles(arn):
    assert validate("iam-no-wildcard-actions", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                    {"role": "lse-node-role", "policyArn": arn}).passed


BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.mark.parametrize("resource_type,props", [
    ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
     {"role": "LSE_CustomMetricsExecuteRole", "policyArn": BASIC_EXECUTION}),
    ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",  # the role given by ARN
     {"role": EXECUTION_ROLE_ARN, "policyArn": BASIC_EXECUTION}),
    ("aws:iam/policyAttachment:PolicyAttachment",
     {"name": "basic", "roles": ["lse-node-role", "LSE_CustomMetricsExecuteRole"], "policyArn": BASIC_EXECUTION}),
    ("aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
     {"roleName": "LSE_CustomMetricsExecuteRole", "policyArns": [BASIC_EXECUTION]}),
    (ROLE, {**role(LAMBDA_TRUST), "managedPolicyArns": [BASIC_EXECUTION]}),
])
def test_no_aws_managed_policy_on_the_execution_role(resource_type, props):
    outcome = validate("iam-no-wildcard-actions", resource_type, props)
    assert len(outcome.violations) == 1
    assert f"attaches the AWS-managed policy {BASIC_EXECUTION} to the execution role " \
           f"`LSE_CustomMetricsExecuteRole`: the pack cannot read AWS-managed documents" in outcome.violations[0]
    # a customer-managed policy on the execution role is judged by its own document, elsewhere
    customer = json.loads(json.dumps(props).replace(BASIC_EXECUTION, f"arn:aws:iam::{ACCOUNT}:policy/metric-logs"))
    assert validate("iam-no-wildcard-actions", resource_type, customer).passed


def test_the_execution_role_name_comes_from_policy_config_and_unknown_targets_are_undecided():
    props = {"role": "metrics-exec", "policyArn": BASIC_EXECUTION}
    kind = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    assert validate("iam-no-wildcard-actions", kind, props).passed
    assert len(validate("iam-no-wildcard-actions", kind, props,
                        config={"executionRoleName": "metrics-exec"}).violations) == 1
    unknown = validate("iam-no-wildcard-actions", kind, {"role": UNKNOWN, "policyArn": BASIC_EXECUTION})
    assert unknown.violations == [] and unknown.undecided == "string value at .role can't be known during preview"
    # a wildcard policy is caught whatever the role
    admin = validate("iam-no-wildcard-actions", kind, {"role": UNKNOWN, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})
    assert len(admin.violations) == 1 and admin.undecided is None


@pytest.mark.parametrize("resource_type,key", [
    ("aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive", "roleName"),
    ("aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive", "userName"),
    ("aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive", "groupName"),
])
def test_exclusive_attachments_are_checked_too(resource_type, key):
    outcome = validate("iam-no-wildcard-actions", resource_type, {key: "someone", "policyArns": [
        f"arn:aws:iam::{ACCOUNT}:policy/LSE_AllowInteractLambda", "arn:aws:iam::aws:policy/AdministratorAccess"]})
    assert len(outcome.violations) == 1 and outcome.violations[0].startswith("`policyArns[1]` attaches")


def test_malformed_json_is_reported():
    outcome = validate("iam-no-wildcard-actions", POLICY, policy('{"Version": "2012-10-17", "Statement": ['))
    assert len(outcome.violations) == 1
    assert outcome.violations[0].startswith("`policy` is not valid JSON (Expecting value at line 1 column")


def test_an_unknown_document_is_undecided_never_passed_or_failed():
    outcome = validate("iam-no-wildcard-actions", POLICY, policy(UNKNOWN))
    assert outcome.violations == []
    assert outcome.undecided == "string value at .policy can't be known during preview"


def test_an_unknown_document_does_not_hide_a_known_violation():
    outcome = validate("iam-no-wildcard-actions", ROLE, role(UNKNOWN, inlinePolicies=[
        {"name": "unknown", "policy": UNKNOWN}, {"name": "bad", "policy": doc(allow("*"))}]))
    assert len(outcome.violations) == 1 and outcome.violations[0].startswith("`inlinePolicies[1].policy`")
    assert outcome.undecided is None


def test_a_secret_document_is_unwrapped_and_checked():
    outcome = validate("iam-no-wildcard-actions", POLICY, policy(secret(doc(allow("secretsmanager:*")))))
    assert len(outcome.violations) == 1 and "`secretsmanager:*`" in outcome.violations[0]


# --- iam-wildcard-resource-only-listfunctions ------------------------------------------------------------

def test_star_resource_passes_for_list_functions_only():
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY, policy(json.dumps(INTERACT))).passed
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY,
                    policy(json.dumps(EXECUTION_LOGS))).passed


@pytest.mark.parametrize("resource", ["*", ["*"], [FUNCTIONS, "*"]])
def test_star_resource_for_other_actions_is_caught(resource):
    outcome = validate("iam-wildcard-resource-only-listfunctions", POLICY,
                       policy(doc(allow(["lambda:ListFunctions", "lambda:GetFunction"], resource))))
    assert len(outcome.violations) == 1
    assert "grants `lambda:GetFunction` on `Resource: \"*\"`: only lambda:ListFunctions needs `*`" \
        in outcome.violations[0]


@pytest.mark.parametrize("action,resource", [
    ("s3:GetObject", "arn:aws:s3:::*"),  # every bucket
    ("s3:PutObject", "arn:aws:s3:::*/*"),  # every object of every bucket
    ("lambda:InvokeFunction", "arn:aws:lambda:*:*:*"),
    ("lambda:GetFunction", "arn:aws:*:*:*:*"),
    ("logs:PutLogEvents", f"arn:aws:logs:*:{ACCOUNT}:*"),  # every log group of the account
    ("dynamodb:GetItem", "arn:aws-cn:dynamodb:cn-north-1:123456789012:*"),
    ("s3:GetObject", "arn:aws:*"),
])
def test_an_arn_whose_resource_part_is_only_wildcards_counts_as_star(action, resource):
    outcome = validate("iam-wildcard-resource-only-listfunctions", POLICY, policy(doc(allow(action, resource))))
    assert outcome.violations == [
        f"`policy` statement 0 grants `{action}` on `{resource}` (every resource of the service: `Resource: \"*\"` "
        f"for its actions): only lambda:ListFunctions needs `*` (it has no resource-level permissions). Scope the "
        f"others to ARNs (LSE's functions and their log groups), or move them to their own statement."]


@pytest.mark.parametrize("resource", [
    FUNCTIONS, f"arn:aws:lambda:*:{ACCOUNT}:function:*", "arn:aws:s3:::my-bucket/*", "arn:aws:s3:::*-exports",
    f"arn:aws:iam::{ACCOUNT}:role/*", LOG_GROUPS])
def test_arns_that_name_a_resource_type_or_name_are_not_star(resource):
    # `function:*`, `role/*`, `my-bucket/*` are scoped by type or name (other rules judge the scope)
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY,
                    policy(doc(allow("lambda:GetFunction", resource)))).passed


def test_list_functions_on_an_all_wildcard_lambda_arn_passes():
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY,
                    policy(doc(allow("lambda:ListFunctions", "arn:aws:lambda:*:*:*")))).passed


def test_the_docs_account_wide_create_log_group_is_the_only_other_exception():
    # the docs' execution-role statement passes; refused when the option is off, like in
    # lambda-actions-scoped-to-prefix; any other action, or an unpinned account, is caught
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY, policy(json.dumps(EXECUTION_LOGS))).passed
    refused = validate("iam-wildcard-resource-only-listfunctions", POLICY, policy(json.dumps(EXECUTION_LOGS)),
                       config={"allowAccountWideCreateLogGroup": False})
    assert len(refused.violations) == 1 and "grants `logs:CreateLogGroup` on `arn:aws:logs:*:123456789012:*`" \
        in refused.violations[0]
    for statement in (allow(["logs:CreateLogGroup", "logs:PutRetentionPolicy"], f"arn:aws:logs:*:{ACCOUNT}:*"),
                      allow("logs:CreateLogGroup", "arn:aws:logs:*:*:*"), allow("logs:CreateLogGroup", "*")):
        assert len(validate("iam-wildcard-resource-only-listfunctions", POLICY,
                            policy(doc(statement))).violations) == 1, statement


def test_not_resource_is_caught():
    outcome = validate("iam-wildcard-resource-only-listfunctions", POLICY, policy(doc(
        {"Effect": "Allow", "Action": "lambda:GetFunction", "NotResource": FUNCTIONS})))
    assert len(outcome.violations) == 1 and "uses NotResource" in outcome.violations[0]


def test_allowed_star_actions_come_from_policy_config():
    document = policy(doc(allow(["lambda:ListFunctions", "lambda:GetAccountSettings"])))
    assert not validate("iam-wildcard-resource-only-listfunctions", POLICY, document).passed
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY, document, config={
        "allowedActions": ["lambda:ListFunctions", "lambda:GetAccountSettings"]}).passed


def test_allowed_star_actions_reach_both_policies_that_judge_star():
    # an action without resource-level permissions added to `allowedActions` passes both the
    # Resource "*" rule and the prefix rule with that config, and neither without it
    document = policy(doc(allow(["lambda:ListFunctions", "lambda:GetAccountSettings"])))
    config = {"allowedActions": ["lambda:ListFunctions", "lambda:GetAccountSettings"]}
    for name in ("iam-wildcard-resource-only-listfunctions", "lambda-actions-scoped-to-prefix"):
        default = validate(name, POLICY, document)
        assert len(default.violations) == 1 and "`lambda:GetAccountSettings`" in default.violations[0], name
        assert validate(name, POLICY, document, config=config).passed, name
    # allowed actions are exempt from prefix scoping, not every action of their service
    mixed = validate("lambda-actions-scoped-to-prefix", POLICY, policy(doc(
        allow(["lambda:GetAccountSettings", "lambda:InvokeFunction"]))), config=config)
    assert len(mixed.violations) == 1 and "grants `lambda:InvokeFunction` on `*`" in mixed.violations[0]
    # a Logs action without resource-level permissions works the same way
    describe = policy(doc(allow("logs:DescribeLogGroups")))
    assert not validate("lambda-actions-scoped-to-prefix", POLICY, describe).passed
    assert validate("lambda-actions-scoped-to-prefix", POLICY, describe,
                    config={"allowedActions": ["lambda:ListFunctions", "logs:DescribeLogGroups"]}).passed


def test_allowed_actions_is_one_option_with_one_default_on_both_policies():
    from policy_harness import policy as policy_named

    schemas = [policy_named(name).config_schema.properties["allowedActions"]
               for name in ("iam-wildcard-resource-only-listfunctions", "lambda-actions-scoped-to-prefix")]
    assert schemas[0] == schemas[1] and schemas[0]["default"] == ["lambda:ListFunctions"]


def test_star_resource_with_unknown_actions_is_undecided():
    outcome = validate("iam-wildcard-resource-only-listfunctions", POLICY,
                       policy({"Version": "2012-10-17", "Statement": [allow(UNKNOWN, "*")]}))
    assert outcome.violations == [] and outcome.undecided is not None


# --- lambda-actions-scoped-to-prefix -------------------------------------------------------------------

def test_prefix_scoping_passes_for_the_docs_policies():
    assert validate("lambda-actions-scoped-to-prefix", POLICY, policy(json.dumps(INTERACT))).passed
    assert validate("lambda-actions-scoped-to-prefix", POLICY, policy(json.dumps(EXECUTION_LOGS))).passed


@pytest.mark.parametrize("action,resource,kind", [
    ("lambda:InvokeFunction", f"arn:aws:lambda:*:{ACCOUNT}:function:*", "function-level Lambda actions"),
    ("lambda:InvokeFunction", f"arn:aws:lambda:*:{ACCOUNT}:function:other-*", "function-level Lambda actions"),
    ("lambda:InvokeFunction", "arn:aws:lambda:*:*:function:custom-metric-*", "function-level Lambda actions"),
    ("lambda:*", "*", "function-level Lambda actions"),
    ("logs:PutRetentionPolicy", f"arn:aws:logs:*:{ACCOUNT}:log-group:*", "CloudWatch Logs actions"),
    ("logs:StartQuery", f"arn:aws:logs:*:{ACCOUNT}:*", "CloudWatch Logs actions"),
])
def test_unscoped_lambda_and_logs_actions_are_caught(action, resource, kind):
    outcome = validate("lambda-actions-scoped-to-prefix", POLICY, policy(doc(allow(action, resource))))
    assert len(outcome.violations) == 1
    assert f"grants `{action}` on `{resource}`: {kind} must be scoped" in outcome.violations[0]


def test_account_wide_create_log_group_is_the_docs_exception_and_can_be_refused():
    assert validate("lambda-actions-scoped-to-prefix", POLICY, policy(json.dumps(EXECUTION_LOGS))).passed
    refused = validate("lambda-actions-scoped-to-prefix", POLICY, policy(json.dumps(EXECUTION_LOGS)),
                       config={"allowAccountWideCreateLogGroup": False})
    assert refused.violations == [
        f"`policy` statement 0 grants `logs:CreateLogGroup` on `arn:aws:logs:*:{ACCOUNT}:*`: CloudWatch Logs "
        f"actions must be scoped to `arn:<partition>:logs:<region>:<account>:log-group:/aws/lambda/custom-metric-*`."]
    # the exception is for CreateLogGroup alone, not a statement that adds other actions
    mixed = validate("lambda-actions-scoped-to-prefix", POLICY, policy(doc(
        allow(["logs:CreateLogGroup", "logs:PutRetentionPolicy"], f"arn:aws:logs:*:{ACCOUNT}:*"))))
    assert len(mixed.violations) == 1


def test_the_prefix_comes_from_policy_config():
    other = json.dumps(INTERACT).replace("custom-metric-", "lse-fn-")
    assert not validate("lambda-actions-scoped-to-prefix", POLICY, policy(other)).passed
    assert validate("lambda-actions-scoped-to-prefix", POLICY, policy(other), config={"prefix": "lse-fn-"}).passed
    assert len(validate("lambda-actions-scoped-to-prefix", POLICY, policy(json.dumps(INTERACT)),
                        config={"prefix": "lse-fn-"}).violations) == 2


def test_not_action_reaches_lambda_and_is_caught():
    outcome = validate("lambda-actions-scoped-to-prefix", POLICY, policy(doc(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})))
    assert len(outcome.violations) == 2  # Lambda and Logs are both reached


# --- passrole-only-execution-role ------------------------------------------------------------------------

def test_passrole_on_the_execution_role_passes():
    assert validate("passrole-only-execution-role", POLICY, policy(json.dumps(INTERACT))).passed
    with_path = doc(allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/service-role/LSE_CustomMetricsExecuteRole"))
    assert validate("passrole-only-execution-role", POLICY, policy(with_path)).passed


@pytest.mark.parametrize("action,resource", [
    ("iam:PassRole", "*"),
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/*"),
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/AdminRole"),
    ("iam:Pass*", EXECUTION_ROLE_ARN.replace("LSE_CustomMetricsExecuteRole", "LSE_*")),
    ("*", "*"),
])
def test_passrole_beyond_the_execution_role_is_caught(action, resource):
    outcome = validate("passrole-only-execution-role", POLICY, policy(doc(allow(action, resource))))
    assert outcome.violations == [
        f"`policy` statement 0 allows iam:PassRole on `{resource}`: LSE only passes the execution role; use "
        f"exactly `arn:<partition>:iam::<account>:role/LSE_CustomMetricsExecuteRole`."]


def test_execution_role_name_comes_from_policy_config():
    document = policy(doc(allow("iam:PassRole", f"arn:aws-cn:iam::{ACCOUNT}:role/metrics-exec")))
    assert not validate("passrole-only-execution-role", POLICY, document).passed
    assert validate("passrole-only-execution-role", POLICY, document,
                    config={"executionRoleName": "metrics-exec"}).passed


# --- execution-role-trusts-lambda-only -------------------------------------------------------------------

def test_execution_role_trusted_by_lambda_only_passes():
    assert validate("execution-role-trusts-lambda-only", ROLE, role(LAMBDA_TRUST)).passed
    as_list = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]}
    assert validate("execution-role-trusts-lambda-only", ROLE, role(as_list)).passed
    # other roles are not the execution role
    ec2 = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    assert validate("execution-role-trusts-lambda-only", ROLE, role(ec2, name="lse-ec2-role")).passed


def test_execution_role_trusting_more_than_lambda_is_caught():
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}
    outcome = validate("execution-role-trusts-lambda-only", ROLE, role(trust, name="renamed-exec-role"),
                       config={"executionRoleName": "renamed-exec-role"})
    assert outcome.violations == [
        '`assumeRolePolicy` statement 0 trusts {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]}: '
        "the execution role of the metric functions must be assumable by lambda.amazonaws.com only."]


EDGE_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}


def test_other_roles_that_trust_lambda_are_not_the_execution_role():
    # a Lambda@Edge role must trust lambda and edgelambda; another team's function role may trust more:
    # the execution role is the role with the configured name, not any role Lambda can assume
    assert validate("execution-role-trusts-lambda-only", ROLE, role(EDGE_TRUST, name="cdn-edge-rewrite")).passed
    auto_named = {"assumeRolePolicy": json.dumps(EDGE_TRUST)}  # no name: `<resource name>-<random>`
    assert validate("execution-role-trusts-lambda-only", ROLE, auto_named, name="edge-role").passed
    # the same trust on the role named as the execution role is caught, with the default or configured name
    named = validate("execution-role-trusts-lambda-only", ROLE, role(EDGE_TRUST))
    assert len(named.violations) == 1 and "edgelambda.amazonaws.com" in named.violations[0]
    configured = validate("execution-role-trusts-lambda-only", ROLE, role(EDGE_TRUST, name="cdn-edge-rewrite"),
                          config={"executionRoleName": "cdn-edge-rewrite"})
    assert configured.violations == named.violations


def test_a_role_whose_name_is_unknown_is_undecided():
    outcome = validate("execution-role-trusts-lambda-only", ROLE, role(EDGE_TRUST, name=UNKNOWN))
    assert outcome.violations == [] and outcome.undecided == "string value at .name can't be known during preview"


def test_execution_role_with_extra_principal_statement_or_action_is_caught():
    trust = {"Version": "2012-10-17", "Statement": [
        LAMBDA_TRUST["Statement"][0],
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    outcome = validate("execution-role-trusts-lambda-only", ROLE, role(trust))
    assert len(outcome.violations) == 2
    assert "statement 1 trusts" in outcome.violations[0]
    assert 'statement 1 allows ["sts:AssumeRole", "sts:TagSession"]' in outcome.violations[1]


def test_role_named_as_execution_role_but_not_trusting_lambda_is_caught():
    ec2 = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    outcome = validate("execution-role-trusts-lambda-only", ROLE, role(ec2))
    assert outcome.violations[0] == ("role `LSE_CustomMetricsExecuteRole` is the Lambda execution role but its "
                                     "trust policy does not let lambda.amazonaws.com assume it.")


def test_execution_role_with_unknown_trust_is_undecided():
    outcome = validate("execution-role-trusts-lambda-only", ROLE, role(UNKNOWN))
    assert outcome.violations == [] and "assumeRolePolicy" in outcome.undecided


# --- irsa-trust-pinned ------------------------------------------------------------------------------------

def irsa(condition: dict, principal=PROVIDER_ARN) -> dict:
    return role({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": principal}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition}]}, name="LSE_ServiceAccountApp")


def test_irsa_trust_pinned_passes_for_both_service_accounts():
    assert validate("irsa-trust-pinned", ROLE, role(IRSA_TRUST, name="LSE_ServiceAccountApp")).passed
    assert validate("irsa-trust-pinned", ROLE, role(LAMBDA_TRUST)).passed  # not a web-identity trust


def test_irsa_without_aud_is_caught():
    outcome = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{ISSUER}:sub": "system:serviceaccount:label-studio:lse-ls-app"}}))
    assert outcome.violations == [
        f"`assumeRolePolicy` statement 0 does not pin `{ISSUER}:aud` to `sts.amazonaws.com` (found null): add it "
        f"to the StringEquals block so tokens minted for other audiences are refused."]


def test_irsa_with_wildcard_subject_is_caught_in_string_like_and_string_equals():
    like = validate("irsa-trust-pinned", ROLE, irsa({
        "StringLike": {f"{ISSUER}:sub": "system:serviceaccount:label-studio:*"},
        "StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}}))
    assert len(like.violations) == 2
    assert f"matches `{ISSUER}:sub` with StringLike" in like.violations[0]
    assert f"does not pin `{ISSUER}:sub` with StringEquals" in like.violations[1]
    equals = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{ISSUER}:sub": "system:serviceaccount:*:lse-ls-app", f"{ISSUER}:aud": "sts.amazonaws.com"}}))
    assert equals.violations == [
        f"`assumeRolePolicy` statement 0 trusts subject `system:serviceaccount:*:lse-ls-app`: each `{ISSUER}:sub` "
        f"must be one exact `system:serviceaccount:<namespace>:<ksa>` (no wildcards)."]


def test_irsa_without_conditions_or_with_a_wildcard_provider_is_caught():
    bare = validate("irsa-trust-pinned", ROLE, irsa({}))
    assert len(bare.violations) == 2  # neither :sub nor :aud pinned
    star = validate("irsa-trust-pinned", ROLE, irsa({}, principal="*"))
    assert "trusts web identities from `*`" in star.violations[0]
    two = validate("irsa-trust-pinned", ROLE, irsa({}, principal=[PROVIDER_ARN, PROVIDER_ARN + "2"]))
    assert any("trusts 2 OIDC providers in one statement" in v for v in two.violations)


GITHUB = "token.actions.githubusercontent.com"
GITHUB_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}"
# The role the README's CI job assumes with aws-actions/configure-aws-credentials.
GITHUB_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": GITHUB_PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {f"{GITHUB}:sub": "repo:acme/infra:ref:refs/heads/main",
                                   f"{GITHUB}:aud": "sts.amazonaws.com"}}}]}


def test_a_github_actions_oidc_role_pinned_to_a_repo_branch_passes():
    assert validate("irsa-trust-pinned", ROLE, role(GITHUB_TRUST, name="lse-ci-preview")).passed
    environments = json.loads(json.dumps(GITHUB_TRUST))
    environments["Statement"][0]["Condition"]["StringEquals"][f"{GITHUB}:sub"] = [
        "repo:acme/infra:environment:prod", "repo:acme/infra:ref:refs/heads/main"]
    assert validate("irsa-trust-pinned", ROLE, role(environments, name="lse-ci-preview")).passed


@pytest.mark.parametrize("condition,message", [
    ({"StringEquals": {f"{GITHUB}:sub": "repo:acme/infra:ref:refs/heads/main"}},
     f"does not pin `{GITHUB}:aud` to `sts.amazonaws.com` (found null)"),
    ({"StringEquals": {f"{GITHUB}:sub": "repo:acme/infra:ref:refs/heads/main", f"{GITHUB}:aud": "my-app"}},
     f"does not pin `{GITHUB}:aud` to `sts.amazonaws.com` (found \"my-app\")"),
    ({"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"}},
     f"does not pin `{GITHUB}:sub` with StringEquals: anyone the provider issues a token to could assume"),
    ({"StringEquals": {f"{GITHUB}:sub": "repo:acme/*", f"{GITHUB}:aud": "sts.amazonaws.com"}},
     f"trusts subject `repo:acme/*`: each `{GITHUB}:sub` must be one exact subject (no wildcards)"),
])
def test_a_github_actions_role_must_pin_its_repo_and_audience(condition, message):
    trust = {"Version": "2012-10-17", "Statement": [{**GITHUB_TRUST["Statement"][0], "Condition": condition}]}
    outcome = validate("irsa-trust-pinned", ROLE, role(trust, name="lse-ci-preview"))
    assert len(outcome.violations) == 1 and message in outcome.violations[0], outcome.violations


def test_a_github_string_like_subject_is_caught():
    trust = {"Version": "2012-10-17", "Statement": [{**GITHUB_TRUST["Statement"][0], "Condition": {
        "StringLike": {f"{GITHUB}:sub": "repo:acme/infra:*"},
        "StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"}}}]}
    outcome = validate("irsa-trust-pinned", ROLE, role(trust, name="lse-ci-preview"))
    assert len(outcome.violations) == 2
    assert f"matches `{GITHUB}:sub` with StringLike" in outcome.violations[0]


def test_other_oidc_providers_pin_sub_and_their_own_audience():
    issuer = "app.terraform.io"
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"

    def trust(equals):
        return role({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": equals}}]}, name="tfc-runs")

    sub = "organization:acme:project:lse:workspace:prod:run_phase:apply"
    assert validate("irsa-trust-pinned", ROLE, trust({f"{issuer}:sub": sub,
                                                      f"{issuer}:aud": "aws.workload.identity"})).passed
    no_aud = validate("irsa-trust-pinned", ROLE, trust({f"{issuer}:sub": sub}))
    assert len(no_aud.violations) == 1 and f"does not pin `{issuer}:aud` to exact audiences (found null)" in \
        no_aud.violations[0]
    star_aud = validate("irsa-trust-pinned", ROLE, trust({f"{issuer}:sub": sub, f"{issuer}:aud": "*"}))
    assert len(star_aud.violations) == 1 and "to exact audiences" in star_aud.violations[0]


@pytest.mark.parametrize("issuer", [
    ISSUER, "oidc.eks.cn-north-1.amazonaws.com.cn/id/EXAMPLED539D4633E53DE1B71EXAMPLE"])
def test_eks_issuers_still_require_kubernetes_subjects_and_the_sts_audience(issuer):
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"
    github_like = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{issuer}:sub": "repo:acme/infra:ref:refs/heads/main", f"{issuer}:aud": "sts.amazonaws.com"}},
        principal=provider))
    assert len(github_like.violations) == 1 and "of an EKS cluster must be one exact " \
        "`system:serviceaccount:<namespace>:<ksa>`" in github_like.violations[0]
    other_aud = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{issuer}:sub": "system:serviceaccount:label-studio:lse-ls-app", f"{issuer}:aud": "my-app"}},
        principal=provider))
    assert len(other_aud.violations) == 1 and "to `sts.amazonaws.com`" in other_aud.violations[0]


def test_irsa_with_unknown_conditions_is_undecided():
    # a document passed as an object keeps the engine's unknown as a value of its own
    trust = json.loads(irsa({})["assumeRolePolicy"])
    trust["Statement"][0]["Condition"] = {"StringEquals": UNKNOWN}
    outcome = validate("irsa-trust-pinned", ROLE, {"name": "LSE_ServiceAccountApp", "assumeRolePolicy": trust})
    assert outcome.violations == [] and outcome.undecided is not None


# --- iam-trust-no-wildcard-principal --------------------------------------------------------------------

def trust_of(principal, action="sts:AssumeRole", condition=None, key="Principal") -> dict:
    statement = {"Effect": "Allow", key: principal, "Action": action}
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize("principal,shown", [
    ("*", '`"*"`'), ({"AWS": "*"}, '`{"AWS": "*"}`'), ({"AWS": ["*"]}, '`{"AWS": "*"}`'),
    ({"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "*"]}, '`{"AWS": "*"}`'),
    ({"AWS": "arn:aws:iam::*:root"}, '`{"AWS": "arn:aws:iam::*:root"}`'),
    ({"Service": "*"}, '`{"Service": "*"}`'),
])
def test_a_trust_any_principal_can_use_is_caught(principal, shown):
    outcome = validate("iam-trust-no-wildcard-principal", ROLE, role(trust_of(principal), name="shared-admin"))
    assert outcome.violations == [
        f"`assumeRolePolicy` statement 0 lets Principal {shown} assume the role: any principal of any AWS account "
        f"could. Name the account, role or service that needs it (e.g. `{{\"AWS\": \"arn:aws:iam::<account>:root\"}}`"
        f"), or pin the caller with a StringEquals condition on aws:PrincipalAccount or aws:PrincipalOrgID."]


def test_whatever_the_action_and_with_conditions_that_do_not_pin_the_caller():
    for action in ("sts:AssumeRole", ["sts:AssumeRole", "sts:TagSession"], "STS:ASSUMEROLE"):
        assert not validate("iam-trust-no-wildcard-principal", ROLE, role(trust_of("*", action))).passed
    for condition in (
            {"StringEquals": {"sts:ExternalId": "shared-secret"}},  # a secret, not an identity
            {"StringEqualsIfExists": {"aws:PrincipalAccount": ACCOUNT}},  # matches when the key is absent
            {"StringLike": {"aws:PrincipalAccount": "*"}},
            {"StringEquals": {"aws:PrincipalOrgID": "o-*"}},
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ci"}},
            {"ForAllValues:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3/*"}},  # vacuous on an empty set
            {"Bool": {"aws:SecureTransport": "true"}}):
        outcome = validate("iam-trust-no-wildcard-principal", ROLE, role(trust_of({"AWS": "*"}, condition=condition)))
        assert len(outcome.violations) == 1, condition


def test_not_principal_in_an_allow_is_caught():
    outcome = validate("iam-trust-no-wildcard-principal", ROLE, role(trust_of(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/blocked"}, key="NotPrincipal")))
    assert len(outcome.violations) == 1 and "uses NotPrincipal in an Allow" in outcome.violations[0]


@pytest.mark.parametrize("principal,condition", [
    ({"Service": "lambda.amazonaws.com"}, None),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, None),
    ({"AWS": [f"arn:aws:iam::{ACCOUNT}:role/ci", "arn:aws:iam::210987654321:root"]}, None),
    ({"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}),
    ("*", {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT, "210987654321"]}}),
    ("*", {"StringEqualsIgnoreCase": {"AWS:PRINCIPALACCOUNT": ACCOUNT}}),  # key names are case-insensitive
    ({"AWS": "*"}, {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ci-*"}}),
    ({"AWS": "*"}, {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"}}),
])
def test_named_principals_or_a_pinned_caller_pass(principal, condition):
    assert validate("iam-trust-no-wildcard-principal", ROLE,
                    role(trust_of(principal, condition=condition), name="shared")).passed


def test_the_lse_trusts_and_deny_statements_pass_and_web_identity_is_left_to_irsa():
    for trust in (LAMBDA_TRUST, IRSA_TRUST, GITHUB_TRUST):
        assert validate("iam-trust-no-wildcard-principal", ROLE, role(trust, name="r")).passed
    deny = {"Version": "2012-10-17", "Statement": [LAMBDA_TRUST["Statement"][0],
                                                   {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}]}
    assert validate("iam-trust-no-wildcard-principal", ROLE, role(deny)).passed
    # Principal "*" with AssumeRoleWithWebIdentity: irsa-trust-pinned reports it, once
    web = role(trust_of("*", "sts:AssumeRoleWithWebIdentity"), name="r")
    assert validate("iam-trust-no-wildcard-principal", ROLE, web).passed
    assert not validate("irsa-trust-pinned", ROLE, web).passed
    # only roles carry trust policies
    assert validate("iam-trust-no-wildcard-principal", POLICY, policy(doc(allow("lambda:GetFunction", FUNCTIONS)))).passed


def test_unknown_principals_or_conditions_are_undecided_and_a_known_wildcard_is_not_hidden():
    trust = trust_of({"AWS": "*"}, condition=UNKNOWN)
    outcome = validate("iam-trust-no-wildcard-principal", ROLE, {"name": "r", "assumeRolePolicy": trust})
    assert outcome.violations == [] and outcome.undecided is not None
    principal_unknown = validate("iam-trust-no-wildcard-principal", ROLE,
                                 {"name": "r", "assumeRolePolicy": trust_of({"AWS": UNKNOWN})})
    assert principal_unknown.violations == [] and principal_unknown.undecided is not None
    one_known = validate("iam-trust-no-wildcard-principal", ROLE,
                         {"name": "r", "assumeRolePolicy": trust_of({"AWS": [UNKNOWN, "*"]})})
    assert len(one_known.violations) == 1


# --- no-static-access-keys (advisory) --------------------------------------------------------------------

def test_static_keys_are_reported():
    aws = validate("no-static-access-keys", "aws:iam/accessKey:AccessKey", {"user": "LSE_CustomMetricsUser"})
    assert aws.violations == [
        "a long-lived access key is created for IAM user `LSE_CustomMetricsUser`: it lives in LSE's environment "
        "and never rotates. Prefer deployment `ec2-instance-profile` (EC2) or `eks-oidc` (IRSA on EKS), which "
        "need no keys."]
    gcp = validate("no-static-access-keys", "gcp:serviceaccount/key:Key", {"serviceAccountId": "lse-app"})
    assert len(gcp.violations) == 1 and "service-account key" in gcp.violations[0]
    assert validate("no-static-access-keys", "aws:iam/user:User", {"name": "LSE_CustomMetricsUser"}).passed


# --- IAM is case-insensitive in action names and condition keys -------------------------------------------

def test_action_names_are_matched_case_insensitively_in_every_rule():
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "STS:AssumeRole"}]}
    assert validate("execution-role-trusts-lambda-only", ROLE, role(trust)).passed
    assert validate("execution-role-trusts-lambda-only", ROLE, role({**trust, "Statement": [
        {**trust["Statement"][0], "Action": ["sts:assumerole"]}]})).passed
    wrong = validate("execution-role-trusts-lambda-only", ROLE, role({**trust, "Statement": [
        {**trust["Statement"][0], "Action": ["STS:AssumeRole", "sts:TAGSESSION"]}]}))
    assert len(wrong.violations) == 1 and "needs exactly `sts:AssumeRole`" in wrong.violations[0]
    # the Resource "*" exception, the prefix rule and PassRole read any spelling of an action
    assert validate("iam-wildcard-resource-only-listfunctions", POLICY,
                    policy(doc(allow("LAMBDA:listfunctions")))).passed
    assert not validate("lambda-actions-scoped-to-prefix", POLICY,
                        policy(doc(allow("Lambda:InvokeFunction", "*")))).passed
    assert not validate("passrole-only-execution-role", POLICY, policy(doc(allow("IAM:PASSROLE", "*")))).passed


def test_irsa_condition_keys_are_matched_case_insensitively():
    upper = ISSUER.upper()
    pinned = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{upper}:SUB": ["system:serviceaccount:label-studio:lse-ls-app"], f"{ISSUER}:Aud": "sts.amazonaws.com"}}))
    assert pinned.passed, pinned.violations
    # a key spelled differently is still the key: its wildcard subject or StringLike is caught
    wildcard = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{ISSUER}:Sub": "system:serviceaccount:*:lse-ls-app", f"{ISSUER}:aud": "sts.amazonaws.com"}}))
    assert len(wildcard.violations) == 1 and "trusts subject `system:serviceaccount:*:lse-ls-app`" in \
        wildcard.violations[0]
    like = validate("irsa-trust-pinned", ROLE, irsa({
        "StringLike": {f"{upper}:SUB": "system:serviceaccount:label-studio:*"},
        "StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:label-studio:lse-ls-app",
                         f"{ISSUER}:aud": "sts.amazonaws.com"}}))
    assert len(like.violations) == 1 and f"matches `{upper}:SUB` with StringLike" in like.violations[0]
    # two spellings of one key in one block: both are read
    both = validate("irsa-trust-pinned", ROLE, irsa({"StringEquals": {
        f"{ISSUER}:sub": "system:serviceaccount:label-studio:lse-ls-app",
        f"{ISSUER}:SUB": "system:serviceaccount:*:*", f"{ISSUER}:aud": "sts.amazonaws.com"}}))
    assert len(both.violations) == 1 and "`system:serviceaccount:*:*`" in both.violations[0]
