r"""Mean and standard deviation of every prefix, online and offline, with identical arithmetic.

Criteria that watch a statistic of *all samples so far* (Laaber et al.'s
cumulative CV, NVBench's ``stdrel``) need the mean and the sample standard
deviation of ``x[: n]`` after every sample. Both forms here use running sums
shifted by the first sample :math:`c = x_1`,

.. math::

    S_1 = \sum_{i \le n} (x_i - c), \qquad S_2 = \sum_{i \le n} (x_i - c)^2, \qquad
    \bar x_n = c + S_1 / n, \qquad
    s_n = \sqrt{\max(S_2 - S_1^2 / n,\ 0) / (n - 1)},

which keeps the precision of values with a large mean and a small spread (the
shifted-data formula of Chan, Golub and LeVeque) at O(1) per sample. The
offline form accumulates with ``numpy.cumsum``, the same additions in the
same order as the online one, so the two agree bit for bit.

References
----------
.. [1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing
   the sample variance: analysis and recommendations", The American
   Statistician 37(3), 1983.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["RunningMeanSD", "cumulative_mean_sd"]


def cumulative_mean_sd(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and sample sd of ``x[: i + 1]`` for every ``i`` (shifted running sums).

    The sd of the first prefix (one value) is NaN. Empty input gives two empty arrays.
    """
    n_all = x.shape[0]
    if n_all == 0:
        return np.empty(0), np.empty(0)
    d = x - x[0]
    s1 = np.cumsum(d)
    s2 = np.cumsum(d * d)
    n = np.arange(1, n_all + 1, dtype=np.float64)
    mean = x[0] + s1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        m2 = np.maximum(s2 - s1 * s1 / n, 0.0)
        sd = np.sqrt(m2 / (n - 1))
    return mean, sd


class RunningMeanSD:
    """Online twin of `cumulative_mean_sd`: push samples, read the prefix's moments."""

    __slots__ = ("_ref", "_s1", "_s2", "n")

    def __init__(self) -> None:
        self.n = 0
        self._ref = 0.0
        self._s1 = 0.0
        self._s2 = 0.0

    def push(self, x: float) -> None:
        """Add the next sample (the first one becomes the shift)."""
        self.n += 1
        if self.n == 1:
            self._ref = x
        d = x - self._ref
        self._s1 += d
        self._s2 += d * d

    def mean(self) -> float:
        """Mean of the samples so far (at least one)."""
        return self._ref + self._s1 / self.n

    def sd(self) -> float:
        """Sample standard deviation of the samples so far (at least two)."""
        n = self.n
        m2 = max(self._s2 - self._s1 * self._s1 / n, 0.0)
        return math.sqrt(m2 / (n - 1))
