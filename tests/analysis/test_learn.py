"""Training the `learned` rule and the equal-cost comparison (`analysis.learn`, `train-rule`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llenergymeasure.analysis.learn import (
    LabelledRun,
    LearnError,
    cross_validate,
    equal_cost_comparison,
    fit_logistic,
    read_labelled_runs,
    rule_stops,
    train_learned_rule,
)
from llenergymeasure.cli import main
from llenergymeasure.criteria import make_criterion
from llenergymeasure.criteria.learned import feature_matrix, load_model


def run_of(ref: int, n: int = 100, seed: int = 0, tid: str = "a", rid: str = "r") -> LabelledRun:
    """A flat run with 1% noise; its times are 0.1 s per sample."""
    rng = np.random.default_rng(seed)
    x = 10.0 * np.exp(0.01 * rng.standard_normal(n))
    return LabelledRun(tid, rid, x, 0.1 * np.arange(1, n + 1), ref)


def synthetic_runs(n_traces: int = 6, forks: int = 4, n: int = 400) -> list[LabelledRun]:
    """Warmups whose length varies by trace: a decay to the plateau ending at ``start``."""
    runs = []
    for i in range(n_traces):
        start = 20 + 40 * i
        for k in range(forks):
            rng = np.random.default_rng(100 * i + k)
            t = np.arange(n)
            level = 1.0 + np.where(t < start, 1.5 * (1 - t / start), 0.0)
            x = 20.0 * level * np.exp(0.03 * rng.standard_normal(n))
            runs.append(LabelledRun(f"b{i}", f"b{i}#fork{k}", x, 0.02 * (t + 1), start))
    return runs


# --------------------------------------------------------- equal-cost baseline
def test_fixed_count_own_lift_is_zero() -> None:
    """A fixed count compared with itself: lift exactly 0 and a degenerate CI."""
    runs = [run_of(r, seed=i) for i, r in enumerate([0, 5, 10, 30, 50, 70])]
    res = equal_cost_comparison([24] * 6, runs)
    assert res["fixed_n_same_cost"] == 25
    assert res["premature_lift"] == 0.0
    assert res["premature_lift_ci_low"] == res["premature_lift_ci_high"] == 0.0
    assert res["wee_lift"] == 0.0
    assert res["bias_p90_lift"] == 0.0
    assert res["premature_rate"] == pytest.approx(3 / 6)  # 30, 50, 70 > 25
    late = equal_cost_comparison([24] * 6, runs, late_start=50)
    assert late["n_late"] == 2
    assert late["premature_rate_late"] == late["premature_rate_late_fixed"] == 1.0


def test_stop_at_reference_is_never_premature() -> None:
    """Stopping at r - 1 (first measured sample = the reference start) is never premature."""
    refs = [1, 5, 10, 30, 50, 70]
    runs = [run_of(r, seed=i) for i, r in enumerate(refs)]
    res = equal_cost_comparison([r - 1 for r in refs], runs)
    assert res["premature_rate"] == 0.0
    n_fixed = round(np.mean(refs))
    # the rule's |WEE| is 0 everywhere, so its lift is minus the fixed count's mean |WEE|
    assert res["wee_lift"] == pytest.approx(-np.mean(np.abs(n_fixed - np.array(refs))))
    assert res["mean_abs_wee_s"] == 0.0
    assert res["wee_s_lift"] == pytest.approx(-0.1 * np.mean(np.abs(n_fixed - np.array(refs))))
    assert res["fixed_n_same_cost"] == n_fixed
    assert res["premature_rate_fixed"] == pytest.approx(np.mean(np.array(refs) > n_fixed))
    assert res["premature_lift"] == -res["premature_rate_fixed"]
    assert res["premature_lift_ci_high"] <= 0.0


def test_never_stopped_costs_the_whole_run_and_unlabelled_runs_are_left_out() -> None:
    runs = [run_of(10, n=100), run_of(20, n=50, seed=1), run_of(-1, seed=2), run_of(None, seed=3)]
    res = equal_cost_comparison([-1, 29, 5, 5], runs)
    assert res["n_runs"] == 2
    assert res["mean_samples_used"] == (100 + 30) / 2
    assert res["never_stopped_rate"] == 0.5
    with pytest.raises(LearnError, match="stops for"):
        equal_cost_comparison([1, 2], runs)
    with pytest.raises(LearnError, match="beyond"):
        equal_cost_comparison([100, 2, 3, 4], runs)


def test_rule_stops() -> None:
    stats = [np.array([np.nan, 0.2, 0.7, 0.4]), np.array([0.1, 0.2])]
    np.testing.assert_array_equal(rule_stops(stats, 0.5), [2, -1])


# ------------------------------------------------------------------- training
def test_fit_logistic_matches_statsmodels() -> None:
    """Unpenalised, equally weighted: the coefficients of statsmodels' Logit."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -2.0]
    z = 0.3 + X @ np.array([1.0, -0.5, 2.0])
    y = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(float)
    mean, scale, coef, b0 = fit_logistic(X, y, np.ones(2000), l2=0.0)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0).params
    np.testing.assert_allclose(coef / scale, ref[1:], rtol=1e-6)
    assert b0 - np.sum(coef * mean / scale) == pytest.approx(ref[0], rel=1e-6)


def test_fit_logistic_rejects_one_class() -> None:
    with pytest.raises(LearnError, match="all 1"):
        fit_logistic(np.ones((5, 2)), np.ones(5), np.ones(5))


def test_trained_rule_waits_for_long_warmups() -> None:
    """On synthetic decays of known length, the trained rule stops later on longer ones."""
    runs = synthetic_runs()
    model = train_learned_rule(runs, window=20, persistence=10, version="t")
    stops = rule_stops([model.statistic(feature_matrix(r.x, 20)) for r in runs],
                       model.threshold)
    starts = np.array([r.reference_start for r in runs])
    assert np.corrcoef(stops, starts)[0, 1] > 0.5
    assert model.metadata["n_runs"] == len(runs)


def test_cross_validation_groups_by_trace() -> None:
    runs = synthetic_runs()
    oof = cross_validate(runs, n_folds=3, window=20, persistence=10, sweep=(0.5,))
    assert len(oof) == len(runs)
    assert (oof.groupby("trace_id")["fold"].nunique() == 1).all()
    assert set(oof["fold"]) == {0, 1, 2}
    assert "stop_index@0.5" in oof.columns
    with pytest.raises(LearnError, match="folds"):
        cross_validate(runs, n_folds=7, window=20)


def test_training_needs_steady_runs() -> None:
    with pytest.raises(LearnError, match="steady-state"):
        train_learned_rule([run_of(-1), run_of(None)])
    with pytest.raises(LearnError, match="window"):
        train_learned_rule([run_of(3)], window=7)


# ------------------------------------------------------- reading and the CLI
def write_traini(root: Path, runs: list[LabelledRun]) -> None:
    """A corpus in the Traini layout (seconds per op; published start = reference - 1)."""
    (root / "timeseries" / "all").mkdir(parents=True)
    (root / "classification").mkdir()
    by: dict[str, list[LabelledRun]] = {}
    for r in runs:
        by.setdefault(r.trace_id, []).append(r)
    for tid, forks in by.items():
        (root / "timeseries" / "all" / f"{tid}.json").write_text(
            json.dumps([(f.x / 1e3).tolist() for f in forks]))
        starts = [f.reference_start - 1 for f in forks]
        (root / "classification" / f"{tid}.json").write_text(json.dumps(
            {"run": "steady state", "forks": ["steady state"] * len(forks),
             "steady_state_starts": starts}))


def test_read_labelled_runs_and_reference_override(tmp_path: Path) -> None:
    runs = synthetic_runs(n_traces=2, forks=2, n=100)
    write_traini(tmp_path / "c", runs)
    got = read_labelled_runs(tmp_path / "c")
    assert [(r.trace_id, r.run_id, r.reference_start) for r in got] == [
        ("b0", "b0#fork0", 20), ("b0", "b0#fork1", 20), ("b1", "b1#fork0", 60),
        ("b1", "b1#fork1", 60)]
    np.testing.assert_allclose(got[0].x, runs[0].x)
    ref = tmp_path / "ref.csv"
    ref.write_text("trace_id,run_id,reference_start,method\nb1,b1#fork0,7,hand\nb0,b0#fork1,,x\n")
    over = read_labelled_runs(tmp_path / "c", reference=ref)
    assert [r.reference_start for r in over] == [20, None, 7, 60]
    ref.write_text("trace_id,run_id,reference_start\nb1,b1#fork0,2.5\n")
    with pytest.raises(LearnError, match="row 1: reference_start"):
        read_labelled_runs(tmp_path / "c", reference=ref)
    ref.write_text("trace_id,run_id,start\nb1,b1#fork0,3\n")
    with pytest.raises(LearnError, match="reference_start"):
        read_labelled_runs(tmp_path / "c", reference=ref)
    with pytest.raises(LearnError, match="no such"):
        read_labelled_runs(tmp_path / "absent")


def test_train_rule_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_traini(tmp_path / "c", synthetic_runs(n_traces=4, forks=3, n=300))
    out = tmp_path / "model.json"
    argv = ["train-rule", str(tmp_path / "c"), "-o", str(out), "--window", "20",
            "--persistence", "10", "--version", "9.9", "--cv", "2"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "out-of-fold (2 folds by trace)" in text
    model = load_model(out)
    assert model.version == "9.9" and model.window == 20
    assert model.metadata["cross_validation"]["folds"] == 2
    crit = make_criterion(f"learned:model={out}")
    assert crit.min_samples == 29
    assert main(argv) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert main(["train-rule", str(tmp_path / "nothing"), "-o", str(tmp_path / "m2.json")]) == 2
    assert "no such" in capsys.readouterr().err
