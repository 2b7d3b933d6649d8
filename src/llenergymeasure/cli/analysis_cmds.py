"""Analysis subcommands of ``llem-warmup``: criteria, replay, compare, figures, simulate, demo.

Each is a thin layer over a library function
(:func:`~llenergymeasure.analysis.replay.replay`,
:func:`~llenergymeasure.analysis.demo.run_demo`, the scoring and synthetic
modules). Errors reach `llenergymeasure.cli.main`, which turns them into one line and
the exit code of the convention (2 bad input, 1 failure, 130 Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.cli._common import (
    CliInputError,
    load_grid,
    load_inputs,
    nonnegative_int,
    positive_int,
    process_pool,
    progress,
)

__all__ = ["register"]

logger = logging.getLogger(__name__)

#: Suffixes of the results tables `replay` writes and the other subcommands read.
RESULT_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
#: Columns without which a file is not a results table.
RESULT_COLUMNS = ("trace_id", "run_id", "spec", "stop_index")


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
def _results_format(path: Path) -> str:
    fmt = RESULT_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise CliInputError(
            f"{path}: cannot write a results table with suffix {path.suffix!r}; use "
            f"{', '.join(RESULT_SUFFIXES)}"
        )
    return fmt


def _write_results(df: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if _results_format(out) == "csv":
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out)


def _chunks(traces: list[Any], runs_per_chunk: int) -> list[tuple[Any, int]]:
    """(trace restricted to a few runs, number of runs), trace ids fixed from the whole
    list so that every chunk names its rows as one replay of everything would."""
    from llenergymeasure.analysis.corpus import trace_id_of
    from llenergymeasure.traces import Trace

    out: list[tuple[Any, int]] = []
    for trace in traces:
        tid = trace_id_of(trace)
        run_ids = [str(r) for r in trace.run_ids]
        tags = {**trace.metadata.tags, "trace_id": tid}
        for i in range(0, len(run_ids), runs_per_chunk):
            part = set(run_ids[i:i + runs_per_chunk])
            data = trace.data if len(part) == len(run_ids) else (
                trace.data[trace.data["run_id"].astype(str).isin(part)])
            runs = [r for r in trace.metadata.runs if str(r.run_id) in part]
            meta = trace.metadata.model_copy(update={"runs": runs, "tags": tags})
            out.append((Trace(data, meta), len(part)))
    return out


def _cmd_replay(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis.demo import default_criteria
    from llenergymeasure.analysis.replay import expand_grid, replay
    from llenergymeasure.criteria.stopping import StopRule

    out = Path(args.out)
    _results_format(out)  # a wrong suffix fails before any work
    if out.is_dir():
        raise CliInputError(f"{out} is a folder; --out names the results file")
    grid = load_grid(args.grid)
    specs = args.criterion or ([] if grid else default_criteria())
    rule = StopRule(min_samples=args.min_samples, check_every=args.check_every,
                    patience=args.patience, max_samples=args.max_samples)
    expand_grid(specs, grid)  # unknown criteria fail before the traces are read
    traces = load_inputs(args.traces, args.format, keep_going=args.keep_going,
                         quiet=args.quiet)
    chunks = _chunks(traces, max(8, 4 * args.jobs))
    total = sum(n for _, n in chunks)
    pool = process_pool(args.jobs)
    frames: list[pd.DataFrame] = []
    done = 0
    try:
        with progress(total=total, desc="replay", unit="run", quiet=args.quiet) as bar:
            for chunk, n in chunks:
                frames.append(replay([chunk], specs, grid=grid, stop_rule=rule,
                                     executor=pool, show_progress=False))
                done += n
                bar.update(n)
    except KeyboardInterrupt:
        if frames:
            partial = out.with_name(f"{out.stem}.partial{out.suffix}")
            _write_results(pd.concat(frames, ignore_index=True), partial)
            print(f"interrupted: {done} of {total} runs replayed -> {partial} (partial)",
                  file=sys.stderr)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    df = pd.concat(frames, ignore_index=True)
    _write_results(df, out)
    n_stop = int(df["stopped"].sum())
    print(f"replayed {df[['trace_id', 'run_id']].drop_duplicates().shape[0]} runs x "
          f"{df['spec'].nunique()} criterion settings = {len(df)} rows "
          f"({n_stop} stopped) -> {out}")
    return 0


def _read_results(path: str) -> pd.DataFrame:
    """A results table written by `replay` (or `compare`'s scored table); a clear error on
    any other file."""
    p = Path(path)
    if not p.is_file():
        raise CliInputError(f"no results file {p}")
    fmt = RESULT_SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise CliInputError(f"{p}: not a results table (expected {', '.join(RESULT_SUFFIXES)})")
    try:
        frame = pd.read_csv(p) if fmt == "csv" else pd.read_parquet(p)
    except Exception as exc:  # pyarrow and the csv parser raise many types
        raise CliInputError(f"{p}: not a readable results table ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise CliInputError(
            f"{p}: not a results table of 'llem-warmup replay' (no column "
            f"{', '.join(repr(c) for c in missing)})"
        )
    return frame


def _check_folder(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliInputError(f"{out} exists and is a file; --out names a folder")
    return out


# -------------------------------------------------------------------- compare
def _latex_columns(text: str) -> dict[str, str]:
    """``"spec=Setting,premature_rate"`` -> ``{"spec": "Setting", "premature_rate":
    "premature_rate"}`` (a column without ``=label`` keeps its name, or its usual label)."""
    from llenergymeasure.analysis.tables import SUMMARY_LABELS

    out: dict[str, str] = {}
    for item in text.split(","):
        name, _, label = item.partition("=")
        if name.strip():
            out[name.strip()] = label.strip() or SUMMARY_LABELS.get(name.strip(), name.strip())
    return out


def _score_rows(results: pd.DataFrame, traces: list[Any] | None, args: argparse.Namespace
                ) -> pd.DataFrame:
    """Score the rows against the traces (bias CIs unless `--n-resamples 0`), or from the
    results table alone when no traces are given."""
    from llenergymeasure.analysis import scoring

    if traces is None:
        return _score_from_results(results, args.band)
    keys = results["trace_id"].astype(str)
    parts: list[pd.DataFrame] = []
    offset = 0
    with progress(total=len(results), desc="scoring", unit="row", quiet=args.quiet) as bar:
        for _, part in results.groupby(keys, sort=False):
            part = part.sort_index()
            # score() seeds row i with seed + i: offsetting the seed gives every row the
            # seed it gets in one call over the whole table.
            parts.append(scoring.score(part, traces, band=args.band,
                                       n_resamples=args.n_resamples, seed=offset))
            offset += len(part)
            bar.update(len(part))
    return pd.concat(parts).loc[results.index]


def _score_from_results(results: pd.DataFrame, band: str) -> pd.DataFrame:
    """The scores a results table carries by itself (time waste, bias of the post-stop
    mean); the bias CIs, which need the samples, are left empty."""
    from llenergymeasure.analysis.figures import with_scores
    from llenergymeasure.analysis.scoring import Band

    needed = ("stop_time_s", "reference_start", "reference_start_s", "post_stop_mean",
              "reference_mean")
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise CliInputError(
            f"the results lack {', '.join(missing)}: pass the replayed traces with --traces"
        )
    out = with_scores(results)
    ref = pd.to_numeric(out["reference_start"], errors="coerce")
    out["has_reference"] = (ref >= 0).fillna(False).astype(bool)
    out["never_stopped"] = out["stop_index"].isna()
    wee = pd.to_numeric(out["wee"], errors="coerce")
    out["premature"] = (out["has_reference"] & (wee < 0)).fillna(False).astype(bool)
    bands = Band.parse(band).classify(wee.to_numpy(dtype=float, na_value=np.nan),
                                      pd.to_numeric(out["wee_s"], errors="coerce").to_numpy(),
                                      pd.to_numeric(out["n_samples"], errors="coerce").to_numpy())
    out["waste_band"] = [b if h else None
                         for b, h in zip(bands, out["has_reference"], strict=True)]
    for col in ("bias_ci_low", "bias_ci_high", "effect", "lb_effect"):
        out[col] = float("nan")
    out["outcome"] = [
        "no_reference" if not h else "never_stopped" if n else "premature" if p else b
        for h, n, p, b in zip(out["has_reference"], out["never_stopped"], out["premature"],
                              out["waste_band"], strict=True)
    ]
    return out


def _cmd_compare(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis import scoring, tables

    out = _check_folder(args.out)
    results = _read_results(args.results)
    traces = (load_inputs(args.traces, None, keep_going=args.keep_going, quiet=args.quiet)
              if args.traces else None)
    corpus = None
    if traces is not None:
        from llenergymeasure.analysis.corpus import Corpus

        corpus = Corpus.build(traces)
        if args.reference:
            corpus = corpus.with_reference(args.reference)
            results = results.drop(columns=["reference_start"], errors="ignore")
    elif args.reference:
        raise CliInputError("--reference needs the replayed traces (--traces)")
    scored = _score_rows(results, corpus, args)
    summary = scoring.summarize(scored, corpus=corpus, n_resamples=max(args.n_resamples, 1))
    out.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(out / "scored.parquet")
    columns = (_latex_columns(args.columns) if args.columns
               else tables.select_columns(summary, tables.SUMMARY_LABELS, missing_ok=True)
               .columns.map({v: k for k, v in tables.SUMMARY_LABELS.items()}).tolist())
    labels = {c: tables.SUMMARY_LABELS.get(c, c) for c in columns}
    labels.update(_latex_columns(args.columns) if args.columns else {})
    tables.export_table(summary, out / "summary", caption=args.caption,
                        label="tab:criteria", columns=columns, labels=labels)
    text = "# Comparison of warmup criteria\n\n"
    band = scoring.Band.parse(args.band)
    text += f"Source: `{args.results}`; a stop is exact within {band.describe()}.\n\n"
    text += tables.to_markdown(summary)
    text += "\n## Against a fixed count of the same cost\n\n"
    text += scoring.describe_versus_fixed(summary)
    (out / "report.md").write_text(text, encoding="utf-8")
    written = [out / "report.md"]
    if args.html:
        from llenergymeasure.analysis.report import html_report

        html = Path(args.html)
        html_report(scored, summary, html, traces=traces, source=str(args.results),
                    tolerance_s=band.seconds if band.seconds is not None else 5.0)
        written.append(html)
    print(f"scored {len(scored)} rows, {len(summary)} criterion settings -> "
          f"{', '.join(str(w) for w in written)}")
    return 0


# -------------------------------------------------------------------- figures
def _formats(text: str) -> tuple[str, ...]:
    from llenergymeasure.analysis.figures import FORMATS

    fmts = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",")
                               if f.strip()))
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise argparse.ArgumentTypeError(
            f"unknown figure format {', '.join(bad) or text!r}; choose from {', '.join(FORMATS)}"
        )
    return fmts


def _cmd_figures(args: argparse.Namespace) -> int:
    from llenergymeasure.analysis.figures import save_all_figures

    out = _check_folder(args.out)
    results = _read_results(args.results)
    traces = (load_inputs(args.traces, None, keep_going=args.keep_going, quiet=args.quiet)
              if args.traces else None)
    written = save_all_figures(results, traces, out, args.format,
                               tolerance_s=args.tolerance, show_progress=not args.quiet)
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
        raise CliInputError(f"unknown synthetic kind(s) {unknown}; available: "
                            f"{', '.join(synthetic.SYNTHETIC_KINDS)}")
    corpus = synthetic.make_corpus(kinds, args.traces, args.n, args.seed)
    out = Path(args.out)
    if out.suffix and out.is_dir():
        raise CliInputError(f"{out} is a folder; give a file name or a folder without suffix")
    if not out.suffix and out.exists() and not out.is_dir():
        raise CliInputError(f"{out} exists and is a file; --out names a folder here")
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
    p.set_defaults(func=_cmd_criteria)

    keep = {"action": "store_true",
            "help": "Report and skip a trace file that cannot be read (default: stop at it)."}
    p = subparsers.add_parser("replay", help="Replay traces through criteria into a results table.")
    p.add_argument("traces", nargs="+", help="Trace files or folders.")
    p.add_argument("--criterion", "-c", action="append", metavar="SPEC",
                   help="Criterion spec, repeatable (default: the demo's default set).")
    p.add_argument("--grid", metavar="FILE",
                   help="JSON or YAML: {criterion: {parameter: [values]}} (cartesian product).")
    p.add_argument("--out", "-o", required=True,
                   help="results.parquet (or .csv); Ctrl-C writes the finished runs to "
                        "results.partial.parquet.")
    p.add_argument("--format", help="Importer for the trace files (traini, pyperf, jmh, csv).")
    p.add_argument("--min-samples", type=positive_int, default=5,
                   help="Stop rule: first check (5).")
    p.add_argument("--check-every", type=positive_int, default=1,
                   help="Stop rule: cadence (1).")
    p.add_argument("--patience", type=positive_int, default=1,
                   help="Stop rule: passes in a row (1).")
    p.add_argument("--max-samples", type=positive_int, default=None,
                   help="Stop rule: cap (none).")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, help="Worker processes (1).")
    p.add_argument("--keep-going", **keep)
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar.")
    p.set_defaults(func=_cmd_replay)

    p = subparsers.add_parser("compare", help="Score a results table and write summary tables.")
    p.add_argument("results", help="results.parquet from 'replay'.")
    p.add_argument("--out", "-o", required=True, help="Report folder.")
    p.add_argument("--traces", nargs="*", default=[],
                   help="The replayed traces: only for the bootstrap CIs of the bias (without "
                        "them the scores come from the results table alone).")
    p.add_argument("--band", default="5s+50",
                   help="Exact band: '5s' seconds, '50' samples, '2%%' of the run, or e.g. "
                        "'5s+50' (both apply; the default).")
    p.add_argument("--reference", metavar="CSV",
                   help="Reference starts (trace_id,run_id,reference_start) to score against.")
    p.add_argument("--n-resamples", type=nonnegative_int, default=1000,
                   help="Bootstrap resamples of the CIs (1000; 0: no bias CIs).")
    p.add_argument("--html", metavar="FILE",
                   help="Also write a self-contained HTML report (figures and sortable tables).")
    p.add_argument("--columns", metavar="COL[=LABEL],...",
                   help="Columns (and headers) of summary.md and summary.tex (default: a "
                        "compact set with readable headers; summary.csv keeps every column).")
    p.add_argument("--caption", default="Warmup criteria compared",
                   help="Caption of the LaTeX table.")
    p.add_argument("--keep-going", **keep)
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bars.")
    p.set_defaults(func=_cmd_compare)

    p = subparsers.add_parser("figures", help="Draw the figures of a results table.")
    p.add_argument("results", help="results.parquet (or scored.parquet).")
    p.add_argument("--out", "-o", required=True, help="Figure folder.")
    p.add_argument("--traces", nargs="*", default=[], help="The replayed traces (trace panels).")
    p.add_argument("--format", type=_formats, default=("png",), metavar="FMT[,FMT]",
                   help="png, pdf, svg or several separated by commas (png).")
    p.add_argument("--tolerance", type=float, default=5.0,
                   help="Half-width of the exact band in seconds (5).")
    p.add_argument("--keep-going", **keep)
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bars.")
    p.set_defaults(func=_cmd_figures)

    p = subparsers.add_parser("simulate", help="Write synthetic traces with known steady starts.")
    p.add_argument("--kind", action="append", help="Synthetic kind, repeatable (default: all).")
    p.add_argument("--n", type=positive_int, default=1000, help="Samples per trace (1000).")
    p.add_argument("--traces", type=positive_int, default=1, help="Traces per kind (1).")
    p.add_argument("--seed", type=int, default=0, help="Seed (0).")
    p.add_argument("--out", "-o", required=True, help="traces.parquet (one trace) or a folder.")
    p.set_defaults(func=_cmd_simulate)

    p = subparsers.add_parser("demo", help="Record, simulate, replay, score and report on a CPU.")
    p.add_argument("--out", "-o", required=True, help="Report folder.")
    p.add_argument("--quick", action="store_true", help="A few seconds (for tests).")
    p.add_argument("--seed", type=int, default=0, help="Seed (0).")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bars.")
    p.set_defaults(func=_cmd_demo)
