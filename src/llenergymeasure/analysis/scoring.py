r"""Score replayed stops against reference steady states, and summarise per criterion setting.

Conventions (those of :mod:`llenergymeasure.analysis.replay`): a stop at sample index
``k`` ends warmup after sample ``k``, so the measured samples are ``x[k+1:]``; a
reference start ``r`` is the first steady sample; ``t_i`` is the end time (s) of sample
``i`` and :math:`t_{-1} = 0`.

Per row
-------
.. math::

    \mathrm{WEE} = (k + 1) - r \quad\text{(samples)}, \qquad
    \mathrm{waste} = t_k - t_{r-1} \quad\text{(s, signed)},

so a stop whose first measured sample is the reference start has WEE 0. The waste band
is "over" when :math:`\mathrm{waste} \ge \tau`, "under" when :math:`\le -\tau`, else
"exact" (:math:`\tau` = ``tolerance_s``, 5 s in Traini et al.). A stop is *premature*
when :math:`k + 1 < r`. The relative bias of the post-stop mean is
:math:`\bar x_{k+1:} / \bar x_{r:} - 1`, with a seeded percentile bootstrap CI of the
ratio (``scipy.stats.bootstrap``, the two samples resampled independently) and Traini
et al.'s effect size: 0 when the CI holds 1, else :math:`|c - 1|` with ``c`` the CI's
centre (``lb_effect``: the distance of the nearer bound).

References
----------
.. [1] L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
   assessment of steady state performance in Java software: are we there yet?",
   Empirical Software Engineering 28(1):13, 2023 (WEE, time waste, effect size).
.. [2] T. Kalibera and R. Jones, "Rigorous benchmarking in reasonable time", ISMM 2013.
.. [3] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
   Hall, 1993.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "RunSeries",
    "ScoringError",
    "bias_ci",
    "effect_size",
    "pareto_front",
    "percentile_ci",
    "score",
    "summarize",
    "waste_band",
]

logger = logging.getLogger(__name__)


class ScoringError(ValueError):
    """Bad input to scoring; the message names the row, trace, run or column."""


@dataclass(frozen=True)
class RunSeries:
    """The samples of one run as scoring needs them.

    Attributes
    ----------
    x : numpy.ndarray
        Successful samples (e.g. latency in ms).
    t : numpy.ndarray or None
        End time of each sample in seconds from the run's start; the cumulative sum
        of ``x / 1000`` when None.
    reference_start : int or None
        First steady sample; None unknown, -1 no steady state.
    """

    x: NDArray[np.float64]
    t: NDArray[np.float64] | None = None
    reference_start: int | None = None

    def times(self) -> NDArray[np.float64]:
        """End times in seconds."""
        if self.t is not None:
            return np.asarray(self.t, dtype=np.float64)
        return np.cumsum(np.asarray(self.x, dtype=np.float64)) / 1e3


def waste_band(waste_s: float, tolerance_s: float = 5.0) -> str | None:
    """"over" if ``waste_s >= tol``, "under" if ``<= -tol``, "exact" otherwise; None if NaN."""
    if waste_s is None or not math.isfinite(waste_s):
        return None
    if waste_s >= tolerance_s:
        return "over"
    if waste_s <= -tolerance_s:
        return "under"
    return "exact"


def effect_size(ci_low: float, ci_high: float) -> tuple[float, float]:
    """Traini et al.'s effect and lower-bound effect of a ratio CI (fractions, not %).

    ``effect`` is 0 when the CI holds 1, else ``|(lo + hi)/2 - 1|``; ``lb_effect`` is 0
    when the CI holds 1, else the distance from 1 of the nearer bound.
    """
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return math.nan, math.nan
    if ci_low <= 1.0 <= ci_high:
        return 0.0, 0.0
    centre = 0.5 * (ci_low + ci_high)
    lb = ci_high if ci_high < 1.0 else ci_low
    return abs(centre - 1.0), abs(lb - 1.0)


def percentile_ci(
    samples: tuple[NDArray[np.float64], ...],
    statistic: Callable[..., Any],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Seeded percentile bootstrap CI of ``statistic`` over independent ``samples``.

    One call of :func:`scipy.stats.bootstrap` (``method="percentile"``, samples
    resampled independently, ``statistic`` vectorised with an ``axis`` argument, draws
    from ``numpy.random.default_rng(seed)``): the interval behind :func:`bias_ci`, the
    per-setting medians of :func:`summarize` and the forest plot's CIs.

    Parameters
    ----------
    samples : tuple of numpy.ndarray
        One or more samples, each of at least 2 values.
    statistic : callable
        ``statistic(*samples, axis=-1)``, e.g. :func:`numpy.median`.
    confidence : float
        Confidence level in (0, 1).
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    (float, float)
        Lower and upper bounds.

    References
    ----------
    .. [1] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*,
       Chapman & Hall, 1993, ch. 13 (the percentile interval).
    """
    res = stats.bootstrap(
        samples,
        statistic,
        paired=False,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ratio(a: NDArray[np.float64], b: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def bias_ci(
    post: ArrayLike,
    reference: ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(post) / mean(reference)`` (independent resampling)."""
    a = np.asarray(post, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.size < 2 or b.size < 2 or n_resamples == 0:
        return math.nan, math.nan
    return percentile_ci((a, b), _ratio, confidence=confidence, n_resamples=n_resamples,
                         seed=seed)


def _lookup(
    traces: Any, signal: str
) -> dict[tuple[str, str], RunSeries]:
    from llenergymeasure.analysis.corpus import Corpus

    if isinstance(traces, Mapping) and traces and all(
        isinstance(v, RunSeries) for v in traces.values()
    ):
        out: dict[tuple[str, str], RunSeries] = {}
        for key, item in traces.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ScoringError(f"a RunSeries must be keyed by (trace_id, run_id), got {key!r}")
            out[(str(key[0]), str(key[1]))] = item
        return out
    corpus = Corpus.build(traces, signals=(signal,))
    return {r.key: RunSeries(r.signals[signal], r.times, r.reference_start) for r in corpus}


def _to_int(v: Any) -> int | None:
    if v is None or v is pd.NA:
        return None
    try:
        if isinstance(v, float) and math.isnan(v):
            return None
    except TypeError:
        return None
    return int(v)


def score(
    results: pd.DataFrame,
    traces: Mapping[Any, Any] | Sequence[Any],
    *,
    tolerance_s: float = 5.0,
    signal: str = "latency_ms",
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    measure_samples: int | None = None,
) -> pd.DataFrame:
    """Add the scoring columns to a replay frame (one row per run x criterion setting).

    Parameters
    ----------
    results : DataFrame
        The replay frame: ``trace_id``, ``run_id``, ``stop_index`` (int or NA) and
        optionally ``reference_start`` (used when present and not null; otherwise the
        run's own ``reference_start``).
    traces : mapping or sequence
        The replayed traces: a sequence of :class:`~llenergymeasure.traces.Trace`
        (identified as replay does), a mapping ``trace_id -> Trace``, or a mapping
        ``(trace_id, run_id) -> RunSeries``.
    tolerance_s : float, default 5.0
        Half-width of the "exact" waste band, seconds.
    signal : str, default "latency_ms"
        The signal whose means are compared.
    confidence, n_resamples, seed
        Bootstrap settings of the bias CI (seeded per row: ``seed + row position``).
    measure_samples : int, optional
        Compare only this many post-stop samples (a fixed measurement phase); all of
        them when None.

    Returns
    -------
    DataFrame
        A copy of ``results`` with ``reference_start``, ``reference_start_s``,
        ``reference_mean``, ``has_reference``, ``never_stopped``, ``wee``, ``wee_s``,
        ``abs_wee_s``, ``waste_band``, ``premature``, ``post_mean``,
        ``relative_bias``, ``bias_ci_low``, ``bias_ci_high`` (ratio CI), ``effect``,
        ``lb_effect`` and ``outcome`` (premature / exact / over / under /
        never_stopped / no_reference).

    Raises
    ------
    ScoringError
        On a missing column, an unknown trace or run, or an out-of-range index.
    """
    for col in ("trace_id", "run_id", "stop_index"):
        if col not in results.columns:
            raise ScoringError(f"results frame lacks column {col!r}")
    if tolerance_s < 0:
        raise ScoringError(f"tolerance_s must be >= 0, got {tolerance_s}")
    runs = _lookup(traces, signal)
    recs: list[dict[str, Any]] = []
    has_ref_col = "reference_start" in results.columns
    for pos, row in enumerate(results.itertuples(index=False)):
        rowd = row._asdict()
        key = (str(rowd["trace_id"]), str(rowd["run_id"]))
        if key not in runs:
            raise ScoringError(f"row {pos}: no trace {key[0]!r} run {key[1]!r} among the traces")
        rs = runs[key]
        x = np.asarray(rs.x, dtype=np.float64)
        t = rs.times()
        n = x.size
        k = _to_int(rowd["stop_index"])
        ref = _to_int(rowd["reference_start"]) if has_ref_col else None
        if ref is None:
            ref = rs.reference_start
        if k is not None and not (0 <= k < n):
            raise ScoringError(f"row {pos}: stop_index {k} outside 0..{n - 1} ({key})")
        if ref is not None and ref >= n:
            raise ScoringError(f"row {pos}: reference_start {ref} outside -1..{n - 1} ({key})")
        rec: dict[str, Any] = dict.fromkeys(
            ("wee_s", "abs_wee_s", "post_mean", "relative_bias", "bias_ci_low",
             "bias_ci_high", "effect", "lb_effect", "reference_start_s", "reference_mean"),
            math.nan,
        )
        rec.update(wee=pd.NA, waste_band=None, premature=False)
        has_ref = ref is not None and ref >= 0
        rec["reference_start"] = pd.NA if ref is None else ref
        rec["has_reference"] = has_ref
        rec["never_stopped"] = k is None
        if has_ref:
            rec["reference_start_s"] = float(t[ref - 1]) if ref > 0 else 0.0
            rec["reference_mean"] = float(x[ref:].mean())
        if k is not None and has_ref:
            wee = (k + 1) - ref
            waste = float(t[k]) - rec["reference_start_s"]
            rec.update(wee=wee, wee_s=waste, abs_wee_s=abs(waste), premature=wee < 0)
            rec["waste_band"] = waste_band(waste, tolerance_s)
            post = x[k + 1 :] if measure_samples is None else x[k + 1 : k + 1 + measure_samples]
            if post.size:
                rec["post_mean"] = float(post.mean())
                rec["relative_bias"] = rec["post_mean"] / rec["reference_mean"] - 1.0
            lo, hi = bias_ci(
                post, x[ref:], confidence=confidence, n_resamples=n_resamples, seed=seed + pos
            )
            rec["bias_ci_low"], rec["bias_ci_high"] = lo, hi
            rec["effect"], rec["lb_effect"] = effect_size(lo, hi)
        if not has_ref:
            rec["outcome"] = "no_reference"
        elif k is None:
            rec["outcome"] = "never_stopped"
        elif rec["premature"]:
            rec["outcome"] = "premature"
        else:
            rec["outcome"] = rec["waste_band"]
        recs.append(rec)
    add = pd.DataFrame(recs, index=results.index)
    add["wee"] = add["wee"].astype("Int64")
    add["reference_start"] = add["reference_start"].astype("Int64")
    out = results.drop(columns=[c for c in add.columns if c in results.columns]).copy()
    return pd.concat([out, add], axis=1)


def _median_ci(
    values: NDArray[np.float64], confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size < 2 or np.ptp(v) == 0:
        m = float(np.median(v)) if v.size else math.nan
        return m, m
    return percentile_ci((v,), np.median, confidence=confidence, n_resamples=n_resamples,
                         seed=seed)


def _setting_columns(scored: pd.DataFrame) -> list[str]:
    cols = [c for c in ("criterion", "spec") if c in scored.columns]
    if not cols:
        raise ScoringError("scored frame needs a 'criterion' or 'spec' column to group by")
    return cols


def summarize(
    scored: pd.DataFrame,
    *,
    by: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Aggregate a scored frame per criterion setting.

    For each group (by default ``criterion`` and ``spec``): ``n_runs``,
    ``n_with_reference``, and for ``seconds_used``, ``samples_used``, ``wee``,
    ``abs_wee_s`` and ``abs_relative_bias``: ``median_<m>``, ``iqr_<m>`` and the
    bootstrap CI of the median ``median_<m>_lo`` / ``median_<m>_hi``; the rates
    ``premature_rate``, ``never_stopped_rate``, ``over_rate``, ``under_rate``,
    ``exact_rate`` (over runs with a reference) and ``effect_rate`` (share of stopped
    runs with a non-zero effect). Medians skip NaN (never-stopped or unreferenced runs).
    """
    keys = list(by) if by is not None else _setting_columns(scored)
    df = scored.copy()
    df["abs_relative_bias"] = df["relative_bias"].abs()
    metrics = ["seconds_used", "samples_used", "wee", "abs_wee_s", "abs_relative_bias"]
    rows = []
    for gi, (gkey, g) in enumerate(df.groupby(keys, sort=True, dropna=False)):
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        rec: dict[str, Any] = dict(zip(keys, gkey, strict=True))
        ref = g[g["has_reference"].astype(bool)]
        rec["n_runs"] = len(g)
        rec["n_with_reference"] = len(ref)
        for m in metrics:
            if m not in g.columns:
                continue
            v = pd.to_numeric(g[m], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            fin = v[np.isfinite(v)]
            rec[f"median_{m}"] = float(np.median(fin)) if fin.size else math.nan
            rec[f"iqr_{m}"] = (
                float(np.subtract(*np.percentile(fin, [75, 25]))) if fin.size else math.nan
            )
            lo, hi = _median_ci(v, confidence, n_resamples, seed + gi)
            rec[f"median_{m}_lo"], rec[f"median_{m}_hi"] = lo, hi
        nref = max(len(ref), 1)
        has = len(ref) > 0
        prem = float(ref["premature"].astype(bool).sum())
        rec["premature_rate"] = prem / nref if has else math.nan
        rec["never_stopped_rate"] = float(g["never_stopped"].astype(bool).mean())
        for band in ("over", "under", "exact"):
            hits = float((ref["waste_band"] == band).sum())
            rec[f"{band}_rate"] = hits / nref if has else math.nan
        eff = pd.to_numeric(ref["effect"], errors="coerce").dropna()
        rec["effect_rate"] = float((eff > 0).mean()) if len(eff) else math.nan
        rows.append(rec)
    return pd.DataFrame(rows)


def pareto_front(
    summary: pd.DataFrame,
    cost: str = "median_seconds_used",
    quality: str = "median_abs_wee_s",
) -> pd.DataFrame:
    """Rows of ``summary`` not dominated in (``cost``, ``quality``), both minimised.

    A row dominates another when it is no worse on both and strictly better on one.
    Rows with a NaN in either column are left out. The front is sorted by cost; ties
    (identical points) are all kept.
    """
    for col in (cost, quality):
        if col not in summary.columns:
            raise ScoringError(f"summary lacks column {col!r}")
    c = pd.to_numeric(summary[cost], errors="coerce").to_numpy(dtype=np.float64)
    q = pd.to_numeric(summary[quality], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(c) & np.isfinite(q)
    idx = np.flatnonzero(ok)
    cc, qq = c[idx], q[idx]
    le = (cc[:, None] <= cc[None, :]) & (qq[:, None] <= qq[None, :])
    lt = (cc[:, None] < cc[None, :]) | (qq[:, None] < qq[None, :])
    dominated = (le & lt).any(axis=0)
    keep = idx[~dominated]
    front = summary.iloc[keep]
    return front.sort_values([cost, quality], kind="mergesort")
