"""GPU and LLM series: every registered criterion replayed on the corpus extracts.

Reads the extracts in `../shared/data/gpu` (see its README), replays every
registered criterion with its default parameters through
`llenergymeasure.analysis.replay.replay` and the driver's default stop rule
(`StopRule(min_samples=5)`), and prints the Markdown tables quoted by
`docs/gpu-series.md`:

1. the corpora: series, samples, lengths, what counts as cold, where the
   sample times come from;
2. the headline: per criterion, the share of series on which it stops inside
   the cold or compile steps, and never stops;
3. per corpus and criterion: stops, never stops, stops inside the cold steps,
   median stop index, mean cost, and the fixed count with the same mean cost.

The parsing of each extract reuses the importers' per-run helpers
(`iteration_time_run`, `training_run`, `vllm_runs`, `llmperf_run`), so a
series of an extract becomes exactly the run its tool's file would give.
Everything is deterministic (no clock, no unseeded randomness).

Run: `python examples/gpu_series.py [--data ../shared/data] [--out tables.md]`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llenergymeasure.analysis.replay import replay
from llenergymeasure.criteria.base import CriterionConfigError
from llenergymeasure.criteria.registry import available_criteria, criterion_class, make_criterion
from llenergymeasure.criteria.stopping import StopRule
from llenergymeasure.traces.importers import ImportedRun, build_trace
from llenergymeasure.traces.importers.llmperf import llmperf_run
from llenergymeasure.traces.importers.megatron import iteration_time_run
from llenergymeasure.traces.importers.nanogpt import training_run
from llenergymeasure.traces.importers.vllm import looks_like_vllm, vllm_runs
from llenergymeasure.traces.model import Trace

#: The driver's default stop rule (what `WarmupConfig(criterion=spec)` uses).
RULE = StopRule(min_samples=5)


@dataclass
class Corpus:
    """Series of one source, replayed together.

    Attributes
    ----------
    name : str
        Row label.
    traces : list of Trace
        One trace per series (one run each, or the run `run_id`).
    run_id : str or None
        The run replayed when the traces hold several.
    cold : int or None
        Leading samples the source itself marks as cold (compile, first pass,
        steps before the timer restart); None when it has no cold start.
    cold_what : str
        What those samples are.
    times : str
        Where the sample times come from.
    """

    name: str
    traces: list[Trace]
    run_id: str | None
    cold: int | None
    cold_what: str
    times: str


def _trace(run: ImportedRun | list[ImportedRun], trace_id: str, fmt: str) -> Trace:
    runs = run if isinstance(run, list) else [run]
    return build_trace(runs, file=trace_id, source_format=fmt, tags={"trace_id": trace_id})


def _load(path: Path) -> Any:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


# ------------------------------------------------------------------ extract readers
def megatron_iteration(gpu: Path) -> Corpus:
    """`megatron_lm_iteration_time.json.gz`: one run per golden-values file."""
    data = _load(gpu / "megatron_lm_iteration_time.json.gz")
    traces = [
        _trace(iteration_time_run(np.array(s["steps"]), np.array(s["iteration_time_s"]),
                                  provenance={"gpu": s["gpu"]}), s["golden_file"], "megatron")
        for s in data["series"]
    ]
    return Corpus("Megatron-LM iteration time", traces, None, 1,
                  "first logged step (step 1, or 2 where 1 is not logged)",
                  "logged values x steps covered (stride honoured)")


def nanogpt_steps(gpu: Path) -> Corpus:
    """`modded_nanogpt_step_times.json.gz`: one run per record log (train lines only)."""
    data = _load(gpu / "modded_nanogpt_step_times.json.gz")
    traces = []
    for path in sorted(data["logs"]):
        log = data["logs"][path]
        cum = np.asarray(log["train_time_ms_cumulative"], dtype=np.float64)
        steps = np.arange(log["first_step"], log["first_step"] + cum.size)
        traces.append(_trace(training_run(steps, cum), path, "nanogpt"))
    return Corpus("modded-nanogpt steps", traces, None, 10,
                  "steps 1-10 (compile in step 1; the script restarts its clock after step 10)",
                  "training clock (evaluations excluded)")


def megatron_inference(gpu: Path) -> Corpus:
    """`megatron_lm_inference_throughput.json`: passes as ms per output token (1000 / tok/s)."""
    data = _load(gpu / "megatron_lm_inference_throughput.json")
    traces = [
        _trace(ImportedRun(run_id="passes",
                           latency_ms=1e3 / np.asarray(s["throughput_repeats"], dtype=float)),
               s["golden_file"], "megatron")
        for s in data["series"]
    ]
    return Corpus("Megatron-LM inference passes", traces, None, 1, "first pass",
                  "none in the file: cumulative ms per token")


def vllm(gpu: Path, run_id: str) -> Corpus:
    """`vllm_serving_llama33_70b_tp8_8xA100.json.gz`: the `ttft` or `decode` run of each rate."""
    data = _load(gpu / "vllm_serving_llama33_70b_tp8_8xA100.json.gz")
    file = "vllm_serving_llama33_70b_tp8_8xA100.json.gz"
    traces = [
        _trace(vllm_runs(res, file=file, field_prefix=f"runs.{name}."), f"vllm/{name}", "vllm")
        for name, res in sorted(data["runs"].items()) if looks_like_vllm(res)
    ]
    label = "TTFT per request" if run_id == "ttft" else "decode steps (ITL)"
    return Corpus(f"vLLM {label}", traces, run_id, None, "none (server already warm)",
                  "none in the file: cumulative latencies")


def llmperf(gpu: Path) -> Corpus:
    """`llmperf_leaderboard_individual.json.gz`: one run per provider and model size."""
    data = _load(gpu / "llmperf_leaderboard_individual.json.gz")
    traces = [
        _trace(llmperf_run(recs, file="llmperf_leaderboard_individual.json.gz",
                           field_prefix=f"runs.{name}"), f"llmperf/{name}", "llmperf")
        for name, recs in sorted(data["runs"].items())
    ]
    return Corpus("LLMPerf end-to-end latency", traces, None, None,
                  "none (hosted endpoints already warm)", "none in the file: cumulative latencies")


def mlperf(gpu: Path) -> Corpus:
    """`mlperf_v05_hailo8_singlestream_latency.csv.gz`: per-query latency in issue order."""
    df = pd.read_csv(gpu / "mlperf_v05_hailo8_singlestream_latency.csv.gz")
    traces = []
    for name, g in df.groupby("trace", sort=True):
        g = g.sort_values("query_seq")
        start = np.rint((g["issue_ts_us"] - g["issue_ts_us"].iloc[0]) * 1e3).astype(np.int64)
        lat = g["latency_ns"].to_numpy(dtype=np.int64)
        traces.append(_trace(ImportedRun(run_id="queries", latency_ms=lat / 1e6,
                                         t_start_ns=start.to_numpy(),
                                         t_end_ns=start.to_numpy() + lat),
                             str(name), "mlperf"))
    return Corpus("MLPerf SingleStream (Hailo-8)", traces, None, None,
                  "none marked (LoadGen's own warmup is not in the trace)",
                  "LoadGen issue time + latency")


# ---------------------------------------------------------------------- replay
def criteria_with_defaults() -> tuple[list[str], dict[str, str]]:
    """Registered criteria that build with their defaults, and why the others do not."""
    usable, skipped = [], {}
    for name in available_criteria():
        if getattr(criterion_class(name), "is_composite", False):
            skipped[name] = "composite: needs children"
            continue
        try:
            make_criterion(name)
        except CriterionConfigError as exc:
            skipped[name] = str(exc)
            continue
        usable.append(name)
    return usable, skipped


def replay_corpus(corpus: Corpus, criteria: Sequence[str]) -> pd.DataFrame:
    """Replay rows of one corpus (only its run `run_id` when set), with the cold boundary."""
    traces = corpus.traces
    if corpus.run_id is not None:
        traces = [t.run(corpus.run_id) for t in traces]
    rows = replay(traces, list(criteria), stop_rule=RULE, show_progress=False)
    rows["corpus"] = corpus.name
    rows["cold"] = -1 if corpus.cold is None else corpus.cold
    return rows


def fixed_n_same_cost(rows: pd.DataFrame, min_samples: int = RULE.min_samples) -> dict[str, Any]:
    """The fixed count whose mean cost over a corpus equals a criterion's.

    The cost of a run is the samples warmup consumed: `samples_used` (the
    stop index + 1, or the whole run when the rule never stops). Under the
    stop rule, `fixed_count:n` stops at index $\\max(n, m) - 1$ ($m$ =
    `min_samples`) on a run of length $L \\ge \\max(n, m)$ and never stops on a
    shorter one, so its mean cost is
    $\\bar c(n) = \\frac{1}{R} \\sum_r \\min(\\max(n, m), L_r)$, non-decreasing in
    $n$. The equal-cost count is the smallest $n \\ge m$ with
    $\\bar c(n) \\ge$ the criterion's mean cost (a count below $m$ costs the
    same as $m$).

    Returns
    -------
    dict
        `n` (None when even the longest count costs less), its mean cost,
        and the shares of runs on which it stops inside the cold steps and
        never stops.
    """
    target = float(rows["samples_used"].mean())
    lengths = rows["n_samples"].to_numpy(dtype=np.int64)
    cold = int(rows["cold"].iloc[0])
    for n in range(min_samples, max(int(lengths.max()), min_samples) + 1):
        k = max(n, min_samples)
        cost = float(np.minimum(k, lengths).mean())
        if cost >= target - 1e-9:
            return {"n": n, "cost": cost, "never": float((lengths < k).mean()),
                    "inside_cold": float(((k < cold) & (lengths >= k)).mean()) if cold > 0
                    else math.nan}
    return {"n": None, "cost": math.nan, "never": math.nan, "inside_cold": math.nan}


def check_fixed_n(rows: pd.DataFrame, traces: list[Trace], run_id: str | None,
                  info: dict[str, Any]) -> None:
    """Cross-check `fixed_n_same_cost` against a replay of `fixed_count:n=<n>`."""
    if info["n"] is None:
        return
    sel = [t.run(run_id) for t in traces] if run_id is not None else traces
    got = replay(sel, f"fixed_count:n={info['n']}", stop_rule=RULE, show_progress=False)
    if not math.isclose(float(got["samples_used"].mean()), info["cost"], rel_tol=1e-12):
        raise AssertionError(f"equal-cost fixed count {info['n']}: replay costs "
                             f"{got['samples_used'].mean()}, formula {info['cost']}")


def summarize_offers_fixed_n() -> bool:
    """Whether `analysis.scoring.summarize` computes `fixed_n_same_cost` (checked on a toy)."""
    from llenergymeasure.analysis.scoring import score, summarize

    x = np.r_[np.full(3, 50.0), np.linspace(12.0, 10.0, 17)]
    toy = {"toy": _trace(ImportedRun(run_id="r", latency_ms=x, reference_start=3), "toy", "x")}
    rows = replay(list(toy.values()), "fixed_count", stop_rule=RULE, show_progress=False)
    return "fixed_n_same_cost" in summarize(score(rows, toy, n_resamples=50)).columns


def summary_table(rows: pd.DataFrame, corpus: Corpus, use_scoring: bool) -> pd.DataFrame:
    """Per criterion: stops, never, inside cold, median stop index, cost, equal-cost fixed n."""
    out = []
    scoring_n: dict[str, Any] = {}
    if use_scoring:
        from llenergymeasure.analysis.scoring import score, summarize

        ref = rows.copy()
        ref["reference_start"] = corpus.cold if corpus.cold is not None else pd.NA
        traces = [t.run(corpus.run_id) for t in corpus.traces] if corpus.run_id else corpus.traces
        summ = summarize(score(ref, traces, n_resamples=200))
        scoring_n = dict(zip(summ["criterion"], summ["fixed_n_same_cost"], strict=True))
    for crit, g in rows.groupby("criterion", sort=True):
        stopped = g["stopped"].astype(bool)
        idx = g.loc[stopped, "stop_index"].astype(float)
        inside = (stopped & (g["stop_index"].fillna(-1).astype(int) + 1 < corpus.cold)
                  if corpus.cold else None)
        fixed = fixed_n_same_cost(g)
        check_fixed_n(g, corpus.traces, corpus.run_id, fixed)
        out.append({
            "criterion": crit,
            "stops": f"{stopped.mean():.0%}",
            "never stops": f"{1 - stopped.mean():.0%}",
            "inside cold": "—" if inside is None else f"{inside.mean():.0%}",
            "median stop index": "—" if idx.empty else f"{idx.median():g}",
            "mean cost (samples)": f"{g['samples_used'].mean():.1f}",
            "fixed n, same cost": (scoring_n.get(crit) if use_scoring
                                   else ("—" if fixed["n"] is None else fixed["n"])),
            "fixed n: inside cold": ("—" if math.isnan(fixed["inside_cold"])
                                     else f"{fixed['inside_cold']:.0%}"),
            "fixed n: never stops": ("—" if math.isnan(fixed["never"])
                                     else f"{fixed['never']:.0%}"),
        })
    return pd.DataFrame(out)


def headline(all_rows: pd.DataFrame, corpora: list[Corpus]) -> pd.DataFrame:
    """Per criterion and corpus with a cold start: share stopping inside it / never stopping."""
    table: dict[str, dict[str, str]] = {}
    for corpus in corpora:
        g = all_rows[all_rows["corpus"] == corpus.name]
        for crit, gc in g.groupby("criterion", sort=True):
            stopped = gc["stopped"].astype(bool)
            cell = f"{1 - stopped.mean():.0%}"
            if corpus.cold:
                inside = stopped & (gc["stop_index"].fillna(-1).astype(int) + 1 < corpus.cold)
                cell = f"{inside.mean():.0%} / {cell}"
            table.setdefault(crit, {"criterion": crit})[corpus.name] = cell
    return pd.DataFrame(list(table.values()))


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    gpu = args.data / "gpu"
    if not gpu.is_dir():
        print(f"no GPU extracts at {gpu}", file=sys.stderr)
        return 2
    corpora = [megatron_iteration(gpu), nanogpt_steps(gpu), megatron_inference(gpu),
               vllm(gpu, "ttft"), vllm(gpu, "decode"), llmperf(gpu), mlperf(gpu)]
    criteria, skipped = criteria_with_defaults()
    use_scoring = summarize_offers_fixed_n()
    parts = ["## Corpora", ""]
    overview = []
    for c in corpora:
        lengths = [len(t.samples(c.run_id)) for t in c.traces]
        overview.append({"corpus": c.name, "series": len(c.traces), "samples": sum(lengths),
                         "length (min / median / max)":
                             f"{min(lengths)} / {np.median(lengths):g} / {max(lengths)}",
                         "cold samples": "—" if c.cold is None else f"{c.cold}: {c.cold_what}",
                         "sample times": c.times})
    parts += [markdown(pd.DataFrame(overview)), ""]
    parts += [f"Criteria replayed with their defaults ({len(criteria)}): "
              + ", ".join(f"`{c}`" for c in criteria) + "."]
    parts += ["Not replayable with defaults: "
              + ", ".join(f"`{k}` ({v})" for k, v in skipped.items()) + "."]
    parts += [f"Stop rule: `{RULE!r}`. Equal-cost fixed count: "
              + ("`analysis.scoring.summarize` (`fixed_n_same_cost`)." if use_scoring else
                 "`fixed_n_same_cost` of this script (`summarize` does not offer it)."), ""]
    all_rows = []
    per_corpus = []
    for c in corpora:
        rows = replay_corpus(c, criteria)
        all_rows.append(rows)
        per_corpus.append((c, summary_table(rows, c, use_scoring)))
    rows = pd.concat(all_rows, ignore_index=True)
    parts += ["## Headline: stops inside the cold steps / never stops", "",
              "Cells: share of series on which the criterion stops inside the cold steps "
              "(stop index + 1 < cold samples) / never stops; one number: never stops "
              "(no cold start marked).", "", markdown(headline(rows, corpora)), ""]
    for c, table in per_corpus:
        parts += [f"## {c.name}", "", markdown(table), ""]
    text = "\n".join(parts)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
