"""Offline replay: every trace (run) x criterion x parameter setting, one tidy row each.

:func:`replay` evaluates each criterion with its vectorised
:meth:`~llenergymeasure.criteria.Criterion.evaluate` on the successful samples
of every run, applies the shared :class:`~llenergymeasure.criteria.StopRule`
and returns a tidy :class:`pandas.DataFrame`. Because the driver
(:func:`~llenergymeasure.core.warmup.warmup_until_converged`) and replay use the
same criterion contract and the same stop rule, replaying a recorded trace
stops exactly where the driver would have stopped on it ("record long, replay
many").

Threshold sweeps are cheap: for criteria whose verdict is a plain comparison of
the statistic with one parameter (``passed == statistic < threshold`` for the
rolling CV), the statistic is computed once per run and every threshold is
decided from it with a running minimum over the stop rule's checks, so a sweep
of 100 thresholds costs about one evaluation. The comparison is verified on the
first run against the full evaluation of every setting; a criterion that does
not match falls back to one evaluation per setting.

The work can be spread with any :class:`concurrent.futures.Executor`: a
:class:`~concurrent.futures.ProcessPoolExecutor` for large corpora, or a
dask.distributed cluster through ``Client.get_executor()``.

References
----------
.. [1] L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there
   yet?", Empirical Software Engineering 28(1):13, 2023 (offline assessment of
   warmup rules against labelled steady-state starts, time waste in seconds).
.. [2] C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically
   reconfiguring software microbenchmarks: reducing execution time without
   sacrificing result quality", ESEC/FSE 2020 (replaying stopping criteria on
   recorded benchmark iterations).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.criteria.base import (
    Criterion,
    CriterionConfigError,
    Evaluation,
    InvalidSampleError,
)
from llenergymeasure.criteria.registry import criterion_class, make_criterion
from llenergymeasure.criteria.stopping import StopDecision, StopRule
from llenergymeasure.progress import progress_bar

__all__ = [
    "RESULT_COLUMNS",
    "SWEEPABLE",
    "ReplayError",
    "ReplaySampleError",
    "expand_grid",
    "replay",
    "trace_id_of",
]

logger = logging.getLogger(__name__)

#: Criteria whose verdict is a comparison of the statistic with one parameter:
#: name -> (parameter, operator). ``"<"`` means ``passed == statistic < value``
#: (NaN never passes), ``">="`` means ``passed == statistic >= value``. A
#: criterion class may declare the same with a class attribute
#: ``sweep_parameter = ("threshold", "<")``. Either way the claim is checked on
#: the first run before it is used.
SWEEPABLE: dict[str, tuple[str, str]] = {
    "rolling_cv": ("threshold", "<"),
    "fixed_count": ("n", ">="),
    "min_duration": ("seconds", ">="),
    "max_duration": ("seconds", ">="),
}

#: Columns every result table has, in order (``param_*`` columns follow ``spec``).
RESULT_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "run_id",
    "criterion",
    "spec",
    "n_samples",
    "failures",
    "stop_index",
    "stop_time_s",
    "stopped",
    "converged",
    "statistic",
    "truncation",
    "samples_used",
    "seconds_used",
    "post_stop_mean",
    "reason",
    "reference_start",
    "reference_start_s",
    "reference_mean",
)

_INT_COLUMNS = ("stop_index", "truncation", "reference_start")


class ReplayError(ValueError):
    """Bad input to :func:`replay`: an unknown signal, an empty grid, a bad trace."""


class ReplaySampleError(InvalidSampleError):
    """A non-finite sample in a replayed series, located by trace, run and index.

    Attributes
    ----------
    trace_id, run_id : str
        Where the sample is.
    index : int
        0-based index among the run's successful samples.
    value : float
        The offending value.
    signal : str
        The signal it belongs to.
    """

    def __init__(self, trace_id: str, run_id: str, index: int, value: float, signal: str) -> None:
        super().__init__(index, value, signal)
        self.trace_id = trace_id
        self.run_id = run_id
        self.args = (
            f"trace {trace_id!r}, run {run_id!r}: sample {index} of signal {signal!r} is "
            f"{value!r}; replay accepts only finite values (failed attempts must be "
            "recorded with ok=false, not as samples)",
        )


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class _Setting:
    """One criterion configuration: its canonical spec and flattened parameters."""

    spec: str
    name: str
    params: dict[str, Any] = field(hash=False)


def _as_spec_list(criteria: str | Criterion | Iterable[str | Criterion]) -> list[str | Criterion]:
    if isinstance(criteria, (str, Criterion)):
        return [criteria]
    return list(criteria)


def expand_grid(
    criteria: str | Criterion | Iterable[str | Criterion],
    grid: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> list[Criterion]:
    """Expand criterion specs and a parameter grid into a list of criteria.

    Parameters
    ----------
    criteria : str, Criterion or iterable of them
        Base specs (``"rolling_cv:window=10"``) or instances.
    grid : mapping, optional
        ``{key: {parameter: [values, ...]}}``. A key names a criterion
        (``"rolling_cv"``) or is one of the given specs exactly; every base
        spec it matches is replaced by the cartesian product of the listed
        values (other parameters keep the spec's values). A key matching no
        base spec adds that criterion with its defaults, expanded.

    Returns
    -------
    list of Criterion
        Unique criteria (by canonical spec), in order.

    Raises
    ------
    CriterionConfigError
        An unknown criterion name or parameter, or a bad value; raised before
        any work, the message listing the valid names or parameters.

    Examples
    --------
    >>> [c.spec for c in expand_grid("rolling_cv", {"rolling_cv": {"window": [5, 10]}})]
    ['rolling_cv:window=5,threshold=0.05,ddof=1', 'rolling_cv:window=10,threshold=0.05,ddof=1']
    """
    bases = _as_spec_list(criteria)
    grid = dict(grid or {})
    for key, axes in grid.items():
        if not isinstance(axes, Mapping) or not axes:
            raise CriterionConfigError(
                f"grid entry {key!r} must map parameter names to lists of values, got {axes!r}"
            )
        for pname, values in axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise CriterionConfigError(
                    f"grid entry {key!r}: values of {pname!r} must be a list, got {values!r}"
                )
            if len(list(values)) == 0:
                raise CriterionConfigError(f"grid entry {key!r}: no values for {pname!r}")
    built = [make_criterion(b) for b in bases]
    used: set[str] = set()
    out: list[Criterion] = []
    for raw, crit in zip(bases, built, strict=True):
        key = None
        if isinstance(raw, str) and raw in grid:
            key = raw
        elif crit.name in grid:
            key = crit.name
        if key is None:
            out.append(crit)
            continue
        used.add(key)
        out.extend(_expand_one(crit, grid[key]))
    for key, axes in grid.items():
        if key in used:
            continue
        name = key.split(":", 1)[0].split("(", 1)[0].strip()
        criterion_class(name)  # unknown names fail here, listing the valid ones
        out.extend(_expand_one(make_criterion(key), axes))
    unique: dict[str, Criterion] = {}
    for crit in out:
        unique.setdefault(crit.spec, crit)
    if not unique:
        raise CriterionConfigError("no criterion to replay: give at least one spec or grid entry")
    return list(unique.values())


def _expand_one(base: Criterion, axes: Mapping[str, Sequence[Any]]) -> list[Criterion]:
    names = list(axes)
    combos = itertools.product(*(list(axes[n]) for n in names))
    return [make_criterion(base.spec, **dict(zip(names, combo, strict=True))) for combo in combos]


def _sweep_rule(crit: Criterion) -> tuple[str, str] | None:
    declared = getattr(type(crit), "sweep_parameter", None)
    if declared is not None:
        return tuple(declared)  # type: ignore[return-value]
    return SWEEPABLE.get(crit.name)


@dataclass
class _Unit:
    """Settings evaluated together: one, or a sweep group sharing one statistic."""

    settings: list[_Setting]
    sweep: tuple[str, str] | None = None  # (parameter, operator) for a verified sweep group

    @property
    def values(self) -> list[float]:
        assert self.sweep is not None
        return [float(s.params[self.sweep[0]]) for s in self.settings]


def _plan_units(crits: list[Criterion]) -> list[_Unit]:
    """Group settings differing only in their sweep parameter (candidate sweeps)."""
    units: list[_Unit] = []
    groups: dict[tuple[Any, ...], _Unit] = {}
    for crit in crits:
        setting = _Setting(crit.spec, crit.name, crit.get_params())
        rule = _sweep_rule(crit)
        if rule is None or getattr(crit, "is_composite", False):
            units.append(_Unit([setting]))
            continue
        pname = rule[0]
        rest = tuple(sorted((k, repr(v)) for k, v in setting.params.items() if k != pname))
        key = (crit.name, rest)
        if key in groups:
            groups[key].settings.append(setting)
        else:
            unit = _Unit([setting], sweep=rule)
            groups[key] = unit
            units.append(unit)
    # A group of one gains nothing from the sweep path.
    for unit in units:
        if len(unit.settings) < 2:
            unit.sweep = None
    return units


# ------------------------------------------------------------------------------ runs
@dataclass
class _Run:
    """The arrays of one run, ready to replay (picklable for executors).

    ``times`` is None for a bare series: its times are the cumulative
    latencies, computed where the run is replayed (:func:`_times_of`) so that
    a corpus of bare series is not held twice in memory.
    """

    trace_id: str
    run_id: str
    signals: dict[str, NDArray[np.float64]]
    times: NDArray[np.float64] | None
    failures: int = 0
    reference_start: int | None = None

    @property
    def base(self) -> NDArray[np.float64]:
        """The latency series (the first signal when there is no ``latency_ms``)."""
        x = self.signals.get("latency_ms")
        return next(iter(self.signals.values())) if x is None else x

    @property
    def n(self) -> int:
        return int((self.base if self.times is None else self.times).shape[0])


def _times_of(run: _Run) -> NDArray[np.float64]:
    """Sample times of a run in seconds (the cumulative latencies for a bare series)."""
    if run.times is not None:
        return run.times
    with np.errstate(invalid="ignore", over="ignore"):
        return np.cumsum(run.base) / 1e3


def trace_id_of(trace: Any, position: int = 0) -> str:
    """The identifier replay gives a trace's rows.

    The first of: a ``trace_id`` or ``name`` attribute, the ``trace_id`` or
    ``name`` tag of its metadata, the ``benchmark`` / ``file`` / ``source_file``
    / ``path`` provenance of its first run, else ``f"trace{position}"``.
    """
    for attr in ("trace_id", "name"):
        value = getattr(trace, attr, None)
        if isinstance(value, str) and value:
            return value
    meta = getattr(trace, "metadata", None)
    tags = getattr(meta, "tags", None) or {}
    for key in ("trace_id", "name"):
        if tags.get(key):
            return str(tags[key])
    runs = getattr(meta, "runs", None) or []
    for info in runs:
        prov = getattr(info, "provenance", None) or {}
        for key in ("benchmark", "file", "source_file", "path"):
            if prov.get(key):
                return str(prov[key])
    return f"trace{position}"


def _runs_of(item: Any, position: int, needed: tuple[str, ...]) -> list[_Run]:
    """Extract the runs of a Trace, a mapping of signals, or a bare series."""
    if hasattr(item, "run_ids") and hasattr(item, "samples"):
        return _runs_of_trace(item, position, needed)
    if isinstance(item, Mapping):
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in item.items()}
        base = arrays.get("latency_ms")
        if base is None:
            raise ReplayError(
                f"series {position}: a mapping of signals needs a 'latency_ms' entry "
                f"(got {sorted(arrays)})"
            )
        signals = arrays
    else:
        base = np.asarray(item, dtype=np.float64)
        signals = {"latency_ms": base}
    if base.ndim != 1:
        raise ReplayError(f"series {position}: expected a 1-D series, got shape {base.shape}")
    for name, arr in signals.items():
        if arr.shape != base.shape:
            raise ReplayError(
                f"series {position}: signal {name!r} has {arr.shape[0]} values, "
                f"latency_ms has {base.shape[0]}"
            )
    return [_Run(f"series{position}", "0", signals, None)]


def _runs_of_trace(trace: Any, position: int, needed: tuple[str, ...]) -> list[_Run]:
    tid = trace_id_of(trace, position)
    data = getattr(trace, "data", None)
    columns = set(getattr(data, "columns", ()))
    missing = [s for s in needed if columns and s not in columns]
    if missing:
        raise ReplayError(
            f"trace {tid!r} has no column {missing[0]!r}, which a criterion watches "
            f"(columns: {sorted(columns)})"
        )
    failed: dict[str, int] = {}
    if data is not None and "ok" in columns and "run_id" in columns:
        bad = ~data["ok"].astype(bool)
        failed = {str(k): int(v) for k, v in bad.groupby(data["run_id"].astype(str)).sum().items()}
    runs = []
    for rid in trace.run_ids:
        signals = {s: np.asarray(trace.samples(rid, signal=s), dtype=np.float64) for s in needed}
        times = np.asarray(trace.sample_times_s(rid), dtype=np.float64)
        info = trace.run_info(rid) if hasattr(trace, "run_info") else None
        ref = getattr(info, "reference_start", None)
        runs.append(
            _Run(tid, str(rid), signals, times, failed.get(str(rid), 0),
                 None if ref is None else int(ref))
        )
    return runs


def _check_run(run: _Run) -> None:
    shape = (run.n,)
    for name, arr in run.signals.items():
        if arr.shape != shape:
            raise ReplayError(
                f"trace {run.trace_id!r}, run {run.run_id!r}: signal {name!r} has "
                f"{arr.shape[0]} samples but there are {run.n} sample times"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ReplaySampleError(run.trace_id, run.run_id, i, float(arr[i]), name)
    if not run.n:
        return
    if run.times is None:
        # Cumulative latencies: every partial sum is finite when the sum of |x| is.
        with np.errstate(over="ignore"):
            if np.isfinite(np.abs(run.base).sum()):
                return
    times = _times_of(run)
    if not np.all(np.isfinite(times)):
        i = int(np.argmax(~np.isfinite(times)))
        raise ReplaySampleError(run.trace_id, run.run_id, i, float(times[i]), "time_s")




# ------------------------------------------------------------------------ decisions
def _sweep_stops(
    rule: StopRule, stat: NDArray[np.float64], values: NDArray[np.float64], op: str
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Stop index (-1: none) and convergence for every value of a sweep parameter at once.

    The first passing check is found for all values together from a running
    minimum (``<``) or maximum (``>=``) of the statistic at the checks and a
    binary search. With patience ``p > 1`` the statistic at check ``j`` is
    first replaced by the worst value over checks ``j - p + 1 .. j``: ``p``
    passing checks in a row end at ``j`` exactly when that worst value passes.
    The ``max_samples`` cap is then applied as :meth:`StopRule.decide` does:
    a convergence at an index below the cap stops there, otherwise a series
    of at least ``max_samples`` samples stops (unconverged) at the cap.
    """
    n = stat.shape[0]
    checks = rule.check_indices(n)
    conv_idx = np.full(values.shape[0], -1, dtype=np.int64)
    p = rule.patience
    if checks.size >= p:
        below = op == "<"
        fill = np.inf if below else -np.inf  # NaN never passes
        s = stat[checks]
        s = np.where(np.isnan(s), fill, s)
        if p > 1:
            win = np.lib.stride_tricks.sliding_window_view(s, p)
            worst = win.max(axis=1) if below else win.min(axis=1)
            s = np.concatenate([np.full(p - 1, fill), worst])
        if below:
            pos = np.searchsorted(-np.minimum.accumulate(s), -values, side="right")
        else:
            pos = np.searchsorted(np.maximum.accumulate(s), values, side="left")
        hit = pos < checks.size
        conv_idx[hit] = checks[pos[hit]]
    converged = conv_idx >= 0
    cap = rule.max_samples
    if cap is None:
        return conv_idx, converged
    converged &= conv_idx < cap
    stop = np.where(converged, conv_idx, cap - 1 if n >= cap else -1)
    return stop.astype(np.int64, copy=False), converged


def _passes(stat: NDArray[np.float64], value: float, op: str) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return stat < value if op == "<" else stat >= value


def _verify_sweeps(units: list[_Unit], runs: list[_Run]) -> None:
    """Check each sweep claim against the full evaluation on the first non-empty run.

    Up to five settings of each group are evaluated in full (the first, the
    last and three spread between) and must give the reference statistic,
    truncation and ``statistic <op> value`` verdicts exactly.
    """
    sample = next((r for r in runs if r.n > 0), None)
    if sample is None:
        return
    times = _times_of(sample)
    for unit in units:
        if unit.sweep is None:
            continue
        pname, op = unit.sweep
        # The first, the last and a few settings in between (the claim is the class's).
        picks = sorted({round(i) for i in np.linspace(0, len(unit.settings) - 1, 5)})
        crits = [make_criterion(unit.settings[i].spec) for i in picks]
        values = [unit.values[i] for i in picks]
        ref = _evaluate(crits[0], sample.signals, times)
        ok = True
        for crit, value in zip(crits, values, strict=True):
            ev = _evaluate(crit, sample.signals, times)
            same_stat = np.array_equal(ev.statistic, ref.statistic, equal_nan=True)
            same_trunc = (ev.truncation is None and ref.truncation is None) or (
                ev.truncation is not None
                and ref.truncation is not None
                and np.array_equal(ev.truncation, ref.truncation)
            )
            if not (same_stat and same_trunc and np.array_equal(
                ev.passed, _passes(ref.statistic, value, op)
            )):
                ok = False
                break
        if not ok:
            logger.info(
                "criterion %r does not decide by 'statistic %s %s' on trace %r; "
                "replaying its settings one by one",
                unit.settings[0].name, op, pname, sample.trace_id,
            )
            unit.sweep = None


# ----------------------------------------------------------------- evaluations
def _evaluate(
    crit: Criterion,
    signals: Mapping[str, NDArray[np.float64]],
    times: NDArray[np.float64],
    length: int | None = None,
) -> Evaluation:
    """Evaluate ``crit`` on a run's signals, or on their first ``length`` samples.

    The run was checked once (:func:`_check_run`: finite values, one time per
    sample), so a criterion that keeps the base class's :meth:`Criterion.evaluate`
    is handed its signal directly (:meth:`Criterion._evaluate`, the same
    computation without re-checking every prefix); one that overrides
    ``evaluate`` (the composites) is called through it.
    """
    sl = slice(None) if length is None else slice(0, length)
    sig = crit.signals
    if type(crit).evaluate is Criterion.evaluate:
        return crit._evaluate(signals[sig[0]][sl], times[sl])
    if len(sig) == 1:
        return crit.evaluate(signals[sig[0]][sl], times[sl])
    return crit.evaluate({s: signals[s][sl] for s in sig}, times[sl])


#: First prefix evaluated by the early exit, and its growth factor.
_PREFIX0, _PREFIX_GROWTH = 64, 4


def _first_prefix(rule: StopRule) -> int:
    length = max(_PREFIX0, 2 * rule.min_samples)
    if rule.max_samples is not None:
        length = min(length, rule.max_samples)
    return length


def _feeds_online(crit: Criterion) -> bool:
    """Whether early exit feeds ``crit`` sample by sample instead of on prefixes.

    Truncation methods (``yields_truncation``: MSER-5, maximum ESS, minimum
    SSE, PELT) re-analyse the whole prefix at each of their check points, so
    the offline cost of a prefix is the sum of those analyses and every
    longer prefix redoes them. Their online form does each analysis once, at
    its check point, and stops at the stop, exactly as the driver does.
    """
    return crit.yields_truncation and not getattr(crit, "is_composite", False)


@dataclass
class _Verdict:
    """One setting's outcome on one run: the decision and the statistic at it."""

    decision: StopDecision | None
    statistic: float
    truncation: int


def _verdict_of(ev: Evaluation, decision: StopDecision | None) -> _Verdict:
    if decision is None:
        k = ev.statistic.shape[0] - 1  # the whole run was evaluated
        return _Verdict(None, float(ev.statistic[k]), -1)
    k = decision.index
    trunc = -1 if ev.truncation is None else int(ev.truncation[k])
    return _Verdict(decision, float(ev.statistic[k]), trunc)


def _decide_online(
    crit: Criterion, x: NDArray[np.float64], times: NDArray[np.float64], rule: StopRule
) -> _Verdict:
    """Feed the run to a fresh copy of ``crit`` through ``update`` until the rule stops."""
    twin = crit.clone()
    tracker = rule.tracker()
    for value, t in zip(x.tolist(), times.tolist(), strict=True):
        twin.update(value, t)
        decision = tracker.observe(twin.passed_)
        if decision is not None:
            break
    else:
        decision = None
    trunc = twin.truncation_
    return _Verdict(decision, float(twin.statistic_), -1 if trunc is None else int(trunc))


def _decide(
    crit: Criterion,
    signals: Mapping[str, NDArray[np.float64]],
    times: NDArray[np.float64],
    rule: StopRule,
    early_exit: bool,
) -> _Verdict:
    """One setting on one run: whole-run evaluation, or the early exit.

    With the early exit the criterion is evaluated on growing prefixes until
    one holds the stop (or the whole run is evaluated). Entry ``t`` of an
    evaluation depends only on ``x[: t + 1]`` (the criterion contract), so the
    decision on a prefix that contains a stop is the decision on the whole
    run; the cost follows the stop index, as the driver's does, instead of
    the run length. Truncation methods are fed online instead
    (:func:`_feeds_online`).
    """
    n = times.shape[0]
    if not early_exit:
        ev = _evaluate(crit, signals, times)
        return _verdict_of(ev, rule.decide(ev))
    if _feeds_online(crit):
        return _decide_online(crit, signals[crit.signal], times, rule)
    length = _first_prefix(rule)
    while length < n:
        ev = _evaluate(crit, signals, times, length)
        decision = rule.decide(ev)
        if decision is not None:
            return _verdict_of(ev, decision)
        length *= _PREFIX_GROWTH
    ev = _evaluate(crit, signals, times)
    return _verdict_of(ev, rule.decide(ev))


def _sweep(
    crit: Criterion,
    signals: Mapping[str, NDArray[np.float64]],
    times: NDArray[np.float64],
    rule: StopRule,
    unit: _Unit,
    early_exit: bool,
) -> tuple[Evaluation, NDArray[np.int64], NDArray[np.bool_]]:
    """Sweep stops on growing prefixes until every value has stopped (or the whole run)."""
    assert unit.sweep is not None
    op = unit.sweep[1]
    values = np.asarray(unit.values, dtype=np.float64)
    n = times.shape[0]
    length = _first_prefix(rule) if early_exit else n
    while length < n:
        ev = _evaluate(crit, signals, times, length)
        stop, conv = _sweep_stops(rule, ev.statistic, values, op)
        if (stop >= 0).all():
            return ev, stop, conv
        length *= _PREFIX_GROWTH
    ev = _evaluate(crit, signals, times)
    stop, conv = _sweep_stops(rule, ev.statistic, values, op)
    return ev, stop, conv


# ------------------------------------------------------------------------ the rows
def _no_stop_reason(rule: StopRule, n: int) -> str:
    if n == 0:
        return "no successful samples to replay"
    if n < rule.min_samples:
        return f"only {n} samples, fewer than min_samples={rule.min_samples}: no check happened"
    extra = f" on {rule.patience} consecutive checks" if rule.patience > 1 else ""
    return f"the criterion never passed{extra} within the {n} samples of the trace"


class _Columns:
    """Result columns of a chunk of runs, accumulated as flat lists (no dict per row).

    Per row: the setting's global position, the run's position in the chunk,
    the stop index (-1: none), convergence, the statistic, the truncation (-1:
    none) and the time and cumulative latency at the stop. Per run: its
    identifiers, sizes and reference columns. :meth:`arrays` derives every
    result column with numpy.
    """

    def __init__(self) -> None:
        self.setting: list[int] = []
        self.run: list[int] = []
        self.stop: list[int] = []
        self.conv: list[bool] = []
        self.stat: list[float] = []
        self.trunc: list[int] = []
        self.t_at: list[float] = []
        self.c_at: list[float] = []
        self.runs: list[tuple[str, str, int, int, float, float, int | None, float, float]] = []

    def add_run(self, run: _Run, times: NDArray[np.float64], csum: NDArray[np.float64]) -> int:
        """Record a run's own columns; return its position in the chunk."""
        n = run.n
        total = float(csum[-1]) if n else 0.0
        ref = run.reference_start
        ref_s = ref_mean = math.nan
        if ref is not None and 0 <= ref < max(n, 1):
            ref_s = float(times[ref - 1]) if ref > 0 else 0.0
            before = float(csum[ref - 1]) if ref > 0 else 0.0
            ref_mean = (total - before) / (n - ref) if n > ref else math.nan
        last = float(times[-1]) if n else 0.0
        self.runs.append((run.trace_id, run.run_id, n, run.failures, last, total, ref, ref_s,
                          ref_mean))
        return len(self.runs) - 1

    def add(self, setting: int, run: int, verdict: _Verdict | None,
            times: NDArray[np.float64], csum: NDArray[np.float64]) -> None:
        """One row: ``verdict`` None for a run without samples."""
        self.setting.append(setting)
        self.run.append(run)
        d = None if verdict is None else verdict.decision
        if d is None:
            self.stop.append(-1)
            self.conv.append(False)
            self.t_at.append(0.0)
            self.c_at.append(0.0)
        else:
            self.stop.append(d.index)
            self.conv.append(d.converged)
            self.t_at.append(float(times[d.index]))
            self.c_at.append(float(csum[d.index]))
        self.stat.append(math.nan if verdict is None else verdict.statistic)
        self.trunc.append(-1 if verdict is None or d is None else verdict.truncation)

    def add_sweep(self, first: int, run: int, ev: Evaluation, stop: NDArray[np.int64],
                  conv: NDArray[np.bool_], times: NDArray[np.float64],
                  csum: NDArray[np.float64]) -> None:
        """The rows of a sweep group (settings ``first, first + 1, ...``) on one run."""
        m = stop.shape[0]
        stopped = stop >= 0
        at = np.where(stopped, stop, ev.statistic.shape[0] - 1)
        self.setting.extend(range(first, first + m))
        self.run.extend([run] * m)
        self.stop.extend(stop.tolist())
        self.conv.extend(conv.tolist())
        self.stat.extend(ev.statistic[at].tolist())
        if ev.truncation is None:
            self.trunc.extend([-1] * m)
        else:
            self.trunc.extend(np.where(stopped, ev.truncation[at], -1).tolist())
        self.t_at.extend(np.where(stopped, times[at], 0.0).tolist())
        self.c_at.extend(np.where(stopped, csum[at], 0.0).tolist())

    def arrays(self, rule: StopRule) -> dict[str, NDArray[Any]]:
        """Every result column but the settings' own (criterion, spec, parameters)."""
        run = np.asarray(self.run, dtype=np.int64)
        per_run = list(zip(*self.runs, strict=True)) if self.runs else [()] * 9
        tid, rid, n_r, fail_r, last_r, total_r, ref_r, ref_s_r, ref_mean_r = per_run
        n = np.asarray(n_r, dtype=np.int64)[run]
        stop = np.asarray(self.stop, dtype=np.int64)
        stopped = stop >= 0
        conv = np.asarray(self.conv, dtype=bool) & stopped
        t_at = np.asarray(self.t_at, dtype=np.float64)
        tail = n - stop - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            post = (np.asarray(total_r, dtype=np.float64)[run]
                    - np.asarray(self.c_at, dtype=np.float64)) / tail
        trunc = np.asarray(self.trunc, dtype=np.int64)
        ref_known = np.array([r is not None for r in ref_r], dtype=bool)
        ref_val = np.array([-1 if r is None else r for r in ref_r], dtype=np.float64)
        cache: dict[tuple[int, bool, int], str] = {}

        def reason(k: int, c: bool, size: int) -> str:
            key = (k, c, size if k < 0 else -1)
            text = cache.get(key)
            if text is None:
                if k < 0:
                    text = _no_stop_reason(rule, size)
                elif c:
                    text = rule._converged_reason(k)
                else:
                    text = rule._cap_reason()
                cache[key] = text
            return text

        return {
            "setting": np.asarray(self.setting, dtype=np.int64),
            "trace_id": np.asarray(tid, dtype=object)[run],
            "run_id": np.asarray(rid, dtype=object)[run],
            "n_samples": n,
            "failures": np.asarray(fail_r, dtype=np.int64)[run],
            "stop_index": np.where(stopped, stop, np.nan),
            "stop_time_s": np.where(stopped, t_at, np.nan),
            "stopped": stopped,
            "converged": conv,
            "statistic": np.asarray(self.stat, dtype=np.float64),
            "truncation": np.where(stopped & (trunc >= 0), trunc, np.nan),
            "samples_used": np.where(stopped, stop + 1, n),
            "seconds_used": np.where(stopped, t_at, np.asarray(last_r, dtype=np.float64)[run]),
            "post_stop_mean": np.where(stopped & (tail > 0), post, np.nan),
            "reason": np.asarray(
                [reason(k, c, s) for k, c, s in zip(stop.tolist(), conv.tolist(), n.tolist(),
                                                     strict=True)],
                dtype=object,
            ),
            "reference_start": np.where(ref_known, ref_val, np.nan)[run],
            "reference_start_s": np.asarray(ref_s_r, dtype=np.float64)[run],
            "reference_mean": np.asarray(ref_mean_r, dtype=np.float64)[run],
        }


@functools.lru_cache(maxsize=8)
def _criteria_for(specs: tuple[tuple[str, ...], ...]) -> list[list[Criterion]]:
    """The criteria of every unit, built once per process (evaluation is pure)."""
    return [[make_criterion(s) for s in unit] for unit in specs]


def _replay_chunk(
    runs: list[_Run], units: list[_Unit], rule: StopRule, early_exit: bool = True
) -> dict[str, NDArray[Any]]:
    """Replay every unit on every run of a chunk (runs in worker processes too)."""
    crits = _criteria_for(tuple(tuple(s.spec for s in unit.settings) for unit in units))
    firsts = np.cumsum([0] + [len(u.settings) for u in units]).tolist()
    cols = _Columns()
    for run in runs:
        times = _times_of(run)
        csum = np.cumsum(run.base)
        pos = cols.add_run(run, times, csum)
        for unit, ucrits, first in zip(units, crits, firsts, strict=False):
            if run.n == 0:
                for j in range(len(unit.settings)):
                    cols.add(first + j, pos, None, times, csum)
            elif unit.sweep is not None:
                ev, stop, conv = _sweep(ucrits[0], run.signals, times, rule, unit, early_exit)
                cols.add_sweep(first, pos, ev, stop, conv, times, csum)
            else:
                for j, crit in enumerate(ucrits):
                    verdict = _decide(crit, run.signals, times, rule, early_exit)
                    cols.add(first + j, pos, verdict, times, csum)
    return cols.arrays(rule)


def _chunks(runs: list[_Run], size: int) -> list[list[_Run]]:
    return [runs[i : i + size] for i in range(0, len(runs), size)]


# ------------------------------------------------------------------------ public API
def replay(
    traces: Any,
    criteria: str | Criterion | Iterable[str | Criterion],
    *,
    stop_rule: StopRule | None = None,
    grid: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    executor: cf.Executor | None = None,
    chunk_size: int | None = None,
    show_progress: bool | None = None,
    early_exit: bool = True,
) -> pd.DataFrame:
    """Replay traces through criteria: one tidy row per run x criterion setting.

    Parameters
    ----------
    traces : Trace, sequence or mapping of Trace, or series
        :class:`~llenergymeasure.traces.Trace` objects (every run of each is
        replayed on its successful attempts, at their recorded times; rows are
        named by :func:`trace_id_of`), or bare 1-D latency series in ms /
        mappings of signal arrays (times are then the cumulative latencies).
        In a mapping ``{trace_id: series}`` the keys name the bare series.
    criteria : str, Criterion or iterable of them
        Criterion specs (``"rolling_cv:window=10,threshold=0.02"``) or
        instances.
    stop_rule : StopRule, optional
        Minimum samples, check cadence, patience and cap. Default: the rule the
        driver uses for a ``WarmupConfig(criterion=spec)`` with default
        settings (``StopRule(min_samples=5)``).
    grid : mapping, optional
        Parameter grids, ``{"rolling_cv": {"threshold": [...], "window": [...]}}``
        (cartesian product; see :func:`expand_grid`).
    executor : concurrent.futures.Executor, optional
        Where chunks of runs are replayed. Default: in this process. A
        :class:`~concurrent.futures.ProcessPoolExecutor` or a dask
        ``Client.get_executor()`` spreads the work; the results are identical.
    chunk_size : int, optional
        Runs per task sent to the executor (default: enough for about four
        tasks per worker, at least one run).
    show_progress : bool, optional
        Draw a progress bar over runs; default: only for long work (at least
        2,000 run x setting pairs).
    early_exit : bool, default True
        Evaluate a criterion on growing prefixes of a run (64 samples or twice
        ``min_samples``, then 4 times more each time) and stop at the first prefix that contains the
        stop, so the cost follows the stop index as the driver's does. The
        rows are identical to those of False (whole runs: a run on which the
        rule never stops is evaluated whole either way). A threshold sweep
        grows its prefix until every threshold has stopped.

    Returns
    -------
    pandas.DataFrame
        One row per run and setting, with the columns of :data:`RESULT_COLUMNS`
        plus ``param_<name>`` for every parameter. ``stop_index`` (0-based, among
        successful samples) and ``stop_time_s`` (seconds from the start of the
        run to the end of the stopping sample) are missing when the rule never
        stopped; ``stopped`` says whether it did and ``converged`` whether by
        convergence (not the ``max_samples`` cap). ``truncation`` is the
        criterion's truncation estimate at the stop (truncation methods only).
        ``samples_used`` / ``seconds_used`` are what warmup consumed (the whole
        run when it never stopped); ``post_stop_mean`` is the mean latency
        after the stop. ``reference_start`` (samples), ``reference_start_s``
        (warmup time before it) and ``reference_mean`` (mean from it on) come
        from the run's labelled steady-state start when it has one.

    Raises
    ------
    CriterionConfigError
        An unknown criterion or parameter, before any work.
    ReplayError
        A criterion watches a signal a trace does not have.
    ReplaySampleError
        A sample is NaN or infinite (the message names trace, run and index).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.linspace(30.0, 10.0, 20), np.full(30, 10.0)]
    >>> df = replay([x], "rolling_cv:window=5,threshold=0.01")
    >>> int(df.loc[0, "stop_index"])
    23
    """
    rule = stop_rule if stop_rule is not None else StopRule(min_samples=5)
    crits = expand_grid(criteria, grid)
    needed: dict[str, None] = {}
    for crit in crits:
        for s in crit.signals:
            needed[s] = None
    needed_t = tuple(needed)
    if isinstance(traces, np.ndarray) or hasattr(traces, "run_ids"):
        items: list[tuple[str | None, Any]] = [(None, traces)]
    elif isinstance(traces, Mapping):
        items = [(str(k), v) for k, v in traces.items()]
    else:
        items = [(None, t) for t in traces]
    runs: list[_Run] = []
    for pos, (name, item) in enumerate(items):
        item_runs = _runs_of(item, pos, needed_t)
        if name is not None and not hasattr(item, "run_ids"):
            for run in item_runs:
                run.trace_id = name
        runs.extend(item_runs)
    for run in runs:
        _check_run(run)
    units = _plan_units(crits)
    _verify_sweeps(units, runs)
    n_settings = len(crits)
    if show_progress is None:
        show_progress = len(runs) * n_settings >= 2000
    bar = progress_bar(len(runs), "Replay", "run", enabled=bool(show_progress))
    try:
        if executor is None:
            parts: list[dict[str, NDArray[Any]]] = []
            for chunk in _chunks(runs, chunk_size or 16):
                parts.append(_replay_chunk(chunk, units, rule, early_exit))
                if bar is not None:
                    bar.update(len(chunk))
        else:
            parts = _run_on_executor(executor, runs, units, rule, chunk_size, bar, early_exit)
    finally:
        if bar is not None:
            bar.close()
    return _frame(parts, [s for unit in units for s in unit.settings])


def _workers(executor: cf.Executor) -> int:
    for attr in ("_max_workers",):
        value = getattr(executor, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a client that cannot answer still gets a sensible default
            return 4
    return 4


def _run_on_executor(
    executor: cf.Executor,
    runs: list[_Run],
    units: list[_Unit],
    rule: StopRule,
    chunk_size: int | None,
    bar: Any,
    early_exit: bool,
) -> list[dict[str, NDArray[Any]]]:
    workers = _workers(executor)
    size = chunk_size or max(1, math.ceil(len(runs) / (4 * workers)))
    chunks = _chunks(runs, size)
    results: dict[int, dict[str, NDArray[Any]]] = {}
    pending: dict[cf.Future[dict[str, NDArray[Any]]], int] = {}
    window = 2 * workers  # chunks in flight: bounds the memory of pickled arguments
    todo = iter(enumerate(chunks))
    for i, chunk in itertools.islice(todo, window):
        pending[executor.submit(_replay_chunk, chunk, units, rule, early_exit)] = i
    while pending:
        done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            i = pending.pop(fut)
            results[i] = fut.result()
            if bar is not None:
                bar.update(len(chunks[i]))
            nxt = next(todo, None)
            if nxt is not None:
                pending[executor.submit(_replay_chunk, nxt[1], units, rule, early_exit)] = nxt[0]
    return [results[i] for i in range(len(chunks))]


def _frame(parts: list[dict[str, NDArray[Any]]], settings: list[_Setting]) -> pd.DataFrame:
    """One DataFrame from the chunks' column arrays (one concatenation per column).

    The settings' own columns (criterion, spec, ``param_*``) are built once
    per setting and gathered by each row's setting position; the parameter
    columns get the dtypes pandas infers from the settings' values.
    """
    if not parts or sum(p["setting"].shape[0] for p in parts) == 0:
        return _finish(pd.DataFrame(columns=list(RESULT_COLUMNS)))
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    which = cols.pop("setting")
    own = pd.DataFrame.from_records(
        [{"criterion": s.name, "spec": s.spec, **{f"param_{k}": v for k, v in s.params.items()}}
         for s in settings]
    )
    data: dict[str, Any] = {}
    for name in RESULT_COLUMNS[:4]:
        data[name] = cols[name] if name in cols else own[name].to_numpy()[which]
    for name in own.columns:
        if name.startswith("param_"):
            data[name] = own[name].take(which).to_numpy()
    for name in RESULT_COLUMNS[4:]:
        data[name] = cols[name]
    return _finish(pd.DataFrame(data))


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Column order and dtypes of every result table."""
    params = sorted(c for c in df.columns if c.startswith("param_"))
    order = list(RESULT_COLUMNS[:4]) + params + list(RESULT_COLUMNS[4:])
    df = df.reindex(columns=order)
    for col in _INT_COLUMNS:
        df[col] = pd.array(df[col].astype("Float64"), dtype="Int64")
    for col in ("stopped", "converged"):
        df[col] = df[col].astype(bool)
    for col in ("n_samples", "failures", "samples_used"):
        df[col] = df[col].astype(np.int64)
    for col in ("trace_id", "run_id", "criterion", "spec", "reason"):
        df[col] = df[col].astype(str)
    return df
