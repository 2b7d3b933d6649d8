"""How close do the labellers come to people? Median absolute error on 20 hand-labelled forks.

Reads `<data>/traini-dev/human_starts.csv` (fork 0 of 20 JMH benchmarks labelled by five
people, Beseda et al. 2025: each one's 0-based steady-state start and their median) and the
series in `<data>/traini-dev/timeseries/all/`. Every labeller of
`llenergymeasure.analysis.labels` labels each fork; the error of a label is its distance to
the people's median in seconds (0.1 s per iteration); a label of -1 (no steady state) or
unknown counts as the end of the fork (3000). Printed:

- the median absolute error (MAE) of every single method on the 20 forks (nothing is fitted);
- the published labels of Traini et al. (`classification/`);
- one person against the median of the other four (the people's own disagreement);
- a trivial labeller: a constant, the median of the other 19 people's medians (leave-one-out);
- the consensus labeller with its defaults (in-sample: the defaults were chosen on these 20);
- the consensus labeller's leave-one-out error: for each fork, its `settle` parameters are
  chosen (least MAE) on the other 19 from a grid and applied to the held-out fork, its
  members fixed (`settle`, `max_ess`, `mser`);
- the same with the members chosen on the other 19 as well (every subset of the three).

Usage:

    python examples/label_against_people.py [DATA_DIR]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from llenergymeasure.analysis.labels import (
    ConsensusParams,
    consensus_label,
    make_labeller,
    median_of_members,
    settle_start,
)
from llenergymeasure.analysis.reference import traini_start_to_reference

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SECONDS_PER_ITERATION = 0.1
SINGLE_METHODS = ("max_ess", "traini", "mser5", "red_sse", "pelt")

#: The grid the leave-one-out chooses the settle parameters from.
SETTLE_GRID = {
    "window_fraction": (0.01, 0.02, 0.05),
    "floor_quantile": (0.1, 0.25, 0.5),
    "band_quantile": (0.01, 0.05, 0.1),
    "band_widen": (0.0, 0.25, 0.5, 1.0),
    "persist_fraction": (0.02, 0.05, 0.1),
}


def load(root: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[int]]:
    """Series, people's median, each person's start (20 x 5) and the published labels."""
    series, median, people, published = [], [], [], []
    with (root / "human_starts.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            name, fork = row["benchmark"], int(row["fork"])
            series.append(np.asarray(json.loads(
                (root / "timeseries" / "all" / name).read_text())[fork], dtype=np.float64))
            median.append(int(row["median"]))
            people.append([int(row[f"annotator_{i}"]) for i in range(1, 6)])
            pub = json.loads((root / "classification" / name).read_text())
            published.append(traini_start_to_reference(pub["steady_state_starts"][fork]))
    return series, np.asarray(median), np.asarray(people), published


def errors(labels: list[int | None], series: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
    """|label - truth| in seconds; -1 or unknown counts as the end of the run."""
    lab = np.array([len(x) if (v is None or v < 0) else v for v, x in zip(labels, series,
                                                                          strict=True)])
    return np.abs(lab - truth) * SECONDS_PER_ITERATION


def loo(err: np.ndarray) -> np.ndarray:
    """Held-out errors: for each series, the candidate (row) of least median error on the
    other series is applied to it."""
    k = err.shape[1]
    out = np.empty(k)
    for j in range(k):
        keep = np.arange(k) != j
        out[j] = err[int(np.argmin(np.median(err[:, keep], axis=1))), j]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    root = args.data / "traini-dev"
    if not (root / "human_starts.csv").is_file():
        print(f"no hand labels at {root / 'human_starts.csv'}: nothing to measure")
        return 0
    series, truth, people, published = load(root)
    n = len(series)
    rows: list[tuple[str, float, str]] = []

    for spec in SINGLE_METHODS:
        lab = make_labeller(spec)
        starts = [lab.label(_run(x)).reference_start for x in series]
        rows.append((spec, float(np.median(errors(starts, series, truth))), "single method"))
    rows.append(("published labels (Traini et al.)",
                 float(np.median(errors(published, series, truth))), "single method"))
    for i in range(people.shape[1]):
        others = np.median(np.delete(people, i, axis=1), axis=1)
        rows.append((f"annotator {i + 1} vs the other four",
                     float(np.median(np.abs(people[:, i] - others)) * SECONDS_PER_ITERATION),
                     "people"))
    const = [int(np.median(np.delete(truth, j))) for j in range(n)]
    rows.append(("constant (median of the other 19)",
                 float(np.median(errors(const, series, truth))), "trivial, leave-one-out"))
    rows.append(("settle (defaults)", float(np.median(errors(
        [settle_start(x) for x in series], series, truth))), "in-sample"))
    defaults = [consensus_label(x) for x in series]
    rows.append(("consensus (defaults)", float(np.median(errors(
        [c.reference_start for c in defaults], series, truth))), "in-sample"))

    # Leave-one-out: members' starts other than settle do not depend on the grid.
    fixed = {m: [c.members[m] for c in defaults] for m in ("max_ess", "mser")}
    grid = [dict(zip(SETTLE_GRID, values, strict=True))
            for values in itertools.product(*SETTLE_GRID.values())]
    settles = [[settle_start(x, ConsensusParams(**g)) for x in series] for g in grid]
    subsets = [s for k in range(1, 4)
               for s in itertools.combinations(("settle", "max_ess", "mser"), k)]
    table: dict[tuple[str, ...], list[np.ndarray]] = {s: [] for s in subsets}
    for st in settles:
        for subset in subsets:
            starts = []
            for j in range(n):
                members = {m: (st[j] if st[j] >= 0 else None) if m == "settle" else fixed[m][j]
                           for m in subset}
                starts.append(median_of_members(members))
            table[subset].append(errors(starts, series, truth))
    full = np.array(table[("settle", "max_ess", "mser")])
    rows.append(("consensus, leave-one-out (settle parameters chosen on 19)",
                 float(np.median(loo(full))), "LOO"))
    every = np.array([e for s in subsets for e in table[s]])
    rows.append(("consensus, leave-one-out (parameters and members chosen on 19)",
                 float(np.median(loo(every))), "LOO"))

    width = max(len(r[0]) for r in rows)
    print(f"{n} hand-labelled forks; error = |label - people's median| in seconds "
          f"({SECONDS_PER_ITERATION} s per iteration)\n")
    print(f"{'labeller':<{width}}  {'MAE (s)':>8}  kind")
    for name, mae, kind in rows:
        print(f"{name:<{width}}  {mae:8.2f}  {kind}")
    return 0


def _run(x: np.ndarray):
    from llenergymeasure.analysis.corpus import RunRecord

    return RunRecord("fork", "0", {"latency_ms": x})


if __name__ == "__main__":
    sys.exit(main())
