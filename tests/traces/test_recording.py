"""Recording traces with the warmup driver: rows, shadow criteria, record_after_stop, crashes."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llenergymeasure import WarmupConfig, make_criterion, warmup_until_converged
from llenergymeasure.traces import (
    RunInfo,
    TraceFormatError,
    TraceMetadata,
    TraceWriter,
    load_trace,
    partial_path_for,
)
from llenergymeasure.traces.io import TraceExistsError


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
    for field in ("iterations_completed", "attempts", "latencies_ms", "final_statistic",
                  "stop_reason"):
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
    import os, sys, time
    from pathlib import Path
    from llenergymeasure import WarmupConfig, warmup_until_converged

    trace, sync = Path(sys.argv[1]), Path(sys.argv[2])
    calls = 0

    def fn():
        global calls
        # Attempts 0..calls-1 are recorded before call number `calls` starts. Written
        # atomically: a kill between truncating and writing must not leave it empty.
        tmp = sync.with_suffix(".tmp")
        tmp.write_text(str(calls))
        os.replace(tmp, sync)
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


# --------------------------------------------------------- the driver protects data
def test_a_finished_trace_is_never_overwritten(tmp_path: Path) -> None:
    """The reproduction: a 110-attempt trace became a 5-attempt one when recorded over."""
    path = tmp_path / "t.jsonl"
    long_cfg = WarmupConfig(max_prompts=110, convergence_detection=False)
    first = warmup_until_converged(Replay(warmup_series(110)), long_cfg, show_progress=False,
                                   trace_path=path, run_id="long")
    before = path.read_bytes()
    short_cfg = WarmupConfig(max_prompts=5, convergence_detection=False)
    fn = Replay([20.0] * 5)
    with pytest.raises(TraceExistsError, match=re.escape(str(path))) as info:
        warmup_until_converged(fn, short_cfg, show_progress=False, trace_path=path)
    assert info.value.path == path and isinstance(info.value, FileExistsError)
    assert fn.calls == 0 and path.read_bytes() == before  # refused before the first call
    assert not partial_path_for(path).exists()
    assert len(load_trace(first.trace_path).data) == 110
    # append=True adds a run with a new id; the first run's rows are unchanged.
    warmup_until_converged(Replay([20.0] * 5), short_cfg, show_progress=False, trace_path=path,
                           append=True, run_id="short")
    both = load_trace(path)
    assert both.run_ids == ["long", "short"] and len(both.data) == 115
    np.testing.assert_array_equal(both.samples("long"), warmup_series(110))
    assert both.run_info("short").provenance["config"]["max_prompts"] == 5
    assert "config" not in both.run_info("long").provenance
    with pytest.raises(ValueError, match="already holds run"):
        warmup_until_converged(Replay([20.0] * 5), short_cfg, show_progress=False,
                               trace_path=path, append=True, run_id="short")
    # overwrite=True replaces it.
    warmup_until_converged(Replay([20.0] * 5), short_cfg, show_progress=False, trace_path=path,
                           overwrite=True)
    assert len(load_trace(path).data) == 5
    with pytest.raises(ValueError, match="exclude each other"):
        warmup_until_converged(Replay([]), short_cfg, show_progress=False, trace_path=path,
                               overwrite=True, append=True)


@pytest.mark.parametrize("final", ["a.parquet", "a.csv"])
def test_append_keeps_the_file_format(tmp_path: Path, final: str) -> None:
    path = tmp_path / final
    cfg = WarmupConfig(max_prompts=7, convergence_detection=False)
    values = [{"latency_ms": 10.0 + k, "power_w": 200.0} for k in range(7)]
    warmup_until_converged(Replay(values), cfg, show_progress=False, trace_path=path, run_id="a")
    with pytest.raises(TraceExistsError):
        warmup_until_converged(Replay([5.0] * 7), cfg, show_progress=False, trace_path=path)
    warmup_until_converged(Replay([5.0] * 7), cfg, show_progress=False, trace_path=path,
                           append=True, run_id="b")
    trace = load_trace(path, format=final.rsplit(".", 1)[1])
    assert trace.run_ids == ["a", "b"]
    np.testing.assert_array_equal(trace.samples("a"), [10.0 + k for k in range(7)])
    np.testing.assert_array_equal(trace.samples("b", signal="power_w"), [np.nan] * 7)


def test_a_seconds_returning_callable_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def seconds() -> float:  # takes about 20 ms, returns 0.02: seconds, not milliseconds
        time.sleep(0.02)
        return 0.02

    cfg = WarmupConfig(max_prompts=5, convergence_detection=False)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        res = warmup_until_converged(seconds, cfg, show_progress=False)
    warned = [r.getMessage() for r in caplog.records if "timed by the driver" in r.getMessage()]
    assert len(warned) == 1  # once per run, not once per attempt
    match = re.search(r"latency of ([\d.e+-]+) ms but the call took ([\d.e+-]+) ms", warned[0])
    assert match is not None and float(match.group(1)) == 0.02
    assert float(match.group(2)) >= 20.0  # sleep() sleeps at least as long as asked
    assert "seconds instead of milliseconds" in warned[0]
    assert res.latencies_ms == [0.02] * 5  # what the callable returned is what is recorded


def test_a_callable_timing_itself_honestly_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def honest() -> float:
        t0 = time.perf_counter()
        time.sleep(0.002)
        return (time.perf_counter() - t0) * 1e3

    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        warmup_until_converged(honest, WarmupConfig(max_prompts=5, convergence_detection=False),
                               show_progress=False)
    assert not [r for r in caplog.records if "timed by the driver" in r.getMessage()]


def test_a_hung_inference_times_out_and_the_driver_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    calls = {"n": 0}
    finished: list[int] = []

    def fn() -> float:
        calls["n"] += 1
        k = calls["n"]
        if k == 3:  # hangs until the test releases it
            release.wait(60)
            finished.append(k)
            return 999.0  # a late result: must be discarded
        return 10.0

    cfg = WarmupConfig(max_prompts=8, window_size=3, min_prompts=3, cv_threshold=0.01)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        res = warmup_until_converged(fn, cfg, show_progress=False, timeout_s=0.3,
                                     trace_path=tmp_path / "h.jsonl")
    try:
        assert res.status == "converged" and res.attempts == 4
        assert res.failure_types == {"TimeoutError": 1} and res.latencies_ms == [10.0] * 3
        trace = load_trace(res.trace_path)
        assert trace.data["error"][2].startswith("TimeoutError: no result within timeout_s=0.3 s")
        assert 999.0 not in set(trace.data["latency_ms"])
        assert trace.run_info().provenance["timeout_s"] == 0.3
        assert any("still running in background threads" in r.getMessage()
                   for r in caplog.records)
    finally:
        release.set()
    deadline = time.monotonic() + 30
    while not finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished == [3]  # the abandoned call ran to its end, in its own thread


def test_timeout_s_is_validated() -> None:
    for bad in (0, -1.0, math.inf, math.nan, True, "1"):
        with pytest.raises(ValueError, match="timeout_s"):
            warmup_until_converged(Replay([]), WarmupConfig(), show_progress=False,
                                   timeout_s=bad)  # type: ignore[arg-type]


def test_callable_exceptions_keep_their_type_through_the_worker_thread() -> None:
    fn = Replay([RuntimeError("cuda oom"), 10.0, 10.0, 10.0])
    cfg = WarmupConfig(max_prompts=4, window_size=3, min_prompts=3)
    res = warmup_until_converged(fn, cfg, show_progress=False, timeout_s=30)
    assert res.failure_types == {"RuntimeError": 1} and res.converged


def test_writer_refuses_wrong_types_in_known_columns_and_existing_files(tmp_path: Path) -> None:
    meta = TraceMetadata(runs=[RunInfo(run_id="w", status="recording")])
    row = {"index": 0, "t_start_ns": 0, "t_end_ns": 5, "wall_start_ns": 1, "latency_ms": 5.0,
           "ok": True, "error": None}
    writer = TraceWriter(tmp_path / "w.jsonl", meta)
    with pytest.raises(TraceFormatError, match="'power_w'") as info:
        writer.write_attempt({**row, "power_w": "high"})
    assert info.value.field == "power_w"
    writer.write_attempt({**row, "power_w": 250, "output_tokens": 32.0, "note": object()})
    out = writer.finalize(status="fixed")
    trace = load_trace(out)
    assert trace.data["power_w"][0] == 250.0 and trace.data["output_tokens"][0] == 32
    with pytest.raises(TraceExistsError):
        TraceWriter(out, meta)
    csv = tmp_path / "c.csv"
    csv.with_name("c.csv.meta.json").write_text("{}")  # a CSV trace's sidecar alone counts
    with pytest.raises(TraceExistsError, match=r"c\.csv\.meta\.json"):
        TraceWriter(csv, meta)


def test_driver_drops_a_wrongly_typed_field_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    values = [{"latency_ms": 10.0, "temperature_c": "hot", "power_w": 200.0}] * 5
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        res = warmup_until_converged(Replay(values), WarmupConfig(max_prompts=5),
                                     show_progress=False, trace_path=tmp_path / "d.jsonl")
    trace = load_trace(res.trace_path)  # the file stays valid
    assert "temperature_c" not in trace.data.columns and (trace.data["power_w"] == 200.0).all()
    msgs = [r.getMessage() for r in caplog.records if "temperature_c" in r.getMessage()]
    assert len(msgs) == 1 and "'hot'" in msgs[0]


def test_record_after_stop_shows_its_own_progress(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    res = warmup_until_converged(
        Replay(warmup_series(200)), WarmupConfig(max_prompts=200), show_progress=True,
        trace_path=tmp_path / "p.jsonl", record_after_stop=30,
    )
    err = capsys.readouterr().err
    assert "Recording after the stop" in err and "30/30" in err
    assert len(load_trace(res.trace_path).data) == res.attempts + 30


def test_record_after_stop_draws_no_bar_without_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warmup_until_converged(
        Replay(warmup_series(200)), WarmupConfig(max_prompts=200), show_progress=False,
        trace_path=tmp_path / "q.jsonl", record_after_stop=30,
    )
    assert "Recording after the stop" not in capsys.readouterr().err


# Field values a callable may return: plain and numpy scalars, non-finite floats, None,
# strings, booleans, for known columns of every dtype, unknown ones and driver columns.
_FIELD_NAMES = ["power_w", "output_tokens", "throttle_reasons", "ttft_ms", "connect_ms",
                "note", "my_count", "ok", "index", "latency_ms"]
_FIELD_VALUES = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**70, 2**70)
                 | st.none() | st.booleans() | st.text(max_size=5)
                 | st.floats(-1e6, 1e6).map(np.float64) | st.integers(0, 99).map(np.int64))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.dictionaries(st.sampled_from(_FIELD_NAMES), _FIELD_VALUES,
                                       max_size=6), min_size=1, max_size=4))
def test_driver_rows_are_the_general_encoders_rows(tmp_path_factory: pytest.TempPathFactory,
                                                   fields: list[dict]) -> None:
    """The driver's per-field fast paths write what `TraceWriter.write_attempt` would."""
    from llenergymeasure.core.warmup import _DRIVER_COLUMNS
    from llenergymeasure.traces.io import _row_line, value_problem

    values = [{**f, "latency_ms": 5.0 + k} for k, f in enumerate(fields)]
    snapshot = [dict(v) for v in values]
    path = tmp_path_factory.mktemp("rows") / "t.jsonl"
    logging.getLogger("llenergymeasure").setLevel(logging.ERROR)
    try:
        cfg = WarmupConfig(max_prompts=len(values), min_prompts=1, window_size=2,
                           convergence_detection=False)
        res = warmup_until_converged(Replay(values), cfg, show_progress=False, trace_path=path)
    finally:
        logging.getLogger("llenergymeasure").setLevel(logging.NOTSET)
    assert values == snapshot  # the callable's mappings are not modified
    lines = Path(res.trace_path).read_text().splitlines()[1:]
    assert len(lines) == len(values)
    for k, (line, f) in enumerate(zip(lines, fields, strict=True)):
        written = json.loads(line)
        row = {key: written[key] for key in ("run_id", "index", "t_start_ns", "t_end_ns",
                                             "wall_start_ns")}
        row.update(latency_ms=5.0 + k, ok=True, error=None)
        for key, v in f.items():
            if v is None or key in _DRIVER_COLUMNS or value_problem(key, v) is not None:
                continue
            row[key] = v
        assert line == _row_line(row)
    load_trace(res.trace_path)  # valid
