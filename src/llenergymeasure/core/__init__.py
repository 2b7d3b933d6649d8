"""The warmup driver and inference helpers."""

from llenergymeasure.core.inference import create_warmup_inference_fn
from llenergymeasure.core.warmup import InvalidLatencyError, warmup_until_converged

__all__ = ["InvalidLatencyError", "create_warmup_inference_fn", "warmup_until_converged"]
