"""``llem-warmup record`` in-process and as a subprocess, on the tiny model and a local server."""

from __future__ import annotations

import importlib.machinery
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from llenergymeasure.cli import main
from llenergymeasure.traces.io import load_trace, partial_path_for

pytest.importorskip("torch")
pytest.importorskip("transformers")

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _config(tmp_path: Path, **fields: object) -> str:
    """A WarmupConfig YAML file: a fixed count of 3 checked from the first sample."""
    from llenergymeasure import WarmupConfig

    base = {"criterion": "fixed_count:n=3", "min_prompts": 1, "max_prompts": 6}
    return str(WarmupConfig(**{**base, **fields}).to_file(tmp_path / "warmup.yaml"))


def _record(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["record", "--no-progress", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


# --------------------------------------------------------------------------- the tiny model


def test_tiny_model_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny.jsonl"
    rc, stdout, err = _record(
        capsys, "-o", str(out), "--config", _config(tmp_path), "--max-new-tokens", "2",
        "--shadow", "fixed_count:n=2", "--shadow", "rolling_cv:window=2,threshold=0.9",
        "--record-after-stop", "2", "--tag", "host=ci", "--run-id", "r1",
    )
    assert rc == 0, err
    assert "status: converged" in stdout
    assert "iterations: 3 successful of 3 attempts (cap 6)" in stdout
    assert "criterion: fixed_count:n=3" in stdout
    assert "shadow fixed_count:n=2: stop at sample 1" in stdout
    assert f"trace: {out} (5 attempts)" in stdout
    assert "NVML: off" in stdout
    trace = load_trace(out)
    data = trace.data
    assert len(data) == 5 and data["ok"].all() and (data["run_id"] == "r1").all()
    assert (data["output_tokens"] == 2).all()
    assert (data["input_tokens"] == 8).all()  # the default prompt: 8 words of the vocabulary
    assert (data["ttft_ms"] < data["latency_ms"]).all()
    meta = trace.metadata
    assert meta.model["source"] == "transformers" and meta.model["model"] == "tiny"
    assert meta.tags == {"host": "ci"} and meta.criterion == "fixed_count:n=3"
    assert trace.run_info("r1").stop_index == 2


def test_prompt_file_is_used_in_turn_and_cli_overrides_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the gpu\n\nmeasure the power of the model\n")
    out = tmp_path / "p.parquet"
    rc, stdout, err = _record(
        capsys, "-o", str(out), "--config", _config(tmp_path), "--prompts", str(prompts),
        "--criterion", "fixed_count:n=5", "--max-prompts", "5", "--max-new-tokens", "1",
        "--json",
    )
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["status"] == "converged" and result["attempts"] == 5
    assert result["criterion"] == "fixed_count:n=5" and result["max_prompts"] == 5
    data = load_trace(out).data
    assert data["prompt_index"].tolist() == [0, 1, 0, 1, 0]
    assert data["input_tokens"].tolist() == [2, 6, 2, 6, 2]


class _FakeNvml:
    """Just enough of pynvml: every energy read advances the counter by 1000 mJ."""

    def __init__(self, throttled_reads: int = 0) -> None:
        self.energy = 0
        self.reads = 0
        self.throttled_reads = throttled_reads

    def reasons(self, handle: object) -> int:
        self.reads += 1
        return 0x40 if self.reads <= self.throttled_reads else 0  # 0x40: HW thermal slowdown

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("pynvml")
        mod.__spec__ = importlib.machinery.ModuleSpec("pynvml", None)

        def energy(handle: object) -> int:
            self.energy += 1000
            return self.energy

        mod.NVMLError = RuntimeError
        mod.NVML_TEMPERATURE_GPU, mod.NVML_CLOCK_SM, mod.NVML_CLOCK_MEM = 0, 1, 2
        mod.nvmlInit = mod.nvmlShutdown = lambda: None
        mod.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
        mod.nvmlDeviceGetName = lambda h: "Fake GPU"
        mod.nvmlDeviceGetTotalEnergyConsumption = energy
        mod.nvmlDeviceGetPowerUsage = lambda h: 70_000
        mod.nvmlDeviceGetTemperature = lambda h, kind: 41
        mod.nvmlDeviceGetClockInfo = lambda h, kind: 1980 if kind == 1 else 2619
        mod.nvmlDeviceGetCurrentClocksThrottleReasons = self.reasons
        return mod


def test_nvml_side_channels_with_a_fake_nvml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml().module())
    out = tmp_path / "nvml.csv"
    rc, stdout, err = _record(capsys, "-o", str(out), "--config", _config(tmp_path),
                              "--max-new-tokens", "1")  # --nvml auto finds the fake
    assert rc == 0, err
    assert "NVML: on: Fake GPU" in stdout
    data = load_trace(out).data
    assert (data["energy_mj"] == 1000).all() and (data["temperature_c"] == 41).all()
    assert (data["sm_clock_mhz"] == 1980).all()
    rc, _, err = _record(capsys, "-o", str(tmp_path / "off.csv"), "--config", _config(tmp_path),
                         "--max-new-tokens", "1", "--nvml", "off")
    assert rc == 0 and "energy_mj" not in load_trace(tmp_path / "off.csv").data


def test_throttled_samples_are_kept_out_of_the_criterion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first 4 reads of the throttle reasons (before and after attempts 1 and 2) report
    # a thermal slowdown: those two samples are flagged and the fixed count of 3 needs 5
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(throttled_reads=4).module())
    out = tmp_path / "thr.jsonl"
    rc, stdout, err = _record(capsys, "-o", str(out), "--config", _config(tmp_path),
                              "--max-new-tokens", "1", "--exclude-throttled", "--json")
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["throttled_samples"] == 2 and result["attempts"] == 5
    assert result["iterations_completed"] == 3 and result["status"] == "converged"
    assert load_trace(out).data["throttled"].tolist() == [True, True, False, False, False]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--criterion", "no_such_rule"], "no_such_rule"),
        (["--shadow", "rolling_cv:windo=3"], "windo"),
        (["--shadow", "fixed_count:n=2", "--shadow", "fixed_count:n=2"], "given twice"),
        (["--max-prompts", "2"], "min_prompts (5) must be <= max_prompts (2)"),
        (["--prompts", "missing.txt"], "no such file"),
        (["--model", "no/such/folder"], "is not a folder"),
        (["--base-url", "http://127.0.0.1:9"], "--served-model"),
        (["--base-url", "ftp://x", "--served-model", "m"], "http:// or https://"),
        (["--model", "tiny", "--base-url", "http://h", "--served-model", "m"], "not both"),
        (["--cuda-events", "on", "--device", "cpu"], "needs a CUDA model"),
        (["--record-after-stop", "-1"], "--record-after-stop"),
        (["--tag", "novalue"], "KEY=VALUE"),
        (["--exclude-throttled", "--nvml", "off"], "--exclude-throttled needs NVML"),
        (["--base-url", "http://h", "--served-model", "m", "--extra-body", "{bad"], "not JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    rc, _, err = _record(capsys, "-o", str(tmp_path / "t.jsonl"), *argv)
    assert rc == 2
    assert err.startswith("llem-warmup record: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "t.jsonl").exists()
    assert not partial_path_for(tmp_path / "t.jsonl").exists()


def test_bad_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "warmup.yaml"
    cfg.write_text("max_prompts: 10\ncv_treshold: 0.1\n")
    rc, _, err = _record(capsys, "-o", str(tmp_path / "t.jsonl"), "--config", str(cfg))
    assert rc == 2 and "unknown key 'cv_treshold'" in err and str(cfg) in err
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "the gpu"}\n{"text": "x"}\n')
    rc, _, err = _record(capsys, "-o", str(tmp_path / "t.jsonl"), "--prompts", str(jsonl))
    assert rc == 2 and f"{jsonl}, line 2" in err and "'prompt' or a 'messages'" in err
    jsonl.write_text('{"messages": [{"role": "user", "content": "the gpu"}]}\n')
    rc, _, err = _record(capsys, "-o", str(tmp_path / "t.jsonl"), "--prompts", str(jsonl))
    assert rc == 2 and "has no chat template" in err  # the tiny tokenizer has none
    existing = tmp_path / "exists.jsonl"
    existing.write_text("keep me")
    rc, _, err = _record(capsys, "-o", str(existing))
    assert rc == 2 and "--overwrite" in err and existing.read_text() == "keep me"
    rc, _, err = _record(capsys, "-o", str(tmp_path / "t.txt"))
    assert rc == 2 and ".jsonl, .parquet or .csv" in err


def test_nvml_on_without_nvml_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    rc, _, err = _record(capsys, "-o", str(tmp_path / "t.jsonl"), "--config", _config(tmp_path),
                         "--nvml", "on", "--max-new-tokens", "1")
    assert rc == 2 and "--nvml on: NVML is not available" in err


# --------------------------------------------------------------------------- subprocesses


def _cli(*argv: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "llenergymeasure.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_subprocess_records_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "sub.jsonl"
    proc = _cli("record", "-o", str(out), "--config", _config(tmp_path), "--max-new-tokens", "1")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "status: converged" in stdout and "Warmup" in stderr  # the progress bar
    assert len(load_trace(out).data) == 3
    proc = _cli("record", "-o", str(out), "--config", _config(tmp_path))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr


def test_ctrl_c_exits_130_and_keeps_the_trace(tmp_path: Path) -> None:
    out = tmp_path / "int.jsonl"
    partial = partial_path_for(out)
    proc = _cli("record", "-o", str(out), "--no-progress", "--config",
                _config(tmp_path, criterion="fixed_count:n=100000", max_prompts=100000),
                "--max-new-tokens", "1")
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if partial.exists() and len(partial.read_text().splitlines()) >= 3:  # header + 2
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert f"the trace so far is kept in {out}" in stderr and "Traceback" not in stderr
    trace = load_trace(out)
    info = trace.run_info(trace.run_ids[0])
    assert info.interrupted and info.status == "interrupted"
    assert len(trace.data) >= 2 and not partial.exists()


# --------------------------------------------------------------------------- the local server


def test_server_mode_records_through_the_local_server(
    openai_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "the model is fast"}\n'
        '{"messages": [{"role": "user", "content": "measure the power"}]}\n'
    )
    out = tmp_path / "server.jsonl"
    rc, stdout, err = _record(
        capsys, "-o", str(out), "--base-url", openai_server.base_url,
        "--served-model", openai_server.model, "--prompts", str(prompts),
        "--config", _config(tmp_path, criterion="fixed_count:n=4"), "--max-new-tokens", "3",
        "--shadow", "fixed_count:n=2", "--endpoint", "completions",
    )
    assert rc == 0, err
    assert "status: converged" in stdout and "NVML: off" in stdout
    trace = load_trace(out)
    data = trace.data
    assert len(data) == 4 and data["ok"].all()
    assert data["prompt_index"].tolist() == [0, 1, 0, 1]
    assert data["input_tokens"].tolist() == [4, 3, 4, 3]
    assert (data["ttft_ms"] <= data["latency_ms"]).all()
    assert (data["output_tokens"] <= 3).all() and "itl_mean_ms" in data
    assert trace.metadata.model["served_model"] == openai_server.model
    assert trace.metadata.model["endpoint"] == "completions"


def test_server_mode_all_attempts_failing_exits_1(
    openai_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fail.jsonl"
    rc, stdout, _ = _record(
        capsys, "-o", str(out), "--base-url", openai_server.base_url,
        "--served-model", str(tmp_path / "not-a-model"), "--config",
        _config(tmp_path, max_prompts=2), "--max-new-tokens", "1",
    )
    assert rc == 1
    assert "status: all_failed" in stdout and "ServerHTTPError x2" in stdout
    data = load_trace(out).data
    assert (~data["ok"]).all() and data["error"].str.startswith("ServerHTTPError: HTTP").all()
