"""``llem-warmup validate | convert | show``: check, convert and summarise trace files."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from llenergymeasure.domain.trace import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Trace, TraceFormatError

__all__ = ["cmd_convert", "cmd_show", "cmd_validate", "register"]

logger = logging.getLogger(__name__)


def _load(path: str, fmt: str | None) -> Trace:
    from llenergymeasure.traces.io import load_trace

    return load_trace(path, format=fmt)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every file; print what is wrong and where. Exit 1 if any is invalid."""
    bad = 0
    for name in args.files:
        try:
            trace = _load(name, args.format)
        except (TraceFormatError, FileNotFoundError) as exc:
            bad += 1
            print(f"INVALID {exc}")
            continue
        print(f"OK {name}: {len(trace.run_ids)} run(s), {len(trace.data)} attempts, "
              f"schema v{trace.metadata.schema_version}")
    if len(args.files) > 1:
        print(f"{len(args.files) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Read IN (any readable format) and write OUT (format by suffix)."""
    from llenergymeasure.traces.io import save_trace

    try:
        trace = _load(args.input, args.format)
        out = save_trace(trace, args.output)
    except (TraceFormatError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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
    """Print the runs, their lengths and stop decisions, and the columns of a trace."""
    try:
        trace = _load(args.file, args.format)
    except (TraceFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    meta = trace.metadata
    print(f"{args.file}: schema v{meta.schema_version}, written by llenergymeasure "
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
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate``, ``convert`` and ``show`` subcommands."""
    fmt_help = ("Input format: parquet, csv, jsonl, or an importer's name (traini, pyperf, "
                "jmh, csv); default: from the suffix or the content.")
    p = subparsers.add_parser("validate", help="Check trace files; exit 1 if any is invalid.")
    p.add_argument("files", nargs="+", metavar="FILE", type=str)
    p.add_argument("--format", default=None, help=fmt_help)
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("convert", help="Convert a trace (format by the output suffix).")
    p.add_argument("input", metavar="IN", type=str)
    p.add_argument("output", metavar="OUT", type=Path)
    p.add_argument("--format", default=None, help=fmt_help)
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser("show", help="Runs, lengths, stop decisions and columns of a trace.")
    p.add_argument("file", metavar="FILE", type=str)
    p.add_argument("--format", default=None, help=fmt_help)
    p.set_defaults(func=cmd_show)
