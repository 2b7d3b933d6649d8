"""red-molsim's minimum squared standard error truncation with a Bartlett lag window."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from llenergymeasure.criteria._autocov import SuffixAutocov
from llenergymeasure.criteria._schedule import CheckResult, ScheduledTruncation, ScheduleParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["RedSSE", "sse_curve_window"]


def sse_curve_window(x: ArrayLike, frac_padding: float = 0.1) -> NDArray[np.float64]:
    r"""Squared standard error of the mean of ``x[t:]`` for every cut ``t`` (window estimator).

    For the suffix of length :math:`m = n - t` with biased autocovariances
    :math:`\gamma_k` (divided by :math:`m`) and the Bartlett window of
    :math:`w = \operatorname{round}(\sqrt{m})` lags,

    .. math::

        \hat\sigma^2_\mathrm{corr}(t) = \max\Bigl(\gamma_0,\
            \gamma_0 + 2\sum_{k=1}^{w-1}\Bigl(1 - \frac{k}{w}\Bigr)\gamma_k\Bigr),
        \qquad \mathrm{SSE}(t) = \frac{\hat\sigma^2_\mathrm{corr}(t)}{m},

    for :math:`t = 0, \dots, \min(n - 2, \operatorname{round}(n (1 -
    \text{frac\_padding})))`: the cuts in the last ``frac_padding`` of the series
    are not evaluated. This is red-molsim's ``get_sse_series_window`` (kernel
    ``numpy.bartlett``, ``window_size_fn = round(sqrt(n))``). All cuts are
    computed together lag by lag (O(n) per lag, O(n^{3/2}) in all) instead of
    one autocovariance per cut. A constant suffix has SSE 0 (red-molsim raises).

    Returns
    -------
    ndarray of float, one value per evaluated cut.
    """
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    if n < 2:
        return np.zeros(0)
    max_index = n - 2
    if frac_padding > 0:
        max_index = min(max_index, round(n * (1 - frac_padding)))
    origins = np.arange(max_index + 1, dtype=np.int64)
    m = (n - origins).astype(np.float64)
    w = np.rint(np.sqrt(m)).astype(np.int64)
    ac = SuffixAutocov(arr)
    g0 = ac.lag(0, origins)
    acc = g0.copy()
    for k in range(1, int(w.max())):
        sel = np.flatnonzero(w > k)  # the weight 1 - k/w is 0 at k = w
        acc[sel] += 2.0 * (1.0 - k / w[sel]) * ac.lag(k, origins[sel])
    corr = np.maximum(acc, g0) / m
    return corr / m


class RedSSEParams(ScheduleParams):
    """Parameters of :class:`RedSSE`."""

    frac_padding: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Fraction at the end of the series where no cut is evaluated (red-molsim).",
    )
    max_fraction: float = Field(
        0.5, gt=0, le=1, description="Pass only when the cut lies in the first max_fraction."
    )


@register_criterion
class RedSSE(ScheduledTruncation):
    r"""Truncate where the squared standard error of the remaining mean is smallest (red-molsim).

    At each check point the prefix of length :math:`n` gives the curve
    :func:`sse_curve_window`; the truncation is its first minimiser
    :math:`t_0 = \operatorname{arg\,min}_t \mathrm{SSE}(t)`. The statistic is
    the relative standard error of the kept mean,
    :math:`\sqrt{\mathrm{SSE}(t_0)} / |\bar x_{t_0:n}|`, and the criterion passes
    when :math:`t_0 \le \text{max\_fraction} \cdot n` (the same "minimum in the
    first half" guard as MSER-5; ``frac_padding`` already rules out the noisy
    end).

    Clark et al. recommend this lag-window variant over MSER: MSER's window is 1
    (``window_size=1`` reproduces White's rule), so it under-discards when the
    trend is hidden by correlated noise. Online cost: one check is
    O(n^{3/2}) numpy work, done every ``every`` samples (geometric with
    ``growth > 1``); an update between checks is O(1).

    Parameters
    ----------
    frac_padding : float, default 0.1
        End padding (red-molsim's default).
    max_fraction : float, default 0.5
        Largest admissible cut as a fraction of the samples.
    min_samples, every, growth
        Check schedule.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] F. Clark, G. Cole and J. Michel, "Robust automated truncation point
       selection for molecular simulations", JCTC 2024 (red-molsim).
    .. [2] K. P. White Jr., "An effective truncation heuristic for bias
       reduction in simulation output", Simulation 69(6), 1997.
    .. [3] M. S. Bartlett, "Periodogram analysis and continuous spectra",
       Biometrika 37, 1950 (the triangular lag window).
    """

    name = "red_sse"
    Params = RedSSEParams
    scale_invariant = True
    cost_class = "moderate"
    statistic_label = "rse"
    statistic_is_percent = True

    def _check(self, x: NDArray[np.float64]) -> CheckResult:
        p = self.params
        sse = sse_curve_window(x, p.frac_padding)
        t0 = int(np.argmin(sse))
        mean = float(np.mean(x[t0:]))
        rse = math.sqrt(sse[t0]) / abs(mean) if mean != 0 else math.nan
        n = x.shape[0]
        return CheckResult(rse, t0 <= p.max_fraction * n, t0)
