"""PELT changepoints and the Barrett et al. steady-state truncation built on them."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from llenergymeasure.criteria._schedule import CheckResult, ScheduledTruncation, ScheduleParams
from llenergymeasure.criteria.base import CriterionConfigError
from llenergymeasure.criteria.registry import register_criterion

__all__ = [
    "PELT",
    "R_CHANGEPOINT_VAR_FLOOR",
    "merge_equivalent_segments",
    "pelt_changepoints",
    "resolve_penalty",
    "segment_costs",
]

CostName = Literal["normal", "l2"]
FloorMode = Literal["add", "replace"]
PenaltyName = Literal["bic", "mbic", "15log"]
#: A numerical penalty: finite and non-negative.
PenaltyValue = Annotated[float, Field(ge=0, allow_inf_nan=False)]

#: Diagonal added to the variance by the ``normal`` cost, as ruptures >= 1.1.5 does.
NORMAL_VAR_FLOOR = 1e-6

#: Variance that R's ``changepoint`` (``cpt.meanvar``) puts in place of a non-positive one.
R_CHANGEPOINT_VAR_FLOOR = 1e-11

# Parameters per segment of each cost model: mean and variance, or mean only.
_N_PARAMS = {"normal": 2, "l2": 1}


def _noise_variance(x: NDArray[np.float64]) -> float:
    """Robust noise variance from first differences: (MAD(diff x) / 0.6745)^2 / 2."""
    if x.shape[0] < 3:
        return float(np.var(x)) if x.shape[0] > 1 else 0.0
    d = np.diff(x)
    mad = float(np.median(np.abs(d - np.median(d))))
    return (mad / 0.6744897501960817) ** 2 / 2.0


def resolve_penalty(penalty: float | str, x: ArrayLike, cost: str = "normal") -> float:
    r"""The numerical PELT penalty :math:`\beta` for a named rule or a number.

    Named rules, with :math:`n` the series length and :math:`p` the number of
    parameters of a segment (2 for ``normal``: mean and variance; 1 for ``l2``):

    * ``"bic"``: :math:`(p + 1) \log n` (R ``changepoint``'s SIC/BIC);
    * ``"mbic"``: :math:`(p + 2) \log n` (R ``changepoint``'s MBIC penalty term;
      the segment-length term of Zhang & Siegmund's MBIC is not added, because
      it is not a constant per segment and would break PELT's pruning);
    * ``"15log"``: :math:`15 \log n`, warmup_stats' choice (Barrett et al.).

    The ``normal`` cost is :math:`-2` log-likelihood up to a constant, so these
    apply as they are. The ``l2`` cost is a sum of squares, so a named penalty is
    multiplied by a robust noise variance :math:`\hat\sigma^2 =
    (\mathrm{MAD}(\Delta x)/0.6745)^2/2` (the BIC-like
    :math:`\hat\sigma^2 \log n` advice of the ruptures maintainers). A number is
    used as it is.

    Raises
    ------
    CriterionConfigError
        For an unknown name, a negative or non-finite number, or an unknown cost.
    """
    if cost not in _N_PARAMS:
        raise CriterionConfigError(f"unknown PELT cost {cost!r}; use one of {sorted(_N_PARAMS)}")
    if isinstance(penalty, str):
        arr = np.asarray(x, dtype=np.float64)
        logn = math.log(max(arr.shape[0], 2))
        p = _N_PARAMS[cost]
        factors = {"bic": p + 1.0, "mbic": p + 2.0, "15log": 15.0}
        if penalty not in factors:
            raise CriterionConfigError(
                f"unknown PELT penalty {penalty!r}; use a number or one of {sorted(factors)}"
            )
        beta = factors[penalty] * logn
        if cost == "l2":
            beta *= _noise_variance(arr)
        return beta
    beta = float(penalty)
    if not math.isfinite(beta) or beta < 0:
        raise CriterionConfigError(f"PELT penalty must be a finite number >= 0, got {penalty!r}")
    return beta


def _check_floor(var_floor: float, var_floor_mode: str) -> float:
    floor = float(var_floor)
    if not math.isfinite(floor) or floor <= 0:
        raise CriterionConfigError(f"PELT var_floor must be a finite number > 0, got {var_floor!r}")
    if var_floor_mode not in ("add", "replace"):
        raise CriterionConfigError(
            f"unknown PELT var_floor_mode {var_floor_mode!r}; use 'add' or 'replace'"
        )
    return floor


class _PrefixSums:
    """Shifted prefix sums of x and x^2 for O(1) segment costs."""

    __slots__ = ("c1", "c2", "cost", "replace", "var_floor")

    def __init__(
        self,
        x: NDArray[np.float64],
        cost: str,
        var_floor: float = NORMAL_VAR_FLOOR,
        var_floor_mode: str = "add",
    ) -> None:
        ref = float(np.median(x)) if x.shape[0] else 0.0
        d = x - ref
        self.c1 = np.concatenate(([0.0], np.cumsum(d)))
        self.c2 = np.concatenate(([0.0], np.cumsum(d * d)))
        self.cost = cost
        self.var_floor = var_floor
        self.replace = var_floor_mode == "replace"

    def __call__(self, starts: NDArray[np.int64], end: int) -> NDArray[np.float64]:
        m = (end - starts).astype(np.float64)
        s1 = self.c1[end] - self.c1[starts]
        s2 = self.c2[end] - self.c2[starts]
        ss = np.maximum(s2 - s1 * s1 / m, 0.0)
        if self.cost == "l2":
            return ss
        if self.replace:
            var = ss / m
            return m * np.log(np.where(var > 0, var, self.var_floor))
        return m * np.log(ss / m + self.var_floor)


def segment_costs(
    x: ArrayLike,
    bkps: list[int],
    cost: str = "normal",
    *,
    var_floor: float = NORMAL_VAR_FLOOR,
    var_floor_mode: FloorMode = "add",
) -> NDArray[np.float64]:
    """Cost of every segment of a ruptures-style breakpoint list (ending with ``n``).

    The costs are those :func:`pelt_changepoints` minimises, with the same ``cost``,
    ``var_floor`` and ``var_floor_mode``; their sum is the unpenalised objective.
    """
    arr = np.asarray(x, dtype=np.float64)
    if cost not in _N_PARAMS:
        raise CriterionConfigError(f"unknown PELT cost {cost!r}; use one of {sorted(_N_PARAMS)}")
    sums = _PrefixSums(arr, cost, _check_floor(var_floor, var_floor_mode), var_floor_mode)
    if not bkps:
        return np.zeros(0)
    ends = np.asarray(bkps, dtype=np.int64)
    starts = np.concatenate(([0], ends[:-1]))
    if np.any(ends <= starts) or ends[-1] > arr.shape[0]:
        raise ValueError(
            f"breakpoints must increase strictly within (0, {arr.shape[0]}], got {list(bkps)}"
        )
    return np.array([float(sums(starts[k : k + 1], int(e))[0]) for k, e in enumerate(ends)])


def pelt_changepoints(
    x: ArrayLike,
    penalty: float | str,
    cost: str = "normal",
    min_size: int = 2,
    jump: int = 1,
    *,
    var_floor: float = NORMAL_VAR_FLOOR,
    var_floor_mode: FloorMode = "add",
) -> list[int]:
    r"""Optimal penalised segmentation by PELT; ruptures-style breakpoints ending with ``n``.

    Minimises :math:`\sum_{j} [c(x_{\tau_{j-1}:\tau_j}) + \beta]` over
    segmentations by the optimal-partitioning recursion

    .. math::

        F(s) = \min_{t \in R_s} \bigl[F(t) + c(x_{t:s}) + \beta\bigr], \qquad F(0) = 0,

    with PELT's pruning: a candidate :math:`t` stays in :math:`R_{s'}` for later
    ends only if :math:`F(t) + c(x_{t:s}) \le F(s)`. Costs of a segment of
    length :math:`m` with population variance :math:`\hat\sigma^2`:

    * ``normal`` (mean-and-variance change): :math:`m \log(\hat\sigma^2 + \epsilon)`
      with :math:`\epsilon` = ``var_floor`` (default :math:`10^{-6}`), ruptures'
      ``CostNormal`` (which adds the same :math:`10^{-6}` to cope with constant
      segments; note that this floor is absolute, in squared signal units). With
      ``var_floor_mode="replace"`` the cost is :math:`m \log \hat\sigma^2`, with
      :math:`\hat\sigma^2 \le 0` replaced by :math:`\epsilon`: R ``changepoint``'s
      ``cpt.meanvar`` with :data:`R_CHANGEPOINT_VAR_FLOOR` (:math:`10^{-11}`), which
      leaves series of tiny variance (e.g. JMH times in seconds) untouched;
    * ``l2`` (mean change): :math:`m \hat\sigma^2`.

    Costs come from shifted prefix sums (the series minus its median), so one
    step costs O(|R_s|) numpy work; with pruning the expected total is O(n)
    when the number of changes grows with n (Killick et al. 2012), O(n^2) in the
    worst case. Candidate ends are ``jump``-multiples ``>= min_size`` and ``n``,
    the new candidate start at end ``s`` is ``floor((s - min_size)/jump)*jump``,
    and ties go to the earliest start, exactly as ``ruptures.Pelt``, so the
    breakpoints equal ruptures' except at floating-point ties of the objective.

    Parameters
    ----------
    x : array_like, shape (n,)
        The series (finite values).
    penalty : float or {"bic", "mbic", "15log"}
        Penalty per segment, or a rule resolved by :func:`resolve_penalty`.
    cost : {"normal", "l2"}, default "normal"
        Segment cost.
    min_size : int, default 2
        Minimum segment length (raised to 2 for ``normal``, which needs a variance).
    jump : int, default 1
        Grid of candidate breakpoints (ruptures' default of 5 loses resolution).
    var_floor : float, default 1e-6
        Variance floor :math:`\epsilon > 0` of the ``normal`` cost (unused by ``l2``).
    var_floor_mode : {"add", "replace"}, default "add"
        ``"add"``: :math:`\hat\sigma^2 + \epsilon` (ruptures); ``"replace"``:
        :math:`\epsilon` only where :math:`\hat\sigma^2 \le 0` (R ``changepoint``).

    Returns
    -------
    list of int
        Sorted breakpoints; the last one is ``n``. ``[n]`` means no change.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D and finite, or is shorter than ``min_size``.
    CriterionConfigError
        For a bad penalty, cost or variance floor.

    References
    ----------
    .. [1] R. Killick, P. Fearnhead and I. A. Eckley, "Optimal detection of
       changepoints with a linear computational cost", JASA 107(500), 2012.
    .. [2] C. Truong, L. Oudre and N. Vayatis, "Selective review of offline
       change point detection methods", Signal Processing 167, 2020 (ruptures).
    .. [3] R. Killick and I. A. Eckley, "changepoint: an R package for changepoint
       analysis", J. Stat. Softw. 58(3), 2014.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"pelt_changepoints needs a 1-D series, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"pelt_changepoints: sample {i} is {arr[i]!r}; values must be finite")
    if int(min_size) < 1 or int(jump) < 1:
        raise ValueError(f"min_size and jump must be >= 1, got {min_size} and {jump}")
    beta = resolve_penalty(penalty, arr, cost)
    floor = _check_floor(var_floor, var_floor_mode)
    n = arr.shape[0]
    min_size = max(int(min_size), 2 if cost == "normal" else 1)
    jump = int(jump)
    if n < min_size:
        raise ValueError(f"pelt_changepoints: {n} samples is fewer than min_size={min_size}")
    sums = _PrefixSums(arr, cost, floor, var_floor_mode)
    c1, c2 = sums.c1, sums.c2
    normal, replace = cost == "normal", var_floor_mode == "replace"
    F = np.empty(n + 1)
    F[0] = 0.0
    prev = np.zeros(n + 1, dtype=np.int64)
    ends = [k for k in range(0, n, jump) if k >= min_size]
    ends.append(n)
    # The candidate set R_s, one column per start t: (t, c1[t], c2[t], F(t)). Keeping
    # the gathered values next to the starts makes a step a few vector operations; the
    # arithmetic is that of _PrefixSums, so the objective values are bit-identical.
    cand = np.empty((4, len(ends) + 1))
    k = 0
    for s in ends:
        new = ((s - min_size) // jump) * jump
        # A start needs an optimal partition of x[:new]: 0 or an earlier end.
        if (new == 0 or new >= min_size) and (k == 0 or cand[0, k - 1] != new):
            cand[:, k] = (new, c1[new], c2[new], F[new])
            k += 1
        live = cand[:, :k]
        m = s - live[0]
        s1 = c1[s] - live[1]
        ss = np.maximum((c2[s] - live[2]) - s1 * s1 / m, 0.0)
        if not normal:
            seg = ss
        elif replace:
            var = ss / m
            seg = m * np.log(np.where(var > 0, var, floor))
        else:
            seg = m * np.log(ss / m + floor)
        vals = live[3] + (seg + beta)
        j = int(np.argmin(vals))
        best = vals[j]
        F[s] = best
        prev[s] = int(live[0, j])
        keep = vals <= best + beta
        if not keep.all():
            kept = live[:, keep]
            k = kept.shape[1]
            cand[:, :k] = kept
    bkps = [n]
    s = n
    while prev[s] > 0:
        s = int(prev[s])
        bkps.append(s)
    return sorted(bkps)


def merge_equivalent_segments(
    x: ArrayLike, bkps: list[int], delta: float = 0.0, spread: str = "sd"
) -> int:
    r"""Start of the run of segments equivalent to the last one (Barrett et al.).

    For each segment :math:`S` with mean :math:`\mu_S` and spread :math:`v_S`
    (the standard deviation, or with ``spread="variance"`` the variance, as
    warmup_stats uses literally), the last segment :math:`L` defines the band
    :math:`[\min(\mu_L - v_L, \mu_L - \delta), \max(\mu_L + v_L, \mu_L + \delta)]`.
    Walking back from the second-to-last segment, :math:`S` is *equivalent* when
    :math:`[\mu_S - v_S, \mu_S + v_S]` overlaps the band; the walk stops at the
    first segment that is not.

    Returns
    -------
    int
        Index of the first sample of the earliest segment of that run (0 when
        every segment is equivalent, "flat" in Barrett's taxonomy).
    """
    arr = np.asarray(x, dtype=np.float64)
    starts = [0, *bkps[:-1]]
    mus = [float(np.mean(arr[a:b])) for a, b in zip(starts, bkps, strict=True)]
    var = [float(np.var(arr[a:b])) for a, b in zip(starts, bkps, strict=True)]
    vs = var if spread == "variance" else [math.sqrt(v) for v in var]
    lo = min(mus[-1] - vs[-1], mus[-1] - delta)
    hi = max(mus[-1] + vs[-1], mus[-1] + delta)
    first = len(bkps) - 1
    for j in range(len(bkps) - 2, -1, -1):
        if mus[j] + vs[j] >= lo and mus[j] - vs[j] <= hi:
            first = j
        else:
            break
    return int(starts[first])


class PELTParams(ScheduleParams):
    """Parameters of :class:`PELT`."""

    penalty: PenaltyValue | PenaltyName = Field(
        "15log",
        description="PELT penalty per segment: a number, or 'bic', 'mbic' or '15log' "
        "(15 log n, the warmup_stats choice).",
    )
    cost: CostName = Field(
        "normal", description="Segment cost: 'normal' (mean and variance change) or 'l2' (mean)."
    )
    min_size: int = Field(2, ge=1, le=10_000, description="Minimum segment length of PELT.")
    jump: int = Field(1, ge=1, le=1000, description="Grid of candidate changepoints (1 = all).")
    min_segment: int = Field(
        30,
        ge=2,
        description="Pass when the merged steady run at the end is at least this many samples "
        "(Barrett et al.'s 'steady' window).",
    )
    delta: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Equivalence tolerance as a fraction of the smallest segment mean "
        "(warmup_stats' 'x%' form of --delta).",
    )
    spread: Literal["sd", "variance"] = Field(
        "sd",
        description="Half-width of a segment's interval: its standard deviation, or its "
        "variance as warmup_stats uses literally.",
    )


@register_criterion
class PELT(ScheduledTruncation):
    r"""Truncate at the start of the steady run found by PELT changepoints (Barrett et al.).

    At each check point (see :mod:`llenergymeasure.criteria._schedule`) the
    prefix :math:`x_{0:n}` is segmented by :func:`pelt_changepoints`; the last
    segment and the run of segments equivalent to it
    (:func:`merge_equivalent_segments`, with
    :math:`\delta = \text{delta} \cdot \min_S |\mu_S|`) form the steady state.
    The truncation :math:`t_0` is the start of that merged run; the statistic is
    its length :math:`n - t_0`, and the criterion passes when

    .. math::

        n - t_0 \ge \text{min\_segment}.

    A "slowdown" (a faster segment before the last one) is not equivalent, so it
    also ends the run; it still passes if the last run is long enough (the
    truncation is what matters for a warmup). PELT costs expected O(n) per check,
    so the online cost per sample is O(n / every) (O(log n) checks in all with
    ``growth > 1``).

    Parameters
    ----------
    penalty : float or {"bic", "mbic", "15log"}, default "15log"
        PELT penalty (:func:`resolve_penalty`).
    cost : {"normal", "l2"}, default "normal"
        Segment cost.
    min_size : int, default 2
        Minimum segment length.
    jump : int, default 1
        Candidate grid.
    min_segment : int, default 30
        Minimum length of the steady run.
    delta : float, default 0.01
        Relative equivalence tolerance.
    spread : {"sd", "variance"}, default "sd"
        Segment half-width used to compare segments.
    min_samples, every, growth
        Check schedule (first check, stride, geometric factor).
    signal : str, default "latency_ms"
        The recorded signal to watch.

    References
    ----------
    .. [1] R. Killick, P. Fearnhead and I. A. Eckley, "Optimal detection of
       changepoints with a linear computational cost", JASA 107(500), 2012.
    .. [2] E. Barrett, C. F. Bolz-Tereick, R. Killick, S. Mount and L. Tratt,
       "Virtual machine warmup blows hot and cold", OOPSLA 2017 (and
       softdevteam/warmup_stats).
    .. [3] C. Truong, L. Oudre and N. Vayatis, "Selective review of offline
       change point detection methods", Signal Processing 167, 2020.
    """

    name = "pelt"
    Params = PELTParams
    scale_invariant = False
    cost_class = "heavy"
    statistic_label = "steady_n"

    @property
    def threshold(self) -> float:
        return float(self.params.min_segment)

    def _validate(self) -> None:
        p = self.params
        if p.min_samples < 2 * max(p.min_size, 2):
            raise CriterionConfigError(
                f"criterion 'pelt': min_samples={p.min_samples} must be at least "
                f"2 * min_size={2 * max(p.min_size, 2)}"
            )

    def _check(self, x: NDArray[np.float64]) -> CheckResult:
        p = self.params
        bkps = pelt_changepoints(x, p.penalty, cost=p.cost, min_size=p.min_size, jump=p.jump)
        starts = [0, *bkps[:-1]]
        smallest = min(abs(float(np.mean(x[a:b]))) for a, b in zip(starts, bkps, strict=True))
        t0 = merge_equivalent_segments(x, bkps, delta=p.delta * smallest, spread=p.spread)
        n = x.shape[0]
        steady = n - t0
        return CheckResult(float(steady), steady >= p.min_segment, t0)
