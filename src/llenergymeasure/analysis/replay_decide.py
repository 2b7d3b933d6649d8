"""Replay decisions: where one setting, or a sweep group, stops on one run.

A criterion is evaluated with its public vectorised `Criterion.evaluate` and
the shared `StopRule` decides. With the early exit a criterion is evaluated on
growing prefixes of the run (64 samples or twice `min_samples`, then 4 times
more each time) until one holds the stop: entry $t$ of an evaluation depends
only on $x_{0..t}$ (the criterion contract), so the decision on a prefix that
contains a stop is the decision on the whole run, and the cost follows the stop
index as the driver's does. Truncation methods (`yields_truncation`, not
composite) are fed sample by sample through `update` instead: they re-analyse
the whole prefix at each of their check points, which the online form does
once per check point.

A sweep group (settings that differ only in their `sweep_parameter`) is
decided with one evaluation and `StopRule.sweep`; `verify_sweeps` checks the
claim against full evaluations on the first run and falls back to one
evaluation per setting when it does not hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from llenergymeasure.analysis.corpus import RunRecord
from llenergymeasure.analysis.replay_grid import Unit
from llenergymeasure.criteria.base import Criterion, Evaluation
from llenergymeasure.criteria.registry import make_criterion
from llenergymeasure.criteria.stopping import StopDecision, StopRule

__all__ = ["Verdict", "decide", "evaluate_run", "feeds_online", "sweep", "verify_sweeps"]

logger = logging.getLogger(__name__)

#: First prefix evaluated by the early exit, and its growth factor.
PREFIX0, PREFIX_GROWTH = 64, 4


@dataclass(frozen=True)
class Verdict:
    """One setting's outcome on one run: the decision, and the statistic and truncation at it.

    `truncation` is -1 when the criterion yields none or did not stop.
    """

    decision: StopDecision | None
    statistic: float
    truncation: int


def evaluate_run(crit: Criterion, run: RunRecord, length: int | None = None) -> Evaluation:
    """Evaluate `crit` on a run's signals and times, or on their first `length` samples."""
    sl = slice(None) if length is None else slice(0, length)
    t = None if run.times is None else run.times[sl]
    sig = crit.signals
    if len(sig) == 1:
        return crit.evaluate(run.signals[sig[0]][sl], t)
    return crit.evaluate({s: run.signals[s][sl] for s in sig}, t)


def first_prefix(rule: StopRule) -> int:
    """Length of the first prefix the early exit evaluates."""
    length = max(PREFIX0, 2 * rule.min_samples)
    if rule.max_samples is not None:
        length = min(length, rule.max_samples)
    return length


def feeds_online(crit: Criterion) -> bool:
    """Whether the early exit feeds `crit` sample by sample instead of on prefixes.

    True for truncation methods (`yields_truncation`) that are not composites
    (`is_composite`).
    """
    return crit.yields_truncation and not crit.is_composite


def _verdict_of(ev: Evaluation, decision: StopDecision | None) -> Verdict:
    if decision is None:
        k = ev.statistic.shape[0] - 1  # the whole run was evaluated
        return Verdict(None, float(ev.statistic[k]), -1)
    k = decision.index
    trunc = -1 if ev.truncation is None else int(ev.truncation[k])
    return Verdict(decision, float(ev.statistic[k]), trunc)


def _decide_online(crit: Criterion, run: RunRecord, rule: StopRule) -> Verdict:
    """Feed the run to a fresh copy of `crit` through `update` until the rule stops."""
    twin = crit.clone()
    tracker = rule.tracker()
    x = run.signals[crit.signal].tolist()
    times = [None] * len(x) if run.times is None else run.times.tolist()
    decision = None
    for value, t in zip(x, times, strict=True):
        twin.update(value, t)
        decision = tracker.observe(twin.passed_)
        if decision is not None:
            break
    trunc = twin.truncation_
    return Verdict(decision, float(twin.statistic_), -1 if trunc is None else int(trunc))


def decide(crit: Criterion, run: RunRecord, rule: StopRule, early_exit: bool = True) -> Verdict:
    """One setting on one run: whole-run evaluation, or the early exit (see the module)."""
    n = run.n
    if not early_exit:
        ev = evaluate_run(crit, run)
        return _verdict_of(ev, rule.decide(ev))
    if feeds_online(crit):
        return _decide_online(crit, run, rule)
    length = first_prefix(rule)
    while length < n:
        ev = evaluate_run(crit, run, length)
        decision = rule.decide(ev)
        if decision is not None:
            return _verdict_of(ev, decision)
        length *= PREFIX_GROWTH
    ev = evaluate_run(crit, run)
    return _verdict_of(ev, rule.decide(ev))


def sweep(
    crit: Criterion, run: RunRecord, rule: StopRule, unit: Unit, early_exit: bool = True
) -> tuple[Evaluation, NDArray[np.int64], NDArray[np.bool_]]:
    """A sweep group on one run: stops of every value, on growing prefixes until all stopped.

    Returns the evaluation used, the stop index of each setting (-1: none) and
    whether each stop is a convergence.
    """
    if unit.sweep is None:
        raise ValueError("not a sweep group")
    op = unit.sweep[1]
    values = np.asarray(unit.values, dtype=np.float64)
    n = run.n
    length = first_prefix(rule) if early_exit else n
    while length < n:
        ev = evaluate_run(crit, run, length)
        stop, conv = rule.sweep(ev.statistic, values, op)
        if (stop >= 0).all():
            return ev, stop, conv
        length *= PREFIX_GROWTH
    ev = evaluate_run(crit, run)
    stop, conv = rule.sweep(ev.statistic, values, op)
    return ev, stop, conv


def _passes(stat: NDArray[np.float64], value: float, op: str) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return stat < value if op == "<" else stat >= value


def verify_sweeps(units: list[Unit], runs: list[RunRecord]) -> None:
    """Check each sweep claim against full evaluations on the first non-empty run.

    Up to five settings of each group (the first, the last and three spread
    between) are evaluated in full and must give the reference statistic,
    truncation and `statistic <op> value` verdicts exactly; otherwise the group
    is replayed setting by setting (logged at info level).
    """
    sample = next((r for r in runs if r.n > 0), None)
    if sample is None:
        return
    for unit in units:
        if unit.sweep is None:
            continue
        pname, op = unit.sweep
        picks = sorted({round(i) for i in np.linspace(0, len(unit.settings) - 1, 5)})
        crits = [make_criterion(unit.settings[i].spec) for i in picks]
        values = [unit.values[i] for i in picks]
        ref = evaluate_run(crits[0], sample)
        ok = True
        for crit, value in zip(crits, values, strict=True):
            ev = evaluate_run(crit, sample)
            same_stat = np.array_equal(ev.statistic, ref.statistic, equal_nan=True)
            same_trunc = (ev.truncation is None and ref.truncation is None) or (
                ev.truncation is not None
                and ref.truncation is not None
                and np.array_equal(ev.truncation, ref.truncation)
            )
            if not (same_stat and same_trunc
                    and np.array_equal(ev.passed, _passes(ref.statistic, value, op))):
                ok = False
                break
        if not ok:
            logger.info(
                "criterion %r does not decide by 'statistic %s %s' on trace %r; "
                "replaying its settings one by one",
                unit.settings[0].name, op, pname, sample.trace_id,
            )
            unit.sweep = None
