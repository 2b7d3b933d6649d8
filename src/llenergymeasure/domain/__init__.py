"""Domain models: results and traces."""

from llenergymeasure.domain.metrics import WarmupResult, WarmupStatus

__all__ = ["WarmupResult", "WarmupStatus"]
