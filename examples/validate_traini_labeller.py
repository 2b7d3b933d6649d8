"""Check the Traini labeller, intermediate by intermediate, against the reference pipeline.

Reads `<data>/traini-dev`: the raw forks (`timeseries/all/*.json`), the published
labels (`classification/*.json`) and changepoints (`changepoints/*.json`), and
`crops_golden.json`, which holds for the 300 development forks what the reference
implementation computes (R changepoint 2.2.x CROPS, kneed 0.7.0, final changepoints,
outlier indexes). For every fork it runs
`llenergymeasure.analysis.reference.traini_changepoints` and `traini_walk_back` and
counts the forks whose

- outlier indexes equal the golden ones;
- CROPS penalties (1e-6 relative) and changepoint counts equal R's, in R's order;
- knee penalty equals the golden one (1e-6 relative);
- changepoints equal the golden ones, and the published ones;
- knee and changepoints both match (the goal: >= 95 %);
- steady-state start is within +-50 iterations of the published one (the goal: >= 90 %;
  both "no steady state" counts as a match, one of them alone as a miss); also reported
  over the forks both call steady, as earlier versions of this script did;

and the CPU seconds per fork (process time, so other load on the machine does not count).
A line per benchmark is printed as it finishes.

Usage:

    python examples/validate_traini_labeller.py [DATA_DIR] [--limit N] [--jobs J]
        [--resamples B] [--csv OUT.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from llenergymeasure.analysis.reference import (
    TrainiParams,
    traini_changepoints,
    traini_walk_back,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or a == b


def check_benchmark(args: tuple[Path, str, list[dict], int]) -> list[dict]:
    """Relabel the forks of one benchmark; one dict of agreements per fork."""
    root, name, golden, resamples = args
    forks = json.loads((root / "timeseries" / "all" / name).read_text())
    published = json.loads((root / "classification" / name).read_text())["steady_state_starts"]
    pub_cpts = json.loads((root / "changepoints" / name).read_text())
    params = TrainiParams(n_resamples=resamples)
    rows = []
    for g in golden:
        k = g["fork"]
        x = np.asarray(forks[k], dtype=np.float64)
        t0 = time.process_time()
        cp = traini_changepoints(x, params)
        start = traini_walk_back(x, cp.changepoints, params)
        steady = start <= x.size - 1 - params.window_for(x.size)
        ours = start if steady else -1
        cpu = time.process_time() - t0
        assert cp.crops is not None
        pens, counts = cp.crops.penalties, cp.crops.n_changepoints
        gp = np.asarray(g["crops_penalties"])
        same_pens = pens.size == gp.size and all(
            _close(a, b) for a, b in zip(pens, gp, strict=True)
        )
        pub = int(published[k])
        rows.append(
            {
                "benchmark": name,
                "fork": k,
                "outliers": cp.outliers.tolist() == g["outliers"],
                "crops_penalties": same_pens,
                "crops_ncpts": counts.tolist() == g["crops_ncpts"],
                "knee": _close(cp.penalty, g["knee_penalty"]),
                "changepoints": cp.changepoints == g["changepoints"],
                "changepoints_published": cp.changepoints == [int(c) for c in pub_cpts[k]],
                "published_start": pub,
                "start": ours,
                "within_50": (pub < 0 and ours < 0)
                or (pub >= 0 and ours >= 0 and abs(pub - ours) <= 50),
                "crops_runs": cp.crops.n_runs,
                "cpu_s": cpu,
            }
        )
    return rows


def summarize(rows: list[dict]) -> dict[str, float]:
    """Shares of forks that agree, and CPU time per fork."""

    def share(key: str) -> float:
        return float(np.mean([bool(r[key]) for r in rows]))

    pub = np.array([r["published_start"] for r in rows])
    ours = np.array([r["start"] for r in rows])
    both = (pub >= 0) & (ours >= 0)
    cpu = np.array([r["cpu_s"] for r in rows])
    return {
        "forks": len(rows),
        "outliers_equal": share("outliers"),
        "crops_penalties_equal": share("crops_penalties"),
        "crops_ncpts_equal": share("crops_ncpts"),
        "knee_equal": share("knee"),
        "changepoints_equal": share("changepoints"),
        "knee_and_changepoints": float(np.mean([r["knee"] and r["changepoints"] for r in rows])),
        "changepoints_equal_published": share("changepoints_published"),
        "start_within_50": share("within_50"),
        "label_agreement": float(np.mean((pub >= 0) == (ours >= 0))),
        "start_within_50_both_steady": float(np.mean(np.abs(pub[both] - ours[both]) <= 50)),
        "start_exact": float(np.mean(pub == ours)),
        "cpu_s_per_fork_mean": float(cpu.mean()),
        "cpu_s_per_fork_median": float(np.median(cpu)),
        "cpu_s_per_fork_max": float(cpu.max()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None, help="first N benchmarks only")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--csv", type=Path, default=None, help="write per-fork rows here")
    ns = ap.parse_args(argv)
    root = ns.data / "traini-dev"
    golden = json.loads((root / "crops_golden.json").read_text())["benchmarks"]
    names = sorted(golden)[: ns.limit]
    tasks = [(root, name, golden[name], ns.resamples) for name in names]
    rows: list[dict] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=ns.jobs) as pool:
        for i, res in enumerate(pool.map(check_benchmark, tasks), start=1):
            rows.extend(res)
            ok = sum(r["knee"] and r["changepoints"] for r in res)
            near = sum(r["within_50"] for r in res)
            print(
                f"[{i}/{len(tasks)} {time.perf_counter() - t0:7.1f}s] {res[0]['benchmark'][:60]}: "
                f"knee+cpts {ok}/{len(res)}, start +-50 {near}/{len(res)}",
                flush=True,
            )
    for key, val in summarize(rows).items():
        print(f"{key:<32}{val:>10.3f}" if isinstance(val, float) else f"{key:<32}{val:>10d}")
    if ns.csv:
        with ns.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
