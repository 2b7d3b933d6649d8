"""Geweke's convergence diagnostic on a trailing window."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._windows import WindowedCriterion
from llenergymeasure.criteria.base import CriterionConfigError, CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["Geweke", "geweke_segments", "spectrum0_ar"]

#: Residual standard deviation (relative to the mean absolute value) below which
#: a segment counts as constant or exactly linear and gets a zero spectral density.
DEGENERATE_RTOL = 1e-12


class GewekeParams(CriterionParams):
    """Parameters of :class:`Geweke`."""

    window: int = Field(
        100,
        ge=10,
        description="Number of trailing samples the diagnostic is computed on (ours; Geweke "
        "applies it to the whole chain).",
    )
    frac1: float = Field(
        0.1, gt=0, lt=1, description="Fraction of the window in the first segment (Geweke: 0.1)."
    )
    frac2: float = Field(
        0.5, gt=0, lt=1, description="Fraction of the window in the last segment (Geweke: 0.5)."
    )
    z_crit: float = Field(
        1.96,
        gt=0,
        description="Pass when |z| is below this value (1.96: two-sided 5 % normal test).",
    )


def geweke_segments(window: int, frac1: float, frac2: float) -> tuple[int, int]:
    """Lengths ``(n_a, n_b)`` of the first and last segments, as ``coda::geweke.diag``.

    coda takes ``window(x, start, ceiling(start + frac1 (end - start)))`` and
    ``window(x, floor(end - frac2 (end - start)), end)`` with ``start = 1`` and
    ``end = window``.
    """
    span = window - 1
    n_a = math.ceil(1 + frac1 * span)
    start_b = math.floor(window - frac2 * span)
    return n_a, window - start_b + 1


def spectrum0_ar(y: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""Spectral density at frequency zero of every row, from an AR fit (``coda::spectrum0.ar``).

    For each row (a series of length :math:`n`) an AR model is fitted by
    Yule–Walker (Levinson–Durbin on the biased autocovariances of the demeaned
    series) for every order :math:`k \le K = \min(n - 1, \lfloor 10 \log_{10} n
    \rfloor)`, the order minimising :math:`\mathrm{AIC}_k = n \log v_k + 2k`
    is kept (the first minimum, as R's ``ar(aic = TRUE)``), and

    .. math::

        \hat S(0) = \frac{v_p \, n / (n - p - 1)}{\big(1 - \sum_{j=1}^{p} \phi_j\big)^2}.

    A row whose residual standard deviation about its least-squares line is
    at most ``DEGENERATE_RTOL`` times its mean absolute value gets 0, as coda
    does for a residual sd of zero (coda's tolerance is absolute, 1.5e-8, which
    would make the result depend on the unit; ours is relative).

    Parameters
    ----------
    y : ndarray, shape (m, n)
        One series per row.

    Returns
    -------
    ndarray, shape (m,)
    """
    m, n = y.shape
    mean = y.mean(axis=1, keepdims=True)
    yc = y - mean
    z = np.arange(1, n + 1, dtype=np.float64)
    zc = z - z.mean()
    slope = (yc @ zc) / (zc @ zc)
    resid = yc - slope[:, None] * zc[None, :]
    sd = np.sqrt(np.sum(resid * resid, axis=1) / (n - 1))
    degenerate = sd <= DEGENERATE_RTOL * np.mean(np.abs(y), axis=1)

    kmax = min(n - 1, math.floor(10 * math.log10(n)))
    r = np.empty((m, kmax + 1))
    for k in range(kmax + 1):
        r[:, k] = np.sum(yc[:, : n - k] * yc[:, k:], axis=1) / n
    safe_r0 = np.where(r[:, 0] > 0, r[:, 0], 1.0)
    v = safe_r0.copy()
    phi = np.zeros((m, kmax + 1))  # phi[:, 1..k] are the order-k coefficients
    best_aic = n * np.log(v)
    best_v = v.copy()
    best_sum = np.zeros(m)
    best_p = np.zeros(m, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(1, kmax + 1):
            acc = r[:, k] - np.sum(phi[:, 1:k] * r[:, k - 1 : 0 : -1], axis=1)
            kappa = acc / v
            new = phi.copy()
            new[:, k] = kappa
            new[:, 1:k] = phi[:, 1:k] - kappa[:, None] * phi[:, k - 1 : 0 : -1]
            phi = new
            v = v * (1.0 - kappa * kappa)
            aic = np.where(v > 0, n * np.log(np.where(v > 0, v, 1.0)) + 2 * k, np.inf)
            better = aic < best_aic
            best_aic = np.where(better, aic, best_aic)
            best_v = np.where(better, v, best_v)
            best_sum = np.where(better, np.sum(phi[:, 1 : k + 1], axis=1), best_sum)
            best_p = np.where(better, k, best_p)
        dof = n - (best_p + 1)
        var_pred = np.where(dof > 0, best_v * n / dof, np.inf)
        spec = var_pred / (1.0 - best_sum) ** 2
    return np.where(degenerate | ~(r[:, 0] > 0), 0.0, spec)


@register_criterion
class Geweke(WindowedCriterion):
    r"""Geweke's z of the early vs the late part of the last ``window`` samples.

    With segment A the first :math:`n_A \approx 10\,\%` and segment B the last
    :math:`n_B \approx 50\,\%` of the window (bounds as ``coda::geweke.diag``,
    see :func:`geweke_segments`),

    .. math::

        z = \frac{\bar x_A - \bar x_B}
                 {\sqrt{\hat S_A(0) / n_A + \hat S_B(0) / n_B}},

    where :math:`\hat S(0)` is the spectral density at frequency zero, i.e.
    :math:`2\pi` times the long-run variance of the segment: here from an
    AIC-selected Yule–Walker AR fit, as coda's ``spectrum0.ar`` (see
    :func:`spectrum0_ar`), which accounts for autocorrelation between
    consecutive latencies. The criterion passes when :math:`|z| <` ``z_crit``
    (1.96, the two-sided 5 % normal quantile Geweke's test uses). When both
    spectral densities are 0 (constant segments) :math:`z` is 0 for equal
    means and infinite otherwise.

    Each check costs O(w K) for the autocovariances and O(K^2) for the
    Levinson–Durbin recursion (:math:`K \approx 10 \log_{10} n`), vectorised
    over windows offline.

    Parameters
    ----------
    window : int, default 100
        Trailing samples (ours; coda uses the whole chain).
    frac1 : float, default 0.1
        Fraction in the first segment (Geweke 1992, coda default).
    frac2 : float, default 0.5
        Fraction in the last segment (Geweke 1992, coda default).
    z_crit : float, default 1.96
        Pass when ``|z| < z_crit``.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] J. Geweke, "Evaluating the accuracy of sampling-based approaches to the
       calculation of posterior moments", in J. M. Bernardo et al. (eds.),
       Bayesian Statistics 4, Oxford University Press, 1992, pp. 169-193.
    .. [2] M. Plummer, N. Best, K. Cowles and K. Vines, "CODA: convergence
       diagnosis and output analysis for MCMC", R News 6(1):7-11, 2006
       (``geweke.diag``, ``spectrum0.ar``).
    """

    name = "geweke"
    Params = GewekeParams
    scale_invariant = True
    sweep_parameter = ("z_crit", "<")
    cost_class = "moderate"
    statistic_label = "|z|"

    def __init__(
        self,
        window: int = 100,
        frac1: float = 0.1,
        frac2: float = 0.5,
        z_crit: float = 1.96,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(window=window, frac1=frac1, frac2=frac2, z_crit=z_crit, signal=signal)

    def _validate(self) -> None:
        p = self.params
        if p.frac1 + p.frac2 >= 1:
            raise CriterionConfigError(
                f"criterion {self.name!r}: frac1 + frac2 must be < 1 (the segments must not "
                f"overlap), got {p.frac1} + {p.frac2}"
            )
        n_a, n_b = geweke_segments(p.window, p.frac1, p.frac2)
        if n_a < 3 or n_b < 3:
            raise CriterionConfigError(
                f"criterion {self.name!r}: window {p.window} gives segments of {n_a} and "
                f"{n_b} samples; each needs at least 3 (increase window or the fractions)"
            )

    @property
    def threshold(self) -> float:
        return float(self.params.z_crit)

    def _window_len(self) -> int:
        return self.params.window

    def _window_stats(
        self, windows: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        z = self.z_scores(windows)
        with np.errstate(invalid="ignore"):
            stat = np.abs(z)
            passed = stat < self.params.z_crit
        return stat, passed

    def z_scores(self, windows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Signed Geweke z of every row of a ``(m, window)`` array."""
        p = self.params
        n_a, n_b = geweke_segments(windows.shape[1], p.frac1, p.frac2)
        a = windows[:, :n_a]
        b = windows[:, windows.shape[1] - n_b :]
        diff = a.mean(axis=1) - b.mean(axis=1)
        denom = np.sqrt(spectrum0_ar(a) / n_a + spectrum0_ar(b) / n_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = diff / denom
        z = np.where(denom == 0, np.where(diff == 0, 0.0, np.copysign(np.inf, diff)), z)
        return np.where(np.isinf(denom), 0.0, z)
