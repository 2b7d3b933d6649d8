"""Recording traces with the warmup driver: rows, shadow criteria, record_after_stop, crashes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from llenergymeasure import WarmupConfig, make_criterion, warmup_until_converged
from llenergymeasure.traces import load_trace, partial_path_for


class Replay:
    """Returns the next value of a series; exceptions in it are raised."""

    def __init__(self, values: object) -> None:
        self.values = list(values)  # type: ignore[call-overload]
        self.calls = 0

    def __call__(self) -> object:
        value = self.values[self.calls]
        self.calls += 1
        if isinstance(value, BaseException):
            raise value
        return value


def warmup_series(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    return 40.0 * np.exp(-k / 8.0) + 20.0 + rng.normal(0.0, 0.4, n)


@dataclasses.dataclass
class Rich:
    latency_ms: float
    ttft_ms: float
    output_tokens: int
    power_w: float | None = None


def test_every_attempt_is_recorded_with_failures_and_extras(tmp_path: Path) -> None:
    values: list[object] = [
        {"latency_ms": 30.0, "power_w": 250.0, "temperature_c": 61.0, "note": "cold"},
        RuntimeError("CUDA out of memory"),
        Rich(25.0, 3.0, 32, None),
        float("nan"),  # an invalid latency is a failed attempt too
        {"latency_ms": 24.0, "index": 99},  # a reserved name is not recorded
    ] + [20.0] * 10
    cfg = WarmupConfig(max_prompts=len(values), window_size=5, min_prompts=5, cv_threshold=0.01)
    res = warmup_until_converged(Replay(values), cfg, show_progress=False,
                                 trace_path=tmp_path / "t.jsonl", tags={"host": "ci"},
                                 model={"name": "stub"}, run_id="run-1")
    trace = load_trace(res.trace_path)
    df = trace.data
    assert list(df["index"]) == list(range(res.attempts))
    assert list(df["ok"][:5]) == [True, False, True, False, True]
    assert df["error"][1] == "RuntimeError: CUDA out of memory"
    assert df["error"][3].startswith("InvalidLatencyError: ")
    assert np.isnan(df["latency_ms"][1]) and np.isnan(df["latency_ms"][3])
    assert df["power_w"][0] == 250.0 and np.isnan(df["power_w"][2])
    assert df["ttft_ms"][2] == 3.0 and df["output_tokens"][2] == 32
    assert df["note"][0] == "cold"
    np.testing.assert_array_equal(trace.samples(), res.latencies_ms)
    assert (np.diff(df["t_start_ns"].to_numpy(dtype=np.int64)) > 0).all()
    assert (df["t_end_ns"] >= df["t_start_ns"]).all()
    wall = df["wall_start_ns"].to_numpy(dtype=np.int64)
    assert abs(wall[0] - time.time_ns()) < 60e9
    info = trace.run_info("run-1")
    assert info.status == res.status and info.stop_reason == res.stop_reason
    assert not info.interrupted
    meta = trace.metadata
    assert meta.criterion == res.criterion and meta.config == cfg.model_dump(mode="json")
    assert meta.tags == {"host": "ci"} and meta.model == {"name": "stub"}
    assert meta.environment is not None and meta.environment.python
    assert not partial_path_for(tmp_path / "t.jsonl").exists()


def test_without_a_trace_path_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.chdir(tmp_path)
    res = warmup_until_converged(Replay(warmup_series(50)), WarmupConfig(), show_progress=False,
                                 record_after_stop=10)
    assert res.trace_path is None and list(tmp_path.iterdir()) == []


SHADOWS = [
    "rolling_cv:window=10,threshold=0.01",
    "fixed_count:n=7",
    "min_duration:seconds=0.002",
    "all_of(rolling_cv:window=4,threshold=0.03,fixed_count:n=12)",
]


@pytest.mark.parametrize(("patience", "check_every"), [(1, 1), (2, 3)])
def test_shadow_stop_indices_equal_offline_replay(tmp_path: Path, patience: int,
                                                  check_every: int) -> None:
    series: list[object] = list(warmup_series(120, seed=patience))
    series[4] = ValueError("flaky")
    cfg = WarmupConfig(max_prompts=80, patience=patience, check_every=check_every)
    shadow_obj = make_criterion("fixed_count:n=50")

    it = Replay(series)

    def fn() -> float:  # a little real time per call
        time.sleep(0.0002)
        return it()  # type: ignore[return-value]

    res = warmup_until_converged(fn, cfg, show_progress=False, trace_path=tmp_path / "s.parquet",
                                 shadow_criteria=[*SHADOWS, shadow_obj], record_after_stop=30)
    trace = load_trace(res.trace_path)
    info = trace.run_info()
    assert set(info.shadow) == {*SHADOWS, shadow_obj.spec}
    samples, times = trace.samples(), trace.sample_times_s()
    rule = cfg.make_stop_rule()
    stopped = 0
    for spec, dec in info.shadow.items():
        crit = make_criterion(spec)
        expected = rule.stop_index(crit.evaluate(samples, times))
        assert dec.stop_index == expected, spec
        stopped += expected is not None
    assert stopped >= 3
    # The primary criterion replayed on the trace stops where the driver stopped.
    primary = rule.stop_index(cfg.make_criterion().evaluate(samples))
    assert res.status == "converged" and info.stop_index == primary == res.iterations_completed - 1


def test_record_after_stop_keeps_measuring_but_reports_the_stop(tmp_path: Path) -> None:
    series = list(warmup_series(200))
    fn = Replay(series)
    cfg = WarmupConfig(max_prompts=150)
    plain = warmup_until_converged(Replay(series), cfg, show_progress=False)
    res = warmup_until_converged(fn, cfg, show_progress=False, trace_path=tmp_path / "r.csv",
                                 record_after_stop=25)
    assert res.status == "converged"
    for field in ("iterations_completed", "attempts", "latencies_ms", "final_statistic", "stop_reason"):
        assert getattr(res, field) == getattr(plain, field), field
    assert fn.calls == res.attempts + 25
    trace = load_trace(res.trace_path)
    assert len(trace.data) == res.attempts + 25
    np.testing.assert_array_equal(trace.samples(), series[: res.attempts + 25])
    assert trace.run_info().stop_index == res.iterations_completed - 1
    assert trace.run_info().provenance["record_after_stop"] == 25
    # duration_s is the warmup's: it ends before the first attempt recorded after the stop.
    first_after = int(trace.data["t_start_ns"].iloc[res.attempts])
    assert 0 < res.duration_s * 1e9 <= first_after


def test_record_after_stop_also_follows_a_cap(tmp_path: Path) -> None:
    fn = Replay([10.0, 20.0] * 20)
    cfg = WarmupConfig(max_prompts=10)
    res = warmup_until_converged(fn, cfg, show_progress=False, trace_path=tmp_path / "c.jsonl",
                                 record_after_stop=5, trace_format="parquet")
    assert res.status == "not_converged" and res.attempts == 10 and fn.calls == 15
    trace = load_trace(res.trace_path, format="parquet")
    assert len(trace.data) == 15 and trace.run_info().stop_index is None


def test_disabled_warmup_writes_an_empty_trace(tmp_path: Path) -> None:
    res = warmup_until_converged(Replay([]), WarmupConfig(enabled=False), show_progress=False,
                                 trace_path=tmp_path / "d.jsonl")
    trace = load_trace(res.trace_path)
    assert len(trace.data) == 0 and trace.run_info().status == "disabled"


def test_bad_shadow_criteria_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        warmup_until_converged(Replay([]), WarmupConfig(), show_progress=False,
                               shadow_criteria=["fixed_count:n=3", "fixed_count:n=3"])
    with pytest.raises(TypeError, match="spec strings or Criterion"):
        warmup_until_converged(Replay([]), WarmupConfig(), show_progress=False,
                               shadow_criteria=[3])  # type: ignore[list-item]


def test_a_shadow_watching_an_unrecorded_signal_does_not_stop_the_run(tmp_path: Path) -> None:
    res = warmup_until_converged(
        Replay(warmup_series(80)), WarmupConfig(max_prompts=80), show_progress=False,
        trace_path=tmp_path / "x.jsonl", shadow_criteria=["rolling_cv:signal=power_w"],
    )
    dec = load_trace(res.trace_path).run_info().shadow["rolling_cv:signal=power_w"]
    assert dec.stop_index is None and "could not be evaluated" in dec.reason


# -------------------------------------------------------------------- crashes
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from llenergymeasure import WarmupConfig, warmup_until_converged

    trace, sync = Path(sys.argv[1]), Path(sys.argv[2])
    calls = 0

    def fn():
        global calls
        # Attempts 0..calls-1 are recorded before call number `calls` starts.
        sync.write_text(str(calls))
        calls += 1
        time.sleep(0.002)
        return 10.0 if calls % 2 else 20.0  # never converges

    try:
        warmup_until_converged(fn, WarmupConfig(max_prompts=50000), show_progress=False,
                               trace_path=trace, shadow_criteria=["fixed_count:n=3"])
    except KeyboardInterrupt:
        Path(str(sync) + ".interrupted").write_text("propagated")
        sys.exit(130)
    """
)


def start_child(tmp_path: Path, final: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    trace, sync = tmp_path / final, tmp_path / "sync.txt"
    proc = subprocess.Popen([sys.executable, str(script), str(trace), str(sync)],
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sync.exists():
            text = sync.read_text()
            if text.isdigit() and int(text) >= 20:
                return proc, trace, sync
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read().decode()}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("child made no progress")


def test_sigkill_mid_run_loses_no_completed_attempt(tmp_path: Path) -> None:
    proc, trace_path, sync = start_child(tmp_path, "k.parquet")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    completed = int(sync.read_text())
    assert not trace_path.exists()  # no partial final file, ever
    trace = load_trace(partial_path_for(trace_path))
    n = len(trace.data)
    assert n >= completed >= 20
    assert list(trace.data["index"]) == list(range(n))
    assert trace.run_info().interrupted and trace.run_info().status == "recording"
    np.testing.assert_array_equal(trace.samples()[:4], [10.0, 20.0, 10.0, 20.0])


def test_sigint_finalises_the_trace_then_propagates(tmp_path: Path) -> None:
    proc, trace_path, sync = start_child(tmp_path, "i.jsonl")
    os.kill(proc.pid, signal.SIGINT)
    rc = proc.wait(timeout=30)
    assert rc == 130, proc.stderr.read().decode()
    assert Path(str(sync) + ".interrupted").read_text() == "propagated"
    completed = int(sync.read_text())
    assert trace_path.exists() and not partial_path_for(trace_path).exists()
    trace = load_trace(trace_path)
    info = trace.run_info()
    assert info.interrupted and info.status == "interrupted"
    assert "KeyboardInterrupt" in info.stop_reason
    rule = WarmupConfig(max_prompts=50000).make_stop_rule()
    expected = rule.stop_index(make_criterion("fixed_count:n=3").evaluate(trace.samples()))
    assert info.shadow["fixed_count:n=3"].stop_index == expected == 4  # min_samples is 5
    assert len(trace.data) >= completed >= 20
