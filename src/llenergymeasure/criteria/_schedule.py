"""Check schedules for truncation criteria that re-analyse the prefix seen so far.

A truncation method (MSER, maximum ESS, minimum SSE, PELT) looks at the whole
prefix ``x[:n]`` and returns a cut. Re-running it after every sample costs
O(n) to O(n log n) per sample, so these criteria re-evaluate only at *check
points* and hold the last verdict in between. The schedule is

.. math::

    n_1 = \\text{min\\_samples}, \\qquad
    n_{j+1} = \\max\\bigl(n_j + \\text{every},\\ \\lceil \\text{growth} \\cdot n_j \\rceil\\bigr)

(a fixed stride when ``growth = 1``, geometric otherwise, which makes the total
cost of all checks O(n log n) times the cost of one check divided by n). Both
the online form (:meth:`ScheduledTruncation._update`) and the offline form
(:meth:`ScheduledTruncation._evaluate`) call the same deterministic
:meth:`ScheduledTruncation._check` on a fresh copy of the same prefix at the
same check points, so they agree exactly.

This module is private: it holds no criterion of its own.
"""

from __future__ import annotations

import abc
import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation

__all__ = ["CheckResult", "ScheduleParams", "ScheduledTruncation", "check_points"]


class ScheduleParams(CriterionParams):
    """Check-schedule parameters shared by the scheduled truncation criteria."""

    min_samples: int = Field(
        20, ge=3, description="First check after this many samples (nothing is defined before)."
    )
    every: int = Field(
        10, ge=1, description="Re-analyse the prefix at least every this many samples."
    )
    growth: float = Field(
        1.0,
        ge=1.0,
        le=4.0,
        description="Geometric factor of the check schedule: the next check is at "
        "max(n + every, ceil(growth * n)); 1 gives a fixed stride.",
    )


class CheckResult(NamedTuple):
    """Verdict of one analysis of a prefix."""

    statistic: float
    passed: bool
    truncation: int


def next_check(n: int, every: int, growth: float) -> int:
    """The check point after ``n``."""
    return max(n + every, math.ceil(growth * n))


def check_points(n: int, min_samples: int, every: int, growth: float) -> NDArray[np.int64]:
    """Every check point (a prefix length) ``<= n``, increasing."""
    out = []
    k = min_samples
    while k <= n:
        out.append(k)
        k = next_check(k, every, growth)
    return np.asarray(out, dtype=np.int64)


class ScheduledTruncation(Criterion):
    """Base of truncation criteria that re-analyse the prefix at check points.

    Subclasses implement :meth:`_check` (a pure function of the prefix) and
    :meth:`_schedule` (``(min_samples, every, growth)``). Before the first
    check the statistic is NaN, ``passed`` is False and the truncation -1.
    """

    yields_truncation = True

    @property
    def min_samples(self) -> int:
        """The first check point: nothing passes before it."""
        return self._schedule()[0]

    def _schedule(self) -> tuple[int, int, float]:
        p = self.params
        return int(p.min_samples), int(p.every), float(p.growth)  # type: ignore[attr-defined]

    @abc.abstractmethod
    def _check(self, x: NDArray[np.float64]) -> CheckResult:
        """Analyse the prefix ``x`` (a fresh array) and return the verdict."""

    # ------------------------------------------------------------------ online
    def _reset(self) -> None:
        self._buf = np.empty(64)
        self._next = self._schedule()[0]

    def _update(self, x: float, t: float | None) -> None:
        n = self.n_seen_
        if n == self._buf.shape[0]:
            grown = np.empty(2 * n)
            grown[:n] = self._buf
            self._buf = grown
        self._buf[n] = x
        if n + 1 == self._next:
            res = self._check(self._buf[: n + 1].copy())
            self.statistic_ = float(res.statistic)
            self.passed_ = bool(res.passed)
            self.truncation_ = int(res.truncation)
            _, every, growth = self._schedule()
            self._next = next_check(n + 1, every, growth)

    # ----------------------------------------------------------------- offline
    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        n = x.shape[0]
        stat = np.full(n, np.nan)
        passed = np.zeros(n, dtype=bool)
        trunc = np.full(n, -1, dtype=np.int64)
        points = check_points(n, *self._schedule())
        for j, k in enumerate(points):
            res = self._check(x[:k].copy())
            end = points[j + 1] - 1 if j + 1 < len(points) else n
            stat[k - 1 : end] = res.statistic
            passed[k - 1 : end] = res.passed
            trunc[k - 1 : end] = res.truncation
        return Evaluation(stat, passed, trunc)
