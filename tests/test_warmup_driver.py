"""The warmup driver: the original four checks, failures, progress and replay equivalence."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure import WarmupConfig, WarmupResult, make_criterion, warmup_until_converged
from llenergymeasure.criteria import StopRule


class Replay:
    """A callable that returns the next value of a series (a recorded trace)."""

    def __init__(self, values: object) -> None:
        self.values = list(values)  # type: ignore[call-overload]
        self.calls = 0

    def __call__(self) -> float:
        value = self.values[self.calls]
        self.calls += 1
        if isinstance(value, BaseException):
            raise value
        return value


# --------------------------------------------------------- the original four checks
def test_disabled_returns_at_once() -> None:
    fn = Replay([])
    res = warmup_until_converged(fn, WarmupConfig(enabled=False))
    assert fn.calls == 0
    assert res.converged and res.status == "disabled"
    assert math.isnan(res.final_statistic) and res.statistic_label == "CV"
    assert res.target_statistic == 0.05 and res.iterations_completed == 0 and res.attempts == 0


def test_stable_latencies_converge() -> None:
    rng = np.random.default_rng(42)
    fn = Replay(100 + rng.uniform(-2, 2, 20))
    cfg = WarmupConfig(cv_threshold=0.10, max_prompts=20, window_size=5, min_prompts=5)
    res = warmup_until_converged(fn, cfg, show_progress=False)
    assert res.converged and res.status == "converged"
    assert res.final_statistic < 0.10
    # 100 +- 2 ms has a CV near 1.2%: the first check (5 samples) already passes.
    assert res.iterations_completed == 5 == fn.calls == res.attempts


def test_noisy_latencies_hit_the_cap() -> None:
    rng = np.random.default_rng(7)
    fn = Replay(rng.uniform(50, 200, 10))
    res = warmup_until_converged(fn, WarmupConfig(cv_threshold=0.01, max_prompts=10),
                                 show_progress=False)
    assert not res.converged and res.status == "not_converged"
    assert res.iterations_completed == 10 == res.attempts
    assert res.final_statistic > 0.01


def test_fixed_mode_runs_all_prompts() -> None:
    fn = Replay([100.0] * 12)
    cfg = WarmupConfig(convergence_detection=False, max_prompts=12)
    res = warmup_until_converged(fn, cfg, show_progress=False)
    assert fn.calls == 12 and res.attempts == 12 and res.iterations_completed == 12
    assert res.converged and res.status == "fixed"
    assert res.final_statistic == 0.0  # reported for information: a constant window has CV 0


# ------------------------------------------------------------------- convergence rule
def test_checks_start_at_max_of_min_prompts_and_window() -> None:
    # Constant from the start: would pass at sample 3 with window 3, but min_prompts=6.
    fn = Replay([10.0] * 20)
    cfg = WarmupConfig(window_size=3, min_prompts=6, max_prompts=20)
    res = warmup_until_converged(fn, cfg, show_progress=False)
    assert res.iterations_completed == 6


def test_final_cv_is_the_last_window_statistic() -> None:
    values = [100.0, 140.0, 60.0, 100.0, 101.0, 99.0, 100.0]
    res = warmup_until_converged(
        Replay(values), WarmupConfig(window_size=3, min_prompts=3, max_prompts=7),
        show_progress=False,
    )
    last = np.array(values[:res.iterations_completed][-3:])
    assert res.final_statistic == pytest.approx(last.std(ddof=1) / last.mean(), rel=1e-12)
    assert res.converged and res.iterations_completed == 6


def test_nan_final_cv_when_no_window_evaluated() -> None:
    fn = Replay([5.0, RuntimeError("x"), RuntimeError("x"), RuntimeError("x"), 6.0])
    res = warmup_until_converged(fn, WarmupConfig(window_size=5, min_prompts=5, max_prompts=5),
                                 show_progress=False)
    assert res.status == "not_converged" and math.isnan(res.final_statistic)


def test_non_positive_mean_never_converges() -> None:
    # A criterion on a signal that may be negative: window mean <= 0 gives NaN, never a pass.
    crit = make_criterion("rolling_cv:window=3,threshold=0.5")
    ev = crit.evaluate([-1.0, -1.0, -1.0, 0.0, 0.0, 0.0])
    assert not ev.passed.any() and np.isnan(ev.statistic[2:]).all()


# ------------------------------------------------------------------------- failures
def test_some_failures_are_counted_and_warmup_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    seq = [100.0, RuntimeError("boom"), 100.0, ValueError("bad"), 100.0, 100.0, 100.0]
    fn = Replay(seq)
    cfg = WarmupConfig(window_size=3, min_prompts=3, max_prompts=10, cv_threshold=0.05)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        res = warmup_until_converged(fn, cfg, show_progress=False)
    assert res.converged
    assert res.attempts == 5 and res.iterations_completed == 3 and res.failures == 2
    assert res.failure_types == {"RuntimeError": 1, "ValueError": 1}
    assert res.latencies_ms == [100.0, 100.0, 100.0]
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


def test_failures_count_toward_max_prompts() -> None:
    fn = Replay([RuntimeError("x"), 100.0] * 5)
    res = warmup_until_converged(fn, WarmupConfig(max_prompts=6, window_size=5, min_prompts=5),
                                 show_progress=False)
    assert res.attempts == 6 and res.iterations_completed == 3 and res.failures == 3
    assert not res.converged


@pytest.mark.parametrize("detect", [True, False])
def test_all_failed(detect: bool, caplog: pytest.LogCaptureFixture) -> None:
    fn = Replay([RuntimeError("cuda oom")] * 4)
    cfg = WarmupConfig(max_prompts=4, window_size=2, min_prompts=2, convergence_detection=detect)
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        res = warmup_until_converged(fn, cfg, show_progress=False)
    assert res.status == "all_failed" and not res.converged
    assert res.attempts == 4 and res.failures == 4 and res.iterations_completed == 0
    assert res.failure_types == {"RuntimeError": 4}
    assert math.isnan(res.final_statistic)
    assert any("all 4 warmup attempts failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0.0, -3.0, "12", None, True])
def test_invalid_returns_are_failed_attempts(bad: object) -> None:
    fn = Replay([bad, 10.0, 10.0])
    res = warmup_until_converged(fn, WarmupConfig(max_prompts=3, window_size=2, min_prompts=2),
                                 show_progress=False)
    assert res.attempts == 3 and res.failures == 1
    assert res.failure_types == {"InvalidLatencyError": 1}
    assert res.latencies_ms == [10.0, 10.0]
    assert all(math.isfinite(v) and v > 0 for v in res.latencies_ms)


def test_mapping_and_dataclass_returns() -> None:
    from dataclasses import dataclass

    @dataclass
    class Sample:
        latency_ms: float
        temperature_c: float

    fn = Replay([{"latency_ms": 5.0, "temperature_c": 40.0}, Sample(5.0, 41.0)])
    res = warmup_until_converged(fn, WarmupConfig(max_prompts=2, window_size=2, min_prompts=2),
                                 show_progress=False)
    assert res.latencies_ms == [5.0, 5.0] and res.converged


def test_keyboard_interrupt_propagates_and_closes_bar(capsys: pytest.CaptureFixture[str]) -> None:
    fn = Replay([10.0, 10.0, KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        warmup_until_converged(fn, WarmupConfig(max_prompts=10, window_size=5, min_prompts=5))
    err = capsys.readouterr().err
    assert "Warmup" in err and "2/10" in err


# ------------------------------------------------------------------------- progress
def test_progress_shows_cv_and_target(capsys: pytest.CaptureFixture[str]) -> None:
    fn = Replay([100.0, 101.0, 99.0, 100.0, 100.5, 100.0])
    warmup_until_converged(fn, WarmupConfig(cv_threshold=0.05, max_prompts=6, window_size=5))
    err = capsys.readouterr().err
    assert "Warmup" in err and "prompt" in err
    assert "CV=" in err and "target=5.00%" in err


def test_a_lazy_postfix_is_built_once_per_redraw_interval_and_at_close() -> None:
    import io
    import time

    from llenergymeasure.progress import WarmupProgress

    calls: list[int] = []

    def text() -> str:
        calls.append(1)
        return f"built={len(calls)}"

    out = io.StringIO()
    bar = WarmupProgress(3000, file=out)
    interval = bar.bar.mininterval
    t0 = time.monotonic()
    for _ in range(3000):
        bar.advance(text, failures=2)
    elapsed = time.monotonic() - t0
    bar.close()
    # one build per started interval, plus the one at close
    assert 2 <= len(calls) <= elapsed / interval + 2
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "3000/3000" in last and f"built={len(calls)} failures=2" in last


def test_no_progress_creates_no_bar(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import llenergymeasure.progress as progress

    created = []

    def fake_tqdm(*args: object, **kwargs: object) -> None:
        created.append(kwargs)
        raise AssertionError("no bar may be created")

    monkeypatch.setattr(progress, "tqdm", fake_tqdm)
    warmup_until_converged(Replay([1.0] * 5), WarmupConfig(max_prompts=5), show_progress=False)
    assert created == []
    assert capsys.readouterr().err == ""


def test_logs_convergence(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llenergymeasure.core.warmup"):
        warmup_until_converged(Replay([10.0] * 5), WarmupConfig(max_prompts=5), show_progress=False)
    msgs = [r.getMessage() for r in caplog.records]
    assert any("converged after 5 samples (CV=0.00% < 5.00%)" in m for m in msgs)


def test_logs_non_convergence_with_final_cv_and_target(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.core.warmup"):
        warmup_until_converged(Replay([10.0, 20.0] * 3), WarmupConfig(max_prompts=6, window_size=2,
                                                                      min_prompts=2),
                               show_progress=False)
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("did not converge" in m and "CV=47.14%" in m and "target=5.00%" in m for m in msgs)


# ---------------------------------------------------------- driver == offline replay
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(1.0, 1000.0), min_size=1, max_size=60),
    window=st.integers(2, 8),
    threshold=st.floats(0.005, 0.5),
    min_prompts=st.integers(1, 10),
    patience=st.integers(1, 3),
    check_every=st.integers(1, 3),
)
def test_driver_stops_where_the_replay_stops(
    values: list[float], window: int, threshold: float, min_prompts: int, patience: int,
    check_every: int,
) -> None:
    n = len(values)
    window = min(window, n) if n >= 2 else 2
    cfg = WarmupConfig(
        cv_threshold=threshold, window_size=window, min_prompts=min(min_prompts, max(n, 1)),
        max_prompts=max(n, window), patience=patience, check_every=check_every,
    )
    fn = Replay(values + [1.0] * (cfg.max_prompts - n))
    res = warmup_until_converged(fn, cfg, show_progress=False)
    crit = cfg.make_criterion()
    ev = crit.evaluate(fn.values[: cfg.max_prompts])
    idx = cfg.make_stop_rule().stop_index(ev)
    if idx is None:
        assert not res.converged and res.iterations_completed == cfg.max_prompts
    else:
        assert res.converged and res.iterations_completed == idx + 1


def test_driver_with_a_composite_criterion_over_two_signals() -> None:
    temps = [30.0, 40.0, 50.0, 55.0, 56.0, 56.0, 56.0, 56.0, 56.0, 56.0]
    fn = Replay([{"latency_ms": 10.0, "temperature_c": t} for t in temps])
    spec = (
        "all_of(rolling_cv:window=3,threshold=0.05,"
        "rolling_cv:signal=temperature_c,window=3,threshold=0.01)"
    )
    cfg = WarmupConfig(criterion=spec, min_prompts=3, max_prompts=10)
    res = warmup_until_converged(fn, cfg, show_progress=False)
    # Latency is flat from the start; [55, 56, 56] still has CV 1.04%, [56, 56, 56] has 0.
    assert res.converged and res.iterations_completed == 7
    rule = StopRule(min_samples=3)
    crit = make_criterion(spec)
    ev = crit.evaluate({"latency_ms": [10.0] * 10, "temperature_c": temps})
    assert rule.stop_index(ev) == 6


# ------------------------------------------------------------------ API consistency
@pytest.mark.parametrize("bad", [None, 12.5, "model.generate", [lambda: 1.0]])
def test_a_non_callable_is_a_type_error_at_once(bad: object, tmp_path) -> None:
    with pytest.raises(TypeError, match="must be a callable"):
        warmup_until_converged(bad, WarmupConfig(), show_progress=False,  # type: ignore[arg-type]
                               trace_path=tmp_path / "t.jsonl")
    assert list(tmp_path.iterdir()) == []  # nothing recorded, no attempt made


def test_config_must_be_a_warmup_config() -> None:
    with pytest.raises(TypeError, match="WarmupConfig"):
        warmup_until_converged(Replay([]), {"max_prompts": 5},  # type: ignore[arg-type]
                               show_progress=False)


@pytest.mark.parametrize(
    ("field", "value"), [("cv_threshold", 0.1), ("window_size", 9), ("ddof", 0)]
)
def test_cv_fields_beside_a_criterion_are_an_error_naming_both(field: str, value: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=rf"criterion='fixed_count:n=8' and {field}="):
        WarmupConfig(criterion="fixed_count:n=8", **{field: value})


def test_cv_fields_at_their_defaults_are_allowed_so_a_dump_validates_back() -> None:
    cfg = WarmupConfig(criterion="fixed_count:n=8", max_prompts=20)
    back = WarmupConfig.model_validate(cfg.model_dump())
    assert back == cfg and "cv_threshold" in cfg.model_dump()
    assert WarmupConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_result_fields_say_what_the_statistic_is() -> None:
    cfg = WarmupConfig(criterion="fixed_count:n=8", max_prompts=20)
    res = warmup_until_converged(Replay([10.0] * 20), cfg, show_progress=False)
    assert res.statistic_label == "n" and res.final_statistic == 8.0 == res.target_statistic
    cv = warmup_until_converged(Replay([10.0] * 5), WarmupConfig(max_prompts=5),
                                show_progress=False)
    assert cv.statistic_label == "CV" and cv.final_statistic == 0.0
    assert cv.target_statistic == 0.05
    both = WarmupConfig(criterion="all_of(fixed_count:n=3,rolling_cv:window=3,threshold=0.1)",
                        max_prompts=5, min_prompts=3)
    comp = warmup_until_converged(Replay([10.0] * 5), both, show_progress=False)
    # A composite's statistic is the number of its children passing, against their number.
    assert comp.statistic_label == "passing" and comp.final_statistic == 2.0
    assert comp.target_statistic == 2.0


def test_final_cv_and_target_cv_are_deprecated_aliases() -> None:
    cfg = WarmupConfig(criterion="fixed_count:n=8", max_prompts=20)
    res = warmup_until_converged(Replay([10.0] * 20), cfg, show_progress=False)
    with pytest.deprecated_call(match="final_statistic"):
        assert res.final_cv == res.final_statistic
    with pytest.deprecated_call(match="target_statistic"):
        assert res.target_cv == res.target_statistic
    data = res.model_dump()
    assert "final_cv" not in data and "final_statistic" in data
    data["final_cv"] = data.pop("final_statistic")
    with pytest.deprecated_call(match="'final_cv' is deprecated"):
        old = WarmupResult.model_validate(data)
    assert old == res
    data["final_statistic"] = 1.0
    with pytest.deprecated_call(), pytest.raises(ValueError, match="not both"):
        WarmupResult.model_validate(data)
