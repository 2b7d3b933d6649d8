"""Kelly & Hedengren's steady-state detector on non-overlapping windows."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["KellySSD", "kelly_probability"]


class KellySSDParams(CriterionParams):
    """Parameters of :class:`KellySSD` (defaults: the optimum of Beseda et al. 2025)."""

    window: int = Field(
        500,
        ge=3,
        description="Samples per non-overlapping window (KB-KSSD prob_win_size = 500).",
    )
    t_crit: float = Field(
        4.0,
        gt=0,
        description="Half-width of the band mu +- t_crit * sigma, in residual standard "
        "deviations (KB-KSSD t_crit = 4).",
    )
    threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Pass when the fraction of the window inside the band is at least this "
        "(KB-KSSD prob_threshold = 0.95).",
    )


def kelly_probability(blocks: NDArray[np.float64], t_crit: float) -> NDArray[np.float64]:
    """Kelly & Hedengren's steady-state probability of every row of ``blocks``.

    A transcription of ``ssd_Kelly`` in Beseda et al.'s ``steady_state_detection.py``:
    slope ``m = mean(diff(x))``, level ``mu = (sum x - m sum i) / n`` with
    ``i = 1..n``, residual sd with ``n - 2`` degrees of freedom, and the fraction
    of ``|x - mu| <= t_crit * sd``.
    """
    n = blocks.shape[1]
    i = np.arange(1, n + 1, dtype=np.float64)
    m = np.mean(np.diff(blocks, axis=1), axis=1)
    mu = (np.sum(blocks, axis=1) - np.sum(i[None, :] * m[:, None], axis=1)) / n
    resid = blocks - m[:, None] * i[None, :] - mu[:, None]
    sd = np.sqrt(np.sum(resid**2, axis=1) / (n - 2))
    return np.mean(np.abs(blocks - mu[:, None]) <= t_crit * sd[:, None], axis=1)


@register_criterion
class KellySSD(Criterion):
    r"""Kelly & Hedengren's steady-state detector (SSD) on tumbling windows.

    The series is cut into consecutive, non-overlapping windows of :math:`n`
    samples. In each, the drift is estimated without regression from first
    differences and removed,

    .. math::

        m = \frac{1}{n-1}\sum_{t=2}^{n} (x_t - x_{t-1}), \quad
        \mu = \frac{1}{n}\Big(\sum_t x_t - m \sum_t t\Big), \quad
        \sigma^2 = \frac{1}{n-2}\sum_t (x_t - m t - \mu)^2,

    and the probability of steady state is the fraction of samples inside the
    drift-free band,

    .. math::

        P = \frac{1}{n} \#\{t : |x_t - \mu| \le t_{\mathrm{crit}}\, \sigma\}.

    A drift inside the window pushes samples out of the band around
    :math:`\mu` (whose width uses the *detrended* scatter), so :math:`P`
    drops. After each sample the statistic is :math:`P` of the last
    completed window (NaN before the first); the criterion passes when
    :math:`P \ge` ``threshold``. It is O(n) once per window, O(1) amortised
    per sample. KB-KSSD then takes the start of the trailing run of passing
    windows as the steady-state start; with a
    :class:`~llenergymeasure.criteria.stopping.StopRule` the run is the
    ``patience``.

    The defaults are the optimum reported by Beseda et al. for JMH series of
    3000 iterations (window 500, ``t_crit`` 4, threshold 0.95); for LLM
    warmups of tens to hundreds of requests use a window of 20-50.

    Parameters
    ----------
    window : int, default 500
        Samples per tumbling window.
    t_crit : float, default 4.0
        Band half-width in residual standard deviations.
    threshold : float, default 0.95
        Least fraction inside the band.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] J. D. Kelly and J. D. Hedengren, "A steady-state detection (SSD)
       algorithm to detect non-stationary drifts in processes", Journal of
       Process Control 23(3):326-331, 2013.
    .. [2] M. Beseda, V. Cortellessa, D. Di Pompeo, L. Traini and M. Tucci, "A
       kernel-based approach for accurate steady-state detection in performance
       time series", arXiv:2506.04204, 2025; code
       https://github.com/MartinBeseda/steady-state (``ssd_Kelly``).
    """

    name = "kelly_ssd"
    Params = KellySSDParams
    scale_invariant = True
    sweep_parameter = ("threshold", ">=")
    statistic_label = "P"
    statistic_is_percent = True

    def __init__(
        self,
        window: int = 500,
        t_crit: float = 4.0,
        threshold: float = 0.95,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(window=window, t_crit=t_crit, threshold=threshold, signal=signal)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return int(self.params.window)

    def _reset(self) -> None:
        self._block = np.zeros(self.params.window)
        self._fill = 0

    def _update(self, x: float, t: float | None) -> None:
        self._block[self._fill] = x
        self._fill += 1
        if self._fill < self.params.window:
            return
        self._fill = 0
        prob = float(kelly_probability(self._block[None, :], self.params.t_crit)[0])
        self.statistic_ = prob
        self.passed_ = prob >= self.params.threshold

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        n = x.shape[0]
        w = self.params.window
        stat = np.full(n, np.nan)
        nb = n // w
        if nb:
            probs = kelly_probability(x[: nb * w].reshape(nb, w).copy(), self.params.t_crit)
            held = np.repeat(probs, w)[: n - (w - 1)]
            stat[w - 1 :] = held
        with np.errstate(invalid="ignore"):
            passed = stat >= self.params.threshold
        return Evaluation(stat, passed)
