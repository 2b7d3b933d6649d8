r"""Reference steady states: the "true" warmup end of each run, against which stops are scored.

Three sources, in order of preference:

1. **Labels** carried by imported traces (``RunInfo.reference_start``) or kept in a file
   (:func:`load_reference_file`: CSV or JSON mapping trace/run to a start).
2. The **Traini-style labeller** (:func:`traini_label`): PELT with a CROPS-chosen penalty
   and a knee, then a walk back from the last segment with a bootstrap ratio-of-means
   test at a 5% effect size; a run has a steady state only if its last ``steady_window``
   samples are steady.
3. The **Barrett-style classifier** (:func:`barrett_classify`): PELT at ``15 log n``,
   then a flat / warmup / slowdown / no-steady-state class per run, and a consistency
   verdict across runs (:func:`barrett_consistency`).

Conventions
-----------
A *reference start* ``r`` is the 0-based index of the first steady-state sample of a
run; ``None`` means unknown and ``-1`` means "labelled: no steady state" (the
``RunInfo.reference_start`` convention). The Traini corpus stores a different number,
the index of the last sample of the warmup segment (``0`` when the whole fork is
steady): :func:`traini_start_to_reference` and :func:`reference_to_traini_start`
convert between the two.

References
----------
.. [1] L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there yet?",
   Empirical Software Engineering 28(1):13, 2023.
.. [2] E. Barrett, C. F. Bolz-Tereick, R. Killick, S. Mount and L. Tratt, "Virtual
   machine warmup blows hot and cold", OOPSLA 2017 (PACMPL 1, article 52).
.. [3] T. Kalibera and R. Jones, "Rigorous benchmarking in reasonable time", ISMM 2013
   (bootstrap confidence interval of a ratio of means).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from llenergymeasure.analysis._changepoint import _as_series as _series
from llenergymeasure.analysis._changepoint import crops, kneedle_elbow, pelt_normal
from llenergymeasure.criteria.pelt import merge_equivalent_segments

__all__ = [
    "BarrettLabel",
    "BarrettParams",
    "ReferenceFileError",
    "TrainiLabel",
    "TrainiParams",
    "barrett_classify",
    "barrett_consistency",
    "barrett_outliers",
    "bootstrap_ratio_ci",
    "load_reference_file",
    "reference_starts_from_trace",
    "reference_to_traini_start",
    "segments_differ",
    "traini_benchmark_label",
    "traini_label",
    "traini_outliers",
    "traini_start_to_reference",
]

logger = logging.getLogger(__name__)

NO_STEADY_STATE = -1


class ReferenceFileError(ValueError):
    """A reference-start file is malformed; the message names the file, row and field."""


# ----------------------------------------------------------------------------------------
# Labels from traces and files
# ----------------------------------------------------------------------------------------


def traini_start_to_reference(start: int) -> int:
    """Convert a Traini ``steady_state_starts`` value to a first-steady-sample index.

    Traini et al. store the last index of the warmup segment (the changepoint), so the
    steady data are ``x[start + 1:]``; ``0`` means the whole fork is steady and ``-1``
    means no steady state. Returns ``start + 1`` for ``start > 0``, else ``start``.
    """
    start = int(start)
    if start < -1:
        raise ValueError(f"a Traini steady-state start is >= -1, got {start}")
    return start + 1 if start > 0 else start


def reference_to_traini_start(reference: int) -> int:
    """Inverse of :func:`traini_start_to_reference` (``1`` maps to ``0`` as well)."""
    reference = int(reference)
    if reference < -1:
        raise ValueError(f"a reference start is >= -1, got {reference}")
    return reference - 1 if reference > 1 else (0 if reference == 1 else reference)


def reference_starts_from_trace(trace: Any) -> dict[str, int | None]:
    """``run_id -> RunInfo.reference_start`` for every run of a :class:`Trace`."""
    return {str(rid): trace.run_info(rid).reference_start for rid in trace.run_ids}


def _parse_start(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() in {"", "NA", "nan", "None"}):
        return None
    if isinstance(value, str) and value.strip().lower() in {"no steady state", "none_steady"}:
        return NO_STEADY_STATE
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ReferenceFileError(f"{where}: reference_start {value!r} is not an integer") from None
    if math.isnan(f):
        return None
    if not f.is_integer() or f < -1:
        raise ReferenceFileError(f"{where}: reference_start {value!r} must be an integer >= -1")
    return int(f)


def load_reference_file(path: str | Path) -> dict[tuple[str, str], int | None]:
    """Read reference starts from a CSV or JSON file.

    Formats
    -------
    CSV
        A header with ``trace_id``, ``run_id`` and ``reference_start`` (extra columns
        are ignored); empty cells mean unknown, ``-1`` no steady state.
    JSON
        Either ``{trace_id: {run_id: start}}`` or a list of records with the three keys.

    Returns
    -------
    dict
        ``(trace_id, run_id) -> start`` (``None`` unknown, ``-1`` no steady state).

    Raises
    ------
    ReferenceFileError
        On a missing column or key, or a start that is not an integer >= -1; the message
        names the file and the row or key.
    """
    p = Path(path)
    out: dict[tuple[str, str], int | None] = {}
    if p.suffix.lower() == ".csv":
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"trace_id", "run_id", "reference_start"}
            missing = need - set(reader.fieldnames or [])
            if missing:
                raise ReferenceFileError(f"{p}: missing column(s) {sorted(missing)}")
            for i, row in enumerate(reader, start=2):
                where = f"{p}, line {i}, field reference_start"
                out[(str(row["trace_id"]), str(row["run_id"]))] = _parse_start(
                    row["reference_start"], where
                )
        return out
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ReferenceFileError(f"{p}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        if isinstance(data, Mapping):
            for tid, runs in data.items():
                if not isinstance(runs, Mapping):
                    raise ReferenceFileError(f"{p}: value of trace {tid!r} must be an object")
                for rid, start in runs.items():
                    out[(str(tid), str(rid))] = _parse_start(start, f"{p}, key {tid}/{rid}")
            return out
        if isinstance(data, list):
            for i, rec in enumerate(data):
                if not isinstance(rec, Mapping):
                    raise ReferenceFileError(f"{p}: record {i} must be an object")
                for key in ("trace_id", "run_id", "reference_start"):
                    if key not in rec:
                        raise ReferenceFileError(f"{p}: record {i} lacks field {key!r}")
                out[(str(rec["trace_id"]), str(rec["run_id"]))] = _parse_start(
                    rec["reference_start"], f"{p}, record {i}, field reference_start"
                )
            return out
        raise ReferenceFileError(f"{p}: top level must be an object or a list")
    raise ReferenceFileError(f"{p}: unsupported suffix {p.suffix!r} (use .csv or .json)")


# ----------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------


def bootstrap_ratio_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
    chunk: int = 256,
) -> tuple[float, float]:
    r"""Percentile bootstrap CI of :math:`\bar a / \bar b`, resampling each sample independently.

    This is the fork-level interval of Kalibera and Jones as coded by Traini et al.
    (``interval_fork``): each replicate draws ``len(a)`` values from ``a`` and
    ``len(b)`` from ``b`` with replacement, and the CI is the
    :math:`(\alpha/2, 1 - \alpha/2)` quantiles of the replicated ratios. The draws are
    vectorised in chunks of ``chunk`` replicates.

    References
    ----------
    .. [1] Kalibera and Jones, ISMM 2013 (see the module references).
    """
    aa, bb = _series(a), _series(b)
    if aa.size == 0 or bb.size == 0:
        raise ValueError("both samples need at least one value")
    gen = np.random.default_rng(rng)
    ratios = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        ma = aa[gen.integers(0, aa.size, size=(k, aa.size))].mean(axis=1)
        mb = bb[gen.integers(0, bb.size, size=(k, bb.size))].mean(axis=1)
        ratios[done : done + k] = ma / mb
        done += k
    alpha = 1.0 - confidence
    lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def segments_differ(
    a: ArrayLike,
    b: ArrayLike,
    *,
    effect_size: float = 0.05,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> bool:
    """True when the CI of ``mean(a)/mean(b)`` lies outside ``[1 - es, 1 + es]``.

    Traini et al.'s ``kalibera.test``: ``hi <= 1 - es`` or ``lo >= 1 + es``.
    """
    lo, hi = bootstrap_ratio_ci(a, b, n_resamples=n_resamples, confidence=confidence, rng=rng)
    return bool(hi <= 1 - effect_size or lo >= 1 + effect_size)


# ----------------------------------------------------------------------------------------
# Traini-style labeller
# ----------------------------------------------------------------------------------------


class TrainiParams(BaseModel):
    """Parameters of :func:`traini_label` (defaults: Traini et al. 2023)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outlier_window: int = Field(200, ge=3, description="Sliding window of the outlier filter.")
    outlier_k: float = Field(
        3.0, gt=0, description="Outlier if |x - median| > k * (P99 - P1) of a window."
    )
    filter_outliers: bool = Field(True, description="Drop outliers before changepoint detection.")
    penalty: Literal["crops", "fixed"] = Field(
        "crops",
        description="'crops': CROPS path over [crops_min, crops_max] * log n and its knee; "
        "'fixed': penalty_multiplier * log n.",
    )
    crops_min: float = Field(4.0, gt=0, description="Lower CROPS penalty, in units of log n.")
    crops_max: float = Field(1e5, gt=0, description="Upper CROPS penalty, in units of log n.")
    penalty_multiplier: float = Field(
        15.0, gt=0, description="Penalty in units of log n for 'fixed' and the knee fallback."
    )
    min_size: int = Field(2, ge=1, description="Minimum segment length of PELT.")
    effect_size: float = Field(
        0.05, gt=0, lt=1, description="Segments differ when the ratio CI excludes 1 +- this."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap CI.")
    n_resamples: int = Field(10_000, ge=100, description="Bootstrap replicates per test.")
    steady_window: int = Field(
        500, ge=1, description="A run is steady only if its last this-many samples are."
    )
    seed: int = Field(0, ge=0, description="Seed of the bootstrap generator.")


@dataclass(frozen=True)
class TrainiLabel:
    """Result of :func:`traini_label`.

    Attributes
    ----------
    reference_start : int
        First steady sample, or ``-1`` (no steady state).
    traini_start : int
        The same in Traini's convention (last warmup index; ``0`` all steady).
    steady : bool
        Whether the run reached a steady state.
    changepoints : list of int
        Last indices of the segments, in the original series (Traini/R convention; the
        last is ``n - 1``).
    penalty : float
        The PELT penalty used.
    """

    reference_start: int
    traini_start: int
    steady: bool
    changepoints: list[int] = field(default_factory=list)
    penalty: float = math.nan


def traini_outliers(
    x: ArrayLike, *, window: int = 200, k: float = 3.0, skip: int | None = None
) -> NDArray[np.intp]:
    r"""Indices flagged by Traini et al.'s sliding-window outlier filter.

    After skipping the first ``skip`` samples (by default
    :math:`\lceil w / \log(1 + \lceil 0.1/\bar x \rceil)\rceil`, with ``x`` in seconds
    as in JMH), a sample is an outlier if, in any window of ``w`` consecutive
    remaining samples that contains it, :math:`|x - \mathrm{median}| > k (P_{99} - P_1)`.
    """
    arr = _series(x)
    n = arr.size
    if skip is None:
        mean = float(arr.mean()) if n else 1.0
        noops = math.ceil(0.1 / mean) if mean > 0 else 1
        skip = math.ceil(window / math.log1p(noops)) if noops > 0 else 0
    if n - skip < window:
        return np.empty(0, dtype=np.intp)
    sub = arr[skip:]
    win = sliding_window_view(sub, window)
    med = np.median(win, axis=1)
    p1, p99 = np.quantile(win, [0.01, 0.99], axis=1)
    band = k * (p99 - p1)
    dev = np.abs(win - med[:, None]) > band[:, None]
    hit = np.zeros(sub.size, dtype=bool)
    w_idx, off = np.nonzero(dev)
    hit[w_idx + off] = True
    return np.flatnonzero(hit).astype(np.intp) + skip


def _choose_penalty(x: NDArray[np.float64], p: TrainiParams) -> float:
    logn = math.log(x.size)
    default = p.penalty_multiplier * logn
    if p.penalty == "fixed":
        return default
    path = crops(x, p.crops_min * logn, p.crops_max * logn, min_size=p.min_size)
    if path.penalties.size < 2:
        return float(path.penalties[0])
    knee = kneedle_elbow(path.penalties, path.n_changepoints)
    return float(knee) if knee else default


def traini_label(x: ArrayLike, params: TrainiParams | None = None, **kwargs: Any) -> TrainiLabel:
    r"""Label one run the way Traini et al. (2023) labelled their JMH forks.

    1. Drop outliers (:func:`traini_outliers`).
    2. PELT with the Normal mean-var cost on the remaining samples, with the penalty at
       the knee (Kneedle, ``S = 1``) of the CROPS path of (penalty, number of
       changepoints) over :math:`[4 \log n, 10^5 \log n]`; ``15 log n`` if there is no
       knee. Changepoints are mapped back to the original indices.
    3. Walk back from the last segment ``L``: for each earlier segment ``S`` (from the
       latest), test ``mean(L)/mean(S)`` with the bootstrap CI of
       :func:`segments_differ`; at the first ``S`` that differs by more than the effect
       size, the steady state starts right after ``S``. If none differs, it starts at 0.
    4. The run is steady iff the start leaves the last ``steady_window`` samples steady
       (Traini: start <= 2499 of 3000); otherwise ``reference_start = -1``.

    Segments are taken from the original (unfiltered) series, as in the published code.

    Parameters
    ----------
    x : array_like
        The run's series (any positive unit; the outlier skip assumes seconds).
    params : TrainiParams, optional
        Settings; keyword arguments override single fields.

    Returns
    -------
    TrainiLabel

    References
    ----------
    .. [1] Traini et al., EMSE 2023 (see the module references).
    .. [2] Haynes, Eckley and Fearnhead, JCGS 2017 (CROPS).
    """
    p = params or TrainiParams()
    if kwargs:
        p = TrainiParams(**{**p.model_dump(), **kwargs})
    arr = _series(x)
    n = arr.size
    if n < 2 * p.min_size:
        raise ValueError(f"series too short for the labeller: {n} samples")
    if p.filter_outliers:
        out = traini_outliers(arr, window=p.outlier_window, k=p.outlier_k)
        keep = np.setdiff1d(np.arange(n), out)
    else:
        keep = np.arange(n)
    xs = arr[keep]
    penalty = _choose_penalty(xs, p)
    bkps = pelt_normal(xs, penalty, min_size=p.min_size)
    cpts = [int(keep[b - 1]) for b in bkps]
    rng = np.random.default_rng(p.seed)
    bounds = [0, *cpts]
    last = arr[bounds[-2] + 1 :]
    start = 0
    i = len(bounds) - 2
    while bounds[i] > 0:
        cpt = bounds[i]
        prev = bounds[i - 1]
        seg = arr[(prev + 1 if prev > 0 else prev) : cpt + 1]
        if segments_differ(
            last,
            seg,
            effect_size=p.effect_size,
            n_resamples=p.n_resamples,
            confidence=p.confidence,
            rng=rng,
        ):
            start = cpt
            break
        i -= 1
    steady = start <= n - 1 - p.steady_window
    tstart = start if steady else NO_STEADY_STATE
    return TrainiLabel(
        reference_start=traini_start_to_reference(tstart),
        traini_start=tstart,
        steady=steady,
        changepoints=cpts,
        penalty=penalty,
    )


def traini_benchmark_label(steady_flags: Iterable[bool]) -> str:
    """Traini's benchmark label: "steady state", "no steady state" or "inconsistent"."""
    flags = list(steady_flags)
    if not flags:
        raise ValueError("no runs to label")
    if all(flags):
        return "steady state"
    if not any(flags):
        return "no steady state"
    return "inconsistent"


# ----------------------------------------------------------------------------------------
# Barrett-style classifier
# ----------------------------------------------------------------------------------------

BarrettClass = Literal["flat", "warmup", "slowdown", "no steady state"]


class BarrettParams(BaseModel):
    """Parameters of :func:`barrett_classify` (defaults: ``warmup_stats``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    penalty_multiplier: float = Field(15.0, gt=0, description="PELT penalty in units of log n.")
    min_size: int = Field(2, ge=1, description="Minimum segment length of PELT.")
    outlier_window_fraction: float = Field(
        0.1, gt=0, le=1, description="Outlier window as a fraction of the run length."
    )
    outlier_k: float = Field(
        3.0, gt=0, description="Outlier if outside median +- k * (P90 - P10) of the window."
    )
    filter_outliers: bool = Field(True, description="Exclude outliers from changepoint search.")
    steady_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="A non-equivalent segment ending in the last this-fraction of the run "
        "means no steady state (warmup_stats: 500 of 2000).",
    )
    delta: float | None = Field(
        None, ge=0, description="Absolute tolerance in the series' unit (overrides the fraction)."
    )
    delta_fraction: float = Field(
        0.01, ge=0, description="Tolerance as a fraction of the fastest segment's mean."
    )
    spread: Literal["variance", "std"] = Field(
        "variance",
        description="Half-width of a segment's interval: its variance (as warmup_stats, in "
        "squared units) or its standard deviation.",
    )


@dataclass(frozen=True)
class BarrettLabel:
    """Result of :func:`barrett_classify`.

    Attributes
    ----------
    classification : str
        "flat", "warmup", "slowdown" or "no steady state".
    reference_start : int
        First sample of the earliest segment equivalent to the last one; 0 for flat;
        -1 for no steady state.
    breakpoints : list of int
        Exclusive segment ends in the original series (last is ``n``).
    means, spreads : list of float
        Per-segment mean and spread (variance or sd, see ``BarrettParams.spread``).
    """

    classification: BarrettClass
    reference_start: int
    breakpoints: list[int]
    means: list[float]
    spreads: list[float]


def barrett_outliers(x: ArrayLike, *, window: int, k: float = 3.0) -> NDArray[np.intp]:
    """Outliers by ``warmup_stats``: outside median +- k (P90 - P10) of a centred window.

    The first ``window`` samples are never flagged (warmup is not an outlier).
    """
    arr = _series(x)
    n = arr.size
    if window < 3 or n <= window:
        return np.empty(0, dtype=np.intp)
    pad = window // 2
    padded = np.pad(arr, (pad, window - 1 - pad), mode="edge")
    win = sliding_window_view(padded, window)
    med = np.median(win, axis=1)
    p10, p90 = np.quantile(win, [0.1, 0.9], axis=1)
    flag = np.abs(arr - med) > k * (p90 - p10)
    flag[:window] = False
    return np.flatnonzero(flag).astype(np.intp)


def barrett_classify(
    x: ArrayLike, params: BarrettParams | None = None, **kwargs: Any
) -> BarrettLabel:
    r"""Classify one run as flat / warmup / slowdown / no steady state (Barrett et al.).

    PELT (Normal mean-var cost, penalty ``15 log n``) on the series without outliers
    gives segments with means :math:`\mu` and spreads :math:`v`. With ``L`` the last
    segment and the band :math:`[\min(\mu_L - v_L, \mu_L - \delta),
    \max(\mu_L + v_L, \mu_L + \delta)]`, walk back from the second-to-last segment ``S``:

    - if :math:`[\mu_S - v_S, \mu_S + v_S]` overlaps the band, ``S`` is equivalent;
      continue;
    - else if ``S`` ends within the last ``steady_fraction`` of the run: no steady state;
    - else if :math:`\mu_S - v_S` is below the band (``S`` was faster): slowdown;
    - else: warmup.

    If every segment is equivalent the run is flat. The steady state starts at the first
    sample of the earliest segment of the trailing run of equivalent segments.

    References
    ----------
    .. [1] Barrett et al., OOPSLA 2017; ``softdevteam/warmup_stats`` (see the module
       references).
    """
    prm = params or BarrettParams()
    if kwargs:
        prm = BarrettParams(**{**prm.model_dump(), **kwargs})
    arr = _series(x)
    n = arr.size
    if n < 2 * prm.min_size:
        raise ValueError(f"series too short for the classifier: {n} samples")
    if prm.filter_outliers:
        window = max(3, round(prm.outlier_window_fraction * n))
        keep = np.setdiff1d(np.arange(n), barrett_outliers(arr, window=window, k=prm.outlier_k))
    else:
        keep = np.arange(n)
    xs = arr[keep]
    bk_kept = pelt_normal(xs, prm.penalty_multiplier * math.log(xs.size), min_size=prm.min_size)
    # Map exclusive ends back to the original index space.
    bkps = [int(keep[b - 1]) + 1 for b in bk_kept]
    bkps[-1] = n
    starts = [0, *bkps[:-1]]
    means: list[float] = []
    spreads: list[float] = []
    prev = 0
    for b in bk_kept:
        seg = xs[prev:b]
        var = float(seg.var())
        means.append(float(seg.mean()))
        spreads.append(var if prm.spread == "variance" else math.sqrt(var))
        prev = b
    delta = prm.delta if prm.delta is not None else prm.delta_fraction * min(means)
    # The walk back over equivalent segments is the pelt criterion's own rule.
    first_kept = merge_equivalent_segments(
        xs, bk_kept, delta=delta, spread="variance" if prm.spread == "variance" else "sd"
    )
    start_seg = 0 if first_kept == 0 else bk_kept.index(first_kept) + 1
    cls: BarrettClass = "flat"
    if start_seg > 0:
        s = start_seg - 1
        mu_l, v_l = means[-1], spreads[-1]
        lower = min(mu_l - v_l, mu_l - delta)
        if bkps[s] > n - math.ceil(prm.steady_fraction * n):
            cls = "no steady state"
        elif means[s] - spreads[s] < lower:
            cls = "slowdown"
        else:
            cls = "warmup"
    ref = NO_STEADY_STATE if cls == "no steady state" else starts[start_seg]
    return BarrettLabel(cls, ref, bkps, means, spreads)


def barrett_consistency(classes: Iterable[str]) -> str:
    """Run-level verdict across runs: the common class, "good inconsistent" or "bad inconsistent".

    All runs in one class give that class (e.g. "warmup" = consistent warmup); the set
    {flat, warmup} is "good inconsistent"; anything else is "bad inconsistent".
    """
    got = set(classes)
    if not got:
        raise ValueError("no runs to classify")
    if len(got) == 1:
        return got.pop()
    if got == {"flat", "warmup"}:
        return "good inconsistent"
    return "bad inconsistent"
