"""The warmup driver and inference helpers."""

from llenergymeasure.core.inference import create_warmup_inference_fn
from llenergymeasure.core.openai_client import ServerRequestError, create_openai_inference_fn
from llenergymeasure.core.warmup import InvalidLatencyError, warmup_until_converged

__all__ = [
    "InvalidLatencyError",
    "ServerRequestError",
    "create_openai_inference_fn",
    "create_warmup_inference_fn",
    "warmup_until_converged",
]
