r"""Train the `learned` criterion and compare warmup rules with the fixed count of the same cost.

Training data are *labelled runs*: a series and its reference steady-state start $r$
(the first steady sample; -1 when the run never reaches a steady state, None when
unknown). At sample $t$ of a run with $r \ge 0$ the target is

$$ y_t = [\, t + 1 \ge r \,], $$

"stopping warmup after sample $t$ is not premature" (the definition of
`llenergymeasure.analysis.scoring`: a stop at index $k$ is premature when
$k + 1 < r$). Runs without a steady state or without a label are not used. The
features of `llenergymeasure.criteria.learned.feature_matrix` are taken at about
`n_points` indices per run spaced geometrically from the first defined one (most stops
happen early, where the decision is hard), every run weighing the same, and a logistic
regression with a small ridge penalty is fitted by Newton's method (iteratively
reweighted least squares). The threshold is then chosen on the training runs: the
probability grid value whose premature-stop lift against the fixed count of the same
mean cost (`equal_cost_comparison`), averaged with its two neighbours on the grid, is
lowest.

References
----------
- D. R. Cox, "The regression analysis of binary sequences", *J. R. Stat. Soc. B* 20(2),
  1958; P. McCullagh and J. A. Nelder, *Generalized Linear Models*, 2nd ed., Chapman &
  Hall, 1989, section 4.4 (iteratively reweighted least squares).
- L. Traini et al., "AI-driven Java performance testing: balancing result quality with
  testing time", ASE 2024, arXiv:2408.05100 (cross-validation grouped by benchmark).
- B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall,
  1993 (the paired percentile bootstrap of the lift).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from llenergymeasure.criteria.learned import FEATURES, LearnedModel, feature_matrix

__all__ = [
    "THRESHOLD_GRID",
    "LabelledRun",
    "LearnError",
    "cross_validate",
    "equal_cost_comparison",
    "fit_logistic",
    "read_labelled_runs",
    "rule_stops",
    "steady_runs",
    "train_learned_rule",
]

logger = logging.getLogger(__name__)

#: Probability grid on which the threshold is chosen.
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


class LearnError(ValueError):
    """Bad input to training or to the equal-cost comparison (names what and where)."""


@dataclass(frozen=True, eq=False)
class LabelledRun:
    """One run with its reference start.

    Attributes
    ----------
    trace_id, run_id : str
        Identity of the run; runs of one trace share a cross-validation fold.
    x : numpy.ndarray
        Successful samples of the watched signal.
    times : numpy.ndarray
        End time of each sample in seconds from the run's start.
    reference_start : int or None
        First steady sample; -1 no steady state; None unknown.
    """

    trace_id: str
    run_id: str
    x: NDArray[np.float64]
    times: NDArray[np.float64]
    reference_start: int | None


# ----------------------------------------------------------------- reading
def _read_reference(path: str | os.PathLike[str]) -> dict[tuple[str, str], int | None]:
    """``(trace_id, run_id) -> reference_start`` from a reference CSV."""
    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype={"trace_id": str, "run_id": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LearnError(f"reference file {p}: cannot be read ({exc})") from None
    for col in ("trace_id", "run_id", "reference_start"):
        if col not in frame.columns:
            raise LearnError(f"reference file {p}: no column {col!r} (columns: "
                             f"{', '.join(map(str, frame.columns))})")
    out: dict[tuple[str, str], int | None] = {}
    for i, row in enumerate(frame.itertuples(index=False)):
        v = row.reference_start
        if v is None or (isinstance(v, float) and math.isnan(v)):
            ref = None
        else:
            try:
                ref = int(v)
            except (TypeError, ValueError):
                raise LearnError(f"reference file {p}, row {i + 2}: reference_start {v!r} "
                                 "is not an integer") from None
            if ref != v or ref < -1:
                raise LearnError(f"reference file {p}, row {i + 2}: reference_start {v!r} "
                                 "must be an integer >= -1")
        out[(str(row.trace_id), str(row.run_id))] = ref
    return out


def read_labelled_runs(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Iterable[Any],
    *,
    reference: str | os.PathLike[str] | None = None,
    signal: str = "latency_ms",
) -> list[LabelledRun]:
    """Read the runs to train or evaluate on, with their reference starts.

    The one place that turns inputs into runs: paths of trace files or folders (a
    Traini corpus folder, holding ``timeseries/all``, is read with its labels), or
    `Trace` objects. Trace ids are those replay gives
    (`llenergymeasure.analysis.replay.trace_id_of`).

    Parameters
    ----------
    inputs : path, sequence of paths, or sequence of Trace
        What to read.
    reference : path, optional
        A reference CSV (``trace_id,run_id,reference_start``) whose starts replace the
        runs' own; runs it does not list keep theirs.
    signal : str, default "latency_ms"
        The signal to read.

    Returns
    -------
    list of LabelledRun
        In input order.

    Raises
    ------
    LearnError
        On a missing input, two traces with one id, or a bad reference file.
    """
    from llenergymeasure.analysis.corpus import trace_id_of
    from llenergymeasure.traces.importers.traini import load_traini_corpus
    from llenergymeasure.traces.io import load_traces

    items: list[Any]
    if isinstance(inputs, (str, os.PathLike)):
        items = [inputs]
    else:
        items = list(inputs)
    traces: list[Any] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            p = Path(item)
            if not p.exists():
                raise LearnError(f"no such trace file or folder: {p}")
            if (p / "timeseries" / "all").is_dir():
                traces.extend(load_traini_corpus(p))
            else:
                traces.extend(load_traces(p))
        else:
            traces.append(item)
    refs = _read_reference(reference) if reference is not None else {}
    runs: list[LabelledRun] = []
    seen: dict[str, int] = {}
    for pos, tr in enumerate(traces):
        tid = trace_id_of(tr)
        if tid in seen:
            raise LearnError(f"two traces have the id {tid!r} (inputs {seen[tid]} and {pos})")
        seen[tid] = pos
        for rid in tr.run_ids:
            x = np.asarray(tr.samples(rid, signal=signal), dtype=np.float64)
            t = np.asarray(tr.sample_times_s(rid), dtype=np.float64)
            ref = tr.run_info(rid).reference_start
            ref = refs.get((tid, str(rid)), ref)
            if ref is not None and ref >= x.shape[0]:
                raise LearnError(f"trace {tid!r} run {rid!r}: reference_start {ref} is beyond "
                                 f"its {x.shape[0]} samples")
            runs.append(LabelledRun(tid, str(rid), x, t, ref))
    return runs


# ---------------------------------------------------------------- training
def fit_logistic(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    *,
    l2: float = 1e-3,
    max_iter: int = 100,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    r"""Weighted logistic regression on standardised columns, by Newton's method.

    Minimises $\sum_i w_i\,\ell(y_i, \sigma(\beta_0 + z_i^\top \beta)) +
    \tfrac{\lambda}{2} \lVert \beta \rVert^2$ with $z = (X - \mu) / s$ ($\mu$, $s$ the
    column means and standard deviations; the intercept is not penalised).

    Returns
    -------
    (mean, scale, coef, intercept)

    Raises
    ------
    LearnError
        If the data are empty, hold one class only, or are not finite.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or y.shape != (X.shape[0],) or w.shape != y.shape:
        raise LearnError(f"training data must be (n, p), (n,), (n,); got {X.shape}, "
                         f"{y.shape}, {w.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all() and np.isfinite(w).all()):
        raise LearnError("training data hold non-finite values")
    if y.min() == y.max():
        raise LearnError(f"training targets are all {y[0]:g}: need both steady and unsteady "
                         "samples (are the reference starts all 0, or all beyond the runs?)")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = np.c_[np.ones(X.shape[0]), (X - mean) / scale]
    pen = np.r_[0.0, np.full(X.shape[1], l2)]
    beta = np.zeros(Z.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(Z @ beta)))
        grad = Z.T @ (w * (p - y)) + pen * beta
        hess = (Z * (w * p * (1.0 - p))[:, None]).T @ Z + np.diag(pen + 1e-12)
        step = np.linalg.solve(hess, grad)
        beta = beta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return mean, scale, beta[1:].copy(), float(beta[0])


def _training_rows(
    feats: Sequence[NDArray[np.float64]], refs: Sequence[int], window: int, n_points: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    X, y, w = [], [], []
    for F, r in zip(feats, refs, strict=True):
        n = F.shape[0]
        if n < window:
            continue
        idx = np.unique(np.geomspace(window - 1, n - 1, n_points).astype(np.int64))
        X.append(F[idx])
        y.append((idx + 1 >= r).astype(np.float64))
        w.append(np.full(idx.shape[0], 1.0 / idx.shape[0]))
    if not X:
        raise LearnError(f"no labelled run is at least {window} samples long")
    return np.concatenate(X), np.concatenate(y), np.concatenate(w)


def rule_stops(statistics: Sequence[NDArray[np.float64]], threshold: float) -> NDArray[np.int64]:
    """First index where each statistic is >= ``threshold`` (-1: never); StopRule() stops."""
    out = np.full(len(statistics), -1, dtype=np.int64)
    for i, s in enumerate(statistics):
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(s >= threshold)
        if hit.size:
            out[i] = hit[0]
    return out


def steady_runs(runs: Sequence[LabelledRun]) -> list[LabelledRun]:
    """The runs with a steady-state reference (``reference_start >= 0``), in order."""
    return [r for r in runs if r.reference_start is not None and r.reference_start >= 0]


def _choose_threshold(stats: Sequence[NDArray[np.float64]], runs: Sequence[LabelledRun],
                      grid: Sequence[float]) -> tuple[float, list[float]]:
    lifts = []
    for th in grid:
        stops = rule_stops(stats, th)
        lifts.append(equal_cost_comparison(stops, runs, n_resamples=0)["premature_lift"])
    arr = np.asarray(lifts)
    smooth = np.array([np.mean(arr[max(0, i - 1) : i + 2]) for i in range(arr.shape[0])])
    return float(grid[int(np.argmin(smooth))]), lifts


def train_learned_rule(
    runs: Sequence[LabelledRun],
    *,
    window: int = 40,
    persistence: int = 50,
    features: Sequence[str] = FEATURES,
    l2: float = 1e-3,
    n_points: int = 400,
    thresholds: Sequence[float] = THRESHOLD_GRID,
    version: str = "0+local",
    metadata: Mapping[str, Any] | None = None,
    _features: Sequence[NDArray[np.float64]] | None = None,
) -> LearnedModel:
    """Fit the model of the `learned` criterion on labelled runs and choose its threshold.

    Parameters
    ----------
    runs : sequence of LabelledRun
        Runs with a steady state (``reference_start >= 0``) are used; the others are
        skipped.
    window : int, default 40
        Trailing window length (even, >= 8).
    persistence : int, default 50
        Samples over which the probability must stay above the threshold.
    features : sequence of str
        The features to use (a subset of `FEATURES`).
    l2 : float, default 1e-3
        Ridge penalty of the standardised coefficients.
    n_points : int, default 400
        Training indices per run (geometric spacing).
    thresholds : sequence of float
        Grid on which the threshold is chosen.
    version : str
        Version string written in the model.
    metadata : mapping, optional
        Extra provenance written in the model.

    Returns
    -------
    LearnedModel

    Raises
    ------
    LearnError
        If no run has a steady state, or a feature name is unknown.
    """
    if window < 8 or window % 2:
        raise LearnError(f"window must be an even integer >= 8, got {window}")
    if persistence < 1:
        raise LearnError(f"persistence must be >= 1, got {persistence}")
    unknown = [f for f in features if f not in FEATURES]
    if unknown or not features:
        raise LearnError(f"unknown features {unknown} (known: {', '.join(FEATURES)})")
    steady = steady_runs(runs)
    if not steady:
        raise LearnError("no run has a steady-state reference (reference_start >= 0)")
    feats = (list(_features) if _features is not None
             else [feature_matrix(r.x, window) for r in steady])
    cols = [FEATURES.index(f) for f in features]
    X, y, w = _training_rows(feats, [int(r.reference_start) for r in steady],  # type: ignore[arg-type]
                             window, n_points)
    mean, scale, coef, b0 = fit_logistic(X[:, cols], y, w, l2=l2)
    provisional = LearnedModel(window, tuple(features), mean, scale, coef, b0, 0.5, version,
                               persistence)
    stats = [provisional.statistic(F) for F in feats]
    threshold, lifts = _choose_threshold(stats, steady, thresholds)
    meta: dict[str, Any] = {
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_runs": len(steady),
        "n_traces": len({r.trace_id for r in steady}),
        "l2": l2,
        "n_points": n_points,
        "threshold_rule": "lowest in-sample premature lift vs the equal-cost fixed count "
                          "(grid mean with its neighbours)",
        "in_sample_lift_by_threshold": dict(zip(map(str, thresholds), lifts, strict=True)),
    }
    meta.update(metadata or {})
    return LearnedModel(window, tuple(features), mean, scale, coef, b0, threshold, version,
                        persistence, meta)


def cross_validate(
    runs: Sequence[LabelledRun],
    *,
    n_folds: int = 5,
    seed: int = 0,
    sweep: Sequence[float] = (),
    feature_matrices: Sequence[NDArray[np.float64]] | None = None,
    **train_kwargs: Any,
) -> pd.DataFrame:
    """Out-of-fold stops of `train_learned_rule`, folds grouped by trace.

    Every trace (all runs of a benchmark) falls in one fold; each fold's runs are
    stopped by a model trained, threshold included, on the other folds only.

    Parameters
    ----------
    runs : sequence of LabelledRun
        Runs with a steady state are used.
    n_folds : int, default 5
        Number of folds (at most the number of traces).
    seed : int, default 0
        Seed of the assignment of traces to folds.
    sweep : sequence of float
        Thresholds at which the out-of-fold stops are also given (the fold models
        applied with that threshold instead of their own).
    **train_kwargs
        Passed to `train_learned_rule`.

    Returns
    -------
    DataFrame
        One row per steady run: ``trace_id``, ``run_id``, ``fold``, ``threshold`` (the
        fold model's), ``stop_index`` (-1: never) and ``stop_index@<th>`` per swept
        threshold.
    """
    steady = steady_runs(runs)
    groups = sorted({r.trace_id for r in steady})
    if len(groups) < n_folds:
        raise LearnError(f"{len(groups)} traces cannot fill {n_folds} folds")
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[g]: j % n_folds for j, g in enumerate(order)}
    window = int(train_kwargs.get("window", 40))
    if feature_matrices is None:
        feats = [feature_matrix(r.x, window) for r in steady]
    else:
        feats = list(feature_matrices)
        if len(feats) != len(steady):
            raise LearnError(f"{len(feats)} feature matrices for {len(steady)} steady runs")
    rows = []
    for f in range(n_folds):
        tr = [i for i, r in enumerate(steady) if fold_of[r.trace_id] != f]
        model = train_learned_rule([steady[i] for i in tr], _features=[feats[i] for i in tr],
                                   **train_kwargs)
        for i, r in enumerate(steady):
            if fold_of[r.trace_id] != f:
                continue
            stat = model.statistic(feats[i])
            row = {"trace_id": r.trace_id, "run_id": r.run_id, "fold": f,
                   "threshold": model.threshold,
                   "stop_index": int(rule_stops([stat], model.threshold)[0])}
            for th in sweep:
                row[f"stop_index@{th:g}"] = int(rule_stops([stat], th)[0])
            rows.append(row)
        logger.info("fold %d: threshold %.2f", f, model.threshold)
    return pd.DataFrame(rows)


# ------------------------------------------------------ equal-cost baseline
def _per_run_scores(stops: NDArray[np.int64], runs: Sequence[LabelledRun]
                    ) -> tuple[NDArray[np.float64], ...]:
    n = len(runs)
    used = np.empty(n)
    prem = np.zeros(n, dtype=bool)
    wee = np.full(n, np.nan)
    bias = np.full(n, np.nan)
    for i, (k, r) in enumerate(zip(stops.tolist(), runs, strict=True)):
        ref = int(r.reference_start)  # type: ignore[arg-type]
        size = r.x.shape[0]
        used[i] = k + 1 if k >= 0 else size
        if k < 0:
            continue
        prem[i] = k + 1 < ref
        t_ref = float(r.times[ref - 1]) if ref > 0 else 0.0
        wee[i] = abs(float(r.times[k]) - t_ref)
        post = r.x[k + 1 :]
        if post.size:
            bias[i] = abs(float(post.mean()) / float(r.x[ref:].mean()) - 1.0)
    return used, prem.astype(np.float64), wee, bias


def equal_cost_comparison(
    stops: Sequence[int] | NDArray[np.int64],
    runs: Sequence[LabelledRun],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    late_start: int = 100,
) -> dict[str, float]:
    r"""A rule's stops against the fixed count of the same mean cost on the same runs.

    Only runs with a steady state count. The rule's cost is its mean samples used
    ($k + 1$, or the whole run when it never stops); the fixed count
    $n_f = \mathrm{round}(\text{mean cost})$ stops every run at index $n_f - 1$ (or
    its last sample). A stop is premature when $k + 1 < r$. Lifts are rule minus
    fixed (negative is better): the premature rate, with a paired percentile
    bootstrap CI over runs; the mean |WEE| in seconds ($|t_k - t_{r-1}|$, over runs
    where both stop); the 90th percentile of the absolute relative bias
    $|\bar x_{k+1:} / \bar x_{r:} - 1|$.

    Parameters
    ----------
    stops : sequence of int
        Stop index per run (-1: never stopped), aligned with ``runs``.
    runs : sequence of LabelledRun
        The runs.
    n_resamples : int, default 2000
        Bootstrap resamples (0 skips the CI: NaN bounds).
    confidence : float, default 0.95
        Level of the CI.
    seed : int, default 0
        Seed of the resampling.
    late_start : int, default 100
        Runs whose reference start is at least this are "late" (where warmup really
        matters; 100 iterations is 10 s of JMH): their premature rates are reported
        apart.

    Returns
    -------
    dict
        ``n_runs``, ``mean_samples_used``, ``fixed_n_same_cost``, ``premature_rate``,
        ``n_late``, ``premature_rate_late``, ``premature_rate_late_fixed``,
        ``premature_rate_fixed``, ``premature_lift``, ``premature_lift_ci_low``,
        ``premature_lift_ci_high``, ``mean_abs_wee_s``, ``mean_abs_wee_s_fixed``,
        ``wee_lift``, ``bias_p90``, ``bias_p90_fixed``, ``bias_p90_lift``,
        ``never_stopped_rate`` (rates as fractions).
    """
    k = np.asarray(stops, dtype=np.int64)
    if k.shape != (len(runs),):
        raise LearnError(f"{k.shape[0]} stops for {len(runs)} runs")
    keep = [i for i, r in enumerate(runs) if r.reference_start is not None
            and r.reference_start >= 0]
    if not keep:
        raise LearnError("no run has a steady-state reference")
    sel = [runs[i] for i in keep]
    k = k[keep]
    for i, (ki, r) in enumerate(zip(k.tolist(), sel, strict=True)):
        if ki >= r.x.shape[0]:
            raise LearnError(f"run {i} ({r.trace_id!r}, {r.run_id!r}): stop {ki} beyond its "
                             f"{r.x.shape[0]} samples")
    used, prem, wee, bias = _per_run_scores(k, sel)
    n_fixed = max(1, round(float(used.mean())))
    kf = np.array([min(n_fixed, r.x.shape[0]) - 1 for r in sel], dtype=np.int64)
    _, prem_f, wee_f, bias_f = _per_run_scores(kf, sel)
    diff = prem - prem_f
    lo = hi = math.nan
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, diff.shape[0], size=(n_resamples, diff.shape[0]))
        boot = diff[draws].mean(axis=1)
        a = (1.0 - confidence) / 2.0
        lo, hi = (float(v) for v in np.quantile(boot, [a, 1.0 - a]))
    late = np.array([r.reference_start >= late_start for r in sel])  # type: ignore[operator]
    both = np.isfinite(wee) & np.isfinite(wee_f)
    b90 = float(np.nanpercentile(bias, 90)) if np.isfinite(bias).any() else math.nan
    b90f = float(np.nanpercentile(bias_f, 90))
    return {
        "n_runs": float(len(sel)),
        "mean_samples_used": float(used.mean()),
        "fixed_n_same_cost": float(n_fixed),
        "premature_rate": float(prem.mean()),
        "premature_rate_fixed": float(prem_f.mean()),
        "premature_lift": float(diff.mean()),
        "premature_lift_ci_low": lo,
        "premature_lift_ci_high": hi,
        "n_late": float(late.sum()),
        "premature_rate_late": float(prem[late].mean()) if late.any() else math.nan,
        "premature_rate_late_fixed": float(prem_f[late].mean()) if late.any() else math.nan,
        "mean_abs_wee_s": float(wee[both].mean()) if both.any() else math.nan,
        "mean_abs_wee_s_fixed": float(wee_f[both].mean()) if both.any() else math.nan,
        "wee_lift": float(wee[both].mean() - wee_f[both].mean()) if both.any() else math.nan,
        "bias_p90": b90,
        "bias_p90_fixed": b90f,
        "bias_p90_lift": b90 - b90f,
        "never_stopped_rate": float(np.mean(k < 0)),
    }
