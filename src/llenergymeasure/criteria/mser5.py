"""MSER-5: White's marginal standard error rule on batch means of 5."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from llenergymeasure.criteria._schedule import CheckResult, ScheduledTruncation
from llenergymeasure.criteria.base import CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["MSER5", "batch_means", "mser_curve"]


def batch_means(x: ArrayLike, m: int) -> NDArray[np.float64]:
    """Means of consecutive batches of ``m`` values; an incomplete last batch is dropped.

    The values of a batch are added left to right, so an online accumulator
    that adds them in arrival order gets the same floats.
    """
    arr = np.asarray(x, dtype=np.float64)
    b = arr.shape[0] // m
    blocks = arr[: b * m].reshape(b, m)
    total = blocks[:, 0].copy()
    for j in range(1, m):
        total += blocks[:, j]
    return total / m


def mser_curve(y: ArrayLike) -> NDArray[np.float64]:
    r"""The MSER statistic for every cut of a series (of batch means) in O(b).

    .. math::

        \mathrm{MSE}(k) = \frac{1}{(b - k)^2} \sum_{i=k}^{b-1} (Y_i - \bar Y_{k:b})^2,
        \qquad k = 0, \dots, b - 3,

    (at least three values stay after the cut, as in pyMSER). Suffix sums are
    taken of :math:`Y - Y_{b-1}`, the last value, which is close to the
    steady-state level, so a large mean loses no precision; the sum of squares
    is :math:`S_2 - S_1^2/(b - k)`, clipped at 0.

    Returns
    -------
    ndarray, shape (max(b - 2, 0),)
    """
    arr = np.asarray(y, dtype=np.float64)
    b = arr.shape[0]
    if b < 3:
        return np.zeros(0)
    d = arr - arr[-1]
    s1 = np.cumsum(d[::-1])[::-1][: b - 2]
    s2 = np.cumsum((d * d)[::-1])[::-1][: b - 2]
    m = np.arange(b, 2, -1, dtype=np.float64)
    ss = np.maximum(s2 - s1 * s1 / m, 0.0)
    return ss / (m * m)


class MSER5Params(CriterionParams):
    """Parameters of :class:`MSER5`."""

    batch_size: int = Field(5, ge=1, le=100, description="Batch size m (5 for MSER-5, 1 for MSER).")
    max_fraction: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Pass when the optimal cut discards at most this fraction of the batches "
        "(White's rule: the first half).",
    )
    min_batches: int = Field(
        10, ge=3, description="First analysis once this many complete batches exist."
    )


@register_criterion
class MSER5(ScheduledTruncation):
    r"""MSER-m truncation (MSER-5 by default) with White's first-half rule.

    The samples seen so far are cut into :math:`b = \lfloor n/m \rfloor` batch
    means :math:`Y_1, \dots, Y_b` (:func:`batch_means`). The optimal cut is the
    first minimiser of the marginal standard error over the whole admissible
    range (:func:`mser_curve`),

    .. math::

        k^* = \operatorname*{arg\,min}_{0 \le k \le b - 3} \mathrm{MSE}(k),
        \qquad t_0 = m\,k^*,

    and the statistic is the discarded fraction :math:`k^*/b`. The criterion
    passes when :math:`k^* \le \text{max\_fraction} \cdot b`: White's rule that a
    minimum in the second half means the run is too short (the minimum is then
    an artefact of the few batches left). ``truncation`` is :math:`m k^*`
    whenever it is defined (at least ``min_batches`` batches), also when the
    criterion does not pass.

    Differences from pyMSER (``calculate_MSEm`` / ``MSERm_index``): pyMSER uses
    float32, searches the same range but does not restrict the cut to the
    first half (it warns at 75 %), and replaces values below 1e-9 by the maximum
    before the argmin. On series with a clear minimum in the first half and no
    tiny MSE values the cuts agree.

    Online cost: the analysis runs when a batch completes (every ``m`` samples)
    and is O(n) (batch means, then cumulative sums), i.e. O(n/m) amortised per
    sample.

    Parameters
    ----------
    batch_size : int, default 5
        Batch size m.
    max_fraction : float, default 0.5
        Largest admissible discarded fraction.
    min_batches : int, default 10
        Batches needed before the first analysis.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] K. P. White Jr., "An effective truncation heuristic for bias
       reduction in simulation output", Simulation 69(6), 1997.
    .. [2] K. P. White Jr., M. J. Cobb and S. C. Spratt, "A comparison of five
       steady-state truncation heuristics for simulation", WSC 2000 (MSER-5).
    .. [3] K. Hoad, S. Robinson and R. Davies, "Automating warm-up length
       estimation", JORS 61(9), 2010.
    .. [4] F. C. de Oliveira et al., "pyMSER: an open-source library for
       automatic equilibration detection in molecular simulations", JCTC 20, 2024.
    """

    name = "mser5"
    Params = MSER5Params
    scale_invariant = True
    cost_class = "moderate"
    statistic_label = "cut_frac"
    statistic_is_percent = True

    @property
    def threshold(self) -> float:
        return float(self.params.max_fraction)

    def _schedule(self) -> tuple[int, int, float]:
        m = self.params.batch_size
        return m * self.params.min_batches, m, 1.0

    def _check(self, x: NDArray[np.float64]) -> CheckResult:
        p = self.params
        y = batch_means(x, p.batch_size)
        b = y.shape[0]
        k = int(np.argmin(mser_curve(y)))
        return CheckResult(k / b, k <= math.floor(p.max_fraction * b), p.batch_size * k)
