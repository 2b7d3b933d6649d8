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
import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.criteria.base import Criterion, CriterionConfigError, InvalidSampleError
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
    """The arrays of one run, ready to replay (picklable for executors)."""

    trace_id: str
    run_id: str
    signals: dict[str, NDArray[np.float64]]
    times: NDArray[np.float64]
    failures: int = 0
    reference_start: int | None = None

    @property
    def n(self) -> int:
        return int(self.times.shape[0])


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
    with np.errstate(invalid="ignore"):
        times = np.cumsum(base) / 1e3
    return [_Run(f"series{position}", "0", signals, times)]


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
    for name, arr in run.signals.items():
        if arr.shape != run.times.shape:
            raise ReplayError(
                f"trace {run.trace_id!r}, run {run.run_id!r}: signal {name!r} has "
                f"{arr.shape[0]} samples but there are {run.times.shape[0]} sample times"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ReplaySampleError(run.trace_id, run.run_id, i, float(arr[i]), name)
    if run.n and not np.all(np.isfinite(run.times)):
        i = int(np.argmax(~np.isfinite(run.times)))
        raise ReplaySampleError(run.trace_id, run.run_id, i, float(run.times[i]), "time_s")


# ------------------------------------------------------------------------ decisions
def _decision_from_index(rule: StopRule, idx: int | None, n: int) -> StopDecision | None:
    """:meth:`StopRule.decide` given the uncapped convergence index."""
    if idx is not None and (rule.max_samples is None or idx < rule.max_samples):
        return StopDecision(idx, True, rule._converged_reason(idx))
    if rule.max_samples is not None and n >= rule.max_samples:
        return StopDecision(rule.max_samples - 1, False, rule._cap_reason())
    return None


def _sweep_decisions(
    rule: StopRule, stat: NDArray[np.float64], values: Sequence[float], op: str
) -> list[StopDecision | None]:
    """Stop decisions for every value of a sweep parameter from one statistic array.

    The first passing check is found for all values at once from a running
    minimum (``<``) or maximum (``>=``) of the statistic at the checks and a
    binary search. With patience ``p > 1`` the statistic at check ``j`` is
    first replaced by the worst value over checks ``j - p + 1 .. j``: ``p``
    passing checks in a row end at ``j`` exactly when that worst value passes.
    """
    n = stat.shape[0]
    checks = rule.check_indices(n)
    if not checks.size:
        return [_decision_from_index(rule, None, n) for _ in values]
    below = op == "<"
    fill = np.inf if below else -np.inf  # NaN never passes
    s = np.where(np.isnan(stat[checks]), fill, stat[checks])
    p = rule.patience
    if p > 1:
        # p passing checks in a row end at check j iff the worst of s[j-p+1 .. j] passes.
        if s.size < p:
            return [_decision_from_index(rule, None, n) for _ in values]
        win = np.lib.stride_tricks.sliding_window_view(s, p)
        worst = win.max(axis=1) if below else win.min(axis=1)
        s = np.concatenate([np.full(p - 1, fill), worst])
    v = np.asarray(values, dtype=np.float64)
    if below:
        running = np.minimum.accumulate(s)
        pos = np.searchsorted(-running, -v, side="right")
    else:
        running = np.maximum.accumulate(s)
        pos = np.searchsorted(running, v, side="left")
    return [
        _decision_from_index(rule, int(checks[q]) if q < checks.size else None, n) for q in pos
    ]


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
    for unit in units:
        if unit.sweep is None:
            continue
        if sample is None:
            continue
        pname, op = unit.sweep
        # The first, the last and a few settings in between (the claim is the class's).
        picks = sorted({round(i) for i in np.linspace(0, len(unit.settings) - 1, 5)})
        crits = [make_criterion(unit.settings[i].spec) for i in picks]
        values = [unit.values[i] for i in picks]
        ref = _evaluate(crits[0], sample)
        ok = True
        for crit, value in zip(crits, values, strict=True):
            ev = _evaluate(crit, sample)
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


# ------------------------------------------------------------------------ the rows
def _evaluate(crit: Criterion, run: _Run, length: int | None = None) -> Any:
    """Evaluate ``crit`` on the run, or on its first ``length`` samples."""
    sl = slice(None) if length is None else slice(0, length)
    sig = crit.signals
    if len(sig) == 1:
        x: Any = run.signals[sig[0]][sl]
    else:
        x = {s: run.signals[s][sl] for s in sig}
    return crit.evaluate(x, run.times[sl])


#: First prefix evaluated by the early exit, and its growth factor.
_PREFIX0, _PREFIX_GROWTH = 64, 4


def _decide_early(crit: Criterion, run: _Run, rule: StopRule) -> tuple[Any, StopDecision | None]:
    """Evaluate growing prefixes until one holds the stop (or the whole run is evaluated).

    Entry ``t`` of an evaluation depends only on ``x[: t + 1]`` (the criterion
    contract), so the decision on a prefix that contains a stop is the
    decision on the whole run; the cost follows the stop index, as the
    driver's does, instead of the run length.
    """
    n = run.n
    length = _first_prefix(rule)
    while True:
        if length >= n:
            ev = _evaluate(crit, run)
            return ev, rule.decide(ev)
        ev = _evaluate(crit, run, length)
        decision = rule.decide(ev)
        if decision is not None:
            return ev, decision
        length *= _PREFIX_GROWTH


def _no_stop_reason(rule: StopRule, n: int) -> str:
    if n == 0:
        return "no successful samples to replay"
    if n < rule.min_samples:
        return f"only {n} samples, fewer than min_samples={rule.min_samples}: no check happened"
    extra = f" on {rule.patience} consecutive checks" if rule.patience > 1 else ""
    return f"the criterion never passed{extra} within the {n} samples of the trace"


def _row(
    run: _Run,
    setting: _Setting,
    decision: StopDecision | None,
    stat: NDArray[np.float64] | None,
    trunc: NDArray[np.int64] | None,
    csum: NDArray[np.float64],
    rule: StopRule,
) -> dict[str, Any]:
    n = run.n
    row: dict[str, Any] = {
        "trace_id": run.trace_id,
        "run_id": run.run_id,
        "criterion": setting.name,
        "spec": setting.spec,
        "n_samples": n,
        "failures": run.failures,
    }
    for k, v in setting.params.items():
        row[f"param_{k}"] = v
    total = float(csum[-1]) if n else 0.0
    if decision is None:
        row.update(
            stop_index=None, stop_time_s=math.nan, stopped=False, converged=False,
            statistic=float(stat[-1]) if stat is not None and n else math.nan,
            truncation=None,
            samples_used=n, seconds_used=float(run.times[-1]) if n else 0.0,
            post_stop_mean=math.nan, reason=_no_stop_reason(rule, n),
        )
    else:
        k = decision.index
        tail = n - k - 1
        row.update(
            stop_index=k, stop_time_s=float(run.times[k]), stopped=True,
            converged=decision.converged,
            statistic=float(stat[k]) if stat is not None else math.nan,
            truncation=int(trunc[k]) if trunc is not None and trunc[k] >= 0 else None,
            samples_used=k + 1, seconds_used=float(run.times[k]),
            post_stop_mean=(total - float(csum[k])) / tail if tail > 0 else math.nan,
            reason=decision.reason,
        )
    ref = run.reference_start
    if ref is not None and ref >= 0 and ref < max(n, 1):
        row["reference_start"] = ref
        row["reference_start_s"] = float(run.times[ref - 1]) if ref > 0 else 0.0
        before = float(csum[ref - 1]) if ref > 0 else 0.0
        row["reference_mean"] = (total - before) / (n - ref) if n > ref else math.nan
    else:
        row["reference_start"] = ref
        row["reference_start_s"] = math.nan
        row["reference_mean"] = math.nan
    return row


def _sweep_early(
    crit: Criterion, run: _Run, rule: StopRule, unit: _Unit, early_exit: bool
) -> tuple[Any, list[StopDecision | None]]:
    """Sweep decisions on growing prefixes until every value has stopped (or the whole run)."""
    assert unit.sweep is not None
    n = run.n
    length = _first_prefix(rule) if early_exit else n
    while True:
        if length >= n:
            ev = _evaluate(crit, run)
            return ev, _sweep_decisions(rule, ev.statistic, unit.values, unit.sweep[1])
        ev = _evaluate(crit, run, length)
        decisions = _sweep_decisions(rule, ev.statistic, unit.values, unit.sweep[1])
        if all(d is not None for d in decisions):
            return ev, decisions
        length *= _PREFIX_GROWTH


def _first_prefix(rule: StopRule) -> int:
    length = max(_PREFIX0, 2 * rule.min_samples)
    if rule.max_samples is not None:
        length = min(length, rule.max_samples)
    return length


def _replay_chunk(
    runs: list[_Run], units: list[_Unit], rule: StopRule, early_exit: bool = True
) -> list[dict[str, Any]]:
    """Replay every unit on every run of a chunk (runs in worker processes too)."""
    crits = [[make_criterion(s.spec) for s in unit.settings] for unit in units]
    rows: list[dict[str, Any]] = []
    for run in runs:
        x = run.signals.get("latency_ms")
        if x is None:
            x = next(iter(run.signals.values()))
        csum = np.cumsum(x)
        for unit, ucrits in zip(units, crits, strict=True):
            if run.n == 0:
                for s in unit.settings:
                    rows.append(_row(run, s, None, None, None, csum, rule))
                continue
            if unit.sweep is not None:
                ev, decisions = _sweep_early(ucrits[0], run, rule, unit, early_exit)
                for s, d in zip(unit.settings, decisions, strict=True):
                    rows.append(_row(run, s, d, ev.statistic, ev.truncation, csum, rule))
                continue
            for s, crit in zip(unit.settings, ucrits, strict=True):
                if early_exit:
                    ev, decision = _decide_early(crit, run, rule)
                else:
                    ev = _evaluate(crit, run)
                    decision = rule.decide(ev)
                rows.append(_row(run, s, decision, ev.statistic, ev.truncation, csum, rule))
    return rows


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
            rows: list[dict[str, Any]] = []
            for chunk in _chunks(runs, chunk_size or 16):
                rows.extend(_replay_chunk(chunk, units, rule, early_exit))
                if bar is not None:
                    bar.update(len(chunk))
        else:
            rows = _run_on_executor(executor, runs, units, rule, chunk_size, bar, early_exit)
    finally:
        if bar is not None:
            bar.close()
    return _frame(rows)


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
) -> list[dict[str, Any]]:
    workers = _workers(executor)
    size = chunk_size or max(1, math.ceil(len(runs) / (4 * workers)))
    chunks = _chunks(runs, size)
    results: dict[int, list[dict[str, Any]]] = {}
    pending: dict[cf.Future[list[dict[str, Any]]], int] = {}
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
    return [row for i in range(len(chunks)) for row in results[i]]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows)
    if df.empty:
        df = pd.DataFrame(columns=list(RESULT_COLUMNS))
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
