"""The Pulumi program: `pulumi up -s aws` or `pulumi up -s gcp`, driven by stack config alone."""
from lse_custom_metrics.components.program import run

run()
