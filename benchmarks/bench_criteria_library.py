"""Speed of the criteria-library criteria against direct re-computation baselines.

Each row times one criterion and a baseline that computes the same statistic the
obvious way (re-running numpy/scipy on every window or prefix, as the peers do),
side by side in this process, on the same seeded series. Ratios > 1 mean the
criterion is faster. Run: ``.venv/bin/python benchmarks/bench_criteria_library.py``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
from scipy import stats

from llenergymeasure.analysis.synthetic import make_trace
from llenergymeasure.criteria import make_criterion
from llenergymeasure.criteria._laaber import filter_outliers, pool
from llenergymeasure.criteria._sorted_window import linear_quantile
from llenergymeasure.criteria.laaber_kld import kde_similarity


def series(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    return 10.0 * (1 + np.exp(-i / 50)) * (1 + 0.01 * rng.standard_normal(n))


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def online(spec: str, x: np.ndarray) -> None:
    c = make_criterion(spec)
    for v in x:
        c.update(float(v))


def windows(x: np.ndarray, w: int) -> list[np.ndarray]:
    return [x[t - w + 1 : t + 1] for t in range(w - 1, len(x))]


def naive_iqr(x: np.ndarray, w: int = 20) -> list[float]:
    return [(np.percentile(v, 75) - np.percentile(v, 25)) / np.median(v) for v in windows(x, w)]


def naive_mad(x: np.ndarray, w: int = 20) -> list[float]:
    return [stats.median_abs_deviation(v, scale="normal") / np.median(v) for v in windows(x, w)]


def naive_rciw(x: np.ndarray, w: int = 30) -> list[float]:
    t = stats.t.ppf(1 - 0.0005, w - 1)
    return [2 * t * np.std(v, ddof=1) / math.sqrt(w) / np.mean(v) for v in windows(x, w)]


def scipy_bootstrap_rciw(x: np.ndarray, w: int = 30) -> list[float]:
    out = []
    for v in windows(x, w):
        ci = stats.bootstrap((v,), np.mean, method="percentile", confidence_level=0.999,
                             n_resamples=1000, random_state=0).confidence_interval
        out.append((ci.high - ci.low) / v.mean())
    return out


def naive_stdrel(x: np.ndarray) -> list[float]:
    """NVBench's own cost: a two-pass sd over all samples after every sample."""
    return [np.std(x[: i + 1], ddof=1) / np.mean(x[: i + 1]) for i in range(4, len(x))]


def naive_entropy(x: np.ndarray, w: int = 299) -> list[float]:
    counts: Counter[float] = Counter()
    hist: list[float] = []
    out = []
    for n, v in enumerate(x, 1):
        counts[float(v)] += 1
        p = np.fromiter(counts.values(), dtype=float) / n
        hist = [*hist, float(-np.sum(p * np.log2(p)))][-w:]
        if len(hist) >= 2:
            out.append(np.polyfit(np.arange(len(hist)), hist, 1)[0])
    return out


def exact_kld(x: np.ndarray, grid: int = 1000) -> list[float]:
    out = []
    for i in range(2, len(x)):
        a, b = x[: i + 1], x[:i]
        fences = [(np.percentile(v, 25) - 1.5 * stats.iqr(v),
                   np.percentile(v, 75) + 1.5 * stats.iqr(v)) for v in (a, b)]
        g = np.linspace(max(0.0, min(f[0] for f in fences)), max(f[1] for f in fences), grid)
        p = stats.gaussian_kde(a)(g)
        q = stats.gaussian_kde(b)(g)
        p, q = p / p.sum(), q / q.sum()
        out.append(2 ** (-np.sum(p * np.log2(p / q))) * 2 ** (-np.sum(q * np.log2(q / p))))
    return out


def binned_kld(x: np.ndarray) -> list[float]:
    return [kde_similarity(x[: i + 1], x[:i], 1000) for i in range(2, len(x))]


def fftconvolve_kde(v: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """The binned KDE through ``scipy.signal.fftconvolve`` (the first implementation)."""
    from scipy import signal

    g = len(grid)
    bw = float(np.std(v, ddof=1)) * len(v) ** -0.2
    delta = (grid[-1] - grid[0]) / (g - 1)
    if not (bw > 0 and delta > 0):
        return None
    pad = min(math.ceil(6.0 * bw / delta), 10 * g)
    e = g + 2 * pad
    u = (v - grid[0]) / delta + pad
    u = u[(u >= 0) & (u <= e - 1)]
    j = np.minimum(np.floor(u).astype(np.int64), e - 2)
    frac = u - j
    counts = (np.bincount(j, weights=1.0 - frac, minlength=e)
              + np.bincount(j + 1, weights=frac, minlength=e))
    off = np.arange(-(e - 1), e, dtype=np.float64) * (delta / bw)
    full = signal.fftconvolve(counts, np.exp(-0.5 * off * off), mode="full")
    dens = np.maximum(full[pad + e - 1 : pad + e - 1 + g], np.finfo(np.float64).tiny)
    return dens / dens.sum()


def per_step_kld(x: np.ndarray, size: int = 1000, g: int = 1000) -> list[float]:
    """Both pools subsampled, sorted and density-estimated afresh at every step."""
    out = []
    for i in range(2, len(x)):
        a, b = pool(x[: i + 1], i, size, 0), pool(x[:i], i - 1, size, 0)
        lo, hi = math.inf, -math.inf
        for v in (a, b):
            s = np.sort(v)
            q1, q3 = float(linear_quantile(s, 0.25)), float(linear_quantile(s, 0.75))
            lo, hi = min(lo, q1 - 1.5 * (q3 - q1)), max(hi, q3 + 1.5 * (q3 - q1))
        grid = np.linspace(max(0.0, lo), hi, g)
        p, q = fftconvolve_kde(a, grid), fftconvolve_kde(b, grid)
        if p is None or q is None:
            out.append(math.nan)
            continue
        with np.errstate(over="ignore"):
            kl = np.sum(p * np.log2(p / q)), np.sum(q * np.log2(q / p))
        out.append(2.0 ** -kl[0] * 2.0 ** -kl[1])
    return out


def one_draw_rciw(x: np.ndarray, n_boot: int = 1000) -> list[float]:
    """The pooled bootstrap with one (n_boot, m) int64 draw per step (the first form)."""
    out = []
    for i in range(len(x)):
        v = filter_outliers(pool(x[: i + 1], i, 10_000, 0), 10.0)
        m = len(v)
        if m < 2:
            out.append(math.nan)
            continue
        idx = np.random.default_rng([0, i, 1]).integers(0, m, size=(n_boot, m))
        means = np.sort(v[idx].mean(axis=1))
        out.append(float((linear_quantile(means, 0.995) - linear_quantile(means, 0.005))
                         / v.mean()))
    return out


def laaber_trace_rows(n: int = 3000) -> list[tuple[str, int, float, float, str, float]]:
    """Evaluate time of the Laaber criteria on one ``n``-sample warmup-shaped trace."""
    x = make_trace("decay", n, 0).samples()
    cases: list[tuple[str, str, Callable[[np.ndarray], object] | None]] = [
        ("laaber_cv", "", None),
        ("laaber_kld", "fresh pools + fftconvolve per step", per_step_kld),
        ("laaber_rciw", "one (n_boot, m) draw per step", one_draw_rciw),
    ]
    rows = []
    for spec, base_name, baseline in cases:
        repeat = 2 if spec == "laaber_rciw" else 3
        t_off = best_of(lambda s=spec: make_criterion(s).evaluate(x), repeat=repeat)
        t_base = math.nan if baseline is None else best_of(lambda b=baseline: b(x), repeat=2)
        rows.append((spec, n, t_off, math.nan, base_name, t_base))
    return rows


def main() -> None:
    rows = []
    x = series(20_000)
    xq = np.round(series(5_000), 1)
    cases: list[tuple[str, str, np.ndarray, Callable[[np.ndarray], object]]] = [
        ("iqr_median", "np.percentile per window", x, naive_iqr),
        ("mad_median", "scipy MAD per window", x, naive_mad),
        ("rciw", "np.std + t per window", x, naive_rciw),
        ("rciw:method=bootstrap", "scipy.stats.bootstrap per window", x[:1000],
         scipy_bootstrap_rciw),
        ("nvbench_stdrel", "two-pass sd of the prefix (NVBench)", x[:5000], naive_stdrel),
        ("nvbench_entropy", "-sum p log p + polyfit per sample", xq[:3000], naive_entropy),
    ]
    for spec, base_name, data, baseline in cases:
        t_off = best_of(lambda s=spec, d=data: make_criterion(s).evaluate(d))
        t_on = best_of(lambda s=spec, d=data: online(s, d), repeat=1)
        t_base = best_of(lambda b=baseline, d=data: b(d), repeat=1)
        rows.append((spec, len(data), t_off, t_on, base_name, t_base))
    xs = series(400)
    t_bin = best_of(lambda: binned_kld(xs), repeat=1)
    t_exact = best_of(lambda: exact_kld(xs), repeat=1)
    rows.append(("laaber_kld (similarity only)", len(xs), t_bin, math.nan,
                 "exact scipy gaussian_kde", t_exact))
    # Per-trace replay cost on a 3,000-sample decay (analysis.synthetic), online not timed.
    rows.extend(laaber_trace_rows())

    head = (f"{'criterion':30s} {'n':>6s} {'evaluate s':>11s} {'update us':>10s} "
            f"{'baseline s':>11s} {'x evaluate':>11s} {'x update':>9s}  baseline")
    print(head)
    print("-" * len(head))
    for spec, n, t_off, t_on, base_name, t_base in rows:
        per_update = t_on / n * 1e6
        print(f"{spec:30s} {n:6d} {t_off:11.4f} {per_update:10.1f} {t_base:11.4f} "
              f"{t_base / t_off:11.1f} {t_base / t_on:9.1f}  {base_name}")


if __name__ == "__main__":
    main()
