"""Replay the Traini et al. JMH corpus through the criteria and compare with the published table.

The corpus (30 benchmarks x 10 forks x 3,000 iterations of about 100 ms, no
JMH warmup, labelled steady-state starts) is read from
``../shared/data/traini-dev`` (or the folder given with ``--data``). Every fork
is replayed through every criterion of the default set (``--all`` adds the
costly ones), the stops are scored against the published labels with
:func:`llenergymeasure.analysis.scoring.score`, and the median and mean
absolute time waste in seconds are printed per criterion, next to the
published figures for the developers' configuration (``Dev``) and the three
dynamic-reconfiguration criteria of Laaber et al. (``Cov``, ``Ci``,
``Divergence``) from ``cfg_assessment.csv``.

Time waste (Traini et al. 2023) is the warmup time the rule used minus the
warmup time before the labelled steady-state start, in seconds: positive when
the rule warms up too long, negative when it stops early. It is defined on
forks with a steady state; forks where a rule never stops are counted apart.

Run::

    python examples/compare_on_traini.py [--data DIR] [--limit N] [--all] [--jobs 2]

References
----------
L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective
assessment of steady state performance in Java software: are we there yet?",
Empirical Software Engineering 28(1):13, 2023.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from llenergymeasure.analysis import scoring
from llenergymeasure.analysis.demo import COSTLY_CRITERIA, default_criteria
from llenergymeasure.analysis.replay import replay
from llenergymeasure.traces.importers import load_traini_corpus

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traini-dev"


def published_table(path: Path, benchmarks: set[str] | None) -> pd.DataFrame:
    """Median and mean |time waste| per technique from ``cfg_assessment.csv``."""
    pub = pd.read_csv(path)
    if benchmarks is not None:
        pub = pub[pub["benchmark"].isin(benchmarks)]
    rows = []
    for tech, grp in pub.groupby("technique", sort=False):
        steady = grp[grp["classification"] == "steady state"]
        waste = steady["timewaste"].abs()
        rows.append({
            "criterion": f"published {tech}",
            "forks": len(steady),
            "never_stopped": 0,
            "median_abs_waste_s": waste.median(),
            "mean_abs_waste_s": waste.mean(),
            "median_waste_s": steady["timewaste"].median(),
        })
    return pd.DataFrame(rows)


def our_table(scored: pd.DataFrame) -> pd.DataFrame:
    """The same statistics for every replayed criterion setting (steady forks only)."""
    steady = scored[scored["has_reference"].astype(bool)]
    rows = []
    for spec, grp in steady.groupby("spec", sort=False):
        waste = grp["wee_s"].astype(float)
        rows.append({
            "criterion": spec,
            "forks": len(grp),
            "never_stopped": int(grp["never_stopped"].astype(bool).sum()),
            "median_abs_waste_s": waste.abs().median(),
            "mean_abs_waste_s": waste.abs().mean(),
            "median_waste_s": waste.median(),
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Traini corpus folder.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N benchmarks.")
    parser.add_argument("--all", action="store_true", help="Add the costly criteria too.")
    parser.add_argument("--jobs", type=int, default=1, help="Worker processes.")
    args = parser.parse_args(argv)
    if not (args.data / "timeseries" / "all").is_dir():
        print(f"Traini corpus not found at {args.data}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    traces = load_traini_corpus(args.data, limit=args.limit)
    specs = default_criteria()
    if args.all:
        specs += default_criteria(["pelt:growth=1.2", "laaber_kld", "laaber_rciw",
                                   "nvbench_entropy"])
    else:
        print(f"(costly criteria left out, --all adds them: {', '.join(COSTLY_CRITERIA)})")
    t1 = time.perf_counter()
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    try:
        results = replay(traces, specs, executor=pool, show_progress=True)
    finally:
        if pool is not None:
            pool.shutdown()
    t2 = time.perf_counter()
    scored = scoring.score(results, traces, tolerance_s=5.0, n_resamples=200)
    t3 = time.perf_counter()
    n_forks = results[["trace_id", "run_id"]].drop_duplicates().shape[0]
    print(f"{len(traces)} benchmarks, {n_forks} forks, {len(specs)} criteria: load "
          f"{t1 - t0:.1f} s, replay {t2 - t1:.1f} s, scoring {t3 - t2:.1f} s")
    benchmarks = {str(t.metadata.tags.get("benchmark", "")) for t in traces}
    table = pd.concat([published_table(args.data / "cfg_assessment.csv", benchmarks),
                       our_table(scored).sort_values("median_abs_waste_s")], ignore_index=True)
    with pd.option_context("display.width", 160, "display.max_colwidth", 70,
                           "display.float_format", "{:.1f}".format):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
