"""Cost of every registered criterion, online and offline, with baselines run side by side.

Three tables, printed as markdown:

(a) online cost of one ``update`` per criterion at its default parameters (composites on
    representative specs), in ns per update and as a ratio to ``rolling_cv``;
(b) offline ``evaluate`` time at n = 1e3, 1e4, 1e5, 1e6, the growth per 10x n (10 for
    O(n), 100 for O(n^2)) and the ratio to one ``numpy.cumsum``
    over the same array (target: ``rolling_cv`` within 20x of cumsum). A size whose
    predicted time exceeds the budget (default 20 s) is skipped and marked so;
(c) when ``kpss`` is registered: the criterion's sliding-window ``evaluate`` against
    calling ``statsmodels.tsa.stattools.kpss`` on every window, with the largest
    statistic difference.

All series are the same seeded synthetic warmup (20 ms plateau, 2% noise, a decay
at the start). Nothing is asserted: the script measures and prints.

Run: ``python benchmarks/bench_criteria.py [--quick] [--budget 20]``
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from llenergymeasure.criteria import Criterion, available_criteria, criterion_class, make_criterion

#: Representative specs of the composites (the ones of the conformance suite).
COMPOSITE_SPECS = {
    "all_of": ["all_of(rolling_cv,fixed_count:n=8)"],
    "any_of": ["any_of(rolling_cv:threshold=0.01,max_duration:seconds=2)"],
}


def specs() -> list[str]:
    """Every registered criterion at its defaults; composites on representative specs."""
    out: list[str] = []
    for name in available_criteria():
        if getattr(criterion_class(name), "is_composite", False):
            out.extend(COMPOSITE_SPECS.get(name, [f"{name}(rolling_cv,fixed_count:n=8)"]))
        else:
            out.append(name)
    return out


def series(n: int, seed: int = 0) -> np.ndarray:
    """A warmup: 20 ms plateau with 2% log-normal noise after a decay from 100 ms."""
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=np.float64)
    return 20.0 * (1.0 + 4.0 * np.exp(-i / 6.0)) * np.exp(0.02 * rng.standard_normal(n))


def times_for(crit: Criterion, x: np.ndarray) -> np.ndarray | None:
    return np.cumsum(x) / 1000.0 if crit.needs_time else None


def best_time(fn: Callable[[], Any], *, min_total: float = 0.2, max_repeats: int = 5) -> float:
    """Best wall time of ``fn`` over repeats, stopping after ``min_total`` seconds."""
    best = math.inf
    spent = 0.0
    for _ in range(max_repeats):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        if spent >= min_total:
            break
    return best


# --------------------------------------------------------------------- (a)
def online_cost(spec: str, n: int, budget: float) -> tuple[float, int]:
    """ns per ``update`` over up to ``n`` samples (fewer when ``budget`` seconds run out)."""
    crit = make_criterion(spec)
    x = series(n)
    t = times_for(crit, x)
    xs = x.tolist()
    ts = None if t is None else t.tolist()
    update = crit.update
    done = 0
    t0 = time.perf_counter()
    # Timed in chunks so that an expensive criterion stops at the budget.
    chunk = 256
    while done < n:
        stop = min(done + chunk, n)
        if ts is None:
            for i in range(done, stop):
                update(xs[i])
        else:
            for i in range(done, stop):
                update(xs[i], ts[i])
        done = stop
        if time.perf_counter() - t0 > budget:
            break
    return (time.perf_counter() - t0) / done * 1e9, done


def table_online(all_specs: list[str], n: int, budget: float) -> None:
    print(f"### (a) online cost per update (up to n={n:,}, at most {budget:g} s each)\n")
    rows = [(spec, *online_cost(spec, n, budget)) for spec in all_specs]
    ref = next((ns for spec, ns, _ in rows if spec == "rolling_cv"), math.nan)
    print("| criterion | ns / update | x rolling_cv | updates timed |")
    print("|---|---:|---:|---:|")
    for spec, ns, done in rows:
        print(f"| `{spec}` | {ns:,.0f} | {ns / ref:.1f} | {done:,} |")
    print()


# --------------------------------------------------------------------- (b)
def table_offline(all_specs: list[str], sizes: list[int], budget: float) -> None:
    print(f"### (b) offline evaluate (budget {budget:g} s per call)\n")
    arrays = {n: series(n) for n in sizes}
    cumsum = {n: best_time(lambda a=arrays[n]: np.cumsum(a)) for n in sizes}
    print("| criterion | n | evaluate | ns / sample | x per 10x n | x cumsum |")
    print("|---|---:|---:|---:|---:|---:|")
    skipped: list[str] = []
    for spec in all_specs:
        crit = make_criterion(spec)
        prev: float | None = None
        growth = 10.0
        for n in sizes:
            x = arrays[n]
            t = times_for(crit, x)
            if prev is not None:
                predicted = prev * max(growth, 10.0)
                if predicted > budget:
                    skipped.append(f"`{spec}` at n={n:,} (predicted {predicted:,.0f} s)")
                    print(f"| `{spec}` | {n:,} | skipped (~{predicted:,.0f} s) | | | |")
                    break
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dt = best_time(lambda c=crit, x=x, t=t: c.evaluate(x, t), min_total=0.5)
            ratio = "" if prev is None else f"{dt / prev:.1f}"
            if prev is not None:
                growth = dt / prev
            print(
                f"| `{spec}` | {n:,} | {dt * 1e3:,.2f} ms | {dt / n * 1e9:,.0f} | {ratio} | "
                f"{dt / cumsum[n]:,.0f} |"
            )
            prev = dt
    print()
    print("cumsum baseline: " + ", ".join(f"n={n:,}: {cumsum[n] * 1e6:,.1f} us" for n in sizes))
    if skipped:
        print("\nskipped (would exceed the budget): " + "; ".join(skipped))
    print()


# --------------------------------------------------------------------- (c)
def table_kpss(n: int) -> None:
    if "kpss" not in available_criteria():
        print("### (c) kpss: not registered, skipped\n")
        return
    from statsmodels.tsa.stattools import kpss as sm_kpss

    crit = make_criterion("kpss")
    w = crit.params.window  # type: ignore[attr-defined]
    nlags = crit.params.nlags  # type: ignore[attr-defined]
    x = series(n)

    def per_window() -> np.ndarray:
        out = np.full(n, np.nan)
        with warnings.catch_warnings():
            # InterpolationWarning (p-value outside the table) and the FutureWarning
            # about statsmodels' tuple return are irrelevant to the statistic timed here.
            warnings.simplefilter("ignore")
            for i in range(w - 1, n):
                out[i] = sm_kpss(x[i - w + 1 : i + 1], regression="c", nlags=nlags)[0]
        return out

    t_crit = best_time(lambda: crit.evaluate(x), min_total=0.5)
    t_sm = best_time(per_window, max_repeats=1)
    ours = crit.evaluate(x).statistic
    ref = per_window()
    fin = np.isfinite(ref)
    err = float(np.max(np.abs(ours[fin] - ref[fin]) / np.abs(ref[fin])))
    print(f"### (c) kpss on a sliding window (window={w}, nlags={nlags!r}, n={n:,})\n")
    print("| method | time | us / window |")
    print("|---|---:|---:|")
    m = n - w + 1
    print(f"| `kpss` evaluate | {t_crit * 1e3:,.1f} ms | {t_crit / m * 1e6:,.1f} |")
    print(f"| statsmodels `kpss` per window | {t_sm * 1e3:,.1f} ms | {t_sm / m * 1e6:,.1f} |")
    print(f"\nspeed-up: {t_sm / t_crit:,.1f}x; largest relative statistic difference: {err:.1e}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument(
        "--budget", type=float, default=20.0, help="seconds allowed for one offline evaluate"
    )
    args = ap.parse_args()
    all_specs = specs()
    if args.quick:
        n_online, online_budget, sizes, budget, n_kpss = 2_000, 0.3, [1_000, 10_000], 2.0, 500
    else:
        n_online, online_budget = 20_000, 3.0
        sizes, budget, n_kpss = [1_000, 10_000, 100_000, 1_000_000], args.budget, 3_000
    print(f"criteria: {', '.join(all_specs)}\n")
    table_online(all_specs, n_online, online_budget)
    table_offline(all_specs, sizes, budget)
    table_kpss(n_kpss)


if __name__ == "__main__":
    main()
