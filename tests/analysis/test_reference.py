"""Reference labellers: PELT vs ruptures, CROPS, Kneedle, Traini and Barrett labels."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import ruptures as rpt
from ruptures.costs import CostNormal

from llenergymeasure.analysis._changepoint import (
    crops,
    kneedle_elbow,
    normal_meanvar_cost,
    pelt_normal,
    segmentation_cost,
)
from llenergymeasure.analysis.reference import (
    ReferenceFileError,
    barrett_classify,
    barrett_consistency,
    load_reference_file,
    reference_to_traini_start,
    segments_differ,
    traini_benchmark_label,
    traini_label,
    traini_start_to_reference,
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
    path = crops(x, 2.0, 1e3)
    assert np.all(np.diff(path.penalties) > 0)
    assert np.all(np.diff(path.n_changepoints) <= 0)
    for pen, m, bk in zip(path.penalties, path.n_changepoints, path.breakpoints, strict=True):
        assert len(bk) - 1 == m
        assert pelt_normal(x, pen) == bk
    assert path.n_changepoints[-1] == 0


def test_kneedle_known_elbow() -> None:
    x = np.arange(8.0)
    y = np.array([100, 50, 10, 8, 6, 4, 2, 0.0])
    assert kneedle_elbow(x, y) == 2.0
    assert kneedle_elbow(x, np.zeros(8)) is None


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
    label_agree = np.mean((pub_a >= 0) == (ours_a >= 0))
    both = (pub_a >= 0) & (ours_a >= 0)
    within50 = np.mean(np.abs(pub_a[both] - ours_a[both]) <= 50)
    # measured on these 4 forks: 4/4 label agreement, 4/4 exact; floors leave slack
    assert label_agree >= 0.75
    assert within50 >= 0.75
