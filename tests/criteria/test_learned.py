"""The `learned` criterion: its features, its model file, online == offline on real data.

The conformance suite (`test_conformance.py`) covers the generic contract; these tests
check the features against hand-computed values, the model-file loader's errors, and
the criterion on the real JMH and GPU series (skipped without ``../shared/data``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.criteria import CriterionConfigError, StopRule, make_criterion
from llenergymeasure.criteria.learned import (
    FEATURES,
    LearnedModel,
    ModelFileError,
    feature_matrix,
    load_model,
    sustained,
)

W = 8  # a small window for hand-checked features


def col(name: str) -> int:
    return FEATURES.index(name)


def tiny_model(**over: object) -> dict:
    """A valid model document over every feature (window 8, persistence 3)."""
    doc = LearnedModel(
        W, FEATURES, np.zeros(len(FEATURES)), np.ones(len(FEATURES)),
        np.linspace(-1, 1, len(FEATURES)), 0.3, 0.6, "test", 3,
    ).to_dict()
    doc.update(over)
    return doc


def write(tmp_path: Path, doc: object, name: str = "m.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


# ---------------------------------------------------------------- features
def test_constant_series_features() -> None:
    """A constant series: no shift, no trend, no dispersion; the low was set at the start."""
    x = np.full(20, 5.0)
    F = feature_matrix(x, W)
    assert np.isnan(F[: W - 1]).all()
    rows = F[W - 1 :]
    t = np.arange(W - 1, 20)
    np.testing.assert_array_equal(rows[:, col("log_n")], np.log1p(t))
    for name in ("halves_shift", "trend_t", "cusum", "lag1", "hist_shift"):
        np.testing.assert_array_equal(rows[:, col(name)], 0.0)
    np.testing.assert_allclose(rows[:, col("halves_rel")], math.log(1e-4))
    np.testing.assert_allclose(rows[:, col("rel_disp")], math.log(1e-6))
    np.testing.assert_allclose(rows[:, col("level_vs_min")], math.log(1e-4))
    # the running low was set by the first window (t = W - 1) and never lowered strictly
    np.testing.assert_allclose(rows[:, col("since_min")], (t - (W - 1)) / (t + 1.0))


def test_step_window_features() -> None:
    """Halves 1,1,1,1 | 2,2,2,2: medians 1 and 2, window median 1.5, MAD 0.5."""
    x = np.array([1.0] * 4 + [2.0] * 4)
    F = feature_matrix(x, W)[-1]
    assert F[col("halves_shift")] == pytest.approx(math.log1p(1.0 / 0.5))
    assert F[col("halves_rel")] == pytest.approx(math.log(1.0 + 1e-4))
    assert F[col("rel_disp")] == pytest.approx(math.log(0.5 / 1.5 + 1e-6))
    # CUSUM of deviations -0.5 x4, +0.5 x4: max |S| = 2; sd = 0.5: 2 / (0.5 sqrt 8)
    assert F[col("cusum")] == pytest.approx(2.0 / (0.5 * math.sqrt(8)))
    # lag-1 autocorrelation: 7 products of 0.25, one of them -0.25, over 8 * 0.25
    assert F[col("lag1")] == pytest.approx((6 * 0.25 - 0.25) / 2.0)


def test_linear_ramp_trend_is_capped() -> None:
    """An exactly linear window has residual 0: its trend t-statistic is the cap."""
    F = feature_matrix(np.arange(1.0, 9.0), W)[-1]
    assert F[col("trend_t")] == pytest.approx(math.log1p(1e6))


def test_trend_t_matches_scipy() -> None:
    """The trend t-statistic is scipy's linregress slope / stderr."""
    from scipy import stats

    rng = np.random.default_rng(3)
    x = 10 + 0.05 * np.arange(40) + rng.normal(0, 0.3, 40)
    F = feature_matrix(x, 40)[-1]
    res = stats.linregress(np.arange(40), x)
    assert F[col("trend_t")] == pytest.approx(math.log1p(abs(res.slope / res.stderr)))


def test_features_are_causal_and_scale_invariant() -> None:
    rng = np.random.default_rng(0)
    x = 20 * (1 + 2 * np.exp(-np.arange(300) / 30)) * np.exp(0.02 * rng.standard_normal(300))
    F = feature_matrix(x, 40)
    np.testing.assert_array_equal(feature_matrix(x[:150], 40), F[:150])
    for c in (1e-3, 1e3, 1e6):
        np.testing.assert_allclose(feature_matrix(x * c, 40), F, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(p=st.lists(st.floats(0, 1), min_size=0, max_size=40), lead=st.integers(0, 5),
       k=st.integers(1, 6))
def test_sustained_is_a_trailing_min(p: list[float], lead: int, k: int) -> None:
    arr = np.array([np.nan] * lead + p)
    got = sustained(arr, k)
    for t in range(arr.shape[0]):
        want = np.nan if t - k + 1 < lead else min(arr[t - k + 1 : t + 1])
        assert (np.isnan(got[t]) and np.isnan(want)) or got[t] == want


# ------------------------------------------------------------------ model file
def test_model_round_trip_and_criterion(tmp_path: Path) -> None:
    """A model written to a file and loaded by `learned:model=PATH` gives its statistic."""
    path = write(tmp_path, tiny_model())
    model = load_model(path)
    crit = make_criterion(f"learned:model={path}")
    assert crit.threshold == 0.6
    assert crit.min_samples == W + 3 - 1
    rng = np.random.default_rng(1)
    x = 10 + rng.normal(0, 1, 60).cumsum() * 0.1 + 20
    ev = crit.evaluate(x)
    want = sustained(model.probability(feature_matrix(x, W)), 3)
    np.testing.assert_array_equal(ev.statistic, want)
    np.testing.assert_array_equal(ev.passed, np.nan_to_num(want, nan=-1) >= 0.6)
    assert not ev.passed[: W + 1].any()
    crit2 = make_criterion(f"learned:model={path},threshold=0.2")
    assert crit2.threshold == 0.2
    assert make_criterion(crit2.spec) == crit2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"format": "other"}, "format"),
        ({"schema": 99}, "schema"),
        ({"kind": "forest"}, "kind"),
        ({"window": 7}, "window"),
        ({"features": ["log_n", "no_such_feature"]}, "features"),
        ({"coef": [1.0]}, "coef"),
        ({"scale": [0.0] * len(FEATURES)}, "scale"),
        ({"threshold": 1.5}, "threshold"),
        ({"persistence": 0}, "persistence"),
        ({"version": ""}, "version"),
    ],
)
def test_bad_model_names_the_field(tmp_path: Path, change: dict, field: str) -> None:
    path = write(tmp_path, tiny_model(**change))
    with pytest.raises(ModelFileError, match=field) as info:
        load_model(path)
    assert str(path) in str(info.value)
    with pytest.raises(CriterionConfigError, match="model"):
        make_criterion("learned", model=str(path))


def test_missing_and_broken_model_files(tmp_path: Path) -> None:
    with pytest.raises(CriterionConfigError, match="no such file"):
        make_criterion("learned", model=str(tmp_path / "absent.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CriterionConfigError, match="not JSON"):
        make_criterion("learned", model=str(bad))


def test_default_model_is_shipped_and_documented() -> None:
    model = load_model()
    assert model.version
    assert model.features == FEATURES
    for key in ("training_data", "source", "labels", "command"):
        assert model.metadata.get(key), key
    assert make_criterion("learned").threshold == model.threshold


# ------------------------------------------------------------ real data
def test_online_equals_offline_on_real_jmh(shared_data: Path) -> None:
    """Stepping `update` over a real 3000-iteration fork gives `evaluate` exactly."""
    data = json.loads(next(iter(sorted((shared_data / "traini-dev" / "timeseries" / "all")
                                       .glob("*.json")))).read_text())
    x = np.asarray(data[0], dtype=float)[:700] * 1e3
    crit = make_criterion("learned")
    ev = crit.evaluate(x)
    for i, v in enumerate(x):
        crit.update(float(v))
        s = ev.statistic[i]
        assert (np.isnan(s) and np.isnan(crit.statistic_)) or crit.statistic_ == s, i
        assert crit.passed_ == ev.passed[i], i
    stop = StopRule().stop_index(crit.evaluate(x * 1e-3))
    assert stop == StopRule().stop_index(ev)


def test_never_stops_in_cold_step_of_megatron(shared_data: Path) -> None:
    """On Megatron-LM's iteration times the rule never stops on the cold first step."""
    import gzip

    with gzip.open(shared_data / "gpu" / "megatron_lm_iteration_time.json.gz") as fh:
        series = json.load(fh)["series"]
    crit = make_criterion("learned")
    checked = 0
    for s in series:
        x = np.asarray(s["iteration_time_s"], dtype=float)
        if x.shape[0] < crit.min_samples or not np.isfinite(x).all():
            continue
        k = StopRule().stop_index(crit.evaluate(x))
        assert k is None or k >= crit.min_samples - 1 >= 1
        checked += 1
    assert checked > 100
