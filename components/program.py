"""Entry point of the Pulumi program: picks the cloud from `lse-custom-metrics:cloud`."""
from __future__ import annotations

import pulumi

from lse_custom_metrics.components.config import NAMESPACE, ConfigError

CLOUDS = ("aws", "gcp")


def run() -> None:
    config = pulumi.Config(NAMESPACE)
    cloud = config.get("cloud")
    if cloud not in CLOUDS:
        raise ConfigError("cloud", "missing" if cloud is None else f"unknown value '{cloud}'",
                          allowed=CLOUDS)
    if cloud == "aws":
        from lse_custom_metrics.components.aws.program import build_aws_stack

        build_aws_stack(config)
    else:
        from lse_custom_metrics.components.gcp.program import build_gcp_stack

        build_gcp_stack(config)
