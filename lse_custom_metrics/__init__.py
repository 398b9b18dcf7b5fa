"""lse-custom-metrics: Label Studio Enterprise custom agreement metrics as code."""
__version__ = "0.1.0"
