"""Rolling coefficient of variation over the last ``window`` samples."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._rolling import RollingMoments, rolling_moments
from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["RollingCV"]


class RollingCVParams(CriterionParams):
    """Parameters of `RollingCV`."""

    window: int = Field(5, ge=2, description="Number of trailing samples in the window.")
    threshold: float = Field(
        0.05, gt=0, lt=1, description="The window passes when its CV is below this value."
    )
    ddof: int = Field(
        1,
        ge=0,
        le=1,
        description="Delta degrees of freedom of the standard deviation: 1 gives the sample "
        "standard deviation (divide by window - 1), 0 the population formula (divide by window).",
    )


def cv_from_moments(
    mean: NDArray[np.float64] | float, m2: NDArray[np.float64] | float, window: int, ddof: int
) -> NDArray[np.float64]:
    """CV = sd / mean from a window's mean and sum of squared deviations; NaN if mean <= 0."""
    mean = np.asarray(mean, dtype=np.float64)
    sd = np.sqrt(np.asarray(m2, dtype=np.float64) / (window - ddof))
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = sd / mean
    return np.where(mean > 0, cv, np.nan)


@register_criterion
class RollingCV(Criterion):
    r"""Coefficient of variation of the last ``window`` samples below a threshold.

    .. math::

        \mathrm{CV}_t = \frac{s_t}{\bar x_t}, \qquad
        s_t^2 = \frac{1}{w - \mathrm{ddof}} \sum_{i=t-w+1}^{t} (x_i - \bar x_t)^2

    The criterion passes at ``t`` when ``CV_t < threshold``. The statistic is
    NaN until ``window`` samples have been seen, and when the window's mean is
    not positive (such a window never passes: a zero or negative "latency" is
    not a stable one).

    The moments come from `llenergymeasure.criteria._rolling`: blocked,
    shifted sums that are exact for large means with tiny noise and do not
    accumulate error along the series (never naive running sums of squares).
    ``update`` is O(1) amortised, ``evaluate`` O(n), and the two agree.

    Parameters
    ----------
    window : int, default 5
        Number of trailing samples.
    threshold : float, default 0.05
        Pass when the CV is below this value (0 < threshold < 1).
    ddof : {1, 0}, default 1
        1 for the sample standard deviation, 0 for the population formula. The
        population CV of a window of w samples is sqrt((w-1)/w) times the
        sample CV, so ddof=0 makes the test easier to pass on small windows.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] A. Georges, D. Buytaert and L. Eeckhout, "Statistically rigorous Java
       performance evaluation", OOPSLA 2007 (CoV over a window of iterations as
       the steady-state test).
    .. [2] B. P. Welford, "Note on a method for calculating corrected sums of
       squares and products", Technometrics 4(3), 1962.
    """

    name = "rolling_cv"
    Params = RollingCVParams
    scale_invariant = True
    sweep_parameter = ("threshold", "<")
    statistic_label = "CV"
    statistic_is_percent = True

    def __init__(
        self, window: int = 5, threshold: float = 0.05, ddof: int = 1, *, signal: str = "latency_ms"
    ) -> None:
        super().__init__(window=window, threshold=threshold, ddof=ddof, signal=signal)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return int(self.params.window)

    def _reset(self) -> None:
        self._moments = RollingMoments(self.params.window)
        # Plain copies of the (frozen) parameters for the per-sample path.
        self._dof = self.params.window - self.params.ddof
        self._threshold = self.params.threshold

    def _update(self, x: float, t: float | None) -> None:
        res = self._moments.push(x)
        if res is None:
            return
        mean, m2 = res
        if mean > 0:
            cv = math.sqrt(m2 / self._dof) / mean
        else:
            cv = math.nan
        self.statistic_ = cv
        self.passed_ = cv < self._threshold

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        mean, m2 = rolling_moments(x, p.window)
        cv = cv_from_moments(mean, m2, p.window, p.ddof)
        with np.errstate(invalid="ignore"):
            passed = cv < p.threshold
        return Evaluation(cv, passed)
