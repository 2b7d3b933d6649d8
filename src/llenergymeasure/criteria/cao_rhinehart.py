"""Cao & Rhinehart's R-statistic: a ratio of exponentially filtered variances."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy.signal import lfilter

from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["CaoRhinehart"]


class CaoRhinehartParams(CriterionParams):
    """Parameters of :class:`CaoRhinehart` (defaults of Cao & Rhinehart 1995, 1997)."""

    lambda1: float = Field(
        0.2, gt=0, le=1, description="Filter factor of the filtered value X_f (paper: 0.2)."
    )
    lambda2: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Filter factor of the variance about the filtered value (paper: 0.1).",
    )
    lambda3: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Filter factor of the variance from successive differences (paper: 0.1).",
    )
    burn_in: int = Field(
        20,
        ge=0,
        description="R cannot pass before this many samples: the zero-initialised variance "
        "filters need about 2 / lambda2 samples to forget their start (ours, not the papers').",
    )
    r_crit: float = Field(
        1.44,
        gt=0,
        description="Pass when R is below this value (Cao & Rhinehart 1997: about 1.44 at "
        "alpha = 0.05 for lambdas 0.2/0.1/0.1).",
    )


def _ewma(u: NDArray[np.float64], lam: float, y0: float) -> NDArray[np.float64]:
    """``y_i = lam u_i + (1 - lam) y_{i-1}`` for ``i = 0..``, starting from ``y_{-1} = y0``."""
    out, _ = lfilter([lam], [1.0, -(1.0 - lam)], u, zi=[(1.0 - lam) * y0])
    return out


@register_criterion
class CaoRhinehart(Criterion):
    r"""Cao & Rhinehart's R-statistic steady-state identifier, O(1) per sample.

    Three first-order exponential filters run on the stream:

    .. math::

        \nu^2_{f,i} &= \lambda_2 (x_i - X_{f,i-1})^2 + (1 - \lambda_2)\, \nu^2_{f,i-1},\\
        X_{f,i} &= \lambda_1 x_i + (1 - \lambda_1) X_{f,i-1},\\
        \delta^2_{f,i} &= \lambda_3 (x_i - x_{i-1})^2 + (1 - \lambda_3)\, \delta^2_{f,i-1},\\
        R_i &= \frac{(2 - \lambda_1)\, \nu^2_{f,i}}{\delta^2_{f,i}} .

    When the process is steady with independent noise of variance
    :math:`\sigma^2`, :math:`\nu^2_f` estimates :math:`2\sigma^2 / (2 - \lambda_1)`
    (the lagging filter adds its own variance) and :math:`\delta^2_f`
    estimates :math:`2\sigma^2`,
    so :math:`R \approx 1`; a trend inflates the deviations from the lagging
    filter much more than the successive differences, so :math:`R \gg 1`. The
    criterion passes when :math:`R <` ``r_crit``.

    Initialisation: :math:`X_{f,0} = x_0` and :math:`\nu^2_{f,0} =
    \delta^2_{f,0} = 0`, so :math:`R` is defined from the second sample on
    (NaN at the first). :math:`R = 0` while :math:`\delta^2_f = 0` (the
    stream has not moved: a constant stream is steady). The criterion cannot
    pass before ``burn_in`` samples (20, about :math:`2/\lambda_2`; our
    addition): with zero-initialised variances :math:`R` is near 1 by chance
    in the first samples, even during a transient. Online, three
    multiply-adds per sample; offline the
    three recursions are ``scipy.signal.lfilter`` calls with the same
    coefficients.

    The noise must be roughly independent: positively autocorrelated
    latencies inflate :math:`R` at steady state (false "transient"), and a
    single outlier raises it for about :math:`1/\lambda_2` samples.

    Parameters
    ----------
    lambda1, lambda2, lambda3 : float, default 0.2, 0.1, 0.1
        Filter factors recommended by Cao & Rhinehart (1995).
    burn_in : int, default 20
        Samples before the criterion may pass (ours).
    r_crit : float, default 1.44
        Critical value at :math:`\alpha = 0.05` for these factors (Cao &
        Rhinehart 1997; a Monte Carlo of i.i.d. normal noise gives a 95th
        percentile of 1.44).
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] S. Cao and R. R. Rhinehart, "An efficient method for on-line
       identification of steady state", Journal of Process Control
       5(6):363-374, 1995.
    .. [2] S. Cao and R. R. Rhinehart, "Critical values for a steady-state
       identifier", Journal of Process Control 7(2):149-152, 1997.
    .. [3] R. R. Rhinehart, "Automated steady and transient state identification
       in noisy processes", Proceedings of the American Control Conference,
       2013, pp. 4477-4493.
    """

    name = "cao_rhinehart"
    Params = CaoRhinehartParams
    scale_invariant = True
    statistic_label = "R"

    def __init__(
        self,
        lambda1: float = 0.2,
        lambda2: float = 0.1,
        lambda3: float = 0.1,
        r_crit: float = 1.44,
        burn_in: int = 20,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            lambda1=lambda1,
            lambda2=lambda2,
            lambda3=lambda3,
            r_crit=r_crit,
            burn_in=burn_in,
            signal=signal,
        )

    @property
    def threshold(self) -> float:
        return float(self.params.r_crit)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return max(2, int(self.params.burn_in))

    def _reset(self) -> None:
        self._xf = 0.0
        self._nu2 = 0.0
        self._delta2 = 0.0
        self._last = 0.0

    def _ratio(self, nu2: NDArray[np.float64], delta2: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (2.0 - self.params.lambda1) * nu2 / delta2
        return np.where(delta2 == 0, 0.0, r)

    def _update(self, x: float, t: float | None) -> None:
        p = self.params
        if self.n_seen_ == 0:
            self._xf = x
            self._last = x
            return
        self._nu2 = p.lambda2 * (x - self._xf) ** 2 + (1.0 - p.lambda2) * self._nu2
        self._xf = p.lambda1 * x + (1.0 - p.lambda1) * self._xf
        self._delta2 = p.lambda3 * (x - self._last) ** 2 + (1.0 - p.lambda3) * self._delta2
        self._last = x
        r = float(self._ratio(np.asarray(self._nu2), np.asarray(self._delta2)))
        self.statistic_ = r
        self.passed_ = bool(r < p.r_crit) and self.n_seen_ + 1 >= p.burn_in

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        n = x.shape[0]
        stat = np.full(n, np.nan)
        if n >= 2:
            xf = _ewma(x[1:], p.lambda1, x[0])  # X_{f,i} for i = 1..n-1
            xf_prev = np.concatenate([[x[0]], xf[:-1]])
            nu2 = _ewma((x[1:] - xf_prev) ** 2, p.lambda2, 0.0)
            delta2 = _ewma(np.diff(x) ** 2, p.lambda3, 0.0)
            stat[1:] = self._ratio(nu2, delta2)
        with np.errstate(invalid="ignore"):
            passed = (stat < p.r_crit) & (np.arange(1, n + 1) >= p.burn_in)
        return Evaluation(stat, passed)
