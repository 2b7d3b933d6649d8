"""Interquartile range over the median, the stability test of torch ``adaptive_autorange``."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._sorted_window import (
    SortedWindow,
    linear_quantile,
    median_sorted,
    sorted_windows,
)
from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["IQRMedian"]

#: torch keeps timing while ``len(times) <= 3``: at least 4 values are needed.
TORCH_MIN_VALUES = 4


class IQRMedianParams(CriterionParams):
    """Parameters of :class:`IQRMedian`."""

    window: int | None = Field(
        20,
        ge=TORCH_MIN_VALUES,
        description="Number of trailing samples; none uses every sample so far (cumulative, "
        "exactly as torch adaptive_autorange).",
    )
    threshold: float = Field(
        0.1,
        gt=0,
        lt=10,
        description="Pass when IQR / median is below this value (torch adaptive_autorange "
        "default 0.1).",
    )


def relative_iqr(q25: NDArray[np.float64] | float, q75: NDArray[np.float64] | float,
                 med: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """(Q3 - Q1) / median, NaN where the median is not positive."""
    med = np.asarray(med, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.asarray(q75) - np.asarray(q25)) / med
    return np.where(med > 0, out, np.nan)


@register_criterion
class IQRMedian(Criterion):
    r"""Interquartile range over the median of the last ``window`` samples below a threshold.

    .. math::

        r_t = \frac{Q_{0.75}(W_t) - Q_{0.25}(W_t)}{\operatorname{med}(W_t)},
        \qquad W_t = (x_{t-w+1}, \dots, x_t)

    The criterion passes at ``t`` when :math:`r_t <` ``threshold``. The
    quartiles use NumPy's default linear interpolation (``np.percentile(.., 25)``
    and ``75``) and the median ``np.median``, exactly as torch's
    ``Measurement`` computes them. The statistic is NaN until the window is
    full and where the median is not positive (such a window never passes).

    This is the test of ``torch.utils.benchmark.Timer.adaptive_autorange``,
    which keeps timing until ``len(times) > 3 and iqr / median < threshold``
    (default 0.1) over *every* block measured so far; ``window=None``
    reproduces that cumulative form (statistic from the 4th sample on). The
    default here is a rolling window of 20, so that a cold start is forgotten:
    a cumulative IQR never drops while the early slow samples remain among the
    quartiles. Torch's ``min_run_time`` (0.01 s) and ``max_run_time`` (10 s)
    are budgets: combine with ``min_duration`` / ``max_duration``.

    Online cost: O(log w) comparisons per update (sorted list with bisected
    insert and removal, plus an O(w) memmove); offline: every window sorted by
    ``numpy.sort``, O(n w log w), vectorised. Order statistics are exact, so
    both forms agree bit for bit. Scale invariant: scaling the series scales
    every quartile and the median alike.

    Parameters
    ----------
    window : int or None, default 20
        Trailing samples (>= 4); ``None`` for torch's cumulative form.
    threshold : float, default 0.1
        Pass when the relative IQR is below this value.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] PyTorch, ``torch/utils/benchmark/utils/timer.py``
       (``Timer.adaptive_autorange``, threshold=0.1) and ``common.py``
       (``Measurement``: median, ``np.percentile`` 25/75, IQR/median warnings
       at 10% and 25%), https://github.com/pytorch/pytorch.
    .. [2] R. J. Hyndman and Y. Fan, "Sample quantiles in statistical
       packages", The American Statistician 50(4), 1996 (type 7).
    """

    name = "iqr_median"
    Params = IQRMedianParams
    scale_invariant = True
    sweep_parameter = ("threshold", "<")
    statistic_label = "IQR/med"
    statistic_is_percent = True

    def __init__(
        self, window: int | None = 20, threshold: float = 0.1, *, signal: str = "latency_ms"
    ) -> None:
        super().__init__(window=window, threshold=threshold, signal=signal)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return int(self.params.window or TORCH_MIN_VALUES)

    def _reset(self) -> None:
        self._win = SortedWindow(self.params.window)

    def _update(self, x: float, t: float | None) -> None:
        self._win.push(x)
        need = self.params.window or TORCH_MIN_VALUES
        if len(self._win) < need:
            return
        s = self._win.sorted
        med = median_sorted(s)
        if med > 0:
            stat = (linear_quantile(s, 0.75) - linear_quantile(s, 0.25)) / med
        else:
            stat = math.nan
        self.statistic_ = float(stat)
        self.passed_ = bool(stat < self.params.threshold)

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        if p.window is None:
            # Cumulative quantiles do not vectorise; the replay is O(n log n) here.
            return self._replay(x, t)
        n = x.shape[0]
        stat = np.full(n, np.nan)
        w = p.window
        for start, rows in sorted_windows(x, w):
            sl = slice(start + w - 1, start + w - 1 + rows.shape[0])
            stat[sl] = relative_iqr(
                linear_quantile(rows, 0.25), linear_quantile(rows, 0.75), median_sorted(rows)
            )
        with np.errstate(invalid="ignore"):
            passed = stat < p.threshold
        return Evaluation(stat, passed)
