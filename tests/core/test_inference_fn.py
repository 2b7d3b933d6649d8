"""create_warmup_inference_fn on a real tiny transformers model (random weights, no download)."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llenergymeasure import WarmupConfig, create_warmup_inference_fn, warmup_until_converged  # noqa: E402
from llenergymeasure.core.tiny_model import build_tiny_causal_lm  # noqa: E402


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    return build_tiny_causal_lm(seed=0)


def test_generates_exactly_max_new_tokens(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    for n in (1, 5, 12):
        fn = create_warmup_inference_fn(model, tok, "the gpu is warm", max_new_tokens=n)
        latency = fn()
        assert latency > 0
        assert fn.last_output_tokens == n


def test_eos_cannot_stop_generation_early(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    # Make EOS the most likely token everywhere: without min_new_tokens, greedy decoding
    # would stop after one token.
    with torch.no_grad():
        model.lm_head.weight[tok.eos_token_id] += 100.0
    try:
        fn = create_warmup_inference_fn(model, tok, "warmup latency", max_new_tokens=6)
        fn()
        assert fn.last_output_tokens == 6
    finally:
        with torch.no_grad():
            model.lm_head.weight[tok.eos_token_id] -= 100.0


def test_pad_token_fallback() -> None:
    model, tok = build_tiny_causal_lm(pad_token=False)
    assert tok.pad_token_id is None
    fn = create_warmup_inference_fn(model, tok, "the model", max_new_tokens=3)
    assert fn() > 0 and fn.last_output_tokens == 3


def test_warmup_completes_on_the_tiny_model(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    fn = create_warmup_inference_fn(model, tok, "measure the energy of inference", max_new_tokens=4)
    cfg = WarmupConfig(cv_threshold=0.5, max_prompts=15, window_size=3, min_prompts=3)
    res = warmup_until_converged(fn, cfg, show_progress=False)
    assert res.attempts <= 15 and res.failures == 0
    assert res.iterations_completed == len(res.latencies_ms) >= 3
    assert all(v > 0 for v in res.latencies_ms)
    assert res.status in ("converged", "not_converged")


def test_bad_max_new_tokens(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    with pytest.raises(ValueError, match="max_new_tokens"):
        create_warmup_inference_fn(model, tok, "x", max_new_tokens=0)


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, llenergymeasure; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
