"""Offline replay: every run x criterion x parameter setting, one tidy row each.

`replay` is an orchestrator over small modules, one concept each:

- `llenergymeasure.analysis.corpus`: the runs (built once, ids unique);
- `llenergymeasure.analysis.replay_grid`: settings, grids and sweep groups;
- `llenergymeasure.analysis.replay_decide`: where a setting stops on a run
  (`Criterion.evaluate`, early exit, `StopRule.sweep`);
- `llenergymeasure.analysis.results`: the result table.

Because the driver (`llenergymeasure.core.warmup.warmup_until_converged`) and
replay use the same criterion contract and the same `StopRule`, replaying a
recorded trace stops exactly where the driver would have stopped on it
("record long, replay many").

Threshold sweeps are cheap: for criteria that declare a `sweep_parameter`
(`passed == statistic < threshold` for the rolling CV), the statistic is
computed once per run and every value is decided by `StopRule.sweep`, so a
sweep of 100 thresholds costs about one evaluation. The claim is verified on
the first run against full evaluations; a criterion that does not match falls
back to one evaluation per setting.

The work can be spread with any `concurrent.futures.Executor`: a
`ProcessPoolExecutor` for large corpora, or a dask.distributed cluster through
`Client.get_executor()`.

References
----------
- L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
  assessment of steady state performance in Java software: are we there yet?",
  Empirical Software Engineering 28(1):13, 2023 (offline assessment of warmup
  rules against labelled steady-state starts, time waste in seconds).
- C. Laaber, S. Würsten, H. C. Gall and P. Leitner, "Dynamically reconfiguring
  software microbenchmarks: reducing execution time without sacrificing result
  quality", ESEC/FSE 2020 (replaying stopping criteria on recorded benchmark
  iterations).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.analysis._parallel import map_chunks
from llenergymeasure.analysis.corpus import Corpus, CorpusError, RunRecord, trace_id_of
from llenergymeasure.analysis.replay_decide import decide, sweep, verify_sweeps
from llenergymeasure.analysis.replay_grid import Unit, expand_grid, plan_units
from llenergymeasure.analysis.results import RESULT_COLUMNS, ResultColumns, result_frame
from llenergymeasure.criteria.base import Criterion, InvalidSampleError
from llenergymeasure.criteria.registry import make_criterion
from llenergymeasure.criteria.stopping import StopRule
from llenergymeasure.progress import progress_bar

__all__ = [
    "RESULT_COLUMNS",
    "ReplayError",
    "ReplaySampleError",
    "expand_grid",
    "replay",
    "trace_id_of",
]


class ReplayError(ValueError):
    """Bad input to `replay`: an unknown signal, an empty grid, a bad trace, missing times."""


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


def _check_run(run: RunRecord) -> None:
    """Every signal has one finite value per sample, and the times are finite."""
    n = run.n
    for name, arr in run.signals.items():
        if arr.shape != (n,):
            raise ReplayError(
                f"trace {run.trace_id!r}, run {run.run_id!r}: signal {name!r} has "
                f"{arr.shape[0]} samples but there are {n} sample times"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ReplaySampleError(run.trace_id, run.run_id, i, float(arr[i]), name)
    if run.times is not None and n and not np.all(np.isfinite(run.times)):
        i = int(np.argmax(~np.isfinite(run.times)))
        raise ReplaySampleError(run.trace_id, run.run_id, i, float(run.times[i]), "time_s")


def _check_times(crits: list[Criterion], corpus: Corpus) -> None:
    """Criteria that need sample times refuse runs without them, before any work."""
    timed = [c for c in crits if c.needs_time]
    if not timed:
        return
    bare = next((r for r in corpus if r.times is None), None)
    if bare is not None:
        raise ReplayError(
            f"criterion {timed[0].spec!r} needs sample times, and trace {bare.trace_id!r} run "
            f"{bare.run_id!r} ({bare.source}) has none: replay a Trace with timestamps, or "
            "pass values_are_durations=True if the values are the samples' durations in ms"
        )


@functools.lru_cache(maxsize=8)
def _criteria_for(specs: tuple[tuple[str, ...], ...]) -> list[list[Criterion]]:
    """The criteria of every unit, built once per process (evaluation is pure)."""
    return [[make_criterion(s) for s in unit] for unit in specs]


def _replay_chunk(
    runs: list[RunRecord], units: list[Unit], rule: StopRule, early_exit: bool = True
) -> dict[str, NDArray[Any]]:
    """Replay every unit on every run of a chunk (runs in worker processes too)."""
    crits = _criteria_for(tuple(tuple(s.spec for s in unit.settings) for unit in units))
    firsts = np.cumsum([0] + [len(u.settings) for u in units]).tolist()
    cols = ResultColumns()
    for run in runs:
        times = run.times if run.times is not None else np.full(run.n, np.nan)
        csum = np.cumsum(run.base)
        pos = cols.add_run(run, times, csum)
        for unit, ucrits, first in zip(units, crits, firsts, strict=False):
            if run.n == 0:
                for j in range(len(unit.settings)):
                    cols.add(first + j, pos, None, times, csum)
            elif unit.sweep is not None:
                ev, stop, conv = sweep(ucrits[0], run, rule, unit, early_exit)
                cols.add_sweep(first, pos, ev, stop, conv, times, csum)
            else:
                for j, crit in enumerate(ucrits):
                    cols.add(first + j, pos, decide(crit, run, rule, early_exit), times, csum)
    return cols.arrays(rule)


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
    values_are_durations: bool = False,
) -> pd.DataFrame:
    """Replay traces through criteria: one tidy row per run x criterion setting.

    Parameters
    ----------
    traces : Corpus, or anything `Corpus.build` accepts
        A `llenergymeasure.analysis.corpus.Corpus`, trace files or folders,
        `Trace` objects (every run of each is replayed on its successful
        attempts, at their recorded times), a mapping `{trace_id: Trace or
        series}`, or bare 1-D latency series in ms / mappings of signal arrays.
        Rows are named by the corpus's `(trace_id, run_id)`, unique and
        independent of the order of the inputs.
    criteria : str, Criterion or iterable of them
        Criterion specs (`"rolling_cv:window=10,threshold=0.02"`) or instances.
    stop_rule : StopRule, optional
        Minimum samples, check cadence, patience and cap. Default: the rule the
        driver uses for a `WarmupConfig(criterion=spec)` with default settings
        (`StopRule(min_samples=5)`).
    grid : mapping, optional
        Parameter grids, `{"rolling_cv": {"threshold": [...], "window": [...]}}`
        (cartesian product; see `expand_grid`).
    executor : concurrent.futures.Executor, optional
        Where chunks of runs are replayed. Default: in this process. A
        `ProcessPoolExecutor` or a dask `Client.get_executor()` spreads the
        work; the results are identical.
    chunk_size : int, optional
        Runs per task sent to the executor (default: enough for about four
        tasks per worker, at least one run).
    show_progress : bool, optional
        Draw a progress bar over runs; default: only for long work (at least
        2,000 run x setting pairs).
    early_exit : bool, default True
        Evaluate a criterion on growing prefixes of a run (64 samples or twice
        `min_samples`, then 4 times more each time) and stop at the first prefix
        that contains the stop, so the cost follows the stop index as the driver's does. The
        rows are identical to those of False (whole runs: a run on which the
        rule never stops is evaluated whole either way). A threshold sweep
        grows its prefix until every threshold has stopped.
    values_are_durations : bool, default False
        Bare series only: their values are the samples' durations in ms, so their
        times are the cumulative values / 1e3 s. Without it a bare series has
        no times: `stop_time_s` and `seconds_used` are NaN and criteria that
        need times (`needs_time`) raise `ReplayError`.

    Returns
    -------
    pandas.DataFrame
        One row per run and setting, with the columns of `RESULT_COLUMNS` plus
        `param_<name>` for every parameter. `stop_index` (0-based, among
        successful samples) and `stop_time_s` (seconds from the start of the run
        to the end of the stopping sample; NaN without times) are missing when
        the rule never stopped; `stopped` says whether it did and `converged`
        whether by convergence (not the `max_samples` cap). `truncation` is the
        criterion's truncation estimate at the stop (truncation methods only;
        meaningful only where the criterion passed). `samples_used` /
        `seconds_used` are what warmup consumed (the whole run when it never
        stopped); `post_stop_mean` is the mean latency after the stop.
        `reference_start` (samples), `reference_start_s` (warmup time before
        it) and `reference_mean` (mean from it on) come from the run's labelled
        steady-state start when it has one.

    Raises
    ------
    CriterionConfigError
        An unknown criterion or parameter, before any work.
    ReplayError
        A criterion watches a signal a trace does not have, a criterion needs
        sample times a run does not have, or two runs share an id.
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
    needed = tuple(dict.fromkeys(s for crit in crits for s in crit.signals))
    try:
        corpus = Corpus.build(traces, signals=needed, values_are_durations=values_are_durations)
    except CorpusError as exc:
        raise ReplayError(str(exc)) from exc
    runs = list(corpus)
    for run in runs:
        _check_run(run)
    _check_times(crits, corpus)
    units = plan_units(crits)
    verify_sweeps(units, runs)
    n_settings = len(crits)
    if show_progress is None:
        show_progress = len(runs) * n_settings >= 2000
    bar = progress_bar(len(runs), "Replay", "run", enabled=bool(show_progress))
    try:
        parts = map_chunks(_replay_chunk, runs, units, rule, early_exit, executor=executor,
                           chunk_size=chunk_size, local_chunk_size=16, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    return result_frame(parts, [s for unit in units for s in unit.settings])


