"""Tests of :func:`llenergymeasure.analysis.replay.replay`.

The central property: replaying a trace stops exactly where the online driver
(:func:`warmup_until_converged`) stops on the same values, for every
registered criterion. The fast threshold sweep is held to the slow path (one
evaluation per setting) on hypothesis-generated series and stop rules.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llenergymeasure.analysis.replay as replay_mod
import llenergymeasure.analysis.replay_decide as replay_decide
import llenergymeasure.core.warmup as warmup_mod
from llenergymeasure.analysis.corpus import Corpus
from llenergymeasure.analysis.replay import (
    RESULT_COLUMNS,
    ReplayError,
    ReplaySampleError,
    expand_grid,
    replay,
)
from llenergymeasure.analysis.replay_decide import verify_sweeps
from llenergymeasure.analysis.replay_grid import plan_units
from llenergymeasure.analysis.results import finish_frame
from llenergymeasure.config.models import WarmupConfig
from llenergymeasure.core.warmup import warmup_until_converged
from llenergymeasure.criteria import StopRule, available_criteria, make_criterion
from llenergymeasure.criteria.base import CriterionConfigError, InvalidSampleError
from llenergymeasure.criteria.registry import criterion_info
from llenergymeasure.traces.model import RunInfo, Trace, TraceMetadata

FAIL_NS = 3_000_000  # a failed attempt takes 3 ms


def warmup_series(n: int, seed: int, base: float = 200.0, tau: float = 40.0) -> np.ndarray:
    """Exponential warmup decay to ``base`` ms plus 1 % log-normal noise."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    return base * (1.0 + 1.5 * np.exp(-i / tau)) * rng.lognormal(0.0, 0.01, n)


def make_trace(
    latencies: np.ndarray,
    failed_at: tuple[int, ...] = (),
    *,
    run_id: str = "r0",
    reference_start: int | None = None,
    name: str = "t0",
) -> Trace:
    """A one-run trace: attempts back to back on an integer ns clock.

    ``failed_at`` are attempt positions that fail (3 ms each, no sample); the
    successful attempts take their latency, rounded to whole ns.
    """
    rows, clock, k = [], 0, 0
    n_attempts = len(latencies) + len(failed_at)
    for a in range(n_attempts):
        ok = a not in failed_at
        dur = round(latencies[k] * 1e6) if ok else FAIL_NS
        rows.append(
            {
                "run_id": run_id,
                "index": a,
                "t_start_ns": clock,
                "t_end_ns": clock + dur,
                "wall_start_ns": 1_700_000_000_000_000_000 + clock,
                "latency_ms": dur / 1e6 if ok else math.nan,
                "ok": ok,
                "error": None if ok else "RuntimeError: boom",
            }
        )
        clock += dur
        k += ok
    meta = TraceMetadata(
        runs=[RunInfo(run_id=run_id, reference_start=reference_start)], tags={"trace_id": name}
    )
    return Trace.from_rows(rows, meta)


class FakeClock:
    """Stands in for the ``time`` module of the driver: a ns clock advanced by hand."""

    def __init__(self) -> None:
        import time

        self._time = time
        self.now = 0

    def perf_counter_ns(self) -> int:
        return self.now

    def __getattr__(self, name: str):  # time.time_ns and friends stay real
        return getattr(self._time, name)


def drive(trace: Trace, spec: str, min_prompts: int, monkeypatch) -> object:
    """Run the driver on a callable that returns the trace's attempts one by one."""
    clock = FakeClock()
    monkeypatch.setattr(warmup_mod, "time", clock)
    rows = trace.data.to_dict("records")
    it = iter(rows)

    def fn() -> float:
        row = next(it)
        clock.now = int(row["t_end_ns"])
        if not row["ok"]:
            raise RuntimeError("boom")
        return float(row["latency_ms"])

    config = WarmupConfig(criterion=spec, min_prompts=min_prompts, max_prompts=len(rows))
    return warmup_until_converged(fn, config, show_progress=False)


def default_spec(name: str) -> str:
    """A spec for every registered criterion (composites get two children)."""
    if name in ("all_of", "any_of"):
        return f"{name}(rolling_cv:window=8,threshold=0.03,min_duration:seconds=20)"
    info = criterion_info(name)
    required = [p["name"] for p in info["parameters"] if p["required"]]
    assert not required, f"{name} has required parameters {required}; give the test a spec"
    return name


# ------------------------------------------------------------------ driver == replay
@pytest.mark.parametrize("name", available_criteria())
@pytest.mark.parametrize("seed", [0, 1])
def test_replay_stops_where_the_driver_stops(name, seed, monkeypatch):
    x = warmup_series(400, seed)
    trace = make_trace(x, failed_at=(0, 3, 77))
    spec = default_spec(name)
    min_prompts = 7
    result = drive(trace, spec, min_prompts, monkeypatch)
    row = replay(trace, spec, stop_rule=StopRule(min_samples=min_prompts)).iloc[0]
    driver_stop = result.iterations_completed - 1 if result.status == "converged" else None
    replay_stop = None if pd.isna(row["stop_index"]) else int(row["stop_index"])
    assert replay_stop == driver_stop, (spec, row["reason"], result.stop_reason)
    assert bool(row["converged"]) == (result.status == "converged")
    if driver_stop is not None:
        np.testing.assert_allclose(row["statistic"], result.final_statistic, rtol=1e-9)
        assert row["samples_used"] == result.iterations_completed
        assert row["stop_time_s"] == trace.sample_times_s()[driver_stop]


def test_every_criterion_stops_somewhere_in_the_parity_test(monkeypatch):
    """The parity test is not vacuous: on a long warmup most specs do stop."""
    trace = make_trace(warmup_series(400, 0))
    specs = [default_spec(n) for n in available_criteria()]
    df = replay(trace, specs, stop_rule=StopRule(min_samples=7))
    assert df["stopped"].mean() >= 0.5


@pytest.mark.parametrize("name", available_criteria())
def test_early_exit_on_prefixes_gives_the_whole_run_rows(name):
    """Prefix evaluation (64 samples, 256, then the whole run) equals whole-run evaluation."""
    traces = [make_trace(warmup_series(450, s, tau=t), name=f"t{s}")
              for s, t in ((0, 40.0), (1, 120.0), (2, 2000.0))]
    spec = default_spec(name)
    for rule in (StopRule(min_samples=7), StopRule(min_samples=100, patience=2)):
        fast = replay(traces, spec, stop_rule=rule)
        slow = replay(traces, spec, stop_rule=rule, early_exit=False)
        pd.testing.assert_frame_equal(fast, slow)


def test_early_exit_stop_beyond_the_first_prefix():
    trace = make_trace(warmup_series(1500, 0, tau=150.0))
    specs = ["fixed_count:n=300", "min_duration:seconds=150",
             "rolling_cv:window=30,threshold=0.012"]
    fast = replay(trace, specs)
    slow = replay(trace, specs, early_exit=False)
    pd.testing.assert_frame_equal(fast, slow)
    assert (fast["stop_index"] > 256).all(), fast["stop_index"].tolist()


# ------------------------------------------------------------------ columns and inputs
def test_row_contents_against_hand_computation():
    x = np.r_[np.linspace(30.0, 10.0, 20), np.full(30, 10.0)]
    trace = make_trace(x, failed_at=(5,), reference_start=20)
    df = replay(trace, "rolling_cv:window=5,threshold=0.01")
    assert list(df.columns[:4]) == list(RESULT_COLUMNS[:4])
    assert set(RESULT_COLUMNS) <= set(df.columns)
    row = df.iloc[0]
    t = trace.sample_times_s()
    # The CV of a window is below 1 % only once the window is in the flat part:
    # the first window of five 10.0 is samples 20..24, but 10.0 is reached at 19.
    cv = [np.std(x[i - 4 : i + 1], ddof=1) / np.mean(x[i - 4 : i + 1]) for i in range(4, 50)]
    first = 4 + int(np.argmax(np.array(cv) < 0.01))
    assert row["stop_index"] == first
    assert row["stop_time_s"] == t[first]
    assert row["samples_used"] == first + 1 and row["seconds_used"] == t[first]
    assert row["failures"] == 1 and row["n_samples"] == 50
    assert row["post_stop_mean"] == pytest.approx(np.mean(x[first + 1 :]))
    assert row["reference_start"] == 20
    assert row["reference_start_s"] == t[19]
    assert row["reference_mean"] == pytest.approx(10.0)
    assert row["param_window"] == 5 and row["param_threshold"] == 0.01
    assert row["trace_id"] == "t0" and row["run_id"] == "r0"
    assert row["criterion"] == "rolling_cv"
    assert row["spec"] == make_criterion("rolling_cv:window=5,threshold=0.01").spec


def test_failed_attempts_are_skipped_and_times_come_from_timestamps():
    x = warmup_series(120, 3)
    clean = make_trace(x)
    gappy = make_trace(x, failed_at=(2, 10, 11, 50))
    a = replay(clean, "rolling_cv:window=10,threshold=0.02").iloc[0]
    b = replay(gappy, "rolling_cv:window=10,threshold=0.02").iloc[0]
    assert a["stop_index"] == b["stop_index"]
    k = int(b["stop_index"])
    # Failed attempts before the stop take 3 ms each of wall time.
    n_failed_before = sum(1 for f in (2, 10, 11, 50) if f <= k + 4)
    assert b["stop_time_s"] == pytest.approx(a["stop_time_s"] + FAIL_NS / 1e9 * n_failed_before)
    assert b["failures"] == 4


def test_empty_and_too_short_runs_give_unstopped_rows_with_a_reason():
    empty = make_trace(np.array([]), failed_at=(0, 1, 2), name="empty")
    short = make_trace(np.array([10.0, 10.0, 10.0]), name="short")
    df = replay([empty, short], ["rolling_cv", "fixed_count:n=1"],
                stop_rule=StopRule(min_samples=5))
    assert len(df) == 4
    assert not df["stopped"].any() and df["stop_index"].isna().all()
    reasons = dict(zip(df["trace_id"] + "/" + df["criterion"], df["reason"], strict=True))
    assert "no successful samples" in reasons["empty/rolling_cv"]
    assert "fewer than min_samples=5" in reasons["short/fixed_count"]
    assert (df.loc[df.trace_id == "short", "samples_used"] == 3).all()


def test_cap_stops_without_convergence():
    x = warmup_series(200, 0, tau=400.0)  # never flat within the trace
    df = replay(x, "rolling_cv:threshold=0.001", stop_rule=StopRule(max_samples=50))
    row = df.iloc[0]
    assert row["stopped"] and not row["converged"]
    assert row["stop_index"] == 49
    assert "cap of 50" in row["reason"]


def test_reference_no_steady_state_and_multi_run_traces():
    a = make_trace(warmup_series(100, 0), run_id="fork0", reference_start=-1)
    b = make_trace(warmup_series(100, 1), run_id="fork1", reference_start=30)
    data = pd.concat([a.data, b.data], ignore_index=True)
    trace = Trace(data, TraceMetadata(runs=a.metadata.runs + b.metadata.runs,
                                      tags={"trace_id": "bench"}))
    df = replay(trace, "fixed_count:n=10")
    assert list(df["run_id"]) == ["fork0", "fork1"]
    assert df["reference_start"].tolist() == [-1, 30]
    assert math.isnan(df["reference_start_s"].iloc[0])
    assert df["reference_start_s"].iloc[1] == trace.sample_times_s("fork1")[29]


def test_bare_series_and_mappings_are_accepted():
    x = warmup_series(100, 2)
    df = replay({"a": x, "b": {"latency_ms": x, "power_w": x * 2}}, "rolling_cv")
    assert list(df["trace_id"]) == ["a", "b"]
    assert df["stop_index"].iloc[0] == df["stop_index"].iloc[1]
    # A bare series has no wall time unless its values are declared durations.
    k = int(df["stop_index"].iloc[0])
    assert df["stop_time_s"].isna().all() and df["seconds_used"].isna().all()
    timed = replay({"a": x}, "rolling_cv", values_are_durations=True)
    assert timed["stop_time_s"].iloc[0] == pytest.approx(np.sum(x[: k + 1]) / 1e3)
    df2 = replay({"b": {"latency_ms": x, "power_w": x * 2}}, "rolling_cv:signal=power_w")
    assert df2["stop_index"].iloc[0] == k  # the CV is scale invariant


def test_unknown_criterion_or_parameter_fails_before_any_work():
    class Exploding:
        @property
        def run_ids(self):
            raise AssertionError("replay touched the traces before validating the criteria")

        def samples(self, *a, **k):
            raise AssertionError("replay touched the traces")

    with pytest.raises(CriterionConfigError, match=r"available: .*rolling_cv"):
        replay([Exploding()], ["rolling_cv", "no_such_rule"])
    with pytest.raises(CriterionConfigError, match=r"valid parameters: .*window"):
        replay([Exploding()], "rolling_cv:windw=5")
    with pytest.raises(CriterionConfigError, match=r"valid parameters: .*threshold"):
        replay([Exploding()], "rolling_cv", grid={"rolling_cv": {"treshold": [0.1]}})
    with pytest.raises(CriterionConfigError, match="available: "):
        replay([Exploding()], [], grid={"nope": {"a": [1]}})
    with pytest.raises(CriterionConfigError, match="no values"):
        replay([Exploding()], "rolling_cv", grid={"rolling_cv": {"threshold": []}})


def test_nan_latency_fails_with_the_trace_id_and_index():
    good = make_trace(warmup_series(50, 0), name="good")
    bad = make_trace(warmup_series(50, 1), name="imported-bench")
    data = bad.data.copy()
    data.loc[17, "latency_ms"] = np.nan  # an unvalidated import: ok but NaN
    broken = Trace(data, bad.metadata)
    with pytest.raises(ReplaySampleError, match=r"'imported-bench'.*sample 17") as info:
        replay([good, broken], "rolling_cv")
    assert info.value.index == 17 and info.value.trace_id == "imported-bench"
    assert isinstance(info.value, InvalidSampleError)


def test_missing_signal_is_a_clear_error():
    trace = make_trace(warmup_series(50, 0))
    with pytest.raises(ReplayError, match="no column 'temperature_c'"):
        replay(trace, "rolling_cv:signal=temperature_c")


# ------------------------------------------------------------------ grids and sweeps
def test_grid_is_a_cartesian_product():
    crits = expand_grid(
        ["rolling_cv:ddof=0", "fixed_count"],
        {"rolling_cv": {"threshold": [0.01, 0.02, 0.03], "window": [5, 10]},
         "min_duration": {"seconds": [1.0, 2.0]}},
    )
    specs = [c.spec for c in crits]
    assert len(specs) == 3 * 2 + 1 + 2
    assert all("ddof=0" in s for s in specs if s.startswith("rolling_cv"))
    assert {(c.params.window, c.params.threshold) for c in crits if c.name == "rolling_cv"} == {
        (w, t) for w in (5, 10) for t in (0.01, 0.02, 0.03)
    }


def _slow(traces, specs, rule):
    frames = [replay(traces, s, stop_rule=rule, early_exit=False, values_are_durations=True)
              for s in specs]
    return pd.concat(frames, ignore_index=True)


COMPARE = ["trace_id", "spec", "stop_index", "stopped", "converged", "reason", "samples_used"]


def _same(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    key = ["trace_id", "spec"]
    f = fast.sort_values(key).reset_index(drop=True)
    s = slow.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(f[COMPARE], s[COMPARE])
    np.testing.assert_allclose(f["statistic"], s["statistic"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(f["stop_time_s"], s["stop_time_s"], rtol=0, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 300),
    min_samples=st.integers(1, 40),
    check_every=st.integers(1, 7),
    patience=st.integers(1, 4),
    cap=st.one_of(st.none(), st.integers(1, 300)),
    thresholds=st.lists(st.floats(0.001, 0.5), min_size=2, max_size=8, unique=True),
)
def test_threshold_sweep_equals_slow_path(seed, n, min_samples, check_every, patience, cap,
                                          thresholds):
    rng = np.random.default_rng(seed)
    xs = [warmup_series(n, seed), warmup_series(max(n // 2, 1), seed + 1) * rng.uniform(1, 3)]
    rule = StopRule(min_samples=min_samples, check_every=check_every, patience=patience,
                    max_samples=cap)
    grid = {"rolling_cv": {"threshold": thresholds, "window": [4, 9]},
            "fixed_count": {"n": [1, 5, 20, 60]},
            "min_duration": {"seconds": [0.5, 3.0, 10.0]}}
    fast = replay(xs, [], grid=grid, stop_rule=rule, values_are_durations=True)
    specs = list(dict.fromkeys(fast["spec"]))
    _same(fast, _slow(xs, specs, rule))


def test_sweep_path_is_used_and_a_false_claim_falls_back(monkeypatch):
    crits = expand_grid([], {"rolling_cv": {"threshold": [0.01, 0.02, 0.05]}})
    units = plan_units(crits)
    assert len(units) == 1 and units[0].sweep == ("threshold", "<")
    runs = list(Corpus.build([warmup_series(200, 0)]))
    verify_sweeps(units, runs)
    assert units[0].sweep == ("threshold", "<")
    # A wrong claim (window is no threshold) is caught on the first run ...
    monkeypatch.setattr(type(crits[0]), "sweep_parameter", ("window", "<"), raising=False)
    crits = expand_grid([], {"rolling_cv": {"window": [3, 6, 12]}})
    units = plan_units(crits)
    assert units[0].sweep == ("window", "<")
    verify_sweeps(units, runs)
    assert units[0].sweep is None
    # ... and the replay still gives the slow path's answers.
    xs = [warmup_series(200, s) for s in range(3)]
    specs = [c.spec for c in crits]
    _same(replay(xs, [], grid={"rolling_cv": {"window": [3, 6, 12]}}, values_are_durations=True),
          _slow(xs, specs, StopRule(min_samples=5)))


# ------------------------------------------------------------------ executors, progress
def _corpus(k: int = 12) -> list[Trace]:
    return [make_trace(warmup_series(150, s), failed_at=(s % 5,), name=f"t{s}") for s in range(k)]


SPECS = ["rolling_cv:window=8", "fixed_count:n=20", "all_of(rolling_cv,min_duration:seconds=5)"]
GRID = {"rolling_cv": {"threshold": [0.01, 0.02, 0.04]}}


def test_process_pool_gives_identical_results():
    traces = _corpus()
    ref = replay(traces, SPECS, grid=GRID)
    with ProcessPoolExecutor(max_workers=2) as pool:
        par = replay(traces, SPECS, grid=GRID, executor=pool, chunk_size=5)
    pd.testing.assert_frame_equal(ref, par)


def test_dask_distributed_executor_gives_identical_results():
    distributed = pytest.importorskip("distributed")
    traces = _corpus(6)
    ref = replay(traces, SPECS, grid=GRID)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        par = replay(traces, SPECS, grid=GRID, executor=client.get_executor(), chunk_size=2)
    pd.testing.assert_frame_equal(ref, par)


def test_progress_bar_on_request(capsys):
    replay(_corpus(3), "rolling_cv", show_progress=True)
    assert "Replay" in capsys.readouterr().err
    replay(_corpus(3), "rolling_cv", show_progress=False)
    assert "Replay" not in capsys.readouterr().err


def test_default_stop_rule_matches_the_default_driver_config():
    rule = WarmupConfig(criterion="rolling_cv").make_stop_rule()
    x = warmup_series(100, 0)
    assert replay(x, "rolling_cv").equals(replay(x, "rolling_cv", stop_rule=rule))


def test_results_round_trip_through_parquet(tmp_path):
    df = replay(_corpus(3), SPECS, grid=GRID)
    path = tmp_path / "r.parquet"
    df.to_parquet(path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(df, back, check_dtype=False)



# ------------------------------------------------------------------ fast-path internals
@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 120),
    min_samples=st.integers(1, 30),
    check_every=st.integers(1, 6),
    patience=st.integers(1, 4),
    cap=st.one_of(st.none(), st.integers(1, 130)),
    op=st.sampled_from(["<", ">="]),
    nan_frac=st.floats(0.0, 0.5),
)
def test_vectorised_sweep_stops_equal_stop_rule_decide(seed, n, min_samples, check_every,
                                                        patience, cap, op, nan_frac):
    """Every value's (stop, converged) from one call equals StopRule.decide on its verdicts."""
    rng = np.random.default_rng(seed)
    stat = rng.uniform(0.0, 1.0, n)
    stat[rng.uniform(size=n) < nan_frac] = np.nan
    rule = StopRule(min_samples=min_samples, check_every=check_every, patience=patience,
                    max_samples=cap)
    values = np.r_[np.sort(rng.uniform(0.0, 1.0, 12)), 0.0, 1.0, stat[: min(n, 3)]]
    values = values[np.isfinite(values)]
    stop, conv = rule.sweep(stat, values, op)
    for v, k, c in zip(values, stop, conv, strict=True):
        with np.errstate(invalid="ignore"):
            d = rule.decide(stat < v if op == "<" else stat >= v)
        assert (int(k), bool(c)) == ((-1, False) if d is None else (d.index, d.converged))


def test_truncation_methods_are_fed_online_and_give_the_whole_run_rows(monkeypatch):
    """Early exit feeds MSER-5 / max-ESS / min-SSE through update(); rows equal whole-run ones."""
    traces = [make_trace(warmup_series(700, s, tau=t), name=f"t{s}")
              for s, t in ((0, 30.0), (1, 150.0), (2, 4000.0))]
    specs = ["mser5", "red_sse:every=20", "max_ess:every=25"]
    slow = replay(traces, specs, early_exit=False)
    calls = []
    real = replay_decide.evaluate_run
    monkeypatch.setattr(replay_decide, "evaluate_run",
                        lambda crit, *a, **k: calls.append(crit.name) or real(crit, *a, **k))
    fast = replay(traces, specs)
    assert calls == []  # no prefix was evaluated offline
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["stopped"].any() and not fast["stopped"].all()
    assert fast["truncation"].notna().any() and (fast["stop_index"] > 64).any()


def test_criteria_are_built_once_per_process_not_per_chunk(monkeypatch):
    replay_mod._criteria_for.cache_clear()
    built = []
    real = replay_mod.make_criterion
    monkeypatch.setattr(replay_mod, "make_criterion",
                        lambda spec, **kw: built.append(spec) or real(spec, **kw))
    xs = [warmup_series(80, s) for s in range(12)]
    one = replay(xs, ["rolling_cv", "fixed_count:n=9"], chunk_size=1)
    n_one = len(built)
    built.clear()
    replay_mod._criteria_for.cache_clear()
    pd.testing.assert_frame_equal(one, replay(xs, ["rolling_cv", "fixed_count:n=9"]))
    assert n_one == len(built)  # 12 chunks build no more criteria than one chunk


def test_columns_and_dtypes_equal_a_frame_built_row_by_row():
    """The column arrays give the frame that one dict per row through pandas gives."""
    traces = [make_trace(warmup_series(200, s), failed_at=(2,), reference_start=r, name=f"t{s}")
              for s, r in ((0, 50), (1, None), (2, -1))]
    traces.append(make_trace(warmup_series(100, 3, tau=400.0), name="short", reference_start=99))
    specs = ["rolling_cv:window=6", "fixed_count:n=300", "min_duration:seconds=0.5",
             "all_of(rolling_cv,fixed_count:n=20)", "mser5"]
    grid = {"rolling_cv": {"threshold": [0.005, 0.02]}}
    rule = StopRule(min_samples=5, max_samples=190)
    df = replay(traces, specs, grid=grid, stop_rule=rule)
    rows = []
    for trace in traces:
        x, t = trace.samples(), trace.sample_times_s()
        ref = trace.run_info().reference_start
        for crit in expand_grid(specs, grid):
            ev = crit.evaluate(x, t)
            d = rule.decide(ev)
            k = None if d is None else d.index
            row = {"trace_id": trace.metadata.tags["trace_id"], "run_id": "r0",
                   "criterion": crit.name, "spec": crit.spec, "n_samples": len(x),
                   "failures": len(trace.data) - len(x), "stop_index": k,
                   "stop_time_s": math.nan if k is None else t[k], "stopped": d is not None,
                   "converged": d is not None and d.converged,
                   "statistic": ev.statistic[-1 if k is None else k],
                   "truncation": None if k is None or ev.truncation is None
                   or ev.truncation[k] < 0 else int(ev.truncation[k]),
                   "samples_used": len(x) if k is None else k + 1,
                   "seconds_used": t[-1] if k is None else t[k],
                   "post_stop_mean": math.nan if k is None else np.mean(x[k + 1 :]),
                   "reason": rule.no_stop_reason(len(x)) if d is None
                   else d.reason,
                   "reference_start": ref,
                   "reference_start_s": t[ref - 1] if ref is not None and ref > 0 else math.nan,
                   "reference_mean": np.mean(x[ref:]) if ref is not None and ref >= 0
                   else math.nan}
            row.update({f"param_{p}": v for p, v in crit.get_params().items()})
            rows.append(row)
    expected = finish_frame(pd.DataFrame.from_records(rows))
    # Runs come in trace-id order (the corpus order), whatever the input order.
    expected = expected.sort_values("trace_id", kind="stable").reset_index(drop=True)
    assert list(df.columns) == list(expected.columns)
    pd.testing.assert_series_equal(df.dtypes, expected.dtypes)
    pd.testing.assert_frame_equal(df, expected, check_exact=False, rtol=1e-12)
    assert df["stopped"].any() and not df["stopped"].all() and df["truncation"].notna().any()
    assert (df["stopped"] & ~df["converged"]).any()  # the cap


def test_bare_series_times_overflowing_to_infinity_are_an_error():
    x = np.full(5, 1e308)  # finite samples whose cumulative sum overflows
    with pytest.raises(ReplaySampleError, match=r"sample 1 of signal 'time_s'"):
        replay(x, "rolling_cv", values_are_durations=True)


def test_time_based_criteria_refuse_bare_series_without_times():
    x = warmup_series(60, 4)
    with pytest.raises(ReplayError, match=r"'min_duration.*needs sample times.*series0"):
        replay([x], "min_duration:seconds=1")
    with pytest.raises(ReplayError, match=r"needs sample times"):
        replay([x], "all_of(rolling_cv,min_duration:seconds=1)")
    df = replay([x], "min_duration:seconds=1", values_are_durations=True)
    assert df["stop_time_s"].iloc[0] >= 1.0
