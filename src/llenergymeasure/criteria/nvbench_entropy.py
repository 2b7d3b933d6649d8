"""NVBench's ``entropy`` stopping criterion: the entropy of the samples has stopped growing."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["NVBenchEntropy", "entropy_regression"]

_CHUNK_ELEMENTS = 1 << 22


class NVBenchEntropyParams(CriterionParams):
    """Parameters of :class:`NVBenchEntropy`."""

    max_angle: float = Field(
        0.048, gt=0, lt=90, description="Pass when the angle (degrees) of the fitted slope of "
        "entropy against sample index is at most this (NVBench --max-angle 0.048)."
    )
    min_r2: float = Field(
        0.36, ge=0, le=1, description="... and the fit's R^2 is at least this (NVBench "
        "--min-r2 0.36)."
    )
    window: int = Field(
        299, ge=2, description="Entropy values in the regression window (NVBench's ring buffer "
        "of 299)."
    )
    min_samples: int = Field(
        10, ge=0, description="Pass only with more than this many samples (NVBench "
        "--min-samples 10)."
    )
    round_decimals: int | None = Field(
        None, ge=0, le=12, description="Round samples to this many decimals before counting "
        "(none: exact values, as NVBench; tritonbench rounds to 3)."
    )


def entropy_regression(
    y: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slope angle (degrees) and R^2 of the least-squares line through each row of ``y``.

    The abscissa is 0, 1, ..., m-1; two-pass sums as NVBench's
    ``compute_linear_regression`` and ``compute_r2``. R^2 is 1 for a constant
    row and clipped to [0, 1]. Columns are summed left to right, so the result
    of a row does not depend on the other rows.
    """
    m = y.shape[1]
    xd = np.arange(m, dtype=np.float64) - (m - 1) / 2.0

    def colsum(a: NDArray[np.float64]) -> NDArray[np.float64]:
        # A running sum is defined by its recurrence, so its last column is the
        # left-to-right sum of each row whatever the number of rows (a plain
        # reduction may pair terms differently for different shapes).
        return np.cumsum(a, axis=1)[:, -1]

    mean_y = colsum(y) / m
    dy = y - mean_y[:, None]
    slope = colsum(xd * dy) / float(np.sum(xd * xd))
    intercept = mean_y - slope * ((m - 1) / 2.0)
    res = y - (slope[:, None] * np.arange(m, dtype=np.float64) + intercept[:, None])
    ss_tot = colsum(dy * dy)
    ss_res = colsum(res * res)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot == 0.0, 1.0, np.clip(1.0 - ss_res / ss_tot, 0.0, 1.0))
    angle = np.arctan2(slope, 1.0) * 180.0 / math.pi
    return angle, r2


@register_criterion
class NVBenchEntropy(Criterion):
    r"""NVBench ``entropy``: the Shannon entropy of the samples has levelled off.

    With :math:`c_v` the number of samples equal to value :math:`v` among the
    first :math:`n`, the entropy of the empirical distribution is

    .. math::

        H_n = -\sum_v \frac{c_v}{n}\log_2\frac{c_v}{n}
            = \log_2 n - \frac{1}{n}\sum_v c_v \log_2 c_v ,

    updated in O(1) through :math:`S = \sum_v c_v \log_2 c_v`. The last
    ``window`` (299) entropies are regressed on their index
    :math:`0,\dots,m-1`; with slope :math:`b` and coefficient of determination
    :math:`R^2`, the criterion passes when

    .. math::

        n > \text{min\_samples}, \quad n \text{ even}, \quad m \ge 2, \quad
        \arctan(b)\cdot\tfrac{180}{\pi} \le \text{max\_angle}, \quad
        R^2 \ge \text{min\_r2}.

    The statistic is the angle in degrees (computed after every sample; NVBench
    checks only on even counts). As in NVBench the angle test is signed: a
    falling entropy always satisfies it.

    What it measures: with exactly repeated values (a coarse timer, or
    ``round_decimals``), :math:`H_n` stops growing once new samples fall on
    values already seen, i.e. once the distribution is covered. With
    continuous values every sample is new and :math:`H_n = \log_2 n`, whose
    slope :math:`1/(n \ln 2)` falls below :math:`\tan 0.048^\circ` at
    :math:`n \approx 1722` whatever the data: then the criterion is a disguised
    sample count. It is cumulative, so a warmup transient stays in the
    histogram; a drifting level keeps creating new values and delays the stop
    (good), but a false plateau whose values repeat can pass. Set
    ``round_decimals`` to the timer resolution in the signal's units
    (tritonbench uses 3 decimals of milliseconds).

    Online cost: O(1) for the value count (a dict) plus O(window) for the
    regression; offline: counts by sorting, entropies by ``cumsum`` (the same
    additions as the online update) and the regressions vectorised over
    sliding windows. Both forms agree bit for bit. Scale invariant for exact
    values (scaling maps equal values to equal values); with
    ``round_decimals`` the binning is in absolute units and is not.

    Parameters
    ----------
    max_angle : float, default 0.048
        Largest slope angle in degrees (NVBench ``--max-angle``).
    min_r2 : float, default 0.36
        Smallest R^2 of the fit (NVBench ``--min-r2``).
    window : int, default 299
        Entropy values in the regression.
    min_samples : int, default 10
        Pass only with more samples than this (NVBench ``--min-samples``).
    round_decimals : int or None, default None
        Round samples before counting (None: exact values).
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] NVIDIA NVBench, ``nvbench/detail/entropy_criterion.cxx`` (defaults
       max-angle 0.048, min-r2 0.36; ring buffer of 299; even-sample checks),
       ``statistics.cuh`` (regression, R^2, ``slope2deg``),
       https://github.com/NVIDIA/nvbench.
    .. [2] meta-pytorch tritonbench, ``_do_bench_entropy`` (the same criterion
       as a warmup stop, values rounded to 3 decimals),
       https://github.com/meta-pytorch/tritonbench.
    .. [3] C. E. Shannon, "A mathematical theory of communication", Bell
       System Technical Journal 27, 1948.
    """

    name = "nvbench_entropy"
    Params = NVBenchEntropyParams
    scale_invariant = True
    cost_class = "heavy"
    statistic_label = "angle_deg"

    def __init__(
        self,
        max_angle: float = 0.048,
        min_r2: float = 0.36,
        window: int = 299,
        min_samples: int = 10,
        round_decimals: int | None = None,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            max_angle=max_angle, min_r2=min_r2, window=window, min_samples=min_samples,
            round_decimals=round_decimals, signal=signal,
        )

    @property
    def threshold(self) -> float:
        return float(self.params.max_angle)

    def _key(self, x: float) -> float:
        d = self.params.round_decimals
        if d is None:
            return x
        return float(np.round(np.array([x]), d)[0])

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        first = max(self.params.min_samples, 1) + 1  # n > min_samples, n >= 2 ...
        return first + first % 2  # ... and n even

    def _reset(self) -> None:
        self._counts: dict[float, int] = {}
        self._s = 0.0
        self._h: deque[float] = deque(maxlen=self.params.window)

    def _update(self, x: float, t: float | None) -> None:
        p = self.params
        n = self.n_seen_ + 1
        key = self._key(x)
        old = self._counts.get(key, 0)
        new = old + 1
        self._counts[key] = new
        self._s = (self._s - _clog2c(old)) + _clog2c(new)
        h = math.log2(n) - self._s / n
        self._h.append(0.0 if not h > 0.0 else h)
        if len(self._h) < 2:
            return
        angle, r2 = entropy_regression(np.asarray(self._h)[None, :])
        self.statistic_ = float(angle[0])
        self.passed_ = bool(
            n > p.min_samples and n % 2 == 0 and angle[0] <= p.max_angle and r2[0] >= p.min_r2
        )

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        n_all = x.shape[0]
        if n_all == 0:
            return Evaluation(np.empty(0), np.zeros(0, dtype=bool))
        keys = x if p.round_decimals is None else np.round(x, p.round_decimals)
        # Count of each sample's value among the samples up to and including it.
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        starts = np.r_[True, sk[1:] != sk[:-1]]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(n_all), 0))
        new = np.empty(n_all, dtype=np.int64)
        new[order] = np.arange(n_all) - group_start + 1
        table = np.array([_clog2c(c) for c in range(int(new.max()) + 1)])
        # S after each sample, with the online form's two additions per step.
        steps = np.empty(2 * n_all)
        steps[0::2] = -table[new - 1]
        steps[1::2] = table[new]
        s = np.cumsum(steps)[1::2]
        log2n = np.array([math.log2(k) for k in range(1, n_all + 1)])
        h = log2n - s / np.arange(1, n_all + 1, dtype=np.float64)
        h = np.where(h > 0.0, h, 0.0)
        w = p.window
        angle = np.full(n_all, np.nan)
        r2 = np.full(n_all, np.nan)
        for i in range(1, min(w, n_all)):  # growing windows at the start
            a, r = entropy_regression(h[None, : i + 1])
            angle[i], r2[i] = a[0], r[0]
        if n_all >= w:
            view = sliding_window_view(h, w)
            rows = max(1, _CHUNK_ELEMENTS // w)
            for start in range(0, view.shape[0], rows):
                a, r = entropy_regression(np.ascontiguousarray(view[start : start + rows]))
                angle[start + w - 1 : start + w - 1 + a.shape[0]] = a
                r2[start + w - 1 : start + w - 1 + a.shape[0]] = r
        n = np.arange(1, n_all + 1)
        with np.errstate(invalid="ignore"):
            passed = (
                (n > p.min_samples) & (n % 2 == 0) & (angle <= p.max_angle) & (r2 >= p.min_r2)
            )
        return Evaluation(angle, passed)


def _clog2c(c: int) -> float:
    """``c * log2(c)``, 0 for ``c = 0``."""
    return c * math.log2(c) if c > 0 else 0.0
