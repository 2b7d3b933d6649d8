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

from llenergymeasure.criteria import make_criterion
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
