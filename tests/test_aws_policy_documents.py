"""The AWS IAM documents: equal to LSE's docs page (typed into fixtures by hand), partition- and
prefix-correct, IRSA trust exact, identifiers parsed strictly, every permission justified, parliament-clean.

The docs comparison is exact as parsed JSON, Sids included (the docs' console Sids "VisualEditor0".."2" on
the interact policy, none elsewhere): nothing is normalised away before comparing.
"""
from __future__ import annotations

import json
from pathlib import Path

import parliament
import pytest

from lse_custom_metrics.components.aws import arns
from lse_custom_metrics.components.aws import policy_documents as docs

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT = "123456789012"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def sids(document: dict) -> list[str | None]:
    return [statement.get("Sid") for statement in document["Statement"]]


def emitted(document: dict) -> dict:
    """What IAM receives: the JSON text the components hand to the provider, parsed back."""
    return json.loads(docs.to_json(document))


# --- the docs' two documents ------------------------------------------------------------------------

def test_execution_role_policy_equals_the_docs():
    ours = emitted(docs.execution_role_logs_policy("aws", ACCOUNT))
    assert ours == load_fixture("aws_docs_execution_role_policy.json")
    assert sids(ours) == [None, None, None]


def test_interact_policy_equals_the_docs():
    ours = emitted(docs.interact_policy("aws", ACCOUNT))
    assert ours == load_fixture("aws_docs_allow_interact_lambda.json")
    assert sids(ours) == ["VisualEditor0", "VisualEditor1", "VisualEditor2", None]


def test_fixtures_are_the_docs_documents_with_the_account_filled_in():
    # Guard against the fixtures drifting: the placeholder is gone and only the sample account remains.
    for name in ("aws_docs_execution_role_policy.json", "aws_docs_allow_interact_lambda.json"):
        text = (FIXTURES / name).read_text()
        assert "YOUR_AWS_ACCOUNT" not in text
        assert text.count(":123456789012:") == text.count("123456789012")


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_partition_variants_change_only_the_partition(partition):
    for fixture_name, build in (
            ("aws_docs_execution_role_policy.json", lambda: docs.execution_role_logs_policy(partition, ACCOUNT)),
            ("aws_docs_allow_interact_lambda.json", lambda: docs.interact_policy(partition, ACCOUNT))):
        expected = json.loads((FIXTURES / fixture_name).read_text().replace('"arn:aws:', f'"arn:{partition}:'))
        assert emitted(build()) == expected


def test_partition_variant_arns_spelled_out():
    cn = docs.interact_policy("aws-cn", ACCOUNT)["Statement"]
    assert cn[0]["Resource"] == "arn:aws-cn:iam::123456789012:role/LSE_CustomMetricsExecuteRole"
    assert cn[1]["Resource"] == ["arn:aws-cn:lambda:*:123456789012:function:custom-metric-*"]
    assert cn[3]["Resource"] == ["arn:aws-cn:logs:*:123456789012:log-group:/aws/lambda/custom-metric-*"]
    gov = docs.execution_role_logs_policy("aws-us-gov", ACCOUNT)["Statement"]
    assert gov[0]["Resource"] == "arn:aws-us-gov:logs:*:123456789012:*"


def test_prefix_variant_scopes_functions_and_log_groups():
    interact = docs.interact_policy("aws", ACCOUNT, "acme-metric-")["Statement"]
    assert interact[1]["Resource"] == ["arn:aws:lambda:*:123456789012:function:acme-metric-*"]
    assert interact[3]["Resource"] == ["arn:aws:logs:*:123456789012:log-group:/aws/lambda/acme-metric-*"]
    assert interact[2]["Resource"] == "*"  # ListFunctions has no resource-level permissions
    execution = docs.execution_role_logs_policy("aws", ACCOUNT, "acme-metric-")["Statement"]
    assert execution[1]["Resource"] == ["arn:aws:logs:*:123456789012:log-group:/aws/lambda/acme-metric-*"]
    assert execution[2]["Resource"] == ["arn:aws:logs:*:123456789012:log-group:/aws/lambda/acme-metric-*"]
    # and nothing else moved
    default = load_fixture("aws_docs_allow_interact_lambda.json")
    renamed = json.loads(json.dumps(default).replace("custom-metric-", "acme-metric-"))
    assert docs.interact_policy("aws", ACCOUNT, "acme-metric-") == renamed


def test_interact_policy_passes_the_real_execution_role_arn():
    arn = "arn:aws:iam::123456789012:role/platform/LSE_CustomMetricsExecuteRole"
    assert docs.interact_policy("aws", ACCOUNT, execution_role_arn=arn)["Statement"][0]["Resource"] == arn


def test_execution_role_without_create_log_group():
    document = docs.execution_role_logs_policy("aws", ACCOUNT, allow_create_log_group=False)
    assert document == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": ["arn:aws:logs:*:123456789012:log-group:/aws/lambda/custom-metric-*"]},
        {"Effect": "Allow", "Action": ["logs:PutRetentionPolicy"],
         "Resource": ["arn:aws:logs:*:123456789012:log-group:/aws/lambda/custom-metric-*"]},
    ]}
    assert "logs:CreateLogGroup" not in json.dumps(document)


def test_trust_policies_name_exactly_one_service():
    assert docs.lambda_trust_policy() == {"Version": "2012-10-17", "Statement": [{
        "Sid": "AssumedByLambdaOnly", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    assert docs.ec2_trust_policy() == {"Version": "2012-10-17", "Statement": [{
        "Sid": "AssumedByEc2Only", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}


# --- IRSA ---------------------------------------------------------------------------------------------

EXPECTED_IRSA = {"Version": "2012-10-17", "Statement": [{
    "Sid": "AssumedByLseServiceAccounts",
    "Effect": "Allow",
    "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {
        f"{ISSUER}:sub": ["system:serviceaccount:label-studio:lse-ls-app",
                          "system:serviceaccount:label-studio:lse-ls-rqworker"],
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }},
}]}


@pytest.mark.parametrize("provider", [
    f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}",
    f"https://{ISSUER}",
    ISSUER,
    f"https://{ISSUER}/",
    f"HTTPS://{ISSUER}",
])
def test_irsa_trust_policy_exact_for_both_service_accounts(provider):
    provider_arn, issuer = arns.parse_oidc_provider(provider, "aws", ACCOUNT)
    document = emitted(docs.irsa_trust_policy(provider_arn, issuer, "label-studio",
                                              ["lse-ls-app", "lse-ls-rqworker"]))
    assert document == EXPECTED_IRSA


def test_irsa_provider_arn_keeps_its_own_partition_and_account():
    arn = f"arn:aws-us-gov:iam::210987654321:oidc-provider/{ISSUER}"
    assert arns.parse_oidc_provider(arn, "aws", ACCOUNT) == (arn, ISSUER)
    assert arns.parse_oidc_provider(ISSUER, "aws-cn", ACCOUNT) == (
        f"arn:aws-cn:iam::123456789012:oidc-provider/{ISSUER}", ISSUER)


@pytest.mark.parametrize("bad, message", [
    (f"http://{ISSUER}", "must use https://"),
    ("arn:aws:iam::123456789012:role/not-a-provider", "is not an IAM OIDC provider ARN"),
    ("arn:aws:iam::12345:oidc-provider/" + ISSUER, "is not an IAM OIDC provider ARN"),
    ("not a url", "is not an OIDC issuer URL"),
    ("", "is not an OIDC issuer URL"),
])
def test_bad_oidc_provider_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        arns.parse_oidc_provider(bad, "aws", ACCOUNT)


def test_irsa_needs_at_least_one_service_account():
    with pytest.raises(ValueError, match="at least one"):
        docs.irsa_trust_policy("arn:aws:iam::123456789012:oidc-provider/x.example.com", "x.example.com",
                               "ns", [])


# --- role names for attachments ---------------------------------------------------------------------------

@pytest.mark.parametrize("given, name", [
    ("lse-node-role", "lse-node-role"),
    ("arn:aws:iam::123456789012:role/lse-node-role", "lse-node-role"),
    ("arn:aws-cn:iam::123456789012:role/eks/nodes/NodeInstanceRole", "NodeInstanceRole"),
    ("arn:aws-us-gov:iam::123456789012:role/a/b/c/Role+=,.@_-1", "Role+=,.@_-1"),
    ("  lse-node-role  ", "lse-node-role"),
])
def test_role_name_from_name_or_arn(given, name):
    assert arns.role_name_from(given) == name


@pytest.mark.parametrize("bad", [
    "arn:aws:iam::123456789012:user/someone",
    "arn:aws:iam::123456789012:instance-profile/x",
    "arn:aws:sts::123456789012:assumed-role/x/y",
    "has spaces",
    "x" * 65,
    "",
])
def test_role_name_refuses_what_is_not_a_role(bad):
    with pytest.raises(ValueError):
        arns.role_name_from(bad)


def test_arns_refuse_unknown_partition_and_bad_account():
    with pytest.raises(ValueError, match="unknown AWS partition 'aws-iso'"):
        arns.role_arn("aws-iso", ACCOUNT, "x")
    with pytest.raises(ValueError, match="12 digits"):
        arns.role_arn("aws", "1234", "x")


# --- least privilege: every granted permission and who uses it --------------------------------------------
# (document, statement index, action) -> who calls it, and why. A new action anywhere fails this test until it is
# justified here; a justification for an action we no longer grant fails it too.
WHY = {
    ("execution", 0, "logs:CreateLogGroup"):
        "Lambda service, on the function's first invoke, creates /aws/lambda/<function> when nobody "
        "pre-created it (docs; droppable with allow_create_log_group=False)",
    ("execution", 1, "logs:CreateLogStream"):
        "Lambda service, per execution environment: the stream the metric's output goes to",
    ("execution", 1, "logs:PutLogEvents"):
        "Lambda service: the metric's stdout/stderr and errors, which LSE shows as function logs",
    ("execution", 2, "logs:CreateLogGroup"):
        "Lambda service: same as the account-wide grant, scoped to <prefix> log groups (docs)",
    ("execution", 2, "logs:PutRetentionPolicy"):
        "kept from the docs for code running as the function that sets its own log retention; neither "
        "LSE's handler nor ours calls it (only the prefix's log groups are reachable)",
    ("interact", 0, "iam:PassRole"):
        "LSE deploy and our runtime's deploy: CreateFunction with Role=<execution role> requires PassRole",
    ("interact", 1, "lambda:CreateFunction"):
        "LSE deploy / runtime deploy: one function per project, custom-metric-<project>-<timestamp>",
    ("interact", 1, "lambda:UpdateFunctionCode"):
        "LSE update / runtime re-deploy when the metric code changes",
    ("interact", 1, "lambda:InvokeFunction"):
        "LSE rqworkers while scoring / runtime invoke of a batch",
    ("interact", 1, "lambda:GetFunction"):
        "LSE runtime status (State, LastUpdateStatus) / runtime status and code-hash tag check",
    ("interact", 1, "lambda:DeleteFunction"):
        "LSE on metric/provider change / runtime delete",
    ("interact", 1, "lambda:TagResource"):
        "LSE's 'Lambda Tags' field and project tags; CreateFunction with Tags needs it / runtime code-hash tag",
    ("interact", 1, "lambda:ListTags"):
        "LSE and runtime: a project's function is found by name prefix AND tag (project 1 vs 12)",
    ("interact", 2, "lambda:ListFunctions"):
        "LSE and runtime: find the project's function by prefix; IAM supports only Resource '*' for it",
    ("interact", 3, "logs:CreateLogGroup"):
        "LSE / runtime pre-create /aws/lambda/<function> before the first invoke",
    ("interact", 3, "logs:PutRetentionPolicy"):
        "LSE / runtime set the log group's retention when creating it",
    ("interact", 3, "logs:TagResource"):
        "LSE / runtime tag the log group (CreateLogGroup with tags needs it)",
    ("interact", 3, "logs:StartQuery"):
        "LSE's metric log view and runtime logs(): CloudWatch Logs Insights query on the function's group",
    ("interact", 3, "logs:GetQueryResults"):
        "LSE's metric log view and runtime logs(): read the query's results",
}


def granted_actions() -> set[tuple[str, int, str]]:
    granted = set()
    for label, document in (("execution", docs.execution_role_logs_policy("aws", ACCOUNT)),
                            ("interact", docs.interact_policy("aws", ACCOUNT))):
        for index, statement in enumerate(document["Statement"]):
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                granted.add((label, index, action))
    return granted


def test_every_granted_permission_has_a_stated_user():
    assert granted_actions() == set(WHY)
    for key, reason in WHY.items():
        assert len(reason) > 20, key


def test_no_wildcard_actions_and_resource_star_only_for_list_functions():
    for document in (docs.execution_role_logs_policy("aws", ACCOUNT), docs.interact_policy("aws", ACCOUNT)):
        for statement in document["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            assert all("*" not in action for action in actions)
            resources = [statement["Resource"]] if isinstance(statement["Resource"], str) \
                else statement["Resource"]
            if "*" in resources:
                assert actions == ["lambda:ListFunctions"]


# --- parliament over every document the foundation emits ----------------------------------------------

def every_emitted_document() -> dict[str, dict]:
    documents = {}
    for partition in arns.PARTITIONS:
        for prefix in ("custom-metric-", "acme_metric-"):
            documents[f"execution/{partition}/{prefix}"] = docs.execution_role_logs_policy(partition, ACCOUNT, prefix)
            documents[f"execution-no-create/{partition}/{prefix}"] = docs.execution_role_logs_policy(
                partition, ACCOUNT, prefix, allow_create_log_group=False)
            documents[f"interact/{partition}/{prefix}"] = docs.interact_policy(partition, ACCOUNT, prefix)
    return documents


def every_trust_policy() -> dict[str, dict]:
    provider_arn, issuer = arns.parse_oidc_provider(ISSUER, "aws", ACCOUNT)
    return {"lambda": docs.lambda_trust_policy(), "ec2": docs.ec2_trust_policy(),
            "irsa": docs.irsa_trust_policy(provider_arn, issuer, "label-studio", ["lse-ls-app", "lse-ls-rqworker"])}


def findings(document: dict, *, community: bool = False) -> list[tuple[str, str, str]]:
    policy = parliament.analyze_policy_string(docs.to_json(document), include_community_auditors=community)
    found = []
    for finding in policy.findings:
        severity = parliament.enhance_finding(finding).severity
        where = {k: v for k, v in finding.location.items() if k != "filepath"} if finding.location else {}
        found.append((finding.issue, severity, str(finding.detail or where)))
    return found


def test_parliament_finds_nothing_in_any_permission_policy():
    for label, document in every_emitted_document().items():
        assert findings(document) == [], label


def test_parliament_community_auditors_flag_only_what_the_feature_is():
    # The opt-in community auditors flag the very capability LSE's docs grant: pass a role to a new
    # function and run it, and update function code. Both are bounded: the one passable role is the
    # execution role (CloudWatch Logs only), and code can only change on <prefix>* functions. The README
    # says not to give other <prefix>* functions stronger roles. Nothing else may show up.
    parliament.override_config(str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))
    interact_expected = [
        ("PERMISSIONS_MANAGEMENT_ACTIONS", "MEDIUM", "{'actions': ['iam:passrole']}"),
        ("PRIVILEGE_ESCALATION", "HIGH", "{'type': 'PassExistingRoleToNewLambdaThenInvoke', 'actions': "
                                         "['iam:passrole', 'lambda:createfunction', 'lambda:invokefunction']}"),
        ("PRIVILEGE_ESCALATION", "HIGH", "{'type': 'EditExistingLambdaFunctionWithRole', 'actions': "
                                         "['lambda:updatefunctioncode']}"),
    ]
    for label, document in every_emitted_document().items():
        if label.startswith("interact/"):
            passrole = document["Statement"][0]
            assert passrole["Action"] == "iam:PassRole"
            assert passrole["Resource"].endswith(":role/LSE_CustomMetricsExecuteRole")
            assert findings(document, community=True) == interact_expected, label
        else:
            assert findings(document, community=True) == [], label


def test_parliament_on_trust_policies_reports_only_its_known_trust_policy_blind_spots():
    # parliament lints identity policies: a trust policy never has a Resource (it reports MALFORMED), and
    # its federation check predates IAM OIDC providers (UNKNOWN_FEDERATION_SOURCE). Those two, and only
    # those, are expected; anything else (a wildcard action, an unknown principal) would show here.
    provider_arn = arns.parse_oidc_provider(ISSUER, "aws", ACCOUNT)[0]
    for label, document in every_trust_policy().items():
        expected = [("MALFORMED", "HIGH", "Statement contains neither Resource nor NotResource")]
        if label == "irsa":
            expected = [("UNKNOWN_FEDERATION_SOURCE", "MEDIUM", provider_arn)] + expected
        assert findings(document) == expected, label
