"""The AWS half of the Pulumi program: stack config in, one `AwsCustomMetricsFoundation`, every output exported."""
from __future__ import annotations

import pulumi

from ..config import all_config_keys
from .foundation import AwsCustomMetricsFoundation, AwsCustomMetricsFoundationArgs
from .stack_config import ConfigSource, read_settings

FOUNDATION_NAME = "lse-custom-metrics"


def build_aws_stack(config: ConfigSource, aws_config: ConfigSource | None = None) -> AwsCustomMetricsFoundation:
    """Check the whole config first (nothing is registered on a bad key), then build and export.

    Partition and account come from the provider (`aws.get_partition`, `aws.get_caller_identity`), the
    region from `aws:region`; those are the only invokes, so the program runs under mocks unchanged.
    """
    settings = read_settings(config, aws_config if aws_config is not None else pulumi.Config("aws"),
                             all_config_keys())
    foundation = AwsCustomMetricsFoundation(FOUNDATION_NAME, AwsCustomMetricsFoundationArgs(
        deployment=settings.deployment,
        region=settings.region,
        function_prefix=settings.function_prefix,
        tags=settings.tags or None,
        instance_role=settings.instance_role,
        oidc_provider=settings.oidc_provider,
        namespace=settings.namespace,
        helm_release=settings.helm_release,
        service_accounts=settings.service_accounts,
        node_role=settings.node_role,
    ))
    for name, value in foundation.outputs.items():
        pulumi.export(name, value)
    return foundation
