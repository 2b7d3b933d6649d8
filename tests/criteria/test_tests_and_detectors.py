"""Correctness of the test and detector criteria against their definitions.

Golden comparisons (quantity, reference, tolerance):

* ``kpss``: the KPSS statistic of every trailing window against
  ``statsmodels.tsa.stattools.kpss(regression="c", nlags=..., result_object=True)``,
  relative 1e-9, for ``nlags`` "auto", "legacy" and a fixed integer.
* ``geweke``: the signed z of every trailing window against a per-window
  transcription of coda's ``geweke.diag`` / ``spectrum0.ar`` whose AR fits are
  ``statsmodels.regression.linear_model.yule_walker`` (one fit per order),
  relative 1e-9.
* ``trend``: |t| and the relative slope against ``scipy.stats.linregress``,
  relative 1e-9.
* ``pyperf_halves``: the verdict against a transcription of pyperf's
  ``test_calibrate_warmups`` using the ``statistics`` module (identical).
* ``kelly_ssd``: the probability against a loop transcription of ``ssd_Kelly``
  (relative 1e-12).
* ``bdn_fluctuation``: BenchmarkDotNet's own unit-test cases.
"""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from llenergymeasure.criteria.registry import make_criterion
from llenergymeasure.criteria.stopping import StopRule

SMALL = {
    "bdn_fluctuation": {},
    "pyperf_halves": {"sample_size": 5},
    "geweke": {"window": 30},
    "kpss": {"window": 12},
    "trend": {"window": 6, "mode": "both"},
    "kelly_ssd": {"window": 7, "t_crit": 1.5, "threshold": 0.8},
    "cao_rhinehart": {},
}


def _online(crit, x):
    c = crit.clone()
    stat, passed = [], []
    for v in x:
        c.update(float(v))
        stat.append(c.statistic_)
        passed.append(c.passed_)
    return np.array(stat), np.array(passed)


def _assert_same(stat_on, stat_off, rtol=1e-9):
    nan_on, nan_off = np.isnan(stat_on), np.isnan(stat_off)
    assert np.array_equal(nan_on, nan_off)
    a, b = stat_on[~nan_on], stat_off[~nan_off]
    assert np.array_equal(np.isinf(a), np.isinf(b))
    fin = np.isfinite(a)
    np.testing.assert_allclose(a[fin], b[fin], rtol=rtol, atol=0)
    assert np.array_equal(a[~fin], b[~fin])


# --------------------------------------------------------------- online == offline
@pytest.mark.parametrize("name", sorted(SMALL))
@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.one_of(
            st.floats(0.5, 2.0),
            st.sampled_from([1.0, 1.0, 2.0]),  # ties and constant stretches
        ),
        min_size=0,
        max_size=70,
    ),
    scale=st.sampled_from([1.0, 1e-6, 1e6]),
)
def test_online_equals_offline(name, data, scale):
    crit = make_criterion(name, **SMALL[name])
    x = np.asarray(data, dtype=np.float64) * scale
    ev = crit.evaluate(x)
    stat_on, passed_on = _online(crit, x)
    _assert_same(stat_on, ev.statistic)
    assert np.array_equal(passed_on, ev.passed)


# --------------------------------------------------------------------------- BDN
@pytest.mark.parametrize(
    ("lo", "hi", "fluct", "values", "expected"),
    [  # BenchmarkDotNet's AutoWarmupStoppingCriteriaTests.EvaluateData
        (0, 8, 4, [0, 10, 0, 10, 0, 10, 0, 10, 0, 10], 5),
        (0, 5, 1, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 5),
        (0, 5, 1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2),
        (0, 600, 2, [10, 9, 8, 7, 8, 9, 8, 7, 8, 9], 7),
        (5, 8, 0, [0, 10, 0, 10, 0, 10, 0, 10, 0, 10], 5),
    ],
)
def test_bdn_known_answers(lo, hi, fluct, values, expected):
    crit = make_criterion(
        "bdn_fluctuation", min_iterations=lo, max_iterations=hi, min_fluctuations=fluct
    )
    ev = crit.evaluate(np.asarray(values, dtype=float))
    assert int(np.argmax(ev.passed)) + 1 == expected


def test_bdn_counts_flat_steps_and_defaults():
    crit = make_criterion("bdn_fluctuation")
    p = crit.params
    assert (p.min_iterations, p.max_iterations, p.min_fluctuations) == (6, 50, 4)
    # 5, 5: d = 0 is a fluctuation; 5 -> 4: -1 after 0 is another; 4 -> 6: +1 another.
    ev = crit.evaluate([5.0, 5.0, 4.0, 6.0, 6.0])
    assert ev.statistic.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    # A monotone decrease never fluctuates: BDN runs to the maximum.
    ev = crit.evaluate(np.linspace(100, 1, 60))
    assert int(np.argmax(ev.passed)) + 1 == 50


# ------------------------------------------------------------------------ pyperf
def _pyperf_percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p
    f, c = math.floor(k), math.ceil(k)
    if f != c:
        return values[f] * (c - k) + values[c] * (k - f)
    return values[int(k)]


def _pyperf_mad(values):
    med = float(statistics.median(values))
    return statistics.median([abs(med - v) for v in values])


def _pyperf_accepts(window):
    """pyperf's test_calibrate_warmups on the values after nwarmup."""
    half = len(window) // 2
    s1, s2 = list(window[:half]), list(window[half:])
    rest = s1[1:] + s2
    q1, q3 = _pyperf_percentile(rest, 0.25), _pyperf_percentile(rest, 0.75)
    if not s1[0] <= q3 + 1.5 * (q3 - q1):
        return False
    mean_diff = (statistics.mean(s1) - statistics.mean(s2)) / statistics.mean(s2)
    q1_diff = (_pyperf_percentile(s1, 0.25) - _pyperf_percentile(s2, 0.25)) / _pyperf_percentile(
        s2, 0.25
    )
    q3_diff = (_pyperf_percentile(s1, 0.75) - _pyperf_percentile(s2, 0.75)) / _pyperf_percentile(
        s2, 0.75
    )
    mad_diff = (_pyperf_mad(s1) - _pyperf_mad(s2)) / _pyperf_mad(s2)
    return (
        -0.5 <= mean_diff <= 0.10
        and abs(mad_diff) <= 0.10
        and abs(q1_diff) <= 0.05
        and abs(q3_diff) <= 0.05
    )


def test_pyperf_matches_transcription():
    rng = np.random.default_rng(7)
    crit = make_criterion("pyperf_halves")
    n_pass = 0
    for rep in range(6):
        t = np.arange(160)
        x = (1.0 + (0.5 + rep / 4) * np.exp(-t / (5 + 4 * rep))) * rng.lognormal(0, 0.03, t.size)
        ev = crit.evaluate(x)
        assert np.isnan(ev.statistic[:40]).all() and not ev.passed[:40].any()
        for i in range(40, x.size):
            expected = _pyperf_accepts(x[i - 39 : i + 1])
            assert ev.passed[i] == expected, (rep, i)
            assert (ev.statistic[i] <= 1.0) == expected or not expected
            n_pass += expected
    assert 0 < n_pass < 6 * 120  # both verdicts were exercised


def test_pyperf_first_value_outlier_rejects():
    crit = make_criterion("pyperf_halves", min_warmups=0)
    rng = np.random.default_rng(1)
    half = 1.0 + 0.01 * rng.standard_normal(20)
    x = np.r_[half, half[::-1]]  # the halves hold the same values: every difference is 0
    ev = crit.evaluate(x)
    assert ev.passed[-1] and ev.statistic[-1] < 1e-12  # the means differ by rounding only
    x[0] = 2.0  # high outlier as the first value of S1
    ev = crit.evaluate(x)
    assert not ev.passed[-1] and np.isinf(ev.statistic[-1])


# -------------------------------------------------------------------------- KPSS
@pytest.mark.parametrize("nlags", ["auto", "legacy", 4])
def test_kpss_matches_statsmodels(nlags):
    from statsmodels.tsa.stattools import kpss

    rng = np.random.default_rng(3)
    w = 50
    e = rng.standard_normal(400)
    ar = np.zeros_like(e)
    for i in range(1, e.size):
        ar[i] = 0.7 * ar[i - 1] + e[i]
    x = np.r_[10 + np.cumsum(e[:200]) * 0.2, 30 + ar[200:]]
    crit = make_criterion("kpss", window=w, nlags=nlags)
    ev = crit.evaluate(x)
    ref = np.full(x.size, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InterpolationWarning outside the p-value table
        for t in range(w - 1, x.size):
            res = kpss(x[t - w + 1 : t + 1], regression="c", nlags=nlags, result_object=True)
            ref[t] = res.statistic
    np.testing.assert_allclose(ev.statistic[w - 1 :], ref[w - 1 :], rtol=1e-9, atol=0)
    assert np.isnan(ev.statistic[: w - 1]).all()
    assert np.array_equal(ev.passed[w - 1 :], ref[w - 1 :] < 0.463)


def test_kpss_known_answer_and_critical_values():
    crit = make_criterion("kpss", window=4, nlags=0)
    # e = -1.5, -.5, .5, 1.5; S = -1.5, -2, -1.5, 0; eta = 8.5/16; sigma^2 = 5/4.
    assert crit.evaluate([1.0, 2.0, 3.0, 4.0]).statistic[-1] == pytest.approx(0.425, rel=1e-12)
    assert [make_criterion("kpss", alpha=a).threshold for a in (0.1, 0.05, 0.025, 0.01)] == [
        0.347,
        0.463,
        0.574,
        0.739,
    ]
    assert crit.evaluate([2.0] * 4).passed[-1]  # constant window: stationary


# ------------------------------------------------------------------------ Geweke
def _spectrum0_ar_reference(y):
    """coda's spectrum0.ar: ar(aic=TRUE) by Yule-Walker, one statsmodels fit per order."""
    from statsmodels.regression.linear_model import yule_walker

    n = y.size
    z = np.arange(1, n + 1)
    res = y - np.polyval(np.polyfit(z, y, 1), z)
    if np.std(res, ddof=1) <= 1e-12 * np.mean(np.abs(y)):
        return 0.0
    kmax = min(n - 1, math.floor(10 * math.log10(n)))
    best = None
    for k in range(kmax + 1):
        if k == 0:
            rho, v = np.zeros(0), np.mean((y - y.mean()) ** 2)
        else:
            rho, sigma = yule_walker(y, order=k, method="mle", demean=True, result_object=False)
            v = sigma**2
        aic = n * math.log(v) + 2 * k
        if best is None or aic < best[0]:
            best = (aic, k, v, rho.sum())
    _, p, v, s = best
    return v * n / (n - p - 1) / (1 - s) ** 2


def _geweke_reference(x, frac1=0.1, frac2=0.5):
    n = x.size
    end_a = math.ceil(1 + frac1 * (n - 1))
    start_b = math.floor(n - frac2 * (n - 1))
    a, b = x[:end_a], x[start_b - 1 :]
    return (a.mean() - b.mean()) / math.sqrt(
        _spectrum0_ar_reference(a) / a.size + _spectrum0_ar_reference(b) / b.size
    )


def test_geweke_matches_transcription():
    rng = np.random.default_rng(11)
    w = 60
    e = rng.standard_normal(220)
    ar = np.zeros_like(e)
    for i in range(1, e.size):
        ar[i] = 0.5 * ar[i - 1] + e[i]
    x = 100 + 20 * np.exp(-np.arange(e.size) / 30) + ar
    crit = make_criterion("geweke", window=w)
    z = crit.z_scores(np.lib.stride_tricks.sliding_window_view(x, w).copy())
    ref = np.array([_geweke_reference(x[t : t + w]) for t in range(x.size - w + 1)])
    np.testing.assert_allclose(z, ref, rtol=1e-9, atol=0)
    ev = crit.evaluate(x)
    np.testing.assert_array_equal(ev.passed[w - 1 :], np.abs(ref) < 1.96)
    assert ev.passed[w - 1 :].any() and not ev.passed[w - 1 :].all()


def test_geweke_segments_follow_coda():
    from llenergymeasure.criteria.geweke import geweke_segments

    # coda, n = 100: window(x, 1, ceiling(1 + 9.9)) and window(x, floor(100 - 49.5), 100).
    assert geweke_segments(100, 0.1, 0.5) == (11, 51)
    crit = make_criterion("geweke", window=20)
    assert crit.evaluate([3.0] * 20).statistic[-1] == 0.0  # constant: z = 0
    # segments: the first 3 and the last 11 samples, each constant
    assert np.isinf(crit.evaluate([3.0] * 5 + [4.0] * 15).statistic[-1])


# ------------------------------------------------------------------------- trend
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_trend_matches_linregress(offset):
    rng = np.random.default_rng(5)
    w = 20
    x = offset + 50 + 0.05 * np.arange(300) + rng.standard_normal(300)
    t_ev = make_criterion("trend", window=w).evaluate(x)
    r_ev = make_criterion("trend", window=w, mode="relative").evaluate(x)
    ts, rel = [], []
    for t in range(w - 1, x.size):
        r = sps.linregress(np.arange(w), x[t - w + 1 : t + 1])
        ts.append(abs(r.slope / r.stderr))
        rel.append(abs(r.slope / np.mean(x[t - w + 1 : t + 1])))
    np.testing.assert_allclose(t_ev.statistic[w - 1 :], ts, rtol=1e-9)
    np.testing.assert_allclose(r_ev.statistic[w - 1 :], rel, rtol=1e-9)
    tcrit = sps.t.ppf(0.975, w - 2)
    np.testing.assert_array_equal(t_ev.passed[w - 1 :], np.array(ts) < tcrit)


def test_trend_known_answer():
    crit = make_criterion("trend", window=4)
    # i - ibar = -1.5..1.5, Sxy = 1, Sii = 5, b = 0.2, SSR = 0.8, se = sqrt(0.08).
    assert crit.evaluate([1.0, 2.0, 1.0, 2.0]).statistic[-1] == pytest.approx(
        1 / math.sqrt(2), rel=1e-12
    )
    ev = crit.evaluate([1.0, 2.0, 3.0, 4.0])  # an exact line: infinitely significant
    assert np.isinf(ev.statistic[-1]) and not ev.passed[-1]
    assert crit.evaluate([7.0] * 4).passed[-1]


def test_trend_rejects_drift():
    rng = np.random.default_rng(2)
    x = 100 * (1 + 0.005 * np.arange(600)) + rng.standard_normal(600)
    for mode in ("ttest", "relative", "both"):
        ev = make_criterion("trend", window=30, mode=mode).evaluate(x)
        assert ev.passed[29:].mean() < 0.05, mode
    flat = 100 + rng.standard_normal(600)
    ev = make_criterion("trend", window=30).evaluate(flat)
    assert 0.9 < ev.passed[29:].mean() < 0.99  # about 1 - alpha under the null


# ------------------------------------------------------------------------- Kelly
def _kelly_reference(block, t_crit):
    n = len(block)
    m = sum(block[i] - block[i - 1] for i in range(1, n)) / (n - 1)
    mu = (sum(block) - m * sum(range(1, n + 1))) / n
    sd = math.sqrt(sum((block[i] - m * (i + 1) - mu) ** 2 for i in range(n)) / (n - 2))
    return sum(abs(v - mu) <= t_crit * sd for v in block) / n


def test_kelly_known_answer_and_transcription():
    # m = 0, mu = 1.4, residuals .4/.6, sd = sqrt(0.4) = 0.632: all inside at t = 1,
    # only the three 0.4s at t = 0.9 (band 0.569).
    x = [1.0, 2.0, 1.0, 2.0, 1.0]
    assert make_criterion("kelly_ssd", window=5, t_crit=1.0).evaluate(x).statistic[-1] == 1.0
    assert make_criterion("kelly_ssd", window=5, t_crit=0.9).evaluate(x).statistic[-1] == 0.6
    rng = np.random.default_rng(4)
    y = 5 + 3 * np.exp(-np.arange(400) / 60) + 0.2 * rng.standard_normal(400)
    crit = make_criterion("kelly_ssd", window=40, t_crit=2.0, threshold=0.95)
    ev = crit.evaluate(y)
    for k in range(10):
        expected = _kelly_reference(list(y[k * 40 : (k + 1) * 40]), 2.0)
        held = ev.statistic[(k + 1) * 40 - 1 : min((k + 2) * 40 - 1, 400)]
        np.testing.assert_allclose(held, expected, rtol=1e-12)
    assert np.isnan(ev.statistic[:39]).all()


# ----------------------------------------------------------------- Cao-Rhinehart
def test_cao_rhinehart_known_answer():
    ev = make_criterion("cao_rhinehart").evaluate([0.0, 1.0, 1.0])
    # i=1: nu2 = 0.1, Xf = 0.2, delta2 = 0.1 -> R = 1.8
    # i=2: nu2 = 0.1 * 0.8^2 + 0.9 * 0.1 = 0.154, delta2 = 0.09 -> R = 1.8 * 0.154 / 0.09
    assert math.isnan(ev.statistic[0])
    np.testing.assert_allclose(ev.statistic[1:], [1.8, 1.8 * 0.154 / 0.09], rtol=1e-12)


def test_cao_rhinehart_null_false_alarm_rate():
    """Under i.i.d. noise R exceeds the default critical value about 5 % of the time."""
    rng = np.random.default_rng(0)
    crit = make_criterion("cao_rhinehart")
    rates = [
        1 - crit.evaluate(10 + rng.standard_normal(3000)).passed[200:].mean() for _ in range(8)
    ]
    assert 0.03 < float(np.mean(rates)) < 0.07


# ------------------------------------------------------------ synthetic warmups
NOISE = 0.02


def _warmup(kind, rng, t0=120, n=600):
    """A seeded warmup and the earliest acceptable stop.

    ``"step"``: a transient (a ramp from 3.5 down to 1.8, i.e. 0.7 noise
    standard deviations per sample) that drops to the plateau 1.0 at
    ``t0``; a stop is only right at or after ``t0``. (Slower drifts pass
    several of these criteria: see the docs' failure modes.)
    ``"decay"``: ``1 + 0.5 exp(-t / tau)``; a stop is acceptable once the excess
    over the plateau is below two noise standard deviations.
    """
    t = np.arange(n)
    noise = NOISE * rng.standard_normal(n)
    if kind == "step":
        base = np.where(t < t0, 3.5 - 1.7 * t / t0, 1.0)
        earliest = t0
    else:
        tau = 20.0
        base = 1.0 + 0.5 * np.exp(-t / tau)
        earliest = math.ceil(tau * math.log(0.5 / (2 * NOISE)))
    return base + noise, earliest


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("pyperf_halves", {}),
        ("geweke", {"window": 60}),
        ("kpss", {"window": 60}),
        ("trend", {"window": 30}),
        ("kelly_ssd", {"window": 60}),
        ("cao_rhinehart", {}),
    ],
)
@pytest.mark.parametrize("kind", ["step", "decay"])
def test_stop_after_true_start(name, params, kind):
    crit = make_criterion(name, **params)
    assert crit.detects_steady_state
    rule = StopRule(patience=3)
    for seed in range(5):
        x, earliest = _warmup(kind, np.random.default_rng(seed))
        stop = rule.stop_index(crit.evaluate(x))
        assert stop is not None, (seed, "never stopped")
        assert stop >= earliest, (seed, stop)


def test_kpss_and_geweke_reject_random_walk():
    rng = np.random.default_rng(9)
    x = 100 + np.cumsum(rng.standard_normal(1000))
    noise = 100 + rng.standard_normal(1000)
    for name in ("kpss", "geweke"):
        crit = make_criterion(name)
        walk_rate = crit.evaluate(x).passed[99:].mean()
        noise_rate = crit.evaluate(noise).passed[99:].mean()
        assert walk_rate < 0.5 < 0.85 < noise_rate, (name, walk_rate, noise_rate)
