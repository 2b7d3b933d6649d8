"""Analysis subcommands of ``llem-warmup``: criteria, replay, compare, figures, simulate, demo.

Each is a thin layer over a library function
(:func:`~llenergymeasure.analysis.replay.replay`,
:func:`~llenergymeasure.analysis.demo.run_demo`, the scoring and synthetic
modules); errors in the input come back as exit code 2 with a one-line
message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["register"]

logger = logging.getLogger(__name__)

#: Exit code for bad input (unknown criterion, unreadable file, ...).
EXIT_USAGE = 2


def _fail(message: str) -> int:
    print(f"llem-warmup: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected input errors into an exit code and a one-line message."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, KeyError, FileNotFoundError, ImportError) as exc:
            return _fail(str(exc))

    wrapped.__doc__ = func.__doc__
    return wrapped


# ------------------------------------------------------------------- criteria
def _cmd_criteria(args: argparse.Namespace) -> int:
    from llenergymeasure.criteria.registry import available_criteria, criterion_info

    infos = [criterion_info(n) for n in (args.names or available_criteria())]
    if args.json:
        print(json.dumps(infos, indent=2, default=str))
        return 0
    for info in infos:
        print(f"{info['name']}: {info['summary']}")
        for p in info["parameters"]:
            default = "required" if p["required"] else f"default {p['default']!r}"
            print(f"    {p['name']} ({p['type']}, {default}): {p['description']}")
    return 0


# --------------------------------------------------------------------- replay
def _load_grid(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        grid = yaml.safe_load(text)
    else:
        grid = json.loads(text)
    if not isinstance(grid, dict):
        raise ValueError(f"{path}: a grid is a mapping {{criterion: {{parameter: [values]}}}}")
    return grid


def _load_all(paths: list[str], fmt: str | None) -> Any:
    """The runs of trace files and folders, ids unique whatever the order (a Corpus)."""
    from llenergymeasure.analysis.corpus import Corpus

    corpus = Corpus.build(list(paths), format=fmt)
    if not len(corpus):
        raise ValueError(f"no trace found in {', '.join(paths)}")
    return corpus


def _executor(jobs: int) -> Any:
    if jobs <= 1:
        return None
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs)


def _cmd_replay(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis.demo import default_criteria
    from llenergymeasure.analysis.replay import replay
    from llenergymeasure.criteria.stopping import StopRule

    grid = _load_grid(args.grid)
    specs = args.criterion or ([] if grid else default_criteria())
    rule = StopRule(min_samples=args.min_samples, check_every=args.check_every,
                    patience=args.patience, max_samples=args.max_samples)
    from llenergymeasure.analysis.replay import expand_grid

    expand_grid(specs, grid)  # unknown criteria fail before the traces are read
    traces = _load_all(args.traces, args.format)
    pool = _executor(args.jobs)
    try:
        df = replay(traces, specs, grid=grid, stop_rule=rule, executor=pool,
                    show_progress=not args.quiet)
    finally:
        if pool is not None:
            pool.shutdown()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out)
    n_stop = int(df["stopped"].sum())
    print(f"replayed {df[['trace_id', 'run_id']].drop_duplicates().shape[0]} runs x "
          f"{df['spec'].nunique()} criterion settings = {len(df)} rows "
          f"({n_stop} stopped) -> {out}")
    return 0


def _read_results(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no results file {p}")
    return pd.read_csv(p) if p.suffix.lower() == ".csv" else pd.read_parquet(p)


# -------------------------------------------------------------------- compare
def _cmd_compare(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis import scoring, tables

    results = _read_results(args.results)
    traces = _load_all(args.traces, None) if args.traces else []
    if args.reference:
        from llenergymeasure.analysis.corpus import Corpus

        traces = Corpus.build(traces).with_reference(args.reference)
        results = results.drop(columns=["reference_start"], errors="ignore")
    scored = scoring.score(results, traces, band=args.band)
    summary = scoring.summarize(scored, corpus=traces)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(out / "scored.parquet")
    tables.export_table(summary, out / "summary", caption="Warmup criteria compared",
                        label="tab:criteria")
    text = "# Comparison of warmup criteria\n\n"
    band = scoring.Band.parse(args.band)
    text += f"Source: `{args.results}`; a stop is exact within {band.describe()}.\n\n"
    text += tables.to_markdown(summary)
    text += "\n## Against a fixed count of the same cost\n\n"
    text += scoring.describe_versus_fixed(summary)
    (out / "report.md").write_text(text, encoding="utf-8")
    print(f"scored {len(scored)} rows, {len(summary)} criterion settings -> {out}")
    return 0


# -------------------------------------------------------------------- figures
def _cmd_figures(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis.demo import write_figures

    results = _read_results(args.results)
    traces = _load_all(args.traces, None) if args.traces else None
    written = write_figures(results, Path(args.out), traces)
    for p in written:
        print(p)
    return 0


# ------------------------------------------------------------------- simulate
def _cmd_simulate(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis import synthetic
    from llenergymeasure.analysis.demo import with_trace_id
    from llenergymeasure.traces import save_trace

    kinds = args.kind or list(synthetic.SYNTHETIC_KINDS)
    unknown = [k for k in kinds if k not in synthetic.SYNTHETIC_KINDS]
    if unknown:
        return _fail(f"unknown synthetic kind(s) {unknown}; available: "
                     f"{', '.join(synthetic.SYNTHETIC_KINDS)}")
    corpus = synthetic.make_corpus(kinds, args.traces, args.n, args.seed)
    out = Path(args.out)
    if out.suffix:  # one file holding every trace as a run
        out.parent.mkdir(parents=True, exist_ok=True)
        save_trace(_merge(corpus, out.stem), out)
        print(f"{len(corpus)} runs -> {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for i, trace in enumerate(corpus):
        kind = trace.metadata.tags.get("kind", "synthetic")
        save_trace(with_trace_id(trace, f"synthetic_{i:03d}_{kind}"),
                   out / f"synthetic_{i:03d}.parquet")
    print(f"{len(corpus)} traces -> {out}/")
    return 0


def _merge(corpus: list[Any], name: str) -> Any:
    """One trace whose runs are the runs of every trace of ``corpus`` (ids made unique)."""
    from llenergymeasure.traces import Trace

    frames, runs = [], []
    for i, trace in enumerate(corpus):
        kind = trace.metadata.tags.get("kind", "synthetic")
        for rid in trace.run_ids:
            new = f"{i:03d}_{kind}_{rid}"
            part = trace.run(rid).data.copy()
            part["run_id"] = new
            frames.append(part)
            info = trace.run_info(rid).model_copy(update={"run_id": new})
            runs.append(info)
    meta = corpus[0].metadata.model_copy(update={"runs": runs, "tags": {"trace_id": name}})
    return Trace(pd.concat(frames, ignore_index=True), meta).validate()


# ----------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis.demo import run_demo

    res = run_demo(args.out, quick=args.quick, seed=args.seed, show_progress=not args.quiet)
    print(f"report: {res.report}")
    return 0


# ------------------------------------------------------------------- register
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the analysis subcommands to ``llem-warmup``."""
    p = subparsers.add_parser("criteria", help="List the criteria with parameters and defaults.")
    p.add_argument("names", nargs="*", help="Only these criteria.")
    p.add_argument("--json", action="store_true", help="Machine-readable output.")
    p.set_defaults(func=_guard(_cmd_criteria))

    p = subparsers.add_parser("replay", help="Replay traces through criteria into a results table.")
    p.add_argument("traces", nargs="+", help="Trace files or folders.")
    p.add_argument("--criterion", "-c", action="append", metavar="SPEC",
                   help="Criterion spec, repeatable (default: the demo's default set).")
    p.add_argument("--grid", metavar="FILE",
                   help="JSON or YAML: {criterion: {parameter: [values]}} (cartesian product).")
    p.add_argument("--out", "-o", required=True, help="results.parquet (or .csv).")
    p.add_argument("--format", help="Importer for the trace files (traini, pyperf, jmh, csv).")
    p.add_argument("--min-samples", type=int, default=5, help="Stop rule: first check (5).")
    p.add_argument("--check-every", type=int, default=1, help="Stop rule: cadence (1).")
    p.add_argument("--patience", type=int, default=1, help="Stop rule: passes in a row (1).")
    p.add_argument("--max-samples", type=int, default=None, help="Stop rule: cap (none).")
    p.add_argument("--jobs", "-j", type=int, default=1, help="Worker processes (1).")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar.")
    p.set_defaults(func=_guard(_cmd_replay))

    p = subparsers.add_parser("compare", help="Score a results table and write summary tables.")
    p.add_argument("results", help="results.parquet from 'replay'.")
    p.add_argument("--out", "-o", required=True, help="Report folder.")
    p.add_argument("--traces", nargs="*", default=[], help="The replayed traces (for bias CIs).")
    p.add_argument("--band", default="5s+50",
                   help="Exact band: '5s' seconds, '50' samples, '2%%' of the run, or e.g. "
                        "'5s+50' (both apply; the default).")
    p.add_argument("--reference", metavar="CSV",
                   help="Reference starts (trace_id,run_id,reference_start) to score against.")
    p.set_defaults(func=_guard(_cmd_compare))

    p = subparsers.add_parser("figures", help="Draw the figures of a results table.")
    p.add_argument("results", help="results.parquet (or scored.parquet).")
    p.add_argument("--out", "-o", required=True, help="Figure folder.")
    p.add_argument("--traces", nargs="*", default=[], help="The replayed traces (trace panels).")
    p.set_defaults(func=_guard(_cmd_figures))

    p = subparsers.add_parser("simulate", help="Write synthetic traces with known steady starts.")
    p.add_argument("--kind", action="append", help="Synthetic kind, repeatable (default: all).")
    p.add_argument("--n", type=int, default=1000, help="Samples per trace (1000).")
    p.add_argument("--traces", type=int, default=1, help="Traces per kind (1).")
    p.add_argument("--seed", type=int, default=0, help="Seed (0).")
    p.add_argument("--out", "-o", required=True, help="traces.parquet (one trace) or a folder.")
    p.set_defaults(func=_guard(_cmd_simulate))

    p = subparsers.add_parser("demo", help="Record, simulate, replay, score and report on a CPU.")
    p.add_argument("--out", "-o", required=True, help="Report folder.")
    p.add_argument("--quick", action="store_true", help="A few seconds (for tests).")
    p.add_argument("--seed", type=int, default=0, help="Seed (0).")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bars.")
    p.set_defaults(func=_guard(_cmd_demo))
