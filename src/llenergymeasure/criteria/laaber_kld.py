"""Laaber et al. (FSE 2020) dynamic reconfiguration, Kullback-Leibler divergence variant."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy import signal

from llenergymeasure.criteria._laaber import CumulativeCriterion, History, pool, trailing_min
from llenergymeasure.criteria._sorted_window import linear_quantile
from llenergymeasure.criteria.base import CriterionParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["LaaberKLD", "kde_similarity"]


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


def _kde(values: NDArray[np.float64], grid: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Gaussian KDE (Scott's bandwidth) on an even ``grid``, normalised to sum 1.

    Linear binning onto the grid (extended by 6 bandwidths) followed by an
    FFT convolution with the sampled kernel (Silverman 1982), O(grid log grid
    + m). None when the bandwidth is 0 or no value falls near the grid.
    """
    m = values.shape[0]
    sd = float(np.std(values, ddof=1)) if m > 1 else 0.0
    bw = sd * m ** (-1.0 / 5.0)
    g = grid.shape[0]
    delta = (grid[-1] - grid[0]) / (g - 1)
    if not (bw > 0 and delta > 0):
        return None
    # Bin on the grid extended by 6 bandwidths each side, so values just
    # outside it still contribute their tails; farther ones add < 1e-7.
    pad = min(math.ceil(6.0 * bw / delta), 10 * g)
    e = g + 2 * pad
    u = (values - grid[0]) / delta + pad
    u = u[(u >= 0) & (u <= e - 1)]
    j = np.minimum(np.floor(u).astype(np.int64), e - 2)
    frac = u - j
    counts = np.bincount(j, weights=1.0 - frac, minlength=e) + np.bincount(
        j + 1, weights=frac, minlength=e
    )
    offsets = np.arange(-(e - 1), e, dtype=np.float64) * (delta / bw)
    kernel = np.exp(-0.5 * offsets * offsets)
    full = signal.fftconvolve(counts, kernel, mode="full")
    # FFT round-off leaves ~1e-17 noise where the density is 0; a floor at the
    # smallest normal float keeps KL finite there and changes it by < 1e-13.
    dens = np.maximum(full[pad + e - 1 : pad + e - 1 + g], np.finfo(np.float64).tiny)
    total = float(dens.sum())
    return dens / total if total > 0 else None


def kde_similarity(p_values: NDArray[np.float64], q_values: NDArray[np.float64],
                   n_grid: int) -> float:
    r"""Laaber's similarity :math:`D = 2^{-KL(p\|q)} \cdot 2^{-KL(q\|p)}` of two samples.

    Densities are Gaussian KDEs on ``n_grid`` points over
    ``[max(0, min(Q1 - 1.5 IQR)), max(Q3 + 1.5 IQR)]`` of the two samples.
    Two constant samples are 1 if equal and 0 otherwise.
    """
    lo, hi = math.inf, -math.inf
    for v in (p_values, q_values):
        s = np.sort(v)
        q1, q3 = float(linear_quantile(s, 0.25)), float(linear_quantile(s, 0.75))
        lo = min(lo, q1 - 1.5 * (q3 - q1))
        hi = max(hi, q3 + 1.5 * (q3 - q1))
    lo = max(0.0, lo)
    grid = np.linspace(lo, hi, n_grid) if hi > lo else None
    p = None if grid is None else _kde(p_values, grid)
    q = None if grid is None else _kde(q_values, grid)
    if p is None or q is None:
        same = p_values.min() == p_values.max() == q_values.min() == q_values.max()
        return 1.0 if same else 0.0
    with np.errstate(over="ignore"):  # disjoint supports: KL = inf, D = 0
        kl_pq = float(np.sum(p * np.log2(p / q)))
        kl_qp = float(np.sum(q * np.log2(q / p)))
    return 2.0 ** (-kl_pq) * 2.0 ** (-kl_qp)


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
    step; offline the same per step. Scale invariant (the grid, the bandwidth
    and the KDE all scale).

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

    def _step_statistic(self, prefix: NDArray[np.float64], step: int) -> float:
        if step < 2:
            return math.nan
        p = self.params
        cur = pool(prefix, step, p.sample_size, p.seed)
        prev = pool(prefix[:-1], step - 1, p.sample_size, p.seed)
        return kde_similarity(cur, prev, p.grid)

    def _variability(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        return trailing_min(s, self.history)

    def _variability_online(self, hist: History) -> float:
        return hist.min()

    def _passes(self, v: float | NDArray[np.float64]) -> bool | NDArray[np.bool_]:
        return v > self.params.threshold
