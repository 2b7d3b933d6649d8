r"""Offline changepoint machinery of the reference labellers: R's PELT and CROPS, and Kneedle.

This module serves `llenergymeasure.analysis.reference` only. It reproduces, to the
last bit where that matters, the pieces of R's `changepoint` package (2.2.x:
`cpt.meanvar(method="PELT")` with a manual penalty and with `penalty="CROPS"`) and of
`kneed` 0.7.0 that the published labellers of Traini et al. (2023) and Barrett et al.
(2017) used, so that their labels can be recomputed from the raw series in Python.

Why bit-exact
-------------
On JMH series in seconds (values near $10^{-9}$, often a handful of distinct values),
most segments have a variance at the level of the rounding error of
$\sum x^2 - (\sum x)^2/m$, and R replaces a non-positive one by $10^{-11}$. The
costs, hence the CROPS path and its knee, are then decided by floating-point noise:
a CROPS path of the published pipeline evaluates hundreds of penalties, many below its
own lower bound. Only the same arithmetic, in the same order, gives the same path.
`crops` and `r_pelt_meanvar` therefore follow R's code step by step:

- the summary statistics are `c(0, cumsum(x))` and `c(0, cumsum(x^2))`, where R's
  `cumsum` accumulates in `long double` (80-bit on x86-64);
- the segment cost is `mll_meanvar` of `cost_general_functions.c`,
  $m\,(\log 2\pi + \log\hat\sigma^2 + 1)$ with
  $\hat\sigma^2 = (S_2 - S_1^2/m)/m$ replaced by $10^{-11}$ when it is not positive,
  evaluated with the C library's `log` (numba calls it; numpy's vectorised `log`
  differs from it in the last bit on some CPUs);
- PELT is `PELTC` of `PELT_one_func_minseglen.c`: `lastchangelike[0] = -pen`,
  segments shorter than `2 * minseglen` at the start take their cost alone, the
  candidate set starts as $\{0, \text{minseglen}\}$, the first minimum wins, and a
  candidate is kept while its value is at most the optimum plus the penalty;
- CROPS is `range_of_penalties` of changepoint 2.2.x, with its sort of each list on
  its own, its `all.equal` test for penalties already evaluated, its removal of equal
  changepoint counts and its `beta_interval` row, which is what `pen.value.full`
  returns.

Costs do not depend on the penalty, so a CROPS path computes them once for every
segment (a triangle of $n(n+1)/2$ values, 36 MB at $n = 3000$) and each PELT run
only adds and compares; above `COST_CACHE_MAX_N` samples they are computed on the fly.
With numba the kernels are compiled; without it a vectorised numpy fallback with the
same arithmetic (and the C library's `log` through `math.log`) gives the same answers,
many times slower.

References
----------
- R. Killick, P. Fearnhead and I. A. Eckley, "Optimal detection of changepoints with a
  linear computational cost", JASA 107(500):1590-1598, 2012 (PELT).
- K. Haynes, I. A. Eckley and P. Fearnhead, "Computationally efficient changepoint
  detection for a range of penalties", JCGS 26(1):134-143, 2017 (CROPS).
- R. Killick and I. A. Eckley, "changepoint: an R package for changepoint analysis",
  J. Stat. Softw. 58(3), 2014; source of version 2.2.x, `rkillick/changepoint`.
- V. Satopaa, J. Albrecht, D. Irwin and B. Raghavan, "Finding a 'kneedle' in a
  haystack: detecting knee points in system behavior", ICDCS Workshops 2011; `kneed`
  0.7.0 (`arvkevi/kneed`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from llenergymeasure.criteria.pelt import (
    R_CHANGEPOINT_VAR_FLOOR,
    pelt_changepoints,
    segment_costs,
)

try:  # numba compiles the R kernels; without it a numpy fallback gives the same answers
    from numba import njit as _njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is not installed
    HAVE_NUMBA = False

__all__ = [
    "COST_CACHE_MAX_N",
    "CropsPath",
    "KneeResult",
    "RPelt",
    "crops",
    "kneedle_elbow",
    "normal_meanvar_cost",
    "pelt_normal",
    "r_pelt_meanvar",
    "r_sumstat",
    "segmentation_cost",
    "window_outlier_mask",
]

logger = logging.getLogger(__name__)

#: Variance floor of R's `changepoint` for segments whose MLE variance is not positive.
VARIANCE_FLOOR = R_CHANGEPOINT_VAR_FLOOR

#: Longest series for which a CROPS path keeps every segment cost in memory (8 n^2/2 bytes).
COST_CACHE_MAX_N = 6000

#: `log(2 * M_PI)` as R's C code computes it (correctly rounded).
_LOG_2PI = math.log(2.0 * math.pi)


def _as_series(x: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D series, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"series has a non-finite value at index {int(bad[0])}")
    return arr


# ----------------------------------------------------------------------------------------
# The criteria layer's PELT with R's variance handling (Barrett-style classifier)
# ----------------------------------------------------------------------------------------


def normal_meanvar_cost(x: ArrayLike) -> float:
    r"""Normal mean-and-variance cost $m \log \hat\sigma^2$ of one segment (no constant).

    $\hat\sigma^2$ is the MLE variance, replaced by $10^{-11}$ when it is not positive,
    as in R's `changepoint`.
    """
    arr = _as_series(x)
    if arr.size < 1:
        raise ValueError("a segment needs at least one sample")
    return segmentation_cost(arr, [arr.size])


def segmentation_cost(x: ArrayLike, breakpoints: list[int]) -> float:
    """Unpenalised total cost of a segmentation given by exclusive segment ends.

    The sum of `llenergymeasure.criteria.pelt.segment_costs` with the Normal cost and
    R's variance floor: the objective `pelt_normal` minimises, less the penalties.
    """
    arr = _as_series(x)
    costs = segment_costs(
        arr, list(breakpoints), "normal", var_floor=VARIANCE_FLOOR, var_floor_mode="replace"
    )
    return float(costs.sum())


def pelt_normal(x: ArrayLike, penalty: float, *, min_size: int = 2) -> list[int]:
    r"""Optimal partition under the Normal mean-var cost, by the criteria layer's PELT.

    `llenergymeasure.criteria.pelt.pelt_changepoints` with `cost="normal"`,
    `jump=1` and R's variance floor (`var_floor=1e-11`, `var_floor_mode="replace"`):
    it minimises $\sum_k C(x_{\tau_{k-1}:\tau_k}) + \beta K$ over segmentations with
    segments of at least `min_size` samples. It is the same model as
    `r_pelt_meanvar` with numerically steadier sums (shifted by the median); use
    `r_pelt_meanvar` to reproduce R's output bit for bit.

    Returns
    -------
    list of int
        Sorted exclusive segment ends; the last is `len(x)` (`[]` for an empty series,
        `[n]` when `n < 2 * min_size`).

    References
    ----------
    - Killick, Fearnhead and Eckley, JASA 2012 (see the module references).
    """
    arr = _as_series(x)
    n = arr.size
    if penalty < 0 or not math.isfinite(penalty):
        raise ValueError(f"penalty must be finite and >= 0, got {penalty}")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    if n < 2 * max(min_size, 2):
        return [n] if n else []
    return pelt_changepoints(
        arr,
        float(penalty),
        cost="normal",
        min_size=min_size,
        jump=1,
        var_floor=VARIANCE_FLOOR,
        var_floor_mode="replace",
    )


# ----------------------------------------------------------------------------------------
# R changepoint 2.2.x, bit for bit
# ----------------------------------------------------------------------------------------


def r_sumstat(x: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """R's summary statistics `c(0, cumsum(x))` and `c(0, cumsum(x^2))`.

    R's `cumsum` adds in `long double` and rounds each partial sum to a double; `x^2`
    is `x * x` in double.
    """
    arr = _as_series(x)
    s1 = np.zeros(arr.size + 1)
    s2 = np.zeros(arr.size + 1)
    s1[1:] = np.cumsum(arr.astype(np.longdouble)).astype(np.float64)
    s2[1:] = np.cumsum((arr * arr).astype(np.longdouble)).astype(np.float64)
    return s1, s2


def _cost_py(x: float, x2: float, m: int) -> float:
    """`mll_meanvar` of R's `cost_general_functions.c` for one segment."""
    nm = float(m)
    sigsq = (x2 - (x * x) / nm) / nm
    if sigsq <= 0.0:
        sigsq = 1e-11
    return nm * ((_LOG_2PI + math.log(sigsq)) + 1.0)


_log_ufunc = np.frompyfunc(math.log, 1, 1)


def _costs_to_np(s1: NDArray[np.float64], s2: NDArray[np.float64], t: int, c: NDArray[np.int64]):
    """Vectorised `mll_meanvar` of segments `c..t` (numpy fallback, libm `log`)."""
    m = (t - c).astype(np.float64)
    x = s1[t] - s1[c]
    x2 = s2[t] - s2[c]
    sigsq = (x2 - (x * x) / m) / m
    sigsq = np.where(sigsq <= 0.0, 1e-11, sigsq)
    logs = _log_ufunc(sigsq).astype(np.float64)
    return m * ((_LOG_2PI + logs) + 1.0)


def _cost_table_np(s1: NDArray[np.float64], s2: NDArray[np.float64]) -> NDArray[np.float64]:
    n = s1.size - 1
    out = np.empty(n * (n + 1) // 2)
    for t in range(1, n + 1):
        off = t * (t - 1) // 2
        out[off : off + t] = _costs_to_np(s1, s2, t, np.arange(t, dtype=np.int64))
    return out


def _pelt_np(
    s1: NDArray[np.float64],
    s2: NDArray[np.float64],
    table: NDArray[np.float64],
    pen: float,
    minseglen: int,
) -> tuple[NDArray[np.int64], float, int]:
    """`PELTC` with numpy vector steps (the fallback of `_pelt_nb`)."""
    n = s1.size - 1
    like = np.zeros(n + 1)
    lastcpt = np.zeros(n + 1, dtype=np.int64)
    numcpt = np.zeros(n + 1, dtype=np.int64)
    like[0] = -pen
    for j in range(minseglen, 2 * minseglen):
        like[j] = _cost_py(float(s1[j]), float(s2[j]), j)
        numcpt[j] = 1
    check = np.array([0, minseglen], dtype=np.int64)
    for t in range(2 * minseglen, n + 1):
        if like[t] == 0.0:
            if table.size:
                cost = table[t * (t - 1) // 2 + check]
            else:
                cost = _costs_to_np(s1, s2, t, check)
            tmp = (like[check] + cost) + pen
            w = int(np.argmin(tmp))
            best = tmp[w]
            like[t] = best
            lastcpt[t] = check[w]
            numcpt[t] = numcpt[lastcpt[t]] + 1
            check = check[tmp <= best + pen]
        check = np.append(check, t - (minseglen - 1))
    return _backtrack(lastcpt, n), float(like[n]), int(numcpt[n])


def _backtrack(lastcpt: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    out = []
    last = n
    while last != 0:
        out.append(last)
        last = int(lastcpt[last])
    return np.asarray(out[::-1], dtype=np.int64)


if HAVE_NUMBA:

    @_njit(cache=True)
    def _cost_nb(x: float, x2: float, m: int) -> float:  # pragma: no cover - compiled
        nm = float(m)
        sigsq = (x2 - (x * x) / nm) / nm
        if sigsq <= 0.0:
            sigsq = 1e-11
        return nm * ((1.8378770664093453 + math.log(sigsq)) + 1.0)

    @_njit(cache=True)
    def _cost_table_nb(s1: Any, s2: Any) -> Any:  # pragma: no cover - compiled
        n = s1.size - 1
        out = np.empty(n * (n + 1) // 2)
        for t in range(1, n + 1):
            off = t * (t - 1) // 2
            for c in range(t):
                out[off + c] = _cost_nb(s1[t] - s1[c], s2[t] - s2[c], t - c)
        return out

    @_njit(cache=True)
    def _pelt_nb(  # pragma: no cover - compiled
        s1: Any, s2: Any, table: Any, pen: float, minseglen: int
    ) -> Any:
        # R's PELTC, one end t at a time, in simple passes over the candidate list
        # instead of one loop with a compare-and-branch chain: drop the candidates pruned
        # at t-1 (value > optimum + pen, R's test), in order; evaluate the rest; take
        # their minimum (four independent running minima, compiled branch-free), then
        # the first candidate that reaches it (R's first minimum: `<` over the list in
        # order); count those to prune (vectorised). The values are R's
        # `(lastchangelike[c] + cost) + pen`, each computed once, and the minimum of a
        # set does not depend on the order it is taken in, so the output is the
        # one-pass loop's bit for bit.
        n = s1.size - 1
        cached = table.size > 0
        like = np.zeros(n + 1)
        lastcpt = np.zeros(n + 1, np.int64)
        numcpt = np.zeros(n + 1, np.int64)
        cand = np.empty(n + 1, np.int64)
        cand_like = np.empty(n + 1)  # lastchangelike of each candidate, kept alongside
        val = np.empty(n + 1)
        like[0] = -pen
        for j in range(minseglen, 2 * minseglen):
            like[j] = _cost_nb(s1[j], s2[j], j)
            numcpt[j] = 1
        nch = 2
        cand[0] = 0
        cand[1] = minseglen
        cand_like[0] = like[0]
        cand_like[1] = like[minseglen]
        val[0] = -np.inf
        val[1] = -np.inf
        lim = np.inf
        npruned = 0
        for t in range(2 * minseglen, n + 1):
            if like[t] == 0.0:
                # (unsigned indexes spare numba's negative-index wraparound code)
                if npruned > 0:
                    k = 0
                    for i in range(np.uint64(nch)):
                        if val[i] <= lim:
                            cand[np.uint64(k)] = cand[i]
                            cand_like[np.uint64(k)] = cand_like[i]
                            k += 1
                    nch = k
                if cached:
                    off = t * (t - 1) // 2
                    for i in range(np.uint64(nch)):
                        val[i] = (cand_like[i] + table[np.uint64(off + cand[i])]) + pen
                else:
                    for i in range(nch):
                        c = cand[i]
                        cost = _cost_nb(s1[t] - s1[c], s2[t] - s2[c], t - c)
                        val[i] = (cand_like[i] + cost) + pen
                # the minimum, over four interleaved running minima
                m0 = val[0]
                m1 = m0
                m2 = m0
                m3 = m0
                i = 1
                while i + 4 <= nch:
                    if val[i] < m0:
                        m0 = val[i]
                    if val[i + 1] < m1:
                        m1 = val[i + 1]
                    if val[i + 2] < m2:
                        m2 = val[i + 2]
                    if val[i + 3] < m3:
                        m3 = val[i + 3]
                    i += 4
                while i < nch:
                    if val[i] < m0:
                        m0 = val[i]
                    i += 1
                if m1 < m0:
                    m0 = m1
                if m2 < m0:
                    m0 = m2
                if m3 < m0:
                    m0 = m3
                w = 0
                while not (val[w] == m0):
                    w += 1
                best = val[w]
                like[t] = best
                lastcpt[t] = cand[w]
                numcpt[t] = numcpt[cand[w]] + 1
                lim = best + pen
                npruned = 0
                for i in range(np.uint64(nch)):
                    npruned += val[i] > lim
            c = t - (minseglen - 1)
            cand[nch] = c
            cand_like[nch] = like[c]
            val[nch] = -np.inf
            nch += 1
        ncp = 0
        last = n
        while last != 0:
            ncp += 1
            last = lastcpt[last]
        out = np.empty(ncp, np.int64)
        last = n
        for i in range(ncp - 1, -1, -1):
            out[i] = last
            last = lastcpt[last]
        return out, like[n], numcpt[n]

    @_njit(cache=True)
    def _window_outliers_nb(  # pragma: no cover - compiled
        x: Any, window: int, k: float, i_lo: int, g_lo: float, i_hi: int, g_hi: float
    ) -> Any:
        # The sliding window is kept sorted (one removal and one insertion per step),
        # so its median and quantiles are read off instead of partitioning each window.
        n = x.size
        srt = np.sort(x[:window])
        hit = np.zeros(n, np.bool_)
        half = window // 2
        for i in range(n - window + 1):
            if i > 0:
                p = np.searchsorted(srt, x[i - 1])  # an entry equal to the leaving value
                new = x[i + window - 1]
                q = np.searchsorted(srt, new)
                if q > p:
                    for j in range(p, q - 1):
                        srt[j] = srt[j + 1]
                    srt[q - 1] = new
                else:
                    for j in range(p, q, -1):
                        srt[j] = srt[j - 1]
                    srt[q] = new
            med = srt[half] if window % 2 else (srt[half - 1] + srt[half]) / 2.0
            lo_a = srt[i_lo]
            d = srt[i_lo + 1] - lo_a
            p_lo = srt[i_lo + 1] - d * (1.0 - g_lo) if g_lo >= 0.5 else lo_a + d * g_lo
            hi_a = srt[i_hi]
            d = srt[i_hi + 1] - hi_a
            p_hi = srt[i_hi + 1] - d * (1.0 - g_hi) if g_hi >= 0.5 else hi_a + d * g_hi
            band = k * (p_hi - p_lo)
            upper = med + band
            lower = med - band
            if srt[0] >= lower and srt[window - 1] <= upper:
                continue  # nothing in this window is beyond its bounds
            for j in range(i, i + window):
                if x[j] > upper or x[j] < lower:
                    hit[j] = True
        return hit


_compiled_ok: bool | None = None


def _use_compiled() -> bool:
    """Whether the numba kernels are there and give libm's `log` bit for bit.

    numba with Intel's SVML vectorises `log` with a less exact routine; the first call
    compares the compiled cost table with the `math.log` one on a probe series and
    falls back to numpy when they differ.
    """
    global _compiled_ok
    if _compiled_ok is None:
        _compiled_ok = False
        if HAVE_NUMBA:
            rng = np.random.default_rng(12345)
            probe = np.round(rng.lognormal(-20.0, 0.5, 200), 28)
            s1, s2 = r_sumstat(probe)
            _compiled_ok = bool(np.array_equal(_cost_table_nb(s1, s2), _cost_table_np(s1, s2)))
            if not _compiled_ok:  # pragma: no cover - depends on the numba build
                logger.warning("numba's log differs from libm's; using the numpy kernels")
    return _compiled_ok


def _window_outliers_np(x: NDArray[np.float64], window: int, k: float) -> NDArray[np.bool_]:
    """`window_outlier_mask` with numpy's `median` and `quantile` on every window."""
    win = sliding_window_view(x, window)
    med = np.median(win, axis=1)
    p1, p99 = np.quantile(win, [0.01, 0.99], axis=1)
    band = k * (p99 - p1)
    hi = (med + band)[:, None]
    lo = (med - band)[:, None]
    dev = (win > hi) | (win < lo)
    hit = np.zeros(x.size, dtype=bool)
    w_idx, off = np.nonzero(dev)
    hit[w_idx + off] = True
    return hit


def window_outlier_mask(x: ArrayLike, window: int, k: float) -> NDArray[np.bool_]:
    r"""Samples outside median $\pm k\,(P_{99} - P_1)$ of some window of `window` samples.

    The flagging step of Traini et al.'s outlier filter (see
    `llenergymeasure.analysis.reference.traini_outliers`): for every window of `window`
    consecutive samples, its median $m$ and its 1st and 99th percentiles as
    `numpy.median` and `numpy.quantile` (method "linear") compute them, and a flag on
    each sample of the window with $x > m + k (P_{99} - P_1)$ or
    $x < m - k (P_{99} - P_1)$.

    With numba the window is kept sorted as it slides and the statistics are read off
    with numpy's arithmetic (the mean of the two middle values; its `_lerp` for the
    percentiles, with numpy's own virtual indexes and weights), so the flags are
    numpy's exactly, in $O(n w)$ instead of a partition per window.

    Returns
    -------
    numpy.ndarray
        Boolean mask over `x` (all false when `x` is shorter than `window`).
    """
    arr = _as_series(x)
    if window < 1:
        raise ValueError(f"outlier window must be >= 1, got {window}")
    if arr.size < window:
        return np.zeros(arr.size, dtype=bool)
    virtual = (window - 1) * np.array([0.01, 0.99])  # numpy's "linear" virtual indexes
    prev = np.floor(virtual)
    gamma = virtual - prev
    inside = bool(np.all(prev >= 0) and np.all(prev + 1 <= window - 1))
    if not (HAVE_NUMBA and inside):
        return _window_outliers_np(arr, window, float(k))
    return _window_outliers_nb(
        arr, int(window), float(k), int(prev[0]), float(gamma[0]), int(prev[1]), float(gamma[1])
    )


class RPelt:
    """R's PELT (`PELTC`, Normal mean-and-variance cost) on one series, for many penalties.

    The summary statistics are R's (`r_sumstat`), and the cost of every segment is
    computed once (below `COST_CACHE_MAX_N` samples, with `cache=True`) and shared by
    the runs.

    Parameters
    ----------
    x : array_like
        The series (1-D, finite, at least `2 * minseglen` values).
    minseglen : int, default 2
        R's minimum segment length (at least 2).
    cache : bool, default True
        Keep the segment costs between runs.
    """

    def __init__(self, x: ArrayLike, minseglen: int = 2, *, cache: bool = True) -> None:
        arr = _as_series(x)
        if arr.size < 2:
            raise ValueError("R's PELT needs at least 2 observations")
        if minseglen < 2:
            raise ValueError(f"minseglen of cpt.meanvar is at least 2, got {minseglen}")
        if arr.size < 2 * minseglen:
            raise ValueError(
                f"minseglen={minseglen} is too large for {arr.size} observations "
                "(R's cpt.meanvar needs at least 2 * minseglen)"
            )
        self.n = arr.size
        self.minseglen = int(minseglen)
        self.s1, self.s2 = r_sumstat(arr)
        self.table = np.empty(0)
        if cache and self.n <= COST_CACHE_MAX_N:
            compiled = _use_compiled()
            self.table = (_cost_table_nb if compiled else _cost_table_np)(self.s1, self.s2)

    def run(self, pen: float) -> tuple[NDArray[np.int64], float, int]:
        """R's `PELT(...)`: (1-based changepoints ending with n, lastchangelike[n], segments)."""
        kernel = _pelt_nb if _use_compiled() else _pelt_np
        cpts, like_n, nseg = kernel(self.s1, self.s2, self.table, float(pen), self.minseglen)
        return np.asarray(cpts, dtype=np.int64), float(like_n), int(nseg)


def r_pelt_meanvar(x: ArrayLike | RPelt, penalty: float, *, minseglen: int = 2) -> list[int]:
    r"""`cpt.meanvar(x, method="PELT", penalty="Manual", pen.value=penalty)@cpts`, bit for bit.

    Parameters
    ----------
    x : array_like or RPelt
        The series (1-D, finite, at least `2 * minseglen` values), or an `RPelt` of it
        (whose costs are reused and whose `minseglen` applies).
    penalty : float
        `pen.value`, the penalty per changepoint.
    minseglen : int, default 2
        R's minimum segment length (at least 2 for the Normal mean-and-variance cost).

    Returns
    -------
    list of int
        R's changepoints: 1-based last indexes of the segments, ending with `len(x)`
        (the cost-function slot, which keeps `n`); equivalently, exclusive 0-based
        segment ends.

    References
    ----------
    - Killick, Fearnhead and Eckley, JASA 2012; Killick and Eckley, J. Stat. Softw.
      2014 (see the module references).
    """
    if not math.isfinite(penalty):
        raise ValueError(f"penalty must be finite, got {penalty}")
    pelt = x if isinstance(x, RPelt) else RPelt(x, minseglen, cache=False)
    return [int(c) for c in pelt.run(float(penalty))[0]]


def _r_all_equal(target: float, current: float, tolerance: float = 1.5e-8) -> bool:
    """R's `isTRUE(all.equal(target, current))` for two finite numbers."""
    xy = abs(target - current)
    xn = abs(target)
    if math.isfinite(xn) and xn > tolerance:
        xy = xy / xn
    return xy <= tolerance


@dataclass(frozen=True)
class CropsPath:
    """What `cpt.meanvar(..., penalty="CROPS")` returns, in R's order.

    Attributes
    ----------
    penalties : numpy.ndarray
        `pen.value.full`: the lower end of the penalty interval of each segmentation
        (R's `beta_interval` row), in R's order (increasing when the costs are
        monotone; with rounding noise, not always).
    n_changepoints : numpy.ndarray
        Changepoints of each segmentation (the rows of `cpts.full`), paired with
        `penalties` as the published Python code pairs them.
    segmentations : list of list of int
        The rows of `cpts.full`: 1-based changepoints, without `0` and `n`.
    tested : numpy.ndarray
        Every penalty at which PELT ran, sorted (R's `test_penalties` before pruning).
    n_runs : int
        Number of PELT runs.
    """

    penalties: NDArray[np.float64]
    n_changepoints: NDArray[np.intp]
    segmentations: list[list[int]] = field(default_factory=list)
    tested: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    n_runs: int = 0


def crops(
    x: ArrayLike | RPelt, beta_min: float, beta_max: float, *, min_size: int = 2
) -> CropsPath:
    r"""`cpt.meanvar(x, method="PELT", penalty="CROPS", pen.value=c(beta_min, beta_max))`.

    The Changepoints for a Range Of PenaltieS algorithm as R's `changepoint` 2.2.x codes
    it (`range_of_penalties`): PELT at both ends; then, each round, for every pair of
    neighbours in the sorted lists whose changepoint counts differ by more than one,
    PELT at the penalty where their costs cross, $(Q_j - Q_i)\,(m_i - m_j)^{-1}$,
    unless `all.equal` finds it among the penalties already run. Counts are sorted
    decreasing and costs increasing, each on its own. At the end, neighbours with equal
    counts are merged and `pen.value.full` is the lower end of each interval:
    the first penalty run, then $(Q_k - Q_{k+1})/(m_{k+1} - m_k)$.

    Parameters
    ----------
    x : array_like or RPelt
        The series, or an `RPelt` of it (whose costs are reused and whose `minseglen`
        applies).
    beta_min, beta_max : float
        The penalty range (swapped if reversed, as R does).
    min_size : int, default 2
        R's `minseglen`.

    Returns
    -------
    CropsPath

    References
    ----------
    - Haynes, Eckley and Fearnhead, JCGS 2017; `range_of_penalties.R` of changepoint
      2.2.x (see the module references).
    """
    if not (math.isfinite(beta_min) and math.isfinite(beta_max)):
        raise ValueError(f"CROPS needs finite penalties, got [{beta_min}, {beta_max}]")
    if beta_max < beta_min:
        beta_min, beta_max = beta_max, beta_min
    pelt = x if isinstance(x, RPelt) else RPelt(x, min_size)
    pen_interval = [float(beta_min), float(beta_max)]
    test_penalties: list[float] = []
    counts: list[int] = []
    costs: list[float] = []
    segs: list[list[int]] = []
    runs = 0
    while pen_interval:
        new_num: list[int] = []
        new_cost: list[float] = []
        new_segs: list[list[int]] = []
        for pen in pen_interval:
            cpts, like_n, nseg = pelt.run(pen)
            runs += 1
            new_num.append(int(cpts.size))
            new_segs.append(cpts[:-1].tolist())
            new_cost.append(like_n - (nseg - 1) * pen)
        test_penalties = sorted(set(test_penalties) | set(pen_interval))
        all_num = counts + new_num
        all_cost = costs + new_cost
        all_segs = segs + new_segs
        counts = sorted(all_num, reverse=True)
        costs = sorted(all_cost)
        order = sorted(range(len(all_segs)), key=lambda i: -len(all_segs[i]))  # stable
        segs = [all_segs[i] for i in order]
        pen_interval = []
        for i in range(len(test_penalties) - 1):
            if abs(counts[i] - counts[i + 1]) > 1:
                j = i + 1
                pen_interval.append((costs[j] - costs[i]) * (1.0 / (counts[i] - counts[j])))
        tested = np.asarray(test_penalties)
        for k in range(len(pen_interval) - 1, -1, -1):
            idx = int(np.argmin(np.abs(pen_interval[k] - tested)))
            if _r_all_equal(pen_interval[k], test_penalties[idx]):
                del pen_interval[k]
    all_tested = np.asarray(test_penalties, dtype=np.float64)
    for j in range(len(test_penalties) - 1, 0, -1):
        if j < len(counts) and counts[j] == counts[j - 1]:
            for seq in (counts, test_penalties, costs, segs):
                if j < len(seq):
                    del seq[j]
    nb = len(test_penalties)
    beta_int = [0.0] * nb
    beta_e = [0.0] * nb
    for k in range(nb):
        beta_int[k] = test_penalties[0] if k == 0 else beta_e[k - 1]
        if k == nb - 1:
            beta_e[k] = test_penalties[k]
        else:
            beta_e[k] = (costs[k] - costs[k + 1]) / (counts[k + 1] - counts[k])
    n_cpts = [len(s) for s in segs]
    if len(beta_int) == len(n_cpts) + 1:  # as the published code pairs them
        n_cpts.append(0)
    return CropsPath(
        penalties=np.asarray(beta_int, dtype=np.float64),
        n_changepoints=np.asarray(n_cpts, dtype=np.intp),
        segmentations=segs,
        tested=all_tested,
        n_runs=runs,
    )


# ----------------------------------------------------------------------------------------
# kneed 0.7.0
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KneeResult:
    """Outcome of `kneedle_elbow`.

    Attributes
    ----------
    elbow : float or None
        The `x` of the elbow (`KneeLocator.elbow`), or None.
    reason : str
        `"knee"`, `"no local maximum"`, `"no knee"`, or `"index error"`: kneed 0.7.0
        reads one point past the end of a curve whose normalised `x` never reaches 1
        after its first local maximum (decreasing `x`), and raises `IndexError`.
    """

    elbow: float | None
    reason: str


def _argrelextrema(d: NDArray[np.float64], greater: bool) -> NDArray[np.intp]:
    """`scipy.signal.argrelextrema(d, np.greater_equal or np.less_equal)` (mode clip)."""
    prev = np.concatenate((d[:1], d[:-1]))
    nxt = np.concatenate((d[1:], d[-1:]))
    if greater:
        flag = (d >= prev) & (d >= nxt)
    else:
        flag = (d <= prev) & (d <= nxt)
    return np.flatnonzero(flag)


def kneedle_elbow(x: ArrayLike, y: ArrayLike, *, sensitivity: float = 1.0) -> KneeResult:
    r"""`kneed.KneeLocator(x, y, S, curve="convex", direction="decreasing").elbow`, as 0.7.0.

    The steps of kneed 0.7.0 with `interp_method="interp1d"` and `online=False`:

    1. $y$ through `scipy.interpolate.interp1d(x, y)` at `x` (for float `x` and integer
       `y` that is `numpy.interp` on the stably sorted points: a repeated `x` takes the
       `y` of its last occurrence);
    2. both axes normalised to $[0, 1]$ by their minimum and maximum;
       $\tilde y \leftarrow \max \tilde y - \tilde y$;
       difference curve $d = \tilde y - \tilde x$;
    3. local maxima and minima of $d$ (`argrelextrema` with `>=` / `<=`, ends clipped);
       thresholds $T = d_{\max} - S\,|\overline{\Delta \tilde x}|$;
    4. from the first maximum on, stop at a point whose $\tilde x$ is 1; at a maximum
       take its threshold, at a minimum reset it to 0; the first point whose successor
       falls below the threshold gives the elbow, the `x` of the last maximum. Running
       off the end is kneed's `IndexError`.

    Parameters
    ----------
    x, y : array_like
        The curve, in the order given to kneed (any order of `x`).
    sensitivity : float, default 1.0
        Kneedle's `S`.

    Returns
    -------
    KneeResult

    References
    ----------
    - Satopaa et al., ICDCS Workshops 2011; kneed 0.7.0 (see the module references).
    """
    xs = np.asarray(x, dtype=np.float64)
    yv = np.asarray(y)
    if xs.ndim != 1 or xs.shape != yv.shape:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if xs.size < 2:
        raise ValueError("kneed needs at least 2 points")
    order = np.argsort(xs, kind="mergesort")
    ds_y = np.interp(xs, xs[order], yv[order].astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = (xs - xs.min()) / (xs.max() - xs.min())
        yn = (ds_y - ds_y.min()) / (ds_y.max() - ds_y.min())
    yn = yn.max() - yn
    d = yn - xn
    maxima = _argrelextrema(d, greater=True)
    minima = _argrelextrema(d, greater=False)
    if maxima.size == 0:
        return KneeResult(None, "no local maximum")
    tmx = d[maxima] - sensitivity * np.abs(np.diff(xn).mean())
    max_pos = {int(i): k for k, i in enumerate(maxima)}
    min_set = {int(i) for i in minima}
    threshold = 0.0
    threshold_index = int(maxima[0])
    for i in range(int(maxima[0]), xs.size):
        if xn[i] == 1.0:
            return KneeResult(None, "no knee")
        if i in max_pos:
            threshold = float(tmx[max_pos[i]])
            threshold_index = i
        if i in min_set:
            threshold = 0.0
        if i + 1 >= xs.size:
            return KneeResult(None, "index error")
        if d[i + 1] < threshold:
            return KneeResult(float(xs[threshold_index]), "knee")
    return KneeResult(None, "no knee")
