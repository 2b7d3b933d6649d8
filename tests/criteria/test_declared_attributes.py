"""The declared class attributes other layers read instead of testing names.

* `sweep_parameter = (p, op)`: for random series and random values of `p` (values equal
  to a statistic of the series included, so the operator is checked at exact ties),
  `evaluate(x).passed == statistic <op> value`, and the statistic does not depend on `p`
  (one evaluation serves a whole sweep);
* `min_samples`: nothing passes before it, on random series and on series built to pass;
* `cost_class`: one of the declared classes; composites take their costliest child's;
* `is_composite`: exactly the criteria whose constructors take children;
* registration rejects a bad declaration with a message naming the class.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from llenergymeasure.criteria import (
    Criterion,
    CriterionConfigError,
    CriterionParams,
    CriterionRegistrationError,
    Evaluation,
    available_criteria,
    criterion_class,
    make_criterion,
    register_criterion,
)
from llenergymeasure.criteria.base import COST_CLASSES, SWEEP_OPERATORS

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

#: Smaller settings of the criteria whose defaults need hundreds of samples or seconds
#: per series, so that short hypothesis series reach verdicts of both kinds.
SMALL: dict[str, dict[str, Any]] = {
    "kelly_ssd": {"window": 10},
    "geweke": {"window": 20},
    "kpss": {"window": 20},
    "pyperf_halves": {"sample_size": 5},
    "laaber_rciw": {"n_boot": 50, "sample_size": 20},
    "laaber_kld": {"sample_size": 20, "grid": 50},
    "nvbench_entropy": {"window": 20},
    "trend": {"window": 10},
    "iqr_median": {"window": 8},
    "mad_median": {"window": 8},
    "rciw": {"window": 8},
    "pelt": {"min_samples": 10, "every": 5},
    "max_ess": {"min_samples": 10, "every": 5},
    "red_sse": {"min_samples": 10, "every": 5},
    "mser5": {"min_batches": 4},
    "nvbench_stdrel": {"min_time": 0.01},
}

PLAIN = [n for n in available_criteria() if not criterion_class(n).is_composite]
SWEEPABLE = [n for n in PLAIN if criterion_class(n).sweep_parameter is not None]
COMPOSITE_SPECS = [
    "all_of(rolling_cv,fixed_count:n=8)",
    "any_of(rolling_cv:threshold=0.01,max_duration:seconds=2)",
    "all_of(any_of(fixed_count:n=3,rolling_cv),mad_median:window=6)",
]


def build(name: str, **params: Any) -> Criterion:
    return make_criterion(name, **{**SMALL.get(name, {}), **params})


def times(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sample times in seconds: the series read as milliseconds of work, end to end."""
    return np.cumsum(x) / 1000.0


def evaluate(crit: Criterion, x: NDArray[np.float64]) -> Evaluation:
    return crit.evaluate(x, times(x) if crit.needs_time else None)


def series(min_size: int = 1, max_size: int = 80) -> st.SearchStrategy[NDArray[np.float64]]:
    """Positive series: a decaying warmup plus noise, optionally quantised (ties)."""

    @st.composite
    def build_series(draw: st.DrawFn) -> NDArray[np.float64]:
        n = draw(st.integers(min_size, max_size))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        level = draw(st.sampled_from([1.0, 20.0, 150.0]))
        noise = draw(st.sampled_from([0.0, 0.005, 0.03, 0.2]))
        amp = draw(st.sampled_from([0.0, 0.5, 3.0]))
        i = np.arange(n)
        x = level * (1 + amp * np.exp(-i / 8.0)) * np.exp(noise * rng.standard_normal(n))
        grid = draw(st.sampled_from([None, 0.1, 1.0]))
        if grid is not None:
            x = np.maximum(np.round(x / grid) * grid, grid)
        return x

    return build_series()


def _sweep_value(name: str, param: str, stat: NDArray[np.float64], data: st.DataObject) -> Any:
    """A valid value of the sweep parameter: often one of the statistics (a tie)."""
    field = criterion_class(name).Params.model_fields[param]
    is_int = field.annotation is int
    finite = stat[np.isfinite(stat)]
    if finite.size and data.draw(st.booleans(), label="tie"):
        value = float(finite[data.draw(st.integers(0, finite.size - 1), label="at")])
        return int(value) if is_int and value == int(value) else value
    if is_int:
        return data.draw(st.integers(1, 100), label=param)
    if param == "seconds":
        return data.draw(st.floats(1e-3, 10.0), label=param)
    return data.draw(st.floats(1e-3, 0.999), label=param)


@pytest.mark.parametrize("name", SWEEPABLE)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=series(), data=st.data())
def test_sweep_parameter_claim(name: str, x: NDArray[np.float64], data: st.DataObject) -> None:
    """`passed == statistic <op> value`, and the statistic does not depend on the value."""
    param, op = criterion_class(name).sweep_parameter  # type: ignore[misc]
    base = evaluate(build(name), x)
    value = _sweep_value(name, param, base.statistic, data)
    try:
        crit = build(name, **{param: value})
    except CriterionConfigError:
        return  # a tie outside the parameter's range (e.g. a CV of 0 for threshold > 0)
    ev = evaluate(crit, x)
    np.testing.assert_array_equal(ev.statistic, base.statistic, err_msg=f"{name}: statistic")
    with np.errstate(invalid="ignore"):
        expected = OPS[op](ev.statistic, value)
    np.testing.assert_array_equal(
        ev.passed, expected, err_msg=f"{name}: passed vs statistic {op} {param}={value!r}"
    )


def test_sweep_declarations_are_well_formed() -> None:
    assert {"rolling_cv", "fixed_count", "min_duration", "max_duration"} <= set(SWEEPABLE)
    for name in SWEEPABLE:
        param, op = criterion_class(name).sweep_parameter  # type: ignore[misc]
        assert param in criterion_class(name).Params.model_fields
        assert op in SWEEP_OPERATORS
    assert criterion_class("rolling_cv").sweep_parameter == ("threshold", "<")
    assert criterion_class("fixed_count").sweep_parameter == ("n", ">=")
    assert criterion_class("min_duration").sweep_parameter == ("seconds", ">=")


@pytest.mark.parametrize("spec", PLAIN + COMPOSITE_SPECS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=series(max_size=60))
def test_nothing_passes_before_min_samples(spec: str, x: NDArray[np.float64]) -> None:
    crit = build(spec) if spec in PLAIN else make_criterion(spec)
    k = crit.min_samples
    assert isinstance(k, int) and k >= 1
    ev = evaluate(crit, x)
    assert not ev.passed[: k - 1].any(), f"{spec} passed before min_samples={k}"


@pytest.mark.parametrize("spec", PLAIN + COMPOSITE_SPECS)
def test_nothing_passes_before_min_samples_on_a_flat_series(spec: str) -> None:
    """A constant series is the easiest to pass: still nothing before `min_samples`."""
    crit = build(spec) if spec in PLAIN else make_criterion(spec)
    x = np.full(max(3 * crit.min_samples, 60), 10.0)
    x[::2] += 0.01  # a little noise, so that dispersion ratios are defined
    ev = evaluate(crit, x)
    assert not ev.passed[: crit.min_samples - 1].any()


def test_min_samples_known_answers() -> None:
    assert make_criterion("fixed_count:n=7").min_samples == 7
    assert make_criterion("rolling_cv:window=12").min_samples == 12
    assert make_criterion("pyperf_halves:sample_size=5,min_warmups=2").min_samples == 12
    assert make_criterion("min_duration:seconds=3").min_samples == 1
    assert make_criterion("all_of(rolling_cv:window=12,fixed_count:n=30)").min_samples == 30
    assert make_criterion("any_of(rolling_cv:window=12,fixed_count:n=30)").min_samples == 12
    # fixed_count passes exactly at its min_samples: the bound is tight there
    ev = make_criterion("fixed_count:n=7").evaluate(np.ones(10))
    assert int(np.argmax(ev.passed)) + 1 == 7


def test_cost_classes() -> None:
    for name in PLAIN:
        assert criterion_class(name).cost_class in COST_CLASSES, name
    heavy = {n for n in PLAIN if criterion_class(n).cost_class == "heavy"}
    assert {"laaber_rciw", "laaber_kld", "pelt"} <= heavy
    assert criterion_class("rolling_cv").cost_class == "light"
    assert make_criterion("all_of(rolling_cv,laaber_kld)").cost_class == "heavy"
    assert make_criterion("any_of(rolling_cv,mser5)").cost_class == "moderate"
    assert make_criterion("any_of(rolling_cv,fixed_count)").cost_class == "light"


def test_is_composite() -> None:
    composites = {n for n in available_criteria() if criterion_class(n).is_composite}
    assert {"all_of", "any_of"} <= composites
    for name in composites:
        with pytest.raises(CriterionConfigError, match="at least one child"):
            criterion_class(name)()


def _criterion_class(name: str, **attrs: Any) -> type[Criterion]:
    class Params(CriterionParams):
        threshold: float = 0.5

    def _reset(self: Criterion) -> None:
        pass

    def _update(self: Criterion, x: float, t: float | None) -> None:
        pass

    ns = {"name": name, "Params": Params, "_reset": _reset, "_update": _update, **attrs}
    return type("Bad" + name.title(), (Criterion,), ns)


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"cost_class": "cheap"}, "cost_class must be one of"),
        ({"sweep_parameter": ("window", "<")}, "names 'window'"),
        ({"sweep_parameter": ("threshold", "!=")}, "operator must be one of"),
        ({"sweep_parameter": "threshold"}, "must be None or"),
    ],
)
def test_registration_rejects_bad_declarations(attrs: dict[str, Any], match: str) -> None:
    cls = _criterion_class("decl_check_bad", **attrs)
    with pytest.raises(CriterionRegistrationError, match=match):
        register_criterion(cls)
    assert "decl_check_bad" not in available_criteria()
