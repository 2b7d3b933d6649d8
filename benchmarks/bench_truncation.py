"""Speed of the truncation kernels against their reference implementations, side by side.

Run: ``.venv/bin/python benchmarks/bench_truncation.py [--n 10000] [--repeat 3]``.

Each row times our kernel and the reference on the same seeded series in this
process (best of ``--repeat``), checks that they give the same truncation, and
prints the ratio reference / ours. References: pymbar
``timeseries.detect_equilibration`` (fast and exact lag schedules), pyMSER
``calculate_MSEm`` + ``MSERm_index`` (batch size 5), ruptures ``Pelt`` (jump=1)
and, when installed, red-molsim ``detect_equilibration_window``.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from llenergymeasure.criteria.max_ess import max_ess_truncation
from llenergymeasure.criteria.mser5 import batch_means, mser_curve
from llenergymeasure.criteria.pelt import pelt_changepoints, resolve_penalty
from llenergymeasure.criteria.red_sse import sse_curve_window


def warmup_series(n: int, seed: int = 0) -> np.ndarray:
    """10 + 6 exp(-i/(n/30)) plus AR(1) noise (phi 0.5, sd 0.3)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.3, n)
    y = np.empty(n)
    y[0] = e[0]
    for i in range(1, n):
        y[i] = 0.5 * y[i - 1] + e[i]
    return 10.0 + 6.0 * np.exp(-np.arange(n) / (n / 30)) + y


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000, help="series length (default 1e4)")
    ap.add_argument("--n-pelt", type=int, default=2_000, help="length for ruptures (slow)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    x = warmup_series(args.n)
    rows = []

    from pymbar import timeseries

    for fast in (True, False):
        t_ours, ours = best(
            lambda f=fast: max_ess_truncation(x, fast=f, neff_offset=1), args.repeat
        )
        t_ref, ref = best(lambda f=fast: timeseries.detect_equilibration(x, fast=f), 1)
        rows.append((f"max_ess fast={fast} vs pymbar", args.n, t_ours, t_ref, ours.t0, int(ref[0])))

    import pymser
    import torch

    def ours_mser() -> int:
        return 5 * int(np.argmin(mser_curve(batch_means(x, 5))))

    def ref_mser() -> int:
        curve = pymser.calculate_MSEm(x, batch_size=5)
        return int(pymser.MSERm_index(curve, batch_size=5))

    t_ours, ours = best(ours_mser, args.repeat)
    t_ref, ref = best(ref_mser, 1)
    rows.append(("mser5 vs pymser", args.n, t_ours, t_ref, ours, ref))
    del torch

    import ruptures as rpt

    xp = warmup_series(args.n_pelt, seed=1)
    pen = resolve_penalty("15log", xp)
    t_ours, ours = best(lambda: pelt_changepoints(xp, pen), args.repeat)
    t_ref, ref = best(lambda: rpt.Pelt(model="normal", jump=1, min_size=2).fit(xp).predict(pen), 1)
    rows.append(("pelt vs ruptures (1st bkp)", args.n_pelt, t_ours, t_ref, ours[0], ref[0]))

    try:
        import red
    except ImportError:
        red = None
    if red is not None:
        t_ours, ours = best(lambda: int(np.argmin(sse_curve_window(x))), args.repeat)
        t_ref, ref = best(lambda: int(red.detect_equilibration_window(x)[0]), 1)
        rows.append(("red_sse vs red-molsim", args.n, t_ours, t_ref, ours, ref))

    head = (
        f"{'kernel':<32} {'n':>7} {'ours s':>10} {'ref s':>10} {'ratio':>8} "
        f"{'t0':>6} {'ref t0':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, n, a, b, t0, r0 in rows:
        print(f"{name:<32} {n:>7} {a:>10.4f} {b:>10.4f} {b / a:>7.1f}x {t0:>6} {r0:>7}")


if __name__ == "__main__":
    main()
