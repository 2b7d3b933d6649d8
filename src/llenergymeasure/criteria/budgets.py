"""Budget criteria: a fixed number of samples, or an amount of wall time."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria.base import Criterion, CriterionParams, Evaluation
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["FixedCount", "MaxDuration", "MinDuration"]


class FixedCountParams(CriterionParams):
    """Parameters of :class:`FixedCount`."""

    n: int = Field(10, ge=1, description="Pass once this many samples have been seen.")


@register_criterion
class FixedCount(Criterion):
    r"""Pass once ``n`` samples have been seen: the fixed warmup count of most harnesses.

    The statistic is the number of samples seen; it passes when it reaches
    ``n`` (``statistic >= n``). This is the rule of vLLM's
    ``--num-iters-warmup 10``, optimum-benchmark's ``warmup_runs=20``, JMH's
    fixed warmup iterations and BenchmarkDotNet's ``WarmupCount``; it is the
    baseline every adaptive rule has to beat.

    Parameters
    ----------
    n : int, default 10
        Samples to see before passing.
    signal : str, default "latency_ms"
        Recorded signal (only counted).

    References
    ----------
    .. [1] A. Shipilev et al., JMH: Java Microbenchmark Harness (fixed warmup
       iterations), https://github.com/openjdk/jmh.
    .. [2] vLLM, ``vllm bench latency --num-iters-warmup`` (default 10).
    """

    name = "fixed_count"
    Params = FixedCountParams
    scale_invariant = True
    sweep_parameter = ("n", ">=")
    detects_steady_state = False
    statistic_label = "n"

    @property
    def threshold(self) -> float:
        return float(self.params.n)

    @property
    def min_samples(self) -> int:
        """It passes from the ``n``-th sample on."""
        return int(self.params.n)

    def _reset(self) -> None:
        pass

    def _update(self, x: float, t: float | None) -> None:
        self.statistic_ = float(self.n_seen_ + 1)
        self.passed_ = self.statistic_ >= self.params.n

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        count = np.arange(1, x.shape[0] + 1, dtype=np.float64)
        return Evaluation(count, count >= self.params.n)


class DurationParams(CriterionParams):
    """Parameters of the duration criteria."""

    seconds: float = Field(60.0, gt=0, description="Wall time in seconds since the first sample.")


class _Duration(Criterion):
    Params = DurationParams
    scale_invariant = True
    needs_time = True
    sweep_parameter = ("seconds", ">=")
    detects_steady_state = False
    statistic_label = "elapsed_s"

    @property
    def threshold(self) -> float:
        return float(self.params.seconds)

    def _reset(self) -> None:
        pass

    def _update(self, x: float, t: float | None) -> None:
        self.statistic_ = float(t)  # type: ignore[arg-type]
        self.passed_ = self.statistic_ >= self.params.seconds

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        assert t is not None  # guaranteed by Criterion.evaluate (needs_time)
        return Evaluation(t.copy(), t >= self.params.seconds)


@register_criterion
class MinDuration(_Duration):
    r"""Pass once ``seconds`` of wall time have elapsed: a time floor, for ``all_of``.

    The statistic is the elapsed time ``t`` (seconds from the start of the
    first sample to the end of the current one); it passes when
    ``t >= seconds``. Combined as ``all_of(rolling_cv,min_duration:seconds=60)``
    it keeps warming up until both the latency is stable and the GPU has run
    for a thermal floor (the 60 s of MLPerf Power and ML.ENERGY practice).

    Parameters
    ----------
    seconds : float, default 60
        The floor in seconds.
    signal : str, default "latency_ms"
        Recorded signal (unused).

    References
    ----------
    .. [1] A. Tschand et al., "MLPerf Power: benchmarking the energy efficiency
       of machine learning systems", arXiv:2410.12032, 2024.
    .. [2] J.-W. Chung et al., "The ML.ENERGY Benchmark", arXiv:2505.06371, 2025.
    """

    name = "min_duration"


@register_criterion
class MaxDuration(_Duration):
    r"""Pass once ``seconds`` of wall time have elapsed: a time budget, for ``any_of``.

    Same statistic as :class:`MinDuration` (elapsed seconds, passing when
    ``t >= seconds``), used the other way round:
    ``any_of(rolling_cv,max_duration:seconds=300)`` stops at convergence or
    after five minutes, whichever comes first. The composite reports which
    child passed, so a timeout is never mistaken for a convergence.

    Parameters
    ----------
    seconds : float, default 60
        The budget in seconds.
    signal : str, default "latency_ms"
        Recorded signal (unused).

    References
    ----------
    .. [1] NVIDIA NVBench, ``--timeout`` (a wall-time budget per measurement),
       https://github.com/NVIDIA/nvbench.
    """

    name = "max_duration"
