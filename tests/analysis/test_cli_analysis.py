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


# ------------------------------------------------- issue 12: no traceback, one convention
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def test_malformed_yaml_grid_is_a_usage_error_naming_the_line(trace_dir, tmp_path, capsys):
    bad = tmp_path / "grid.yaml"
    bad.write_text("rolling_cv:\n  threshold: [0.01, 0.02\n")
    assert main(["replay", str(trace_dir), "--grid", str(bad), "-o",
                 str(tmp_path / "r.parquet")]) == 2
    line = _one_line_error(capsys)
    assert "grid.yaml" in line and "line" in line and "invalid YAML" in line


def test_pyyaml_is_a_declared_dependency():
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml")
                            .read_text())["project"]
    assert any(d.lower().startswith("pyyaml") for d in project["dependencies"])


@pytest.mark.parametrize("argv", [
    ["simulate", "--traces", "0", "-o", "x"],
    ["simulate", "--n", "-3", "-o", "x"],
    ["replay", "t", "--jobs", "0", "-o", "r.parquet"],
    ["compare", "r.parquet", "-o", "x", "--n-resamples", "-1"],
    ["figures", "r.parquet", "-o", "x", "--format", "jpg"],
])
def test_bad_numbers_and_choices_are_usage_errors(argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_replay_output_suffix_decides_the_format_or_fails(trace_dir, tmp_path, capsys):
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o",
                 str(tmp_path / "r.xlsx")]) == 2
    assert "'.xlsx'" in _one_line_error(capsys)
    assert not (tmp_path / "r.xlsx").exists()
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(tmp_path / "r.csv"),
                 "-q"]) == 0
    assert pd.read_csv(tmp_path / "r.csv")["spec"].nunique() == 1


def test_figures_out_on_an_existing_file_is_a_usage_error(trace_dir, tmp_path, capsys):
    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(res), "-q"]) == 0
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert main(["figures", str(res), "-o", str(target)]) == 2
    assert "is a file" in _one_line_error(capsys)
    assert target.read_text() == "keep me"


def test_figures_on_a_file_that_is_not_a_results_table_fails(trace_dir, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figures", str(trace_dir / "t0.parquet"), "-o", str(out)]) == 2
    assert "not a results table" in _one_line_error(capsys)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["figures", str(tmp_path / "x.csv"), "-o", str(out)]) == 2
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    assert main(["figures", str(tmp_path / "junk.parquet"), "-o", str(out)]) == 2
    assert not out.exists() or not list(out.iterdir())


def test_figures_formats_and_tolerance(trace_dir, tmp_path):
    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-c", "mser5", "-o", str(res),
                 "-q"]) == 0
    out = tmp_path / "figs"
    assert main(["figures", str(res), "-o", str(out), "--format", "pdf,svg",
                 "--tolerance", "0.5", "-q"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "wee_ecdf.pdf" in names and "wee_ecdf.svg" in names
    assert not any(n.endswith(".png") for n in names)
    svg = (out / "wee_ecdf.svg").read_text()
    assert "±0.5 s band" in svg


def test_compare_runs_without_traces_when_the_results_carry_the_scores(trace_dir, tmp_path):
    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-c", "fixed_count:n=50",
                 "-o", str(res), "-q"]) == 0
    assert main(["compare", str(res), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert main(["compare", str(res), "--traces", str(trace_dir), "-o", str(tmp_path / "b"),
                 "--n-resamples", "50", "-q"]) == 0
    a = pd.read_parquet(tmp_path / "a" / "scored.parquet")
    b = pd.read_parquet(tmp_path / "b" / "scored.parquet")
    # the scores a results table carries agree with the scores computed from the traces
    for col in ("wee", "premature", "waste_band", "outcome", "has_reference"):
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    np.testing.assert_allclose(a["wee_s"].astype(float), b["wee_s"].astype(float))
    np.testing.assert_allclose(a["relative_bias"].astype(float),
                               b["relative_bias"].astype(float), rtol=1e-9)
    assert a["bias_ci_low"].isna().all() and b["bias_ci_low"].notna().any()


def test_compare_reference_file_without_resamples(trace_dir, tmp_path):
    """--reference with --n-resamples 0 scores against the file (no bias CIs), as with CIs."""
    from llenergymeasure.analysis.corpus import Corpus

    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "fixed_count:n=50", "-o", str(res), "-q"]) == 0
    keys = Corpus.build(trace_dir).keys()
    ref = tmp_path / "ref.csv"
    ref.write_text("trace_id,run_id,reference_start\n"
                   + "".join(f"{t},{r},60\n" for t, r in keys))
    for n in ("0", "20"):
        assert main(["compare", str(res), "--traces", str(trace_dir), "--reference", str(ref),
                     "-o", str(tmp_path / n), "--n-resamples", n, "-q"]) == 0
    a = pd.read_parquet(tmp_path / "0" / "scored.parquet")
    b = pd.read_parquet(tmp_path / "20" / "scored.parquet")
    assert (a["reference_start"] == 60).all()
    # a fixed count of 50 stops before a reference start of 60: premature everywhere
    assert a["premature"].all() and (a["wee"] == -10).all()
    assert a["outcome"].tolist() == b["outcome"].tolist()
    assert a["bias_ci_low"].isna().all() and b["bias_ci_low"].notna().any()


def test_compare_chunked_scoring_equals_one_call(trace_dir, tmp_path):
    from llenergymeasure.analysis import scoring
    from llenergymeasure.traces import load_traces

    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-c", "mser5", "-o", str(res),
                 "-q"]) == 0
    assert main(["compare", str(res), "--traces", str(trace_dir), "-o", str(tmp_path / "c"),
                 "--n-resamples", "40", "-q"]) == 0
    got = pd.read_parquet(tmp_path / "c" / "scored.parquet")
    want = scoring.score(pd.read_parquet(res), load_traces(trace_dir), n_resamples=40)
    np.testing.assert_allclose(got["bias_ci_low"].astype(float),
                               want["bias_ci_low"].astype(float), equal_nan=True)


def test_ctrl_c_in_replay_keeps_the_finished_runs(trace_dir, tmp_path, monkeypatch, capsys):
    import llenergymeasure.analysis.replay as replay_mod

    real = replay_mod.replay
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(replay_mod, "replay", interrupted)
    for s in range(3, 12):
        save_trace(_trace(s), trace_dir / f"t{s}.parquet")
    out = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(out), "-q"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists()
    partial = pd.read_parquet(tmp_path / "r.partial.parquet")
    assert len(partial) > 0 and partial["trace_id"].nunique() == len(partial)
    # the rows kept are those of an uninterrupted replay
    monkeypatch.setattr(replay_mod, "replay", real)
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(out), "-q"]) == 0
    full = pd.read_parquet(out).set_index(["trace_id", "run_id"])
    kept = partial.set_index(["trace_id", "run_id"])
    pd.testing.assert_series_equal(full.loc[kept.index, "stop_index"], kept["stop_index"])


def test_ctrl_c_with_jobs_exits_130(trace_dir, tmp_path, monkeypatch, capsys):
    import llenergymeasure.analysis.replay as replay_mod

    real = replay_mod.replay
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(replay_mod, "replay", interrupted)
    out = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(out), "-q",
                 "--jobs", "2"]) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert (tmp_path / "r.partial.parquet").exists()


def test_ctrl_c_in_compare_exits_130(trace_dir, tmp_path, monkeypatch, capsys):
    from llenergymeasure.analysis import scoring

    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(res), "-q"]) == 0

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring, "score", boom)
    assert main(["compare", str(res), "--traces", str(trace_dir), "-o",
                 str(tmp_path / "c")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().count("\n") == 0


def test_a_bad_file_in_a_folder_stops_unless_keep_going(trace_dir, tmp_path, capsys):
    (trace_dir / "broken.jsonl").write_text("not a trace\n")
    out = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(out), "-q"]) == 2
    assert "broken.jsonl" in _one_line_error(capsys)
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o", str(out), "-q",
                 "--keep-going"]) == 0
    assert "broken.jsonl" in capsys.readouterr().out
    assert pd.read_parquet(out)["trace_id"].nunique() == 3


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_anywhere(trace_dir, tmp_path, where):
    import logging

    argv = ["criteria", "rolling_cv"]
    argv = ["-v", *argv] if where == "before" else [*argv, "-v"]
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    assert main(argv) == 0
    assert root.level == logging.INFO


def test_unexpected_errors_are_one_line_and_exit_1(trace_dir, tmp_path, monkeypatch, capsys):
    import llenergymeasure.analysis.replay as replay_mod

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(replay_mod, "replay", broken)
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-o",
                 str(tmp_path / "r.parquet"), "-q"]) == 1
    line = _one_line_error(capsys)
    assert "RuntimeError" in line and "disk on fire" in line


def test_compare_html_report_and_latex_choices(trace_dir, tmp_path):
    res = tmp_path / "r.parquet"
    assert main(["replay", str(trace_dir), "-c", "rolling_cv", "-c", "mser5", "-o", str(res),
                 "-q"]) == 0
    out = tmp_path / "rep"
    assert main(["compare", str(res), "-o", str(out), "-q", "--html", str(out / "r.html"),
                 "--columns", "spec=Rule,premature_rate", "--caption", "Two rules"]) == 0
    html = (out / "r.html").read_text()
    assert "Against a fixed count of the same cost" in html and "data:image/png;base64" in html
    tex = (out / "summary.tex").read_text()
    assert r"\caption{Two rules}" in tex and "Rule & Premature" in tex
    assert main(["compare", str(res), "-o", str(tmp_path / "x"), "--columns", "nope"]) == 2
