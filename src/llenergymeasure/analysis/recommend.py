r"""Calibrate a warmup setting on labelled traces, and recommend it only if it earns its place.

`recommend` answers one question for a user with recorded, labelled runs: *which
`WarmupConfig` should I use?* It replays a documented space of candidate settings
(`candidate_space`), picks the cheapest one that meets two quality limits, estimates how
well that *selection procedure* does on traces it has not seen (grouped cross-validation),
and compares it with the fixed warmup count of the same mean cost. It recommends an
adaptive rule only when it beats that fixed count; otherwise it recommends a fixed count
and says so.

Candidate space
---------------
`candidate_space` builds, for a corpus whose longest run has $L$ samples:

- **fixed counts** `fixed_count:n=N` for about 48 values of $N$ spaced geometrically
  from 1 to $L$ (configured as `convergence_detection=False, max_prompts=N`);
- **families**: every registered criterion that is not a composite, declares
  `detects_steady_state` (budgets such as fixed counts and time floors take part in
  their own roles below) and is not `cost_class="heavy"` (`include_heavy=True` adds
  those; they cost seconds per 3,000-sample run). Each family starts from its base
  settings: the specs of `llenergymeasure.analysis.demo.DEFAULT_CRITERIA` for that
  family (the project's published defaults, with their tuned check schedules) and the
  package default `WarmupConfig().make_criterion()` when it belongs to the family, or
  else the class defaults. When the family declares a `sweep_parameter`, each base value
  $v$ of that parameter is swept over $v \cdot s$ for the factors
  $s \in$ `DEFAULT_STEPS` ($2^{k/2}$, $k = -4 .. 4$: a quarter to four times the
  default), rounded for integers and kept when the criterion accepts it; sweeps are
  replayed at the cost of one evaluation (`StopRule.sweep`). Criteria listed in
  `llenergymeasure.analysis.demo.EXCLUDED_CRITERIA` (the `learned` rule, whose default
  model is trained on the Traini corpus) are left out unless named in `families`;
- **time floors**: `all_of(<base setting>, min_duration:seconds=S)` for the base
  settings of every family of `cost_class="light"` (`FLOOR_COST_CLASSES`; a floored
  setting is a composite, evaluated whole rather than swept, which on a moderate family
  costs minutes on 300 runs) and $S \in$ `DEFAULT_FLOORS_S` (only when every run has
  sample times);
- **caps**: every adaptive setting above with `max_prompts` in `DEFAULT_CAPS` (those
  below $L$) and $L$ itself (no effective cap on the recorded runs).

Adaptive candidates use `min_prompts=5`, `check_every=1`, `patience=1` (the
`WarmupConfig` defaults). On the Traini development corpus (30 JMH benchmarks x 10
forks x 3,000 iterations, 253 forks with a steady state) the default space has 526
settings and the whole of `recommend` took 22 s with two worker processes on a 2-core
machine (`examples/recommend_on_traini.py`).

Caps are applied after the replay, exactly as `StopRule.decide` applies
`max_samples` (a convergence before the cap stands, otherwise the stop is at the cap),
so one replay serves every cap. They count successful samples; the driver's
`max_prompts` counts attempts, failed ones included, so with failures it stops a little
earlier than the replay says.

Selection and its evaluation
----------------------------
Runs are those with a usable label (a reference steady-state start $r \ge 0$). For a
set of runs, a candidate's *cost* is its mean samples (or seconds) used until the stop
(the whole run when it never stops), its *premature rate* the share of runs on which it
stops before the reference start, and its *bias* the 90th percentile of
$|\bar x_{\text{after stop}} / \bar x_{\text{from } r} - 1|$ over the runs where it stops
(`llenergymeasure.analysis.scoring.score`).

The post-stop mean is by default that of every recorded sample after the stop. A
researcher warms up and then measures a fixed number of inferences, and on finite
recordings a late stop leaves only a few samples (a stop at 278 of 300 leaves 22), whose
mean is noise rather than bias; with `measure_samples` $m$ the bias is that of the
measurement phase, the mean of the $m$ samples after the stop
($\bar x_{k+1:k+1+m}$, `score(..., measure_samples=m)`). A run with fewer than $m$
samples after a stop cannot support that measurement: it has no bias for that
setting, is left out of its P90 and counted (`n_stopped`, `n_bias_measured`; "bias
measured on X of Y stopped runs"). A P90 over the measured runs alone would judge a
setting on the runs it stopped early enough: a setting that leaves no measurement on
many runs (never stopping within the recording, or stopping too close to its end) could
"meet" the limit on the few it did measure. So a setting meets the bias limit only when
its bias is measured on at least `MIN_MEASURED_SHARE` (90%) of the runs, which is
exactly when its P90 over *all* runs, counting an unmeasured run as an unbounded bias,
would be finite. Without `measure_samples` a stop needs one sample after it (a stop at the
last sample, such as a cap equal to the run length, has no bias). The same definition
applies to the fixed counts, as candidates and in the comparison below. The
**selection procedure** picks the
cheapest candidate whose premature rate is at most `max_premature` and whose P90
|bias| is at most `max_bias` (ties: lower premature rate, lower bias, then the fixed
count); when none qualifies it picks the one that misses the limits least (the
smallest $\max(p / p_{\max}, b / b_{\max})$).

The procedure is evaluated by $K$-fold cross-validation **grouped by trace**: every trace
(all its runs) falls in exactly one fold (`grouped_folds`, deterministic from the seed),
so runs of one trace are never split between training and test, since they share a
machine, a model and a warmup shape. In each fold the procedure picks on the other folds
and the pick is scored on the fold's runs; the pooled out-of-fold (OOF) stops give the
procedure's cost, premature rate and P90 |bias|, each with a percentile bootstrap 95% CI
that resamples whole traces (a cluster bootstrap). Evaluating the whole
selection out of fold avoids the optimism of scoring the best of many settings on the
data it was picked on.

The OOF stops are then compared with the **equal-cost fixed count** of
`llenergymeasure.analysis.scoring.summarize`: the count $n$ equal to their rounded mean
samples used, on the same runs. The premature-rate lift (OOF minus fixed count, per run;
negative is better) gets a cluster bootstrap CI over traces; the P90 |bias| lift is over
the runs where both biases are measured.

The final setting is the procedure applied to all runs. The recommendation is:

- that setting, when it is adaptive and the CI of the OOF lift lies below 0 (status
  `"adaptive"`);
- a fixed count otherwise (status `"fixed"`): when the pick is itself a fixed count, or
  when the adaptive pick does not beat the fixed count of the same cost. The fixed count
  recommended is the procedure's pick among the fixed counts alone (the cheapest one
  meeting the limits, else the one closest to them);
- when no candidate meets the limits on all runs, the same rules apply to the one that
  misses them least (`meets_limits` and `procedure_meets_limits` are False and the text
  names the limits missed).

`meets_limits` is about the recommended setting itself, `procedure_meets_limits` about
the procedure's pick: they differ when an adaptive setting meets the limits, does not
beat the fixed count, and no fixed count meets them; the fixed count closest to the
limits is then recommended, and the first line of `describe` says that no *fixed count*
meets them (not that no setting does).

References
----------
- L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective assessment
  of steady state performance in Java software: are we there yet?", Empirical Software
  Engineering 28(1):13, 2023 (labelled steady-state starts, premature stops).
- D. R. Roberts et al., "Cross-validation strategies for data with temporal, spatial,
  hierarchical, or phylogenetic structure", Ecography 40(8):913-929, 2017 (grouped,
  blocked cross-validation).
- S. Varma and R. Simon, "Bias in error estimation when using cross-validation for
  model selection", BMC Bioinformatics 7:91, 2006 (evaluate the selection, not the
  selected model, out of sample).
- T. Hastie, R. Tibshirani and J. Friedman, *The Elements of Statistical Learning*,
  2nd ed., Springer, 2009, section 7.10 (K-fold cross-validation).
- A. C. Davison and D. V. Hinkley, *Bootstrap Methods and their Application*,
  Cambridge University Press, 1997, section 3.8 (resampling clusters of hierarchical
  data); B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
  Hall, 1993, ch. 13 (percentile intervals).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.analysis import scoring
from llenergymeasure.analysis.corpus import Corpus, CorpusError
from llenergymeasure.analysis.replay import replay
from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.criteria.base import CriterionConfigError
from llenergymeasure.criteria.registry import (
    available_criteria,
    criterion_class,
    make_criterion,
    parse_spec,
)
from llenergymeasure.criteria.stopping import StopRule

__all__ = [
    "DEFAULT_CAPS",
    "DEFAULT_FLOORS_S",
    "DEFAULT_STEPS",
    "FLOOR_COST_CLASSES",
    "MIN_MEASURED_SHARE",
    "Candidate",
    "Figures",
    "FixedComparison",
    "RecommendError",
    "Recommendation",
    "candidate_space",
    "grouped_folds",
    "read_candidates",
    "recommend",
]

logger = logging.getLogger(__name__)

#: Factors applied to a family's base value of its `sweep_parameter`: $2^{k/2}$, k = -4..4.
DEFAULT_STEPS: tuple[float, ...] = tuple(2.0 ** (k / 2) for k in range(-4, 5))
#: Time floors (seconds) combined with every family's base settings through `all_of`.
DEFAULT_FLOORS_S: tuple[float, ...] = (5.0, 30.0, 60.0)
#: Caps (`max_prompts`) applied to every adaptive setting, besides the longest run.
DEFAULT_CAPS: tuple[int, ...] = (100, 300, 1000)
#: Cost classes of the families whose base settings get time floors by default.
FLOOR_COST_CLASSES: tuple[str, ...] = ("light",)
#: `min_prompts` of the adaptive candidates (the `WarmupConfig` default).
DEFAULT_MIN_PROMPTS = 5
#: Number of fixed counts in the default space (geometric from 1 to the longest run).
N_FIXED_COUNTS = 48

Status = Literal["adaptive", "fixed"]


class RecommendError(ValueError):
    """Bad input to `recommend`: no labelled run, a bad limit, more folds than traces."""


# ------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class Candidate:
    """One warmup setting of the candidate space.

    Attributes
    ----------
    label : str
        Unique name: `"fixed_count:n=N"` for a fixed count, else
        `"<criterion spec> | max_prompts=<cap>"`.
    config : WarmupConfig
        The setting as the driver runs it.
    role : {"fixed", "family", "floor", "given"}
        A fixed count, a family setting, a family setting with a time floor, or a
        setting the user gave.
    family : str or None
        The criterion family (None for fixed counts and composites given by the user).
    floor_s : float or None
        The time floor of a `"floor"` candidate.
    """

    label: str
    config: WarmupConfig
    role: str
    family: str | None = None
    floor_s: float | None = None

    @property
    def is_fixed(self) -> bool:
        """Whether the setting is a fixed count (convergence detection off)."""
        return not self.config.convergence_detection

    @property
    def cap(self) -> int:
        """`max_prompts` of the setting."""
        return int(self.config.max_prompts)

    @classmethod
    def of(cls, config: WarmupConfig, *, role: str = "given", family: str | None = None,
           floor_s: float | None = None) -> Candidate:
        """The candidate of a configuration, labelled by its spec and cap."""
        if not config.enabled:
            raise RecommendError("a candidate with enabled=False does no warmup at all; "
                                 "use a fixed count instead")
        if not config.convergence_detection:
            return cls(f"fixed_count:n={config.max_prompts}", config, "fixed")
        spec = config.make_criterion().spec
        rule = config.make_stop_rule()
        extra = []
        if config.min_prompts != DEFAULT_MIN_PROMPTS:
            extra.append(f"min_prompts={config.min_prompts}")
        if rule.check_every != 1:
            extra.append(f"check_every={rule.check_every}")
        if rule.patience != 1:
            extra.append(f"patience={rule.patience}")
        extra.append(f"max_prompts={config.max_prompts}")
        return cls(f"{spec} | {', '.join(extra)}", config, role, family, floor_s)


def _fixed(n: int) -> Candidate:
    return Candidate.of(WarmupConfig(convergence_detection=False, max_prompts=int(n),
                                     min_prompts=1))


def _adaptive(spec: str, cap: int, role: str, family: str | None,
              floor_s: float | None = None, min_prompts: int = DEFAULT_MIN_PROMPTS
              ) -> Candidate | None:
    if cap < min_prompts:
        return None
    cfg = WarmupConfig(criterion=spec, min_prompts=min_prompts, max_prompts=int(cap))
    return Candidate.of(cfg, role=role, family=family, floor_s=floor_s)


def _names_in(spec: str) -> list[str]:
    name, _, children = parse_spec(spec)
    out, stack = [name], list(children)
    while stack:
        child = stack.pop()
        out.append(child[0])
        stack.extend(child[2])
    return out


def _base_specs(name: str) -> list[str]:
    """A family's base settings: its published default specs, or its class defaults."""
    from llenergymeasure.analysis.demo import DEFAULT_CRITERIA

    bases = [make_criterion(s).spec for s in DEFAULT_CRITERIA
             if not criterion_class(_names_in(s)[0]).is_composite and _names_in(s)[0] == name]
    default = WarmupConfig().make_criterion()
    if default.name == name:
        bases.insert(0, default.spec)
    if not bases:
        bases = [make_criterion(name).spec]
    return list(dict.fromkeys(bases))


def _swept(spec: str, steps: Sequence[float]) -> list[str]:
    """`spec` with its sweep parameter multiplied by every step (valid values only)."""
    crit = make_criterion(spec)
    declared = type(crit).sweep_parameter
    if declared is None or crit.is_composite:
        return [crit.spec]
    param = declared[0]
    base = crit.get_params().get(param)
    if not isinstance(base, (int, float)) or isinstance(base, bool) or base == 0:
        return [crit.spec]
    out: list[str] = []
    for s in steps:
        value: float | int = base * s
        if isinstance(base, int):
            value = max(1, round(value))
        else:
            value = float(f"{value:.4g}")
        try:
            out.append(make_criterion(crit.spec, **{param: value}).spec)
        except CriterionConfigError:
            continue
    return list(dict.fromkeys(out)) or [crit.spec]


def candidate_space(
    max_samples: int,
    *,
    families: Sequence[str] | None = None,
    include_heavy: bool = False,
    steps: Sequence[float] = DEFAULT_STEPS,
    fixed_counts: Sequence[int] | None = None,
    floors_s: Sequence[float] = DEFAULT_FLOORS_S,
    caps: Sequence[int] = DEFAULT_CAPS,
    times: bool = True,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
    floor_classes: Sequence[str] = FLOOR_COST_CLASSES,
) -> list[Candidate]:
    """The documented space of warmup settings `recommend` chooses from.

    See the module docstring for the construction; every candidate is a `WarmupConfig`
    that `warmup_until_converged` runs unchanged.

    Parameters
    ----------
    max_samples : int
        Samples of the longest run: the largest fixed count and the "no cap" cap.
    families : sequence of str, optional
        Criterion families to include (default: every eligible registered one).
        Named families are taken even when heavy or excluded by default; composites
        and unknown names raise.
    include_heavy : bool, default False
        Also take the families of `cost_class="heavy"` (seconds per 3,000-sample run).
    steps : sequence of float, default `DEFAULT_STEPS`
        Factors applied to the base value of each family's sweep parameter.
    fixed_counts : sequence of int, optional
        The fixed counts (default: `N_FIXED_COUNTS` values geometric from 1 to
        `max_samples`).
    floors_s : sequence of float, default `DEFAULT_FLOORS_S`
        Time floors in seconds, combined with each base setting (`()` for none).
    caps : sequence of int, default `DEFAULT_CAPS`
        Caps (`max_prompts`) below `max_samples`; `max_samples` is always added.
    times : bool, default True
        Whether the runs have sample times; without them criteria that need times
        (`needs_time`) and the floors are left out.
    min_prompts : int, default 5
        `min_prompts` of the adaptive candidates.
    floor_classes : sequence of str, default `FLOOR_COST_CLASSES` (`("light",)`)
        Cost classes of the families that get time floors: a floored setting is a
        composite, evaluated whole rather than swept, and on a moderate family it costs
        about 0.2 s per 3,000-sample run (`("light", "moderate")` adds them).

    Returns
    -------
    list of Candidate
        Fixed counts first, then the adaptive settings; labels are unique.

    Raises
    ------
    RecommendError
        `max_samples` < 1, a composite or unknown family, a bad floor or cap.

    Examples
    --------
    >>> space = candidate_space(3000, families=["rolling_cv"], floors_s=())
    >>> space[0].label, sum(c.is_fixed for c in space) > 10
    ('fixed_count:n=1', True)
    """
    if max_samples < 1:
        raise RecommendError(f"max_samples must be >= 1, got {max_samples}")
    if any(not (s > 0 and math.isfinite(s)) for s in floors_s):
        raise RecommendError(f"time floors must be finite and > 0 seconds, got {list(floors_s)}")
    if any(int(c) < 1 for c in caps):
        raise RecommendError(f"caps must be >= 1, got {list(caps)}")
    if fixed_counts is None:
        counts = np.unique(np.round(np.geomspace(1, max_samples, N_FIXED_COUNTS)))
        fixed_counts = [int(c) for c in counts]
    out: list[Candidate] = [_fixed(n) for n in sorted({int(n) for n in fixed_counts})
                            if 1 <= n <= max_samples]
    cap_values = sorted({int(c) for c in caps if int(c) < max_samples} | {int(max_samples)})
    for name in _families(families, include_heavy, times):
        for base in _base_specs(name):
            for spec in _swept(base, steps):
                out.extend(c for cap in cap_values
                           if (c := _adaptive(spec, cap, "family", name, None, min_prompts)))
            if not times or criterion_class(name).cost_class not in floor_classes:
                continue
            for s in floors_s:
                spec = f"all_of({base},min_duration:seconds={float(s)!r})"
                out.extend(c for cap in cap_values
                           if (c := _adaptive(spec, cap, "floor", name, float(s), min_prompts)))
    return list({c.label: c for c in out}.values())


def _families(families: Sequence[str] | None, include_heavy: bool, times: bool) -> list[str]:
    from llenergymeasure.analysis.demo import EXCLUDED_CRITERIA

    if families is not None:
        for name in families:
            cls = criterion_class(name)  # unknown names raise, listing the valid ones
            if cls.is_composite:
                raise RecommendError(f"family {name!r} is a composite; give its settings as "
                                     "candidates instead (--criterion 'all_of(...)')")
        names = list(dict.fromkeys(families))
    else:
        names = []
        for name in available_criteria():
            cls = criterion_class(name)
            if cls.is_composite or not cls.detects_steady_state or name in EXCLUDED_CRITERIA:
                continue
            if cls.cost_class == "heavy" and not include_heavy:
                continue
            names.append(name)
    return [n for n in names if times or not criterion_class(n).needs_time]


def read_candidates(path: str | os.PathLike[str]) -> list[Candidate]:
    """Candidates from a YAML or JSON file: a list of spec strings or `WarmupConfig` mappings.

    A spec string is an adaptive setting with the defaults of `WarmupConfig` (its
    `max_prompts` is raised to the longest run by `recommend`); a mapping holds
    `WarmupConfig` fields (`criterion`, `max_prompts`, `min_prompts`, ...), and
    `{convergence_detection: false, max_prompts: N}` is a fixed count.

    Raises
    ------
    RecommendError
        A file that does not parse, is not a list, or an entry that is not a valid
        setting (the entry's position and the reason).
    FileNotFoundError
        No such file.
    """
    import json

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no candidates file {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise RecommendError(f"{p}: cannot parse the candidates file: "
                             f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, list) or not data:
        raise RecommendError(f"{p}: expected a non-empty list of spec strings or WarmupConfig "
                             f"mappings, got {type(data).__name__}")
    out: list[Candidate] = []
    for i, entry in enumerate(data):
        try:
            if isinstance(entry, str):
                out.append(_given(entry))
            elif isinstance(entry, dict):
                out.append(Candidate.of(WarmupConfig(**entry)))
            else:
                raise ValueError(f"a spec string or a mapping, got {type(entry).__name__}")
        except ValueError as exc:
            raise RecommendError(f"{p}: candidate {i + 1}: {' '.join(str(exc).split())}") \
                from None
    return out


def _given(spec: str) -> Candidate:
    """A candidate from a spec string (its cap set later to the longest run)."""
    return Candidate.of(WarmupConfig(criterion=make_criterion(spec).spec, max_prompts=10**9))


# ------------------------------------------------------------------------ folds
def grouped_folds(trace_ids: Iterable[Any], folds: int, seed: int = 0) -> dict[str, int]:
    """Assign every trace to one of `folds` folds, deterministically from `seed`.

    The distinct trace ids are sorted, shuffled by `numpy.random.default_rng(seed)`
    and dealt round robin, so folds differ in size by at most one trace and the
    assignment does not depend on the order of the input.

    Parameters
    ----------
    trace_ids : iterable
        Trace ids (repeats allowed: one per run).
    folds : int
        Number of folds, 2 to the number of distinct traces.
    seed : int, default 0
        Seed of the shuffle.

    Returns
    -------
    dict of str to int
        Fold (0-based) of each trace id.

    Raises
    ------
    RecommendError
        Fewer than 2 folds, or more folds than traces.

    Examples
    --------
    >>> sorted(grouped_folds(["a", "b", "c", "a"], 3).values())
    [0, 1, 2]
    """
    ids = sorted({str(t) for t in trace_ids})
    if folds < 2:
        raise RecommendError(f"folds must be at least 2, got {folds}")
    if folds > len(ids):
        raise RecommendError(f"{folds} folds need at least {folds} labelled traces, and there "
                             f"are {len(ids)}: lower --folds (runs of one trace are never "
                             "split between folds)")
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[int(g)]: j % folds for j, g in enumerate(order)}


# ----------------------------------------------------------------- the outcome
@dataclass(frozen=True)
class Figures:
    """Cost and quality of a set of stops, with bootstrap CIs over traces.

    Attributes
    ----------
    n_runs, n_traces : int
        Runs and traces the figures are over.
    cost, cost_ci : float, (float, float)
        Mean samples (or seconds) used until the stop.
    premature_rate, premature_ci : float, (float, float)
        Share of runs stopped before their reference start.
    p90_abs_bias, p90_abs_bias_ci : float, (float, float)
        90th percentile of |relative bias| over the runs where the setting stopped.
    never_stopped_rate : float
        Share of runs on which it never stopped.
    n_stopped : int
        Runs on which it stopped.
    n_bias_measured : int
        Stopped runs whose bias was measured: all but those that leave fewer than
        `measure_samples` samples after the stop (fewer than one without it).
    """

    n_runs: int
    n_traces: int
    cost: float
    cost_ci: tuple[float, float]
    premature_rate: float
    premature_ci: tuple[float, float]
    p90_abs_bias: float
    p90_abs_bias_ci: tuple[float, float]
    never_stopped_rate: float
    n_stopped: int = 0
    n_bias_measured: int = 0


@dataclass(frozen=True)
class FixedComparison:
    """The out-of-fold stops against the fixed count of the same mean cost.

    Attributes
    ----------
    fixed_n_same_cost : int
        The fixed count (rounded mean samples used of the OOF stops).
    premature_rate, premature_rate_fixed : float
        OOF and fixed-count premature rates on the same runs.
    premature_lift : float
        Their difference (negative: the selection is better).
    premature_lift_ci : (float, float)
        Percentile bootstrap 95% CI over traces.
    bias_p90_lift : float
        P90 |relative bias|, OOF minus fixed count, over the runs where both biases are
        measured (as `scoring.summarize`'s `bias_p90_lift`, with the same bias definition
        on both sides: the `measure_samples` samples after the stop when given).
    versus_fixed : str
        "better" (CI below 0), "worse" (above 0), "not distinguishable".
    n_bias_compared : int
        Runs the bias lift is over.
    """

    fixed_n_same_cost: int
    premature_rate: float
    premature_rate_fixed: float
    premature_lift: float
    premature_lift_ci: tuple[float, float]
    bias_p90_lift: float
    versus_fixed: str
    n_bias_compared: int = 0


@dataclass
class Recommendation:
    """What `recommend` found: the setting, its out-of-fold figures and the fixed count beside.

    Attributes
    ----------
    config : WarmupConfig
        The recommended setting, ready for `warmup_until_converged`.
    setting : str
        Its label (criterion spec and cap, or `fixed_count:n=N`).
    status : {"adaptive", "fixed"}
        An adaptive rule that beats the fixed count of the same cost, or a fixed count.
    meets_limits : bool
        Whether the recommended setting itself meets both limits on all runs. False
        either when nothing in the space meets them (`procedure_meets_limits` False;
        the setting is the one closest to them, or the fixed count closest to them
        when the closest, adaptive, setting does not beat a fixed count) or when an
        adaptive setting meets them but does not beat a fixed count and no fixed count
        meets them (the setting is then the fixed count closest to them).
    reason : str
        Why, in a few plain sentences.
    procedure_pick : str
        What the selection procedure picked on all runs (the setting itself, unless
        an adaptive pick was replaced by a fixed count).
    procedure_meets_limits : bool
        Whether that pick meets both limits, i.e. whether any candidate does.
    max_premature, max_bias : float
        The limits.
    measure_samples : int or None
        Length of the measurement phase the bias is measured on (None: every sample
        after the stop).
    cost_unit : {"samples", "seconds"}
        What the cost is.
    selected : dict
        Figures of the recommended setting on all runs (`cost`, `premature_rate`,
        `p90_abs_bias`, `never_stopped_rate`, `n_stopped`, `n_bias_measured`: the
        stopped runs whose bias was measured, `misses`: the limits it misses).
    oof : Figures
        Pooled out-of-fold figures of the selection procedure.
    fixed : FixedComparison
        The OOF stops against the fixed count of the same cost.
    fold_picks : list of str
        The setting picked in each fold.
    folds, seed : int
        Cross-validation settings.
    candidates : DataFrame
        One row per candidate on all runs: `label`, `role`, `family`, `criterion`,
        `max_prompts`, `floor_s`, `mean_samples`, `mean_seconds`, `premature_rate`,
        `p90_abs_bias`, `never_stopped_rate`, `n_stopped`, `n_bias_measured` (stopped
        runs with enough samples after the stop to measure the bias), `exact_rate`,
        `meets_limits`, and the
        equal-cost columns of `scoring.summarize` (`fixed_n_same_cost`,
        `premature_rate_fixed`, `premature_lift`, `wee_lift`, `bias_p90_lift`; no CIs).
    n_runs, n_traces : int
        Labelled runs and their traces used.
    n_excluded : dict of str to int
        Runs left out: `"no_label"` (unknown start), `"no_steady_state"` (start -1),
        `"no_samples"` (labelled but empty).
    runtime_s : float
        Wall time of `recommend`.
    """

    config: WarmupConfig
    setting: str
    status: Status
    meets_limits: bool
    reason: str
    procedure_pick: str
    procedure_meets_limits: bool
    max_premature: float
    max_bias: float
    cost_unit: str
    selected: dict[str, Any]
    oof: Figures
    fixed: FixedComparison
    fold_picks: list[str]
    folds: int
    seed: int
    candidates: pd.DataFrame = field(repr=False)
    n_runs: int = 0
    n_traces: int = 0
    n_excluded: dict[str, int] = field(default_factory=dict)
    runtime_s: float = math.nan
    measure_samples: int | None = None

    def headline(self) -> str:
        """The first line of `describe`: what to use, and whether it meets the limits.

        Exact in every case: a setting that meets both limits gets no remark; otherwise
        the remark says whether no setting at all meets them, or only no fixed count
        (an adaptive setting meets them but does not beat a fixed count of the same cost).
        """
        head = {"adaptive": "Use the adaptive rule", "fixed": "Use a fixed warmup count"}[
            self.status]
        replaced = self.setting != self.procedure_pick
        if self.meets_limits:
            note = ""
        elif not self.procedure_meets_limits:
            note = (" (no setting meets the limits; this is the fixed count closest to them)"
                    if replaced else " (no setting meets the limits; this one is the closest)")
        else:
            note = (" (no fixed count meets the limits; this one is the closest. An adaptive "
                    "setting meets them but does not beat a fixed count of the same cost)")
        return f"{head}{note}: {self.setting}"

    def _bias_of(self) -> str:
        """What "bias" is measured on, for the text."""
        if self.measure_samples is None:
            return "P90 |relative bias|"
        return f"P90 |relative bias| of the {self.measure_samples} samples after the stop"

    def _measured(self, n_measured: int, n_stopped: int) -> str:
        """", bias measured on X of Y stopped runs", when some could not be measured."""
        if self.measure_samples is None and n_measured == n_stopped:
            return ""
        left = n_stopped - n_measured
        short = ("no sample" if self.measure_samples is None else
                 f"fewer than {self.measure_samples} samples")
        return (f" (bias measured on {n_measured} of {n_stopped} stopped runs"
                + (f"; {left} {'leaves' if left == 1 else 'leave'} {short} after the stop"
                   if left else "") + ")")

    def describe(self, width: int | None = None) -> str:
        """The recommendation in plain words: what to use, why, and the figures behind it.

        Parameters
        ----------
        width : int, optional
            Wrap each paragraph at this many characters, its continuation lines
            indented by two spaces (the CLI uses 79); None keeps one line per paragraph.
        """
        if width is not None:
            import textwrap

            out: list[str] = []
            for line in self.describe().rstrip("\n").splitlines():
                out += textwrap.wrap(line, width, subsequent_indent="  ",
                                     break_on_hyphens=False) or [""]
            return "\n".join(out) + "\n"
        u = "samples" if self.cost_unit == "samples" else "s"
        pct = _pct
        o, f, s = self.oof, self.fixed, self.selected
        lines = [self.headline(), "", self.reason, ""]
        excl = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.n_excluded.items() if v)
        lines.append(
            f"Calibrated on {self.n_runs} labelled runs of {self.n_traces} traces"
            + (f" ({excl} left out)" if excl else "")
            + f"; limits: premature rate <= {pct(self.max_premature)}, {self._bias_of()} "
            f"<= {pct(self.max_bias)}; {len(self.candidates)} candidate settings."
        )
        lines.append(
            f"On all runs the recommended setting costs {s['cost']:.4g} {u} on average, stops "
            f"prematurely on {pct(s['premature_rate'])} of runs, P90 |bias| "
            f"{pct(s['p90_abs_bias'])}"
            + self._measured(s.get("n_bias_measured", 0), s.get("n_stopped", 0))
            + (f"; it misses: {', '.join(s['misses'])}." if s["misses"] else
               "; it meets both limits.")
        )
        lines.append(
            f"Out of fold ({self.folds} folds grouped by trace, seed {self.seed}; 95% CIs "
            f"resample traces), the selection procedure costs {o.cost:.4g} {u} "
            f"[{o.cost_ci[0]:.4g}, {o.cost_ci[1]:.4g}], stops prematurely on "
            f"{pct(o.premature_rate)} [{pct(o.premature_ci[0])}, {pct(o.premature_ci[1])}], "
            f"P90 |bias| {pct(o.p90_abs_bias)} [{pct(o.p90_abs_bias_ci[0])}, "
            f"{pct(o.p90_abs_bias_ci[1])}]" + self._measured(o.n_bias_measured, o.n_stopped)
            + "."
        )
        lines.append(
            f"The fixed count of the same mean cost, fixed_count:n={f.fixed_n_same_cost}, "
            f"stops prematurely on {pct(f.premature_rate_fixed)} of the same runs: premature "
            f"lift {100 * f.premature_lift:+.1f} points (95% CI "
            f"{100 * f.premature_lift_ci[0]:+.1f} to {100 * f.premature_lift_ci[1]:+.1f}), "
            f"P90 |bias| lift {100 * f.bias_p90_lift:+.2f} points: {f.versus_fixed}."
        )
        lines.append(f"Picked per fold: {'; '.join(self.fold_picks)}.")
        return "\n".join(lines) + "\n"

    def provenance(self) -> str:
        """The comment block written above the configuration by `to_file`."""
        head = "Written by llenergymeasure.analysis.recommend (llem-warmup recommend).\n\n"
        return head + self.describe(width=86).rstrip("\n")

    def to_file(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the recommended `WarmupConfig` to a YAML or JSON file.

        A YAML file carries the provenance (`provenance`, the `describe` text) as `#`
        comments above the fields; a JSON file, which has no comments, gets it in a
        sidecar `<name>.provenance.txt`. The file holds only `WarmupConfig` fields, so
        `WarmupConfig.from_file` reads it back equal to `config`.

        Returns
        -------
        pathlib.Path
            The configuration file written.
        """
        p = Path(path)
        if p.suffix.lower() == ".json":
            out = self.config.to_file(p, overwrite=overwrite)
            p.with_name(p.name + ".provenance.txt").write_text(self.provenance() + "\n",
                                                                encoding="utf-8")
            return out
        return self.config.to_file(p, comment=self.provenance(), overwrite=overwrite)


_VERSUS = {"worse": "worse than", "not distinguishable": "not distinguishable from",
           "unknown": "not compared (no bootstrap CI) with", "better": "better than"}


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


# --------------------------------------------------------------------- the work
@dataclass
class _Table:
    """Per candidate x run matrices over the labelled runs."""

    cost: NDArray[np.float64]
    samples: NDArray[np.float64]
    seconds: NDArray[np.float64]
    premature: NDArray[np.bool_]
    abs_bias: NDArray[np.float64]
    never: NDArray[np.bool_]
    exact: NDArray[np.bool_]
    scored: pd.DataFrame
    measured: NDArray[np.bool_]


def _labelled(corpus: Any, reference: Any) -> tuple[Corpus, dict[str, int]]:
    try:
        c = Corpus.build(corpus)
        if reference is not None:
            c = c.with_reference(reference)
    except CorpusError as exc:
        raise RecommendError(str(exc)) from exc
    unknown = sum(r.reference_start is None for r in c)
    never = sum(r.reference_start is not None and r.reference_start < 0 for r in c)
    empty = sum(r.n == 0 and r.reference_start is not None and r.reference_start >= 0
                for r in c)
    kept = Corpus(r for r in c if r.reference_start is not None and r.reference_start >= 0
                  and r.n > 0)
    excluded = {"no_label": unknown, "no_steady_state": never, "no_samples": empty}
    if unknown or never:
        logger.info("recommend: %d runs without a label and %d labelled as never steady are "
                    "left out; %d runs used", unknown, never, len(kept))
    if not len(kept):
        raise RecommendError(
            f"none of the {len(c)} runs has a usable steady-state label (reference start >= 0; "
            f"{unknown} unknown, {never} never steady): label the traces first with "
            "`llem-warmup label`, or pass --reference labels.csv (trace_id,run_id,"
            "reference_start)"
        )
    return kept, excluded


def _stops(corpus: Corpus, cands: list[Candidate], executor: cf.Executor | None,
           show_progress: bool | None) -> NDArray[np.float64]:
    """Stop index of every candidate on every run (NaN: never), by replay plus caps."""
    n = np.asarray([r.n for r in corpus], dtype=np.float64)
    out = np.full((len(cands), len(corpus)), np.nan)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, c in enumerate(cands):
        if c.is_fixed:
            out[i] = np.where(n >= c.cap, c.cap - 1, np.nan)
            continue
        rule = c.config.make_stop_rule()
        groups.setdefault((rule.min_samples, rule.check_every, rule.patience), []).append(i)
    keys = corpus.keys()
    pos = {k: j for j, k in enumerate(keys)}
    for (m, every, patience), idx in groups.items():
        specs = list(dict.fromkeys(cands[i].config.make_criterion().spec for i in idx))
        rule = StopRule(min_samples=m, check_every=every, patience=patience)
        frame = replay(corpus, specs, stop_rule=rule, executor=executor,
                       show_progress=show_progress)
        cols = {s: np.full(len(corpus), np.nan) for s in specs}
        rows = np.asarray([pos[(str(t), str(r))] for t, r in
                           zip(frame["trace_id"], frame["run_id"], strict=True)])
        k = scoring.numbers(frame["stop_index"])
        spec_col = frame["spec"].to_numpy()
        for s in specs:
            sel = spec_col == s
            cols[s][rows[sel]] = k[sel]
        for i in idx:
            base = cols[cands[i].config.make_criterion().spec]
            cap = cands[i].cap
            conv = np.isfinite(base) & (base < cap)
            out[i] = np.where(conv, base, np.where(n >= cap, cap - 1, np.nan))
    return out


#: A setting meets the bias limit only when its bias is measured on at least this share
#: of the runs (see the module docs: the P90 over all runs is then defined).
MIN_MEASURED_SHARE = 0.9


def _measured_enough(measured: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Per row of a candidate x run matrix: is the bias measured on enough runs?"""
    if measured.shape[1] == 0:
        return np.zeros(measured.shape[0], dtype=bool)
    return measured.mean(axis=1) >= MIN_MEASURED_SHARE - 1e-12


def _measured(stops: NDArray[np.float64], n: NDArray[np.float64],
              measure_samples: int | None) -> NDArray[np.bool_]:
    r"""Where a stop leaves enough samples to measure its bias.

    With `measure_samples` $m$, a stop at index $k$ of a run of $n$ samples needs
    $n - (k + 1) \geq m$ samples after it (taken as $m$ = 1 without it).
    """
    need = 1 if measure_samples is None else int(measure_samples)
    with np.errstate(invalid="ignore"):
        return np.isfinite(stops) & (n[None, :] - (stops + 1) >= need)


def _bias(corpus: Corpus, stops: NDArray[np.float64], measure_samples: int | None,
          band: Any = None) -> tuple[pd.DataFrame, NDArray[np.float64], NDArray[np.bool_]]:
    """`scoring.score` of a candidate x run matrix of stops, with the bias of `recommend`.

    Returns the scored frame (rows candidate-major), the relative bias matrix (NaN where
    the stop leaves fewer than `measure_samples` samples: such a run cannot support the
    measurement) and the matrix of runs where it was measured.
    """
    keys = corpus.keys()
    n_c, n_r = stops.shape
    n = np.asarray([r.n for r in corpus], dtype=np.float64)
    frame = pd.DataFrame({
        "trace_id": [t for t, _ in keys] * n_c,
        "run_id": [r for _, r in keys] * n_c,
        "stop_index": pd.array(np.where(np.isfinite(stops), stops, np.nan).ravel(),
                               dtype="Float64").astype("Int64"),
    })
    try:
        scored = scoring.score(frame, corpus, band=band, n_resamples=0,
                               measure_samples=measure_samples)
    except scoring.ScoringError as exc:
        raise RecommendError(str(exc)) from exc
    measured = _measured(stops, n, measure_samples)
    bias = scored["relative_bias"].to_numpy(dtype=np.float64).reshape(n_c, n_r)
    bias = np.where(measured, bias, np.nan)
    scored["relative_bias"] = bias.ravel()
    return scored, bias, measured & np.isfinite(bias)


def _fixed_bias(corpus: Corpus, counts: Sequence[int],
                measure_samples: int | None) -> NDArray[np.float64]:
    """Relative bias of fixed counts (rows) on every run, as `_bias` defines it."""
    n = np.asarray([r.n for r in corpus], dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)[:, None]
    stops = np.where(c <= n[None, :], c - 1, np.nan)
    return _bias(corpus, stops, measure_samples)[1]


def _p90_lift(bias: NDArray[np.float64], fixed_bias: NDArray[np.float64]) -> tuple[float, int]:
    """P90 |bias| of a setting minus that of a fixed count, over the runs where both are
    measured (as `scoring.summarize`'s `bias_p90_lift`), and how many runs that is."""
    both = np.isfinite(bias) & np.isfinite(fixed_bias)
    if not both.any():
        return math.nan, 0
    return scoring.p90_abs(bias[both]) - scoring.p90_abs(fixed_bias[both]), int(both.sum())


def _table(corpus: Corpus, cands: list[Candidate], stops: NDArray[np.float64], band: Any,
           cost_unit: str, measure_samples: int | None) -> _Table:
    n_c, n_r = stops.shape
    n = np.asarray([r.n for r in corpus], dtype=np.float64)
    t_last = np.asarray([r.times[-1] if r.times is not None and r.n else np.nan
                         for r in corpus])
    scored, bias, measured = _bias(corpus, stops, measure_samples, band)
    labels = np.repeat([c.label for c in cands], n_r)
    scored.insert(2, "criterion", labels)
    scored.insert(3, "spec", labels)
    k = stops
    stopped = np.isfinite(k)
    samples = np.where(stopped, k + 1, n[None, :])
    times = [r.times if r.times is not None else np.full(r.n, np.nan) for r in corpus]
    seconds = np.empty_like(samples)
    for j, t in enumerate(times):
        kj = np.where(stopped[:, j], k[:, j], 0).astype(np.int64)
        seconds[:, j] = np.where(stopped[:, j], t[kj] if t.size else np.nan, t_last[j])
    scored["samples_used"] = samples.ravel()
    scored["seconds_used"] = seconds.ravel()
    cost = samples if cost_unit == "samples" else seconds
    return _Table(
        cost=cost, samples=samples, seconds=seconds,
        premature=scored["premature"].to_numpy(dtype=bool).reshape(n_c, n_r),
        abs_bias=np.abs(bias), never=~stopped,
        exact=(scored["waste_band"] == "exact").to_numpy(dtype=bool).reshape(n_c, n_r),
        scored=scored, measured=measured,
    )


def _p90_rows(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """P90 of every row over its finite values (NaN for a row with none)."""
    out = np.full(a.shape[0], np.nan)
    ok = np.isfinite(a)
    full = ok.all(axis=1)
    if full.any():
        out[full] = np.quantile(a[full], 0.9, axis=1)
    for i in np.flatnonzero(~full & ok.any(axis=1)):
        out[i] = np.quantile(a[i][ok[i]], 0.9)
    return out


@dataclass(frozen=True)
class _Pick:
    index: int
    meets: bool


def _select(tab: _Table, cols: NDArray[np.bool_], fixed: NDArray[np.bool_],
            max_premature: float, max_bias: float, among: NDArray[np.bool_] | None = None
            ) -> _Pick:
    """The procedure on the runs `cols`: cheapest candidate meeting both limits."""
    cost = tab.cost[:, cols].mean(axis=1)
    prem = tab.premature[:, cols].mean(axis=1)
    p90 = _p90_rows(tab.abs_bias[:, cols])
    p90 = np.where(np.isfinite(p90) & _measured_enough(tab.measured[:, cols]), p90, np.inf)
    ok = np.isfinite(cost) if among is None else np.isfinite(cost) & among
    meets = ok & (prem <= max_premature + 1e-12) & (p90 <= max_bias)
    idx = np.arange(cost.shape[0])
    if meets.any():
        order = np.lexsort((idx, ~fixed, p90, prem, cost))
        return _Pick(int(next(i for i in order if meets[i])), True)
    excess = np.maximum(prem / max(max_premature, 1e-12), p90 / max_bias)
    order = np.lexsort((idx, ~fixed, cost, excess))
    return _Pick(int(next(i for i in order if ok[i])), False)


def _cluster_boot(trace_of_run: NDArray[np.int64], n_traces: int, n_resamples: int,
                  seed: int) -> NDArray[np.int64]:
    """Per resample, how often each run is drawn when whole traces are resampled."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_traces, size=(n_resamples, n_traces))
    counts = np.zeros((n_resamples, n_traces), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n_resamples), n_traces), draws.ravel()), 1)
    return counts[:, trace_of_run]


def _boot_ci(values: NDArray[np.float64], weights: NDArray[np.int64], stat: str,
             confidence: float = 0.95) -> tuple[float, float]:
    if weights.shape[0] == 0:
        return math.nan, math.nan
    res = np.empty(weights.shape[0])
    for b, w in enumerate(weights):
        if stat == "mean":
            res[b] = np.average(values, weights=w) if w.sum() else np.nan
        else:
            v = np.repeat(values, w)
            v = v[np.isfinite(v)]
            res[b] = np.quantile(v, 0.9) if v.size else np.nan
    res = res[np.isfinite(res)]
    if not res.size:
        return math.nan, math.nan
    a = (1 - confidence) / 2
    lo, hi = np.quantile(res, [a, 1 - a])
    return float(lo), float(hi)


def _misses(prem: float, p90: float, max_premature: float, max_bias: float,
            measured_share: float = 1.0) -> list[str]:
    out = []
    if not prem <= max_premature + 1e-12:
        out.append(f"premature rate {_pct(prem)} > {_pct(max_premature)}")
    if not (math.isfinite(p90) and p90 <= max_bias):
        out.append(f"P90 |bias| {_pct(p90)} > {_pct(max_bias)}")
    if not measured_share >= MIN_MEASURED_SHARE - 1e-12:
        out.append(f"bias measured on only {_pct(measured_share)} of runs "
                   f"(< {_pct(MIN_MEASURED_SHARE)})")
    return out


def _check_limits(max_premature: float, max_bias: float, folds: int, cost: str,
                  n_resamples: int, measure_samples: int | None = None) -> None:
    if not (isinstance(max_premature, (int, float)) and 0 <= max_premature < 1):
        raise RecommendError(f"max_premature is a share of runs in [0, 1), got {max_premature!r}")
    if not (isinstance(max_bias, (int, float)) and 0 < max_bias < 1 and math.isfinite(max_bias)):
        raise RecommendError(f"max_bias is a relative bias in (0, 1) (0.01 = 1%), got "
                             f"{max_bias!r}")
    if not isinstance(folds, int) or folds < 2:
        raise RecommendError(f"folds must be an integer >= 2, got {folds!r}")
    if cost not in ("samples", "seconds"):
        raise RecommendError(f"cost is 'samples' or 'seconds', got {cost!r}")
    if n_resamples < 0:
        raise RecommendError(f"n_resamples must be >= 0, got {n_resamples}")
    if measure_samples is not None and (isinstance(measure_samples, bool) or not isinstance(
            measure_samples, (int, np.integer)) or measure_samples < 1):
        raise RecommendError(f"measure_samples is a number of samples >= 1 (or None: every "
                             f"sample after the stop), got {measure_samples!r}")


def _as_candidates(candidates: Iterable[Any], longest: int) -> list[Candidate]:
    out: list[Candidate] = []
    for c in candidates:
        if isinstance(c, str):
            c = _given(c)
        elif isinstance(c, WarmupConfig):
            c = Candidate.of(c)
        elif not isinstance(c, Candidate):
            raise RecommendError(f"a candidate is a spec string, a WarmupConfig or a "
                                 f"Candidate, got {type(c).__name__}")
        if not c.is_fixed and c.cap > longest:
            c = Candidate.of(c.config.model_copy(update={"max_prompts": longest}),
                             role=c.role, family=c.family, floor_s=c.floor_s)
        out.append(c)
    return out


def recommend(
    corpus: Any,
    reference: pd.DataFrame | str | os.PathLike[str] | None = None,
    *,
    candidates: Iterable[Candidate | WarmupConfig | str] | None = None,
    max_premature: float = 0.1,
    max_bias: float = 0.01,
    folds: int = 5,
    band: scoring.Band | str | None = None,
    cost: Literal["samples", "seconds"] = "samples",
    seed: int = 0,
    n_resamples: int = 1000,
    measure_samples: int | None = None,
    executor: cf.Executor | None = None,
    show_progress: bool | None = None,
) -> Recommendation:
    """Calibrate a warmup setting on labelled runs and recommend it (see the module docs).

    Parameters
    ----------
    corpus : Corpus, or anything `Corpus.build` accepts
        The recorded runs (trace files, folders, `Trace` objects, ...).
    reference : DataFrame or path, optional
        Reference starts (`trace_id,run_id,reference_start`), attached with
        `Corpus.with_reference`; default: the labels the runs already carry. Runs
        without a usable label (unknown, or -1: never steady) are left out and counted.
    candidates : iterable of Candidate, WarmupConfig or spec string, optional
        The settings to choose from (default: `candidate_space` of the corpus). The
        fixed counts of the default space are always added, so that the fixed-count
        rule can apply; adaptive settings are capped at the longest run.
    max_premature : float, default 0.1
        Largest acceptable share of runs stopped before their reference start.
    max_bias : float, default 0.01
        Largest acceptable P90 of |relative bias| of the post-stop mean (0.01 = 1%).
    folds : int, default 5
        Cross-validation folds, grouped by trace (2 to the number of traces).
    band : Band or str, optional
        The "exact" band of `scoring.score` (reported as `exact_rate`).
    cost : {"samples", "seconds"}, default "samples"
        What "cheapest" means: mean samples or mean seconds until the stop.
    seed : int, default 0
        Seed of the folds and of the bootstrap.
    n_resamples : int, default 1000
        Bootstrap resamples of the CIs (0: none, NaN).
    measure_samples : int, optional
        Length of the measurement phase after the warmup: the bias of a stop is that of
        the mean of the `measure_samples` samples after it, and a run with fewer samples
        left after the stop has no bias for that setting (it cannot support the
        measurement; such runs are counted, and a setting with no measurable run misses
        the bias limit). Default: every sample after the stop (a run needs one).
    executor : concurrent.futures.Executor, optional
        Where the replay runs (as `replay`).
    show_progress : bool, optional
        Progress bars of the replay (default: for long work, as `replay`).

    Returns
    -------
    Recommendation

    Raises
    ------
    RecommendError
        No labelled run (run `llem-warmup label` or pass a reference), a limit out of
        range, fewer than 2 folds or more folds than labelled traces, a bad candidate,
        a `measure_samples` below 1 or that no run is long enough to measure.
    CriterionConfigError
        An unknown criterion in a candidate spec.
    """
    t0 = time.perf_counter()
    _check_limits(max_premature, max_bias, folds, cost, n_resamples, measure_samples)
    if band is not None:
        try:
            scoring.Band.parse(band)
        except scoring.ScoringError as exc:
            raise RecommendError(str(exc)) from exc
    runs, excluded = _labelled(corpus, reference)
    fold_of = grouped_folds(runs.trace_ids, folds, seed)
    longest = max(r.n for r in runs)
    if measure_samples is not None and measure_samples >= longest:
        raise RecommendError(
            f"measure_samples={measure_samples} leaves no run to measure: the longest "
            f"labelled run has {longest} samples, and a stop after the first sample leaves "
            f"{longest - 1} (record longer runs or lower --measure-samples)")
    has_times = all(r.times is not None for r in runs)
    if cost == "seconds" and not has_times:
        raise RecommendError("cost='seconds' needs sample times, and some runs have none")
    space = candidate_space(longest, times=has_times)
    if candidates is None:
        cands = space
    else:
        given = _as_candidates(candidates, longest)
        if not given:
            raise RecommendError("candidates is empty")
        cands = list({c.label: c for c in [*(c for c in space if c.is_fixed), *given]}.values())
    stops = _stops(runs, cands, executor, show_progress)
    tab = _table(runs, cands, stops, band, cost, measure_samples)
    fixed = np.asarray([c.is_fixed for c in cands])
    trace_ids = runs.trace_ids
    t_index = {t: i for i, t in enumerate(trace_ids)}
    trace_of_run = np.asarray([t_index[r.trace_id] for r in runs], dtype=np.int64)
    run_fold = np.asarray([fold_of[r.trace_id] for r in runs])

    # out of fold
    oof_pick = np.empty(len(runs), dtype=np.int64)
    fold_picks: list[str] = []
    for f in range(folds):
        test = run_fold == f
        pick = _select(tab, ~test, fixed, max_premature, max_bias)
        oof_pick[test] = pick.index
        fold_picks.append(cands[pick.index].label + ("" if pick.meets else " (misses limits)"))
    cols = np.arange(len(runs))
    o_cost = tab.cost[oof_pick, cols]
    o_prem = tab.premature[oof_pick, cols].astype(np.float64)
    o_bias = tab.abs_bias[oof_pick, cols]
    weights = _cluster_boot(trace_of_run, len(trace_ids), n_resamples, seed)
    oof = Figures(
        n_runs=len(runs), n_traces=len(trace_ids),
        cost=float(o_cost.mean()), cost_ci=_boot_ci(o_cost, weights, "mean"),
        premature_rate=float(o_prem.mean()), premature_ci=_boot_ci(o_prem, weights, "mean"),
        p90_abs_bias=scoring.p90_abs(o_bias), p90_abs_bias_ci=_boot_ci(o_bias, weights, "p90"),
        never_stopped_rate=float(tab.never[oof_pick, cols].mean()),
        n_stopped=int((~tab.never[oof_pick, cols]).sum()),
        n_bias_measured=int(tab.measured[oof_pick, cols].sum()),
    )
    rows = tab.scored.iloc[oof_pick * len(runs) + cols].copy()
    rows["criterion"] = rows["spec"] = "out-of-fold selection"
    summ = scoring.summarize(rows, corpus=runs, n_resamples=0).iloc[0]
    n_fixed = int(summ["fixed_n_same_cost"])
    r = np.asarray([x.reference_start for x in runs], dtype=np.float64)
    d = o_prem - (n_fixed < r).astype(np.float64)
    lift_ci = _boot_ci(d, weights, "mean")
    versus = scoring.versus_verdict(*lift_ci)
    o_signed = tab.scored["relative_bias"].to_numpy(dtype=np.float64)[oof_pick * len(runs)
                                                                      + cols]
    bias_lift, n_both = _p90_lift(o_signed, _fixed_bias(runs, [n_fixed], measure_samples)[0])
    fixed_cmp = FixedComparison(
        fixed_n_same_cost=n_fixed, premature_rate=oof.premature_rate,
        premature_rate_fixed=float(summ["premature_rate_fixed"]),
        premature_lift=float(d.mean()), premature_lift_ci=lift_ci,
        bias_p90_lift=bias_lift, versus_fixed=versus, n_bias_compared=n_both,
    )

    # the procedure on all runs, and the decision
    everything = np.ones(len(runs), dtype=bool)
    pick = _select(tab, everything, fixed, max_premature, max_bias)
    table = _candidate_table(tab, cands, runs, max_premature, max_bias, measure_samples)
    chosen = pick.index
    lift_txt = (f"premature-rate lift {100 * d.mean():+.1f} points, 95% CI "
                f"{100 * lift_ci[0]:+.1f} to {100 * lift_ci[1]:+.1f}")
    relax = ("--max-premature / --max-bias, or record longer runs" if measure_samples is None
             else "--max-premature / --max-bias, lower --measure-samples, or record longer "
             "runs")
    none_txt = f"No candidate meets both limits on the {len(runs)} runs (relax {relax}). "
    if not fixed[chosen] and versus == "better":
        status: Status = "adaptive"
        reason = ("It is the cheapest setting meeting the limits. " if pick.meets else
                  none_txt + "This adaptive setting misses them least. ") + (
            "Out of fold the selection stops prematurely less often than the fixed count of "
            f"the same cost, fixed_count:n={n_fixed} ({lift_txt}: below 0).")
    elif not fixed[chosen]:
        status = "fixed"
        fpick = _select(tab, everything, fixed, max_premature, max_bias, among=fixed)
        what = "cheapest setting meeting the limits" if pick.meets else \
            "setting closest to the limits"
        if fpick.meets:
            use = "Use this fixed count, the cheapest one meeting the limits."
        elif pick.meets:
            use = ("No fixed count meets the limits: use this one, the fixed count closest "
                   "to them (it misses them, where the adaptive setting meets them).")
        else:
            use = "Use this fixed count, the fixed count closest to the limits."
        reason = ((none_txt if not pick.meets else "")
                  + f"The {what} is adaptive ({cands[chosen].label}), but it does not beat a "
                  f"fixed count: out of fold the selection is {_VERSUS[versus]} "
                  f"fixed_count:n={n_fixed} of the same cost ({lift_txt}, not below 0). "
                  + use)
        chosen = fpick.index
    else:
        status = "fixed"
        reason = ("A fixed count is the cheapest setting that meets the limits: no adaptive "
                  "setting meeting them costs less. Use the fixed count." if pick.meets else
                  none_txt + "The setting closest to them is this fixed count.")
    c = cands[chosen]
    row = table.iloc[chosen]
    selected = {
        "label": c.label, "cost": float(row["mean_samples"] if cost == "samples"
                                        else row["mean_seconds"]),
        "premature_rate": float(row["premature_rate"]), "p90_abs_bias": float(row["p90_abs_bias"]),
        "never_stopped_rate": float(row["never_stopped_rate"]),
        "n_stopped": int(row["n_stopped"]), "n_bias_measured": int(row["n_bias_measured"]),
        "misses": _misses(float(row["premature_rate"]), float(row["p90_abs_bias"]),
                          max_premature, max_bias,
                          float(row["n_bias_measured"]) / max(len(runs), 1)),
    }
    return Recommendation(
        config=c.config, setting=c.label, status=status, meets_limits=not selected["misses"],
        reason=reason, procedure_pick=cands[pick.index].label,
        procedure_meets_limits=pick.meets, measure_samples=measure_samples,
        max_premature=float(max_premature), max_bias=float(max_bias), cost_unit=cost,
        selected=selected, oof=oof, fixed=fixed_cmp, fold_picks=fold_picks, folds=folds,
        seed=seed, candidates=table, n_runs=len(runs), n_traces=len(trace_ids),
        n_excluded=excluded, runtime_s=time.perf_counter() - t0,
    )


def _candidate_table(tab: _Table, cands: list[Candidate], runs: Corpus, max_premature: float,
                     max_bias: float, measure_samples: int | None) -> pd.DataFrame:
    prem = tab.premature.mean(axis=1)
    p90 = _p90_rows(tab.abs_bias)
    table = pd.DataFrame({
        "label": [c.label for c in cands],
        "role": [c.role for c in cands],
        "family": [c.family for c in cands],
        "criterion": [None if c.is_fixed else c.config.make_criterion().spec for c in cands],
        "max_prompts": [c.cap for c in cands],
        "floor_s": [c.floor_s for c in cands],
        "mean_samples": tab.samples.mean(axis=1),
        "mean_seconds": tab.seconds.mean(axis=1),
        "premature_rate": prem,
        "p90_abs_bias": p90,
        "never_stopped_rate": tab.never.mean(axis=1),
        "n_stopped": (~tab.never).sum(axis=1),
        "n_bias_measured": tab.measured.sum(axis=1),
        "exact_rate": tab.exact.mean(axis=1),
    })
    table["meets_limits"] = ((prem <= max_premature + 1e-12)
                             & (np.nan_to_num(p90, nan=np.inf) <= max_bias)
                             & _measured_enough(tab.measured))
    summ = scoring.summarize(tab.scored, corpus=runs, by=["spec"], n_resamples=0)
    keep = ["fixed_n_same_cost", "premature_rate_fixed", "premature_lift", "wee_lift"]
    table = table.merge(summ[["spec", *keep]].rename(columns={"spec": "label"}), on="label",
                        how="left")
    # the bias lift with recommend's bias (measurement phase, short tails left out) on
    # both sides, where summarize's fixed count would use every post-stop sample
    n_same = table["fixed_n_same_cost"].to_numpy(dtype=np.float64)
    counts = sorted({int(v) for v in n_same[np.isfinite(n_same)]})
    fixed_bias = dict(zip(counts, _fixed_bias(runs, counts, measure_samples), strict=True)) \
        if counts else {}
    bias = tab.scored["relative_bias"].to_numpy(dtype=np.float64).reshape(tab.never.shape)
    table["bias_p90_lift"] = [
        _p90_lift(bias[i], fixed_bias[int(v)])[0] if math.isfinite(v) else math.nan
        for i, v in enumerate(n_same)]
    return table
