"""Speed of the labellers' PELT (criteria.pelt with R's variance floor) against ruptures.

Run: ``.venv/bin/python benchmarks/bench_changepoint.py [--n 1500] [--repeat 3]``.

The Traini-style labeller calls PELT once per penalty of its CROPS path, on a series
of about 3000 JMH iterations. Each row times, in this process and on the same seeded
series (times in seconds, a warmup step and a few level shifts), one PELT call of
:func:`llenergymeasure.analysis._changepoint.pelt_normal` (which is
``pelt_changepoints(..., var_floor=1e-11, var_floor_mode="replace")``) and of
``ruptures.Pelt(custom_cost=CostNormal(add_small_diag=False), jump=1, min_size=2)``
(best of ``--repeat``), checks that the breakpoints agree, and prints the ratio
ruptures / ours; a last row times a whole CROPS path.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from llenergymeasure.analysis._changepoint import crops, pelt_normal


def jmh_series(n: int, seed: int = 0) -> np.ndarray:
    """~1e-5 s per iteration: a 3x warmup over n/10 samples, then three level shifts."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    level = 1e-5 * (1 + 2 * np.exp(-i / (n / 10))) * np.where(i % (n // 4) < n // 8, 1.0, 1.03)
    return level * rng.normal(1.0, 0.01, n)


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out, t_best = None, math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=3)
    ns = ap.parse_args(argv)
    import ruptures as rpt
    from ruptures.costs import CostNormal

    x = jmh_series(ns.n)
    logn = math.log(ns.n)
    print(f"{'case':<22}{'ours s':>10}{'ruptures s':>12}{'ratio':>8}{'same':>6}{'cpts':>6}")
    for mult in (4.0, 15.0, 100.0):
        pen = mult * logn
        t_ours, ours = best(lambda pen=pen: pelt_normal(x, pen), ns.repeat)

        def ref(pen: float = pen) -> list[int]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                algo = rpt.Pelt(custom_cost=CostNormal(add_small_diag=False), jump=1, min_size=2)
                return algo.fit(x).predict(pen=pen)

        t_ref, theirs = best(ref, 1)
        print(
            f"{f'PELT {mult:g} log n':<22}{t_ours:>10.3f}{t_ref:>12.3f}{t_ref / t_ours:>8.1f}"
            f"{ours == theirs!s:>6}{len(ours) - 1:>6}"
        )
    t_path, path = best(lambda: crops(x, 4 * logn, 1e5 * logn), ns.repeat)
    print(f"{'CROPS [4, 1e5] log n':<22}{t_path:>10.3f}{'':>12}{'':>8}{'':>6}"
          f"{path.n_runs:>6} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
