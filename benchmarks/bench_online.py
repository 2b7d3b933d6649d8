"""Per-update cost of RollingCV.update versus the original algorithm, side by side.

The original llenergymeasure 0.7 algorithm appends each latency to a list,
slices the last window and calls ``numpy.mean`` and ``numpy.std`` on it at
every step. Both run on the same latencies in the same process; the script
prints the cost per update of each and the ratio (target: RollingCV at least
10x cheaper).

Run: ``python benchmarks/bench_online.py [--n 100000] [--window 5] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from llenergymeasure.criteria import RollingCV


def original(latencies: np.ndarray, window: int, threshold: float) -> float:
    """The 0.7 loop: list append, slice, numpy mean/std each step; returns the last CV."""
    values: list[float] = []
    cv = float("nan")
    for x in latencies:
        values.append(float(x))
        if len(values) >= window:
            win = values[-window:]
            mean = np.mean(win)
            cv = float(np.std(win, ddof=1) / mean) if mean > 0 else float("nan")
            _ = cv < threshold
    return cv


def rolling(latencies: np.ndarray, window: int, threshold: float) -> float:
    crit = RollingCV(window=window, threshold=threshold)
    update = crit.update
    for x in latencies.tolist():
        update(x)
    return crit.statistic_


def best_of(fn: Callable[..., object], *args: object, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    lat = 100 + rng.normal(0, 2, args.n)
    a = original(lat, args.window, 0.05)
    b = rolling(lat, args.window, 0.05)
    assert abs(a - b) <= 1e-9 * abs(a), (a, b)  # same statistic
    t_orig = best_of(original, lat, args.window, 0.05, repeats=args.repeats)
    t_roll = best_of(rolling, lat, args.window, 0.05, repeats=args.repeats)
    print(f"n={args.n} window={args.window} (best of {args.repeats})")
    print("| method | ns / update |")
    print("|---|---|")
    print(f"| original (list + slice + np.mean/np.std) | {t_orig / args.n * 1e9:,.0f} |")
    print(f"| RollingCV.update | {t_roll / args.n * 1e9:,.0f} |")
    print(f"ratio (original / RollingCV): {t_orig / t_roll:.1f}x")


if __name__ == "__main__":
    main()
