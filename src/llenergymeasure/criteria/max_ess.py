"""Chodera's maximum-effective-sample-size truncation (pymbar ``detect_equilibration``)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from llenergymeasure.criteria._autocov import SuffixAutocov, constant_suffix, fft_autocov
from llenergymeasure.criteria._schedule import CheckResult, ScheduledTruncation, ScheduleParams
from llenergymeasure.criteria.registry import register_criterion

__all__ = ["MaxESS", "MaxESSResult", "max_ess_truncation", "statistical_inefficiencies"]

#: Relative tolerance under which two effective sample sizes count as tied.
_TIE_RTOL = 1e-9

#: Lag steps always done for all origins at once.
LAG_CAP = 48
#: Cost of one FFT autocovariance in lag steps: the remaining origins go to an FFT once
#: the lag steps done exceed this many per remaining origin (the ski-rental rule).
FFT_STEPS = 4


def _lag_sequence(limit: int, fast: bool) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Lags visited by pymbar's loop (1, 2, 3, ... or 1, 2, 4, 7, ... when fast) and increments."""
    if not fast:
        lags = np.arange(1, max(limit, 1), dtype=np.int64)
        return lags, np.ones_like(lags)
    # Step j visits 1 + j (j + 1) / 2 with increment j + 1.
    j = np.arange(int(np.sqrt(2.0 * max(limit, 1))) + 2, dtype=np.int64)
    lags = 1 + j * (j + 1) // 2
    keep = lags < limit
    return lags[keep], (j + 1)[keep]


def _g_from_acf(c: NDArray[np.float64], n: int, mintime: int, fast: bool) -> float:
    """pymbar's truncated sum for one origin, from its normalised ACF ``c`` (lags 0..n-1)."""
    lags, incs = _lag_sequence(n - 1, fast)
    if lags.size == 0:
        return 1.0
    cl = c[lags]
    stop = np.flatnonzero((cl <= 0.0) & (lags > mintime))
    end = int(stop[0]) if stop.size else lags.size
    terms = 2.0 * cl[:end] * (1.0 - lags[:end] / n) * incs[:end]
    return max(1.0, 1.0 + float(np.sum(terms)))


def statistical_inefficiencies(
    x: ArrayLike, origins: ArrayLike, mintime: int = 3, fast: bool = False
) -> NDArray[np.float64]:
    r"""Statistical inefficiency :math:`g` of ``x[i:]`` for every origin ``i``, all at once.

    For a suffix of length :math:`N` with fluctuations :math:`\delta x` and
    :math:`\sigma^2 = \overline{\delta x^2}`,

    .. math::

        C(t) = \frac{\sum_{j<N-t} \delta x_j\,\delta x_{j+t}}{(N - t)\,\sigma^2}, \qquad
        g = 1 + 2 \sum_{t=1}^{t_\mathrm{stop}-1} C(t)\,\Bigl(1 - \frac{t}{N}\Bigr)\,
        \Delta t,

    where the sum stops at the first lag :math:`t > \text{mintime}` with
    :math:`C(t) \le 0` ("first negative", Chodera et al. 2007) or at
    :math:`t = N - 1`, :math:`\Delta t = 1` (or growing 1, 2, 3, ... when
    ``fast``), and :math:`g \ge 1`. This is pymbar's ``statistical_inefficiency``.

    Lags are computed for all origins together by
    :class:`~llenergymeasure.criteria._autocov.SuffixAutocov` (O(n) per lag);
    once more than ``LAG_CAP`` lag steps and ``FFT_STEPS`` steps per origin still
    summing have been done, the remaining origins get the whole ACF by FFT
    (O(N log N) each), so the work is at most about twice the cheaper of the two.
    A constant suffix gets :math:`g = N` (one effective sample, pymbar's fallback
    for a zero variance).

    Returns
    -------
    ndarray of float, one per origin.
    """
    arr = np.asarray(x, dtype=np.float64)
    org = np.asarray(origins, dtype=np.int64)
    n = arr.shape[0]
    nn = (n - org).astype(np.float64)
    g = np.ones(org.shape[0])
    const = constant_suffix(arr)[org] if org.size else np.zeros(0, dtype=bool)
    g[const] = nn[const]
    ac = SuffixAutocov(arr)
    live = ~const & (nn > 2)  # a suffix of 2 samples has no lag below N - 1
    sigma2 = np.ones(org.shape[0])
    idx = np.flatnonzero(live)
    if idx.size:
        sigma2[idx] = ac.lag(0, org[idx]) / nn[idx]
    lags, incs = _lag_sequence(n - 1, fast)
    for step, (t, inc) in enumerate(zip(lags, incs, strict=True)):
        idx = np.flatnonzero(live & (t < nn - 1))
        live &= t < nn - 1
        if idx.size == 0:
            break
        if step >= LAG_CAP and step >= FFT_STEPS * idx.size:
            for j in idx:
                seg = arr[org[j] :]
                acov = fft_autocov(seg)
                m = seg.shape[0]
                c = acov / ((m - np.arange(m)) * (acov[0] / m))
                g[j] = _g_from_acf(c, m, mintime, fast)
            live[idx] = False
            break
        c = ac.lag(int(t), org[idx]) / ((nn[idx] - t) * sigma2[idx])
        stop = (c <= 0.0) & (t > mintime)
        go = idx[~stop]
        g[go] += 2.0 * c[~stop] * (1.0 - t / nn[go]) * inc
        live[idx[stop]] = False
    return np.maximum(g, 1.0)


class MaxESSResult(NamedTuple):
    """Outcome of :func:`max_ess_truncation`."""

    t0: int
    g: float
    neff: float


def max_ess_truncation(
    x: ArrayLike, nskip: int = 1, mintime: int = 3, fast: bool = False, neff_offset: int = 0
) -> MaxESSResult:
    r"""The truncation that maximises the effective sample size of what is kept.

    .. math::

        t_0 = \operatorname*{arg\,max}_{t \in \{0, s, 2s, \dots\},\ t < T - 1}
        N_\mathrm{eff}(t), \qquad
        N_\mathrm{eff}(t) = \frac{T - t + \text{neff\_offset}}{g(t)},

    with :math:`g(t)` from :func:`statistical_inefficiencies` and stride
    :math:`s` = ``nskip``. The segment ``x[t:]`` has :math:`T - t` samples, so
    ``neff_offset=0`` is the correct count; pymbar's ``detect_equilibration``
    uses :math:`T - t + 1` (``neff_offset=1`` reproduces it, which can move the
    argmax by a sample where two origins nearly tie). A constant series gives
    ``(0, 1, 1)`` as in pymbar (issue #122).

    Cost: O(T/s) origins, computed together in O(T) per lag step plus an
    O(T log T) FFT for each origin that needs many lags; pymbar is O(T/s · T · L).

    References
    ----------
    .. [1] J. D. Chodera, "A simple method for automated equilibration detection
       in molecular simulations", JCTC 12(4), 2016.
    """
    arr = np.asarray(x, dtype=np.float64)
    T = arr.shape[0]
    if T < 2 or float(arr.min()) == float(arr.max()):
        return MaxESSResult(0, 1.0, 1.0)
    origins = np.arange(0, T - 1, int(nskip), dtype=np.int64)
    g = statistical_inefficiencies(arr, origins, mintime=mintime, fast=fast)
    neff = (T - origins + neff_offset) / g
    # The first origin within rounding of the maximum: an exact argmax would let a
    # last-bit difference between two tied origins (which rescaling the series can
    # flip) move the truncation.
    j = int(np.argmax(neff >= neff.max() * (1.0 - _TIE_RTOL)))
    return MaxESSResult(int(origins[j]), float(g[j]), float(neff[j]))




class MaxESSParams(ScheduleParams):
    """Parameters of :class:`MaxESS`."""

    nskip: int = Field(1, ge=1, le=10_000, description="Stride between candidate origins.")
    mintime: int = Field(
        3, ge=0, description="Sum the ACF at least to this lag before stopping at C(t) <= 0."
    )
    fast: bool = Field(
        False, description="pymbar's fast mode: visit lags 1, 2, 4, 7, ... (growing increments)."
    )
    min_neff: float = Field(
        20.0, gt=0, description="Pass when at least this many effective samples remain after t0."
    )
    max_fraction: float = Field(
        0.5, gt=0, le=1, description="Pass only when t0 lies in the first max_fraction of the data."
    )


@register_criterion
class MaxESS(ScheduledTruncation):
    r"""Chodera's maximum effective sample size truncation, re-evaluated on a schedule.

    At each check point the prefix of length :math:`n` is analysed by
    :func:`max_ess_truncation`; the truncation is :math:`t_0`, the statistic the
    effective sample size :math:`N_\mathrm{eff}(t_0) = (n - t_0)/g(t_0)`, and the
    criterion passes when

    .. math::

        N_\mathrm{eff}(t_0) \ge \text{min\_neff} \quad\text{and}\quad
        t_0 \le \text{max\_fraction} \cdot n.

    Online cost: a check is O(n/nskip) work per lag step (plus FFTs for origins
    inside a trend), done every ``every`` samples (or geometrically with
    ``growth > 1``); between checks an update is O(1).

    Parameters
    ----------
    nskip : int, default 1
        Candidate stride (pymbar's ``nskip``).
    mintime : int, default 3
        pymbar's ``mintime``.
    fast : bool, default False
        pymbar's ``fast`` lag schedule (pymbar's own default is True).
    min_neff : float, default 20
        Effective samples needed after the cut.
    max_fraction : float, default 0.5
        Largest admissible cut as a fraction of the samples.
    min_samples, every, growth
        Check schedule.
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] J. D. Chodera, "A simple method for automated equilibration detection
       in molecular simulations", JCTC 12(4), 2016.
    .. [2] J. D. Chodera, W. C. Swope, J. W. Pitera, C. Seok and K. A. Dill,
       "Use of the weighted histogram analysis method for the analysis of
       simulated and parallel tempering simulations", JCTC 3(1), 2007.
    .. [3] M. R. Shirts and J. D. Chodera, pymbar, ``timeseries.detect_equilibration``.
    """

    name = "max_ess"
    Params = MaxESSParams
    scale_invariant = True
    cost_class = "moderate"
    statistic_label = "Neff"

    @property
    def threshold(self) -> float:
        return float(self.params.min_neff)

    def _check(self, x: NDArray[np.float64]) -> CheckResult:
        p = self.params
        res = max_ess_truncation(x, nskip=p.nskip, mintime=p.mintime, fast=p.fast)
        n = x.shape[0]
        ok = res.neff >= p.min_neff and res.t0 <= p.max_fraction * n
        return CheckResult(res.neff, bool(ok), res.t0)
