"""Calibrate a warmup setting on the Traini et al. JMH corpus with `recommend`.

The corpus (30 benchmarks x 10 forks x 3,000 iterations of about 100 ms, published
steady-state starts; 253 forks reach a steady state) is read from
`../shared/data/traini-dev` (or `--data`) with the `traini` importer, as
`examples/compare_on_traini.py` does. `recommend` replays the default candidate space
(`candidate_space`: fixed counts, every light and moderate criterion family around its
defaults, time floors and caps), picks the cheapest setting meeting the limits by
5-fold cross-validation grouped by benchmark, and compares the out-of-fold stops with the
fixed count of the same mean cost. The script prints the recommendation for the default
limits (premature rate <= 10%, P90 |relative bias| <= 1%) and for each `--max-bias`
given after them (with `--measure-samples N`, the bias of the N samples after the
stop), the runtime, and with `--out DIR` writes `warmup.yaml` and the
per-candidate table.

Run::

    python examples/recommend_on_traini.py [--data DIR] [--limit N] [--jobs 2]
                                           [--max-bias 0.01 0.03] [--measure-samples N]
                                           [--out DIR]

References
----------
L. Traini, V. Cortellessa, D. Di Pompeo and M. Tucci, "Towards effective assessment of
steady state performance in Java software: are we there yet?", Empirical Software
Engineering 28(1):13, 2023.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from llenergymeasure.analysis.corpus import Corpus
from llenergymeasure.analysis.recommend import recommend
from llenergymeasure.traces.importers import load_traini_corpus

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traini-dev"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Traini corpus folder.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N benchmarks.")
    parser.add_argument("--jobs", type=int, default=2, help="Worker processes (2).")
    parser.add_argument("--max-premature", type=float, default=0.1)
    parser.add_argument("--max-bias", type=float, nargs="+", default=[0.01, 0.03],
                        help="One recommendation per value (0.01 0.03).")
    parser.add_argument("--measure-samples", type=int, default=None,
                        help="Measure the bias on this many samples after the stop "
                             "(default: every sample after it).")
    parser.add_argument("--out", type=Path, default=None,
                        help="Write warmup.yaml (first --max-bias) and candidates.csv here.")
    args = parser.parse_args(argv)
    if not (args.data / "timeseries" / "all").is_dir():
        print(f"Traini corpus not found at {args.data}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    corpus = Corpus.build(load_traini_corpus(args.data, limit=args.limit))
    print(f"{len(corpus.trace_ids)} benchmarks, {len(corpus)} forks "
          f"(load {time.perf_counter() - t0:.1f} s)")
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    try:
        for i, max_bias in enumerate(args.max_bias):
            rec = recommend(corpus, max_premature=args.max_premature, max_bias=max_bias,
                            measure_samples=args.measure_samples, executor=pool,
                            show_progress=False)
            print(f"\n=== max_premature={args.max_premature:g}, max_bias={max_bias:g} "
                  f"({len(rec.candidates)} candidates, {rec.runtime_s:.1f} s, "
                  f"--jobs {args.jobs}) ===\n")
            print(rec.describe())
            if args.out is not None and i == 0:
                args.out.mkdir(parents=True, exist_ok=True)
                rec.to_file(args.out / "warmup.yaml")
                rec.candidates.to_csv(args.out / "candidates.csv", index=False)
                print(f"wrote {args.out}/warmup.yaml and candidates.csv")
    finally:
        if pool is not None:
            pool.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
