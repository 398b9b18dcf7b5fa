"""Stack configs the AWS tests run the program with, one per deployment variant (plus helpers).

Kept as a test module so pytest checks that every variant LSE supports has a config here.
"""
from __future__ import annotations

from typing import Any

from lse_custom_metrics.components.facts import AWS_DEPLOYMENTS
from pulumi_harness import _plain as plain  # noqa: F401  (stack outputs with secrets marked)

NS = "lse-custom-metrics"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
PROVIDER_ARN = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"
NODE_ROLE_ARN = "arn:aws:iam::123456789012:role/eks/nodes/lse-node-group-NodeInstanceRole"

BASE = {f"{NS}:cloud": "aws", "aws:region": "us-east-1"}
VARIANT_CONFIGS: dict[str, dict[str, Any]] = {
    # Tags on the two variants that create an IAM user / instance profile: every taggable resource gets them.
    "ec2-compose": {f"{NS}:deployment": "ec2-compose", f"{NS}:tags": {"team": "ml-platform"}},
    "ec2-instance-profile": {f"{NS}:deployment": "ec2-instance-profile", f"{NS}:tags": {"team": "ml-platform"}},
    "ec2-instance-profile-existing-role": {f"{NS}:deployment": "ec2-instance-profile",
                                           f"{NS}:instanceRoleName": "lse-ec2-instance-role"},
    "eks-oidc": {f"{NS}:deployment": "eks-oidc", f"{NS}:oidcProviderArn": PROVIDER_ARN,
                 f"{NS}:namespace": "label-studio"},
    "eks-node-role": {f"{NS}:deployment": "eks-node-role", f"{NS}:nodeRoleName": NODE_ROLE_ARN},
}


def stack_config(variant: str, **overrides: Any) -> dict[str, Any]:
    """Full stack config for `variant`; `overrides` use short keys (`namespace=...`, `aws_region=...`),
    and a value of None removes the key."""
    config = {**BASE, **VARIANT_CONFIGS[variant]}
    for short, value in overrides.items():
        key = "aws:region" if short == "aws_region" else f"{NS}:{short}"
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def test_every_deployment_variant_has_a_stack_config():
    deployments = {config[f"{NS}:deployment"] for config in VARIANT_CONFIGS.values()}
    assert deployments == set(AWS_DEPLOYMENTS)
