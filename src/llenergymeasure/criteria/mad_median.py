"""Median absolute deviation over the median: a robust coefficient of variation."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._sorted_window import SortedWindow, median_sorted, sorted_windows
from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["MAD_NORMAL_CONSISTENCY", "MADMedian"]

#: 1 / Phi^{-1}(3/4): makes the MAD a consistent estimator of sigma for normal data.
MAD_NORMAL_CONSISTENCY = 1.482602218505602


class MADMedianParams(CriterionParams):
    """Parameters of :class:`MADMedian`."""

    window: int = Field(20, ge=3, description="Number of trailing samples in the window.")
    threshold: float = Field(
        0.05,
        gt=0,
        lt=10,
        description="Pass when the (scaled) MAD / median is below this value; with "
        "normal_consistent=true it estimates sd/mean, so it compares with rolling_cv's 0.05.",
    )
    normal_consistent: bool = Field(
        True,
        description="Multiply the MAD by 1.4826 = 1/Phi^-1(3/4) so that it estimates the "
        "standard deviation of normal noise (statistic comparable with a CV).",
    )


@register_criterion
class MADMedian(Criterion):
    r"""Robust CV: median absolute deviation over the median of the last ``window`` samples.

    .. math::

        m_t = \operatorname{med}(W_t), \qquad
        \mathrm{MAD}_t = \operatorname{med}_{i \in W_t} |x_i - m_t|, \qquad
        r_t = \frac{k \, \mathrm{MAD}_t}{m_t}

    with :math:`k = 1/\Phi^{-1}(3/4) \approx 1.4826` when
    ``normal_consistent`` (the default) and :math:`k = 1` otherwise. The
    criterion passes when :math:`r_t <` ``threshold``.

    Why scaled: for normal noise :math:`k\,\mathrm{MAD}` is a consistent
    estimator of :math:`\sigma` (Rousseeuw & Croux 1993), so :math:`r_t`
    estimates the same quantity as the CV :math:`s/\bar x` of ``rolling_cv``
    and the two share a threshold (0.05 by default). Unlike the CV, one
    outlier in the window moves neither the median nor the MAD much (50%
    breakdown point), so isolated spikes (GC pauses, a recompilation) do not
    keep the warmup going; the price is that a slow drift inside the window is
    seen only once it moves half of the values.

    The statistic is NaN until the window is full and where the median is not
    positive. Online cost O(log w) for the sorted window plus O(w) for the
    deviations; offline O(n w log w), vectorised (sorted windows); both use the
    same exact order statistics and agree bit for bit. Scale invariant.

    Parameters
    ----------
    window : int, default 20
        Trailing samples (>= 3).
    threshold : float, default 0.05
        Pass when the robust CV is below this value.
    normal_consistent : bool, default True
        Scale the MAD by 1.4826.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] F. R. Hampel, "The influence curve and its role in robust
       estimation", JASA 69(346), 1974 (the MAD and its 1.4826 factor).
    .. [2] P. J. Rousseeuw and C. Croux, "Alternatives to the median absolute
       deviation", JASA 88(424), 1993.
    .. [3] V. Stinner, pyperf (``pyperf stats`` reports the MAD; its warmup
       calibration compares MADs of two halves), https://github.com/psf/pyperf.
    """

    name = "mad_median"
    Params = MADMedianParams
    scale_invariant = True
    sweep_parameter = ("threshold", "<")
    statistic_label = "MAD/med"
    statistic_is_percent = True

    def __init__(
        self,
        window: int = 20,
        threshold: float = 0.05,
        normal_consistent: bool = True,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            window=window, threshold=threshold, normal_consistent=normal_consistent, signal=signal
        )

    @property
    def _k(self) -> float:
        return MAD_NORMAL_CONSISTENCY if self.params.normal_consistent else 1.0

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return int(self.params.window)

    def _reset(self) -> None:
        self._win = SortedWindow(self.params.window)

    def _update(self, x: float, t: float | None) -> None:
        self._win.push(x)
        if len(self._win) < self.params.window:
            return
        s = np.asarray(self._win.sorted)
        med = float(median_sorted(s))
        if med > 0:
            dev = np.sort(np.abs(s - med))
            stat = self._k * float(median_sorted(dev)) / med
        else:
            stat = math.nan
        self.statistic_ = stat
        self.passed_ = bool(stat < self.params.threshold)

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        n = x.shape[0]
        stat = np.full(n, np.nan)
        w = p.window
        for start, rows in sorted_windows(x, w):
            med = median_sorted(rows)
            dev = np.sort(np.abs(rows - med[:, None]), axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = self._k * median_sorted(dev) / med
            stat[start + w - 1 : start + w - 1 + rows.shape[0]] = np.where(med > 0, r, np.nan)
        with np.errstate(invalid="ignore"):
            passed = stat < p.threshold
        return Evaluation(stat, passed)
