"""Domain models: the warmup result (the trace model lives in `llenergymeasure.traces.model`)."""

from llenergymeasure.domain.metrics import WarmupResult, WarmupStatus

__all__ = ["WarmupResult", "WarmupStatus"]
