"""StopRule semantics (offline and online twin) and the registry / spec strings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llenergymeasure.criteria import (
    CriterionConfigError,
    CriterionRegistrationError,
    Evaluation,
    RollingCV,
    StopRule,
    available_criteria,
    criterion_info,
    make_criterion,
    register_criterion,
)
from llenergymeasure.criteria.registry import parse_spec


def brute_force_stop(passed: list[bool], rule: StopRule) -> tuple[int, bool] | None:
    """Direct transcription of the documented rule, one sample at a time."""
    run = 0
    for i, p in enumerate(passed):
        n = i + 1
        if n >= rule.min_samples and (n - rule.min_samples) % rule.check_every == 0:
            run = run + 1 if p else 0
            if run >= rule.patience:
                return i, True
        if rule.max_samples is not None and n >= rule.max_samples:
            return i, False
    return None


@settings(max_examples=300, deadline=None)
@given(
    passed=st.lists(st.booleans(), max_size=60),
    min_samples=st.integers(1, 10),
    check_every=st.integers(1, 4),
    patience=st.integers(1, 4),
    max_samples=st.one_of(st.none(), st.integers(1, 70)),
)
def test_offline_online_and_brute_force_agree(
    passed: list[bool], min_samples: int, check_every: int, patience: int, max_samples: int | None
) -> None:
    rule = StopRule(min_samples=min_samples, check_every=check_every, patience=patience,
                    max_samples=max_samples)
    expected = brute_force_stop(passed, rule)
    decision = rule.decide(np.array(passed, dtype=bool))
    got = None if decision is None else (decision.index, decision.converged)
    assert got == expected
    tracker = rule.tracker()
    online = None
    for p in passed:
        d = tracker.observe(p)
        if d is not None:
            online = (d.index, d.converged)
            break
    assert online == expected
    assert rule.stop_index(np.array(passed, dtype=bool)) == (None if expected is None
                                                             else expected[0])


def test_known_answers() -> None:
    p = np.array([True, False, True, True, False, True, True, True])
    assert StopRule().stop_index(p) == 0
    assert StopRule(min_samples=2).stop_index(p) == 2
    assert StopRule(patience=2).stop_index(p) == 3
    assert StopRule(patience=3).stop_index(p) == 7
    assert StopRule(min_samples=2, check_every=2).stop_index(p) == 3  # checks at 1, 3, 5, 7
    d = StopRule(patience=3, max_samples=5).decide(p)
    assert d is not None and d.index == 4 and not d.converged and "cap of 5" in d.reason


def test_tracker_refuses_after_stop() -> None:
    tr = StopRule().tracker()
    assert tr.observe(True) is not None
    with pytest.raises(RuntimeError):
        tr.observe(True)


def test_stop_rule_validation() -> None:
    with pytest.raises(ValidationError):
        StopRule(min_samples=0)
    with pytest.raises(ValidationError):
        StopRule(patience=1, extra=3)  # type: ignore[call-arg]


def test_evaluation_shape_checks() -> None:
    with pytest.raises(ValueError):
        Evaluation(np.zeros(3), np.zeros(2, dtype=bool))
    ev = Evaluation(np.arange(4.0), np.array([0, 1, 0, 1], dtype=bool))
    assert len(ev[:2]) == 2


# ------------------------------------------------------------------------ registry
def test_make_criterion_both_forms() -> None:
    a = make_criterion("rolling_cv:window=5,threshold=0.05")
    b = make_criterion("rolling_cv", window=5, threshold=0.05)
    assert a == b == RollingCV(5, 0.05)
    assert make_criterion(a.spec) == a
    assert make_criterion("rolling_cv:window=7", threshold=0.2) == RollingCV(7, 0.2)


def test_available_criteria_lists_builtins() -> None:
    names = available_criteria()
    for name in ("rolling_cv", "fixed_count", "min_duration", "max_duration", "all_of", "any_of"):
        assert name in names
    assert names == sorted(names)


def test_unknown_name_and_parameter_list_valid_ones() -> None:
    with pytest.raises(CriterionConfigError, match=r"available: .*rolling_cv"):
        make_criterion("rolling_vc")
    with pytest.raises(CriterionConfigError,
                       match=r"windw.*valid parameters: window, threshold, ddof, signal"):
        make_criterion("rolling_cv:windw=3")
    with pytest.raises(CriterionConfigError, match="windw"):
        make_criterion("rolling_cv", windw=3)
    with pytest.raises(CriterionConfigError, match="key=value"):
        make_criterion("rolling_cv:window")


def test_duplicate_registration_raises() -> None:
    class Other(RollingCV):
        name = "rolling_cv"

    with pytest.raises(CriterionRegistrationError, match="already registered"):
        register_criterion(Other)


def test_nested_spec_strings() -> None:
    spec = (
        "any_of(all_of(rolling_cv:threshold=0.02,window=8,min_duration:seconds=60),"
        "fixed_count:n=30)"
    )
    name, params, children = parse_spec(spec)
    assert name == "any_of" and params == {}
    assert [c[0] for c in children] == ["all_of", "fixed_count"]
    inner = children[0][2]
    assert inner[0] == ("rolling_cv", {"threshold": 0.02, "window": 8}, [])
    assert inner[1] == ("min_duration", {"seconds": 60}, [])
    crit = make_criterion(spec)
    assert make_criterion(crit.spec) == crit
    with pytest.raises(CriterionConfigError, match=r"unbalanced|must end with"):
        make_criterion("all_of(rolling_cv")


def test_composite_semantics() -> None:
    x = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    t = np.arange(1, 7, dtype=float)
    both = make_criterion("all_of(rolling_cv:window=2,min_duration:seconds=4)").evaluate(x, t)
    np.testing.assert_array_equal(both.passed, [False, False, False, True, True, True])
    either = make_criterion("any_of(fixed_count:n=5,max_duration:seconds=3)").evaluate(x, t)
    np.testing.assert_array_equal(either.passed, [False, False, True, True, True, True])
    with pytest.raises(ValueError, match="needs sample times"):
        make_criterion("min_duration").evaluate(x)


def test_criterion_info_describes_parameters() -> None:
    info = criterion_info("rolling_cv")
    params = {p["name"]: p for p in info["parameters"]}
    assert params["window"]["default"] == 5 and params["threshold"]["default"] == 0.05
    assert params["ddof"]["description"]
    assert info["summary"].startswith("Coefficient of variation")
