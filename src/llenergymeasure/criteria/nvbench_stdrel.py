"""NVBench's ``stdrel`` stopping criterion: cumulative relative stdev, with noise convergence."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria._cumulative import RunningMeanSD, cumulative_mean_sd
from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["NVBenchStdRel", "noise_rel_sd"]

#: NVBench's ``statistics::standard_deviation`` returns +inf below 5 values.
NVBENCH_MIN_SD_VALUES = 5


class NVBenchStdRelParams(CriterionParams):
    """Parameters of :class:`NVBenchStdRel`."""

    max_noise: float = Field(
        0.005, gt=0, lt=1, description="Pass when the relative stdev of all samples so far is "
        "below this value (NVBench --max-noise 0.5%)."
    )
    min_time: float = Field(
        0.5, ge=0, description="Pass only once the summed samples exceed this many seconds "
        "(NVBench --min-time 0.5 s; the sum of measured times, not wall time)."
    )
    units_per_second: float = Field(
        1000.0, gt=0, description="Signal units per second, to convert the summed samples to "
        "seconds for min_time (1000 for latency_ms)."
    )
    min_samples: int = Field(
        10, ge=0, description="Pass only with more than this many samples (NVBench "
        "--min-samples 10; strict, as in measure_cold::is_finished)."
    )
    noise_history: int = Field(
        512, ge=2, description="Capacity of the ring buffer of noise values (NVBench: 512)."
    )
    min_noise_history: int = Field(
        64, ge=1, description="The convergence fallback needs more than this many noise values "
        "(NVBench: 64)."
    )
    convergence_every: int = Field(
        16, ge=1, description="The convergence fallback runs when the sample count is a multiple "
        "of this (NVBench: 16)."
    )
    convergence_threshold: float = Field(
        0.05, gt=0, lt=1, description="Noise has converged when the stdev of the noise history "
        "about the current noise, relative to it, is below this (NVBench: 5%)."
    )


def noise_rel_sd(history: NDArray[np.float64]) -> float:
    """NVBench's convergence statistic: sd of the history about its last value, over that value.

    ``sqrt(sum((h - h[-1])**2) / (m - 1)) / h[-1]``; +inf for fewer than 5 values.
    """
    m = history.shape[0]
    if m < NVBENCH_MIN_SD_VALUES:
        return math.inf
    cur = float(history[-1])
    d = history - cur
    return math.sqrt(float(np.sum(d * d)) / (m - 1)) / cur


@register_criterion
class NVBenchStdRel(Criterion):
    r"""NVBench ``stdrel``: relative stdev of every sample so far, or converged noise.

    After sample :math:`n` NVBench computes the relative standard deviation of
    *all* samples so far,

    .. math::

        \nu_n = \frac{s_n}{\bar x_n}, \qquad
        s_n^2 = \frac{1}{n-1}\sum_{i=1}^{n} (x_i - \bar x_n)^2

    (:math:`s_n = +\infty` for :math:`n < 5`), and pushes it into a noise ring
    buffer :math:`H` of 512 values when finite. It is finished when

    * :math:`n >` ``min_samples`` (10) and :math:`\sum_i x_i >` ``min_time``
      (0.5 s of measured time), and either
    * :math:`\nu_n <` ``max_noise`` (0.5%), or
    * the noise has converged above the target: :math:`|H| > 64`,
      :math:`n \equiv 0 \pmod{16}` and
      :math:`\sqrt{\sum_{h \in H}(h - \nu_n)^2 / (|H|-1)} / \nu_n < 0.05`.

    The statistic is :math:`\nu_n` (the last finite noise value). The
    fallback is what stops NVBench on inherently noisy kernels; for warmup it
    is also its weakness: :math:`\nu_n` is cumulative, so a warmup transient
    never leaves it, a slow drift converges like noise does, and the stop
    measures "the running CV stopped moving", not "the level is steady".
    NVBench's ``--timeout`` (15 s wall) is a budget: combine with
    ``max_duration``.

    The cumulative moments use shifted running sums (reference: the first
    sample) instead of NVBench's two-pass sum over all samples, O(1) per
    update instead of O(n); the convergence check is O(512) every 16 samples.
    The offline form uses ``numpy.cumsum`` (the same additions in the same
    order) and agrees bit for bit. Not scale invariant: ``min_time`` compares
    the summed samples with seconds.

    Parameters
    ----------
    max_noise : float, default 0.005
        Target relative stdev (NVBench ``--max-noise``).
    min_time : float, default 0.5
        Seconds of summed samples before any pass (NVBench ``--min-time``).
    units_per_second : float, default 1000
        Signal units per second (1000 for milliseconds).
    min_samples : int, default 10
        Pass only with more samples than this (NVBench ``--min-samples``).
    noise_history : int, default 512
        Capacity of the noise ring buffer.
    min_noise_history : int, default 64
        Noise values needed (strictly more) before the convergence fallback.
    convergence_every : int, default 16
        The fallback runs on sample counts divisible by this.
    convergence_threshold : float, default 0.05
        Relative spread of the noise history under which it has converged.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] NVIDIA NVBench, ``nvbench/detail/stdrel_criterion.cxx`` (defaults
       max-noise 0.005, min-time 0.5; noise tracker of 512; the 64 / 16 / 5%
       convergence rule), ``statistics.cuh`` (sd is +inf below 5 samples) and
       ``measure_cold.cu`` (``total_samples > min_samples``, default 10),
       https://github.com/NVIDIA/nvbench.
    """

    name = "nvbench_stdrel"
    Params = NVBenchStdRelParams
    scale_invariant = False
    statistic_label = "stdrel"
    statistic_is_percent = True

    def __init__(
        self,
        max_noise: float = 0.005,
        min_time: float = 0.5,
        units_per_second: float = 1000.0,
        min_samples: int = 10,
        noise_history: int = 512,
        min_noise_history: int = 64,
        convergence_every: int = 16,
        convergence_threshold: float = 0.05,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            max_noise=max_noise, min_time=min_time, units_per_second=units_per_second,
            min_samples=min_samples, noise_history=noise_history,
            min_noise_history=min_noise_history, convergence_every=convergence_every,
            convergence_threshold=convergence_threshold, signal=signal,
        )

    @property
    def threshold(self) -> float:
        return float(self.params.max_noise)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        return max(self.params.min_samples + 1, NVBENCH_MIN_SD_VALUES)

    def _reset(self) -> None:
        self._moments = RunningMeanSD()
        self._total = 0.0
        self._noise: deque[float] = deque(maxlen=self.params.noise_history)

    def _update(self, x: float, t: float | None) -> None:
        n = self.n_seen_ + 1
        mom = self._moments
        mom.push(x)
        self._total += x
        if n >= NVBENCH_MIN_SD_VALUES:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = float(np.float64(mom.sd()) / np.float64(mom.mean()))
            if math.isfinite(rel):
                self._noise.append(rel)
        if not self._noise:
            return
        cur = self._noise[-1]
        self.statistic_ = cur
        self.passed_ = self._finished(n, cur)

    def _finished(self, n: int, cur: float) -> bool:
        p = self.params
        if n <= p.min_samples or not self._total > p.min_time * p.units_per_second:
            return False
        if cur < p.max_noise:
            return True
        if len(self._noise) > p.min_noise_history and n % p.convergence_every == 0:
            return noise_rel_sd(np.asarray(self._noise)) < p.convergence_threshold
        return False

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        p = self.params
        n_all = x.shape[0]
        stat = np.full(n_all, np.nan)
        passed = np.zeros(n_all, dtype=bool)
        if n_all == 0:
            return Evaluation(stat, passed)
        mean, sd = cumulative_mean_sd(x)
        total = np.cumsum(x)
        n = np.arange(1, n_all + 1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = sd / mean
        rel[: NVBENCH_MIN_SD_VALUES - 1] = np.inf
        finite = np.isfinite(rel)
        seq = rel[finite]  # the noise values in push order
        count = np.cumsum(finite)  # noise values pushed after each sample
        have = count > 0
        stat[have] = seq[count[have] - 1]
        ok = (
            have
            & (n > p.min_samples)
            & (total > p.min_time * p.units_per_second)
        )
        with np.errstate(invalid="ignore"):
            passed = ok & (stat < p.max_noise)
        size = np.minimum(count, p.noise_history)
        checks = np.flatnonzero(
            ok & ~passed & (size > p.min_noise_history)
            & (np.arange(1, n_all + 1) % p.convergence_every == 0)
        )
        for i in checks:
            k = int(count[i])
            hist = seq[k - int(size[i]) : k]
            passed[i] = noise_rel_sd(hist) < p.convergence_threshold
        return Evaluation(stat, passed)
