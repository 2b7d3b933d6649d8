"""Out-of-fold equal-cost comparison of the `learned` criterion, and its replay on GPU series.

Run from the repository root (the data live in ``../shared/data``)::

    python examples/learned_rule_cv.py [--out DIR] [--seeds 0 1 2]

1. Reads the Traini development corpus (30 JMH benchmarks x 10 forks; labels = the
   published steady-state starts), and cross-validates `train_learned_rule` with 5 folds
   grouped by benchmark (the threshold is chosen inside each fold's training data), for
   several fold assignments.
2. Compares the out-of-fold stops with the fixed count of the same mean cost on the same
   runs (`equal_cost_table`: premature-stop lift with its paired bootstrap CI, mean |WEE|
   lift, P90 |relative bias| lift), next to a few existing criteria.
3. Draws the cost / premature-rate figure (`docs/criteria/img/learned_equal_cost.png`).
4. Replays the shipped default model on the GPU series of ``../shared/data/gpu`` (Megatron-LM
   iteration times, modded-nanogpt steps, Megatron inference passes, vLLM decode steps)
   and reports where it stops, next to other criteria (`docs/criteria/img/learned_gpu.png`).

The numbers of ``docs/criteria/learned.md`` are this script's output.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from llenergymeasure.analysis.learn import (
    THRESHOLD_GRID,
    LabelledRun,
    cross_validate,
    equal_cost_comparison,
    read_labelled_runs,
    steady_runs,
)
from llenergymeasure.criteria import StopRule, make_criterion
from llenergymeasure.criteria.learned import FEATURES, feature_matrix, load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
IMG = ROOT / "docs" / "criteria" / "img"
#: Existing criteria replayed beside the learned rule (light ones, at their defaults or
#: at the settings the comparison issue quotes).
CONTEXT = (
    "pyperf_halves",
    "rolling_cv:window=30,threshold=0.02",
    "rolling_cv",
    "mser5",
)
RULE = StopRule()  # stop at the first passing sample
LATE = 100  # a labelled start at iteration 100 or later is "late" (10 s of JMH)


def equal_cost_table(stops: Mapping[str, Sequence[int]], runs: Sequence[LabelledRun],
                     *, seed: int = 0) -> pd.DataFrame:
    """The equal-cost comparison of every setting.

    One row per setting with the columns of `scoring.summarize` (``fixed_n_same_cost``,
    ``premature_rate_fixed``, ``premature_lift``, ``premature_lift_ci_low`` / ``_high``,
    ``bias_p90_lift``, ...) and |WEE| in seconds, through
    `llenergymeasure.analysis.learn.equal_cost_comparison` (which scores the stops with
    `scoring.score` and `scoring.summarize`). Late starts: reference at iteration 100
    or later (10 s of JMH).
    """
    rows = []
    for setting, k in stops.items():
        rows.append({"setting": setting,
                     **equal_cost_comparison(k, runs, seed=seed, late_start=LATE)})
    return pd.DataFrame(rows).set_index("setting")


def markdown(frame: pd.DataFrame, *, index: bool = True) -> str:
    """A Markdown table of ``frame`` (numbers to 4 significant digits)."""
    df = frame.reset_index() if index else frame
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
             for row in df.itertuples(index=False)]
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    return "\n".join([head, sep] + ["| " + " | ".join(c) + " |" for c in cells])


def criterion_stops(spec: str, runs: Sequence[LabelledRun]) -> list[int]:
    """Stop index of ``spec`` under `RULE` on every run (-1: never)."""
    crit = make_criterion(spec)
    out = []
    for r in runs:
        t = r.times if crit.needs_time else None
        k = RULE.stop_index(crit.evaluate(r.x, t))
        out.append(-1 if k is None else int(k))
    return out


#: Classical tests made persistent by `StopRule(patience=K)`: the non-learned alternative.
PATIENCE_SPECS = ("trend", "geweke", "mad_median:window=40", "pyperf_halves",
                  "rolling_cv:window=40,threshold=0.02")
PATIENCES = (1, 10, 25, 50, 100, 200)


def patience_alternatives(runs: Sequence[LabelledRun]) -> pd.DataFrame:
    """Equal-cost comparison of classical tests that must pass K samples in a row."""
    stops: dict[str, list[int]] = {}
    for spec in PATIENCE_SPECS:
        crit = make_criterion(spec)
        evs = [crit.evaluate(r.x) for r in runs]
        for k in PATIENCES:
            rule = StopRule(patience=k)
            got = [rule.stop_index(ev) for ev in evs]
            stops[f"{spec}, patience {k}"] = [-1 if g is None else int(g) for g in got]
    return equal_cost_table(stops, runs)


def oof_stops(runs: Sequence[LabelledRun], seeds: Sequence[int],
              feats: Sequence[np.ndarray]) -> dict[int, pd.DataFrame]:
    """Out-of-fold stops (own threshold and the sweep) for each fold assignment."""
    out = {}
    for seed in seeds:
        frame = cross_validate(runs, n_folds=5, seed=seed, sweep=THRESHOLD_GRID,
                               feature_matrices=feats)
        index = {(r.trace_id, r.run_id): i for i, r in enumerate(runs)}
        frame["pos"] = [index[(a, b)] for a, b in zip(frame.trace_id, frame.run_id,
                                                       strict=True)]
        out[seed] = frame.sort_values("pos").reset_index(drop=True)
    return out


def fixed_curve(runs: Sequence[LabelledRun], n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Premature rate of ``fixed_count:n`` for n = 1..n_max on the runs."""
    r = np.array([run.reference_start for run in runs])
    n = np.arange(1, n_max + 1)
    return n, (n[:, None] < r[None, :]).mean(axis=1)


def draw_equal_cost(runs: Sequence[LabelledRun], sweep: pd.DataFrame, table: pd.DataFrame,
                    default: str, path: Path) -> None:
    """Premature rate against mean samples used: fixed counts, the learned sweep, others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, rate = fixed_curve(runs, 3000)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.plot(n, 100 * rate, color="0.3", lw=1.5, label="fixed_count:n")
    ax.plot(sweep["cost"], 100 * sweep["premature_rate"], "o-", color="C0", ms=3,
            label="learned, threshold sweep (out of fold)")
    row = table.loc[default]
    ax.plot([row.mean_samples_used], [100 * row.premature_rate], "*", color="C3", ms=14,
            label="learned (threshold chosen in-fold)")
    for i, spec in enumerate(CONTEXT):
        if spec in table.index:
            c = table.loc[spec]
            ax.plot([c.mean_samples_used], [100 * c.premature_rate], "s", color=f"C{i + 4}",
                    ms=6, label=spec)
    ax.set_xscale("log")
    ax.set_xlabel("mean samples used (iterations of ~0.1 s)")
    ax.set_ylabel("premature stops (% of steady forks)")
    ax.set_title("traini-dev, 253 steady forks, 5-fold CV by benchmark")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    bx.axhline(0, color="0.3", lw=1)
    bx.plot(sweep["cost"], 100 * sweep["premature_lift"], "o-", color="C0", ms=3)
    bx.fill_between(sweep["cost"], 100 * sweep["ci_low"], 100 * sweep["ci_high"],
                    color="C0", alpha=0.2, label="paired bootstrap 95% CI")
    bx.errorbar([row.mean_samples_used], [100 * row.premature_lift],
                yerr=[[100 * (row.premature_lift - row.premature_lift_ci_low)],
                      [100 * (row.premature_lift_ci_high - row.premature_lift)]],
                fmt="*", color="C3", ms=14, capsize=4, label="default procedure")
    bx.axhline(-5, color="C3", lw=0.8, ls="--", label="goal: -5 points")
    bx.set_xscale("log")
    bx.set_xlabel("mean samples used")
    bx.set_ylabel("premature lift vs equal-cost fixed count (points)")
    bx.set_title("rule - fixed count of the same mean cost")
    bx.legend(fontsize=7)
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ------------------------------------------------------------------ GPU series
def gpu_series() -> dict[str, list[tuple[str, np.ndarray, int]]]:
    """``family -> [(name, series, cold_steps)]``; ``cold_steps`` leading samples are cold.

    Megatron-LM: step 1 is the cold step (1 sample). modded-nanogpt: step 1 includes the
    compilation (1 sample); the step after the timer restart is dropped. Megatron
    inference: the first pass is cold. vLLM: per run, the mean decode step (ms) of each
    request in request order, and each request's own inter-token latencies; the server
    was warm (0 cold samples).
    """
    gpu = DATA / "gpu"
    out: dict[str, list[tuple[str, np.ndarray, int]]] = {}
    with gzip.open(gpu / "megatron_lm_iteration_time.json.gz") as fh:
        mega = json.load(fh)
    out["Megatron-LM iteration time"] = [
        (s["golden_file"], np.asarray(s["iteration_time_s"], dtype=float) * 1e3, 1)
        for s in mega["series"] if all(v is not None for v in s["iteration_time_s"])
    ]
    with gzip.open(gpu / "modded_nanogpt_step_times.json.gz") as fh:
        nano = json.load(fh)
    series = []
    for name, log in nano["logs"].items():
        cum = np.asarray(log["train_time_ms_cumulative"], dtype=float)
        d = np.diff(cum)
        steps = np.concatenate([cum[:1], d[d > 0]])
        series.append((name, steps, 1))
    out["modded-nanogpt step time"] = series
    inf = json.loads((gpu / "megatron_lm_inference_throughput.json").read_text())
    out["Megatron inference passes"] = [
        (s["golden_file"], 1e3 / np.asarray(s["throughput_repeats"], dtype=float), 1)
        for s in inf["series"]
    ]
    with gzip.open(gpu / "vllm_serving_llama33_70b_tp8_8xA100.json.gz") as fh:
        vllm = json.load(fh)
    req, tok = [], []
    for name, run in vllm["runs"].items():
        if not (isinstance(run, dict) and "itls" in run):
            continue  # the extract's summary list, not a run
        itls = [np.asarray(v, dtype=float) * 1e3 for v in run["itls"]]
        req.append((name, np.array([v.mean() for v in itls if v.size]), 0))
        tok.extend((f"{name}#{i}", v, 0) for i, v in enumerate(itls) if v.size)
    out["vLLM mean decode step per request"] = req
    out["vLLM decode steps of one request"] = tok
    return out


def gpu_table(specs: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list]]:
    """Per family and criterion: series, long enough, stopped, stops inside the cold steps."""
    rows = []
    examples: dict[str, list] = {}
    for family, items in gpu_series().items():
        for spec in specs:
            crit = make_criterion(spec)
            stops = []
            for name, x, cold in items:
                if not np.isfinite(x).all():
                    continue
                k = RULE.stop_index(crit.evaluate(x))
                stops.append((name, x, cold, k))
            stopped = [s for s in stops if s[3] is not None]
            idx = np.array([s[3] for s in stopped], dtype=float)
            # |post-stop mean / median of the series' second half - 1|: what is left of
            # the warm phase in what would be measured
            left = [abs(float(np.mean(x[k + 1 :])) / float(np.median(x[len(x) // 2 :])) - 1)
                    for _, x, _, k in stopped if k + 1 < len(x)]
            rows.append({
                "family": family, "criterion": spec, "series": len(stops),
                "median_length": float(np.median([len(s[1]) for s in stops])),
                "stopped": len(stopped),
                "stops_in_cold_steps": int(sum(s[3] < s[2] for s in stopped)),
                "median_stop_index": float(np.median(idx)) if idx.size else np.nan,
                "min_stop_index": float(idx.min()) if idx.size else np.nan,
                "median_abs_post_bias": float(np.median(left)) if left else np.nan,
            })
            examples.setdefault(family, []).append((spec, stops))
    return pd.DataFrame(rows), examples


def draw_gpu(examples: dict[str, list], path: Path) -> None:
    """One long example series per family with each criterion's stop marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = ["Megatron-LM iteration time", "modded-nanogpt step time",
            "vLLM mean decode step per request", "vLLM decode steps of one request"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    for ax, fam in zip(axes.ravel(), fams, strict=True):
        per_spec = examples[fam]
        first = per_spec[0][1]
        # the longest series of the family that is not absurdly long, for a readable plot
        lengths = [len(s[1]) for s in first]
        pick = int(np.argmax([n if n <= 2000 else 0 for n in lengths]))
        name, x, _cold, _ = first[pick]
        ax.plot(np.arange(len(x)), x, color="0.4", lw=0.8)
        ax.set_yscale("log")
        for i, (spec, stops) in enumerate(per_spec):
            k = stops[pick][3]
            if k is not None:
                ax.axvline(k, color=f"C{i}", lw=1.2, label=f"{spec}: {k}")
            else:
                ax.plot([], [], color=f"C{i}", label=f"{spec}: never")
        ax.set_xlim(-2, min(len(x), 300))  # the warm phase and the stops, not the tail
        ax.set_title(f"{fam}\n{Path(str(name)).name[:60]} (first 300 samples)", fontsize=8)
        ax.set_xlabel("sample")
        ax.set_ylabel("ms")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--img", type=Path, default=IMG)
    parser.add_argument("--gpu-only", action="store_true", help="Only the GPU replay.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not (DATA / "traini-dev").is_dir():
        print(f"no data at {DATA}: nothing to do")
        return 0
    args.img.mkdir(parents=True, exist_ok=True)
    if args.gpu_only:
        return gpu_part(args.img)
    runs = steady_runs(read_labelled_runs(DATA / "traini-dev"))
    model = load_model()
    feats = [feature_matrix(r.x, model.window) for r in runs]
    oof = oof_stops(runs, args.seeds, feats)
    first = args.seeds[0]
    default = "learned (out of fold, threshold chosen in-fold)"
    stops = {f"{default}, fold seed {s}": oof[s]["stop_index"].tolist() for s in args.seeds}
    for spec in CONTEXT:
        stops[spec] = criterion_stops(spec, runs)
    stops["learned (shipped default, in-sample)"] = criterion_stops("learned", runs)
    table = equal_cost_table(stops, runs)
    cols = ["mean_samples_used", "fixed_n_same_cost", "premature_rate", "premature_rate_fixed",
            "premature_lift", "premature_lift_ci_low", "premature_lift_ci_high",
            "premature_rate_late", "premature_rate_late_fixed",
            "mean_abs_wee_s", "wee_s_lift", "bias_p90", "bias_p90_lift", "never_stopped_rate"]
    print(markdown(table[cols]))
    print("fold thresholds:", {s: sorted(set(oof[s]["threshold"])) for s in args.seeds})
    sweep_rows = []
    for th in THRESHOLD_GRID:
        res = equal_cost_comparison(oof[first][f"stop_index@{th:g}"].tolist(), runs,
                                    late_start=LATE)
        sweep_rows.append({"threshold": th, "cost": res["mean_samples_used"],
                           "premature_rate": res["premature_rate"],
                           "premature_lift": res["premature_lift"],
                           "ci_low": res["premature_lift_ci_low"],
                           "ci_high": res["premature_lift_ci_high"],
                           "bias_p90_lift": res["bias_p90_lift"]})
    sweep = pd.DataFrame(sweep_rows)
    print(markdown(sweep, index=False))
    table.loc[default] = table.loc[f"{default}, fold seed {first}"]
    draw_equal_cost(runs, sweep, table, default, args.img / "learned_equal_cost.png")
    alt = patience_alternatives(runs)
    print(markdown(alt[["mean_samples_used", "premature_rate", "premature_rate_fixed",
                        "premature_lift", "premature_lift_ci_low", "premature_lift_ci_high",
                        "wee_s_lift", "bias_p90_lift", "never_stopped_rate"]]))
    coefs = pd.Series(model.coef, index=list(model.features))
    print("default model", model.version, "threshold", model.threshold, "persistence",
          model.persistence, "window", model.window)
    print(coefs.to_string())
    assert tuple(model.features) == FEATURES
    return gpu_part(args.img)


def gpu_part(img: Path) -> int:
    """Replay the default model and three other criteria on the GPU series."""
    if (DATA / "gpu").is_dir():
        gtab, examples = gpu_table(["learned", "pyperf_halves", "rolling_cv", "mser5"])
        print(markdown(gtab, index=False))
        draw_gpu(examples, img / "learned_gpu.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
