r"""Offline changepoint machinery for the reference labellers: CROPS and Kneedle over PELT.

This module serves :mod:`llenergymeasure.analysis.reference` only. It reproduces the
pieces of R's ``changepoint`` package (``cpt.meanvar(method="PELT")`` and its CROPS
penalty path) and of ``kneed`` that the published labellers of Barrett et al. and
Traini et al. used, so their labels can be recomputed from raw series in Python.

Segmentation is not re-implemented here: PELT is
:func:`llenergymeasure.criteria.pelt.pelt_changepoints`, the one the ``pelt`` criterion
uses, called with R's variance handling (``var_floor_mode="replace"``).

Cost
----
The segment cost is the Normal mean-and-variance cost of ``cpt.meanvar``: twice the
negative maximised log-likelihood of a Gaussian with the segment's own mean and MLE
variance, without the additive constant (it is the same for every segmentation):

.. math::

    C(x_{a:b}) = m \log \hat\sigma^2_{a:b}, \qquad
    \hat\sigma^2_{a:b} = \frac{1}{m}\sum_{i=a}^{b-1} (x_i - \bar x_{a:b})^2,
    \quad m = b - a,

with :math:`\hat\sigma^2` replaced by ``1e-11`` when it is not positive, as in the R
package (not added to it, as ``ruptures`` does: JMH times in seconds have variances far
below ``1e-11``). Breakpoints follow the ``ruptures`` convention: sorted exclusive segment
ends, the last one being ``n``.

References
----------
.. [1] R. Killick, P. Fearnhead and I. A. Eckley, "Optimal detection of changepoints
   with a linear computational cost", JASA 107(500):1590-1598, 2012 (PELT).
.. [2] K. Haynes, I. A. Eckley and P. Fearnhead, "Computationally efficient changepoint
   detection for a range of penalties", JCGS 26(1):134-143, 2017 (CROPS).
.. [3] V. Satopaa, J. Albrecht, D. Irwin and B. Raghavan, "Finding a 'kneedle' in a
   haystack: detecting knee points in system behavior", ICDCS Workshops 2011.
.. [4] R. Killick and I. A. Eckley, "changepoint: an R package for changepoint
   analysis", J. Stat. Softw. 58(3), 2014.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llenergymeasure.criteria.pelt import (
    R_CHANGEPOINT_VAR_FLOOR,
    pelt_changepoints,
    segment_costs,
)

__all__ = [
    "CropsPath",
    "crops",
    "kneedle_elbow",
    "normal_meanvar_cost",
    "pelt_normal",
    "segmentation_cost",
]

#: Variance floor of R's ``changepoint`` for segments whose MLE variance is not positive.
VARIANCE_FLOOR = R_CHANGEPOINT_VAR_FLOOR


def _as_series(x: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D series, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"series has a non-finite value at index {int(bad[0])}")
    return arr


def normal_meanvar_cost(x: ArrayLike) -> float:
    """Normal mean-and-variance cost of one segment (see the module docstring)."""
    arr = _as_series(x)
    if arr.size < 1:
        raise ValueError("a segment needs at least one sample")
    return segmentation_cost(arr, [arr.size])


def segmentation_cost(x: ArrayLike, breakpoints: list[int]) -> float:
    """Unpenalised total cost of a segmentation given by exclusive segment ends.

    The sum of :func:`llenergymeasure.criteria.pelt.segment_costs` with the Normal cost
    and R's variance floor: the objective :func:`pelt_normal` minimises, less the
    penalties.
    """
    arr = _as_series(x)
    costs = segment_costs(
        arr, list(breakpoints), "normal", var_floor=VARIANCE_FLOOR, var_floor_mode="replace"
    )
    return float(costs.sum())


def pelt_normal(x: ArrayLike, penalty: float, *, min_size: int = 2) -> list[int]:
    r"""Optimal partition of ``x`` under the Normal mean-var cost of R's ``cpt.meanvar``.

    :func:`llenergymeasure.criteria.pelt.pelt_changepoints` with ``cost="normal"``,
    ``jump=1`` and R's variance floor (``var_floor=1e-11``, ``var_floor_mode="replace"``):
    it minimises :math:`\sum_k C(x_{\tau_{k-1}:\tau_k}) + \beta K` over segmentations
    with segments of at least ``min_size`` samples.

    Parameters
    ----------
    x : array_like
        The series (1-D, finite).
    penalty : float
        The penalty :math:`\beta \ge 0` per changepoint (R's ``pen.value``).
    min_size : int, default 2
        Minimum segment length (R's ``minseglen``; ``ruptures``' ``min_size``); the
        Normal cost needs a variance, so values below 2 act as 2, as in R.

    Returns
    -------
    list of int
        Sorted exclusive segment ends; the last is ``len(x)`` (``[]`` for an empty
        series, ``[n]`` when ``n < 2 * min_size``).

    References
    ----------
    .. [1] Killick, Fearnhead and Eckley, JASA 2012 (see the module references).
    .. [4] Killick and Eckley, J. Stat. Softw. 2014 (see the module references).
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


@dataclass(frozen=True)
class CropsPath:
    """Result of :func:`crops`: the penalties evaluated and their segmentations.

    Attributes
    ----------
    penalties : numpy.ndarray
        Evaluated penalties, increasing.
    n_changepoints : numpy.ndarray
        Number of changepoints of the optimal segmentation at each penalty.
    breakpoints : list of list of int
        The segmentation at each penalty (exclusive ends, last is ``n``).
    """

    penalties: NDArray[np.float64]
    n_changepoints: NDArray[np.intp]
    breakpoints: list[list[int]]


def crops(x: ArrayLike, beta_min: float, beta_max: float, *, min_size: int = 2) -> CropsPath:
    r"""Changepoints for a Range Of PenaltieS (CROPS) with PELT and the Normal cost.

    Finds every optimal segmentation for penalties in ``[beta_min, beta_max]`` by
    evaluating PELT at the two ends and then, for each interval whose ends differ by
    more than one changepoint, at the penalty where the two optimal cost lines cross,
    :math:`\beta_{int} = (Q_1 - Q_0)/(m_0 - m_1)` (``Q`` the unpenalised cost, ``m``
    the number of changepoints), splitting the interval until no new segmentation
    appears.

    Parameters
    ----------
    x : array_like
        The series.
    beta_min, beta_max : float
        The penalty range, ``0 <= beta_min < beta_max``.
    min_size : int, default 2
        Minimum segment length.

    Returns
    -------
    CropsPath

    References
    ----------
    .. [1] Haynes, Eckley and Fearnhead, JCGS 2017 (see the module references).
    """
    arr = _as_series(x)
    if not (0 <= beta_min < beta_max):
        raise ValueError(f"need 0 <= beta_min < beta_max, got [{beta_min}, {beta_max}]")
    runs: dict[float, tuple[int, float, list[int]]] = {}

    def run(beta: float) -> tuple[int, float, list[int]]:
        if beta not in runs:
            bk = pelt_normal(arr, beta, min_size=min_size)
            runs[beta] = (len(bk) - 1, segmentation_cost(arr, bk), bk)
        return runs[beta]

    run(beta_min)
    run(beta_max)
    todo = [(beta_min, beta_max)]
    while todo:
        b0, b1 = todo.pop()
        m0, q0, _ = runs[b0]
        m1, q1, _ = runs[b1]
        if m0 > m1 + 1:
            b_int = (q1 - q0) / (m0 - m1)
            if not (b0 < b_int < b1):
                continue
            m_int, _, _ = run(b_int)
            if m_int != m1:
                todo.append((b0, b_int))
                todo.append((b_int, b1))
    pens = sorted(runs)
    return CropsPath(
        penalties=np.asarray(pens, dtype=np.float64),
        n_changepoints=np.asarray([runs[b][0] for b in pens], dtype=np.intp),
        breakpoints=[runs[b][2] for b in pens],
    )


def kneedle_elbow(x: ArrayLike, y: ArrayLike, *, sensitivity: float = 1.0) -> float | None:
    r"""Elbow of a convex, decreasing curve by the Kneedle algorithm (offline mode).

    Mirrors ``kneed.KneeLocator(x, y, S, curve="convex", direction="decreasing")``
    (kneed >= 0.7, ``interp_method="interp1d"``, ``online=False``): both axes are
    normalised to [0, 1], the curve is flipped to a concave one,
    :math:`d_i = (1 - \tilde y_i) - \tilde x_i` is the difference curve, and the elbow
    is the first local maximum of ``d`` after which ``d`` drops below
    :math:`d_{max} - S\,\overline{\Delta \tilde x}` before a local minimum resets the
    threshold to 0.

    Parameters
    ----------
    x, y : array_like
        The curve, with ``x`` increasing.
    sensitivity : float, default 1.0
        Kneedle's ``S``.

    Returns
    -------
    float or None
        The ``x`` of the elbow, or None when there is none.

    References
    ----------
    .. [1] Satopaa et al., ICDCS Workshops 2011 (see the module references).
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if xs.size < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None
    xn = (xs - xs.min()) / np.ptp(xs)
    yn = (ys - ys.min()) / np.ptp(ys)
    yn = yn.max() - yn
    d = yn - xn
    n = d.size
    # argrelextrema(d, np.greater_equal / np.less_equal) with the default mode="clip".
    prev = np.concatenate(([d[0]], d[:-1]))
    nxt = np.concatenate((d[1:], [d[-1]]))
    inner = np.arange(n)
    maxima = inner[(d >= prev) & (d >= nxt)]
    minima = inner[(d <= prev) & (d <= nxt)]
    if maxima.size == 0:
        return None
    tmx = d[maxima] - sensitivity * abs(float(np.diff(xn).mean()))
    max_set = {int(i): k for k, i in enumerate(maxima)}
    min_set = {int(i) for i in minima}
    threshold = 0.0
    threshold_index = 0
    for i in range(int(maxima[0]), n - 1):
        if i in max_set:
            threshold = float(tmx[max_set[i]])
            threshold_index = i
        if i in min_set:
            threshold = 0.0
        if d[i + 1] < threshold:
            return float(xs[threshold_index])
    return None
