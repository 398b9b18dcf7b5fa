"""Every stack this package produces passes its own policy pack, and every AWS document it emits is clean
under parliament and cloudsplaining.

Each AWS and GCP variant (and option) runs as a whole program under mocks; the whole pack is applied to
every recorded resource and to the stack — after deployment and as a first `pulumi preview` sees it. No
mandatory violation anywhere; the advisory ones are exactly those the variant legitimately carries.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import parliament
import pytest
import yaml
from cloudsplaining.command.scan_policy_file import scan_policy
from cloudsplaining.scan.assume_role_policy_document import AssumeRolePolicyDocument
from cloudsplaining.shared.constants import ISSUE_SEVERITY

sys.path.insert(0, str(Path(__file__).parent))

import gcp_scenarios  # noqa: E402
import test_aws_variant_configs as aws_variants  # noqa: E402
from policy_harness import apply_pack, emitted_aws_documents  # noqa: E402
from pulumi_harness import run_pulumi  # noqa: E402

from lse_custom_metrics.components.aws.foundation import (  # noqa: E402
    AwsCustomMetricsFoundation,
    AwsCustomMetricsFoundationArgs,
)
from lse_custom_metrics.components.program import run as program  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NS = "lse-custom-metrics"
ACCESS_KEY = "aws:iam/accessKey:AccessKey"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
CN_PARTITION = {"aws:index/getPartition:getPartition": {
    "partition": "aws-cn", "dnsSuffix": "amazonaws.com.cn", "id": "aws-cn", "reverseDnsPrefix": "cn.com.amazonaws"}}


def _example_stack(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())["config"]


def _allow_no_create_log_group():
    AwsCustomMetricsFoundation("lse-custom-metrics", AwsCustomMetricsFoundationArgs(
        deployment="ec2-instance-profile", allow_create_log_group=False))


# name -> (how to run it, pack config, expected advisory policy -> resource types it lands on)
AWS_RUNS = {
    **{f"aws-{variant}": (dict(config=aws_variants.stack_config(variant)), None,
                          {"no-static-access-keys": {ACCESS_KEY}} if variant == "ec2-compose" else {})
       for variant in aws_variants.VARIANT_CONFIGS},
    "aws-example-stack": (dict(config=_example_stack("Pulumi.aws.yaml")), None, {}),
    "aws-eks-oidc-issuer-url": (dict(config=aws_variants.stack_config(
        "eks-oidc", oidcProviderArn=None, oidcIssuerUrl=f"https://{aws_variants.ISSUER}")), None, {}),
    "aws-custom-prefix": (dict(config=aws_variants.stack_config("eks-node-role", functionPrefix="acme-metric-")),
                          {"lambda-actions-scoped-to-prefix": {"prefix": "acme-metric-"}}, {}),
    "aws-cn-partition": (dict(config=aws_variants.stack_config("ec2-instance-profile", aws_region="cn-north-1"),
                              call_results=CN_PARTITION), None, {}),
    "aws-no-create-log-group": (dict(config={f"{NS}:cloud": "aws", "aws:region": "us-east-1"},
                                     program=_allow_no_create_log_group),
                                {"lambda-actions-scoped-to-prefix": {"allowAccountWideCreateLogGroup": False}}, {}),
}
# Project-wide actAs (the docs' custom role, or the docs' roles/iam.serviceAccountUser on the project) is
# advisory; scopeActAsToRuntimeServiceAccount removes it.
_ACT_AS_ROLE = {"actas-scoped": {CUSTOM_ROLE}}
_ACT_AS_MEMBER = {"actas-scoped": {PROJECT_MEMBER}}
GCP_ADVISORY = {
    "gce-vm": _ACT_AS_ROLE, "gke-workload-identity": _ACT_AS_ROLE, "gke-node": _ACT_AS_ROLE,
    "gce-vm-existing-sa": _ACT_AS_ROLE, "gce-vm-predefined-roles": _ACT_AS_MEMBER, "gce-vm-scoped-act-as": {},
    "gce-vm-predefined-scoped": {}, "gke-node-no-build-grants": _ACT_AS_ROLE,
    "gke-workload-identity-explicit": _ACT_AS_ROLE, "gke-workload-identity-release": _ACT_AS_ROLE,
}
GCP_RUNS = {
    **{f"gcp-{name}": (dict(config=gcp_scenarios.stack_config(keys)), None, GCP_ADVISORY[name])
       for name, keys in gcp_scenarios.SCENARIOS.items()},
    "gcp-example-stack": (dict(config=_example_stack("Pulumi.gcp.yaml")), None, {}),
}
RUNS = {**AWS_RUNS, **GCP_RUNS}


@functools.cache
def recorded(name: str):
    how, _, _ = RUNS[name]
    how = dict(how)
    return run_pulumi(how.pop("program", program), **how)


def test_every_gcp_scenario_has_an_expectation():
    assert set(GCP_ADVISORY) == set(gcp_scenarios.SCENARIOS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_foundation_passes_the_whole_pack(name):
    _, config, advisory = RUNS[name]
    run = recorded(name)
    assert len(run.resources) >= 8
    report = apply_pack(run, config=config)
    assert report.mandatory == set(), report.explain()
    assert report.undecided == []  # after deployment every value is known
    found = {}
    for diagnostic in report.violations:
        found.setdefault(diagnostic.policy, set()).add(diagnostic.resource.split("::")[0].rsplit("$", 1)[-1])
    assert found == advisory, report.explain()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_foundation_passes_the_whole_pack_in_a_first_preview(name):
    _, config, advisory = RUNS[name]
    report = apply_pack(recorded(name), config=config, preview=True)
    # Every rule decides on a first preview, where anything computed by a provider or taken from another
    # resource is unknown: the components name accounts, roles and grants by values built from config
    # (explicit depends_on keeps the order), and the rules read only what they need.
    assert report.undecided == [], report.explain()
    assert report.mandatory == set(), report.explain()
    found = {}
    for diagnostic in report.violations:
        found.setdefault(diagnostic.policy, set()).add(diagnostic.resource.split("::")[0].rsplit("$", 1)[-1])
    assert found == advisory, report.explain()  # the same verdicts as after deployment


def test_a_foundation_with_a_custom_prefix_needs_the_prefix_in_the_pack_config():
    report = apply_pack(recorded("aws-custom-prefix"))
    assert report.mandatory == {"lambda-actions-scoped-to-prefix"}
    assert {d.resource.rsplit("::", 1)[-1] for d in report.violations} == {
        "lse-custom-metrics-interact-policy", "lse-custom-metrics-execution-logs"}


# --- parliament and cloudsplaining over every AWS document the foundations emit ---------------------------

def every_emitted_document() -> dict[str, tuple[str, dict]]:
    """canonical JSON -> (where it first appeared, property kind), over every AWS foundation run."""
    documents = {}
    for name in sorted(AWS_RUNS):
        for resource, prop, document in emitted_aws_documents(recorded(name)):
            documents.setdefault(json.dumps(document, sort_keys=True), (f"{name}/{resource}/{prop}", prop))
    return documents


def parliament_findings(document: dict) -> list[tuple[str, str]]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return sorted((f.issue, parliament.enhance_finding(f).severity) for f in policy.findings)


def test_the_foundations_emit_permission_and_trust_documents():
    kinds = [kind for _, kind in every_emitted_document().values()]
    # distinct documents: interact + execution logs for the default prefix in `aws`, in `aws-cn` and with a
    # custom prefix (6), the logs policy without CreateLogGroup (1); trusts for lambda, ec2 and IRSA (issuer
    # URL and provider ARN inputs give the same IRSA document)
    assert kinds.count("policy") == 7 and kinds.count("assumeRolePolicy") == 3


def test_parliament_finds_nothing_in_any_emitted_permission_policy():
    for document_json, (where, kind) in every_emitted_document().items():
        if kind == "policy":
            assert parliament_findings(json.loads(document_json)) == [], where


def test_parliament_on_emitted_trust_policies_reports_only_its_trust_policy_blind_spots():
    # parliament lints identity (and resource) policies, and has no trust-policy mode: its statement check
    # requires Resource/NotResource, which a trust policy never has ("those don't have Resource elements, so
    # that would break other things", parliament/statement.py; open upstream issues #229 and #14). So every
    # trust policy gets exactly that MALFORMED finding, and a federated one UNKNOWN_FEDERATION_SOURCE (its list
    # of federation sources predates IAM OIDC providers). Nothing else may appear; cloudsplaining's trust
    # checks (below) and the pack's trust rules are what judge trust policies.
    for document_json, (where, kind) in every_emitted_document().items():
        if kind != "assumeRolePolicy":
            continue
        document = json.loads(document_json)
        federated = "Federated" in document["Statement"][0]["Principal"]
        expected = [("MALFORMED", "HIGH")] + ([("UNKNOWN_FEDERATION_SOURCE", "MEDIUM")] if federated else [])
        assert parliament_findings(document) == sorted(expected), where
        malformed = [f for f in parliament.analyze_policy_string(document_json).findings if f.issue == "MALFORMED"]
        assert [f.detail for f in malformed] == ["Statement contains neither Resource nor NotResource"], where


def test_cloudsplaining_finds_nothing_in_any_emitted_permission_policy():
    for document_json, (where, kind) in every_emitted_document().items():
        if kind != "policy":
            continue
        results = scan_policy(json.loads(document_json))
        found = {risk: result["findings"] for risk, result in results.items()
                 if isinstance(result, dict) and result["findings"]}
        assert found == {}, where
        assert results["ServicesAffected"] == [], where


def test_cloudsplaining_rates_every_emitted_trust_policy_low_at_most():
    seen = set()
    for document_json, (where, kind) in every_emitted_document().items():
        if kind != "assumeRolePolicy":
            continue
        trust = AssumeRolePolicyDocument(json.loads(document_json))
        assert trust.role_assumable_by_any_principal == [], where  # critical
        assert trust.role_assumable_by_any_principal_with_conditions == [], where  # medium
        assert trust.role_assumable_by_cross_account_principals == [], where  # medium
        seen.update(trust.role_assumable_by_compute_services)  # low: the execution and instance roles
    assert seen == {"lambda", "ec2"}
    assert ISSUE_SEVERITY["AssumableByComputeService"] == "low"


def test_the_linters_do_flag_a_broken_document():
    # the same checks, on the wildcard policy of the broken-stack tests, are not silent
    wildcard = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    assert ("RESOURCE_STAR", "LOW") in parliament_findings(wildcard)
    results = scan_policy(wildcard)
    assert results["ServiceWildcard"]["findings"] == ["s3"]
    assert ISSUE_SEVERITY["ServiceWildcard"] == "medium"
