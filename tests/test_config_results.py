"""WarmupConfig validation and the WarmupResult JSON round trip."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from llenergymeasure import WarmupConfig, WarmupResult
from llenergymeasure.criteria import RollingCV


def test_documented_example_config_works() -> None:
    cfg = WarmupConfig(cv_threshold=0.10, max_prompts=20, window_size=5, min_prompts=5)
    assert (cfg.cv_threshold, cfg.max_prompts, cfg.window_size, cfg.min_prompts) == (0.1, 20, 5, 5)
    assert cfg.ddof == 1 and cfg.enabled and cfg.convergence_detection


def test_defaults() -> None:
    cfg = WarmupConfig()
    assert cfg.cv_threshold == 0.05
    assert cfg.max_prompts == 50
    assert cfg.window_size == 5
    assert cfg.min_prompts == 5
    assert cfg.criterion is None
    assert cfg.make_criterion() == RollingCV(window=5, threshold=0.05, ddof=1)
    assert cfg.make_stop_rule().min_samples == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cv_threshold", 0.0),
        ("cv_threshold", 1.0),
        ("cv_threshold", -0.1),
        ("max_prompts", 0),
        ("window_size", 1),
        ("min_prompts", 0),
        ("ddof", 2),
        ("patience", 0),
        ("check_every", 0),
    ],
)
def test_field_constraints(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        WarmupConfig(**{field: value})
    assert field in str(info.value)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="cv_treshold"):
        WarmupConfig(cv_treshold=0.1)


def test_frozen() -> None:
    cfg = WarmupConfig()
    with pytest.raises(ValidationError):
        cfg.max_prompts = 3  # type: ignore[misc]


def test_min_prompts_above_max_names_both_fields() -> None:
    with pytest.raises(ValidationError) as info:
        WarmupConfig(min_prompts=30, max_prompts=20)
    text = str(info.value)
    assert "min_prompts (30)" in text and "max_prompts (20)" in text


def test_window_above_max_names_both_fields_only_with_detection() -> None:
    with pytest.raises(ValidationError) as info:
        WarmupConfig(window_size=10, max_prompts=8, min_prompts=2)
    text = str(info.value)
    assert "window_size (10)" in text and "max_prompts (8)" in text
    # Fixed mode never evaluates convergence, so a long window is harmless there.
    cfg = WarmupConfig(window_size=10, max_prompts=8, min_prompts=2, convergence_detection=False)
    assert cfg.window_size == 10


def test_criterion_spec_is_validated() -> None:
    cfg = WarmupConfig(criterion="rolling_cv:window=3,threshold=0.2")
    assert cfg.make_criterion() == RollingCV(window=3, threshold=0.2)
    assert cfg.make_stop_rule().min_samples == cfg.min_prompts
    with pytest.raises(ValidationError, match="unknown criterion 'no_such'"):
        WarmupConfig(criterion="no_such")
    with pytest.raises(ValidationError, match="windw"):
        WarmupConfig(criterion="rolling_cv:windw=3")


def _result(**kw: object) -> WarmupResult:
    base = dict(
        converged=False,
        status="not_converged",
        final_cv=math.nan,
        target_cv=0.05,
        iterations_completed=2,
        attempts=3,
        failures=1,
        failure_types={"RuntimeError": 1},
        max_prompts=3,
        latencies_ms=[10.5, 11.25],
        stop_reason="did not converge",
        duration_s=0.25,
        criterion="rolling_cv:window=5,threshold=0.05,ddof=1",
    )
    base.update(kw)
    return WarmupResult(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("final", [math.nan, math.inf, 0.0123456789012345])
def test_json_round_trip_preserves_every_field(final: float) -> None:
    res = _result(final_cv=final)
    back = WarmupResult.model_validate_json(res.model_dump_json())
    for name in WarmupResult.model_fields:
        a, b = getattr(res, name), getattr(back, name)
        if isinstance(a, float) and math.isnan(a):
            assert math.isnan(b)
        else:
            assert a == b, name


def test_status_is_constrained() -> None:
    with pytest.raises(ValidationError):
        _result(status="maybe")
