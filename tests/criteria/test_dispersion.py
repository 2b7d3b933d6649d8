"""Correctness of the dispersion criteria: iqr_median, mad_median, rciw.

Each definition is checked against a reference: a hand-computed window, a
direct numpy/scipy transcription of the formula, torch's own ``Measurement``
(iqr_median), ``scipy.stats.median_abs_deviation`` (mad_median),
``scipy.stats.t.interval`` and ``scipy.stats.bootstrap`` (rciw). Online ==
offline is checked with hypothesis over the parameters that change the code
path; the generic contract (pickle, causality, reset, ...) is the conformance
suite's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats

from llenergymeasure.criteria import StopRule, make_criterion
from llenergymeasure.criteria._sorted_window import SortedWindow, linear_quantile, median_sorted
from llenergymeasure.criteria.base import snap
from llenergymeasure.criteria.iqr_median import IQRMedian
from llenergymeasure.criteria.mad_median import MAD_NORMAL_CONSISTENCY, MADMedian
from llenergymeasure.criteria.rciw import RCIW

SETTINGS = settings(max_examples=40, deadline=None)

series = st.lists(
    st.floats(min_value=0.5, max_value=50.0, allow_nan=False, allow_infinity=False),
    min_size=0,
    max_size=80,
).map(lambda v: np.asarray(v, dtype=np.float64))
#: Series with ties (integers), which stress sorted-list removal and medians.
tied_series = st.lists(st.integers(1, 6), min_size=0, max_size=80).map(
    lambda v: np.asarray(v, dtype=np.float64)
)


def online(spec: str, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    crit = make_criterion(spec)
    stat, passed = [], []
    for v in x:
        crit.update(float(v))
        stat.append(crit.statistic_)
        passed.append(crit.passed_)
    return np.asarray(stat, dtype=np.float64), np.asarray(passed, dtype=bool)


def assert_online_offline(spec: str, x: NDArray[np.float64]) -> None:
    ev = make_criterion(spec).evaluate(x)
    stat, passed = online(spec, x)
    np.testing.assert_array_equal(ev.statistic, stat)  # bit for bit, NaN where NaN
    np.testing.assert_array_equal(ev.passed, passed)


def windows(x: NDArray[np.float64], w: int) -> list[NDArray[np.float64]]:
    return [x[t - w + 1 : t + 1] for t in range(w - 1, len(x))]


def slow_decay(seed: int, n: int = 400) -> NDArray[np.float64]:
    """Level 10, first sample 2x the plateau, time constant 30, 1% multiplicative noise."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    return 10.0 * (1.0 + np.exp(-i / 30.0)) * (1.0 + 0.01 * rng.standard_normal(n))


#: The transient 10 * exp(-i/30) falls below one noise sd (0.1) at i = 30 ln 100 = 139;
#: a stop up to 30 ln 3 = 32 samples earlier leaves at most 3 noise sd (see the
#: conformance suite's tolerance argument), so 107 is the earliest acceptable stop.
SLOW_DECAY_EARLIEST = math.ceil(30 * math.log(100)) - math.floor(30 * math.log(3))


# ------------------------------------------------------------ order statistics
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.sampled_from(
    [0.0, 0.0005, 0.025, 0.25, 0.5, 0.75, 0.975, 0.9995, 1.0]))
@SETTINGS
def test_linear_quantile_is_numpy_percentile(values: list[float], q: float) -> None:
    s = np.sort(np.asarray(values))
    assert linear_quantile(s, q) == np.percentile(s, 100 * q)  # 1-D array form
    assert linear_quantile(list(s), q) == np.percentile(s, 100 * q)  # list (online) form
    assert median_sorted(list(s)) == np.median(s)


@given(tied_series, st.integers(1, 7))
@SETTINGS
def test_sorted_window_tracks_the_last_w_values(x: NDArray[np.float64], w: int) -> None:
    win = SortedWindow(w)
    for t, v in enumerate(x):
        win.push(float(v))
        expected = x[max(0, t - w + 1) : t + 1]
        assert win.sorted == sorted(expected)
        np.testing.assert_array_equal(win.values(), expected)


# ------------------------------------------------------------------ iqr_median
def test_iqr_median_hand_computed() -> None:
    # Window (1, 2, 3, 4): Q1 = 1 + 0.75 = 1.75, Q3 = 3.25, median 2.5 -> 1.5 / 2.5 = 0.6.
    ev = IQRMedian(window=4, threshold=0.5).evaluate([9.0, 1.0, 2.0, 3.0, 4.0])
    assert np.isnan(ev.statistic[:3]).all()
    assert ev.statistic[4] == pytest.approx(0.6, rel=1e-15)
    assert not ev.passed[4]


@given(series, st.integers(4, 12))
@SETTINGS
def test_iqr_median_is_the_numpy_definition(x: NDArray[np.float64], w: int) -> None:
    ev = IQRMedian(window=w).evaluate(x)
    expected = [(np.percentile(v, 75) - np.percentile(v, 25)) / np.median(v) for v in windows(x, w)]
    # the statistic is the numpy ratio rounded to 12 significant digits (unit-free ties)
    np.testing.assert_array_equal(ev.statistic[w - 1 :], snap(np.asarray(expected)))


def test_iqr_median_cumulative_matches_torch_measurement() -> None:
    """``window=none`` is torch's adaptive_autorange test: IQR/median of every block so far."""
    from torch.utils.benchmark.utils.common import Measurement, TaskSpec

    x = np.random.default_rng(3).lognormal(0.0, 0.2, 60)
    ev = IQRMedian(window=None).evaluate(x)
    assert np.isnan(ev.statistic[:3]).all()  # torch needs len(times) > 3
    for n in range(4, len(x) + 1):
        m = Measurement(1, list(x[:n]), TaskSpec(stmt="pass", setup="pass"))
        assert ev.statistic[n - 1] == pytest.approx(m.iqr / m.median, rel=1e-11)  # snapped
        assert ev.passed[n - 1] == (m.iqr / m.median < 0.1)


@given(series | tied_series, st.sampled_from(["4", "7", "none"]))
@SETTINGS
def test_iqr_median_online_equals_offline(x: NDArray[np.float64], w: str) -> None:
    assert_online_offline(f"iqr_median:window={w}", x)


# ------------------------------------------------------------------ mad_median
def test_mad_median_hand_computed() -> None:
    # Window (1, 2, 3, 4, 100): median 3, |x - 3| = (2, 1, 0, 1, 97), MAD = 1.
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    raw = MADMedian(window=5, normal_consistent=False).evaluate(x)
    assert raw.statistic[4] == snap(1.0 / 3.0)  # 1/3 to 12 significant digits
    scaled = MADMedian(window=5).evaluate(x)
    assert scaled.statistic[4] == pytest.approx(MAD_NORMAL_CONSISTENCY / 3.0, rel=1e-11)


@given(series, st.integers(3, 12), st.booleans())
@SETTINGS
def test_mad_median_matches_scipy(x: NDArray[np.float64], w: int, normal: bool) -> None:
    ev = MADMedian(window=w, normal_consistent=normal).evaluate(x)
    scale = "normal" if normal else 1.0
    expected = [stats.median_abs_deviation(v, scale=scale) / np.median(v) for v in windows(x, w)]
    np.testing.assert_allclose(ev.statistic[w - 1 :], snap(np.asarray(expected)), rtol=1e-14)


def test_mad_consistency_constant_is_one_over_normal_quartile() -> None:
    assert MAD_NORMAL_CONSISTENCY == pytest.approx(1.0 / stats.norm.ppf(0.75), rel=1e-15)


def test_mad_median_estimates_the_cv_of_normal_noise() -> None:
    """Scaled MAD/median and sd/mean agree on long normal windows (consistency)."""
    x = 100.0 + 2.0 * np.random.default_rng(0).standard_normal(200_000)
    ev = MADMedian(window=len(x)).evaluate(x)
    assert ev.statistic[-1] == pytest.approx(0.02, rel=0.01)


def test_mad_median_ignores_a_spike_that_fails_the_cv() -> None:
    """One 5x spike in a quiet window: the robust CV passes, the rolling CV does not."""
    x = 10.0 * (1.0 + 0.005 * np.random.default_rng(1).standard_normal(40))
    x[30] = 50.0
    mad = MADMedian(window=20, threshold=0.02).evaluate(x)
    cv = make_criterion("rolling_cv:window=20,threshold=0.02").evaluate(x)
    assert mad.passed[30:].all()
    assert not cv.passed[30:].any()


@given(series | tied_series, st.integers(3, 9), st.booleans())
@SETTINGS
def test_mad_median_online_equals_offline(x: NDArray[np.float64], w: int, normal: bool) -> None:
    assert_online_offline(f"mad_median:window={w},normal_consistent={str(normal).lower()}", x)


# ------------------------------------------------------------------------ rciw
@given(series, st.integers(3, 12), st.sampled_from([0.001, 0.01, 0.05]))
@SETTINGS
def test_rciw_t_matches_scipy_t_interval(x: NDArray[np.float64], w: int, alpha: float) -> None:
    ev = RCIW(window=w, alpha=alpha).evaluate(x)
    expected = []
    for v in windows(x, w):
        sem = stats.sem(v)
        if sem == 0:  # scipy returns NaN for a zero scale; a constant window has width 0
            expected.append(0.0)
            continue
        lo, hi = stats.t.interval(1 - alpha, w - 1, loc=v.mean(), scale=sem)
        expected.append((hi - lo) / v.mean())
    # atol: the width is relative (dimensionless); a constant window's two-pass scipy sem
    # is rounding noise of order 1e-15 where the shifted sums give exactly 0.
    np.testing.assert_allclose(ev.statistic[w - 1 :], expected, rtol=1e-9, atol=1e-12)


def test_rciw_bootstrap_matches_scipy_bootstrap() -> None:
    """Percentile bootstrap widths agree with ``scipy.stats.bootstrap(method="percentile")``.

    Tolerance: each endpoint is a 2.5% quantile of B = 20000 bootstrap means,
    whose sd is about sd_b = s / sqrt(w). Its Monte Carlo standard error is
    sqrt(q (1 - q) / B) / phi(1.96) * sd_b = 0.019 sd_b, so the difference of two
    independent widths (4 endpoint errors) has sd 0.038 sd_b, i.e. 1.0% of the
    width 3.92 sd_b. rel=0.04 is 4 standard errors; the t interval (wider by
    about 6% at w = 30) would fail it, so the check is not vacuous.
    """
    rng = np.random.default_rng(7)
    w, alpha, b = 30, 0.05, 20_000
    for trial in range(3):
        x = rng.lognormal(2.0, 0.1, w)
        ours = RCIW(window=w, alpha=alpha, method="bootstrap", n_boot=b, seed=trial).evaluate(x)
        ref = stats.bootstrap(
            (x,), np.mean, method="percentile", confidence_level=1 - alpha, n_resamples=b,
            random_state=np.random.default_rng(100 + trial),
        ).confidence_interval
        assert ours.statistic[-1] == pytest.approx((ref.high - ref.low) / x.mean(), rel=0.04)


def test_rciw_bootstrap_is_deterministic_given_the_seed() -> None:
    x = np.random.default_rng(2).lognormal(1.0, 0.1, 80)
    a = RCIW(window=20, method="bootstrap", seed=5).evaluate(x).statistic
    b = RCIW(window=20, method="bootstrap", seed=5).evaluate(x).statistic
    c = RCIW(window=20, method="bootstrap", seed=6).evaluate(x).statistic
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[19:], c[19:])


@given(series, st.integers(3, 9), st.sampled_from(["t", "bootstrap"]))
@SETTINGS
def test_rciw_online_equals_offline(x: NDArray[np.float64], w: int, method: str) -> None:
    assert_online_offline(f"rciw:window={w},method={method},n_boot=50", x)


# ------------------------------------------------------------ synthetic warmup
@pytest.mark.parametrize(
    "spec",
    [
        # Thresholds about twice the plateau's own dispersion (1% noise: IQR/median
        # 1.35%, robust CV 1%, RCIW at w=60, 99.9%: 2 * 3.46 * 1% / sqrt(60) = 0.9%).
        "iqr_median:window=50,threshold=0.03",
        "mad_median:window=50,threshold=0.015",
        "rciw:window=60,threshold=0.012",
    ],
)
def test_tuned_dispersion_stops_after_the_plateau_start(spec: str) -> None:
    crit = make_criterion(spec)
    for seed in range(5):
        stop = StopRule(min_samples=5).stop_index(crit.evaluate(slow_decay(seed)))
        assert stop is not None and stop >= SLOW_DECAY_EARLIEST, (spec, seed, stop)


def test_default_iqr_window_is_fooled_by_a_slow_decay() -> None:
    """Short-window flatness: the default 20-sample window with threshold 0.1 cannot see a
    decay of 10 * exp(-i/30) (under 1.5% across a window after i = 20); it stops while
    the transient is still over 3 noise sd."""
    for seed in range(5):
        stop = StopRule(min_samples=5).stop_index(IQRMedian().evaluate(slow_decay(seed)))
        assert stop is not None and stop < SLOW_DECAY_EARLIEST
