r"""Reference steady states: the "true" warmup end of each run, against which stops are scored.

Three sources, in order of preference:

1. **Labels** carried by imported traces (`RunInfo.reference_start`) or kept in a file
   (`load_reference_file`: CSV or JSON mapping trace/run to a start).
2. The **Traini-style labeller** (`traini_label`): PELT with a CROPS-chosen penalty
   and a knee, then a walk back from the last segment with a bootstrap ratio-of-means
   test at a 5% effect size; a run has a steady state only if its last `steady_window`
   samples are steady.
3. The **Barrett-style classifier** (`barrett_classify`): PELT at `15 log n`,
   then a flat / warmup / slowdown / no-steady-state class per run, and a consistency
   verdict across runs (`barrett_consistency`).

Conventions
-----------
A *reference start* `r` is the 0-based index of the first steady-state sample of a
run; `None` means unknown and `-1` means "labelled: no steady state" (the
`RunInfo.reference_start` convention). The Traini corpus stores a different number,
the index of the last sample of the warmup segment (`0` when the whole fork is
steady): `traini_start_to_reference` and `reference_to_traini_start`
convert between the two.

References
----------
- L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there yet?",
   Empirical Software Engineering 28(1):13, 2023.
- E. Barrett, C. F. Bolz-Tereick, R. Killick, S. Mount and L. Tratt, "Virtual
   machine warmup blows hot and cold", OOPSLA 2017 (PACMPL 1, article 52).
- T. Kalibera and R. Jones, "Rigorous benchmarking in reasonable time", ISMM 2013
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

from llenergymeasure.analysis._changepoint import (
    CropsPath,
    KneeResult,
    RPelt,
    crops,
    kneedle_elbow,
    pelt_normal,
    r_pelt_meanvar,
    window_outlier_mask,
)
from llenergymeasure.analysis._changepoint import _as_series as _series
from llenergymeasure.criteria.pelt import merge_equivalent_segments

__all__ = [
    "BarrettLabel",
    "BarrettParams",
    "ReferenceFileError",
    "TrainiChangepoints",
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
    "traini_changepoints",
    "traini_label",
    "traini_outliers",
    "traini_penalty",
    "traini_start_to_reference",
    "traini_walk_back",
]

logger = logging.getLogger(__name__)

NO_STEADY_STATE = -1


class ReferenceFileError(ValueError):
    """A reference-start file is malformed; the message names the file, row and field."""


# ----------------------------------------------------------------------------------------
# Labels from traces and files
# ----------------------------------------------------------------------------------------


def traini_start_to_reference(start: int) -> int:
    """Convert a Traini `steady_state_starts` value to a first-steady-sample index.

    Traini et al. store the last index of the warmup segment (the changepoint), so the
    steady data are `x[start + 1:]`; `0` means the whole fork is steady and `-1`
    means no steady state. Returns `start + 1` for `start > 0`, else `start`.
    """
    start = int(start)
    if start < -1:
        raise ValueError(f"a Traini steady-state start is >= -1, got {start}")
    return start + 1 if start > 0 else start


def reference_to_traini_start(reference: int) -> int:
    """Inverse of `traini_start_to_reference` (`1` maps to `0` as well)."""
    reference = int(reference)
    if reference < -1:
        raise ValueError(f"a reference start is >= -1, got {reference}")
    return reference - 1 if reference > 1 else (0 if reference == 1 else reference)


def reference_starts_from_trace(trace: Any) -> dict[str, int | None]:
    """`run_id -> RunInfo.reference_start` for every run of a `Trace`."""
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
        A header with `trace_id`, `run_id` and `reference_start` (extra columns
        are ignored); empty cells mean unknown, `-1` no steady state.
    JSON
        Either `{trace_id: {run_id: start}}` or a list of records with the three keys.

    Returns
    -------
    dict
        `(trace_id, run_id) -> start` (`None` unknown, `-1` no steady state).

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
    r"""Percentile bootstrap CI of $\bar a / \bar b$, resampling each sample independently.

    This is the fork-level interval of Kalibera and Jones as coded by Traini et al.
    (`interval_fork`): each replicate draws `len(a)` values from `a` and
    `len(b)` from `b` with replacement, and the CI is the
    $(\alpha/2, 1 - \alpha/2)$ quantiles of the replicated ratios. The draws are
    vectorised in chunks of `chunk` replicates.

    References
    ----------
    - Kalibera and Jones, ISMM 2013 (see the module references).
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
    """True when the CI of `mean(a)/mean(b)` lies outside `[1 - es, 1 + es]`.

    Traini et al.'s `kalibera.test`: `hi <= 1 - es` or `lo >= 1 + es`.
    """
    lo, hi = bootstrap_ratio_ci(a, b, n_resamples=n_resamples, confidence=confidence, rng=rng)
    return _outside_band(lo, hi, effect_size)


def _outside_band(lo: float, hi: float, effect_size: float) -> bool:
    """Traini's `kalibera.test` decision: the CI lies outside `[1 - es, 1 + es]`."""
    return bool(hi <= 1 - effect_size or lo >= 1 + effect_size)


# ----------------------------------------------------------------------------------------
# Traini-style labeller
# ----------------------------------------------------------------------------------------


class TrainiParams(BaseModel):
    """Parameters of `traini_label` (defaults: Traini et al. 2023 for 3000-iteration forks)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outlier_window: int = Field(200, ge=3, description="Sliding window of the outlier filter.")
    outlier_k: float = Field(
        3.0, gt=0, description="Outlier if outside median +- k * (P99 - P1) of a window."
    )
    filter_outliers: bool = Field(True, description="Drop outliers before changepoint detection.")
    penalty: Literal["crops", "fixed"] = Field(
        "crops",
        description="'crops': knee of the CROPS path over [crops_min, crops_max] * log n; "
        "'fixed': penalty_multiplier * log n.",
    )
    crops_min: float = Field(4.0, gt=0, description="Lower CROPS penalty, in units of log n.")
    crops_max: float = Field(1e5, gt=0, description="Upper CROPS penalty, in units of log n.")
    penalty_multiplier: float = Field(
        15.0, gt=0, description="Penalty in units of log n for 'fixed' and the knee fallback."
    )
    min_size: int = Field(
        2, ge=2, description="R's minseglen: minimum segment length of PELT (at least 2)."
    )
    effect_size: float = Field(
        0.05, gt=0, lt=1, description="Segments differ when the ratio CI excludes 1 +- this."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the bootstrap CI.")
    n_resamples: int = Field(10_000, ge=100, description="Bootstrap replicates per test.")
    exact_bootstrap_max: int | None = Field(
        300,
        ge=2,
        description="Segments longer than this draw their resampled means from the normal "
        "limit N(mean, var/m) instead of resampling; None resamples always.",
    )
    steady_window: int | None = Field(
        None,
        ge=1,
        description="A run is steady only if its last this-many samples are; None: "
        "round(steady_fraction * n), the published 500 for 3000-iteration forks.",
    )
    steady_fraction: float = Field(
        1 / 6,
        gt=0,
        lt=1,
        description="Steady window as a fraction of the run length when steady_window is "
        "None (Traini et al.: 500 of 3000).",
    )
    seed: int = Field(0, ge=0, description="Seed of the bootstrap generator.")

    def window_for(self, n: int) -> int:
        """The steady window for a run of `n` samples (see `steady_window`)."""
        if self.steady_window is not None:
            return self.steady_window
        return max(1, round(self.steady_fraction * n))


@dataclass(frozen=True)
class TrainiChangepoints:
    """Every intermediate of the published changepoint pipeline for one run.

    Attributes
    ----------
    outliers : numpy.ndarray
        0-based indexes removed by the outlier filter.
    kept : numpy.ndarray
        0-based indexes of the filtered series in the run.
    crops : CropsPath or None
        R's CROPS output on the filtered series (`None` for `penalty="fixed"`).
    knee : KneeResult or None
        kneed's answer on R's lists (`None` when the path has fewer than 2 penalties or
        for `penalty="fixed"`).
    penalty : float
        The penalty of the final PELT run.
    changepoints : list of int
        0-based last indexes of the segments in the run, ending with `n - 1` (the
        published files' convention).
    """

    outliers: NDArray[np.intp]
    kept: NDArray[np.intp]
    crops: CropsPath | None
    knee: KneeResult | None
    penalty: float
    changepoints: list[int]


@dataclass(frozen=True)
class TrainiLabel:
    """Result of `traini_label`.

    Attributes
    ----------
    reference_start : int
        First steady sample, or `-1` (no steady state).
    traini_start : int
        The same in Traini's convention (last warmup index; `0` all steady).
    steady : bool
        Whether the run reached a steady state.
    changepoints : list of int
        Last indices of the segments, in the original series (Traini/R convention; the
        last is `n - 1`).
    penalty : float
        The PELT penalty used.
    steady_window : int
        The steady window applied (see `TrainiParams.window_for`).
    """

    reference_start: int
    traini_start: int
    steady: bool
    changepoints: list[int] = field(default_factory=list)
    penalty: float = math.nan
    steady_window: int = 500


def traini_outliers(
    x: ArrayLike, *, window: int = 200, k: float = 3.0, skip: int | None = None
) -> NDArray[np.intp]:
    r"""Indices flagged by Traini et al.'s sliding-window outlier filter (`filter_outliers.py`).

    After skipping the first `skip` samples (by default
    $\lceil w / \log(1 + \lceil 0.1/\bar x \rceil)\rceil$, with `x` in seconds as in
    JMH), a sample is an outlier if, in any window of `w` consecutive remaining samples
    that contains it, $x > m + k (P_{99} - P_1)$ or $x < m - k (P_{99} - P_1)$, with
    $m$ the window's median and $P$ its quantiles (`numpy.quantile`, linear). The
    comparisons are written as in the published code, so a value on the bound is
    treated alike. A run shorter than `skip + window` has no outliers. The windows'
    statistics come from `llenergymeasure.analysis._changepoint.window_outlier_mask`,
    which with numba slides a sorted window and gives numpy's values exactly.

    References
    ----------
    - Traini et al., EMSE 2023, replication package `filter_outliers.py` (see the
      module references).
    """
    arr = _series(x)
    n = arr.size
    if window < 1:
        raise ValueError(f"outlier window must be >= 1, got {window}")
    if skip is None:
        noops = float(np.ceil(0.1 / np.mean(arr))) if n else 1.0
        skip = int(np.ceil(window / np.log1p(noops))) if noops > 0 else 0
    if n - skip < window:
        return np.empty(0, dtype=np.intp)
    hit = window_outlier_mask(arr[skip:], window, k)
    return np.flatnonzero(hit).astype(np.intp) + skip


def traini_penalty(
    xs: ArrayLike, params: TrainiParams | None = None
) -> tuple[float, CropsPath | None, KneeResult | None]:
    r"""The PELT penalty of the published pipeline for a filtered series (`find_penalty`).

    With `penalty="crops"`: R's CROPS path over
    $[\text{crops\_min} \log n, \text{crops\_max} \log n]$ (`crops`), then
    `kneedle_elbow` on the reversed lists, as the published code calls
    `KneeLocator(penalties[::-1], ncpts[::-1], S=1, curve="convex",
    direction="decreasing")`. A path of one penalty gives that penalty; no knee, a knee
    at 0 or kneed's `IndexError` give the fallback `penalty_multiplier * log n`, and so
    does a path whose penalty and changepoint-count lists differ in length (kneed raises
    on it; not seen on the 300 published forks).

    Parameters
    ----------
    xs : array_like or RPelt
        The filtered series, or an `RPelt` of it (its segment costs are reused).
    params : TrainiParams, optional
        Settings.

    Returns
    -------
    tuple
        (penalty, CROPS path or None, knee result or None).
    """
    p = params or TrainiParams()
    pelt = xs if isinstance(xs, RPelt) else RPelt(xs, p.min_size)
    logn = math.log(pelt.n)
    default = p.penalty_multiplier * logn
    if p.penalty == "fixed":
        return default, None, None
    path = crops(pelt, p.crops_min * logn, p.crops_max * logn)
    if path.penalties.size < 2 or path.n_changepoints.size < 2:
        return float(path.penalties[0]), path, None
    if path.penalties.size != path.n_changepoints.size:
        # kneed refuses lists of different lengths (a ValueError); it did not happen on the
        # 300 published forks, and this labeller then takes the fallback, as for no knee
        logger.warning("CROPS path of %d penalties and %d changepoint counts: no knee, "
                       "penalty %.4g (%g log n)", path.penalties.size,
                       path.n_changepoints.size, default, p.penalty_multiplier)
        return default, path, None
    knee = kneedle_elbow(path.penalties[::-1], path.n_changepoints[::-1])
    return (float(knee.elbow) if knee.elbow else default), path, knee


def traini_changepoints(
    x: ArrayLike, params: TrainiParams | None = None, **kwargs: Any
) -> TrainiChangepoints:
    """Outliers, CROPS path, knee, penalty and changepoints of one run, as published.

    The changepoints are those of `cpt.meanvar(PELT, penalty="Manual", pen.value=knee)`
    on the filtered series (`r_pelt_meanvar`), mapped back to 0-based indexes of the
    run; the last one is `n - 1` when the last sample is kept.
    """
    p = _params(params, kwargs)
    arr = _series(x)
    n = arr.size
    if n < 2 * p.min_size:
        raise ValueError(f"series too short for the labeller: {n} samples")
    out = (
        traini_outliers(arr, window=p.outlier_window, k=p.outlier_k)
        if p.filter_outliers
        else np.empty(0, dtype=np.intp)
    )
    keep = np.setdiff1d(np.arange(n), out).astype(np.intp)
    pelt = RPelt(arr[keep], p.min_size, cache=p.penalty == "crops")
    penalty, path, knee = traini_penalty(pelt, p)
    cpts = r_pelt_meanvar(pelt, penalty)
    return TrainiChangepoints(
        outliers=out,
        kept=keep,
        crops=path,
        knee=knee,
        penalty=penalty,
        changepoints=[int(keep[c - 1]) for c in cpts],
    )


class _Bootstrap:
    """Resampled means for the walk-back tests (one generator, last segment drawn once)."""

    def __init__(self, p: TrainiParams) -> None:
        self.p = p
        self.rng = np.random.default_rng(p.seed)

    def means(self, a: NDArray[np.float64]) -> NDArray[np.float64]:
        b, m = self.p.n_resamples, a.size
        if m == 1:
            return np.full(b, float(a[0]))
        cap = self.p.exact_bootstrap_max
        if cap is not None and m > cap:
            return self.rng.normal(float(a.mean()), float(a.std()) / math.sqrt(m), size=b)
        values, counts = np.unique(a, return_counts=True)
        if values.size * 4 <= m:  # few distinct values: multinomial counts per replicate
            draws = self.rng.multinomial(m, counts / m, size=b)
            return (draws @ values) / m
        out = np.empty(b)
        step = max(1, 2_000_000 // m)
        for s in range(0, b, step):
            k = min(step, b - s)
            out[s : s + k] = a[self.rng.integers(0, m, size=(k, m))].mean(axis=1)
        return out

    def differ(self, last_means: NDArray[np.float64], seg: NDArray[np.float64]) -> bool:
        """`segments_differ(last, seg)` with the last segment's means drawn already."""
        alpha = 1.0 - self.p.confidence
        lo, hi = np.quantile(last_means / self.means(seg), [alpha / 2, 1 - alpha / 2])
        return _outside_band(float(lo), float(hi), self.p.effect_size)


def traini_walk_back(
    x: ArrayLike, changepoints: list[int], params: TrainiParams | None = None
) -> int:
    """Traini's steady-state start (`steady_state_starts` of `classify_runs.py`).

    Walks back from the last segment over the 0-based `changepoints` (ending with
    `n - 1`) of the unfiltered run `x`; the changepoint after the first segment whose
    mean differs from the last segment's by more than the effect size (bootstrap CI of
    the ratio of means, `segments_differ`) is returned; 0 if none differs. As in the
    published code the last segment is `x[c + 1:]` for its changepoint `c`, which is
    `x[1:]` for a run without changepoints.

    Two shortcuts keep the decisions and save time: the last segment's resampled means
    are drawn once per run, and a segment whose plain ratio of means lies inside
    $1 \\pm$ effect size is not resampled (its percentile CI contains the ratio, so it
    cannot lie outside the band).
    """
    p = params or TrainiParams()
    arr = _series(x)
    cpts = [0, *changepoints]
    if len(cpts) < 2:
        return 0
    boot = _Bootstrap(p)
    last = arr[cpts[-2] + 1 :]
    last_mean = float(np.mean(last))
    last_means: NDArray[np.float64] | None = None
    i = len(cpts) - 2
    while cpts[i] > 0:
        cpt = cpts[i]
        i -= 1
        prev = cpts[i]
        seg = arr[(prev + 1 if prev > 0 else prev) : cpt + 1]
        ratio = last_mean / float(np.mean(seg))
        if 1 - p.effect_size < ratio < 1 + p.effect_size:
            continue
        if last_means is None:
            last_means = boot.means(last)
        if boot.differ(last_means, seg):
            return cpt
    return 0


def _params(params: TrainiParams | None, kwargs: dict[str, Any]) -> TrainiParams:
    p = params or TrainiParams()
    if kwargs:
        p = TrainiParams(**{**p.model_dump(), **kwargs})
    return p


def traini_label(x: ArrayLike, params: TrainiParams | None = None, **kwargs: Any) -> TrainiLabel:
    r"""Label one run the way Traini et al. (2023) labelled their JMH forks.

    1. Drop outliers (`traini_outliers`).
    2. PELT with R's Normal mean-and-variance cost on the remaining samples, at the knee
       (kneed 0.7.0, `S = 1`) of R's CROPS path over $[4 \log n, 10^5 \log n]$;
       $15 \log n$ if there is no knee (`traini_changepoints`, bit for bit as R
       changepoint 2.2.x). Changepoints are mapped back to the original indices.
    3. Walk back from the last segment `L` (`traini_walk_back`): at the first earlier
       segment whose mean differs from `L`'s by more than the effect size (bootstrap CI
       of the ratio), the steady state starts right after it; otherwise at 0.
    4. The run is steady iff the start leaves its last `window_for(n)` samples steady:
       Traini's start <= 2499 of 3000, i.e. a window of 500 = $n/6$; by default the
       window scales with the run length (`steady_fraction`), so a 300-sample run needs
       its last 50 samples steady. Otherwise `reference_start = -1`.

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
    - Traini et al., EMSE 2023 (see the module references).
    - Haynes, Eckley and Fearnhead, JCGS 2017 (CROPS).
    """
    p = _params(params, kwargs)
    arr = _series(x)
    n = arr.size
    cp = traini_changepoints(arr, p)
    start = traini_walk_back(arr, cp.changepoints, p)
    window = p.window_for(n)
    steady = start <= n - 1 - window
    tstart = start if steady else NO_STEADY_STATE
    return TrainiLabel(
        reference_start=traini_start_to_reference(tstart),
        traini_start=tstart,
        steady=steady,
        changepoints=cp.changepoints,
        penalty=cp.penalty,
        steady_window=window,
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
    """Parameters of `barrett_classify` (defaults: `warmup_stats`)."""

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
    """Result of `barrett_classify`.

    Attributes
    ----------
    classification : str
        "flat", "warmup", "slowdown" or "no steady state".
    reference_start : int
        First sample of the earliest segment equivalent to the last one; 0 for flat;
        -1 for no steady state.
    breakpoints : list of int
        Exclusive segment ends in the original series (last is `n`).
    means, spreads : list of float
        Per-segment mean and spread (variance or sd, see `BarrettParams.spread`).
    """

    classification: BarrettClass
    reference_start: int
    breakpoints: list[int]
    means: list[float]
    spreads: list[float]


def barrett_outliers(x: ArrayLike, *, window: int, k: float = 3.0) -> NDArray[np.intp]:
    """Outliers by `warmup_stats`: outside median +- k (P90 - P10) of a centred window.

    The first `window` samples are never flagged (warmup is not an outlier).
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

    PELT (Normal mean-var cost, penalty `15 log n`) on the series without outliers
    gives segments with means $\mu$ and spreads $v$. With `L` the last
    segment and the band $[\min(\mu_L - v_L, \mu_L - \delta),
    \max(\mu_L + v_L, \mu_L + \delta)]$, walk back from the second-to-last segment `S`:

    - if $[\mu_S - v_S, \mu_S + v_S]$ overlaps the band, `S` is equivalent;
      continue;
    - else if `S` ends within the last `steady_fraction` of the run: no steady state;
    - else if $\mu_S - v_S$ is below the band (`S` was faster): slowdown;
    - else: warmup.

    If every segment is equivalent the run is flat. The steady state starts at the first
    sample of the earliest segment of the trailing run of equivalent segments.

    References
    ----------
    - Barrett et al., OOPSLA 2017; `softdevteam/warmup_stats` (see the module
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
