"""``llem-warmup label``: a reference steady-state start for every run of some traces.

A thin layer over `llenergymeasure.analysis.labels.label_runs`: the runs are named by the
corpus rule (as `replay` and `compare` name them), so the CSV it writes is what
``compare --reference`` reads. With ``--write-traces DIR`` or ``--in-place`` the labels
also go into the traces' run metadata (`RunInfo.reference_start`); the recorded data are
written back unchanged, and an existing label is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llenergymeasure.cli._common import (
    CliInputError,
    load_inputs,
    positive_int,
    process_pool,
    progress,
)

__all__ = ["register"]

#: Suffixes of trace files that can be rewritten in place.
_NATIVE_SUFFIXES = (".parquet", ".pq", ".jsonl", ".csv")


def _target(path: Path, trace_id: str, folder: Path | None) -> Path:
    """Where a labelled trace is written: beside the original (in place) or in `folder`,
    named by its trace id, in its own format when native, else as Parquet."""
    from llenergymeasure.traces.io import PARTIAL_SUFFIX, detect_native_format

    native = (path.suffix.lower() in _NATIVE_SUFFIXES and detect_native_format(path) is not None
              and not path.name.endswith(PARTIAL_SUFFIX))
    if folder is None:
        if not native:
            raise CliInputError(
                f"{path}: --in-place rewrites native traces (.parquet, .jsonl, .csv with its "
                "sidecar) only; write the labelled traces elsewhere with --write-traces DIR"
            )
        return path
    suffix = path.suffix.lower() if native else ".parquet"
    return folder / f"{trace_id}{suffix}"


def _cmd_label(args: argparse.Namespace) -> int:

    from llenergymeasure.analysis.corpus import Corpus, trace_id_of
    from llenergymeasure.analysis.labels import (
        apply_labels,
        label_runs,
        labels_by_run,
        make_labeller,
        write_labels,
    )
    from llenergymeasure.traces import save_trace

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise CliInputError(f"{out}: the labels are a CSV file (trace_id,run_id,"
                            "reference_start,...); give a name ending in .csv")
    if out.is_dir():
        raise CliInputError(f"{out} is a folder; --out names the labels file")
    folder = Path(args.write_traces) if args.write_traces else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise CliInputError(f"{folder} exists and is a file; --write-traces names a folder")
    if args.overwrite and folder is None and not args.in_place:
        raise CliInputError("--overwrite replaces labels in traces: give --write-traces DIR "
                            "or --in-place")
    labeller = make_labeller(args.method)  # a bad method fails before any trace is read
    pairs = load_inputs(args.traces, args.format, keep_going=args.keep_going,
                        quiet=args.quiet, with_paths=True)
    traces = [t for _, t in pairs]
    targets: list[Path] = []
    if folder is not None or args.in_place:
        sources = {p.resolve() for p, _ in pairs}
        for path, trace in pairs:
            target = _target(path, trace_id_of(trace), folder)
            if folder is not None and target.resolve() in sources:
                raise CliInputError(f"{target} is one of the input traces; --in-place "
                                    "rewrites the inputs, --write-traces needs another folder")
            targets.append(target)
        if len(set(targets)) != len(targets):
            raise CliInputError("two traces would be written to the same file in "
                                f"{folder}: their trace ids differ only in the suffix")
    corpus = Corpus.build(traces)
    pool = process_pool(args.jobs)
    try:
        with progress(total=len(corpus), desc="labelling", unit="run",
                      quiet=args.quiet) as bar:
            frame = label_runs(corpus, labeller, progress=bar, executor=pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    write_labels(frame, out)
    starts = frame["reference_start"]
    unknown = int(starts.isna().sum())
    none = int((starts == -1).sum())
    steady = len(frame) - unknown - none
    print(f"labelled {len(frame)} runs with {labeller.spec}: {steady} steady, {none} no "
          f"steady state, {unknown} unknown -> {out}")
    if targets:
        labels = labels_by_run(frame)
        totals = {"set": 0, "overwritten": 0, "kept": 0, "unchanged": 0}
        for trace, target in zip(traces, targets, strict=True):
            new, counts = apply_labels(trace, trace_id_of(trace), labels,
                                       overwrite=args.overwrite)
            for k, v in counts.items():
                totals[k] += v
            target.parent.mkdir(parents=True, exist_ok=True)
            save_trace(new, target)
        where = "in place" if args.in_place else f"to {folder}/"
        text = (f"wrote {len(targets)} traces {where}: {totals['set']} labels set, "
                f"{totals['overwritten']} overwritten")
        if totals["kept"]:
            text += (f", {totals['kept']} existing different labels kept (--overwrite "
                     "replaces them)")
        print(text)
    return 0


def register(subparsers: Any) -> None:
    """Add ``label`` to ``llem-warmup``."""
    p = subparsers.add_parser(
        "label", help="Label every run with a reference steady-state start (a reference CSV).")
    p.add_argument("traces", nargs="+", help="Trace files or folders.")
    p.add_argument("--method", "-m", default="traini", metavar="SPEC",
                   help="Labelling method: traini[:param=value,...], consensus[:...] or a "
                        "truncation criterion's spec (max_ess, mser5, red_sse, pelt); "
                        "default traini.")
    p.add_argument("--out", "-o", required=True,
                   help="labels.csv (trace_id,run_id,reference_start,method,reason; empty "
                        "reference_start = unknown, -1 = no steady state).")
    p.add_argument("--format", help="Importer for the trace files (traini, pyperf, jmh, csv).")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--write-traces", metavar="DIR",
                       help="Also write the traces with the labels in their run metadata to "
                            "DIR (native files keep their format, imported ones become "
                            "Parquet).")
    where.add_argument("--in-place", action="store_true",
                       help="Also write the labels into the trace files themselves (native "
                            "traces only).")
    p.add_argument("--overwrite", action="store_true",
                   help="Replace labels the traces already carry (default: keep them).")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, help="Worker processes (1).")
    p.add_argument("--keep-going", action="store_true",
                   help="Report and skip a trace file that cannot be read (default: stop at "
                        "it).")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar.")
    p.set_defaults(func=_cmd_label)
