"""Laaber et al. (FSE 2020) dynamic reconfiguration, coefficient-of-variation variant."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._cumulative import RunningMeanSD, cumulative_mean_sd
from llenergymeasure.criteria._laaber import DeltaCriterion, delta_history_field
from llenergymeasure.criteria.base import CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["LaaberCV", "cumulative_cv"]


class LaaberCVParams(CriterionParams):
    """Parameters of :class:`LaaberCV`."""

    threshold: float = Field(
        0.01, gt=0, lt=1, description="Stable when the largest change of the cumulative CV over "
        "the history is below this (sealuzh/jmh -rcov 0.01)."
    )
    history: int = delta_history_field()


def cumulative_cv(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """CV (sample sd / mean) of ``x[: i + 1]`` for every ``i``; NaN for ``i = 0`` or mean <= 0.

    Shifted running sums about ``x[0]`` accumulated with ``numpy.cumsum``
    (:func:`~llenergymeasure.criteria._cumulative.cumulative_mean_sd`; the
    online form adds in the same order).
    """
    n_all = x.shape[0]
    if n_all == 0:
        return np.empty(0)
    mean, sd = cumulative_mean_sd(x)
    n = np.arange(1, n_all + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = sd / mean
    return np.where((n > 1) & (mean > 0), cv, np.nan)


@register_criterion
class LaaberCV(DeltaCriterion):
    r"""Laaber et al.'s CV criterion: the cumulative CV has stopped changing.

    With :math:`\mathrm{CV}_i` the coefficient of variation (sample standard
    deviation over mean) of all samples :math:`x_1..x_i`, the variability is

    .. math::

        V_i = \max_{j=1..h-1} \left| \mathrm{CV}_i - \mathrm{CV}_{i-j} \right|

    and the criterion passes when :math:`V_i <` ``threshold`` (0.01, with
    :math:`h = 5`). The statistic is :math:`V_i`, NaN for the first ``h``
    samples.

    Mapping to a latency stream: one sample is one JMH iteration. The
    original filters outliers inside each iteration (``median/10 <= x <=
    10 median`` over the iteration's invocations) and subsamples 1,000
    invocations per iteration; with one value per iteration both are the
    identity. The CV uses shifted running sums: O(1) per update, O(n)
    offline (``numpy.cumsum``, the same additions), and the two agree bit for
    bit.

    Failure modes: the statistic is cumulative, so its change per sample
    shrinks like :math:`1/i` whatever the data do; after enough samples a slow
    drift passes, and a short series with a smooth decay can pass early.
    Scale invariant.

    Parameters
    ----------
    threshold : float, default 0.01
        Largest change of the cumulative CV over the history (``-rcov``).
    history : int, default 5
        Iterations in the history, h.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
       reconfiguring software microbenchmarks: reducing execution time without
       sacrificing result quality", ESEC/FSE 2020; JMH fork
       https://github.com/sealuzh/jmh (``-rm cov -rcov 0.01``).
    """

    name = "laaber_cv"
    Params = LaaberCVParams
    scale_invariant = True
    sweep_parameter = ("threshold", "<")
    statistic_label = "dCV"

    def __init__(
        self, threshold: float = 0.01, history: int = 5, *, signal: str = "latency_ms"
    ) -> None:
        super().__init__(threshold=threshold, history=history, signal=signal)

    def _reset(self) -> None:
        super()._reset()
        self._moments = RunningMeanSD()

    def _step_statistic(self, prefix: NDArray[np.float64], step: int) -> float:
        return float(cumulative_cv(prefix)[-1])

    def _push_statistic(self, x: float, step: int) -> float:
        mom = self._moments
        mom.push(x)
        mean = mom.mean()
        if mom.n < 2 or not mean > 0:
            return math.nan
        return mom.sd() / mean

    def _statistics(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return cumulative_cv(x)
