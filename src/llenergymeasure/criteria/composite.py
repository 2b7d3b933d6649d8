"""Composite criteria: ``all_of`` and ``any_of``."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict

from llenergymeasure.criteria.base import (
    COST_CLASSES,
    Criterion,
    CriterionConfigError,
    Evaluation,
    Signals,
    format_statistic,
)
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["AllOf", "AnyOf"]


class CompositeParams(BaseModel):
    """Composites take no parameters of their own; their children carry them."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _Composite(Criterion):
    Params = CompositeParams  # type: ignore[assignment]
    is_composite = True
    statistic_label = "passing"
    _combine = staticmethod(np.all)

    def __init__(self, *children: Criterion | str, **params: Any) -> None:
        from llenergymeasure.criteria.registry import make_criterion

        if params:
            raise CriterionConfigError(
                f"criterion {self.name!r} takes no parameters, got {sorted(params)}; "
                "give the parameters to its children"
            )
        if not children:
            raise CriterionConfigError(f"criterion {self.name!r} needs at least one child")
        self.children = tuple(make_criterion(c) for c in children)
        self.needs_time = any(c.needs_time for c in self.children)  # type: ignore[misc]
        self.scale_invariant = all(c.scale_invariant for c in self.children)  # type: ignore[misc]
        self.detects_steady_state = any(  # type: ignore[misc]
            c.detects_steady_state for c in self.children
        )
        self.cost_class = max(  # type: ignore[misc]
            (c.cost_class for c in self.children), key=COST_CLASSES.index
        )
        super().__init__()

    @property
    def signal(self) -> str:
        return self.children[0].signal

    @property
    def signals(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for c in self.children:
            for s in c.signals:
                seen[s] = None
        return tuple(seen)

    @property
    def threshold(self) -> float:
        return float(self._needed())

    @property
    def min_samples(self) -> int:
        """`all_of`: the largest of its children's; `any_of`: the smallest."""
        counts = [c.min_samples for c in self.children]
        return max(counts) if self._needed() == len(self.children) else min(counts)

    @abc.abstractmethod
    def _needed(self) -> int:
        """Number of children that must pass."""

    def get_params(self) -> dict[str, Any]:
        return {}

    @property
    def spec(self) -> str:
        return f"{self.name}({','.join(c.spec for c in self.children)})"

    def clone(self) -> _Composite:
        return type(self)(*(c.clone() for c in self.children))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.children == self.children  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.spec)

    def _reset(self) -> None:
        for c in self.children:
            c.reset()

    def update(self, x: float | Signals, t: float | None = None) -> _Composite:
        """Update every child; a mapping lets each child pick its own signal."""
        for c in self.children:
            c.update(x, t)
        self.n_seen_ += 1
        passing = sum(bool(c.passed_) for c in self.children)
        self.statistic_ = float(passing)
        self.passed_ = passing >= self._needed()
        return self

    def _update(self, x: float, t: float | None) -> None:  # pragma: no cover - update overridden
        self.update(x, t)

    def evaluate(self, x: ArrayLike | Signals, t: ArrayLike | None = None) -> Evaluation:
        """Evaluate every child and combine their verdicts sample by sample."""
        if not (isinstance(x, Mapping) or hasattr(x, "columns")):
            x = np.asarray(x, dtype=np.float64)
        evals = [c.evaluate(x, t) for c in self.children]
        passing = np.sum([e.passed for e in evals], axis=0).astype(np.float64)
        return Evaluation(passing, passing >= self._needed())

    def describe(self) -> str:
        inner = " & " if self.name == "all_of" else " | "
        return inner.join(c.describe() for c in self.children) or format_statistic(
            self.statistic_label, self.statistic_, self.threshold, False
        )


@register_criterion
class AllOf(_Composite):
    r"""Pass when every child passes at the same sample.

    ``all_of(rolling_cv:threshold=0.02,min_duration:seconds=60)`` requires a
    stable latency *and* a 60 s time floor;
    ``all_of(rolling_cv,rolling_cv:signal=temperature_c,threshold=0.01)``
    requires latency and GPU temperature to settle together. The statistic is
    the number of passing children; the threshold is the number of children.

    Parameters
    ----------
    *children : Criterion or str
        Child criteria or their spec strings.

    References
    ----------
    .. [1] BenchmarkDotNet, ``IStoppingCriteria`` composition of warmup and
       workload stopping rules, https://benchmarkdotnet.org.
    """

    name = "all_of"

    def _needed(self) -> int:
        return len(self.children)


@register_criterion
class AnyOf(_Composite):
    r"""Pass when at least one child passes.

    ``any_of(rolling_cv,max_duration:seconds=300)`` stops at convergence or
    after the time budget. The statistic is the number of passing children; the
    threshold is 1.

    Parameters
    ----------
    *children : Criterion or str
        Child criteria or their spec strings.

    References
    ----------
    .. [1] NVIDIA NVBench stopping criteria with a timeout fallback,
       https://github.com/NVIDIA/nvbench.
    """

    name = "any_of"

    def _needed(self) -> int:
        return 1
