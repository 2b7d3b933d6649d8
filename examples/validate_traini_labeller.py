"""Check the Traini-style labeller against the published labels of the Traini et al. corpus.

Reads ``<data>/traini-dev`` (``timeseries/all/*.json`` and ``classification/*.json``),
relabels every fork with :func:`llenergymeasure.analysis.reference.traini_label` and
prints the agreement of the steady-state starts (exact, within +-5 and +-50 iterations,
over the forks that both call steady) and of the steady / no-steady label, and how
often our changepoints equal the published ones (``changepoints/*.json``, R's
``cpt.meanvar`` at the CROPS knee).

Like is compared with like: the published ``steady_state_starts`` are in Traini's
convention (last warmup index, ``0`` all steady, ``-1`` no steady state), and so is
``TrainiLabel.traini_start``. (``RunInfo.reference_start`` of imported Traini traces is
the first steady iteration instead, ``traini_start_to_reference`` of the published
value; it is not used here.) A line per benchmark is printed as it finishes, so a run
cut short still leaves its figures so far.

Usage::

    python examples/validate_traini_labeller.py [DATA_DIR] [--limit N] [--jobs J]
        [--resamples B] [--csv OUT.csv]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from llenergymeasure.analysis.reference import TrainiParams, traini_label

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def label_benchmark(args: tuple[Path, Path, int]) -> list[dict]:
    """Relabel the forks of one benchmark file; one dict per fork."""
    ts_path, cls_path, resamples = args
    forks = json.loads(ts_path.read_text())
    published = json.loads(cls_path.read_text())["steady_state_starts"]
    cpt_path = cls_path.parent.parent / "changepoints" / cls_path.name
    pub_cpts = json.loads(cpt_path.read_text()) if cpt_path.exists() else [None] * len(forks)
    params = TrainiParams(n_resamples=resamples)
    rows = []
    for k, (series, pub, cpts) in enumerate(zip(forks, published, pub_cpts, strict=True)):
        lab = traini_label(series, params)
        rows.append(
            {
                "benchmark": ts_path.stem,
                "fork": k,
                "published": int(pub),
                "ours": lab.traini_start,
                "cpts_published": -1 if cpts is None else len(cpts),
                "cpts_ours": len(lab.changepoints),
                "cpts_equal": cpts is not None and [int(c) for c in cpts] == lab.changepoints,
            }
        )
    return rows


def agreement(published: np.ndarray, ours: np.ndarray) -> dict[str, float]:
    """Agreement figures between published and recomputed Traini starts (-1 = no steady)."""
    both = (published >= 0) & (ours >= 0)
    diff = np.abs(published[both] - ours[both])
    return {
        "forks": int(published.size),
        "label_agreement": float(np.mean((published >= 0) == (ours >= 0))),
        "both_steady": int(both.sum()),
        "exact": float(np.mean(diff == 0)) if both.any() else float("nan"),
        "within_5": float(np.mean(diff <= 5)) if both.any() else float("nan"),
        "within_50": float(np.mean(diff <= 50)) if both.any() else float("nan"),
    }


def _print_stats(rows: list[dict]) -> None:
    pub = np.array([r["published"] for r in rows])
    ours = np.array([r["ours"] for r in rows])
    stats = agreement(pub, ours)
    with_cpts = [r for r in rows if r["cpts_published"] >= 0]
    if with_cpts:
        stats["same_n_cpts"] = float(
            np.mean([r["cpts_published"] == r["cpts_ours"] for r in with_cpts])
        )
        stats["equal_cpts"] = float(np.mean([r["cpts_equal"] for r in with_cpts]))
    print(f"{'metric':<18}{'value':>10}")
    for key, val in stats.items():
        print(f"{key:<18}{val:>10.3f}" if isinstance(val, float) else f"{key:<18}{val:>10d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None, help="first N benchmarks only")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--csv", type=Path, default=None, help="write per-fork labels here")
    ns = ap.parse_args(argv)
    root = ns.data / "traini-dev"
    files = sorted((root / "timeseries" / "all").glob("*.json"))[: ns.limit]
    tasks = [(f, root / "classification" / f.name, ns.resamples) for f in files]
    rows: list[dict] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=ns.jobs) as pool:
        for i, res in enumerate(pool.map(label_benchmark, tasks), start=1):
            rows.extend(res)
            agree = sum((r["published"] >= 0) == (r["ours"] >= 0) for r in res)
            exact = sum(r["published"] == r["ours"] for r in res)
            print(
                f"[{i}/{len(tasks)} {time.perf_counter() - t0:7.1f}s] {res[0]['benchmark'][:70]}: "
                f"label {agree}/{len(res)}, exact {exact}/{len(res)}",
                flush=True,
            )
    print(f"{len(rows)} forks of {len(tasks)} benchmarks in {time.perf_counter() - t0:.1f}s")
    _print_stats(rows)
    if ns.csv:
        import csv

        with ns.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
