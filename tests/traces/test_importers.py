"""Importers: Traini corpus, pyperf, JMH and generic CSV.

Small fixtures in each format are written by the tests; the real files in
../shared/data validate the importers against the sources' own numbers
(Traini's published labels and time waste, pyperf's per-run means).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.traces.importers import (
    FORMATS,
    CsvMapping,
    detect_format,
    import_file,
    load_traini_corpus,
)
from llenergymeasure.traces.importers.jmh import unit_to_ms
from llenergymeasure.traces.importers.traini import iteration_durations_s
from llenergymeasure.traces.model import Trace, TraceFormatError


def write_json(path: Path, data: object, *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


# ------------------------------------------------------------------------- Traini

BENCH = "owner__repo#org.x.Bench.run#size=10"


def traini_corpus(root: Path, forks: list[list[float]], *, labels: bool = True) -> Path:
    series = write_json(root / "timeseries" / "all" / f"{BENCH}.json", forks)
    if labels:
        n = len(forks)
        write_json(
            root / "classification" / f"{BENCH}.json",
            {
                "run": "inconsistent",
                "forks": ["steady state"] * (n - 1) + ["no steady state"],
                "steady_state_starts": [*range(n - 1), -1],
            },
        )
        write_json(
            root / "changepoints" / f"{BENCH}.json",
            [[1, len(f) - 1] for f in forks],
        )
    return series


def test_traini_fixture_values_times_and_labels(tmp_path: Path) -> None:
    forks = [[0.03, 0.02, 0.02, 0.021], [1e-6, 2e-6, 1.5e-6, 1e-6], [0.2, 0.25, 0.2, 0.2]]
    path = traini_corpus(tmp_path, forks)
    assert detect_format(path) == "traini"
    trace = import_file(path)
    assert isinstance(trace, Trace)
    assert trace.run_ids == [f"{BENCH}#fork{k}" for k in range(3)]
    assert trace.metadata.tags["source_format"] == "traini"
    for k, fork in enumerate(forks):
        rid = trace.run_ids[k]
        np.testing.assert_allclose(trace.samples(rid), np.array(fork) * 1e3, rtol=1e-15)
        # iteration k lasts ceil(0.1 / x) * x seconds; times are their running sums
        expected = np.cumsum([math.ceil(0.1 / x) * x for x in fork])
        np.testing.assert_allclose(trace.sample_times_s(rid), expected, atol=1e-9)
        info = trace.run_info(rid)
        assert info.status == "imported"
        assert info.provenance["fork"] == k and info.provenance["benchmark"] == BENCH
        assert info.labels["changepoints"] == [1, 3]
        assert info.labels["run"] == "inconsistent"
    # published starts 0 (whole fork steady) and 1 (change point at 1: steady from 2)
    assert trace.run_info(trace.run_ids[0]).reference_start == 0
    assert trace.run_info(trace.run_ids[1]).reference_start == 2
    assert trace.run_info(trace.run_ids[1]).labels["published_start"] == 1
    last = trace.run_info(trace.run_ids[2])
    assert last.reference_start == -1 and last.labels["fork"] == "no steady state"
    # a 0.2 s iteration is one operation: its duration is the value itself
    assert iteration_durations_s(np.array([0.2]))[0] == pytest.approx(0.2)


def test_traini_label_files_are_not_traces(tmp_path: Path) -> None:
    traini_corpus(tmp_path, [[0.01, 0.02]])
    assert detect_format(tmp_path / "changepoints" / f"{BENCH}.json") is None
    assert detect_format(tmp_path / "classification" / f"{BENCH}.json") is None


def test_traini_without_labels_has_unknown_reference(tmp_path: Path) -> None:
    path = traini_corpus(tmp_path, [[0.01, 0.02], [0.03, 0.01]], labels=False)
    trace = import_file(path, "traini")
    assert all(trace.run_info(r).reference_start is None for r in trace.run_ids)
    assert all(trace.run_info(r).labels == {} for r in trace.run_ids)


def test_traini_label_mismatch_names_file_and_field(tmp_path: Path) -> None:
    path = traini_corpus(tmp_path, [[0.01, 0.02], [0.03, 0.01]])
    cls = tmp_path / "classification" / f"{BENCH}.json"
    write_json(cls, {"run": "steady state", "forks": ["steady state"] * 3,
                     "steady_state_starts": [0, 0, 0]})
    with pytest.raises(TraceFormatError) as err:
        import_file(path, "traini")
    assert err.value.file == str(cls) and err.value.field == "forks"


def test_traini_bad_value_names_fork_and_iteration(tmp_path: Path) -> None:
    path = traini_corpus(tmp_path, [[0.01, 0.02], [0.03, -0.01]], labels=False)
    with pytest.raises(TraceFormatError, match=r"\[1\]\[1\]") as err:
        import_file(path, "traini")
    assert err.value.field == "[1][1]" and err.value.file == str(path)


def test_traini_corpus_loader(tmp_path: Path) -> None:
    traini_corpus(tmp_path, [[0.01, 0.02, 0.03]])
    traces = load_traini_corpus(tmp_path)
    assert len(traces) == 1 and len(traces[0]) == 3
    with pytest.raises(FileNotFoundError):
        load_traini_corpus(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def traini_real(shared_data: Path) -> dict[str, Trace]:
    """The real Traini development corpus, loaded once, by benchmark name."""
    return {t.metadata.tags["benchmark"]: t for t in load_traini_corpus(shared_data / "traini-dev")}


def _fork_frames(trace: Trace) -> list[pd.DataFrame]:
    return [g for _, g in trace.data.groupby("run_id", sort=False)]


def test_traini_real_corpus(shared_data: Path, traini_real: dict[str, Trace]) -> None:
    root = shared_data / "traini-dev"
    names = (root / "benchmarks.txt").read_text().split()
    assert sorted(traini_real) == sorted(n.removesuffix(".json") for n in names)
    assert len(traini_real) == 30
    for bench, trace in traini_real.items():
        cls = json.loads((root / "classification" / f"{bench}.json").read_text())
        cps = json.loads((root / "changepoints" / f"{bench}.json").read_text())
        raw = json.loads((root / "timeseries" / "all" / f"{bench}.json").read_text())
        assert trace.run_ids == [f"{bench}#fork{k}" for k in range(10)]
        frames = _fork_frames(trace)
        assert [g["run_id"].iloc[0] for g in frames] == trace.run_ids
        for k, (info, rows) in enumerate(zip(trace.metadata.runs, frames, strict=True)):
            assert len(rows) == 3000 and rows["ok"].all()
            np.testing.assert_array_equal(rows["latency_ms"].to_numpy(), np.array(raw[k]) * 1e3)
            published = cls["steady_state_starts"][k]
            assert info.labels["published_start"] == published
            assert info.reference_start == (published + 1 if published > 0 else published)
            assert info.labels["fork"] == cls["forks"][k]
            assert info.labels["run"] == cls["run"]
            assert info.labels["changepoints"] == cps[k]
        # the Trace accessors agree with the table (one fork per benchmark: they are slow-ish)
        np.testing.assert_array_equal(trace.samples(trace.run_ids[3]), np.array(raw[3]) * 1e3)


def test_traini_timestamps_reproduce_published_time_waste(
    shared_data: Path, traini_real: dict[str, Trace]
) -> None:
    """Traini et al.'s time waste = time(last warmup iteration) - time(steady-state start)."""
    cfg = pd.read_csv(shared_data / "traini-dev" / "cfg_assessment.csv")
    times: dict[str, list[np.ndarray]] = {}
    for bench, trace in traini_real.items():
        frames = _fork_frames(trace)
        times[bench] = [
            (g["t_end_ns"].to_numpy(dtype=np.int64) - int(g["t_start_ns"].iloc[0])) / 1e9
            for g in frames
        ]
        np.testing.assert_array_equal(trace.sample_times_s(trace.run_ids[0]), times[bench][0])
    checked = 0
    for row in cfg.itertuples():
        t = times[row.benchmark][row.fork]
        waste = t[row.last_warmup_it] - t[row.steady_state_starts]
        assert waste == pytest.approx(row.timewaste, abs=1e-6), row
        # the published fork label: steady iff the start is at or before iteration 2499
        published = row.steady_state_starts if row.steady_state_starts <= 2499 else -1
        info = traini_real[row.benchmark].metadata.runs[row.fork]
        assert info.labels["published_start"] == published
        assert info.reference_start == (published + 1 if published > 0 else published)
        checked += 1
    assert checked == len(cfg) > 600


# ------------------------------------------------------------------------- pyperf


def pyperf_doc() -> dict:
    return {
        "version": "1.0",
        "metadata": {"loops": 4, "hostname": "box", "unit": "second"},
        "benchmarks": [
            {
                "metadata": {"name": "bench_a", "inner_loops": 10},
                "runs": [
                    {"metadata": {"date": "2024-01-01"},
                     "warmups": [[1, 0.002], [2, 0.0015], [4, 0.001]]},
                    {"metadata": {}, "warmups": [[4, 0.0012]], "values": [0.001, 0.0011, 0.0009]},
                    {"metadata": {"loops": 8}, "values": [0.0008, 0.0009]},
                ],
            },
            {
                "metadata": {"name": "bench_b"},
                "runs": [{"values": [2.0, 3.0]}],
            },
        ],
    }


@pytest.mark.parametrize("gz", [False, True])
def test_pyperf_fixture(tmp_path: Path, gz: bool) -> None:
    path = write_json(tmp_path / ("r.json.gz" if gz else "r.json"), pyperf_doc(), gz=gz)
    assert detect_format(path) == "pyperf"
    trace = import_file(path)
    assert trace.run_ids == ["bench_a#run0", "bench_a#run1", "bench_a#run2", "bench_b#run0"]
    calib = trace.run_info("bench_a#run0").provenance
    assert calib["calibration"] is True and calib["date"] == "2024-01-01"
    np.testing.assert_allclose(trace.samples("bench_a#run0"), [2.0, 1.5, 1.0])
    rows = trace.run("bench_a#run0").data
    assert rows["warmup"].tolist() == [True, True, True]
    # raw timing of a warmup = value x its own loops x inner_loops (10, from the benchmark)
    np.testing.assert_allclose(trace.sample_times_s("bench_a#run0"),
                               np.cumsum([0.002 * 10, 0.0015 * 20, 0.001 * 40]), rtol=1e-9)
    run1 = trace.run("bench_a#run1").data
    assert run1["warmup"].tolist() == [True, False, False, False]
    # loops from the file (4) since neither run nor benchmark set it
    info1 = trace.run_info("bench_a#run1").provenance
    assert (info1["loops"], info1["inner_loops"], info1["calibration"]) == (4, 10, False)
    np.testing.assert_allclose(trace.sample_times_s("bench_a#run1"),
                               np.cumsum([0.0012, 0.001, 0.0011, 0.0009]) * 40, rtol=1e-9)
    # the run's own loops win over the file's
    info2 = trace.run_info("bench_a#run2").provenance
    assert info2["loops"] == 8
    np.testing.assert_allclose(trace.sample_times_s("bench_a#run2"),
                               np.cumsum([0.0008, 0.0009]) * 80, rtol=1e-9)
    info_b = trace.run_info("bench_b#run0").provenance
    assert (info_b["loops"], info_b["inner_loops"]) == (4, 1)
    np.testing.assert_allclose(trace.samples("bench_b#run0"), [2000.0, 3000.0])
    assert trace.metadata.tags["hostname"] == "box"


def test_pyperf_errors_name_the_field(tmp_path: Path) -> None:
    doc = pyperf_doc()
    doc["benchmarks"][0]["runs"][1]["values"][2] = "fast"
    path = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(TraceFormatError) as err:
        import_file(path, "pyperf")
    assert err.value.field == "benchmarks[0].runs[1].values[2]"
    doc = pyperf_doc()
    doc["benchmarks"][1]["metadata"]["unit"] = "byte"
    with pytest.raises(TraceFormatError, match="not a time"):
        import_file(write_json(tmp_path / "bytes.json", doc), "pyperf")
    doc = pyperf_doc()
    doc["version"] = "2.0"
    with pytest.raises(TraceFormatError, match="version") as err:
        import_file(write_json(tmp_path / "v2.json", doc), "pyperf")
    assert err.value.field == "version"


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"version": "1.0",\n "benchmarks": [\n oops ]}')
    with pytest.raises(TraceFormatError) as err:
        import_file(path, "pyperf")
    assert err.value.line == 3
    assert detect_format(path) is None


@pytest.mark.parametrize("name", ["telco.json", "pyperformance-telco-py38.json",
                                  "mult_list_py38.json", "outliers.json.gz"])
def test_pyperf_real_files_reproduce_pyperf_means(shared_data: Path, name: str) -> None:
    path = shared_data / "pyperf" / name
    raw = json.loads(gzip.decompress(path.read_bytes()) if name.endswith(".gz")
                     else path.read_bytes())
    trace = import_file(path)
    assert detect_format(path) == "pyperf"
    runs = [r for b in raw["benchmarks"] for r in b["runs"]]
    assert len(trace.run_ids) == len(runs)
    all_values = []
    for rid, run in zip(trace.run_ids, runs, strict=True):
        data = trace.run(rid).data
        warm = data["warmup"].to_numpy(dtype=bool)
        assert warm.sum() == len(run.get("warmups", []))
        values = data["latency_ms"].to_numpy()[~warm] / 1e3
        info = trace.run_info(rid)
        assert info.provenance["calibration"] == ("values" not in run)
        if "values" in run:
            # pyperf's per-run mean is the mean of the stored (per-iteration) values
            assert values.mean() == pytest.approx(float(np.mean(run["values"])), rel=1e-12)
            all_values.extend(run["values"])
    # and the benchmark mean pyperf reports is the mean over all values of all runs
    imported = trace.data.loc[~trace.data["warmup"].to_numpy(dtype=bool), "latency_ms"] / 1e3
    assert imported.mean() == pytest.approx(float(np.mean(all_values)), rel=1e-12)


# ------------------------------------------------------------------------- JMH


def jmh_doc() -> list:
    return [
        {
            "jmhVersion": "1.37", "benchmark": "org.x.Fast.avg", "mode": "avgt", "threads": 1,
            "forks": 2, "warmupIterations": 5, "warmupTime": "10 s",
            "measurementIterations": 3, "measurementTime": "100 ms",
            "params": {"size": "10", "kind": "a"},
            "primaryMetric": {"score": 20.0, "scoreUnit": "ns/op",
                              "rawData": [[25.0, 20.0, 19.0], [21.0, 20.0, 20.0]]},
        },
        {
            "benchmark": "org.x.Fast.thr", "mode": "thrpt", "measurementTime": "1 s",
            "primaryMetric": {"score": 500.0, "scoreUnit": "ops/s", "rawData": [[250.0, 500.0]]},
        },
        {
            "benchmark": "org.x.Fast.sample", "mode": "sample", "measurementTime": "1 s",
            "primaryMetric": {
                "score": 2.0, "scoreUnit": "us/op",
                "rawDataHistogram": [[[[1.0, 3], [3.0, 1]], [[2.0, 2]]]],
            },
        },
        {
            "benchmark": "org.x.Fast.once", "mode": "ss", "measurementBatchSize": 2,
            "primaryMetric": {"score": 2.0, "scoreUnit": "s/op", "rawData": [[3.0, 2.0]]},
        },
    ]


def test_jmh_fixture_units_and_times(tmp_path: Path) -> None:
    path = write_json(tmp_path / "jmh-result.json", jmh_doc())
    assert detect_format(path) == "jmh"
    trace = import_file(path)
    avg = "org.x.Fast.avg#kind=a&size=10"
    assert trace.run_ids[:2] == [f"{avg}#fork0", f"{avg}#fork1"]
    np.testing.assert_allclose(trace.samples(f"{avg}#fork0"), [25e-6, 20e-6, 19e-6])
    np.testing.assert_allclose(trace.sample_times_s(f"{avg}#fork1"), [0.1, 0.2, 0.3])
    info = trace.run_info(f"{avg}#fork0").provenance
    assert info["warmup_iterations"] == 5 and info["params"] == {"size": "10", "kind": "a"}
    assert not trace.run(f"{avg}#fork0").data["warmup"].any()
    # throughput: 250 ops/s = 4 ms/op
    np.testing.assert_allclose(trace.samples("org.x.Fast.thr##fork0"), [4.0, 2.0])
    # sample mode: count-weighted mean per iteration, us -> ms
    np.testing.assert_allclose(trace.samples("org.x.Fast.sample##fork0"), [1.5e-3, 2e-3])
    # single shot: each iteration is batch x score
    np.testing.assert_allclose(trace.sample_times_s("org.x.Fast.once##fork0"), [6.0, 10.0])


@pytest.mark.parametrize(
    ("unit", "score", "ms"),
    [("s/op", 2.0, 2000.0), ("ms/op", 2.0, 2.0), ("us/op", 2.0, 2e-3), ("ns/op", 2.0, 2e-6),
     ("ops/s", 4.0, 250.0), ("ops/ms", 4.0, 0.25), ("ops/us", 4.0, 2.5e-4),
     ("ops/ns", 4.0, 2.5e-7), ("ops/min", 2.0, 30000.0)],
)
def test_jmh_unit_conversion(unit: str, score: float, ms: float) -> None:
    factor, inverse = unit_to_ms(unit)
    assert (factor / score if inverse else score * factor) == pytest.approx(ms, rel=1e-12)


def test_jmh_errors_name_the_field(tmp_path: Path) -> None:
    doc = jmh_doc()
    doc[1]["primaryMetric"]["scoreUnit"] = "B/op"
    with pytest.raises(TraceFormatError) as err:
        import_file(write_json(tmp_path / "u.json", doc), "jmh")
    assert err.value.field == "[1].primaryMetric.scoreUnit"
    doc = jmh_doc()
    del doc[0]["primaryMetric"]["rawData"]
    with pytest.raises(TraceFormatError, match="rawData") as err:
        import_file(write_json(tmp_path / "r.json", doc), "jmh")
    assert err.value.field == "[0].primaryMetric"
    doc = jmh_doc()
    doc[0]["primaryMetric"]["rawData"][1][2] = 0.0
    with pytest.raises(TraceFormatError) as err:
        import_file(write_json(tmp_path / "z.json", doc), "jmh")
    assert err.value.field == "[0].primaryMetric.rawData[1][2]"


# ------------------------------------------------------------------------- CSV


def test_csv_mapping_runs_times_flags(tmp_path: Path) -> None:
    path = tmp_path / "lat.csv"
    path.write_text(
        "worker,t,us,good,power_w\n"
        "A,10.0010,1000,1,200\n"
        "B,5.0020,2000,yes,210\n"
        "A,10.0030,1500,0,\n"
        "A,10.0050,2000,true,205\n"
    )
    assert detect_format(path) is None  # no latency_ms column: needs a mapping
    trace = import_file(path, "csv", latency_col="us", unit="us", run_col="worker",
                        time_col="t", ok_col="good")
    assert trace.run_ids == ["A", "B"]
    a = trace.run("A").data
    assert a["ok"].tolist() == [True, False, True]
    assert a["error"].iloc[1] and a["error"].iloc[0] is None
    np.testing.assert_allclose(trace.samples("A"), [1.0, 2.0])
    # origin = end of first attempt - its latency: 10.001 s - 1 ms
    np.testing.assert_allclose(a["t_end_ns"].to_numpy(dtype=float), [1e6, 3e6, 5e6], atol=1)
    np.testing.assert_allclose(trace.sample_times_s("A"), [0.001, 0.005], atol=1e-9)
    np.testing.assert_allclose(trace.samples("A", "power_w"), [200.0, 205.0])
    prov = trace.run_info("B").provenance
    assert prov["first_line"] == 3 and prov["mapping"]["latency_col"] == "us"


def test_csv_default_mapping_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("latency_ms\n12.5\n11.0\n10.9\n")
    assert detect_format(path) == "csv"
    trace = import_file(path)
    assert trace.run_ids == ["plain"]
    np.testing.assert_allclose(trace.sample_times_s(), np.cumsum([12.5, 11.0, 10.9]) / 1e3)


def test_csv_errors_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("latency_ms,ok\n1.0,1\n2.0,1\nslow,1\n")
    with pytest.raises(TraceFormatError) as err:
        import_file(path, "csv")
    assert (err.value.line, err.value.field) == (4, "latency_ms")
    path.write_text("latency_ms,ok\n1.0,1\n2.0,maybe\n")
    with pytest.raises(TraceFormatError) as err:
        import_file(path, "csv", ok_col="ok")
    assert (err.value.line, err.value.field) == (3, "ok")
    with pytest.raises(TraceFormatError, match="not a column") as err:
        import_file(path, "csv", latency_col="ms")
    assert err.value.line == 1
    path.write_text("latency_ms,t\n1.0,0.5\n1.0,0.2\n")
    with pytest.raises(TraceFormatError, match="backwards") as err:
        import_file(path, "csv", time_col="t")
    assert err.value.line == 3
    path.write_text("latency_ms\n1.0\n-2.0\n")
    with pytest.raises(TraceFormatError, match="positive") as err:
        import_file(path, "csv")
    assert err.value.line == 3


def test_csv_mapping_is_validated() -> None:
    with pytest.raises(ValueError):
        CsvMapping(unit="fortnights")
    with pytest.raises(ValueError):
        CsvMapping(scale=-1.0)
    assert CsvMapping(scale=0.5, unit="s").factor_ms == 0.5


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(1e-3, 1e4, allow_nan=False), min_size=1, max_size=30),
    st.sampled_from(["ns", "us", "ms", "s"]),
)
def test_csv_round_trip_of_any_latencies(values: list[float], unit: str) -> None:
    import tempfile

    factor = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.csv"
        pd.DataFrame({"v": values}).to_csv(path, index=False)
        trace = import_file(path, "csv", latency_col="v", unit=unit)
    np.testing.assert_allclose(trace.samples(), np.array(values) * factor, rtol=1e-12)


# ------------------------------------------------------------------------- dispatch


def test_import_file_dispatch_errors(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert detect_format(path) is None
    with pytest.raises(TraceFormatError, match="format="):
        import_file(path)
    with pytest.raises(TraceFormatError, match="unknown import format"):
        import_file(path, "bogus")
    with pytest.raises(FileNotFoundError):
        import_file(tmp_path / "missing.json")
    assert set(FORMATS) == {"traini", "pyperf", "jmh", "csv", "vllm", "megatron", "nanogpt",
                            "llmperf"}


def test_load_trace_reaches_the_importers(tmp_path: Path) -> None:
    from llenergymeasure.traces import io

    path = write_json(tmp_path / "res.json", jmh_doc())
    trace = io.load_trace(path)
    assert trace.metadata.tags["source_format"] == "jmh"
    traini_corpus(tmp_path / "corpus", [[0.01, 0.02]])
    folder_traces = io.load_traces(tmp_path / "corpus" / "timeseries" / "all")
    assert [t.metadata.tags["source_format"] for t in folder_traces] == ["traini"]
