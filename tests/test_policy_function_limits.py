"""metric-function-runtime-limits through its own `validate`, with CLI-faithful properties.

Numbers travel as protobuf Struct values, i.e. floats (256 arrives as 256.0), exactly as the CLI sends them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from policy_harness import UNKNOWN, cli_props, validate  # noqa: E402

POLICY = "metric-function-runtime-limits"
LAMBDA = "aws:lambda/function:Function"
GCF = "gcp:cloudfunctionsv2/function:Function"
ROLE_ARN = "arn:aws:iam::123456789012:role/LSE_CustomMetricsExecuteRole"


def lambda_function(**overrides) -> dict:
    props = {"name": "custom-metric-42-1700000000", "runtime": "python3.13", "handler": "main.lambda_handler",
             "memorySize": 256, "timeout": 60, "reservedConcurrentExecutions": 1, "role": ROLE_ARN}
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not None}


def gcf_function(**service_overrides) -> dict:
    service = {"availableMemory": "256M", "timeoutSeconds": 60, "maxInstanceCount": 1,
               "ingressSettings": "ALLOW_INTERNAL_ONLY",
               "serviceAccountEmail": "lse-custom-metrics-runtime@acme-labeling.iam.gserviceaccount.com"}
    service.update(service_overrides)
    return {"name": "custom-metric-42-1700000000", "location": "us-central1",
            "buildConfig": {"runtime": "python313", "entryPoint": "agreement_handler"},
            "serviceConfig": {k: v for k, v in service.items() if v is not None}}


def test_numbers_arrive_as_floats_like_the_cli_sends_them():
    assert cli_props(lambda_function())["memorySize"] == 256.0
    assert isinstance(cli_props(lambda_function())["memorySize"], float)


def test_lambda_at_lse_limits_passes():
    assert validate(POLICY, LAMBDA, lambda_function()).passed


def test_a_1gb_300s_lambda_is_caught_with_each_limit_named():
    outcome = validate(POLICY, LAMBDA, lambda_function(memorySize=1024, timeout=300))
    assert outcome.violations == [
        "Lambda function `custom-metric-42-1700000000` has memorySize=1024.0; LSE runs metric functions with "
        "memorySize=256 (256 MB). Set it to 256.",
        "Lambda function `custom-metric-42-1700000000` has timeout=300.0; LSE runs metric functions with "
        "timeout=60 (60 s). Set it to 60.",
    ]


@pytest.mark.parametrize("overrides,key", [
    ({"runtime": "python3.12"}, "runtime"),
    ({"reservedConcurrentExecutions": None}, "reservedConcurrentExecutions"),  # unset: unbounded
    ({"reservedConcurrentExecutions": 0}, "reservedConcurrentExecutions"),  # throttled: never runs
    ({"reservedConcurrentExecutions": 5}, "reservedConcurrentExecutions"),
    ({"memorySize": None}, "memorySize"),  # Lambda's default is 128 MB
])
def test_each_lambda_limit_is_checked(overrides, key):
    outcome = validate(POLICY, LAMBDA, lambda_function(**overrides))
    assert len(outcome.violations) == 1 and f" has {key}=" in outcome.violations[0]


def test_functions_outside_the_prefix_are_not_metric_functions():
    assert validate(POLICY, LAMBDA, lambda_function(name="billing-export", memorySize=3008)).passed
    # auto-named: the physical name starts with the resource name
    assert not validate(POLICY, LAMBDA, lambda_function(name=None, memorySize=3008),
                        name="custom-metric-7").passed
    other_prefix = validate(POLICY, LAMBDA, lambda_function(name="lse-fn-7", memorySize=3008),
                            config={"prefix": "lse-fn-"})
    assert len(other_prefix.violations) == 1


def test_lambda_with_unknown_memory_reports_the_known_violation_and_unknown_name_is_undecided():
    outcome = validate(POLICY, LAMBDA, lambda_function(memorySize=UNKNOWN, timeout=900))
    assert len(outcome.violations) == 1 and "timeout=900.0" in outcome.violations[0]
    assert validate(POLICY, LAMBDA, lambda_function(name=UNKNOWN, timeout=900)).undecided == (
        "string value at .name can't be known during preview")


@pytest.mark.parametrize("resource_type,props,public", [
    ("aws:lambda/permission:Permission", {"function": "custom-metric-42-1700000000", "action":
                                          "lambda:InvokeFunction", "principal": "*"}, True),
    ("aws:lambda/permission:Permission", {"function": "arn:aws:lambda:us-east-1:123456789012:function:"
                                                      "custom-metric-42-1700000000:live",
                                          "action": "lambda:InvokeFunction", "principal": "*"}, True),
    ("aws:lambda/permission:Permission", {"function": "custom-metric-42-1700000000",
                                          "action": "lambda:InvokeFunction",
                                          "principal": "arn:aws:iam::123456789012:role/lse"}, False),
    ("aws:lambda/permission:Permission", {"function": "other-fn", "action": "lambda:InvokeFunction",
                                          "principal": "*"}, False),
    ("aws:lambda/functionUrl:FunctionUrl", {"functionName": "custom-metric-42-1700000000",
                                            "authorizationType": "NONE"}, True),
    ("aws:lambda/functionUrl:FunctionUrl", {"functionName": "custom-metric-42-1700000000",
                                            "authorizationType": "AWS_IAM"}, False),
])
def test_public_lambda_invoke_is_caught(resource_type, props, public):
    outcome = validate(POLICY, resource_type, props)
    assert (len(outcome.violations) == 1) is public


def test_gen2_function_at_lse_limits_passes_and_api_defaults_count():
    assert validate(POLICY, GCF, gcf_function()).passed
    # the API's defaults for memory (256M) and timeout (60 s) are LSE's values
    assert validate(POLICY, GCF, gcf_function(availableMemory=None, timeoutSeconds=None)).passed


def test_a_1gb_300s_gen2_function_is_caught():
    outcome = validate(POLICY, GCF, gcf_function(availableMemory="1Gi", timeoutSeconds=300))
    assert outcome.violations == [
        "Cloud Function `custom-metric-42-1700000000` has serviceConfig.availableMemory='1Gi'; LSE runs metric "
        "functions with availableMemory='256M' (256 MB: '256M' or '256Mi', in any unit).",
        "Cloud Function `custom-metric-42-1700000000` has serviceConfig.timeoutSeconds=300.0; LSE runs metric "
        "functions with timeoutSeconds=60.",
    ]


@pytest.mark.parametrize("memory", [
    "256M", "256Mi", "268435456", "256000000", "262144Ki", "256000k", "0.25Gi", "2.56e8", ".25Gi", "256.0Mi"])
def test_every_spelling_of_256_mb_passes(memory):
    # availableMemory is a Kubernetes quantity: units k, M, G, Mi, Gi, or plain bytes (the provider's docs)
    assert validate(POLICY, GCF, gcf_function(availableMemory=memory)).passed, memory


@pytest.mark.parametrize("memory", [
    "512Mi", "128M", "1G", "268435457", "256m", "256 Mi", "256MB", "256mi", "-256Mi", "Mi", "", "2.56e8Mi"])
def test_other_sizes_and_non_quantities_are_caught(memory):
    # another size, milli-units, a unit the API refuses, or no number at all
    outcome = validate(POLICY, GCF, gcf_function(availableMemory=memory))
    assert len(outcome.violations) == 1, memory
    assert f"has serviceConfig.availableMemory={memory!r}; LSE runs" in outcome.violations[0]


@pytest.mark.parametrize("overrides,key", [
    ({"maxInstanceCount": None}, "maxInstanceCount"),  # API default: 100
    ({"maxInstanceCount": 3}, "maxInstanceCount"),
    ({"ingressSettings": None}, "ingressSettings"),  # API default: ALLOW_ALL
    ({"ingressSettings": "ALLOW_ALL"}, "ingressSettings"),
    ({"ingressSettings": "ALLOW_INTERNAL_AND_GCLB"}, "ingressSettings"),
])
def test_each_gen2_limit_is_checked(overrides, key):
    outcome = validate(POLICY, GCF, gcf_function(**overrides))
    assert len(outcome.violations) == 1 and f"serviceConfig.{key}=" in outcome.violations[0]


def test_gen2_runtime_is_checked():
    props = gcf_function()
    props["buildConfig"]["runtime"] = "python311"
    assert validate(POLICY, GCF, props).violations == [
        "Cloud Function `custom-metric-42-1700000000` has buildConfig.runtime='python311'; LSE runs metric "
        "functions on 'python313'."]


@pytest.mark.parametrize("resource_type,props", [
    ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
     {"name": "projects/acme-labeling/locations/us-central1/services/custom-metric-42-1700000000",
      "role": "roles/run.invoker", "member": "allUsers"}),
    ("gcp:cloudrun/iamBinding:IamBinding", {"service": "custom-metric-42-1700000000",
                                            "role": "roles/run.invoker", "members": ["allAuthenticatedUsers"]}),
    ("gcp:cloudfunctionsv2/functionIamMember:FunctionIamMember",
     {"cloudFunction": "custom-metric-42-1700000000", "role": "roles/cloudfunctions.invoker",
      "member": "allUsers"}),
    ("gcp:projects/iAMMember:IAMMember", {"project": "acme-labeling", "role": "roles/run.invoker",
                                          "member": "allUsers"}),
])
def test_public_invokers_of_metric_functions_are_caught(resource_type, props):
    outcome = validate(POLICY, resource_type, props)
    assert len(outcome.violations) == 1 and "metric functions are internal-only" in outcome.violations[0]


def test_private_invokers_and_other_services_pass():
    assert validate(POLICY, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember", {
        "name": "custom-metric-42-1700000000", "role": "roles/run.invoker",
        "member": "serviceAccount:lse-app@acme-labeling.iam.gserviceaccount.com"}).passed
    assert validate(POLICY, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember", {
        "name": "public-website", "role": "roles/run.invoker", "member": "allUsers"}).passed


# --- the gen2 function's name given as its full resource path ------------------------------------------

FULL_NAME = "projects/acme/locations/us-central1/functions/custom-metric-7"


def test_a_gen2_function_named_by_its_full_path_is_a_metric_function():
    # pulumi-gcp accepts `name` as `projects/*/locations/*/functions/*`: the last segment is the name
    props = {**gcf_function(), "name": FULL_NAME}
    assert validate(POLICY, GCF, props).passed
    big = {**gcf_function(availableMemory="1Gi", timeoutSeconds=300), "name": FULL_NAME}
    outcome = validate(POLICY, GCF, big)
    assert [v.split(" has ")[0] for v in outcome.violations] == ["Cloud Function `custom-metric-7`"] * 2
    assert "availableMemory='1Gi'" in outcome.violations[0] and "timeoutSeconds=300.0" in outcome.violations[1]


def test_a_full_path_outside_the_prefix_is_not_a_metric_function():
    other = {**gcf_function(availableMemory="1Gi"), "name": "projects/acme/locations/us-central1/functions/etl"}
    assert validate(POLICY, GCF, other).passed
    # the prefix must start the function's own name, not the path
    assert validate(POLICY, GCF, other, config={"prefix": "projects"}).passed
