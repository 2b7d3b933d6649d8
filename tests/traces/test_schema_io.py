"""Trace schema, storage round trips, validation errors, migration and the in-progress format."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llenergymeasure.core.environment import capture_environment
from llenergymeasure.traces import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TRACE_SCHEMA_VERSION,
    RunInfo,
    ShadowDecision,
    Trace,
    TraceFormatError,
    TraceMetadata,
    TraceWriter,
    load_trace,
    load_traces,
    migrations,
    partial_path_for,
    save_trace,
    sidecar_path_for,
)

FORMATS = ["parquet", "csv", "jsonl"]
WALL0 = 1_764_590_000_123_456_789  # needs all 64 bits: a float64 would round it


def make_rows(run_id: str, n: int, *, fail_at: tuple[int, ...] = (), seed: int = 0
              ) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    t = 0
    for i in range(n):
        lat = float(rng.uniform(5, 50))
        start = t + int(rng.integers(0, 1000))
        end = start + int(lat * 1e6)
        t = end
        ok = i not in fail_at
        rows.append(
            {
                "run_id": run_id,
                "index": i,
                "t_start_ns": start,
                "t_end_ns": end,
                "wall_start_ns": WALL0 + start,
                "latency_ms": lat if ok else None,
                "ok": ok,
                "error": None if ok else "RuntimeError: CUDA out of memory",
                "power_w": float("nan") if i % 3 == 0 else float(rng.uniform(100, 300)),
                "input_tokens": None if i % 4 == 1 else 17,
                "throttle_reasons": 4 if i % 2 else 0,
            }
        )
    return rows


def make_trace(n_runs: int = 2, n: int = 12) -> Trace:
    runs = [
        RunInfo(
            run_id=f"r{k}",
            stop_index=5,
            stop_reason="converged",
            status="converged",
            shadow={"fixed_count:n=3": ShadowDecision(stop_index=2, converged=True, reason="x")},
            reference_start=-1 if k else 4,
            labels={"changepoints": [3, 9], "fork": "steady state"},
            provenance={"source": "test"},
        )
        for k in range(n_runs)
    ]
    meta = TraceMetadata(
        config={"max_prompts": 50}, criterion="rolling_cv", environment=capture_environment(),
        model={"name": "tiny", "dtype": "float16"}, tags={"gpu": "none"}, runs=runs,
    )
    rows = [r for k in range(n_runs) for r in make_rows(f"r{k}", n, fail_at=(2, 7), seed=k)]
    return Trace.from_rows(rows, meta)


# ------------------------------------------------------------------ schema
def test_schema_columns_have_units_in_names_and_descriptions() -> None:
    assert TRACE_SCHEMA_VERSION == 1
    assert set(REQUIRED_COLUMNS) == {
        "run_id", "index", "t_start_ns", "t_end_ns", "wall_start_ns", "latency_ms", "ok", "error"
    }
    for name, spec in {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}.items():
        assert spec.description
        if spec.unit in ("ms", "ns", "W", "mJ", "MHz"):
            assert name.endswith("_" + spec.unit.lower()), name


def test_environment_capture_describes_this_machine() -> None:
    env = capture_environment()
    assert env.python == platform.python_version()
    assert env.numpy == np.__version__
    assert env.hostname


def test_trace_accessors() -> None:
    trace = make_trace()
    assert trace.run_ids == ["r0", "r1"]
    r1 = trace.run("r1")
    assert r1.run_ids == ["r1"] and set(r1.data["run_id"]) == {"r1"}
    assert r1.run_info().reference_start == -1
    assert [t.run_ids[0] for t in trace.iter_runs()] == ["r0", "r1"]
    rows = trace.data[trace.data["run_id"] == "r0"]
    ok = rows["ok"].to_numpy()
    np.testing.assert_array_equal(trace.samples("r0"), rows["latency_ms"].to_numpy()[ok])
    assert len(trace.samples("r0")) == 10  # two failed attempts excluded
    t = trace.sample_times_s("r0")
    expected = (rows["t_end_ns"].to_numpy(dtype=np.int64)[ok] - rows["t_start_ns"].iloc[0]) / 1e9
    np.testing.assert_array_equal(t, expected)
    with pytest.raises(ValueError, match="2 runs"):
        trace.samples()
    with pytest.raises(KeyError, match="nope"):
        trace.samples("nope")


def test_sample_times_fall_back_to_cumulative_latency() -> None:
    rows = make_rows("a", 6, fail_at=(1,))
    for r in rows:
        r["t_start_ns"] = r["t_end_ns"] = None
    trace = Trace.from_rows(rows, TraceMetadata(runs=[RunInfo(run_id="a")]))
    lat = trace.samples()
    np.testing.assert_allclose(trace.sample_times_s(), np.cumsum(lat) / 1e3, rtol=1e-15)


# -------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_data_dtypes_nan_and_metadata(tmp_path: Path, fmt: str) -> None:
    trace = make_trace()
    path = save_trace(trace, tmp_path / f"trace.{fmt}")
    back = load_trace(path)
    pdt.assert_frame_equal(back.data, trace.data)
    assert back.metadata == trace.metadata
    assert back.data["wall_start_ns"].iloc[0] == trace.data["wall_start_ns"].iloc[0]
    assert np.isnan(back.data["power_w"].iloc[0])
    assert back.data["input_tokens"].isna().sum() == trace.data["input_tokens"].isna().sum() > 0
    assert list(tmp_path.glob("*.tmp")) == []  # atomic write left nothing behind
    if fmt == "csv":
        assert sidecar_path_for(path).is_file()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lat=st.lists(st.floats(1e-3, 1e6, allow_nan=False) | st.none(), min_size=0, max_size=20),
    fmt=st.sampled_from(FORMATS),
)
def test_round_trip_property(tmp_path: Path, lat: list[float | None], fmt: str) -> None:
    rows = []
    for i, v in enumerate(lat):
        rows.append({"run_id": "x", "index": i, "t_start_ns": 10 * i, "t_end_ns": 10 * i + 5,
                     "wall_start_ns": WALL0 + i, "latency_ms": v, "ok": v is not None,
                     "error": None if v is not None else "E: é \"quoted\", comma",
                     "ttft_ms": float("nan") if v is None else v / 2})
    trace = Trace.from_rows(rows, TraceMetadata(runs=[RunInfo(run_id="x")]))
    back = load_trace(save_trace(trace, tmp_path / f"p.{fmt}"))
    pdt.assert_frame_equal(back.data, trace.data)
    np.testing.assert_array_equal(back.samples(), [v for v in lat if v is not None])


#: Per-request fields of the server-mode client (`core.openai_client`), with a value each.
SERVER_FIELDS = {"connect_ms": 0.25, "output_chunks": 9, "itl_count": 8, "itl_mean_ms": 11.5,
                 "itl_p50_ms": 11.0, "itl_p90_ms": 13.75, "itl_p99_ms": 14.9, "itl_max_ms": 15.0}


@pytest.mark.parametrize("fmt", FORMATS)
def test_server_columns_round_trip_with_their_dtypes(tmp_path: Path, fmt: str) -> None:
    rows = make_rows("s", 6, fail_at=(4,))
    for i, row in enumerate(rows):
        if row["ok"] and i != 2:  # a failed attempt and a request without them: missing
            row.update({k: v + i if isinstance(v, int) else v * (1 + i / 7)
                        for k, v in SERVER_FIELDS.items()})
    trace = Trace.from_rows(rows, TraceMetadata(runs=[RunInfo(run_id="s")]))
    back = load_trace(save_trace(trace, tmp_path / f"server.{fmt}"))
    for name in SERVER_FIELDS:
        assert str(back.data[name].dtype) == OPTIONAL_COLUMNS[name].dtype, name
        assert back.data[name].isna().tolist() == [i in (2, 4) for i in range(6)], name
    pdt.assert_frame_equal(back.data, trace.data, check_exact=True)


def test_load_traces_reads_a_folder(tmp_path: Path) -> None:
    trace = make_trace(n_runs=1)
    for fmt in FORMATS:
        save_trace(trace, tmp_path / f"t.{fmt}")
    (tmp_path / "notes.txt").write_text("not a trace")
    loaded = load_traces(tmp_path)
    assert len(loaded) == 3
    for t in loaded:
        pdt.assert_frame_equal(t.data, trace.data)


# --------------------------------------------------------------- validation
def write_jsonl(path: Path, meta: dict[str, Any], rows: list[dict[str, Any]],
                *, partial: bool = False) -> Path:
    lines = [json.dumps({"trace_metadata": meta, "partial": partial})]
    lines += [json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def meta_dict(**kw: Any) -> dict[str, Any]:
    return json.loads(TraceMetadata(runs=[RunInfo(run_id="a")], **kw).model_dump_json())


def test_truncated_last_line_of_finalised_file_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", meta_dict(), make_rows("a", 5))
    text = path.read_text()
    path.write_text(text[: len(text) - 25])
    with pytest.raises(TraceFormatError, match="truncated last line") as info:
        load_trace(path)
    assert info.value.file == str(path) and info.value.line == 6
    assert str(path) in str(info.value) and "line 6" in str(info.value)


def test_partial_recording_recovers_every_complete_line(tmp_path: Path) -> None:
    meta = json.loads(TraceMetadata(runs=[RunInfo(run_id="a", status="recording")])
                      .model_dump_json())
    path = write_jsonl(tmp_path / "t.jsonl.partial.jsonl", meta, make_rows("a", 5), partial=True)
    text = path.read_text()
    path.write_text(text[: len(text) - 25])  # killed mid-line
    trace = load_trace(path)
    assert list(trace.data["index"]) == [0, 1, 2, 3]
    assert trace.run_info().interrupted and trace.run_info().status == "recording"


@pytest.mark.parametrize(
    ("mutate", "field", "line", "match"),
    [
        (lambda rows: rows[2].pop("t_end_ns"), "t_end_ns", 4, "missing required"),
        (lambda rows: rows[3].update(latency_ms="fast"), "latency_ms", 5, "expected float64"),
        (lambda rows: rows[1].update(latency_ms=True), "latency_ms", 3, "expected float64"),
        (lambda rows: rows[1].update(index=1.5), "index", 3, "expected int64"),
        (lambda rows: rows[4].update(ok="maybe"), "ok", 6, "expected bool"),
        (lambda rows: rows[0].update(error=3), "error", 2, "expected str"),
        (lambda rows: rows[3].update(run_id=None), "run_id", 5, "missing value"),
        (lambda rows: rows[3].update(t_start_ns=0, t_end_ns=1), "t_start_ns", 5, "decrease"),
        (lambda rows: rows[2].update(t_end_ns=rows[2]["t_start_ns"] - 1), "t_end_ns", 4,
         "ends before"),
        (lambda rows: rows[3].update(index=1), "index", 5, "increase strictly"),
        (lambda rows: rows[3].update(latency_ms=None), "latency_ms", 5, "successful attempt"),
        (lambda rows: rows[1].update(run_id="zz"), "run_id", None, "no entry in metadata"),
    ],
)
def test_jsonl_validation_errors_name_file_line_and_field(
    tmp_path: Path, mutate: Any, field: str, line: int | None, match: str
) -> None:
    rows = make_rows("a", 5)
    mutate(rows)
    path = write_jsonl(tmp_path / "bad.jsonl", meta_dict(), rows)
    with pytest.raises(TraceFormatError, match=match) as info:
        load_trace(path)
    err = info.value
    assert err.file == str(path) and err.field == field
    assert str(path) in str(err) and repr(field) in str(err)
    if line is not None:
        assert err.line == line and f"line {line}" in str(err)
    else:
        assert err.row == 1


def test_future_schema_version_is_refused(tmp_path: Path) -> None:
    meta = meta_dict()
    meta["schema_version"] = TRACE_SCHEMA_VERSION + 1
    path = write_jsonl(tmp_path / "future.jsonl", meta, make_rows("a", 3))
    with pytest.raises(TraceFormatError, match="newer") as info:
        load_trace(path)
    assert info.value.field == "metadata.schema_version" and info.value.line == 1
    assert str(path) in str(info.value)


def test_invalid_metadata_names_the_field(tmp_path: Path) -> None:
    meta = meta_dict()
    meta["runs"][0]["stop_index"] = "soon"
    path = write_jsonl(tmp_path / "m.jsonl", meta, make_rows("a", 3))
    with pytest.raises(TraceFormatError) as info:
        load_trace(path)
    assert info.value.field == "metadata.runs.0.stop_index"


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    trace = make_trace(n_runs=1, n=6)
    path = save_trace(trace, tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    col = header.index("latency_ms")
    cells = lines[4].split(",")
    cells[col] = "abc"
    lines[4] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError, match="expected float64") as info:
        load_trace(path)
    assert (info.value.line, info.value.field) == (5, "latency_ms")
    # A missing column is reported on the header line.
    df = pd.read_csv(path).drop(columns=["ok"])
    df.to_csv(path, index=False)
    with pytest.raises(TraceFormatError, match="missing required") as info:
        load_trace(path)
    assert (info.value.line, info.value.field) == (1, "ok")
    # Without its sidecar a CSV is not a native trace: it goes to the importers.
    sidecar_path_for(path).unlink()
    from llenergymeasure.traces.io import detect_native_format

    assert detect_native_format(path) is None


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    trace = make_trace(n_runs=1, n=6)
    path = save_trace(trace, tmp_path / "t.parquet")
    table = pq.read_table(path)
    df = table.to_pandas()
    df["t_start_ns"] = df["t_start_ns"].astype("float64")
    df.loc[3, "t_start_ns"] = 0.0
    df.loc[3, "t_end_ns"] = 1
    bad = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(
        table.schema.metadata
    )
    pq.write_table(bad, path)
    with pytest.raises(TraceFormatError, match="decrease") as info:
        load_trace(path)
    assert (info.value.row, info.value.field) == (3, "t_start_ns")
    assert "row 3" in str(info.value)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)  # no metadata
    with pytest.raises(TraceFormatError, match="without trace metadata"):
        load_trace(path)


def test_unknown_format_is_a_trace_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00\x01")
    with pytest.raises(TraceFormatError, match="unknown trace format"):
        load_trace(path)


def test_load_trace_dispatches_to_importers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    from llenergymeasure.traces import importers

    expected = make_trace(n_runs=1)
    calls: list[tuple[Path, str]] = []

    def import_file(path: Path, format: str) -> Trace:
        calls.append((Path(path), format))
        return expected

    monkeypatch.setattr(importers, "import_file", import_file, raising=False)
    monkeypatch.setattr(importers, "detect_format", lambda p: "pyperf", raising=False)
    path = tmp_path / "bench.json"
    path.write_text("{}")
    assert load_trace(path) is expected
    assert load_trace(path, format="traini") is expected
    assert calls == [(path, "pyperf"), (path, "traini")]


def test_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    import pyarrow.parquet as pq

    trace = make_trace(n_runs=1)
    path = save_trace(trace, tmp_path / "t.parquet")
    before = path.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        Path(args[1]).write_bytes(b"PAR1 half written")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        save_trace(make_trace(n_runs=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


# ---------------------------------------------------------------- migration
def test_v0_trace_is_migrated_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A synthetic v0: column 'latency' in seconds, metadata field 'tag_list'."""

    def migrate_v0_to_v1(meta: dict[str, Any], data: pd.DataFrame
                         ) -> tuple[dict[str, Any], pd.DataFrame]:
        meta = dict(meta)
        meta["tags"] = {t: "" for t in meta.pop("tag_list")}
        meta["schema_version"] = 1
        data = data.rename(columns={"latency_s": "latency_ms"})
        data["latency_ms"] = pd.to_numeric(data["latency_ms"]) * 1e3
        return meta, data

    meta = meta_dict()
    meta.pop("tags")
    meta["tag_list"] = ["old"]
    meta["schema_version"] = 0
    rows = make_rows("a", 4)
    for r in rows:
        r["latency_s"] = r.pop("latency_ms") / 1e3
    v0 = tmp_path / "v0.jsonl"
    v0.write_text("\n".join([json.dumps({"trace_metadata": meta, "partial": False})]
                            + [json.dumps(r) for r in rows]) + "\n")
    # A v0 row lacks latency_ms, so without the migration the file is invalid.
    with pytest.raises(TraceFormatError, match="no migration from schema version 0"):
        load_trace(v0)
    monkeypatch.setitem(migrations.MIGRATIONS, 0, migrate_v0_to_v1)
    trace = load_trace(v0)
    assert trace.metadata.schema_version == 1 and trace.metadata.tags == {"old": ""}
    np.testing.assert_allclose(trace.samples(), [r["latency_s"] * 1e3 for r in rows])


def test_migration_must_advance_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(migrations.MIGRATIONS, 0, lambda m, d: (m, d))
    with pytest.raises(TraceFormatError, match="produced schema_version 0"):
        migrations.migrate({"schema_version": 0}, pd.DataFrame())


# ------------------------------------------------------------------- writer
@pytest.mark.parametrize("final", ["run.jsonl", "run.parquet", "run.csv"])
def test_writer_streams_then_finalises(tmp_path: Path, final: str) -> None:
    meta = TraceMetadata(runs=[RunInfo(run_id="w", status="recording")])
    writer = TraceWriter(tmp_path / final, meta)
    rows = make_rows("w", 6, fail_at=(1,))
    for i, row in enumerate(rows):
        writer.write_attempt({k: v for k, v in row.items() if k != "run_id"})
        live = load_trace(writer.partial_path)  # each attempt is on disk as soon as written
        assert len(live.data) == i + 1
    assert not (tmp_path / final).exists()
    out = writer.finalize(status="converged", stop_index=3, stop_reason="done")
    assert out == tmp_path / final and not partial_path_for(out).exists()
    trace = load_trace(out)
    assert trace.run_info().status == "converged" and trace.run_info().stop_index == 3
    assert not trace.run_info().interrupted
    expected = Trace.from_rows(rows, meta)
    pdt.assert_frame_equal(trace.data, expected.data)
    with pytest.raises(RuntimeError, match="finalised"):
        writer.write_attempt(rows[0])


def test_writer_to_parquet_and_refuses_to_clobber_a_recording(tmp_path: Path) -> None:
    meta = TraceMetadata(runs=[RunInfo(run_id="w", status="recording")])
    writer = TraceWriter(tmp_path / "x.jsonl", meta)
    for row in make_rows("w", 3):
        writer.write_attempt(row)
    with pytest.raises(FileExistsError, match="did not finish"):
        TraceWriter(tmp_path / "x.jsonl", meta)
    out = writer.finalize(to_parquet=True, status="fixed")
    assert out == tmp_path / "x.parquet" and len(load_trace(out).data) == 3


@pytest.mark.parametrize("value", [2.0**63, -(2.0**64), 1e19])
def test_an_integer_column_refuses_values_beyond_64_bits(tmp_path: Path, value: float) -> None:
    rows = make_rows("a", 3)
    rows[1]["input_tokens"] = value
    path = write_jsonl(tmp_path / "big.jsonl", meta_dict(), rows)
    with pytest.raises(TraceFormatError, match="input_tokens") as info:
        load_trace(path)
    assert info.value.line == 3
    from llenergymeasure.traces.io import value_problem

    assert value_problem("input_tokens", value) is not None
    assert value_problem("input_tokens", 2**63 - 1) is None
    assert value_problem("input_tokens", 2**63) is not None
