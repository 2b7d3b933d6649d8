"""The analysis subcommands of ``llem-warmup``, run in-process through ``main([...])``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llenergymeasure.analysis.demo import (
    COSTLY_CRITERIA,
    DEFAULT_CRITERIA,
    DEMO_SHADOW_CRITERIA,
    EXCLUDED_CRITERIA,
    costly_criteria,
    default_criteria,
)
from llenergymeasure.analysis.replay import replay
from llenergymeasure.cli import main
from llenergymeasure.criteria import StopRule, available_criteria
from llenergymeasure.criteria.registry import criterion_info
from llenergymeasure.traces import RunInfo, Trace, TraceMetadata, load_trace, save_trace


def _trace(seed: int, n: int = 150, name: str = "t") -> Trace:
    rng = np.random.default_rng(seed)
    lat = 20.0 * (1 + np.exp(-np.arange(n) / 15.0)) * rng.lognormal(0, 0.01, n)
    ends = np.cumsum(np.round(lat * 1e6).astype(np.int64))
    starts = np.r_[0, ends[:-1]]
    rows = [
        {"run_id": "r0", "index": i, "t_start_ns": int(s), "t_end_ns": int(e),
         "wall_start_ns": None, "latency_ms": (e - s) / 1e6, "ok": True, "error": None}
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]
    meta = TraceMetadata(runs=[RunInfo(run_id="r0", reference_start=40)],
                         tags={"trace_id": f"{name}{seed}"})
    return Trace.from_rows(rows, meta)


@pytest.fixture()
def trace_dir(tmp_path):
    folder = tmp_path / "traces"
    folder.mkdir()
    for s in range(3):
        save_trace(_trace(s), folder / f"t{s}.parquet")
    return folder


def test_criteria_lists_every_criterion_with_parameters_and_defaults(capsys):
    assert main(["criteria"]) == 0
    out = capsys.readouterr().out
    for name in available_criteria():
        assert f"{name}: " in out
    assert "window (int, default 5)" in out  # rolling_cv's window
    assert main(["criteria", "--json", "rolling_cv"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == json.loads(json.dumps([criterion_info("rolling_cv")], default=str))


def test_criteria_unknown_name_is_a_usage_error(capsys):
    assert main(["criteria", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown criterion 'nope'" in err and "rolling_cv" in err


def test_replay_writes_the_library_table(trace_dir, tmp_path, capsys):
    out = tmp_path / "res" / "results.parquet"
    code = main(["replay", str(trace_dir), "-c", "rolling_cv:window=8", "-c", "fixed_count",
                 "--min-samples", "10", "--out", str(out), "-q"])
    assert code == 0
    assert "3 runs x 2 criterion settings = 6 rows" in capsys.readouterr().out
    got = pd.read_parquet(out)
    traces = [load_trace(p) for p in sorted(trace_dir.iterdir())]
    want = replay(traces, ["rolling_cv:window=8", "fixed_count"],
                  stop_rule=StopRule(min_samples=10))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_replay_with_a_grid_file(trace_dir, tmp_path, suffix):
    grid = {"rolling_cv": {"threshold": [0.01, 0.02, 0.05], "window": [5, 10]}}
    path = tmp_path / f"grid{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(grid))
    else:
        import yaml

        path.write_text(yaml.safe_dump(grid))
    out = tmp_path / "results.csv"
    assert main(["replay", str(trace_dir / "t0.parquet"), "--grid", str(path),
                 "--out", str(out), "-q"]) == 0
    got = pd.read_csv(out)
    assert len(got) == 6
    assert set(zip(got.param_window, got.param_threshold, strict=True)) == {
        (w, t) for w in (5, 10) for t in (0.01, 0.02, 0.05)
    }


def test_replay_parallel_jobs_equal_serial(trace_dir, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    args = ["replay", str(trace_dir), "-c", "rolling_cv", "-q"]
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b), "--jobs", "2"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))


def test_replay_bad_input_is_a_usage_error(trace_dir, tmp_path, capsys):
    out = str(tmp_path / "r.parquet")
    assert main(["replay", str(trace_dir), "-c", "rolling_cv:windw=3", "--out", out]) == 2
    assert "valid parameters" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing"), "-c", "rolling_cv", "--out", out]) == 2
    assert "no trace file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["replay", str(trace_dir), "--grid", str(bad), "--out", out]) == 2
    assert "a grid is a mapping" in capsys.readouterr().err


def test_default_criteria_cover_the_families_and_are_registered():
    specs = default_criteria()
    assert set(specs) <= set(DEFAULT_CRITERIA)
    names = {s.split(":")[0].split("(")[0] for s in specs}
    assert {"fixed_count", "rolling_cv", "all_of"} <= names
    # Every registered steady-state detector is in the default set, or excluded with a reason.
    detectors = {n for n in available_criteria()
                 if n not in ("all_of", "any_of", "min_duration", "max_duration")}
    # Heavy criteria are found by their declared cost class; their measured costs are noted.
    assert set(costly_criteria()) == set(COSTLY_CRITERIA)
    detectors -= set(costly_criteria()) | set(EXCLUDED_CRITERIA)
    missing = detectors - {s.split(":")[0].split("(")[0] for s in DEFAULT_CRITERIA}
    assert not missing, f"add {sorted(missing)} to DEFAULT_CRITERIA"


def test_compare_writes_summary_tables(trace_dir, tmp_path):
    res = tmp_path / "results.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-c", "fixed_count:n=60",
                 "--out", str(res), "-q"]) == 0
    report = tmp_path / "report"
    assert main(["compare", str(res), "--traces", str(trace_dir), "--out", str(report)]) == 0
    summary = pd.read_csv(report / "summary.csv")
    assert len(summary) == 2
    assert (report / "report.md").read_text().startswith("# Comparison of warmup criteria")
    scored = pd.read_parquet(report / "scored.parquet")
    assert len(scored) == 6


def test_simulate_writes_traces_with_known_starts(tmp_path):
    from llenergymeasure.analysis import synthetic

    kind = next(iter(synthetic.SYNTHETIC_KINDS))
    out = tmp_path / "sim.parquet"
    assert main(["simulate", "--kind", kind, "--n", "200", "--traces", "2", "--out", str(out)]) == 0
    trace = load_trace(out)
    assert len(trace.run_ids) == 2
    assert all(len(trace.samples(r)) == 200 for r in trace.run_ids)
    folder = tmp_path / "sim"
    assert main(["simulate", "--kind", kind, "--n", "100", "--out", str(folder)]) == 0
    assert len(list(folder.glob("*.parquet"))) == 1
    assert main(["simulate", "--kind", "no_such_kind", "--out", str(folder)]) == 2


def test_demo_quick_writes_a_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "-q"]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# llenergymeasure demo report")
    results = pd.read_parquet(out / "results.parquet")
    tiny = load_trace(out / "traces" / "tiny_gpt2.jsonl")
    info = tiny.run_info()
    assert info.status in ("converged", "not_converged")
    # The driver's stop (or its 20-attempt cap), then 20 more recorded attempts.
    stop = info.stop_index if info.stop_index is not None else 19
    assert len(tiny.samples()) == stop + 1 + 20 and np.all(tiny.samples() > 0)
    assert set(info.shadow) == set(DEMO_SHADOW_CRITERIA)
    assert f"{info.status} ({info.stop_reason})" in report
    # The demo's table is the replay of its own traces.
    rows = results[results["trace_id"] == "tiny_gpt2"]
    assert list(rows["spec"]) == list(pd.unique(results["spec"]))
    again = replay(tiny, list(rows["spec"]))
    np.testing.assert_array_equal(rows["stop_index"].to_numpy(dtype=float, na_value=np.nan),
                                  again["stop_index"].to_numpy(dtype=float, na_value=np.nan))
    for spec in rows["spec"]:
        assert f"`{spec}`" in report


def test_figures_from_a_scored_table(trace_dir, tmp_path, capsys):
    res = tmp_path / "results.parquet"
    assert main(["replay", str(trace_dir), "--grid", str(_grid_file(tmp_path)),
                 "--out", str(res), "-q"]) == 0
    report = tmp_path / "report"
    assert main(["compare", str(res), "--traces", str(trace_dir), "--out", str(report)]) == 0
    out = tmp_path / "figs"
    assert main(["figures", str(report / "scored.parquet"), "--out", str(out)]) == 0
    pngs = sorted(out.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert {p.name for p in pngs} <= {str(line).rsplit("/", 1)[-1]
                                      for line in capsys.readouterr().out.split()}


def _grid_file(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"rolling_cv": {"threshold": [0.01, 0.03], "window": [5, 10]}}))
    return path
