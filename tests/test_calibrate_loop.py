"""The calibration loop end to end on the tiny model: record -> label -> recommend -> use.

Every step runs for real: `llem-warmup record` measures the built-in tiny model on the CPU,
`llem-warmup label` labels the traces, `llem-warmup recommend` writes a warmup.yaml, and
that file drives a new recording (CLI) and `warmup_until_converged` (Python). The latencies
are whatever this machine measures, so the assertions are about what each step must do
with any series: the same answer from the CLI and from Python, a file that loads back to
the recommended config, and a driver that runs that config unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from llenergymeasure.cli import main

pytest.importorskip("torch")
pytest.importorskip("transformers")

N_TRACES = 4
ATTEMPTS = 30


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four tiny-model traces of 30 attempts each (a fixed count: the whole run is kept)."""
    from llenergymeasure import WarmupConfig

    root = tmp_path_factory.mktemp("loop")
    cfg = WarmupConfig(convergence_detection=False, max_prompts=ATTEMPTS).to_file(
        root / "record.yaml")
    for i in range(N_TRACES):
        rc = main(["record", "--no-progress", "--config", str(cfg), "--max-new-tokens", "2",
                   "-o", str(root / "traces" / f"tiny_{i}.jsonl")])
        assert rc == 0
    return root


def test_the_loop_from_the_cli_and_from_python(recorded: Path, capsys) -> None:
    from llenergymeasure import WarmupConfig
    from llenergymeasure.analysis.corpus import Corpus
    from llenergymeasure.analysis.labels import label_runs
    from llenergymeasure.analysis.recommend import recommend
    from llenergymeasure.traces.io import load_trace

    traces, labels, out = recorded / "traces", recorded / "labels.csv", recorded / "warmup.yaml"
    capsys.readouterr()
    assert main(["label", str(traces), "-m", "consensus", "-o", str(labels), "-q"]) == 0
    assert f"labelled {N_TRACES} runs with consensus" in capsys.readouterr().out
    assert main(["recommend", str(traces), "--reference", str(labels), "--folds", "2",
                 "--n-resamples", "200", "-q", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(("Use the adaptive rule:", "Use a fixed warmup count"))
    assert "fixed_count:n=" in printed  # the equal-cost fixed count is always shown

    # Python gives the same labels and the same recommendation
    corpus = Corpus.build(traces)
    frame = label_runs(corpus, "consensus")
    on_file = pd.read_csv(labels, dtype={"trace_id": str, "run_id": str})
    assert on_file["reference_start"].tolist() == frame["reference_start"].astype(float).tolist()
    rec = recommend(corpus, frame, folds=2, n_resamples=200, show_progress=False)
    loaded = WarmupConfig.from_file(out)
    assert loaded == rec.config

    # the file drives a new recording unchanged ...
    again = recorded / "again.jsonl"
    assert main(["record", "--no-progress", "--config", str(out), "--max-new-tokens", "2",
                 "-o", str(again)]) == 0
    trace = load_trace(again)
    attempts = len(trace.data)
    if rec.status == "fixed":
        assert not loaded.convergence_detection and attempts == loaded.max_prompts
    else:
        assert trace.metadata.criterion == loaded.make_criterion().spec
        assert attempts <= loaded.max_prompts

    # ... and warmup_until_converged from Python
    from llenergymeasure.core.tiny_model import build_tiny_causal_lm
    from llenergymeasure.core.warmup import create_warmup_inference_fn, warmup_until_converged

    model, tok = build_tiny_causal_lm()
    fn = create_warmup_inference_fn(model, tok, "measure", max_new_tokens=2)
    result = warmup_until_converged(fn, loaded, show_progress=False)
    if rec.status == "fixed":
        assert result.iterations_completed == loaded.max_prompts
    else:
        assert result.iterations_completed <= loaded.max_prompts
