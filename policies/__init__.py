"""The `lse-custom-metrics` CrossGuard policy pack: `rules.POLICIES`; `__main__.py` serves them."""
