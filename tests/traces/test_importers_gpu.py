"""Importers of GPU and LLM tools: vLLM serving results, Megatron-LM golden values,
modded-nanogpt training logs, LLMPerf individual responses.

The real files in ../shared/data/gpu/original are read with counts checked by
hand (each expected value says how it was obtained, by a one-liner that does not
use this package); the tools' own summaries (vLLM's `mean_ttft_ms`,
`mean_itl_ms`) are reproduced. Small fixtures written here cover the edge
cases: failed requests, zero gaps, the training clock's restart and
evaluation lines, logged-step strides, gaps in the logged values, and
malformed input.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llenergymeasure.traces import load_trace, load_traces, save_trace
from llenergymeasure.traces.importers import FORMATS, detect_format, import_file
from llenergymeasure.traces.importers.megatron import stride_times_ns
from llenergymeasure.traces.importers.nanogpt import step_durations_ms
from llenergymeasure.traces.model import ALL_COLUMNS, Trace, TraceFormatError

GPU = "gpu/original"


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def run_frame(trace: Trace, run_id: str) -> pd.DataFrame:
    return trace.data[trace.data["run_id"] == run_id].reset_index(drop=True)


def test_new_formats_are_registered() -> None:
    assert {"vllm", "megatron", "nanogpt", "llmperf"} <= set(FORMATS)


# --------------------------------------------------------------------------- vLLM
def vllm_doc(**over: object) -> dict:
    doc = {
        "backend": "vllm", "model_id": "m", "request_rate": "inf", "duration": 1.5,
        "completed": 2,
        "ttfts": [0.05, 0.0, 0.04, 0.02],
        "itls": [[0.01, 0.02], [], [0.03, 0.0, 0.01], []],
        "input_lens": [10, 11, 12, 13],
        "output_lens": [3, 0, 4, 1],
        "errors": ["", "Connection reset", "", ""],
        "generated_texts": ["abc", "", "abcd", "a"],
        "mean_ttft_ms": 36.7,
    }
    doc.update(over)
    return doc


def test_vllm_fixture_runs_failures_and_order(tmp_path: Path) -> None:
    path = write_json(tmp_path / "res.json", vllm_doc())
    assert detect_format(path) == "vllm"
    trace = load_trace(path)
    assert trace.run_ids == ["ttft", "decode"]
    ttft = run_frame(trace, "ttft")
    assert ttft["request_index"].tolist() == [0, 1, 2, 3]
    assert ttft["ok"].tolist() == [True, False, True, True]
    assert ttft.loc[1, "error"] == "Connection reset"
    np.testing.assert_allclose(trace.samples("ttft"), [50.0, 40.0, 20.0])
    np.testing.assert_allclose(ttft["e2e_latency_ms"].iloc[[0, 2, 3]], [80.0, 80.0, 20.0])
    assert ttft["input_tokens"].tolist() == [10, 11, 12, 13]
    assert ttft["decode_steps"].tolist() == [2, 0, 3, 0]
    dec = run_frame(trace, "decode")
    # request 0: 2 steps; request 1 failed: one failed row; request 2: 3 steps, one of
    # them a zero gap (a failed row); request 3 had one chunk: no row
    assert dec["request_index"].tolist() == [0, 0, 1, 2, 2, 2]
    assert dec["decode_step"].tolist() == [1, 2, 0, 1, 2, 3]
    assert dec["ok"].tolist() == [True, True, False, True, False, True]
    assert "zero inter-token latency" in dec.loc[4, "error"]
    np.testing.assert_allclose(trace.samples("decode"), [10.0, 20.0, 30.0, 10.0])
    info = trace.run_info("decode")
    assert info.provenance["format"] == "vllm"
    assert info.provenance["request_rate"] == "inf"
    assert info.provenance["n_failed"] == 1
    assert info.provenance["summary"]["mean_ttft_ms"] == 36.7
    # no send times in the file: the timestamps are unknown
    assert trace.data["t_end_ns"].isna().all()


def test_vllm_ttft_zero_without_error_is_a_failure(tmp_path: Path) -> None:
    doc = vllm_doc(errors=["", "", "", ""])
    trace = import_file(write_json(tmp_path / "r.json", doc))
    ttft = run_frame(trace, "ttft")
    assert ttft["ok"].tolist() == [True, False, True, True]
    assert "no token received" in ttft.loc[1, "error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"itls": [[0.01], [], []]}, "itls"),
        ({"ttfts": [0.05, "fast", 0.04, 0.02]}, "ttfts[1]"),
        ({"itls": [[0.01, -0.02], [], [], []]}, "itls[0][1]"),
        ({"input_lens": [10, 11, 1.5, 13]}, "input_lens[2]"),
        ({"errors": ["", None, 3, ""]}, "errors[2]"),
    ],
)
def test_vllm_errors_name_file_and_field(tmp_path: Path, change: dict, field: str) -> None:
    path = write_json(tmp_path / "bad.json", vllm_doc(**change))
    with pytest.raises(TraceFormatError) as exc:
        import_file(path, "vllm")
    assert exc.value.field == field
    assert exc.value.file == str(path)
    assert "bad.json" in str(exc.value)


VLLM_FILES = {
    # requests: python -c "import json;print(len(json.load(open(F))['ttfts']))" -> 200 each
    # decode steps: python -c "import json;print(sum(map(len,json.load(open(F))['itls'])))"
    # failures: python -c "import json;print(sum(1 for e in json.load(open(F))['errors'] if e))"
    # single-chunk requests: ... sum(1 for x in d['itls'] if not x) -> 14 in each file
    "qps_01": (200, 42522, 0),
    "qps_04": (200, 42224, 0),
    "qps_16": (200, 42570, 0),
    "qps_inf": (200, 42198, 0),
}


@pytest.mark.parametrize("rate", sorted(VLLM_FILES))
def test_vllm_real_files(shared_data: Path, rate: str) -> None:
    (path,) = (shared_data / GPU / "vllm").glob(f"serving_*_{rate}.json")
    n_req, n_steps, n_failed = VLLM_FILES[rate]
    trace = load_trace(path)
    assert trace.metadata.tags["source_format"] == "vllm"
    ttft, dec = run_frame(trace, "ttft"), run_frame(trace, "decode")
    assert len(ttft) == n_req and len(dec) == n_steps
    assert int((~ttft["ok"]).sum()) == n_failed == int((~dec["ok"]).sum())
    assert int((ttft["decode_steps"] == 0).sum()) == 14
    # request boundaries and arrival order: request indices never decrease and every
    # request with a decode step appears, its steps numbered 1..k
    req = dec["request_index"].to_numpy()
    assert (np.diff(req) >= 0).all()
    assert set(req) == set(ttft.loc[ttft["decode_steps"] > 0, "request_index"])
    starts = np.r_[True, np.diff(req) > 0]
    assert (dec.loc[starts, "decode_step"] == 1).all()
    # the tool's own summary, recomputed from the imported samples
    summary = trace.run_info("ttft").provenance["summary"]
    assert trace.samples("ttft").mean() == pytest.approx(summary["mean_ttft_ms"], rel=1e-12)
    assert np.median(trace.samples("ttft")) == pytest.approx(summary["median_ttft_ms"],
                                                             rel=1e-12)
    assert trace.samples("decode").mean() == pytest.approx(summary["mean_itl_ms"], rel=1e-12)
    assert np.median(trace.samples("decode")) == pytest.approx(summary["median_itl_ms"],
                                                               rel=1e-12)


# ----------------------------------------------------------------------- Megatron
def megatron_doc(values: dict, **more: dict) -> dict:
    doc = {"iteration-time": {"start_step": 1, "end_step": 20, "step_interval": 5,
                              "values": values}}
    for name, vals in more.items():
        doc[name] = {"start_step": 1, "end_step": 20, "step_interval": 5, "values": vals}
    return doc


def test_megatron_stride_times_and_aligned_metrics(tmp_path: Path) -> None:
    values = {"1": 10.0, "5": 2.0, "10": 1.0, "15": 1.5}
    path = write_json(tmp_path / "golden_values_dev_dgx_h100.json", megatron_doc(
        values, **{"lm loss": {"1": 9.0, "5": 8.0, "10": 7.0, "15": 6.5},
                   "num-zeros": {"5": 3.0, "10": 4.0}, "other": {"2": 1.0}}))
    assert detect_format(path) == "megatron"
    trace = load_trace(path)
    df = trace.data
    assert trace.run_ids == ["iteration-time"]
    np.testing.assert_allclose(df["latency_ms"], [10000.0, 2000.0, 1000.0, 1500.0])
    assert df["step"].tolist() == [1, 5, 10, 15]
    assert df["steps_covered"].tolist() == [1, 4, 5, 5]
    # 10 s x 1 step, + 2 s x 4 steps, + 1 s x 5 steps, + 1.5 s x 5 steps
    np.testing.assert_allclose(trace.sample_times_s(), [10.0, 18.0, 23.0, 30.5])
    assert df["t_start_ns"].tolist() == [0, 10_000_000_000, 18_000_000_000, 23_000_000_000]
    np.testing.assert_allclose(df["lm_loss"], [9.0, 8.0, 7.0, 6.5])
    np.testing.assert_allclose(df["num_zeros"], [np.nan, 3.0, 4.0, np.nan])
    prov = trace.run_info().provenance
    assert prov["metrics_not_aligned"] == ["other"]
    assert prov["step_gaps"] == [4, 5] and prov["step_interval"] == 5
    assert trace.metadata.tags["gpu"] == "h100"


def test_megatron_nan_values_are_failed_attempts_without_times(tmp_path: Path) -> None:
    trailing = import_file(write_json(tmp_path / "a.json", megatron_doc(
        {"1": 4.0, "2": 1.0, "3": "nan", "4": "nan"})))
    df = trailing.data
    assert df["ok"].tolist() == [True, True, False, False]
    assert "step 3" in df.loc[2, "error"]
    assert df["t_end_ns"].tolist()[:2] == [4_000_000_000, 5_000_000_000]
    assert df["t_end_ns"].isna().tolist() == [False, False, True, True]
    np.testing.assert_allclose(trailing.sample_times_s(), [4.0, 5.0])
    middle = import_file(write_json(tmp_path / "b.json", megatron_doc(
        {"1": 4.0, "2": "nan", "3": 1.0})))
    assert middle.data["t_end_ns"].isna().tolist() == [False, True, True]
    np.testing.assert_array_equal(middle.samples(), [4000.0, 1000.0])


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"lm loss": {"values": {"1": 1.0}}}, "iteration-time"),
        (megatron_doc({"1": 1.0, "x": 2.0}), "iteration-time.values.x"),
        (megatron_doc({"1": 1.0, "2": "slow"}), "iteration-time.values.2"),
        (megatron_doc({"1": 1.0, "2": 0.0}), "iteration-time.values.2"),
        (megatron_doc({"1": 1.0}, loss={"1": [1]}), "loss.values.1"),
    ],
)
def test_megatron_errors_name_file_and_field(tmp_path: Path, doc: dict, field: str) -> None:
    path = write_json(tmp_path / "g.json", doc)
    with pytest.raises(TraceFormatError) as exc:
        import_file(path, "megatron")
    assert exc.value.field == field and exc.value.file == str(path)


@given(
    st.lists(st.floats(0.01, 100.0), min_size=1, max_size=30),
    st.lists(st.integers(1, 7), min_size=30, max_size=30),
)
def test_stride_times_add_up_every_covered_step(secs: list[float], gaps: list[int]) -> None:
    steps = np.cumsum(gaps[: len(secs)])
    start, end, covered = stride_times_ns(steps, np.array(secs))
    assert covered[0] == 1 and (covered[1:] == np.diff(steps)).all()
    expected = sum(s * c for s, c in zip(secs, covered, strict=True)) * 1e9
    assert end[-1] == pytest.approx(expected, rel=1e-9, abs=1)
    assert (start[1:] == end[:-1]).all() and start[0] == 0


MEGATRON_FILES = {
    # logged points: python -c "import json;print(len(json.load(open(F))['iteration-time']
    #   ['values']))"; missing: ... sum(v == 'nan' for v in d['iteration-time']['values']
    #   .values()); first step: min(map(int, d['iteration-time']['values']))
    "bert_bert_mcore_tp1_pp2": (49, 0, 2),
    "gpt_gpt3_mcore_te_tp1_pp1_resume": (99, 0, 2),
    "mixtral_mixtral_8x7b_alltoall": (4801, 263, 1),
}


@pytest.mark.parametrize("name", sorted(MEGATRON_FILES))
def test_megatron_real_files(shared_data: Path, name: str) -> None:
    (path,) = (shared_data / GPU / "megatron").glob(f"{name}*.json")
    n, n_missing, first = MEGATRON_FILES[name]
    trace = load_trace(path)
    df = trace.data
    assert len(df) == n and int((~df["ok"]).sum()) == n_missing
    assert int(df["step"].iloc[0]) == first
    raw = json.loads(path.read_text())
    lm = raw["lm loss"]["values"]
    for i in (0, len(df) // 2):
        step = str(int(df["step"].iloc[i]))
        assert df["lm_loss"].iloc[i] == lm[step]
        assert df["latency_ms"].iloc[i] == pytest.approx(
            raw["iteration-time"]["values"][step] * 1e3)
    # the step is the cold one: 10-180x the steady value (README of the data)
    x = trace.samples()
    assert x[0] > 5 * np.median(x)


def test_megatron_mixtral_times_cover_the_strided_steps(shared_data: Path) -> None:
    (path,) = (shared_data / GPU / "megatron").glob("mixtral*.json")
    trace = load_trace(path)
    df = trace.data[trace.data["ok"]]
    # steps 1, 5, 10, ...: the first point covers 1 step, the second 4, the rest 5
    assert df["steps_covered"].tolist()[:3] == [1, 4, 5]
    raw = json.loads(path.read_text())["iteration-time"]["values"]
    # python: sum of value x gap over the measured points, with gap 1 for step 1
    steps = sorted(int(k) for k, v in raw.items() if v != "nan")
    total = raw["1"] + sum(raw[str(b)] * (b - a) for a, b in itertools.pairwise(steps))
    assert trace.sample_times_s()[-1] == pytest.approx(total, rel=1e-9)


# ------------------------------------------------------------------ modded-nanogpt
NANOGPT_LOG = """\
Running pytorch 2.4.1+cu121 compiled for CUDA 12.1
|   0  NVIDIA H100 80GB HBM3          On  | 00000000:61:00.0 Off |                    0 |
====
step:0/14 val_loss:11.0000 train_time:300ms step_avg:nanms
step:1/14 train_loss:11.0 train_time:24000ms step_avg:nanms
step:2/14 train_loss:10.9 train_time:24340ms step_avg:nanms
step:3/14 train_loss:10.8 train_time:24590ms step_avg:nanms
step:4/14 train_loss:10.7 train_time:24840ms step_avg:nanms
step:5/14 train_loss:10.6 train_time:25090ms step_avg:nanms
step:6/14 train_loss:10.5 train_time:25340ms step_avg:nanms
step:7/14 train_loss:10.4 train_time:25590ms step_avg:nanms
step:8/14 train_loss:10.3 train_time:25840ms step_avg:nanms
step:9/14 train_loss:10.2 train_time:26090ms step_avg:nanms
step:10/14 train_loss:10.1 train_time:26340ms step_avg:nanms
step:11/14 train_loss:10.0 train_time:260ms step_avg:nanms
step:12/14 train_loss:9.9 train_time:510ms step_avg:nanms
step:12/14 val_loss:9.8000 train_time:540ms step_avg:270.00ms
step:14/14 train_loss:9.7 train_time:1040ms step_avg:346.67ms
step:14/14 val_loss:9.6000 train_time:1050ms step_avg:350.00ms
"""


def test_nanogpt_restart_evaluations_and_compile_step(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text(NANOGPT_LOG)
    assert detect_format(path) == "nanogpt"
    trace = load_trace(path)
    df = trace.data
    assert df["step"].tolist() == [*range(1, 13), 14]
    # step 1 keeps the compilation: its reading from 0; steps 2-10: differences;
    # step 11: the reading after the restart; step 14: two steps since step 12,
    # across an evaluation during which the clock stood still
    expected = [24000.0] + [340.0] + [250.0] * 8 + [260.0, 250.0, 265.0]
    np.testing.assert_allclose(df["latency_ms"], expected)
    assert df["steps_covered"].tolist() == [1] * 12 + [2]
    # the clock without evaluations, restart undone: 26340 + 1040 ms
    assert trace.sample_times_s()[-1] == pytest.approx(27.38)
    assert df["t_end_ns"].iloc[9] == 26_340_000_000
    prov = trace.run_info().provenance
    assert prov["clock_restarts"] == [11]
    assert [e["step"] for e in prov["evaluations"]] == [0, 12, 14]
    assert prov["evaluations"][1]["val_loss"] == 9.8
    assert trace.metadata.tags["pytorch"] == "2.4.1+cu121"
    assert trace.metadata.tags["gpu"] == "NVIDIA H100 80GB HBM3"
    np.testing.assert_allclose(df["train_loss"].iloc[:2], [11.0, 10.9])


def test_nanogpt_zero_duration_step_is_kept_as_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "z.txt"
    path.write_text("step:1/3 train_loss:1 train_time:5ms\nstep:2/3 train_loss:1 "
                    "train_time:5ms\nstep:3/3 train_loss:1 train_time:7ms\n")
    trace = import_file(path, "nanogpt")
    assert trace.data["ok"].tolist() == [True, False, True]
    np.testing.assert_allclose(trace.samples(), [5.0, 2.0])


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("step:3/14 train_loss:9.0 train_time:12.5ms", "train_time"),
        ("step:3/14 train_loss:fast train_time:100ms", "train_loss"),
        ("step:1/14 train_loss:9.0 train_time:100ms", "step"),
        ("step:3/99 train_loss:9.0 train_time:100ms", "step"),
        ("step:3/14 train_loss:9.0", "train_time"),
        ("step:3/14 lr:0.1 train_time:100ms", "train_loss"),
    ],
)
def test_nanogpt_errors_name_file_line_and_field(tmp_path: Path, line: str,
                                                  field: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("header\nstep:1/14 train_loss:9.5 train_time:50ms\n"
                    "step:2/14 train_loss:9.4 train_time:80ms\n" + line + "\n")
    with pytest.raises(TraceFormatError) as exc:
        import_file(path, "nanogpt")
    assert (exc.value.file, exc.value.line, exc.value.field) == (str(path), 4, field)


def test_nanogpt_log_without_steps_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("step:0/10 val_loss:3.0 train_time:0ms\n")
    assert detect_format(path) is None
    with pytest.raises(TraceFormatError, match="no training line"):
        import_file(path, "nanogpt")


@settings(max_examples=60)
@given(
    st.lists(st.integers(1, 5000), min_size=2, max_size=40),
    st.integers(1, 39),
)
def test_step_durations_undo_a_restart(durations: list[int], cut: int) -> None:
    d = np.array(durations, dtype=np.float64)
    cut = min(cut, len(d) - 1)
    readings = np.concatenate([np.cumsum(d[:cut]), np.cumsum(d[cut:])])
    got, covered, restarts = step_durations_ms(readings)
    if readings[cut] < readings[cut - 1]:
        np.testing.assert_array_equal(got, d)
        assert restarts == [cut]
    assert (covered == 1).all()


NANOGPT_FILE = {
    # training lines: grep -c 'train_loss' F -> 6000; evaluations: grep -c 'val_loss' F -> 49
    # clock before the restart: grep '^step:10/' F -> train_time:26562ms;
    # last reading: grep 'step:6000/6000 train_loss' F -> train_time:2176390ms
    "steps": 6000,
    "evaluations": 49,
    "total_ms": 26562 + 2176390,
    # steps 1-3: grep -E '^step:[1-3]/' F -> 24179, 24523, 24777 ms
    "first": [24179.0, 344.0, 254.0],
    # step 11: grep '^step:11/' F -> train_time:1539ms (time since the restart)
    "step11": 1539.0,
}


def test_nanogpt_real_log(shared_data: Path) -> None:
    (path,) = (shared_data / GPU / "modded-nanogpt").glob("*.txt")
    trace = load_trace(path)
    df = trace.data
    assert len(df) == NANOGPT_FILE["steps"] and bool(df["ok"].all())
    prov = trace.run_info().provenance
    assert len(prov["evaluations"]) == NANOGPT_FILE["evaluations"]
    assert prov["clock_restarts"] == [11]
    np.testing.assert_allclose(df["latency_ms"].iloc[:3], NANOGPT_FILE["first"])
    assert df["latency_ms"].iloc[10] == NANOGPT_FILE["step11"]
    assert df["latency_ms"].sum() == NANOGPT_FILE["total_ms"]
    assert trace.sample_times_s()[-1] == pytest.approx(NANOGPT_FILE["total_ms"] / 1e3)
    assert trace.metadata.tags["gpus"] == "8"


# ------------------------------------------------------------------------ LLMPerf
def llmperf_rec(e2e: float, ttft: float, code: object = None, msg: str = "") -> dict:
    return {"error_code": code, "error_msg": msg, "inter_token_latency_s": 0.02,
            "ttft_s": ttft, "end_to_end_latency_s": e2e,
            "request_output_throughput_token_per_s": 50.0, "number_total_tokens": 600,
            "number_output_tokens": 50, "number_input_tokens": 550}


def test_llmperf_failures_keep_the_reason(tmp_path: Path) -> None:
    recs = [llmperf_rec(2.0, 0.5), llmperf_rec(0, 0, 429),
            llmperf_rec(1.7, 0.8, -100, "Output too few tokens 39"), llmperf_rec(3.0, 0.25)]
    path = write_json(tmp_path / "x_individual_responses.json", recs)
    assert detect_format(path) == "llmperf"
    trace = load_trace(path)
    df = trace.data
    assert trace.run_ids == ["requests"]
    assert df["ok"].tolist() == [True, False, False, True]
    assert df["error"].tolist()[1:3] == ["error_code 429",
                                         "error_code -100: Output too few tokens 39"]
    assert _cells(df["error_code"]) == [None, "429", "-100", None]
    np.testing.assert_allclose(trace.samples(), [2000.0, 3000.0])
    np.testing.assert_allclose(trace.samples(signal="ttft_ms"), [500.0, 250.0])
    # a rejected request keeps what was measured
    assert df["ttft_ms"].iloc[2] == pytest.approx(800.0)
    np.testing.assert_allclose(df["inter_token_latency_ms"], 20.0)
    assert df["output_tokens"].tolist() == [50] * 4
    prov = trace.run_info().provenance
    assert prov["n_failed"] == 2 and prov["error_codes"] == ["-100", "429"]


@pytest.mark.parametrize(
    ("recs", "field"),
    [
        ([llmperf_rec(1.0, 0.1), llmperf_rec(1.0, "x")], "[1].ttft_s"),
        ([llmperf_rec(1.0, 0.1), llmperf_rec(0.0, 0.0)], "[1].end_to_end_latency_s"),
        ([llmperf_rec(1.0, 0.1), 5], "[1]"),
        ([llmperf_rec(1.0, 0.1), {**llmperf_rec(1.0, 0.1), "number_output_tokens": -1}],
         "[1].number_output_tokens"),
    ],
)
def test_llmperf_errors_name_file_and_record(tmp_path: Path, recs: list, field: str) -> None:
    path = write_json(tmp_path / "bad.json", recs)
    with pytest.raises(TraceFormatError) as exc:
        import_file(path, "llmperf")
    assert exc.value.field == field and exc.value.file == str(path)


@pytest.mark.parametrize("name", ["fireworks_13b", "together_70b"])
def test_llmperf_real_files(shared_data: Path, name: str) -> None:
    path = shared_data / GPU / "llmperf" / f"{name}.json"
    raw = json.loads(path.read_text())
    trace = load_trace(path)
    # records: python -c "import json;print(len(json.load(open(F))))" -> 150;
    # errors: ... sum(r['error_code'] is not None for r in d) -> 0
    assert len(trace.data) == 150 and bool(trace.data["ok"].all())
    np.testing.assert_allclose(trace.samples(), [r["end_to_end_latency_s"] * 1e3 for r in raw])
    np.testing.assert_allclose(trace.samples(signal="ttft_ms"), [r["ttft_s"] * 1e3 for r in raw])


# ------------------------------------------------------------------- all formats
def test_load_traces_reads_each_real_folder(shared_data: Path) -> None:
    expected = {"vllm": ["vllm"] * 4, "megatron": ["megatron"] * 3,
                "modded-nanogpt": ["nanogpt"], "llmperf": ["llmperf"] * 2}
    for folder, formats in expected.items():
        traces = load_traces(shared_data / GPU / folder)
        assert [t.metadata.tags["source_format"] for t in traces] == formats


def test_extract_files_are_not_taken_for_tool_files(shared_data: Path) -> None:
    for path in (shared_data / "gpu").glob("*.*"):
        if path.is_file() and path.suffix != ".md":
            assert detect_format(path) is None, path


def _fixtures(tmp_path: Path) -> list[Path]:
    nano = tmp_path / "log.txt"
    nano.write_text(NANOGPT_LOG)
    return [
        write_json(tmp_path / "vllm.json", vllm_doc()),
        write_json(tmp_path / "mega.json", megatron_doc({"1": 4.0, "5": 1.0, "10": "nan"},
                                                        **{"lm loss": {"1": 2.0}})),
        nano,
        write_json(tmp_path / "llmperf.json", [llmperf_rec(2.0, 0.5),
                                               llmperf_rec(0, 0, 429)]),
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_imported_traces_round_trip_in_the_native_formats(tmp_path: Path, fmt: str) -> None:
    for src in _fixtures(tmp_path):
        trace = load_trace(src)
        back = load_trace(save_trace(trace, tmp_path / f"{src.stem}.{fmt}"))
        assert back.run_ids == trace.run_ids
        assert back.metadata.runs == trace.metadata.runs
        assert back.metadata.tags == trace.metadata.tags
        for col in trace.data.columns:
            got = back.data[col]
            if fmt == "csv" and col not in ALL_COLUMNS:
                # a CSV trace has no types for the columns the schema does not know: the
                # reader keeps such a column as text ("" for a missing value) when it has
                # empty cells
                got = got.replace("", np.nan)
                if trace.data[col].dtype.kind in "fiu":
                    got = pd.to_numeric(got)
            assert _cells(got) == _cells(trace.data[col]), (src.name, col)


def _cells(col: pd.Series) -> list[object]:
    """Values of a column with every kind of missing value as None."""
    return [None if pd.isna(v) else v for v in col.tolist()]
