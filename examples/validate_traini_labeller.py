"""Check the Traini-style labeller against the published labels of the Traini et al. corpus.

Reads ``<data>/traini-dev`` (``timeseries/all/*.json`` and ``classification/*.json``),
relabels every fork with :func:`llenergymeasure.analysis.reference.traini_label` and
prints the agreement of the steady-state starts (exact, within +-5 and +-50 iterations,
over the forks that both call steady) and of the steady / no-steady label.

Usage::

    python examples/validate_traini_labeller.py [DATA_DIR] [--limit N] [--jobs J]
        [--resamples B] [--csv OUT.csv]
"""

from __future__ import annotations

import argparse
import json
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
    params = TrainiParams(n_resamples=resamples)
    rows = []
    for k, (series, pub) in enumerate(zip(forks, published, strict=True)):
        lab = traini_label(series, params)
        rows.append(
            {"benchmark": ts_path.stem, "fork": k, "published": int(pub), "ours": lab.traini_start}
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
    with ProcessPoolExecutor(max_workers=ns.jobs) as pool:
        for res in pool.map(label_benchmark, tasks):
            rows.extend(res)
    pub = np.array([r["published"] for r in rows])
    ours = np.array([r["ours"] for r in rows])
    stats = agreement(pub, ours)
    print(f"{'metric':<18}{'value':>10}")
    for key, val in stats.items():
        print(f"{key:<18}{val:>10.3f}" if isinstance(val, float) else f"{key:<18}{val:>10d}")
    if ns.csv:
        import csv

        with ns.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
