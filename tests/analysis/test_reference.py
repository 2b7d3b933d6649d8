"""Reference labellers: PELT vs ruptures, CROPS, Kneedle, Traini and Barrett labels."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import ruptures as rpt
from ruptures.costs import CostNormal

from llenergymeasure.analysis import _changepoint as cp_mod
from llenergymeasure.analysis._changepoint import (
    RPelt,
    crops,
    kneedle_elbow,
    normal_meanvar_cost,
    pelt_normal,
    r_pelt_meanvar,
    r_sumstat,
    segmentation_cost,
)
from llenergymeasure.analysis.reference import (
    ReferenceFileError,
    TrainiParams,
    barrett_classify,
    barrett_consistency,
    load_reference_file,
    reference_to_traini_start,
    segments_differ,
    traini_benchmark_label,
    traini_changepoints,
    traini_label,
    traini_outliers,
    traini_start_to_reference,
    traini_walk_back,
)
from llenergymeasure.analysis.synthetic import generate
from llenergymeasure.criteria.pelt import pelt_changepoints


def _ruptures(x: np.ndarray, pen: float) -> list[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        algo = rpt.Pelt(custom_cost=CostNormal(add_small_diag=False), jump=1, min_size=2)
        return algo.fit(x).predict(pen=pen)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("pen", [3.0, 15 * math.log(300)])
def test_pelt_matches_ruptures(seed: int, pen: float) -> None:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, 100), rng.normal(2, 3, 80), rng.normal(-1, 0.5, 120)])
    assert pelt_normal(x, pen) == _ruptures(x, pen)
    # The labeller's PELT is the criteria layer's, with R changepoint's variance floor.
    shared = pelt_changepoints(x, pen, var_floor=1e-11, var_floor_mode="replace")
    assert pelt_normal(x, pen) == shared


def test_pelt_normal_on_seconds_scale_and_edges() -> None:
    rng = np.random.default_rng(3)
    # JMH-like times in seconds: variances ~1e-14 s^2, below R's 1e-11 floor.
    x = np.concatenate([rng.normal(2e-5, 1e-7, 150), rng.normal(1e-5, 1e-7, 350)])
    assert pelt_normal(x, 15 * math.log(x.size)) == [150, 500]
    assert pelt_normal(x * 1e3, 15 * math.log(x.size)) == [150, 500]
    assert pelt_normal([], 1.0) == [] and pelt_normal([1.0, 2.0, 3.0], 1.0) == [3]
    with pytest.raises(ValueError, match="index 2"):
        pelt_normal([1.0, 2.0, math.nan, 4.0], 1.0)


def test_segment_costs_known_answers() -> None:
    # m log(var) with R's replacement of a zero variance by 1e-11.
    assert normal_meanvar_cost([1.0, 2.0, 3.0, 4.0]) == pytest.approx(4 * math.log(1.25))
    x = [1.0, 2.0, 3.0, 4.0, 7.0, 7.0]
    assert segmentation_cost(x, [4, 6]) == pytest.approx(4 * math.log(1.25) + 2 * math.log(1e-11))


def test_crops_path_is_consistent() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(10, 1, 80), rng.normal(12, 1, 80), rng.normal(10, 2, 100)])
    path = crops(x, 5.0, 1e3)
    # Well-conditioned data: R's lists are monotone and each segmentation is optimal
    # inside its penalty interval [penalties[k], penalties[k + 1]]. (Below a penalty of
    # about 5, PELT's pruning with 2-sample segments is no longer exact on this series.)
    assert path.penalties[0] == 5.0
    assert np.all(np.diff(path.penalties) > 0)
    assert np.all(np.diff(path.n_changepoints) < 0)
    assert path.n_changepoints[-1] == 0 and path.n_runs >= path.penalties.size
    bounds = [*path.penalties[1:], 1e3]
    for lo, hi, seg in zip(path.penalties, bounds, path.segmentations, strict=True):
        mid = 0.5 * (lo + hi)
        assert r_pelt_meanvar(x, mid) == [*seg, x.size]
        # Same model as the criteria layer's PELT, which sums differently.
        assert pelt_normal(x, mid) == [*seg, x.size]
    assert crops(x, 1e3, 5.0).penalties.tolist() == path.penalties.tolist()  # R swaps


def test_r_sumstat_accumulates_in_long_double() -> None:
    # R's cumsum adds in long double: 1e16 + 1 is kept until the next term cancels 1e16.
    x = [1e16, 1.0, -1e16, 1.0]
    s1, s2 = r_sumstat(x)
    assert s1.tolist() == [0.0, 1e16, 1e16, 1.0, 2.0]
    assert np.cumsum(x).tolist()[2:] == [0.0, 1.0]  # double accumulation loses the 1
    assert s2[1] == 1e32


def test_r_pelt_matches_exhaustive_optimum_and_r_conventions() -> None:
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(0, 1, 12), rng.normal(4, 0.2, 10)])
    pen = 2 * math.log(x.size)
    got = r_pelt_meanvar(x, pen)
    # Optimal partitioning without pruning, segments of >= 2 samples, R's cost.
    s1, s2 = r_sumstat(x)
    n = x.size
    best = [math.inf] * (n + 1)
    prev = [0] * (n + 1)
    best[0] = -pen
    for t in range(2, n + 1):
        for c in [0, *range(2, t - 1)]:
            v = best[c] + cp_mod._cost_py(s1[t] - s1[c], s2[t] - s2[c], t - c) + pen
            if v < best[t]:
                best[t], prev[t] = v, c
    ref, t = [], n
    while t:
        ref.append(t)
        t = prev[t]
    assert got == ref[::-1] and got[-1] == n and 12 in got
    with pytest.raises(ValueError, match="minseglen"):
        RPelt(x, 1)
    with pytest.raises(ValueError, match="too large"):
        RPelt(x[:5], 3)


def test_numpy_fallback_is_bit_identical_to_the_compiled_kernel() -> None:
    if not cp_mod.HAVE_NUMBA:
        pytest.skip("numba not installed: only the fallback exists")
    rng = np.random.default_rng(2)
    # Quantised values in seconds: zero-variance segments and rounding-noise variances.
    x = np.round(rng.lognormal(-20, 0.05, 400), 23)
    s1, s2 = r_sumstat(x)
    tab_nb = cp_mod._cost_table_nb(s1, s2)
    assert np.array_equal(tab_nb, cp_mod._cost_table_np(s1, s2))
    for pen in (1e-9, 4 * math.log(400), 1e4):
        a = cp_mod._pelt_nb(s1, s2, tab_nb, pen, 2)
        b = cp_mod._pelt_np(s1, s2, tab_nb, pen, 2)
        c = cp_mod._pelt_nb(s1, s2, np.empty(0), pen, 2)  # costs on the fly
        assert a[0].tolist() == b[0].tolist() == c[0].tolist()
        assert a[1] == b[1] == c[1] and a[2] == b[2] == c[2]


def test_sorted_window_outlier_flags_are_numpys() -> None:
    # The compiled filter reads the median and the linear quantiles off a sliding sorted
    # window; numpy partitions each window. Ties (rounded values), spikes, odd and even
    # windows, windows of 3 and 4 (weights below and above 0.5) and a window as long as
    # the series must flag the same samples.
    rng = np.random.default_rng(7)
    for trial in range(120):
        m = int(rng.integers(5, 300))
        w = int(rng.integers(3, min(m, 220) + 1)) if trial % 10 else m
        x = np.round(rng.lognormal(0.0, 1.0, m), int(rng.integers(0, 3)))
        if trial % 3 == 0:
            x[rng.integers(0, m, 4)] *= 40.0
        k = float(rng.choice([0.1, 1.0, 3.0]))
        got = cp_mod.window_outlier_mask(x, w, k)
        assert np.array_equal(got, cp_mod._window_outliers_np(x, w, k)), (trial, m, w, k)
    # One spike and one dip in 200-sample windows of ones: P99 - P1 is 0, so only they
    # lie beyond the bounds (in a 20-sample window the spike is P99's neighbour: kept).
    x = np.r_[np.ones(120), 9.0, np.ones(60), 0.5, np.ones(60)]
    assert np.flatnonzero(cp_mod.window_outlier_mask(x, 200, 3.0)).tolist() == [120, 181]
    assert not cp_mod.window_outlier_mask(x, 20, 3.0).any()
    assert not cp_mod.window_outlier_mask(x[:10], 20, 3.0).any()
    with pytest.raises(ValueError, match="window"):
        cp_mod.window_outlier_mask(x, 0, 3.0)


def test_kneedle_known_elbow() -> None:
    x = np.arange(8.0)
    y = np.array([100, 50, 10, 8, 6, 4, 2, 0.0])
    assert kneedle_elbow(x, y).elbow == 2.0
    assert kneedle_elbow(x, np.zeros(8)).elbow is None


def test_kneedle_agrees_with_kneed_070() -> None:
    kneed = pytest.importorskip("kneed")
    rng = np.random.default_rng(0)
    reasons = set()
    for trial in range(80):
        m = int(rng.integers(3, 40))
        x = np.sort(rng.uniform(0, 100, m))[:: (1 if trial % 2 else -1)].copy()
        if trial % 3 == 0:
            x[rng.integers(0, m)] = x[0]  # repeated penalties, as R's -0.0 rows
        y = np.sort(rng.integers(0, 500, m))[::-1][:: (1 if trial % 4 < 2 else -1)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ref = kneed.KneeLocator(x, y, S=1.0, curve="convex", direction="decreasing").elbow
                ref_reason = None
            except IndexError:
                ref, ref_reason = None, "index error"
            got = kneedle_elbow(x, y)
        reasons.add(got.reason)
        assert got.elbow == ref, (trial, x.tolist(), y.tolist())
        if ref_reason:
            assert got.reason == ref_reason
    assert {"knee", "index error"} <= reasons  # both paths were exercised


def test_traini_conventions() -> None:
    assert traini_start_to_reference(0) == 0 and traini_start_to_reference(-1) == -1
    assert traini_start_to_reference(41) == 42
    assert reference_to_traini_start(42) == 41 and reference_to_traini_start(0) == 0
    assert traini_benchmark_label([True, True]) == "steady state"
    assert traini_benchmark_label([False]) == "no steady state"
    assert traini_benchmark_label([True, False]) == "inconsistent"


def test_segments_differ_effect_size() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10, 0.5, 300)
    assert segments_differ(a, rng.normal(11, 0.5, 300), n_resamples=1000)
    assert not segments_differ(a, rng.normal(10.2, 0.5, 300), n_resamples=1000)  # 2 % < 5 %


def test_traini_label_on_synthetic_step() -> None:
    s = generate("step", 1500, 2, levels=(1.0, 0.3), at=(0.05, 0.2), noise=0.02)
    lab = traini_label(s.x, n_resamples=1000)
    assert lab.steady and abs(lab.reference_start - s.steady_start) <= 5
    flat = traini_label(generate("flat", 1500, 2).x, n_resamples=1000)
    assert flat.steady and flat.reference_start == 0
    late = np.concatenate([np.full(1300, 20.0), np.full(200, 10.0)])
    late = late * np.random.default_rng(1).normal(1, 0.01, 1500)
    lab = traini_label(late, n_resamples=1000)
    assert not lab.steady and lab.reference_start == -1


def test_barrett_classes_and_consistency() -> None:
    assert barrett_classify(generate("flat", 1200, 1).x).classification == "flat"
    s = generate("step", 1200, 1, levels=(1.0, 0.3), at=(0.05, 0.2))
    lab = barrett_classify(s.x)
    assert lab.classification == "warmup" and abs(lab.reference_start - s.steady_start) <= 5
    slow = np.concatenate([np.full(400, 10.0), np.full(800, 14.0)])
    slow = slow * np.random.default_rng(3).normal(1, 0.01, slow.size)
    assert barrett_classify(slow).classification == "slowdown"
    late = np.concatenate([np.full(1000, 20.0), np.full(200, 10.0)])
    late = late * np.random.default_rng(4).normal(1, 0.01, late.size)
    nss = barrett_classify(late)
    assert nss.classification == "no steady state" and nss.reference_start == -1
    assert barrett_consistency(["warmup"] * 3) == "warmup"
    assert barrett_consistency(["flat", "warmup"]) == "good inconsistent"
    assert barrett_consistency(["flat", "slowdown"]) == "bad inconsistent"


def test_reference_files(tmp_path) -> None:
    csv_path = tmp_path / "ref.csv"
    csv_path.write_text("trace_id,run_id,reference_start\nA,0,12\nA,1,-1\nB,0,\n")
    assert load_reference_file(csv_path) == {("A", "0"): 12, ("A", "1"): -1, ("B", "0"): None}
    js = tmp_path / "ref.json"
    js.write_text(json.dumps({"A": {"0": 12, "1": -1}}))
    assert load_reference_file(js) == {("A", "0"): 12, ("A", "1"): -1}
    bad = tmp_path / "bad.csv"
    bad.write_text("trace_id,run_id,reference_start\nA,0,1.5\n")
    with pytest.raises(ReferenceFileError, match="line 2, field reference_start"):
        load_reference_file(bad)
    with pytest.raises(ReferenceFileError, match="missing column"):
        (tmp_path / "m.csv").write_text("trace_id,start\n")
        load_reference_file(tmp_path / "m.csv")


#: (benchmark index, fork) of the development corpus checked against the golden file:
#: a 711-run CROPS path with 311 changepoints, the fork whose published changepoints
#: differ from the reference pipeline's, and three knee fallbacks (15 log n).
_GOLDEN_FORKS = [(0, 0), (6, 7), (15, 1), (20, 4), (27, 2)]


def test_traini_pipeline_matches_reference_intermediates(shared_data) -> None:
    root = shared_data / "traini-dev"
    golden_path = root / "crops_golden.json"
    if not golden_path.exists():
        pytest.skip("crops_golden.json not found")
    golden = json.loads(golden_path.read_text())["benchmarks"]
    names = sorted(golden)
    for b, k in _GOLDEN_FORKS:
        g = next(f for f in golden[names[b]] if f["fork"] == k)
        x = np.asarray(json.loads((root / "timeseries" / "all" / names[b]).read_text())[k])
        assert traini_outliers(x).tolist() == g["outliers"]
        got = traini_changepoints(x)
        assert got.crops is not None
        assert got.crops.n_changepoints.tolist() == g["crops_ncpts"], names[b]
        np.testing.assert_allclose(got.crops.penalties, g["crops_penalties"], rtol=1e-6, atol=0)
        assert got.penalty == pytest.approx(g["knee_penalty"], rel=1e-6)
        published = json.loads((root / "changepoints" / names[b]).read_text())[k]
        if g["matches_published"]:
            assert got.changepoints == g["changepoints"] == published
        else:
            # The one fork of 300 where the golden pipeline misses the published
            # changepoints: this implementation gives the published ones.
            assert got.changepoints == published != g["changepoints"]


def test_walk_back_and_steady_window() -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([np.full(300, 2.0), np.full(2700, 1.0)]) * rng.normal(1, 0.01, 3000)
    p = TrainiParams(n_resamples=1000)
    assert traini_walk_back(x, [299, 2999], p) == 299
    # Equivalent segments (within 5 %) are walked over.
    assert traini_walk_back(x, [299, 1500, 2999], p) == 299
    assert traini_walk_back(x, [2999], p) == 0
    assert TrainiParams().window_for(3000) == 500 and TrainiParams().window_for(300) == 50
    assert TrainiParams(steady_window=20).window_for(300) == 20
    short = np.concatenate([np.full(40, 3.0), np.full(260, 1.0)]) * rng.normal(1, 0.01, 300)
    lab = traini_label(short, n_resamples=1000)
    assert lab.steady and lab.steady_window == 50 and abs(lab.reference_start - 40) <= 2


def test_traini_labeller_agrees_with_published_labels(shared_data) -> None:
    root = shared_data / "traini-dev"
    files = [sorted((root / "timeseries" / "all").glob("*.json"))[i] for i in (0, 3)]
    pub, ours = [], []
    for f in files:
        forks = json.loads(f.read_text())
        starts = json.loads((root / "classification" / f.name).read_text())["steady_state_starts"]
        for k in (0, 5):
            pub.append(starts[k])
            ours.append(traini_label(forks[k], n_resamples=2000).traini_start)
    pub_a, ours_a = np.array(pub), np.array(ours)
    # The start is a bootstrap decision on exactly the published changepoints; measured
    # on these 4 forks: 4/4 exact.
    assert np.mean(np.abs(pub_a - ours_a) <= 50) >= 0.75
