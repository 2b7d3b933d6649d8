"""Tests of the corpus model: unique, stable run ids, times only when known, references.

Each reproduction of issue 8's "runs of different files are merged" is a test here:
two folders written by `llem-warmup simulate` (same file names), the pyperf files that
name their runs alike, and the same inputs given in another order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llenergymeasure.analysis import scoring
from llenergymeasure.analysis.corpus import Corpus, CorpusError, RunRecord, read_reference
from llenergymeasure.analysis.figures import trace_stops_data
from llenergymeasure.analysis.replay import replay
from llenergymeasure.cli import main
from llenergymeasure.traces import load_trace, load_traces, save_trace
from llenergymeasure.traces.model import RunInfo, Trace, TraceMetadata


def _trace(x: np.ndarray, run_ids: tuple[str, ...] = ("r0",), ref: int | None = None,
           tags: dict[str, str] | None = None) -> Trace:
    rows, runs = [], []
    for rid in run_ids:
        clock = 0
        for i, v in enumerate(x):
            dur = round(float(v) * 1e6)
            rows.append({"run_id": rid, "index": i, "t_start_ns": clock, "t_end_ns": clock + dur,
                         "wall_start_ns": None, "latency_ms": dur / 1e6, "ok": True,
                         "error": None})
            clock += dur
        runs.append(RunInfo(run_id=rid, reference_start=ref))
    return Trace.from_rows(rows, TraceMetadata(runs=runs, tags=tags or {}))


def _simulate(folder, seed: int) -> None:
    assert main(["simulate", "--kind", "decay", "--n", "120", "--traces", "2",
                 "--seed", str(seed), "--out", str(folder)]) == 0


# ------------------------------------------------------------------ the reproductions
def test_two_simulated_folders_with_the_same_names_give_distinct_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _simulate(a, 1)
    _simulate(b, 2)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    corpus = Corpus.build([a, b])
    assert len(corpus) == 4 and len(set(corpus.keys())) == 4
    assert {t.split("/")[0] for t in corpus.trace_ids} == {"a", "b"}
    # Each run keeps its own data and its own reference start.
    ra, rb = corpus.get("a/synthetic_000", "run0"), corpus.get("b/synthetic_000", "run0")
    assert not np.array_equal(ra.base, rb.base)
    # The CLI replays four runs, and compare scores each against its own reference.
    out = tmp_path / "res.parquet"
    assert main(["replay", str(a), str(b), "-c", "fixed_count:n=10", "-o", str(out), "-q"]) == 0
    res = pd.read_parquet(out)
    assert len(res[["trace_id", "run_id"]].drop_duplicates()) == 4
    assert main(["compare", str(out), "--traces", str(b), str(a), "-o",
                 str(tmp_path / "cmp")]) == 0
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "fixed count of the same cost" in report and "exact within ±5 s" in report
    scored = pd.read_parquet(tmp_path / "cmp" / "scored.parquet")
    for _, row in scored.iterrows():
        run = corpus.get(row["trace_id"], row["run_id"])
        assert row["reference_mean"] == pytest.approx(run.base[run.reference_start:].mean())


def test_one_folder_and_files_keep_the_plain_ids(tmp_path):
    _simulate(tmp_path / "a", 1)
    assert Corpus.build(tmp_path / "a").trace_ids == ["synthetic_000", "synthetic_001"]
    files = sorted((tmp_path / "a").iterdir())
    assert Corpus.build(files[::-1]).trace_ids == ["synthetic_000", "synthetic_001"]
    assert load_trace(files[0]).trace_id == "synthetic_000"
    assert [t.trace_id for t in load_traces(tmp_path / "a")] == ["synthetic_000",
                                                                  "synthetic_001"]


def test_pyperf_files_give_all_146_runs(shared_data):
    corpus = Corpus.build(shared_data / "pyperf")
    assert len(corpus) == 146
    per_trace = pd.Series([r.trace_id for r in corpus]).value_counts()
    assert per_trace["telco"] == 41 and per_trace["pyperformance-telco-py38"] == 21
    # Both files name their runs telco#runK: the trace ids keep them apart.
    assert ("telco", "telco#run1") in corpus
    assert ("pyperformance-telco-py38", "telco#run1") in corpus


def test_cli_replay_of_the_pyperf_folder_reports_146_runs(shared_data, tmp_path, capsys):
    out = tmp_path / "res.parquet"
    assert main(["replay", str(shared_data / "pyperf"), "-c", "fixed_count:n=3", "-o",
                 str(out), "-q"]) == 0
    assert "replayed 146 runs" in capsys.readouterr().out


def test_a_traini_corpus_root_reads_as_its_series_with_their_labels(shared_data, tmp_path,
                                                                   capsys):
    """The corpus root (timeseries/all, classification/, ...) gives the runs of its series
    folder, published labels included, in Python and in the CLI, with the same ids."""
    root = shared_data / "traini-dev"
    corpus = Corpus.build(root, format="traini")
    series = Corpus.build(root / "timeseries" / "all", format="traini")
    assert corpus.keys() == series.keys() and len(corpus) == 300
    steady = [r for r in corpus if r.reference_start is not None and r.reference_start >= 0]
    assert len(steady) == 253  # the published labels: 253 forks reach a steady state
    out = tmp_path / "labels.csv"
    assert main(["label", str(root), "--format", "traini", "-m", "mser5", "-o", str(out),
                 "-q"]) == 0
    frame = pd.read_csv(out, dtype={"trace_id": str, "run_id": str})
    assert list(zip(frame["trace_id"], frame["run_id"], strict=True)) == corpus.keys()


def test_the_same_inputs_in_any_order_give_the_same_ids_everywhere(tmp_path):
    x = [np.r_[np.linspace(40, 10, 30), np.full(60, 10.0)] * (1 + 0.01 * k) for k in range(3)]
    paths = []
    for k, series in enumerate(x):
        p = tmp_path / f"trace{k}.jsonl"
        save_trace(_trace(series, ref=30), p)
        paths.append(p)
    fwd = replay(paths, "fixed_count:n=20")
    rev = replay(paths[::-1], "fixed_count:n=20")
    pd.testing.assert_frame_equal(fwd, rev)
    assert list(fwd["trace_id"]) == ["trace0", "trace1", "trace2"]
    # compare and figures find the runs by the same ids whatever the order.
    s_fwd = scoring.score(fwd, paths, n_resamples=0)
    s_rev = scoring.score(rev, paths[::-1], n_resamples=0)
    pd.testing.assert_frame_equal(s_fwd, s_rev)
    d = trace_stops_data(fwd, paths[::-1], "trace2", "r0")
    np.testing.assert_array_equal(d.x, Corpus.build(paths).get("trace2", "r0").base)
    # Traces in memory without a name get ids from their content, not their position.
    objs = [_trace(s) for s in x]
    ids = Corpus.build(objs).trace_ids
    assert sorted(ids) == sorted(Corpus.build(objs[::-1]).trace_ids)
    assert all(i.startswith("trace-") for i in ids)


def test_a_collision_is_an_error_naming_both_sources(tmp_path):
    x = np.linspace(20, 10, 40)
    save_trace(_trace(x), tmp_path / "same.jsonl")
    save_trace(_trace(x * 2), tmp_path / "same.parquet")
    # Two files of one folder that differ only in their suffix keep their whole names.
    assert Corpus.build(tmp_path).trace_ids == ["same.jsonl", "same.parquet"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "a").mkdir(parents=True)
    save_trace(_trace(x), tmp_path / "a" / "t.jsonl")
    save_trace(_trace(x), tmp_path / "b" / "a" / "t.jsonl")
    with pytest.raises(CorpusError, match=r"trace 'a/t', run 'r0'.*a/t.*b/a/t"):
        Corpus.build([tmp_path / "a", tmp_path / "b" / "a"])
    one, two = _trace(x, tags={"trace_id": "t"}), _trace(x * 2, tags={"trace_id": "t"})
    with pytest.raises(CorpusError, match=r"trace 't', run 'r0'.*Trace object.*Trace object"):
        Corpus.build([one, two])
    # A mapping names them apart.
    assert len(Corpus.build({"one": one, "two": two})) == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.lists(st.sampled_from(["a", "b", "c", "d/e", "f"]), min_size=1, max_size=6),
       runs=st.lists(st.sampled_from(["r0", "r1", "r2"]), min_size=1, max_size=3, unique=True),
       seed=st.integers(0, 1000))
def test_ids_are_unique_or_the_build_fails(ids, runs, seed):
    rng = np.random.default_rng(seed)
    traces = [_trace(rng.uniform(1, 2, 8), tuple(runs), tags={"trace_id": t}) for t in ids]
    order = rng.permutation(len(traces))
    if len(set(ids)) < len(ids):
        with pytest.raises(CorpusError, match="two runs are named"):
            Corpus.build(traces)
        return
    corpus = Corpus.build(traces)
    keys = corpus.keys()
    assert len(keys) == len(set(keys)) == len(ids) * len(runs)
    assert Corpus.build([traces[i] for i in order]).keys() == keys


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(names_a=st.sets(st.sampled_from(["x", "y", "z", "w"]), min_size=1),
       names_b=st.sets(st.sampled_from(["x", "y", "z", "w"]), min_size=1))
def test_folders_with_overlapping_names_give_every_run_once(tmp_path_factory, names_a, names_b):
    root = tmp_path_factory.mktemp("folders")
    for folder, names in (("a", names_a), ("b", names_b)):
        (root / folder).mkdir()
        for name in names:
            save_trace(_trace(np.linspace(3, 1, 6)), root / folder / f"{name}.jsonl")
    corpus = Corpus.build([root / "a", root / "b"])
    assert len(corpus) == len(names_a) + len(names_b) == len(set(corpus.keys()))
    assert Corpus.build([root / "b", root / "a"]).keys() == corpus.keys()


# ----------------------------------------------------------------------- times, arrays
def test_bare_arrays_get_no_wall_time_unless_declared_durations():
    x = np.array([10.0, 20.0, 30.0])
    run = Corpus.build([x])[0]
    assert run.key == ("series0", "0") and run.times is None and run.n == 3
    timed = Corpus.build([x], values_are_durations=True)[0]
    np.testing.assert_allclose(timed.times, [0.01, 0.03, 0.06])
    both = Corpus.build({"a": {"latency_ms": x, "power_w": x * 3}})[0]
    assert set(both.signals) == {"latency_ms", "power_w"}
    with pytest.raises(CorpusError, match="has 2 values"):
        Corpus.build([{"latency_ms": x, "power_w": x[:2]}])
    with pytest.raises(CorpusError, match="no signal 'gpu_time_ms'"):
        Corpus.build([x], signals=("gpu_time_ms",))


def test_runs_of_a_trace_hold_signals_times_failures_and_reference():
    tr = _trace(np.array([5.0, 4.0, 3.0, 3.0]), ("r0", "r1"), ref=2)
    data = tr.data.copy()
    data.loc[1, "ok"] = False
    data.loc[1, "latency_ms"] = math.nan
    tr = Trace(data, tr.metadata, "mine")
    corpus = Corpus.build(tr)
    r0 = corpus.get("mine", "r0")
    np.testing.assert_array_equal(r0.base, [5.0, 3.0, 3.0])
    assert r0.failures == 1 and r0.reference_start == 2 and r0.source.startswith("a Trace")
    np.testing.assert_allclose(r0.times, tr.sample_times_s("r0"))
    assert corpus.get("mine", "r1").failures == 0
    with pytest.raises(CorpusError, match="no trace 'mine' run 'r9'"):
        corpus.get("mine", "r9")


# ----------------------------------------------------------------------- references
def test_reference_file_is_read_and_attached(tmp_path):
    corpus = Corpus.build({"t": _trace(np.linspace(9, 1, 10), ("r0", "r1", "r2"), ref=3)})
    path = tmp_path / "ref.csv"
    path.write_text("trace_id,run_id,reference_start,method\nt,r0,5,manual\nt,r1,-1,x\n"
                    "t,r2,,x\n")
    ref = corpus.with_reference(path)
    assert [r.reference_start for r in ref] == [5, -1, None]
    assert [r.reference_start for r in corpus] == [3, 3, 3]  # the original is unchanged
    frame = ref.reference_frame()
    assert list(frame.columns) == ["trace_id", "run_id", "reference_start"]
    pd.testing.assert_frame_equal(read_reference(path), frame)


@pytest.mark.parametrize(("text", "match"), [
    ("trace_id,run_id\nt,r0\n", "lacks column 'reference_start'"),
    ("trace_id,run_id,reference_start\nt,r0,2.5\n", "row 1: reference_start '2.5'"),
    ("trace_id,run_id,reference_start\nt,r0,-2\n", "is not an integer >= -1"),
    ("trace_id,run_id,reference_start\nt,r0,abc\n", "'abc'"),
    ("trace_id,run_id,reference_start\nt,r0,1\nt,r0,2\n", "row 2: .* listed twice"),
    ("trace_id,run_id,reference_start\nu,r0,1\n", "trace 'u' run 'r0' is not in the corpus"),
    ("trace_id,run_id,reference_start\nt,r0,10\n", r"outside -1\.\.9"),
])
def test_bad_reference_files_are_clear_errors(tmp_path, text, match):
    corpus = Corpus.build({"t": _trace(np.linspace(9, 1, 10))})
    path = tmp_path / "ref.csv"
    path.write_text(text)
    with pytest.raises(CorpusError, match=match):
        corpus.with_reference(path)


def test_records_are_accepted_and_checked():
    rec = RunRecord("t", "r", {"latency_ms": np.ones(3)})
    assert len(Corpus([rec, rec.replace(run_id="s")])) == 2
    with pytest.raises(CorpusError, match="two runs are named"):
        Corpus([rec, rec])


def test_compare_scores_against_a_reference_file(tmp_path):
    _simulate(tmp_path / "a", 1)
    out = tmp_path / "res.parquet"
    assert main(["replay", str(tmp_path / "a"), "-c", "fixed_count:n=10", "-o", str(out),
                 "-q"]) == 0
    ref = tmp_path / "ref.csv"
    ref.write_text("trace_id,run_id,reference_start\nsynthetic_000,run0,20\n"
                   "synthetic_001,run0,5\n")
    assert main(["compare", str(out), "--traces", str(tmp_path / "a"), "--reference", str(ref),
                 "--band", "10", "-o", str(tmp_path / "cmp")]) == 0
    scored = pd.read_parquet(tmp_path / "cmp" / "scored.parquet").set_index("trace_id")
    assert scored.loc["synthetic_000", "reference_start"] == 20
    assert scored.loc["synthetic_000", "premature"]  # 10 samples < 20
    assert scored.loc["synthetic_001", "wee"] == 5 and scored.loc["synthetic_001",
                                                                   "waste_band"] == "exact"
    assert "±10 samples" in (tmp_path / "cmp" / "report.md").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("trace_id,run_id,reference_start\nnope,run0,1\n")
    assert main(["compare", str(out), "--traces", str(tmp_path / "a"), "--reference", str(bad),
                 "-o", str(tmp_path / "cmp2")]) == 2
