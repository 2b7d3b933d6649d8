r"""Label every run of a corpus with a reference steady-state start.

Scoring a stopping rule needs, for each run, the 0-based index of its first steady sample
(the *reference start*). `label_runs` computes it for every run of a `Corpus` with one
*labelling method* and returns a frame in the reference-file format
(`trace_id,run_id,reference_start`, read by `Corpus.with_reference` and by
`llem-warmup compare --reference`), plus the method's spec and the reason for each label.

Methods
-------
A method is named by a spec string in the syntax of criterion specs, `name` or
`name:key=value,...`:

- `traini` (`traini:steady_fraction=0.2,...`): the labeller of Traini et al. (2023),
  `llenergymeasure.analysis.reference.traini_label`, with the fields of `TrainiParams`
  as parameters (a signal in milliseconds, such as `latency_ms`, is labelled in seconds,
  the unit of the published pipeline, which is not unit-invariant);
- `consensus` (`consensus:members=settle+max_ess,...`): the consensus labeller of this
  module (`consensus_label`), with the fields of `ConsensusParams`;
- every criterion that estimates a truncation point (`yields_truncation`: `max_ess`,
  `mser5`, `red_sse`, `pelt`, ...) with its own parameters (`max_ess:min_neff=20`): its
  one-shot `Criterion.truncate` on the whole run.

`label_methods` lists them. A params object (`TrainiParams`, `ConsensusParams`) or a
`Criterion` instance may be given instead of a string.

Outcomes
--------
Each run gets one of three outcomes, in the conventions of `RunInfo.reference_start`:

- a start `r >= 0`: the method found a steady state from sample `r` on;
- `-1`, *no steady state*: the method analysed the whole run and found none (Traini's
  steady window is not steady; a truncation criterion does not pass on the whole series,
  so its cut is not usable; no member of the consensus gives a cut);
- unknown (`<NA>`, an empty cell in the CSV): the method could not analyse the run (fewer
  samples than it needs, a non-finite sample). The reason is in the `reason` column and
  logged as a warning; the other runs are labelled as usual.

References
----------
- L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective assessment of
  steady state performance in Java software: are we there yet?", Empirical Software
  Engineering 28(1):13, 2023.
- P. D. Welch, "The statistical analysis of simulation results", in S. S. Lavenberg
  (ed.), *Computer Performance Modeling Handbook*, Academic Press, 1983, pp. 268-328
  (the graphical method: smooth the series with a moving window and take the point where
  it settles).
- K. P. White Jr., "An effective truncation heuristic for bias reduction in simulation
  output", Simulation 69(6):323-334, 1997 (MSER).
- J. D. Chodera, "A simple method for automated equilibration detection in molecular
  simulations", Journal of Chemical Theory and Computation 12(4):1799-1805, 2016
  (maximum effective sample size).
- M. Beseda, V. Cortellessa, D. Di Pompeo, L. Traini and M. Tucci, "A kernel-based
  approach for accurate steady-state detection in performance time series", 2025 (the
  five annotators' steady-state starts the consensus labeller was developed against).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llenergymeasure.analysis._parallel import map_chunks
from llenergymeasure.analysis.corpus import REFERENCE_COLUMNS, Corpus, RunRecord
from llenergymeasure.analysis.reference import TrainiParams, traini_label
from llenergymeasure.criteria.base import Criterion, CriterionConfigError, first_minimum
from llenergymeasure.criteria.mser5 import mser_curve
from llenergymeasure.criteria.registry import (
    available_criteria,
    criterion_class,
    format_spec,
    make_criterion,
    parse_spec,
)
from llenergymeasure.progress import progress_bar

__all__ = [
    "LABEL_COLUMNS",
    "ConsensusLabel",
    "ConsensusParams",
    "LabelMethodError",
    "LabelOutcome",
    "Labeller",
    "apply_labels",
    "consensus_label",
    "label_methods",
    "label_runs",
    "labels_by_run",
    "make_labeller",
    "median_of_members",
    "settle_start",
    "write_labels",
]

logger = logging.getLogger(__name__)

#: Columns of the frame `label_runs` returns: the reference-file columns, then the
#: method's spec and the reason for each label.
LABEL_COLUMNS: tuple[str, ...] = (*REFERENCE_COLUMNS, "method", "reason")

NO_STEADY_STATE = -1

Member = Literal["settle", "max_ess", "mser"]


class LabelMethodError(ValueError):
    """An unknown labelling method or a bad parameter; the message lists the valid ones."""


# ----------------------------------------------------------------------------------------
# The consensus labeller
# ----------------------------------------------------------------------------------------


class ConsensusParams(BaseModel):
    """Parameters of `consensus_label`.

    The defaults were chosen on the 20 hand-labelled JMH forks of Beseda et al. (2025)
    (`examples/label_against_people.py` reports the leave-one-out error of that choice).
    Every window is a fraction of the run length, so the labeller applies to runs of any
    length.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: tuple[Member, ...] = Field(
        ("settle", "max_ess", "mser"),
        min_length=1,
        description="Labellers whose starts are combined by their median: 'settle' "
        "(settle_start), 'max_ess' (the max_ess criterion's cut), 'mser' (MSER on the "
        "rolling median). In a spec: members=settle+max_ess.",
    )
    window_fraction: float = Field(
        0.05, gt=0, le=0.5,
        description="settle: width of the centred rolling-quantile window, as a fraction "
        "of the run length (at least 3 samples).",
    )
    floor_quantile: float = Field(
        0.25, gt=0, lt=1,
        description="settle: quantile of the rolling window (0.5: the rolling median; "
        "lower values follow the floor of the series and ignore slow spikes).",
    )
    band_quantile: float = Field(
        0.05, ge=0, lt=0.5,
        description="settle: the steady band is the [q, 1 - q] quantiles of the smoothed "
        "series over its last tail_fraction.",
    )
    band_widen: float = Field(
        1.0, ge=0,
        description="settle: the band is widened on each side by this multiple of its width.",
    )
    persist_fraction: float = Field(
        0.02, gt=0, le=0.5,
        description="settle: the smoothed series must stay in the band for 95 % of a "
        "window of this fraction of the run (at least 1 sample).",
    )
    tail_fraction: float = Field(
        0.5, gt=0, le=1,
        description="settle: the last this-fraction of the run defines the steady band.",
    )
    mser_window_fraction: float = Field(
        0.01, gt=0, le=0.5,
        description="mser: width of the rolling median the MSER cut is taken on, as a "
        "fraction of the run length (at least 3 samples).",
    )
    max_ess: str = Field(
        "max_ess", min_length=1,
        description="max_ess: the criterion spec of the member (a truncation criterion).",
    )
    min_samples: int = Field(
        10, ge=4, description="Runs shorter than this are not labelled (unknown)."
    )


@dataclass(frozen=True)
class ConsensusLabel:
    """Result of `consensus_label`.

    Attributes
    ----------
    reference_start : int or None
        First steady sample; -1 no steady state (no member gives a start); None unknown
        (the run is shorter than `min_samples`).
    members : dict
        Each member's start (`None`: it gives no cut on this run).
    reason : str
        How the label was reached.
    """

    reference_start: int | None
    members: dict[str, int | None]
    reason: str


def _rolling(x: NDArray[np.float64], width: int, quantile: float) -> NDArray[np.float64]:
    series = pd.Series(x).rolling(width, center=True, min_periods=1)
    out = series.median() if quantile == 0.5 else series.quantile(quantile)
    return out.to_numpy(dtype=np.float64)


def settle_start(x: ArrayLike, params: ConsensusParams | None = None) -> int:
    r"""Where the smoothed run first settles for good in its steady band (Welch-style).

    Welch's graphical procedure smooths the series with a moving window and takes the
    point where the smoothed curve settles; this is an automatic form of it, made for
    series with heavy spikes and slow regime changes:

    1. smooth with a centred rolling quantile $s_i$ (`floor_quantile`, window
       `window_fraction` $\cdot n$; a low quantile follows the floor of the series);
    2. the steady band is $[a - \omega (b - a), b + \omega (b - a)]$ with $a, b$ the
       `band_quantile` and `1 - band_quantile` quantiles of $s$ over the last
       `tail_fraction` of the run and $\omega$ = `band_widen`;
    3. the start is the first sample in the band of the first window of
       $m$ = `persist_fraction` $\cdot n$ samples that lies in the band for at least 95 %
       of its samples; -1 when there is none.

    Parameters
    ----------
    x : array_like
        The run (finite values).
    params : ConsensusParams, optional
        The `settle` fields are used.

    Returns
    -------
    int
        First steady sample, or -1.

    References
    ----------
    - Welch (1983), see the module references.
    """
    p = params or ConsensusParams()
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    if n == 0:
        return NO_STEADY_STATE
    s = _rolling(arr, max(3, round(p.window_fraction * n)), p.floor_quantile)
    tail = s[min(n - 1, int(n * (1 - p.tail_fraction))):]
    lo, hi = np.quantile(tail, [p.band_quantile, 1 - p.band_quantile])
    span = hi - lo
    inside = (s >= lo - p.band_widen * span) & (s <= hi + p.band_widen * span)
    m = min(n, max(1, round(p.persist_fraction * n)))
    counts = np.r_[0, np.cumsum(inside)]
    ok = np.flatnonzero(counts[m:] - counts[:-m] >= 0.95 * m)
    if ok.size == 0:
        return NO_STEADY_STATE
    first = int(ok[0])
    return first + int(np.argmax(inside[first:]))


def median_of_members(members: dict[str, int | None]) -> int:
    """The consensus of member starts: the median of those that give one (the mean of the
    middle two, rounded down, for an even count); -1 if none does."""
    values = [v for v in members.values() if v is not None and v >= 0]
    if not values:
        return NO_STEADY_STATE
    return math.floor(float(np.median(values)))


def _mser_member(arr: NDArray[np.float64], p: ConsensusParams) -> int | None:
    """MSER's cut of the rolling median, its minimum taken over the first half of the cuts."""
    n = arr.shape[0]
    smooth = _rolling(arr, max(3, round(p.mser_window_fraction * n)), 0.5)
    curve = mser_curve(smooth)[: max(1, n // 2)]
    if curve.size == 0:
        return None
    return first_minimum(curve, float(np.max(np.abs(smooth))))


def consensus_label(x: ArrayLike, params: ConsensusParams | None = None,
                    **kwargs: Any) -> ConsensusLabel:
    r"""The consensus labeller: the median of several steady-state labellers.

    Each member labels the run on its own; the label is the median of the
    members that give a start, -1 when none does. The members:

    - `settle`: `settle_start`, an automatic form of Welch's (1983) graphical method;
    - `max_ess`: the cut of the `max_ess` criterion (Chodera 2016), the start that
      maximises the effective sample size of the rest;
    - `mser`: White's (1997) MSER cut of the rolling median of the run (window
      `mser_window_fraction` $\cdot n$, so that isolated spikes do not decide it), the
      minimum of the MSER statistic (`mser_curve`) taken over the cuts in the first half
      of the run, as White's rule keeps only those.

    A median of labellers that fail in different ways is robust to any one of them being
    far off (the usual failure of a single labeller on spiky benchmark series). It was
    developed against the median of five people's labels of 20 JMH forks (Beseda et al.,
    2025); `examples/label_against_people.py` measures it (leave-one-out) against them.

    Parameters
    ----------
    x : array_like
        The run (finite values).
    params : ConsensusParams, optional
        Settings; keyword arguments override single fields.

    Returns
    -------
    ConsensusLabel

    References
    ----------
    - Welch (1983); White (1997); Chodera (2016); Beseda et al. (2025): see the module
      references.
    """
    p = params or ConsensusParams()
    if kwargs:
        p = ConsensusParams(**{**p.model_dump(), **kwargs})
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    if n < p.min_samples:
        return ConsensusLabel(None, {}, f"{n} samples: consensus needs at least "
                                        f"{p.min_samples}")
    members: dict[str, int | None] = {}
    for name in p.members:
        if name == "settle":
            start = settle_start(arr, p)
            members[name] = None if start < 0 else start
        elif name == "max_ess":
            members[name] = make_criterion(p.max_ess).truncate(arr).index
        else:
            members[name] = _mser_member(arr, p)
    start = median_of_members(members)
    shown = ", ".join(f"{k}={'none' if v is None else v}" for k, v in members.items())
    reason = (f"median of {shown}" if start >= 0
              else f"no member gives a start ({shown})")
    return ConsensusLabel(start, members, reason)


# ----------------------------------------------------------------------------------------
# Methods
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelOutcome:
    """One run's label.

    Attributes
    ----------
    reference_start : int or None
        First steady sample; -1 no steady state; None unknown.
    reason : str
        Why (the method's own explanation, or why the run could not be labelled).
    """

    reference_start: int | None
    reason: str


#: Label methods that are not criteria: name -> parameter model.
_OWN_METHODS: dict[str, type[BaseModel]] = {
    "consensus": ConsensusParams,
    "traini": TrainiParams,
}


def label_methods() -> list[str]:
    """Names of every labelling method: `consensus`, `traini` and every criterion that
    estimates a truncation point (asked by its declared `yields_truncation`)."""
    crits = [n for n in available_criteria() if criterion_class(n).yields_truncation]
    return sorted({*_OWN_METHODS, *crits})


def _spec_of(name: str, params: BaseModel) -> str:
    """`name` and the parameters that differ from the defaults (members joined by +)."""
    given = params.model_dump(exclude_defaults=True)
    if isinstance(given.get("members"), (tuple, list)):
        given["members"] = "+".join(given["members"])
    return format_spec(name, given, type(params))


def _model_params(name: str, model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    if name == "consensus" and isinstance(params.get("members"), str):
        params = {**params, "members": tuple(m.strip() for m in params["members"].split("+"))}
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        raise LabelMethodError(
            f"label method {name!r}: unknown parameter(s) {', '.join(map(repr, unknown))} "
            f"(valid parameters: {', '.join(model.model_fields)})"
        )
    try:
        return model(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "?"
        raise LabelMethodError(
            f"label method {name!r}: parameter {field!r}: {first['msg']} "
            f"(got {first.get('input')!r})"
        ) from None


class Labeller:
    """A labelling method ready to label runs; build one with `make_labeller`.

    Attributes
    ----------
    spec : str
        The method's spec string, as written in the `method` column.
    min_samples : int
        The fewest samples the method labels (shorter runs are unknown).
    """

    def __init__(self, spec: str, func: Callable[[RunRecord, str], LabelOutcome],
                 min_samples: int) -> None:
        self.spec = spec
        self._func = func
        self.min_samples = min_samples

    def __repr__(self) -> str:
        return f"Labeller({self.spec!r})"

    def label(self, run: RunRecord, signal: str | None = None) -> LabelOutcome:
        """Label one run (its `signal`, default its latency series).

        Never raises for a run the method cannot analyse: the outcome is unknown and
        its reason says why.
        """
        try:
            x = run.base if signal is None else run.signal(signal)
        except ValueError as exc:
            return LabelOutcome(None, str(exc))
        n = int(x.shape[0])
        if n < self.min_samples:
            return LabelOutcome(None, f"{n} samples: {self.spec} needs at least "
                                      f"{self.min_samples}")
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.argmax(bad))
            return LabelOutcome(None, f"sample {i} is {float(x[i])!r}; labels need finite "
                                      "values")
        try:
            return self._func(run, "" if signal is None else signal)
        except (ValueError, FloatingPointError, ZeroDivisionError) as exc:
            return LabelOutcome(None, f"{self.spec} could not label the run: {exc}")


class _TrainiFunc:
    def __init__(self, params: TrainiParams) -> None:
        self.params = params

    def __call__(self, run: RunRecord, signal: str) -> LabelOutcome:
        name = signal or ("latency_ms" if "latency_ms" in run.signals else "")
        x = run.signal(signal) if signal else run.base
        # The published pipeline runs on JMH's seconds per operation, and it is not
        # invariant to the unit: its outlier filter skips a number of samples computed
        # from the mean in seconds, and R's variance floor (1e-11, for segments of equal
        # values) sits at a different place among the segment variances of a series in
        # another unit. A series in milliseconds is therefore labelled in seconds.
        if name.endswith("_ms"):
            x = x / 1e3
        lab = traini_label(x, self.params)
        if lab.steady:
            return LabelOutcome(lab.reference_start,
                                f"steady from {lab.reference_start} (penalty "
                                f"{lab.penalty:.4g}, {len(lab.changepoints)} segments)")
        return LabelOutcome(NO_STEADY_STATE, f"the last {lab.steady_window} samples are not "
                                             "steady")


class _ConsensusFunc:
    def __init__(self, params: ConsensusParams) -> None:
        self.params = params

    def __call__(self, run: RunRecord, signal: str) -> LabelOutcome:
        lab = consensus_label(run.signal(signal) if signal else run.base, self.params)
        return LabelOutcome(lab.reference_start, lab.reason)


class _TruncateFunc:
    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion

    def __call__(self, run: RunRecord, signal: str) -> LabelOutcome:
        crit = self.criterion
        x = run.signal(signal) if signal else run.signal(crit.signal)
        if crit.needs_time and run.times is None:
            return LabelOutcome(None, f"{crit.name} needs sample times and the run has none")
        cut = crit.truncate(x, run.times if crit.needs_time else None)
        return LabelOutcome(NO_STEADY_STATE if cut.index is None else cut.index, cut.reason)


def make_labeller(method: str | BaseModel | Criterion | Labeller = "consensus") -> Labeller:
    """A `Labeller` from a method spec string, a params object or a truncation criterion.

    Parameters
    ----------
    method : str, TrainiParams, ConsensusParams, Criterion or Labeller
        `"traini"`, `"traini:steady_fraction=0.2"`, `"consensus"`,
        `"consensus:members=settle+max_ess"`, a truncation criterion's spec
        (`"max_ess"`, `"mser5:batch_size=1"`), or an object.

    Raises
    ------
    LabelMethodError
        An unknown method, a criterion that does not estimate a truncation point, an
        unknown parameter or a bad value; the message names the method and lists the
        valid choices.
    """
    if isinstance(method, Labeller):
        return method
    if isinstance(method, TrainiParams):
        return Labeller(_spec_of("traini", method), _TrainiFunc(method), 2 * method.min_size)
    if isinstance(method, ConsensusParams):
        return Labeller(_spec_of("consensus", method), _ConsensusFunc(method),
                        method.min_samples)
    if isinstance(method, Criterion):
        return _criterion_labeller(method)
    if not isinstance(method, str):
        raise LabelMethodError(f"a label method is a spec string, TrainiParams, "
                               f"ConsensusParams or a Criterion, got {type(method).__name__}")
    try:
        name, params, children = parse_spec(method)
    except CriterionConfigError as exc:
        raise LabelMethodError(f"label method {method!r}: {exc}") from None
    model = _OWN_METHODS.get(name)
    if model is not None:
        return make_labeller(_model_params(name, model, params))
    valid = ", ".join(label_methods())
    try:
        cls = criterion_class(name)
    except CriterionConfigError:
        raise LabelMethodError(f"unknown label method {name!r}; valid methods: {valid}") from None
    if not cls.yields_truncation or children:
        raise LabelMethodError(f"criterion {name!r} does not estimate a truncation point, so it "
                               f"cannot label a run; valid methods: {valid}")
    try:
        crit = make_criterion(method)
    except CriterionConfigError as exc:
        raise LabelMethodError(f"label method {name!r}: {exc}") from None
    return _criterion_labeller(crit)


def _criterion_labeller(crit: Criterion) -> Labeller:
    if not crit.yields_truncation:
        raise LabelMethodError(f"criterion {crit.name!r} does not estimate a truncation point, "
                               f"so it cannot label a run; valid methods: "
                               f"{', '.join(label_methods())}")
    return Labeller(crit.spec, _TruncateFunc(crit), 1)


# ----------------------------------------------------------------------------------------
# Labelling a corpus
# ----------------------------------------------------------------------------------------


def _label_chunk(runs: list[RunRecord], labeller: Labeller,
                 signal: str | None) -> list[LabelOutcome]:
    """Label a chunk of runs (runs in worker processes too)."""
    return [labeller.label(run, signal) for run in runs]


def _bar(progress: Any, total: int) -> tuple[Any, bool]:
    """(bar or None, whether this function owns it and must close it)."""
    if progress is None or progress is False:
        return None, False
    if progress is True:
        return progress_bar(total, "Label", "run"), True
    if hasattr(progress, "update"):
        return progress, False
    raise TypeError(f"progress is a bool or a bar with update(), got {type(progress).__name__}")


def label_runs(
    corpus: Any,
    method: str | BaseModel | Criterion | Labeller = "traini",
    *,
    signal: str | None = None,
    progress: Any = False,
    executor: cf.Executor | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Label every run of a corpus with a reference steady-state start.

    Parameters
    ----------
    corpus : Corpus, or anything `Corpus.build` accepts
        The runs (trace files or folders, `Trace` objects, arrays, ...).
    method : str, params object, Criterion or Labeller, default "traini"
        The labelling method (see the module docstring and `label_methods`).
    signal : str, optional
        The signal to label (default: each run's latency series, `RunRecord.base`; a
        truncation criterion reads its own `signal` parameter).
    progress : bool or bar, default False
        True draws a progress bar over runs; an object with `update(n)` (a tqdm bar) is
        advanced instead.
    executor : concurrent.futures.Executor, optional
        Where chunks of runs are labelled (a `ProcessPoolExecutor`, a dask
        `Client.get_executor()`); default: in this process. The labels are identical.
    chunk_size : int, optional
        Runs per task sent to the executor (default: about four tasks per worker).

    Returns
    -------
    pandas.DataFrame
        One row per run, in corpus order, with the columns of `LABEL_COLUMNS`:
        `trace_id`, `run_id`, `reference_start` (nullable Int64: a start, -1 no steady
        state, `<NA>` unknown), `method` (the method's spec) and `reason`.

    Raises
    ------
    LabelMethodError
        An unknown method or a bad parameter, before any work.
    CorpusError
        Inputs that do not build a corpus.
    """
    labeller = make_labeller(method)
    runs = list(Corpus.build(corpus))
    bar, own = _bar(progress, len(runs))
    outcomes: list[LabelOutcome] = []
    try:
        parts = map_chunks(_label_chunk, runs, labeller, signal, executor=executor,
                           chunk_size=chunk_size, local_chunk_size=8, bar=bar)
        outcomes = [o for part in parts for o in part]
    finally:
        if own and bar is not None:
            bar.close()
    for run, out in zip(runs, outcomes, strict=True):
        if out.reference_start is None:
            logger.warning("trace %r run %r not labelled by %s: %s", run.trace_id, run.run_id,
                           labeller.spec, out.reason)
    return pd.DataFrame({
        "trace_id": [r.trace_id for r in runs],
        "run_id": [r.run_id for r in runs],
        "reference_start": pd.array([o.reference_start for o in outcomes], dtype="Int64"),
        "method": [labeller.spec] * len(runs),
        "reason": [o.reason for o in outcomes],
    })


def write_labels(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a label frame as a reference CSV, atomically (a temporary file renamed over).

    The columns of `LABEL_COLUMNS` that the frame has are written, in that order, then
    any other; unknown starts are empty cells. `Corpus.with_reference`,
    `read_reference` and `llem-warmup compare --reference` read the file.

    Raises
    ------
    ValueError
        When the frame lacks a reference-file column.
    """
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"a label frame has columns {', '.join(REFERENCE_COLUMNS)}; "
                         f"{missing[0]!r} is missing")
    out = Path(path)
    cols = [c for c in LABEL_COLUMNS if c in frame.columns]
    cols += [c for c in frame.columns if c not in cols]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        frame[cols].to_csv(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def labels_by_run(frame: pd.DataFrame) -> dict[tuple[str, str], int | None]:
    """`(trace_id, run_id) -> reference_start` of a label frame (None unknown)."""
    starts = frame["reference_start"]
    return {
        (str(t), str(r)): (None if pd.isna(s) else int(s))
        for t, r, s in zip(frame["trace_id"], frame["run_id"], starts, strict=True)
    }


def apply_labels(trace: Any, trace_id: str, labels: dict[tuple[str, str], int | None], *,
                 overwrite: bool = False) -> tuple[Any, dict[str, int]]:
    """A copy of `trace` whose runs carry the labels as `RunInfo.reference_start`.

    The data are the same object (no recorded value changes); only the run metadata is
    replaced. A run that already has a label keeps it unless `overwrite`; an unknown new
    label never replaces a known one.

    Parameters
    ----------
    trace : Trace
        The trace.
    trace_id : str
        Its id in the corpus the labels were computed on.
    labels : dict
        `(trace_id, run_id) -> start` (see `labels_by_run`).
    overwrite : bool, default False
        Replace existing, different labels.

    Returns
    -------
    tuple
        The new trace and counts: `set` (runs newly labelled), `overwritten` (existing
        labels replaced), `kept` (existing different labels kept), `unchanged`.
    """
    from llenergymeasure.traces import RunInfo, Trace

    counts = {"set": 0, "overwritten": 0, "kept": 0, "unchanged": 0}
    infos = {r.run_id: r for r in trace.metadata.runs}
    runs = []
    for rid in trace.run_ids:
        info = infos.get(rid) or RunInfo(run_id=rid)
        new = labels.get((trace_id, str(rid)), info.reference_start)
        old = info.reference_start
        if new is None or new == old:
            counts["unchanged"] += 1
        elif old is None:
            counts["set"] += 1
            info = info.model_copy(update={"reference_start": new})
        elif overwrite:
            counts["overwritten"] += 1
            info = info.model_copy(update={"reference_start": new})
        else:
            counts["kept"] += 1
        runs.append(info)
    meta = trace.metadata.model_copy(update={"runs": runs})
    return Trace(trace.data, meta, trace.trace_id), counts

