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
def read_labelled_runs(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Iterable[Any],
    *,
    reference: str | os.PathLike[str] | None = None,
    signal: str = "latency_ms",
) -> list[LabelledRun]:
    """Read the runs to train or evaluate on, with their reference starts.

    A view of the corpus (`llenergymeasure.analysis.corpus.Corpus.build`, the one place
    that turns inputs into runs, with its trace ids) for training: paths of trace files
    or folders (a Traini corpus folder, holding ``timeseries/all``, is read with its
    labels), or `Trace` objects; `Corpus.with_reference` applies the reference file.

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
        In corpus order.

    Raises
    ------
    LearnError
        On a missing input, two traces with one id, a missing signal or a bad reference
        file.
    """
    from llenergymeasure.analysis.corpus import Corpus, CorpusError
    from llenergymeasure.traces.importers.traini import load_traini_corpus

    items: list[Any] = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    expanded: list[Any] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            p = Path(item)
            if not p.exists():
                raise LearnError(f"no such trace file or folder: {p}")
            if (p / "timeseries" / "all").is_dir():
                expanded.extend(load_traini_corpus(p))
                continue
        expanded.append(item)
    try:
        corpus = Corpus.build(expanded, signals=(signal,))
        if reference is not None:
            corpus = corpus.with_reference(reference)
    except CorpusError as exc:
        raise LearnError(str(exc)) from None
    runs: list[LabelledRun] = []
    for rec in corpus:
        x = rec.signal(signal)
        times = rec.times if rec.times is not None else np.full(x.shape[0], np.nan)
        runs.append(LabelledRun(rec.trace_id, rec.run_id, x, times, rec.reference_start))
    return runs


def _corpus_of_runs(runs: Sequence[LabelledRun]) -> Any:
    """The corpus of labelled runs for the scoring path (signal ``"x"``).

    Runs are named by their position (trace id ``"<i>"``, run id ``"0"``): the
    comparison pairs stops with runs by position, and the runs' own ids need not be
    unique here.
    """
    from llenergymeasure.analysis.corpus import Corpus, RunRecord

    return Corpus([RunRecord(str(i), "0", {"x": r.x}, r.times, reference_start=r.reference_start,
                             source=f"labelled run {i} ({r.trace_id!r}, {r.run_id!r})")
                   for i, r in enumerate(runs)])


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
#: The keys of `equal_cost_comparison`: the columns of `scoring.summarize` it passes on.
_SUMMARY_KEYS: tuple[str, ...] = (
    "fixed_n_same_cost", "premature_rate", "premature_rate_fixed", "premature_lift",
    "premature_lift_ci_low", "premature_lift_ci_high", "n_late", "premature_rate_late",
    "premature_rate_late_fixed", "wee_lift", "bias_p90_lift", "never_stopped_rate",
)


def equal_cost_comparison(
    stops: Sequence[int] | NDArray[np.int64],
    runs: Sequence[LabelledRun],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    late_start: int | None = None,
) -> dict[str, Any]:
    r"""A rule's stops against the fixed count of the same mean cost on the same runs.

    The stops are scored by the package's one scoring path
    (`llenergymeasure.analysis.scoring.score` and `summarize`); this function only turns
    a list of stop indexes on labelled runs into that path's input. Only runs with a
    steady state count. The rule's cost is its mean samples used ($k + 1$, or the whole
    run when it never stops); the fixed count $n_f$ is that mean rounded. A stop is
    premature when $k + 1 < r$. Lifts are rule minus fixed (negative is better): the
    premature rate, with a paired percentile bootstrap CI over runs; the mean |WEE| in
    samples (over runs where the rule stops); the 90th percentile of the absolute
    relative bias $|\bar x_{k+1:} / \bar x_{r:} - 1|$.

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
    late_start : int, optional
        Runs whose reference start is at least this are "late" (where warmup really
        matters): their premature rates are reported apart (default: scoring's
        `LATE_START_SAMPLES`).

    Returns
    -------
    dict
        ``n_runs``, ``mean_samples_used``, and the `summarize` columns
        ``fixed_n_same_cost``, ``premature_rate``, ``premature_rate_fixed``,
        ``premature_lift``, ``premature_lift_ci_low``, ``premature_lift_ci_high``,
        ``n_late``, ``premature_rate_late``, ``premature_rate_late_fixed``,
        ``wee_lift`` (samples), ``bias_p90_lift``, ``never_stopped_rate``, and
        ``versus_fixed`` (rates as fractions); from the same per-run scores,
        ``mean_abs_wee_s`` / ``mean_abs_wee_s_fixed`` / ``wee_s_lift`` (|WEE| in
        seconds, over runs where both stop) and ``bias_p90`` / ``bias_p90_fixed``
        (over runs where both have a bias; their difference is ``bias_p90_lift``).
    """
    from llenergymeasure.analysis import scoring

    k = np.asarray(stops, dtype=np.int64)
    if k.shape != (len(runs),):
        raise LearnError(f"{k.shape[0]} stops for {len(runs)} runs")
    keep = [i for i, r in enumerate(runs) if r.reference_start is not None
            and r.reference_start >= 0]
    if not keep:
        raise LearnError("no run has a steady-state reference")
    sel = [runs[i] for i in keep]
    k = k[keep]
    size = np.asarray([r.x.shape[0] for r in sel], dtype=np.int64)
    for i, (ki, r) in enumerate(zip(k.tolist(), sel, strict=True)):
        if ki >= r.x.shape[0]:
            raise LearnError(f"run {i} ({r.trace_id!r}, {r.run_id!r}): stop {ki} beyond its "
                             f"{r.x.shape[0]} samples")
    stopped = k >= 0
    used = np.where(stopped, k + 1, size)
    results = pd.DataFrame({
        "trace_id": [str(i) for i in range(len(sel))],
        "run_id": "0",
        "spec": "rule",
        "stop_index": pd.array(np.where(stopped, k, np.nan), dtype="Float64").astype("Int64"),
        "samples_used": used,
    })
    corpus = _corpus_of_runs(sel)
    scored = scoring.score(results, corpus, signal="x", n_resamples=0)
    late = scoring.LATE_START_SAMPLES if late_start is None else late_start
    row = scoring.summarize(scored, corpus=corpus, by=["spec"], confidence=confidence,
                            n_resamples=n_resamples, seed=seed, late_start=late,
                            signal="x").iloc[0]
    out: dict[str, Any] = {"n_runs": float(len(sel)), "mean_samples_used": float(used.mean())}
    for key in _SUMMARY_KEYS:
        out[key] = float(row[key])
    out["versus_fixed"] = str(row["versus_fixed"])
    # The same per-run scores in seconds and as P90 levels (Traini's time model, for the
    # tables of the learned rule's page): read off score() and fixed_count_scores().
    fixed = scoring.fixed_count_scores(corpus, int(row["fixed_n_same_cost"]), signal="x")
    wee_s = scored["abs_wee_s"].to_numpy(dtype=np.float64)
    wee_s_fixed = np.abs(fixed["wee_s"].to_numpy(dtype=np.float64))
    both = np.isfinite(wee_s) & np.isfinite(wee_s_fixed)
    out["mean_abs_wee_s"] = float(wee_s[both].mean()) if both.any() else math.nan
    out["mean_abs_wee_s_fixed"] = float(wee_s_fixed[both].mean()) if both.any() else math.nan
    out["wee_s_lift"] = out["mean_abs_wee_s"] - out["mean_abs_wee_s_fixed"]
    bias = np.abs(scored["relative_bias"].to_numpy(dtype=np.float64))
    bias_fixed = np.abs(fixed["relative_bias"].to_numpy(dtype=np.float64))
    both = np.isfinite(bias) & np.isfinite(bias_fixed)
    out["bias_p90"] = scoring.p90_abs(bias[both])
    out["bias_p90_fixed"] = scoring.p90_abs(bias_fixed[both])
    return out
