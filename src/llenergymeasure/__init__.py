"""llenergymeasure: when has warmup ended, and how do we know?

Stop LLM-inference warmup with a principled rule, record every inference as a
trace, replay saved traces through many stopping rules offline, and make the
tables and figures of a paper that compares them.

The names below are imported on first use (PEP 562), so `import llenergymeasure`
costs almost nothing and `llenergymeasure.make_criterion("rolling_cv")` imports
the criteria layer and that one criterion, not the driver, the trace model or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the static view of the lazy names
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

#: Public name -> module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "Criterion": "llenergymeasure.criteria",
    "Evaluation": "llenergymeasure.criteria",
    "RollingCV": "llenergymeasure.criteria",
    "StopRule": "llenergymeasure.criteria",
    "available_criteria": "llenergymeasure.criteria",
    "make_criterion": "llenergymeasure.criteria",
    "WarmupConfig": "llenergymeasure.config.models",
    "WarmupResult": "llenergymeasure.domain.metrics",
    "create_warmup_inference_fn": "llenergymeasure.core.inference",
    "create_openai_inference_fn": "llenergymeasure.core.openai_client",
    "warmup_until_converged": "llenergymeasure.core.warmup",
}

#: Subpackages reachable as attributes before they are imported.
_SUBPACKAGES = frozenset(
    {"analysis", "cli", "config", "core", "criteria", "domain", "progress", "traces"}
)

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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llenergymeasure")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> Any:
    """Import a public name (or `__version__`) on first access and cache it."""
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:  # `llenergymeasure.core` without importing it first
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'llenergymeasure' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
