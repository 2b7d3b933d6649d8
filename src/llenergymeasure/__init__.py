"""llenergymeasure: when has warmup ended, and how do we know?

Stop LLM-inference warmup with a principled rule, record every inference as a
trace, replay saved traces through many stopping rules offline, and make the
tables and figures of a paper that compares them.
"""

from importlib.metadata import PackageNotFoundError, version

from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.core.inference import create_warmup_inference_fn
from llenergymeasure.core.openai_client import create_openai_inference_fn
from llenergymeasure.core.warmup import warmup_until_converged
from llenergymeasure.criteria import (
    Criterion,
    Evaluation,
    RollingCV,
    StopRule,
    available_criteria,
    make_criterion,
)
from llenergymeasure.domain.metrics import WarmupResult

try:
    __version__ = version("llenergymeasure")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Criterion",
    "Evaluation",
    "RollingCV",
    "StopRule",
    "WarmupConfig",
    "WarmupResult",
    "__version__",
    "available_criteria",
    "create_openai_inference_fn",
    "create_warmup_inference_fn",
    "make_criterion",
    "warmup_until_converged",
]
