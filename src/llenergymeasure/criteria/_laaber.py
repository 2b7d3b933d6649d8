"""Cumulative-history machinery shared by the three Laaber et al. (FSE 2020) criteria.

Laaber et al. stop a JMH warmup when a statistic of *all measurements so far*
has stopped changing over the last ``h`` iterations. Here one sample is one
iteration. The pieces:

* :func:`pool`: the measurements so far, or a seeded random subsample of
  ``size`` of them (the original subsamples 1,000 or 10,000 values to bound
  the cost). The subsample at step ``i`` is drawn from
  ``numpy.random.default_rng([seed, i])``, so it depends only on the prefix
  and the step, and the online and offline forms draw the same one.
* :func:`filter_outliers`: the original's outlier filter, keep
  ``median / factor <= x <= factor * median`` (factor 10).
* :class:`History` / :func:`max_abs_delta` / :func:`trailing_min`: the
  variability of the last ``h`` statistic values, online and offline.
* :class:`CumulativeCriterion`: a base class that keeps the series, computes a
  per-step statistic with one shared function (so both forms do identical
  arithmetic) and turns it into a variability and a verdict.
* :class:`DeltaCriterion`: the CV and RCIW form of it, pass when the largest
  change of the statistic over the last ``h`` values is below ``threshold``;
  :func:`delta_history_field` is their shared ``history`` parameter.

References
----------
.. [1] C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
   reconfiguring software microbenchmarks: reducing execution time without
   sacrificing result quality", ESEC/FSE 2020, and the JMH fork
   https://github.com/sealuzh/jmh (``-bm re``, ``-rm cov|ci|kld``).
"""

from __future__ import annotations

import abc
import math
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria.base import Criterion, Evaluation

__all__ = [
    "OUTLIER_FACTOR",
    "CumulativeCriterion",
    "DeltaCriterion",
    "History",
    "delta_history_field",
    "filter_outliers",
    "max_abs_delta",
    "pool",
    "trailing_min",
]

#: Keep values within [median / 10, 10 * median] (sealuzh/jmh OUTLIER_FACTOR).
OUTLIER_FACTOR = 10.0


def delta_history_field() -> Any:
    """The ``history`` field of the CV and RCIW criteria: h = 5 iterations, at least 2."""
    return Field(
        5, ge=2, description="Iterations in the history h (Laaber et al.: 5 for iterations)."
    )


def pool(
    prefix: NDArray[np.float64], step: int, size: int | None, seed: int
) -> NDArray[np.float64]:
    """The measurements so far, or a seeded subsample of ``size`` of them (in series order)."""
    if size is None or prefix.shape[0] <= size:
        return prefix
    rng = np.random.default_rng([seed, step])
    idx = np.sort(rng.choice(prefix.shape[0], size=size, replace=False))
    return prefix[idx]


#: Relative slack on the outlier bounds (a value on a bound is kept in any unit).
_BOUND_SLACK = 1e-12


def filter_outliers(values: NDArray[np.float64], factor: float) -> NDArray[np.float64]:
    """Keep ``median / factor <= v <= factor * median`` (all values if the median is <= 0).

    The bounds are compared as ratios ``v / median`` with a relative slack of
    1e-12, so a value lying exactly on a bound is kept whatever the unit of the
    series (``10 * median`` computed in ms and in s can round to either side).
    """
    med = float(np.median(values))
    if not med > 0:
        return values
    ratio = values / med
    return values[(ratio >= (1.0 - _BOUND_SLACK) / factor)
                  & (ratio <= factor * (1.0 + _BOUND_SLACK))]


def max_abs_delta(s: NDArray[np.float64], h: int) -> NDArray[np.float64]:
    """``v_i = max_{j=1..h-1} |s_i - s_{i-j}|``; NaN until ``h`` values or where one is NaN."""
    n = s.shape[0]
    out = np.full(n, np.nan)
    if n < h:
        return out
    acc = np.zeros(n - h + 1)
    for j in range(1, h):
        acc = np.maximum(acc, np.abs(s[h - 1 :] - s[h - 1 - j : n - j]))
    out[h - 1 :] = acc  # np.maximum propagates NaN
    return out


def trailing_min(s: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Minimum of the last ``k`` values; NaN until ``k`` values or where one is NaN."""
    n = s.shape[0]
    out = np.full(n, np.nan)
    if n < k:
        return out
    acc = s[k - 1 :].copy()
    for j in range(1, k):
        acc = np.minimum(acc, s[k - 1 - j : n - j])
    out[k - 1 :] = acc
    return out


class History:
    """Online twin of :func:`max_abs_delta` and :func:`trailing_min`: the last ``h`` values."""

    __slots__ = ("_buf", "h")

    def __init__(self, h: int) -> None:
        self.h = h
        self._buf: deque[float] = deque(maxlen=h)

    def push(self, value: float) -> None:
        """Record the newest statistic value."""
        self._buf.append(value)

    def max_abs_delta(self) -> float:
        """``max_j |s_i - s_{i-j}|`` over the history, NaN until full or with a NaN."""
        if len(self._buf) < self.h:
            return math.nan
        arr = np.asarray(self._buf)
        last = arr[-1]
        acc = 0.0
        for j in range(1, self.h):
            acc = float(np.maximum(acc, abs(last - arr[-1 - j])))
        return acc

    def min(self) -> float:
        """Minimum of the history, NaN until full or with a NaN."""
        if len(self._buf) < self.h:
            return math.nan
        arr = np.asarray(self._buf)
        acc = float(arr[-1])
        for j in range(1, self.h):
            acc = float(np.minimum(acc, arr[-1 - j]))
        return acc


class CumulativeCriterion(Criterion):
    """Base of the Laaber criteria: a cumulative statistic and its recent variability.

    Subclasses implement :meth:`_step_statistic` (a pure function of the
    prefix ``x[: i + 1]`` and the step ``i``), :meth:`_variability` /
    :meth:`_variability_online` and :meth:`_passes`. The prefix is kept in a
    growing buffer (O(n) memory, as the original keeps every measurement).
    """

    #: Number of statistic values in the history (``h`` of the paper).
    @property
    @abc.abstractmethod
    def history(self) -> int:
        """Length of the statistic history."""

    @property
    def min_samples(self) -> int:
        """The variability is NaN until the history holds ``history`` statistics."""
        return self.history

    @abc.abstractmethod
    def _step_statistic(self, prefix: NDArray[np.float64], step: int) -> float:
        """The cumulative statistic after sample ``step`` (prefix = ``x[: step + 1]``)."""

    @abc.abstractmethod
    def _variability(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Offline variability of the statistic sequence."""

    @abc.abstractmethod
    def _variability_online(self, hist: History) -> float:
        """Online variability from the history."""

    @abc.abstractmethod
    def _passes(self, v: float | NDArray[np.float64]) -> bool | NDArray[np.bool_]:
        """Verdict from the variability."""

    def _reset(self) -> None:
        self._buf = np.empty(64)
        self._hist = History(self.history)

    def _append(self, x: float, step: int) -> NDArray[np.float64]:
        """Append ``x`` to the kept series (doubling the buffer); return the prefix."""
        if step >= self._buf.shape[0]:
            grown = np.empty(2 * self._buf.shape[0])
            grown[:step] = self._buf
            self._buf = grown
        self._buf[step] = x
        return self._buf[: step + 1]

    def _push_statistic(self, x: float, step: int) -> float:
        """Append ``x`` to the kept series; return the statistic of the prefix.

        Subclasses with an O(1) running form or a state carried from one step
        to the next override this (and :meth:`_statistics` with its twin).
        """
        return self._step_statistic(self._append(x, step), step)

    def _update(self, x: float, t: float | None) -> None:
        self._hist.push(self._push_statistic(x, self.n_seen_))
        v = self._variability_online(self._hist)
        self.statistic_ = v
        self.passed_ = bool(self._passes(v))

    def _statistics(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-step statistics over a whole series (override to vectorise)."""
        return np.array([self._step_statistic(x[: i + 1], i) for i in range(x.shape[0])])

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        v = self._variability(self._statistics(x))
        with np.errstate(invalid="ignore"):
            passed = np.asarray(self._passes(v), dtype=bool)
        return Evaluation(v, passed)


class DeltaCriterion(CumulativeCriterion):
    r"""A cumulative statistic that has stopped moving: :math:`V_i < \text{threshold}`.

    :math:`V_i = \max_{j=1..h-1} |s_i - s_{i-j}|` (:func:`max_abs_delta`,
    :meth:`History.max_abs_delta` online) with :math:`h` = ``params.history``;
    the form of Laaber et al.'s CV and RCIW criteria. Subclasses implement
    :meth:`_step_statistic` (and may vectorise :meth:`_statistics`).
    """

    @property
    def history(self) -> int:
        return int(self.params.history)

    def _variability(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        return max_abs_delta(s, self.history)

    def _variability_online(self, hist: History) -> float:
        return hist.max_abs_delta()

    def _passes(self, v: float | NDArray[np.float64]) -> bool | NDArray[np.bool_]:
        return v < self.params.threshold
