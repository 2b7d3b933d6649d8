"""KPSS level-stationarity test on a trailing window."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._windows import WindowedCriterion
from llenergymeasure.criteria.base import CriterionConfigError, CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["KPSS", "KPSS_LEVEL_CRITICAL_VALUES", "kpss_lags", "kpss_statistic"]

#: Level-stationarity critical values of Kwiatkowski et al. (1992), Table 1,
#: keyed by the test size (the values statsmodels uses for ``regression="c"``).
KPSS_LEVEL_CRITICAL_VALUES: dict[float, float] = {
    0.10: 0.347,
    0.05: 0.463,
    0.025: 0.574,
    0.01: 0.739,
}


class KPSSParams(CriterionParams):
    """Parameters of :class:`KPSS`."""

    window: int = Field(
        100, ge=4, description="Number of trailing samples tested (our default, not KPSS's)."
    )
    alpha: Literal[0.10, 0.05, 0.025, 0.01] = Field(
        0.05,
        description="Size of the test: pass when the statistic is below the KPSS Table 1 "
        "critical value at this level (0.347/0.463/0.574/0.739 at 10/5/2.5/1 %).",
    )
    nlags: Literal["auto", "legacy"] | int = Field(
        "auto",
        description="Bartlett-window lags of the long-run variance, as statsmodels' kpss: "
        "'auto' (Hobijn et al. 1998, statsmodels' default), 'legacy' "
        "(ceil(12 (n/100)^(1/4))) or a fixed integer below the window.",
    )


def kpss_lags(resids: NDArray[np.float64], nlags: str | int) -> NDArray[np.int64]:
    """Lags of every row of ``resids`` by statsmodels' rule (``min(lags, n - 1)``)."""
    m, n = resids.shape
    if nlags == "legacy":
        lags = min(int(np.ceil(12.0 * np.power(n / 100.0, 1 / 4.0))), n - 1)
        return np.full(m, lags, dtype=np.int64)
    if nlags != "auto":
        return np.full(m, int(nlags), dtype=np.int64)
    covlags = int(np.power(n, 2.0 / 9.0))
    s0 = np.sum(resids**2, axis=1) / n
    s1 = np.zeros(m)
    for i in range(1, covlags + 1):
        prod = np.sum(resids[:, i:] * resids[:, : n - i], axis=1) / (n / 2.0)
        s0 = s0 + prod
        s1 = s1 + i * prod
    with np.errstate(divide="ignore", invalid="ignore"):
        s_hat = s1 / s0
    gamma_hat = 1.1447 * np.power(s_hat * s_hat, 1.0 / 3.0)
    raw = gamma_hat * np.power(n, 1.0 / 3.0)
    raw = np.where(np.isfinite(raw), raw, 0.0)
    return np.minimum(np.trunc(raw).astype(np.int64), n - 1)


def kpss_statistic(windows: NDArray[np.float64], nlags: str | int) -> NDArray[np.float64]:
    """KPSS level statistic of every row of ``windows`` (statsmodels' arithmetic order).

    Rows without variation (max == min) get 0: a constant window is stationary
    (statsmodels fails on it with a division by zero).
    """
    n = windows.shape[1]
    resids = windows - windows.mean(axis=1, keepdims=True)
    lags = kpss_lags(resids, nlags)
    eta = np.sum(np.cumsum(resids, axis=1) ** 2, axis=1) / (n**2)
    s_hat = np.sum(resids**2, axis=1)
    for i in range(1, int(lags.max(initial=0)) + 1):
        prod = np.sum(resids[:, i:] * resids[:, : n - i], axis=1)
        s_hat = s_hat + np.where(i <= lags, 2 * prod * (1.0 - (i / (lags + 1.0))), 0.0)
    s_hat = s_hat / n
    constant = np.ptp(windows, axis=1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = eta / s_hat
    return np.where(constant, 0.0, stat)


@register_criterion
class KPSS(WindowedCriterion):
    r"""KPSS test of level stationarity on the last ``window`` samples.

    With the residuals :math:`e_t = x_t - \bar x` of the window
    (:math:`t = 1..n`), their partial sums :math:`S_t = \sum_{i \le t} e_i` and
    the Newey–West (Bartlett) long-run variance with :math:`\ell` lags

    .. math::

        \hat\sigma^2_\ell = \frac{1}{n}\Big(\sum_t e_t^2 + 2 \sum_{s=1}^{\ell}
        \big(1 - \tfrac{s}{\ell + 1}\big) \sum_{t=s+1}^{n} e_t e_{t-s}\Big),
        \qquad
        \eta = \frac{n^{-2} \sum_t S_t^2}{\hat\sigma^2_\ell},

    the null hypothesis is stationarity around a constant level; the criterion
    passes when :math:`\eta` is below the critical value at ``alpha``
    (0.347 / 0.463 / 0.574 / 0.739 at 10 / 5 / 2.5 / 1 %, Kwiatkowski et al.
    1992, Table 1). A warmup (a decay or a step inside the window) makes the
    partial sums wander and :math:`\eta` large.

    The lags follow ``statsmodels.tsa.stattools.kpss`` exactly: ``"auto"`` is
    the data-dependent rule of Hobijn, Franses & Ooms (1998) and ``"legacy"``
    :math:`\lceil 12 (n/100)^{1/4} \rceil`, both capped at :math:`n - 1`; the
    statistic equals statsmodels' to rounding. A constant window gets
    :math:`\eta = 0` (statsmodels divides by zero). Each check costs
    O(n ℓ) (O(n) for the sums, ℓ lagged products).

    Parameters
    ----------
    window : int, default 100
        Trailing samples tested (ours: KPSS is a whole-series test).
    alpha : {0.10, 0.05, 0.025, 0.01}, default 0.05
        Size of the test.
    nlags : "auto", "legacy" or int, default "auto"
        Lag rule, as statsmodels' ``nlags`` (whose default is ``"auto"``).
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] D. Kwiatkowski, P. C. B. Phillips, P. Schmidt and Y. Shin, "Testing the
       null hypothesis of stationarity against the alternative of a unit root",
       Journal of Econometrics 54(1-3):159-178, 1992.
    .. [2] B. Hobijn, P. H. Franses and M. Ooms, "Generalizations of the KPSS-test
       for stationarity", Econometric Institute Report 9802/A, Erasmus
       University Rotterdam, 1998.
    .. [3] statsmodels, ``statsmodels.tsa.stattools.kpss``,
       https://www.statsmodels.org.
    """

    name = "kpss"
    Params = KPSSParams
    scale_invariant = True
    cost_class = "moderate"
    statistic_label = "KPSS"

    def __init__(
        self,
        window: int = 100,
        alpha: float = 0.05,
        nlags: str | int = "auto",
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(window=window, alpha=alpha, nlags=nlags, signal=signal)

    def _validate(self) -> None:
        p = self.params
        if isinstance(p.nlags, int) and not 0 <= p.nlags < p.window:
            raise CriterionConfigError(
                f"criterion {self.name!r}: nlags ({p.nlags}) must be in [0, window) = "
                f"[0, {p.window})"
            )

    @property
    def threshold(self) -> float:
        return KPSS_LEVEL_CRITICAL_VALUES[self.params.alpha]

    def _window_len(self) -> int:
        return self.params.window

    def _window_stats(
        self, windows: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        stat = kpss_statistic(windows, self.params.nlags)
        with np.errstate(invalid="ignore"):
            passed = stat < self.threshold
        return stat, passed
