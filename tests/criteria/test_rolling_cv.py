"""RollingCV: known answers, online == offline, numerical hard cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from llenergymeasure.criteria import CriterionConfigError, InvalidSampleError, RollingCV
from llenergymeasure.criteria._rolling import RollingMoments, rolling_moments


def two_pass_cv(x: np.ndarray, w: int, ddof: int = 1) -> np.ndarray:
    """Reference: float64 two-pass numpy CV of every trailing window (NaN before it is full)."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= w:
        win = sliding_window_view(x, w)
        out[w - 1 :] = win.std(axis=1, ddof=ddof) / win.mean(axis=1)
    return out


def online(crit: RollingCV, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stat, passed = [], []
    for v in x:
        crit.update(v)
        stat.append(crit.statistic_)
        passed.append(crit.passed_)
    return np.array(stat), np.array(passed)


def test_known_answer_sample_vs_population() -> None:
    x = np.array([100.0, 104.0, 96.0])
    sample = RollingCV(window=3, threshold=0.05).evaluate(x).statistic[-1]
    population = RollingCV(window=3, threshold=0.05, ddof=0).evaluate(x).statistic[-1]
    assert sample == pytest.approx(0.04, rel=1e-12)  # sd = 4 exactly, mean 100
    assert population == pytest.approx(0.04 * math.sqrt(2 / 3), rel=1e-12)


def test_nan_until_window_full_and_strict_threshold() -> None:
    crit = RollingCV(window=3, threshold=0.04)
    ev = crit.evaluate([100.0, 104.0, 96.0, 100.0])
    assert np.isnan(ev.statistic[:2]).all()
    assert not ev.passed[2]  # CV == 0.04 exactly is not < 0.04
    assert crit.n_seen_ == 0  # evaluate is pure


@settings(max_examples=150, deadline=None)
@given(
    x=st.lists(st.floats(0.01, 1e4), min_size=0, max_size=80),
    w=st.integers(2, 12),
    ddof=st.sampled_from([0, 1]),
    thr=st.floats(0.001, 0.9),
)
def test_online_equals_offline(x: list[float], w: int, ddof: int, thr: float) -> None:
    arr = np.array(x, dtype=float)
    crit = RollingCV(window=w, threshold=thr, ddof=ddof)
    ev = crit.evaluate(arr)
    stat, passed = online(crit, arr)
    np.testing.assert_array_equal(np.isnan(stat), np.isnan(ev.statistic))
    ok = ~np.isnan(stat)
    np.testing.assert_allclose(stat[ok], ev.statistic[ok], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(passed, ev.passed)
    np.testing.assert_allclose(ev.statistic[ok], two_pass_cv(arr, w, ddof)[ok], rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize(
    ("center", "noise", "n"),
    [(1e6, 1e-3, 5000), (12.3456789, 1e-7, 5000), (1e9, 1.0, 2000)],
)
def test_numerical_hard_cases_match_two_pass(center: float, noise: float, n: int) -> None:
    rng = np.random.default_rng(3)
    x = center + rng.normal(0, noise, n)
    for w in (3, 5, 30):
        crit = RollingCV(window=w, threshold=0.05)
        ref = two_pass_cv(x, w)
        ev = crit.evaluate(x)
        stat, _ = online(crit, x)
        np.testing.assert_allclose(ev.statistic[w - 1 :], ref[w - 1 :], rtol=1e-6)
        np.testing.assert_allclose(stat[w - 1 :], ref[w - 1 :], rtol=1e-6)


def test_no_error_accumulates_after_a_huge_outlier() -> None:
    # Running sums of squares lose the plateau's tiny variance after a 1e8 spike; blocked
    # shifted sums forget the spike once it leaves the window.
    rng = np.random.default_rng(0)
    x = np.concatenate([[1e8], 100 + rng.normal(0, 1e-4, 3000)])
    ref = two_pass_cv(x, 5)
    ev = RollingCV(window=5).evaluate(x)
    np.testing.assert_allclose(ev.statistic[5:], ref[5:], rtol=1e-6)


def test_rolling_moments_online_matches_offline_bitwise() -> None:
    rng = np.random.default_rng(1)
    x = rng.lognormal(3, 1, 1000)
    for w in (1, 2, 7, 64):
        mean, m2 = rolling_moments(x, w)
        rm = RollingMoments(w)
        got = [rm.push(v) for v in x]
        assert all(g is None for g in got[: w - 1])
        np.testing.assert_array_equal(np.array([g[0] for g in got[w - 1 :]]), mean[w - 1 :])
        np.testing.assert_array_equal(np.array([g[1] for g in got[w - 1 :]]), m2[w - 1 :])
        np.testing.assert_array_equal(rm.window(), x[-w:])


def test_non_positive_mean_gives_nan_and_never_passes() -> None:
    ev = RollingCV(window=2, threshold=0.9).evaluate([1.0, -1.0, -2.0, 0.0, 0.0])
    assert np.isnan(ev.statistic[1:]).all() and not ev.passed.any()


def test_constant_window_has_zero_cv() -> None:
    ev = RollingCV(window=4).evaluate([7.0] * 6)
    np.testing.assert_array_equal(ev.statistic[3:], 0.0)
    assert ev.passed[3:].all()


def test_scale_invariance() -> None:
    rng = np.random.default_rng(5)
    x = 50 + rng.normal(0, 2, 200)
    a = RollingCV().evaluate(x)
    b = RollingCV().evaluate(x * 1000.0)
    np.testing.assert_allclose(a.statistic, b.statistic, rtol=1e-12)
    np.testing.assert_array_equal(a.passed, b.passed)


def test_nan_input_names_the_index() -> None:
    crit = RollingCV()
    with pytest.raises(InvalidSampleError) as info:
        crit.evaluate([1.0, 2.0, math.nan])
    assert info.value.index == 2 and "sample 2" in str(info.value)
    crit.update(1.0)
    with pytest.raises(InvalidSampleError) as info:
        crit.update(math.inf)
    assert info.value.index == 1


@pytest.mark.parametrize("params", [{"window": 1}, {"threshold": 0.0}, {"threshold": 1.5},
                                    {"ddof": 2}])
def test_bad_parameters(params: dict[str, float]) -> None:
    with pytest.raises(CriterionConfigError, match=next(iter(params))):
        RollingCV(**params)


def test_reset_restores_initial_state() -> None:
    crit = RollingCV(window=3)
    for v in (1.0, 2.0, 3.0, 4.0):
        crit.update(v)
    crit.reset()
    assert crit.n_seen_ == 0 and math.isnan(crit.statistic_) and not crit.passed_
    stat, _ = online(crit, np.array([5.0, 5.0, 5.0]))
    assert stat[-1] == 0.0
