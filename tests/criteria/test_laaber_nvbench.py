"""Correctness of the NVBench and Laaber et al. criteria.

References used: a line-by-line Python transcription of NVBench's C++
(``stdrel_criterion.cxx``, ``entropy_criterion.cxx``, ``statistics.cuh``,
``measure_cold.cu``: two-pass sums over all samples, the 512-value noise ring
buffer, the 64 / 16 / 5% convergence rule, ``-sum p log2 p`` entropies, the
regression and R^2 of ``statistics.cuh``); direct numpy transcriptions of
Laaber et al.'s cumulative statistics; ``scipy.stats.gaussian_kde`` for the
KDE similarity. Online == offline runs over hypothesis series.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats

from llenergymeasure.criteria import StopRule, make_criterion
from llenergymeasure.criteria._laaber import filter_outliers, max_abs_delta, pool, trailing_min
from llenergymeasure.criteria.laaber_cv import LaaberCV
from llenergymeasure.criteria.laaber_kld import LaaberKLD, kde_similarity
from llenergymeasure.criteria.laaber_rciw import LaaberRCIW, bootstrap_rciw
from llenergymeasure.criteria.nvbench_entropy import NVBenchEntropy
from llenergymeasure.criteria.nvbench_stdrel import NVBenchStdRel

SETTINGS = settings(max_examples=30, deadline=None)

series = st.lists(
    st.floats(min_value=0.5, max_value=50.0, allow_nan=False, allow_infinity=False),
    min_size=0,
    max_size=70,
).map(lambda v: np.asarray(v, dtype=np.float64))
tied_series = st.lists(st.integers(1, 5), min_size=0, max_size=70).map(
    lambda v: np.asarray(v, dtype=np.float64)
)


def assert_online_offline(spec: str, x: NDArray[np.float64]) -> None:
    crit = make_criterion(spec)
    t = np.cumsum(x) / 1000.0 if crit.needs_time else None
    ev = crit.evaluate(x, t)
    stat, passed = [], []
    for i, v in enumerate(x):
        crit.update(float(v), None if t is None else float(t[i]))
        stat.append(crit.statistic_)
        passed.append(crit.passed_)
    np.testing.assert_array_equal(ev.statistic, np.asarray(stat, dtype=np.float64))
    np.testing.assert_array_equal(ev.passed, np.asarray(passed, dtype=bool))


# ------------------------------------------------------------ NVBench stdrel
def ms_times(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sample times of back-to-back samples whose values are durations in ms."""
    return np.cumsum(x) / 1000.0


def test_stdrel_min_time_reads_sample_times_not_values() -> None:
    """The same values with times twice as slow pass ``min_time`` at half the sample count;
    without times the criterion refuses to run (it never sums values)."""
    x = 10.0 * (1.0 + 0.002 * np.random.default_rng(0).standard_normal(400))
    crit = NVBenchStdRel(min_samples=3)
    fast = np.arange(1, 401) * 0.01  # 10 ms per sample
    slow = np.arange(1, 401) * 0.02  # 20 ms per sample, the same values
    assert StopRule().stop_index(crit.evaluate(x, fast)) == 50  # t = 0.51 s > 0.5
    assert StopRule().stop_index(crit.evaluate(x, slow)) == 25  # t = 0.52 s > 0.5
    # the values in seconds: the same stops (nothing sums the values)
    assert StopRule().stop_index(crit.evaluate(x / 1000.0, fast)) == 50
    with pytest.raises(ValueError, match="needs sample times"):
        crit.evaluate(x)
    with pytest.raises(ValueError, match="needs sample times"):
        crit.update(10.0)


def nvbench_stdrel_reference(
    x: NDArray[np.float64], *, max_noise: float = 0.005, min_time: float = 0.5,
    units_per_second: float = 1000.0, min_samples: int = 10, history: int = 512,
) -> tuple[list[float], list[bool]]:
    """Transcription of NVBench's stdrel_criterion and measure_cold::is_finished.

    NVBench's samples are CUDA times and ``min_time`` bounds their sum; here the
    samples are durations in ``1 / units_per_second`` s, back to back.
    """

    def standard_deviation(values: list[float], mean: float) -> float:
        if len(values) < 5:
            return math.inf
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    times: list[float] = []
    noise: list[float] = []
    total = 0.0
    stat, finished = [], []
    for v in x:
        times.append(float(v))
        total += float(v)
        n = len(times)
        mean = total / n
        rel = standard_deviation(times, mean) / mean
        if math.isfinite(rel):
            noise.append(rel)
            noise = noise[-history:]
        stat.append(noise[-1] if noise else math.nan)
        done = False
        if n > min_samples and total > min_time * units_per_second:
            if noise[-1] < max_noise:
                done = True
            elif len(noise) > 64 and n % 16 == 0:
                cur = noise[-1]
                done = standard_deviation(noise, cur) / cur < 0.05
        finished.append(done)
    return stat, finished


def test_stdrel_quiet_series_stops_when_min_time_is_reached() -> None:
    """0.2% noise is under max-noise from the 5th sample: the stop is the first sample at
    which the summed latency exceeds 0.5 s (10 ms samples: the 51st)."""
    x = 10.0 * (1.0 + 0.002 * np.random.default_rng(0).standard_normal(200))
    ev = NVBenchStdRel().evaluate(x, ms_times(x))
    first_over = int(np.argmax(np.cumsum(x) > 500.0))
    assert StopRule().stop_index(ev) == first_over
    assert 45 <= first_over <= 55


def test_stdrel_noisy_series_stops_by_noise_convergence() -> None:
    """5% noise never meets max-noise 0.5%; NVBench then stops once the noise history has
    converged, at a sample count that is a multiple of 16 with more than 64 noise values."""
    x = 10.0 * (1.0 + 0.05 * np.random.default_rng(1).standard_normal(1500))
    ev = NVBenchStdRel().evaluate(x, ms_times(x))
    stop = StopRule().stop_index(ev)
    assert stop is not None
    assert (stop + 1) % 16 == 0 and stop + 1 - 4 > 64
    assert ev.statistic[stop] > 0.005
    _, ref = nvbench_stdrel_reference(x)
    assert stop == ref.index(True)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("history", [512, 80])
def test_stdrel_matches_nvbench_transcription(seed: int, history: int) -> None:
    rng = np.random.default_rng(seed)
    n = 700
    i = np.arange(n)
    x = 10.0 * (1 + 0.5 * np.exp(-i / 40)) * (1 + 0.03 * rng.standard_normal(n))
    ev = NVBenchStdRel(noise_history=history, min_time=0.2).evaluate(x, ms_times(x))
    stat, finished = nvbench_stdrel_reference(x, history=history, min_time=0.2)
    np.testing.assert_allclose(ev.statistic, stat, rtol=1e-9)
    np.testing.assert_array_equal(ev.passed, finished)
    if history == 80:  # a short history converges within the series: the fallback ran
        assert any(finished)


@given(series | tied_series, st.sampled_from(["", ":min_time=0,min_samples=3"]))
@SETTINGS
def test_stdrel_online_equals_offline(x: NDArray[np.float64], extra: str) -> None:
    assert_online_offline("nvbench_stdrel" + extra, x)


# ----------------------------------------------------------- NVBench entropy
def nvbench_entropy_reference(
    x: NDArray[np.float64], *, max_angle: float = 0.048, min_r2: float = 0.36,
    window: int = 299, min_samples: int = 10,
) -> tuple[list[float], list[bool]]:
    """Transcription of NVBench's entropy_criterion (two-pass regression of statistics.cuh)."""
    counts: Counter[float] = Counter()
    entropies: list[float] = []
    angles, finished = [], []
    for n, v in enumerate(x, start=1):
        counts[float(v)] += 1
        h = -sum((c / n) * math.log2(c / n) for c in counts.values())
        entropies = [*entropies, max(h, 0.0)][-window:]
        if len(entropies) < 2:
            angles.append(math.nan)
            finished.append(False)
            continue
        y = np.asarray(entropies)
        m = len(y)
        mean_y = y.mean()
        mean_x = (m - 1) / 2.0
        xd = np.arange(m) - mean_x
        slope = float(np.sum(xd * (y - mean_y)) / np.sum(xd * xd))
        intercept = mean_y - slope * mean_x
        ss_tot = float(np.sum((y - mean_y) ** 2))
        ss_res = float(np.sum((y - (slope * np.arange(m) + intercept)) ** 2))
        r2 = 1.0 if ss_tot == 0.0 else 1.0 - ss_res / ss_tot
        angle = math.degrees(math.atan2(slope, 1.0))
        angles.append(angle)
        finished.append(n > min_samples and n % 2 == 0 and angle <= max_angle and r2 >= min_r2)
    return angles, finished


@pytest.mark.parametrize("seed", range(2))
def test_entropy_matches_nvbench_transcription(seed: int) -> None:
    """Quantised latencies (a 0.1 ms timer): the entropy levels off and the criterion stops."""
    rng = np.random.default_rng(seed)
    x = np.round(10.0 + 0.3 * rng.standard_normal(700), 1)
    crit = NVBenchEntropy(window=120)
    ev = crit.evaluate(x)
    angles, finished = nvbench_entropy_reference(x, window=120)
    np.testing.assert_allclose(ev.statistic, angles, rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(ev.passed, finished)
    assert any(finished)


def entropy_stop_for_distinct_values(window: int = 299, max_angle: float = 0.048) -> int:
    """First even n > 10 at which log2(k), k = n-window+1..n, has slope angle <= max_angle."""
    n = window
    while True:
        n += 1
        if n % 2:
            continue
        k = np.arange(n - window + 1, n + 1, dtype=np.float64)
        slope = np.polyfit(np.arange(window), np.log2(k), 1)[0]
        if math.degrees(math.atan(slope)) <= max_angle:
            return n


def test_entropy_of_distinct_values_is_a_disguised_sample_count() -> None:
    """With continuous values every sample is new, H_n = log2 n whatever the data, so the
    stop index is the same for a flat series and for a warmup that never settles."""
    expected = entropy_stop_for_distinct_values() - 1
    assert 1700 < expected < 1900  # slope 1 / (n ln 2) meets tan(0.048 deg) near n = 1722
    rng = np.random.default_rng(0)
    flat = 10.0 + rng.standard_normal(2000) * 0.01
    drifting = 10.0 + np.arange(2000) * 0.5 + rng.random(2000)
    for x in (flat, drifting):
        assert StopRule().stop_index(NVBenchEntropy().evaluate(x)) == expected


def test_entropy_round_decimals_bins_values() -> None:
    x = np.array([1.04, 1.01, 0.98, 1.02, 1.5])
    exact = NVBenchEntropy(window=2).evaluate(x).statistic
    rounded = NVBenchEntropy(window=2, round_decimals=1).evaluate(x).statistic
    # Exact values: H = log2 n, slope log2(n) - log2(n-1) > 0 at every step. With one
    # decimal the first four samples are all 1.0: H stays 0 and the slope is 0.
    assert (exact[1:] > 0).all()
    np.testing.assert_array_equal(rounded[1:4], 0.0)
    assert rounded[4] > 0


@given(series | tied_series, st.sampled_from(["window=5", "window=299", "round_decimals=0"]))
@SETTINGS
def test_entropy_online_equals_offline(x: NDArray[np.float64], param: str) -> None:
    assert_online_offline(f"nvbench_entropy:{param}", x)


# ------------------------------------------------------------ Laaber helpers
def test_outlier_filter_keeps_a_factor_of_ten_around_the_median() -> None:
    v = np.array([1.0, 0.99, 10.0, 10.0, 10.0, 100.0, 100.5])
    # median 10: keep [1, 100] inclusive.
    np.testing.assert_array_equal(filter_outliers(v, 10.0), [1.0, 10.0, 10.0, 10.0, 100.0])


def test_history_variabilities_by_hand() -> None:
    s = np.array([np.nan, 1.0, 3.0, 2.0, 2.5])
    np.testing.assert_array_equal(max_abs_delta(s, 3), [np.nan, np.nan, np.nan, 1.0, 0.5])
    np.testing.assert_array_equal(trailing_min(s, 2), [np.nan, np.nan, 1.0, 2.0, 2.0])


def test_pool_subsamples_deterministically() -> None:
    x = np.arange(100.0)
    np.testing.assert_array_equal(pool(x, 99, 100, 0), x)
    a, b = pool(x, 99, 10, 0), pool(x, 99, 10, 0)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 10 and np.all(np.diff(a) > 0) and set(a) <= set(x)
    assert not np.array_equal(a, pool(x, 98, 10, 0))


# ----------------------------------------------------------------- laaber_cv
@given(series, st.integers(2, 6))
@SETTINGS
def test_laaber_cv_is_the_cumulative_cv_definition(x: NDArray[np.float64], h: int) -> None:
    ev = LaaberCV(history=h).evaluate(x)
    cv = np.array([np.std(x[: i + 1], ddof=1) / np.mean(x[: i + 1]) if i else np.nan
                   for i in range(len(x))])
    ref = np.full(len(x), np.nan)
    for i in range(h - 1, len(x)):
        ref[i] = np.max([abs(cv[i] - cv[i - j]) for j in range(1, h)])  # NaN propagates
    # Shifted running sums against two-pass sums: both are within ~1e-15 of the CV, and
    # the variability is a difference of CVs of order 1e-3 or more, hence atol.
    np.testing.assert_allclose(ev.statistic, ref, rtol=1e-9, atol=1e-13)


def test_laaber_cv_passes_on_a_drift() -> None:
    """The cumulative-statistic pitfall: on a level drifting +0.1% per sample the
    cumulative CV changes by under 0.01 over 5 samples, so the criterion stops at once,
    while the level keeps moving (over 40% higher 400 samples later)."""
    rng = np.random.default_rng(0)
    i = np.arange(500)
    x = 10.0 * (1.0 + 0.001 * i) * (1.0 + 0.002 * rng.standard_normal(500))
    stop = StopRule(min_samples=5).stop_index(LaaberCV().evaluate(x))
    assert stop is not None and stop < 20
    assert x[-100:].mean() > 1.4 * x[stop]


@given(series | tied_series)
@SETTINGS
def test_laaber_cv_online_equals_offline(x: NDArray[np.float64]) -> None:
    assert_online_offline("laaber_cv", x)


# --------------------------------------------------------------- laaber_rciw
def test_laaber_rciw_matches_transcription() -> None:
    rng = np.random.default_rng(4)
    x = rng.lognormal(2.0, 0.1, 40)
    x[7] = 500.0  # an outlier the 10x-median filter must remove
    crit = LaaberRCIW(n_boot=400, sample_size=25, seed=3)
    ev = crit.evaluate(x)
    rciw = np.full(len(x), np.nan)
    for i in range(len(x)):
        prefix = x[: i + 1]
        if len(prefix) > 25:
            sub = np.random.default_rng([3, i]).choice(len(prefix), 25, replace=False)
            prefix = prefix[np.sort(sub)]
        med = np.median(prefix)
        kept = prefix[(prefix >= med / 10) & (prefix <= 10 * med)]
        if len(kept) < 2:
            continue
        idx = np.random.default_rng([3, i, 1]).integers(0, len(kept), size=(400, len(kept)))
        means = kept[idx].mean(axis=1)
        lo, hi = np.percentile(means, [0.5, 99.5])
        rciw[i] = (hi - lo) / kept.mean()
    ref = np.full(len(x), np.nan)
    for i in range(4, len(x)):
        ref[i] = np.max([abs(rciw[i] - rciw[i - j]) for j in range(1, 5)])  # NaN propagates
    np.testing.assert_allclose(ev.statistic, ref, rtol=1e-12)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(ev.passed, ref < 0.03)


@given(series | tied_series)
@settings(max_examples=10, deadline=None)
def test_laaber_rciw_online_equals_offline(x: NDArray[np.float64]) -> None:
    assert_online_offline("laaber_rciw:n_boot=100,sample_size=30", x)


# ---------------------------------------------------------------- laaber_kld
def exact_similarity(a: NDArray[np.float64], b: NDArray[np.float64], n_grid: int) -> float:
    """D with exact Gaussian KDEs from scipy (Scott's rule) on the same Tukey-fence grid."""
    fences = [(np.percentile(v, 25) - 1.5 * stats.iqr(v), np.percentile(v, 75)
               + 1.5 * stats.iqr(v)) for v in (a, b)]
    grid = np.linspace(max(0.0, min(f[0] for f in fences)), max(f[1] for f in fences), n_grid)
    p = stats.gaussian_kde(a, "scott")(grid)
    q = stats.gaussian_kde(b, "scott")(grid)
    p, q = p / p.sum(), q / q.sum()
    return float(2 ** (-np.sum(p * np.log2(p / q))) * 2 ** (-np.sum(q * np.log2(q / p))))


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_kde_similarity_matches_exact_kde(shift: float) -> None:
    """The binned KDE's error is O((grid step / bandwidth)^2), about 1e-5 of the density
    here (step = 1/1000 of ~5 sd, bandwidth ~0.3 sd), so D agrees to 1e-5."""
    rng = np.random.default_rng(5)
    a = rng.lognormal(0.0, 0.1, 300)
    b = np.r_[a[:-40], rng.lognormal(shift, 0.1, 40)]
    assert kde_similarity(a, b, 1000) == pytest.approx(exact_similarity(a, b, 1000), abs=1e-5)


def test_kde_similarity_known_values() -> None:
    a = np.random.default_rng(6).normal(10.0, 1.0, 200)
    assert kde_similarity(a, a, 1000) == 1.0
    assert kde_similarity(a, a + 3.0, 1000) < 0.1  # 3 sd apart: little overlap
    assert kde_similarity(np.full(5, 2.0), np.full(4, 2.0), 100) == 1.0
    assert kde_similarity(np.full(5, 2.0), np.full(4, 3.0), 100) == 0.0


def test_laaber_kld_waits_while_the_distribution_moves() -> None:
    """A step from 10 to 12 at sample 40: D between consecutive pools drops below 0.99
    after the step, so the criterion fails for the next history; before the step, on a
    stationary series, it passes."""
    rng = np.random.default_rng(7)
    x = np.r_[rng.normal(10.0, 0.2, 40), rng.normal(12.0, 0.2, 40)]
    ev = LaaberKLD().evaluate(x)
    assert ev.passed[30:40].any()
    assert not ev.passed[40:45].any()


@given(series | tied_series)
@settings(max_examples=10, deadline=None)
def test_laaber_kld_online_equals_offline(x: NDArray[np.float64]) -> None:
    assert_online_offline("laaber_kld:grid=100,sample_size=20", x)


def test_laaber_defaults_are_published() -> None:
    assert (LaaberCV().params.threshold, LaaberCV().params.history) == (0.01, 5)
    assert (LaaberRCIW().params.threshold, LaaberRCIW().params.alpha) == (0.03, 0.01)
    assert (LaaberRCIW().params.n_boot, LaaberRCIW().params.sample_size) == (1000, 10_000)
    assert (LaaberKLD().params.threshold, LaaberKLD().params.history) == (0.99, 6)
    assert (NVBenchStdRel().params.max_noise, NVBenchStdRel().params.min_time) == (0.005, 0.5)
    assert (NVBenchEntropy().params.max_angle, NVBenchEntropy().params.min_r2) == (0.048, 0.36)


def fftconvolve_similarity(a: NDArray[np.float64], b: NDArray[np.float64], g: int) -> float:
    """The similarity through ``scipy.signal.fftconvolve`` (padded linear binning, Scott)."""
    from scipy import signal

    def kde(v: NDArray[np.float64], grid: NDArray[np.float64]) -> NDArray[np.float64]:
        bw = np.std(v, ddof=1) * len(v) ** -0.2
        delta = (grid[-1] - grid[0]) / (g - 1)
        pad = min(math.ceil(6.0 * bw / delta), 10 * g)
        e = g + 2 * pad
        u = (v - grid[0]) / delta + pad
        u = u[(u >= 0) & (u <= e - 1)]
        j = np.minimum(np.floor(u).astype(np.int64), e - 2)
        frac = u - j
        counts = (np.bincount(j, weights=1.0 - frac, minlength=e)
                  + np.bincount(j + 1, weights=frac, minlength=e))
        off = np.arange(-(e - 1), e, dtype=np.float64) * (delta / bw)
        full = signal.fftconvolve(counts, np.exp(-0.5 * off * off), mode="full")
        dens = np.maximum(full[pad + e - 1 : pad + e - 1 + g], np.finfo(np.float64).tiny)
        return dens / dens.sum()

    lo, hi = math.inf, -math.inf
    for v in (a, b):
        q1, q3 = np.percentile(v, [25, 75])
        lo, hi = min(lo, q1 - 1.5 * (q3 - q1)), max(hi, q3 + 1.5 * (q3 - q1))
    grid = np.linspace(max(0.0, lo), hi, g)
    p, q = kde(a, grid), kde(b, grid)
    return float(2.0 ** -np.sum(p * np.log2(p / q)) * 2.0 ** -np.sum(q * np.log2(q / p)))


@pytest.mark.parametrize("seed", range(4))
def test_kde_similarity_is_fftconvolve_to_the_bit(seed: int) -> None:
    """The lean FFT path does fftconvolve's operations: identical D, including the
    near-disjoint pools where D is set by FFT round-off in the tails (small pools,
    narrow bandwidths, a coarse grid)."""
    rng = np.random.default_rng(seed)
    for size, g in [(300, 1000), (20, 100), (1000, 1000)]:
        a = rng.lognormal(2.0, 0.3, size)
        for b in (a[:-1], np.r_[a[: size // 2], a[size // 2 :] * 1.5], a[::2] + 0.1):
            assert kde_similarity(a, b, g) == fftconvolve_similarity(a, b, g)


@pytest.mark.parametrize("spec", ["laaber_kld", "laaber_kld:sample_size=30,grid=50,seed=2"])
def test_laaber_kld_carried_state_equals_the_pure_step(spec: str) -> None:
    """The offline and online forms carry the previous pool (and its density when the grid
    repeats) from step to step; each step must equal the from-scratch statistic."""
    from llenergymeasure.analysis.synthetic import make_trace

    x = make_trace("step", 400, 3).samples()
    crit = make_criterion(spec)
    carried = crit._statistics(x)
    pure = np.array([crit._step_statistic(x[: i + 1], i) for i in range(len(x))])
    np.testing.assert_array_equal(carried, pure)


@pytest.mark.parametrize(("m", "n_boot"), [(5_000, 200), (300_000, 2), (2, 1000), (999, 331)])
def test_bootstrap_rciw_in_blocks_is_one_draw_to_the_bit(m: int, n_boot: int) -> None:
    """Blocks of rows (a partial last one, one row when m exceeds a block) reproduce one
    (n_boot, m) draw of int64 indices and its row means exactly."""
    values = np.random.default_rng(m).lognormal(1.0, 0.2, m)
    idx = np.random.default_rng([4, 17, 1]).integers(0, m, size=(n_boot, m))
    means = np.sort(values[idx].mean(axis=1))
    lo, hi = np.percentile(means, [0.5, 99.5])
    assert bootstrap_rciw(values, 0.01, n_boot, 4, 17) == (hi - lo) / np.mean(values)
