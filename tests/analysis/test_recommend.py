"""`recommend`: calibration by grouped cross-validation against the equal-cost fixed count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure import WarmupConfig, warmup_until_converged
from llenergymeasure.analysis import synthetic
from llenergymeasure.analysis.corpus import Corpus, RunRecord
from llenergymeasure.analysis.recommend import (
    Candidate,
    RecommendError,
    candidate_space,
    grouped_folds,
    read_candidates,
    recommend,
)
from llenergymeasure.analysis.replay import replay
from llenergymeasure.cli import main
from llenergymeasure.criteria import StopRule
from llenergymeasure.criteria.base import CriterionConfigError
from llenergymeasure.criteria.registry import criterion_class, make_criterion

RULE = "rolling_cv:window=10,threshold=0.05"


def _series(kind: str, r: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "detectable":  # a noisy warmup, then a quiet steady state
        x = np.r_[20 * (1 + 0.3 * rng.standard_normal(r)),
                  20 * (1 + 0.01 * rng.standard_normal(n - r))]
    else:  # "hidden": a 3% level shift buried in 5% noise
        x = 20 * np.r_[np.full(r, 1.03), np.ones(n - r)] * (1 + 0.05 * rng.standard_normal(n))
    return np.abs(x) + 1.0


def _corpus(kind: str, *, traces: int = 12, runs: int = 2, n: int = 500, seed: int = 0,
            labels: bool = True) -> Corpus:
    """Runs whose steady state starts anywhere in 20..300, labelled with that start."""
    rng = np.random.default_rng(seed)
    recs = []
    for t in range(traces):
        for j in range(runs):
            r = int(rng.integers(20, 300))
            x = _series(kind, r, n, rng)
            recs.append(RunRecord(f"t{t}", str(j), {"latency_ms": x}, np.cumsum(x) / 1e3, 0,
                                  r if labels else None, "synthetic"))
    return Corpus(recs)


@pytest.fixture(scope="module")
def detectable() -> Corpus:
    return _corpus("detectable")


@pytest.fixture(scope="module")
def adaptive_rec(detectable):
    return recommend(detectable, candidates=[RULE], folds=4, n_resamples=300,
                     show_progress=False)


# ------------------------------------------------------------------ known answers
def test_a_rule_that_clearly_beats_the_fixed_count_is_picked(adaptive_rec):
    rec = adaptive_rec
    assert rec.status == "adaptive" and rec.meets_limits
    assert rec.config.criterion == make_criterion(RULE).spec
    assert rec.config.convergence_detection
    assert rec.fixed.versus_fixed == "better"
    assert rec.fixed.premature_lift_ci[1] < 0
    # cheaper than every fixed count that meets the limits on the same runs
    table = rec.candidates
    fixed_ok = table[(table["role"] == "fixed") & table["meets_limits"]]
    assert rec.selected["cost"] < fixed_ok["mean_samples"].min()
    assert "Use the adaptive rule" in rec.describe()


def test_runs_steady_from_the_first_sample_get_a_fixed_count():
    corpus = Corpus.build(synthetic.make_corpus(["flat"], n_traces=6, n=200, n_runs=2))
    rec = recommend(corpus, folds=3, n_resamples=200, show_progress=False)
    assert rec.status == "fixed" and rec.meets_limits
    assert not rec.config.convergence_detection and rec.config.max_prompts == 1
    assert "Use the fixed count" in rec.reason
    assert rec.describe().startswith("Use a fixed warmup count: fixed_count:n=1")


@pytest.mark.parametrize("seed", [0, 1])
def test_warmups_no_rule_can_see_get_a_fixed_count(seed):
    corpus = _corpus("hidden", seed=seed)
    rec = recommend(corpus, candidates=[RULE, "rolling_cv:window=30,threshold=0.02",
                                        "iqr_median"], folds=4, n_resamples=300,
                    show_progress=False)
    assert rec.status == "fixed" and not rec.config.convergence_detection
    assert "fixed count" in rec.reason.lower()
    # the fixed count recommended is the cheapest one meeting the limits
    t = rec.candidates
    ok = t[(t["role"] == "fixed") & t["meets_limits"]]
    assert rec.config.max_prompts == int(ok["max_prompts"].min())


def test_an_adaptive_pick_that_does_not_beat_the_fixed_count_is_replaced(detectable):
    # Without a bootstrap CI (n_resamples=0) nothing shows that the adaptive pick beats
    # the fixed count of the same cost, so a fixed count is recommended instead.
    rec = recommend(detectable, candidates=[RULE], folds=4, n_resamples=0,
                    show_progress=False)
    assert rec.fixed.versus_fixed == "unknown"
    assert rec.status == "fixed"
    assert rec.procedure_pick.startswith(make_criterion(RULE).spec)
    assert "does not beat a fixed count" in rec.reason


def test_nothing_meeting_the_limits_is_said_plainly(detectable):
    rec = recommend(detectable, candidates=[RULE], max_premature=0.0, max_bias=1e-6,
                    folds=4, n_resamples=100, show_progress=False)
    assert not rec.meets_limits
    assert rec.selected["misses"]
    assert "No candidate meets both limits" in rec.reason
    assert "closest" in rec.describe()


def test_oof_figures_lie_in_their_cis_and_match_the_fold_picks(adaptive_rec):
    o = adaptive_rec.oof
    for value, (lo, hi) in ((o.cost, o.cost_ci), (o.premature_rate, o.premature_ci),
                            (o.p90_abs_bias, o.p90_abs_bias_ci)):
        assert lo <= value + 1e-12 and value <= hi + 1e-12
    assert len(adaptive_rec.fold_picks) == 4
    assert o.n_runs == 24 and o.n_traces == 12


def test_fixed_comparison_is_the_summarize_baseline(adaptive_rec, detectable):
    # fixed_n_same_cost is the rounded OOF mean cost; its premature rate is n < r
    f = adaptive_rec.fixed
    assert f.fixed_n_same_cost == int(np.floor(adaptive_rec.oof.cost + 0.5))
    r = np.array([run.reference_start for run in detectable])
    assert f.premature_rate_fixed == pytest.approx(np.mean(f.fixed_n_same_cost < r))


def test_caps_applied_after_replay_equal_a_replay_with_the_cap(detectable):
    rec = recommend(detectable, candidates=[
        WarmupConfig(criterion=RULE, max_prompts=150),
        WarmupConfig(criterion=RULE, max_prompts=500)], folds=4, n_resamples=0,
        show_progress=False)
    t = rec.candidates.set_index("label")
    for cap in (150, 500):
        df = replay(detectable, RULE, stop_rule=StopRule(min_samples=5, max_samples=cap))
        label = f"{make_criterion(RULE).spec} | max_prompts={cap}"
        assert t.loc[label, "mean_samples"] == pytest.approx(df["samples_used"].mean())


# ------------------------------------------------------------------- the written file
def test_the_written_yaml_loads_and_runs_in_the_driver(adaptive_rec, detectable, tmp_path):
    path = adaptive_rec.to_file(tmp_path / "warmup.yaml")
    text = path.read_text()
    assert text.startswith("#") and "fixed_count:n=" in text
    cfg = WarmupConfig.from_file(path)
    assert cfg == adaptive_rec.config
    run = detectable[0]
    values = iter(run.base.tolist())
    res = warmup_until_converged(lambda: next(values), cfg, show_progress=False)
    df = replay([run.base], cfg.criterion, stop_rule=cfg.make_stop_rule().model_copy(
        update={"max_samples": cfg.max_prompts}))
    assert res.iterations_completed == int(df.loc[0, "stop_index"]) + 1


def test_a_json_file_gets_its_provenance_beside_it(adaptive_rec, tmp_path):
    path = adaptive_rec.to_file(tmp_path / "warmup.json")
    assert WarmupConfig.from_file(path) == adaptive_rec.config
    assert "Out of fold" in (tmp_path / "warmup.json.provenance.txt").read_text()


# ------------------------------------------------------------------------ the space
def test_candidate_space_follows_the_declared_attributes():
    space = candidate_space(3000)
    labels = [c.label for c in space]
    assert len(labels) == len(set(labels))
    fixed = [c for c in space if c.is_fixed]
    assert {1, 3000} <= {c.cap for c in fixed}
    for c in space:
        assert c.cap <= 3000
        if c.is_fixed:
            continue
        cls = criterion_class(c.family)
        assert not cls.is_composite and cls.detects_steady_state
        assert cls.cost_class != "heavy"
        if c.role == "floor":
            assert cls.cost_class == "light" and c.floor_s is not None
            assert "min_duration:seconds=" in c.config.criterion
    heavy = {c.family for c in candidate_space(3000, include_heavy=True, floors_s=())} - {
        c.family for c in space}
    assert heavy and all(criterion_class(f).cost_class == "heavy" for f in heavy)


def test_a_sweepable_family_is_swept_around_its_default():
    space = candidate_space(1000, families=["rolling_cv"], floors_s=(), caps=())
    default = WarmupConfig().make_criterion()
    thresholds = sorted({make_criterion(c.config.criterion).params.threshold
                         for c in space if not c.is_fixed and make_criterion(
                             c.config.criterion).params.window == default.params.window})
    base = default.params.threshold
    assert thresholds[0] == pytest.approx(base / 4) and thresholds[-1] == pytest.approx(base * 4)
    assert any(t == pytest.approx(base) for t in thresholds)


def test_no_times_means_no_floors_and_no_time_criteria():
    space = candidate_space(500, times=False)
    assert all(c.role != "floor" for c in space)
    assert all(not criterion_class(c.family).needs_time for c in space if c.family)


def test_read_candidates_from_yaml(tmp_path):
    p = tmp_path / "cands.yaml"
    p.write_text(f"- '{RULE}'\n- {{criterion: iqr_median, max_prompts: 200}}\n"
                 "- {convergence_detection: false, max_prompts: 40}\n")
    cands = read_candidates(p)
    assert [c.is_fixed for c in cands] == [False, False, True]
    assert cands[1].cap == 200 and cands[2].label == "fixed_count:n=40"
    p.write_text("- {criterion: iqr_median, bogus: 1}\n")
    with pytest.raises(RecommendError, match="candidate 1"):
        read_candidates(p)


# ------------------------------------------------------------------------ folds
@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.sampled_from([f"tr{i}" for i in range(15)]), min_size=2, max_size=60),
       folds=st.integers(2, 15), seed=st.integers(0, 2**16))
def test_grouped_folds_never_split_a_trace(ids, folds, seed):
    distinct = sorted(set(ids))
    if folds > len(distinct):
        with pytest.raises(RecommendError, match="folds"):
            grouped_folds(ids, folds, seed)
        return
    fold_of = grouped_folds(ids, folds, seed)
    assert set(fold_of) == set(distinct)  # one fold per trace, so its runs stay together
    sizes = np.bincount(list(fold_of.values()), minlength=folds)
    assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1
    assert grouped_folds(list(reversed(ids)), folds, seed) == fold_of  # order-free


# -------------------------------------------------------------------- bad inputs
def test_no_labelled_run_says_how_to_label():
    with pytest.raises(RecommendError, match="llem-warmup label"):
        recommend(_corpus("detectable", labels=False, traces=3), show_progress=False)


def test_a_reference_frame_supplies_the_labels():
    corpus = _corpus("detectable", labels=False, traces=4)
    truth = _corpus("detectable", traces=4)  # same seed: same series and starts
    ref = truth.reference_frame()
    ref.loc[0, "reference_start"] = pd.NA  # one run left unknown: excluded and counted
    rec = recommend(corpus, ref, candidates=[RULE], folds=2, n_resamples=0,
                    show_progress=False)
    assert rec.n_runs == 7 and rec.n_excluded["no_label"] == 1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"max_premature": 1.5}, "max_premature"),
    ({"max_premature": -0.1}, "max_premature"),
    ({"max_bias": 0.0}, "max_bias"),
    ({"folds": 1}, "folds"),
    ({"folds": 13}, "13 folds need at least 13 labelled traces"),
    ({"cost": "joules"}, "cost"),
    ({"band": "5 parsecs"}, "band"),
])
def test_bad_limits_raise_naming_the_problem(detectable, kwargs, match):
    with pytest.raises(RecommendError, match=match):
        recommend(detectable, show_progress=False, **kwargs)


def test_an_unknown_criterion_candidate_raises(detectable):
    with pytest.raises(CriterionConfigError, match="unknown criterion"):
        recommend(detectable, candidates=["no_such_rule"], show_progress=False)


def test_a_disabled_candidate_is_refused():
    with pytest.raises(RecommendError, match="enabled=False"):
        Candidate.of(WarmupConfig(enabled=False))


# --------------------------------------------------------------------------- CLI
def _save(corpus: Corpus, folder) -> None:
    from llenergymeasure.traces import RunInfo, Trace, TraceMetadata, save_trace

    folder.mkdir(parents=True, exist_ok=True)
    for tid in corpus.trace_ids:
        rows, infos = [], []
        for run in (r for r in corpus if r.trace_id == tid):
            ends = np.round(run.times * 1e9).astype(np.int64)
            starts = np.r_[0, ends[:-1]]
            rows += [{"run_id": run.run_id, "index": i, "t_start_ns": int(s),
                      "t_end_ns": int(e), "wall_start_ns": None, "latency_ms": (e - s) / 1e6,
                      "ok": True, "error": None} for i, (s, e) in enumerate(
                          zip(starts, ends, strict=True))]
            infos.append(RunInfo(run_id=run.run_id, reference_start=run.reference_start))
        trace = Trace.from_rows(rows, TraceMetadata(runs=infos, tags={"trace_id": tid}))
        save_trace(trace, folder / f"{tid}.jsonl")


def test_cli_writes_a_loadable_warmup_yaml(detectable, tmp_path, capsys):
    _save(detectable, tmp_path / "traces")
    out = tmp_path / "warmup.yaml"
    table = tmp_path / "candidates.csv"
    code = main(["recommend", str(tmp_path / "traces"), "-c", RULE, "--folds", "4",
                 "--n-resamples", "200", "-q", "-o", str(out), "--table", str(table)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Use the adaptive rule" in printed and "fixed_count:n=" in printed
    cfg = WarmupConfig.from_file(out)
    assert cfg.criterion == make_criterion(RULE).spec
    assert len(pd.read_csv(table)) > 1
    # a second run without --overwrite refuses to replace the file
    assert main(["recommend", str(tmp_path / "traces"), "-c", RULE, "-q", "-o",
                 str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--max-premature", "1.2"], "max-premature"),
    (["--folds", "40"], "40 folds need"),
    (["-c", "no_such_rule"], "unknown criterion"),
    (["--band", "5 parsecs"], "band"),
    (["--reference", "missing.csv"], "no reference file"),
])
def test_cli_bad_input_is_a_usage_error(detectable, tmp_path, capsys, extra, message):
    _save(_corpus("detectable", traces=3), tmp_path / "traces")
    code = main(["recommend", str(tmp_path / "traces"), "-q", "-o",
                 str(tmp_path / "w.yaml"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_without_labels_points_to_label(tmp_path, capsys):
    _save(_corpus("detectable", traces=3, labels=False), tmp_path / "traces")
    code = main(["recommend", str(tmp_path / "traces"), "-q", "-o", str(tmp_path / "w.yaml")])
    assert code == 2 and "llem-warmup label" in capsys.readouterr().err
