"""Replay the Traini et al. JMH corpus through the criteria and compare with a fixed count.

The corpus (30 benchmarks x 10 forks x 3,000 iterations of about 100 ms, no JMH
warmup, labelled steady-state starts) is read from `../shared/data/traini-dev`
(or the folder given with `--data`) into one `Corpus`. Every fork is replayed
through every criterion of the default set (`--all` adds the heavy ones), the
stops are scored against the published labels with
`llenergymeasure.analysis.scoring.score`, and for every setting the script
prints, over the steady forks:

- the median and mean |time waste| (s), next to the published figures for the
  developers' configuration (`Dev`) and the dynamic-reconfiguration criteria of
  Laaber et al. (`Cov`, `Ci`, `Divergence`) from `cfg_assessment.csv`;
- the equal-cost fixed-count baseline of `summarize`: `fixed_n_same_cost`,
  the two premature rates, `premature_lift` with its bootstrap 95% CI over
  forks, `wee_lift`, `bias_p90_lift`, and the premature rates on the forks whose
  steady state starts late (at least 50 iterations, 5 s);
- which settings beat a fixed count of the same cost, which are worse and which
  are not distinguishable from it.

With `--out DIR` it also writes the summary (`summary.csv`), the fixed-count
curve (`frontier.csv`) and the cost-error figure with that curve
(`cost_error.png`).

Run::

    python examples/compare_on_traini.py [--data DIR] [--limit N] [--all] [--jobs 2]
                                         [--out DIR]

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
from llenergymeasure.analysis.corpus import Corpus
from llenergymeasure.analysis.demo import costly_criteria, default_criteria
from llenergymeasure.analysis.replay import replay
from llenergymeasure.traces.importers import load_traini_corpus

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traini-dev"

#: Equal-cost columns printed per setting.
BASELINE = ["spec", "median_samples_used", "fixed_n_same_cost", "premature_rate",
            "premature_rate_fixed", "premature_lift", "premature_lift_ci_low",
            "premature_lift_ci_high", "wee_lift", "bias_p90_lift", "premature_rate_late",
            "premature_rate_late_fixed", "versus_fixed"]


def published_table(path: Path, benchmarks: set[str] | None) -> pd.DataFrame:
    """Median and mean |time waste| per technique from `cfg_assessment.csv`."""
    pub = pd.read_csv(path)
    if benchmarks is not None:
        pub = pub[pub["benchmark"].isin(benchmarks)]
    rows = []
    for tech, grp in pub.groupby("technique", sort=False):
        steady = grp[grp["classification"] == "steady state"]
        waste = steady["timewaste"].abs()
        rows.append({"spec": f"published {tech}", "forks": len(steady), "never_stopped": 0,
                     "median_abs_waste_s": waste.median(), "mean_abs_waste_s": waste.mean()})
    return pd.DataFrame(rows)


def waste_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Median and mean |time waste| per replayed setting (steady forks only)."""
    steady = scored[scored["has_reference"].astype(bool)]
    g = steady.groupby("spec", sort=False)
    return pd.DataFrame({
        "forks": g.size(),
        "never_stopped": g["never_stopped"].sum().astype(int),
        "median_abs_waste_s": g["abs_wee_s"].median(),
        "mean_abs_waste_s": g["abs_wee_s"].mean(),
    }).reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Traini corpus folder.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N benchmarks.")
    parser.add_argument("--all", action="store_true", help="Add the heavy criteria too.")
    parser.add_argument("--jobs", type=int, default=1, help="Worker processes.")
    parser.add_argument("--resamples", type=int, default=1000,
                        help="Bootstrap resamples of the lift CIs (0: none).")
    parser.add_argument("--out", type=Path, default=None,
                        help="Write summary.csv, frontier.csv and cost_error.png here.")
    args = parser.parse_args(argv)
    if not (args.data / "timeseries" / "all").is_dir():
        print(f"Traini corpus not found at {args.data}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    traces = load_traini_corpus(args.data, limit=args.limit)
    corpus = Corpus.build(traces)
    specs = default_criteria()
    heavy = costly_criteria()
    if args.all:
        specs += default_criteria(["pelt:growth=1.2", *[h for h in heavy if h != "pelt"]])
    else:
        print(f"(heavy criteria left out, --all adds them: {', '.join(heavy)})")
    t1 = time.perf_counter()
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    try:
        results = replay(corpus, specs, executor=pool, show_progress=False)
    finally:
        if pool is not None:
            pool.shutdown()
    t2 = time.perf_counter()
    scored = scoring.score(results, corpus, band="5s", n_resamples=0)
    summary = scoring.summarize(scored, corpus=corpus, n_resamples=args.resamples)
    frontier = scoring.fixed_count_frontier(corpus)
    t3 = time.perf_counter()
    print(f"{len(corpus.trace_ids)} benchmarks, {len(corpus)} forks, {len(specs)} criteria: "
          f"load {t1 - t0:.1f} s, replay {t2 - t1:.1f} s, scoring and baseline "
          f"{t3 - t2:.1f} s")
    benchmarks = {str(t.metadata.tags.get("benchmark", "")) for t in traces}
    waste = waste_table(scored).sort_values("median_abs_waste_s")
    table = pd.concat([published_table(args.data / "cfg_assessment.csv", benchmarks), waste],
                      ignore_index=True)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.float_format", "{:.3g}".format,
                           "display.max_columns", 30):
        print("\n|time waste| over the steady forks (s):")
        print(table.to_string(index=False))
        print("\nAgainst the fixed count of the same mean cost, on the same forks:")
        print(summary[BASELINE].sort_values("premature_lift").to_string(index=False))
        print("\nThe fixed-count curve:")
        print(frontier.to_string(index=False))
    print()
    print(scoring.describe_versus_fixed(summary))
    if args.out is not None:
        from llenergymeasure.analysis.figures import figure_cost_error, save_figure

        args.out.mkdir(parents=True, exist_ok=True)
        summary.to_csv(args.out / "summary.csv", index=False)
        frontier.to_csv(args.out / "frontier.csv", index=False)
        save_figure(figure_cost_error(scored, corpus), args.out / "cost_error", ("png",))
        print(f"wrote {args.out}/summary.csv, frontier.csv, cost_error.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
