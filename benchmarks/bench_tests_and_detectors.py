"""Offline (vectorised) vs online (update loop) replay of the test/detector criteria.

Run: ``.venv/bin/python benchmarks/bench_tests_and_detectors.py [n]``. Both forms run
side by side in this process on the same seeded warmup; the table gives the time per
sample of each and their ratio. Nothing is asserted.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from llenergymeasure.criteria.registry import make_criterion

SPECS = [
    "bdn_fluctuation",
    "pyperf_halves",
    "geweke",
    "kpss",
    "kpss:nlags=legacy",
    "trend",
    "kelly_ssd:window=50",
    "cao_rhinehart",
]


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(n: int = 20_000) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    x = 20.0 * (1 + 3 * np.exp(-t / 30)) * rng.lognormal(0, 0.02, n)
    print(f"n = {n} samples")
    print(f"{'criterion':<22}{'online us/sample':>18}{'offline us/sample':>19}{'speed-up':>10}")
    for spec in SPECS:
        crit = make_criterion(spec)

        def online(c=crit):
            c = c.clone()
            for v in x:
                c.update(float(v))

        t_on = _best(online, repeat=1)
        t_off = _best(lambda c=crit: c.evaluate(x))
        print(f"{spec:<22}{1e6 * t_on / n:>18.2f}{1e6 * t_off / n:>19.2f}{t_on / t_off:>10.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
