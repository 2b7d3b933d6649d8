"""``llem-warmup recommend``: calibrate a warmup setting on labelled traces and write it.

A thin layer over `llenergymeasure.analysis.recommend.recommend`: it reads the traces
(and a reference file), replays the candidate space, prints the recommendation in plain
words, with its out-of-fold figures beside the fixed count of the same cost, and writes
the recommended `WarmupConfig` (a `warmup.yaml` that `WarmupConfig.from_file` reads and
`warmup_until_converged` runs unchanged; the provenance is in its `#` comments).
Errors reach `llenergymeasure.cli.main` (exit 2 for bad input, 1 at run time).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from llenergymeasure.cli._common import (
    CliInputError,
    load_inputs,
    nonnegative_int,
    positive_int,
    process_pool,
)

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _share(text: str) -> float:
    """argparse type: a share in [0, 1), given as 0.1 or 10%."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.1 or 10%, got {text!r}") \
            from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0.1 = 10%), got {text!r}")
    return value


def _cmd_recommend(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis.corpus import Corpus
    from llenergymeasure.analysis.recommend import read_candidates, recommend
    from llenergymeasure.analysis.scoring import Band
    from llenergymeasure.config.files import CONFIG_SUFFIXES
    from llenergymeasure.criteria.registry import make_criterion

    out = Path(args.output)
    if out.suffix.lower() not in CONFIG_SUFFIXES:
        raise CliInputError(f"{out}: the output is a warmup configuration file; use one of "
                            f"{', '.join(CONFIG_SUFFIXES)}")
    if out.is_dir():
        raise CliInputError(f"{out} is a folder; -o names the configuration file to write")
    if out.exists() and not args.overwrite:
        raise CliInputError(f"{out} exists (pass --overwrite to replace it)")
    if args.candidates and args.criterion:
        raise CliInputError("give --candidates FILE or --criterion SPEC, not both")
    if args.max_bias <= 0:
        raise CliInputError(f"--max-bias must be > 0, got {args.max_bias}")
    if args.folds < 2:
        raise CliInputError(f"--folds must be at least 2, got {args.folds}")
    Band.parse(args.band)  # a bad band fails before the traces are read
    candidates = None
    if args.candidates:
        candidates = read_candidates(args.candidates)
    elif args.criterion:
        candidates = [make_criterion(s).spec for s in args.criterion]
    reference = args.reference
    if reference is not None and not Path(reference).is_file():
        raise CliInputError(f"no reference file {reference}")
    traces = load_inputs(args.traces, args.format, keep_going=args.keep_going, quiet=args.quiet)
    corpus = Corpus.build(traces)
    pool = process_pool(args.jobs)
    try:
        rec = recommend(corpus, reference, candidates=candidates,
                        max_premature=args.max_premature, max_bias=args.max_bias,
                        folds=args.folds, band=args.band, cost=args.cost, seed=args.seed,
                        n_resamples=args.n_resamples, measure_samples=args.measure_samples,
                        executor=pool,
                        show_progress=False if args.quiet else None)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    print(rec.describe(width=79))
    if args.table:
        table = Path(args.table)
        table.parent.mkdir(parents=True, exist_ok=True)
        if table.suffix.lower() == ".parquet":
            rec.candidates.to_parquet(table)
        else:
            rec.candidates.to_csv(table, index=False)
        print(f"wrote the per-candidate table to {table}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rec.to_file(out)
    print(f"wrote {out} ({rec.runtime_s:.1f} s); use it with WarmupConfig.from_file({str(out)!r})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``recommend`` subcommand."""
    p = subparsers.add_parser(
        "recommend",
        help="Calibrate a warmup setting on labelled traces and write warmup.yaml.",
        description="Replay a space of warmup settings (fixed counts, every criterion family "
        "around its defaults, time floors and caps) on labelled traces, pick the cheapest "
        "one meeting the limits by cross-validation grouped by trace, compare it with the "
        "fixed count of the same cost, and write the recommended WarmupConfig. An adaptive "
        "rule is recommended only when it beats that fixed count.",
    )
    p.add_argument("traces", nargs="+", help="Trace files or folders, with reference starts "
                   "(their own labels, e.g. from the Traini importer or `llem-warmup label`, "
                   "or those of --reference).")
    p.add_argument("--reference", metavar="CSV",
                   help="trace_id,run_id,reference_start (replaces the runs' own labels).")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="Configuration file to write (warmup.yaml, .yml or .json).")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output file.")
    p.add_argument("--max-premature", type=_share, default=0.1, metavar="P",
                   help="Largest share of runs stopped before their steady state (0.1).")
    p.add_argument("--max-bias", type=_share, default=0.01, metavar="B",
                   help="Largest P90 |relative bias| of the post-stop mean (0.01 = 1%%).")
    p.add_argument("--measure-samples", type=positive_int, default=None, metavar="N",
                   help="Measure the bias on the N samples after the stop (your measurement "
                        "phase); a run with fewer left after a stop is not counted for that "
                        "setting (default: every sample after the stop).")
    p.add_argument("--folds", type=positive_int, default=5,
                   help="Cross-validation folds, grouped by trace (5).")
    p.add_argument("--band", default="5s+50",
                   help="'Exact' band of the scoring, reported per candidate (5s+50).")
    p.add_argument("--cost", choices=("samples", "seconds"), default="samples",
                   help="What 'cheapest' means: mean samples or seconds to the stop (samples).")
    p.add_argument("--candidates", metavar="FILE",
                   help="YAML or JSON list of spec strings or WarmupConfig mappings "
                        "(default: the documented candidate space).")
    p.add_argument("--criterion", "-c", action="append", metavar="SPEC",
                   help="A candidate criterion spec, repeatable (instead of the default "
                        "space; fixed counts are always added).")
    p.add_argument("--format", help="Importer for the trace files (traini, pyperf, jmh, csv).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the folds and bootstrap (0).")
    p.add_argument("--n-resamples", type=nonnegative_int, default=1000,
                   help="Bootstrap resamples of the CIs (1000; 0: none).")
    p.add_argument("--table", metavar="FILE",
                   help="Also write the per-candidate table (.csv or .parquet).")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, help="Worker processes (1).")
    p.add_argument("--keep-going", action="store_true",
                   help="Report and skip a trace file that cannot be read (default: stop at it).")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bars.")
    p.set_defaults(func=_cmd_recommend)
