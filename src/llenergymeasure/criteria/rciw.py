"""Relative confidence-interval width of the mean of the last ``window`` samples."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from pydantic import Field
from scipy import stats

from llenergymeasure.criteria._rolling import RollingMoments, rolling_moments
from llenergymeasure.criteria._sorted_window import linear_quantile
from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["RCIW", "bootstrap_means"]

#: Bootstrap rows per chunk offline (bounds memory to about 64 MB).
_CHUNK_ELEMENTS = 1 << 23


class RCIWParams(CriterionParams):
    """Parameters of :class:`RCIW`."""

    window: int = Field(30, ge=3, description="Number of trailing samples in the window.")
    alpha: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="Significance level: the CI has confidence 1 - alpha (BenchmarkDotNet's "
        "99.9% default).",
    )
    threshold: float = Field(
        0.04,
        gt=0,
        lt=10,
        description="Pass when (upper - lower) / mean is below this value (BenchmarkDotNet's "
        "MaxRelativeError 0.02 is a half-width, i.e. a full width of 0.04).",
    )
    method: Literal["t", "bootstrap"] = Field(
        "t", description="'t': Student-t interval (O(1) per update); 'bootstrap': percentile "
        "bootstrap of the window mean with a fixed seed."
    )
    n_boot: int = Field(
        1000, ge=10, le=100_000, description="Bootstrap resamples (method='bootstrap')."
    )
    seed: int = Field(0, ge=0, description="Seed of the fixed bootstrap resampling indices.")


def bootstrap_means(windows: NDArray[np.float64], idx: NDArray[np.int64]) -> NDArray[np.float64]:
    """Bootstrap means of each window (row) for the fixed resampling ``idx``, sorted.

    Parameters
    ----------
    windows : ndarray, shape (m, w)
        One window per row.
    idx : ndarray of int, shape (B, w)
        Resampling indices (row ``b`` is bootstrap sample ``b``).

    Returns
    -------
    ndarray, shape (m, B)
        Sorted bootstrap means of each window.
    """
    w = windows.shape[1]
    resampled = windows[:, idx]  # (m, B, w)
    # Left-to-right sums (the last term of a running sum): the same additions
    # whatever the number of windows, so the online (m = 1) and offline forms
    # agree bit for bit (numpy's reductions may pair terms differently for
    # different shapes).
    total = np.cumsum(resampled, axis=2)[:, :, -1]
    return np.sort(total / w, axis=1)


@register_criterion
class RCIW(Criterion):
    r"""Relative width of a confidence interval of the window mean below a threshold.

    With :math:`\bar x_t` and :math:`s_t` the mean and sample standard
    deviation of the last ``w`` samples, the Student-t form (default) is

    .. math::

        \mathrm{RCIW}_t = \frac{2\, t_{1-\alpha/2,\, w-1}\, s_t / \sqrt{w}}{\bar x_t}

    and the bootstrap form is :math:`(\hat q_{1-\alpha/2} - \hat q_{\alpha/2}) /
    \bar x_t`, the percentile interval of ``n_boot`` bootstrap means of the
    window (Efron & Tibshirani 1993, ch. 13). The bootstrap indices are drawn
    once from ``numpy.random.default_rng(seed)`` and reused for every window,
    so the statistic is a deterministic function of the window and the online
    and offline forms agree exactly. The criterion passes when
    :math:`\mathrm{RCIW}_t <` ``threshold``; it is NaN until the window is
    full and where the mean is not positive.

    Defaults follow BenchmarkDotNet's precision stop (99.9% interval, relative
    half-width ``MaxRelativeError`` = 0.02, i.e. a full width of 0.04); the
    RCIW itself is the statistic of Laaber et al. (2020), who use 99%
    intervals. The window of 30 is Georges et al.'s (2007) window length.

    Because the width shrinks like :math:`1/\sqrt{w}`, this is a *precision*
    target rather than a stationarity test: a steady drift inside the window
    inflates :math:`s_t` only slightly, and a large window passes on a slow
    trend. Use it together with a level or trend test.

    Online cost: O(1) amortised for ``t`` (rolling moments of
    :mod:`~llenergymeasure.criteria._rolling`), O(B w) for ``bootstrap``;
    offline O(n) and O(n B w), vectorised. Scale invariant.

    Parameters
    ----------
    window : int, default 30
        Trailing samples (>= 3).
    alpha : float, default 0.001
        One minus the confidence level.
    threshold : float, default 0.04
        Pass when the relative width is below this value.
    method : {"t", "bootstrap"}, default "t"
        Interval construction.
    n_boot : int, default 1000
        Bootstrap resamples (Laaber et al.'s 1000 simulations).
    seed : int, default 0
        Seed of the resampling indices.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
       reconfiguring software microbenchmarks: reducing execution time without
       sacrificing result quality", ESEC/FSE 2020.
    .. [2] BenchmarkDotNet, ``AccuracyMode.MaxRelativeError`` (0.02) and
       ``ConfidenceLevel.L999``, https://github.com/dotnet/BenchmarkDotNet.
    .. [3] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*,
       Chapman & Hall, 1993.
    .. [4] A. Georges, D. Buytaert and L. Eeckhout, "Statistically rigorous Java
       performance evaluation", OOPSLA 2007.
    """

    name = "rciw"
    Params = RCIWParams
    scale_invariant = True
    sweep_parameter = ("threshold", "<")
    statistic_label = "RCIW"
    statistic_is_percent = True

    def __init__(
        self,
        window: int = 30,
        alpha: float = 0.001,
        threshold: float = 0.04,
        method: Literal["t", "bootstrap"] = "t",
        n_boot: int = 1000,
        seed: int = 0,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            window=window, alpha=alpha, threshold=threshold, method=method, n_boot=n_boot,
            seed=seed, signal=signal,
        )

    def _validate(self) -> None:
        p = self.params
        w = p.window
        self._tfactor = 2.0 * float(stats.t.ppf(1.0 - p.alpha / 2.0, w - 1)) / math.sqrt(w)
        self._idx: NDArray[np.int64] | None = (
            np.random.default_rng(p.seed).integers(0, w, size=(p.n_boot, w))
            if p.method == "bootstrap"
            else None
        )

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return int(self.params.window)

    def _reset(self) -> None:
        self._moments = RollingMoments(self.params.window)

    def _update(self, x: float, t: float | None) -> None:
        res = self._moments.push(x)
        if res is None:
            return
        mean, m2 = res
        p = self.params
        if not mean > 0:
            stat = math.nan
        elif p.method == "t":
            stat = self._tfactor * math.sqrt(m2 / (p.window - 1)) / mean
        else:
            assert self._idx is not None  # built by _validate for method="bootstrap"
            bm = bootstrap_means(self._moments.window()[None, :], self._idx)
            stat = float(
                (linear_quantile(bm, 1 - p.alpha / 2) - linear_quantile(bm, p.alpha / 2))[0]
                / mean
            )
        self.statistic_ = stat
        self.passed_ = bool(stat < p.threshold)

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        w = p.window
        mean, m2 = rolling_moments(x, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p.method == "t":
                stat = self._tfactor * np.sqrt(m2 / (w - 1)) / mean
            else:
                assert self._idx is not None  # built by _validate for method="bootstrap"
                width = np.full(x.shape[0], np.nan)
                if x.shape[0] >= w:
                    view = sliding_window_view(x, w)
                    rows = max(1, _CHUNK_ELEMENTS // (p.n_boot * w))
                    for s in range(0, view.shape[0], rows):
                        bm = bootstrap_means(view[s : s + rows], self._idx)
                        width[s + w - 1 : s + w - 1 + bm.shape[0]] = linear_quantile(
                            bm, 1 - p.alpha / 2
                        ) - linear_quantile(bm, p.alpha / 2)
                stat = width / mean
            stat = np.where(mean > 0, stat, np.nan)
            passed = stat < p.threshold
        return Evaluation(stat, passed)
