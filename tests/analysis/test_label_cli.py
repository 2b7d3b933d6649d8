"""``llem-warmup label``, run in-process through ``main([...])``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llenergymeasure.analysis.corpus import Corpus, read_reference
from llenergymeasure.analysis.labels import label_runs
from llenergymeasure.cli import main
from llenergymeasure.traces import RunInfo, Trace, TraceMetadata, load_trace, save_trace


def _trace(seed: int, n: int = 120, ref: int | None = None) -> Trace:
    rng = np.random.default_rng(seed)
    lat = 20.0 * (1 + (np.arange(n) < 30)) * rng.lognormal(0, 0.01, n)
    ends = np.cumsum(np.round(lat * 1e6).astype(np.int64))
    starts = np.r_[0, ends[:-1]]
    rows = [{"run_id": rid, "index": i, "t_start_ns": int(s), "t_end_ns": int(e),
             "wall_start_ns": None, "latency_ms": (e - s) / 1e6, "ok": True, "error": None}
            for rid in ("r0", "r1")
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))]
    meta = TraceMetadata(runs=[RunInfo(run_id="r0", reference_start=ref), RunInfo(run_id="r1")])
    return Trace.from_rows(rows, meta)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "traces"
    d.mkdir()
    save_trace(_trace(0, ref=5), d / "a.parquet")
    save_trace(_trace(1), d / "b.jsonl")
    return d


def test_labels_csv_matches_the_library_and_feeds_compare(folder, tmp_path, capsys) -> None:
    out = tmp_path / "labels.csv"
    assert main(["label", str(folder), "-m", "max_ess", "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    frame = pd.read_csv(out)
    assert list(frame.columns[:4]) == ["trace_id", "run_id", "reference_start", "method"]
    corpus = Corpus.build(folder)
    direct = label_runs(corpus, "max_ess")
    assert read_reference(out).equals(read_reference(direct))
    assert "labelled 4 runs with max_ess" in printed and "4 steady" in printed
    results = tmp_path / "res.parquet"
    assert main(["replay", str(folder), "-c", "rolling_cv", "-o", str(results), "-q"]) == 0
    assert main(["compare", str(results), "--traces", str(folder), "--reference", str(out),
                 "-o", str(tmp_path / "cmp"), "-q", "--n-resamples", "5"]) == 0
    scored = pd.read_parquet(tmp_path / "cmp" / "scored.parquet")
    want = dict(zip(zip(direct["trace_id"], direct["run_id"], strict=True),
                    direct["reference_start"], strict=True))
    for t, r, s in zip(scored["trace_id"], scored["run_id"], scored["reference_start"],
                       strict=True):
        assert s == want[(t, r)]


def test_write_traces_keeps_every_recorded_value(folder, tmp_path, capsys) -> None:
    out_dir = tmp_path / "labelled"
    assert main(["label", str(folder), "-o", str(tmp_path / "l.csv"), "-m", "consensus",
                 "--write-traces", str(out_dir), "-q"]) == 0
    printed = capsys.readouterr().out
    labels = read_reference(tmp_path / "l.csv")
    want = {(t, r): s for t, r, s in zip(labels["trace_id"], labels["run_id"],
                                         labels["reference_start"], strict=True)}
    for name in ("a.parquet", "b.jsonl"):
        before, after = load_trace(folder / name), load_trace(out_dir / name)
        pd.testing.assert_frame_equal(before.data, after.data)
        for info_b, info_a in zip(before.metadata.runs, after.metadata.runs, strict=True):
            assert info_a.model_dump(exclude={"reference_start"}) == info_b.model_dump(
                exclude={"reference_start"})
            key = (after.trace_id, info_a.run_id)
            if info_b.reference_start is not None:  # kept without --overwrite
                assert info_a.reference_start == info_b.reference_start
            else:
                assert info_a.reference_start == want[key]
    assert "existing different labels kept" in printed or "0 overwritten" in printed


def test_in_place_overwrite(folder, tmp_path, capsys) -> None:
    assert main(["label", str(folder), "-o", str(tmp_path / "l.csv"), "-m", "max_ess",
                 "--in-place", "--overwrite", "-q"]) == 0
    labels = read_reference(tmp_path / "l.csv")
    got = Corpus.build(folder)
    assert [r.reference_start for r in got] == [int(s) for s in labels["reference_start"]]
    assert "overwritten" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "words"), [
    (["-m", "nope"], "unknown label method 'nope'"),
    (["-m", "traini:bogus=1"], "'bogus'"),
    (["-m", "rolling_cv"], "truncation point"),
    (["--overwrite"], "--write-traces"),
])
def test_bad_inputs_exit_2_with_one_line(folder, tmp_path, capsys, extra, words) -> None:
    code = main(["label", str(folder), "-o", str(tmp_path / "l.csv"), "-q", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "l.csv").exists()


def test_bad_paths_exit_2(folder, tmp_path, capsys) -> None:
    assert main(["label", str(tmp_path / "missing"), "-o", str(tmp_path / "l.csv")]) == 2
    assert main(["label", str(folder), "-o", str(tmp_path / "l.txt")]) == 2
    assert main(["label", str(folder), "-o", str(tmp_path / "l.csv"), "--write-traces",
                 str(folder)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_short_runs_are_unknown_in_the_summary(tmp_path, capsys) -> None:
    save_trace(_trace(0, n=6), tmp_path / "short.parquet")
    assert main(["label", str(tmp_path / "short.parquet"), "-o", str(tmp_path / "l.csv"),
                 "-m", "consensus", "-q"]) == 0
    assert "2 unknown" in capsys.readouterr().out
    assert read_reference(tmp_path / "l.csv")["reference_start"].isna().all()
