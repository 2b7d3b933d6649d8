"""Inference callables for :func:`~llenergymeasure.core.warmup.warmup_until_converged`.

torch and transformers are imported lazily: importing llenergymeasure needs
neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["create_warmup_inference_fn"]


def _device_of(model: Any) -> Any:
    device = getattr(model, "device", None)
    if device is None:
        import torch

        try:
            device = next(model.parameters()).device
        except (StopIteration, AttributeError):
            device = torch.device("cpu")
    return device


def create_warmup_inference_fn(
    model: Any,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 32,
) -> Callable[[], float]:
    """Build a callable that runs one ``generate`` and returns its latency in ms.

    The timed region is the ``generate`` call only: the prompt is tokenised
    once, up front, and its tensors moved to ``model.device``. When the model
    is on CUDA, the device is synchronised before the clock is read at the
    start and at the end, so queued kernels are neither charged to this call
    nor missed by it. Every call generates exactly ``max_new_tokens`` tokens
    (``min_new_tokens`` is set and EOS cannot end generation early), greedily,
    so latencies are comparable.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal language model.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer. When it has no pad token, ``pad_token_id`` is set to the
        EOS token (or 0).
    prompt : str
        The prompt of every call.
    max_new_tokens : int, default 32
        Tokens generated per call (>= 1).

    Returns
    -------
    callable
        ``fn() -> float``: wall latency of one generation in milliseconds. The
        callable's ``last_output_tokens`` attribute holds the number of tokens
        the last call generated.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    import torch

    device = _device_of(model)
    on_cuda = getattr(device, "type", str(device)) == "cuda"
    encoded = tokenizer(prompt, return_tensors="pt")
    inputs = {k: v.to(device) for k, v in encoded.items() if hasattr(v, "to")}
    n_in = int(inputs["input_ids"].shape[-1])
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(tokenizer, "eos_token_id", None)
        if pad_id is None:
            pad_id = 0
    gen_kwargs = {
        "max_new_tokens": max_new_tokens,
        "min_new_tokens": max_new_tokens,
        "do_sample": False,
        "pad_token_id": pad_id,
    }

    def run_single_inference() -> float:
        with torch.inference_mode():
            if on_cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter_ns()
            out = model.generate(**inputs, **gen_kwargs)
            if on_cuda:
                torch.cuda.synchronize(device)
            end = time.perf_counter_ns()
        run_single_inference.last_output_tokens = int(out.shape[-1]) - n_in  # type: ignore[attr-defined]
        return (end - start) / 1e6

    run_single_inference.last_output_tokens = 0  # type: ignore[attr-defined]
    return run_single_inference
