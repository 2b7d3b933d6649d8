"""OLS trend of the trailing window: no significant slope, or a small relative slope."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy import stats

from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["RollingTrendSums", "Trend", "rolling_trend_sums"]


def rolling_trend_sums(
    x: NDArray[np.float64], w: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Shifted sums of every trailing window of ``w`` samples, offline.

    The blocked, shifted decomposition of :mod:`llenergymeasure.criteria._rolling`
    extended with a third sum. For the window ending at position ``j`` of block
    ``k`` (block start ``B = k w``, reference ``c_k = x[B]``), with
    ``d = x - c_k`` and ``r = g - B`` the index relative to the block start:

    ``T1 = sum d``, ``T2 = sum d^2``, ``T3 = sum r d`` and ``rbar = j - (w-1)/2``.

    Returns
    -------
    c, t1, t2, t3 : ndarray, shape (n,)
        Reference value and the three sums; NaN for ``t < w - 1``.
    """
    n = x.shape[0]
    out = [np.full(n, np.nan) for _ in range(4)]
    if n < w:
        return out[0], out[1], out[2], out[3]
    nb = -(-n // w)
    padded = np.zeros(nb * w)
    padded[:n] = x
    blocks = padded.reshape(nb, w)
    ref = blocks[:, :1]
    j = np.arange(w, dtype=np.float64)
    d_own = blocks - ref
    p1 = np.cumsum(d_own, axis=1)
    p2 = np.cumsum(d_own * d_own, axis=1)
    p3 = np.cumsum(j * d_own, axis=1)
    s1 = np.zeros((nb, w))
    s2 = np.zeros((nb, w))
    s3 = np.zeros((nb, w))
    if nb > 1:
        d_prev = blocks[:-1] - ref[1:]
        rev1 = np.cumsum(d_prev[:, ::-1], axis=1)[:, ::-1]
        rev2 = np.cumsum((d_prev * d_prev)[:, ::-1], axis=1)[:, ::-1]
        rev3 = np.cumsum(((j - w) * d_prev)[:, ::-1], axis=1)[:, ::-1]
        s1[1:, :-1] = rev1[:, 1:]
        s2[1:, :-1] = rev2[:, 1:]
        s3[1:, :-1] = rev3[:, 1:]
    c = np.repeat(ref[:, 0], w)[:n]
    sums = [c, (p1 + s1).reshape(-1)[:n], (p2 + s2).reshape(-1)[:n], (p3 + s3).reshape(-1)[:n]]
    for o, s in zip(out, sums, strict=True):
        o[w - 1 :] = s[w - 1 :]
    return out[0], out[1], out[2], out[3]


class RollingTrendSums:
    """Online twin of :func:`rolling_trend_sums`: O(1) amortised per value.

    Parameters
    ----------
    w : int
        Window length (>= 2).
    """

    __slots__ = ("_buf", "_i", "_j", "_p", "_ref", "_s", "w")

    def __init__(self, w: int) -> None:
        self.w = int(w)
        self._j = np.arange(self.w, dtype=np.float64)
        self._buf = np.zeros(self.w)
        self._i = 0
        self._ref = 0.0
        self._p = [0.0, 0.0, 0.0]
        self._s = np.zeros((3, self.w))

    def push(self, x: float) -> tuple[float, float, float, float, int] | None:
        """Add a value; return ``(c, T1, T2, T3, j)`` once ``w`` values have been seen."""
        w = self.w
        j = self._i % w
        if j == 0:
            self._ref = x
            if self._i > 0:
                d_prev = self._buf - x
                revs = (d_prev, d_prev * d_prev, (self._j - w) * d_prev)
                for row, v in zip(self._s, revs, strict=True):
                    row[:-1] = np.cumsum(v[::-1])[::-1][1:]
                    row[-1] = 0.0
            self._p = [0.0, 0.0, 0.0]
        d = x - self._ref
        self._p[0] += d
        self._p[1] += d * d
        self._p[2] += self._j[j] * d
        self._buf[j] = x
        self._i += 1
        if self._i < w:
            return None
        if self._i <= w:
            t1, t2, t3 = self._p
        else:
            t1 = self._p[0] + self._s[0, j]
            t2 = self._p[1] + self._s[1, j]
            t3 = self._p[2] + self._s[2, j]
        return self._ref, t1, t2, t3, j


class TrendParams(CriterionParams):
    """Parameters of :class:`Trend`."""

    window: int = Field(30, ge=3, description="Number of trailing samples regressed on time.")
    mode: Literal["ttest", "relative", "both"] = Field(
        "ttest",
        description="'ttest': pass when the slope is not significant at alpha; 'relative': "
        "pass when |slope| / mean is below rel_threshold; 'both': both must hold.",
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="Two-sided size of the slope t-test (df = window - 2)."
    )
    rel_threshold: float = Field(
        1e-3,
        gt=0,
        description="Largest |slope| per sample, relative to the window mean, for the "
        "'relative' test (1e-3: 3 % drift over a window of 30).",
    )


def _trend_stats(
    c: NDArray[np.float64] | float,
    t1: NDArray[np.float64] | float,
    t2: NDArray[np.float64] | float,
    t3: NDArray[np.float64] | float,
    j: NDArray[np.float64] | float,
    w: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Slope, t statistic and relative slope from the shifted sums."""
    c, t1, t2, t3, j = (np.asarray(v, dtype=np.float64) for v in (c, t1, t2, t3, j))
    sii = w * (w * w - 1) / 12.0
    rbar = j - (w - 1) / 2.0
    sxy = t3 - rbar * t1
    slope = sxy / sii
    m2 = np.maximum(t2 - t1 * t1 / w, 0.0)
    ssr = np.maximum(m2 - slope * sxy, 0.0)
    se = np.sqrt(ssr / (w - 2) / sii)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = slope / se
        mean = c + t1 / w
        rel = np.where(mean > 0, slope / mean, np.nan)
    tstat = np.where(se == 0, np.where(slope == 0, 0.0, np.copysign(np.inf, slope)), tstat)
    return slope, tstat, rel


@register_criterion
class Trend(Criterion):
    r"""OLS slope of the last ``window`` samples: not significant, and/or small.

    Regressing the window on its index :math:`i = 1..w`,

    .. math::

        \hat b = \frac{\sum (i - \bar i)(x_i - \bar x)}{S_{ii}}, \quad
        S_{ii} = \frac{w (w^2 - 1)}{12}, \quad
        t = \frac{\hat b}{\sqrt{\mathrm{SSR} / ((w - 2) S_{ii})}}, \quad
        \mathrm{SSR} = \sum (x_i - \bar x)^2 - \hat b^2 S_{ii}.

    * ``mode="ttest"``: pass when :math:`|t| < t_{1-\alpha/2,\,w-2}`, i.e. the
      slope is not significantly different from zero (statistic :math:`|t|`);
    * ``mode="relative"``: pass when :math:`|\hat b| / \bar x <`
      ``rel_threshold`` (statistic :math:`|\hat b| / \bar x`; NaN and failing
      when :math:`\bar x \le 0`);
    * ``mode="both"``: both conditions (statistic :math:`|t|`).

    A window with no residual scatter has :math:`t = 0` when flat and
    :math:`\pm\infty` when it is an exact line. The sums are the blocked,
    shifted sums of :mod:`llenergymeasure.criteria._rolling` plus
    :math:`\sum r\,d` with indices relative to the block start, so large
    means and long series lose no precision; ``update`` is O(1) amortised and
    ``evaluate`` O(n), with the same arithmetic. The t-test assumes
    independent errors: autocorrelated latencies make it reject too often,
    and with a large window it flags drifts too small to matter (use
    ``"both"``).

    Parameters
    ----------
    window : int, default 30
        Trailing samples.
    mode : {"ttest", "relative", "both"}, default "ttest"
        Which test decides.
    alpha : float, default 0.05
        Size of the two-sided t-test.
    rel_threshold : float, default 1e-3
        Relative slope per sample for ``"relative"`` and ``"both"``.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] N. R. Draper and H. Smith, *Applied Regression Analysis*, 3rd ed.,
       Wiley, 1998, ch. 1 and 3 (the t-test of a regression slope).
    .. [2] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing
       the sample variance: analysis and recommendations", The American
       Statistician 37(3), 1983 (shifted sums).
    """

    name = "trend"
    Params = TrendParams
    scale_invariant = True
    statistic_label = "slope"

    def __init__(
        self,
        window: int = 30,
        mode: str = "ttest",
        alpha: float = 0.05,
        rel_threshold: float = 1e-3,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            window=window, mode=mode, alpha=alpha, rel_threshold=rel_threshold, signal=signal
        )

    @property
    def t_crit(self) -> float:
        """Critical value :math:`t_{1-\\alpha/2,\\,w-2}` of the slope test."""
        p = self.params
        return float(stats.t.ppf(1.0 - p.alpha / 2.0, p.window - 2))

    @property
    def threshold(self) -> float:
        return self.params.rel_threshold if self.params.mode == "relative" else self.t_crit

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return int(self.params.window)

    def _reset(self) -> None:
        self._sums = RollingTrendSums(self.params.window)
        self._tcrit = self.t_crit

    def _decide(
        self, tstat: NDArray[np.float64], rel: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        p = self.params
        with np.errstate(invalid="ignore"):
            t_ok = np.abs(tstat) < self._tcrit
            rel_ok = np.abs(rel) < p.rel_threshold
        if p.mode == "ttest":
            return np.abs(tstat), t_ok
        if p.mode == "relative":
            return np.abs(rel), rel_ok
        return np.abs(tstat), t_ok & rel_ok

    def _update(self, x: float, t: float | None) -> None:
        res = self._sums.push(x)
        if res is None:
            return
        c, t1, t2, t3, j = res
        _, tstat, rel = _trend_stats(c, t1, t2, t3, float(j), self.params.window)
        stat, passed = self._decide(tstat, rel)
        self.statistic_ = float(stat)
        self.passed_ = bool(passed)
        if math.isnan(self.statistic_):
            self.passed_ = False

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        w = self.params.window
        c, t1, t2, t3 = rolling_trend_sums(x, w)
        j = (np.arange(x.shape[0]) % w).astype(np.float64)
        with np.errstate(invalid="ignore"):
            _, tstat, rel = _trend_stats(c, t1, t2, t3, j, w)
        stat, passed = self._decide(tstat, rel)
        return Evaluation(stat, passed & ~np.isnan(stat))
