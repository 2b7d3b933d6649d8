"""Scoring: known answers, properties and the Pareto front against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.analysis.scoring import (
    RunSeries,
    ScoringError,
    bias_ci,
    effect_size,
    pareto_front,
    score,
    summarize,
    waste_band,
)
from llenergymeasure.analysis.tables import format_value, to_latex, to_markdown


def _frame(stops: list[int | None], ref: int | None = None) -> pd.DataFrame:
    d = {
        "trace_id": ["t"] * len(stops),
        "run_id": ["r"] * len(stops),
        "criterion": ["c"] * len(stops),
        "spec": [f"c:{i}" for i in range(len(stops))],
        "stop_index": pd.array(stops, dtype="Int64"),
    }
    return pd.DataFrame(d)


def test_known_wee_and_waste() -> None:
    # 1 s per sample: t_i = i + 1 ; reference start 10 -> reference time 10 s
    x = np.full(100, 1000.0)
    runs = {("t", "r"): RunSeries(x, None, 10)}
    s = score(_frame([9, 3, 30, None]), runs, tolerance_s=5.0, n_resamples=200)
    assert s["wee"].isna().iloc[3]
    assert s["wee"].iloc[:3].tolist() == [0, -6, 21]
    np.testing.assert_allclose(s["wee_s"].iloc[:3], [0.0, -6.0, 21.0])
    assert s["waste_band"].tolist()[:3] == ["exact", "under", "over"]
    assert s["premature"].tolist() == [False, True, False, False]
    assert s["outcome"].tolist() == ["exact", "premature", "over", "never_stopped"]
    assert s["reference_start_s"].iloc[0] == 10.0


def test_band_edges() -> None:
    assert waste_band(5.0) == "over" and waste_band(-5.0) == "under"
    assert waste_band(4.999) == "exact" and waste_band(float("nan")) is None
    assert waste_band(2.0, tolerance_s=1.0) == "over"


def test_effect_zero_when_ci_holds_one() -> None:
    assert effect_size(0.98, 1.01) == (0.0, 0.0)
    eff, lb = effect_size(1.10, 1.20)
    assert eff == pytest.approx(0.15) and lb == pytest.approx(0.10)
    eff, lb = effect_size(0.80, 0.90)
    assert eff == pytest.approx(0.15) and lb == pytest.approx(0.10)
    rng = np.random.default_rng(0)
    same = rng.normal(10, 1, 500)
    lo, hi = bias_ci(same[:250], same[250:], n_resamples=500)
    assert lo <= 1 <= hi
    s = score(_frame([249]), {("t", "r"): RunSeries(same, None, 0)}, n_resamples=500)
    assert s["effect"].iloc[0] == 0.0


def test_biased_stop_has_effect() -> None:
    x = np.concatenate([np.full(50, 20.0), np.full(450, 10.0)])
    x = x * np.random.default_rng(1).normal(1, 0.01, x.size)
    s = score(_frame([9]), {("t", "r"): RunSeries(x, None, 50)}, n_resamples=500)
    # post-stop mean includes 40 slow samples: bias 40*10/(490*10) ~ 8.2 %
    assert s["relative_bias"].iloc[0] == pytest.approx(40 / 490, rel=0.05)
    assert s["effect"].iloc[0] > 0.05 and s["premature"].iloc[0]


def test_no_reference_and_errors() -> None:
    x = np.ones(20)
    s = score(_frame([5]), {("t", "r"): RunSeries(x, None, -1)})
    assert s["outcome"].iloc[0] == "no_reference" and not s["has_reference"].iloc[0]
    with pytest.raises(ScoringError, match="stop_index 50"):
        score(_frame([50]), {("t", "r"): RunSeries(x, None, 0)})
    with pytest.raises(ScoringError, match="no trace 't' run 'r'"):
        score(_frame([1]), {("u", "r"): RunSeries(x, None, 0)})


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(20, 200),
    ref=st.integers(0, 15),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_properties_wee_zero_and_scale_invariance(
    n: int, ref: int, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(3, 0.2, n)
    stop = max(ref - 1, 0) if ref > 0 else 0
    frame = _frame([stop])
    a = score(frame, {("t", "r"): RunSeries(x, None, ref)}, n_resamples=100, seed=3)
    b = score(frame, {("t", "r"): RunSeries(x * scale, None, ref)}, n_resamples=100, seed=3)
    if ref > 0:
        assert a["wee"].iloc[0] == 0 and abs(a["wee_s"].iloc[0]) < 1e-12
    np.testing.assert_allclose(a["relative_bias"], b["relative_bias"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a["bias_ci_low"], b["bias_ci_low"], rtol=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=12))
def test_pareto_front_matches_brute_force(points: list[tuple[int, int]]) -> None:
    df = pd.DataFrame(points, columns=["median_seconds_used", "median_abs_wee_s"])
    front = pareto_front(df)
    expect = set()
    for i, (c, q) in enumerate(points):
        dominated = any(
            (c2 <= c and q2 <= q) and (c2 < c or q2 < q) for j, (c2, q2) in enumerate(points)
        )
        if not dominated:
            expect.add(i)
    assert set(front.index) == expect
    assert list(front["median_seconds_used"]) == sorted(front["median_seconds_used"])


def test_summarize_rates_and_medians() -> None:
    x = np.full(100, 1000.0)
    runs = {("t", "r"): RunSeries(x, None, 10)}
    frame = pd.concat([_frame([9, 3, 30, None]).assign(spec="s1"),
                       _frame([9, 12]).assign(spec="s2")], ignore_index=True)
    frame["seconds_used"] = [10.0, 4.0, 31.0, 100.0, 10.0, 13.0]
    frame["samples_used"] = [10, 4, 31, 100, 10, 13]
    s = summarize(score(frame, runs, n_resamples=100), n_resamples=200)
    s1 = s.set_index("spec").loc["s1"]
    assert s1["n_runs"] == 4 and s1["never_stopped_rate"] == 0.25
    assert s1["premature_rate"] == 0.25 and s1["over_rate"] == 0.25
    assert s1["median_abs_wee_s"] == 6.0  # |0|, |-6|, |21|
    assert s1["median_abs_wee_s_lo"] <= 6.0 <= s1["median_abs_wee_s_hi"]
    s2 = s.set_index("spec").loc["s2"]
    assert s2["exact_rate"] == 1.0


def test_tables() -> None:
    df = pd.DataFrame({"spec": ["a_b", "c%"], "v": [0.123456, float("nan")], "ok": [True, False],
                       "n": [3, 4]})
    md = to_markdown(df)
    assert "| a_b | 0.123 | yes | 3 |" in md and "---:" in md and "–" in md
    tex = to_latex(df, caption="Cost & quality", label="tab:x")
    assert r"\toprule" in tex and r"a\_b & 0.123 & yes & 3 \\" in tex and r"c\%" in tex
    assert r"\caption{Cost \& quality}" in tex
    assert format_value(1234567.0) == "1.23e+06" and format_value(12.0) == "12"
