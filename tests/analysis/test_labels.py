"""`analysis.labels`: labelling every run of a corpus."""

from __future__ import annotations

import concurrent.futures as cf
import csv
import json
import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llenergymeasure.analysis.corpus import Corpus, read_reference
from llenergymeasure.analysis.labels import (
    LABEL_COLUMNS,
    ConsensusParams,
    LabelMethodError,
    apply_labels,
    consensus_label,
    label_methods,
    label_runs,
    labels_by_run,
    make_labeller,
    median_of_members,
    settle_start,
    write_labels,
)
from llenergymeasure.analysis.reference import TrainiParams, traini_label
from llenergymeasure.criteria.registry import available_criteria, criterion_class, make_criterion


def _shift(n_warm: int, n: int, seed: int = 0, drop: float = 10.0) -> np.ndarray:
    """A level shift at `n_warm`: `10 + drop` before, 10 after, 2 % noise."""
    rng = np.random.default_rng(seed)
    x = np.full(n, 10.0)
    x[:n_warm] += drop
    return x * rng.lognormal(0, 0.02, n)


# ------------------------------------------------------------------ known answers
@pytest.mark.parametrize(("n_warm", "n"), [(20, 60), (60, 300), (500, 3000)])
def test_consensus_finds_a_level_shift(n_warm: int, n: int) -> None:
    lab = consensus_label(_shift(n_warm, n))
    assert abs(lab.reference_start - n_warm) <= max(2, n // 100)
    assert set(lab.members) == {"settle", "max_ess", "mser"}


def test_settle_on_a_flat_series_starts_at_zero_and_follows_the_last_level() -> None:
    assert settle_start(np.full(200, 5.0)) == 0
    x = _shift(0, 400)
    x[-100:] *= 2  # the band is the last fifth: the series enters it at 300
    start = settle_start(x, ConsensusParams(band_widen=0.0, tail_fraction=0.2))
    assert 300 <= start <= 300 + 0.05 * 400  # within one smoothing window
    assert settle_start(np.r_[np.full(60, 1.0), np.full(40, 2.0)],
                        ConsensusParams(persist_fraction=0.5, band_widen=0.0,
                                        tail_fraction=0.1)) == -1


def test_median_of_members() -> None:
    assert median_of_members({"a": 10, "b": None, "c": 30}) == 20
    assert median_of_members({"a": 10, "b": 40, "c": 30}) == 30
    assert median_of_members({"a": None}) == -1


def test_traini_method_equals_traini_label() -> None:
    xs = [_shift(40, 240, seed=s) for s in range(3)]
    params = TrainiParams(n_resamples=500, steady_fraction=0.2)
    frame = label_runs(xs, params)
    for x, got in zip(xs, frame["reference_start"], strict=True):
        # bare arrays are latencies in ms: the published pipeline reads them in seconds
        assert got == traini_label(x / 1e3, params).reference_start
    again = label_runs(xs, "traini:n_resamples=500,steady_fraction=0.2")
    assert again["reference_start"].tolist() == frame["reference_start"].tolist()
    assert set(again["method"]) == {"traini:n_resamples=500,steady_fraction=0.2"}


def test_traini_on_a_crops_path_kneed_refuses_takes_the_fallback(shared_data, caplog) -> None:
    """A fork whose CROPS path (in seconds from the importer's ms) has lists of different
    lengths: kneed would raise; the labeller takes the 15 log n fallback and says so."""
    name = ("JCTools__JCTools#org.jctools.jmh.baseline.SingleThreadedPoll.poll"
            "#qType=MpscArrayQueue.json")
    corpus = Corpus.build(shared_data / "traini-dev" / "timeseries" / "all" / name,
                          format="traini")
    run = next(r for r in corpus if r.run_id.endswith("fork3"))
    with caplog.at_level("WARNING"):
        frame = label_runs(corpus.select([run.key]), "traini")
    assert frame["reference_start"].tolist() == [run.reference_start]  # the published 0
    assert "no knee, penalty" in caplog.text


@pytest.mark.parametrize("spec", ["max_ess", "mser5", "red_sse", "mser5:batch_size=1"])
def test_truncation_method_equals_truncate(spec: str) -> None:
    xs = [_shift(30, 200, seed=s) for s in range(3)] + [np.r_[np.full(150, 10.0), 20.0 *
                                                            np.ones(50)]]
    frame = label_runs(xs, spec)
    crit = make_criterion(spec)
    for x, got in zip(xs, frame["reference_start"], strict=True):
        cut = crit.truncate(x).index
        assert got == (-1 if cut is None else cut)
    assert set(frame["method"]) == {crit.spec}


def test_methods_are_the_truncation_criteria_and_ours() -> None:
    methods = label_methods()
    truncating = {n for n in available_criteria() if criterion_class(n).yields_truncation}
    assert set(methods) == truncating | {"traini", "consensus"}
    for name in methods:
        assert make_labeller(name).spec.split(":")[0] == name


# ------------------------------------------------------------------ properties
series = st.lists(st.floats(1.0, 100.0, allow_nan=False), min_size=0, max_size=80)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(series, min_size=1, max_size=5), st.sampled_from(["consensus", "max_ess",
                                                                    "mser5"]))
def test_one_row_per_run_and_round_trip(tmp_path_factory, runs, method) -> None:
    corpus = Corpus.build([np.asarray(r) for r in runs])
    frame = label_runs(corpus, method)
    assert list(frame.columns) == list(LABEL_COLUMNS)
    assert list(zip(frame["trace_id"], frame["run_id"], strict=True)) == corpus.keys()
    for run, start in zip(corpus, frame["reference_start"], strict=True):
        assert pd.isna(start) or -1 <= start < max(run.n, 1)
    path = write_labels(frame, tmp_path_factory.mktemp("labels") / "l.csv")
    back = read_reference(path)
    pd.testing.assert_frame_equal(back, read_reference(frame))
    labelled = corpus.with_reference(path)
    assert [r.reference_start for r in labelled] == [
        None if pd.isna(s) else int(s) for s in frame["reference_start"]]


@settings(max_examples=20, deadline=None)
@given(st.integers(5, 200), st.integers(3, 30), st.floats(2.0, 50.0))
def test_consensus_label_is_within_the_run(n: int, warm: int, drop: float) -> None:
    x = _shift(min(warm, n - 1), n, drop=drop)
    lab = consensus_label(x, min_samples=4) if n >= 4 else consensus_label(x)
    assert lab.reference_start is None or -1 <= lab.reference_start < n


def test_executor_gives_the_same_labels() -> None:
    xs = {f"t{i}": _shift(10 + i, 120, seed=i) for i in range(6)}
    here = label_runs(xs, "consensus")
    with cf.ThreadPoolExecutor(2) as pool:
        there = label_runs(xs, "consensus", executor=pool, chunk_size=1)
    pd.testing.assert_frame_equal(here, there)


def test_progress_bar_is_advanced_per_run() -> None:
    class Bar:
        n = 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    label_runs([_shift(10, 50), _shift(10, 60)], "max_ess", progress=bar)
    assert bar.n == 2


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(("method", "words"), [
    ("nope", ["'nope'", "consensus", "traini", "max_ess"]),
    ("rolling_cv", ["'rolling_cv'", "truncation", "max_ess"]),
    ("traini:bogus=1", ["'traini'", "'bogus'", "steady_fraction"]),
    ("traini:steady_fraction=2", ["'traini'", "steady_fraction"]),
    ("consensus:members=settle+x", ["'consensus'", "members"]),
    ("max_ess:nope=1", ["max_ess", "'nope'"]),
    ("all_of(max_ess,rolling_cv)", ["'all_of'"]),
])
def test_bad_methods_name_the_method_and_the_choices(method: str, words: list[str]) -> None:
    with pytest.raises(LabelMethodError) as err:
        make_labeller(method)
    for w in words:
        assert w in str(err.value)


def test_short_and_bad_runs_are_unknown_not_a_crash(caplog) -> None:
    good = _shift(20, 120)
    bad = good.copy()
    bad[7] = np.nan
    with caplog.at_level(logging.WARNING, logger="llenergymeasure.analysis.labels"):
        frame = label_runs({"good": good, "short": good[:3], "bad": bad}, "consensus")
    got = dict(zip(frame["trace_id"], frame["reference_start"], strict=True))
    assert got["good"] >= 0 and pd.isna(got["short"]) and pd.isna(got["bad"])
    reasons = dict(zip(frame["trace_id"], frame["reason"], strict=True))
    assert "3 samples" in reasons["short"] and "sample 7" in reasons["bad"]
    assert "'short'" in caplog.text and "'bad'" in caplog.text
    traini = label_runs({"short": good[:3]}, "traini")
    assert pd.isna(traini["reference_start"].iloc[0])


def test_write_labels_needs_the_reference_columns(tmp_path) -> None:
    with pytest.raises(ValueError, match="reference_start"):
        write_labels(pd.DataFrame({"trace_id": ["a"], "run_id": ["0"]}), tmp_path / "x.csv")


# ------------------------------------------------------------------ labels into traces
def test_apply_labels_keeps_data_and_existing_labels() -> None:
    from llenergymeasure.traces import RunInfo, Trace, TraceMetadata

    rows = [{"run_id": rid, "index": i, "t_start_ns": None, "t_end_ns": None,
             "wall_start_ns": None, "latency_ms": float(v), "ok": True, "error": None}
            for rid in ("a", "b") for i, v in enumerate(_shift(5, 40))]
    meta = TraceMetadata(runs=[RunInfo(run_id="a", reference_start=3), RunInfo(run_id="b")])
    trace = Trace.from_rows(rows, meta)
    labels = labels_by_run(pd.DataFrame({"trace_id": ["t", "t"], "run_id": ["a", "b"],
                                         "reference_start": pd.array([7, 9], dtype="Int64")}))
    kept, counts = apply_labels(trace, "t", labels)
    assert [r.reference_start for r in kept.metadata.runs] == [3, 9]
    assert counts == {"set": 1, "overwritten": 0, "kept": 1, "unchanged": 0}
    assert kept.data is trace.data
    over, counts = apply_labels(trace, "t", labels, overwrite=True)
    assert [r.reference_start for r in over.metadata.runs] == [7, 9]
    assert counts["overwritten"] == 1


# ------------------------------------------------------------------ real data
def test_consensus_beats_a_constant_on_the_people_labels(shared_data) -> None:
    root = shared_data / "traini-dev"
    path = root / "human_starts.csv"
    if not path.is_file():
        pytest.skip(f"no {path}")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    xs = [np.asarray(json.loads((root / "timeseries" / "all" / r["benchmark"]).read_text())
                     [int(r["fork"])]) for r in rows]
    truth = np.array([int(r["median"]) for r in rows])
    frame = label_runs({f"s{i:02d}": x for i, x in enumerate(xs)}, "consensus")
    got = frame["reference_start"].to_numpy(dtype=float, na_value=np.nan)
    got = np.where(np.isnan(got) | (got < 0), 3000, got)
    ours = np.median(np.abs(got - truth))
    # the trivial labeller: the median of the other people's medians, leave-one-out
    const = np.median([abs(np.median(np.delete(truth, j)) - truth[j])
                       for j in range(len(truth))])
    assert ours < const
