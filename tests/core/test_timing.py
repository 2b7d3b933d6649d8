"""Wall/GPU timing, NVML side channels and the rich inference callable.

The NVML arithmetic is exercised with a fake ``pynvml`` module object: a
simulated GPU whose energy counter integrates a known power profile over a
simulated clock, so energy and power have exact known answers. The no-GPU
path is exercised for real on machines without an NVIDIA GPU.
"""

from __future__ import annotations

import logging
import time
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure import WarmupConfig, make_criterion, warmup_until_converged
from llenergymeasure.core.presets import GPU_STABLE, gpu_stable_spec
from llenergymeasure.core.timing import (
    DEFAULT_THROTTLE_MASK,
    NvmlSampler,
    NvmlSnapshot,
    ThrottleFilter,
    Timing,
    device_index,
    energy_per_token_mj,
    is_cuda_device,
    nvml_fields,
    throttle_reason_names,
    timed_call,
)
from llenergymeasure.traces import load_trace


class FakeNVMLError(Exception):
    """Stands in for ``pynvml.NVMLError``."""


class FakeGpu:
    """A simulated GPU: power in W drawn over a simulated nanosecond clock."""

    def __init__(self, *, energy_supported: bool = True, start_energy_mj: float = 5_000_000.0):
        self.now_ns = 1_000_000_000
        self.energy_mj = start_energy_mj
        self.power_w = 60.0
        self.temperature = 40
        self.sm_clock = 1980
        self.mem_clock = 2619
        self.reasons = 0
        self.energy_supported = energy_supported
        self.init_error: str | None = None
        self.shutdowns = 0

    def run(self, seconds: float, power_w: float) -> None:
        """Draw ``power_w`` for ``seconds`` of simulated time."""
        self.power_w = power_w
        self.energy_mj += power_w * seconds * 1e3
        self.now_ns += round(seconds * 1e9)

    def clock(self) -> int:
        return self.now_ns

    def module(self) -> types.SimpleNamespace:
        gpu = self

        def init() -> None:
            if gpu.init_error is not None:
                raise FakeNVMLError(gpu.init_error)

        def energy(handle: object) -> int:
            if not gpu.energy_supported:
                raise FakeNVMLError("Not Supported")
            return round(gpu.energy_mj)

        def shutdown() -> None:
            gpu.shutdowns += 1

        return types.SimpleNamespace(
            NVMLError=FakeNVMLError,
            NVML_TEMPERATURE_GPU=0,
            NVML_CLOCK_SM=1,
            NVML_CLOCK_MEM=2,
            nvmlInit=init,
            nvmlShutdown=shutdown,
            nvmlDeviceGetHandleByIndex=lambda i: ("handle", i),
            nvmlDeviceGetName=lambda h: b"Fake H100",
            nvmlDeviceGetTotalEnergyConsumption=energy,
            nvmlDeviceGetPowerUsage=lambda h: round(gpu.power_w * 1000),
            nvmlDeviceGetTemperature=lambda h, kind: gpu.temperature,
            nvmlDeviceGetClockInfo=lambda h, kind: gpu.sm_clock if kind == 1 else gpu.mem_clock,
            nvmlDeviceGetMaxClockInfo=lambda h, kind: 1980 if kind == 1 else 2619,
            nvmlDeviceGetCurrentClocksThrottleReasons=lambda h: gpu.reasons,
        )


# ----------------------------------------------------------------- device helpers


def test_device_helpers_without_torch_objects() -> None:
    assert is_cuda_device("cuda:1") and is_cuda_device("cuda")
    assert not is_cuda_device("cpu") and not is_cuda_device(None)
    assert device_index("cuda:3") == 3
    assert device_index("cuda") == 0
    torch = pytest.importorskip("torch")
    assert not is_cuda_device(torch.device("cpu"))
    assert is_cuda_device(torch.device("cuda", 2)) and device_index(torch.device("cuda", 2)) == 2


def test_timed_call_on_cpu_measures_wall_time_and_no_gpu_time() -> None:
    result, timing = timed_call(lambda: time.sleep(0.02) or "done", device="cpu", gpu_timing=True)
    assert result == "done"
    assert timing.gpu_time_ms is None
    assert 19.0 <= timing.wall_ms < 500.0
    assert timing.wall_ms == (timing.end_ns - timing.start_ns) / 1e6


def test_timing_wall_ms_arithmetic() -> None:
    assert Timing(1_000_000, 3_500_000).wall_ms == 2.5


# ----------------------------------------------------------------- NVML arithmetic


def test_energy_and_power_from_the_counter() -> None:
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    assert sampler.active and sampler.status == "on: Fake H100"
    gpu.temperature, gpu.sm_clock = 55, 1755
    result, fields = sampler.measure(lambda: gpu.run(0.050, 200.0) or 7)
    assert result == 7
    # 200 W for 50 ms = 10 J = 10000 mJ; mJ / ms = W.
    assert fields["energy_mj"] == pytest.approx(10_000.0)
    assert fields["power_w"] == pytest.approx(200.0)
    assert fields["temperature_c"] == 55
    assert fields["sm_clock_mhz"] == 1755
    assert fields["mem_clock_mhz"] == 2619
    assert fields["throttle_reasons"] == 0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.001, 0.5), st.floats(20.0, 700.0)), min_size=1, max_size=8
    )
)
def test_energy_is_the_integral_of_a_piecewise_power_profile(
    segments: list[tuple[float, float]],
) -> None:
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    before = sampler.snapshot()
    for seconds, watts in segments:
        gpu.run(seconds, watts)
    after = sampler.snapshot()
    fields = sampler.fields(before, after)
    exact_mj = sum(s * w * 1e3 for s, w in segments)
    duration_ms = sum(round(s * 1e9) for s, _ in segments) / 1e6
    # the counter is an integer number of mJ: rounding of each reading is at most 0.5 mJ
    assert abs(fields["energy_mj"] - exact_mj) <= 1.0
    assert fields["power_w"] == pytest.approx(fields["energy_mj"] / duration_ms, rel=1e-12)
    # the average power lies between the smallest and largest segment power
    lo = min(w for _, w in segments)
    hi = max(w for _, w in segments)
    assert lo - 1.0 / duration_ms <= fields["power_w"] <= hi + 1.0 / duration_ms


def test_power_falls_back_to_mean_of_readings_without_energy_counter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gpu = FakeGpu(energy_supported=False)
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.timing"):
        gpu.power_w = 100.0
        before = sampler.snapshot()
        gpu.run(0.1, 300.0)
        after = sampler.snapshot()
        sampler.snapshot()
    fields = sampler.fields(before, after)
    assert "energy_mj" not in fields
    assert fields["power_w"] == pytest.approx((100.0 + 300.0) / 2)
    assert sampler.unsupported == ("energy",)
    # the refused query is reported once, not on every reading
    assert sum("energy" in r.getMessage() for r in caplog.records) == 1


def test_counter_going_backwards_is_dropped_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = NvmlSnapshot(0, 5_000, 100_000, 50, 1000, 2000, 0)
    after = NvmlSnapshot(10_000_000, 4_000, 120_000, 51, 1100, 2000, 4)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.timing"):
        fields = nvml_fields(before, after)
    assert "energy_mj" not in fields
    assert fields["power_w"] == pytest.approx(110.0)  # mean of the two readings
    assert "backwards" in caplog.text


def test_throttle_reasons_are_ored_and_state_is_read_after() -> None:
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    gpu.reasons = 0x1  # GPU idle
    before = sampler.snapshot()
    gpu.reasons = 0x20 | 0x40  # SW thermal slowdown | HW slowdown
    gpu.temperature = 83
    gpu.sm_clock = 1410
    gpu.run(0.01, 400.0)
    after = sampler.snapshot()
    fields = sampler.fields(before, after)
    assert fields["throttle_reasons"] == 0x1 | 0x20 | 0x40
    assert fields["temperature_c"] == 83 and fields["sm_clock_mhz"] == 1410


def test_clocks_event_reasons_api_is_preferred_when_present() -> None:
    gpu = FakeGpu()
    module = gpu.module()
    module.nvmlDeviceGetCurrentClocksEventReasons = lambda h: 0x8
    sampler = NvmlSampler(0, nvml=module, clock=gpu.clock)
    snap = sampler.snapshot()
    assert snap is not None and snap.throttle_reasons == 0x8


def test_init_failure_turns_sampler_off_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gpu = FakeGpu()
    gpu.init_error = "Driver Not Loaded"
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.timing"):
        sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
        result, fields = sampler.measure(lambda: 3)
    assert not sampler.active
    assert sampler.status.startswith("off:") and "Driver Not Loaded" in sampler.status
    assert sampler.snapshot() is None
    assert result == 3 and fields == {}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_missing_device_index_turns_sampler_off_and_shuts_down() -> None:
    gpu = FakeGpu()
    module = gpu.module()

    def no_device(i: int) -> object:
        raise FakeNVMLError("Invalid Argument")

    module.nvmlDeviceGetHandleByIndex = no_device
    sampler = NvmlSampler(5, nvml=module, clock=gpu.clock)
    assert not sampler.active and "index 5" in sampler.status
    assert gpu.shutdowns == 1


def test_missing_pynvml_package_turns_sampler_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    sampler = NvmlSampler(0)
    assert not sampler.active
    assert "pynvml is not installed" in sampler.status


def test_close_shuts_nvml_down_once() -> None:
    gpu = FakeGpu()
    with NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock) as sampler:
        assert sampler.active
    assert gpu.shutdowns == 1 and sampler.status == "off: closed"
    sampler.close()
    assert gpu.shutdowns == 1


def test_real_nvml_on_this_machine_is_either_on_or_honestly_off() -> None:
    sampler = NvmlSampler(0)
    try:
        if not sampler.active:
            assert sampler.status.startswith("off: ")
            assert sampler.measure(lambda: 1) == (1, {})
        else:
            snap = sampler.snapshot()
            assert snap is not None and snap.time_ns > 0
    finally:
        sampler.close()


# ----------------------------------------------------------------- inference callable


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    pytest.importorskip("transformers")
    from llenergymeasure.core.tiny_model import build_tiny_causal_lm

    return build_tiny_causal_lm()


def test_default_callable_returns_float_ms_and_exact_token_count(tiny) -> None:
    from llenergymeasure.core.inference import create_warmup_inference_fn

    model, tok = tiny
    fn = create_warmup_inference_fn(model, tok, "the model is fast", max_new_tokens=6)
    value = fn()
    assert isinstance(value, float) and value > 0
    assert fn.last_output_tokens == 6
    assert fn.gpu_timing_status == "off: not requested"


def test_rich_callable_reports_ttft_tokens_and_honest_side_channels(
    tiny, caplog: pytest.LogCaptureFixture
) -> None:
    from llenergymeasure.core.inference import create_warmup_inference_fn

    model, tok = tiny
    prompt = "the gpu warmup latency is slow"
    n_prompt = len(tok(prompt)["input_ids"])
    with caplog.at_level(logging.WARNING):
        fn = create_warmup_inference_fn(
            model, tok, prompt, max_new_tokens=12, measure_ttft=True, count_tokens=True,
            gpu_timing=True,
        )
    assert "not CUDA" in caplog.text
    assert fn.gpu_timing_status.startswith("off:")
    for _ in range(3):
        rec = fn()
        assert set(rec) == {"latency_ms", "ttft_ms", "input_tokens", "output_tokens"}
        assert rec["output_tokens"] == 12 and rec["input_tokens"] == n_prompt
        assert 0 < rec["ttft_ms"] < rec["latency_ms"]


def test_first_token_streamer_sees_prompt_then_each_new_token(tiny) -> None:
    from llenergymeasure.core.inference import make_first_token_timer

    model, tok = tiny
    streamer = make_first_token_timer("cpu")
    enc = tok("the model", return_tensors="pt")
    t0 = time.perf_counter_ns()
    model.generate(**enc, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                   pad_token_id=tok.pad_token_id, streamer=streamer)
    t1 = time.perf_counter_ns()
    assert streamer.n_puts == 1 + 5
    assert t0 < streamer.first_token_ns < t1
    streamer.reset()
    assert streamer.first_token_ns is None and streamer.n_puts == 0


def test_callable_with_fake_nvml_adds_consistent_energy_fields(tiny) -> None:
    from llenergymeasure.core.inference import create_warmup_inference_fn

    model, tok = tiny

    class WallGpu(FakeGpu):
        """Energy integrates a constant 150 W over the real perf_counter clock."""

        def module(self) -> types.SimpleNamespace:
            mod = super().module()
            t0 = time.perf_counter_ns()
            mod.nvmlDeviceGetTotalEnergyConsumption = (
                lambda h: int(150.0 * (time.perf_counter_ns() - t0) / 1e6)
            )
            mod.nvmlDeviceGetPowerUsage = lambda h: 150_000
            return mod

    sampler = NvmlSampler(0, nvml=WallGpu().module())
    fn = create_warmup_inference_fn(model, tok, "the model", max_new_tokens=8, nvml=sampler)
    assert fn.nvml_status == "on: Fake H100"
    rec = fn()
    assert {"energy_mj", "power_w", "temperature_c", "sm_clock_mhz"} <= set(rec)
    # energy over the inference ~ 150 W x its wall time (the NVML readings bracket it)
    assert rec["energy_mj"] >= 150.0 * rec["latency_ms"] * 0.9
    assert rec["power_w"] == pytest.approx(150.0, rel=0.05)


def test_callable_drives_the_warmup_driver(tiny) -> None:
    from llenergymeasure.config.models import WarmupConfig
    from llenergymeasure.core.inference import create_warmup_inference_fn
    from llenergymeasure.core.warmup import warmup_until_converged

    model, tok = tiny
    fn = create_warmup_inference_fn(model, tok, "the model", max_new_tokens=4, count_tokens=True)
    config = WarmupConfig(max_prompts=5, convergence_detection=False)
    result = warmup_until_converged(fn, config, show_progress=False)
    assert result.attempts == 5 and result.failures == 0
    assert len(result.latencies_ms) == 5 and all(v > 0 for v in result.latencies_ms)


def test_nvml_true_on_cpu_model_reports_status(tiny) -> None:
    from llenergymeasure.core.inference import create_warmup_inference_fn

    model, tok = tiny
    fn = create_warmup_inference_fn(model, tok, "the model", max_new_tokens=2, nvml=True)
    try:
        rec = fn()
        assert "latency_ms" in rec
        if fn.nvml_status.startswith("off:"):
            assert set(rec) == {"latency_ms"}
    finally:
        if fn.nvml is not None:
            fn.nvml.close()


def test_max_new_tokens_must_be_positive(tiny) -> None:
    from llenergymeasure.core.inference import create_warmup_inference_fn

    model, tok = tiny
    with pytest.raises(ValueError, match="max_new_tokens"):
        create_warmup_inference_fn(model, tok, "the", max_new_tokens=0)


# ----------------------------------------------------------------- the recording example


def _load_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "record_gpu_trace.py"
    spec = importlib.util.spec_from_file_location("record_gpu_trace", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settled_index_known_answers() -> None:
    example = _load_example()
    clocks = [1980, 1980, 1900, 1800, 1755, 1755, 1750, 1755, 1755, 1755, 1755, 1755]
    # final level 1755 (median of the last quarter); the last value off by > 15 is index 3
    assert example.settled_index(clocks, 15.0) == 4
    assert example.settled_index([50.0] * 8, 1.0) == 0
    assert example.settled_index([float("nan")], 1.0) is None


def test_record_example_cpu_path_writes_rich_trace(tmp_path, tiny, capsys) -> None:
    pytest.importorskip("pyarrow")
    example = _load_example()
    out = tmp_path / "trace.parquet"
    rc = example.main(["--cpu", "--attempts", "6", "--after-stop", "2", "--max-new-tokens", "3",
                       "--out", str(out)])
    assert rc == 0
    from llenergymeasure.traces import load_trace

    trace = load_trace(out)
    data = trace.data
    stop = trace.run_info().stop_index
    # 2 attempts are recorded after the stop (or after the cap of 6 when it did not converge)
    assert len(data) == (6 if stop is None else stop + 1) + 2
    assert {"ttft_ms", "input_tokens", "output_tokens"} <= set(data.columns)
    assert (data["output_tokens"] == 3).all()
    assert ((data["ttft_ms"] > 0) & (data["ttft_ms"] < data["latency_ms"])).all()
    printed = capsys.readouterr().out
    assert "first-call latency" in printed and "steady latency" in printed
    assert "sm_clock_mhz" in printed


# ------------------------------------------------------------- GPU-aware stopping
def test_throttle_filter_known_answers() -> None:
    f = ThrottleFilter(max_sm_clock_mhz=2000.0)
    assert DEFAULT_THROTTLE_MASK == 0xE8
    assert f.is_throttled({"throttle_reasons": 0x20}) is True  # SW thermal slowdown
    assert f.is_throttled({"throttle_reasons": 0x40 | 0x1}) is True
    # Idle, a clock setting and the SW power cap are not throttles by default.
    assert f.is_throttled({"throttle_reasons": 0x1 | 0x2 | 0x4, "sm_clock_mhz": 1980}) is False
    assert f.is_throttled({"sm_clock_mhz": 1499.0}) is True  # below 75 % of 2000
    assert f.is_throttled({"sm_clock_mhz": 1500.0}) is False
    assert f.is_throttled({"power_w": 300.0}) is None  # cannot tell without NVML fields
    assert ThrottleFilter().is_throttled({"sm_clock_mhz": 10.0}) is None  # no reference clock
    strict = ThrottleFilter(reasons_mask=DEFAULT_THROTTLE_MASK | 0x4)
    assert strict.is_throttled({"throttle_reasons": 0x4}) is True
    assert throttle_reason_names(0x1 | 0x40 | 0x1000) == ["gpu_idle", "hw_thermal_slowdown",
                                                          "0x1000"]
    with pytest.raises(ValueError):
        ThrottleFilter(min_sm_clock_fraction=1.5)


def test_throttle_filter_for_sampler_reads_the_max_clock() -> None:
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    assert ThrottleFilter.for_sampler(sampler).max_sm_clock_mhz == 1980
    module = gpu.module()
    del module.nvmlDeviceGetMaxClockInfo
    old = NvmlSampler(0, nvml=module, clock=gpu.clock)
    assert ThrottleFilter.for_sampler(old).max_sm_clock_mhz is None


@pytest.mark.parametrize(
    ("energy", "tokens", "expected"),
    [(640.0, 32, 20.0), (0.0, 8, 0.0), (100.0, 0, None), (None, 8, None), (5.0, None, None),
     (float("nan"), 8, None), (-1.0, 8, None)],
)
def test_energy_per_token_known_answers(energy: object, tokens: object, expected: object) -> None:
    assert energy_per_token_mj(energy, tokens) == expected


def gpu_inference(gpu: FakeGpu, sampler: NvmlSampler, steps: list[dict[str, float]]):
    """A callable running one simulated inference per step on the fake GPU, read by NVML.

    Each step sets the GPU state for the call (throttle reasons, SM clock,
    temperature), draws ``power_w`` for ``latency_ms`` of simulated time, and
    returns the latency with the NVML fields and the token count.
    """
    it = iter(steps)

    def fn() -> dict[str, float]:
        step = next(it)
        gpu.reasons = int(step.get("reasons", 0))
        gpu.sm_clock = int(step.get("sm_clock", 1980))
        gpu.temperature = int(step.get("temp", 60))

        def work() -> None:
            gpu.run(step["latency_ms"] / 1e3, step.get("power_w", 300.0))

        _, fields = sampler.measure(work)
        gpu.reasons = 0
        return {"latency_ms": step["latency_ms"], "output_tokens": 32, **fields}

    return fn


def throttled_steps(n: int) -> tuple[list[dict[str, float]], list[bool]]:
    """Latencies settling to 20 ms; some calls throttled (reason or low clock) and slow."""
    rng = np.random.default_rng(3)
    steps, flagged = [], []
    for k in range(n):
        lat = 20.0 + 15.0 * np.exp(-k / 6.0) + rng.normal(0, 0.05)
        step: dict[str, float] = {"latency_ms": float(lat), "power_w": 250.0 + k % 3}
        bad = False
        if k in (9, 23):
            step.update(reasons=0x20, latency_ms=lat * 3)  # SW thermal slowdown
            bad = True
        elif k == 16:
            step.update(sm_clock=1100, latency_ms=lat * 1.8)  # clock well below 75 % of max
            bad = True
        elif k in (12, 30):
            step.update(reasons=0x1 | 0x4)  # idle + SW power cap: not a throttle by default
        steps.append(step)
        flagged.append(bad)
    return steps, flagged


def test_throttled_samples_are_flagged_and_kept_out_of_the_criterion(tmp_path) -> None:
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    steps, flagged = throttled_steps(200)
    cfg = WarmupConfig(criterion="rolling_cv:window=8,threshold=0.01", max_prompts=200)
    shadows = ["rolling_cv:signal=energy_per_token_mj,window=8,threshold=0.02",
               "rolling_cv:signal=power_w,window=8,threshold=0.02"]
    filt = ThrottleFilter.for_sampler(sampler, recovery_delay_s=0.0)
    res = warmup_until_converged(gpu_inference(gpu, sampler, steps), cfg, show_progress=False,
                                 trace_path=tmp_path / "g.jsonl", throttle=filt,
                                 shadow_criteria=shadows, record_after_stop=10)
    n_att = res.attempts
    expected_flags = flagged[:n_att]
    assert res.status == "converged" and res.throttled_samples == sum(expected_flags) == 3
    kept = [s["latency_ms"] for s, bad in zip(steps[:n_att], expected_flags, strict=True)
            if not bad]
    assert res.latencies_ms == kept and res.iterations_completed == len(kept)
    trace = load_trace(res.trace_path)
    df = trace.data
    assert list(df["throttled"]) == flagged[: n_att + 10]
    assert df["ok"].all()  # a throttled sample is recorded with its latency, not as a failure
    np.testing.assert_allclose(df["energy_per_token_mj"], df["energy_mj"] / 32)
    # Replay sees what the driver's criterion saw, and stops where it stopped.
    np.testing.assert_array_equal(trace.samples()[: len(kept)], kept)
    rule = cfg.make_stop_rule()
    assert rule.stop_index(cfg.make_criterion().evaluate(trace.samples())) == len(kept) - 1
    times = trace.sample_times_s()
    for spec in shadows:
        signal = spec.split("signal=")[1].split(",")[0]
        ev = make_criterion(spec).evaluate(trace.samples(signal=signal), times)
        assert trace.run_info().shadow[spec].stop_index == rule.stop_index(ev), spec
    assert trace.run_info().provenance["throttle_filter"]["max_sm_clock_mhz"] == 1980


def test_without_the_filter_the_throttled_spikes_delay_the_stop() -> None:
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    steps, _ = throttled_steps(200)
    cfg = WarmupConfig(criterion="rolling_cv:window=8,threshold=0.01", max_prompts=200)
    plain = warmup_until_converged(gpu_inference(gpu, sampler, steps), cfg, show_progress=False)
    gpu2 = FakeGpu()
    sampler2 = NvmlSampler(0, nvml=gpu2.module(), clock=gpu2.clock)
    filtered = warmup_until_converged(
        gpu_inference(gpu2, sampler2, steps), cfg, show_progress=False,
        throttle=ThrottleFilter.for_sampler(sampler2, recovery_delay_s=0.0))
    assert plain.throttled_samples == 0 and filtered.throttled_samples == 3
    assert plain.attempts > filtered.attempts  # the spike at attempt 24 resets the window


def test_filter_without_nvml_fields_warns_once_and_flags_nothing(caplog) -> None:
    cfg = WarmupConfig(max_prompts=6, window_size=3, min_prompts=3, cv_threshold=0.001)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        res = warmup_until_converged(lambda: 10.0, cfg, show_progress=False,
                                     throttle=ThrottleFilter(max_sm_clock_mhz=1980.0))
    assert res.throttled_samples == 0 and res.iterations_completed == 3
    msgs = [r.getMessage() for r in caplog.records if "neither throttle_reasons" in r.getMessage()]
    assert len(msgs) == 1


def gpu_settling_steps(n: int) -> list[dict[str, float]]:
    """Latency settles by step 15, temperature climbs 1 degC per step to 70, clock drops to 1800."""
    rng = np.random.default_rng(5)
    return [
        {"latency_ms": 20.0 + 10.0 * np.exp(-k / 3.0) + float(rng.normal(0, 0.02)),
         "temp": min(45 + k, 70), "sm_clock": 1980 if k < 30 else 1800}
        for k in range(n)
    ]


def test_gpu_stable_preset_waits_for_temperature_and_clock() -> None:
    assert make_criterion(GPU_STABLE).signals == ("latency_ms", "temperature_c", "sm_clock_mhz")
    steps = gpu_settling_steps(150)
    gpu = FakeGpu()
    sampler = NvmlSampler(0, nvml=gpu.module(), clock=gpu.clock)
    cfg = WarmupConfig(criterion=GPU_STABLE, max_prompts=150)
    res = warmup_until_converged(gpu_inference(gpu, sampler, steps), cfg, show_progress=False)
    latency_only = warmup_until_converged(
        gpu_inference(FakeGpu(), sampler, steps),
        WarmupConfig(criterion="rolling_cv:window=10,threshold=0.02", max_prompts=150),
        show_progress=False)
    signals = {"latency_ms": [s["latency_ms"] for s in steps],
               "temperature_c": [s["temp"] for s in steps],
               "sm_clock_mhz": [s["sm_clock"] for s in steps]}
    expected = cfg.make_stop_rule().stop_index(make_criterion(GPU_STABLE).evaluate(signals))
    assert res.converged and res.iterations_completed == expected + 1
    # Temperature plateaus at step 25 and the clock steps down at 30: the preset waits for both.
    assert latency_only.iterations_completed < 30 < res.iterations_completed
    assert gpu_stable_spec(latency_cv=0.05).startswith("all_of(rolling_cv:window=10,threshold=0.05")
