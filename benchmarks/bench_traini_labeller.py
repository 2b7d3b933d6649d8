"""Speed of the Traini labeller against the labeller it replaced, in one process.

Run: `python benchmarks/bench_traini_labeller.py [DATA_DIR] [--forks 6] [--resamples 10000]
[--repeat 3]`.

For a spread of forks of the Traini development corpus (3000 iterations each), times
`llenergymeasure.analysis.reference.traini_label` (R changepoint 2.2.x CROPS and PELT
bit for bit, kneed 0.7.0 knee, numba kernels) and the previous labeller (commit
4a3ee64: the criteria layer's PELT in numpy, an idealised CROPS and Kneedle, a fresh
10,000-replicate bootstrap per walk-back test), reproduced below as `baseline_label`.
Times are CPU seconds of this process (`time.process_time`), so load from other
processes on a shared machine inflates both sides alike; the ratio is the figure.
The new labeller's time of a fork is the best of `--repeat` calls (the least disturbed
by other processes on a shared machine; every call gives the same label); the previous
one, some 30 times slower, is timed once. The load average is printed before and after.
The first call of the new labeller compiles (or loads) its kernels and is left out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from llenergymeasure.analysis._changepoint import pelt_normal, segmentation_cost
from llenergymeasure.analysis.reference import segments_differ, traini_label

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --- the previous labeller (commit 4a3ee64), for timing only ------------------------------


def _old_outliers(arr: np.ndarray, window: int = 200, k: float = 3.0) -> np.ndarray:
    noops = math.ceil(0.1 / float(arr.mean()))
    skip = math.ceil(window / math.log1p(noops))
    if arr.size - skip < window:
        return np.empty(0, dtype=np.intp)
    win = sliding_window_view(arr[skip:], window)
    med = np.median(win, axis=1)
    p1, p99 = np.quantile(win, [0.01, 0.99], axis=1)
    dev = np.abs(win - med[:, None]) > (k * (p99 - p1))[:, None]
    hit = np.zeros(arr.size - skip, dtype=bool)
    w_idx, off = np.nonzero(dev)
    hit[w_idx + off] = True
    return np.flatnonzero(hit) + skip


def _old_crops(x: np.ndarray, b0: float, b1: float) -> tuple[np.ndarray, np.ndarray]:
    runs: dict[float, tuple[int, float]] = {}

    def run(beta: float) -> tuple[int, float]:
        if beta not in runs:
            bk = pelt_normal(x, beta)
            runs[beta] = (len(bk) - 1, segmentation_cost(x, bk))
        return runs[beta]

    run(b0)
    run(b1)
    todo = [(b0, b1)]
    while todo:
        lo, hi = todo.pop()
        (m0, q0), (m1, q1) = runs[lo], runs[hi]
        if m0 > m1 + 1:
            mid = (q1 - q0) / (m0 - m1)
            if lo < mid < hi and run(mid)[0] != m1:
                todo += [(lo, mid), (mid, hi)]
    pens = sorted(runs)
    return np.asarray(pens), np.asarray([runs[b][0] for b in pens])


def _old_knee(xs: np.ndarray, ys: np.ndarray) -> float | None:
    if xs.size < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None
    xn = (xs - xs.min()) / np.ptp(xs)
    yn = (ys - ys.min()) / np.ptp(ys)
    d = (yn.max() - yn) - xn
    prev = np.concatenate(([d[0]], d[:-1]))
    nxt = np.concatenate((d[1:], [d[-1]]))
    maxima = np.flatnonzero((d >= prev) & (d >= nxt))
    minima = set(np.flatnonzero((d <= prev) & (d <= nxt)).tolist())
    if maxima.size == 0:
        return None
    tmx = d[maxima] - abs(float(np.diff(xn).mean()))
    pos = {int(i): k for k, i in enumerate(maxima)}
    thr, idx = 0.0, 0
    for i in range(int(maxima[0]), d.size - 1):
        if i in pos:
            thr, idx = float(tmx[pos[i]]), i
        if i in minima:
            thr = 0.0
        if d[i + 1] < thr:
            return float(xs[idx])
    return None


def baseline_label(x: np.ndarray, n_resamples: int = 10_000) -> int:
    """The previous `traini_label(x).traini_start` (timing baseline)."""
    n = x.size
    keep = np.setdiff1d(np.arange(n), _old_outliers(x))
    xs = x[keep]
    logn = math.log(xs.size)
    pens, counts = _old_crops(xs, 4 * logn, 1e5 * logn)
    knee = _old_knee(pens, counts)
    bkps = pelt_normal(xs, knee if knee else 15 * logn)
    bounds = [0, *[int(keep[b - 1]) for b in bkps]]
    rng = np.random.default_rng(0)
    last = x[bounds[-2] + 1 :]
    i = len(bounds) - 2
    while bounds[i] > 0:
        cpt, prev = bounds[i], bounds[i - 1]
        seg = x[(prev + 1 if prev > 0 else prev) : cpt + 1]
        if segments_differ(last, seg, n_resamples=n_resamples, rng=rng):
            return cpt if cpt <= n - 501 else -1
        i -= 1
    return 0


# --- timing -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--forks", type=int, default=6, help="forks timed, spread over the corpus")
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many timings (new)")
    ns = ap.parse_args(argv)
    files = sorted((ns.data / "traini-dev" / "timeseries" / "all").glob("*.json"))
    if not files:
        print(f"no Traini series under {ns.data}")
        return 1
    picks = [(files[(7 * i) % len(files)], (3 * i) % 10) for i in range(ns.forks)]
    warm = np.asarray(json.loads(picks[0][0].read_text())[0])
    traini_label(warm, n_resamples=ns.resamples)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'fork':<48}{'new s':>8}{'old s':>8}{'ratio':>8}{'new':>6}{'old':>6}")
    t_new_all, t_old_all = [], []
    for path, k in picks:
        x = np.asarray(json.loads(path.read_text())[k], dtype=np.float64)
        t_new = math.inf
        for _ in range(max(1, ns.repeat)):
            t0 = time.process_time()
            new = traini_label(x, n_resamples=ns.resamples).traini_start
            t_new = min(t_new, time.process_time() - t0)
        t1 = time.process_time()
        old = baseline_label(x, ns.resamples)
        t_old = time.process_time() - t1
        t_new_all.append(t_new)
        t_old_all.append(t_old)
        print(
            f"{path.stem[:44] + f' #{k}':<48}{t_new:>8.3f}{t_old:>8.3f}"
            f"{t_old / t_new:>8.1f}{new:>6}{old:>6}",
            flush=True,
        )
    tn, to = float(np.mean(t_new_all)), float(np.mean(t_old_all))
    print(f"{'mean per fork':<48}{tn:>8.3f}{to:>8.3f}{to / tn:>8.1f}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
