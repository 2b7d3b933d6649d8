"""``llem-warmup validate | convert | show``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas.testing as pdt
import pytest

from llenergymeasure.cli import main
from llenergymeasure.traces import (
    RunInfo,
    ShadowDecision,
    Trace,
    TraceMetadata,
    load_trace,
    save_trace,
)


def sample_trace() -> Trace:
    rows = [
        {"run_id": run, "index": i, "t_start_ns": 10 * i, "t_end_ns": 10 * i + 7,
         "wall_start_ns": 1_700_000_000_000_000_000 + i, "latency_ms": 5.0 + i,
         "ok": i != 2, "error": "RuntimeError: x" if i == 2 else None, "power_w": 100.0}
        for run in ("a", "b") for i in range(6)
    ]
    rows = [r if r["ok"] else {**r, "latency_ms": None} for r in rows]
    runs = [
        RunInfo(run_id="a", stop_index=3, status="converged", stop_reason="CV below target",
                shadow={"fixed_count:n=2": ShadowDecision(stop_index=1, converged=True)}),
        RunInfo(run_id="b", status="interrupted", interrupted=True),
    ]
    return Trace.from_rows(rows, TraceMetadata(criterion="rolling_cv", runs=runs,
                                               tags={"site": "lab"}))


def test_validate_reports_valid_and_invalid_files(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    good = save_trace(sample_trace(), tmp_path / "good.jsonl")
    bad = tmp_path / "bad.jsonl"
    lines = good.read_text().splitlines()
    row = json.loads(lines[3])
    row["latency_ms"] = "slow"
    lines[3] = json.dumps(row)
    bad.write_text("\n".join(lines) + "\n")
    assert main(["validate", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(good), str(bad), str(tmp_path / "missing.parquet")]) == 2
    out = capsys.readouterr().out
    assert f"INVALID {bad}: line 4: field 'latency_ms'" in out
    assert "missing.parquet" in out and "1 valid, 2 invalid" in out


@pytest.mark.parametrize("out_suffix", ["parquet", "csv", "jsonl"])
def test_convert_round_trips(tmp_path: Path, out_suffix: str) -> None:
    trace = sample_trace()
    src = save_trace(trace, tmp_path / "in.jsonl")
    dst = tmp_path / f"out.{out_suffix}"
    assert main(["convert", str(src), str(dst)]) == 0
    back = load_trace(dst)
    pdt.assert_frame_equal(back.data, trace.data)
    assert back.metadata == trace.metadata


def test_convert_refuses_an_unknown_output_suffix(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = save_trace(sample_trace(), tmp_path / "in.jsonl")
    assert main(["convert", str(src), str(tmp_path / "out.xlsx")]) == 2
    assert "unknown trace format" in capsys.readouterr().err


def test_show_lists_runs_stops_and_columns(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = save_trace(sample_trace(), tmp_path / "t.parquet")
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "runs: 2" in out
    assert ("a: 6 attempts (5 ok, 1 failed), status converged, "
            "stop at sample 4 (stop_index 3)") in out
    assert "b: 6 attempts (5 ok, 1 failed), status interrupted INTERRUPTED, stop at none" in out
    assert "shadow fixed_count:n=2: sample 2 (stop_index 1)" in out
    assert "latency_ms [ms]" in out and "power_w [W]" in out
    assert main(["show", str(tmp_path / "nope.jsonl")]) == 2


def test_console_entry_point_runs(tmp_path: Path) -> None:
    path = save_trace(sample_trace(), tmp_path / "t.csv")
    proc = subprocess.run([sys.executable, "-m", "llenergymeasure.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK")


def test_validate_and_show_accept_folders(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "traces"
    save_trace(sample_trace(), folder / "a.jsonl")
    save_trace(sample_trace(), folder / "b.parquet")
    (folder / "notes.txt").write_text("not a trace, skipped")
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "a.jsonl" in out and "b.parquet" in out and "2 valid, 0 invalid" in out
    assert main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("runs: 2") == 2
    (folder / "c.jsonl").write_text("garbage\n")
    assert main(["validate", str(folder)]) == 2
    assert "INVALID" in capsys.readouterr().out


def test_trace_files_follow_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o027)
    try:
        path = save_trace(sample_trace(), tmp_path / "t.parquet")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        path = save_trace(sample_trace(), tmp_path / "u.jsonl")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_recording_to_an_unknown_suffix_fails_before_recording(tmp_path: Path) -> None:
    from llenergymeasure.traces import TraceWriter

    meta = TraceMetadata(runs=[RunInfo(run_id="r0", status="recording")])
    with pytest.raises(ValueError, match=r"x\.txt.*\.parquet, \.csv or \.jsonl"):
        TraceWriter(tmp_path / "x.txt", meta)
    assert list(tmp_path.iterdir()) == []
    writer = TraceWriter(tmp_path / "x.txt", meta, format="jsonl")
    writer.write_attempt({"index": 0, "t_start_ns": 0, "t_end_ns": 5, "wall_start_ns": 1,
                          "latency_ms": 5.0, "ok": True, "error": None})
    final = writer.finalize(status="fixed")
    assert load_trace(final, format="jsonl").samples().tolist() == [5.0]


def test_driver_refuses_to_record_to_x_txt(tmp_path: Path) -> None:
    from llenergymeasure import WarmupConfig, warmup_until_converged

    with pytest.raises(ValueError, match=r"x\.txt"):
        warmup_until_converged(lambda: 5.0, WarmupConfig(max_prompts=5),
                               trace_path=tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()
