"""Benchmark of offline replay (:func:`llenergymeasure.analysis.replay.replay`).

Four measurements, each a ratio against a baseline run side by side in the
same process (or in fresh subprocesses for memory), printed as tables:

1. the default criteria set on a corpus of synthetic traces of every kind,
   per criterion, against running the online driver
   :func:`warmup_until_converged` over the same traces with the same criteria
   (the driver is timed on a few traces of every kind and scaled by kind; the
   ratio depends on how late each criterion stops);
2. a 100-threshold sweep of ``rolling_cv`` against 100 separate replays;
3. scaling with the corpus size (100, 1,000, 10,000 traces) in this process
   and with a process pool on 2 cores;
4. peak memory of each scaling run (peak RSS against the corpus's float64 size).

Run ``python benchmarks/bench_replay.py`` (full sizes: 1,000 traces of 3,000
samples) or ``--quick`` (a few seconds per table).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from llenergymeasure.analysis.demo import default_criteria
from llenergymeasure.analysis.replay import replay
from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.core.warmup import warmup_until_converged
from llenergymeasure.criteria import StopRule

SCALING_CRITERIA = ["rolling_cv:window=10,threshold=0.02", "fixed_count:n=50", "mser5"]


def corpus(n_traces: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Warmup-shaped latency series (ms): decay or step to a plateau, log-normal noise."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    out = {}
    for k in range(n_traces):
        tau = rng.uniform(10, n / 5)
        base = rng.uniform(5, 50)
        shape = np.exp(-i / tau) if k % 2 else (i < tau).astype(float)
        out[f"t{k}"] = base * (1 + rng.uniform(0.2, 2) * shape) * rng.lognormal(0, 0.02, n)
    return out


def time_driver(series: np.ndarray, spec: str, rule: StopRule) -> float:
    it = iter(series.tolist())
    config = WarmupConfig(criterion=spec, min_prompts=rule.min_samples,
                          max_prompts=len(series))
    start = time.perf_counter()
    warmup_until_converged(lambda: next(it), config, show_progress=False)
    return time.perf_counter() - start


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def synthetic_corpus(n_traces: int, n: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Latencies of :func:`llenergymeasure.analysis.synthetic.make_corpus` and their kinds."""
    from llenergymeasure.analysis import synthetic

    kinds = list(synthetic.SYNTHETIC_KINDS)
    per_kind = -(-n_traces // len(kinds))
    traces = synthetic.make_corpus(kinds, per_kind, n, 0)[:n_traces]
    series = {f"s{i}": t.samples(t.run_ids[0]) for i, t in enumerate(traces)}
    return series, [str(t.metadata.tags["synthetic"]) for t in traces]


TRUNCATION = ("mser5", "max_ess", "red_sse")


def bench_default_set(n_traces: int, n: int, per_kind: int) -> None:
    """Per criterion: replay of the whole corpus against the driver, scaled from a subset.

    The driver is timed on the first ``per_kind`` traces of every kind and
    each kind's mean time is multiplied by that kind's number of traces (the
    kinds stop at very different places, so an unstratified subset misleads).
    """
    specs = default_criteria()
    traces, kinds = synthetic_corpus(n_traces, n)
    names = list(traces)
    rule = StopRule(min_samples=5)
    by_kind: dict[str, list[str]] = {}
    for name, kind in zip(names, kinds, strict=True):
        by_kind.setdefault(kind, []).append(name)
    rows = []
    tot_rep = tot_drv = sub_rep = sub_drv = 0.0
    for spec in specs:
        t0 = time.perf_counter()
        df = replay(traces, spec, stop_rule=rule, show_progress=False)
        t_rep = time.perf_counter() - t0
        t_drv = 0.0
        for members in by_kind.values():
            timed = members[:per_kind]
            mean = sum(time_driver(traces[m], spec, rule) for m in timed) / len(timed)
            t_drv += mean * len(members)
        tot_rep += t_rep
        tot_drv += t_drv
        if spec.split(":", 1)[0] not in TRUNCATION:
            sub_rep += t_rep
            sub_drv += t_drv
        stop = df["stop_index"].astype("Float64")
        rows.append([spec[:48], f"{stop.median():.0f}", f"{100 * (~df['stopped']).mean():.0f}",
                     f"{t_rep / n_traces * 1e6:.0f}", f"{t_rep:.3f}", f"{t_drv:.2f}",
                     f"{t_drv / t_rep:.1f}x"])
    rows.append(["ALL (sum of the rows)", "", "", f"{tot_rep / n_traces * 1e6:.0f}",
                 f"{tot_rep:.2f}", f"{tot_drv:.1f}", f"{tot_drv / tot_rep:.1f}x"])
    rows.append(["ALL but " + ", ".join(TRUNCATION), "", "", f"{sub_rep / n_traces * 1e6:.0f}",
                 f"{sub_rep:.2f}", f"{sub_drv:.1f}", f"{sub_drv / sub_rep:.1f}x"])
    table(f"1. default criteria set: {n_traces} synthetic traces ({len(by_kind)} kinds) x {n} "
          f"samples; replay on all of them, driver timed on {per_kind} per kind and scaled by "
          "kind; the ratio follows how late each criterion stops (truncation methods do the "
          "driver's own analyses, so about 1x)",
          ["criterion", "median stop", "never %", "replay us/trace", "replay s",
           "driver s (scaled)", "ratio"], rows)


def bench_sweep(n_traces: int, n: int, n_thresholds: int = 100) -> None:
    traces = corpus(n_traces, n, seed=1)
    thresholds = [float(v) for v in np.geomspace(0.002, 0.2, n_thresholds)]
    rows = []
    for patience in (1, 3):
        rule = StopRule(min_samples=5, patience=patience)
        t0 = time.perf_counter()
        fast = replay(traces, [], grid={"rolling_cv": {"threshold": thresholds}},
                      stop_rule=rule, show_progress=False)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        for thr in thresholds:
            replay(traces, f"rolling_cv:threshold={thr!r}", stop_rule=rule, show_progress=False)
        t_slow = time.perf_counter() - t0
        assert len(fast) == n_traces * n_thresholds
        rows.append([str(patience), f"{t_fast:.3f}", f"{t_slow:.3f}", f"{t_slow / t_fast:.0f}x"])
    table(f"2. rolling_cv sweep of {n_thresholds} thresholds, {n_traces} traces x {n} samples",
          ["patience", "sweep s", "100 replays s", "ratio"], rows)


def _scaling_worker(n_traces: int, n: int, jobs: int, queue: mp.Queue) -> None:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    traces = corpus(n_traces, n, seed=2)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            df = replay(traces, SCALING_CRITERIA, executor=pool, show_progress=False)
    else:
        df = replay(traces, SCALING_CRITERIA, show_progress=False)
    elapsed = time.perf_counter() - t0
    rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    queue.put((elapsed, len(df), rss0 * 1024, rss1 * 1024, rss2 * 1024, child * 1024))


def bench_scaling(sizes: list[int], n: int) -> None:
    ctx = mp.get_context("spawn")
    rows = []
    base: dict[int, float] = {}
    for size in sizes:
        for jobs in (1, 2):
            q = ctx.Queue()
            p = ctx.Process(target=_scaling_worker, args=(size, n, jobs, q))
            p.start()
            elapsed, _rows, _rss0, rss1, rss2, child = q.get()
            p.join()
            corpus_bytes = size * n * 8
            if jobs == 1:
                base[size] = elapsed
            rows.append([
                str(size), str(jobs), f"{elapsed:.2f}", f"{elapsed / size * 1e3:.2f}",
                f"{base[size] / elapsed:.2f}x", f"{corpus_bytes / 2**20:.0f}",
                f"{rss2 / 2**20:.0f}", f"{(rss2 - rss1) / corpus_bytes:.2f}",
                f"{rss2 / corpus_bytes:.2f}", f"{child / 2**20:.0f}" if jobs > 1 else "-",
            ])
    table(f"3-4. scaling, {len(SCALING_CRITERIA)} criteria, {n} samples per trace "
          "(fresh process each; RSS = peak resident set)",
          ["traces", "jobs", "time s", "ms/trace", "speed-up", "corpus MiB", "peak RSS MiB",
           "replay extra / corpus", "peak RSS / corpus", "worker peak MiB"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes (seconds).")
    parser.add_argument("--only", choices=["default", "sweep", "scaling"], action="append")
    args = parser.parse_args(argv)
    only = set(args.only or ["default", "sweep", "scaling"])
    n = 3000
    if args.quick:
        sizes, n_default, per_kind, n_sweep = [100, 1000], 36, 1, 50
    else:
        sizes, n_default, per_kind, n_sweep = [100, 1000, 10000], 1000, 3, 200
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; "
          f"one run per cell; quick={args.quick}")
    logging.disable(logging.WARNING)  # the driver warns on every non-converged run
    # Import every criterion module (scipy, statsmodels, ...) before any timing.
    replay(corpus(1, 200), default_criteria(), show_progress=False)
    if "default" in only:
        bench_default_set(n_default, n, per_kind)
    if "sweep" in only:
        bench_sweep(n_sweep, n)
    if "scaling" in only:
        bench_scaling(sizes, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
