"""BenchmarkDotNet's automatic warmup stop: count direction reversals."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from llenergymeasure.criteria.base import (
    Criterion,
    CriterionConfigError,
    CriterionParams,
    Evaluation,
)
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["BDNFluctuation"]


class BDNFluctuationParams(CriterionParams):
    """Parameters of :class:`BDNFluctuation` (defaults of BenchmarkDotNet's ``EngineResolver``)."""

    min_iterations: int = Field(
        6,
        ge=0,
        description="Never pass before this many samples (BenchmarkDotNet "
        "MinWarmupIterationCount, default 6).",
    )
    max_iterations: int = Field(
        50,
        ge=1,
        description="Always pass once this many samples have been seen (BenchmarkDotNet "
        "MaxWarmupIterationCount, default 50).",
    )
    min_fluctuations: int = Field(
        4,
        ge=0,
        description="Number of direction changes required (BenchmarkDotNet "
        "AutoWarmupStoppingCriteria.DefaultMinFluctuationCount, 4).",
    )


@register_criterion
class BDNFluctuation(Criterion):
    r"""BenchmarkDotNet's ``AutoWarmupStoppingCriteria``: stop after enough "fluctuations".

    With :math:`d_i = \operatorname{sign}(x_i - x_{i-1})` for :math:`i \ge 1`
    and the "pre-state" :math:`d_0 = -1` (BenchmarkDotNet starts in "decrease
    mode"), sample :math:`i` is a fluctuation when the direction changes or
    the series stands still,

    .. math::

        f_i = [\, d_i \ne d_{i-1} \;\lor\; d_i = 0 \,], \qquad
        F_n = \sum_{i=1}^{n-1} f_i ,

    (after every step the running direction equals :math:`d_i`, which is why
    the previous direction is simply :math:`d_{i-1}`). After :math:`n`
    samples the criterion passes when

    .. math::

        n \ge n_{\max} \quad\text{or}\quad (n \ge n_{\min} \text{ and } F_n \ge F_{\min}).

    The statistic is :math:`F_n`. A monotone decrease gives no fluctuation (the
    first step of an increase counts one), so a warmup that keeps getting
    faster continues until ``max_iterations``. BenchmarkDotNet re-scans the
    whole history at every check (O(n) per check); here ``update`` is O(1)
    and ``evaluate`` O(n), with identical counts.

    The rule reacts to the sign of single steps, so measurement noise makes
    it stop soon after ``min_iterations`` whatever the trend: it is a
    premature-stop baseline, not a steady-state detector (hence
    ``detects_steady_state = False``).

    Parameters
    ----------
    min_iterations : int, default 6
        BenchmarkDotNet ``MinWarmupIterationCount``.
    max_iterations : int, default 50
        BenchmarkDotNet ``MaxWarmupIterationCount``.
    min_fluctuations : int, default 4
        BenchmarkDotNet ``DefaultMinFluctuationCount``.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] A. Akinshin et al., BenchmarkDotNet, ``src/BenchmarkDotNet/Engines/
       StoppingCriteria/AutoWarmupStoppingCriteria.cs`` and ``EngineResolver.cs``,
       https://github.com/dotnet/BenchmarkDotNet.
    .. [2] A. Akinshin, *Pro .NET Benchmarking*, Apress, 2019, ch. 4 (warmup stage).
    """

    name = "bdn_fluctuation"
    Params = BDNFluctuationParams
    scale_invariant = True
    detects_steady_state = False
    statistic_label = "fluct"

    def __init__(
        self,
        min_iterations: int = 6,
        max_iterations: int = 50,
        min_fluctuations: int = 4,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            min_iterations=min_iterations,
            max_iterations=max_iterations,
            min_fluctuations=min_fluctuations,
            signal=signal,
        )

    def _validate(self) -> None:
        p = self.params
        if p.min_iterations > p.max_iterations:
            raise CriterionConfigError(
                f"criterion {self.name!r}: min_iterations ({p.min_iterations}) must not exceed "
                f"max_iterations ({p.max_iterations})"
            )

    @property
    def threshold(self) -> float:
        return float(self.params.min_fluctuations)

    @property
    def min_samples(self) -> int:
        """The fewest samples after which the criterion can pass."""
        p = self.params
        return min(
            p.max_iterations, max(1, p.min_iterations, p.min_fluctuations + 1)
        )

    def _reset(self) -> None:
        self._last = 0.0
        self._direction = -1
        self._fluctuations = 0

    def _update(self, x: float, t: float | None) -> None:
        n = self.n_seen_ + 1
        if n > 1:
            diff = x - self._last
            d = (diff > 0) - (diff < 0)
            if d != self._direction or d == 0:
                self._fluctuations += 1
            self._direction = d
        self._last = x
        p = self.params
        self.statistic_ = float(self._fluctuations)
        self.passed_ = n >= p.max_iterations or (
            n >= p.min_iterations and self._fluctuations >= p.min_fluctuations
        )

    def _evaluate(self, x: NDArray[np.float64], t: NDArray[np.float64] | None) -> Evaluation:
        n = x.shape[0]
        p = self.params
        d = np.sign(np.diff(x)).astype(np.int64)
        prev = np.concatenate([[-1], d[:-1]]) if n > 1 else d
        flags = (d != prev) | (d == 0)
        count = np.concatenate([[0], np.cumsum(flags)]).astype(np.float64)[:n]
        seen = np.arange(1, n + 1)
        passed = (seen >= p.max_iterations) | (
            (seen >= p.min_iterations) & (count >= p.min_fluctuations)
        )
        return Evaluation(count, passed)
