"""Scoring: known answers, properties and the Pareto front against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.analysis.corpus import Corpus, RunRecord
from llenergymeasure.analysis.replay import replay
from llenergymeasure.analysis.scoring import (
    DEFAULT_BAND,
    EQUAL_COST_COLUMNS,
    Band,
    ScoringError,
    bias_ci,
    effect_size,
    fixed_count_frontier,
    fixed_count_scores,
    pareto_front,
    row_scores,
    score,
    summarize,
)
from llenergymeasure.analysis.tables import format_value, to_latex, to_markdown


def _corpus(x: np.ndarray, ref: int | None, tid: str = "t") -> Corpus:
    """One run 't'/'r' whose samples last their value in ms."""
    return Corpus([RunRecord(tid, "r", {"latency_ms": x}, np.cumsum(x) / 1e3, 0, ref)])


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
    runs = _corpus(x, 10)
    s = score(_frame([9, 3, 30, None]), runs, band="5s", n_resamples=200)
    assert s["wee"].isna().iloc[3]
    assert s["wee"].iloc[:3].tolist() == [0, -6, 21]
    np.testing.assert_allclose(s["wee_s"].iloc[:3], [0.0, -6.0, 21.0])
    assert s["waste_band"].tolist()[:3] == ["exact", "under", "over"]
    assert s["premature"].tolist() == [False, True, False, False]
    assert s["outcome"].tolist() == ["exact", "premature", "over", "never_stopped"]
    assert s["reference_start_s"].iloc[0] == 10.0


def test_band_edges_and_units() -> None:
    sec = Band.parse("5s")
    assert sec.classify([50, -50, 49, np.nan], [5.0, -5.0, 4.999, np.nan], [100] * 4).tolist() \
        == ["over", "under", "exact", None]
    # In samples: a stop 100 samples late is not exact, whatever the sample duration.
    assert Band.parse("10").classify([100, 9, -10], [0.1, 0.1, 0.1], [1000] * 3).tolist() \
        == ["over", "exact", "under"]
    assert Band.parse("2%").classify([19, 20], [np.nan] * 2, [1000, 1000]).tolist() \
        == ["exact", "over"]
    # The default: 5 s or 50 samples, whichever is tighter; seconds skipped without times.
    assert DEFAULT_BAND.classify([100, 49, 49], [2.0, 4.9, np.nan], [1000] * 3).tolist() \
        == ["over", "exact", "exact"]
    assert DEFAULT_BAND.classify([40], [6.0], [1000]).tolist() == ["over"]
    assert str(Band.parse("5s+50")) == "5s+50" and Band.parse("250ms").seconds == 0.25
    for bad in ("5 days", "", "-3", "2.5", "150%"):
        with pytest.raises(ScoringError, match="band"):
            Band.parse(bad)


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
    s = score(_frame([249]), _corpus(same, 0), n_resamples=500)
    assert s["effect"].iloc[0] == 0.0


def test_biased_stop_has_effect() -> None:
    x = np.concatenate([np.full(50, 20.0), np.full(450, 10.0)])
    x = x * np.random.default_rng(1).normal(1, 0.01, x.size)
    s = score(_frame([9]), _corpus(x, 50), n_resamples=500)
    # post-stop mean includes 40 slow samples: bias 40*10/(490*10) ~ 8.2 %
    assert s["relative_bias"].iloc[0] == pytest.approx(40 / 490, rel=0.05)
    assert s["effect"].iloc[0] > 0.05 and s["premature"].iloc[0]


def test_no_reference_and_errors() -> None:
    x = np.ones(20)
    s = score(_frame([5]), _corpus(x, -1))
    assert s["outcome"].iloc[0] == "no_reference" and not s["has_reference"].iloc[0]
    with pytest.raises(ScoringError, match="stop_index 50"):
        score(_frame([50]), _corpus(x, 0))
    with pytest.raises(ScoringError, match="no trace 't' run 'r'"):
        score(_frame([1]), _corpus(x, 0, tid="u"))


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
    a = score(frame, _corpus(x, ref), n_resamples=100, seed=3)
    b = score(frame, _corpus(x * scale, ref), n_resamples=100, seed=3)
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
    runs = _corpus(x, 10)
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


# ------------------------------------------------------------ the equal-cost baseline
def _many(refs: list[int], n: int = 200, seed: int = 0) -> Corpus:
    """Runs of `n` samples, a slow warmup of `ref` samples then steady, 1 ms-ish samples."""
    rng = np.random.default_rng(seed)
    out = []
    for i, r in enumerate(refs):
        x = np.r_[np.full(r, 3.0), np.ones(n - r)] * rng.lognormal(0, 0.01, n)
        out.append(RunRecord(f"t{i:02d}", "r", {"latency_ms": x}, np.cumsum(x) / 1e3, 0, r))
    return Corpus(out)


def _frame_of(corpus: Corpus, spec: str, stops: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "trace_id": [r.trace_id for r in corpus], "run_id": [r.run_id for r in corpus],
        "criterion": spec.split(":")[0], "spec": spec,
        "stop_index": pd.array(stops, dtype="Int64"),
        "samples_used": [r.n if k is None else k + 1 for r, k in zip(corpus, stops,
                                                                      strict=True)],
    })


def test_a_fixed_counts_own_lift_is_exactly_zero() -> None:
    refs = [0, 5, 12, 40, 80, 3, 60, 25]
    corpus = _many(refs)
    res = replay(corpus, "fixed_count:n=30", stop_rule=None)
    summ = summarize(score(res, corpus, n_resamples=0), corpus=corpus, n_resamples=200)
    row = summ.iloc[0]
    assert row["fixed_n_same_cost"] == 30
    assert row["premature_lift"] == 0.0 and row["wee_lift"] == 0.0
    assert row["bias_p90_lift"] == 0.0
    assert row["premature_lift_ci_low"] == 0.0 == row["premature_lift_ci_high"]
    assert row["premature_rate_fixed"] == row["premature_rate"] == np.mean(np.array(refs) > 30)
    assert row["versus_fixed"] == "not distinguishable"
    assert set(EQUAL_COST_COLUMNS) <= set(summ.columns)


def test_a_rule_stopping_at_the_reference_start_is_never_premature() -> None:
    refs = [1, 5, 12, 40, 80, 3, 60, 25, 100, 150]
    corpus = _many(refs)
    oracle = _frame_of(corpus, "oracle", [r - 1 for r in refs])
    scored = score(oracle, corpus, n_resamples=0)
    assert (scored["wee"] == 0).all() and not scored["premature"].any()
    summ = summarize(scored, corpus=corpus, n_resamples=500, late_start=50)
    row = summ.iloc[0]
    assert row["premature_rate"] == 0.0 and row["exact_rate"] == 1.0
    # Equal cost: round(mean(refs)) = 48 samples, premature on the 4 runs with r > 48.
    assert row["fixed_n_same_cost"] == round(np.mean(refs)) == 48
    assert row["premature_rate_fixed"] == 0.4
    assert row["premature_lift"] == pytest.approx(-0.4)
    assert row["premature_lift_ci_high"] < 0 and row["versus_fixed"] == "better"
    assert row["n_late"] == 4 and row["premature_rate_late"] == 0.0
    assert row["premature_rate_late_fixed"] == 1.0
    # Mean |WEE|: 0 for the oracle, mean |48 - r| for the fixed count.
    assert row["wee_lift"] == pytest.approx(-np.mean(np.abs(48 - np.array(refs))))


def test_hand_computed_small_case() -> None:
    # Four runs, references 2, 4, 6, 8; the rule stops at indices 0, 4, 4, 9
    # (samples used 1, 5, 5, 10: mean 5.25 -> fixed n = 5).
    corpus = _many([2, 4, 6, 8], n=20)
    frame = _frame_of(corpus, "rule", [0, 4, 4, 9])
    summ = summarize(score(frame, corpus, n_resamples=0), corpus=corpus, n_resamples=0)
    row = summ.iloc[0]
    assert row["fixed_n_same_cost"] == 5
    # Rule premature: k + 1 < r -> 1 < 2 yes, 5 < 4 no, 5 < 6 yes, 10 < 8 no: 0.5.
    # Fixed 5 premature: 5 < r -> r = 6, 8: 0.5. Lift 0; CIs off (n_resamples=0).
    assert row["premature_rate"] == 0.5 and row["premature_rate_fixed"] == 0.5
    assert row["premature_lift"] == 0.0 and np.isnan(row["premature_lift_ci_low"])
    # |WEE| rule: |1-2|, |5-4|, |5-6|, |10-8| = 1,1,1,2 -> 1.25; fixed: 3,1,1,3 -> 2.
    assert row["wee_lift"] == pytest.approx(1.25 - 2.0)
    fx = fixed_count_scores(corpus, 5)
    assert fx["premature"].tolist() == [False, False, True, True]
    assert fx["wee"].tolist() == [3, 1, -1, -3]


def test_fixed_count_frontier_known_points() -> None:
    refs = [0, 10, 20, 30]
    corpus = _many(refs, n=50)
    front = fixed_count_frontier(corpus, [1, 15, 31, 60])
    assert front["n"].tolist() == [1, 15, 31, 60]
    assert front["premature_rate"].tolist() == [0.75, 0.5, 0.0, 0.0]
    assert front["mean_abs_wee"].tolist() == [np.mean([1, 9, 19, 29]), np.mean([15, 5, 5, 15]),
                                              np.mean([31, 21, 11, 1]), np.mean([60, 50, 40, 30])]
    assert front["samples_used"].tolist() == [1.0, 15.0, 31.0, 50.0]
    # A fixed count past a run's end measures nothing after it: no bias known.
    assert np.isnan(front["p90_abs_bias"].iloc[3])
    # The rows of the frontier are those of fixed_count_scores.
    fx = fixed_count_scores(corpus, 15)
    assert front["premature_rate"].iloc[1] == fx["premature"].mean()


def test_score_without_resamples_and_vectorised_rows_equal_row_scores() -> None:
    corpus = _many([3, 10, 30, 0], n=80)
    res = replay(corpus, ["fixed_count:n=20", "rolling_cv:window=5,threshold=0.05"])
    scored = score(res, corpus, n_resamples=0)
    assert scored["bias_ci_low"].isna().all() and scored["effect"].isna().all()
    derived = row_scores(res)
    pd.testing.assert_series_equal(scored["wee"], derived["wee"])
    np.testing.assert_allclose(scored["wee_s"], derived["wee_s"], rtol=1e-12)
    np.testing.assert_allclose(scored["relative_bias"], derived["relative_bias"], rtol=1e-9)
    # Per row against the definitions.
    for _, row in scored[scored["has_reference"] & ~scored["never_stopped"]].iterrows():
        run = corpus.get(row["trace_id"], row["run_id"])
        k, r, x = int(row["stop_index"]), int(row["reference_start"]), run.base
        assert row["wee"] == k + 1 - r
        assert row["relative_bias"] == pytest.approx(x[k + 1:].mean() / x[r:].mean() - 1)


def test_cost_error_figure_draws_the_fixed_count_curve() -> None:
    from llenergymeasure.analysis.figures import figure_cost_error, fixed_count_curve

    corpus = _many([0, 10, 20, 30], n=50)
    curve = fixed_count_curve(corpus, counts=[1, 15])
    front = fixed_count_frontier(corpus, [1, 15])
    assert curve["cost"].tolist() == front["median_seconds_used"].tolist()
    assert curve["error"].tolist() == front["median_abs_wee_s"].tolist()
    fig = figure_cost_error(replay(corpus, "fixed_count:n=15"), corpus)
    assert "fixed count (same runs)" in [ln.get_label() for ln in fig.axes[0].get_lines()]
