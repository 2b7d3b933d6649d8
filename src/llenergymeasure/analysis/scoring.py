r"""Score replayed stops against reference steady states, and summarise per setting.

Conventions (those of replay): a stop at sample index $k$ ends warmup after
sample $k$, so the measured samples are $x_{k+1}, x_{k+2}, \dots$; a reference
start $r$ is the first steady sample; $t_i$ is the end time (s) of sample $i$
and $t_{-1} = 0$.

Per row (`score`, one implementation, vectorised with prefix sums per run):

$$
\mathrm{WEE} = (k + 1) - r \ \text{(samples)}, \qquad
\mathrm{waste} = t_k - t_{r-1} \ \text{(s, signed)}, \qquad
\mathrm{bias} = \bar x_{k+1:} / \bar x_{r:} - 1,
$$

so a stop whose first measured sample is the reference start has WEE 0. A stop
is *premature* when $k + 1 < r$. The band of a stop is "exact" when it lies
within the tolerance of a `Band` (seconds, samples or a fraction of the run;
default: 5 s or 50 samples, whichever is tighter), else "over" or "under". The
relative bias has an optional seeded percentile bootstrap CI of the ratio of
means (`n_resamples=0` turns it off) and Traini et al.'s effect size.

Per setting (`summarize`): medians, rates, and the **equal-cost fixed-count
baseline**: the fixed count $n$ equal to the rounded mean `samples_used` of the
setting over its runs with a reference (a fixed count $n$ stops at index
$n - 1$ and is premature iff $n < r$), evaluated on the same runs, with the
paired per-run differences (`premature_lift`, negative is better) and a seeded
bootstrap 95% CI over runs. `fixed_count_frontier` gives the whole fixed-count
curve (cost against premature rate, mean |WEE| and P90 |bias|).

References
----------
- L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
  assessment of steady state performance in Java software: are we there yet?",
  Empirical Software Engineering 28(1):13, 2023 (WEE, time waste, effect size,
  the 5 s band).
- T. Kalibera and R. Jones, "Rigorous benchmarking in reasonable time", ISMM 2013.
- B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
  Hall, 1993 (percentile intervals, paired resampling of units).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llenergymeasure.analysis.corpus import Corpus, CorpusError

__all__ = [
    "DEFAULT_BAND",
    "EQUAL_COST_COLUMNS",
    "LATE_START_SAMPLES",
    "Band",
    "ScoringError",
    "bias_ci",
    "describe_versus_fixed",
    "effect_size",
    "fixed_count_frontier",
    "fixed_count_scores",
    "numbers",
    "p90_abs",
    "pareto_front",
    "percentile_ci",
    "row_scores",
    "score",
    "summarize",
    "versus_verdict",
]

logger = logging.getLogger(__name__)


class ScoringError(ValueError):
    """Bad input to scoring; the message names the row, trace, run or column."""


_BAND_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|%|samples?)?\s*$")


class Band(BaseModel):
    """Half-width of the "exact" band around the reference start.

    Any of `seconds`, `samples` and `fraction` (of the run's samples) may be
    given; a stop is "exact" when it is within every tolerance that applies to
    its run (seconds only where the run has sample times), else "over" (late)
    or "under" (early). The default, 5 s or 50 samples whichever is tighter, is
    Traini et al.'s 5 s for 100 ms JMH iterations (50 iterations) and 1 s (50
    inferences) for 20 ms LLM inferences; without sample times it is 50 samples.

    Examples
    --------
    >>> [str(Band.parse(b)) for b in ("5s", "10", "2%", "5s+50")]
    ['5s', '10', '2%', '5s+50']
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float | None = Field(None, gt=0, description="Tolerance in seconds.")
    samples: int | None = Field(None, ge=1, description="Tolerance in samples.")
    fraction: float | None = Field(
        None, gt=0, lt=1, description="Tolerance as a fraction of the run's samples."
    )

    @model_validator(mode="after")
    def _one_at_least(self) -> Band:
        if self.seconds is None and self.samples is None and self.fraction is None:
            raise ValueError("a band needs seconds, samples or a fraction")
        return self

    @classmethod
    def parse(cls, text: str | float | Band) -> Band:
        """A band from `"5s"` (seconds), `"10"` (samples), `"2%"` (of the run) or a Band.

        Several tolerances joined by `+` all apply (`"5s+50"`, the default).

        Raises
        ------
        ScoringError
            A string that is none of these.
        """
        if isinstance(text, Band):
            return text
        kw: dict[str, Any] = {}
        for part in str(text).split("+"):
            m = _BAND_RE.match(part)
            if m is None:
                raise ScoringError(f"cannot read the band {text!r}: use '5s' (seconds), "
                                   "'10' (samples), '2%' (of the run) or e.g. '5s+50'")
            value, unit = float(m.group(1)), m.group(2)
            if unit == "s":
                kw["seconds"] = value
            elif unit == "ms":
                kw["seconds"] = value / 1e3
            elif unit == "%":
                kw["fraction"] = value / 100
            else:
                if not value.is_integer():
                    raise ScoringError(f"band {text!r}: a number of samples is an integer")
                kw["samples"] = int(value)
        try:
            return cls(**kw)
        except ValueError as exc:
            raise ScoringError(f"band {text!r}: {exc}") from exc

    def __str__(self) -> str:
        parts = []
        if self.seconds is not None:
            parts.append(f"{self.seconds:g}s")
        if self.samples is not None:
            parts.append(f"{self.samples}")
        if self.fraction is not None:
            parts.append(f"{100 * self.fraction:g}%")
        return "+".join(parts)

    def describe(self) -> str:
        """The band in words, for reports."""
        parts = []
        if self.seconds is not None:
            parts.append(f"±{self.seconds:g} s")
        if self.samples is not None:
            parts.append(f"±{self.samples} samples")
        if self.fraction is not None:
            parts.append(f"±{100 * self.fraction:g}% of the run")
        return " and ".join(parts)

    def classify(self, wee: ArrayLike, waste_s: ArrayLike, n: ArrayLike) -> NDArray[np.object_]:
        """`"exact"`, `"over"` or `"under"` per row; None where the WEE is unknown.

        Parameters
        ----------
        wee : array of float
            WEE in samples (NaN: no stop or no reference).
        waste_s : array of float
            Time waste in seconds (NaN where the run has no times).
        n : array of int
            Samples of each row's run.
        """
        w = np.asarray(wee, dtype=np.float64)
        ws = np.asarray(waste_s, dtype=np.float64)
        size = np.asarray(n, dtype=np.float64)
        inside = np.ones(w.shape, dtype=bool)
        if self.samples is not None:
            inside &= np.abs(w) < self.samples
        if self.fraction is not None:
            inside &= np.abs(w) < self.fraction * size
        if self.seconds is not None:
            with np.errstate(invalid="ignore"):
                inside &= ~(np.abs(ws) >= self.seconds)  # NaN seconds: not applicable
        out = np.where(inside, "exact", np.where(w > 0, "over", "under")).astype(object)
        out[~np.isfinite(w)] = None
        return out


#: The default band: 5 s or 50 samples, whichever is tighter (see `Band`).
DEFAULT_BAND = Band(seconds=5.0, samples=50)

#: A run's reference start is *late* (warmup really matters) from this many samples on.
LATE_START_SAMPLES = 50


def effect_size(ci_low: float, ci_high: float) -> tuple[float, float]:
    """Traini et al.'s effect and lower-bound effect of a ratio CI (fractions, not %).

    ``effect`` is 0 when the CI holds 1, else ``|(lo + hi)/2 - 1|``; ``lb_effect`` is 0
    when the CI holds 1, else the distance from 1 of the nearer bound.
    """
    effect, lb = _effects(np.array([ci_low], dtype=np.float64),
                          np.array([ci_high], dtype=np.float64))
    return float(effect[0]), float(lb[0])


def percentile_ci(
    samples: tuple[NDArray[np.float64], ...],
    statistic: Callable[..., Any],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Seeded percentile bootstrap CI of ``statistic`` over independent ``samples``.

    One call of `scipy.stats.bootstrap` (`method="percentile"`, samples
    resampled independently, ``statistic`` vectorised with an ``axis`` argument, draws
    from `numpy.random.default_rng(seed)`): the interval behind `bias_ci`, the
    per-setting medians of `summarize` and the forest plot's CIs.

    Parameters
    ----------
    samples : tuple of numpy.ndarray
        One or more samples, each of at least 2 values.
    statistic : callable
        `statistic(*samples, axis=-1)`, e.g. `numpy.median`.
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
    - B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*,
      Chapman & Hall, 1993, ch. 13 (the percentile interval).
    """
    from scipy import stats

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


# ------------------------------------------------------------------- the run store
@dataclass(frozen=True)
class _Store:
    """Samples, times and per-run prefix sums of a corpus, concatenated (one array each).

    Samples $[a, b)$ of run $i$ sum to `cs[coff[i] + b] - cs[coff[i] + a]`.
    """

    x: NDArray[np.float64]
    t: NDArray[np.float64]
    cs: NDArray[np.float64]
    off: NDArray[np.int64]
    coff: NDArray[np.int64]
    n: NDArray[np.int64]
    ref: NDArray[np.float64]

    @classmethod
    def of(cls, corpus: Corpus, signal: str) -> _Store:
        runs = list(corpus)
        xs = [r.signal(signal) for r in runs]
        n = np.asarray([x.shape[0] for x in xs], dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64) if len(n) else n
        cat = np.concatenate(xs) if xs else np.zeros(0)
        ts = [r.times if r.times is not None else np.full(x.shape[0], np.nan)
              for r, x in zip(runs, xs, strict=True)]
        cs = np.concatenate([np.concatenate([[0.0], np.cumsum(x)]) for x in xs]) if xs \
            else np.zeros(0)
        ref = np.asarray([np.nan if r.reference_start is None else r.reference_start
                          for r in runs], dtype=np.float64)
        return cls(cat, np.concatenate(ts) if ts else np.zeros(0), cs, off,
                   off + np.arange(len(n), dtype=np.int64), n, ref)

    def span_mean(self, run: NDArray[np.int64], a: NDArray[np.int64],
                  b: NDArray[np.int64]) -> NDArray[np.float64]:
        """Mean of samples $[a, b)$ of each run (NaN where empty)."""
        c = self.coff[run]
        size = (b - a).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(size > 0, (self.cs[c + b] - self.cs[c + a]) / size, np.nan)

    def metrics(self, run: NDArray[np.int64], k: NDArray[np.float64], r: NDArray[np.float64],
                measure_samples: int | None = None) -> dict[str, NDArray[np.float64]]:
        """WEE, time waste, post-stop and reference means and bias for stops `k` (NaN: none).

        `r` is the reference start of each row (NaN unknown, -1 none); indices
        must already be checked against the run lengths.
        """
        n = self.n[run]
        stopped = np.isfinite(k)
        has_ref = np.isfinite(r) & (r >= 0)
        ki = np.where(stopped, k, 0).astype(np.int64)
        ri = np.where(has_ref, r, 0).astype(np.int64)
        off = self.off[run]
        ref_s = np.where(has_ref & (ri > 0), self.t[off + np.maximum(ri - 1, 0)], 0.0)
        ref_s = np.where(has_ref, ref_s, np.nan)
        ref_mean = np.where(has_ref, self.span_mean(run, ri, n), np.nan)
        t_k = np.where(stopped, self.t[off + np.minimum(ki, np.maximum(n - 1, 0))]
                       if self.t.size else np.nan, np.nan)
        end = n if measure_samples is None else np.minimum(n, ki + 1 + measure_samples)
        post = np.where(stopped, self.span_mean(run, np.minimum(ki + 1, n), end), np.nan)
        wee, waste, bias = _combine(k, r, t_k, ref_s, post, ref_mean)
        return {"wee": wee, "wee_s": waste, "post_mean": post, "relative_bias": bias,
                "reference_start_s": ref_s, "reference_mean": ref_mean}


def _combine(k: NDArray[np.float64], r: NDArray[np.float64], t_k: NDArray[np.float64],
             ref_s: NDArray[np.float64], post_mean: NDArray[np.float64],
             ref_mean: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """The one definition of WEE (samples), time waste (s) and relative bias."""
    has_ref = np.isfinite(r) & (r >= 0)
    ok = has_ref & np.isfinite(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        wee = np.where(ok, k + 1 - r, np.nan)
        waste = np.where(ok, t_k - ref_s, np.nan)
        bias = np.where(ok, post_mean / ref_mean - 1.0, np.nan)
    return wee, waste, bias


def numbers(col: Any) -> NDArray[np.float64]:
    """A column as float64 (NaN for missing or non-numeric cells, e.g. `<NA>` stops)."""
    return pd.to_numeric(pd.Series(col), errors="coerce").to_numpy(dtype=np.float64,
                                                                   na_value=np.nan)


def row_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """WEE, time waste and relative bias of replay rows, from the replay columns alone.

    Uses the same definitions as `score` (`stop_index`, `reference_start`,
    `stop_time_s`, `reference_start_s`, `post_stop_mean`, `reference_mean`),
    for figures drawn from a replay frame without its traces.

    Returns
    -------
    DataFrame
        `wee` (Int64), `wee_s`, `abs_wee_s`, `relative_bias`, index of `frame`.

    Raises
    ------
    ScoringError
        A replay column is missing.
    """
    need = ("stop_index", "reference_start", "stop_time_s", "reference_start_s",
            "post_stop_mean", "reference_mean")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ScoringError(f"the frame has no {missing[0]!r} column, needed to derive the "
                           "scores (pass a replay or scored frame)")
    wee, waste, bias = _combine(*(numbers(frame[c]) for c in need[:2]),
                                numbers(frame["stop_time_s"]),
                                numbers(frame["reference_start_s"]),
                                numbers(frame["post_stop_mean"]),
                                numbers(frame["reference_mean"]))
    return pd.DataFrame({
        "wee": pd.array(np.where(np.isfinite(wee), wee, np.nan), dtype="Float64").astype("Int64"),
        "wee_s": waste, "abs_wee_s": np.abs(waste), "relative_bias": bias,
    }, index=frame.index)


# ------------------------------------------------------------------------- score
def _effects(lo: NDArray[np.float64], hi: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """`effect_size` of many CIs at once."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    holds = ok & (lo <= 1.0) & (hi >= 1.0)
    centre = 0.5 * (lo + hi)
    near = np.where(hi < 1.0, hi, lo)
    effect = np.where(ok, np.where(holds, 0.0, np.abs(centre - 1.0)), np.nan)
    lb = np.where(ok, np.where(holds, 0.0, np.abs(near - 1.0)), np.nan)
    return effect, lb


def _corpus_of(traces: Any, signal: str) -> Corpus:
    try:
        return Corpus.build(traces, signals=(signal,))
    except CorpusError as exc:
        raise ScoringError(str(exc)) from exc


def score(
    results: pd.DataFrame,
    traces: Any,
    *,
    band: Band | str | None = None,
    tolerance_s: float | None = None,
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
        The replay frame: `trace_id`, `run_id`, `stop_index` (int or NA) and
        optionally `reference_start` (used when present and not null; otherwise
        the run's own reference start).
    traces : Corpus, or anything `Corpus.build` accepts
        The replayed runs (trace files, folders, `Trace` objects, a mapping
        `{trace_id: Trace or array}`), identified as replay identifies them.
    band : Band or str, optional
        Half-width of the "exact" band (`"5s"`, `"50"` samples, `"2%"` of the
        run; default `DEFAULT_BAND`, 5 s or 50 samples whichever is tighter).
    tolerance_s : float, optional
        Shorthand for `band=Band(seconds=tolerance_s)`.
    signal : str, default "latency_ms"
        The signal whose means are compared.
    confidence, n_resamples, seed
        Bootstrap settings of the bias CI (seeded per row: `seed + row position`);
        `n_resamples=0` skips the CI (NaN), the only per-row loop of scoring.
    measure_samples : int, optional
        Compare only this many post-stop samples (a fixed measurement phase); all
        of them when None.

    Returns
    -------
    DataFrame
        A copy of `results` with `reference_start`, `reference_start_s`,
        `reference_mean`, `has_reference`, `never_stopped`, `wee`, `wee_s`,
        `abs_wee_s`, `waste_band`, `premature`, `post_mean`, `relative_bias`,
        `bias_ci_low`, `bias_ci_high` (ratio CI), `effect`, `lb_effect` and
        `outcome` (premature / exact / over / under / never_stopped /
        no_reference).

    Raises
    ------
    ScoringError
        On a missing column, an unknown trace or run, an out-of-range index or a
        bad band.
    """
    for col in ("trace_id", "run_id", "stop_index"):
        if col not in results.columns:
            raise ScoringError(f"results frame lacks column {col!r}")
    if tolerance_s is not None:
        if band is not None:
            raise ScoringError("give band or tolerance_s, not both")
        if not tolerance_s > 0:
            raise ScoringError(f"tolerance_s must be > 0, got {tolerance_s}")
        band = Band(seconds=tolerance_s)
    bnd = DEFAULT_BAND if band is None else Band.parse(band)
    if n_resamples < 0:
        raise ScoringError(f"n_resamples must be >= 0, got {n_resamples}")
    corpus = _corpus_of(traces, signal)
    store = _Store.of(corpus, signal)
    try:
        run = corpus.positions(results["trace_id"], results["run_id"])
    except CorpusError as exc:
        raise ScoringError(str(exc)) from exc
    k = numbers(results["stop_index"])
    ref = store.ref[run]
    if "reference_start" in results.columns:
        given = numbers(results["reference_start"])
        ref = np.where(np.isfinite(given), given, ref)
    n = store.n[run]
    bad = np.isfinite(k) & ((k < 0) | (k >= n))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScoringError(f"row {i}: stop_index {int(k[i])} outside 0..{n[i] - 1} "
                           f"({results['trace_id'].iloc[i]!r}, {results['run_id'].iloc[i]!r})")
    bad = np.isfinite(ref) & ((ref >= n) | (ref < -1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScoringError(f"row {i}: reference_start {int(ref[i])} outside -1..{n[i] - 1} "
                           f"({results['trace_id'].iloc[i]!r}, {results['run_id'].iloc[i]!r})")
    m = store.metrics(run, k, ref, measure_samples)
    has_ref = np.isfinite(ref) & (ref >= 0)
    stopped = np.isfinite(k)
    premature = has_ref & stopped & (m["wee"] < 0)
    bands = bnd.classify(m["wee"], m["wee_s"], n)
    lo = np.full(len(results), np.nan)
    hi = np.full(len(results), np.nan)
    if n_resamples > 0:
        end = n if measure_samples is None else np.minimum(n, np.where(stopped, k, 0) + 1
                                                           + measure_samples)
        for i in np.flatnonzero(has_ref & stopped):
            o = store.off[run[i]]
            post = store.x[o + int(k[i]) + 1: o + int(end[i])]
            steady = store.x[o + int(ref[i]): o + int(n[i])]
            lo[i], hi[i] = bias_ci(post, steady, confidence=confidence,
                                   n_resamples=n_resamples, seed=seed + int(i))
    effect, lb_effect = _effects(lo, hi)
    outcome = np.where(~has_ref, "no_reference",
                       np.where(~stopped, "never_stopped",
                                np.where(premature, "premature", bands.astype(str))))
    add = pd.DataFrame({
        "reference_start": pd.array(np.where(np.isfinite(ref), ref, np.nan),
                                    dtype="Float64").astype("Int64"),
        "reference_start_s": m["reference_start_s"],
        "reference_mean": m["reference_mean"],
        "has_reference": has_ref,
        "never_stopped": ~stopped,
        "wee": pd.array(m["wee"], dtype="Float64").astype("Int64"),
        "wee_s": m["wee_s"],
        "abs_wee_s": np.abs(m["wee_s"]),
        "waste_band": bands,
        "premature": premature,
        "post_mean": m["post_mean"],
        "relative_bias": m["relative_bias"],
        "bias_ci_low": lo,
        "bias_ci_high": hi,
        "effect": effect,
        "lb_effect": lb_effect,
        "outcome": outcome.astype(object),
    }, index=results.index)
    out = results.drop(columns=[c for c in add.columns if c in results.columns]).copy()
    return pd.concat([out, add], axis=1)


# ----------------------------------------------------------------------- summarize
def _median_ci(
    values: NDArray[np.float64], confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if n_resamples == 0:
        return math.nan, math.nan
    if v.size < 2 or np.ptp(v) == 0:
        m = float(np.median(v)) if v.size else math.nan
        return m, m
    return percentile_ci((v,), np.median, confidence=confidence, n_resamples=n_resamples,
                         seed=seed)


def _mean_ci(d: NDArray[np.float64], confidence: float, n_resamples: int,
             seed: int) -> tuple[float, float]:
    """Seeded percentile bootstrap CI of the mean of paired differences over runs.

    Runs are resampled with replacement (the unit of a paired design); a constant
    `d` gives the degenerate interval `[d, d]`.
    """
    if d.size == 0 or n_resamples == 0:
        return math.nan, math.nan
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // d.size)
    for a in range(0, n_resamples, step):
        b = min(n_resamples, a + step)
        means[a:b] = d[rng.integers(0, d.size, size=(b - a, d.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def p90_abs(v: ArrayLike) -> float:
    """The 90th percentile of `|v|` over its finite values (NaN when there are none): the
    "P90 |relative bias|" of every comparison."""
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.quantile(np.abs(v), 0.9)) if v.size else math.nan


def fixed_count_scores(corpus: Any, n: int | NDArray[np.int64], *,
                       trace_ids: Sequence[Any] | None = None,
                       run_ids: Sequence[Any] | None = None,
                       reference: ArrayLike | None = None,
                       signal: str = "latency_ms") -> pd.DataFrame:
    """Scores of a fixed count of `n` samples on runs of a corpus.

    A fixed count $n$ stops after $n$ samples (stop index $n - 1$; no stop on a
    run shorter than $n$), so it is premature iff $n < r$ and its WEE is $n - r$.

    Parameters
    ----------
    corpus : Corpus, or anything `Corpus.build` accepts
        The runs.
    n : int or array of int
        The count (one, or one per run).
    trace_ids, run_ids : sequence, optional
        Which runs (default: every run of the corpus, in order).
    reference : array of float, optional
        Reference start per run (NaN unknown, -1 none); default: the corpus's.
    signal : str, default "latency_ms"
        The signal whose means give the bias.

    Returns
    -------
    DataFrame
        `trace_id`, `run_id`, `n`, `reference_start`, `premature`, `wee`, `wee_s`,
        `relative_bias` (NaN where the run has no reference).
    """
    c = _corpus_of(corpus, signal)
    return _fixed(_Store.of(c, signal), c, n, trace_ids, run_ids, reference)


def _fixed(store: _Store, corpus: Corpus, n: Any, trace_ids: Any, run_ids: Any,
           reference: Any) -> pd.DataFrame:
    if trace_ids is None or run_ids is None:
        keys = corpus.keys()
        trace_ids, run_ids = [t for t, _ in keys], [r for _, r in keys]
    run = corpus.positions(trace_ids, run_ids)
    count = np.broadcast_to(np.asarray(n, dtype=np.int64), run.shape)
    if (count < 1).any():
        raise ScoringError(f"a fixed count is at least 1 sample, got {int(count.min())}")
    ref = store.ref[run] if reference is None else np.asarray(reference, dtype=np.float64)
    k = np.where(count <= store.n[run], count - 1, np.nan).astype(np.float64)
    m = store.metrics(run, k, ref)
    has_ref = np.isfinite(ref) & (ref >= 0)
    return pd.DataFrame({
        "trace_id": [str(t) for t in trace_ids], "run_id": [str(r) for r in run_ids],
        "n": count, "reference_start": ref,
        "premature": has_ref & (count < ref),
        "wee": np.where(has_ref, count - ref, np.nan),
        "wee_s": m["wee_s"], "relative_bias": m["relative_bias"],
    })


def versus_verdict(lo: float, hi: float) -> str:
    """The verdict on a lift's CI `[lo, hi]` (setting minus fixed count, negative better):
    "better" when it lies below 0, "worse" above, "not distinguishable" when it holds 0,
    "unknown" without a CI."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "unknown"
    if hi < 0:
        return "better"
    if lo > 0:
        return "worse"
    return "not distinguishable"


def summarize(
    scored: pd.DataFrame,
    *,
    corpus: Any = None,
    by: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    late_start: int = LATE_START_SAMPLES,
    signal: str = "latency_ms",
) -> pd.DataFrame:
    """Aggregate a scored frame per criterion setting, with the equal-cost fixed count.

    For each group (by default `criterion` and `spec`): `n_runs`,
    `n_with_reference`; for `seconds_used`, `samples_used`, `wee`, `abs_wee_s`
    and `abs_relative_bias`: `median_<m>`, `iqr_<m>` and the bootstrap CI of the
    median `median_<m>_lo` / `median_<m>_hi`; the rates `premature_rate`,
    `never_stopped_rate`, `over_rate`, `under_rate`, `exact_rate` (over runs with
    a reference) and `effect_rate` (share of stopped runs with a non-zero effect).

    The equal-cost fixed-count baseline, on the group's runs with a reference:
    `fixed_n_same_cost` (the rounded mean `samples_used`), `premature_rate_fixed`,
    `premature_lift` (the setting's premature rate minus the fixed count's, per
    run paired; negative is better) with its bootstrap CI over runs
    `premature_lift_ci_low` / `premature_lift_ci_high`, `wee_lift` (mean |WEE|
    in samples, setting minus fixed count, on the runs where the setting
    stopped), `bias_p90_lift` (P90 of |relative bias|, setting minus fixed
    count; needs `corpus`), `versus_fixed` ("better" when the lift's CI lies
    below 0, "worse" above, else "not distinguishable"), and on the runs whose
    reference start is late (at least `late_start` samples): `n_late`,
    `premature_rate_late`, `premature_rate_late_fixed`.

    Parameters
    ----------
    scored : DataFrame
        From `score`.
    corpus : Corpus, or anything `Corpus.build` accepts, optional
        The scored runs; needed for `bias_p90_lift` only (NaN without it).
    by : sequence of str, optional
        Group columns (default `criterion`, `spec`).
    confidence, n_resamples, seed
        Bootstrap settings (`n_resamples=0`: no CIs, NaN).
    late_start : int, default `LATE_START_SAMPLES` (50)
        A reference start at or after this many samples is late.
    signal : str, default "latency_ms"
        The signal of the bias.

    Returns
    -------
    DataFrame
        One row per group.
    """
    keys = list(by) if by is not None else _setting_columns(scored)
    for col in ("has_reference", "premature", "samples_used", "reference_start"):
        if col not in scored.columns:
            raise ScoringError(f"scored frame lacks column {col!r} (pass the frame of score())")
    df = scored.copy()
    df["abs_relative_bias"] = df["relative_bias"].abs()
    store = c = None
    if corpus is not None:
        c = _corpus_of(corpus, signal)
        store = _Store.of(c, signal)
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
            v = numbers(g[m])
            fin = v[np.isfinite(v)]
            rec[f"median_{m}"] = float(np.median(fin)) if fin.size else math.nan
            rec[f"iqr_{m}"] = (
                float(np.subtract(*np.percentile(fin, [75, 25]))) if fin.size else math.nan
            )
            lo, hi = _median_ci(v, confidence, n_resamples, seed + gi)
            rec[f"median_{m}_lo"], rec[f"median_{m}_hi"] = lo, hi
        nref = max(len(ref), 1)
        has = len(ref) > 0
        prem = ref["premature"].to_numpy(dtype=bool)
        rec["premature_rate"] = float(prem.mean()) if has else math.nan
        rec["never_stopped_rate"] = float(g["never_stopped"].astype(bool).mean())
        for band in ("over", "under", "exact"):
            hits = float((ref["waste_band"] == band).sum())
            rec[f"{band}_rate"] = hits / nref if has else math.nan
        eff = pd.to_numeric(ref["effect"], errors="coerce").dropna()
        rec["effect_rate"] = float((eff > 0).mean()) if len(eff) else math.nan
        rec.update(_equal_cost(ref, prem, store, c, confidence, n_resamples, seed + gi,
                               late_start))
        rows.append(rec)
    return pd.DataFrame(rows)


def _equal_cost(ref: pd.DataFrame, prem: NDArray[np.bool_], store: _Store | None,
                corpus: Corpus | None, confidence: float, n_resamples: int, seed: int,
                late_start: int) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(EQUAL_COST_COLUMNS, math.nan)
    out["versus_fixed"] = "unknown"
    out["n_late"] = 0
    if not len(ref):
        return out
    r = numbers(ref["reference_start"])
    n_fixed = max(1, math.floor(float(numbers(ref["samples_used"]).mean()) + 0.5))
    prem_fixed = n_fixed < r
    d = prem.astype(np.float64) - prem_fixed.astype(np.float64)
    lo, hi = _mean_ci(d, confidence, n_resamples, seed)
    wee = numbers(ref["wee"])
    stopped = np.isfinite(wee)
    out.update(
        fixed_n_same_cost=n_fixed,
        premature_rate_fixed=float(prem_fixed.mean()),
        premature_lift=float(d.mean()),
        premature_lift_ci_low=lo,
        premature_lift_ci_high=hi,
        wee_lift=(float(np.abs(wee[stopped]).mean() - np.abs(n_fixed - r[stopped]).mean())
                  if stopped.any() else math.nan),
        versus_fixed=versus_verdict(lo, hi),
    )
    late = r >= late_start
    out["n_late"] = int(late.sum())
    if late.any():
        out["premature_rate_late"] = float(prem[late].mean())
        out["premature_rate_late_fixed"] = float(prem_fixed[late].mean())
    if store is not None and corpus is not None:
        fx = _fixed(store, corpus, n_fixed, ref["trace_id"].tolist(), ref["run_id"].tolist(), r)
        bias = numbers(ref["relative_bias"])
        both = np.isfinite(bias) & np.isfinite(fx["relative_bias"].to_numpy())
        if both.any():
            fixed_bias = fx["relative_bias"].to_numpy()[both]
            out["bias_p90_lift"] = p90_abs(bias[both]) - p90_abs(fixed_bias)
    return out


#: The equal-cost fixed-count columns of `summarize` (plus `versus_fixed`, `n_late`).
EQUAL_COST_COLUMNS: tuple[str, ...] = (
    "fixed_n_same_cost",
    "premature_rate_fixed",
    "premature_lift",
    "premature_lift_ci_low",
    "premature_lift_ci_high",
    "wee_lift",
    "bias_p90_lift",
    "premature_rate_late",
    "premature_rate_late_fixed",
)


def fixed_count_frontier(
    corpus: Any,
    counts: Sequence[int] | None = None,
    *,
    reference: pd.DataFrame | str | None = None,
    signal: str = "latency_ms",
    late_start: int = LATE_START_SAMPLES,
) -> pd.DataFrame:
    """The fixed-count curve: cost against error of `fixed_count:n` for many `n`.

    Over the runs with a reference start (>= 0). A fixed count $n$ stops at
    index $n - 1$ (see `fixed_count_scores`); its cost is $n$ samples (the whole
    run when shorter) and the time at that sample.

    Parameters
    ----------
    corpus : Corpus, or anything `Corpus.build` accepts
        The runs.
    counts : sequence of int, optional
        The counts (default: about 40 values spaced geometrically from 1 to the
        longest run).
    reference : DataFrame or path, optional
        Reference starts to attach first (`Corpus.with_reference`).
    signal : str, default "latency_ms"
        The signal of the bias.
    late_start : int, default 50
        Reference starts from this many samples on count as late.

    Returns
    -------
    DataFrame
        Per count: `n`, `n_runs`, `samples_used` and `seconds_used` (means),
        `median_seconds_used`,
        `premature_rate`, `premature_rate_late`, `mean_abs_wee` (samples),
        `mean_abs_wee_s`, `median_abs_wee_s`, `p90_abs_bias`.
    """
    c = _corpus_of(corpus, signal)
    if reference is not None:
        c = c.with_reference(reference)
    c = Corpus(r for r in c if r.reference_start is not None and r.reference_start >= 0)
    if not len(c):
        raise ScoringError("no run has a reference start: the fixed-count curve needs some")
    store = _Store.of(c, signal)
    if counts is None:
        counts = np.unique(np.round(np.geomspace(1, int(store.n.max()), 40)).astype(np.int64))
    rows = []
    for n in counts:
        fx = _fixed(store, c, int(n), None, None, None)
        used = np.minimum(int(n), store.n)
        t_used = store.t[store.off + used - 1]
        r = fx["reference_start"].to_numpy()
        late = r >= late_start
        ws = fx["wee_s"].to_numpy()
        rows.append({
            "n": int(n), "n_runs": len(c),
            "samples_used": float(used.mean()),
            "seconds_used": float(np.nanmean(t_used)) if np.isfinite(t_used).any()
            else math.nan,
            "median_seconds_used": float(np.nanmedian(t_used)) if np.isfinite(t_used).any()
            else math.nan,
            "premature_rate": float(fx["premature"].mean()),
            "premature_rate_late": float(fx["premature"][late].mean()) if late.any()
            else math.nan,
            "mean_abs_wee": float(np.abs(fx["wee"]).mean()),
            "mean_abs_wee_s": float(np.nanmean(np.abs(ws))) if np.isfinite(ws).any()
            else math.nan,
            "median_abs_wee_s": float(np.nanmedian(np.abs(ws))) if np.isfinite(ws).any()
            else math.nan,
            "p90_abs_bias": p90_abs(fx["relative_bias"].to_numpy()),
        })
    return pd.DataFrame(rows)


def describe_versus_fixed(summary: pd.DataFrame, *, label: str = "spec") -> str:
    """Markdown sentences: which settings beat a fixed count of the same cost, which do not.

    Reads `versus_fixed`, `premature_lift` (and its CI) and `fixed_n_same_cost`
    of a `summarize` table: "better" when the CI of the premature-rate lift lies
    below 0, "worse" above 0, "not distinguishable" when it contains 0.
    """
    need = ("versus_fixed", "premature_lift", "premature_lift_ci_low",
            "premature_lift_ci_high", "fixed_n_same_cost", label)
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise ScoringError(f"summary lacks column {missing[0]!r} (pass the table of summarize())")

    def item(row: Any) -> str:
        n = row["fixed_n_same_cost"]
        n_txt = f"n={int(n)}" if math.isfinite(float(n)) else "n unknown"
        return (f"- `{row[label]}`: premature rate {100 * row['premature_lift']:+.1f} points "
                f"against `fixed_count:{n_txt}` (95% CI {100 * row['premature_lift_ci_low']:+.1f}"
                f" to {100 * row['premature_lift_ci_high']:+.1f})")

    lines = []
    for verdict, title in (("better", "Better than a fixed count of the same cost"),
                           ("worse", "Worse than a fixed count of the same cost"),
                           ("not distinguishable",
                            "Not distinguishable from a fixed count of the same cost"),
                           ("unknown", "Not compared (no reference start, or CIs off)")):
        rows = summary[summary["versus_fixed"] == verdict]
        lines.append(f"**{title}** ({len(rows)} of {len(summary)} settings)"
                     + (":" if len(rows) else "."))
        lines.append("")
        lines.extend(item(row) for _, row in rows.iterrows())
        if len(rows):
            lines.append("")
    return "\n".join(lines) + "\n"


def _setting_columns(scored: pd.DataFrame) -> list[str]:
    cols = [c for c in ("criterion", "spec") if c in scored.columns]
    if not cols:
        raise ScoringError("scored frame needs a 'criterion' or 'spec' column to group by")
    return cols


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
