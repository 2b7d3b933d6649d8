"""``llem-warmup validate | convert | show``: check, convert and summarise trace files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from llenergymeasure.traces.model import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Trace

__all__ = ["cmd_convert", "cmd_show", "cmd_validate", "register"]

logger = logging.getLogger(__name__)


def _load(path: str, fmt: str | None) -> Trace:
    from llenergymeasure.traces.io import load_trace

    return load_trace(path, format=fmt)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every file (and every trace file of a folder); print what is wrong and where.
    Exit 2 (bad input) if any is invalid."""
    from llenergymeasure.cli._common import EXIT_USAGE, expand_inputs, progress

    files: list[Path] = []
    bad = bad_paths = 0
    for raw in args.files:
        try:
            files.extend(expand_inputs([raw]))
        except ValueError as exc:  # a missing path is reported like an invalid file
            bad_paths += 1
            print(f"INVALID {exc}")
    bad = bad_paths
    for name in progress(files, desc="validate", unit="file"):
        try:
            trace = _load(str(name), args.format)
        except (ValueError, OSError) as exc:
            bad += 1
            text = str(exc) if str(name) in str(exc) else f"{name}: {exc}"
            print(f"INVALID {text}")
            continue
        print(f"OK {name}: {len(trace.run_ids)} run(s), {len(trace.data)} attempts, "
              f"schema v{trace.metadata.schema_version}")
    checked = len(files) + bad_paths
    if checked > 1:
        print(f"{checked - bad} valid, {bad} invalid")
    return EXIT_USAGE if bad else 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Read IN (any readable format) and write OUT (format by suffix)."""
    from llenergymeasure.traces.io import save_trace

    trace = _load(args.input, args.format)
    out = save_trace(trace, args.output)
    print(f"wrote {out} ({len(trace.run_ids)} run(s), {len(trace.data)} attempts)")
    return 0


def _stop_text(stop_index: int) -> str:
    """A stop as a 1-based count with its 0-based index: ``sample 100 (stop_index 99)``.

    Stop reasons ("the criterion passed at sample 100") count samples from 1;
    ``stop_index`` in the trace metadata counts them from 0. ``show`` prints both
    so that one event is never called by two numbers.
    """
    return f"sample {stop_index + 1} (stop_index {stop_index})"


def cmd_show(args: argparse.Namespace) -> int:
    """Print the runs, their lengths and stop decisions, and the columns of a trace (of
    every trace of a folder)."""
    from llenergymeasure.cli._common import expand_inputs

    for i, path in enumerate(expand_inputs([args.file])):
        if i:
            print()
        _show_one(str(path), args.format)
    return 0


def _show_one(file: str, fmt: str | None) -> None:
    """Print one trace file."""
    trace = _load(file, fmt)
    meta = trace.metadata
    print(f"{file}: schema v{meta.schema_version}, written by llenergymeasure "
          f"{meta.package_version} on {meta.created:%Y-%m-%d %H:%M:%S} UTC")
    if meta.criterion:
        print(f"criterion: {meta.criterion}")
    if meta.model:
        print("model: " + ", ".join(f"{k}={v}" for k, v in meta.model.items()))
    env = meta.environment
    if env is not None:
        print(f"environment: python {env.python}, torch {env.torch}, GPU {env.gpu_name}, "
              f"host {env.hostname}")
    if meta.tags:
        print("tags: " + ", ".join(f"{k}={v}" for k, v in meta.tags.items()))
    print(f"runs: {len(trace.run_ids)}")
    for run_id in trace.run_ids:
        info = trace.run_info(run_id)
        rows = trace.data[trace.data["run_id"] == run_id]
        n_ok = int(rows["ok"].sum())
        stop = "none" if info.stop_index is None else _stop_text(info.stop_index)
        flag = " INTERRUPTED" if info.interrupted else ""
        print(f"  {run_id}: {len(rows)} attempts ({n_ok} ok, {len(rows) - n_ok} failed), "
              f"status {info.status}{flag}, stop at {stop}")
        if info.stop_reason:
            print(f"    reason: {info.stop_reason}")
        if info.reference_start is not None:
            print(f"    reference start: {info.reference_start}")
        for spec, dec in info.shadow.items():
            where = "no stop" if dec.stop_index is None else _stop_text(dec.stop_index)
            print(f"    shadow {spec}: {where}")
    known = {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}
    cols = []
    for col in trace.data.columns:
        spec = known.get(str(col))
        kind = "" if spec is None else f" [{spec.unit}]" if spec.unit else ""
        extra = "" if spec is not None else " (extra)"
        cols.append(f"{col}{kind}{extra}")
    print("columns: " + ", ".join(cols))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate``, ``convert`` and ``show`` subcommands."""
    fmt_help = ("Input format: parquet, csv, jsonl, or an importer's name (traini, pyperf, "
                "jmh, csv); default: from the suffix or the content.")
    p = subparsers.add_parser("validate",
                              help="Check trace files or folders; exit 2 if any is invalid.")
    p.add_argument("files", nargs="+", metavar="PATH", type=str, help="Files or folders.")
    p.add_argument("--format", default=None, help=fmt_help)
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("convert", help="Convert a trace (format by the output suffix).")
    p.add_argument("input", metavar="IN", type=str)
    p.add_argument("output", metavar="OUT", type=Path)
    p.add_argument("--format", default=None, help=fmt_help)
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser("show", help="Runs, lengths, stop decisions and columns of a trace.")
    p.add_argument("file", metavar="PATH", type=str, help="A trace file or a folder of them.")
    p.add_argument("--format", default=None, help=fmt_help)
    p.set_defaults(func=cmd_show)
