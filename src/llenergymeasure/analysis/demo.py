"""The end-to-end demo: record, simulate, replay, score and report, on a CPU.

:func:`run_demo` records a real warmup of a tiny GPT-2 (2 layers of width 32,
random weights, tokenizer built in code; no download) as a trace, generates a
synthetic corpus whose steady-state starts are known, replays both through
:data:`DEFAULT_CRITERIA`, scores the stops against the known starts and writes
a report folder::

    DIR/
      report.md          tables: the demo's summary per criterion
      results.parquet    the replay table (one row per run x criterion)
      scored.parquet     the same rows with the scoring columns
      summary.csv        the per-criterion summary
      traces/            the recorded trace and the synthetic corpus
      figures/           figures, when :mod:`llenergymeasure.analysis.figures` has them

It is what ``llem-warmup demo --out DIR`` runs.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.analysis.replay import replay
from llenergymeasure.criteria.registry import available_criteria, parse_spec

__all__ = [
    "COSTLY_CRITERIA",
    "DEFAULT_CRITERIA",
    "QUICK_CRITERIA",
    "DemoOutputs",
    "default_criteria",
    "markdown_table",
    "record_tiny_model_trace",
    "run_demo",
    "with_trace_id",
    "write_figures",
]

logger = logging.getLogger(__name__)

#: The default criteria set, one or more specs per family: fixed budgets (the
#: harness defaults every adaptive rule must beat), dispersion windows (CV,
#: robust spread), harness rules (pyperf, BenchmarkDotNet, NVBench, Laaber et
#: al.), stationarity tests, truncation methods (MSER, equilibration) and a
#: composite with a time floor (changepoint and KLD rules are in
#: :data:`COSTLY_CRITERIA`). Specs whose criterion is not
#: registered in this installation are skipped by :func:`default_criteria`.
DEFAULT_CRITERIA: tuple[str, ...] = (
    # budgets
    "fixed_count:n=10",
    "fixed_count:n=50",
    # dispersion over a trailing window
    "rolling_cv:window=10,threshold=0.02",
    "rolling_cv:window=30,threshold=0.02",
    "iqr_median",
    "mad_median",
    # harness rules
    "pyperf_halves",
    "bdn_fluctuation",
    "nvbench_stdrel",
    "laaber_cv",
    "rciw",
    # stationarity tests
    "geweke",
    "kpss",
    "trend",
    "cao_rhinehart",
    "kelly_ssd",
    # truncation / equilibration
    "mser5",
    "max_ess",
    "red_sse",
    # composite: a stable window and a time floor
    "all_of(rolling_cv:window=10,threshold=0.02,min_duration:seconds=1.0)",
)


#: Registered criteria left out of :data:`DEFAULT_CRITERIA` on purpose, with why.
#: Both are seconds per 3,000-sample trace offline, where the others are
#: milliseconds; replay them explicitly (``--criterion pelt:growth=1.2``).
COSTLY_CRITERIA: dict[str, str] = {
    "pelt": "re-runs PELT on the growing prefix: about 2.6 s per 3,000-sample trace "
    "even with a geometric schedule (growth=1.2)",
    "laaber_kld": "two kernel densities on a 1,000-point grid per sample: about 30 ms per "
    "sample, 85 s per 3,000-sample trace",
    "laaber_rciw": "a bootstrap of the pooled mean per sample: about 0.7 s per 300-sample trace",
    "nvbench_entropy": "a histogram entropy and a regression per sample: 0.5 to 0.8 s per trace",
}

#: The cheap subset replayed by ``run_demo(quick=True)`` (one spec per family).
QUICK_CRITERIA: tuple[str, ...] = (
    "fixed_count:n=10",
    "rolling_cv:window=10,threshold=0.02",
    "iqr_median",
    "pyperf_halves",
    "geweke",
    "mser5",
    "all_of(rolling_cv:window=10,threshold=0.02,min_duration:seconds=1.0)",
)


def _names_in(spec: str) -> list[str]:
    name, _, children = parse_spec(spec)
    out = [name]
    stack = list(children)
    while stack:
        child = stack.pop()
        out.append(child[0])
        stack.extend(child[2])
    return out


def default_criteria(specs: Sequence[str] = DEFAULT_CRITERIA) -> list[str]:
    """The specs of ``specs`` whose criteria are all registered here.

    Parameters
    ----------
    specs : sequence of str, default DEFAULT_CRITERIA
        Candidate specs.

    Returns
    -------
    list of str
        The usable specs, in order (the others are logged at info level).
    """
    known = set(available_criteria())
    usable = []
    for spec in specs:
        missing = [n for n in _names_in(spec) if n not in known]
        if missing:
            logger.info("default criterion %r skipped: %s not registered", spec, missing)
        else:
            usable.append(spec)
    return usable


def markdown_table(df: pd.DataFrame, *, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table of ``df`` (index dropped), numbers formatted.

    Parameters
    ----------
    df : DataFrame
        The table.
    floatfmt : str, default ".4g"
        Format of floating-point cells; missing values print as an empty cell.

    Returns
    -------
    str
    """

    def cell(v: Any) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v).replace("|", "\\|")

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


@dataclass
class DemoOutputs:
    """Paths and tables the demo produced.

    Attributes
    ----------
    out : Path
        The report folder.
    report : Path
        ``report.md``.
    results : DataFrame
        The replay table.
    summary : DataFrame or None
        Per-criterion summary (None when scoring is unavailable).
    traces : list of Path
        The trace files written.
    figures : list of Path
        The figure files written.
    """

    out: Path
    report: Path
    results: pd.DataFrame
    summary: pd.DataFrame | None
    traces: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def _recording_wrapper(fn: Callable[[], float]) -> tuple[Callable[[], float], list[dict[str, Any]]]:
    """Wrap an inference callable so every attempt is kept as a trace row."""
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter_ns()

    def wrapped() -> float:
        start = time.perf_counter_ns()
        wall = time.time_ns()
        try:
            value = fn()
        except Exception as exc:
            end = time.perf_counter_ns()
            rows.append(_attempt(len(rows), start - t0, end - t0, wall, math.nan, False,
                                 f"{type(exc).__name__}: {exc}"))
            raise
        end = time.perf_counter_ns()
        rows.append(_attempt(len(rows), start - t0, end - t0, wall, float(value), True, None))
        return value

    return wrapped, rows


def _attempt(i: int, start: int, end: int, wall: int, latency: float, ok: bool,
             error: str | None) -> dict[str, Any]:
    return {"run_id": "run0", "index": i, "t_start_ns": start, "t_end_ns": end,
            "wall_start_ns": wall, "latency_ms": latency, "ok": ok, "error": error}


def record_tiny_model_trace(path: Path, *, n_prompts: int, max_new_tokens: int,
                            seed: int = 0, show_progress: bool = False) -> Any:
    """Record a fixed-length warmup of the tiny GPT-2 on the CPU as a trace.

    Parameters
    ----------
    path : Path
        Trace file to write (``.jsonl`` or ``.parquet``).
    n_prompts : int
        Attempts to record (warmup runs them all: record long, replay many).
    max_new_tokens : int
        Tokens generated per attempt.
    seed : int, default 0
        Seed of the random weights.
    show_progress : bool, default False
        Draw the driver's progress bar.

    Returns
    -------
    Trace
        The recorded trace, as loaded back from ``path``.
    """
    import torch

    from llenergymeasure.config.models import WarmupConfig
    from llenergymeasure.core.inference import create_warmup_inference_fn
    from llenergymeasure.core.tiny_model import build_tiny_causal_lm
    from llenergymeasure.core.warmup import warmup_until_converged
    from llenergymeasure.traces import RunInfo, Trace, TraceMetadata, load_trace, save_trace

    torch.manual_seed(seed)
    model, tokenizer = build_tiny_causal_lm(seed=seed)
    fn = create_warmup_inference_fn(
        model, tokenizer, "the model is warm when the latency is steady", max_new_tokens
    )
    config = WarmupConfig(convergence_detection=False, max_prompts=n_prompts, min_prompts=1,
                          window_size=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "trace_path" in inspect.signature(warmup_until_converged).parameters:
        warmup_until_converged(fn, config, show_progress=show_progress, trace_path=path)
        return load_trace(path)
    wrapped, rows = _recording_wrapper(fn)
    result = warmup_until_converged(wrapped, config, show_progress=show_progress)
    meta = TraceMetadata(
        config=config.model_dump(),
        criterion=result.criterion,
        model={"name": "tiny-gpt2 (2 layers, width 32, random weights)", "device": "cpu",
               "dtype": "float32"},
        tags={"trace_id": "tiny_gpt2"},
        runs=[RunInfo(run_id="run0", status=result.status, stop_reason=result.stop_reason)],
    )
    save_trace(Trace.from_rows(rows, meta), path)
    return load_trace(path)


def with_trace_id(trace: Any, trace_id: str) -> Any:
    """A copy of ``trace`` whose ``metadata.tags["trace_id"]`` is ``trace_id``.

    :func:`~llenergymeasure.analysis.replay.replay` names rows by this tag, so
    every consumer of the trace sees the same identifier.
    """
    from llenergymeasure.traces import Trace

    tags = {**trace.metadata.tags, "trace_id": trace_id}
    return Trace(trace.data, trace.metadata.model_copy(update={"tags": tags}))


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    show_progress: bool = True,
    criteria: Sequence[str] | None = None,
) -> DemoOutputs:
    """Run the whole pipeline and write the report folder.

    Parameters
    ----------
    out : path-like
        Report folder (created).
    quick : bool, default False
        Seconds instead of about a minute: 20 prompts instead of 100, one
        200-sample trace per synthetic kind instead of three of 1,000, and
        :data:`QUICK_CRITERIA` instead of :data:`DEFAULT_CRITERIA` (for tests).
    seed : int, default 0
        Seed of the model weights and the synthetic corpus.
    show_progress : bool, default True
        Progress bars for the recording and the replay.
    criteria : sequence of str, optional
        Specs to replay (default :func:`default_criteria`).

    Returns
    -------
    DemoOutputs
    """
    from llenergymeasure.traces import save_trace

    out = Path(out)
    (out / "traces").mkdir(parents=True, exist_ok=True)
    n_prompts, n_tokens = (20, 2) if quick else (100, 8)
    n_per_kind, n_samples = (1, 200) if quick else (3, 1000)
    if criteria is not None:
        specs = list(criteria)
    else:
        specs = default_criteria(QUICK_CRITERIA if quick else DEFAULT_CRITERIA)

    started = time.perf_counter()
    tiny_path = out / "traces" / "tiny_gpt2.jsonl"
    tiny = with_trace_id(
        record_tiny_model_trace(tiny_path, n_prompts=n_prompts, max_new_tokens=n_tokens,
                                seed=seed, show_progress=show_progress),
        "tiny_gpt2",
    )
    traces: dict[str, Any] = {"tiny_gpt2": tiny}
    paths = [tiny_path]
    kinds: list[str] = []
    try:
        from llenergymeasure.analysis import synthetic
    except ImportError:
        logger.warning("llenergymeasure.analysis.synthetic is not available: no synthetic corpus")
        synthetic = None  # type: ignore[assignment]
    if synthetic is not None:
        kinds = list(synthetic.SYNTHETIC_KINDS)
        corpus = synthetic.make_corpus(kinds, n_per_kind, n_samples, seed)
        for i, trace in enumerate(corpus):
            kind = trace.metadata.tags.get("kind", "synthetic")
            trace = with_trace_id(trace, f"synthetic_{i:03d}_{kind}")
            path = out / "traces" / f"synthetic_{i:03d}.parquet"
            save_trace(trace, path)
            traces[trace.metadata.tags["trace_id"]] = trace
            paths.append(path)
    results = replay(list(traces.values()), specs, show_progress=show_progress)
    results.to_parquet(out / "results.parquet")

    summary = None
    scored = None
    try:
        from llenergymeasure.analysis import scoring
    except ImportError:
        logger.warning("llenergymeasure.analysis.scoring is not available: no scores")
        scoring = None  # type: ignore[assignment]
    if scoring is not None:
        scored = scoring.score(results, list(traces.values()))
        scored.to_parquet(out / "scored.parquet")
        summary = scoring.summarize(scored)
        summary.to_csv(out / "summary.csv", index=False)
    figures = write_figures(results if scored is None else scored, out / "figures",
                            list(traces.values()))
    elapsed = time.perf_counter() - started
    report = out / "report.md"
    report.write_text(
        _report_text(results, summary, tiny, kinds, specs, figures, out, elapsed, quick),
        encoding="utf-8",
    )
    return DemoOutputs(out, report, results, summary, paths, figures)


def write_figures(results: pd.DataFrame, folder: Path, traces: Any = None) -> list[Path]:
    """Render the figures of :mod:`llenergymeasure.analysis.figures` as PNG files.

    Uses ``save_all_figures`` when the figures package has it; otherwise, or
    when it rejects the frame, draws each entry of ``PAPER_FIGURES`` (a mapping
    of name to ``f(results) -> Figure``) on its own, skipping (with a warning)
    those whose data step rejects the frame, e.g. a sensitivity map without a
    two-parameter grid.

    Parameters
    ----------
    results : DataFrame
        Replay (or scored) rows.
    folder : Path
        Where the PNG files go.
    traces : optional
        The replayed traces, for the figures that draw them.

    Returns
    -------
    list of Path
        The files written (empty when no figure could be drawn).
    """
    from llenergymeasure.analysis import figures as figs

    folder = Path(folder)
    save_all = getattr(figs, "save_all_figures", None)
    if save_all is not None:
        try:
            return [Path(p) for p in save_all(results, traces, folder, formats=("png",))]
        except ValueError as exc:
            logger.warning("save_all_figures failed (%s); drawing the figures one by one", exc)
    registry = getattr(figs, "PAPER_FIGURES", None)
    if not registry:
        logger.warning("llenergymeasure.analysis.figures registers no figures (PAPER_FIGURES)")
        return []
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, func in registry.items():
        try:
            fig = func(results)
        except ValueError as exc:
            logger.warning("figure %r skipped: %s", name, exc)
            continue
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _report_text(results: pd.DataFrame, summary: pd.DataFrame | None, tiny: Any,
                 kinds: list[str], specs: list[str], figures: list[Path], out: Path,
                 elapsed: float, quick: bool) -> str:
    lat = tiny.samples()
    lines = [
        "# llenergymeasure demo report",
        "",
        f"Built in {elapsed:.1f} s{' (quick mode)' if quick else ''}.",
        "",
        "## Recorded warmup",
        "",
        f"A tiny GPT-2 (2 layers, width 32, random weights) generated on the CPU "
        f"{lat.size} times: first latency {lat[0]:.2f} ms, median of the last half "
        f"{np.median(lat[lat.size // 2:]):.2f} ms.",
        "",
        "## Synthetic corpus",
        "",
        (f"Kinds: {', '.join(kinds)}." if kinds else "No synthetic corpus (module missing)."),
        "",
        "## Criteria replayed",
        "",
        *[f"- `{s}`" for s in pd.unique(results["spec"])],
        "",
        "## Stops on the recorded trace",
        "",
        markdown_table(
            results.loc[results["trace_id"] == "tiny_gpt2",
                        ["spec", "stop_index", "stop_time_s", "converged", "post_stop_mean"]]
        ),
        "",
    ]
    if summary is not None:
        lines += ["## Summary over all traces (scored against the known starts)", "",
                  _summary_markdown(summary), ""]
    else:
        overall = (results.groupby("spec", sort=False)
                   .agg(stopped=("stopped", "mean"), median_samples=("samples_used", "median"))
                   .reset_index())
        lines += ["## Summary over all traces", "", markdown_table(overall), ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in figures]
        lines.append("")
    lines += ["Files: `results.parquet` (replay rows), `traces/` (the traces).", ""]
    return "\n".join(lines)


def _summary_markdown(summary: pd.DataFrame) -> str:
    try:
        from llenergymeasure.analysis import tables
    except ImportError:
        tables = None  # type: ignore[assignment]
    to_md = getattr(tables, "to_markdown", None) if tables is not None else None
    if to_md is not None:
        return str(to_md(summary))
    return markdown_table(summary)
