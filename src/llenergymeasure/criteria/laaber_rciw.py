"""Laaber et al. (FSE 2020) dynamic reconfiguration, relative CI width variant."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._laaber import (
    OUTLIER_FACTOR,
    DeltaCriterion,
    delta_history_field,
    filter_outliers,
    pool,
)
from llenergymeasure.criteria._sorted_window import linear_quantile
from llenergymeasure.criteria.base import CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["LaaberRCIW", "bootstrap_rciw"]

#: Bootstrap indices drawn and averaged per block (1 MiB of indices: in cache).
_BLOCK_ELEMENTS = 1 << 18


class LaaberRCIWParams(CriterionParams):
    """Parameters of :class:`LaaberRCIW`."""

    threshold: float = Field(
        0.03, gt=0, lt=1, description="Stable when the largest change of the RCIW over the "
        "history is below this (sealuzh/jmh -rci 0.03)."
    )
    history: int = delta_history_field()
    alpha: float = Field(
        0.01, gt=0, lt=0.5, description="Significance level of the bootstrap CI of the mean "
        "(CI_SIGNIFICANCE_LEVEL 0.01: a 99% interval)."
    )
    n_boot: int = Field(
        1000, ge=10, le=100_000, description="Bootstrap simulations (CI_BOOTSTRAP_SIMULATIONS "
        "1000)."
    )
    sample_size: int = Field(
        10_000, ge=10, description="Pooled measurements are subsampled to this many "
        "(CI_SAMPLE_SIZE 10000)."
    )
    outlier_factor: float = Field(
        OUTLIER_FACTOR, gt=1, description="Keep median/factor <= x <= factor*median "
        "(OUTLIER_FACTOR 10)."
    )
    seed: int = Field(0, ge=0, description="Seed of the subsampling and the bootstrap.")


def bootstrap_rciw(values: NDArray[np.float64], alpha: float, n_boot: int, seed: int,
                   step: int) -> float:
    """(upper - lower) / mean of a percentile bootstrap CI of the mean of ``values``.

    Resampling indices come from ``default_rng([seed, step, 1])``, drawn
    ``integers(0, m, size=(n_boot, m))`` row-major; NaN for fewer than 2
    values or a non-positive mean. The resamples are drawn and averaged in
    blocks of rows of about :data:`_BLOCK_ELEMENTS` indices (32-bit), which
    stay in cache: the generator yields the same stream in blocks as in one
    call, and each row's mean is the same reduction, so the result is that of
    one ``(n_boot, m)`` draw to the bit, in a few MiB instead of
    ``16 n_boot m`` bytes. The time is that of the ``n_boot * m`` bounded
    draws themselves.
    """
    m = values.shape[0]
    mean = float(np.mean(values)) if m else math.nan
    if m < 2 or not mean > 0:
        return math.nan
    rng = np.random.default_rng([seed, step, 1])
    rows = max(1, _BLOCK_ELEMENTS // m)
    means = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(start + rows, n_boot)
        idx = rng.integers(0, m, size=(stop - start, m), dtype=np.int32)
        means[start:stop] = values[idx].mean(axis=1)
    means.sort()
    return float((linear_quantile(means, 1 - alpha / 2) - linear_quantile(means, alpha / 2))
                 / mean)


@register_criterion
class LaaberRCIW(DeltaCriterion):
    r"""Laaber et al.'s RCIW criterion: the relative CI width of the pooled mean has settled.

    At sample :math:`i`, all samples so far are pooled (subsampled to 10,000
    when larger), outliers outside :math:`[\tilde x/10, 10\tilde x]` are
    removed (:math:`\tilde x` the pool's median), and a 99% percentile
    bootstrap interval :math:`[l_i, u_i]` of the mean :math:`\bar x_i` is
    computed from 1,000 resamples:

    .. math::

        \mathrm{RCIW}_i = \frac{u_i - l_i}{\bar x_i}, \qquad
        V_i = \max_{j=1..h-1} \left| \mathrm{RCIW}_i - \mathrm{RCIW}_{i-j} \right|

    The criterion passes when :math:`V_i <` ``threshold`` (0.03, :math:`h=5`).
    The statistic is :math:`V_i`. One sample is one JMH iteration. All random
    draws at step :math:`i` come from generators seeded with
    ``(seed, i)``, so a replay reproduces the online run exactly.

    The RCIW of a pool of :math:`i` samples shrinks like
    :math:`1/\sqrt{i}`, so its changes shrink too: the criterion measures that
    the precision has stopped improving fast, not that the level is steady;
    a warmup transient stays in the pool for ever and a slow drift passes.

    Cost: O(B min(i, 10000)) per update (the original's cost: a bootstrap
    over all measurements at every iteration); offline the same per step.
    Scale invariant.

    Parameters
    ----------
    threshold : float, default 0.03
        Largest change of the RCIW over the history (``-rci``).
    history : int, default 5
        Iterations in the history, h.
    alpha : float, default 0.01
        One minus the confidence level of the bootstrap interval.
    n_boot : int, default 1000
        Bootstrap simulations.
    sample_size : int, default 10000
        Subsample size of the pooled measurements.
    outlier_factor : float, default 10
        Keep values within this factor of the pool's median.
    seed : int, default 0
        Seed of the subsampling and the bootstrap.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
       reconfiguring software microbenchmarks: reducing execution time without
       sacrificing result quality", ESEC/FSE 2020; JMH fork
       https://github.com/sealuzh/jmh (``-rm ci -rci 0.03``).
    .. [2] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*,
       Chapman & Hall, 1993.
    """

    name = "laaber_rciw"
    Params = LaaberRCIWParams
    scale_invariant = True
    sweep_parameter = ("threshold", "<")
    cost_class = "heavy"
    statistic_label = "dRCIW"

    def __init__(
        self,
        threshold: float = 0.03,
        history: int = 5,
        alpha: float = 0.01,
        n_boot: int = 1000,
        sample_size: int = 10_000,
        outlier_factor: float = OUTLIER_FACTOR,
        seed: int = 0,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            threshold=threshold, history=history, alpha=alpha, n_boot=n_boot,
            sample_size=sample_size, outlier_factor=outlier_factor, seed=seed, signal=signal,
        )

    def _step_statistic(self, prefix: NDArray[np.float64], step: int) -> float:
        p = self.params
        values = filter_outliers(pool(prefix, step, p.sample_size, p.seed), p.outlier_factor)
        return bootstrap_rciw(values, p.alpha, p.n_boot, p.seed, step)
