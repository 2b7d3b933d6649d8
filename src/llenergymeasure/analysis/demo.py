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
      figures/           the paper figures (:mod:`llenergymeasure.analysis.figures`)

It is what ``llem-warmup demo --out DIR`` runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.analysis import scoring, synthetic, tables
from llenergymeasure.analysis.corpus import Corpus
from llenergymeasure.analysis.replay import replay
from llenergymeasure.criteria.registry import available_criteria, criterion_class, parse_spec

__all__ = [
    "COSTLY_CRITERIA",
    "DEFAULT_CRITERIA",
    "EXCLUDED_CRITERIA",
    "QUICK_CRITERIA",
    "DemoOutputs",
    "costly_criteria",
    "default_criteria",
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
    # A geometric check schedule: every-10-samples checks cost ~10 s on a 3,000-sample
    # trace that never stops, growth=1.1 about 0.5 s, for nearly the same stops.
    "max_ess:growth=1.1",
    "red_sse",
    # trained on the Traini development corpus (about 50 ms per 3,000-sample trace)
    "learned",
    # composite: a stable window and a time floor
    "all_of(rolling_cv:window=10,threshold=0.02,min_duration:seconds=1.0)",
)


#: Measured offline costs of the criteria that declare `cost_class = "heavy"`
#: (`costly_criteria`), which `DEFAULT_CRITERIA` leaves out: each costs seconds per
#: 3,000-sample trace offline, where the others cost milliseconds; replay them
#: explicitly (`--criterion pelt:growth=1.2`).
COSTLY_CRITERIA: dict[str, str] = {
    "pelt": "re-runs PELT on the growing prefix: about 2.6 s per 3,000-sample trace "
    "even with a geometric schedule (growth=1.2)",
    "laaber_kld": "two kernel densities on a 1,000-point grid per sample: about 1.7 s per "
    "3,000-sample trace (0.1 s per 300)",
    "laaber_rciw": "a 1,000-resample bootstrap of the pooled mean per sample: about 19 s per "
    "3,000-sample trace (0.2 s per 300)",
    "nvbench_entropy": "a histogram entropy and a regression per sample: 0.5 to 0.8 s per trace",
}

#: Registered criteria that are neither heavy nor in `DEFAULT_CRITERIA`, with why.
EXCLUDED_CRITERIA: dict[str, str] = {
    "learned": "its default model is trained on the Traini development corpus: replayed "
    "there it would be scored in sample",
}


def costly_criteria() -> list[str]:
    """Registered criteria whose declared `Criterion.cost_class` is `"heavy"`."""
    return [n for n in available_criteria() if criterion_class(n).cost_class == "heavy"]


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
    summary : DataFrame
        Per-criterion summary (:func:`~llenergymeasure.analysis.scoring.summarize`).
    traces : list of Path
        The trace files written.
    figures : list of Path
        The figure files written.
    """

    out: Path
    report: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    traces: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


#: Criteria evaluated as shadows while the tiny model warms up: their would-be
#: stops are stored in the trace's metadata next to the driver's own.
DEMO_SHADOW_CRITERIA: tuple[str, ...] = (
    "fixed_count:n=10",
    "rolling_cv:window=10,threshold=0.02",
    "mser5",
)


def record_tiny_model_trace(path: Path, *, n_prompts: int, max_new_tokens: int,
                            seed: int = 0, show_progress: bool = False) -> Any:
    """Record a real warmup of the tiny GPT-2 on the CPU, and what follows it, as a trace.

    The driver runs the default rolling CV (``WarmupConfig()``'s threshold,
    window and minimum), stops at convergence, and then keeps measuring
    (``record_after_stop``) so that the trace holds ``n_prompts`` attempts after
    the stop: record long, replay many. :data:`DEMO_SHADOW_CRITERIA` are
    evaluated as shadows on the same samples.

    Parameters
    ----------
    path : Path
        Trace file to write (``.jsonl`` or ``.parquet``).
    n_prompts : int
        Attempts the driver may spend warming up, and attempts recorded after the stop.
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
    from llenergymeasure.traces import load_trace

    torch.manual_seed(seed)
    model, tokenizer = build_tiny_causal_lm(seed=seed)
    fn = create_warmup_inference_fn(
        model, tokenizer, "the model is warm when the latency is steady", max_new_tokens
    )
    config = WarmupConfig(max_prompts=n_prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    warmup_until_converged(
        fn,
        config,
        show_progress=show_progress,
        trace_path=path,
        shadow_criteria=DEMO_SHADOW_CRITERIA,
        record_after_stop=n_prompts,
        model={"name": "tiny-gpt2 (2 layers, width 32, random weights)", "device": "cpu",
               "dtype": "float32"},
        tags={"trace_id": "tiny_gpt2"},
    )
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
        Seconds instead of about a minute: a warmup cap of 20 prompts of 2
        tokens (then 20 recorded after the stop) instead of 60 of 8 (then 60),
        one 200-sample trace per synthetic kind instead of three of 1,000, and
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
    n_prompts, n_tokens = (20, 2) if quick else (60, 8)
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
    kinds = list(synthetic.SYNTHETIC_KINDS)
    corpus = synthetic.make_corpus(kinds, n_per_kind, n_samples, seed)
    for i, trace in enumerate(corpus):
        kind = trace.metadata.tags.get("kind", "synthetic")
        trace = with_trace_id(trace, f"synthetic_{i:03d}_{kind}")
        path = out / "traces" / f"synthetic_{i:03d}.parquet"
        save_trace(trace, path)
        traces[trace.metadata.tags["trace_id"]] = trace
        paths.append(path)
    results = replay(traces, specs, show_progress=show_progress)
    results.to_parquet(out / "results.parquet")

    runs = Corpus.build(traces)
    scored = scoring.score(results, runs)
    scored.to_parquet(out / "scored.parquet")
    summary = scoring.summarize(scored, corpus=runs)
    tables.to_csv(summary, out / "summary.csv")
    figures = write_figures(scored, out / "figures", runs)
    elapsed = time.perf_counter() - started
    report = out / "report.md"
    report.write_text(
        _report_text(results, summary, tiny, kinds, specs, figures, out, elapsed, quick),
        encoding="utf-8",
    )
    return DemoOutputs(out, report, results, summary, paths, figures)


def write_figures(results: pd.DataFrame, folder: Path, traces: Any = None) -> list[Path]:
    """Render every paper figure of :mod:`llenergymeasure.analysis.figures` as PNG files.

    Parameters
    ----------
    results : DataFrame
        Replay (or scored) rows.
    folder : Path
        Where the PNG files go.
    traces : optional
        The replayed traces: the frame is scored against them and the traces
        figure drawn.

    Returns
    -------
    list of Path
        The files written.
    """
    from llenergymeasure.analysis.figures import save_all_figures

    return [Path(p) for p in save_all_figures(results, traces, Path(folder), formats=("png",))]


#: Columns of the per-criterion summary shown in ``report.md`` (the full summary,
#: with IQRs and bootstrap CIs, is in ``summary.csv``).
REPORT_SUMMARY_COLUMNS: tuple[str, ...] = (
    "spec",
    "n_runs",
    "median_seconds_used",
    "median_samples_used",
    "median_abs_wee_s",
    "median_abs_relative_bias",
    "premature_rate",
    "never_stopped_rate",
    "exact_rate",
    "fixed_n_same_cost",
    "premature_rate_fixed",
    "premature_lift",
    "versus_fixed",
)


def _report_text(results: pd.DataFrame, summary: pd.DataFrame, tiny: Any,
                 kinds: list[str], specs: list[str], figures: list[Path], out: Path,
                 elapsed: float, quick: bool) -> str:
    lat = tiny.samples()
    info = tiny.run_info()
    shadows = [
        {"spec": spec, "stop_index": d.stop_index, "reason": d.reason}
        for spec, d in info.shadow.items()
    ]
    cols = [c for c in REPORT_SUMMARY_COLUMNS if c in summary.columns]
    lines = [
        "# llenergymeasure demo report",
        "",
        f"Built in {elapsed:.1f} s{' (quick mode)' if quick else ''}.",
        "",
        "## Recorded warmup",
        "",
        f"A tiny GPT-2 (2 layers, width 32, random weights) on the CPU, warmed up with "
        f"`{tiny.metadata.criterion}`: {info.status} ({info.stop_reason}). The trace keeps "
        f"measuring after the stop: {lat.size} successful samples in all, first latency "
        f"{lat[0]:.2f} ms, median of the last half {np.median(lat[lat.size // 2:]):.2f} ms.",
        "",
        "Shadow criteria evaluated on the same samples during the run:",
        "",
        tables.to_markdown(pd.DataFrame(shadows, columns=["spec", "stop_index", "reason"])),
        "## Synthetic corpus",
        "",
        f"Kinds, with known steady-state starts: {', '.join(kinds)}.",
        "",
        "## Criteria replayed",
        "",
        *[f"- `{s}`" for s in pd.unique(results["spec"])],
        "",
        "## Stops on the recorded trace",
        "",
        tables.to_markdown(
            results.loc[results["trace_id"] == "tiny_gpt2",
                        ["spec", "stop_index", "stop_time_s", "converged", "post_stop_mean"]]
        ),
        "## Summary over the synthetic corpus (scored against the known starts)",
        "",
        "Medians over runs; rates over runs with a reference steady state; a stop is "
        f"\"exact\" within {scoring.DEFAULT_BAND.describe()} of the reference start, "
        "whichever is tighter. `fixed_n_same_cost` is the fixed count with the setting's "
        "mean samples used, evaluated on the same runs; `premature_lift` is the setting's "
        "premature rate minus that fixed count's (negative is better). The full summary "
        "(IQRs, bootstrap CIs, over/under bands, late starts) is in `summary.csv`.",
        "",
        tables.to_markdown(summary[cols]),
        "## Against a fixed count of the same cost",
        "",
        scoring.describe_versus_fixed(summary),
    ]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in figures]
        lines.append("")
    lines += ["Files: `results.parquet` (replay rows), `scored.parquet` (with the scores), "
              "`summary.csv`, `traces/` (the traces).", ""]
    return "\n".join(lines)
