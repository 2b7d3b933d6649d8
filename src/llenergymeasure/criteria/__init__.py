"""Pluggable convergence criteria, online and offline.

Every criterion is a `Criterion`: ``update(x)`` consumes one sample,
``evaluate(array)`` evaluates a whole series, and the two agree exactly. A
`StopRule` turns verdicts into a stop. Criteria are built by name with
`make_criterion`; `available_criteria` lists them. Any registered
criterion class is also reachable as an attribute of this package by its class
name (``llenergymeasure.criteria.RollingCV``), importing only its module.
"""

from __future__ import annotations

from typing import Any

from llenergymeasure.criteria.base import (
    Criterion,
    CriterionConfigError,
    CriterionParams,
    Evaluation,
    InvalidSampleError,
    Truncation,
)
from llenergymeasure.criteria.registry import (
    CriterionRegistrationError,
    available_criteria,
    criterion_class,
    criterion_info,
    make_criterion,
    register_criterion,
)
from llenergymeasure.criteria.rolling_cv import RollingCV
from llenergymeasure.criteria.stopping import StopDecision, StopRule, StopTracker

__all__ = [
    "Criterion",
    "CriterionConfigError",
    "CriterionParams",
    "CriterionRegistrationError",
    "Evaluation",
    "InvalidSampleError",
    "RollingCV",
    "StopDecision",
    "StopRule",
    "StopTracker",
    "Truncation",
    "available_criteria",
    "criterion_class",
    "criterion_info",
    "make_criterion",
    "register_criterion",
]


def __getattr__(name: str) -> Any:
    """Expose every criterion class by its class name, importing only its module."""
    if name.startswith("__"):
        raise AttributeError(f"module 'llenergymeasure.criteria' has no attribute {name!r}")
    from llenergymeasure.criteria import registry

    for cname, (_, cls_name) in registry.BUILTIN_CRITERIA.items():
        if cls_name == name:
            return registry.criterion_class(cname)
    for cls in registry.load_all():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module 'llenergymeasure.criteria' has no attribute {name!r}")
