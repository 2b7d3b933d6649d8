"""Laaber et al. (FSE 2020) dynamic reconfiguration, Kullback-Leibler divergence variant."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy import fft

from llenergymeasure.criteria._laaber import CumulativeCriterion, History, pool, trailing_min
from llenergymeasure.criteria._sorted_window import linear_quantile
from llenergymeasure.criteria.base import CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["LaaberKLD", "kde_similarity"]

#: Smallest normal float: the density floor that keeps KL finite where a KDE is 0.
_TINY = float(np.finfo(np.float64).tiny)


class LaaberKLDParams(CriterionParams):
    """Parameters of :class:`LaaberKLD`."""

    threshold: float = Field(
        0.99, gt=0, lt=1, description="Stable when the smallest similarity over the history "
        "exceeds this (sealuzh/jmh -rkld 0.99)."
    )
    history: int = Field(
        6, ge=3, description="Iterations in the history h; the last h-1 similarities are used "
        "(Laaber et al.: 6 for KLD)."
    )
    sample_size: int = Field(
        1000, ge=10, description="Each pool is subsampled to this many values (SAMPLE_SIZE 1000)."
    )
    grid: int = Field(1000, ge=10, description="Points of the density grid (1000).")
    seed: int = Field(0, ge=0, description="Seed of the subsampling.")


@dataclass(frozen=True, slots=True)
class _Pool:
    """One (subsampled) pool and what the similarity needs of it, computed once."""

    values: NDArray[np.float64]
    #: Tukey fences ``Q1 - 1.5 IQR`` and ``Q3 + 1.5 IQR``.
    lo: float
    hi: float
    #: Scott's bandwidth ``s m^(-1/5)`` (0 for a single value).
    bw: float
    constant: bool
    #: The last density computed, by grid ``(lo, delta, g)``: the next step compares
    #: this pool again, often on the same grid (a pool holding both extreme fences).
    memo: dict[tuple[float, float, int], NDArray[np.float64]] = field(default_factory=dict)


def _summarise(values: NDArray[np.float64]) -> _Pool:
    """Fences, bandwidth and constancy of a pool (one sort, one sd)."""
    s = np.sort(values)
    q1, q3 = float(linear_quantile(s, 0.25)), float(linear_quantile(s, 0.75))
    m = values.shape[0]
    sd = float(np.std(values, ddof=1)) if m > 1 else 0.0
    return _Pool(values, q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1), sd * m ** (-1.0 / 5.0),
                 bool(s[0] == s[-1]))


def _kde(p: _Pool, lo: float, delta: float, g: int) -> NDArray[np.float64]:
    """Binned Gaussian KDE of a pool on the grid ``lo + k delta`` (``k < g``), summing to 1.

    Linear binning onto the grid extended by ``pad`` = 6 bandwidths per side
    (capped at 10 grids), so values just outside it still contribute their
    tails (farther ones add < 1e-7), then a linear convolution with the
    kernel sampled at every offset, by real FFTs of length
    ``next_fast_len(3 e - 2)`` (Silverman 1982): the operations of
    ``scipy.signal.fftconvolve(counts, kernel, "full")`` without its
    per-call overhead, so the densities are those of that call to the bit.
    The result is kept in ``p.memo`` (one grid) and returned again for the same grid.
    """
    key = (lo, delta, g)
    if key in p.memo:
        return p.memo[key]
    pad = min(math.ceil(6.0 * p.bw / delta), 10 * g)
    e = g + 2 * pad
    u = (p.values - lo) / delta + pad
    u = u[(u >= 0) & (u <= e - 1)]
    j = np.minimum(np.floor(u).astype(np.int64), e - 2)
    frac = u - j
    counts = np.bincount(j, weights=1.0 - frac, minlength=e) + np.bincount(
        j + 1, weights=frac, minlength=e
    )
    offsets = np.arange(-(e - 1), e, dtype=np.float64) * (delta / p.bw)
    kernel = np.exp(-0.5 * offsets * offsets)
    n_fft = fft.next_fast_len(3 * e - 2, True)
    full = fft.irfft(fft.rfft(counts, n_fft) * fft.rfft(kernel, n_fft), n_fft)
    # The density is a few values out of a mostly-zero convolution: where it is
    # 0, FFT round-off leaves ~1e-17 noise; a floor at the smallest normal
    # float keeps KL finite there.
    dens = np.maximum(full[pad + e - 1 : pad + e - 1 + g], _TINY)
    dens /= float(dens.sum())
    p.memo.clear()
    p.memo[key] = dens
    return dens


def _similarity(p: _Pool, q: _Pool, n_grid: int) -> float:
    """:func:`kde_similarity` of two summarised pools."""
    lo = max(0.0, min(p.lo, q.lo))
    hi = max(p.hi, q.hi)
    delta = (hi - lo) / (n_grid - 1) if hi > lo else 0.0
    if not (delta > 0 and p.bw > 0 and q.bw > 0):
        same = p.constant and q.constant and p.values[0] == q.values[0]
        return 1.0 if same else 0.0
    pd, qd = _kde(p, lo, delta, n_grid), _kde(q, lo, delta, n_grid)
    with np.errstate(over="ignore"):  # disjoint supports: KL = inf, D = 0
        kl_pq = float(np.sum(pd * np.log2(pd / qd)))
        kl_qp = float(np.sum(qd * np.log2(qd / pd)))
    return 2.0 ** (-kl_pq) * 2.0 ** (-kl_qp)


def kde_similarity(p_values: NDArray[np.float64], q_values: NDArray[np.float64],
                   n_grid: int) -> float:
    r"""Laaber's similarity :math:`D = 2^{-KL(p\|q)} \cdot 2^{-KL(q\|p)}` of two samples.

    Densities are Gaussian KDEs (Scott's bandwidth, binned and FFT-convolved)
    on ``n_grid`` points over ``[max(0, min(Q1 - 1.5 IQR)), max(Q3 + 1.5 IQR)]``
    of the two samples. Two constant samples are 1 if equal and 0 otherwise.
    """
    return _similarity(_summarise(p_values), _summarise(q_values), n_grid)


@register_criterion
class LaaberKLD(CumulativeCriterion):
    r"""Laaber et al.'s KLD criterion: the distribution of all samples so far has settled.

    At sample :math:`i` the pools :math:`P_i = x_{1..i}` and
    :math:`P_{i-1} = x_{1..i-1}` are each subsampled to 1,000 values, and
    Gaussian kernel densities :math:`p, q` are evaluated on a 1,000-point grid
    spanning both pools' Tukey fences (clipped at 0). The similarity and the
    variability are

    .. math::

        D_i = 2^{-\mathrm{KL}(p\|q)}\, 2^{-\mathrm{KL}(q\|p)} \in [0, 1], \qquad
        V_i = \min_{j=0..h-2} D_{i-j}

    and the criterion passes when :math:`V_i >` ``threshold`` (0.99, with
    :math:`h = 6`: the last 5 similarities). The statistic is :math:`V_i`.
    One sample is one JMH iteration; subsamples at step :math:`i` are drawn
    with seed ``(seed, i)`` and ``(seed, i - 1)``, so a replay reproduces the
    online run exactly.

    The bandwidth is Scott's rule :math:`s\,m^{-1/5}`; the original's KDE
    implementation is not documented in the paper, so this choice is ours.
    Like the other two criteria it compares cumulative pools, which differ by
    one sample in :math:`i`: :math:`D_i \to 1` as :math:`i` grows whatever the
    level does, so late in a long series a drift passes; early on, a
    decaying warmup moves the pool's density and keeps it failing.

    The densities are binned KDEs (linear binning and an FFT convolution,
    Silverman 1982): O(grid log grid + min(i, 1000)) per update, two per
    step; offline the same per step. Both forms carry the previous pool from
    step to step (its subsample, fences and bandwidth, and its density when
    the grid repeats), so each step subsamples and summarises one new pool;
    the carried values are those a fresh computation gives, so online and
    offline agree exactly. Scale invariant (the grid, the bandwidth and the
    KDE all scale).

    Parameters
    ----------
    threshold : float, default 0.99
        Smallest similarity over the history (``-rkld``).
    history : int, default 6
        Iterations in the history, h (h - 1 similarities).
    sample_size : int, default 1000
        Subsample size of each pool.
    grid : int, default 1000
        Points of the density grid.
    seed : int, default 0
        Seed of the subsampling.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
       reconfiguring software microbenchmarks: reducing execution time without
       sacrificing result quality", ESEC/FSE 2020; JMH fork
       https://github.com/sealuzh/jmh (``-rm kld -rkld 0.99``, the default).
    .. [2] S. Kullback and R. A. Leibler, "On information and sufficiency",
       Annals of Mathematical Statistics 22(1), 1951.
    .. [3] D. W. Scott, *Multivariate Density Estimation*, Wiley, 1992.
    .. [4] B. W. Silverman, "Algorithm AS 176: kernel density estimation using
       the fast Fourier transform", Applied Statistics 31(1), 1982.
    """

    name = "laaber_kld"
    Params = LaaberKLDParams
    scale_invariant = True
    sweep_parameter = ("threshold", ">")
    cost_class = "heavy"
    statistic_label = "minD"

    def __init__(
        self,
        threshold: float = 0.99,
        history: int = 6,
        sample_size: int = 1000,
        grid: int = 1000,
        seed: int = 0,
        *,
        signal: str = "latency_ms",
    ) -> None:
        super().__init__(
            threshold=threshold, history=history, sample_size=sample_size, grid=grid, seed=seed,
            signal=signal,
        )

    @property
    def history(self) -> int:
        return self.params.history - 1

    def _summary(self, prefix: NDArray[np.float64], step: int) -> _Pool:
        p = self.params
        return _summarise(pool(prefix, step, p.sample_size, p.seed))

    def _step_statistic(self, prefix: NDArray[np.float64], step: int) -> float:
        if step < 2:
            return math.nan
        return _similarity(self._summary(prefix, step), self._summary(prefix[:-1], step - 1),
                           self.params.grid)

    def _advance(
        self, prev: _Pool | None, prefix: NDArray[np.float64], step: int
    ) -> tuple[float, _Pool]:
        """Similarity at ``step`` and the pool summary to carry to the next step.

        The previous pool at step ``i``, ``pool(x[:i], i - 1)``, is the current
        pool of step ``i - 1``: its subsample, fences and bandwidth are reused,
        so each step summarises one new pool. Equal to :meth:`_step_statistic`.
        """
        cur = self._summary(prefix, step)
        if step < 2 or prev is None:
            return math.nan, cur
        return _similarity(cur, prev, self.params.grid), cur

    def _reset(self) -> None:
        super()._reset()
        self._prev: _Pool | None = None

    def _push_statistic(self, x: float, step: int) -> float:
        stat, self._prev = self._advance(self._prev, self._append(x, step), step)
        return stat

    def _statistics(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty(x.shape[0])
        prev: _Pool | None = None
        for i in range(x.shape[0]):
            out[i], prev = self._advance(prev, x[: i + 1], i)
        return out

    def _variability(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        return trailing_min(s, self.history)

    def _variability_online(self, hist: History) -> float:
        return hist.min()

    def _passes(self, v: float | NDArray[np.float64]) -> bool | NDArray[np.bool_]:
        return v > self.params.threshold
